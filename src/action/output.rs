//! What the action hands back to the runner: step outputs (`GITHUB_OUTPUT`), the job
//! summary (`GITHUB_STEP_SUMMARY`) and workflow-command annotations on stdout.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// GitHub's cap on one step's summary.
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

/// Append `name=value` pairs to the `GITHUB_OUTPUT` file. Values on one line use
/// `name=value`; others the heredoc form with a delimiter the value does not contain.
pub fn write_outputs(path: &Path, outputs: &[(&str, String)]) -> Result<()> {
    let mut text = String::new();
    for (name, value) in outputs {
        if value.contains('\n') || value.contains('\r') {
            let mut delimiter = "promptgate_EOF".to_string();
            while value.contains(&delimiter) {
                delimiter.push('_');
            }
            text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        } else {
            text.push_str(&format!("{name}={value}\n"));
        }
    }
    append(path, &text)
}

/// Append the report to the job summary, within GitHub's 1 MiB cap (what is already
/// there counts).
pub fn write_summary(path: &Path, markdown: &str) -> Result<()> {
    let used = std::fs::metadata(path).map_or(0, |m| m.len() as usize);
    let room = SUMMARY_LIMIT.saturating_sub(used + 1);
    if room == 0 {
        tracing::warn!("the job summary is full; the report is not added to it");
        return Ok(());
    }
    let mut end = markdown.len().min(room);
    while !markdown.is_char_boundary(end) {
        end -= 1;
    }
    append(path, &format!("{}\n", &markdown[..end]))
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Annotation severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

/// One annotation, pointing at a file and line when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub title: String,
    pub message: String,
}

impl Annotation {
    /// The workflow command: `::error file=F,line=N,title=T::message`, with every part
    /// escaped so text from a pull request cannot end the command or start another.
    pub fn command(&self) -> String {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        };
        let mut props = Vec::new();
        if let Some(file) = &self.file {
            props.push(format!("file={}", property(file)));
        }
        if let Some(line) = self.line {
            props.push(format!("line={line}"));
        }
        props.push(format!("title={}", property(&self.title)));
        format!("::{level} {}::{}", props.join(","), data(&self.message))
    }
}

/// Escaping of a workflow command's message: quoted as for a terminal (the job log
/// and the annotations are read by people), then GitHub's own escapes.
fn data(text: &str) -> String {
    crate::diag::terminal_text(text.to_string())
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping of a workflow command's property value.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_cannot_inject_commands() {
        let a = Annotation {
            level: Level::Error,
            file: Some("evals/a,b:c.eval.yaml".into()),
            line: Some(12),
            title: "promptgate: blocked".into(),
            message: "100% worse\n::set-output name=verdict::pass\r".into(),
        };
        assert_eq!(
            a.command(),
            "::error file=evals/a%2Cb%3Ac.eval.yaml,line=12,title=promptgate%3A blocked::100%25 worse%0A::set-output name=verdict::pass\\u{d}"
        );
        let quoted = Annotation {
            message: "case `x\u{1b}[2J\u{202e}`".into(),
            ..a
        };
        assert!(
            quoted.command().ends_with(r"::case `x\u{1b}[2J\u{202e}`"),
            "{}",
            quoted.command()
        );
    }

    #[test]
    fn outputs_use_a_delimiter_the_value_does_not_contain() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("out");
        write_outputs(
            &path,
            &[
                ("verdict", "blocked".into()),
                ("why", "a\npromptgate_EOF\nb".into()),
            ],
        )
        .expect("writes");
        assert_eq!(
            std::fs::read_to_string(&path).expect("reads"),
            "verdict=blocked\nwhy<<promptgate_EOF_\na\npromptgate_EOF\nb\npromptgate_EOF_\n"
        );
    }

    #[test]
    fn the_summary_stays_under_its_cap() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("summary");
        std::fs::write(&path, "x".repeat(SUMMARY_LIMIT - 10)).expect("writes");
        write_summary(&path, &"é".repeat(100)).expect("writes");
        let len = std::fs::metadata(&path).expect("exists").len() as usize;
        assert!(len <= SUMMARY_LIMIT, "{len}");
        assert!(std::fs::read_to_string(&path).is_ok(), "still UTF-8");
    }
}
