//! The CLI's promises under hostile or unlucky input, one test per defect an audit found: JSON
//! objects start with their `schema`, usage errors are one `leaksift: error:` line, a closed
//! stdout does not turn a verdict into an error, `record` checks its output before running the
//! program, `watch` still prints its verdict when sampling fails, `trend` refuses a `limit` that
//! is not a byte count, and an error names its cause once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use leaksift_trace::TraceWriter;
use leaksift_trace::model::{
    AllocKind, LeakClass, LeakScan, ProcessEnd, ScanTrigger, ScannedBlock, StackId, ThreadId,
    TraceHeader, TraceTime,
};

mod one_line_error;
mod support;

use one_line_error::assert_one_line_error;

fn leaksift() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leaksift"))
}

fn run(args: &[&str]) -> Output {
    leaksift().args(args).output().unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn path(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

#[test]
fn heap_paths_and_diff_json_start_with_the_schema() {
    let snapshot = fixture("v8/handmade.heapsnapshot");
    let snapshot = path(&snapshot);
    let cases: [(&[&str], &str); 3] = [
        (&["heap", "-q", "--json", snapshot], "leaksift.heap.v1"),
        (
            &["paths", "-q", "--json", "--id", "13", snapshot],
            "leaksift.paths.v1",
        ),
        (
            &["diff", "-q", "--json", snapshot, snapshot],
            "leaksift.diff.v1",
        ),
    ];
    for (args, schema) in cases {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let first_key = text
            .trim_start()
            .strip_prefix('{')
            .map(str::trim_start)
            .unwrap_or_default();
        assert!(
            first_key.starts_with(&format!("\"schema\": \"{schema}\"")),
            "{args:?}: the first key is not the schema: {}",
            &text[..text.len().min(120)]
        );
    }
}

#[test]
fn usage_errors_are_one_line_with_exit_status_2() {
    let cases: [(&[&str], &str); 6] = [
        (&["heap", "--bogus", "x"], "unexpected argument '--bogus'"),
        (&["heap"], "<FILE>"),
        (&["paths", "--id", "zz", "x"], "invalid value 'zz'"),
        (
            &["diff", "a"],
            "diff takes two files (base, compared) or three (baseline, target, final), not 1",
        ),
        (
            &["watch", "--interval", "1ms", "--", "true"],
            "at least 10ms",
        ),
        (&["record"], "<CMD>"),
    ];
    for (args, message) in cases {
        assert_one_line_error(&run(args), message);
    }
    let help = run(&["heap", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: leaksift heap"));
}

/// A trace of one 100-byte block that the exit scan found definitely lost.
/// The header of a hand-written trace of the command `command`.
fn trace_header(command: &str) -> TraceHeader {
    TraceHeader {
        format_version: leaksift_trace::format::FORMAT_VERSION,
        pid: 4242,
        command: vec![command.to_string()],
        start_unix_s: 1_700_000_000,
        start_subsec_nanos: Some(250_000_000),
        page_size: 4096,
        traces_mmap: false,
    }
}

fn trace_with_one_lost_block(dir: &Path) -> PathBuf {
    let trace = dir.join("lost.lks");
    let header = trace_header("lost");
    let mut writer = TraceWriter::new(std::fs::File::create(&trace).unwrap(), &header).unwrap();
    writer.stack(StackId(1), &[0x1234]).unwrap();
    writer
        .alloc(
            TraceTime(1_000),
            ThreadId(1),
            0x10_000,
            100,
            StackId(1),
            AllocKind::Malloc,
        )
        .unwrap();
    writer
        .leak_scan(&LeakScan {
            time: TraceTime(2_000),
            trigger: ScanTrigger::Exit,
            blocks: vec![ScannedBlock {
                address: 0x10_000,
                class: LeakClass::DefinitelyLost,
            }],
        })
        .unwrap();
    writer.end(TraceTime(3_000), ProcessEnd::Exited(0)).unwrap();
    writer.finish().unwrap();
    trace
}

#[test]
fn report_to_a_closed_pipe_keeps_the_verdicts_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let trace = trace_with_one_lost_block(dir.path());
    for json in [false, true] {
        let mut command = leaksift();
        command.arg("report").arg(&trace).arg("--fail-on-leak");
        if json {
            command.arg("--json");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the report is written (`leaksift report … | head -0`).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "json {json}: {stderr}");
        assert!(!stderr.contains("error"), "json {json}: {stderr}");
    }
}

/// Runs `command` with stderr a pipe whose reader is already gone (`cmd 2>&1 | true`).
fn with_stderr_to_a_closed_pipe(command: &mut Command) -> std::process::ExitStatus {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command
        .stdout(Stdio::null())
        .stderr(writer)
        .status()
        .unwrap()
}

/// Every message on stderr was `eprintln!`, which panics when the write fails; the panic's own
/// message failed too, so leaksift aborted (exit 134), and `record` took the traced program down
/// with it (SIGTERM to a child still sleeping).
#[test]
fn stderr_to_a_closed_pipe_changes_no_exit_status() {
    support::ensure_preload();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("finished");
    let trace = dir.path().join("app.lks");
    let status = with_stderr_to_a_closed_pipe(
        leaksift()
            .args(["record", "-o", path(&trace), "--", "sh", "-c"])
            .arg(format!("sleep 0.3; touch '{}'; exit 4", marker.display())),
    );
    assert_eq!(status.code(), Some(4), "record: {status}");
    assert!(marker.exists(), "the traced program did not finish");
    let status = with_stderr_to_a_closed_pipe(leaksift().arg("report").arg(&trace));
    assert_eq!(status.code(), Some(0), "report: {status}");
    let status = with_stderr_to_a_closed_pipe(leaksift().args(["report", "no-such-trace.lks"]));
    assert_eq!(status.code(), Some(2), "report of a missing file: {status}");
    let status = with_stderr_to_a_closed_pipe(leaksift().arg("--no-such-option"));
    assert_eq!(status.code(), Some(2), "usage error: {status}");
}

/// A trace removed while the command ran (a temporary-file cleaner) was reported as "did not
/// start the tracer … statically linked or setuid programs cannot be traced", and record's exit
/// status became 2 instead of the command's.
#[test]
fn a_trace_removed_while_the_command_runs_is_named_and_the_status_kept() {
    support::ensure_preload();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("gone.lks");
    let out = leaksift()
        .args(["record", "-o", path(&trace), "--", "sh", "-c"])
        .arg(format!("sleep 0.5; rm '{}'; exit 5", trace.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("was removed or renamed while the command ran"),
        "{stderr}"
    );
    assert!(!stderr.contains("did not start the tracer"), "{stderr}");
}

/// Out of memory under an address-space limit (`ulimit -v`, as on hosts that do not
/// overcommit): Rust's allocation error handler aborted (SIGABRT, exit status 134, a core dump)
/// wherever an allocation failed outside the readers' own checks. Under every limit tried, the
/// run now succeeds or ends with an error naming the file and exit status 2.
#[test]
fn running_out_of_memory_is_an_error_not_an_abort() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("rss.csv");
    let mut text = String::from("time,rss\n");
    for i in 0..1_000_000u64 {
        text.push_str(&format!(
            "{}.{},{}\n",
            i / 10,
            i % 10,
            1_000_000 + i * 10 + (i * 7919) % 5000
        ));
    }
    std::fs::write(&series, text).unwrap();
    let mut out_of_memory = 0;
    for mib in (20..=120).step_by(10) {
        let mut command = leaksift();
        command
            .arg("trend")
            .arg(&series)
            .env_remove("RUST_BACKTRACE");
        // SAFETY: setrlimit is async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: mib << 20,
                    rlim_max: mib << 20,
                };
                libc::setrlimit(libc::RLIMIT_AS, &limit);
                Ok(())
            });
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), None, "{mib} MiB: {stderr}");
        if out.status.code() == Some(2) {
            let last = stderr.lines().last().unwrap_or_default();
            assert!(
                last.starts_with("leaksift: error: ")
                    && last.contains("rss.csv")
                    && last.contains("out of memory"),
                "{mib} MiB: {stderr}"
            );
            out_of_memory += 1;
        } else {
            assert_eq!(out.status.code(), Some(0), "{mib} MiB: {stderr}");
        }
    }
    assert!(out_of_memory > 0, "no limit was tight enough");
}

