//! `leaksift check` against HTTP servers on garbage-collected runtimes
//! (tests/programs/gc_servers: `server.js` on Node.js, `GcServer.java` on the JVM), each in a
//! leaking mode (every request's ~32 KiB session record kept in a map) and a non-leaking one (the
//! same record made garbage). Measured with the default PSS signal, both runtimes' non-leaking
//! servers fail the gate (lazy heap growth, JIT warm-up) and a pre-touched JVM heap hides the
//! leak, so `check` warns when the server tree runs `java` or `node` without a GC hook; the heap
//! used after a full GC (`--sample-cmd`) gives the right verdict for both modes. Every test skips
//! (and says why) when its runtime is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The default `--budget`, bytes per iteration.
const BUDGET: f64 = 16.0 * 1024.0;

fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/gc_servers")
}

/// Whether `tool --version`-style probing finds the tool; prints why the test is skipped if not.
fn installed(tool: &str, arg: &str, test: &str) -> bool {
    let found = Command::new(tool).arg(arg).output().is_ok();
    if !found {
        eprintln!("{tool} not found: skipping {test}");
    }
    found
}

/// One `check` run and its results.
struct Checked {
    code: i32,
    json: serde_json::Value,
    stderr: String,
}

impl Checked {
    fn str(&self, key: &str) -> &str {
        self.json[key].as_str().unwrap_or_default()
    }
    fn ci_low(&self) -> f64 {
        self.json["slope_ci"][0].as_f64().unwrap()
    }
    fn describe(&self) -> String {
        format!(
            "exit {}; {}; stderr: {}",
            self.code,
            serde_json::to_string(&self.json).unwrap(),
            self.stderr
        )
    }
}

/// `leaksift check --json FLAGS -- SERVER… --mode MODE --port-file DIR/port`, the scenario being
/// four GETs of `/`; `PORT` in `sample_cmd` is replaced by the port file's path. Readiness is the
/// port file (written once the server listens), never a delay.
fn check(
    dir: &Path,
    server: &[&str],
    mode: &str,
    flags: &[&str],
    sample_cmd: Option<&str>,
) -> Checked {
    let port = dir.join("port");
    let get = format!("python3 {}", programs().join("get.py").display());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leaksift"));
    cmd.args(["check", "-q", "--json"])
        .args(flags)
        .arg("--ready-cmd")
        .arg(format!("test -s {}", port.display()))
        .arg("--scenario")
        .arg(format!("{get} {} / 4", port.display()));
    if let Some(sample) = sample_cmd {
        let sample = sample
            .replace("GET", &get)
            .replace("PORT", &port.display().to_string());
        cmd.arg("--sample-cmd").arg(sample);
    }
    let out = cmd
        .arg("--")
        .args(server)
        .args(["--mode", mode, "--port-file"])
        .arg(&port)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {stdout}\nstderr: {stderr}"));
    Checked {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
    }
}

/// Asserts the gate failed on a leak seen through `--sample-cmd`, without runtime warnings.
fn assert_leak_fails(run: &Checked) {
    let why = run.describe();
    assert_eq!(run.code, 1, "{why}");
    assert_eq!(run.str("result"), "fail", "{why}");
    assert_eq!(run.str("verdict"), "leak", "{why}");
    assert_eq!(run.str("signal"), "sample_cmd", "{why}");
    assert!(run.ci_low() > BUDGET, "{why}");
    assert_eq!(run.json["warnings"], serde_json::json!([]), "{why}");
}

/// Asserts the gate passed a server that only makes garbage, seen through `--sample-cmd`.
fn assert_garbage_passes(run: &Checked) {
    let why = run.describe();
    assert_eq!(run.code, 0, "{why}");
    assert_eq!(run.str("result"), "pass", "{why}");
    assert_eq!(run.str("verdict"), "stable", "{why}");
    assert_eq!(run.str("signal"), "sample_cmd", "{why}");
    assert!(run.ci_low() <= BUDGET, "{why}");
    assert_eq!(run.json["warnings"], serde_json::json!([]), "{why}");
}

/// Asserts that a run measured by PSS names the runtime and warns with the flag to use.
fn assert_runtime_warning(run: &Checked, runtime: &str) {
    let why = run.describe();
    assert_eq!(run.str("runtime"), runtime, "{why}");
    assert_eq!(run.str("signal"), "tree_pss", "{why}");
    let warnings = run.json["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("--sample-cmd")),
        "{why}"
    );
    assert!(
        run.stderr.contains("leaksift: warning: the server runs on"),
        "{why}"
    );
}

