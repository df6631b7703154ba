//! V8 `heap`/`paths`/`diff` checked against what memlab and Chrome DevTools report for real Node
//! leaks (the leak programs under tests/programs/v8_oracle/, run with the installed node; each
//! test is skipped with a note on stderr when node is absent).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[path = "support/json_command.rs"]
mod json_command;
use json_command::json_of;

fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/v8_oracle")
}

fn node_available() -> bool {
    let found = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: node is not installed");
    }
    found
}

/// Runs leaksift, returning the exit code, stdout parsed as JSON (or Null) and stderr.
fn run(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(args)
        .output()
        .expect("run leaksift");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a leak program that writes baseline, target and final snapshots into `dir`.
fn three_snapshots(program: &str, dir: &Path, extra: &[&str]) -> [String; 3] {
    let files = ["baseline", "target", "final"].map(|n| {
        dir.join(format!("{n}.heapsnapshot"))
            .to_str()
            .unwrap()
            .to_owned()
    });
    let status = Command::new("node")
        .arg(programs().join(program))
        .args(&files)
        .args(extra)
        .status()
        .expect("run node");
    assert!(status.success(), "{program} failed");
    files
}

fn three_way(files: &[String; 3]) -> Value {
    let (code, json, stderr) = run(&["diff", "--json", "-q", &files[0], &files[1], &files[2]]);
    assert_eq!(code, 1, "a leak must exit 1: {stderr}");
    json
}

/// The edge names along a leak group's path.
fn path_edges(leak: &Value) -> Vec<&str> {
    leak["path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["edge"].as_str())
        .collect()
}

fn leaks_of_class<'a>(json: &'a Value, class: &str) -> Vec<&'a Value> {
    json["leaks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["class"] == class)
        .collect()
}

/// memlab clusters the 2000 entries of a leaked doubly linked list into one trace; leaksift
/// grouped them by exact path, so every list position was a group of its own (2000 groups of
/// one entry, and a quadratic walk over their paths). Repeated steps now share a signature: one
/// group per way into the list (head → next…, tail → prev…, and the tail entry itself).
#[test]
fn doubly_linked_list_leak_is_one_group_per_entry_point() {
    if !node_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = three_snapshots("linked-queue.js", dir.path(), &["2000"]);
    let json = three_way(&files);
    let jobs = leaks_of_class(&json, "PendingJob");
    assert!(
        (1..=3).contains(&jobs.len()),
        "{} PendingJob groups: {:?}",
        jobs.len(),
        jobs.iter()
            .take(5)
            .map(|l| l["signature"].as_str().unwrap())
            .collect::<Vec<_>>()
    );
    let top_level: u64 = jobs
        .iter()
        .map(|l| l["top_level_count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        top_level, 2000,
        "every new job is a top-level leaked object"
    );
    // Each job is the PendingJob, its payload array and the array's elements.
    let count: u64 = jobs.iter().map(|l| l["count"].as_u64().unwrap()).sum();
    assert!(count >= 3 * 2000, "{count}");
    for group in &jobs {
        let edges = path_edges(group);
        assert!(edges.contains(&"jobQueue"), "{edges:?}");
        let signature = group["signature"].as_str().unwrap();
        assert!(
            ["next", "prev", "tail"]
                .iter()
                .any(|edge| signature.ends_with(&format!("-property:{edge}-> PendingJob"))),
            "{signature}"
        );
    }
}

/// DevTools' Retainers view and memlab's traces never show a path that reaches the object and
/// then continues to one of its retainers. In a doubly linked list the next entry's shortest
/// path ran through the target itself, and `paths` printed root → … → target → next → target.
#[test]
fn retaining_paths_do_not_pass_through_the_target() {
    if !node_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = three_snapshots("linked-queue.js", dir.path(), &["300"]);
    let json = three_way(&files);
    let from_head = leaks_of_class(&json, "PendingJob")
        .into_iter()
        .find(|l| {
            l["signature"]
                .as_str()
                .unwrap()
                .ends_with("-property:next-> PendingJob")
        })
        .expect("a group entered from the head");
    let jobs_on_path: Vec<u64> = from_head["path"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["node"].as_str().unwrap().starts_with("PendingJob "))
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    assert!(jobs_on_path.len() >= 2, "{from_head}");
    for id in jobs_on_path.iter().skip(1) {
        let id_text = id.to_string();
        let (code, paths, stderr) = run(&["paths", "--json", "-q", &files[2], "--id", &id_text]);
        assert_eq!(code, 0, "{stderr}");
        let paths = paths["paths"].as_array().unwrap();
        // Held by its predecessor (`next`) and its successor (`prev`).
        assert_eq!(paths.len(), 2, "{paths:?}");
        for path in paths {
            let steps = path.as_array().unwrap();
            let through_target = steps[..steps.len() - 1]
                .iter()
                .any(|s| s["id"].as_u64() == Some(*id));
            assert!(!through_target, "path through @{id} itself: {path}");
            assert_eq!(steps.last().unwrap()["id"].as_u64(), Some(*id));
        }
    }
}

/// A growing Map leaks through its backing table: the top-level leaked object is the Map's
/// `(array)`, so the group was labelled "(array) × 6000 objects" while memlab's trace ends at
/// the Session entries. The group now lists what it holds (`contents`, and in the text label),
/// and the text header counts every group, not only the ones `--top` shows.
#[test]
fn map_leak_names_the_entries_it_holds_and_the_header_counts_every_group() {
    if !node_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = three_snapshots("../node/leak-map.js", dir.path(), &[]);
    let json = three_way(&files);
    let first = &json["leaks"][0];
    let contents = first["contents"].as_array().expect("contents");
    // Each Session: the Session, its user object, its buffer and roles arrays.
    assert!(
        contents[..3].contains(&serde_json::json!({"class": "Session", "count": 2000})),
        "{first}"
    );
    let groups = json["leaks"].as_array().unwrap().len();
    assert!(groups > 1, "{json}");

    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["diff", "-q", "--top", "1", &files[0], &files[1], &files[2]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with(&format!("{groups} leak groups,"))
            && header.ends_with("(the first 1 shown)"),
        "{header}"
    );
    assert!(text.contains("2000 Session"), "{text}");
}

/// The two-way `diff` is DevTools' Comparison view: every class's new and deleted counts and
/// bytes equal what DevTools' own code (npm heap-snapshot-toolkit, called in the Comparison
/// view's order) computes for the same pair. `late-shape.js` leaks a plain-object shape that
/// the base snapshot does not have: DevTools names its objects by the compared snapshot's
/// interface definitions (`{lines}`, as DevTools infers it), not `Object`.
#[test]
fn two_way_diff_equals_devtools_comparison_when_the_toolkit_is_installed() {
    if !node_available() {
        return;
    }
    let node_programs = programs().join("../node");
    if !node_programs
        .join("node_modules/heap-snapshot-toolkit")
        .exists()
    {
        eprintln!("skipped: run `npm ci` in tests/programs/node to compare against DevTools live");
        return;
    }
    for (program, count, leaked_class) in [
        ("linked-queue.js", "500", ",PendingJob"),
        ("late-shape.js", "500", ",{lines}"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let files = three_snapshots(program, dir.path(), &[count]);
        let devtools = json_of(
            Command::new("node")
                .arg(node_programs.join("devtools-comparison.mjs"))
                .args([&files[0], &files[1]]),
        );
        let (code, ours, stderr) = run(&["diff", "--json", "-q", &files[0], &files[1]]);
        assert_eq!(code, 0, "{stderr}");
        let key = |name: &str, location: &Value| match location {
            Value::Null => format!(",{name}"),
            l => format!("{},{},{},{name}", l["script_id"], l["line"], l["column"]),
        };
        let fields = ["new_count", "deleted_count", "new_bytes", "deleted_bytes"];
        let mut ours: Vec<(String, Vec<u64>)> = ours["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    key(c["name"].as_str().unwrap(), &c["location"]),
                    fields.iter().map(|f| c[f].as_u64().unwrap()).collect(),
                )
            })
            .collect();
        ours.sort();
        let theirs: Vec<(String, Vec<u64>)> = devtools
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["key"].as_str().unwrap().to_owned(),
                    fields.iter().map(|f| c[f].as_u64().unwrap()).collect(),
                )
            })
            .collect();
        assert_eq!(ours, theirs, "{program}");
        assert!(
            ours.iter()
                .any(|(k, v)| k.ends_with(leaked_class) && v[0] >= 500),
            "{program}: {ours:?}"
        );
    }
}

