//! Restart segmentation and the per-window-minimum baseline that removes a GC/temporaries sawtooth.

use std::collections::VecDeque;
use std::ops::Range;

/// One point of the baseline: the smallest sample of a window and the time it was taken.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub t: f64,
    pub bytes: f64,
}

/// Samples per baseline window so that a series of `n` samples gives about `windows` windows.
pub fn window_len(n: usize, windows: usize) -> usize {
    n.div_ceil(windows.max(1)).max(1)
}

/// A repeated drop pattern: the drops of a sawtooth and its period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sawtooth {
    /// Samples per cycle: the series' length over its number of drops.
    pub period: f64,
    /// Drops counted (steps down larger than [`DROP_STEPS`] typical steps up).
    pub drops: usize,
    /// Of those, drops that fall below half of the sample before them: deep enough to be a
    /// process restarting as well as a collection.
    pub deep_drops: usize,
}

/// The sawtooth in `bytes`, when it drops at least [`MIN_DROPS`] times. A drop is a step down
/// larger than [`DROP_STEPS`] typical steps up (the median rise between consecutive samples): a
/// GC or a batch freeing what piled up, not noise, which falls about as far as it rises. Steps
/// into a sample listed in `breaks` (a known restart, e.g. a PID change) are neither drops nor
/// rises: a restart is not a sawtooth cycle, however many there are (counting them made eight
/// restarted runs of a leak one "sawtooth" whose windows were longer than a run).
pub fn sawtooth(bytes: &[f64], breaks: &[usize]) -> Option<Sawtooth> {
    let steps = || {
        (1..bytes.len())
            .filter(|i| !breaks.contains(i))
            .map(|i| (bytes[i - 1], bytes[i]))
    };
    let mut rises: Vec<f64> = steps().map(|(a, b)| b - a).filter(|d| *d > 0.0).collect();
    if rises.len() < 2 {
        return None;
    }
    let mid = rises.len() / 2;
    let (_, typical_rise, _) = rises.select_nth_unstable_by(mid, f64::total_cmp);
    let typical_rise = *typical_rise;
    let (mut drops, mut deep_drops) = (0, 0);
    for (a, b) in steps() {
        if a - b > DROP_STEPS * typical_rise {
            drops += 1;
            if b < 0.5 * a {
                deep_drops += 1;
            }
        }
    }
    (drops >= MIN_DROPS).then(|| Sawtooth {
        period: bytes.len() as f64 / drops as f64,
        drops,
        deep_drops,
    })
}

/// A sawtooth needs this many drops (three cycles, the last possibly partial) to be judged by
/// its troughs: with them, the troughs show whether what survives each drop stays flat or
/// rises. One drop is no cycle; it is a restart when it falls below half the recent minimum.
/// This was 6, so a deep sawtooth of 5 periods had its drops read as restarts (a false leak of
/// its 10 MB/s climbs) and the same shape with 7 periods was stable.
pub const MIN_DROPS: usize = 2;
/// A step down counts as a drop when larger than this many typical steps up.
const DROP_STEPS: f64 = 4.0;

/// How many windows back the restart test looks for the "recent baseline" it compares against.
/// Three windows span several sawtooth periods, so a GC drop from a peak to the baseline is never
/// mistaken for a restart; a restart falls to the start-up level, far below the recent minimum.
const RESTART_LOOKBACK_WINDOWS: usize = 3;

/// Splits sample indices into segments: a new segment starts at every index in `breaks` (e.g. a
/// PID change) and, when `drop` is `Some(f)`, at every sample below `f` × the minimum of the
/// preceding `3 × window` samples of the current segment (a restart after an OOM kill), once
/// the segment holds `window` samples: until then the "recent minimum" may be a single sawtooth
/// peak (the demo's first sample, taken at a peak of its temporaries, made a fall to the trough
/// a restart).
pub fn segments(
    bytes: &[f64],
    breaks: &[usize],
    window: usize,
    drop: Option<f64>,
) -> Vec<Range<usize>> {
    let lookback = window * RESTART_LOOKBACK_WINDOWS;
    let mut out = Vec::new();
    let mut start = 0;
    // Monotonic deque of indices whose values increase: front is the minimum of the look-back.
    let mut recent: VecDeque<usize> = VecDeque::new();
    let mut breaks: Vec<usize> = breaks.to_vec();
    breaks.sort_unstable();
    let mut next_break = breaks.iter().peekable();
    for i in 0..bytes.len() {
        let mut forced = false;
        while next_break.next_if(|&&b| b <= i).is_some_and(|&b| b == i) {
            forced = i > start;
        }
        let dropped = match (drop, recent.front()) {
            (Some(f), Some(&m)) if i >= start + window.max(1) => bytes[i] < f * bytes[m],
            _ => false,
        };
        if forced || dropped {
            out.push(start..i);
            start = i;
            recent.clear();
        }
        while recent.back().is_some_and(|&b| bytes[b] >= bytes[i]) {
            recent.pop_back();
        }
        recent.push_back(i);
        while recent.front().is_some_and(|&f| f + lookback <= i) {
            recent.pop_front();
        }
    }
    if start < bytes.len() {
        out.push(start..bytes.len());
    }
    out
}

