//! Helpers for the tests that run native programs under `leaksift record` and compare with
//! valgrind memcheck (`report`, `report_oracle`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `command`, panicking with its stderr unless it succeeds.
pub fn must_run(command: &mut Command) -> std::process::Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `binary` under `leaksift record` and returns the trace path (in `dir`).
pub fn record(dir: &Path, binary: &Path) -> PathBuf {
    crate::support::ensure_preload();
    let trace = dir.join(format!(
        "{}.trace",
        binary.file_name().unwrap().to_string_lossy()
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .arg("record")
        .arg("-o")
        .arg(&trace)
        .arg("--")
        .arg(binary)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "record {} failed: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    trace
}

/// memcheck's leak classes, in the order of its LEAK SUMMARY and of [`memcheck_summary`].
pub const CLASSES: [&str; 4] = [
    "definitely_lost",
    "indirectly_lost",
    "possibly_lost",
    "still_reachable",
];

/// memcheck's LEAK SUMMARY as (blocks, bytes) per class, in [`CLASSES`] order.
pub fn memcheck_summary(binary: &Path) -> [(u64, u64); 4] {
    let output = Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--show-leak-kinds=all",
            "--run-libc-freeres=no",
        ])
        .arg(binary)
        .output()
        .expect("valgrind is installed (apt-get install valgrind)");
    let log = String::from_utf8_lossy(&output.stderr);
    if log.contains("All heap blocks were freed") {
        return [(0, 0); 4];
    }
    assert!(log.contains("LEAK SUMMARY"), "no LEAK SUMMARY in:\n{log}");
    let mut summary = [(0, 0); 4];
    for (slot, label) in [
        "definitely lost:",
        "indirectly lost:",
        "possibly lost:",
        "still reachable:",
    ]
    .iter()
    .enumerate()
    {
        let line = log
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no `{label}` in:\n{log}"));
        // "==1==    definitely lost: 1,148 bytes in 2 blocks"
        let numbers: Vec<u64> = line[line.find(label).unwrap() + label.len()..]
            .split_whitespace()
            .filter_map(|w| w.replace(',', "").parse().ok())
            .collect();
        assert_eq!(numbers.len(), 2, "cannot parse {line:?}");
        summary[slot] = (numbers[1], numbers[0]);
    }
    summary
}