/// A flamegraph or suppressions file that cannot be written whole (a full disk; here a file
/// size limit) replaced the existing file with a truncated one. The old file now stays as it
/// was, and the error names the file.
#[test]
fn an_output_file_that_cannot_be_written_whole_leaves_the_old_one() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let trace = trace_with_one_lost_block(dir.path());
    for option in ["--flamegraph", "--gen-suppressions"] {
        let existing = dir.path().join(format!("kept{option}"));
        std::fs::write(&existing, "the previous run's file\n").unwrap();
        let mut command = leaksift();
        command
            .args(["report", "-q"])
            .arg(&trace)
            .arg(option)
            .arg(&existing);
        // SAFETY: setrlimit and signal are async-signal-safe. SIGXFSZ ignored: a write past
        // the limit fails with EFBIG instead of killing the process, as a full disk fails.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 40,
                    rlim_max: 40,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
        let out = command.output().unwrap();
        assert_one_line_error(&out, &existing.file_name().unwrap().to_string_lossy());
        assert_eq!(
            std::fs::read_to_string(&existing).unwrap(),
            "the previous run's file\n",
            "{option}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains(".leaksift-"))
            .collect();
        assert!(left.is_empty(), "{option}: temporary files left: {left:?}");
    }
}

/// A `LEAKSIFT_PRELOAD` naming another library (here glibc) ran the program untraced and blamed
/// it: "statically linked or setuid programs cannot be traced". The variable is named now.
#[test]
fn a_wrong_tracer_library_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("none.lks");
    let out = leaksift()
        .env("LEAKSIFT_PRELOAD", "/lib/x86_64-linux-gnu/libc.so.6")
        .args(["record", "-o", path(&trace), "--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("leaksift: error: ") && last.contains("is not leaksift's tracer library"),
        "{stderr}"
    );
}

