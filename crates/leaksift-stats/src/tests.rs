//! Verdicts on synthetic series: noise, sawtooth, warm-up, staircase, restarts, short series, and
//! invariances (adding a constant, rescaling time).

use super::*;
use proptest::prelude::*;

const MIB: f64 = 1024.0 * 1024.0;

/// Deterministic noise in [-1, 1) (SplitMix64), so failures reproduce.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// `n` samples at 1 s spacing of `f(t)` plus uniform noise of ± `noise` bytes.
fn series(n: usize, noise: f64, seed: u64, f: impl Fn(f64) -> f64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Noise(seed);
    let t: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let b = t.iter().map(|&t| f(t) + noise * rng.next()).collect();
    (t, b)
}

/// A sawtooth of temporaries: climbs `height` over `period` seconds, then drops back.
fn sawtooth(t: f64, period: f64, height: f64) -> f64 {
    (t % period) / period * height
}

fn verdict(t: &[f64], b: &[f64]) -> Analysis {
    analyze(t, b, &Config::default()).unwrap()
}

#[test]
fn flat_noise_is_stable() {
    let (t, b) = series(300, 2.0 * MIB, 1, |_| 100.0 * MIB);
    let a = verdict(&t, &b);
    assert_eq!(a.verdict, Verdict::Stable, "{a:?}");
    assert!(a.slope_ci.0 <= 0.0 || a.p_value >= 0.01);
}

#[test]
fn perfectly_flat_is_stable() {
    let t: Vec<f64> = (0..50).map(f64::from).collect();
    let a = verdict(&t, &[5.0 * MIB; 50]);
    assert_eq!(a.verdict, Verdict::Stable);
    assert_eq!(a.slope, 0.0);
    assert_eq!(a.p_value, 1.0);
}

#[test]
fn steady_leak_with_noise() {
    let (t, b) = series(300, 2.0 * MIB, 2, |t| 100.0 * MIB + 0.2 * MIB * t);
    let a = verdict(&t, &b);
    assert_eq!(a.verdict, Verdict::Leak, "{a:?}");
    assert!(
        a.slope_ci.0 < 0.2 * MIB && 0.2 * MIB < a.slope_ci.1,
        "{a:?}"
    );
    assert!(a.p_value < 1e-6);
}

#[test]
fn sawtooth_around_a_flat_baseline_is_stable() {
    let (t, b) = series(600, 0.5 * MIB, 3, |t| {
        50.0 * MIB + sawtooth(t, 7.0, 40.0 * MIB)
    });
    let a = verdict(&t, &b);
    assert_eq!(a.verdict, Verdict::Stable, "{a:?}");
}

#[test]
fn leak_under_a_sawtooth_is_a_leak() {
    let (t, b) = series(600, 0.5 * MIB, 4, |t| {
        50.0 * MIB + 0.05 * MIB * t + sawtooth(t, 7.0, 40.0 * MIB)
    });
    let a = verdict(&t, &b);
    assert_eq!(a.verdict, Verdict::Leak, "{a:?}");
    assert!(
        (a.slope / MIB - 0.05).abs() < 0.02,
        "slope {}",
        a.slope / MIB
    );
}

#[test]
fn ols_would_be_fooled_by_a_sawtooth_phase_but_the_baseline_is_not() {
    // The run ends near the top of a tooth: raw samples "grow", the troughs do not. The windows
    // (12 samples) are longer than the sawtooth period (10 s).
    let (t, b) = series(119, 0.0, 5, |t| 20.0 * MIB + sawtooth(t, 10.0, 30.0 * MIB));
    assert!(ols_slope(&t, &b).unwrap() > 0.0);
    let cfg = Config {
        windows: 10,
        ..Config::default()
    };
    assert_eq!(analyze(&t, &b, &cfg).unwrap().verdict, Verdict::Stable);
}

#[test]
fn warm_up_curve_is_a_plateau() {
    let (t, b) = series(400, 0.3 * MIB, 6, |t| {
        100.0 * MIB + 80.0 * MIB * (1.0 - (-t / 40.0).exp())
    });
    let a = verdict(&t, &b);
    assert_eq!(a.verdict, Verdict::Plateau, "{a:?}");
    assert!(matches!(a.reason, Reason::TailFlattened { .. }));
}

