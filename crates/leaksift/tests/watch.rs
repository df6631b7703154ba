//! `leaksift watch` on real processes: the four memory shapes of
//! `tests/programs/watch/memory_shapes.c` must come out leak / stable / plateau / stable, and bad
//! targets must give one-line errors with exit code 2 while keeping the samples taken.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use assert_cmd::prelude::*;

mod one_line_error;

use one_line_error::assert_one_line_error;

fn leaksift() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leaksift"))
}

fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/watch")
}

/// Compiles memory_shapes.c once per test run into a temporary directory.
fn memory_shapes() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &BUILT
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let exe = dir.path().join("memory_shapes");
            let status = Command::new("cc")
                .args(["-O1", "-Wall", "-o"])
                .arg(&exe)
                .arg(programs().join("memory_shapes.c"))
                .status()
                .expect("cc must be installed to build the test programs");
            assert!(status.success(), "compiling memory_shapes.c failed");
            (dir, exe)
        })
        .1
}

/// Runs `leaksift watch --quiet --interval 50ms --json ARGS… -- memory_shapes MODE`, expects
/// success and returns the JSON verdict.
fn watch_json(args: &[&std::ffi::OsStr], mode: &str) -> serde_json::Value {
    let out = leaksift()
        .args(["watch", "--quiet", "--interval", "50ms", "--json"])
        .args(args)
        .arg("--")
        .arg(memory_shapes())
        .arg(mode)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Watches `memory_shapes MODE` for 10 s at 50 ms and returns the JSON verdict.
fn watch_shape(mode: &str, extra: &[&str]) -> serde_json::Value {
    let mut args: Vec<&std::ffi::OsStr> = vec!["--duration".as_ref(), "10s".as_ref()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let json = watch_json(&args, mode);
    assert_eq!(json["schema"], "leaksift.watch.v1");
    assert!(json["samples"].as_u64().unwrap() >= 50, "{json}");
    json
}

#[test]
fn steady_leak_under_a_sawtooth_is_a_leak() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("leak.csv");
    let svg = dir.path().join("leak.svg");
    let json = watch_shape(
        "leak-sawtooth",
        &[
            "--out",
            csv.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
            "--limit",
            "1GiB",
        ],
    );
    assert_eq!(json["verdict"], "leak", "{json}");
    // The program keeps 20 KiB per 10 ms tick: at most 2 MiB/s, less when ticks run late.
    let slope = json["slope_bytes_per_s"].as_f64().unwrap();
    assert!(slope > 0.5 * 1048576.0 && slope < 2.5 * 1048576.0, "{json}");
    let ci = json["slope_ci"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() > 0.0, "{json}");
    assert!(json["time_to_limit_s"].as_f64().unwrap() > 0.0, "{json}");
    assert_eq!(json["target"]["kind"], "command");

    // The CSV has the documented header and one row per sample; trend agrees with watch.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(leaksift_watch_header()));
    assert_eq!(lines.count() as u64, json["samples"].as_u64().unwrap());
    let trend = leaksift()
        .args(["trend", "--json"])
        .arg(&csv)
        .output()
        .unwrap();
    let trend: serde_json::Value = serde_json::from_slice(&trend.stdout).unwrap();
    assert_eq!(trend["verdict"], "leak");
    // Same samples, times rounded to microseconds in the CSV.
    let trend_slope = trend["slope_bytes_per_s"].as_f64().unwrap();
    assert!(
        (trend_slope - slope).abs() <= 1e-3 * slope,
        "{trend_slope} vs {slope}"
    );

    // The chart is well-formed XML with the samples, baseline and trend drawn.
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert_well_formed(&svg);
    assert!(
        svg.contains("<polyline") && svg.contains("LEAK") && svg.contains("limit reached in ~")
    );
}

fn leaksift_watch_header() -> &'static str {
    "t,bytes,rss,anon,file,swap,pss,uss,limit,oom_kills,pid,processes"
}

/// Watches `memory_shapes MODE` (a command that ends by itself) at 50 ms; returns the JSON
/// verdict and the number of samples the `--out` CSV holds.
fn watch_to_exit(mode: &str) -> (serde_json::Value, u64) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("samples.csv");
    let json = watch_json(&["--out".as_ref(), csv.as_os_str()], mode);
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() as u64 - 1;
    (json, rows)
}

/// Samples of the exit window at a 50 ms interval: 200 ms
/// (`leaksift_stats::EXIT_WINDOW_MIN_S`) hold at most five.
const EXIT_WINDOW_SAMPLES: u64 = 5;

