//! Growth by call site: each stack's live bytes sampled over the run, then classified by the same
//! trend engine as `watch` (`leaksift-stats`), which finds the leak suspects of a process that
//! never exits.
//!
//! Sampling is bounded: samples start 1 ms apart, and whenever [`MAX_SAMPLES`] have been taken
//! every other one is dropped and the interval doubles, so a run of any length keeps between
//! `MAX_SAMPLES / 2` and `MAX_SAMPLES` evenly spaced samples. A stack's series is stored sparsely:
//! one `(sample, bytes)` entry per sample at which its live bytes had changed.

use leaksift_stats::{Analysis as TrendAnalysis, Config as TrendConfig, StatsError};
use leaksift_trace::model::{ProcessEnd, ScanTrigger};

use crate::replay::{Analysis, StackIndex, StackStats};

/// Upper bound on samples kept per run (even, so halving pairs samples up exactly).
pub const MAX_SAMPLES: usize = 512;
const INITIAL_INTERVAL_NS: u64 = 1_000_000;

/// Samples of every stack's live bytes over the run.
#[derive(Debug)]
pub struct SiteSampler {
    interval_ns: u64,
    next_due_ns: u64,
    /// Sample times, nanoseconds since the start of tracing.
    times: Vec<u64>,
    /// Per stack: `(sample index, live bytes)` for each sample where the value had changed.
    changes: Vec<Vec<(u32, u64)>>,
    dirty: Vec<bool>,
    dirty_list: Vec<StackIndex>,
}

impl Default for SiteSampler {
    fn default() -> Self {
        SiteSampler {
            interval_ns: INITIAL_INTERVAL_NS,
            next_due_ns: 0,
            times: Vec::new(),
            changes: Vec::new(),
            dirty: Vec::new(),
            dirty_list: Vec::new(),
        }
    }
}

impl SiteSampler {
    pub(crate) fn grow(&mut self, stacks: usize) {
        self.changes.resize_with(stacks, Vec::new);
        self.dirty.resize(stacks, false);
    }

    /// Notes that `stack`'s live bytes changed since the last sample.
    pub(crate) fn mark(&mut self, stack: StackIndex) {
        let slot = stack.0 as usize;
        if !self.dirty[slot] {
            self.dirty[slot] = true;
            self.dirty_list.push(stack);
        }
    }

    /// Takes a sample of the state as of `time_ns` if one is due.
    pub(crate) fn maybe_sample(&mut self, time_ns: u64, stats: &[StackStats]) {
        if time_ns >= self.next_due_ns {
            self.sample(time_ns, stats);
            self.next_due_ns = time_ns.saturating_add(self.interval_ns);
        }
    }

    /// Takes the samples due before `until_ns` during a stretch without events, in which no
    /// live bytes changed: without them, a site that stopped growing when the program went
    /// quiet had its flat part reduced to the final sample, and the tail guard never saw it
    /// (a pool that grew for 4 s of an 8 s run was a leak). The interval doubles as samples are
    /// halved, so a long idle stretch costs a bounded number of samples.
    pub(crate) fn idle_until(&mut self, until_ns: u64, stats: &[StackStats]) {
        while self.next_due_ns < until_ns {
            let due = self.next_due_ns;
            self.sample(due, stats);
            self.next_due_ns = due.saturating_add(self.interval_ns);
        }
    }

    /// Takes the final sample (the state at the end of the trace).
    pub(crate) fn finish(&mut self, time_ns: u64, live_bytes: &[u64]) {
        if self.times.last().is_some_and(|&last| last >= time_ns) && self.dirty_list.is_empty() {
            return;
        }
        let index = self.push_time(time_ns);
        for stack in std::mem::take(&mut self.dirty_list) {
            let slot = stack.0 as usize;
            self.dirty[slot] = false;
            Self::record(&mut self.changes[slot], index, live_bytes[slot]);
        }
    }

    fn sample(&mut self, time_ns: u64, stats: &[StackStats]) {
        let index = self.push_time(time_ns);
        for stack in std::mem::take(&mut self.dirty_list) {
            let slot = stack.0 as usize;
            self.dirty[slot] = false;
            Self::record(&mut self.changes[slot], index, stats[slot].live_bytes);
        }
        if self.times.len() >= MAX_SAMPLES {
            self.halve();
        }
    }

    fn push_time(&mut self, time_ns: u64) -> u32 {
        // A final sample may land on the last sample's time; it then replaces that sample.
        if self.times.last().is_some_and(|&last| last >= time_ns) {
            return (self.times.len() - 1) as u32;
        }
        self.times.push(time_ns);
        (self.times.len() - 1) as u32
    }

    fn record(changes: &mut Vec<(u32, u64)>, index: u32, bytes: u64) {
        match changes.last_mut() {
            Some(last) if last.0 == index => last.1 = bytes,
            _ => changes.push((index, bytes)),
        }
    }