#[test]
fn record_refuses_an_output_it_cannot_create_before_running_the_program() {
    support::ensure_preload();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let output = dir.path().join("no such directory").join("app.lks");
    let out = leaksift()
        .args(["record", "-o", path(&output), "--", "sh", "-c"])
        .arg(format!("touch '{}'", marker.display()))
        .output()
        .unwrap();
    assert_one_line_error(&out, "cannot create the trace");
    assert!(
        !marker.exists(),
        "the program ran although its trace could not be written"
    );
}

#[test]
fn record_refuses_an_output_that_is_the_program_itself() {
    support::ensure_preload();
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("server.sh");
    std::fs::write(&program, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = leaksift()
        .args(["record", "-o", path(&program), "--", path(&program)])
        .output()
        .unwrap();
    assert_one_line_error(&out, "-o names the same file as the traced program");
    assert_eq!(
        std::fs::read_to_string(&program).unwrap(),
        "#!/bin/sh\nexit 0\n",
        "the program was replaced"
    );
}

#[test]
fn watch_prints_the_verdict_on_its_samples_when_the_process_vanishes() {
    let mut victim = Command::new("sleep").arg("0.6").spawn().unwrap();
    let pid = victim.id();
    // Reap the victim as soon as it exits so its /proc entry disappears.
    let reaper = std::thread::spawn(move || victim.wait());
    let out = leaksift()
        .args(["watch", "-q", "--json", "--interval", "20ms", "--duration"])
        .args(["20s", "--pid", &pid.to_string()])
        .output()
        .unwrap();
    reaper.join().unwrap().unwrap();
    assert_one_line_error(&out, &format!("process {pid} is gone"));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no verdict on stdout ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(json["schema"], "leaksift.watch.v1");
    assert_eq!(json["stopped"], "error");
    assert!(json["samples"].as_u64().unwrap() > 0, "{json}");
}

#[test]
fn trend_refuses_a_limit_that_is_not_a_byte_count_and_reads_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    for limit in ["inf", "NaN", "-5"] {
        let csv = dir.path().join(format!("limit-{limit}.csv"));
        std::fs::write(&csv, format!("t,bytes,limit\n0,1,100\n1,2,{limit}\n")).unwrap();
        let out = run(&["trend", path(&csv)]);
        assert_one_line_error(
            &out,
            &format!("limit-{limit}.csv:3: `limit` is not a byte count"),
        );
    }
    let csv = dir.path().join("excel.csv");
    let mut text = String::from("\u{feff}t,bytes\n");
    for t in 0..10 {
        text.push_str(&format!("{t},{}\n", 1000 + t));
    }
    std::fs::write(&csv, text).unwrap();
    let out = run(&["trend", "--json", path(&csv)]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn errors_name_their_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.lks");
    let cases: [&[&str]; 3] = [
        &["report", path(&missing)],
        &["watch", "--cgroup", path(&missing)],
        &["watch", "--", path(&missing)],
    ];
    for args in cases {
        let line = assert_one_line_error(&run(args), "missing.lks");
        assert_eq!(
            line.matches("No such file or directory").count(),
            1,
            "{args:?}: {line}"
        );
    }
}

#[test]
fn names_from_a_dump_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = std::fs::read_to_string(fixture("v8/handmade.heapsnapshot")).unwrap();
    // A class name carrying "clear screen" and a carriage return (JSON escapes in the file).
    let hostile = snapshot.replace("\"Lonely\"", "\"Lonely\\u001b[2J\\rfake\"");
    assert_ne!(hostile, snapshot);
    let file = dir.path().join("hostile.heapsnapshot");
    std::fs::write(&file, hostile).unwrap();
    let text = run(&["heap", "-q", path(&file)]);
    assert_eq!(text.status.code(), Some(0), "{text:?}");
    let stdout = String::from_utf8(text.stdout).unwrap();
    // ESC is written `\u{1b}`; the carriage return inside a name is written `\r`.
    assert!(stdout.contains(r"Lonely\u{1b}[2J\rfake"), "{stdout}");
    assert!(!stdout.contains(['\u{1b}', '\r']), "{stdout:?}");
    // JSON keeps the name exactly (escaped by JSON itself).
    let json = run(&["heap", "-q", "--json", path(&file)]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let names: Vec<&str> = value["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(names.contains(&"Lonely\u{1b}[2J\rfake"), "{names:?}");
}

#[test]
fn check_with_a_huge_iteration_count_fails_cleanly_and_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("server.pid");
    let server = format!("echo $$ > '{}'; exec sleep 30", pid_file.display());
    let out = run(&[
        "check",
        "-q",
        "--scenario",
        "false",
        "--iterations",
        "1000000000000",
        "--warmup",
        "0",
        "--ready-delay",
        "10ms",
        "--",
        "sh",
        "-c",
        &server,
    ]);
    assert_one_line_error(&out, "failed in iteration 1");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let alive = Path::new("/proc").join(pid.trim()).join("stat");
    // A stopped server is gone or, if its reaper has not run yet, a zombie.
    let state = std::fs::read_to_string(&alive).unwrap_or_default();
    assert!(
        state.is_empty() || state.contains(") Z "),
        "the server survived: {state}"
    );
}

#[test]
fn a_series_too_short_for_a_slope_says_so_in_text_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("one.csv");
    std::fs::write(&csv, "t,bytes\n0,5\n").unwrap();
    let svg = dir.path().join("one.svg");
    let out = run(&["trend", path(&csv), "--svg", path(&svg)]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let chart = std::fs::read_to_string(&svg).unwrap();
    for shown in [&text, &chart] {
        assert!(
            !shown.contains("NaN") && !shown.contains("n/a/s"),
            "{shown}"
        );
    }
    assert!(chart.contains("slope n/a (95%: n/a … n/a)"), "{chart}");
    assert!(text.contains("baseline level n/a"), "{text}");
}

#[test]
fn an_unwritable_chart_or_report_file_still_prints_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no such directory");
    let csv = dir.path().join("flat.csv");
    std::fs::write(&csv, "t,bytes\n0,5\n1,5\n2,5\n").unwrap();
    let trace = trace_with_one_lost_block(dir.path());
    let svg = nowhere.join("chart.svg");
    let junit = nowhere.join("junit.xml");
    let cases: [(&[&str], &str, &str); 2] = [
        (
            &["trend", "--json", path(&csv), "--svg", path(&svg)],
            "leaksift.trend.v1",
            "chart.svg",
        ),
        (
            &[
                "report",
                "-q",
                "--json",
                path(&trace),
                "--flamegraph",
                path(&svg),
            ],
            "leaksift.report.v1",
            "chart.svg",
        ),
    ];
    for (args, schema, file) in cases {
        let out = run(args);
        assert_one_line_error(&out, file);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{args:?}: no result on stdout ({e}): {out:?}");
        });
        assert_eq!(json["schema"], schema);
    }
    // `check` (and `watch`) run for long: their files are checked before the server starts.
    let started = dir.path().join("server-started");
    let server = format!("touch '{}'; exec sleep 30", started.display());
    let out = run(&[
        "check",
        "-q",
        "--json",
        "--scenario",
        "true",
        "--warmup",
        "0",
        "--iterations",
        "5",
        "--ready-delay",
        "10ms",
        "--junit",
        path(&junit),
        "--",
        "sh",
        "-c",
        &server,
    ]);
    assert_one_line_error(&out, "junit.xml");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(!started.exists(), "the server was started");
}