#[test]
fn grow_then_flat_is_a_plateau() {
    let (t, b) = series(300, 0.2 * MIB, 7, |t| 10.0 * MIB + 0.5 * MIB * t.min(120.0));
    assert_eq!(verdict(&t, &b).verdict, Verdict::Plateau);
}

#[test]
fn staircase_is_a_leak() {
    // 10 MiB steps every 40 s with flat stretches in between.
    let (t, b) = series(400, 0.1 * MIB, 8, |t| {
        10.0 * MIB + 10.0 * MIB * (t / 40.0).floor()
    });
    let a = verdict(&t, &b);
    assert_eq!(a.verdict, Verdict::Leak, "{a:?}");
    assert!((a.slope / MIB - 0.25).abs() < 0.1, "{}", a.slope / MIB);
}

#[test]
fn leak_restarted_by_oom_kills_is_a_leak_when_the_restarts_are_known() {
    // Climbs to ~210 MiB, is killed, restarts at 10 MiB: three restarts, given as PID changes.
    let (t, b) = series(400, 0.5 * MIB, 9, |t| 10.0 * MIB + 2.0 * MIB * (t % 100.0));
    let a = analyze_with_breaks(&t, &b, &[100, 200, 300], &Config::default()).unwrap();
    assert_eq!(a.restarts, 3);
    assert_eq!(a.verdict, Verdict::Leak, "{a:?}");
    assert!((a.slope / MIB - 2.0).abs() < 0.1);
    assert!(!a.drops_may_be_restarts);
    // Without segmentation the fit sees a zig-zag with a much weaker slope.
    let plain = analyze(
        &t,
        &b,
        &Config {
            restart_drop: None,
            ..Config::default()
        },
    )
    .unwrap();
    assert!(plain.slope < a.slope);
    // Unmarked, the four runs are a deep sawtooth with flat troughs, the same shape as a GC
    // sawtooth around a flat baseline: stable, with the note that the drops may be restarts.
    let a = verdict(&t, &b);
    assert_eq!(a.verdict, Verdict::Stable, "{a:?}");
    assert!(a.drops_may_be_restarts, "{a:?}");
}

/// The QA reproducer's shape: start-up at 50 MB, +10 MB/s, killed and restarted every 20 s
/// (sampled every second), with a little noise.
fn restarted_leak(runs: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
    let (t, b) = series(20 * runs, 0.2 * MIB, seed, |t| {
        50.0 * MIB + 10.0 * MIB * (t % 20.0)
    });
    let breaks = (1..runs).map(|k| 20 * k).collect();
    (t, b, breaks)
}

/// Known restarts are never sawtooth periods: each run's growth is what counts, whatever the
/// number of runs. Six runs or more used to have their restarts counted as a sawtooth whose
/// windows (23 samples) were longer than a run: "too few points".
#[test]
fn a_leak_restarted_any_number_of_times_is_a_leak_with_known_restarts() {
    for runs in [3, 6, 8, 12] {
        let (t, b, breaks) = restarted_leak(runs, runs as u64);
        let a = analyze_with_breaks(&t, &b, &breaks, &Config::default()).unwrap();
        assert_eq!(a.verdict, Verdict::Leak, "{runs} runs: {a:?}");
        assert_eq!(a.restarts, runs - 1, "{runs} runs");
        assert!((a.slope / MIB - 10.0).abs() < 1.0, "{runs} runs: {a:?}");
        assert!(a.window_samples < 20, "{runs} runs: {a:?}");
        assert_eq!(a.sawtooth, None, "{runs} runs");
    }
}

/// Runs shorter than the count-based window (40 runs of 10 samples, windows of 14) keep three
/// points each: with one merged window per run, no run had a trend and the leak was
/// inconclusive.
#[test]
fn runs_shorter_than_a_window_keep_points_of_their_own() {
    let (t, b) = series(400, 0.1 * MIB, 21, |t| 50.0 * MIB + 10.0 * MIB * (t % 10.0));
    let breaks: Vec<usize> = (1..40).map(|k| 10 * k).collect();
    let a = analyze_with_breaks(&t, &b, &breaks, &Config::default()).unwrap();
    assert_eq!(a.verdict, Verdict::Leak, "{a:?}");
    assert_eq!(a.baseline.len(), 120, "{a:?}");
}

