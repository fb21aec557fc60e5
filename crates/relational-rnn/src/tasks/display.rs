//! One-paragraph human-readable renderings of examples, for notebooks and failure reports.

use std::fmt;

use super::Example;
use super::pairs::PairQuestion;

fn join<T: fmt::Display>(items: impl IntoIterator<Item = T>, sep: &str) -> String {
    items
        .into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

impl fmt::Display for Example {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Example::NthFarthest(e) => {
                let reference = e.labels.iter().position(|&l| l == e.m).unwrap_or(0);
                let r = &e.vectors[reference];
                let dists = e.vectors.iter().zip(&e.labels).map(|(v, l)| {
                    let d: f32 = v
                        .iter()
                        .zip(r)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f32>()
                        .sqrt();
                    format!("{l}:{d:.2}")
                });
                write!(
                    f,
                    "{} vectors with labels [{}]; question (n = {}): which label is the {} farthest \
                     from the vector labelled {}? answer {}\n  distances from {} (label:distance): {}",
                    e.vectors.len(),
                    join(&e.labels, " "),
                    e.n,
                    ordinal(e.n + 1),
                    e.m,
                    e.target,
                    e.m,
                    join(dists, "  ")
                )
            }
            Example::Sorting(e) => {
                write!(
                    f,
                    "tokens [{}] → sorted [{}]",
                    join(&e.tokens, " "),
                    join(&e.sorted, " ")
                )
            }
            Example::Tracking(e) => {
                // One label per input step: the starts, the moves, then the query.
                let labels = e.step_labels();
                let (starts, rest) = labels.split_at(e.objects.len());
                write!(
                    f,
                    "starts [{}]; moves [{}]; where is obj{}? answer {}",
                    starts.join(" "),
                    rest[..rest.len() - 1].join(" "),
                    e.query,
                    e.target
                )
            }
            Example::Pairs(e) => {
                let items = e
                    .items
                    .iter()
                    .map(|i| format!("#{}(colour {}, value {})", i.id, i.colour, i.value));
                let q = match e.question {
                    PairQuestion::SameColour => "same colour? (1 = yes)",
                    PairQuestion::Larger => "which is larger? (0 = first, 1 = second)",
                };
                write!(
                    f,
                    "items [{}]; #{} vs #{}: {q} answer {}",
                    join(items, " "),
                    e.first,
                    e.second,
                    e.target
                )
            }
            Example::Babi(e) => {
                for (i, s) in e.context.iter().enumerate() {
                    let mark = if e.supporting.contains(&(i + 1)) {
                        " *"
                    } else {
                        ""
                    };
                    writeln!(f, "{:>3} {s}{mark}", i + 1)?;
                }
                write!(
                    f,
                    "    {} → {} (* = supporting facts)",
                    e.question, e.answer
                )
            }
        }
    }
}

/// `1st`, `2nd`, `3rd`, `4th`, …, `11th`, `12th`, `13th`, `21st`.
fn ordinal(k: usize) -> String {
    let suffix = match (k % 10, k % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{k}{suffix}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ordinals_read_as_english() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101]
            .into_iter()
            .map(super::ordinal)
            .collect();
        let want = [
            "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
        ];
        assert_eq!(got, want);
    }
}
