//! The sampling loop of `watch`: samples at a fixed rate until the duration ends, the launched
//! command exits, the target vanishes or the user interrupts; the samples taken are always kept.

use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::child::Launched;
use crate::{Sample, Sampler, WatchError};

/// Smallest interval `watch` accepts: below it the sampler's own cost and scheduler jitter
/// dominate.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// How long to sleep at most between checks of the stop flag and the child.
const POLL: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, Debug)]
pub struct RecordOptions {
    pub interval: Duration,
    pub duration: Option<Duration>,
}

/// Why sampling ended.
#[derive(Debug)]
pub enum Stop {
    DurationReached,
    Interrupted,
    ChildExited(ExitStatus),
    Failed(WatchError),
}

#[derive(Debug)]
pub struct Recording {
    pub samples: Vec<Sample>,
    pub stop: Stop,
}

/// Samples `sampler` every `interval`; `on_sample` sees all samples so far after each one.
///
/// A launched command is first sampled one interval after it started, not at once: at once it is
/// a process that has just exec'd (tens of KiB before the loader maps anything), and that
/// sample, far below every later one, would sit in the first baseline window and weigh on the
/// verdict.
pub fn record(
    sampler: &mut Sampler,
    mut child: Option<&mut Launched>,
    options: &RecordOptions,
    interrupted: &AtomicBool,
    mut on_sample: impl FnMut(&[Sample]),
) -> Recording {
    let interval = options.interval.max(MIN_INTERVAL);
    let mut samples = Vec::new();
    let started = Instant::now();
    let mut next = started;
    if child.is_some() {
        next += interval;
        if let Some(duration) = options.duration {
            next = next.min(started + duration);
        }
        wait_until(next, child.as_deref_mut(), interrupted);
    }
    let stop = loop {
        if interrupted.load(Ordering::Relaxed) {
            break Stop::Interrupted;
        }
        if let Some(status) = child.as_deref_mut().and_then(Launched::try_wait) {
            break Stop::ChildExited(status);
        }
        match sampler.sample() {
            Ok(Some(sample)) => {
                samples.push(sample);
                on_sample(&samples);
            }
            Ok(None) => {}
            Err(error) => {
                // A launched command that just exited makes its /proc files vanish first.
                let exited = child
                    .as_deref_mut()
                    .and_then(|c| c.wait_for(Duration::from_millis(500)));
                break match exited {
                    Some(status) => Stop::ChildExited(status),
                    None => Stop::Failed(error),
                };
            }
        }
        if options.duration.is_some_and(|d| started.elapsed() >= d) {
            break Stop::DurationReached;
        }
        next += interval;
        if let Some(duration) = options.duration {
            // A duration shorter than the interval ends the run on time, with a last sample.
            next = next.min(started + duration);
        }
        let now = Instant::now();
        if next < now {
            // Fell behind (a slow smaps_rollup, a busy machine): skip the missed ticks.
            next = now;
        }
        wait_until(next, child.as_deref_mut(), interrupted);
    };
    Recording { samples, stop }
}

/// Sleeps until `next`, or until the command exits or the user interrupts.
fn wait_until(next: Instant, mut child: Option<&mut Launched>, interrupted: &AtomicBool) {
    while let Some(left) = next.checked_duration_since(Instant::now()) {
        // The command is looked at every poll, not every interval: its exit ends the run at
        // once, and a Ctrl-Z on the terminal is passed on to leaksift's job at once.
        let exited = child.as_deref_mut().and_then(Launched::try_wait).is_some();
        if left.is_zero() || exited || interrupted.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(left.min(POLL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::Streams;
    use crate::{Pid, Target};

    #[test]
    fn stops_when_the_command_exits() {
        let argv = ["sh", "-c", "sleep 0.3; exit 3"].map(std::ffi::OsString::from);
        let mut child = Launched::spawn(&argv, Streams::Inherit).unwrap();
        let mut sampler = Sampler::new(&Target::Tree {
            root: child.pid(),
            orphans: false,
        })
        .unwrap();
        let opts = RecordOptions {
            interval: Duration::from_millis(20),
            duration: Some(Duration::from_secs(20)),
        };
        let rec = record(
            &mut sampler,
            Some(&mut child),
            &opts,
            &AtomicBool::new(false),
            |_| {},
        );
        match rec.stop {
            Stop::ChildExited(status) => assert_eq!(crate::child::exit_code(status), 3),
            other => panic!("{other:?}"),
        }
        assert!(rec.samples.len() >= 3, "{}", rec.samples.len());
        assert!(rec.samples.iter().all(|s| s.bytes > 0));
        // Not sampled at once: just exec'd, it has barely any memory yet.
        assert!(rec.samples[0].t >= 0.02, "{:?}", rec.samples[0]);
    }

    #[test]
    fn stops_after_the_duration_and_on_interrupt() {
        let me = Target::Process {
            pid: Pid(std::process::id()),
            pss: false,
        };
        let mut sampler = Sampler::new(&me).unwrap();
        let opts = RecordOptions {
            interval: Duration::from_millis(10),
            duration: Some(Duration::from_millis(200)),
        };
        let rec = record(&mut sampler, None, &opts, &AtomicBool::new(false), |_| {});
        assert!(matches!(rec.stop, Stop::DurationReached));
        assert!(rec.samples.len() >= 5);
        assert!(rec.samples.windows(2).all(|w| w[0].t < w[1].t));
        // The run ends at the duration, not at the next tick an interval later.
        let opts = RecordOptions {
            interval: Duration::from_secs(30),
            duration: Some(Duration::from_millis(50)),
        };
        let rec = record(&mut sampler, None, &opts, &AtomicBool::new(false), |_| {});
        assert!(matches!(rec.stop, Stop::DurationReached));
        assert_eq!(rec.samples.len(), 2);
        assert!(rec.samples[1].t < 30.0, "{:?}", rec.samples[1]);
        let stop = AtomicBool::new(true);
        let rec = record(&mut sampler, None, &opts, &stop, |_| {});
        assert!(matches!(rec.stop, Stop::Interrupted));
    }
}