/// Without restart markers the same runs cannot be told from a GC sawtooth: judged by their
/// (flat) troughs, stable with the note, for any number of runs from three on.
#[test]
fn an_unmarked_restarted_leak_is_read_by_its_troughs_with_a_note() {
    for runs in [3, 6, 8, 12] {
        let (t, b, _) = restarted_leak(runs, 100 + runs as u64);
        let a = verdict(&t, &b);
        assert_eq!(a.verdict, Verdict::Stable, "{runs} runs: {a:?}");
        assert!(a.drops_may_be_restarts, "{runs} runs: {a:?}");
        assert_eq!(a.restarts, 0, "{runs} runs");
    }
    // One drop is no cycle: a restart, and the two runs are a leak.
    let (t, b, _) = restarted_leak(2, 7);
    let a = verdict(&t, &b);
    assert_eq!(a.restarts, 1, "{a:?}");
    assert_eq!(a.verdict, Verdict::Leak, "{a:?}");
}

/// The QA reproducer's deep sawtooth: a buffer fills 10 → 100 MB over 10 s and is cleared, on a
/// flat baseline. With 5 periods its drops were restarts (a leak), with 7 a sawtooth (stable).
#[test]
fn a_deep_sawtooth_is_stable_whatever_the_number_of_periods() {
    for periods in [3, 5, 6, 7, 10] {
        let (t, b) = series(10 * periods, 0.0, 1, |t| {
            10.0 * MIB + 10.0 * MIB * (t % 10.0)
        });
        let a = verdict(&t, &b);
        assert_eq!(a.verdict, Verdict::Stable, "{periods} periods: {a:?}");
        assert_eq!(a.restarts, 0, "{periods} periods: {a:?}");
        assert!(a.drops_may_be_restarts, "{periods} periods");
        // With noise, and cut mid-period.
        let (t, b) = series(10 * periods + 4, 0.3 * MIB, periods as u64, |t| {
            10.0 * MIB + 10.0 * MIB * (t % 10.0)
        });
        let a = verdict(&t, &b);
        assert_eq!(
            a.verdict,
            Verdict::Stable,
            "{periods} periods, noisy: {a:?}"
        );
    }
}

/// What survives each drop rises: a leak under the sawtooth, also with few periods.
#[test]
fn a_deep_sawtooth_with_rising_troughs_is_a_leak() {
    for periods in [6, 7, 10] {
        let (t, b) = series(10 * periods, 0.2 * MIB, periods as u64, |t| {
            10.0 * MIB + 0.5 * MIB * t + 10.0 * MIB * (t % 10.0)
        });
        let a = verdict(&t, &b);
        assert_eq!(a.verdict, Verdict::Leak, "{periods} periods: {a:?}");
        assert!(
            (a.slope / MIB - 0.5).abs() < 0.2,
            "{periods} periods: {a:?}"
        );
        assert!(!a.drops_may_be_restarts);
    }
}

#[test]
fn a_first_sample_at_a_sawtooth_peak_is_no_restart() {
    // The demo's shape: memory kept steadily under a sawtooth of temporaries much larger than
    // the start-up level, sampled from its first peak on: the first fall to the trough is below
    // half the first sample.
    let (t, b) = series(60, 0.0, 3, |t| {
        1.0 * MIB + 0.2 * MIB * t + sawtooth(t + 3.9, 4.0, 6.0 * MIB)
    });
    assert!(b[1] < 0.5 * b[0], "{:?}", &b[..3]);
    let a = verdict(&t, &b);
    assert_eq!(a.restarts, 0, "{a:?}");
    assert_eq!(a.verdict, Verdict::Leak, "{a:?}");
}

#[test]
fn known_pid_change_splits_segments() {
    let (t, b) = series(200, 0.0, 10, |t| {
        10.0 * MIB + 1.0 * MIB * (t % 100.0) * 0.3 + 2.0 * MIB
    });
    let a = analyze_with_breaks(&t, &b, &[100], &Config::default()).unwrap();
    assert_eq!(a.segments.len(), 2);
    assert_eq!(a.segments[1].start, 100);
}