fn node_server(script: &Path) -> Vec<String> {
    vec![
        "node".into(),
        "--expose-gc".into(),
        script.display().to_string(),
    ]
}

/// Node's heap after a full GC: `GET /heap` runs `global.gc()` and answers heap used + external.
const NODE_HEAP: &str = "GET PORT /heap";

#[test]
fn node_session_leak_fails_on_the_heap_after_gc() {
    if !installed("node", "--version", "the Node.js leak check") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = node_server(&programs().join("server.js"));
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let flags = ["--warmup", "10", "--iterations", "10"];
    let run = check(dir.path(), &server, "keep", &flags, Some(NODE_HEAP));
    assert_leak_fails(&run);
    assert_eq!(run.str("runtime"), "node", "{}", run.describe());
}

#[test]
fn node_garbage_passes_on_the_heap_after_gc() {
    if !installed("node", "--version", "the Node.js garbage check") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = node_server(&programs().join("server.js"));
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let flags = ["--warmup", "10", "--iterations", "10"];
    assert_garbage_passes(&check(dir.path(), &server, "free", &flags, Some(NODE_HEAP)));
}

#[test]
fn node_measured_by_pss_gets_a_warning() {
    if !installed("node", "--version", "the Node.js warning check") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = programs().join("server.js");
    let server = ["node", script.to_str().unwrap()];
    let run = check(dir.path(), &server, "free", &["--iterations", "5"], None);
    assert_runtime_warning(&run, "node");
}

/// Compiles GcServer.java into `dir/classes`; `None` (and why, on stderr) without a JDK.
fn compile_java(dir: &Path, test: &str) -> Option<PathBuf> {
    if !installed("javac", "-version", test) || !installed("jcmd", "-h", test) {
        return None;
    }
    let classes = dir.join("classes");
    let status = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(programs().join("GcServer.java"))
        .status()
        .unwrap();
    assert!(status.success(), "javac failed");
    Some(classes)
}

/// The JVM heap used after a full GC, through jcmd.
fn jvm_heap() -> String {
    format!("sh {}", programs().join("jvm_heap.sh").display())
}

#[test]
fn jvm_leak_hidden_from_pss_by_a_pretouched_heap_fails_on_the_heap_after_gc() {
    let dir = tempfile::tempdir().unwrap();
    let Some(classes) = compile_java(dir.path(), "the JVM leak check") else {
        return;
    };
    // A production-style heap: fixed size and pre-touched, so PSS cannot see it fill.
    let server = [
        "java",
        "-Xms64m",
        "-Xmx64m",
        "-XX:+AlwaysPreTouch",
        "-cp",
        classes.to_str().unwrap(),
        "GcServer",
    ];
    let flags = ["--warmup", "3", "--iterations", "8"];
    let run = check(dir.path(), &server, "keep", &flags, Some(&jvm_heap()));
    assert_leak_fails(&run);
    assert_eq!(run.str("runtime"), "jvm", "{}", run.describe());
}

#[test]
fn jvm_garbage_passes_on_the_heap_after_gc() {
    let dir = tempfile::tempdir().unwrap();
    let Some(classes) = compile_java(dir.path(), "the JVM garbage check") else {
        return;
    };
    let server = [
        "java",
        "-Xmx256m",
        "-cp",
        classes.to_str().unwrap(),
        "GcServer",
    ];
    let flags = ["--warmup", "3", "--iterations", "8"];
    assert_garbage_passes(&check(
        dir.path(),
        &server,
        "free",
        &flags,
        Some(&jvm_heap()),
    ));
}

#[test]
fn jvm_measured_by_pss_gets_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let Some(classes) = compile_java(dir.path(), "the JVM warning check") else {
        return;
    };
    let server = ["java", "-cp", classes.to_str().unwrap(), "GcServer"];
    let run = check(dir.path(), &server, "free", &["--iterations", "5"], None);
    assert_runtime_warning(&run, "jvm");
}

#[test]
fn a_sample_command_without_a_byte_count_is_one_error_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["check", "-q", "--ready-delay", "0s", "--scenario", "true"])
        .args(["--before-sample", "test -n \"$LEAKSIFT_SERVER_PID\""])
        .args(["--sample-cmd", "echo heap: unknown", "--", "sleep", "30"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("leaksift: error:")
            && stderr.contains("--sample-cmd `echo heap: unknown` failed in iteration 3")
            && stderr.contains("\"heap: unknown\""),
        "{stderr}"
    );
}
