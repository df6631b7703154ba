//! `leaksift check` against HTTP servers on garbage-collected runtimes
//! (tests/programs/gc_servers: `server.js` on Node.js, `GcServer.java` on the JVM), each in a
//! leaking mode (every request's ~32 KiB session record kept in a map) and a non-leaking one (the
//! same record made garbage). Measured with the default PSS signal, both runtimes' non-leaking
//! servers fail the gate (lazy heap growth, JIT warm-up) and a pre-touched JVM heap hides the
//! leak, so `check` warns when the server tree runs `java` or `node` without a GC hook; the heap
//! used after a full GC (`--jvm-heap` for the JVM, `--sample-cmd` and a `/heap` endpoint for
//! Node) gives the right verdict for both modes. `watch` warns
//! when a Node.js process it calls a leak is a GC'd runtime, and not for other programs. Every
//! test skips (and says why) when its runtime is not installed.

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

/// What a test expects of the gate: exit code, `result` and `verdict`.
type Gate = (i32, &'static str, &'static str);
const FAILS_ON_A_LEAK: Gate = (1, "fail", "leak");
const PASSES_AS_STABLE: Gate = (0, "pass", "stable");

/// Asserts the gate's outcome for a server on `runtime` seen through the heap after a GC
/// (`signal`), without warnings; the slope interval's lower bound clears the budget exactly when
/// the gate fails.
fn assert_gate(run: &Checked, runtime: &str, signal: &str, (code, result, verdict): Gate) {
    let why = run.describe();
    assert_eq!(run.str("runtime"), runtime, "{why}");
    assert_eq!(run.code, code, "{why}");
    assert_eq!(run.str("result"), result, "{why}");
    assert_eq!(run.str("verdict"), verdict, "{why}");
    assert_eq!(run.str("signal"), signal, "{why}");
    assert_eq!(run.ci_low() > BUDGET, code == 1, "{why}");
    assert_eq!(run.json["warnings"], serde_json::json!([]), "{why}");
}

/// Asserts that a run measured by PSS names the runtime and warns with the flag to use.
fn assert_runtime_warning(run: &Checked, runtime: &str, flag: &str) {
    let why = run.describe();
    assert_eq!(run.str("runtime"), runtime, "{why}");
    assert_eq!(run.str("signal"), "tree_pss", "{why}");
    let warnings = run.json["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().contains(flag)),
        "{why}"
    );
    assert!(
        run.stderr.contains("leaksift: warning: the server runs on"),
        "{why}"
    );
}

/// `check` of tests/programs/gc_servers/server.js run by `node NODE_FLAGS…`; `None` (and why,
/// on stderr) without Node.js.
fn check_node(
    test: &str,
    node_flags: &[&str],
    mode: &str,
    flags: &[&str],
    sample_cmd: Option<&str>,
) -> Option<Checked> {
    if !installed("node", "--version", test) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = programs().join("server.js");
    let mut server = vec!["node"];
    server.extend(node_flags);
    server.push(script.to_str().unwrap());
    Some(check(dir.path(), &server, mode, flags, sample_cmd))
}

/// `check` of tests/programs/gc_servers/GcServer.java, compiled into a temporary directory and
/// run by `java JVM_FLAGS…`; `None` (and why, on stderr) without a JDK.
fn check_jvm(test: &str, jvm_flags: &[&str], mode: &str, flags: &[&str]) -> Option<Checked> {
    if !installed("javac", "-version", test) || !installed("jcmd", "-h", test) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let classes = dir.path().join("classes");
    let status = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(programs().join("GcServer.java"))
        .status()
        .unwrap();
    assert!(status.success(), "javac failed");
    let mut server = vec!["java"];
    server.extend(jvm_flags);
    server.extend(["-cp", classes.to_str().unwrap(), "GcServer"]);
    Some(check(dir.path(), &server, mode, flags, None))
}

/// Node's heap after a full GC: `GET /heap` runs `global.gc()` and answers heap used + external.
const NODE_HEAP: &str = "GET PORT /heap";

/// Enough warm-up for V8's JIT at four requests per iteration, and ten measured iterations.
const NODE_RUN: [&str; 4] = ["--warmup", "10", "--iterations", "10"];

/// The JVM heap used after a full GC, read by leaksift through jcmd.
const JVM_RUN: [&str; 5] = ["--warmup", "3", "--iterations", "8", "--jvm-heap"];

#[test]
fn node_session_leak_fails_on_the_heap_after_gc() {
    let test = "the Node.js leak check";
    if let Some(run) = check_node(test, &["--expose-gc"], "keep", &NODE_RUN, Some(NODE_HEAP)) {
        assert_gate(&run, "node", "sample_cmd", FAILS_ON_A_LEAK);
    }
}

