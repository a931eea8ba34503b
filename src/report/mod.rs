//! The markdown evidence report: a minijinja template (shipped in the binary, or the
//! user's) over a [`view`] of the evidence, kept under GitHub's comment limit by showing
//! less, never by failing. Every value the template prints is escaped as inline markdown
//! unless a filter made it safe, so a template cannot forget to escape model output.

pub mod junit;
pub mod view;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, UndefinedBehavior};

use crate::evidence::{Evidence, RoleState};
use crate::markup::markdown as escape;
use view::{Limits, View};

/// GitHub's limit on a comment body, in characters (UTF-16 code units).
pub const COMMENT_LIMIT: usize = 65_536;

/// The template shipped in the binary.
pub const DEFAULT_TEMPLATE: &str = include_str!("report.md.j2");

/// The approvals section, `{% include "approvals.md.j2" %}` in any template.
const APPROVALS_TEMPLATE: &str = include_str!("approvals.md.j2");
const APPROVALS: &str = "approvals.md.j2";

/// What the approvals section stands between, in the rendered report.
pub const APPROVALS_START: &str = "<!-- promptgate:approvals -->";
pub const APPROVALS_END: &str = "<!-- /promptgate:approvals -->";

/// A compiled report template.
pub struct Template {
    env: Environment<'static>,
    name: String,
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{:.1}%", x * 100.0))
}

fn points(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| {
        let p = x * 100.0;
        if p.abs() < 0.05 {
            "±0.0".into()
        } else {
            format!("{p:+.1}")
        }
    })
}

fn safe(text: String) -> Value {
    Value::from_safe_string(text)
}

impl Template {
    /// Compile `source` (named `name` in errors). Undefined variables are errors.
    pub fn new(name: &str, source: String) -> Result<Template, Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()?,
        );
        env.set_auto_escape_callback(|_| AutoEscape::Custom("markdown".into()));
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                out.write_str("–")?;
            } else if value.is_safe() || !matches!(state.auto_escape(), AutoEscape::Custom(_)) {
                write!(out, "{value}")?;
            } else if let Some(s) = value.as_str() {
                out.write_str(&escape::text(s))?;
            } else {
                out.write_str(&escape::text(&value.to_string()))?;
            }
            Ok(())
        });
        // `none` prints as the formatter prints it, never as the word.
        env.add_filter("code", |v: Value| match v.is_none() {
            true => safe("–".into()),
            false => safe(escape::code(&v.to_string())),
        });
        env.add_filter("prose", |v: Value| match v.is_none() {
            true => safe("–".into()),
            false => safe(escape::prose(&v.to_string())),
        });
        env.add_filter("block", |v: Value, lang: Option<String>| {
            safe(escape::block(&v.to_string(), lang.as_deref().unwrap_or("")))
        });
        env.add_filter("pct", |v: Option<f64>| pct(v));
        env.add_filter("points", |v: Option<f64>| points(v));
        env.add_filter("pvalue", crate::compare::stats::format_p);
        env.add_filter("drop", |v: Option<f64>| {
            v.map_or("–".into(), crate::compare::stats::format_points)
        });
        env.add_filter("short", |v: String| v.chars().take(12).collect::<String>());
        env.add_template(APPROVALS, APPROVALS_TEMPLATE)?;
        env.add_template_owned(name.to_string(), source)?;
        let template = Template {
            env,
            name: name.to_string(),
        };
        // Problems surface now, not after the evaluation: syntax when compiling, the
        // fields every report has (strict undefined) on an empty report.
        template.env.get_template(&template.name)?;
        template.render_view(&View::new(&Evidence::empty(), Limits::LADDER[0]))?;
        Ok(template)
    }

    /// The shipped template.
    pub fn builtin() -> Template {
        Template::new("report.md.j2", DEFAULT_TEMPLATE.to_string())
            .expect("the shipped report template compiles")
    }

    /// Just the approvals section, markers included.
    pub fn render_approvals(&self, approvals: &[RoleState]) -> Result<String, Error> {
        let report =
            minijinja::context! { approvals => Value::from(minijinja::value::Serde(approvals)) };
        self.env
            .get_template(APPROVALS)?
            .render(minijinja::context! { report => report })
    }

    fn render_view(&self, view: &View) -> Result<String, Error> {
        self.env
            .get_template(&self.name)?
            .render(minijinja::context! { report => Value::from(minijinja::value::Serde(view)) })
    }

    /// Render `evidence` within `max_chars`: lists are cut ("and N more") and excerpts
    /// shortened step by step until it fits; as a last resort the text is cut at a line
    /// and its open blocks closed.
    pub fn render(&self, evidence: &Evidence, max_chars: usize) -> Result<String, Error> {
        self.fit(evidence, max_chars).map(|f| f.text)
    }

    /// [`Template::render`], saying whether the report had to show less than it does
    /// with room to spare.
    pub fn fit(&self, evidence: &Evidence, max_chars: usize) -> Result<Fitted, Error> {
        let mut last = String::new();
        for (rung, limits) in Limits::LADDER.into_iter().enumerate() {
            last = self.render_view(&View::new(evidence, limits))?;
            if utf16_len(&last) <= max_chars {
                return Ok(Fitted {
                    text: last,
                    shortened: rung > 0,
                });
            }
        }
        Ok(Fitted {
            text: cut(&last, max_chars),
            shortened: true,
        })
    }
}

/// A report rendered within a size.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub text: String,
    /// Lists were cut shorter or excerpts shortened to fit, or the text was cut.
    pub shortened: bool,
}

/// Length as GitHub counts it.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

const CUT_NOTE: &str = "\n\n**The report was cut here to stay under GitHub's comment size limit; the evidence bundle (JSON) has everything.**\n";

/// Cut `text` at a line boundary so that it, the closers of whatever block is open,
/// and a note fit in `max_chars`.
fn cut(text: &str, max_chars: usize) -> String {
    let reserve = utf16_len(CUT_NOTE) + 64;
    let budget = max_chars.saturating_sub(reserve);
    let mut out = String::new();
    let mut used = 0;
    let mut fence: Option<String> = None;
    let mut details = 0usize;
    for line in text.split_inclusive('\n') {
        let n = utf16_len(line);
        let closers = fence.as_ref().map_or(0, |f| f.len() + 1) + details * 11;
        if used + n + closers > budget {
            break;
        }
        used += n;
        out.push_str(line);
        let trimmed = line.trim();
        match &fence {
            Some(f) if trimmed == f.as_str() => fence = None,
            Some(_) => {}
            None if trimmed.starts_with("```") => {
                fence = Some(trimmed.chars().take_while(|&c| c == '`').collect());
            }
            None => {
                details += trimmed.matches("<details").count();
                details = details.saturating_sub(trimmed.matches("</details>").count());
            }
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    if let Some(f) = fence {
        out.push_str(&f);
        out.push('\n');
    }
    for _ in 0..details {
        out.push_str("</details>\n");
    }
    out.push_str(CUT_NOTE);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_closes_what_it_leaves_open() {
        let text = format!(
            "# r\n<details><summary>x</summary>\n\n```diff\n{}```\n</details>\n",
            "+ line\n".repeat(1000)
        );
        let out = cut(&text, 2000);
        assert!(utf16_len(&out) <= 2000, "{}", utf16_len(&out));
        assert!(out.contains("```\n</details>\n"), "{out}");
        assert!(out.ends_with(CUT_NOTE));
    }

    #[test]
    fn the_builtin_template_compiles() {
        let _ = Template::builtin();
    }
}
