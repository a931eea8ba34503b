//! Base against head: the same cases answered by both versions of an artifact, compared
//! per segment. Pure: runs in, [`Comparison`] out.

pub mod artifact;
pub mod stats;

use std::collections::{BTreeMap, HashMap};

use globset::GlobSet;
use serde::Serialize;

use crate::eval::assertions::Verdict;
use crate::eval::assertions::{is_refusal, parse_json, word_count};
use crate::eval::result::{ArtifactRun, CaseResult, Outcome, Sample, Spend};

/// Pseudo-segment holding every case.
pub const ALL: &str = "all cases";

/// One segment's pass rates on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentRow {
    pub name: String,
    /// Declared critical in a suite or matching `gate.critical_segments`.
    pub critical: bool,
    /// Cases in the segment.
    pub cases: usize,
    /// Cases evaluated on both sides (the rest errored on one side at least).
    pub paired: usize,
    pub errors: usize,
    pub base_passed: usize,
    pub head_passed: usize,
    pub base_rate: Option<f64>,
    pub head_rate: Option<f64>,
    /// Head rate minus base rate.
    pub delta: Option<f64>,
    pub pass_to_fail: usize,
    pub fail_to_pass: usize,
    /// McNemar's exact test on the flips.
    pub p_value: f64,
    pub beyond_noise: bool,
    /// Mean share of samples that passed per case (differs from the rate with repeats).
    pub base_pass_fraction: Option<f64>,
    pub head_pass_fraction: Option<f64>,
}

/// One side's samples of a case, as counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Passes {
    pub passed: u32,
    pub samples: u32,
}

/// A case whose outcome differs between base and head.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flip {
    pub id: String,
    pub segments: Vec<String>,
    pub file: String,
    pub line: usize,
    pub critical: bool,
    /// Added by the pull request.
    pub new: bool,
    /// `None` for an artifact the pull request added.
    pub base: Option<Passes>,
    pub head: Passes,
    /// `assertion: reason` for every assertion that failed on the failing side.
    pub failed: Vec<String>,
    pub base_text: Option<String>,
    pub head_text: String,
}

/// A case outside the paired comparison: new, deleted, errored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseNote {
    pub id: String,
    pub segments: Vec<String>,
    pub file: String,
    pub line: usize,
    pub base: Option<Outcome>,
    pub head: Option<Outcome>,
    /// Why a side could not be evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Cost and speed of one side over the cases both sides answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub conversations: usize,
    pub requests: u64,
    #[serde(flatten)]
    pub spend: Spend,
    /// What a user would notice.
    pub refusal_rate: Option<f64>,
    pub mean_words: Option<f64>,
    pub json_valid_rate: Option<f64>,
}

impl Figures {
    fn of<'a>(samples: impl Iterator<Item = &'a Sample>) -> Figures {
        let samples: Vec<&Sample> = samples.filter(|s| s.outcome != Outcome::Error).collect();
        let n = samples.len();
        let share = |f: &dyn Fn(&Sample) -> bool| {
            (n > 0).then(|| samples.iter().filter(|s| f(s)).count() as f64 / n as f64)
        };
        Figures {
            conversations: n,
            requests: samples.iter().map(|s| u64::from(s.requests)).sum(),
            spend: Spend::of(&samples),
            refusal_rate: share(&|s| is_refusal(&s.text)),
            mean_words: (n > 0).then(|| {
                samples.iter().map(|s| word_count(&s.text)).sum::<usize>() as f64 / n as f64
            }),
            json_valid_rate: share(&|s| parse_json(&s.text).is_some()),
        }
    }

    /// Tokens per conversation, the cost measure when there is no price.
    pub fn tokens_per_conversation(&self) -> Option<f64> {
        (self.conversations > 0).then(|| {
            (self.spend.input_tokens + self.spend.output_tokens) as f64 / self.conversations as f64
        })
    }
}

/// Relative change from `base` to `head`: 0.2 is 20% more. `None` without both, or
/// from zero.
pub fn relative(base: Option<f64>, head: Option<f64>) -> Option<f64> {
    match (base, head) {
        (Some(b), Some(h)) if b > 0.0 => Some(h / b - 1.0),
        _ => None,
    }
}

/// A case whose tool calls came in a different order or set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequenceChange {
    pub id: String,
    pub base: Vec<String>,
    pub head: Vec<String>,
}

/// The comparison of one artifact's two versions on the head's eval set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Whether there was a base version to compare with (not for added artifacts).
    pub has_base: bool,
    pub repeats: u32,
    pub overall: SegmentRow,
    pub segments: Vec<SegmentRow>,
    /// Pass → fail, most serious first.
    pub regressions: Vec<Flip>,
    /// Fail → pass.
    pub improvements: Vec<Flip>,
    /// Cases passing on some samples and failing on others, on either side.
    pub unstable: Vec<Flip>,
    /// Failing cases of an artifact the pull request added (there is no base to regress
    /// from), most serious first.
    pub failures: Vec<Flip>,
    /// Cases the pull request added (answered by both versions all the same).
    pub new_cases: Vec<CaseNote>,
    /// Cases the pull request removed, with how the base version did on them.
    pub deleted_cases: Vec<CaseNote>,
    /// Cases that could not be evaluated on some side.
    pub errored: Vec<CaseNote>,
    /// Errored cases over all cases.
    pub error_rate: f64,
    pub base: Figures,
    pub head: Figures,
    pub tool_sequence_changes: Vec<SequenceChange>,
}

