//! The `check` scenario runner: wait until the server is ready, run the scenario command through
//! `sh -c` for the warm-up and the measured iterations, and sample the server after each
//! (optionally after a settle command such as a forced GC, or through a command that prints the
//! value to analyse).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::child::Launched;
use crate::{Pid, Sample, Sampler, WatchError, procfs, size};

/// Environment variable holding the server's PID in every command `check` runs (ready, scenario,
/// before-sample, sample), so that e.g. `jcmd $LEAKSIFT_SERVER_PID GC.run` needs no PID file.
pub const SERVER_PID_VAR: &str = "LEAKSIFT_SERVER_PID";

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
    /// Run after the warm-up and after each measured iteration, before the sample (e.g. a
    /// forced GC); it must exit 0.
    pub before_sample: Option<String>,
    pub measure: Measure,
}

/// What `check` analyses after each iteration. The tree's PSS is sampled in every case; the
/// other two replace it as the analysed value (`Sample::bytes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Measure {
    /// PSS summed over the server's process tree.
    TreePss,
    /// The byte count (units allowed) a shell command prints; it must exit 0 (`--sample-cmd`).
    Command(String),
    /// The bytes of live objects in the heap of the JVM in the server's tree, from
    /// `jcmd PID GC.class_histogram`, which runs a full GC first (`--jvm-heap`).
    JvmHeap,
}

/// A garbage-collected runtime found in the server's process tree: its resident memory follows
/// the collector's heap sizing, not only live data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// A HotSpot/OpenJDK `java` process.
    Jvm,
    /// A Node.js (V8) process.
    Node,
}

impl Runtime {
    /// Machine name for JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Jvm => "jvm",
            Runtime::Node => "node",
        }
    }

    /// Name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Jvm => "the JVM",
            Runtime::Node => "Node.js",
        }
    }
}

/// A process of a garbage-collected runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeProcess {
    pub runtime: Runtime,
    pub pid: Pid,
}

/// The first JVM or Node.js process in the tree under `root` (root included), told by the base
/// name of its executable (`java`, `node`, `nodejs`): wrappers (`sh -c`, `npm start`, `gradle
/// run`) are looked through.
pub fn find_runtime(root: Pid) -> Option<RuntimeProcess> {
    // A bound on the walk: a process tree is acyclic, but PIDs can be reused while walking.
    const MAX_PROCESSES: usize = 4096;
    let mut pending = vec![root];
    let mut visited = 0;
    while let Some(pid) = pending.pop() {
        visited += 1;
        if visited > MAX_PROCESSES {
            break;
        }
        if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) {
            let runtime = match exe.file_name().and_then(|name| name.to_str()) {
                Some("java") => Some(Runtime::Jvm),
                Some("node" | "nodejs") => Some(Runtime::Node),
                _ => None,
            };
            if let Some(runtime) = runtime {
                return Some(RuntimeProcess { runtime, pid });
            }
        }
        pending.extend(procfs::children(pid));
    }
    None
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
                // The timeout bounds a run of the command too: a health check against a port
                // that accepts but never answers (`curl` without `--max-time`) hung `check`.
                let not_ready = || WatchError::NotReady {
                    command: cmd.clone(),
                    seconds: timeout.as_secs_f64(),
                };
                let deadline = started + timeout;
                match run_to_end(
                    shell(cmd, server.pid()),
                    cmd,
                    false,
                    interrupted,
                    Some(deadline),
                ) {
                    Ok(Some(output)) if output.status.success() => return Ok(()),
                    Ok(None) => return Err(not_ready()),
                    Err(WatchError::Interrupted) => return Err(WatchError::Interrupted),
                    // Failed, or could not start: poll again until the timeout.
                    Ok(Some(_)) | Err(_) => {}
                }
                if started.elapsed() >= timeout {
                    return Err(not_ready());
                }
            }
        }
        std::thread::sleep(poll);
    }
}

/// `sh -c command` with stdin from /dev/null and the server's PID in [`SERVER_PID_VAR`].
fn shell(command: &str, server: Pid) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", command])
        .env(SERVER_PID_VAR, server.to_string())
        .stdin(Stdio::null());
    crate::child::end_with_parent(&mut cmd);
    cmd
}

