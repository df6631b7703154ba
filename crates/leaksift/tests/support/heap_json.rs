//! Runs a heap command (`heap`, `paths`, `diff`) with `--json --quiet` and reads its output.

use std::path::Path;

use serde_json::Value;

/// `leaksift ARGS --json --quiet FILE`, which must succeed, as one JSON object.
pub fn json(args: &[&str], file: &Path) -> Value {
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(args)
        .arg("--json")
        .arg("--quiet")
        .arg(file)
        .output()
        .expect("run leaksift");
    assert!(
        out.status.success(),
        "leaksift {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
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
