//! `leaksift record` on the patterns real programs use that broke it: daemons that close every
//! descriptor and change directory, `quick_exit`, a file size limit. Each program runs once plain
//! and once recorded: same stdout and exit status, and `leaksift report --json` reads the trace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

#[path = "support/default_signals.rs"]
mod default_signals;
#[path = "support/gcc.rs"]
mod gcc;
mod support;
use default_signals::with_default_signals;
use support::ensure_preload;

/// Compiles `tests/programs/record/<name>.c` into `dir`.
fn build(name: &str, dir: &Path) -> PathBuf {
    gcc::compile("record", name, dir, &["-g", "-O1", "-pthread"])
}

/// A program started under `leaksift record` whose first stdout line is `<prefix><its pid>`.
struct Started {
    record: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    program_pid: i32,
    trace: PathBuf,
}

/// Builds `tests/programs/record/<name>.c` into `dir`, starts it under `leaksift record` and
/// reads its first line, `<prefix><pid>`.
fn start_recording(name: &str, dir: &Path, prefix: &str) -> Started {
    use std::io::BufRead;
    ensure_preload();
    let program = build(name, dir);
    let trace = dir.join(format!("{name}.lks"));
    let mut record = with_default_signals(&mut Command::new(env!("CARGO_BIN_EXE_leaksift")))
        .arg("record")
        .arg("-o")
        .arg(&trace)
        .arg("--")
        .arg(&program)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("running leaksift record");
    let mut stdout = std::io::BufReader::new(record.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let program_pid = first
        .trim()
        .strip_prefix(prefix)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{name}'s first line {first:?} is not `{prefix}<pid>`"));
    Started {
        record,
        stdout,
        program_pid,
        trace,
    }
}

/// Runs `program args` without the tracer.
fn run_plain(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .expect("running the program")
}

/// Runs `program args` under `leaksift record -o trace` and checks that the program behaved
/// exactly as in `plain`: same stdout, same exit status.
fn run_recorded_like(plain: &Output, trace: &Path, program: &Path, args: &[&str]) {
    ensure_preload();
    let recorded = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .arg("record")
        .arg("-o")
        .arg(trace)
        .arg("--")
        .arg(program)
        .args(args)
        .output()
        .expect("running leaksift record");
    assert_eq!(
        recorded.status.code(),
        plain.status.code(),
        "exit status under record (stderr: {})",
        String::from_utf8_lossy(&recorded.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&recorded.stdout),
        String::from_utf8_lossy(&plain.stdout)
    );
}

/// Runs `program args` plain (expecting exit status `exit`) and recorded into `trace`, checks
/// that both runs behaved the same, and returns `leaksift report --json trace`.
fn record_like_plain(program: &Path, args: &[&str], exit: i32, trace: &Path) -> Value {
    let plain = run_plain(program, args);
    assert_eq!(plain.status.code(), Some(exit), "the plain run");
    run_recorded_like(&plain, trace, program, args);
    report(trace)
}

/// Builds `tests/programs/record/<name>.c` and runs it as [`record_like_plain`] does, without
/// arguments.
fn record_program(name: &str, exit: i32) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let program = build(name, dir.path());
    record_like_plain(&program, &[], exit, &dir.path().join(format!("{name}.lks")))
}

/// `leaksift report --json trace`.
fn report(trace: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["report", "--json"])
        .arg(trace)
        .output()
        .expect("running leaksift report");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "report --json: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// (blocks, bytes) of a leak class in a report.
fn class(report: &Value, name: &str) -> (u64, u64) {
    let class = &report["leaks"][name];
    (
        class["blocks"].as_u64().expect("blocks"),
        class["bytes"].as_u64().expect("bytes"),
    )
}

#[test]
fn a_daemon_closing_every_descriptor_keeps_its_files_and_its_whole_trace() {
    let dir = tempfile::tempdir().unwrap();
    let program = build("daemon", dir.path());
    for mode in ["close-loop", "close-range", "dup2"] {
        let logs = dir.path().join(format!("logs-{mode}"));
        std::fs::create_dir(&logs).unwrap();
        let args = [mode, logs.to_str().unwrap()];
        let plain = run_plain(&program, &args);
        assert_eq!(plain.status.code(), Some(0), "{mode}: the plain run");
        // A relative -o: the daemon's chdir("/") must not move the trace.
        let trace = format!("daemon-{mode}.lks");
        let recorded = Command::new(env!("CARGO_BIN_EXE_leaksift"))
            .current_dir(dir.path())
            .args(["record", "-o", &trace, "--"])
            .arg(&program)
            .args(args)
            .output()
            .expect("running leaksift record");
        assert_eq!(
            recorded.status.code(),
            Some(0),
            "{mode}: no trace bytes in its logs"
        );
        assert_eq!(recorded.stdout, plain.stdout);
        let report = report(&dir.path().join(&trace));
        assert_eq!(report["truncated"], false, "{mode}: the trace survived");
        assert_eq!(report["exit_status"], 0);
        assert_eq!(class(&report, "definitely_lost"), (1, 4321), "{mode}");
        let (reachable_blocks, _) = class(&report, "still_reachable");
        assert!(reachable_blocks >= 1000, "{mode}: the 1000 kept blocks");
    }
}

#[test]
fn quick_exit_runs_the_handlers_and_still_gets_the_exit_scan() {
    let report = record_program("quick_exit", 5);
    assert_eq!(report["truncated"], false);
    assert_eq!(report["exit_status"], 5);
    assert_eq!(report["scan"]["trigger"], "exit");
    // The handler's free happened before the scan: only the 4321-byte block is lost.
    assert_eq!(class(&report, "definitely_lost"), (1, 4321));
    assert_eq!(class(&report, "possibly_lost"), (0, 0));
}

