//! Canary metrics and the check against the thresholds declared in advance.
//!
//! Input, one of:
//! - JSON Lines, one request a line: `{"at": "2026-01-07T09:12:00Z", "version": "4",
//!   "segment": "intent/refund", "fallback": false, "escalated": true, "corrected": false}`;
//! - JSON Lines of counts, `at` the start of the period counted: `{"at": …, "version":
//!   "4", "segment": "intent/refund", "requests": 1200, "fallbacks": 30, "escalations":
//!   12, "corrections": 4}`;
//! - CSV (RFC 4180, quoted fields) with a header naming either set of columns (`.csv`).
//!
//! Every row carries `at` (RFC 3339); only rows since the canary's stage began count.
//! An unknown field is an error naming the nearest valid one. A leading UTF-8 byte order
//! mark is skipped. Bad lines are reported with their line number; the others still
//! count (and a file with bad lines never advances a rollout).

use serde::Serialize;
use serde_json::Value;
use statrs::distribution::{Binomial, DiscreteCDF, Hypergeometric};

use super::Release;
use crate::artifact::suite::json_line;
use crate::diag::{Diagnostics, Pos, did_you_mean};

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

/// One row of a metrics file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Where it is written (1-based line).
    pub line: usize,
    pub at: jiff::Timestamp,
    /// As written; a number and the same number as text are the same version.
    pub version: String,
    pub segment: String,
    pub counts: Counts,
}

/// The rows of a metrics file, in order.
pub type Table = Vec<Row>;

const REQUEST_FIELDS: [&str; 6] = [
    "at",
    "version",
    "segment",
    "fallback",
    "escalated",
    "corrected",
];
const COUNT_FIELDS: [&str; 7] = [
    "at",
    "version",
    "segment",
    "requests",
    "fallbacks",
    "escalations",
    "corrections",
];

/// Read metrics from `text` (named `path` in problems). CSV when `path` ends in `.csv`.
pub fn parse(path: &str, text: &str) -> (Table, Diagnostics) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut table = Table::new();
    let mut problems = Diagnostics::default();
    let mut add = |row: Result<Row, (Pos, String)>| match row {
        Ok(row) => table.push(row),
        Err((pos, message)) => problems.push(path, pos, message),
    };
    if path.ends_with(".csv") {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let columns: Vec<String> = match reader.headers() {
            Ok(h) => h.iter().map(str::to_lowercase).collect(),
            Err(e) => {
                add(Err((csv_pos(&e, 1), csv_message(&e))));
                return (table, problems);
            }
        };
        for record in reader.records() {
            match record {
                Ok(record) => {
                    let line = record.position().map_or(0, |p| p.line() as usize);
                    let object: serde_json::Map<String, Value> = columns
                        .iter()
                        .zip(record.iter())
                        .map(|(c, v)| (c.clone(), csv_value(v)))
                        .collect();
                    add(row_of(line, &Value::Object(object))
                        .map_err(|message| (Pos::new(line, 1), message)));
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line() as usize);
                    add(Err((csv_pos(&e, line), csv_message(&e))));
                }
            }
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row = json_line(i + 1, line, "one request's metrics")
                .and_then(|v| row_of(i + 1, &v).map_err(|message| (Pos::new(i + 1, 1), message)));
            add(row);
        }
    }
    (table, problems)
}

fn csv_pos(e: &csv::Error, line: usize) -> Pos {
    Pos::new(e.position().map_or(line, |p| p.line() as usize).max(1), 1)
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} columns, got {len}"),
        _ => format!("invalid CSV: {e}"),
    }
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
fn row_of(line: usize, v: &Value) -> Result<Row, String> {
    let counted = v.get("requests").is_some();
    let fields: &[&str] = if counted {
        &COUNT_FIELDS
    } else {
        &REQUEST_FIELDS
    };
    if let Some(map) = v.as_object() {
        for key in map.keys() {
            if !fields.contains(&key.as_str()) {
                let all = REQUEST_FIELDS.iter().chain(&COUNT_FIELDS).copied();
                return Err(format!("unknown field `{key}`{}", did_you_mean(key, all)));
            }
        }
    }
    let text = |key: &str| -> Result<String, String> {
        match &v[key] {
            Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Value::Number(n) if n.is_u64() => Ok(n.to_string()),
            Value::Null => Err(format!("missing `{key}`")),
            _ => Err(format!("`{key}` must be a string or a whole number")),
        }
    };
    let version = text("version")?;
    let segment = text("segment")?;
    let at = match &v["at"] {
        Value::Null => {
            return Err(
                "missing `at` (RFC 3339, e.g. 2026-01-07T09:12:00Z): rows without a time cannot be placed in the canary's stage"
                    .into(),
            );
        }
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .map_err(|e| format!("`at` is not an RFC 3339 time: {e}"))?,
        _ => return Err("`at` must be an RFC 3339 time, as text".into()),
    };
    let counts = if counted {
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
    Ok(Row {
        line,
        at,
        version,
        segment,
        counts,
    })
}

/// The one-sided significance level of the exact tests: a rate over its threshold is a
/// breach only when chance explains it less than 5% of the time.
pub const ALPHA: f64 = 0.05;

/// What the check decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Within every threshold with enough samples: may advance.
    Healthy { counts: Counts, stable: Counts },
    /// Too few samples to advance, or a rate over its threshold on too little evidence
    /// to call a breach (`watching` says which).
    Hold {
        counts: Counts,
        stable: Counts,
        needed: u64,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        watching: Vec<String>,
    },
    /// A threshold broken, beyond chance and worse than stable: freeze and route
    /// everyone to stable (once `failure_limit` is used up).
    Breach {
        counts: Counts,
        stable: Counts,
        reasons: Vec<String>,
    },
}

