//! `leaksift trend` on CSV series: verdicts, JSON fields, restarts from a `pid` column, the chart,
//! and one-line `FILE:LINE` errors for malformed input.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

fn leaksift() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leaksift"))
}

/// `n` samples, one per second, of `f(t)`, as a CSV with `t,bytes[,pid]`.
fn csv(
    dir: &Path,
    name: &str,
    n: usize,
    f: impl Fn(f64) -> (f64, Option<u32>),
) -> std::path::PathBuf {
    let mut text = String::from("t,bytes,pid\n");
    for i in 0..n {
        let t = i as f64;
        let (bytes, pid) = f(t);
        let _ = writeln!(
            text,
            "{t},{bytes:.0},{}",
            pid.map(|p| p.to_string()).unwrap_or_default()
        );
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A deterministic wiggle in [-1, 1].
fn wiggle(t: f64) -> f64 {
    ((t * 12.9898).sin() * 43758.5453).fract()
}

const MIB: f64 = 1048576.0;

fn trend_json(path: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = leaksift()
        .args(["trend", "--json"])
        .args(extra)
        .arg(path)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), json)
}

#[test]
fn leak_with_fail_on_leak_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv(dir.path(), "leak.csv", 300, |t| {
        (
            100.0 * MIB + 0.5 * MIB * t + (t % 10.0) * 3.0 * MIB + MIB * wiggle(t),
            None,
        )
    });
    let out = leaksift()
        .args(["trend", "--json", "--fail-on-leak", "--limit", "2GiB"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("{\n  \"schema\": \"leaksift.trend.v1\","),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["verdict"], "leak");
    for key in ["slope_bytes_per_s", "p_value", "time_to_limit_s"] {
        assert!(json[key].is_number(), "{key}: {json}");
    }
    assert_eq!(json["samples"], 300);
    let slope = json["slope_bytes_per_s"].as_f64().unwrap();
    assert!((slope / MIB - 0.5).abs() < 0.1, "{json}");
    let ttl = json["time_to_limit_range_s"].as_array().unwrap();
    let estimate = json["time_to_limit_s"].as_f64().unwrap();
    assert!(ttl[0].as_f64().unwrap() <= estimate && estimate <= ttl[1].as_f64().unwrap());
    // Without --fail-on-leak the verdict is informational.
    assert_eq!(trend_json(&path, &[]).0, Some(0));
}

/// A leak already above `--limit`: the text says so instead of "~0 ms"; a baseline of 4
/// windows cannot pass the test at 0.01 and is inconclusive, not stable; `--alpha 0` is refused.
#[test]
fn over_the_limit_too_few_windows_and_a_zero_alpha() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv(dir.path(), "leak.csv", 120, |t| {
        (100.0 * MIB + 0.2 * MIB * t, None)
    });
    let out = leaksift()
        .args(["trend", "--limit", "50MiB"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("already above the limit"), "{text}");
    let (_, json) = trend_json(&path, &["--windows", "4"]);
    assert_eq!(json["verdict"], "inconclusive", "{json}");
    assert_eq!(json["reason"], "too_few_points", "{json}");
    let out = leaksift()
        .args(["trend", "--alpha", "0"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sawtooth_is_stable_and_warm_up_is_a_plateau() {
    let dir = tempfile::tempdir().unwrap();
    let saw = csv(dir.path(), "saw.csv", 300, |t| {
        (50.0 * MIB + (t % 7.0) * 4.0 * MIB, None)
    });
    let (code, json) = trend_json(&saw, &["--fail-on-leak"]);
    assert_eq!(
        (code, &json["verdict"]),
        (Some(0), &serde_json::json!("stable")),
        "{json}"
    );
    assert!(json["time_to_limit_s"].is_null());
    let warm = csv(dir.path(), "warm.csv", 300, |t| {
        (50.0 * MIB + 80.0 * MIB * (1.0 - (-t / 40.0).exp()), None)
    });
    assert_eq!(trend_json(&warm, &[]).1["verdict"], "plateau");
}

#[test]
fn pid_changes_split_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // Restarts every 100 s (a new pid) at a level only 20% below the peak: no drop detection.
    let path = csv(dir.path(), "restarts.csv", 300, |t| {
        (
            400.0 * MIB + MIB * (t % 100.0),
            Some(1000 + (t / 100.0) as u32),
        )
    });
    let (_, json) = trend_json(&path, &["--restart-drop", "0"]);
    assert_eq!(json["restarts"], 2, "{json}");
    assert_eq!(json["verdict"], "leak", "{json}");
    assert!((json["slope_bytes_per_s"].as_f64().unwrap() / MIB - 1.0).abs() < 0.05);
}

#[test]
fn human_output_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv(dir.path(), "leak.csv", 100, |t| {
        (10.0 * MIB + MIB * t, None)
    });
    let svg = dir.path().join("chart.svg");
    let out = leaksift()
        .arg("trend")
        .arg(&path)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("LEAK") && stdout.contains("+1.00 MiB/s"),
        "{stdout}"
    );
    let svg = std::fs::read_to_string(&svg).unwrap();
    let mut reader = quick_xml::Reader::from_str(&svg);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("invalid SVG: {e}"),
        }
    }
    assert!(svg.contains("leak.csv"));
}

