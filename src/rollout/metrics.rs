//! Canary metrics and the check against the thresholds declared in advance.
//!
//! Input, one of:
//! - JSON Lines, one request a line:
//!   `{"version": "4", "segment": "intent/refund", "fallback": false, "escalated": true, "corrected": false}`;
//! - JSON Lines of counts: `{"version": "4", "segment": "intent/refund", "requests": 1200,
//!   "fallbacks": 30, "escalations": 12, "corrections": 4}`;
//! - CSV with a header naming either set of columns (`.csv` files).
//!
//! Bad lines are reported with their line number; the others still count.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::{Release, segment_matches};
use crate::artifact::suite::json_line;
use crate::diag::{Diagnostics, Pos};

/// Outcome counts of one version in one segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub requests: u64,
    pub fallbacks: u64,
    pub escalations: u64,
    pub corrections: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.requests += o.requests;
        self.fallbacks += o.fallbacks;
        self.escalations += o.escalations;
        self.corrections += o.corrections;
    }
}

/// Counts per (version, segment).
pub type Table = BTreeMap<(String, String), Counts>;

/// Read metrics from `text` (named `path` in problems). CSV when `path` ends in `.csv`.
pub fn parse(path: &str, text: &str) -> (Table, Diagnostics) {
    let mut table = Table::new();
    let mut problems = Diagnostics::default();
    let mut add = |row: Result<(String, String, Counts), (Pos, String)>| match row {
        Ok((version, segment, counts)) => table.entry((version, segment)).or_default().add(counts),
        Err((pos, message)) => problems.push(path, pos, message),
    };
    if path.ends_with(".csv") {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return (table, problems);
        };
        let columns: Vec<String> = header.split(',').map(|c| c.trim().to_lowercase()).collect();
        for (i, line) in lines {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let row = if cells.len() == columns.len() {
                let object: serde_json::Map<String, Value> = columns
                    .iter()
                    .zip(&cells)
                    .map(|(c, v)| (c.clone(), csv_value(v)))
                    .collect();
                row_of(&Value::Object(object))
            } else {
                Err(format!(
                    "expected {} columns, got {}",
                    columns.len(),
                    cells.len()
                ))
            };
            add(row.map_err(|message| (Pos::new(i + 1, 1), message)));
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row = json_line(i + 1, line, "one request's metrics")
                .and_then(|v| row_of(&v).map_err(|message| (Pos::new(i + 1, 1), message)));
            add(row);
        }
    }
    (table, problems)
}

fn csv_value(cell: &str) -> Value {
    match cell.to_lowercase().as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => cell
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(cell.to_string())),
    }
}

/// One line: a request's outcome, or counts.
fn row_of(v: &Value) -> Result<(String, String, Counts), String> {
    let text = |key: &str| -> Result<String, String> {
        match &v[key] {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Null => Err(format!("missing `{key}`")),
            _ => Err(format!("`{key}` must be a string")),
        }
    };
    let version = text("version")?;
    let segment = text("segment")?;
    let counts = if v.get("requests").is_some() {
        let count = |key: &str| -> Result<u64, String> {
            match &v[key] {
                Value::Null => Ok(0),
                n => n
                    .as_u64()
                    .ok_or_else(|| format!("`{key}` must be a whole number")),
            }
        };
        let c = Counts {
            requests: count("requests")?,
            fallbacks: count("fallbacks")?,
            escalations: count("escalations")?,
            corrections: count("corrections")?,
        };
        if c.fallbacks.max(c.escalations).max(c.corrections) > c.requests {
            return Err("more outcomes than `requests`".into());
        }
        c
    } else {
        let flag = |key: &str| -> Result<u64, String> {
            match &v[key] {
                Value::Null => Ok(0),
                Value::Bool(b) => Ok(u64::from(*b)),
                Value::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
                    Ok(n.as_u64().unwrap_or(0))
                }
                _ => Err(format!("`{key}` must be true or false")),
            }
        };
        Counts {
            requests: 1,
            fallbacks: flag("fallback")?,
            escalations: flag("escalated")?,
            corrections: flag("corrected")?,
        }
    };
    Ok((version, segment, counts))
}

