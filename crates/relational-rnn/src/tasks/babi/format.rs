//! Writer of the official Facebook bAbI text format (the inverse of [`super::parse_babi`]).
//!
//! Statement: `<id> <text>`. Question: `<id> <question> \t<answer>\t<supporting ids, space
//! separated>` — the space before the first tab is what the official files contain.

use std::fmt::Write;

use super::{Story, StoryLine};

/// The stories in bAbI text format, one line per story line, each ending in `\n`.
pub fn write_babi(stories: &[Story]) -> String {
    let mut out = String::new();
    for line in stories.iter().flat_map(|story| &story.lines) {
        match line {
            StoryLine::Statement { id, text } => {
                writeln!(out, "{id} {text}").expect("writing to a String cannot fail");
            }
            StoryLine::Question {
                id,
                text,
                answer,
                supporting,
            } => {
                let ids: Vec<String> = supporting.iter().map(usize::to_string).collect();
                writeln!(out, "{id} {text} \t{answer}\t{}", ids.join(" "))
                    .expect("writing to a String cannot fail");
            }
        }
    }
    out
}