/// The V8 ids of the `object` nodes named `class` in a snapshot (read with serde_json: the
/// test's snapshots are a few MB).
fn ids_of_class(snapshot: &str, class: &str) -> Vec<u64> {
    let json: Value = serde_json::from_slice(&std::fs::read(snapshot).unwrap()).unwrap();
    let meta = &json["snapshot"]["meta"];
    let fields: Vec<&str> = meta["node_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let column = |name: &str| fields.iter().position(|f| *f == name).unwrap();
    let (type_at, name_at, id_at) = (column("type"), column("name"), column("id"));
    let object_type = meta["node_types"][0]
        .as_array()
        .unwrap()
        .iter()
        .position(|t| t == "object")
        .unwrap() as u64;
    let strings = json["strings"].as_array().unwrap();
    json["nodes"]
        .as_array()
        .unwrap()
        .chunks(fields.len())
        .filter(|node| {
            node[type_at].as_u64() == Some(object_type)
                && strings[node[name_at].as_u64().unwrap() as usize] == class
        })
        .map(|node| node[id_at].as_u64().unwrap())
        .collect()
}

/// DevTools' Retainers view lists every strong reference. `paths` listed only the edges that
/// count for dominators, so an object held by a global and by a local variable on the stack
/// showed only the global, and with the global ignored `paths` said the object was unreachable
/// although the stack slot keeps it alive.
#[test]
fn a_stack_slot_is_listed_as_a_retainer_and_keeps_the_object_reachable() {
    if !node_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("held.heapsnapshot");
    let snapshot = snapshot.to_str().unwrap();
    let status = Command::new("node")
        .arg(programs().join("held-by-stack.js"))
        .arg(snapshot)
        .status()
        .expect("run node");
    assert!(status.success());
    let ids = ids_of_class(snapshot, "HeldTwice");
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = ids[0].to_string();
    let retainer_of = |path: &Value| {
        let steps = path.as_array().unwrap();
        steps[steps.len() - 2]["node"].as_str().unwrap().to_owned()
    };
    let (code, all, stderr) = run(&["paths", "--json", "-q", snapshot, "--id", &id]);
    assert_eq!(code, 0, "{stderr}");
    let paths = all["paths"].as_array().unwrap();
    let retainers: Vec<String> = paths.iter().map(retainer_of).collect();
    assert!(
        retainers.iter().any(|r| r.contains("(Stack roots)")),
        "{retainers:?}"
    );
    // User roots first, as DevTools ranks retainers by distance.
    assert!(retainers[0].starts_with("global "), "{retainers:?}");
    let global = paths[0].as_array().unwrap()[1]["id"].as_u64().unwrap();
    let (code, cut, stderr) = run(&[
        "paths",
        "--json",
        "-q",
        snapshot,
        "--id",
        &id,
        "--ignore",
        &global.to_string(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(cut["reachable"], true, "{cut}");
    let left: Vec<String> = cut["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(retainer_of)
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains("(Stack roots)"), "{left:?}");
}

/// 100 000 numbers pushed into a global array: the leak is the array's new backing store
/// (memlab: `(object elements)`, 915.7 KB). DevTools folds that store's size into the array,
/// which existed at baseline, so the three-way diff ranked the store at 0 bytes below V8's
/// compiled code. A top-level leaked object now counts its own size wherever it was folded.
#[test]
fn a_grown_number_array_leaks_its_backing_store_bytes() {
    if !node_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = three_snapshots("number-array.js", dir.path(), &[]);
    let json = three_way(&files);
    let first = &json["leaks"][0];
    let edges = path_edges(first);
    assert!(edges.contains(&"samples"), "{first}");
    // At least 8 bytes per element (V8 grows the store by half again, so more).
    assert!(
        first["retained_bytes"].as_u64().unwrap() >= 800_000,
        "{first}"
    );
    assert!(json["leaked_bytes"].as_u64().unwrap() >= 800_000);
}
