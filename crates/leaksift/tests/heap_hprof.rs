//! `leaksift heap`, `paths` and `diff` on Java HPROF dumps: the committed dumps of the programs in
//! tests/programs/java (regenerate with tests/programs/java/regenerate.sh), a dump made live when
//! a JDK is installed, and broken dumps.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::Command as Cli;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/hprof")
        .join(name)
}

fn leaksift() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_leaksift"))
}

fn json(args: &[&str], file: &Path) -> Value {
    let out = leaksift()
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

/// The object id at the end of a description such as `java.lang.Object[] @4253553920`.
fn id_of(description: &str) -> String {
    description
        .rsplit('@')
        .next()
        .expect("an @id")
        .trim()
        .to_string()
}

fn class_count(heap: &Value, class: &str) -> u64 {
    heap["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .find(|c| c["name"] == class)
        .map_or(0, |c| c["count"].as_u64().expect("count"))
}

/// `(edge kind, edge name, node)` of each step of the first path to `id`.
fn path_to(file: &Path, id: &str) -> Vec<(String, String, String)> {
    let paths = json(&["paths", "--id", id], file);
    paths["paths"][0]
        .as_array()
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

/// Checks the top suspect of a heap report and returns its accumulation point's path.
fn top_suspect_path(file: &Path, suspect: &str) -> Vec<(String, String, String)> {
    let heap = json(&["heap"], file);
    assert_eq!(heap["schema"], "leaksift.heap.v1");
    assert_eq!(heap["format"], "hprof");
    let top = &heap["suspects"][0];
    let description = top["description"].as_str().expect("description");
    assert!(description.contains(suspect), "top suspect: {description}");
    let share = top["retained_bytes"].as_f64().unwrap() / heap["total_bytes"].as_f64().unwrap();
    assert!(share > 0.5, "the leak retains {share:.2} of the heap");
    let point = top["accumulation_point"]
        .as_str()
        .expect("accumulation point");
    assert!(point.starts_with("java.lang.Object[] @"), "{point}");
    path_to(file, &id_of(point))
}

#[test]
fn static_collection_leak_is_the_top_suspect_with_its_path() {
    let file = fixture("static_leak.hprof.gz");
    let path = top_suspect_path(&file, "\"StaticLeak\"");
    let steps: Vec<(&str, &str)> = path
        .iter()
        .map(|(kind, name, _)| (kind.as_str(), name.as_str()))
        .collect();
    assert!(path[0].2.starts_with("<GC roots>"), "{path:?}");
    assert!(path[1].0.starts_with("GC root ("), "{path:?}");
    // ... → class StaticLeak → static SESSIONS → ArrayList → elementData (the Object[]).
    let tail = &steps[steps.len() - 2..];
    assert_eq!(
        tail,
        [("static field", "SESSIONS"), ("field", "elementData")],
        "{path:?}"
    );
    assert!(
        path[path.len() - 3].2.contains("\"StaticLeak\""),
        "{path:?}"
    );
}

#[test]
fn listener_registry_leak_is_the_top_suspect_with_its_path() {
    let file = fixture("listener_leak.hprof.gz");
    let path = top_suspect_path(&file, "java.lang.Thread");
    let steps: Vec<(&str, &str, &str)> = path
        .iter()
        .map(|(kind, name, node)| (kind.as_str(), name.as_str(), node.as_str()))
        .collect();
    // <GC roots> → thread main → (Java local of ListenerLeak.main) EventBus → listeners → Object[].
    assert_eq!(steps.len(), 5, "{path:?}");
    assert_eq!(steps[1].0, "GC root (Thread)");
    assert!(steps[1].2.starts_with("java.lang.Thread"));
    assert_eq!(steps[2].0, "GC root (Java Local)");
    assert!(steps[2].2.starts_with("ListenerLeak$EventBus"));
    assert_eq!((steps[3].0, steps[3].1), ("field", "listeners"));
    assert_eq!((steps[4].0, steps[4].1), ("field", "elementData"));
}

#[test]
fn heap_report_counts_instances_and_lists_thread_frames() {
    let file = fixture("listener_leak.hprof.gz");
    let heap = json(&["heap"], &file);
    assert_eq!(class_count(&heap, "ListenerLeak$Widget"), 1500);
    assert_eq!(
        class_count(&heap, "ListenerLeak$Widget$ClickListener"),
        1500
    );
    assert_eq!(class_count(&heap, "ListenerLeak$EventBus"), 1);
    let threads = heap["extra"]["threads"]
        .as_array()
        .expect("threads section");
    let main = threads
        .iter()
        .find(|t| t["name"] == "main")
        .expect("main thread");
    let frame = main["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["method"] == "ListenerLeak.main")
        .expect("main frame");
    assert!(!frame["locals"].as_array().unwrap().is_empty());
    let dump = &heap["extra"]["dump"];
    assert_eq!(dump["version"], "1.0.2");
    assert_eq!(dump["id_size"], 8);
    assert_eq!(dump["compressed_oops"], true);
    assert_eq!(dump["reference_bytes"], 4);
    assert_eq!(dump["objects"], heap["node_count"].as_u64().unwrap() - 1);
    let shape = json(&["heap"], &fixture("shape.hprof.gz"));
    assert_eq!(class_count(&shape, "Shape$Counted"), 1234);
    assert_eq!(class_count(&shape, "Shape$Node"), 6);
    // The text report has the same sections.
    let text = leaksift()
        .args(["heap", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("Leak suspects"), "{text}");
    assert!(
        text.contains("ListenerLeak.main (ListenerLeak.java:"),
        "{text}"
    );
}

#[test]
fn diff_reports_growth_per_class() {
    let diff = leaksift()
        .args(["diff", "--json", "--quiet"])
        .arg(fixture("shape.hprof.gz"))
        .arg(fixture("static_leak.hprof.gz"))
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    let diff: Value = serde_json::from_slice(&diff.stdout).unwrap();
    let classes = diff["classes"].as_array().expect("classes");
    let row = |name: &str| classes.iter().find(|c| c["name"] == name).cloned();
    let sessions = row("StaticLeak$Session").expect("sessions grew");
    assert_eq!(sessions["delta_count"], 3000);
    assert_eq!(sessions["delta_bytes"], 3000 * 24);
    let counted = row("Shape$Counted").expect("counted went away");
    assert_eq!(counted["delta_count"], -1234);
    // Lambda classes keep their name across JVM runs (the hidden-class address is dropped).
    assert!(
        classes
            .iter()
            .all(|c| !c["name"].as_str().unwrap().contains("+0x")),
        "{classes:?}"
    );
}

#[test]
fn truncated_and_malformed_dumps_exit_2_with_the_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let whole = leaksift_hprof::DumpFile::open(&fixture("shape.hprof.gz")).unwrap();
    let bytes = whole.bytes();
    let truncated = dir.path().join("truncated.hprof");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let out = leaksift()
        .args(["heap", "--quiet"])
        .arg(&truncated)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("leaksift: error: "), "{stderr}");
    assert!(stderr.contains("truncated.hprof"), "{stderr}");
    assert!(stderr.contains("at byte "), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");

    // A cut gzip stream: the error names the decompressed offset where the stream broke.
    let gz = std::fs::read(fixture("static_leak.hprof.gz")).unwrap();
    let cut_gz = dir.path().join("cut.hprof.gz");
    std::fs::write(&cut_gz, &gz[..gz.len() / 2]).unwrap();
    let out = leaksift()
        .args(["heap", "--quiet"])
        .arg(&cut_gz)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cut.hprof.gz"), "{stderr}");
    assert!(stderr.contains("gzip"), "{stderr}");

    // The 31-byte header, then a heap dump segment holding an unknown sub-record tag at byte 40.
    let mut garbage_bytes = bytes[..31].to_vec();
    garbage_bytes.extend_from_slice(&[0x1C, 0, 0, 0, 0, 0, 0, 0, 2, 0x42, 0x42]);
    let garbage = dir.path().join("garbage.hprof");
    std::fs::write(&garbage, &garbage_bytes).unwrap();
    let out = leaksift()
        .args(["paths", "--quiet", "--id", "1"])
        .arg(&garbage)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("at byte 40: unknown heap dump sub-record tag 0x42"),
        "{stderr}"
    );
}

/// Compiles and runs the static-leak program when a JDK is installed (CI installs
/// openjdk-17-jdk-headless), and analyses the fresh, uncompressed, memory-mapped dump.
#[test]
fn live_dump_from_a_fresh_jvm_when_a_jdk_is_installed() {
    if Command::new("javac").arg("-version").output().is_err() {
        eprintln!("javac not found: skipping the live dump test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let programs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/java");
    let classes = dir.path().join("classes");
    let status = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(programs.join("Dump.java"))
        .arg(programs.join("StaticLeak.java"))
        .status()
        .unwrap();
    assert!(status.success());
    let dump = dir.path().join("live.hprof");
    let status = Command::new("java")
        .args(["-Xmx64m", "-XX:+UseSerialGC", "-cp"])
        .arg(&classes)
        .arg("StaticLeak")
        .arg(&dump)
        .arg("777")
        .status()
        .unwrap();
    assert!(status.success());
    let heap = json(&["heap"], &dump);
    assert_eq!(class_count(&heap, "StaticLeak$Session"), 777);
    let top = heap["suspects"][0]["description"].as_str().unwrap();
    assert!(top.contains("\"StaticLeak\""), "{top}");
}