/// What to compare: the runs of both versions, and which cases the pull request added
/// or removed.
pub struct RunPair<'a> {
    /// The base version, run on the head's cases and on the cases the PR deleted.
    pub base: Option<&'a ArtifactRun>,
    /// The head version, run on the head's cases.
    pub head: &'a ArtifactRun,
    /// Ids of the cases in the base's eval set.
    pub base_case_ids: &'a [String],
    /// `gate.critical_segments`.
    pub critical: &'a GlobSet,
}

fn passes(case: &CaseResult) -> Passes {
    Passes {
        passed: case.passes,
        samples: case.samples.len() as u32,
    }
}

fn first_error(case: &CaseResult) -> Option<String> {
    case.samples.iter().find_map(|s| s.error.clone())
}

fn failed_assertions(case: &CaseResult) -> Vec<String> {
    let sample = case
        .samples
        .iter()
        .find(|s| s.outcome == Outcome::Fail)
        .or(case.samples.first());
    sample.map_or_else(Vec::new, |s| {
        s.assertions
            .iter()
            .filter_map(|a| match &a.verdict {
                // A reason opens with its assertion's type already.
                Verdict::Fail { reason } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    })
}

/// The text a reader should see for a side: a failing sample's if there is one.
fn shown_text(case: &CaseResult) -> String {
    case.samples
        .iter()
        .find(|s| s.outcome == Outcome::Fail)
        .or(case.samples.first())
        .map_or_else(String::new, |s| s.text.clone())
}

fn tool_names(case: &CaseResult) -> Vec<String> {
    case.samples.first().map_or_else(Vec::new, |s| {
        s.tool_calls.iter().map(|c| c.name.clone()).collect()
    })
}

#[derive(Default)]
struct Acc {
    critical: bool,
    cases: usize,
    paired: usize,
    errors: usize,
    base_passed: usize,
    head_passed: usize,
    head_judged: usize,
    p2f: u64,
    f2p: u64,
    base_fraction: f64,
    head_fraction: f64,
}

impl Acc {
    fn row(&self, name: &str, has_base: bool) -> SegmentRow {
        let rate = |passed: usize, n: usize| (n > 0).then(|| passed as f64 / n as f64);
        // Without a base, the head's rate is over every case it evaluated.
        let head_n = if has_base {
            self.paired
        } else {
            self.head_judged
        };
        let base_rate = if has_base {
            rate(self.base_passed, self.paired)
        } else {
            None
        };
        let head_rate = rate(self.head_passed, head_n);
        let p_value = stats::mcnemar_exact(self.p2f, self.f2p);
        SegmentRow {
            name: name.to_string(),
            critical: self.critical,
            cases: self.cases,
            paired: self.paired,
            errors: self.errors,
            base_passed: self.base_passed,
            head_passed: self.head_passed,
            base_rate,
            head_rate,
            delta: base_rate.zip(head_rate).map(|(b, h)| h - b),
            pass_to_fail: self.p2f as usize,
            fail_to_pass: self.f2p as usize,
            p_value,
            beyond_noise: p_value < stats::ALPHA,
            base_pass_fraction: (has_base && self.paired > 0)
                .then(|| self.base_fraction / self.paired as f64),
            head_pass_fraction: (head_n > 0).then(|| self.head_fraction / head_n as f64),
        }
    }
}

fn fraction(p: Passes) -> f64 {
    if p.samples == 0 {
        0.0
    } else {
        f64::from(p.passed) / f64::from(p.samples)
    }
}

/// Compare the two sides case by case.
pub fn compare(sides: &RunPair) -> Comparison {
    let head = sides.head;
    let base_cases: HashMap<&str, &CaseResult> = sides
        .base
        .map(|b| b.cases.iter().map(|c| (c.id.as_str(), c)).collect())
        .unwrap_or_default();
    let has_base = sides.base.is_some();
    let base_ids: std::collections::HashSet<&str> =
        sides.base_case_ids.iter().map(String::as_str).collect();
    let declared = |name: &str| {
        head.segments.get(name).is_some_and(|s| s.critical)
            || sides
                .base
                .and_then(|b| b.segments.get(name))
                .is_some_and(|s| s.critical)
            || sides.critical.is_match(name)
    };

    let mut overall = Acc::default();
    let mut segments: BTreeMap<&str, Acc> = BTreeMap::new();
    let (mut regressions, mut improvements) = (Vec::new(), Vec::new());
    let (mut unstable, mut failures) = (Vec::new(), Vec::new());
    let (mut new_cases, mut errored, mut sequences) = (Vec::new(), Vec::new(), Vec::new());
    let (mut base_samples, mut head_samples): (Vec<&Sample>, Vec<&Sample>) = Default::default();

    for case in &head.cases {
        let base_case = base_cases.get(case.id.as_str()).copied();
        let critical = case.segments.iter().any(|s| declared(s));
        let is_new = has_base && !base_ids.contains(case.id.as_str());
        let note = |error: Option<String>| CaseNote {
            id: case.id.clone(),
            segments: case.segments.clone(),
            file: case.file.clone(),
            line: case.line,
            base: base_case.map(|b| b.outcome),
            head: Some(case.outcome),
            error,
        };
        if is_new {
            new_cases.push(note(None));
        }
        let base_error = base_case.is_some_and(|b| b.outcome == Outcome::Error)
            || (has_base && base_case.is_none());
        let errored_here = case.outcome == Outcome::Error || base_error;
        if errored_here {
            let error = first_error(case)
                .or_else(|| base_case.and_then(first_error))
                .or_else(|| Some("the base version has no result for this case".into()));
            errored.push(note(error));
        }
        let flip = |base: Option<&CaseResult>, failing: &CaseResult| Flip {
            id: case.id.clone(),
            segments: case.segments.clone(),
            file: case.file.clone(),
            line: case.line,
            critical,
            new: is_new,
            base: base.map(passes),
            head: passes(case),
            failed: failed_assertions(failing),
            base_text: base.map(shown_text),
            head_text: shown_text(case),
        };
        // Accumulate into the overall row and each of the case's segments.
        let mut accs: Vec<&str> = case.segments.iter().map(String::as_str).collect();
        accs.sort_unstable();
        accs.dedup();
        let apply = |acc: &mut Acc, is_critical: bool| {
            acc.critical |= is_critical;
            acc.cases += 1;
            if errored_here {
                acc.errors += 1;
            }
            if case.outcome != Outcome::Error {
                acc.head_judged += 1;
                if !has_base {
                    acc.head_passed += usize::from(case.outcome == Outcome::Pass);
                    acc.head_fraction += fraction(passes(case));
                }
            }
            if let (Some(b), false) = (base_case, errored_here) {
                acc.paired += 1;
                acc.base_passed += usize::from(b.outcome == Outcome::Pass);
                acc.head_passed += usize::from(case.outcome == Outcome::Pass);
                acc.base_fraction += fraction(passes(b));
                acc.head_fraction += fraction(passes(case));
                match (b.outcome, case.outcome) {
                    (Outcome::Pass, Outcome::Fail) => acc.p2f += 1,
                    (Outcome::Fail, Outcome::Pass) => acc.f2p += 1,
                    _ => {}
                }
            }
        };
        apply(&mut overall, false);
        for name in accs {
            apply(segments.entry(name).or_default(), declared(name));
        }

        if errored_here {
            continue;
        }
        head_samples.extend(&case.samples);
        let Some(b) = base_case else {
            if case.outcome == Outcome::Fail {
                failures.push(flip(None, case));
            }
            continue;
        };
        base_samples.extend(&b.samples);
        match (b.outcome, case.outcome) {
            (Outcome::Pass, Outcome::Fail) => regressions.push(flip(Some(b), case)),
            (Outcome::Fail, Outcome::Pass) => improvements.push(flip(Some(b), b)),
            _ => {
                let mixed = |c: &CaseResult| c.passes > 0 && (c.passes as usize) < c.samples.len();
                if mixed(b) || mixed(case) {
                    let failing = if mixed(case) { case } else { b };
                    unstable.push(flip(Some(b), failing));
                }
            }
        }
        let (bs, hs) = (tool_names(b), tool_names(case));
        if bs != hs {
            sequences.push(SequenceChange {
                id: case.id.clone(),
                base: bs,
                head: hs,
            });
        }
    }

    let head_ids: std::collections::HashSet<&str> =
        head.cases.iter().map(|c| c.id.as_str()).collect();
    let deleted_cases = sides
        .base
        .map(|b| {
            b.cases
                .iter()
                .filter(|c| !head_ids.contains(c.id.as_str()))
                .map(|c| CaseNote {
                    id: c.id.clone(),
                    segments: c.segments.clone(),
                    file: c.file.clone(),
                    line: c.line,
                    base: Some(c.outcome),
                    head: None,
                    error: first_error(c),
                })
                .collect()
        })
        .unwrap_or_default();

    let most_serious_first = |a: &Flip, b: &Flip| {
        (!a.critical, &a.segments, &a.id).cmp(&(!b.critical, &b.segments, &b.id))
    };
    regressions.sort_by(most_serious_first);
    failures.sort_by(most_serious_first);
    let error_rate = if overall.cases == 0 {
        0.0
    } else {
        overall.errors as f64 / overall.cases as f64
    };
    Comparison {
        has_base,
        repeats: head.artifact.repeats,
        overall: overall.row(ALL, has_base),
        segments: segments
            .iter()
            .map(|(name, acc)| acc.row(name, has_base))
            .collect(),
        regressions,
        improvements,
        unstable,
        failures,
        new_cases,
        deleted_cases,
        errored,
        error_rate,
        base: Figures::of(base_samples.into_iter()),
        head: Figures::of(head_samples.into_iter()),
        tool_sequence_changes: sequences,
    }
}
