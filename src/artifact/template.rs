//! Message templates: minijinja, strict (an undefined variable is an error, never "").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// Names minijinja provides itself; a template using them needs no variable.
const BUILTINS: [&str; 6] = ["range", "dict", "namespace", "debug", "loop", "self"];

/// Work one rendering may do: a unit per instruction, or per 64 bytes of text made. A
/// prompt comes from the pull request, and without a budget `{% for %}` loops nested
/// in each other, or `'x' * 90000000`, run for hours or fill the memory.
pub const TEMPLATE_FUEL: u64 = 1_000_000;

/// Most text the messages of one case may render to, all together. A prompt is held
/// several times over while its request is out (request, wire body, cache key), and the
/// fuel alone lets each message make 64 MB.
pub const MAX_PROMPT_BYTES: usize = 16 << 20;

/// A sink that counts what a rendering writes and stops it once past `limit`, so a
/// prompt is measured before it is made, and a runaway one never is.
struct Meter {
    written: usize,
    limit: usize,
}

impl std::io::Write for Meter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written = self.written.saturating_add(buf.len());
        if self.written > self.limit {
            return Err(std::io::Error::other("over the limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of `template` rendered with `vars`; past `limit`, the rendering stops and
/// the length returned is over `limit`.
fn measure(
    template: &minijinja::Template<'_, '_>,
    vars: &BTreeMap<String, Value>,
    limit: usize,
) -> Result<usize, TemplateError> {
    let mut meter = Meter { written: 0, limit };
    match template.render_captured_to(minijinja::value::Serde(vars), &mut meter) {
        Ok(_) => Ok(meter.written),
        Err(_) if meter.written > limit => Ok(meter.written),
        Err(e) => Err(to_error(&e)),
    }
}

/// A strict environment with the fuel budget.
fn strict() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env
}

/// One environment for the process: building one registers every builtin filter.
fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(strict)
}

/// Build the environment ahead of the first check.
pub(crate) fn prepare() {
    environment();
}

/// A template that does not compile, with the template line where it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    /// 1-based line inside the template text.
    pub line: usize,
}

fn to_error(e: &minijinja::Error) -> TemplateError {
    let message = if e.kind() == minijinja::ErrorKind::OutOfFuel {
        format!(
            "the template does too much work (over {TEMPLATE_FUEL} steps, or {} MB of text); \
             make its loops and repetitions smaller",
            TEMPLATE_FUEL * 64 / 1_000_000
        )
    } else {
        e.detail()
            .map_or_else(|| e.kind().to_string(), str::to_string)
    };
    TemplateError {
        message,
        line: e.line().unwrap_or(1),
    }
}

/// Compile-check a template. Text without a `{` has no tags, so nothing to compile; and
/// short templates repeat across artifacts (`{{ question }}`), so their outcome is kept.
pub fn check(source: &str) -> Result<(), TemplateError> {
    /// Templates up to this long are remembered, up to this many of them.
    const SHORT: usize = 256;
    const KEPT: usize = 4096;
    static CHECKED: Mutex<BTreeMap<String, Result<(), TemplateError>>> =
        Mutex::new(BTreeMap::new());
    if !source.contains('{') {
        return Ok(());
    }
    let short = source.len() <= SHORT;
    if short
        && let Ok(checked) = CHECKED.lock()
        && let Some(outcome) = checked.get(source)
    {
        return outcome.clone();
    }
    let outcome = environment()
        .template_from_str(source)
        .map(drop)
        .map_err(|e| to_error(&e));
    if short
        && let Ok(mut checked) = CHECKED.lock()
        && checked.len() < KEPT
    {
        checked.insert(source.to_string(), outcome.clone());
    }
    outcome
}

/// Compile-check a template and return the variables it reads from its context.
pub fn variables(source: &str) -> Result<BTreeSet<String>, TemplateError> {
    let env = environment();
    let template = env.template_from_str(source).map_err(|e| to_error(&e))?;
    Ok(template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !BUILTINS.contains(&v.as_str()))
        .collect())
}

/// Render a template with `vars`; a variable it uses but `vars` lacks is an error.
pub fn render(source: &str, vars: &BTreeMap<String, Value>) -> Result<String, TemplateError> {
    let env = environment();
    let template = env.template_from_str(source).map_err(|e| to_error(&e))?;
    template
        .render(minijinja::value::Serde(vars))
        .map_err(|e| to_error(&e))
}