#[test]
fn samples_all_at_one_time_are_inconclusive_for_that_reason() {
    let t = [5.0; 12];
    let bytes: Vec<f64> = (0..12).map(|i| f64::from(i) * MIB).collect();
    let a = verdict(&t, &bytes);
    assert_eq!(a.verdict, Verdict::Inconclusive);
    assert_eq!(a.reason, Reason::NoTimeSpan);
    assert_eq!(a.reason.code(), "no_time_span");
}

#[test]
fn too_short_is_inconclusive() {
    let a = verdict(&[0.0, 1.0, 2.0], &[1.0 * MIB, 2.0 * MIB, 3.0 * MIB]);
    assert_eq!(a.verdict, Verdict::Inconclusive);
    assert!(matches!(a.reason, Reason::TooFewPoints { .. }));
    let empty = verdict(&[], &[]);
    assert_eq!(empty.verdict, Verdict::Inconclusive);
    assert!(empty.slope.is_nan());
}

/// A sawtooth whose troughs rise (a leak under GC churn) with a period longer than the
/// count-based window (120 samples, 30 windows of 4, period 11): windows span a period, so each
/// holds a trough. With 4-sample windows the baseline followed the sawtooth's phase and the tail
/// guard called this a plateau.
#[test]
fn sawtooth_with_rising_troughs_longer_than_a_window_is_a_leak() {
    let t: Vec<f64> = (0..120).map(|i| f64::from(i) * 0.25).collect();
    let b: Vec<f64> = (0..120)
        .map(|i| {
            13.0 * MIB + 20.0 * MIB * f64::from(i) / 120.0 + f64::from((i + 3) % 11) * 5.0 * MIB
        })
        .collect();
    let a = verdict(&t, &b);
    assert_eq!(a.verdict, Verdict::Leak, "{a:?}");
    assert!(a.window_samples >= 11, "{}", a.window_samples);
    // The same without the trend: stable.
    let flat: Vec<f64> = (0..120)
        .map(|i| 13.0 * MIB + f64::from((i + 3) % 11) * 5.0 * MIB)
        .collect();
    assert_eq!(verdict(&t, &flat).verdict, Verdict::Stable);
}

/// A warm-up to 212 MiB over 5 s, then 15 s exactly flat: the rank test sees the rise, the
/// median slope is zero (most pairs are flat) and the tail is flat: a plateau, not "too noisy".
#[test]
fn early_warm_up_then_flat_is_a_plateau() {
    let t: Vec<f64> = (0..81).map(|i| f64::from(i) * 0.25).collect();
    let b: Vec<f64> = t
        .iter()
        .map(|&t| 12.0 * MIB + (t / 5.0).min(1.0) * 200.0 * MIB)
        .collect();
    let a = verdict(&t, &b);
    assert_eq!(a.verdict, Verdict::Plateau, "{a:?}");
    assert!(matches!(a.reason, Reason::TailFlattened { .. }), "{a:?}");
}

/// Four windows cannot pass the test at 0.01 even rising at every point: inconclusive (too few
/// points), not "stable".
#[test]
fn a_baseline_too_short_for_the_test_is_inconclusive() {
    let (t, b) = series(120, 0.0, 1, |t| 100.0 * MIB + 0.2 * MIB * t);
    let config = Config {
        windows: 4,
        ..Config::default()
    };
    let a = analyze(&t, &b, &config).unwrap();
    assert_eq!(a.verdict, Verdict::Inconclusive, "{a:?}");
    assert_eq!(a.reason, Reason::TooFewPoints { needed: 6 });
    let strict = Config {
        alpha: 1e-20,
        ..Config::default()
    };
    let a = analyze(&t, &b, &strict).unwrap();
    assert_eq!(a.verdict, Verdict::Inconclusive, "{a:?}");
}

#[test]
fn wild_noise_is_inconclusive() {
    let (t, b) = series(12, 200.0 * MIB, 11, |_| 300.0 * MIB);
    let a = verdict(&t, &b);
    assert_eq!(a.verdict, Verdict::Inconclusive, "{a:?}");
    assert_eq!(a.reason, Reason::TooNoisy);
}

