//! Diagnostics: a problem found in a user's file, located by file, line and column.

use std::fmt;

use serde::Serialize;

/// A 1-based line and column in a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, col: 1 };

    pub fn new(line: usize, col: usize) -> Self {
        Pos { line, col }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    /// Worth knowing, but nothing is wrong enough to fail on.
    Warning,
}

/// One problem in one file, printed as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Diagnostic {
    /// Repository-relative path of the file the problem is in.
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: impl Into<String>, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line: pos.line,
            col: pos.col,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(file: impl Into<String>, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::new(file, pos, message)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(
            f,
            "{}:{}:{}: {level}{}",
            printable(&self.file),
            self.line,
            self.col,
            printable(&self.message)
        )
    }
}

/// Text quoted from a user's file, safe on a terminal ([`terminal_text`]'s rule), with
/// line breaks escaped too, so that one problem stays on one line.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    escape_unsafe(text, |_| true)
}

/// A whole text output for a person at a terminal (`changes`, the `eval` table, the
/// rollout commands, error messages), which quotes text from a pull request, a model or
/// a runtime config: its lines and tabs are kept, and every other control character
/// (an escape sequence, an OSC 8 link, a bell) and every bidirectional formatting
/// character (which would make the text display otherwise than it reads) is written as
/// an escape, `\u{1b}`, `\u{202e}`: nothing in it can drive the terminal or reorder
/// what it shows.
pub fn terminal_text(text: String) -> String {
    match escape_unsafe(&text, |c| c != '\n' && c != '\t') {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

fn escape_unsafe(text: &str, escaped: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() && escaped(c)) || crate::markup::is_bidi_control(c);
    // Control characters are C0 and DEL, one byte each in UTF-8, and C1, two bytes led by
    // 0xC2; the bidirectional ones are led by 0xE2 or 0xD8. A text with none of those
    // bytes (most of them) is passed on after a byte scan.
    let suspect =
        |b: u8| matches!(b, 0xC2 | 0xE2 | 0xD8) || (b.is_ascii_control() && escaped(char::from(b)));
    if !text.bytes().any(suspect) || !text.chars().any(unsafe_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// The problems of one load, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, file: &str, pos: Pos, message: impl Into<String>) {
        self.0.push(Diagnostic::new(file, pos, message));
    }

    pub fn warn(&mut self, file: &str, pos: Pos, message: impl Into<String>) {
        self.0.push(Diagnostic::warning(file, pos, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Candidates compared for a suggestion: a file that defines a hundred thousand tools
/// must not cost a hundred thousand edit distances per misspelt name.
const MAX_CANDIDATES: usize = 1000;

/// The closest candidate to `name`, if one is close enough to be a likely typo.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    let chars = name.chars().count();
    candidates
        .into_iter()
        .take(MAX_CANDIDATES)
        .filter_map(|c| {
            let allowed = (c.len().max(name.len()) / 3).max(1);
            // The distance is at least the difference in length: a name far longer than
            // every candidate (a megabyte of a misspelt key) costs no edit distance,
            // which takes time in the product of the two lengths.
            if chars.abs_diff(c.chars().count()) > allowed {
                return None;
            }
            let d = strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase());
            (d <= allowed).then_some((d, c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `, did you mean `x`?` when a close candidate exists, otherwise nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match nearest(name, candidates) {
        Some(c) => format!(", did you mean `{c}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields = ["temperature", "max_tokens", "top_p", "seed"];
        assert_eq!(nearest("temprature", fields), Some("temperature"));
        assert_eq!(nearest("max_token", fields), Some("max_tokens"));
        assert_eq!(nearest("colour", fields), None);
        assert_eq!(
            did_you_mean("sead", ["temperature", "seed"]),
            ", did you mean `seed`?"
        );
        assert_eq!(did_you_mean("colour", ["seed"]), "");
    }

    #[test]
    fn displays_as_file_line_col() {
        let d = Diagnostic::new("a.yaml", Pos::new(3, 7), "boom");
        assert_eq!(d.to_string(), "a.yaml:3:7: boom");
    }

    #[test]
    fn terminal_escapes_from_files_are_shown_not_sent() {
        let d = Diagnostic::new("a\u{7}.yaml", Pos::START, "case `\u{1b}[2Jx`\r\n");
        assert_eq!(
            d.to_string(),
            "a\\u{7}.yaml:1:1: case `\\u{1b}[2Jx`\\u{d}\\u{a}"
        );
    }

    #[test]
    fn terminal_text_keeps_lines_and_tabs_only() {
        assert_eq!(
            terminal_text("a\tb\n\u{1b}]8;;x\u{7}\r\n".into()),
            "a\tb\n\\u{1b}]8;;x\\u{7}\\u{d}\n"
        );
        assert_eq!(terminal_text("plain\n".into()), "plain\n");
        // C1 controls (two bytes in UTF-8) are controls too; other characters of that
        // block are not.
        assert_eq!(terminal_text("\u{9b}31m £".into()), "\\u{9b}31m £");
        assert_eq!(terminal_text("£ ° \u{a0}".into()), "£ ° \u{a0}");
    }

    #[test]
    fn bidirectional_controls_are_shown_not_applied() {
        assert_eq!(
            terminal_text(
                "ok \u{202e}txt.exe\u{202c} \u{2066}a\u{2069} \u{200e}\u{200f}\u{61c} → …".into()
            ),
            "ok \\u{202e}txt.exe\\u{202c} \\u{2066}a\\u{2069} \\u{200e}\\u{200f}\\u{61c} → …"
        );
        let d = Diagnostic::new("a\u{202e}.yaml", Pos::START, "id `x\u{2067}`");
        assert_eq!(d.to_string(), "a\\u{202e}.yaml:1:1: id `x\\u{2067}`");
    }
}