/// Runs `cmd` (shown as `shown` in errors), in a process group of its own, to its end; stdout is
/// captured when `capture_stdout`, else discarded, and stderr always. When the user interrupts
/// (`interrupted`: SIGINT, SIGTERM) or `deadline` passes first, the command and everything it
/// started are stopped (SIGTERM, SIGKILL after [`STOP_GRACE`]): the result is then
/// [`WatchError::Interrupted`], or `None` for the deadline. Before, `check` acted on a signal
/// only once the scenario (a load test of minutes) had ended by itself.
fn run_to_end(
    mut cmd: Command,
    shown: &str,
    capture_stdout: bool,
    interrupted: &AtomicBool,
    deadline: Option<Instant>,
) -> Result<Option<std::process::Output>, WatchError> {
    let stdout = if capture_stdout {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| WatchError::Spawn {
            command: shown.to_string(),
            source,
        })?;
    // Read on threads: a command that writes more than a pipe holds would otherwise block
    // while it is polled.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        pipe.map(|mut pipe| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        })
    };
    let out_reader = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_reader = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let collect = |reader: Option<std::thread::JoinHandle<Vec<u8>>>| {
        reader.and_then(|r| r.join().ok()).unwrap_or_default()
    };
    let group = rustix::process::Pid::from_raw(child.id() as i32);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        let stop = if interrupted.load(Ordering::Relaxed) {
            Some(Err(WatchError::Interrupted))
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            Some(Ok(None))
        } else {
            None
        };
        if let Some(result) = stop {
            stop_group(&mut child, group);
            collect(out_reader);
            collect(err_reader);
            return result;
        }
        std::thread::sleep(POLL);
    };
    // What the command left running in its group (a backgrounded load generator) goes too.
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    Ok(Some(std::process::Output {
        status,
        stdout: collect(out_reader),
        stderr: collect(err_reader),
    }))
}

/// How often a running command is looked at (its end, a signal, its deadline).
const POLL: Duration = Duration::from_millis(10);
/// How long a stopped command gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Stops `child` and its process group `group`: SIGTERM, then SIGKILL after [`STOP_GRACE`].
fn stop_group(child: &mut std::process::Child, group: Option<rustix::process::Pid>) {
    use rustix::process::{Signal, kill_process_group};
    let Some(group) = group else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    // ESRCH (the group is already empty) is expected.
    let _ = kill_process_group(group, Signal::TERM);
    let until = Instant::now() + STOP_GRACE;
    while Instant::now() < until && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(POLL);
    }
    let _ = kill_process_group(group, Signal::KILL);
    let _ = child.wait();
}

/// `": <last non-empty line of stderr>"`, or nothing when stderr is empty.
fn stderr_tail(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default()
}

/// A run of the scenario as the user counts it: warm-up runs from 1, then measured iterations
/// from 1 (iteration 0 is the sample taken after the warm-up), as the JSON and JUnit reports
/// number them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    WarmUp(usize),
    Iteration(usize),
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Run::WarmUp(n) => write!(f, "warm-up run {n}"),
            Run::Iteration(0) => f.write_str("the sample after the warm-up"),
            Run::Iteration(k) => write!(f, "iteration {k}"),
        }
    }
}

/// Runs the scenario once through `sh -c`; its stdout is discarded and the last line of its
/// stderr is quoted when it fails.
pub fn run_scenario(
    command: &str,
    server: Pid,
    run: Run,
    interrupted: &AtomicBool,
) -> Result<(), WatchError> {
    let shown = format!("sh -c {command}");
    let output = run_to_end(shell(command, server), &shown, false, interrupted, None)?
        .ok_or(WatchError::Interrupted)?;
    if output.status.success() {
        return Ok(());
    }
    Err(WatchError::ScenarioFailed {
        command: command.to_string(),
        run,
        status: output.status.to_string(),
        detail: stderr_tail(&output.stderr),
    })
}

/// Runs a command of the sampling step (`role`: `--before-sample`, `--sample-cmd`,
/// `--jvm-heap`) and checks its exit status; returns its output (stdout captured only when
/// `capture_stdout`).
fn run_sample_command(
    role: &'static str,
    shown: &str,
    cmd: Command,
    run: Run,
    capture_stdout: bool,
    interrupted: &AtomicBool,
) -> Result<std::process::Output, WatchError> {
    let output = run_to_end(cmd, shown, capture_stdout, interrupted, None)?
        .ok_or(WatchError::Interrupted)?;
    if output.status.success() {
        return Ok(output);
    }
    Err(WatchError::SampleCommandFailed {
        role,
        command: shown.to_string(),
        run,
        detail: format!("{}{}", output.status, stderr_tail(&output.stderr)),
    })
}