/// An artifact's message templates compiled once, for rendering with many cases.
pub struct Compiled(Environment<'static>);

impl Compiled {
    /// Compile `sources`; the error names the index of the first that does not compile.
    pub fn new(sources: &[&str]) -> Result<Compiled, (usize, TemplateError)> {
        let mut env = strict();
        for (i, source) in sources.iter().enumerate() {
            env.add_template_owned(i.to_string(), source.to_string())
                .map_err(|e| (i, to_error(&e)))?;
        }
        Ok(Compiled(env))
    }

    /// Render template `index` with `vars`, strictly as [`render`] does.
    pub fn render(
        &self,
        index: usize,
        vars: &BTreeMap<String, Value>,
    ) -> Result<String, TemplateError> {
        self.0
            .get_template(&index.to_string())
            .and_then(|t| t.render(minijinja::value::Serde(vars)))
            .map_err(|e| to_error(&e))
    }

    /// [`Compiled::render`]'s length, without making the text: past `limit` the
    /// rendering stops and the length returned is over `limit`.
    pub fn rendered_len(
        &self,
        index: usize,
        vars: &BTreeMap<String, Value>,
        limit: usize,
    ) -> Result<usize, TemplateError> {
        let template = self
            .0
            .get_template(&index.to_string())
            .map_err(|e| to_error(&e))?;
        measure(&template, vars, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variables_and_ignores_locals() -> Result<(), TemplateError> {
        let vars = variables(
            "Hi {{ customer.name }} at {{ company }}.{% for x in items %}{{ x }}{% endfor %}",
        )?;
        assert_eq!(
            vars.into_iter().collect::<Vec<_>>(),
            vec!["company", "customer", "items"]
        );
        Ok(())
    }

    #[test]
    fn reports_syntax_errors_with_their_line() {
        let err = variables("line one\n{{ broken ").expect_err("broken");
        assert_eq!(err.line, 2);
        assert!(!err.message.is_empty());
    }

    #[test]
    fn checks_like_compiling() {
        for source in ["plain text", "{{ x }}", "{% if %}", "a {# open", "{", "}}"] {
            assert_eq!(check(source), variables(source).map(drop), "{source}");
            assert_eq!(check(source), variables(source).map(drop), "{source} again");
        }
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let vars = BTreeMap::new();
        let loops =
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}";
        let huge = "line one\n{{ 'x' * 90000000 }}";
        for (source, line) in [(loops, 1), (huge, 2)] {
            let err = render(source, &vars).expect_err("out of fuel");
            assert_eq!(err.line, line, "{source}");
            assert_eq!(
                err.message,
                "the template does too much work (over 1000000 steps, or 64 MB of text); \
                 make its loops and repetitions smaller"
            );
            let compiled = Compiled::new(&[source]).map_err(|(_, e)| e);
            assert_eq!(compiled.and_then(|c| c.render(0, &vars)), Err(err));
        }
        // A long prompt from long variables is not "too much work".
        let mut vars = BTreeMap::new();
        vars.insert("doc".to_string(), Value::from("word ".repeat(2_000_000)));
        assert_eq!(render("{{ doc }}", &vars).map(|t| t.len()), Ok(10_000_000));
    }

    #[test]
    fn measures_without_making_the_text() -> Result<(), TemplateError> {
        let mut vars = BTreeMap::new();
        vars.insert("doc".to_string(), Value::from("word ".repeat(1000)));
        let source = "Read: {{ doc }}{% for i in range(3) %}!{% endfor %}";
        let runaway = "{{ 'x' * 60000000 }}";
        let compiled = Compiled::new(&[source, runaway, "{{ nobody }}"]).map_err(|(_, e)| e)?;
        assert_eq!(render(source, &vars).map(|t| t.len()), Ok(5_009));
        assert_eq!(compiled.rendered_len(0, &vars, 10_000), Ok(5_009));
        // Past the limit it stops, over the limit, rather than making 60 MB.
        assert!(compiled.rendered_len(1, &vars, 1000)? > 1000);
        // Errors are the rendering's own.
        assert_eq!(
            compiled.rendered_len(2, &vars, 10).map_err(|e| e.message),
            compiled
                .render(2, &vars)
                .map(|t| t.len())
                .map_err(|e| e.message)
        );
        Ok(())
    }

    #[test]
    fn renders_strictly() {
        let mut vars = BTreeMap::new();
        vars.insert("name".to_string(), Value::from("Ada"));
        assert_eq!(render("Hi {{ name }}", &vars), Ok("Hi Ada".to_string()));
        assert!(render("Hi {{ nobody }}", &vars).is_err());
    }
}
