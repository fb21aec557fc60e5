//! Generator of bAbI-style stories with 1, 2 or 3 supporting facts, simulating a small world.
//!
//! People move between locations; in qa2/qa3 they also pick up and drop objects (a person can
//! only pick up an object in their own location; an object is where its holder is). Every story
//! has `num_sentences` statements followed by one question:
//!
//! - **qa1** "Where is Mary?" — Mary's last move (1 fact);
//! - **qa2** "Where is the football?" — who took or dropped it and where that person was
//!   (2 facts: the pick-up/drop line and the holder's move);
//! - **qa3** "Where was the football before the kitchen?" — asked only when the object's most
//!   recent location L appears once in its location history; the answer is the location before
//!   L; supporting facts are the lines that put it in those two places: 3 (the pick-up and two
//!   moves), or 4 when the two places were set by different pick-ups (about a third of the
//!   stories at the default length).
//!
//! Stories whose question cannot be asked (nobody has moved; no object carried anywhere) are
//! redrawn from the same random stream.
//!
//! [`generate_english_story`] writes the same world with the real English tasks' templates
//! ([`BabiVocabulary::English`](super::BabiVocabulary)) in the real files' shape: a question after
//! every second statement when one can be asked (qa1's 2 statements + 1 question, five times),
//! and always one at the end. Its qa3 questions ask, like the generated ones, about the object's
//! most recent location; the real qa3 also asks about earlier ones.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::templates::Templates;
/// The generated world's words (defined with the templates that use them).
pub use super::templates::{
    DROP_VERBS, GRAB_VERBS, LOCATIONS, MOVE_VERBS, OBJECTS, PEOPLE, TEMPLATE_WORDS,
};
use super::{BabiKind, BabiVocabulary, Story, StoryLine};

/// Where something is and which lines say so.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fact {
    location: usize,
    support: Vec<usize>,
}

/// The simulated world while a story is written.
#[derive(Debug, Default)]
struct World {
    /// Per person: current location and the line of that move.
    person: Vec<Option<(usize, usize)>>,
    /// Per object: holder and the line of the pick-up.
    holder: Vec<Option<(usize, usize)>>,
    /// Per object: the distinct consecutive locations it has been in.
    history: Vec<Vec<Fact>>,
    lines: Vec<StoryLine>,
}

impl World {
    fn new() -> Self {
        Self {
            person: vec![None; PEOPLE.len()],
            holder: vec![None; OBJECTS.len()],
            history: vec![Vec::new(); OBJECTS.len()],
            lines: Vec::new(),
        }
    }

    fn say(&mut self, text: String) -> usize {
        let id = self.lines.len() + 1;
        self.lines.push(StoryLine::Statement { id, text });
        id
    }

    fn set_location(&mut self, object: usize, fact: Fact) {
        let history = &mut self.history[object];
        match history.last_mut() {
            Some(last) if last.location == fact.location => *last = fact,
            _ => history.push(fact),
        }
    }