/// Runs `--sample-cmd` and reads the byte count it printed (`123456`, `1.5 MiB`).
fn sample_command_bytes(
    command: &str,
    server: Pid,
    run: Run,
    interrupted: &AtomicBool,
) -> Result<u64, WatchError> {
    const ROLE: &str = "--sample-cmd";
    let output = run_sample_command(
        ROLE,
        command,
        shell(command, server),
        run,
        true,
        interrupted,
    )?;
    let text = String::from_utf8_lossy(&output.stdout);
    let text = text.trim();
    match size::parse_size(text) {
        Some(bytes) if (0.0..=u64::MAX as f64).contains(&bytes) => Ok(bytes.round() as u64),
        _ => Err(WatchError::SampleCommandFailed {
            role: ROLE,
            command: command.to_string(),
            run,
            detail: format!(
                "it printed {:?}, not a byte count (such as `123456` or `1.5 MiB`)",
                text.chars().take(80).collect::<String>()
            ),
        }),
    }
}

/// The bytes of live objects in the JVM `jvm`: `jcmd PID GC.class_histogram` (a full GC, then a
/// count of what survived), see [`parse_class_histogram_total`].
fn jvm_heap_bytes(jvm: Pid, run: Run, interrupted: &AtomicBool) -> Result<u64, WatchError> {
    const ROLE: &str = "--jvm-heap";
    let mut cmd = Command::new("jcmd");
    cmd.arg(jvm.to_string()).arg("GC.class_histogram");
    let shown = format!("jcmd {jvm} GC.class_histogram");
    let output = run_sample_command(ROLE, &shown, cmd, run, true, interrupted)?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_class_histogram_total(&text).ok_or_else(|| WatchError::SampleCommandFailed {
        role: ROLE,
        command: shown,
        run,
        detail: format!(
            "no `Total` line in its output: {:?}",
            text.lines()
                .last()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect::<String>()
        ),
    })
}

/// The byte total of a `jcmd GC.class_histogram` listing: its last line
/// `Total <instances> <bytes>` (shallow sizes of every live object, exact to the byte and the
/// same for every collector; `GC.heap_info`, the other candidate, rounds ZGC's heap to MiB and
/// has a layout per collector). `None` without such a line.
pub fn parse_class_histogram_total(text: &str) -> Option<u64> {
    text.lines().rev().find_map(|line| {
        let mut fields = line.split_whitespace();
        if fields.next() != Some("Total") {
            return None;
        }
        let _instances: u64 = fields.next()?.parse().ok()?;
        let bytes = fields.next()?.parse().ok()?;
        fields.next().is_none().then_some(bytes)
    })
}

/// Warm-up, then measured iterations, sampling the server after the warm-up and after each
/// iteration (after `before_sample`; with a [`Measure`] other than the tree's PSS, `bytes` is its
/// value and the PSS fields stay as sampled). `on_iteration(k, sample)` reports progress.
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
        let probe = Probe::resolve(&options.measure, server, Run::Iteration(0))?;
        for k in 0..options.warmup {
            step(server, interrupted, &options.scenario, Run::WarmUp(k + 1))?;
        }
        for k in 0..=options.iterations {
            let run = Run::Iteration(k);
            if k > 0 {
                step(server, interrupted, &options.scenario, run)?;
            }
            let pid = server.pid();
            if let Some(command) = &options.before_sample {
                let cmd = shell(command, pid);
                run_sample_command("--before-sample", command, cmd, run, false, interrupted)
                    .map_err(|e| server_gone(server, run).unwrap_or(e))?;
            }
            let mut sample = sampler
                .sample()
                .and_then(|s| s.ok_or(WatchError::ProcessGone { pid: pid.0 }))
                .map_err(|e| server_gone(server, run).unwrap_or(e))?;
            let measured = match probe {
                Probe::TreePss => None,
                Probe::Command(command) => {
                    Some(sample_command_bytes(command, pid, run, interrupted))
                }
                Probe::Jvm(jvm) => Some(jvm_heap_bytes(jvm, run, interrupted)),
            };
            if let Some(measured) = measured {
                sample.bytes = measured.map_err(|e| server_gone(server, run).unwrap_or(e))?;
            }
            on_iteration(k, &sample);
            samples.push(sample);
        }
        Ok(())
    })()
    .err();
    CheckRun { samples, error }
}

