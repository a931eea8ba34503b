//! The statistics behind "beyond noise": McNemar's exact test on paired outcomes.

/// Significance level below which a pass-rate change counts as beyond noise.
pub const ALPHA: f64 = 0.05;

/// A p-value for readers: three decimals, or `<0.001` rather than a misleading `0.000`.
pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

/// A drop or a bound in points for readers, unsigned: `83`, `4.5`, `5` (whole from 10
/// on, and where a tenth would read `.0`).
pub fn format_points(x: f64) -> String {
    let p = (x * 100.0).abs();
    if p >= 9.95 || (p - p.round()).abs() < 0.05 {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}

/// Two-sided p-value of McNemar's exact test for `b` pairs that went one way
/// (pass → fail) and `c` that went the other (fail → pass).
///
/// Under "no change", each discordant pair is a fair coin, so the smaller count follows
/// Binomial(b + c, ½); the p-value is twice its lower tail, capped at 1. Pairs that
/// agree (pass → pass, fail → fail) carry no information and do not enter. Computed in
/// log space, so tens of thousands of discordant pairs neither underflow nor overflow.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    // ln C(n, i) for i = 0..=k, built up term by term.
    let mut ln_choose = 0.0f64;
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(ln_choose + ln_half_n);
    }
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tail = max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

/// Natural log of the binomial coefficient C(n, k).
fn ln_choose(n: u64, k: u64) -> f64 {
    let k = k.min(n - k.min(n));
    (0..k)
        .map(|i| ((n - i) as f64).ln() - ((i + 1) as f64).ln())
        .sum()
}

/// P(X ≤ k) for X ~ Binomial(n, p), summed in log space.
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n || p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    // ln C(n, i) built up term by term: one pass, not a product per term.
    let mut ln_c = 0.0f64;
    let terms: Vec<f64> = (0..=k)
        .map(|i| {
            if i > 0 {
                ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
            }
            ln_c + i as f64 * lp + (n - i) as f64 * lq
        })
        .collect();
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>()).min(1.0)
}