#[test]
fn a_file_size_limit_ends_the_trace_instead_of_killing_the_program() {
    let report = record_program("fsize_limit", 7);
    assert_eq!(
        report["truncated"], true,
        "a trace cut by the limit says so"
    );
}

#[test]
fn an_address_space_limit_leaves_the_program_its_memory() {
    let report = record_program("address_limit", 0);
    assert_eq!(report["truncated"], false);
    assert_eq!(report["exit_status"], 0);
    assert!(report["allocations"].as_u64().unwrap() >= 1064);
}

#[test]
fn sigterm_sent_to_leaksift_reaches_the_command_which_shuts_down_gracefully() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let Started {
        mut record,
        mut stdout,
        program_pid,
        trace,
    } = start_recording("graceful", dir.path(), "ready ");
    // As `docker stop` or a supervisor does: the signal goes to the process it started.
    let leaksift = i32::try_from(record.id()).unwrap();
    // SAFETY: signalling the process this test started.
    unsafe { libc::kill(leaksift, libc::SIGTERM) };
    let status = record.wait().unwrap();
    if status.code() != Some(0) {
        // SAFETY: the program this test started, left running: end it before failing.
        unsafe { libc::kill(program_pid, libc::SIGKILL) };
        panic!("leaksift ended with {status}: the command never got the signal");
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(
        rest,
        format!("graceful shutdown on signal {}\n", libc::SIGTERM)
    );
    let report = report(&trace);
    assert_eq!(report["truncated"], false);
    assert_eq!(report["exit_status"], 0);
    assert_eq!(class(&report, "definitely_lost"), (1, 4321));
}

#[test]
fn a_shell_script_taking_descriptor_3_keeps_its_output_and_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fd3.log");
    // `exec 3>file` is dup2 onto 3, the tracer's first descriptor number.
    let script = format!(
        "exec 3>'{}'; s=; for i in $(seq 2000); do s=\"$s$i\"; echo $i >&3; done; echo ${{#s}}",
        log.display()
    );
    let args = ["-c", script.as_str()];
    let bash = Path::new("/bin/bash");
    let report = record_like_plain(bash, &args, 0, &dir.path().join("bash.lks"));
    let expected: String = (1..=2000).map(|i| format!("{i}\n")).collect();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), expected);
    assert_eq!(report["truncated"], false);
    assert_eq!(report["exit_status"], 0);
    assert!(report["allocations"].as_u64().unwrap() > 2000);
}

#[test]
fn unshare_and_setns_succeed_as_without_the_tracer_and_tracing_goes_on() {
    // The outcomes are compared, not assumed: a sandbox may forbid namespaces altogether.
    let report = record_program("namespaces", 0);
    assert_eq!(report["truncated"], false);
    assert_eq!(report["exit_status"], 0);
    assert!(report["allocations"].as_u64().unwrap() >= 10_001);
    // Recorded after the writer thread was restarted.
    assert_eq!(class(&report, "definitely_lost"), (1, 4321));
}

#[test]
fn signals_a_program_blocks_for_its_signalfd_never_reach_the_tracer_thread() {
    let report = record_program("signalfd", 0);
    assert_eq!(report["truncated"], false);
    assert_eq!(report["exit_status"], 0);
}

#[test]
fn a_block_next_to_the_top_chunk_is_definitely_lost_as_for_memcheck() {
    let report = record_program("top_chunk", 0);
    // valgrind --leak-check=full: definitely lost 4,321 bytes in 1 blocks, nothing else.
    assert_eq!(class(&report, "definitely_lost"), (1, 4321));
    assert_eq!(class(&report, "possibly_lost"), (0, 0));
}

#[test]
fn the_lowest_free_descriptor_is_still_the_programs() {
    record_program("lowest_fd", 0);
}

#[test]
fn a_command_started_with_stdin_closed_finds_it_closed() {
    use std::os::unix::process::CommandExt;
    ensure_preload();
    let dir = tempfile::tempdir().unwrap();
    let program = build("lowest_fd", dir.path());
    let trace = dir.path().join("closed_stdin.lks");
    let run = |command: &mut Command| {
        // SAFETY: close(2) only, between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::close(0);
                Ok(())
            })
        };
        command.output().expect("running the command")
    };
    let plain = run(&mut Command::new(&program));
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "open returned 0\n");
    let recorded = run(Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .arg("record")
        .arg("-o")
        .arg(&trace)
        .arg("--")
        .arg(&program));
    assert_eq!(recorded.stdout, plain.stdout);
    assert_eq!(recorded.status.code(), Some(0));
}

#[test]
fn a_program_whose_main_ends_with_pthread_exit_exits_when_its_last_thread_does() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let Started {
        mut record,
        mut stdout,
        program_pid: pid,
        trace,
    } = start_recording("main_pthread_exit", dir.path(), "main exits ");
    // A process kept alive by the tracer would never end: give it 30 s, then end it and fail.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = record.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    if status.is_none() {
        // SAFETY: the program this test started, left running: end it before failing.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = record.wait();
        panic!("the program never exited after its last thread did");
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "worker done\n");
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let report = report(&trace);
    assert_eq!(report["truncated"], false);
    assert_eq!(report["exit_status"], 0);
    // Scanned through the exiting thread's id: the leader's memory view is gone.
    assert_eq!(class(&report, "definitely_lost"), (1, 4321));
    assert_eq!(report["leak_stacks"][0]["frames"][0]["function"], "worker");
}
