//! Runs a command that prints one JSON object (leaksift or a reference tool's script).

use std::process::Command;

use serde_json::Value;

/// Runs `command`, which must succeed (a failure shows its stderr), and returns its stdout.
pub fn stdout_of(command: &mut Command) -> Vec<u8> {
    let out = command.output().expect("run the command");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `command` (leaksift or a reference script), which must succeed and print one JSON
/// object on stdout.
pub fn json_of(command: &mut Command) -> Value {
    serde_json::from_slice(&stdout_of(command)).expect("one JSON object")
}