    /// Keeps samples 1, 3, 5, …: new sample `j` is old sample `2j + 1`, and the value at new
    /// sample `j` is the last change at an old index `i` with `i / 2 <= j`.
    fn halve(&mut self) {
        let times = std::mem::take(&mut self.times);
        self.times = times.into_iter().skip(1).step_by(2).collect();
        for changes in &mut self.changes {
            let mut merged: Vec<(u32, u64)> = Vec::with_capacity(changes.len());
            for &(index, bytes) in changes.iter() {
                Self::record(&mut merged, index / 2, bytes);
            }
            *changes = merged;
        }
        self.interval_ns = self.interval_ns.saturating_mul(2);
    }

    /// The current interval between samples, nanoseconds.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// Number of samples taken.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether no sample was taken.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Sample times in seconds since the start of tracing.
    pub fn times_s(&self) -> Vec<f64> {
        self.times.iter().map(|&t| t as f64 / 1e9).collect()
    }

    /// `stack`'s live bytes at sample `index`.
    pub fn value_at(&self, stack: StackIndex, index: usize) -> u64 {
        let changes = &self.changes[stack.0 as usize];
        let after = changes.partition_point(|&(at, _)| at as usize <= index);
        after.checked_sub(1).map_or(0, |last| changes[last].1)
    }

    /// `stack`'s live bytes at every sample.
    pub fn series(&self, stack: StackIndex) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.times.len());
        let mut current = 0u64;
        let mut changes = self.changes[stack.0 as usize].iter().peekable();
        for index in 0..self.times.len() as u32 {
            while let Some(&&(at, bytes)) = changes.peek() {
                if at > index {
                    break;
                }
                current = bytes;
                changes.next();
            }
            out.push(current as f64);
        }
        out
    }
}

/// One call site's growth over the run.
#[derive(Debug)]
pub struct SiteGrowth {
    /// Index of the call site in the `sites` given to [`call_site_growth`].
    pub site: usize,
    pub live_bytes_at_end: u64,
    /// Live bytes at the last sample analysed: before the site's exit tail (see
    /// [`call_site_growth`]), else the same as `live_bytes_at_end`.
    pub live_bytes_before_exit: u64,
    pub trend: TrendAnalysis,
}

