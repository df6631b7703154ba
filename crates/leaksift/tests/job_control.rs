//! `watch -- CMD` and `record -- CMD` on a real pseudo-terminal: the command gets the terminal
//! (it reads its input, Ctrl-C reaches it once), Ctrl-Z and `fg` work as for a command run
//! directly, signals sent to a process group reach the command exactly once, and the terminal's
//! foreground group is the shell's again when leaksift is done.
//!
//! Each test starts a shell as the session leader of a new pseudo-terminal (its controlling
//! terminal) and types into the master side. The command, `signal_counter.c`, counts the signals
//! it receives and answers lines it reads from the terminal. No assertion depends on timing: the
//! tests wait for output (a minute at most, then fail with the transcript).

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[path = "support/gcc.rs"]
mod gcc;
mod support;
use support::ensure_preload;

/// How long to wait for any expected output before failing.
const PATIENCE: Duration = Duration::from_secs(60);

/// Compiles `tests/programs/watch/signal_counter.c` into `dir`.
fn build_counter(dir: &Path) -> PathBuf {
    gcc::compile("watch", "signal_counter", dir, &["-O1"])
}

/// Everything read from the master side so far, and a signal when more arrives.
type Transcript = Arc<(Mutex<Vec<u8>>, Condvar)>;

/// A shell running as session leader on a new pseudo-terminal, driven through the master side.
struct Session {
    master: std::fs::File,
    shell: Child,
    transcript: Transcript,
    /// Offset in the transcript up to which output has been matched.
    seen: usize,
}

impl Session {
    /// Starts `program args` with the terminal's slave side as its controlling terminal and its
    /// standard streams; `env` adds variables (the leaksift binary, the counter program).
    fn start(program: &str, args: &[&str], env: &[(&str, PathBuf)]) -> Session {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two descriptors into the integers; the other arguments may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened by openpty and are owned by nobody else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut command = Command::new(program);
        command
            .args(args)
            .env("TERM", "dumb")
            .env("PS1", "$ ")
            .env("HISTFILE", "/dev/null")
            .env("INPUTRC", "/dev/null")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        for (name, value) in env {
            command.env(name, value);
        }
        // SAFETY: setsid, ioctl, signal and sigprocmask are async-signal-safe; they run in the
        // child before exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // A login on a terminal starts with every signal at its default action and none
                // blocked. The test harness may not: a CI runner started as a background job
                // ignores SIGINT (and `nohup`, SIGHUP), the shell passes an ignored SIGINT on to
                // `sleep` in `sleep | leaksift …`, and Ctrl-C then never ends that job.
                for signal in 1..libc::SIGRTMIN() {
                    if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                        libc::signal(signal, libc::SIG_DFL);
                    }
                }
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                Ok(())
            });
        }
        let shell = command.spawn().expect("starting the shell on the terminal");
        let master = std::fs::File::from(master);
        let transcript: Transcript = Arc::default();
        let mut reader = master.try_clone().unwrap();
        let sink = Arc::clone(&transcript);
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buffer = [0u8; 4096];
            // EIO once no process has the slave side open any more.
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                let (lock, more) = &*sink;
                // A test that failed while holding the lock poisoned it; keep reading anyway.
                let mut text = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                text.extend_from_slice(&buffer[..n]);
                drop(text);
                more.notify_all();
            }
        });
        Session {
            master,
            shell,
            transcript,
            seen: 0,
        }
    }

    /// `sh -c script`: a shell without job control, so leaksift runs in the session leader's
    /// process group, the terminal's foreground group, and nobody else changes that group.
    fn sh(script: &str, env: &[(&str, PathBuf)]) -> Session {
        Session::start("sh", &["-c", script], env)
    }

    /// An interactive bash with job control (Ctrl-Z, `fg`), as a user runs leaksift.
    fn bash(env: &[(&str, PathBuf)]) -> Session {
        let mut session = Session::start("bash", &["--norc", "--noprofile", "-i"], env);
        session.type_line("echo SHELL-$((40+2))");
        session.expect("SHELL-42");
        session
    }

    fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    fn type_line(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes());
    }

    /// Waits until `needle` appears after what was matched before; returns the rest of its line.
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let (lock, more) = &*self.transcript;
        let mut text = lock.lock().unwrap();
        loop {
            let fresh = &text[self.seen..];
            let found = fresh
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .map(|at| at + needle.len());
            if let Some(end) = found
                && let Some(newline) = fresh[end..].iter().position(|&b| b == b'\n')
            {
                let line = String::from_utf8_lossy(&fresh[end..end + newline]);
                let line = line.trim_end().to_string();
                self.seen += end + newline;
                return line;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "no {needle:?} on the terminal; transcript:\n{}",
                String::from_utf8_lossy(&text)
            );
            text = more.wait_timeout(text, deadline - now).unwrap().0;
        }
    }

    /// The terminal's foreground process group (asked on the master side, which any process may).
    fn foreground_group(&self) -> i32 {
        // SAFETY: tcgetpgrp only reads the terminal's state.
        unsafe { libc::tcgetpgrp(self.master.as_raw_fd()) }
    }

    /// The counter's `counts`/`final` line as (INT, USR1, TERM, HUP, CONT).
    fn counts(&mut self, label: &str) -> [u32; 5] {
        let line = self.expect(&format!("{label} INT="));
        let line = format!("INT={line}");
        let values: Vec<u32> = line
            .split_whitespace()
            .map(|field| field.split_once('=').unwrap().1.parse().unwrap())
            .collect();
        values
            .try_into()
            .unwrap_or_else(|v| panic!("bad counts line {line:?}: {v:?}"))
    }

    /// Asks the counter for its counts until `done` holds for them (a signal forwarded by
    /// leaksift arrives a moment after the one sent); returns them.
    fn counts_once(&mut self, done: impl Fn(&[u32; 5]) -> bool) -> [u32; 5] {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.type_line("count");
            let counts = self.counts("counts");
            if done(&counts) {
                return counts;
            }
            assert!(Instant::now() < deadline, "counts stayed at {counts:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Every process of the session, including commands left behind by a failed test.
        let session = self.shell.id() as i32;
        for pid in processes_of_session(session) {
            // SAFETY: signalling processes of the session this test created.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.shell.wait();
    }
}

fn processes_of_session(session: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat_field(pid, 6) == Some(session))
        .collect()
}