/// A command that frees its memory as it exits: the falling samples at the very end are left
/// out (they read as a restart, or as a levelling-off), and the verdict is on the growth.
#[test]
fn the_memory_a_command_frees_as_it_exits_is_left_out() {
    let (json, rows) = watch_to_exit("leak-exit");
    let tail = json["exit_tail_samples"].as_u64().unwrap();
    assert!((1..=EXIT_WINDOW_SAMPLES).contains(&tail), "{json}");
    assert_eq!(
        json["samples"].as_u64().unwrap(),
        rows - tail,
        "the CSV keeps them all"
    );
    assert_eq!(json["restarts"], 0, "{json}");
    assert_eq!(json["verdict"], "leak", "{json}");
}

/// The same for a `--pid` process: it vanishes (an error, exit 2, after the verdict), and the
/// memory it freed as it ended is its exit tail.
#[test]
fn the_memory_a_watched_pid_frees_as_it_ends_is_left_out() {
    let mut victim = Command::new(memory_shapes())
        .arg("leak-exit")
        .spawn()
        .unwrap();
    let pid = victim.id();
    let reaper = std::thread::spawn(move || victim.wait());
    let out = leaksift()
        .args(["watch", "--quiet", "--interval", "50ms", "--json", "--pid"])
        .arg(pid.to_string())
        .output()
        .unwrap();
    reaper.join().unwrap().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["stopped"], "error", "{json}");
    let tail = json["exit_tail_samples"].as_u64().unwrap();
    assert!((1..=EXIT_WINDOW_SAMPLES).contains(&tail), "{json}");
    assert_eq!(json["restarts"], 0, "{json}");
    assert_eq!(json["verdict"], "leak", "{json}");
}

/// Memory given back over two seconds before the command exits is the program's behaviour, not
/// its exit: only the exit window's samples may go, and the fall keeps the verdict off `leak`.
#[test]
fn a_long_fall_before_exit_is_kept() {
    let (json, rows) = watch_to_exit("rise-fall");
    let tail = json["exit_tail_samples"].as_u64().unwrap();
    assert!(tail <= EXIT_WINDOW_SAMPLES, "{json}");
    assert_eq!(json["samples"].as_u64().unwrap(), rows - tail);
    assert_ne!(json["verdict"], "leak", "{json}");
    assert_ne!(json["verdict"], "plateau", "{json}");
}

#[test]
fn sawtooth_around_a_flat_baseline_is_stable() {
    let json = watch_shape("sawtooth", &[]);
    assert_eq!(json["verdict"], "stable", "{json}");
    // The sawtooth itself is large: peaks several MiB above the baseline.
    let peak = json["peak_bytes"].as_f64().unwrap();
    let level = json["baseline_level_bytes"].as_f64().unwrap();
    assert!(peak - level > 2.0 * 1048576.0, "{json}");
    assert!(json["time_to_limit_s"].is_null());
}

#[test]
fn growth_then_plateau_is_a_plateau() {
    let json = watch_shape("plateau", &[]);
    assert_eq!(json["verdict"], "plateau", "{json}");
    assert_eq!(json["reason"], "tail_flattened");
}

#[test]
fn flat_is_stable() {
    let json = watch_shape("flat", &[]);
    assert_eq!(json["verdict"], "stable", "{json}");
}

fn assert_well_formed(xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("invalid XML at {}: {e}", reader.buffer_position()),
        }
    }
    assert_eq!(depth, 0);
}

#[test]
fn passes_on_the_exit_code_of_the_command() {
    let out = leaksift()
        .args([
            "watch",
            "-q",
            "--interval",
            "20ms",
            "--",
            "sh",
            "-c",
            "sleep 0.4; exit 7",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("command exited with code 7"));
    // A command that exits before the first sample still passes its code on.
    let out = leaksift()
        .args(["watch", "-q", "--", "sh", "-c", "exit 5"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn vanished_pid_is_an_error_but_keeps_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("gone.csv");
    let svg = dir.path().join("gone.svg");
    let mut victim = Command::new("sleep").arg("0.6").spawn().unwrap();
    let pid = victim.id();
    // Reap the victim as soon as it exits so its /proc entry disappears.
    let reaper = std::thread::spawn(move || victim.wait());
    let out = leaksift()
        .args([
            "watch",
            "-q",
            "--interval",
            "20ms",
            "--duration",
            "20s",
            "--pid",
        ])
        .arg(pid.to_string())
        .arg("--out")
        .arg(&csv)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    reaper.join().unwrap().unwrap();
    let stderr = assert_one_line_error(&out, &format!("process {pid} is gone"));
    assert!(
        stderr.starts_with("leaksift: error: watching pid"),
        "{stderr}"
    );
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count();
    assert!(rows > 5, "{rows} lines in the CSV");
    assert_well_formed(&std::fs::read_to_string(&svg).unwrap());
}

#[test]
fn bad_targets_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["--pid", "99999999"], "process 99999999 is gone"),
        (
            &["--cgroup", dir.path().to_str().unwrap()],
            "not a cgroup v2 directory",
        ),
        (
            &["--", "/nonexistent/program"],
            "cannot start `/nonexistent/program`",
        ),
    ];
    for (args, message) in cases {
        let out = leaksift()
            .args(["watch", "-q", "--duration", "1s"])
            .args(args)
            .output()
            .unwrap();
        assert_one_line_error(&out, message);
    }
    leaksift()
        .args(["watch", "--interval", "1ms", "--pid", "1"])
        .assert()
        .code(2);
    leaksift()
        .args(["watch", "--interval", "1s"])
        .assert()
        .code(2);
}