/// The one-sided upper confidence bound on a rate after `k` events in `n` trials
/// (Clopper–Pearson): the largest rate under which seeing `k` or fewer events still has
/// probability `alpha`. With no event it is `1 − alpha^(1/n)`, about `3/n` at 5%.
pub fn rate_upper_bound(k: u64, n: u64, alpha: f64) -> f64 {
    if n == 0 || k >= n {
        return 1.0;
    }
    let (mut lo, mut hi) = (k as f64 / n as f64, 1.0);
    // Bisection: the CDF falls as the rate grows. 60 halvings reach f64 precision.
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if binomial_cdf(k, n, mid) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The fewest cases with which a segment whose answers did not change at all can rule
/// out a drop of `drop` at confidence `1 − alpha`: `1 − alpha^(1/n) ≤ drop`.
pub fn cases_to_rule_out(drop: f64, alpha: f64) -> u64 {
    if drop >= 1.0 {
        return 1;
    }
    if drop <= 0.0 {
        return u64::MAX;
    }
    (alpha.ln() / (1.0 - drop).ln()).ceil().max(1.0) as u64
}

/// One-sided p-value that the head passes less often than the base on one case, from
/// its samples alone (Fisher's exact test): the chance, if both versions passed equally
/// often, that the head would have passed `head_passed` times or fewer out of the
/// `base_passed + head_passed` passes.
pub fn fisher_fewer(
    base_passed: u64,
    base_samples: u64,
    head_passed: u64,
    head_samples: u64,
) -> f64 {
    let passes = base_passed + head_passed;
    let total = base_samples + head_samples;
    let ln_total = ln_choose(total, passes);
    let lowest = passes.saturating_sub(base_samples);
    let tail: f64 = (lowest..=head_passed.min(passes))
        .map(|h| {
            (ln_choose(head_samples, h) + ln_choose(base_samples, passes - h) - ln_total).exp()
        })
        .sum();
    tail.min(1.0)
}

/// One-sided p-value of the sign test that pass → fail flips outnumber fail → pass ones
/// beyond chance: P(X ≥ `worse`) for X ~ Binomial(`worse + better`, ½).
pub fn sign_test_worse(worse: u64, better: u64) -> f64 {
    let n = worse + better;
    if n == 0 || worse == 0 {
        return 1.0;
    }
    1.0 - binomial_cdf(worse - 1, n, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12 * b.max(1e-300)
    }

    #[test]
    fn no_discordant_pairs_is_no_evidence() {
        assert_eq!(mcnemar_exact(0, 0), 1.0);
    }

    #[test]
    fn matches_hand_computed_values() {
        // b=5, c=0: 2 · (1/2)^5 = 1/16.
        assert!(close(mcnemar_exact(5, 0), 0.0625));
        assert!(close(mcnemar_exact(0, 5), 0.0625));
        // b=6, c=0: 2/64 = 0.03125, the smallest all-one-way count beyond noise at 5%.
        assert!(close(mcnemar_exact(6, 0), 0.03125));
        // b=8, c=2: 2 · (1 + 10 + 45) / 1024 = 112/1024.
        assert!(close(mcnemar_exact(8, 2), 112.0 / 1024.0));
        // b=3, c=1: 2 · (1 + 4) / 16 = 0.625.
        assert!(close(mcnemar_exact(3, 1), 0.625));
        // Balanced: the tail passes one half, capped at 1.
        assert_eq!(mcnemar_exact(4, 4), 1.0);
        assert_eq!(mcnemar_exact(1, 0), 1.0);
    }

    #[test]
    fn large_counts_stay_finite_and_ordered() {
        let lopsided = mcnemar_exact(6000, 4000);
        assert!(lopsided > 0.0 && lopsided < 1e-80, "{lopsided}");
        let even = mcnemar_exact(5010, 4990);
        assert!(even > 0.8 && even <= 1.0, "{even}");
        // 2 · P(X ≤ 0) for n = 2000 underflows f64: it is 0, not NaN.
        assert_eq!(mcnemar_exact(2000, 0), 0.0);
    }

    #[test]
    fn the_rate_bound_is_the_rule_of_three_and_grows_with_events() {
        // No event in n: 1 − 0.05^(1/n).
        for n in [5u64, 6, 20, 59, 200] {
            let want = 1.0 - 0.05f64.powf(1.0 / n as f64);
            assert!((rate_upper_bound(0, n, 0.05) - want).abs() < 1e-9, "n {n}");
        }
        assert!(rate_upper_bound(0, 59, 0.05) <= 0.05);
        assert!(rate_upper_bound(0, 58, 0.05) > 0.05);
        let mut last = 0.0;
        for k in 0..10 {
            let b = rate_upper_bound(k, 20, 0.05);
            assert!(b > last && b > k as f64 / 20.0, "k {k}: {b}");
            last = b;
        }
        assert_eq!(rate_upper_bound(5, 5, 0.05), 1.0);
        assert_eq!(cases_to_rule_out(0.05, 0.05), 59);
        assert_eq!(cases_to_rule_out(0.10, 0.05), 29);
        assert_eq!(cases_to_rule_out(0.60, 0.05), 4);
    }

    #[test]
    fn fisher_on_one_case_matches_hand_computed_values() {
        // 5/5 against 0/5: one table of C(10,5) = 252 is as extreme.
        assert!(close(fisher_fewer(5, 5, 0, 5), 1.0 / 252.0));
        // 3/3 against 0/3: 1/20.
        assert!(close(fisher_fewer(3, 3, 0, 3), 1.0 / 20.0));
        // Equal answers are no evidence.
        assert!(fisher_fewer(4, 5, 4, 5) > 0.5);
        // The head doing better is no evidence of worse.
        assert!(close(fisher_fewer(0, 5, 5, 5), 1.0));
        assert_eq!(fisher_fewer(0, 5, 0, 5), 1.0);
    }

    #[test]
    fn the_sign_test_counts_one_way() {
        assert!(close(sign_test_worse(5, 0), 1.0 / 32.0));
        assert!(close(sign_test_worse(6, 0), 1.0 / 64.0));
        assert_eq!(sign_test_worse(0, 4), 1.0);
        // 8 worse, 2 better: P(X ≥ 8) = (45 + 10 + 1) / 1024.
        assert!(close(sign_test_worse(8, 2), 56.0 / 1024.0));
    }
}
