//! Mann–Kendall trend test with the tie correction, and the normal tail probability it needs.

/// The Mann–Kendall statistic of one series and its variance under "no trend", ties corrected.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KendallScore {
    /// Σ sign(x_j − x_i) over all pairs i < j.
    pub s: f64,
    /// Var(S) = [n(n−1)(2n+5) − Σ_g t_g(t_g−1)(2t_g+5)] / 18, t_g the size of each tie group.
    pub variance: f64,
}

impl KendallScore {
    /// Scores `values` in their given (time) order. O(n²) in pairs, O(n log n) for the ties.
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        let mut s = 0i64;
        for i in 0..n {
            for j in i + 1..n {
                s += match values[j].partial_cmp(&values[i]) {
                    Some(std::cmp::Ordering::Greater) => 1,
                    Some(std::cmp::Ordering::Less) => -1,
                    _ => 0,
                };
            }
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut tie_term = 0.0;
        let mut run = 1usize;
        for k in 1..=sorted.len() {
            if k < sorted.len() && sorted[k] == sorted[k - 1] {
                run += 1;
            } else {
                let g = run as f64;
                tie_term += g * (g - 1.0) * (2.0 * g + 5.0);
                run = 1;
            }
        }
        let nf = n as f64;
        let variance = ((nf * (nf - 1.0) * (2.0 * nf + 5.0) - tie_term) / 18.0).max(0.0);
        KendallScore {
            s: s as f64,
            variance,
        }
    }

    /// Sums independent scores (the seasonal Kendall test of Hirsch et al. 1982, used here with
    /// restart segments as the "seasons").
    pub fn combine(scores: impl IntoIterator<Item = KendallScore>) -> Self {
        scores.into_iter().fold(
            KendallScore {
                s: 0.0,
                variance: 0.0,
            },
            |acc, k| KendallScore {
                s: acc.s + k.s,
                variance: acc.variance + k.variance,
            },
        )
    }

    /// Normal score with continuity correction: (S − sign(S)) / √Var(S); 0 when Var(S) = 0.
    pub fn z(self) -> f64 {
        if self.variance <= 0.0 || self.s == 0.0 {
            return 0.0;
        }
        (self.s - self.s.signum()) / self.variance.sqrt()
    }

    /// One-sided p-value for an *increasing* trend: P(Z ≥ z) under "no trend".
    pub fn p_increasing(self) -> f64 {
        if self.variance <= 0.0 {
            return 1.0;
        }
        upper_tail(self.z())
    }
}

/// P(Z ≥ z) for a standard normal Z, accurate in the far tail (no 1 − Φ cancellation).
pub fn upper_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rising_ten_points_is_highly_significant() {
        // REFERENCE §2: with n = 10 a perfectly rising series gives one-sided p ≈ 4·10⁻⁵.
        let v: Vec<f64> = (0..10).map(f64::from).collect();
        let k = KendallScore::of(&v);
        assert_eq!(k.s, 45.0);
        assert!((k.variance - 125.0).abs() < 1e-9);
        let p = k.p_increasing();
        assert!(p > 2e-5 && p < 6e-5, "p = {p}");
    }

    #[test]
    fn ties_reduce_the_variance() {
        let k = KendallScore::of(&[1.0, 1.0, 1.0, 2.0]);
        // n = 4: 4·3·13 = 156; one tie group of 3: 3·2·11 = 66; (156 − 66) / 18 = 5.
        assert_eq!(k.s, 3.0);
        assert!((k.variance - 5.0).abs() < 1e-12);
    }

    #[test]
    fn all_tied_has_no_evidence() {
        let k = KendallScore::of(&[7.0; 20]);
        assert_eq!(k.variance, 0.0);
        assert_eq!(k.p_increasing(), 1.0);
    }

    #[test]
    fn falling_series_is_not_an_increase() {
        let v: Vec<f64> = (0..10).rev().map(f64::from).collect();
        assert!(KendallScore::of(&v).p_increasing() > 0.999);
    }

    #[test]
    fn normal_tail_values() {
        assert!((upper_tail(0.0) - 0.5).abs() < 1e-15);
        assert!((upper_tail(1.959_963_984_540_054) - 0.025).abs() < 1e-9);
        assert!(upper_tail(30.0) > 0.0);
    }
}
