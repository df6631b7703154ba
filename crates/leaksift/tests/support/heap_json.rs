//! Runs a heap command (`heap`, `paths`, `diff`) with `--json --quiet` and reads its output, or
//! `heap`'s text report.

use std::path::Path;
use std::process::Command;

use crate::json_command::{json_of, stdout_of};

use serde_json::Value;

/// `leaksift ARGS --json --quiet FILE`, which must succeed, as one JSON object.
pub fn json(args: &[&str], file: &Path) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leaksift"));
    command.args(args).arg("--json").arg("--quiet").arg(file);
    json_of(&mut command)
}

/// The text report of `leaksift heap --quiet FILE`, which must succeed.
pub fn heap_text(file: &Path) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leaksift"));
    command.args(["heap", "--quiet"]).arg(file);
    String::from_utf8(stdout_of(&mut command)).expect("UTF-8 text")
}

/// `(edge kind, edge name, node)` of each step of a JSON path.
pub fn steps(path: &Value) -> Vec<(String, String, String)> {
    path.as_array()
        .expect("a path")
        .iter()
        .map(|step| {
            (
                step["edge_kind"].as_str().unwrap_or("").to_string(),
                step["edge"].as_str().unwrap_or("").to_string(),
                step["node"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}
