//! The one place that reads the process environment, into a typed context.

/// What promptgate takes from its environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `PROMPTGATE_LOG`, a tracing filter such as `debug` or `promptgate=trace`.
    pub log_filter: Option<String>,
    /// `NO_COLOR` is set.
    pub no_color: bool,
    /// `CI` is set: no interactive output.
    pub ci: bool,
}

impl Env {
    #[allow(clippy::disallowed_methods)]
    pub fn read() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Env {
            log_filter: var("PROMPTGATE_LOG"),
            no_color: var("NO_COLOR").is_some(),
            ci: var("CI").is_some_and(|v| v != "false" && v != "0"),
        }
    }
}