#[test]
fn tiny_step_is_not_a_leak() {
    // One 4 KiB page more after a while: significant but immaterial.
    let t: Vec<f64> = (0..60).map(f64::from).collect();
    let b: Vec<f64> = t
        .iter()
        .map(|&t| {
            if t < 30.0 {
                2.0 * MIB
            } else {
                2.0 * MIB + 4096.0
            }
        })
        .collect();
    assert_eq!(verdict(&t, &b).verdict, Verdict::Stable);
}

#[test]
fn time_to_limit_is_a_range() {
    let (t, b) = series(300, 1.0 * MIB, 12, |t| 100.0 * MIB + 1.0 * MIB * t);
    let cfg = Config {
        limit: Some(1000.0 * MIB),
        ..Config::default()
    };
    let a = analyze(&t, &b, &cfg).unwrap();
    let ttl = a.time_to_limit.expect("leak with a limit");
    // 100 + 299 ≈ 399 MiB now, 601 MiB left at 1 MiB/s.
    assert!((ttl.estimate - 601.0).abs() < 30.0, "{ttl:?}");
    assert!(ttl.earliest <= ttl.estimate && ttl.estimate <= ttl.latest.unwrap());
    assert!(verdict(&t, &b).time_to_limit.is_none());
}

#[test]
fn bad_input_is_an_error() {
    let cfg = Config::default();
    assert_eq!(
        analyze(&[0.0], &[], &cfg),
        Err(StatsError::LengthMismatch { t: 1, bytes: 0 })
    );
    assert_eq!(
        analyze(&[0.0, f64::NAN], &[1.0, 1.0], &cfg),
        Err(StatsError::NonFinite { index: 1 })
    );
    assert_eq!(
        analyze(&[1.0, 0.0], &[1.0, 1.0], &cfg),
        Err(StatsError::TimeDecreasing { index: 1 })
    );
    assert!(analyze_with_breaks(&[0.0], &[1.0], &[5], &cfg).is_err());
}

#[test]
fn million_samples_aggregate() {
    let (t, b) = series(1_000_000, 1.0 * MIB, 13, |t| 100.0 * MIB + 100.0 * t);
    let a = verdict(&t, &b);
    assert!(a.baseline.len() <= Config::default().windows);
    assert_eq!(a.verdict, Verdict::Leak);
}

fn shape() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (20usize..200, 0u64..1000, 0usize..4).prop_map(|(n, seed, kind)| {
        series(n, 1.0 * MIB, seed, move |t| match kind {
            0 => 50.0 * MIB,
            1 => 50.0 * MIB + 2.0 * MIB * t,
            2 => 50.0 * MIB + sawtooth(t, 5.0, 20.0 * MIB),
            _ => 50.0 * MIB + 3.0 * MIB * t.min(n as f64 / 3.0),
        })
    })
}

proptest! {
    #[test]
    fn adding_a_constant_keeps_the_verdict((t, b) in shape(), c in 0.0f64..(10.0 * MIB)) {
        let cfg = Config { min_growth_fraction: 0.0, stable_fraction: 0.0, restart_drop: None, ..Config::default() };
        let a = analyze(&t, &b, &cfg).unwrap();
        let shifted: Vec<f64> = b.iter().map(|x| x + c).collect();
        let s = analyze(&t, &shifted, &cfg).unwrap();
        prop_assert_eq!(a.verdict, s.verdict);
        prop_assert!((a.slope - s.slope).abs() <= 1e-6 * a.slope.abs().max(1.0));
        prop_assert_eq!(a.p_value, s.p_value);
    }

    #[test]
    fn rescaling_time_keeps_the_verdict((t, b) in shape(), k in 0.001f64..1000.0) {
        let cfg = Config::default();
        let a = analyze(&t, &b, &cfg).unwrap();
        let scaled: Vec<f64> = t.iter().map(|x| x * k).collect();
        let s = analyze(&scaled, &b, &cfg).unwrap();
        prop_assert_eq!(a.verdict, s.verdict);
        prop_assert!((a.slope - s.slope * k).abs() <= 1e-6 * a.slope.abs().max(1.0));
        prop_assert_eq!(a.p_value, s.p_value);
    }

    #[test]
    fn never_panics_and_interval_contains_the_slope(
        raw in proptest::collection::vec((0.0f64..10.0, -1e12f64..1e12), 0..300),
    ) {
        let mut t = 0.0;
        let (mut ts, mut bs) = (Vec::new(), Vec::new());
        for (dt, b) in raw {
            t += dt;
            ts.push(t);
            bs.push(b);
        }
        let a = analyze(&ts, &bs, &Config::default()).unwrap();
        if a.slope.is_finite() {
            prop_assert!(a.slope_ci.0 <= a.slope && a.slope <= a.slope_ci.1);
        }
        prop_assert!((0.0..=1.0).contains(&a.p_value));
    }
}

