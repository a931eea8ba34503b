//! Base against head: the same cases answered by both versions of an artifact, compared
//! per segment. Pure: runs in, [`Comparison`] out.

pub mod artifact;
pub mod stats;

use std::collections::{BTreeMap, HashMap};

use globset::GlobSet;
use serde::Serialize;

use crate::eval::assertions::Judgement;
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
    /// The drop in pass rate the evidence shows: per case, the base's share of passing
    /// samples minus the head's, over the paired cases, taken from the fresh samples of
    /// a flipped case that was answered again.
    pub drop: Option<f64>,
    /// The largest drop the evidence leaves possible, at 95% confidence.
    pub drop_upper: Option<f64>,
    /// Flipped cases answered again on both sides.
    pub retested: usize,
    /// Of those, cases whose fresh answers fail where the base's pass, beyond noise.
    pub confirmed: usize,
    /// Regressed, held or inconclusive against the allowed drop.
    pub outcome: SegmentOutcome,
    /// The smallest drop this many cases can rule out when nothing changes.
    pub resolution: f64,
    /// Cases needed to rule out a drop of the allowed size.
    pub cases_needed: u64,
}

/// What a segment's evidence says about the allowed drop (`gate.max_segment_drop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegmentOutcome {
    /// The pass rate fell by more than the allowed drop, and noise cannot explain it.
    Regressed,
    /// The evidence rules out a drop larger than the allowed one.
    Held,
    /// Neither: too few cases to rule a drop out, or a drop that noise could explain.
    Inconclusive,
}

/// Confidence behind "held": a drop larger than allowed is ruled out at 95%.
pub const HELD_ALPHA: f64 = 0.05;
/// The chance of blocking on noise alone that one artifact's segments share
/// (Bonferroni over the segments judged).
pub const BLOCK_ALPHA: f64 = 0.01;
/// The bar a re-tested case's fresh answers clear to confirm it got worse (Fisher's
/// exact test, one-sided). A row then needs more confirmed cases than this rate would
/// give by chance among the cases it re-tested.
pub const CASE_ALPHA: f64 = 0.01;

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
    /// The answer shown is a refusal the API marked as one.
    pub base_refusal: bool,
    pub head_refusal: bool,
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
    /// Why a side could not be evaluated (`null` otherwise: a template may read it).
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
            refusal_rate: share(&|s| s.refusal || is_refusal(&s.text)),
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
    /// Cases the head answered but no assertion could judge: every one was skipped,
    /// unknown here, or needs a judge that is not configured.
    pub unjudged: Vec<CaseNote>,
    /// Unjudged cases over the cases the head answered.
    pub unjudged_rate: f64,
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
    /// `gate.max_segment_drop`.
    pub allowed_drop: f64,
}

/// One paired case's evidence about the drop.
#[derive(Debug, Clone, Copy, Default)]
struct Evidence {
    /// Base share of passing samples minus the head's: fresh samples when re-tested.
    difference: f64,
    retested: bool,
    /// Re-tested, and the fresh answers fail where the base's pass beyond noise.
    confirmed: bool,
}

/// Share of passing samples; `None` when there are none or one could not be evaluated.
fn pass_share(samples: &[Sample]) -> Option<(u64, u64)> {
    if samples.is_empty() || samples.iter().any(|s| s.outcome == Outcome::Error) {
        return None;
    }
    let passed = samples
        .iter()
        .filter(|s| s.outcome == Outcome::Pass)
        .count();
    Some((passed as u64, samples.len() as u64))
}

/// The evidence of a case both sides answered; `case_alpha` is the bar a re-tested
/// case's fresh answers must clear to count as confirmed.
fn evidence_of(base: &CaseResult, head: &CaseResult, case_alpha: f64) -> Evidence {
    let share = |(p, n): (u64, u64)| p as f64 / n as f64;
    if let (Some(b), Some(h)) = (
        pass_share(&base.confirmations),
        pass_share(&head.confirmations),
    ) {
        return Evidence {
            difference: share(b) - share(h),
            retested: true,
            confirmed: stats::fisher_fewer(b.0, b.1, h.0, h.1) < case_alpha,
        };
    }
    Evidence {
        difference: fraction(passes(base)) - fraction(passes(head)),
        ..Evidence::default()
    }
}