#[test]
fn a_chart_over_its_own_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv(dir.path(), "leak.csv", 100, |t| {
        (10.0 * MIB + MIB * t, None)
    });
    let before = std::fs::read(&path).unwrap();
    let out = leaksift()
        .arg("trend")
        .arg(&path)
        .arg("--svg")
        .arg(dir.path().join(".").join("leak.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "leaksift: error: --svg names the same file as FILE: it would overwrite it"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the input was changed"
    );
}

#[test]
fn malformed_input_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("empty.csv", "", "empty.csv:1: empty file: no header"),
        (
            "noheader.csv",
            "when,mem\n1,2\n",
            "noheader.csv:1: header has no `t` column",
        ),
        (
            "baddate.csv",
            "time,mem\n2026-11-21 14:00:00,2\nyesterday,3\n",
            "baddate.csv:3: `time` is not a date or Unix time: \"yesterday\"",
        ),
        (
            "twovalues.csv",
            "time,rss,vms\n0,1,2\n",
            "twovalues.csv:1: header has no `bytes` column and several value columns (rss, vms): choose one with --column",
        ),
        (
            "bad.csv",
            "t,bytes\n0,100\n1,12x\n",
            "bad.csv:3: `bytes` is not a number: \"12x\"",
        ),
        (
            "back.csv",
            "t,bytes\n5,100\n4,100\n",
            "back.csv:3: `t` goes backwards (4)",
        ),
        (
            "backdate.csv",
            "timestamp,bytes\n2026-11-22T10:00:05Z,100\n2026-11-22T10:00:04Z,100\n",
            "backdate.csv:3: `timestamp` goes backwards (2026-11-22T10:00:04Z)",
        ),
        (
            "short.csv",
            "t,bytes\n0\n",
            "short.csv:2: missing `bytes` field",
        ),
        (
            "onlyheader.csv",
            "t,bytes\n",
            "onlyheader.csv:1: no samples after the header",
        ),
    ];
    for (name, content, message) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let out = leaksift().arg("trend").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("leaksift: error: ") && stderr.contains(message),
            "{stderr}"
        );
    }
    let out = leaksift()
        .args(["trend", "/nonexistent/series.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /nonexistent/series.csv"));
}

#[test]
fn too_short_is_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv(dir.path(), "short.csv", 3, |t| (MIB * (1.0 + t), None));
    let (code, json) = trend_json(&path, &["--fail-on-leak"]);
    assert_eq!(code, Some(0));
    assert_eq!(json["verdict"], "inconclusive");
    assert_eq!(json["reason"], "too_few_points");
}

#[test]
fn a_closed_stdout_ends_trend_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv(dir.path(), "leak.csv", 60, |t| (1e7 + 1e5 * t, None));
    for flags in [&["--json"][..], &[][..]] {
        let mut child = leaksift()
            .arg("trend")
            .args(flags)
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{flags:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {stderr}");
    }
}

/// A committed fixture recorded with a real tool (tests/programs/trend/regenerate.sh).
fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/programs/trend")
        .join(name)
}

/// The data lines of a fixture that start with `prefix` (its samples).
fn count_lines(name: &str, keep: impl Fn(&str) -> bool) -> usize {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .filter(|l| keep(l))
        .count()
}

#[test]
fn psrecord_logs_are_read_as_they_are() {
    // A Python program keeping 1 MiB every 100 ms, and one that fills a cache for 2 s and then
    // holds it, both recorded by psrecord --include-children.
    let (code, json) = trend_json(&fixture("psrecord-leak.log"), &["--fail-on-leak"]);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["verdict"], "leak");
    assert_eq!(json["format"], "psrecord");
    assert_eq!(json["source"], "Real (MB)");
    let rows = count_lines("psrecord-leak.log", |l| {
        !l.trim().is_empty() && !l.starts_with('#')
    });
    assert_eq!(json["samples"], rows);
    // ~10 MiB/s: psrecord's "MB" are MiB.
    let slope = json["slope_bytes_per_s"].as_f64().unwrap() / MIB;
    assert!((8.0..12.0).contains(&slope), "{slope} MiB/s");
    let (code, json) = trend_json(&fixture("psrecord-plateau.log"), &["--fail-on-leak"]);
    assert_eq!(code, Some(0), "{json}");
    assert_ne!(json["verdict"], "leak");
    let (_, virt) = trend_json(&fixture("psrecord-leak.log"), &["--column", "virtual"]);
    assert_eq!(virt["source"], "Virtual (MB)");
}

