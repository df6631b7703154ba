//! Theil–Sen slope with Sen's distribution-free 95% confidence interval, and the OLS slope used by
//! the tail guard.

use crate::mann_kendall::KendallScore;

/// z for a two-sided 95% interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A robust slope estimate and its interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlopeFit {
    pub slope: f64,
    pub ci: (f64, f64),
}

/// Median of all pairwise slopes (x_j − x_i)/(t_j − t_i), pooled over `groups` (pairs never cross
/// groups: restart segments are fitted jointly, as in the seasonal Kendall slope of Hirsch 1982).
///
/// The interval is Sen's (Gilbert 1987, §16.5): with C = z·√Var(S) from the Mann–Kendall variance,
/// the bounds are the ordered slopes of rank (N − C)/2 and (N + C)/2 + 1. Returns `None` when no
/// pair has distinct times.
pub fn fit(groups: &[(&[f64], &[f64])], kendall: KendallScore) -> Option<SlopeFit> {
    let mut slopes = Vec::new();
    for (t, x) in groups {
        for i in 0..t.len() {
            for j in i + 1..t.len() {
                let dt = t[j] - t[i];
                if dt > 0.0 {
                    slopes.push((x[j] - x[i]) / dt);
                }
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_by(f64::total_cmp);
    let n = slopes.len();
    let slope = median_sorted(&slopes);
    let c = Z_95 * kendall.variance.sqrt();
    let nf = n as f64;
    // 1-based ranks, rounded to the nearest order statistic and clamped to [1, N].
    let rank = |r: f64| (r.round().max(1.0) as usize).min(n) - 1;
    let lower = slopes[rank((nf - c) / 2.0)];
    let upper = slopes[rank((nf + c) / 2.0 + 1.0)];
    Some(SlopeFit {
        slope,
        ci: (lower.min(slope), upper.max(slope)),
    })
}

/// Median of an ascending slice; NaN when empty.
pub fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]),
    }
}

/// Median of an unordered slice (copies it); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    median_sorted(&v)
}

/// Ordinary least-squares slope; `None` with fewer than two distinct times.
pub fn ols_slope(t: &[f64], x: &[f64]) -> Option<f64> {
    let n = t.len() as f64;
    if t.len() < 2 {
        return None;
    }
    let mt = t.iter().sum::<f64>() / n;
    let mx = x.iter().sum::<f64>() / n;
    let (mut stt, mut stx) = (0.0, 0.0);
    for (ti, xi) in t.iter().zip(x) {
        stt += (ti - mt) * (ti - mt);
        stx += (ti - mt) * (xi - mx);
    }
    (stt > 0.0).then(|| stx / stt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line() {
        let t: Vec<f64> = (0..20).map(f64::from).collect();
        let x: Vec<f64> = t.iter().map(|t| 3.0 * t + 5.0).collect();
        let fit = fit(&[(&t, &x)], KendallScore::of(&x)).unwrap();
        assert_eq!(fit.slope, 3.0);
        assert_eq!(fit.ci, (3.0, 3.0));
    }

    #[test]
    fn robust_to_an_outlier() {
        let t: Vec<f64> = (0..21).map(f64::from).collect();
        let mut x: Vec<f64> = t.iter().map(|t| 2.0 * t).collect();
        x[10] = 1e9;
        let fit = fit(&[(&t, &x)], KendallScore::of(&x)).unwrap();
        assert!((fit.slope - 2.0).abs() < 1e-9);
        assert!(fit.ci.0 <= 2.0 && fit.ci.1 >= 2.0);
    }

    #[test]
    fn no_distinct_times() {
        assert!(fit(&[(&[1.0, 1.0], &[1.0, 2.0])], KendallScore::of(&[1.0, 2.0])).is_none());
    }

    #[test]
    fn ols_matches_a_line() {
        let t = [0.0, 1.0, 2.0, 3.0];
        let x = [1.0, 3.0, 5.0, 7.0];
        assert_eq!(ols_slope(&t, &x), Some(2.0));
        assert_eq!(ols_slope(&[1.0], &[1.0]), None);
    }
}
