//! Running a pass over the heap dump records on every core: the records are split into
//! contiguous groups of similar size, one worker per group, and progress flows back to the
//! calling thread (which owns the observer).

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use crate::bytes::IdSize;
use crate::error::{ErrorKind, HprofError};
use crate::walk::{SubRecord, each_sub_record};

/// A HEAP_DUMP(_SEGMENT) body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
}

/// Splits `segments` into at most `workers` contiguous, non-empty groups of similar byte size,
/// as index ranges.
pub fn split_segments(segments: &[Segment], workers: usize) -> Vec<Range<usize>> {
    let workers = workers.clamp(1, segments.len().max(1));
    let total: usize = segments.iter().map(|s| s.end - s.start).sum();
    let mut groups = Vec::with_capacity(workers);
    let mut start = 0;
    let mut bytes = 0;
    for (at, segment) in segments.iter().enumerate() {
        bytes += segment.end - segment.start;
        let left = segments.len() - at - 1;
        let wanted = workers - groups.len() - 1;
        let target = total / workers * (groups.len() + 1);
        if wanted > 0 && (bytes >= target || left < wanted) {
            groups.push(start..at + 1);
            start = at + 1;
        }
    }
    if start < segments.len() || groups.is_empty() {
        groups.push(start..segments.len());
    }
    groups
}

/// What a worker gets to report progress and to notice that another worker failed.
#[derive(Debug)]
pub struct Shared<'c> {
    progress: mpsc::Sender<Range<usize>>,
    abort: &'c AtomicBool,
}

/// Progress is reported in steps of this many bytes. The caller releases the mapped pages of
/// each reported range, so a step is also about what each worker keeps resident of the dump
/// (4 MiB steps were tried: no lower peak).
const PROGRESS_STEP: usize = 16 << 20;

impl Shared<'_> {
    /// Calls `each` with the offset, the segment's index and the segment of every sub-record
    /// of `segments` (in order), reporting progress and stopping early (without error) when
    /// another worker has failed.
    pub fn each_sub_record<'a>(
        &self,
        data: &'a [u8],
        segments: &[Segment],
        id_size: IdSize,
        mut each: impl FnMut(usize, usize, &Segment, SubRecord<'a>) -> Result<(), HprofError>,
    ) -> Result<(), HprofError> {
        let mut unreported: Option<Range<usize>> = None;
        for (at, segment) in segments.iter().enumerate() {
            if self.abort.load(Ordering::Relaxed) {
                return Ok(());
            }
            each_sub_record(
                data,
                segment.start,
                segment.end,
                id_size,
                |offset, record| each(offset, at, segment, record),
            )?;
            let done = match unreported.take() {
                Some(range) => range.start..segment.end,
                None => segment.start..segment.end,
            };
            if done.len() >= PROGRESS_STEP {
                let _ = self.progress.send(done);
            } else {
                unreported = Some(done);
            }
        }
        if let Some(done) = unreported {
            let _ = self.progress.send(done);
        }
        Ok(())
    }
}

/// Runs `work` on each worker state on its own thread; `consumed` hears every finished byte
/// range and the bytes read so far. Returns the states in order, or the first worker's error.
pub fn run<W: Send>(
    workers: Vec<W>,
    work: impl Fn(&mut W, &Shared<'_>) -> Result<(), HprofError> + Sync,
    consumed: &mut dyn FnMut(Range<usize>, usize),
) -> Result<Vec<W>, HprofError> {
    let abort = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<Range<usize>>();
    // Each result says whether its worker failed first: a worker that stops because another
    // failed may fail too, and only the first failure tells what is wrong with the dump.
    let results: Vec<(bool, Result<W, HprofError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|mut state| {
                let shared = Shared {
                    progress: sender.clone(),
                    abort: &abort,
                };
                let work = &work;
                scope.spawn(move || {
                    let result = work(&mut state, &shared);
                    let first_failure =
                        result.is_err() && !shared.abort.swap(true, Ordering::Relaxed);
                    (first_failure, result.map(|()| state))
                })
            })
            .collect();
        drop(sender);
        let mut read = 0;
        for done in receiver {
            read += done.len();
            consumed(done, read);
        }
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or((
                    true,
                    Err(HprofError::new(
                        0,
                        ErrorKind::Malformed("a worker thread stopped unexpectedly"),
                    )),
                ))
            })
            .collect()
    });
    let mut states = Vec::with_capacity(results.len());
    let mut failure: Option<HprofError> = None;
    for (first_failure, result) in results {
        match result {
            Ok(state) => states.push(state),
            Err(error) if first_failure || failure.is_none() => failure = Some(error),
            Err(_) => {}
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(states),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(sizes: &[usize]) -> Vec<Segment> {
        let mut at = 0;
        sizes
            .iter()
            .map(|&size| {
                let segment = Segment {
                    start: at,
                    end: at + size,
                };
                at += size;
                segment
            })
            .collect()
    }

    #[test]
    fn groups_are_contiguous_non_empty_and_balanced() {
        let all = segments(&[10; 10]);
        assert_eq!(split_segments(&all, 2), vec![0..5, 5..10]);
        let groups = split_segments(&all, 3);
        assert_eq!(groups.first().map(|g| g.start), Some(0));
        assert_eq!(groups.last().map(|g| g.end), Some(10));
        assert!(groups.windows(2).all(|w| w[0].end == w[1].start));
        assert!(groups.iter().all(|g| !g.is_empty()));
        assert_eq!(split_segments(&all[..2], 8), vec![0..1, 1..2]);
        assert_eq!(split_segments(&[], 4), vec![0..0]);
        let skewed = segments(&[100, 1, 1, 1]);
        assert_eq!(split_segments(&skewed, 2), vec![0..1, 1..4]);
    }
}