#[test]
fn mprof_files_are_read_without_the_final_zero() {
    let (code, json) = trend_json(&fixture("mprof-leak.dat"), &["--fail-on-leak"]);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(
        (&json["verdict"], &json["format"]),
        (&"leak".into(), &"mprof".into())
    );
    // mprof ends with `MEM 0.000000` once the process is gone: not a sample.
    let nonzero = count_lines("mprof-leak.dat", |l| {
        l.starts_with("MEM ") && !l.starts_with("MEM 0.000000 ")
    });
    assert!(count_lines("mprof-leak.dat", |l| l.starts_with("MEM 0.000000 ")) >= 1);
    assert_eq!(json["samples"], nonzero);
}

/// `mprof run --multiprocess` of a small parent whose three workers leak: the tree (MEM plus
/// the CHLD lines of each round) leaks, as do the children alone; the parent alone is stable.
/// CHLD lines used to be ignored (the tree read as stable), and `--column CHLD` refused.
#[test]
fn mprof_children_are_part_of_the_tree() {
    let file = fixture("mprof-children.dat");
    let (code, tree) = trend_json(&file, &["--fail-on-leak"]);
    assert_eq!(code, Some(1), "{tree}");
    assert_eq!(
        (&tree["verdict"], &tree["source"]),
        (&"leak".into(), &"MEM+CHLD".into())
    );
    let rounds = count_lines("mprof-children.dat", |l| l.starts_with("MEM "));
    assert_eq!(tree["samples"], rounds);
    let (_, parent) = trend_json(&file, &["--column", "MEM"]);
    assert_eq!(
        (&parent["verdict"], &parent["source"]),
        (&"stable".into(), &"MEM".into())
    );
    let (_, children) = trend_json(&file, &["--column", "CHLD"]);
    assert_eq!(
        (&children["verdict"], &children["source"]),
        (&"leak".into(), &"CHLD".into())
    );
}

#[test]
fn prometheus_range_queries_pick_one_series() {
    // Prometheus scraping itself every second for 90 s: its own RSS.
    let (code, json) = trend_json(&fixture("prometheus-self.json"), &[]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["format"], "prometheus");
    assert!(
        json["source"]
            .as_str()
            .unwrap()
            .starts_with("process_resident_memory_bytes{"),
        "{json}"
    );
    assert!(json["samples"].as_u64().unwrap() >= 60, "{json}");
    // Two series (resident and virtual): a one-line error says how to choose.
    let two = fixture("prometheus-two-series.json");
    let out = leaksift().arg("trend").arg(&two).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("prometheus-two-series.json:1: 2 series: choose one with --column"),
        "{stderr}"
    );
    let (code, json) = trend_json(&two, &["--column", "virtual"]);
    assert_eq!(code, Some(0), "{json}");
    assert!(
        json["source"]
            .as_str()
            .unwrap()
            .starts_with("process_virtual_memory_bytes{")
    );
}

#[test]
fn grafana_exports_with_dates_units_and_gaps() {
    // Grafana's panel CSV export ("formatted data" on): a quoted header holding the series'
    // labels, local dates, values with units, an empty cell where the series had no point.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        "\"Time\",\"container_memory_working_set_bytes{pod=\"\"api-0\"\", namespace=\"\"prod\"\"}\"\n",
    );
    for i in 0..120u32 {
        let (minute, second) = (i / 4, (i % 4) * 15);
        let value = if i == 7 {
            String::new()
        } else {
            format!(
                "{:.2} MiB",
                300.0 + 0.5 * f64::from(i) + 2.0 * wiggle(f64::from(i))
            )
        };
        let _ = writeln!(text, "2026-11-21 14:{minute:02}:{second:02},{value}");
    }
    let path = dir.path().join("grafana.csv");
    std::fs::write(&path, text).unwrap();
    let (code, json) = trend_json(&path, &["--fail-on-leak"]);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["verdict"], "leak");
    assert_eq!(json["samples"], 119);
    assert_eq!(json["format"], "csv");
    // 0.5 MiB per 15 s.
    let slope = json["slope_bytes_per_s"].as_f64().unwrap();
    assert!((slope / (0.5 * MIB / 15.0) - 1.0).abs() < 0.1, "{slope}");
}

