//! `leaksift heap` and `paths` on Java leak patterns checked against Eclipse MAT's semantics with
//! hand-computed answers: the dumps are made at test time from tests/programs/java/MatLeaks.java
//! (skipped, with a note on stderr, when no JDK is installed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// Payloads each scenario keeps.
const PAYLOADS: u64 = 500;
/// Retained bytes of one `MatLeaks$Payload` under compressed oops: 16 bytes and its
/// `byte[1000]` (16-byte array header + 1000).
const PAYLOAD_BYTES: u64 = 16 + 1016;
/// Retained bytes of the `MatLeaks$Payload[]` holding all payloads (16-byte header, 4-byte
/// references), without the `java.lang.Class` of `MatLeaks$Payload[]`: nothing but its one
/// instance refers to it, so the array retains it too (as in MAT), a size HotSpot decides.
const ARRAY_BYTES: u64 = 16 + 4 * PAYLOADS + PAYLOADS * PAYLOAD_BYTES;
/// An upper bound of that class object's shallow size (112 bytes on JDK 17).
const CLASS_MIRROR_MAX: u64 = 256;

#[path = "support/heap_json.rs"]
mod heap_json;
#[path = "support/json_command.rs"]
mod json_command;
use heap_json::{heap_text, json, steps};
use json_command::json_of;

/// MatLeaks.java and Dump.java compiled once, or `None` without a JDK.
fn classes() -> Option<&'static Path> {
    static CLASSES: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    CLASSES
        .get_or_init(|| {
            if Command::new("javac").arg("-version").output().is_err() {
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let programs =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/java");
            let status = Command::new("javac")
                .arg("-d")
                .arg(dir.path())
                .arg(programs.join("Dump.java"))
                .arg(programs.join("MatLeaks.java"))
                .status()
                .unwrap();
            assert!(status.success(), "javac MatLeaks.java");
            // Out of the class path: only the scenario's own URLClassLoader finds it.
            let status = Command::new("javac")
                .arg("-d")
                .arg(dir.path().join("plugin"))
                .arg(programs.join("plugin/Plugin.java"))
                .status()
                .unwrap();
            assert!(status.success(), "javac Plugin.java");
            Some(dir)
        })
        .as_ref()
        .map(|dir| dir.path())
}