/// Runs `leaksift ARGS… FILE` on `bytes` written to `file`; the command must succeed (when
/// `may_succeed`) or fail with exactly one error line naming the file, and never crash.
fn survives(args: &[&str], file: &Path, bytes: &[u8], may_succeed: bool) {
    std::fs::write(file, bytes).unwrap();
    let out = leaksift().args(args).arg(file).output().unwrap();
    let label = format!("{args:?} on {} of {} bytes", file.display(), bytes.len());
    if may_succeed && out.status.code() == Some(0) {
        return;
    }
    let line = assert_one_line_error(&out, "");
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(line.contains(&*name), "{label}: {line}");
}

#[test]
fn cut_heap_files_and_traces_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let v8 = std::fs::read(fixture("v8/handmade.heapsnapshot")).unwrap();
    let cut_v8 = dir.path().join("cut.heapsnapshot");
    for end in (0..v8.len()).step_by(37) {
        survives(&["heap", "-q"], &cut_v8, &v8[..end], false);
    }
    let mut hprof = Vec::new();
    let gz = std::fs::File::open(fixture("hprof/shape.hprof.gz")).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut hprof).unwrap();
    let cut_hprof = dir.path().join("cut.hprof");
    // A dump cut at a record boundary is a complete, smaller dump: success is allowed there.
    for k in 0..20 {
        let end = hprof.len() * k / 20 + k * 7;
        survives(&["heap", "-q"], &cut_hprof, &hprof[..end], true);
    }
    // A trace cut anywhere after its header reads as truncated (a killed program's trace).
    let trace = std::fs::read(trace_with_one_lost_block(dir.path())).unwrap();
    let cut_trace = dir.path().join("cut.lks");
    for end in 0..trace.len() {
        survives(&["report", "-q", "--json"], &cut_trace, &trace[..end], true);
    }
}