/// A decision, and the rows that could not count (line, problem).
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub decision: Decision,
    pub problems: Vec<(usize, String)>,
}

/// Hold the canary's counts (its version, in the segments it serves, since its stage
/// began) to the thresholds. A rate over its threshold is a breach only with evidence:
/// at least `min_breach_samples` canary requests, an exact one-sided binomial test that
/// the rate is over the threshold (p < [`ALPHA`]), and, when stable has
/// `min_breach_samples` requests in the same segments and window, a one-sided Fisher
/// exact test that the canary is worse than stable (p < [`ALPHA`]). Otherwise it holds.
/// Rows naming a version the artifact never had are problems, not silently ignored.
pub fn check(release: &Release, rows: &Table) -> Option<Checked> {
    check_with(release, rows, &[])
}

/// A user-defined rate (`prometheus.custom` in the runtime config): its outcomes among
/// the canary's requests and among stable's, in the segments the canary serves and
/// since its stage began; its denominators are the requests of the [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    pub name: String,
    pub canary: u64,
    pub stable: u64,
    pub max_rate: f64,
}

/// [`check`], with user-defined rates held to the same rules as the built-in three.
pub fn check_with(release: &Release, rows: &Table, extra: &[Extra]) -> Option<Checked> {
    let canary = release.canary.as_ref()?;
    let since = canary
        .since
        .parse::<jiff::Timestamp>()
        .unwrap_or(jiff::Timestamp::MIN);
    let canary_version = canary.version.text();
    let stable_version = release.stable.version.text();
    let known = |v: &str| {
        v == canary_version
            || v == stable_version
            || release.history.iter().any(|h| h.version.text() == v)
    };
    // Compiled once: a metrics file may hold a row per request.
    let served = release.canary_segments();
    let mut problems = Vec::new();
    let mut counts = Counts::default();
    let mut stable = Counts::default();
    for row in rows {
        if !known(&row.version) {
            problems.push((
                row.line,
                format!(
                    "version `{}` is not one this artifact has had (canary {canary_version}, stable {stable_version})",
                    row.version
                ),
            ));
            continue;
        }
        if row.at < since || !served.matches(&row.segment) {
            continue;
        }
        if row.version == canary_version {
            counts.add(row.counts);
        } else if row.version == stable_version {
            stable.add(row.counts);
        }
    }
    let t = &release.thresholds;
    let mut reasons = Vec::new();
    let mut watching = Vec::new();
    let built_in = [
        (
            "fallback rate".to_string(),
            counts.fallbacks,
            stable.fallbacks,
            t.max_fallback_rate,
        ),
        (
            "escalation rate".to_string(),
            counts.escalations,
            stable.escalations,
            t.max_escalation_rate,
        ),
        (
            "manual-correction rate".to_string(),
            counts.corrections,
            stable.corrections,
            t.max_manual_correction_rate,
        ),
    ];
    let custom = extra
        .iter()
        .map(|e| (format!("{} rate", e.name), e.canary, e.stable, e.max_rate));
    for (what, k, ks, max) in built_in.into_iter().chain(custom) {
        let n = counts.requests;
        if n == 0 || (k as f64 / n as f64) <= max {
            continue;
        }
        let over = format!("{what} {} over {:.1}%", share(k, n), max * 100.0);
        let p_over = over_threshold(k, n, max);
        let p_worse = (stable.requests >= t.min_breach_samples)
            .then(|| worse_than_stable(k, n, ks, stable.requests));
        let compared = match p_worse {
            Some(p) => format!("stable {} (p = {p:.3})", share(ks, stable.requests)),
            None => format!(
                "stable has {} of the {} requests needed to compare",
                stable.requests, t.min_breach_samples
            ),
        };
        if n >= t.min_breach_samples && p_over < ALPHA && p_worse.is_none_or(|p| p < ALPHA) {
            reasons.push(format!("{over} (p = {p_over:.3}), {compared}"));
        } else {
            watching.push(format!(
                "{over}, not yet evidence of a breach (p = {p_over:.3}, {} of the {} requests needed; {compared})",
                n, t.min_breach_samples
            ));
        }
    }
    let needed = *t.min_samples.get(canary.stage);
    let decision = if !reasons.is_empty() {
        Decision::Breach {
            counts,
            stable,
            reasons,
        }
    } else if counts.requests < needed || !watching.is_empty() {
        Decision::Hold {
            counts,
            stable,
            needed,
            watching,
        }
    } else {
        Decision::Healthy { counts, stable }
    };
    Some(Checked { decision, problems })
}

