//! The `check` scenario runner: wait until the server is ready, run the scenario command through
//! `sh -c` for the warm-up and the measured iterations, and sample the server after each.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::child::Launched;
use crate::{Sample, Sampler, WatchError};

/// How `check` decides that the server is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ready {
    /// Sleep this long after starting it.
    Delay(Duration),
    /// Poll this shell command every 100 ms until it exits 0.
    Command(String),
}

#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub scenario: String,
    pub warmup: usize,
    pub iterations: usize,
    pub ready: Ready,
    pub ready_timeout: Duration,
}

/// Samples taken: index 0 after the warm-up, index k after measured iteration k. `error` is why
/// the run ended early, if it did.
#[derive(Debug)]
pub struct CheckRun {
    pub samples: Vec<Sample>,
    pub error: Option<WatchError>,
}

/// Waits until the server is ready; fails when it exits first, the timeout passes or the user
/// interrupts.
pub fn wait_ready(
    server: &mut Launched,
    ready: &Ready,
    timeout: Duration,
    interrupted: &AtomicBool,
) -> Result<(), WatchError> {
    let started = Instant::now();
    let poll = Duration::from_millis(100);
    loop {
        if interrupted.load(Ordering::Relaxed) {
            return Err(WatchError::Interrupted);
        }
        if let Some(status) = server.ended() {
            return Err(WatchError::ExitedEarly {
                command: server.command().to_string(),
                status: status.to_string(),
            });
        }
        match ready {
            Ready::Delay(delay) if started.elapsed() >= *delay => return Ok(()),
            Ready::Delay(_) => {}
            Ready::Command(cmd) => {
                let ok = Command::new("sh")
                    .args(["-c", cmd])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    return Ok(());
                }
                if started.elapsed() >= timeout {
                    return Err(WatchError::NotReady {
                        command: cmd.clone(),
                        seconds: timeout.as_secs_f64(),
                    });
                }
            }
        }
        std::thread::sleep(poll);
    }
}

/// Runs the scenario once through `sh -c`; its stdout is discarded and the last line of its
/// stderr is quoted when it fails.
pub fn run_scenario(command: &str, iteration: usize) -> Result<(), WatchError> {
    let output = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| WatchError::Spawn {
            command: format!("sh -c {command}"),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let detail = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    Err(WatchError::ScenarioFailed {
        command: command.to_string(),
        iteration,
        status: output.status.to_string(),
        detail,
    })
}

/// Warm-up, then measured iterations, sampling the server after the warm-up and after each
/// iteration. `on_iteration(k, sample)` reports progress.
pub fn run_iterations(
    server: &mut Launched,
    sampler: &mut Sampler,
    options: &CheckOptions,
    interrupted: &AtomicBool,
    mut on_iteration: impl FnMut(usize, &Sample),
) -> CheckRun {
    // Grown as samples arrive: `--iterations` is the user's number, and reserving it up front
    // aborted the process (leaving the server running) for a huge one.
    let mut samples = Vec::new();
    let error = (|| {
        for k in 0..options.warmup {
            step(server, interrupted, &options.scenario, k + 1)?;
        }
        for k in 0..=options.iterations {
            if k > 0 {
                step(server, interrupted, &options.scenario, options.warmup + k)?;
            }
            let pid = server.pid().0;
            let sample = sampler
                .sample()
                .and_then(|s| s.ok_or(WatchError::ProcessGone { pid }))
                .map_err(|e| server_gone(server).unwrap_or(e))?;
            on_iteration(k, &sample);
            samples.push(sample);
        }
        Ok(())
    })()
    .err();
    CheckRun { samples, error }
}

/// One scenario run, with the checks around it.
fn step(
    server: &mut Launched,
    interrupted: &AtomicBool,
    scenario: &str,
    iteration: usize,
) -> Result<(), WatchError> {
    if interrupted.load(Ordering::Relaxed) {
        return Err(WatchError::Interrupted);
    }
    // On a terminal, Ctrl-C also reaches the scenario (same process group): report the
    // interruption, not the scenario's death by SIGINT.
    run_scenario(scenario, iteration).map_err(|e| {
        if interrupted.load(Ordering::Relaxed) {
            WatchError::Interrupted
        } else {
            e
        }
    })?;
    match server_gone(server) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn server_gone(server: &mut Launched) -> Option<WatchError> {
    server.ended().map(|status| WatchError::ExitedEarly {
        command: server.command().to_string(),
        status: status.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;
    use crate::child::Streams;
    use std::ffi::OsString;

    fn sleeper() -> Launched {
        let argv = ["sleep", "30"].map(OsString::from);
        Launched::spawn(&argv, Streams::Inherit).unwrap()
    }

    #[test]
    fn runs_iterations_and_samples_each() {
        let mut server = sleeper();
        let mut sampler = Sampler::new(&Target::Tree {
            root: server.pid(),
            orphans: false,
        })
        .unwrap();
        let opts = CheckOptions {
            scenario: "true".into(),
            warmup: 2,
            iterations: 4,
            ready: Ready::Delay(Duration::ZERO),
            ready_timeout: Duration::from_secs(5),
        };
        let flag = AtomicBool::new(false);
        wait_ready(&mut server, &opts.ready, opts.ready_timeout, &flag).unwrap();
        let mut seen = Vec::new();
        let run = run_iterations(&mut server, &mut sampler, &opts, &flag, |k, _| seen.push(k));
        assert!(run.error.is_none(), "{:?}", run.error);
        assert_eq!(run.samples.len(), 5);
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn failing_scenario_is_reported_with_its_stderr() {
        let err = run_scenario("echo boom >&2; exit 4", 3).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("iteration 3") && text.contains("boom"),
            "{text}"
        );
    }

    #[test]
    fn ready_command_and_timeouts() {
        let flag = AtomicBool::new(false);
        let mut server = sleeper();
        let never = Ready::Command("false".into());
        let err = wait_ready(&mut server, &never, Duration::from_millis(300), &flag).unwrap_err();
        assert!(matches!(err, WatchError::NotReady { .. }));
        wait_ready(
            &mut server,
            &Ready::Command("true".into()),
            Duration::from_secs(5),
            &flag,
        )
        .unwrap();
        let argv = ["sh", "-c", "exit 5"].map(OsString::from);
        let mut dead = Launched::spawn(&argv, Streams::Inherit).unwrap();
        let err = wait_ready(&mut dead, &never, Duration::from_secs(5), &flag).unwrap_err();
        assert!(matches!(err, WatchError::ExitedEarly { .. }), "{err}");
    }
}