/// A live dump of one MatLeaks scenario (compressed oops, serial GC), or `None` without a JDK.
fn dump(scenario: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let Some(classes) = classes() else {
        eprintln!("javac not found: skipping the MatLeaks {scenario} test");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{scenario}.hprof"));
    let status = Command::new("java")
        .args(["-Xmx64m", "-XX:+UseSerialGC", "-XX:+UseCompressedOops"])
        .arg(format!(
            "-Dplugin.classes={}",
            classes.join("plugin").display()
        ))
        .arg("-cp")
        .arg(classes)
        .arg("MatLeaks")
        .arg(&file)
        .arg(scenario)
        .arg(PAYLOADS.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "java MatLeaks {scenario}");
    Some((dir, file))
}

/// The object id at the end of a description such as `MatLeaks$Payload[] @0xfd5d6168`.
fn id_of(description: &str) -> &str {
    description.rsplit('@').next().expect("an @id").trim()
}

/// The first path `paths --id` gives for the object a description names.
fn first_path(file: &Path, description: &str) -> Vec<(String, String, String)> {
    let paths = json(&["paths", "--id", id_of(description)], file);
    assert_eq!(paths["schema"], "leaksift.paths.v1");
    steps(&paths["paths"][0])
}

/// A thread-held leak (a local of a sleeping thread, a ThreadLocal of a pool thread): the top
/// suspect is the thread, reached from its `Thread` GC root as MAT shows it — not through the
/// `Java Local` root of its own `Thread.run` frame — and accumulated in the payload array.
fn check_thread_suspect(file: &Path, thread: &str) -> Value {
    let heap = json(&["heap"], file);
    let top = &heap["suspects"][0];
    let description = top["description"].as_str().unwrap();
    // Named after the thread, as MAT labels thread objects.
    assert!(
        description.starts_with(&format!("one object: java.lang.Thread {thread:?} @0x")),
        "{description}"
    );
    let path = steps(&top["path"]);
    assert_eq!(path.len(), 2, "{path:?}");
    assert_eq!(path[1].0, "GC root (Thread)", "{path:?}");
    let point = top["accumulation_point"].as_str().unwrap();
    assert!(point.starts_with("MatLeaks$Payload[] @"), "{point}");
    let class = |name: &str| {
        heap["classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("class {name}"))
            .clone()
    };
    let payloads = class("MatLeaks$Payload");
    assert_eq!(payloads["count"].as_u64(), Some(PAYLOADS));
    assert_eq!(payloads["shallow_bytes"].as_u64(), Some(16 * PAYLOADS));
    assert_eq!(
        payloads["retained_bytes"].as_u64(),
        Some(PAYLOADS * PAYLOAD_BYTES)
    );
    let array = class("MatLeaks$Payload[]");
    assert_eq!(array["count"], 1);
    assert_eq!(array["shallow_bytes"].as_u64(), Some(16 + 4 * PAYLOADS));
    let retained = array["retained_bytes"].as_u64().unwrap();
    assert!(
        (ARRAY_BYTES..ARRAY_BYTES + CLASS_MIRROR_MAX).contains(&retained),
        "{retained}"
    );
    assert!(top["retained_bytes"].as_u64().unwrap() > retained);
    heap
}

/// The retained bytes of the one `MatLeaks$Payload[]`.
fn array_retained(heap: &Value) -> u64 {
    heap["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "MatLeaks$Payload[]")
        .and_then(|c| c["retained_bytes"].as_u64())
        .expect("the payload array")
}

#[test]
fn a_sleeping_threads_local_is_found_from_its_thread_root_and_frame() {
    let Some((_dir, file)) = dump("frame") else {
        return;
    };
    let heap = check_thread_suspect(&file, "sleeper");
    let point = heap["suspects"][0]["accumulation_point"].as_str().unwrap();
    // paths --id on the accumulation point: the thread's root, then the frame's local.
    let path = first_path(&file, point);
    assert_eq!(path.len(), 3, "{path:?}");
    assert_eq!(path[1].0, "GC root (Thread)", "{path:?}");
    assert!(
        path[1].2.starts_with("java.lang.Thread \"sleeper\" @"),
        "{path:?}"
    );
    assert_eq!(path[2].0, "GC root (Java Local)", "{path:?}");

    // The threads section: the sleeper's frames ranked by what their locals hold. The lambda's
    // frame holds the array; `Thread.run` holds only the thread itself, which retains nothing
    // for that frame (it used to be credited with the whole thread).
    let sleeper = heap["extra"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "sleeper")
        .expect("the sleeper thread");
    let frame = |method: &str| {
        sleeper["frames"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["method"].as_str().unwrap().contains(method))
            .unwrap_or_else(|| panic!("a {method} frame: {sleeper}"))
            .clone()
    };
    let lambda = frame("MatLeaks.lambda$main$");
    // Its locals: the array and the `started` lock object it captured (16 bytes).
    assert_eq!(
        lambda["retained_bytes"].as_u64(),
        Some(array_retained(&heap) + 16)
    );
    let biggest = lambda["biggest"]["description"].as_str().unwrap();
    assert!(biggest.starts_with("MatLeaks$Payload[] @"), "{biggest}");
    let run = frame("java.lang.Thread.run");
    assert_eq!(run["retained_bytes"], 0, "{run}");
    assert!(run["biggest"].is_null(), "{run}");

    let text = heap_text(&file);
    let after = text
        .split("Threads by retained size")
        .nth(1)
        .and_then(|threads| threads.split("java.lang.Thread \"sleeper\"").nth(1))
        .expect("the sleeper row");
    let first_frame = after.lines().nth(1).unwrap();
    assert!(first_frame.contains("at MatLeaks.lambda$main$"), "{text}");
}

#[test]
fn a_thread_local_of_a_pool_thread_is_found_through_thread_locals() {
    let Some((_dir, file)) = dump("threadlocal") else {
        return;
    };
    let heap = check_thread_suspect(&file, "pool-worker");
    let point = heap["suspects"][0]["accumulation_point"].as_str().unwrap();
    let path = first_path(&file, point);
    let names: Vec<&str> = path.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(path[1].0, "GC root (Thread)", "{path:?}");
    // Thread.threadLocals → ThreadLocalMap.table → Entry (a WeakReference to the ThreadLocal) →
    // value: the value is strong, the entry's referent (the key) is not on the path.
    assert_eq!(names[2..4], ["threadLocals", "table"], "{path:?}");
    assert_eq!(names.last(), Some(&"value"), "{path:?}");
    assert!(!names.contains(&"referent"), "{path:?}");
    let thread = heap["extra"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "pool-worker")
        .expect("the pool thread");
    assert!(thread["retained_bytes"].as_u64().unwrap() > array_retained(&heap));
}

#[test]
fn objects_held_only_by_soft_references_are_explained_by_their_reference() {
    let Some((_dir, file)) = dump("soft") else {
        return;
    };
    let heap = json(&["heap"], &file);
    // Even payloads are in a strong list too; the odd half, only softly reachable, are the
    // top-level dominators of their class (MAT's weak-reference exclusion) — a class suspect
    // that must say how it is held and show the SoftReference, as MAT's path with all references.
    let suspect = heap["suspects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["description"]
                .as_str()
                .unwrap()
                .contains("instances of MatLeaks$Payload ")
        })
        .expect("the softly held payloads");
    let description = suspect["description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("{} instances of", PAYLOADS / 2)),
        "{description}"
    );
    assert!(
        description.contains("only through java.lang.ref"),
        "{description}"
    );
    assert_eq!(
        suspect["retained_bytes"].as_u64(),
        Some(PAYLOADS / 2 * PAYLOAD_BYTES)
    );
    // MAT's accumulation point of a group: the end of the common path to its instances, the
    // SOFT list's array here (it used to be a byte[] inside one payload).
    let point = suspect["accumulation_point"].as_str().unwrap();
    assert!(point.starts_with("java.lang.Object[] @"), "{point}");
    let to_point: Vec<String> = first_path(&file, point).into_iter().map(|s| s.1).collect();
    assert_eq!(
        to_point[to_point.len() - 2..],
        ["SOFT", "elementData"],
        "{to_point:?}"
    );
    let path = steps(&suspect["path"]);
    let last = path.last().expect("a path");
    assert_eq!(
        (last.0.as_str(), last.1.as_str()),
        ("weak", "referent"),
        "{path:?}"
    );
    let holder = &path[path.len() - 2].2;
    assert!(
        holder.starts_with("java.lang.ref.SoftReference @"),
        "{path:?}"
    );
    assert!(
        path.iter().any(|s| s.1 == "SOFT"),
        "through the static list: {path:?}"
    );
    assert!(
        path[..path.len() - 1].iter().all(|s| s.0 != "weak"),
        "one reference step, at the end: {path:?}"
    );

    // `paths --id` on the payload the suspect names gives the same path (it used to say
    // "not reachable"); on a strongly held payload, only strong paths.
    let paths = json(&["paths", "--id", id_of(&last.2)], &file);
    assert_eq!(paths["reachable"], true);
    // The text report says how such objects are held.
    let text = heap_text(&file);
    let held = format!(
        "{} objects are held only through java.lang.ref references",
        heap["unreachable_count"]
    );
    assert!(text.contains(&held), "{held}");
    // The group's path goes to its biggest instance, not through its accumulation point: the
    // text says so.
    let after = text
        .split(description)
        .nth(1)
        .expect("the group in the text");
    // Up to the next numbered suspect or section.
    let end = after
        .match_indices('\n')
        .map(|(at, _)| at)
        .find(|&at| {
            after[at + 1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
        })
        .unwrap_or(after.len());
    let group = &after[..end];
    assert!(
        group.contains("\n   path to the biggest instance:\n"),
        "{group}"
    );
    assert_eq!(paths["held_only_by_references"], true);
    assert_eq!(steps(&paths["paths"][0]), path);
    let strong = &heap["dominators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["description"]
                .as_str()
                .unwrap()
                .starts_with("java.lang.Class \"MatLeaks\"")
        })
        .expect("the MatLeaks class")["description"];
    let paths = json(&["paths", "--id", id_of(strong.as_str().unwrap())], &file);
    assert_eq!(paths["held_only_by_references"], false);
    assert!(
        steps(&paths["paths"][0]).iter().all(|s| s.0 != "weak"),
        "{paths}"
    );
}

#[test]
fn diff_of_two_dumps_of_a_growing_list_counts_each_class_growth() {
    let Some((_dir, first)) = dump("grow") else {
        return;
    };
    let second = first.with_file_name("grow-2.hprof");
    let diff = json_of(
        Command::new(env!("CARGO_BIN_EXE_leaksift"))
            .args(["diff", "--json", "--quiet"])
            .arg(&first)
            .arg(&second),
    );
    assert_eq!(diff["schema"], "leaksift.diff.v1");
    assert_eq!(diff["matched_by"], "class totals");
    let class = |name: &str| {
        diff["classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("class {name} in {diff}"))
            .clone()
    };
    // N more payloads, each 16 bytes retaining its 1016-byte array.
    let payloads = class("MatLeaks$Payload");
    assert_eq!(payloads["base"]["count"].as_u64(), Some(PAYLOADS));
    assert_eq!(payloads["compared"]["count"].as_u64(), Some(2 * PAYLOADS));
    assert_eq!(payloads["delta_count"].as_i64(), Some(PAYLOADS as i64));
    assert_eq!(payloads["delta_bytes"].as_i64(), Some(16 * PAYLOADS as i64));
    assert_eq!(
        payloads["delta_retained_bytes"].as_i64(),
        Some((PAYLOADS * PAYLOAD_BYTES) as i64)
    );
    let arrays = class("byte[]");
    assert!(arrays["delta_count"].as_i64().unwrap() >= PAYLOADS as i64);
    assert!(arrays["delta_bytes"].as_i64().unwrap() >= (1016 * PAYLOADS) as i64);
    // The largest retained growth: the list's backing array or the classes holding it.
    let top = diff["classes"][0]["delta_retained_bytes"].as_i64().unwrap();
    assert!(top >= (PAYLOADS * PAYLOAD_BYTES) as i64, "{diff}");
}

#[test]
fn a_class_loader_kept_by_a_threads_context_class_loader_is_found_through_it() {
    let Some((_dir, file)) = dump("classloader") else {
        return;
    };
    let heap = json(&["heap"], &file);
    // The thread dominates its context class loader, which dominates Plugin's class (through
    // ClassLoader.classes), its static cache and the N arrays: MAT's single-object suspect.
    let top = &heap["suspects"][0];
    let description = top["description"].as_str().unwrap();
    assert!(
        description.starts_with("one object: java.lang.Thread \"plugin-thread\" @"),
        "{description}"
    );
    assert_eq!(steps(&top["path"])[1].0, "GC root (Thread)");
    let point = top["accumulation_point"].as_str().unwrap();
    assert!(point.starts_with("java.lang.Object[] @"), "{point}");
    let path = first_path(&file, point);
    let names: Vec<&str> = path.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(path[1].0, "GC root (Thread)", "{path:?}");
    assert_eq!(names[2], "contextClassLoader", "{path:?}");
    assert!(
        path[2].2.starts_with("java.net.URLClassLoader @"),
        "{path:?}"
    );
    assert!(
        path.iter()
            .any(|s| s.2.starts_with("java.lang.Class \"Plugin\" @")),
        "{path:?}"
    );
    assert_eq!(
        names[names.len() - 2..],
        ["CACHE", "elementData"],
        "{path:?}"
    );
    // The cache's array retains the N byte[1000] (1016 bytes each) and itself (an ArrayList's
    // array of 4-byte references, grown by half each time: at most 2 N slots).
    let retained = json(&["paths", "--id", id_of(point)], &file)["object"]["retained_bytes"]
        .as_u64()
        .unwrap();
    assert!(retained > 1016 * PAYLOADS, "{retained}");
    assert!(
        retained <= 1016 * PAYLOADS + 16 + 4 * 2 * PAYLOADS,
        "{retained}"
    );
    let thread = heap["extra"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "plugin-thread")
        .expect("the plugin thread");
    assert!(thread["retained_bytes"].as_u64().unwrap() > retained);
}