#[test]
fn the_tail_window_takes_its_boundary_point_in_any_time_unit() {
    // Found by `rescaling_time_keeps_the_verdict`: a baseline point exactly at the tail
    // window's start fell inside it in seconds and outside it in kiloseconds (rounding), so the
    // tail slope, and with it leak vs plateau, depended on the time unit.
    let t: Vec<f64> = (0..38).map(f64::from).collect();
    let b = [
        52847036.28521142,
        56503061.854029275,
        57866402.47818138,
        60881284.77428301,
        65798724.84415566,
        67653812.43277255,
        71860170.67153004,
        73772585.70136696,
        77331525.02460793,
        81750876.88908109,
        84170923.20098269,
        87781382.46852627,
        90848495.23324054,
        93049411.86713335,
        93161274.8783035,
        92013572.50910772,
        92601347.39752243,
        91553981.78719592,
        93191235.53490946,
        91529626.56444345,
        92862192.24096185,
        92369373.27413392,
        93285559.22321847,
        91635289.9935205,
        91967591.10682893,
        91981614.13620692,
        92316907.5850764,
        92314297.97557478,
        91538344.73943171,
        92939668.54670188,
        92631628.22811948,
        91405384.12500134,
        92189381.79051928,
        92411757.94532336,
        92888516.45241478,
        92964705.11140656,
        93024648.43396291,
        93191808.47914484,
    ];
    let cfg = Config::default();
    let seconds = analyze(&t, &b, &cfg).unwrap();
    for k in [0.001, 0.1, 3.0, 1000.0] {
        let scaled: Vec<f64> = t.iter().map(|x| x * k).collect();
        assert_eq!(
            analyze(&scaled, &b, &cfg).unwrap().verdict,
            seconds.verdict,
            "k = {k}"
        );
    }
}

/// A call site's buffer filled and freed faster than it is sampled: each sample catches the
/// cycle at another phase, so its live bytes jump between 0 and 512 KiB, and its baseline (the
/// windows' minima) is about zero. Judged against that baseline, "stable" had to rule out
/// growth of 1 KiB over the run: `inconclusive`. Against what the site holds on average
/// (`stable_level_is_mean`, as `report` sets for call sites) it is `stable`; a steady leak
/// under the same churn is still a leak.
#[test]
fn a_site_cycling_from_zero_is_stable_against_its_mean_level() {
    let mut rng = Noise(7);
    let t: Vec<f64> = (0..300).map(|i| i as f64 * 0.033).collect();
    let churn: Vec<f64> = t
        .iter()
        .map(|_| ((rng.next() + 1.0) * 32.0).floor() * 8192.0)
        .collect();
    let site = Config {
        min_growth_bytes: 1024.0,
        restart_drop: None,
        stable_level_is_mean: true,
        ..Config::default()
    };
    let baseline_level = Config {
        stable_level_is_mean: false,
        ..site.clone()
    };
    assert_eq!(analyze(&t, &churn, &site).unwrap().verdict, Verdict::Stable);
    assert_eq!(
        analyze(&t, &churn, &baseline_level).unwrap().verdict,
        Verdict::Inconclusive
    );
    let leaking: Vec<f64> = churn
        .iter()
        .zip(&t)
        .map(|(b, t)| b + 200_000.0 * t)
        .collect();
    assert_eq!(analyze(&t, &leaking, &site).unwrap().verdict, Verdict::Leak);
}
