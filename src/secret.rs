//! Secrets (API keys, tokens): a newtype that never shows its value in `Debug` or
//! `Display`, and a scrubber for text that may echo one back (provider error bodies).

use std::fmt;

/// A credential. Only [`Secret::expose`] gives the value, for the one header that
/// carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `[redacted]`. Keys shorter
    /// than 8 characters are scrubbed too: better an odd report than a leak.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_string();
        }
        text.replace(&self.0, "[redacted]")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_its_value() {
        let key = Secret::new("sk-test-0123456789");
        assert_eq!(format!("{key}"), "[redacted]");
        assert_eq!(format!("{key:?}"), "Secret([redacted])");
        assert_eq!(format!("{:?}", Some(&key)), "Some(Secret([redacted]))");
        assert_eq!(key.expose(), "sk-test-0123456789");
    }

    #[test]
    fn scrubs_echoed_values() {
        let key = Secret::new("sk-test-0123456789");
        assert_eq!(
            key.scrub(r#"{"error":"invalid key sk-test-0123456789"}"#),
            r#"{"error":"invalid key [redacted]"}"#
        );
        assert_eq!(Secret::new("").scrub("text"), "text");
    }
}
