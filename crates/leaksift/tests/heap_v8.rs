//! `leaksift heap`, `paths` and `diff` on V8 heap snapshots written by real Node programs.
//!
//! DevTools equality: the committed fixtures under `tests/fixtures/v8/` come with DevTools' own
//! numbers for them (`*.devtools.json`, computed by `tests/programs/node/devtools-summary.mjs`
//! with npm `heap-snapshot-toolkit`, which bundles devtools-frontend's HeapSnapshot.ts); every
//! class's count, shallow and retained size and the total must be equal; Node 18, 20 and 22
//! snapshots and a Chromium page's are among them. When node and the
//! toolkit are installed (`npm ci` in tests/programs/node), a fresh snapshot is compared live too.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

#[path = "support/json_command.rs"]
mod json_command;
use json_command::{json_of, stdout_of};
mod one_line_error;
use one_line_error::assert_one_line_error;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/v8").join(name)
}

fn programs() -> PathBuf {
    repo().join("tests/programs/node")
}

fn leaksift() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leaksift"))
}

/// Runs leaksift with `args` and returns (exit code, stdout JSON or Null, stderr).
fn run(args: &[&str]) -> (i32, Value, String) {
    let out = leaksift().args(args).output().expect("run leaksift");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn heap_json(file: &Path) -> Value {
    let json = json_of(
        Command::new(env!("CARGO_BIN_EXE_leaksift"))
            .args(["heap", "--json", "-q"])
            .arg(file),
    );
    assert_eq!(json["schema"], "leaksift.heap.v1");
    json
}

/// DevTools' class key: "script,line,column,Name" for objects with a location, ",Name" otherwise.
fn class_key(class: &Value) -> String {
    let name = class["name"].as_str().unwrap();
    match &class["location"] {
        Value::Null => format!(",{name}"),
        l => format!("{},{},{},{name}", l["script_id"], l["line"], l["column"]),
    }
}

/// Asserts leaksift's summary equals DevTools' for every class and the total.
fn assert_matches_devtools(ours: &Value, devtools: &Value) {
    assert_eq!(
        ours["total_bytes"], devtools["total_bytes"],
        "total size differs"
    );
    let mut mine: Vec<(String, u64, u64, u64)> = ours["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                class_key(c),
                c["count"].as_u64().unwrap(),
                c["shallow_bytes"].as_u64().unwrap(),
                c["retained_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut theirs: Vec<(String, u64, u64, u64)> = devtools["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap().to_string(),
                c["count"].as_u64().unwrap(),
                c["shallow_bytes"].as_u64().unwrap(),
                c["retained_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    mine.sort();
    theirs.sort();
    let differences: Vec<_> = theirs
        .iter()
        .filter(|t| !mine.contains(t))
        .chain(mine.iter().filter(|m| !theirs.contains(m)))
        .collect();
    assert!(
        differences.is_empty(),
        "{} class rows differ from DevTools: {:?}",
        differences.len(),
        &differences[..differences.len().min(10)]
    );
    assert!(
        mine.len() > 5,
        "too few classes to be a meaningful comparison"
    );
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn committed_fixtures_match_devtools_exactly() {
    // `shapes` and `emitter-final` come from Node 20, `shapes-node18`/`-node22` from those
    // majors (tests/fixtures/v8/NODE_VERSION, OTHER_NODE_VERSIONS).
    let names = [
        "handmade",
        "shapes",
        "emitter-final",
        "shapes-node18",
        "shapes-node22",
        "chrome-detached",
    ];
    for name in names {
        let snapshot = if name == "handmade" {
            fixture("handmade.heapsnapshot")
        } else {
            fixture(&format!("{name}.heapsnapshot.gz"))
        };
        let ours = heap_json(&snapshot);
        let devtools = read_json(&fixture(&format!("{name}.devtools.json")));
        assert_matches_devtools(&ours, &devtools);
    }
}

/// V8 names a concatenated or sliced string after its kind, not its value (which the snapshot
/// does not hold): such names are no duplicated values. `shapes` keeps 40 sliced strings (all
/// 25 × "x") and 40 concatenated ones; real duplicates (its repeated literals) are still listed.
#[test]
fn duplicated_strings_are_values_not_the_names_of_string_kinds() {
    let heap = heap_json(&fixture("shapes.heapsnapshot.gz"));
    let rows = heap["duplicate_strings"]
        .as_array()
        .expect("duplicate_strings");
    assert!(!rows.is_empty(), "{heap:#}");
    for row in rows {
        let value = row["value"].as_str().expect("value");
        assert!(
            !matches!(value, "(sliced string)" | "(concatenated string)"),
            "{row}"
        );
    }
}

#[test]
fn statistics_equal_devtools_on_every_fixture_when_the_toolkit_is_installed() {
    if !node_available()
        || !programs()
            .join("node_modules/heap-snapshot-toolkit")
            .exists()
    {
        eprintln!("skipped: node or the toolkit (`npm ci` in tests/programs/node) is missing");
        return;
    }
    for name in [
        "shapes.heapsnapshot.gz",
        "shapes-node18.heapsnapshot.gz",
        "shapes-node22.heapsnapshot.gz",
        "emitter-final.heapsnapshot.gz",
        "chrome-detached.heapsnapshot.gz",
        "handmade.heapsnapshot",
    ] {
        let devtools = json_of(
            Command::new("node")
                .arg(programs().join("devtools-summary.mjs"))
                .arg(fixture(name)),
        );
        let ours = heap_json(&fixture(name));
        assert_eq!(ours["statistics"], devtools["statistics"], "{name}");
    }
}

#[test]
fn detached_dom_of_the_chromium_page_is_listed() {
    // tests/programs/chrome/detached-dom.html removes 50 panels of 20 rows and a button each
    // from the document while a registry keeps them.
    let ours = heap_json(&fixture("chrome-detached.heapsnapshot.gz"));
    let detached = ours["detached"].as_array().unwrap();
    let row = |name: &str| {
        detached
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {detached:?}"))
    };
    assert_eq!(row("Detached <section>")["count"], 50);
    assert_eq!(row("Detached <div>")["count"], 1000);
    assert_eq!(row("Detached <button>")["count"], 50);
    // Each detached class is a subset of the class of the same name.
    for class in detached {
        let all = ours["classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == class["name"])
            .unwrap();
        assert!(class["count"].as_u64() <= all["count"].as_u64());
        assert!(class["retained_bytes"].as_u64() <= all["retained_bytes"].as_u64());
    }
}

#[test]
fn a_suspects_accumulation_path_runs_through_it_to_its_accumulation_point() {
    let mut checked = 0;
    for name in [
        "chrome-detached.heapsnapshot.gz",
        "shapes.heapsnapshot.gz",
        "handmade.heapsnapshot",
    ] {
        let ours = heap_json(&fixture(name));
        for suspect in ours["suspects"].as_array().unwrap() {
            let path = suspect["accumulation_path"].as_array().unwrap();
            let description = suspect["description"].as_str().unwrap();
            let point = suspect["accumulation_point"].as_str().unwrap();
            let Some(object) = description.strip_prefix("one object: ") else {
                assert!(path.is_empty(), "{suspect}");
                continue;
            };
            if point == object {
                assert!(path.is_empty(), "{suspect}");
                continue;
            }
            let nodes: Vec<&str> = path.iter().map(|s| s["node"].as_str().unwrap()).collect();
            assert_eq!(nodes.last(), Some(&point), "{name}: {nodes:?}");
            assert!(nodes.contains(&object), "{name}: {object} not on {nodes:?}");
            checked += 1;
        }
    }
    // chrome-detached has two such suspects.
    assert!(checked >= 2, "{checked}");
}

/// A linked list of 20 000 nodes that is most of the heap: the global's accumulation point is at
/// its far end. The path there keeps its first and last 50 steps and counts the 19 900 between
/// them, in `heap` and `paths` alike (before, every step was listed: a list of a million nodes
/// took gigabytes of JSON), and the text report says what it left out.
#[test]
fn a_path_along_a_long_list_keeps_its_ends_and_counts_the_steps_between() {
    if !node_available() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let snapshot = node_snapshot(dir.path(), "long-chain.js", &[]);
    let gap_of = |path: &Value| -> (usize, Vec<(usize, Value)>) {
        let steps = path.as_array().unwrap();
        let gaps = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.get("skipped_before").is_some())
            .map(|(i, s)| (i, s["skipped_before"].clone()))
            .collect();
        (steps.len(), gaps)
    };
    let expected_gap = json!({
        "steps": 19900,
        "commonest": "--[property next]--> ChainNode",
        "commonest_count": 19900,
    });
    let ours = heap_json(&snapshot);
    let suspect = &ours["suspects"][0];
    let description = suspect["description"].as_str().unwrap();
    assert!(description.starts_with("one object: global @"), "{suspect}");
    let path = &suspect["accumulation_path"];
    assert_eq!(gap_of(path), (100, vec![(50, expected_gap.clone())]));
    let point = path[99]["id"].as_u64().unwrap().to_string();
    assert_eq!(path[99]["node"], suspect["accumulation_point"]);

    let (code, paths, stderr) = run(&[
        "paths",
        "--json",
        "-q",
        "--id",
        &point,
        snapshot.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(paths["paths"][0], *path, "the same shortest path");

    let text =
        String::from_utf8(stdout_of(leaksift().args(["heap", "-q"]).arg(&snapshot))).unwrap();
    // 16 and 6 of the 100 steps shown: the 78 others and the 19 900 are one gap.
    assert!(
        text.contains("… 19978 more references (19978 of them --[property next]--> ChainNode)\n"),
        "{text}"
    );
}

/// A property name with a newline and a tab stays on its line of the text report, written as
/// `\n` and `\t` (it broke the suspect's path in two).
#[test]
fn names_with_line_breaks_stay_on_one_line_of_text() {
    if !node_available() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let snapshot = node_snapshot(dir.path(), "names-with-breaks.js", &[]);
    let text =
        String::from_utf8(stdout_of(leaksift().args(["heap", "-q"]).arg(&snapshot))).unwrap();
    assert!(
        text.lines().any(|l| l
            .trim_start()
            .starts_with("--[property evil\\nname\\tTAB]--> Array @")),
        "{text}"
    );
    assert!(!text.contains('\t'), "{text}");
    let (code, json, _) = run(&["heap", "--json", "-q", snapshot.to_str().unwrap()]);
    assert_eq!(code, 0);
    let edges: Vec<&str> = json["suspects"][0]["accumulation_path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["edge"].as_str())
        .collect();
    assert!(
        edges.contains(&"evil\nname\tTAB"),
        "JSON keeps the name: {edges:?}"
    );
}

#[test]
fn the_global_suspect_says_the_emitter_is_what_accumulates() {
    // In a Node heap `global` dominates nearly everything, so it is the top suspect and its own
    // accumulation point; what it immediately dominates, by class, names the leaking emitter
    // (leak-emitter.js keeps 2000 request closures as listeners of one bus).
    let ours = heap_json(&fixture("emitter-final.heapsnapshot.gz"));
    let top = &ours["suspects"][0];
    assert!(
        top["description"].as_str().unwrap().contains("global"),
        "{top}"
    );
    let accumulated = top["accumulated"].as_array().expect("accumulated");
    assert_eq!(accumulated[0]["class"], "EventEmitter", "{top}");
    let emitters = accumulated[0]["retained_bytes"].as_u64().unwrap();
    assert!(
        emitters > top["retained_bytes"].as_u64().unwrap() / 3,
        "{top}"
    );
}

#[test]
fn handmade_corner_cases_follow_devtools() {
    let ours = heap_json(&fixture("handmade.heapsnapshot"));
    let classes = ours["classes"].as_array().unwrap();
    let find = |key: &str| {
        classes
            .iter()
            .find(|c| class_key(c) == key)
            .unwrap()
            .clone()
    };
    // Reachable only through a weak edge: attached to the root, retains its child.
    assert_eq!(find(",Lonely")["retained_bytes"], 60);
    // The same class name at two locations is two classes.
    assert_eq!(find("7,10,4,Foo")["count"], 1);
    assert_eq!(find(",Foo")["count"], 1);
    // Detachedness propagates to embedder children and renames them.
    assert_eq!(find(",Detached HTMLSpanElement")["count"], 1);
    assert_eq!(ours["detached"].as_array().unwrap().len(), 2);
    assert_eq!(ours["unreachable_count"], 4);
}

/// Runs `node FLAGS tests/programs/node/PROGRAM SNAPSHOT`, which writes a heap snapshot to
/// `dir/PROGRAM.heapsnapshot`, and returns that path.
fn node_snapshot(dir: &Path, program: &str, flags: &[&str]) -> PathBuf {
    let snapshot = dir.join(program).with_extension("heapsnapshot");
    let status = Command::new("node")
        .args(flags)
        .arg(programs().join(program))
        .arg(&snapshot)
        .status()
        .expect("run node");
    assert!(status.success(), "{program} failed");
    snapshot
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn fresh_node_snapshot_matches_devtools_when_the_toolkit_is_installed() {
    if !node_available() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let toolkit = programs().join("node_modules/heap-snapshot-toolkit");
    if !toolkit.exists() {
        eprintln!("skipped: run `npm ci` in tests/programs/node to compare against DevTools live");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let snapshot = node_snapshot(dir.path(), "shapes.js", &[]);
    let devtools = json_of(
        Command::new("node")
            .arg(programs().join("devtools-summary.mjs"))
            .arg(&snapshot),
    );
    let ours = heap_json(&snapshot);
    assert_matches_devtools(&ours, &devtools);
    assert_eq!(ours["statistics"], devtools["statistics"]);
}

#[test]
fn allocation_sites_of_a_tracked_snapshot_equal_devtools_allocation_view() {
    if !node_available() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let snapshot = node_snapshot(dir.path(), "tracked.js", &["--track-heap-objects"]);
    let ours = heap_json(&snapshot);
    let sites = ours["extra"]["allocation_sites"]
        .as_array()
        .expect("a tracked snapshot has allocation sites");
    // remember() kept its 3000 Orders; their items arrays were allocated in the constructor.
    let site = |function: &str| {
        sites
            .iter()
            .find(|s| {
                s["function"] == function && s["script"].as_str().unwrap().ends_with("tracked.js")
            })
            .unwrap_or_else(|| panic!("no site {function}: {sites:?}"))
    };
    let remember = site("remember");
    // V8 records 1-based lines: `function remember(id) {` is line 15.
    assert_eq!(remember["line"], 15, "{remember}");
    assert!(
        remember["live_count"].as_u64().unwrap() >= 3000,
        "{remember}"
    );
    assert!(site("Order")["live_count"].as_u64().unwrap() >= 3000);
    // churn()'s objects were garbage when the snapshot was taken.
    let churn = site("churn");
    // (V8 counts a few allocations of its own there: the function's boilerplate.)
    assert!(churn["allocations"].as_u64().unwrap() >= 3000, "{churn}");
    assert!(churn["live_count"].as_u64().unwrap() < 100, "{churn}");
    let text =
        String::from_utf8(stdout_of(leaksift().args(["heap", "-q"]).arg(&snapshot))).unwrap();
    assert!(
        text.contains("Allocation sites (allocation tracking)"),
        "{text}"
    );
    assert!(text.contains("remember (tracked.js:15:"), "{text}");

    // Suspects say what allocated them (the module's top-level code allocated its context).
    let suspects = ours["suspects"].as_array().unwrap();
    assert!(
        suspects.iter().any(|s| s["allocation_stack"][0]["script"]
            .as_str()
            .is_some_and(|f| f.ends_with("tracked.js"))),
        "{suspects:?}"
    );
    // What piles up at an accumulation point says which code made it: the 3000 Orders, by
    // remember() (the constructor's own frame first when V8 did not inline it).
    let orders = suspects
        .iter()
        .flat_map(|s| s["accumulated"].as_array().unwrap())
        .find(|a| a["class"] == "Order")
        .expect("a suspect made of the Orders");
    assert_eq!(orders["count"], 3000, "{orders}");
    let frames = orders["allocation_stack"].as_array().unwrap();
    assert!(
        frames.iter().any(|f| f["function"] == "remember"),
        "{frames:?}"
    );
    assert!(text.contains("3000 × Order ("), "{text}");
    assert!(text.contains(", allocated in "), "{text}");
    // An untracked snapshot has none.
    let untracked = heap_json(&fixture("handmade.heapsnapshot"));
    assert!(untracked["extra"]["allocation_sites"].is_null());
    for suspect in untracked["suspects"].as_array().unwrap() {
        assert_eq!(suspect["allocation_stack"], serde_json::json!([]));
        for accumulated in suspect["accumulated"].as_array().unwrap() {
            assert_eq!(accumulated["allocation_stack"], serde_json::json!([]));
        }
    }

    let toolkit = programs().join("node_modules/heap-snapshot-toolkit");
    if !toolkit.exists() {
        eprintln!("skipped: run `npm ci` in tests/programs/node to compare against DevTools live");
        return;
    }
    let devtools = json_of(
        Command::new("node")
            .arg(programs().join("devtools-summary.mjs"))
            .arg(&snapshot),
    );
    assert_eq!(
        ours["extra"]["allocation_sites"],
        devtools["allocation_sites"]
    );
}

#[test]
fn leaks_of_a_tracked_run_name_the_code_that_allocated_them_as_devtools_does() {
    if !node_available() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files =
        ["baseline", "target", "final"].map(|n| dir.path().join(format!("{n}.heapsnapshot")));
    let status = Command::new("node")
        .arg("--track-heap-objects")
        .arg(programs().join("leak-map.js"))
        .args(&files)
        .status()
        .unwrap();
    assert!(status.success());
    let json = three_way(&files);
    let leaks = json["leaks"].as_array().unwrap();
    // The Map's table grew in SessionStore.open (leak-map.js line 16), through Map.prototype.set.
    let top: Vec<(&str, &str, u64)> = leaks[0]["allocation_stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["function"].as_str().unwrap(),
                f["script"].as_str().unwrap(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        top.iter()
            .any(|(function, script, line)| *function == "open"
                && script.ends_with("leak-map.js")
                && *line == 16),
        "{top:?}"
    );
    let args: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    // Leaks found: exit 1.
    let out = leaksift()
        .args(["diff", "-q"])
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("allocated at: ") && text.contains("open (leak-map.js:16:"),
        "{text}"
    );

    let toolkit = programs().join("node_modules/heap-snapshot-toolkit");
    if !toolkit.exists() {
        eprintln!("skipped: run `npm ci` in tests/programs/node to compare against DevTools live");
        return;
    }
    // Each group's representative has the stack DevTools shows for it.
    let shown: Vec<&Value> = leaks.iter().take(8).collect();
    let ids: Vec<String> = shown
        .iter()
        .map(|l| l["representative_id"].to_string())
        .collect();
    let devtools = json_of(
        Command::new("node")
            .arg(programs().join("devtools-summary.mjs"))
            .arg(&files[2])
            .env("ALLOCATION_STACKS_OF", ids.join(",")),
    );
    for (leak, id) in shown.iter().zip(&ids) {
        assert_eq!(
            leak["allocation_stack"],
            devtools["allocation_stacks"][id.as_str()],
            "representative {id}"
        );
    }
}

/// Runs a leak program that writes baseline, target and final snapshots into `dir`.
fn three_snapshots(program: &str, dir: &Path) -> [PathBuf; 3] {
    let files = ["baseline", "target", "final"].map(|n| dir.join(format!("{n}.heapsnapshot")));
    let status = Command::new("node")
        .arg(programs().join(program))
        .args(&files)
        .status()
        .expect("run node");
    assert!(status.success(), "{program} failed");
    files
}

fn path_edges(leak: &Value) -> Vec<String> {
    leak["path"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["edge"].as_str().map(str::to_string))
        .collect()
}

/// Runs a leak program (when node is installed) and its three-way `diff --json`: the directory
/// holding the snapshots, the snapshots, and the JSON.
fn leak_program_diff(program: &str) -> Option<(tempfile::TempDir, [PathBuf; 3], Value)> {
    if !node_available() {
        eprintln!("skipped: node is not installed");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = three_snapshots(program, dir.path());
    let json = three_way(&files);
    Some((dir, files, json))
}

fn three_way(files: &[PathBuf; 3]) -> Value {
    let args: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let (code, json, stderr) = run(&["diff", "--json", "-q", args[0], args[1], args[2]]);
    assert_eq!(code, 1, "a leak must exit 1: {stderr}");
    assert_eq!(json["schema"], "leaksift.diff.v1");
    json
}

#[test]
fn emitter_listener_leak_is_ranked_first_with_the_event_in_its_path() {
    let Some((_dir, files, json)) = leak_program_diff("leak-emitter.js") else {
        return;
    };
    let leaks = json["leaks"].as_array().unwrap();
    let first = &leaks[0];
    let edges = path_edges(first);
    assert!(
        edges.iter().any(|e| e == "config-changed"),
        "path {edges:?}"
    );
    assert!(edges.iter().any(|e| e == "bus"), "path {edges:?}");
    // 2000 leaked requests, each a closure, a context, a RequestContext, headers and a body.
    assert!(first["count"].as_u64().unwrap() >= 2000 * 4, "{first}");
    assert!(
        first["retained_bytes"].as_u64().unwrap() > 1_000_000,
        "{first}"
    );
    for other in &leaks[1..] {
        assert!(other["retained_bytes"].as_u64() <= first["retained_bytes"].as_u64());
    }

    // `paths` explains the representative leaked object; ignoring the listener array cuts it off.
    let id = first["representative_id"].as_u64().unwrap().to_string();
    let last = files[2].to_str().unwrap();
    let (code, paths, stderr) = run(&["paths", "--json", "-q", last, "--id", &id]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(paths["schema"], "leaksift.paths.v1");
    let shortest = &paths["paths"][0];
    assert!(
        shortest
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["edge"] == "config-changed"),
        "{shortest}"
    );
    let array_step = shortest
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["edge"] == "config-changed")
        .unwrap();
    let array_id = array_step["id"].as_u64().unwrap().to_string();
    let (code, cut, _) = run(&[
        "paths", "--json", "-q", last, "--id", &id, "--ignore", &array_id,
    ]);
    assert_eq!(code, 0);
    assert_eq!(cut["reachable"], false, "{cut}");

    // Two-way comparison: the 2000 RequestContexts made between baseline and target are new.
    let (code, compare, stderr) = run(&[
        "diff",
        "--json",
        "-q",
        files[0].to_str().unwrap(),
        files[1].to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let request = compare["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "RequestContext")
        .expect("RequestContext in the comparison");
    assert_eq!(request["new_count"], 2000);
    assert_eq!(request["deleted_count"], 0);
}

/// Objects stored under random UUID keys were one leak group per key (only digit runs of a
/// key were folded), and two caches named `cacheV1` and `cacheV2` were one group naming only
/// the first (the digit of a variable name was folded too).
#[test]
fn uuid_keys_make_one_group_and_numbered_variables_two() {
    let Some((_dir, _, json)) = leak_program_diff("leak-keys.js") else {
        return;
    };
    let leaks = json["leaks"].as_array().unwrap();
    let holding = |class: &str| -> Vec<&Value> {
        leaks
            .iter()
            .filter(|leak| {
                leak["contents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["class"] == class && c["count"].as_u64() >= Some(300))
            })
            .collect()
    };
    let sessions = holding("Session");
    assert_eq!(sessions.len(), 1, "{leaks:#?}");
    assert!(path_edges(sessions[0]).iter().any(|e| e == "sessions"));
    for (class, variable) in [("UserRecord", "cacheV1"), ("TokenRecord", "cacheV2")] {
        let groups = holding(class);
        assert_eq!(groups.len(), 1, "{class}: {leaks:#?}");
        assert!(
            path_edges(groups[0]).iter().any(|e| e == variable),
            "{class}: {:?}",
            path_edges(groups[0])
        );
    }
}

#[test]
fn growing_map_leak_is_ranked_first_with_the_owner_in_its_path() {
    let Some((_dir, _, json)) = leak_program_diff("leak-map.js") else {
        return;
    };
    let first = &json["leaks"][0];
    let edges = path_edges(first);
    assert!(edges.iter().any(|e| e == "sessionStore"), "path {edges:?}");
    assert!(edges.iter().any(|e| e == "sessions"), "path {edges:?}");
    assert!(
        first["retained_bytes"].as_u64().unwrap() > 1_000_000,
        "{first}"
    );
    assert!(first["count"].as_u64().unwrap() >= 2000 * 3, "{first}");
}

#[test]
fn text_report_shows_suspects_and_classes() {
    let out = leaksift()
        .args(["heap", "-q"])
        .arg(fixture("shapes.heapsnapshot.gz"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Leak suspects"), "{text}");
    assert!(text.contains("Classes by retained size"), "{text}");
    assert!(text.contains("Point"), "{text}");
    assert!(text.contains("Duplicated strings"), "{text}");
}

#[test]
fn truncated_and_foreign_files_fail_with_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(fixture("handmade.heapsnapshot")).unwrap();
    for cut in [40, whole.len() / 3, whole.len() / 2, whole.len() - 2] {
        let file = dir.path().join("cut.heapsnapshot");
        std::fs::write(&file, &whole[..cut]).unwrap();
        let (code, _, stderr) = run(&["heap", "-q", file.to_str().unwrap()]);
        assert_eq!(code, 2, "cut at {cut}: {stderr}");
        assert!(stderr.starts_with("leaksift: error: "), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("cut.heapsnapshot"), "{stderr}");
        assert!(stderr.contains("byte"), "cut at {cut}: {stderr}");
    }
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, "hello").unwrap();
    let (code, _, stderr) = run(&["heap", foreign.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a heap snapshot"), "{stderr}");
    let (code, _, stderr) = run(&[
        "paths",
        "--id",
        "999999",
        fixture("handmade.heapsnapshot").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no object with id 999999"), "{stderr}");
}

#[test]
fn gzip_and_plain_snapshots_give_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.heapsnapshot");
    let mut decoder = flate2::read::GzDecoder::new(
        std::fs::File::open(fixture("shapes.heapsnapshot.gz")).unwrap(),
    );
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut decoder, &mut bytes).unwrap();
    std::fs::write(&plain, bytes).unwrap();
    let mut a = heap_json(&plain);
    let mut b = heap_json(&fixture("shapes.heapsnapshot.gz"));
    a["file"] = Value::Null;
    b["file"] = Value::Null;
    assert_eq!(a, b);
}

/// Options may come between the files, as in `heap FILE -q` (clap counted the files per run of
/// values, so `diff a -q b` was refused as one file short).
#[test]
fn diff_takes_options_between_its_files() {
    let shapes = fixture("shapes.heapsnapshot.gz");
    let file = shapes.to_str().unwrap();
    let (code, between, stderr) = run(&["diff", file, "--json", file, "-q"]);
    assert_eq!(code, 0, "{stderr}");
    let (_, before, _) = run(&["diff", "--json", "-q", file, file]);
    assert_eq!(between, before);
    assert_eq!(between["files"].as_array().map(Vec::len), Some(2));
}

/// `leaksift ARGS` started with its stdin a pipe, the pipe's writing end, and its output
/// captured.
fn reading_stdin(args: &[&str]) -> (std::process::Child, std::process::ChildStdin) {
    let mut child = leaksift()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

/// `heap /dev/stdin` fed by a pipe (as `zcat x | leaksift heap /dev/stdin` or `<(…)`): the
/// stream is copied to a temporary file first, and the report is the file's. Before, the format
/// sniffing consumed the stream's first bytes ("invalid gzip header") and a plain snapshot could
/// not be mapped ("No such device").
#[test]
fn a_snapshot_or_dump_piped_to_stdin_reads_as_the_file_does() {
    for file in [
        fixture("shapes.heapsnapshot.gz"),
        repo().join("tests/fixtures/hprof/shape.hprof.gz"),
    ] {
        let bytes = std::fs::read(&file).unwrap();
        let (child, mut stdin) = reading_stdin(&["heap", "--json", "-q", "/dev/stdin"]);
        let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &bytes));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut piped: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(piped["file"], "/dev/stdin");
        let mut direct = heap_json(&file);
        piped["file"] = Value::Null;
        direct["file"] = Value::Null;
        assert_eq!(piped, direct, "{}", file.display());
    }
}

/// An endless stream that is no heap file (`yes | leaksift heap /dev/stdin`) was copied to a
/// temporary file until the disk was full, and `/dev/zero` too. Now the stream's first bytes are
/// checked before anything is copied, and a device is refused.
#[test]
fn an_endless_stream_or_a_device_is_refused_before_any_copy() {
    let (child, mut stdin) = reading_stdin(&["heap", "-q", "/dev/stdin"]);
    // Writes until leaksift closes the pipe (an error then ends the feeder).
    let feeder = std::thread::spawn(move || {
        let line = b"y\n".repeat(4096);
        while std::io::Write::write_all(&mut stdin, &line).is_ok() {}
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_one_line_error(&out, "/dev/stdin: not a heap snapshot or heap dump");
    let out = leaksift().args(["heap", "/dev/zero"]).output().unwrap();
    assert_one_line_error(&out, "/dev/zero: a device, not a file to read");
}

/// Two constructors named `Handler` defined in two places: the text tables of `heap` and `diff`
/// tell them apart by location (DevTools links each row to its constructor), one row each.
#[test]
fn same_named_classes_are_told_apart_by_location_in_text() {
    if !node_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("handlers.js");
    std::fs::write(
        &script,
        "'use strict';\n\
         const v8 = require('v8');\n\
         class Handler { constructor(id) { this.id = id; } }\n\
         const Other = (() => class Handler { constructor(id) { this.other = id; } })();\n\
         const kept = [];\n\
         v8.writeHeapSnapshot(process.argv[2]);\n\
         for (let i = 0; i < 300; i++) kept.push(new Handler(i));\n\
         for (let i = 0; i < 200; i++) kept.push(new Other(i));\n\
         globalThis.kept = kept;\n\
         v8.writeHeapSnapshot(process.argv[3]);\n",
    )
    .unwrap();
    let [before, after] = ["before", "after"].map(|n| dir.path().join(format!("{n}.heapsnapshot")));
    let status = Command::new("node")
        .arg(&script)
        .args([&before, &after])
        .status()
        .unwrap();
    assert!(status.success());
    // `script S:L:C`, L and C 1-based: the constructors are on lines 3 and 4.
    let labels = |text: &str, count: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("Handler (script ") && l.trim_start().starts_with(count))
            .map(|l| l[l.find("Handler (script ").unwrap()..].trim().to_owned())
            .collect()
    };
    let text = |command: &mut Command| String::from_utf8(stdout_of(command)).unwrap();
    let heap = text(leaksift().args(["heap", "-q", "--top", "500"]).arg(&after));
    let (three, two) = (labels(&heap, "300 "), labels(&heap, "200 "));
    assert_eq!(three.len(), 1, "{heap}");
    assert_eq!(two.len(), 1, "{heap}");
    assert!(three[0].contains(":3:"), "{three:?}");
    assert!(two[0].contains(":4:"), "{two:?}");
    let diff = text(
        leaksift()
            .args(["diff", "-q", "--top", "500"])
            .args([&before, &after]),
    );
    assert_eq!(labels(&diff, "300 "), three, "{diff}");
    assert_eq!(labels(&diff, "200 "), two, "{diff}");
}

/// `--threshold 0` makes every top-level object a suspect: the text report printed thousands of
/// them (18,480 lines on one snapshot). It shows 20 and counts the rest; the JSON has all.
#[test]
fn a_low_threshold_lists_twenty_suspects_in_text() {
    let file = fixture("shapes.heapsnapshot.gz");
    let text = String::from_utf8(stdout_of(
        leaksift()
            .args(["heap", "-q", "--threshold", "0"])
            .arg(&file),
    ))
    .unwrap();
    let numbered = text
        .lines()
        .filter(|l| {
            l.split_once(". ")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .count();
    assert_eq!(numbered, 20, "{text}");
    let json = json_of(
        leaksift()
            .args(["heap", "-q", "--json", "--threshold", "0"])
            .arg(&file),
    );
    let all = json["suspects"].as_array().unwrap().len();
    assert!(all > 20, "{all}");
    assert!(
        text.contains(&format!("… {} more suspects", all - 20)),
        "{text}"
    );
}

/// A snapshot cut just before its final `}` read "expected `,` or `}` between top-level
/// sections", with nothing saying the file was cut short.
#[test]
fn a_snapshot_missing_its_last_byte_is_called_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixture("handmade.heapsnapshot")).unwrap();
    while bytes.last().is_some_and(u8::is_ascii_whitespace) {
        bytes.pop();
    }
    bytes.pop();
    let cut = dir.path().join("cut.heapsnapshot");
    std::fs::write(&cut, &bytes).unwrap();
    let out = leaksift().args(["heap", "-q"]).arg(&cut).output().unwrap();
    let line = assert_one_line_error(&out, "truncated");
    assert!(line.contains(&format!("at byte {}", bytes.len())), "{line}");
}

/// A file name with a newline and an escape sequence split the report's first line and the
/// progress lines, and the escape reached the terminal.
#[test]
fn a_file_name_with_control_characters_stays_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad\nname\u{1b}[31m.heapsnapshot");
    std::fs::copy(fixture("handmade.heapsnapshot"), &file).unwrap();
    let out = leaksift().arg("heap").arg(&file).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let first = stdout.lines().next().unwrap();
    assert!(
        first.contains(r"bad\nname\u{1b}[31m.heapsnapshot (v8):"),
        "{first}"
    );
    assert!(!stderr.contains('\u{1b}') && !stdout.contains('\u{1b}'));
    assert!(
        stderr.lines().all(|line| line.contains(": ")),
        "a progress line was split: {stderr}"
    );
}
