//! `leaksift watch` and `check` on the patterns real processes use that broke them: commands that
//! `exec` (wrappers such as `env`, `bash -c`), commands that read stdin, runs killed with SIGKILL
//! (the CSV must hold what was sampled), kernel threads, and failing scenarios.
//!
//! No assertion depends on timing: programs wait for leaksift's own output (CSV rows) instead of
//! sleeping, and every run has a generous `timeout`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod one_line_error;

use one_line_error::assert_one_line_error;

fn leaksift() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leaksift"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts exit status 0 and returns stdout.
fn succeeded(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// A shell loop that waits (a minute at most) until `csv` has more than `lines` lines, header
/// included. The file may not exist yet when the command starts: it then counts 0 lines (a
/// failed `wc -l < FILE` ended the loop at once, and a loaded machine could see the command
/// exit before leaksift's first sample).
fn wait_for_rows(csv: &Path, lines: usize) -> String {
    format!(
        "i=0; while [ \"$(cat '{}' 2>/dev/null | wc -l)\" -le {lines} ] && [ $i -lt 6000 ]; do i=$((i+1)); sleep 0.01; done",
        csv.display()
    )
}

/// Polls until `csv` has more than `lines` lines; panics after a minute (a hang is a defect).
fn poll_rows(csv: &Path, lines: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(csv).map_or(0, |t| t.lines().count()) <= lines {
        assert!(
            Instant::now() < deadline,
            "{} never got {lines} rows",
            csv.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_command_that_execs_is_still_watched() {
    // `env` execs `sh`, which execs the second `sh` once leaksift has sampled the first one a few
    // times: the descriptor on smaps_rollup opened before the exec reads ESRCH afterwards, which
    // ended the watch with "process N is gone" although the command ran on.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("exec.csv");
    let second = dir.path().join("second.sh");
    std::fs::write(&second, wait_for_rows(&csv, 8)).unwrap();
    let first = format!(
        "{}; exec timeout 60 sh '{}'",
        wait_for_rows(&csv, 3),
        second.display()
    );
    let out = leaksift()
        .args(["watch", "-q", "--interval", "20ms", "--out"])
        .arg(&csv)
        .args(["--", "env", "WATCHED=1", "sh", "-c", &first])
        .output()
        .unwrap();
    let stdout = succeeded(&out);
    assert!(stdout.contains("command exited with code 0"), "{stdout}");
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count();
    assert!(rows > 8, "{rows} lines");
}

#[test]
fn stdin_reaches_the_watched_command() {
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["watch", "-q", "--", "timeout", "60", "cat"])
        .write_stdin("hello through leaksift\n")
        .output()
        .unwrap();
    let stdout = succeeded(&out);
    assert!(stdout.starts_with("hello through leaksift\n"), "{stdout}");
}

#[test]
fn csv_keeps_every_sample_when_leaksift_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("killed.csv");
    let mut watch = leaksift()
        .args(["watch", "-q", "--interval", "20ms", "--out"])
        .arg(&csv)
        .args(["--", "sleep", "60"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Rows were buffered until the end of the run: a SIGKILLed (or OOM-killed) leaksift left a
    // CSV with the header only, however long it had sampled.
    poll_rows(&csv, 5);
    watch.kill().unwrap();
    watch.wait().unwrap();
    let written = std::fs::read_to_string(&csv).unwrap();
    let series = leaksift_watch::import::read_series(&written, None)
        .unwrap()
        .series;
    assert!(series.t.len() >= 5, "{written}");
    // The watched `sleep` leads its own process group, which SIGKILL gave no chance to stop.
    let pid: i32 = written
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(10)
        .unwrap()
        .parse()
        .unwrap();
    Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status()
        .unwrap();
}

#[test]
fn a_kernel_thread_is_refused_with_the_reason() {
    // Any kernel thread this PID namespace shows (PF_KTHREAD in field 9 of /proc/PID/stat); a
    // container's own namespace shows none, and then there is nothing to run this on.
    const PF_KTHREAD: u64 = 0x0020_0000;
    let kernel_thread = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            // Fields after the name start at 3 (state): the flags are field 9.
            after_name
                .split_whitespace()
                .nth(6)
                .and_then(|flags| flags.parse::<u64>().ok())
                .is_some_and(|flags| flags & PF_KTHREAD != 0)
        });
    let Some(pid) = kernel_thread else {
        eprintln!("skipped: this PID namespace shows no kernel thread");
        return;
    };
    let out = leaksift()
        .args(["watch", "-q", "--duration", "1s", "--pid", &pid.to_string()])
        .output()
        .unwrap();
    assert_one_line_error(&out, &format!("process {pid} is a kernel thread"));
}

/// `leaksift check -q --ready-delay 0s ARGS -- sh -c SERVER`.
fn check(args: &[&str], server: &str) -> Output {
    leaksift()
        .args(["check", "-q", "--ready-delay", "0s"])
        .args(args)
        .args(["--", "sh", "-c", server])
        .output()
        .unwrap()
}

#[test]
fn a_scenario_failing_midway_still_reports_the_iterations_measured() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("runs");
    let junit = dir.path().join("junit.xml");
    // Runs 1 and 2 are the warm-up; run 7 (measured iteration 5) fails.
    let scenario = format!(
        "n=$(cat '{0}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{0}'; \
         [ $n -lt 7 ] || {{ echo 'connection reset' >&2; exit 3; }}",
        counter.display()
    );
    let out = check(
        &[
            "--json",
            "--warmup",
            "2",
            "--iterations",
            "8",
            "--scenario",
            &scenario,
            "--junit",
            junit.to_str().unwrap(),
        ],
        "exec sleep 60",
    );
    // Only the error was printed: the samples of iterations 0 to 4 were lost.
    assert_one_line_error(
        &out,
        // The seventh scenario run: after 2 warm-up runs, measured iteration 5 (as the JSON
        // and JUnit reports count them: samples 0 to 4 were taken).
        "failed in iteration 5 (exit status: 3): connection reset",
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["schema"], "leaksift.check.v1");
    assert_eq!(json["result"], "error");
    assert_eq!(
        json["bytes_per_iteration_sample"].as_array().unwrap().len(),
        5
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<error") && xml.contains("slope_bytes_per_iteration"),
        "{xml}"
    );
}

/// `check` of tests/programs/watch/check_server.py with `server_flags`, one GET per iteration;
/// returns the run's output and the server's PID (from its pid file, written after any fork).
fn check_http_server(mode: &str, server_flags: &[&str]) -> (Output, u32) {
    let programs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/watch");
    let dir = tempfile::tempdir().unwrap();
    let (port, pid) = (dir.path().join("port"), dir.path().join("pid"));
    let out = leaksift()
        .args(["check", "-q", "--warmup", "2", "--iterations", "8"])
        .arg("--ready-cmd")
        .arg(format!("test -s '{}'", port.display()))
        .arg("--scenario")
        .arg(format!(
            "python3 '{}' '{}'",
            programs.join("scenario.py").display(),
            port.display()
        ))
        .args(["--", "python3"])
        .arg(programs.join("check_server.py"))
        .args(["--mode", mode, "--port-file"])
        .arg(&port)
        .arg("--pid-file")
        .arg(&pid)
        .args(server_flags)
        // Files, not pipes: a server left running would hold a pipe open and hang the test.
        .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .output()
        .unwrap();
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let out = Output {
        stdout: read("stdout"),
        stderr: read("stderr"),
        ..out
    };
    let pid = std::fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (out, pid)
}

/// The process must be gone (or a zombie about to be reaped by init).
fn assert_gone(pid: u32) {
    let stat = format!("/proc/{pid}/stat");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(Instant::now() < deadline, "process {pid} still runs");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_daemonizing_server_is_measured_and_stopped() {
    // The server forks, its parent exits at once, the child calls setsid() and forks again: it
    // was "exited with status 0 before it was ready" and left running as an orphan of init.
    let (out, pid) = check_http_server("keep", &["--daemonize", "--ignore-term"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("FAIL"),
        "{}",
        text(&out.stdout)
    );
    assert_gone(pid);
}