/// What the check decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Within every threshold with enough samples: may advance.
    Healthy { counts: Counts },
    /// Within the thresholds so far, too few samples to advance.
    Hold { counts: Counts, needed: u64 },
    /// A threshold broken: freeze and route everyone to stable.
    Breach {
        counts: Counts,
        reasons: Vec<String>,
    },
}

/// Hold the canary's counts (its version, in the segments it serves) to the thresholds.
/// A breach counts as soon as it is seen, whatever the sample size: stopping harm does
/// not wait for statistics.
pub fn check(release: &Release, table: &Table) -> Option<Decision> {
    let canary = release.canary.as_ref()?;
    let version = canary.version.text();
    let mut counts = Counts::default();
    for ((v, segment), c) in table {
        if *v == version && segment_matches(&canary.segments, segment) {
            counts.add(*c);
        }
    }
    let t = &release.thresholds;
    let mut reasons = Vec::new();
    if counts.requests > 0 {
        let rate = |n: u64| n as f64 / counts.requests as f64;
        for (what, n, max) in [
            ("fallback rate", counts.fallbacks, t.max_fallback_rate),
            ("escalation rate", counts.escalations, t.max_escalation_rate),
            (
                "manual-correction rate",
                counts.corrections,
                t.max_manual_correction_rate,
            ),
        ] {
            if rate(n) > max {
                reasons.push(format!(
                    "{what} {:.1}% ({n} of {}) over {:.1}%",
                    rate(n) * 100.0,
                    counts.requests,
                    max * 100.0
                ));
            }
        }
    }
    let needed = *t.min_samples.get(canary.stage);
    Some(if !reasons.is_empty() {
        Decision::Breach { counts, reasons }
    } else if counts.requests < needed {
        Decision::Hold { counts, needed }
    } else {
        Decision::Healthy { counts }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{Pinned, Runtime, start};

    fn release() -> Release {
        let mut rt = Runtime::default();
        let v = |s: &str| Pinned {
            version: crate::artifact::native::Version::Text(s.into()),
            fingerprint: None,
        };
        start(&mut rt, "a", v("4"), Some(v("3")), "t").expect("starts");
        rt.artifacts.remove("a").expect("there")
    }

    #[test]
    fn reads_all_three_forms_and_reports_bad_lines() {
        let jsonl = r#"{"version": "4", "segment": "internal", "fallback": true}
{"version": "4", "segment": "internal", "escalated": false}
not json
{"version": "4", "segment": "internal", "requests": 10, "fallbacks": 1, "corrections": 11}
{"version": 4, "segment": "internal", "requests": 8, "escalations": 2}
"#;
        let (table, problems) = parse("m.jsonl", jsonl);
        let c = table[&("4".to_string(), "internal".to_string())];
        assert_eq!(
            c,
            Counts {
                requests: 10,
                fallbacks: 1,
                escalations: 2,
                corrections: 0
            }
        );
        let text = problems.to_string();
        assert!(
            text.contains("m.jsonl:3:2: invalid JSON: expected ident"),
            "{text}"
        );
        assert!(
            text.contains("m.jsonl:4:1: more outcomes than `requests`"),
            "{text}"
        );

        let csv = "version,segment,fallback,escalated,corrected\n4,internal,true,false,0\n4,internal,false\n";
        let (table, problems) = parse("m.csv", csv);
        assert_eq!(
            table[&("4".to_string(), "internal".to_string())].fallbacks,
            1
        );
        assert!(
            problems
                .to_string()
                .contains("m.csv:3:1: expected 5 columns, got 3")
        );
    }

    #[test]
    fn breach_hold_healthy() {
        let r = release();
        let table = |requests, fallbacks| {
            let mut t = Table::new();
            t.insert(
                ("4".into(), "internal".into()),
                Counts {
                    requests,
                    fallbacks,
                    ..Counts::default()
                },
            );
            // Stable's failures and other segments do not count against the canary.
            t.insert(
                ("3".into(), "internal".into()),
                Counts {
                    requests: 100,
                    fallbacks: 100,
                    ..Counts::default()
                },
            );
            t
        };
        assert!(matches!(
            check(&r, &table(10, 5)),
            Some(Decision::Breach { .. })
        ));
        assert!(matches!(
            check(&r, &table(10, 0)),
            Some(Decision::Hold { needed: 50, .. })
        ));
        assert!(matches!(
            check(&r, &table(60, 2)),
            Some(Decision::Healthy { .. })
        ));
    }
}