#[test]
fn an_error_quoting_a_hostile_file_stays_one_clean_line() {
    let dir = tempfile::tempdir().unwrap();
    let trace = trace_with_one_lost_block(dir.path());
    let suppressions = dir.path().join("hostile.supp");
    std::fs::write(&suppressions, "le\rak\u{1b}[2J:main\n").unwrap();
    let out = run(&[
        "report",
        "-q",
        path(&trace),
        "--suppressions",
        path(&suppressions),
    ]);
    let line = assert_one_line_error(&out, "hostile.supp:1");
    assert!(!line.contains(['\u{1b}', '\r']), "{line:?}");
}

#[test]
fn a_file_given_to_the_wrong_command_names_the_command_that_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let trace = trace_with_one_lost_block(dir.path());
    let hprof = fixture("hprof/shape.hprof.gz");
    let snapshot = fixture("v8/handmade.heapsnapshot");
    for args in [
        vec!["heap", "-q", path(&trace)],
        vec!["paths", "-q", "--id", "1", path(&trace)],
    ] {
        assert_one_line_error(
            &run(&args),
            "is a trace of `leaksift record`: read it with `leaksift report`",
        );
    }
    // `diff` compares a trace with another trace only, and --debug-dir is for traces.
    assert_one_line_error(
        &run(&["diff", "-q", path(&snapshot), path(&trace)]),
        "are not both traces of `leaksift record`",
    );
    assert_one_line_error(
        &run(&[
            "diff",
            "-q",
            "--debug-dir",
            "/tmp",
            path(&snapshot),
            path(&snapshot),
        ]),
        "--debug-dir symbolizes traces",
    );
    assert_one_line_error(
        &run(&["report", "-q", path(&snapshot)]),
        "is a V8 heap snapshot: read it with `leaksift heap`",
    );
    for args in [
        vec!["report", "-q", path(&hprof)],
        vec!["trend", path(&hprof)],
    ] {
        assert_one_line_error(
            &run(&args),
            "is a Java HPROF dump: read it with `leaksift heap`",
        );
    }
    assert_one_line_error(
        &run(&["trend", path(&trace)]),
        "read it with `leaksift report`",
    );
}