/// Whether a case is answered again to confirm it: both sides answered, and the share
/// of passing samples differs (with one sample a side: the outcome flipped). The
/// answers the gate has are kept; the fresh ones decide the case's evidence.
pub fn needs_confirmation(base: &CaseResult, head: &CaseResult) -> bool {
    match (pass_share(&base.samples), pass_share(&head.samples)) {
        (Some((bp, bn)), Some((hp, hn))) => bp * hn != hp * bn,
        _ => false,
    }
}

fn passes(case: &CaseResult) -> Passes {
    Passes {
        passed: case.passes,
        samples: case.samples.len() as u32,
    }
}

/// Whether some assertion of the case was decided (passed or failed) on every sample.
fn judged(case: &CaseResult) -> bool {
    case.samples.iter().all(|s| {
        s.assertions
            .iter()
            .any(|a| !matches!(a.verdict, Judgement::Unjudged { .. }))
    })
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
                Judgement::Fail { reason } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    })
}

/// The text a reader should see for a side: a failing sample's if there is one; and
/// whether the API marked it a refusal.
fn shown_text(case: &CaseResult) -> (String, bool) {
    case.samples
        .iter()
        .find(|s| s.outcome == Outcome::Fail)
        .or(case.samples.first())
        .map_or_else(Default::default, |s| (s.text.clone(), s.refusal))
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
    /// Sums over paired cases of the evidence's difference, its positive and negative
    /// parts, and the positive part of the confirmed cases.
    difference: f64,
    worse: f64,
    better: f64,
    confirmed_worse: f64,
    retested: usize,
    confirmed: usize,
}

/// How a row is judged: the allowed drop and the Bonferroni share of the block alpha.
#[derive(Debug, Clone, Copy)]
struct Bar {
    allowed_drop: f64,
    row_alpha: f64,
}

impl Acc {
    /// Judge the row: regressed, held or inconclusive, and how far its cases can see.
    fn judge(&self, bar: Bar) -> (Option<f64>, Option<f64>, SegmentOutcome) {
        let n = self.paired as u64;
        if n == 0 {
            return (None, None, SegmentOutcome::Inconclusive);
        }
        let drop = self.difference / n as f64;
        // The drop is at most the rate at which cases get worse: bound that from above
        // (Clopper–Pearson on the cases that got worse, fractional evidence from repeats
        // and fresh samples rounded up). Cases that got better are not credited: a
        // segment is not held on the strength of noise in its favour.
        let worse = (self.worse - 1e-9).ceil().max(0.0) as u64;
        let drop_upper = stats::rate_upper_bound(worse, n, HELD_ALPHA).max(drop);
        let outcome = if drop > bar.allowed_drop + 1e-12 && self.beyond_noise(bar) {
            SegmentOutcome::Regressed
        } else if drop_upper <= bar.allowed_drop + 1e-12 {
            SegmentOutcome::Held
        } else {
            SegmentOutcome::Inconclusive
        };
        (Some(drop), Some(drop_upper), outcome)
    }

    /// Noise cannot explain the drop. When flipped cases were answered again, the drop
    /// the confirmed cases alone make, less every case that got better, must exceed the
    /// allowed drop, and that many confirmations among the cases re-tested must be
    /// beyond chance at the row's share of the alpha; without fresh answers, the sign
    /// test on the flips must reject chance at that share.
    fn beyond_noise(&self, bar: Bar) -> bool {
        let n = self.paired as f64;
        if self.retested > 0 {
            let by_chance = match self.confirmed {
                0 => 1.0,
                k => 1.0 - stats::binomial_cdf(k as u64 - 1, self.retested as u64, CASE_ALPHA),
            };
            (self.confirmed_worse - self.better) / n > bar.allowed_drop + 1e-12
                && by_chance < bar.row_alpha
        } else {
            stats::sign_test_worse(self.p2f, self.f2p) < bar.row_alpha
        }
    }

