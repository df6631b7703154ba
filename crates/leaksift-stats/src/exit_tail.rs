//! The exit tail of a series: the last samples of a program that freed its memory as it ended.

/// The last samples `watch` takes for a command's exit, 50 ms apart by default: an exit that
/// frees memory (an interpreter's finalization, `munmap` of large blocks) shows in one or two,
/// and a program that gives its memory back over a longer time keeps that fall in the series.
pub const EXIT_TAIL_MAX_SAMPLES: usize = 2;

/// How many final samples of `values` form the exit tail of a program that ended: they start
/// at the first sample from index `earliest` on that is below the one before it, and none of
/// them rises; at least `keep` samples must remain. 0 when there is no such fall. `earliest`
/// bounds how long before the end a fall may start to count as the exit (e.g. the last
/// [`EXIT_TAIL_MAX_SAMPLES`]); only meaningful for a series whose program is known to have
/// ended.
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
    use super::exit_tail;

    /// Tail within the last two samples, as `watch` asks.
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