/// Classifies the growth of the `limit` call sites holding the most live bytes at the end of the
/// run; a site is one or more stacks whose live bytes are summed sample by sample. Sites whose
/// series the trend engine rejects (too few samples) are left out.
///
/// When the program exited, a site's exit tail ([`leaksift_stats::exit_tail`]: a fall within
/// two sampling intervals, at least 200 ms, of the exit scan, and the flat samples after it) is
/// its
/// teardown and
/// is left out, as `watch` does for a command's exit:
/// a C++ program's global cache freed by its destructor after `main` returned had 0 bytes at
/// the end, so the site that grew for the whole run was not analysed at all. "At the end" then
/// means before that tail.
pub fn call_site_growth(
    analysis: &Analysis,
    sites: &[&[StackIndex]],
    limit: usize,
    config: &TrendConfig,
) -> Vec<SiteGrowth> {
    let samples = analysis.sites.len();
    let live_at = |site: usize, index: usize| -> u64 {
        sites[site]
            .iter()
            .map(|&s| analysis.sites.value_at(s, index))
            .fold(0u64, u64::saturating_add)
    };
    let times = analysis.sites.times_s();
    // A fall counts as the exit from two sampling intervals (at least 200 ms) before the exit
    // scan (the program's `atexit` handlers and C++ destructors of globals run just before it),
    // or before the end of a trace without one. The samples from there on are all a tail may
    // hold: what follows the fall (idle samples while the scan runs) is flat.
    let exit_ns = match analysis.scan {
        Some(scan) if scan.trigger == ScanTrigger::Exit => scan.time.0,
        _ => analysis.duration.0,
    };
    let earliest = leaksift_stats::exit_window_start(
        &times,
        exit_ns as f64 / 1e9,
        analysis.sites.interval_ns() as f64 / 1e9,
    );
    // Per site: how many samples its exit tail takes, and its live bytes just before them.
    let before_exit = |site: usize| -> (usize, u64) {
        let from = earliest.saturating_sub(1);
        let end: Vec<f64> = (from..samples)
            .map(|index| live_at(site, index) as f64)
            .collect();
        let keep = config.min_samples.saturating_sub(from);
        // An exec frees nothing first (no destructors or exit handlers run): no tail.
        let tail = match analysis.end {
            Some(ProcessEnd::Exited(_)) => leaksift_stats::exit_tail(&end, earliest - from, keep),
            Some(ProcessEnd::Exec) | None => 0,
        };
        let held = samples
            .checked_sub(tail + 1)
            .map_or(0, |index| live_at(site, index));
        (tail, held)
    };
    let live_bytes = |site: usize| -> u64 {
        sites[site]
            .iter()
            .map(|&s| analysis.stats(s).live_bytes)
            .fold(0u64, u64::saturating_add)
    };
    let mut candidates: Vec<(usize, usize, u64)> = (0..sites.len())
        .map(|site| {
            let (tail, held) = before_exit(site);
            (site, tail, held)
        })
        .filter(|&(_, _, held)| held > 0)
        .collect();
    candidates.sort_by_key(|&(site, _, held)| (std::cmp::Reverse(held), site));
    candidates.truncate(limit);
    candidates
        .into_iter()
        .filter_map(|(site, tail, held)| {
            let kept = times.len() - tail;
            let mut series = vec![0.0; kept];
            for &stack in sites[site] {
                for (total, bytes) in series.iter_mut().zip(analysis.sites.series(stack)) {
                    *total += bytes;
                }
            }
            let trend: Result<TrendAnalysis, StatsError> =
                leaksift_stats::analyze(&times[..kept], &series, config);
            trend.ok().map(|trend| SiteGrowth {
                site,
                live_bytes_at_end: live_bytes(site),
                live_bytes_before_exit: held,
                trend,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use leaksift_trace::model::{AllocKind, Event, StackId, ThreadId, TraceTime};

    use super::*;
    use crate::replay::Replay;
    use crate::view::site_trend_config;

    #[test]
    fn a_steadily_growing_site_is_a_leak_and_a_churning_one_is_not() {
        let mut replay = Replay::new();
        for id in [1, 2] {
            replay.event(&Event::Stack {
                id: StackId(id),
                frames: vec![u64::from(id)],
            });
        }
        let alloc = |time: u64, address: u64, size: u64, stack: u32| Event::Alloc {
            time: TraceTime(time),
            thread: ThreadId(0),
            address,
            size,
            stack: StackId(stack),
            kind: AllocKind::Malloc,
        };
        // Over 10 s: site 1 keeps 512 bytes of every request; site 2 holds at most 8 KiB.
        for i in 0..10_000u64 {
            let time = i * 1_000_000;
            replay.event(&alloc(time, 0x1000_0000 + i * 1024, 512, 1));
            let churn = 0x9000_0000 + (i % 8) * 0x10000;
            if i >= 8 {
                replay.event(&Event::Free {
                    time: TraceTime(time),
                    thread: ThreadId(0),
                    address: churn,
                });
            }
            replay.event(&alloc(time, churn, 1024, 2));
        }
        let analysis = replay.finish();
        let stacks: Vec<[StackIndex; 1]> = analysis.stacks.indices().map(|s| [s]).collect();
        let singles: Vec<&[StackIndex]> = stacks.iter().map(|s| s.as_slice()).collect();
        let sites = call_site_growth(&analysis, &singles, 10, &site_trend_config());
        let verdict = |id: u32| {
            sites
                .iter()
                .find(|s| analysis.stacks.id(stacks[s.site][0]) == StackId(id))
                .map(|s| s.trend.verdict)
                .unwrap()
        };
        assert_eq!(verdict(1), leaksift_stats::Verdict::Leak);
        assert_ne!(verdict(2), leaksift_stats::Verdict::Leak);
        assert_eq!(sites[0].live_bytes_at_end, 512 * 10_000);
    }

    /// A pool that grows for 4 s, then a program with nothing to do for 4 s (no events until the
    /// one at the end): the quiet stretch is sampled too, so the site is a plateau. Sampled
    /// only at events, its flat part was the final sample alone and the site was a leak.
    #[test]
    fn a_site_that_stops_growing_when_the_program_goes_quiet_is_a_plateau() {
        let mut replay = Replay::new();
        replay.event(&Event::Stack {
            id: StackId(1),
            frames: vec![1],
        });
        for i in 0..4_000u64 {
            replay.event(&Event::Alloc {
                time: TraceTime(i * 1_000_000),
                thread: ThreadId(0),
                address: 0x1000_0000 + i * 512,
                size: 256,
                stack: StackId(1),
                kind: AllocKind::Malloc,
            });
        }
        replay.event(&Event::Stack {
            id: StackId(2),
            frames: vec![2],
        });
        replay.event(&Event::Alloc {
            time: TraceTime(8_000_000_000),
            thread: ThreadId(0),
            address: 0x9000_0000,
            size: 16,
            stack: StackId(2),
            kind: AllocKind::Malloc,
        });
        let analysis = replay.finish();
        assert!(
            analysis.sites.len() > 100,
            "{} samples",
            analysis.sites.len()
        );
        let pool: Vec<StackIndex> = analysis
            .stacks
            .indices()
            .filter(|&s| analysis.stacks.id(s) == StackId(1))
            .collect();
        let sites = call_site_growth(&analysis, &[pool.as_slice()], 10, &site_trend_config());
        assert_eq!(sites[0].trend.verdict, leaksift_stats::Verdict::Plateau);
    }
}
