//! Runs a command that prints one JSON object (leaksift or a reference tool's script).

use std::process::Command;

use serde_json::Value;

/// Runs `command` (leaksift or a reference script), which must succeed and print one JSON
/// object on stdout; a failure shows its stderr.
pub fn json_of(command: &mut Command) -> Value {
    let out = command.output().expect("run the command");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}