    fn row(&self, name: &str, has_base: bool, bar: Bar) -> SegmentRow {
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
        let (drop, drop_upper, outcome) = if has_base {
            self.judge(bar)
        } else {
            (None, None, SegmentOutcome::Inconclusive)
        };
        let cases = if has_base { self.paired } else { head_n } as u64;
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
            drop,
            drop_upper,
            retested: self.retested,
            confirmed: self.confirmed,
            outcome,
            resolution: stats::rate_upper_bound(0, cases, HELD_ALPHA),
            cases_needed: stats::cases_to_rule_out(bar.allowed_drop.max(1e-6), HELD_ALPHA),
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

    let mut unjudged = Vec::new();
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
        let flip = |base: Option<&CaseResult>, failing: &CaseResult| {
            let (base_text, base_refusal) = base.map(shown_text).unzip();
            let (head_text, head_refusal) = shown_text(case);
            Flip {
                id: case.id.clone(),
                segments: case.segments.clone(),
                file: case.file.clone(),
                line: case.line,
                critical,
                new: is_new,
                base: base.map(passes),
                head: passes(case),
                failed: failed_assertions(failing),
                base_text,
                head_text,
                base_refusal: base_refusal.unwrap_or(false),
                head_refusal,
            }
        };
        // Accumulate into the overall row and each of the case's segments.
        let mut accs: Vec<&str> = case.segments.iter().map(String::as_str).collect();
        accs.sort_unstable();
        accs.dedup();
        let evidence = base_case
            .filter(|_| !errored_here)
            .map(|b| evidence_of(b, case, CASE_ALPHA));
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
            if let Some(e) = evidence {
                acc.difference += e.difference;
                acc.worse += e.difference.max(0.0);
                acc.better += (-e.difference).max(0.0);
                acc.retested += usize::from(e.retested);
                if e.confirmed {
                    acc.confirmed += 1;
                    acc.confirmed_worse += e.difference.max(0.0);
                }
            }
        };
        apply(&mut overall, false);
        for name in accs {
            apply(segments.entry(name).or_default(), declared(name));
        }

        if case.outcome != Outcome::Error && !judged(case) {
            unjudged.push(note(None));
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
    let unjudged_rate = if overall.head_judged == 0 {
        0.0
    } else {
        unjudged.len() as f64 / overall.head_judged as f64
    };
    let error_rate = if overall.cases == 0 {
        0.0
    } else {
        overall.errors as f64 / overall.cases as f64
    };
    // Every row judged shares the block alpha.
    let bar = Bar {
        allowed_drop: sides.allowed_drop,
        row_alpha: BLOCK_ALPHA / (segments.len() + 1) as f64,
    };
    Comparison {
        has_base,
        repeats: head.artifact.repeats,
        overall: overall.row(ALL, has_base, bar),
        segments: segments
            .iter()
            .map(|(name, acc)| acc.row(name, has_base, bar))
            .collect(),
        regressions,
        improvements,
        unstable,
        failures,
        new_cases,
        deleted_cases,
        errored,
        error_rate,
        unjudged,
        unjudged_rate,
        base: Figures::of(base_samples.into_iter()),
        head: Figures::of(head_samples.into_iter()),
        tool_sequence_changes: sequences,
    }
}

#[cfg(test)]
mod tests {
    use globset::{Glob, GlobSetBuilder};

    use super::*;
    use crate::artifact::suite::Segment;
    use crate::eval::result::{RunInfo, Source};

    const P: Outcome = Outcome::Pass;
    const F: Outcome = Outcome::Fail;
    const E: Outcome = Outcome::Error;

    fn sample(outcome: Outcome, cost_usd: Option<f64>, latency_ms: f64) -> Sample {
        if outcome == E {
            return Sample::error("provider down".into());
        }
        Sample {
            outcome,
            error: None,
            text: "Your refund is on its way.".into(),
            latency_ms: Some(latency_ms),
            input_tokens: 100,
            output_tokens: 20,
            cost_usd,
            requests: 1,
            source: Source::Replay,
            assertions: vec![crate::eval::result::Judged::decided(outcome)],
            ..Sample::error(String::new())
        }
    }

    /// A case of `segment` with one sample per outcome, priced and timed alike.
    fn case(id: &str, segment: &str, outcomes: &[Outcome]) -> CaseResult {
        let samples = outcomes
            .iter()
            .map(|&o| sample(o, Some(0.001), 400.0))
            .collect();
        CaseResult::new(
            id.into(),
            vec![segment.into()],
            "evals/a.jsonl".into(),
            1,
            samples,
        )
    }

    fn run(cases: Vec<CaseResult>) -> ArtifactRun {
        ArtifactRun {
            artifact: RunInfo {
                id: "support.assistant".into(),
                path: "prompts/support.prompt.yaml".into(),
                version: None,
                fingerprint: "sha256:x".into(),
                provider: "recorded".into(),
                model: "m".into(),
                repeats: 1,
                cases_digest: String::new(),
            },
            segments: BTreeMap::new(),
            shard: None,
            cases,
        }
    }