#[test]
fn trend_reads_a_pipe_whole() {
    // `leaksift trend <(curl …)`: the series arrives through a pipe, which must not be read
    // twice (a look at its first bytes would take them from the series).
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("series");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let rows: String = (0..40).map(|i| format!("{i},{}\n", 1000 * i)).collect();
            std::fs::write(&fifo, format!("t,bytes\n{rows}")).unwrap();
        })
    };
    // Reading the pipe twice would wait forever for a second writer: give up after a minute.
    let mut child = leaksift()
        .args(["trend", "--json", path(&fifo)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("trend still waits on the pipe after a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["samples"], 40, "{json}");
}

/// A two-node snapshot taken with allocation tracking: the object `f` (16 bytes) was allocated
/// by function `f` of app.js (line 3, column 7) at trace node 2. `trace_tree` and
/// `trace_function_infos` are given.
fn tracked_snapshot(trace_function_infos: &str, trace_tree: &str) -> String {
    format!(
        r#"{{"snapshot":{{"meta":{{"node_fields":["type","name","id","self_size","edge_count","trace_node_id"],"node_types":[["synthetic","object"],"string","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["element","property"],"string_or_number","node"],"trace_function_info_fields":["function_id","name","script_name","script_id","line","column"],"trace_node_fields":["id","function_info_index","count","size","children"]}},"node_count":2,"edge_count":1,"trace_function_count":1}},
"nodes":[0,0,1,0,1,0,1,1,3,16,0,2],
"edges":[1,1,6],
"trace_function_infos":{trace_function_infos},
"trace_tree":{trace_tree},
"strings":["","f","app.js"]}}"#
    )
}

#[test]
fn a_malformed_allocation_trace_is_a_one_line_error_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tracked.heapsnapshot");
    let good_infos = "[1,1,2,5,3,7]";
    let good_tree = "[1,0,0,0,[2,0,1,16,[]]]";
    std::fs::write(&file, tracked_snapshot(good_infos, good_tree)).unwrap();
    let out = run(&["heap", "--json", "-q", path(&file)]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["extra"]["allocation_sites"],
        serde_json::json!([{"function": "f", "script": "app.js", "script_id": 5, "line": 3,
            "column": 7, "allocations": 1, "allocated_bytes": 16, "live_count": 1,
            "live_bytes": 16}])
    );
    for (infos, tree, message) in [
        (
            good_infos,
            "[1,0,0,0,[2,9,1,16,[]]]",
            "names function 9, which does not exist",
        ),
        (
            good_infos,
            "[1,0,0,0,[2,0,1,16,[],]]",
            "expected a trace node field",
        ),
        (good_infos, "[1,0,0,0,[2,0,1,16,[[[[[[", "expected"),
        (good_infos, "[1,0,0,[],0]", "expected a trace node field"),
        (
            "[1,1,20,5,3,7]",
            good_tree,
            "names string 20, which does not exist",
        ),
        ("[1,1,2,5,3]", good_tree, "not a multiple of its 6 fields"),
    ] {
        std::fs::write(&file, tracked_snapshot(infos, tree)).unwrap();
        let line = assert_one_line_error(&run(&["heap", "-q", path(&file)]), message);
        assert!(line.contains("tracked.heapsnapshot: at byte "), "{line}");
    }
}

