//! The gate as JUnit XML, for CI systems that show test results: a suite per evaluated
//! artifact (a case fails when it regressed, errors when it could not be evaluated,
//! and is skipped when it fails on base as well), and a suite for the policy's rules.

use std::collections::HashSet;
use std::fmt::Write;

use crate::eval::result::Outcome;
use crate::evidence::Evidence;
use crate::markup::xml::escape as xml;

pub fn junit(e: &Evidence) -> String {
    let mut suites = String::new();
    let (mut tests, mut failures, mut errors) = (0usize, 0usize, 0usize);
    for a in &e.artifacts {
        let (Some(c), Some(head)) = (&a.comparison, &a.head_run) else {
            continue;
        };
        let flips = if c.has_base {
            &c.regressions
        } else {
            &c.failures
        };
        let failing: HashSet<&str> = flips.iter().map(|f| f.id.as_str()).collect();
        let base: std::collections::HashMap<&str, Outcome> = a
            .base_run
            .iter()
            .flat_map(|r| &r.cases)
            .map(|c| (c.id.as_str(), c.outcome))
            .collect();
        let (mut t, mut f, mut er) = (0, 0, 0);
        let mut cases = String::new();
        for case in &head.cases {
            t += 1;
            let _ = write!(
                cases,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\"",
                xml(&case.id),
                xml(&a.change.id),
                xml(&case.file),
                case.line
            );
            let base_outcome = base.get(case.id.as_str()).copied();
            let body = if case.outcome == Outcome::Error || base_outcome == Some(Outcome::Error) {
                er += 1;
                let why = case
                    .samples
                    .iter()
                    .find_map(|s| s.error.as_deref())
                    .unwrap_or("the base version could not be evaluated");
                format!("<error message=\"{}\"/>", xml(why))
            } else if failing.contains(case.id.as_str()) {
                f += 1;
                let flip = flips.iter().find(|x| x.id == case.id);
                let reasons = flip.map_or_else(String::new, |x| x.failed.join("\n"));
                let message = if c.has_base {
                    "passes on base, fails on head"
                } else {
                    "fails"
                };
                format!("<failure message=\"{message}\">{}</failure>", xml(&reasons))
            } else if case.outcome == Outcome::Fail {
                "<skipped message=\"fails on base as well: not a regression\"/>".to_string()
            } else {
                String::new()
            };
            if body.is_empty() {
                cases.push_str("/>\n");
            } else {
                let _ = writeln!(cases, ">\n      {body}\n    </testcase>");
            }
        }
        tests += t;
        failures += f;
        errors += er;
        let _ = writeln!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{t}\" failures=\"{f}\" errors=\"{er}\">\n{cases}  </testsuite>",
            xml(&a.change.id)
        );
    }
    // The policy: one test per rule that fired, or one passing test.
    let v = &e.verdict;
    let mut policy = String::new();
    let (mut pf, mut pe) = (0, 0);
    let reasons = v.reasons.iter().map(|r| ("failure", r));
    for (tag, r) in reasons.chain(v.errors.iter().map(|r| ("error", r))) {
        if tag == "error" {
            pe += 1;
        } else {
            pf += 1;
        }
        let _ = writeln!(
            policy,
            "    <testcase name=\"{}\" classname=\"promptgate.policy\">\n      <{tag} message=\"{}\"/>\n    </testcase>",
            xml(&r.rule),
            xml(&match &r.artifact {
                Some(a) => format!("{a}: {}", r.message),
                None => r.message.clone(),
            })
        );
    }
    if v.reasons.is_empty() && v.errors.is_empty() {
        let _ = writeln!(
            policy,
            "    <testcase name=\"verdict\" classname=\"promptgate.policy\"/>"
        );
    }
    let pt = (v.reasons.len() + v.errors.len()).max(1);
    let _ = writeln!(
        suites,
        "  <testsuite name=\"promptgate policy\" tests=\"{pt}\" failures=\"{pf}\" errors=\"{pe}\">\n{policy}  </testsuite>"
    );
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"promptgate gate\" tests=\"{}\" failures=\"{}\" errors=\"{}\">\n{suites}</testsuites>\n",
        tests + pt,
        failures + pf,
        errors + pe
    )
}