    /// Base and head runs from `(id, segment, base, head)`, one sample a side.
    fn runs(cases: &[(&str, &str, Outcome, Outcome)]) -> (ArtifactRun, ArtifactRun) {
        let side = |head: bool| {
            let pick = |&(id, s, b, h): &(&str, &str, Outcome, Outcome)| {
                case(id, s, &[if head { h } else { b }])
            };
            run(cases.iter().map(pick).collect())
        };
        (side(false), side(true))
    }

    /// Compare with `hard-negative/*` critical; every base case is in the base's eval set.
    fn compare_runs(base: Option<&ArtifactRun>, head: &ArtifactRun) -> Comparison {
        let mut globs = GlobSetBuilder::new();
        globs.add(Glob::new("hard-negative/*").expect("a valid glob"));
        let critical = globs.build().expect("globs build");
        let base_case_ids: Vec<String> = base
            .iter()
            .flat_map(|r| r.cases.iter().map(|c| c.id.clone()))
            .collect();
        compare(&RunPair {
            base,
            head,
            base_case_ids: &base_case_ids,
            critical: &critical,
            allowed_drop: 0.05,
        })
    }

    fn compared(cases: &[(&str, &str, Outcome, Outcome)]) -> Comparison {
        let (base, head) = runs(cases);
        compare_runs(Some(&base), &head)
    }

    fn ids(flips: &[Flip]) -> Vec<&str> {
        flips.iter().map(|f| f.id.as_str()).collect()
    }

    fn row<'a>(c: &'a Comparison, name: &str) -> &'a SegmentRow {
        c.segments
            .iter()
            .find(|r| r.name == name)
            .expect("a row for the segment")
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn a_case_passing_on_base_and_failing_on_head_is_a_regression() {
        let c = compared(&[
            ("worse", "billing", P, F),
            ("better", "billing", F, P),
            ("same", "billing", P, P),
            ("broken", "billing", F, F),
        ]);
        assert!(c.has_base);
        assert_eq!(ids(&c.regressions), ["worse"]);
        assert_eq!(ids(&c.improvements), ["better"]);
        let flip = &c.regressions[0];
        assert!(!flip.critical && !flip.new);
        assert_eq!(flip.segments, ["billing"]);
        assert_eq!(
            flip.base,
            Some(Passes {
                passed: 1,
                samples: 1
            })
        );
        assert_eq!(
            flip.head,
            Passes {
                passed: 0,
                samples: 1
            }
        );
        assert!(c.failures.is_empty(), "failures are for added artifacts");
    }

    #[test]
    fn a_regression_in_a_critical_segment_is_critical_and_listed_first() {
        let c = compared(&[
            ("a-billing", "billing", P, F),
            ("z-jailbreak", "hard-negative/jailbreak", P, F),
        ]);
        assert_eq!(ids(&c.regressions), ["z-jailbreak", "a-billing"]);
        assert!(c.regressions[0].critical);
        assert!(!c.regressions[1].critical);
        assert!(row(&c, "hard-negative/jailbreak").critical);
        assert!(!row(&c, "billing").critical);
        assert!(!c.overall.critical);
    }

    #[test]
    fn a_segment_the_suite_declares_critical_is_critical_without_a_glob() {
        let (base, mut head) = runs(&[("refund-0", "refund", P, F)]);
        head.segments.insert(
            "refund".into(),
            Segment {
                critical: true,
                description: None,
            },
        );
        let c = compare_runs(Some(&base), &head);
        assert!(c.regressions[0].critical);
        assert!(row(&c, "refund").critical);
    }

    #[test]
    fn a_new_case_is_listed_as_new_and_counted_as_new_when_it_flips() {
        let (base, head) = runs(&[
            ("old", "billing", P, P),
            ("added-fails-on-both", "billing", F, F),
            ("added-flips", "billing", P, F),
        ]);
        let critical = globset::GlobSet::empty();
        let c = compare(&RunPair {
            base: Some(&base),
            head: &head,
            base_case_ids: &["old".to_string()],
            critical: &critical,
            allowed_drop: 0.05,
        });
        let new: Vec<&str> = c.new_cases.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(new, ["added-fails-on-both", "added-flips"]);
        assert_eq!(c.new_cases[0].base, Some(F));
        // A new case failing on both sides is no regression; one the base version passes
        // and the head fails is one today, flagged `new`.
        assert_eq!(ids(&c.regressions), ["added-flips"]);
        assert!(c.regressions[0].new);
        assert!(c.errored.is_empty());
    }

