//! The exit tail of a series: the last samples of a program that freed its memory as it ended.

/// A fall counts as the program's exit when it starts within two sampling intervals of the
/// end, and never less than this many seconds: an exit that frees memory (an interpreter's
/// finalization, C++ destructors of globals, `munmap` of large blocks) takes a moment, and a
/// loaded machine stretches it. Measured with three busy loops on the 2-core machine: a
/// two-sample window (100 ms at `watch`'s 50 ms) missed part of such a fall in 2 of 4 runs of
/// the `watch --pid` test, a 100 ms one in 1 of 6 runs of the `report` test. A program that gives its memory back over a longer time before
/// exiting keeps that fall in its series.
pub const EXIT_WINDOW_MIN_S: f64 = 0.2;

/// The index of the first sample (of those at `times`, in seconds) that lies within the exit
/// window before `exit_s`: two sampling `interval_s`, at least [`EXIT_WINDOW_MIN_S`].
pub fn exit_window_start(times: &[f64], exit_s: f64, interval_s: f64) -> usize {
    let window = (2.0 * interval_s).max(EXIT_WINDOW_MIN_S);
    times.partition_point(|&t| t < exit_s - window)
}

/// How many final samples of `values` form the exit tail of a program that ended: they start
/// at the first sample from index `earliest` on that is below the one before it, and none of
/// them rises; at least `keep` samples must remain. 0 when there is no such fall. `earliest`
/// bounds how long before the end a fall may start to count as the exit
/// ([`exit_window_start`]); only meaningful for a series whose program is known to have ended.
pub fn exit_tail(values: &[f64], earliest: usize, keep: usize) -> usize {
    let n = values.len();
    let Some(start) = (earliest.max(keep).max(1)..n).find(|&i| values[i] < values[i - 1]) else {
        return 0;
    };
    let falling = values[start..].windows(2).all(|pair| pair[1] <= pair[0]);
    if falling { n - start } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::{exit_tail, exit_window_start};

    #[test]
    fn the_window_is_two_intervals_and_at_least_the_minimum() {
        let times: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.05).collect();
        // 0.95 s end, 50 ms apart: 200 ms back from 0.95 s starts at 0.75 s (index 15).
        assert_eq!(exit_window_start(&times, 0.95, 0.05), 15);
        // 1 s apart: two intervals.
        let times: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(exit_window_start(&times, 19.0, 1.0), 17);
    }

    /// Tail within the last two samples.
    fn last_two(values: &[f64], keep: usize) -> usize {
        exit_tail(values, values.len().saturating_sub(2), keep)
    }

    #[test]
    fn the_fall_at_the_end_is_the_tail_and_nothing_else() {
        // A fall, then the freed state sampled once more.
        assert_eq!(last_two(&[1.0, 5.0, 9.0, 0.0, 0.0], 1), 2);
        assert_eq!(last_two(&[1.0, 5.0, 9.0, 4.0, 3.0], 1), 2);
        assert_eq!(last_two(&[1.0, 5.0, 9.0, 9.0, 0.0], 1), 1);
        // Flat or rising to the end: no tail.
        assert_eq!(last_two(&[1.0, 5.0, 9.0, 9.0, 9.0], 1), 0);
        assert_eq!(last_two(&[1.0, 5.0, 4.0, 9.0], 1), 0);
        // A fall that rises again is not an exit.
        assert_eq!(last_two(&[1.0, 9.0, 2.0, 3.0], 1), 0);
        // A longer fall loses two samples at most.
        assert_eq!(last_two(&[9.0, 8.0, 7.0, 6.0, 5.0], 1), 2);
        // A fall before the window is not the exit, even when the end is flat.
        assert_eq!(last_two(&[1.0, 9.0, 0.0, 0.0, 0.0], 1), 0);
        assert_eq!(exit_tail(&[1.0, 9.0, 0.0, 0.0, 0.0], 1, 1), 3);
        // Enough samples must remain.
        assert_eq!(last_two(&[5.0, 9.0, 0.0, 0.0], 2), 2);
        assert_eq!(last_two(&[9.0, 0.0, 0.0], 2), 0);
        assert_eq!(last_two(&[5.0, 9.0, 0.0], 2), 1);
        assert_eq!(last_two(&[], 0), 0);
        assert_eq!(last_two(&[3.0], 0), 0);
    }
}