/// `k` of `n` as a percentage, with the counts.
fn share(k: u64, n: u64) -> String {
    if n == 0 {
        return "– (0 requests)".into();
    }
    format!("{:.1}% ({k} of {n})", k as f64 * 100.0 / n as f64)
}

/// P(X ≥ k) for X ~ Binomial(n, max): how often a canary whose true rate is the
/// threshold would show `k` or more of `n`.
fn over_threshold(k: u64, n: u64, max: f64) -> f64 {
    match (k, Binomial::new(max.clamp(0.0, 1.0), n)) {
        (0, _) => 1.0,
        (_, Ok(b)) => b.sf(k - 1),
        (_, Err(_)) => 1.0,
    }
}

/// One-sided Fisher exact test: P(canary failures ≥ `k`) given the failures of both
/// (`k` of `n` canary, `ks` of `ns` stable) and the sizes, under no difference.
fn worse_than_stable(k: u64, n: u64, ks: u64, ns: u64) -> f64 {
    match (k, Hypergeometric::new(n + ns, k + ks, n)) {
        (0, _) => 1.0,
        (_, Ok(h)) => h.sf(k - 1),
        (_, Err(_)) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: &str = "2026-01-07T10:00:00Z";

    fn release() -> Release {
        crate::rollout::started()
            .artifacts
            .remove("a")
            .expect("there")
    }

    fn sum(table: &Table, version: &str) -> Counts {
        let mut c = Counts::default();
        for row in table.iter().filter(|r| r.version == version) {
            c.add(row.counts);
        }
        c
    }

    #[test]
    fn reads_all_three_forms_and_reports_bad_lines() {
        let jsonl = format!(
            r#"{{"at": "{AT}", "version": "4", "segment": "internal", "fallback": true}}
{{"at": "{AT}", "version": "4", "segment": "internal", "escalated": false}}
not json
{{"at": "{AT}", "version": "4", "segment": "internal", "requests": 10, "fallbacks": 1, "corrections": 11}}
{{"at": "{AT}", "version": 4, "segment": "internal", "requests": 8, "escalations": 2}}
"#
        );
        let (table, problems) = parse("m.jsonl", &jsonl);
        assert_eq!(
            sum(&table, "4"),
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

        let csv = format!(
            "at,version,segment,fallback,escalated,corrected\n{AT},4,internal,true,false,0\n{AT},4,internal,false\n"
        );
        let (table, problems) = parse("m.csv", &csv);
        assert_eq!(sum(&table, "4").fallbacks, 1);
        assert!(
            problems
                .to_string()
                .contains("m.csv:3:1: expected 6 columns, got 4"),
            "{problems}"
        );
    }

    /// Misspelt fields were ignored: 60 rows of `"fellback": true` counted healthy.
    #[test]
    fn an_unknown_field_is_an_error_with_the_nearest_name() {
        let line =
            format!(r#"{{"at": "{AT}", "version": "4", "segment": "internal", "fellback": true}}"#);
        let (table, problems) = parse("m.jsonl", &line);
        assert!(table.is_empty());
        assert_eq!(
            problems.to_string(),
            "m.jsonl:1:1: unknown field `fellback`, did you mean `fallback`?"
        );
    }

    /// A byte order mark (Excel's CSV export) hid the header, and with it the rows.
    #[test]
    fn a_byte_order_mark_is_skipped() {
        for (path, text) in [
            (
                "m.csv",
                format!("\u{feff}at,version,segment,fallback\n{AT},4,internal,true\n"),
            ),
            (
                "m.jsonl",
                format!(
                    "\u{feff}{{\"at\": \"{AT}\", \"version\": \"4\", \"segment\": \"internal\", \"fallback\": true}}\n"
                ),
            ),
        ] {
            let (table, problems) = parse(path, &text);
            assert!(problems.is_empty(), "{path}: {problems}");
            assert_eq!(sum(&table, "4").fallbacks, 1, "{path}");
        }
    }

    /// `"intent/refund, EU"` split at the comma inside quotes.
    #[test]
    fn csv_cells_may_quote_commas() {
        let csv = format!("at,version,segment,fallback\n{AT},4,\"intent/refund, EU\",true\n");
        let (table, problems) = parse("m.csv", &csv);
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(table[0].segment, "intent/refund, EU");
    }

    #[test]
    fn rows_without_a_time_are_errors() {
        let (_, problems) = parse(
            "m.jsonl",
            r#"{"version": "4", "segment": "internal", "fallback": true}"#,
        );
        assert!(
            problems
                .to_string()
                .starts_with("m.jsonl:1:1: missing `at`"),
            "{problems}"
        );
    }

    fn rows(version: &str, at: &str, requests: u64, fallbacks: u64) -> Row {
        Row {
            line: 1,
            at: at.parse().expect("time"),
            version: version.into(),
            segment: "internal".into(),
            counts: Counts {
                requests,
                fallbacks,
                ..Counts::default()
            },
        }
    }

    fn decide(table: &[Row]) -> Decision {
        check(&release(), &table.to_vec()).expect("canary").decision
    }

    #[test]
    fn breach_hold_healthy() {
        // Stable's own failures in the same window: the canary is no worse.
        assert!(matches!(
            decide(&[rows("4", AT, 100, 12), rows("3", AT, 1000, 120)]),
            Decision::Hold { .. }
        ));
        // Worse than the threshold and than stable: a breach.
        assert!(matches!(
            decide(&[rows("4", AT, 100, 12), rows("3", AT, 1000, 10)]),
            Decision::Breach { .. }
        ));
        assert!(matches!(
            decide(&[rows("4", AT, 10, 0)]),
            Decision::Hold { needed: 50, .. }
        ));
        assert!(matches!(
            decide(&[rows("4", AT, 60, 2)]),
            Decision::Healthy { .. }
        ));
    }

    /// 1 fallback in 1 request was `BREACH 100%`; 2 in the first 20 of a healthy 3.3%
    /// canary froze it. Neither is evidence.
    #[test]
    fn too_little_evidence_holds() {
        for (n, k) in [(1, 1), (20, 2), (5, 3)] {
            let d = decide(&[rows("4", AT, n, k), rows("3", AT, 1000, 30)]);
            assert!(
                matches!(&d, Decision::Hold { watching, .. } if !watching.is_empty()),
                "{k} of {n}: {d:?}"
            );
        }
    }

    /// A user-defined rate (from Prometheus) is held to its threshold by the same tests.
    #[test]
    fn user_defined_rates_follow_the_same_rules() {
        let table = vec![rows("4", AT, 100, 0), rows("3", AT, 1000, 0)];
        let judge = |canary, stable| {
            let extra = [Extra {
                name: "thumbs_down".into(),
                canary,
                stable,
                max_rate: 0.05,
            }];
            check_with(&release(), &table, &extra)
                .expect("canary")
                .decision
        };
        assert!(matches!(judge(2, 20), Decision::Healthy { .. }));
        assert!(
            matches!(&judge(25, 20), Decision::Breach { reasons, .. } if reasons[0].starts_with("thumbs_down rate 25.0% (25 of 100) over 5.0%"))
        );
        // As bad as stable: not the canary's doing.
        assert!(matches!(judge(12, 120), Decision::Hold { .. }));
    }

    /// `canary.since` was written and never read: rows from before the stage counted.
    #[test]
    fn rows_before_the_stage_began_do_not_count() {
        let d = decide(&[
            rows("4", "2026-01-07T08:59:59Z", 100, 100),
            rows("4", AT, 60, 0),
        ]);
        assert!(
            matches!(d, Decision::Healthy { counts, .. } if counts.requests == 60),
            "{d:?}"
        );
    }

    /// `"v4"` against version 4 silently matched nothing.
    #[test]
    fn a_version_the_artifact_never_had_is_a_problem() {
        let checked = check(&release(), &vec![rows("v4", AT, 100, 100)]).expect("canary");
        assert_eq!(checked.problems.len(), 1);
        assert!(checked.problems[0].1.contains("version `v4` is not one"));
    }
}