#[test]
fn allocation_sizes_that_overflow_any_sum_give_a_report_not_a_crash() {
    // Sizes are varints: a hostile trace can claim blocks of 2^63 bytes, whose sums overflow
    // u64 (live bytes, bytes per stack, the peak). Every command that replays it still answers.
    let dir = tempfile::tempdir().unwrap();
    let header = trace_header("huge");
    let traces: Vec<PathBuf> = ["a", "b"]
        .iter()
        .enumerate()
        .map(|(n, name)| {
            let trace = dir.path().join(format!("{name}.lks"));
            let file = std::fs::File::create(&trace).unwrap();
            let mut writer = TraceWriter::new(file, &header).unwrap();
            writer.stack(StackId(1), &[0x1234]).unwrap();
            let mut scanned = Vec::new();
            for i in 0..3 + n as u64 {
                let address = 0x10_000 + i * 0x1000;
                writer
                    .alloc(
                        TraceTime(1_000 + i),
                        ThreadId(1),
                        address,
                        1 << 63,
                        StackId(1),
                        AllocKind::Malloc,
                    )
                    .unwrap();
                scanned.push(ScannedBlock {
                    address,
                    class: LeakClass::DefinitelyLost,
                });
            }
            writer
                .free(TraceTime(2_000), ThreadId(1), 0x10_000)
                .unwrap();
            writer
                .leak_scan(&LeakScan {
                    time: TraceTime(3_000),
                    trigger: ScanTrigger::Exit,
                    blocks: scanned.split_off(1),
                })
                .unwrap();
            writer.end(TraceTime(4_000), ProcessEnd::Exited(0)).unwrap();
            writer.finish().unwrap();
            trace
        })
        .collect();
    for args in [
        vec!["report", "-q", path(&traces[0])],
        vec!["report", "-q", "--json", path(&traces[0])],
        vec!["report", "-q", path(&traces[0]), "--fail-on-leak"],
        vec![
            "report",
            "-q",
            "--flamegraph",
            "/dev/null",
            path(&traces[0]),
        ],
        vec![
            "report",
            "-q",
            "--flamegraph",
            "/dev/null",
            "--flamegraph-metric",
            "peak",
            path(&traces[0]),
        ],
        vec!["diff", "-q", path(&traces[0]), path(&traces[1])],
        vec!["diff", "-q", "--json", path(&traces[0]), path(&traces[1])],
    ] {
        let out = run(&args);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A server that dies after it was ready: the error names the run it died in, not readiness.
#[test]
fn a_server_dying_mid_check_is_reported_as_such() {
    let out = run(&[
        "check",
        "-q",
        "--ready-delay",
        "100ms",
        "--scenario",
        "sleep 0.2",
        "--warmup",
        "1",
        "--iterations",
        "50",
        "--",
        "sh",
        "-c",
        "sleep 1; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exited with exit status: 4 during iteration"),
        "{stderr}"
    );
    assert!(!stderr.contains("before it was ready"), "{stderr}");
}

/// Odd paths get errors that say what is wrong with them: a missing file or a directory given
/// with a trace to `diff` (was "not both traces"), a device to `trend` and as a suppressions
/// file (read for ever before), `--max 0` to `paths` (printed one path), and a full stdout
/// (named now).
#[test]
fn odd_paths_and_values_get_errors_that_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let trace = trace_with_one_lost_block(dir.path());
    let missing = dir.path().join("missing.trace");
    assert_one_line_error(
        &run(&["diff", "-q", path(&trace), path(&missing)]),
        "No such file",
    );
    assert_one_line_error(
        &run(&["diff", "-q", path(&trace), path(dir.path())]),
        "is a directory",
    );
    assert_one_line_error(
        &run(&["trend", "/dev/zero"]),
        "a device, not a file to read",
    );
    assert_one_line_error(
        &run(&["report", "-q", "--suppressions", "/dev/zero", path(&trace)]),
        "a device, not a file to read",
    );
    let snapshot =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/v8/handmade.heapsnapshot");
    let out = run(&["paths", "-q", "--max", "0", "--id", "1", path(&snapshot)]);
    assert_eq!(out.status.code(), Some(2));
    let full = std::fs::File::create("/dev/full");
    if let Ok(full) = full {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leaksift"))
            .args(["heap", "-q"])
            .arg(&snapshot)
            .stdout(full)
            .output()
            .unwrap();
        assert_one_line_error(&out, "writing to stdout");
    }
}

/// A V8 snapshot of a root with `objects` children, large enough that a debug build takes a
/// while to read it.
fn star_snapshot(objects: usize) -> String {
    use std::fmt::Write as _;
    let mut nodes = format!("9,0,1,0,{objects},0,0");
    let mut edges = String::new();
    for i in 0..objects {
        let _ = write!(nodes, ",3,1,{},16,0,0,0", 3 + 2 * i);
        let _ = write!(
            edges,
            "{}1,{},{}",
            if i == 0 { "" } else { "," },
            i + 1,
            7 * (i + 1)
        );
    }
    format!(
        r#"{{"snapshot":{{"meta":{{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"]}},"node_count":{},"edge_count":{objects},"trace_function_count":0}},"nodes":[{nodes}],"edges":[{edges}],"strings":["","Item"]}}"#,
        objects + 1
    )
}

#[test]
fn a_heap_file_cut_while_it_is_read_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("growing.heapsnapshot");
    let snapshot = star_snapshot(400_000);
    let maps_entry = path(&file).to_string();
    // Caught once its mapping shows, stopped, cut to a few bytes and resumed: the next page it
    // touches is past the end. A run that ended before it was caught is tried again.
    for _attempt in 0..5 {
        std::fs::write(&file, &snapshot).unwrap();
        let mut child = leaksift()
            .args(["heap", "-q"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let maps = format!("/proc/{}/maps", child.id());
        let caught = loop {
            match std::fs::read_to_string(&maps) {
                Ok(text) if text.contains(&maps_entry) => break true,
                Ok(_) => std::thread::sleep(std::time::Duration::from_micros(200)),
                Err(_) => break false,
            }
            if child.try_wait().unwrap().is_some() {
                break false;
            }
        };
        if !caught {
            child.wait().unwrap();
            continue;
        }
        let pid = child.id() as libc::pid_t;
        // SAFETY: signals a child of this test that has not been waited for.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(100)
            .unwrap();
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        let out = child.wait_with_output().unwrap();
        if out.status.code() == Some(0) {
            continue; // it had read every page before it was stopped
        }
        assert_one_line_error(
            &out,
            "growing.heapsnapshot: a page of the mapped file could not be read (SIGBUS): the file was shortened",
        );
        return;
    }
    panic!("leaksift read the snapshot before it could be cut, five times over");
}

#[test]
fn a_flamegraph_over_its_own_trace_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let trace = trace_with_one_lost_block(dir.path());
    let before = std::fs::read(&trace).unwrap();
    let out = leaksift()
        .args(["report", "-q", "--flamegraph"])
        .arg(&trace)
        .arg(&trace)
        .output()
        .unwrap();
    assert_one_line_error(&out, "--flamegraph names the same file as TRACE");
    assert_eq!(
        std::fs::read(&trace).unwrap(),
        before,
        "the trace was changed"
    );
}