/// The minimum of each consecutive window of `window` samples within `range`; a short remainder is
/// merged into the last window (a short window's minimum misses the sawtooth trough and would
/// fake growth at the end). Each minimum is taken over at least `reach` samples: a window shorter
/// than that also looks back into the samples before it (within `range`), so that it spans a
/// whole sawtooth period and holds a trough even when the windows must be shorter than the
/// period (fewer than six periods in the series, or a run between restarts shorter than a
/// period), instead of a sample from the sawtooth's upper part that moves with its phase.
pub fn window_minima(
    t: &[f64],
    bytes: &[f64],
    range: Range<usize>,
    window: usize,
    reach: usize,
) -> Vec<Point> {
    let len = range.len();
    let count = (len / window.max(1)).max(1);
    let mut points = Vec::with_capacity(count);
    for k in 0..count {
        let lo = range.start + k * window;
        let hi = if k + 1 == count {
            range.end
        } else {
            lo + window
        };
        if lo >= hi {
            break;
        }
        let from = hi.saturating_sub(reach).clamp(range.start, lo);
        let mut best = from;
        for i in from + 1..hi {
            if bytes[i] < bytes[best] {
                best = i;
            }
        }
        points.push(Point {
            t: t[best],
            bytes: bytes[best],
        });
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sawtooth_period_counts_the_drops() {
        // Rises by 3 for 9 samples, then falls back: a period of 10 samples.
        let saw: Vec<f64> = (0..200).map(|i| 100.0 + f64::from(i % 10) * 3.0).collect();
        let period = sawtooth(&saw, &[]).unwrap().period;
        assert!((period - 10.0).abs() < 0.6, "{period}");
        // Noise falls about as far as it rises; a steady rise never falls.
        let mut state = 12345u32;
        let noise: Vec<f64> = (0..200)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                100.0 + f64::from((state >> 16) % 13) - 6.0
            })
            .collect();
        assert_eq!(sawtooth(&noise, &[]), None);
        let rise: Vec<f64> = (0..200).map(|i| f64::from(i) * 2.0).collect();
        assert_eq!(sawtooth(&rise, &[]), None);
    }

    #[test]
    fn sawtooth_drop_is_not_a_restart() {
        let bytes: Vec<f64> = (0..300).map(|i| 100.0 + f64::from(i % 10) * 30.0).collect();
        assert_eq!(segments(&bytes, &[], 10, Some(0.5)), vec![0..300]);
    }

    #[test]
    fn restart_splits() {
        let mut bytes: Vec<f64> = (0..100).map(|i| 100.0 + f64::from(i) * 10.0).collect();
        bytes.extend((0..50).map(|i| 100.0 + f64::from(i) * 10.0));
        assert_eq!(segments(&bytes, &[], 5, Some(0.5)), vec![0..100, 100..150]);
        assert_eq!(segments(&bytes, &[], 5, None), vec![0..150]);
        assert_eq!(segments(&bytes, &[40], 5, None), vec![0..40, 40..150]);
    }

    #[test]
    fn minima_merge_the_remainder() {
        let t: Vec<f64> = (0..10).map(f64::from).collect();
        let b = [5.0, 4.0, 6.0, 3.0, 9.0, 8.0, 7.0, 9.0, 9.0, 1.0];
        let pts = window_minima(&t, &b, 0..10, 3, 3);
        assert_eq!(pts.len(), 3);
        assert_eq!(pts[0], Point { t: 1.0, bytes: 4.0 });
        assert_eq!(pts[2], Point { t: 9.0, bytes: 1.0 });
        // Reaching back 4 samples: the third window [4, 6) also sees sample 3.
        assert_eq!(
            window_minima(&t, &b, 0..6, 2, 2)[2],
            Point { t: 5.0, bytes: 8.0 }
        );
        assert_eq!(
            window_minima(&t, &b, 0..6, 2, 4)[2],
            Point { t: 3.0, bytes: 3.0 }
        );
        // Never before the range.
        let pts = window_minima(&t, &b, 2..10, 3, 5);
        assert_eq!(pts[0], Point { t: 3.0, bytes: 3.0 });
    }

    #[test]
    fn drops_at_known_restarts_are_no_sawtooth() {
        // Eight runs climbing 10 per sample for 20 samples, restarted: seven drops, all at
        // known restarts.
        let bytes: Vec<f64> = (0..160).map(|i| 50.0 + f64::from(i % 20) * 10.0).collect();
        let breaks: Vec<usize> = (1..8).map(|k| k * 20).collect();
        assert_eq!(sawtooth(&bytes, &breaks), None);
        let saw = sawtooth(&bytes, &[]).unwrap();
        assert_eq!((saw.drops, saw.deep_drops), (7, 7));
        // Two drops are a sawtooth, one is not.
        assert_eq!(sawtooth(&bytes[..60], &[]).map(|s| s.drops), Some(2));
        assert_eq!(sawtooth(&bytes[..40], &[]), None);
    }
}
