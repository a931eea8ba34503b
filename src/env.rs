//! The one place that reads the process environment, into a typed context.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use crate::secret::Secret;

/// What promptgate takes from its environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `PROMPTGATE_LOG`, a tracing filter such as `debug` or `promptgate=trace`.
    pub log_filter: Option<String>,
    /// `NO_COLOR` is set.
    pub no_color: bool,
    /// `CI` is set: no interactive output.
    pub ci: bool,
    /// Where answers are cached: `PROMPTGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/promptgate`,
    /// else `~/.cache/promptgate`.
    pub cache_dir: Option<PathBuf>,
    /// Who makes changes to release files, for the audit log: `PROMPTGATE_ACTOR`, else
    /// `GITHUB_ACTOR` (in a workflow), else `USER`.
    pub actor: Option<String>,
    /// `PROMPTGATE_RETRY_BASE_MS`, the first wait between retries (read by
    /// [`crate::retry::base_setting`] where a client is built).
    pub retry_base_ms: Option<String>,
    /// Where temporary files go when the runner names no place (`TMPDIR`, else the
    /// system's).
    pub temp_dir: PathBuf,
    /// Ordinary values read by name: the runner's `GITHUB_*` and `RUNNER_*` variables,
    /// the action's `INPUT_*`, promptgate's own settings.
    pub vars: Vars,
    /// Variables a config may name as holding a credential (`api_key_env`), read once
    /// here; which ones are needed is known only once the config is read. The action's
    /// token input is read here too.
    pub secrets: Secrets,
}

impl Env {
    #[allow(clippy::disallowed_methods)]
    pub fn read() -> Self {
        let vars: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        Env::from_vars(vars)
    }

    /// The environment as if `vars` were the process's variables.
    pub fn from_vars(mut vars: HashMap<String, String>) -> Self {
        let cache_dir = vars
            .get("PROMPTGATE_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                vars.get("XDG_CACHE_HOME")
                    .map(|d| PathBuf::from(d).join("promptgate"))
            })
            .or_else(|| {
                vars.get("HOME")
                    .map(|h| PathBuf::from(h).join(".cache").join("promptgate"))
            });
        let actor = ["PROMPTGATE_ACTOR", "GITHUB_ACTOR", "USER"]
            .iter()
            .find_map(|k| vars.get(*k).cloned());
        let temp_dir = vars
            .get("TMPDIR")
            .map_or_else(std::env::temp_dir, PathBuf::from);
        Env {
            actor,
            temp_dir,
            log_filter: vars.remove("PROMPTGATE_LOG"),
            retry_base_ms: vars.get("PROMPTGATE_RETRY_BASE_MS").cloned(),
            no_color: vars.contains_key("NO_COLOR"),
            ci: vars.get("CI").is_some_and(|v| v != "false" && v != "0"),
            cache_dir,
            secrets: Secrets(
                vars.iter()
                    .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
                    .collect(),
            ),
            vars: Vars(vars),
        }
    }
}

/// Environment variables by name, as plain values. Any of them may hold a credential
/// (the runner passes inputs, token included, as variables), so `Debug` shows names only.
#[derive(Clone, Default)]
pub struct Vars(HashMap<String, String>);

impl Vars {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vars({} variables)", self.0.len())
    }
}

/// Environment variables by name, each held as a [`Secret`]; `Debug` shows names only.
#[derive(Clone, Default)]
pub struct Secrets(HashMap<String, Secret>);

impl Secrets {
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name)
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} variables)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_values_are_plain_and_nothing_shows_in_debug() {
        let env = Env::from_vars(HashMap::from([
            ("GITHUB_SHA".to_string(), "abc123".to_string()),
            (
                "OPENAI_API_KEY".to_string(),
                "sk-test-0123456789".to_string(),
            ),
        ]));
        assert_eq!(env.vars.get("GITHUB_SHA"), Some("abc123"));
        assert_eq!(
            env.secrets.get("OPENAI_API_KEY").map(Secret::expose),
            Some("sk-test-0123456789")
        );
        let shown = format!("{env:?}");
        assert!(
            !shown.contains("sk-test") && !shown.contains("abc123"),
            "{shown}"
        );
    }
}