/// A [`Measure`] ready to take: `--jvm-heap`'s JVM found.
#[derive(Clone, Copy)]
enum Probe<'a> {
    TreePss,
    Command(&'a str),
    Jvm(Pid),
}

impl<'a> Probe<'a> {
    /// Finds the JVM once, before the warm-up: the server is ready, so it runs (maybe below a
    /// wrapper), and a server without one fails before any scenario run.
    fn resolve(measure: &'a Measure, server: &Launched, run: Run) -> Result<Self, WatchError> {
        Ok(match measure {
            Measure::TreePss => Probe::TreePss,
            Measure::Command(command) => Probe::Command(command),
            Measure::JvmHeap => find_runtime(server.pid())
                .filter(|found| found.runtime == Runtime::Jvm)
                .map(|found| Probe::Jvm(found.pid))
                .ok_or_else(|| WatchError::SampleCommandFailed {
                    role: "--jvm-heap",
                    command: "jcmd".to_string(),
                    run,
                    detail: format!(
                        "no java process in the process tree of `{}`",
                        server.command()
                    ),
                })?,
        })
    }
}

/// One scenario run, with the checks around it.
fn step(
    server: &mut Launched,
    interrupted: &AtomicBool,
    scenario: &str,
    run: Run,
) -> Result<(), WatchError> {
    if interrupted.load(Ordering::Relaxed) {
        return Err(WatchError::Interrupted);
    }
    // The scenario runs in a process group of its own: a signal to leaksift (Ctrl-C on its
    // terminal, a SIGTERM) stops it through `interrupted`; a scenario that dies of one anyway
    // meanwhile is reported as the interruption.
    run_scenario(scenario, server.pid(), run, interrupted).map_err(|e| {
        if interrupted.load(Ordering::Relaxed) {
            WatchError::Interrupted
        } else {
            e
        }
    })?;
    match server_gone(server, run) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The server's end, if it ended (during `run`), as the error to report.
fn server_gone(server: &mut Launched, run: Run) -> Option<WatchError> {
    server.ended().map(|status| WatchError::ServerExited {
        command: server.command().to_string(),
        status: status.to_string(),
        run,
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
            before_sample: None,
            measure: Measure::TreePss,
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
        let flag = AtomicBool::new(false);
        let err =
            run_scenario("echo boom >&2; exit 4", Pid(1), Run::Iteration(3), &flag).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("failed in iteration 3") && text.contains("boom"),
            "{text}"
        );
        let err = run_scenario("exit 4", Pid(1), Run::WarmUp(2), &flag).unwrap_err();
        assert!(err.to_string().contains("failed in warm-up run 2"), "{err}");
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

    fn options(before_sample: Option<&str>, sample_cmd: Option<&str>) -> CheckOptions {
        CheckOptions {
            scenario: "true".into(),
            warmup: 1,
            iterations: 5,
            ready: Ready::Delay(Duration::ZERO),
            ready_timeout: Duration::from_secs(5),
            before_sample: before_sample.map(String::from),
            measure: sample_cmd.map_or(Measure::TreePss, |c| Measure::Command(c.to_string())),
        }
    }

    fn run_with(opts: &CheckOptions) -> (CheckRun, Pid) {
        let mut server = sleeper();
        let pid = server.pid();
        let mut sampler = Sampler::new(&Target::Tree {
            root: pid,
            orphans: false,
        })
        .unwrap();
        let flag = AtomicBool::new(false);
        (
            run_iterations(&mut server, &mut sampler, opts, &flag, |_, _| {}),
            pid,
        )
    }

    #[test]
    fn sample_cmd_value_replaces_pss_and_sees_the_server_pid() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pids");
        let settle = format!("echo ${SERVER_PID_VAR} >> {}", log.display());
        // 1 MiB more at each sample: the command's value, not the sleeper's PSS, is analysed.
        let counter = dir.path().join("n");
        let sample = format!(
            "n=$(cat {c} 2>/dev/null || echo 0); echo $((n + 1)) > {c}; echo \"$((n + 1)) MiB\"",
            c = counter.display()
        );
        let (run, pid) = run_with(&options(Some(&settle), Some(&sample)));
        assert!(run.error.is_none(), "{:?}", run.error);
        let bytes: Vec<u64> = run.samples.iter().map(|s| s.bytes).collect();
        assert_eq!(bytes, (1..=6).map(|n| n << 20).collect::<Vec<u64>>());
        assert!(run.samples.iter().all(|s| s.pss.is_some_and(|p| p > 0)));
        let pids = std::fs::read_to_string(&log).unwrap();
        assert_eq!(pids.lines().collect::<Vec<_>>(), vec![pid.to_string(); 6]);
    }

    #[test]
    fn a_failing_or_unreadable_sample_command_ends_the_run() {
        let (run, _) = run_with(&options(Some("echo no gc >&2; exit 3"), None));
        let text = run.error.unwrap().to_string();
        assert!(
            text.contains("--before-sample")
                && text.contains("failed in the sample after the warm-up")
                && text.contains("no gc"),
            "{text}"
        );
        assert!(run.samples.is_empty());
        let (run, _) = run_with(&options(None, Some("echo 'used: lots'")));
        let text = run.error.unwrap().to_string();
        assert!(
            text.contains("--sample-cmd") && text.contains("\"used: lots\""),
            "{text}"
        );
        let (run, _) = run_with(&options(None, Some("echo -5")));
        assert!(run.error.is_some());
    }

    #[test]
    fn runtimes_are_found_below_wrappers() {
        let mut server = sleeper();
        assert_eq!(find_runtime(server.pid()), None);
        server.stop(Duration::from_secs(1));
        if Command::new("node").arg("--version").output().is_err() {
            eprintln!("node not found: skipping the Node.js detection");
            return;
        }
        let argv = ["sh", "-c", "node -e 'setTimeout(() => {}, 30000)'; true"].map(OsString::from);
        let mut wrapped = Launched::spawn(&argv, Streams::Inherit).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut found = None;
        while found.is_none() && Instant::now() < deadline {
            found = find_runtime(wrapped.pid()).map(|f| f.runtime);
            std::thread::sleep(Duration::from_millis(20));
        }
        wrapped.stop(Duration::from_secs(1));
        assert_eq!(found, Some(Runtime::Node));
    }

    /// The head and tail of `jcmd PID GC.class_histogram` of OpenJDK 17
    /// (tests/programs/gc_servers/GcServer.java).
    const HISTOGRAM: &str = "15648:
 num     #instances         #bytes  class name (module)
-------------------------------------------------------
   1:          7573         348696  [B (java.base@17.0.15)
   2:          1613         198080  java.lang.Class (java.base@17.0.15)
 373:             1             16  sun.nio.fs.NativeBuffers$1 (java.base@17.0.15)
Total         27828        1245096
";

    #[test]
    fn class_histogram_total() {
        assert_eq!(parse_class_histogram_total(HISTOGRAM), Some(1_245_096));
        // A refused attach, a truncated listing, a malformed total: no figure.
        let refused =
            "com.sun.tools.attach.AttachNotSupportedException: Unable to open socket file";
        assert_eq!(parse_class_histogram_total(refused), None);
        let truncated = &HISTOGRAM[..HISTOGRAM.find("Total").unwrap()];
        assert_eq!(parse_class_histogram_total(truncated), None);
        assert_eq!(parse_class_histogram_total("Total 12 lots"), None);
        assert_eq!(parse_class_histogram_total("Total 12 34 56"), None);
        assert_eq!(
            parse_class_histogram_total("Total 1 99999999999999999999999"),
            None
        );
    }

    #[test]
    fn jvm_heap_without_a_jvm_in_the_tree_is_an_error() {
        let mut opts = options(None, None);
        opts.measure = Measure::JvmHeap;
        let (run, _) = run_with(&opts);
        let text = run.error.unwrap().to_string();
        assert!(
            text.contains("--jvm-heap") && text.contains("no java process"),
            "{text}"
        );
        assert!(run.samples.is_empty());
    }
}
