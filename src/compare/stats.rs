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
}
