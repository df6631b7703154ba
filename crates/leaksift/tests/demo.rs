//! `leaksift demo` from a fresh directory: runs its steps on the bundled leaky program, confirms
//! the leak, draws the chart, records the program and names the leaking call site.

use std::process::Command;

mod support;

#[test]
fn demo_finds_the_bundled_leak_and_draws_it() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo-out");
    support::ensure_preload();
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["demo", "--duration", "4s", "--out-dir"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("== step 1/"), "{stdout}");
    assert!(stdout.contains("$ leaksift watch "), "{stdout}");
    assert!(stdout.contains("LEAK"), "{stdout}");
    let svg = std::fs::read_to_string(out_dir.join("watch.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("LEAK"));
    let csv = std::fs::read_to_string(out_dir.join("watch.csv")).unwrap();
    assert!(csv.lines().count() > 20);
    assert!(stdout.contains("$ leaksift record "), "{stdout}");
    assert!(stdout.contains("$ leaksift report "), "{stdout}");
    assert!(
        stdout
            .contains("found the leaking call site: leaksift::cmd::demo::leaky::remember_response"),
        "{stdout}"
    );
    assert!(stdout.contains("leaky.rs:"), "{stdout}");
    let flamegraph = std::fs::read_to_string(out_dir.join("peak-flamegraph.svg")).unwrap();
    assert!(flamegraph.contains("remember_response"));
}

/// Watched too briefly for a verdict, the demo says so in the verdict's own terms and names the
/// fix (it named an internal outcome, `Clean`, and blamed a busy machine).
#[test]
fn a_demo_too_short_for_a_verdict_says_to_watch_longer() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["demo", "--duration", "300ms", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = stderr.lines().last().unwrap_or_default();
    assert!(
        error.contains("not found leaking in 300 ms of watching")
            && error.contains("--duration 15s")
            && !error.contains("Clean"),
        "{stderr}"
    );
}