    #[test]
    fn pass_rates_per_segment_and_overall() {
        let c = compared(&[
            ("b0", "billing", P, P),
            ("b1", "billing", P, F),
            ("b2", "billing", P, F),
            ("b3", "billing", F, P),
            ("s0", "shipping", P, P),
            ("s1", "shipping", F, F),
        ]);
        let names: Vec<&str> = c.segments.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["billing", "shipping"]);

        let billing = row(&c, "billing");
        assert_eq!((billing.cases, billing.paired, billing.errors), (4, 4, 0));
        assert_eq!((billing.base_passed, billing.head_passed), (3, 2));
        assert!(close(billing.base_rate, 0.75));
        assert!(close(billing.head_rate, 0.5));
        assert!(close(billing.delta, -0.25));
        assert_eq!((billing.pass_to_fail, billing.fail_to_pass), (2, 1));

        let shipping = row(&c, "shipping");
        assert!(close(shipping.base_rate, 0.5) && close(shipping.head_rate, 0.5));
        assert!(close(shipping.delta, 0.0));

        let all = &c.overall;
        assert_eq!(all.name, ALL);
        assert_eq!((all.cases, all.paired), (6, 6));
        assert!(close(all.base_rate, 4.0 / 6.0));
        assert!(close(all.head_rate, 3.0 / 6.0));
        assert_eq!((all.pass_to_fail, all.fail_to_pass), (2, 1));
    }

    #[test]
    fn a_case_in_two_segments_counts_in_each_once() {
        let mut worse = case("x", "billing", &[F]);
        worse.segments = vec!["billing".into(), "refund".into(), "billing".into()];
        let mut was = case("x", "billing", &[P]);
        was.segments = worse.segments.clone();
        let c = compare_runs(Some(&run(vec![was])), &run(vec![worse]));
        let names: Vec<&str> = c.segments.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["billing", "refund"]);
        assert_eq!(row(&c, "billing").cases, 1);
        assert_eq!(row(&c, "refund").pass_to_fail, 1);
        assert_eq!(c.overall.cases, 1);
    }

    #[test]
    fn mcnemar_p_value_for_a_segment_with_discordant_pairs() {
        let mut cases = Vec::new();
        let ids: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        for id in &ids[..6] {
            cases.push((id.as_str(), "billing", P, F));
        }
        for id in &ids[6..9] {
            cases.push((id.as_str(), "refund", P, F));
        }
        cases.push((ids[9].as_str(), "refund", F, P));
        for id in &ids[10..] {
            cases.push((id.as_str(), "shipping", P, P));
        }
        let c = compared(&cases);
        // 6 one way, none the other: 2 · ½⁶.
        let billing = row(&c, "billing");
        assert!((billing.p_value - 0.03125).abs() < 1e-12);
        assert!(billing.beyond_noise);
        // 3 and 1: 2 · (1 + 4) / 16.
        let refund = row(&c, "refund");
        assert!((refund.p_value - 0.625).abs() < 1e-12);
        assert!(!refund.beyond_noise);
        // No discordant pair: no evidence.
        assert_eq!(row(&c, "shipping").p_value, 1.0);
        assert!(!row(&c, "shipping").beyond_noise);
        // Overall: 9 and 1, 2 · (1 + 10) / 1024.
        assert!((c.overall.p_value - 22.0 / 1024.0).abs() < 1e-12);
        assert!(c.overall.beyond_noise);
    }

    #[test]
    fn an_errored_case_is_not_a_failure() {
        let (base, mut head) = runs(&[
            ("fine", "billing", P, P),
            ("head-down", "billing", P, E),
            ("base-down", "billing", E, F),
        ]);
        // One sample passed, the other could not be evaluated: an error, not a fail.
        head.cases.push(case("half-down", "billing", &[P, E]));
        let mut base = base;
        base.cases.push(case("half-down", "billing", &[P, P]));
        let c = compare_runs(Some(&base), &head);

        assert!(c.regressions.is_empty(), "{:?}", ids(&c.regressions));
        assert_eq!(
            c.head.conversations, 1,
            "errored cases are left out of figures"
        );
        let errored: Vec<&str> = c.errored.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(errored, ["head-down", "base-down", "half-down"]);
        assert_eq!(c.errored[0].error.as_deref(), Some("provider down"));
        assert_eq!(c.errored[1].base, Some(E));
        assert!((c.error_rate - 0.75).abs() < 1e-12);

        let all = &c.overall;
        assert_eq!((all.cases, all.paired, all.errors), (4, 1, 3));
        assert_eq!(all.pass_to_fail, 0);
        assert!(close(all.base_rate, 1.0) && close(all.head_rate, 1.0));
    }

    #[test]
    fn a_case_missing_from_the_base_run_counts_as_errored() {
        let (base, _) = runs(&[("a", "billing", P, P)]);
        let (_, head) = runs(&[("a", "billing", P, P), ("b", "billing", P, P)]);
        let c = compare_runs(Some(&base), &head);
        assert_eq!(c.errored.len(), 1);
        assert_eq!(c.errored[0].id, "b");
        assert_eq!(
            c.errored[0].error.as_deref(),
            Some("the base version has no result for this case")
        );
        assert!((c.error_rate - 0.5).abs() < 1e-12);
    }

    #[test]
    fn without_a_base_failing_cases_are_failures_and_rates_are_the_heads() {
        let (_, head) = runs(&[
            ("ok", "billing", P, P),
            ("bad", "billing", P, F),
            ("down", "billing", P, E),
        ]);
        let c = compare_runs(None, &head);
        assert!(!c.has_base);
        assert!(c.regressions.is_empty() && c.new_cases.is_empty());
        assert_eq!(ids(&c.failures), ["bad"]);
        assert_eq!(c.failures[0].base, None);
        let all = &c.overall;
        assert_eq!((all.base_rate, all.delta), (None, None));
        assert!(close(all.head_rate, 0.5), "over the evaluated cases");
        assert_eq!(all.p_value, 1.0);
        assert_eq!(c.base, Figures::default());
    }

    #[test]
    fn deleted_cases_keep_the_base_outcome() {
        let (base, _) = runs(&[("kept", "billing", P, P), ("gone", "billing", F, F)]);
        let (_, head) = runs(&[("kept", "billing", P, P)]);
        let c = compare_runs(Some(&base), &head);
        assert_eq!(c.deleted_cases.len(), 1);
        let gone = &c.deleted_cases[0];
        assert_eq!(
            (gone.id.as_str(), gone.base, gone.head),
            ("gone", Some(F), None)
        );
        assert_eq!(c.overall.cases, 1, "deleted cases are not compared");
    }

    #[test]
    fn a_case_mixed_across_samples_on_both_sides_is_unstable() {
        let base = run(vec![case("flaky", "billing", &[P, F])]);
        let head = run(vec![case("flaky", "billing", &[F, P])]);
        let c = compare_runs(Some(&base), &head);
        assert_eq!(ids(&c.unstable), ["flaky"]);
        assert!(c.regressions.is_empty() && c.improvements.is_empty());
        assert!(close(c.overall.base_pass_fraction, 0.5));
        assert!(
            close(c.overall.base_rate, 0.0),
            "a case passes only if every sample does"
        );
    }

    #[test]
    fn cost_and_latency_figures_cover_the_cases_both_sides_evaluated() {
        let priced = |id: &str, cost: f64, latency: f64, o: Outcome| {
            let samples = vec![sample(o, Some(cost), latency)];
            CaseResult::new(id.into(), vec!["billing".into()], "f".into(), 1, samples)
        };
        let base = run(vec![
            priced("a", 0.001, 400.0, P),
            priced("b", 0.001, 400.0, P),
            // Its head errored: left out on both sides.
            priced("c", 0.5, 9_000.0, P),
        ]);
        let head = run(vec![
            priced("a", 0.002, 500.0, P),
            priced("b", 0.002, 600.0, F),
            priced("c", 0.0, 0.0, E),
        ]);
        let c = compare_runs(Some(&base), &head);
        assert_eq!((c.base.conversations, c.head.conversations), (2, 2));
        assert_eq!((c.base.requests, c.head.requests), (2, 2));
        assert!(close(c.base.spend.cost_usd, 0.002));
        assert!(close(c.base.spend.cost_per_1k_requests_usd, 1.0));
        assert!(close(c.head.spend.cost_per_1k_requests_usd, 2.0));
        assert_eq!(c.base.spend.latency_p95_ms, Some(400.0));
        assert_eq!(c.head.spend.latency_p95_ms, Some(600.0));
        assert_eq!(c.head.tokens_per_conversation(), Some(120.0));
        let cost = relative(
            c.base.spend.cost_per_1k_requests_usd,
            c.head.spend.cost_per_1k_requests_usd,
        );
        assert!(close(cost, 1.0));
        assert!(close(
            relative(c.base.spend.latency_p95_ms, c.head.spend.latency_p95_ms),
            0.5
        ));
    }

    #[test]
    fn relative_change_needs_both_sides_and_a_nonzero_base() {
        assert!(close(relative(Some(2.0), Some(3.0)), 0.5));
        assert_eq!(relative(None, Some(3.0)), None);
        assert_eq!(relative(Some(2.0), None), None);
        assert_eq!(relative(Some(0.0), Some(3.0)), None);
    }

    /// How severe an outcome is: more failures may only move a segment right.
    fn severity(o: SegmentOutcome) -> u8 {
        match o {
            SegmentOutcome::Held => 0,
            SegmentOutcome::Inconclusive => 1,
            SegmentOutcome::Regressed => 2,
        }
    }

    /// `(pass → pass, pass → fail, fail → pass, fail → fail)` cases of one segment,
    /// flips re-tested with `fresh` samples a side that reproduce them.
    fn segment_of(counts: [usize; 4], fresh: usize) -> SegmentRow {
        let outcomes = [(P, P), (P, F), (F, P), (F, F)];
        let mut pairs = Vec::new();
        for (&n, &(b, h)) in counts.iter().zip(&outcomes) {
            for _ in 0..n {
                let id = format!("c{}", pairs.len());
                let mut base = case(&id, "s", &[b]);
                let mut head = case(&id, "s", &[h]);
                if b != h && fresh > 0 {
                    base.confirmations = (0..fresh).map(|_| sample(b, None, 1.0)).collect();
                    head.confirmations = (0..fresh).map(|_| sample(h, None, 1.0)).collect();
                }
                pairs.push((base, head));
            }
        }
        let (base, head): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        let c = compare_runs(Some(&run(base)), &run(head));
        row(&c, "s").clone()
    }

    proptest::proptest! {
        /// One more case failing on the head, instead of passing, never makes a
        /// segment's outcome more lenient, with or without fresh answers.
        #[test]
        fn more_failures_never_make_a_segment_more_lenient(
            same_pass in 0usize..80,
            worse in 0usize..12,
            better in 0usize..6,
            same_fail in 0usize..6,
            fresh in proptest::prop_oneof![proptest::strategy::Just(0usize), proptest::strategy::Just(5usize)],
        ) {
            proptest::prop_assume!(same_pass > 0);
            let before = segment_of([same_pass, worse, better, same_fail], fresh);
            let after = segment_of([same_pass - 1, worse + 1, better, same_fail], fresh);
            proptest::prop_assert!(
                severity(after.outcome) >= severity(before.outcome),
                "{:?} → {:?} ({same_pass} same, {worse} worse, {better} better, {same_fail} failing, fresh {fresh})",
                before.outcome,
                after.outcome
            );
            proptest::prop_assert!(after.drop_upper >= before.drop_upper);
        }
    }

    #[test]
    fn the_three_outcomes_on_known_evidence() {
        // Five cases collapsing, confirmed by fresh answers: regressed.
        assert_eq!(
            segment_of([0, 5, 0, 0], 5).outcome,
            SegmentOutcome::Regressed
        );
        // The same without fresh answers: five flips one way cannot be told from
        // noise at the row's alpha, and nothing is ruled out: inconclusive.
        let unconfirmed = segment_of([0, 5, 0, 0], 0);
        assert_eq!(unconfirmed.outcome, SegmentOutcome::Inconclusive);
        assert!(close(unconfirmed.drop, 1.0));
        // 60 unchanged cases rule out 5 points; 58 do not.
        let held = segment_of([60, 0, 0, 0], 5);
        assert_eq!(held.outcome, SegmentOutcome::Held);
        assert!(held.drop_upper.is_some_and(|u| u <= 0.05));
        assert_eq!((held.cases_needed, held.resolution < 0.05), (59, true));
        assert_eq!(
            segment_of([58, 0, 0, 0], 5).outcome,
            SegmentOutcome::Inconclusive
        );
    }
}
