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

#[path = "support/heap_json.rs"]
mod heap_json;
#[path = "support/json_command.rs"]
mod json_command;
use heap_json::{heap_text, json, steps};
use json_command::json_of;

/// The object id at the end of a description such as `java.lang.Object[] @0xfd8a1c40`.
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
    steps(&paths["paths"][0])
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

/// The accumulation point of the top suspect.
fn top_suspect_path_point(file: &Path) -> String {
    let heap = json(&["heap"], file);
    heap["suspects"][0]["accumulation_point"]
        .as_str()
        .expect("accumulation point")
        .to_string()
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
    // HPROF ids are addresses, printed in hex; `paths --id` takes them in hex or decimal.
    let point = top_suspect_path_point(&file);
    assert!(id_of(&point).starts_with("0x"), "{point}");
    let decimal = u64::from_str_radix(id_of(&point).trim_start_matches("0x"), 16)
        .unwrap()
        .to_string();
    assert_eq!(path_to(&file, &decimal), path);
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
fn a_suspects_path_goes_down_to_its_accumulation_point() {
    // MAT's "shortest paths to the accumulation point": through the thread's local to the field.
    let file = fixture("listener_leak.hprof.gz");
    let heap = json(&["heap"], &file);
    let top = &heap["suspects"][0];
    let path = steps(&top["accumulation_path"]);
    assert_eq!(path.len(), 5, "{path:?}");
    assert!(
        path[1].2.starts_with("java.lang.Thread \"main\" @"),
        "{path:?}"
    );
    assert_eq!(path[2].0, "GC root (Java Local)", "{path:?}");
    assert_eq!(
        (path[3].0.as_str(), path[3].1.as_str()),
        ("field", "listeners")
    );
    assert_eq!(
        (path[4].0.as_str(), path[4].1.as_str()),
        ("field", "elementData")
    );
    assert_eq!(path[4].2, top["accumulation_point"].as_str().unwrap());
    // The text shows that path under the suspect.
    let text = heap_text(&file);
    let suspect = text.split("\n2. ").next().unwrap();
    assert!(suspect.contains("--[field listeners]-->"), "{text}");
    // A class suspect keeps the path to its biggest instance only.
    assert_eq!(
        heap["suspects"][1]["accumulation_path"],
        serde_json::json!([])
    );
}

#[test]
fn a_suspect_says_what_accumulates_at_its_accumulation_point() {
    // tests/programs/java/regenerate.sh registers 1500 listeners; the listener array holds them.
    let heap = json(&["heap"], &fixture("listener_leak.hprof.gz"));
    let top = &heap["suspects"][0];
    let accumulated = top["accumulated"].as_array().expect("accumulated");
    assert_eq!(accumulated[0]["class"], "ListenerLeak$Widget$ClickListener");
    assert_eq!(accumulated[0]["count"], 1500);
    let retained: u64 = accumulated
        .iter()
        .map(|a| a["retained_bytes"].as_u64().unwrap())
        .sum();
    assert!(retained <= top["retained_bytes"].as_u64().unwrap());
    let text = heap_text(&fixture("listener_leak.hprof.gz"));
    assert!(
        text.contains("   made of: 1500 × ListenerLeak$Widget$ClickListener ("),
        "{text}"
    );
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
    assert_eq!(dump["alignment_bytes"], 8);
    assert_eq!(dump["objects"], heap["node_count"].as_u64().unwrap() - 1);
    let shape = json(&["heap"], &fixture("shape.hprof.gz"));
    assert_eq!(class_count(&shape, "Shape$Counted"), 1234);
    assert_eq!(class_count(&shape, "Shape$Node"), 6);
    // The text report has the same sections.
    let text = heap_text(&file);
    assert!(text.contains("Leak suspects"), "{text}");
    assert!(
        text.contains("ListenerLeak.main (ListenerLeak.java:"),
        "{text}"
    );
}

#[test]
fn diff_reports_growth_per_class() {
    let diff = json_of(
        Command::new(env!("CARGO_BIN_EXE_leaksift"))
            .args(["diff", "--json", "--quiet"])
            .arg(fixture("shape.hprof.gz"))
            .arg(fixture("static_leak.hprof.gz")),
    );
    let classes = diff["classes"].as_array().expect("classes");
    let row = |name: &str| classes.iter().find(|c| c["name"] == name).cloned();
    let sessions = row("StaticLeak$Session").expect("sessions grew");
    assert_eq!(sessions["delta_count"], 3000);
    assert_eq!(sessions["delta_bytes"], 3000 * 24);
    // Retained growth is reported with the shallow one, and ranks the classes.
    let delta = |c: &Value| {
        c["delta_retained_bytes"]
            .as_i64()
            .expect("delta_retained_bytes")
    };
    assert!(delta(&sessions) >= 3000 * (24 + 1000), "{sessions}");
    assert_eq!(
        sessions["compared"]["retained_bytes"].as_i64().unwrap()
            - sessions["base"]["retained_bytes"].as_i64().unwrap(),
        delta(&sessions)
    );
    assert!(
        classes.windows(2).all(|w| delta(&w[0]) >= delta(&w[1])),
        "not sorted by retained growth"
    );
    // The list holding the sessions retains them all: its array class grows the most.
    assert!(delta(&classes[0]) >= delta(&sessions), "{}", classes[0]);
    let counted = row("Shape$Counted").expect("counted went away");
    assert_eq!(counted["delta_count"], -1234);
    assert!(delta(&counted) < 0);
    // Lambda classes keep their name across JVM runs (the hidden-class address is dropped).
    assert!(
        classes
            .iter()
            .all(|c| !c["name"].as_str().unwrap().contains("+0x")),
        "{classes:?}"
    );
}

#[test]
fn threads_are_ranked_by_retained_size_with_the_frames_retaining_most() {
    let file = fixture("listener_leak.hprof.gz");
    let heap = json(&["heap"], &file);
    let threads = heap["extra"]["threads"].as_array().expect("threads");
    let retained = |v: &Value| v["retained_bytes"].as_u64().expect("retained_bytes");
    assert!(
        threads
            .windows(2)
            .all(|w| retained(&w[0]) >= retained(&w[1]))
    );
    // main holds the event bus in a local of ListenerLeak.main: it retains the leak.
    let main = &threads[0];
    assert_eq!(main["name"], "main");
    let suspect = heap["suspects"][0]["retained_bytes"].as_u64().unwrap();
    assert_eq!(retained(main), suspect);
    assert_eq!(
        main["id_hex"],
        format!("{:#x}", main["id"].as_u64().unwrap())
    );
    let frame = main["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["method"] == "ListenerLeak.main")
        .expect("main frame");
    let biggest = &frame["biggest"];
    assert!(
        biggest["description"]
            .as_str()
            .unwrap()
            .starts_with("ListenerLeak$EventBus @0x"),
        "{frame}"
    );
    assert!(retained(frame) >= retained(biggest));
    assert!(retained(biggest) * 10 >= suspect * 9, "{frame}");
    assert!(
        frame["locals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == biggest["id"])
    );
    let text = heap_text(&file);
    let section = text
        .split("Threads by retained size")
        .nth(1)
        .expect("threads section");
    let frame_line = section
        .lines()
        .find(|l| l.contains("at ListenerLeak.main (ListenerLeak.java:"))
        .expect("main frame line");
    assert!(
        frame_line.contains("ListenerLeak$EventBus @0x"),
        "{frame_line}"
    );
    assert!(frame_line.contains("MiB"), "{frame_line}");
}

#[test]
fn object_ids_are_hex_in_text_and_json_and_paths_takes_both() {
    let file = fixture("static_leak.hprof.gz");
    let heap = json(&["heap"], &file);
    for row in heap["dominators"].as_array().unwrap() {
        let hex = format!("{:#x}", row["id"].as_u64().unwrap());
        assert_eq!(row["id_hex"], hex.as_str());
        assert!(
            row["description"]
                .as_str()
                .unwrap()
                .ends_with(&format!("@{hex}"))
        );
    }
    for step in heap["suspects"][0]["path"].as_array().unwrap() {
        assert!(step["id_hex"].as_str().unwrap().starts_with("0x"), "{step}");
    }
    let biggest = &heap["dominators"][0];
    let hex = biggest["id_hex"].as_str().unwrap();
    let by_hex = json(&["paths", "--id", hex], &file);
    let upper = format!("0X{}", hex[2..].to_uppercase());
    let by_upper_hex = json(&["paths", "--id", &upper], &file);
    let by_decimal = json(&["paths", "--id", &biggest["id"].to_string()], &file);
    assert_eq!(by_hex["object"]["id_hex"], hex);
    assert_eq!(by_hex, by_decimal);
    assert_eq!(by_hex, by_upper_hex);
    let text = leaksift()
        .args(["paths", "--quiet", "--id", hex])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.starts_with(&format!(
            "{} — retains",
            biggest["description"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(!text.contains(&format!("@{}", biggest["id"])), "{text}");
    // A bad id is refused by the argument parser; a missing one names it in hex.
    let out = leaksift()
        .args(["paths", "--quiet", "--id", "0xnope"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an object id"));
    let stderr = one_line_error(&["paths", "--quiet", "--id", "0x10"], &file);
    assert!(stderr.contains("no object with id 0x10"), "{stderr}");
}

/// Checks a heap report of the Garbage program (`kept` objects in a static list, `dropped`
/// garbage objects each pointing at a kept one).
fn check_garbage_left_out(file: &Path, kept: u64, dropped: u64) {
    let heap = json(&["heap"], file);
    assert_eq!(class_count(&heap, "Garbage$Kept"), kept);
    assert_eq!(
        class_count(&heap, "Garbage$Dropped"),
        0,
        "garbage in the histogram"
    );
    let garbage = &heap["garbage"];
    // Each dropped object and its byte[] at least.
    assert!(
        garbage["objects"].as_u64().unwrap() >= 2 * dropped,
        "{garbage}"
    );
    assert!(
        garbage["shallow_bytes"].as_u64().unwrap() >= dropped * 500,
        "{garbage}"
    );
    assert_eq!(
        heap["extra"]["dump"]["unreachable_objects"],
        garbage["objects"]
    );
    // Garbage does not count in the total: the kept payloads are most of it.
    let total = heap["total_bytes"].as_u64().unwrap();
    let dump_objects = heap["extra"]["dump"]["objects"].as_u64().unwrap();
    assert_eq!(dump_objects + 1, heap["node_count"].as_u64().unwrap());
    for suspect in heap["suspects"].as_array().unwrap() {
        assert!(!suspect["path"].as_array().unwrap().is_empty(), "{suspect}");
        assert!(suspect["retained_bytes"].as_u64().unwrap() <= total);
    }
    // The list's array still retains every kept object although garbage points at them.
    let point = heap["suspects"][0]["accumulation_point"].as_str().unwrap();
    assert!(point.starts_with("java.lang.Object[] @0x"), "{point}");
    let paths = json(&["paths", "--id", &id_of(point)], file);
    assert!(
        paths["object"]["retained_bytes"].as_u64().unwrap() >= kept * 2016,
        "{}",
        paths["object"]
    );
    let kept_row = heap["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Garbage$Kept")
        .unwrap();
    assert_eq!(
        kept_row["retained_bytes"].as_u64().unwrap(),
        kept * (16 + 2016)
    );
    // The root over the GC roots, first step of every path, retains the total: not the garbage
    // the dominator tree hangs off it.
    let first_step = &paths["paths"][0][0];
    assert_eq!(first_step["id"], 0, "{first_step}");
    assert_eq!(
        first_step["retained_bytes"].as_u64(),
        Some(total),
        "{first_step}"
    );
    assert_eq!(paths["garbage"], false);
    let text = heap_text(file);
    assert!(
        text.contains(&format!("{} unreachable objects (", garbage["objects"])),
        "{text}"
    );
    // The object count is the dump's (without the reader's root).
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains(&format!(": {dump_objects} objects, ")),
        "{text}"
    );
    // A garbage object: `paths` says so, not "unreachable over strong references".
    let dump = leaksift_hprof::DumpFile::open(file).unwrap();
    let read = leaksift_hprof::read(dump.bytes(), &mut leaksift_hprof::Quiet).unwrap();
    let garbage_node = read
        .graph
        .nodes()
        .find(|&n| read.unreachable.contains(n))
        .expect("a garbage object");
    let garbage_id = format!("{:#x}", read.graph.id(garbage_node).0);
    let paths = json(&["paths", "--id", &garbage_id], file);
    assert_eq!(paths["garbage"], true, "{paths}");
    assert_eq!(paths["reachable"], false, "{paths}");
    let out = Cli::cargo_bin("leaksift")
        .unwrap()
        .args(["paths", "-q", "--id", &garbage_id])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("garbage: no GC root reaches it"), "{text}");
    // The reader's own root is no object.
    let stderr = one_line_error(&["paths", "--quiet", "--id", "0x0"], file);
    assert!(stderr.contains("no object with id 0x0"), "{stderr}");
}

/// The duplicated java.lang.String values of the Garbage program: 250 copies (each with its own
/// value array) of a Latin-1 and of a UTF-16 value plus their literals; the garbage's copies of
/// "dropped-copy" are not counted.
fn check_duplicate_strings(file: &Path) {
    assert!(
        json(&["heap"], file)["duplicate_strings"]
            .as_array()
            .unwrap()
            .is_empty(),
        "strings are decoded only with --duplicate-strings"
    );
    let heap = json(&["heap", "--duplicate-strings"], file);
    let rows = heap["duplicate_strings"].as_array().unwrap();
    let row = |value: &str| rows.iter().find(|r| r["value"] == value).cloned();
    // Per extra copy: a 24-byte String and its array (16-byte header + data, 8-aligned).
    let latin1 = row("kept-latin1-value").expect("the Latin-1 value");
    assert_eq!(latin1["count"], 251);
    assert_eq!(latin1["wasted_bytes"], 250 * (24 + 40));
    let utf16 = row("kept-\u{3c0}\u{20ac}-value").expect("the UTF-16 value");
    assert_eq!(utf16["count"], 251);
    assert_eq!(utf16["wasted_bytes"], 250 * (24 + 48));
    assert_eq!(rows[0], utf16, "most wasted first");
    assert!(
        row("dropped-copy").is_none(),
        "garbage strings counted: {rows:?}"
    );
    let text = leaksift()
        .args(["heap", "--quiet", "--duplicate-strings"])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    let section = text.split("Duplicated strings").nth(1).expect("section");
    assert!(
        section.contains("\"kept-\u{3c0}\u{20ac}-value\""),
        "{section}"
    );
}

#[test]
fn garbage_of_a_non_live_dump_is_left_out_as_mat_does() {
    check_garbage_left_out(&fixture("garbage.hprof.gz"), 200, 1000);
}

#[test]
fn duplicated_java_strings_are_decoded_latin1_and_utf16() {
    check_duplicate_strings(&fixture("garbage.hprof.gz"));
}

/// Spawns leaksift with its stdout a pipe that is closed before anything is written.
fn run_with_closed_stdout(args: &[&str], files: &[PathBuf]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(args)
        .args(files)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn leaksift");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for leaksift")
}

#[test]
fn a_closed_stdout_ends_every_heap_command_quietly() {
    let leak = fixture("static_leak.hprof.gz");
    let shape = fixture("shape.hprof.gz");
    let heap = json(&["heap"], &leak);
    let id = heap["dominators"][0]["id_hex"]
        .as_str()
        .unwrap()
        .to_string();
    let runs: [(Vec<&str>, Vec<PathBuf>); 6] = [
        (vec!["heap", "--quiet", "--json"], vec![leak.clone()]),
        (vec!["heap", "--quiet"], vec![leak.clone()]),
        (vec!["paths", "--quiet", "--id", &id], vec![leak.clone()]),
        (
            vec!["paths", "--quiet", "--json", "--id", &id],
            vec![leak.clone()],
        ),
        (vec!["diff", "--quiet"], vec![shape.clone(), leak.clone()]),
        (
            vec!["diff", "--quiet", "--json"],
            vec![shape.clone(), leak.clone()],
        ),
    ];
    for (args, files) in runs {
        let out = run_with_closed_stdout(&args, &files);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[test]
fn truncated_and_malformed_dumps_exit_2_with_the_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let whole = leaksift_hprof::DumpFile::open(&fixture("shape.hprof.gz")).unwrap();
    let bytes = whole.bytes();
    let truncated = dir.path().join("truncated.hprof");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let stderr = one_line_error(&["heap", "--quiet"], &truncated);
    assert!(stderr.starts_with("leaksift: error: "), "{stderr}");
    assert!(stderr.contains("truncated.hprof"), "{stderr}");
    assert!(stderr.contains("at byte "), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");

    // A real dump cut at the record boundary after its first heap dump segment (jcmd writes the
    // GC roots in the last one): nothing looks broken there, but the HEAP DUMP END record is
    // missing, so the dump is truncated rather than analysed as a heap without roots.
    let mut at = bytes.iter().position(|&b| b == 0).unwrap() + 1 + 4 + 8;
    let mut after_first_segment = None;
    let mut first_segment = None;
    while at < bytes.len() && after_first_segment.is_none() {
        let len = u32::from_be_bytes(bytes[at + 5..at + 9].try_into().unwrap()) as usize;
        if bytes[at] == 0x1C {
            first_segment = Some(at);
            after_first_segment = Some(at + 9 + len);
        }
        at += 9 + len;
    }
    let boundary = after_first_segment.expect("jcmd writes heap dump segments");
    assert!(
        boundary < bytes.len() - 9,
        "the fixture has more than one segment"
    );
    let cut_at_boundary = dir.path().join("boundary.hprof");
    std::fs::write(&cut_at_boundary, &bytes[..boundary]).unwrap();
    let stderr = one_line_error(&["heap", "--quiet"], &cut_at_boundary);
    assert!(
        stderr.contains(&format!("at byte {boundary}: truncated"))
            && stderr.contains("HEAP DUMP END"),
        "{stderr}"
    );

    // Cut at the record boundary before the first heap dump segment, or after the header: no
    // heap at all, an error rather than an empty heap (both used to report "0 objects", exit 0;
    // `diff` then showed every class gone).
    let first_segment = first_segment.unwrap();
    let shape = fixture("shape.hprof.gz");
    for cut in [first_segment, 31] {
        let before_heap = dir.path().join(format!("before-heap-{cut}.hprof"));
        std::fs::write(&before_heap, &bytes[..cut]).unwrap();
        for args in [
            &["heap", "--quiet"][..],
            &["diff", "--quiet", shape.to_str().unwrap()],
        ] {
            let stderr = one_line_error(args, &before_heap);
            assert!(
                stderr.contains(&format!("before-heap-{cut}.hprof: at byte {cut}: "))
                    && stderr.contains("without a HEAP DUMP"),
                "{args:?}: {stderr}"
            );
        }
    }

    // A cut gzip stream: the error names the decompressed offset where the stream broke.
    let gz = std::fs::read(fixture("static_leak.hprof.gz")).unwrap();
    let cut_gz = dir.path().join("cut.hprof.gz");
    std::fs::write(&cut_gz, &gz[..gz.len() / 2]).unwrap();
    let stderr = one_line_error(&["heap", "--quiet"], &cut_gz);
    assert!(stderr.contains("cut.hprof.gz"), "{stderr}");
    assert!(stderr.contains("gzip"), "{stderr}");

    // The 31-byte header, then a heap dump segment holding an unknown sub-record tag at byte 40,
    // then the HEAP DUMP END record.
    let mut garbage_bytes = bytes[..31].to_vec();
    garbage_bytes.extend_from_slice(&[0x1C, 0, 0, 0, 0, 0, 0, 0, 2, 0x42, 0x42]);
    garbage_bytes.extend_from_slice(&[0x2C, 0, 0, 0, 0, 0, 0, 0, 0]);
    let garbage = dir.path().join("garbage.hprof");
    std::fs::write(&garbage, &garbage_bytes).unwrap();
    let stderr = one_line_error(&["paths", "--quiet", "--id", "1"], &garbage);
    assert!(
        stderr.contains("at byte 40: unknown heap dump sub-record tag 0x42"),
        "{stderr}"
    );
}

/// Runs `leaksift ARGS FILE`, expects exit code 2 and a one-line error, and returns it.
fn one_line_error(args: &[&str], file: &Path) -> String {
    let out = leaksift().args(args).arg(file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// Compiles `program` (with Dump.java) and runs it with `args` after the dump path, when a JDK
/// is installed (CI installs openjdk-17-jdk-headless); the fresh, uncompressed dump is read
/// memory-mapped. `None` without a JDK.
fn fresh_dump(program: &str, args: &[&str]) -> Option<(tempfile::TempDir, PathBuf)> {
    if Command::new("javac").arg("-version").output().is_err() {
        eprintln!("javac not found: skipping the {program} dump test");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let programs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/java");
    let classes = dir.path().join("classes");
    let status = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(programs.join("Dump.java"))
        .arg(programs.join(format!("{program}.java")))
        .status()
        .unwrap();
    assert!(status.success());
    let dump = dir.path().join(format!("{program}.hprof"));
    let status = Command::new("java")
        .args(["-Xmx64m", "-XX:+UseSerialGC", "-cp"])
        .arg(&classes)
        .arg(program)
        .arg(&dump)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success());
    Some((dir, dump))
}

#[test]
fn live_dump_from_a_fresh_jvm_when_a_jdk_is_installed() {
    let Some((_dir, dump)) = fresh_dump("StaticLeak", &["777"]) else {
        return;
    };
    let heap = json(&["heap"], &dump);
    assert_eq!(class_count(&heap, "StaticLeak$Session"), 777);
    let top = heap["suspects"][0]["description"].as_str().unwrap();
    assert!(top.contains("\"StaticLeak\""), "{top}");
}

/// A non-live dump (no GC first, as `jmap -dump:format=b`) of the Garbage program: the garbage
/// is left out.
#[test]
fn fresh_non_live_dump_leaves_garbage_out_when_a_jdk_is_installed() {
    let Some((_dir, dump)) = fresh_dump("Garbage", &["150", "1700"]) else {
        return;
    };
    check_garbage_left_out(&dump, 150, 1700);
    check_duplicate_strings(&dump);
}

/// A V8 snapshot and an HPROF dump, or a dump in a three-way diff, are refused from the files'
/// first bytes, before either is read (a large dump takes seconds): no progress line of a
/// loading phase comes before the error.
#[test]
fn diff_refuses_mixed_formats_and_three_dumps_before_reading_them() {
    let v8 = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/v8/shapes.heapsnapshot.gz");
    let hprof = fixture("shape.hprof.gz");
    let leak = fixture("static_leak.hprof.gz");
    let cases = [
        (
            vec![v8.clone(), hprof.clone()],
            format!(
                "leaksift: error: {} is a v8 file and {} a hprof file: only files of one format can be compared",
                v8.display(),
                hprof.display()
            ),
        ),
        (
            vec![hprof.clone(), leak.clone(), leak.clone()],
            format!(
                "leaksift: error: {}: a three-way diff matches objects by id, and this format's ids are addresses that change between dumps",
                hprof.display()
            ),
        ),
    ];
    for (files, expected) in cases {
        let out = leaksift().arg("diff").args(&files).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim_end(), expected, "no loading phase first");
    }
}

/// A dump whose one thread has `depth` frames and holds one object in a local of frame
/// `held_at` (written here: no JVM makes a 2,000-frame stack quickly and reproducibly).
fn deep_thread_dump(depth: u32, held_at: u32) -> Vec<u8> {
    fn record(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    }
    let id = |v: u64| v.to_be_bytes();
    let mut out = b"JAVA PROFILE 1.0.2\0".to_vec();
    out.extend_from_slice(&8u32.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    for (string, text) in [
        (1, "java/lang/Thread"),
        (2, "recurse"),
        (3, "Deep.java"),
        (4, "java/lang/Object"),
    ] {
        record(&mut out, 0x01, &[&id(string)[..], text.as_bytes()].concat());
    }
    for (serial, class, name) in [(1u32, 0x100u64, 1u64), (2, 0x200, 4)] {
        record(
            &mut out,
            0x02,
            &[
                &serial.to_be_bytes()[..],
                &id(class),
                &0u32.to_be_bytes(),
                &id(name),
            ]
            .concat(),
        );
    }
    let frames: Vec<u64> = (0..u64::from(depth)).map(|i| 0x10_0000 + i).collect();
    for (line, &frame) in frames.iter().enumerate() {
        let body = [
            &id(frame)[..],
            &id(2),
            &id(0),
            &id(3),
            &1u32.to_be_bytes(),
            &(line as i32 + 1).to_be_bytes(),
        ]
        .concat();
        record(&mut out, 0x04, &body);
    }
    let mut trace = [1u32.to_be_bytes(), 1u32.to_be_bytes(), depth.to_be_bytes()].concat();
    for &frame in &frames {
        trace.extend_from_slice(&id(frame));
    }
    record(&mut out, 0x05, &trace);
    let mut heap = Vec::new();
    for (class, superclass) in [(0x200u64, 0u64), (0x100, 0x200)] {
        heap.push(0x20);
        heap.extend_from_slice(&id(class));
        heap.extend_from_slice(&0u32.to_be_bytes());
        heap.extend_from_slice(&id(superclass));
        for _ in 0..5 {
            heap.extend_from_slice(&id(0));
        }
        heap.extend_from_slice(&0u32.to_be_bytes());
        heap.extend_from_slice(&[0; 6]);
    }
    for (object, class) in [(0x1000u64, 0x100u64), (0x2000, 0x200)] {
        heap.push(0x21);
        heap.extend_from_slice(&id(object));
        heap.extend_from_slice(&0u32.to_be_bytes());
        heap.extend_from_slice(&id(class));
        heap.extend_from_slice(&0u32.to_be_bytes());
    }
    heap.push(0x08);
    heap.extend_from_slice(&id(0x1000));
    heap.extend_from_slice(&[1u32.to_be_bytes(), 1u32.to_be_bytes()].concat());
    heap.push(0x03);
    heap.extend_from_slice(&id(0x2000));
    heap.extend_from_slice(&[1u32.to_be_bytes(), held_at.to_be_bytes()].concat());
    record(&mut out, 0x0c, &heap);
    record(&mut out, 0x2c, &[]);
    out
}

/// One thread of 200,000 frames made `heap` use 469 MB for an 11 MB dump (41× its size), all
/// of it JSON built for the text report too, and 769 MB with `--json`. The JSON lists the
/// 1,024 innermost frames and the deeper ones with locals, and counts the rest.
#[test]
fn a_very_deep_thread_stack_is_listed_in_part() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deep.hprof");
    std::fs::write(&file, deep_thread_dump(2000, 1500)).unwrap();
    let heap = json(&["heap"], &file);
    let thread = &heap["extra"]["threads"][0];
    let frames = thread["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 1025, "{thread}");
    assert_eq!(frames[1023]["depth"], 1023);
    assert_eq!(frames[1024]["depth"], 1500);
    assert_eq!(frames[1024]["locals"].as_array().map(Vec::len), Some(1));
    assert_eq!(thread["frames_left_out"], 2000 - 1025);
    let text = heap_text(&file);
    assert!(
        text.contains("at java.lang.Thread.recurse (Deep.java:1501)"),
        "{text}"
    );
}

/// A process that may start no thread (the user's or the container's process limit reached)
/// got a panic and an abort (status 134, a backtrace) from the first worker thread it started;
/// it is one error line and status 2 now. Needs root, to run as another user whose limit
/// applies (root's does not).
#[test]
fn no_thread_left_to_start_is_an_error_line() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // SAFETY: a getter of the process's credentials.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the process limit cannot be put on another user here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let binary = dir.path().join("leaksift");
    std::fs::copy(env!("CARGO_BIN_EXE_leaksift"), &binary).unwrap();
    let dump = dir.path().join("static_leak.hprof.gz");
    std::fs::copy(fixture("static_leak.hprof.gz"), &dump).unwrap();
    std::fs::set_permissions(&dump, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut command = Command::new(&binary);
    command.arg("heap").arg(&dump).current_dir(dir.path());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let one = libc::rlimit {
                rlim_cur: 1,
                rlim_max: 1,
            };
            if libc::setrlimit(libc::RLIMIT_NPROC, &one) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("leaksift: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("cannot start a thread"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
