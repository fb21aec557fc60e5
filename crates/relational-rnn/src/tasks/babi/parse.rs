//! Parser of the official Facebook bAbI text format, for generated files and the real
//! `qaN_*_train.txt` / `qaN_*_test.txt` files alike.
//!
//! Rules: every non-blank line is `<id> <text>`; a story starts at id 1 and continues with
//! consecutive ids; a line containing a tab is a question `<text>\t<answer>\t<ids>` whose
//! supporting ids name earlier *statements* of the same story; every story ends with a question.
//! Blank lines are skipped, a trailing `\r` and a leading UTF-8 byte-order mark are ignored.
//! Anything else, including invalid UTF-8, truncated lines and (for a file) no story at all, is a
//! [`BabiError`] naming the file and the 1-based line — never a panic.

use std::path::Path;

use super::{Story, StoryLine};

/// A malformed bAbI file: which file, which line (1-based; 0 when the file cannot be read) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct BabiError {
    /// The file name given to the parser.
    pub file: String,
    /// The 1-based line number (0: the file could not be read at all).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Stories with, per story line, its 1-based line number in the file (for error messages).
pub(super) type NumberedStory = (Story, Vec<usize>);

/// Reads and parses a bAbI file; a file without a story (empty, or blank lines only) is an error.
pub fn read_babi_file(path: &Path) -> Result<Vec<Story>, BabiError> {
    Ok(read_numbered(path)?.into_iter().map(|(s, _)| s).collect())
}

/// [`read_babi_file`], keeping each story line's line number in the file.
pub(super) fn read_numbered(path: &Path) -> Result<Vec<NumberedStory>, BabiError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| BabiError {
        file: file.clone(),
        line: 0,
        message: format!("cannot read file: {e}"),
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| BabiError {
        file: file.clone(),
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        message: "invalid UTF-8".to_string(),
    })?;
    let stories = parse_numbered(text, &file)?;
    if stories.is_empty() {
        return Err(BabiError {
            file,
            line: 1,
            message: "no story in the file (empty, or blank lines only)".to_string(),
        });
    }
    Ok(stories)
}

/// Parses bAbI text; `file` names the source in error messages.
pub fn parse_babi(text: &str, file: &str) -> Result<Vec<Story>, BabiError> {
    Ok(parse_numbered(text, file)?
        .into_iter()
        .map(|(s, _)| s)
        .collect())
}

/// [`parse_babi`], keeping each story line's line number in the text.
fn parse_numbered(text: &str, file: &str) -> Result<Vec<NumberedStory>, BabiError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut stories = Vec::new();
    let mut current: Option<NumberedStory> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let fail = |message: String| BabiError {
            file: file.to_string(),
            line: line_no,
            message,
        };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let (id_text, rest) = line
            .split_once(' ')
            .ok_or_else(|| fail(format!("expected `<id> <text>`, got `{line}`")))?;
        let id: usize = id_text
            .parse()
            .map_err(|_| fail(format!("line id `{id_text}` is not a positive integer")))?;
        if id == 1
            && let Some(numbered) = current.take()
        {
            stories.push(finish(numbered, file)?);
        }
        if id == 1 {
            current = Some((Story::default(), Vec::new()));
        }
        let (story, numbers) = current
            .as_mut()
            .ok_or_else(|| fail(format!("a story must start at id 1, got {id}")))?;
        let expected = story.lines.len() + 1;
        if id != expected {
            return Err(fail(format!("expected line id {expected}, got {id}")));
        }
        story.lines.push(parse_line(id, rest, story).map_err(fail)?);
        numbers.push(line_no);
    }
    if let Some(numbered) = current {
        stories.push(finish(numbered, file)?);
    }
    Ok(stories)
}

/// Checks that a finished story asked at least one question (else the file is truncated).
fn finish(numbered: NumberedStory, file: &str) -> Result<NumberedStory, BabiError> {
    let (story, numbers) = &numbered;
    if story.num_questions() > 0 {
        Ok(numbered)
    } else {
        Err(BabiError {
            file: file.to_string(),
            line: numbers.last().copied().unwrap_or(0),
            message: "story ends without a question (truncated file?)".to_string(),
        })
    }
}

/// Parses the text after the id: a statement, or a question with answer and supporting ids.
fn parse_line(id: usize, rest: &str, story: &Story) -> Result<StoryLine, String> {
    if !rest.contains('\t') {
        let text = rest.trim();
        if text.is_empty() {
            return Err("empty statement".to_string());
        }
        return Ok(StoryLine::Statement {
            id,
            text: text.to_string(),
        });
    }
    let fields: Vec<&str> = rest.split('\t').collect();
    let [question, answer, support] = fields[..] else {
        return Err(format!(
            "a question needs 3 tab-separated fields (question, answer, supporting ids), got {}",
            fields.len()
        ));
    };
    let (question, answer) = (question.trim(), answer.trim());
    if question.is_empty() || answer.is_empty() {
        return Err("empty question or answer".to_string());
    }
    let supporting = support
        .split_whitespace()
        .map(|s| {
            let sid: usize = s
                .parse()
                .map_err(|_| format!("supporting id `{s}` is not a positive integer"))?;
            match sid.checked_sub(1).and_then(|i| story.lines.get(i)) {
                Some(StoryLine::Statement { .. }) => Ok(sid),
                Some(StoryLine::Question { .. }) => {
                    Err(format!("supporting id {sid} names a question"))
                }
                None => Err(format!("supporting id {sid} is not an earlier line")),
            }
        })
        .collect::<Result<Vec<usize>, String>>()?;
    if supporting.is_empty() {
        return Err("a question needs at least one supporting id".to_string());
    }
    Ok(StoryLine::Question {
        id,
        text: question.to_string(),
        answer: answer.to_string(),
        supporting,
    })
}