    /// `" there"` or nothing, at random, when the templates allow it (drawn only then, so the
    /// generated world's random stream is unchanged).
    fn there<R: Rng + ?Sized>(templates: &Templates, rng: &mut R) -> &'static str {
        if templates.there && rng.random_bool(0.5) {
            " there"
        } else {
            ""
        }
    }

    fn act<R: Rng + ?Sized>(&mut self, kind: BabiKind, templates: &Templates, rng: &mut R) {
        let mut grabs: Vec<(usize, usize)> = Vec::new();
        for (p, place) in self.person.iter().enumerate() {
            let Some((loc, _)) = *place else { continue };
            for o in 0..OBJECTS.len() {
                let free = self.holder[o].is_none();
                if free && self.history[o].last().is_none_or(|f| f.location == loc) {
                    grabs.push((p, o));
                }
            }
        }
        let drops: Vec<usize> = (0..OBJECTS.len())
            .filter(|&o| self.holder[o].is_some())
            .collect();
        let roll = rng.random::<f64>();
        if kind != BabiKind::Qa1 && roll < 0.3 && !grabs.is_empty() {
            let &(p, o) = grabs.choose(rng).expect("non-empty");
            let verb = templates.grab_verbs.choose(rng).expect("non-empty");
            let there = Self::there(templates, rng);
            let g = self.say(format!("{} {verb} the {}{there}.", PEOPLE[p], OBJECTS[o]));
            let (loc, mv) = self.person[p].expect("only located people pick up");
            self.holder[o] = Some((p, g));
            self.set_location(
                o,
                Fact {
                    location: loc,
                    support: vec![mv, g],
                },
            );
        } else if kind != BabiKind::Qa1 && roll < 0.4 && !drops.is_empty() {
            let &o = drops.choose(rng).expect("non-empty");
            let (p, _) = self.holder[o].take().expect("dropped objects are held");
            let verb = templates.drop_verbs.choose(rng).expect("non-empty");
            let there = Self::there(templates, rng);
            let d = self.say(format!("{} {verb} the {}{there}.", PEOPLE[p], OBJECTS[o]));
            let (loc, mv) = self.person[p].expect("holders are located");
            self.set_location(
                o,
                Fact {
                    location: loc,
                    support: vec![mv, d],
                },
            );
        } else {
            let p = rng.random_range(0..PEOPLE.len());
            let here = self.person[p].map(|(loc, _)| loc);
            let to = loop {
                let to = rng.random_range(0..LOCATIONS.len());
                if Some(to) != here {
                    break to;
                }
            };
            let verb = templates.move_verbs.choose(rng).expect("non-empty");
            let mv = self.say(format!("{} {verb} the {}.", PEOPLE[p], LOCATIONS[to]));
            self.person[p] = Some((to, mv));
            for o in 0..OBJECTS.len() {
                if let Some((holder, g)) = self.holder[o]
                    && holder == p
                {
                    self.set_location(
                        o,
                        Fact {
                            location: to,
                            support: vec![g, mv],
                        },
                    );
                }
            }
        }
    }

    /// The candidate questions `(text, answer, supporting ids)` the story can end with.
    fn questions(&self, kind: BabiKind) -> Vec<(String, usize, Vec<usize>)> {
        match kind {
            BabiKind::Qa1 => (0..PEOPLE.len())
                .filter_map(|p| {
                    let (loc, mv) = self.person[p]?;
                    Some((format!("Where is {}?", PEOPLE[p]), loc, vec![mv]))
                })
                .collect(),
            BabiKind::Qa2 => (0..OBJECTS.len())
                .filter_map(|o| {
                    let fact = self.history[o].last()?;
                    let mut support = fact.support.clone();
                    support.sort_unstable();
                    Some((
                        format!("Where is the {}?", OBJECTS[o]),
                        fact.location,
                        support,
                    ))
                })
                .collect(),
            BabiKind::Qa3 => (0..OBJECTS.len())
                .filter_map(|o| {
                    let [.., before, last] = &self.history[o][..] else {
                        return None;
                    };
                    let visits = self.history[o]
                        .iter()
                        .filter(|f| f.location == last.location)
                        .count();
                    if visits != 1 {
                        return None;
                    }
                    let mut support: Vec<usize> = before
                        .support
                        .iter()
                        .chain(&last.support)
                        .copied()
                        .collect();
                    support.sort_unstable();
                    support.dedup();
                    Some((
                        format!(
                            "Where was the {} before the {}?",
                            OBJECTS[o], LOCATIONS[last.location]
                        ),
                        before.location,
                        support,
                    ))
                })
                .collect(),
        }
    }

    /// Asks one of the questions the story can end with now, if any; returns whether it did.
    fn ask<R: Rng + ?Sized>(&mut self, kind: BabiKind, rng: &mut R) -> bool {
        let candidates = self.questions(kind);
        let Some((text, answer, supporting)) = candidates.choose(rng).cloned() else {
            return false;
        };
        let id = self.lines.len() + 1;
        self.lines.push(StoryLine::Question {
            id,
            text,
            answer: LOCATIONS[answer].to_string(),
            supporting,
        });
        true
    }
}

/// Draws one story of `num_sentences` statements and one question of `kind`.
pub fn generate_story<R: Rng + ?Sized>(kind: BabiKind, num_sentences: usize, rng: &mut R) -> Story {
    let templates = BabiVocabulary::Generated.templates();
    loop {
        let mut world = World::new();
        for _ in 0..num_sentences {
            world.act(kind, templates, rng);
        }
        if world.ask(kind, rng) {
            return Story { lines: world.lines };
        }
    }
}

/// Draws one story of `num_sentences` statements of `kind` in the real English tasks' words and
/// shape: a question after every second statement when one can be asked, and one at the end.
pub fn generate_english_story<R: Rng + ?Sized>(
    kind: BabiKind,
    num_sentences: usize,
    rng: &mut R,
) -> Story {
    let templates = BabiVocabulary::English.templates();
    loop {
        let mut world = World::new();
        for i in 1..=num_sentences {
            world.act(kind, templates, rng);
            if i % 2 == 0 && i < num_sentences {
                world.ask(kind, rng);
            }
        }
        if world.ask(kind, rng) {
            return Story { lines: world.lines };
        }
    }
}