/// Field `n` (1-based, as in proc(5)) of `/proc/PID/stat`, for the numeric fields after the name.
fn stat_field(pid: i32, n: usize) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split_whitespace().nth(n - 3)?.parse().ok()
}

/// The state letter of a process (`T` when stopped).
fn state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .and_then(|i| stat[i + 2..].chars().next())
        .unwrap_or('?')
}

fn wait_for_state(pid: i32, wanted: char) {
    let deadline = Instant::now() + PATIENCE;
    while state(pid) != wanted {
        assert!(
            Instant::now() < deadline,
            "process {pid} never reached state {wanted} (it is {})",
            state(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The counter's first line: (its pid, its process group, its parent: leaksift).
fn ready(session: &mut Session) -> (i32, i32, i32) {
    let line = session.expect("ready pid=");
    let fields: Vec<i32> = format!("pid={line}")
        .split_whitespace()
        .map(|field| field.split_once('=').unwrap().1.parse().unwrap())
        .collect();
    (fields[0], fields[1], fields[2])
}

fn kill_group(group: i32, signal: i32) {
    // SAFETY: signalling a process group the test started.
    let rc = unsafe { libc::kill(-group, signal) };
    assert_eq!(
        rc,
        0,
        "kill -{signal} -{group}: {}",
        std::io::Error::last_os_error()
    );
}

/// The leaksift command line, as the shell sees it (`$LEAKSIFT`, `$PROG`, `$OUT`, `$CSV` from
/// the environment).
fn watch_line() -> &'static str {
    r#""$LEAKSIFT" watch --interval 50ms --out "$CSV" -- "$PROG""#
}

/// The samples CSV of [`watch_line`] in `dir`.
fn samples_csv(dir: &Path) -> PathBuf {
    dir.join("samples.csv")
}

/// Waits until `watch` has taken a sample (a command that exits before the first one gets a
/// different message).
fn wait_for_a_sample(dir: &Path) {
    let csv = samples_csv(dir);
    let deadline = Instant::now() + PATIENCE;
    while std::fs::read_to_string(&csv).map_or(0, |t| t.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "{} got no sample", csv.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn record_line() -> &'static str {
    r#""$LEAKSIFT" record -o "$OUT" -- "$PROG""#
}

/// The variables the command lines use: `$LEAKSIFT`, `$PROG`, `$OUT` (trace), `$CSV` (samples).
fn session_env(dir: &Path, program: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("LEAKSIFT", PathBuf::from(env!("CARGO_BIN_EXE_leaksift"))),
        ("PROG", program.to_path_buf()),
        ("OUT", dir.join("counter.lks")),
        ("CSV", samples_csv(dir)),
    ]
}

/// `sh -c` running `leaksift_line` on the counter (built in a new directory, returned), then
/// reporting leaksift's exit status and waiting to be killed.
fn sh_session(leaksift_line: &str) -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    let program = build_counter(dir.path());
    let script = format!(
        "trap 'echo trapped' INT USR1 TERM HUP; {leaksift_line}; echo \"leaksift exited $?\"; exec sleep 600"
    );
    let session = Session::sh(&script, &session_env(dir.path(), &program));
    (dir, session)
}

#[test]
fn an_interactive_program_under_watch_reads_the_terminal_and_exits_normally() {
    let (dir, mut session) = sh_session(watch_line());
    let shell_group = session.shell.id() as i32;
    let (_, group, _) = ready(&mut session);
    // Before: the command ran in a background group and stopped (SIGTTIN) at its first read.
    session.type_line("hello");
    session.expect("got hello");
    assert_eq!(
        session.foreground_group(),
        group,
        "the command has the terminal"
    );
    wait_for_a_sample(dir.path());
    session.type_line("quit");
    assert_eq!(session.counts("final"), [0; 5]);
    session.expect("command exited with code 0");
    session.expect("leaksift exited 0");
    assert_eq!(
        session.foreground_group(),
        shell_group,
        "the terminal is the shell's again"
    );
}

#[test]
fn ctrl_c_under_watch_reaches_the_command_once_and_the_verdict_is_still_printed() {
    let (dir, mut session) = sh_session(watch_line());
    let shell_group = session.shell.id() as i32;
    let (_, group, _) = ready(&mut session);
    session.send(b"\x03");
    assert_eq!(session.counts_once(|c| c[0] > 0), [1, 0, 0, 0, 0]);
    // A signal sent to the command's process group reaches it once.
    kill_group(group, libc::SIGINT);
    assert_eq!(session.counts_once(|c| c[0] > 1), [2, 0, 0, 0, 0]);
    // Now Ctrl-C ends it: leaksift reports its verdict and passes 128 + SIGINT on.
    wait_for_a_sample(dir.path());
    session.type_line("die");
    session.expect("dying on SIGINT");
    session.send(b"\x03");
    session.expect("command exited with code 130");
    session.expect("leaksift exited 130");
    assert_eq!(session.foreground_group(), shell_group);
}

#[test]
fn ctrl_c_and_group_signals_reach_the_recorded_command_once() {
    ensure_preload();
    let (_dir, mut session) = sh_session(record_line());
    let shell_group = session.shell.id() as i32;
    let (_, group, leaksift) = ready(&mut session);
    assert_eq!(
        session.foreground_group(),
        group,
        "the command has the terminal"
    );
    session.send(b"\x03");
    assert_eq!(session.counts_once(|c| c[0] > 0), [1, 0, 0, 0, 0]);
    // The job's process group, as `kill -USR1 -PGID` or `timeout` would signal it. Before, the
    // command got SIGUSR1 (and SIGTERM, SIGHUP) twice: as a member of the group and forwarded.
    let job = stat_field(leaksift, 5).expect("leaksift's process group");
    kill_group(job, libc::SIGUSR1);
    assert_eq!(session.counts_once(|c| c[1] > 0), [1, 1, 0, 0, 0]);
    kill_group(job, libc::SIGINT);
    assert_eq!(session.counts_once(|c| c[0] > 1), [2, 1, 0, 0, 0]);
    kill_group(job, libc::SIGHUP);
    assert_eq!(session.counts_once(|c| c[3] > 0), [2, 1, 0, 1, 0]);
    // Signals sent to leaksift alone are passed on once too.
    // SAFETY: signalling the leaksift process this test started.
    unsafe { libc::kill(leaksift, libc::SIGUSR1) };
    assert_eq!(session.counts_once(|c| c[1] > 1), [2, 2, 0, 1, 0]);
    // A late duplicate would show in the final counts, read after several round trips.
    session.type_line("quit");
    assert_eq!(session.counts("final"), [2, 2, 0, 1, 0]);
    session.expect("leaksift exited 0");
    assert_eq!(session.foreground_group(), shell_group);
}

/// Types Ctrl-Z in the bash `session`: the `stopped` processes stop, and the shell reports the
/// job stopped and has the terminal.
fn ctrl_z(session: &mut Session, stopped: [i32; 2]) {
    session.send(b"\x1a");
    session.expect("Stopped");
    for pid in stopped {
        wait_for_state(pid, 'T');
    }
    assert_eq!(session.foreground_group(), session.shell.id() as i32);
}

/// Runs `leaksift_line` in an interactive bash, stops it with Ctrl-Z, resumes it with `fg`,
/// and ends the command; `finished` is what leaksift prints then.
fn ctrl_z_then_fg(leaksift_line: &str, finished: &str) {
    let dir = tempfile::tempdir().unwrap();
    let program = build_counter(dir.path());
    let mut session = Session::bash(&session_env(dir.path(), &program));
    session.type_line(leaksift_line);
    let (command, group, leaksift_pid) = ready(&mut session);
    session.type_line("hello");
    session.expect("got hello");
    // Ctrl-Z stops the command; leaksift stops too, so the shell gets the terminal back and
    // reports the job stopped, as for the command run directly.
    ctrl_z(&mut session, [command, leaksift_pid]);
    session.type_line("echo SHELL-$((1+1))");
    session.expect("SHELL-2");
    // `fg` continues leaksift, which gives the terminal back to the command and continues it once.
    session.type_line("fg");
    session.type_line("count");
    assert_eq!(session.counts("counts"), [0, 0, 0, 0, 1]);
    assert_eq!(session.foreground_group(), group);
    if leaksift_line == watch_line() {
        wait_for_a_sample(dir.path());
    }
    session.type_line("quit");
    assert_eq!(session.counts("final"), [0, 0, 0, 0, 1]);
    session.expect(finished);
    session.type_line("echo SHELL-$((2+1))");
    session.expect("SHELL-3");
}

#[test]
fn sigterm_to_leaksift_watch_ends_the_command_and_gives_the_terminal_back() {
    let (dir, mut session) = sh_session(watch_line());
    let shell_group = session.shell.id() as i32;
    let (command, group, leaksift) = ready(&mut session);
    assert_eq!(session.foreground_group(), group);
    wait_for_a_sample(dir.path());
    // SAFETY: signalling the leaksift process this test started.
    unsafe { libc::kill(leaksift, libc::SIGTERM) };
    // The counter survives SIGTERM (it counts it): leaksift kills it after the grace period,
    // prints the verdict on what it sampled, and the terminal is the shell's again.
    session.expect("verdict");
    session.expect("leaksift exited");
    assert_eq!(state(command), '?', "the command is gone");
    assert_eq!(session.foreground_group(), shell_group);
}

/// A server for `check` that appends the name of every signal it gets to `$LOG`.
const LOGGING_SERVER: &str = r#"for s in INT TERM HUP; do trap "echo $s >> '$LOG'; [ $s = INT ] || exit 0" $s; done; while :; do sleep 0.05; done"#;

#[test]
fn ctrl_c_during_check_stops_the_server_with_one_signal() {
    // `check` never gives its server the terminal (its stdin is /dev/null): Ctrl-C reaches
    // leaksift and the scenario (its process group), and the server gets one SIGTERM from
    // leaksift, not the key's SIGINT as well.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("signals.log");
    let started = dir.path().join("started");
    let script = r#"trap 'echo trapped' INT; "$LEAKSIFT" check --ready-delay 0s --warmup 0 --iterations 1000 --scenario 'touch "$STARTED"; sleep 0.05' -- sh -c "$SERVER"; echo "leaksift exited $?"; exec sleep 600"#;
    let mut env = session_env(dir.path(), Path::new("/bin/false"));
    env.extend([
        ("LOG", log.clone()),
        ("STARTED", started.clone()),
        ("SERVER", PathBuf::from(LOGGING_SERVER)),
    ]);
    let mut session = Session::sh(script, &env);
    let shell_group = session.shell.id() as i32;
    let deadline = Instant::now() + PATIENCE;
    while !started.exists() {
        assert!(Instant::now() < deadline, "the scenario never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    session.send(b"\x03");
    session.expect("interrupted");
    session.expect("leaksift exited 2");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "TERM\n");
    assert_eq!(session.foreground_group(), shell_group);
}

/// Runs `leaksift_line` reading a pipe (`sleep 600 | leaksift ...`): the command does not get the
/// terminal, yet Ctrl-Z stops it with leaksift's job and `fg` continues it. Then Ctrl-C ends the
/// job (`sleep` dies, the command reads the end of its input); `finished` is what leaksift
/// prints then.
fn ctrl_z_without_the_terminal(leaksift_line: &str, finished: &str) {
    let dir = tempfile::tempdir().unwrap();
    let program = build_counter(dir.path());
    let mut session = Session::bash(&session_env(dir.path(), &program));
    session.type_line(&format!("sleep 600 | {leaksift_line}"));
    let (command, group, leaksift_pid) = ready(&mut session);
    assert_ne!(
        session.foreground_group(),
        group,
        "stdin is a pipe: no hand-over"
    );
    if leaksift_line == watch_line() {
        wait_for_a_sample(dir.path());
    }
    // Before, leaksift stopped and the command, in a process group of its own, ran on.
    ctrl_z(&mut session, [command, leaksift_pid]);
    session.type_line("fg");
    let deadline = Instant::now() + PATIENCE;
    while state(command) == 'T' {
        assert!(
            Instant::now() < deadline,
            "`fg` did not continue the command"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    session.send(b"\x03");
    session.expect(finished);
    session.type_line("echo SHELL-$((2+1))");
    session.expect("SHELL-3");
}

#[test]
fn ctrl_z_stops_the_command_and_fg_resumes_it_under_watch_and_record() {
    ensure_preload();
    ctrl_z_then_fg(watch_line(), "command exited with code 0");
    ctrl_z_then_fg(record_line(), "trace written to");
    ctrl_z_without_the_terminal(watch_line(), "verdict");
    ctrl_z_without_the_terminal(record_line(), "trace written to");
}

/// The `SigIgn` mask (`/proc/PID/status`) of `leaksift ARGS -- grep SigIgn /proc/self/status`
/// started with SIGHUP and SIGQUIT ignored, as `nohup` and a script's background job leave them.
fn ignored_mask_under(args: &[&str]) -> u64 {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leaksift"));
    command
        .args(args)
        .args(["--", "grep", "SigIgn", "/proc/self/status"])
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (signal) are made.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::signal(libc::SIGQUIT, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = command.output().expect("running leaksift");
    let text = String::from_utf8_lossy(&out.stdout);
    let mask = text
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .unwrap_or_else(|| panic!("no SigIgn line in {text:?}"));
    u64::from_str_radix(mask.trim(), 16).unwrap()
}

/// leaksift installed its signal handlers also over signals it inherited ignored, and exec then
/// started the command with their default action: `nohup leaksift record -- server` died at
/// the hangup that plain `nohup server` survives.
#[test]
fn signals_ignored_by_the_caller_stay_ignored_in_the_command() {
    ensure_preload();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("grep.lks");
    let wanted = (1 << (libc::SIGHUP - 1)) | (1 << (libc::SIGQUIT - 1));
    for args in [
        vec!["record", "-o", trace.to_str().unwrap()],
        vec!["watch", "-q", "--interval", "0.1"],
    ] {
        let mask = ignored_mask_under(&args);
        assert_eq!(mask & wanted, wanted, "{args:?}: SigIgn {mask:x}");
    }
}