#[test]
fn node_garbage_passes_on_the_heap_after_gc() {
    let test = "the Node.js garbage check";
    if let Some(run) = check_node(test, &["--expose-gc"], "free", &NODE_RUN, Some(NODE_HEAP)) {
        assert_gate(&run, "node", "sample_cmd", PASSES_AS_STABLE);
    }
}

#[test]
fn node_measured_by_pss_gets_a_warning() {
    let test = "the Node.js warning check";
    if let Some(run) = check_node(test, &[], "free", &["--iterations", "5"], None) {
        assert_runtime_warning(&run, "node", "--sample-cmd");
    }
}

#[test]
fn jvm_leak_hidden_from_pss_by_a_pretouched_heap_fails_on_the_heap_after_gc() {
    // A production-style heap: fixed size and pre-touched, so PSS cannot see it fill.
    let jvm = ["-Xms64m", "-Xmx64m", "-XX:+AlwaysPreTouch"];
    let test = "the JVM leak check";
    if let Some(run) = check_jvm(test, &jvm, "keep", &JVM_RUN) {
        assert_gate(&run, "jvm", "jvm_heap", FAILS_ON_A_LEAK);
    }
}

#[test]
fn jvm_garbage_passes_on_the_heap_after_gc() {
    let test = "the JVM garbage check";
    if let Some(run) = check_jvm(test, &["-Xmx256m"], "free", &JVM_RUN) {
        assert_gate(&run, "jvm", "jvm_heap", PASSES_AS_STABLE);
    }
}

#[test]
fn jvm_measured_by_pss_gets_a_warning() {
    let test = "the JVM warning check";
    if let Some(run) = check_jvm(test, &[], "free", &["--iterations", "5"]) {
        assert_runtime_warning(&run, "jvm", "--jvm-heap");
    }
}

/// `leaksift check -q --ready-delay 0s --scenario true FLAGS… -- sleep 30` must end with one
/// `leaksift: error:` line (exit 2) containing every one of `expected`.
fn assert_one_error_line(flags: &[&str], expected: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["check", "-q", "--ready-delay", "0s", "--scenario", "true"])
        .args(flags)
        .args(["--", "sleep", "30"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("leaksift: error:"), "{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "{text:?} missing: {stderr}");
    }
}

#[test]
fn a_sample_command_without_a_byte_count_is_one_error_line() {
    // --before-sample sees the server's PID (else it fails first, with another message).
    let flags = [
        "--before-sample",
        "test -n \"$LEAKSIFT_SERVER_PID\"",
        "--sample-cmd",
        "echo heap: unknown",
    ];
    let expected = [
        "--sample-cmd `echo heap: unknown` failed in the sample after the warm-up",
        "\"heap: unknown\"",
    ];
    assert_one_error_line(&flags, &expected);
}

#[test]
fn jvm_heap_without_a_jvm_is_one_error_line() {
    assert_one_error_line(
        &["--jvm-heap"],
        &["no java process in the process tree of `sleep 30`"],
    );
}

/// `leaksift watch --json --duration 3s --interval 100ms -- ARGV…`: (verdict, stderr).
fn watch_growth(argv: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args([
            "watch",
            "-q",
            "--json",
            "--duration",
            "3s",
            "--interval",
            "100ms",
        ])
        .arg("--")
        .args(argv)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}); stderr: {stderr}"));
    (json["verdict"].as_str().unwrap().to_string(), stderr)
}

const WATCH_WARNING: &str = "leaksift: warning: the watched process runs on Node.js";

#[test]
fn watch_warns_when_a_node_process_grows_and_not_for_other_programs() {
    if !installed("node", "--version", "the watch warning check") {
        return;
    }
    // 256 KiB written per 20 ms: a leak whatever the collector does.
    let grow = "const kept = []; setInterval(() => kept.push(Buffer.alloc(1 << 18, 1)), 20)";
    let (verdict, stderr) = watch_growth(&["node", "-e", grow]);
    assert_eq!(verdict, "leak", "{stderr}");
    assert!(stderr.contains(WATCH_WARNING), "{stderr}");
    // The same growth in Python: a leak verdict, and no runtime warning.
    let grow = "import time\nkept = []\nwhile True:\n    kept.append(b'x' * (1 << 18))\n    time.sleep(0.02)";
    let (verdict, stderr) = watch_growth(&["python3", "-c", grow]);
    assert_eq!(verdict, "leak", "{stderr}");
    assert!(!stderr.contains("leaksift: warning"), "{stderr}");
}