/// The QA reproducer `restart-many`: a leak started at 50 MB, growing 10 MB/s, OOM-killed and
/// restarted every 20 s, the pid changing at each restart. With 6 runs or more the restarts were
/// counted as sawtooth periods and the windows (23 samples) outgrew a run: `inconclusive`.
/// Without pids the drops cannot be told from a GC sawtooth's: `inconclusive`, with a note that
/// names both readings and the `pid` column that tells them apart, for 3 runs as for 12 (a
/// `stable` would clear the leak of a pod OOM-killed every 20 s).
#[test]
fn a_leak_restarted_many_times_is_a_leak_with_a_pid_column() {
    let dir = tempfile::tempdir().unwrap();
    for runs in [3, 8, 12] {
        let shape = |t: f64| 50e6 + 10e6 * (t % 20.0);
        let pid = csv(dir.path(), "pid.csv", 20 * runs, |t| {
            (shape(t), Some(1000 + (t / 20.0) as u32))
        });
        let (code, json) = trend_json(&pid, &["--fail-on-leak"]);
        assert_eq!(json["verdict"], "leak", "{runs} runs: {json}");
        assert_eq!(code, Some(1), "{runs} runs");
        assert_eq!(json["restarts"], runs - 1, "{runs} runs: {json}");
        assert_eq!(json["drops_may_be_restarts"], false);
        let nopid = csv(dir.path(), "nopid.csv", 20 * runs, |t| (shape(t), None));
        let (code, json) = trend_json(&nopid, &["--fail-on-leak"]);
        assert_eq!(
            (&json["verdict"], &json["reason"]),
            (&"inconclusive".into(), &"drops_may_be_restarts".into()),
            "{runs} runs: {json}"
        );
        assert_eq!(code, Some(0), "{runs} runs");
        assert_eq!(json["drops_may_be_restarts"], true, "{runs} runs: {json}");
        let out = leaksift().arg("trend").arg(&nopid).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("A `pid` column tells them apart"), "{text}");
    }
}

/// The QA reproducer `sawtooth-flip`: a buffer fills 10 → 100 MB over 10 s and is cleared, on a
/// flat baseline. 5 and 6 periods read as restarts of a leak (`--fail-on-leak` exited 1), 7 as
/// a sawtooth. With one pid (the same process throughout) it is a sawtooth, `stable`, for any
/// number of periods; without pids it is the shape of `a_leak_restarted_many_times…`:
/// `inconclusive`, for any number of periods too.
#[test]
fn a_deep_sawtooth_is_stable_for_any_number_of_periods() {
    let dir = tempfile::tempdir().unwrap();
    for n in [30, 50, 60, 70, 100] {
        let path = csv(dir.path(), "saw.csv", n, |t| {
            (10e6 + 10e6 * (t % 10.0), Some(4242))
        });
        let unmarked = csv(dir.path(), "unmarked.csv", n, |t| {
            (10e6 + 10e6 * (t % 10.0), None)
        });
        let (code, json) = trend_json(&unmarked, &["--fail-on-leak"]);
        assert_eq!(json["verdict"], "inconclusive", "{n} samples: {json}");
        assert_eq!(code, Some(0), "{n} samples");
        let (code, json) = trend_json(&path, &["--fail-on-leak"]);
        assert_eq!(json["verdict"], "stable", "{n} samples: {json}");
        assert_eq!(code, Some(0), "{n} samples");
        assert_eq!(json["restarts"], 0, "{n} samples: {json}");
        assert_eq!(json["sawtooth_drops"], (n - 1) / 10, "{n} samples: {json}");
    }
    // What survives each clear rises: a leak.
    let path = csv(dir.path(), "rising.csv", 100, |t| {
        (10e6 + 0.5e6 * t + 10e6 * (t % 10.0), None)
    });
    let (_, json) = trend_json(&path, &[]);
    assert_eq!(json["verdict"], "leak", "{json}");
}

/// A gzipped series gave "header has no `t` column"; it is read inflated, with the verdict of
/// the plain file.
#[test]
fn a_gzipped_series_reads_as_the_plain_one() {
    let dir = tempfile::tempdir().unwrap();
    let plain = csv(dir.path(), "leak.csv", 120, |t| {
        (100.0 * MIB + MIB * t, None)
    });
    let gzipped = dir.path().join("leak.csv.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gzipped).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut encoder, &std::fs::read(&plain).unwrap()).unwrap();
    encoder.finish().unwrap();
    let (code, mut from_gzip) = trend_json(&gzipped, &[]);
    let (_, mut from_plain) = trend_json(&plain, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(from_gzip["verdict"], "leak", "{from_gzip}");
    from_gzip["file"] = serde_json::Value::Null;
    from_plain["file"] = serde_json::Value::Null;
    assert_eq!(from_gzip, from_plain);
}