#[test]
fn permission_denied_on_smaps_is_an_error() {
    // Needs root to drop to another user; skip elsewhere (CI runs as root in the container).
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !is_root || Command::new("setpriv").arg("--help").output().is_err() {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    // As `nobody`, PID 1's smaps_rollup (owned by root) is not readable.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_leaksift"))
        .args(["watch", "-q", "--pss", "--duration", "1s", "--pid", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Permission denied") && stderr.contains("exec") {
        eprintln!("skipped: the test binary is not executable by nobody: {stderr}");
        return;
    }
    assert_one_line_error(&out, "permission denied reading /proc/1/smaps_rollup");
}

/// A supervisor restarting a leaking worker each time it is killed (an OOM kill and restart):
/// the QA reproducer `restart-many/supervisor.sh 8`. The tree loses a process as its memory
/// falls, so `watch` marks each fall a restart and judges each run's growth: a leak. Unmarked,
/// the eight falls to the start-up level were read as a sawtooth: `inconclusive`.
#[test]
fn a_worker_restarted_eight_times_is_a_leak() {
    let script = "for i in 1 2 3 4 5 6 7 8; do timeout -s KILL 1.5 \"$0\" leak-exit; done";
    let out = leaksift()
        .args(["watch", "--quiet", "--interval", "50ms", "--json", "--"])
        .args(["sh", "-c", script])
        .arg(memory_shapes())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(json["verdict"], "leak", "{json}");
    assert!(json["restarts"].as_u64().unwrap() >= 6, "{json}");
}

/// Killed with SIGKILL (an OOM kill, a CI timeout), leaksift cannot stop what it started: the
/// watched command gets SIGTERM from the kernel instead (`PR_SET_PDEATHSIG`), as do `check`'s
/// server and `record`'s program. It used to run on with nobody to stop it.
#[test]
fn a_killed_leaksift_takes_its_command_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("command.pid");
    let script = format!("echo $$ > '{}'; exec sleep 600", pid_file.display());
    let mut watcher = leaksift()
        .args(["watch", "-q", "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && let Ok(pid) = text.trim().parse::<u32>()
        {
            break pid;
        }
        assert!(
            started.elapsed().as_secs() < 20,
            "the command did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    watcher.kill().unwrap();
    watcher.wait().unwrap();
    // Gone, or a zombie waiting for init to reap it: a bounded wait, not a timing claim.
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.contains(") Z "))
    };
    while !gone() {
        assert!(started.elapsed().as_secs() < 30, "the command still runs");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A command that exits before the first sample printed nothing, wrote no `--out`/`--svg` file
/// and exited 0 even when those paths could not be written. Now the verdict (no samples,
/// inconclusive) and the files are written and the command's code passed on; an unwritable
/// output is refused before the command runs.
#[test]
fn a_command_that_exits_at_once_still_gets_its_verdict_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, svg) = (dir.path().join("w.csv"), dir.path().join("w.svg"));
    let out = leaksift()
        .args(["watch", "--quiet", "--json", "--out"])
        .arg(&csv)
        .arg("--svg")
        .arg(&svg)
        .args(["--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["samples"], 0, "{json}");
    assert_eq!(json["verdict"], "inconclusive", "{json}");
    assert_eq!(json["stopped"], "command_exited", "{json}");
    assert_eq!(json["exit_code"], 3, "{json}");
    let header = std::fs::read_to_string(&csv).unwrap();
    assert!(header.starts_with("t,bytes,"), "{header}");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("</svg>"));

    let marker = dir.path().join("ran");
    let out = leaksift()
        .args([
            "watch",
            "--quiet",
            "--svg",
            "/nonexistent/dir/w.svg",
            "--",
            "touch",
        ])
        .arg(&marker)
        .output()
        .unwrap();
    assert_one_line_error(&out, "/nonexistent/dir/w.svg");
    assert!(
        !marker.exists(),
        "the command ran although its output could not be written"
    );
}
