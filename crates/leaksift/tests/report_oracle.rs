//! `leaksift report` against the reference tools on real programs: heaptrack_print for allocation
//! counts per call site, temporaries and peak; valgrind memcheck for the leak classes; plus the
//! figures the test programs are written to produce (tests/programs/report_audit/).
//!
//! heaptrack and valgrind run only when installed (CI installs both); otherwise the comparison
//! is skipped with a note on stderr and only the predicted figures are checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use assert_cmd::Command as Cli;
use serde_json::Value;

#[path = "support/native.rs"]
mod native;
mod support;

use native::{CLASSES, memcheck_summary, must_run, record};

fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/report_audit")
}

fn leaksift() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_leaksift"))
}

/// Whether `tool` runs here; prints why the comparison is skipped when it does not.
fn installed(tool: &str, test: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        eprintln!("{test}: skipped the {tool} comparison ({tool} is not installed)");
    }
    found
}

/// Compiles `source` (C) from the report_audit programs into `dir/name` with `flags`.
fn compile_c(dir: &Path, source: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let binary = dir.join(name);
    must_run(
        Command::new("cc")
            .args(["-g", "-O1", "-fno-omit-frame-pointer"])
            .args(flags)
            .arg("-o")
            .arg(&binary)
            .arg(source),
    );
    binary
}

fn report(trace: &Path, args: &[&str]) -> String {
    let output = leaksift()
        .arg("report")
        .arg(trace)
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn report_json(trace: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&report(trace, &all)).expect("report --json prints one JSON object")
}

/// Sums `field` of JSON stacks by innermost call site `(function, line)` in counts.c, as
/// heaptrack_print groups them.
fn by_call_site(stacks: &Value, field: &str) -> BTreeMap<(String, u64), u64> {
    let mut sums = BTreeMap::new();
    for stack in stacks.as_array().unwrap() {
        let frame = &stack["frames"][0];
        if !frame["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("/counts.c"))
        {
            continue;
        }
        let site = (
            frame["function"].as_str().unwrap().to_string(),
            frame["line"].as_u64().unwrap(),
        );
        *sums.entry(site).or_default() += stack[field].as_u64().unwrap();
    }
    sums
}

/// The counting program, built and recorded once per test.
struct Counts {
    _dir: tempfile::TempDir,
    binary: PathBuf,
    trace: PathBuf,
}

fn counts() -> Counts {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile_c(dir.path(), &programs().join("counts.c"), "counts", &[]);
    let trace = record(dir.path(), &binary);
    Counts {
        _dir: dir,
        binary,
        trace,
    }
}

/// Runs `binary` under heaptrack (data file next to it) and returns `heaptrack_print ARGS`.
fn heaptrack_print(binary: &Path, args: &[&str]) -> String {
    let data = binary.with_extension("heaptrack");
    must_run(Command::new("heaptrack").arg("-o").arg(&data).arg(binary));
    let data = ["zst", "gz"]
        .iter()
        .map(|ext| PathBuf::from(format!("{}.{ext}", data.display())))
        .find(|p| p.is_file())
        .expect("heaptrack wrote its data file");
    let print = must_run(
        Command::new("heaptrack_print")
            .arg("-f")
            .arg(&data)
            .args(args),
    );
    String::from_utf8_lossy(&print.stdout).into_owned()
}

/// heaptrack_print's per-call-site sections: `(function, line) -> count` for each site header
/// (`N calls to allocation functions … from` / `N temporary allocations of … from`, then the
/// function, then `  at FILE:LINE`) of the counting program's source.
fn heaptrack_sites(print: &str, header: &str) -> BTreeMap<(String, u64), u64> {
    let lines: Vec<&str> = print.lines().collect();
    let mut sites = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(count) = line
            .strip_suffix(" from")
            .filter(|l| l.contains(header))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let (Some(function), Some(at)) = (lines.get(i + 1), lines.get(i + 2)) else {
            continue;
        };
        let Some(line_number) = at
            .trim()
            .strip_prefix("at ")
            .filter(|at| at.contains("counts.c:"))
            .and_then(|at| at.rsplit(':').next())
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        *sites
            .entry((function.trim().to_string(), line_number))
            .or_default() += count;
    }
    sites
}

/// Line of `text` in counts.c (1-based).
fn counts_line(text: &str) -> u64 {
    let source = std::fs::read_to_string(programs().join("counts.c")).unwrap();
    source
        .lines()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("counts.c has no line with {text:?}")) as u64
        + 1
}

#[test]
fn counts_peak_temporaries_and_leaks_are_the_predicted_ones() {
    let counts = counts();
    let json = report_json(&counts.trace, &["--top", "1000"]);
    // 60 nodes + 25 temporaries + 4 (realloc chain) + 3 + 2 (peak) + 300 (recursion).
    assert_eq!(json["allocations"], 394);
    // 25 malloc/free pairs and the chain's first three blocks, each freed by the realloc that
    // follows it with no allocation in between (heaptrack counts them too).
    assert_eq!(json["temporary_allocations"], 28);
    assert_eq!(json["peak_bytes"], 1_057_328);
    assert_eq!(json["leaks"]["definitely_lost"]["blocks"], 300);
    assert_eq!(json["leaks"]["definitely_lost"]["bytes"], 9600);
    assert_eq!(json["leaks"]["still_reachable"]["blocks"], 4);
    assert_eq!(json["leaks"]["still_reachable"]["bytes"], 5864);

    let calls = by_call_site(&json["hotspots"], "allocations");
    let node_line = counts_line("return malloc(48)");
    assert_eq!(calls[&("make_node".to_string(), node_line)], 60);
    let recurse_line = counts_line("void *volatile leaked = malloc(32)");
    assert_eq!(calls[&("recurse".to_string(), recurse_line)], 300);
    // calloc(10, 100) is 1000 bytes; the aligned allocators ask for their size, not alignment.
    let sizes: BTreeMap<(String, u64), u64> = by_call_site(&json["hotspots"], "allocated_bytes");
    for (function, text, bytes) in [
        ("odd_allocators", "zeroed = calloc(10, 100)", 1000),
        ("odd_allocators", "aligned = aligned_alloc(64, 256)", 256),
        ("odd_allocators", "posix_memalign(&block, 4096, 512)", 512),
        ("realloc_chain", "chain = realloc(chain, 4096)", 4096),
    ] {
        let site = (function.to_string(), counts_line(text));
        assert_eq!(sizes.get(&site), Some(&bytes), "{text}");
    }
}

#[test]
fn allocation_and_temporary_counts_per_call_site_equal_heaptrack() {
    let test = "allocation_and_temporary_counts_per_call_site_equal_heaptrack";
    if !installed("heaptrack_print", test) || !installed("heaptrack", test) {
        return;
    }
    let counts = counts();
    let print = heaptrack_print(
        &counts.binary,
        &["-n", "1000", "-s", "1000", "-p", "0", "-a", "1", "-T", "1"],
    );

    let json = report_json(&counts.trace, &["--top", "1000"]);
    let heaptrack_calls = heaptrack_sites(&print, "calls to allocation functions");
    assert!(
        heaptrack_calls.len() >= 8,
        "heaptrack_print listed {heaptrack_calls:?}"
    );
    assert_eq!(
        by_call_site(&json["hotspots"], "allocations"),
        heaptrack_calls
    );

    let heaptrack_temporaries = heaptrack_sites(&print, "temporary allocations of");
    assert_eq!(
        by_call_site(&json["temporaries"], "temporary"),
        heaptrack_temporaries
    );
}

#[test]
fn leak_classes_equal_memcheck() {
    let test = "leak_classes_equal_memcheck";
    if !installed("valgrind", test) {
        return;
    }
    let counts = counts();
    let memcheck = memcheck_summary(&counts.binary);
    let json = report_json(&counts.trace, &[]);
    for (class, expected) in CLASSES.iter().zip(memcheck) {
        assert_eq!(
            expected,
            (
                json["leaks"][class]["blocks"].as_u64().unwrap(),
                json["leaks"][class]["bytes"].as_u64().unwrap()
            ),
            "{class}"
        );
    }
}

/// Before the fix the one-line site label skipped every frame whose name started with
/// `malloc`/`calloc`/`realloc`, so the chain's blocks showed as allocated in `main`.
#[test]
fn site_label_keeps_a_caller_named_like_an_allocator() {
    let counts = counts();
    let text = report(&counts.trace, &["--top", "1000"]);
    let peak_row = text
        .lines()
        .skip_while(|l| !l.starts_with("Held at the peak"))
        .find(|l| l.trim_start().starts_with("4.00 KiB"))
        .unwrap_or_else(|| panic!("no 4 KiB row in the peak table:\n{text}"));
    let line = counts_line("chain = realloc(chain, 4096)");
    assert!(
        peak_row.contains(&format!("realloc_chain (counts.c:{line})")),
        "{peak_row}"
    );
}

/// Before the fix a recursion deeper than the recorder's 64 frames looked like a complete
/// stack rooted 64 calls deep; now the JSON, the text and the flamegraph say it was cut.
#[test]
fn deep_recursion_says_the_stack_was_cut() {
    let counts = counts();
    let json = report_json(&counts.trace, &["--top", "1000"]);
    let stacks = json["leak_stacks"].as_array().unwrap();
    let deepest = stacks.iter().max_by_key(|s| s["blocks"].as_u64()).unwrap();
    assert_eq!(deepest["frames"].as_array().unwrap().len(), 64);
    assert_eq!(deepest["stack_truncated"], true);
    // The shallow recursion levels reach `main` and are complete.
    let shallow = stacks
        .iter()
        .find(|s| s["frames"].as_array().unwrap().len() == 2)
        .expect("a stack of recurse <- main");
    assert_eq!(shallow["stack_truncated"], false);
    // A stack is cut exactly when it did not reach main: the levels whose 64 recorded frames
    // still include main (the C runtime frames below it are what was cut) are complete.
    for stack in stacks {
        let frames = stack["frames"].as_array().unwrap();
        let reaches_main = frames.last().unwrap()["function"] == "main";
        assert_eq!(stack["stack_truncated"], !reaches_main, "{frames:?}");
    }
    assert!(
        stacks
            .iter()
            .any(|s| s["frames"].as_array().unwrap().len() >= 62 && s["stack_truncated"] == false)
    );

    let text = report(&counts.trace, &["--top", "1"]);
    assert!(
        text.contains("deeper frames not recorded (the recorder keeps 64 frames)"),
        "{text}"
    );

    let svg = counts.trace.with_extension("svg");
    report(
        &counts.trace,
        &[
            "--flamegraph",
            svg.to_str().unwrap(),
            "--flamegraph-metric",
            "allocations",
        ],
    );
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("[stack cut: deeper frames not recorded]"));
}

/// A module recorded without a build-id, rebuilt from changed source after the trace: before the
/// fix the report read the new binary and printed its (wrong) functions and lines silently, and
/// until format version 6 it still did for a rebuild in the second the trace started.
#[test]
fn binary_rebuilt_without_build_id_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let source = programs().join("counts.c");
    let binary = compile_c(dir.path(), &source, "nobuildid", &["-Wl,--build-id=none"]);
    let trace = record(dir.path(), &binary);

    // Rebuild with every line moved down by three and a function in front of the others.
    let shifted = dir.path().join("shifted.c");
    let original = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &shifted,
        format!("static int pad(int x) {{ return x * 7; }}\nint (*keep)(int) = pad;\n\n{original}"),
    )
    .unwrap();
    compile_c(dir.path(), &shifted, "nobuildid", &["-Wl,--build-id=none"]);
    // A rebuild 1 ms after the trace started, within the same second: the trace's start
    // nanoseconds tell it apart (to the second, it was trusted and its lines printed).
    let header = leaksift_trace::TraceReader::open(&trace)
        .unwrap()
        .header()
        .clone();
    let started = SystemTime::UNIX_EPOCH
        + Duration::new(header.start_unix_s, header.start_subsec_nanos.unwrap());
    std::fs::File::options()
        .write(true)
        .open(&binary)
        .unwrap()
        .set_modified(started + Duration::from_millis(1))
        .unwrap();

    let json = report_json(&trace, &[]);
    let frames: Vec<&Value> = json["hotspots"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["frames"].as_array().unwrap())
        .filter(|f| f["module"].as_str() == binary.to_str())
        .collect();
    assert!(!frames.is_empty());
    assert!(
        frames
            .iter()
            .all(|f| f["function"] == "??" && f["line"].is_null()),
        "frames read from the rebuilt binary: {frames:?}"
    );
    let unresolved = json["unresolved_modules"].as_array().unwrap();
    assert!(
        unresolved
            .iter()
            .any(|m| m["module"].as_str() == binary.to_str()
                && m["reason"].as_str().unwrap().contains("without a build-id")),
        "{unresolved:?}"
    );
    let text = report(&trace, &[]);
    assert!(text.contains("Frames shown as ?? (no symbols):"), "{text}");
}

/// A rebuilt binary with a build-id is refused by content (that always worked); the report now
/// says why its frames are `??` and where it looked for the recorded build's debug file.
#[test]
fn rebuilt_binary_with_build_id_is_named_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let source = programs().join("counts.c");
    let binary = compile_c(dir.path(), &source, "withid", &[]);
    let trace = record(dir.path(), &binary);
    compile_c(dir.path(), &source, "withid", &["-O2"]);
    assert_unresolved(
        &report_json(&trace, &[]),
        &binary,
        &["another build", ".build-id/"],
    );
}

/// `report --json` lists `binary` among the unresolved modules, with a reason containing every
/// one of `says`.
fn assert_unresolved(json: &Value, binary: &Path, says: &[&str]) {
    let unresolved = json["unresolved_modules"].as_array().unwrap();
    assert!(
        unresolved
            .iter()
            .any(|m| m["module"].as_str() == binary.to_str()
                && says
                    .iter()
                    .all(|s| m["reason"].as_str().unwrap().contains(s))),
        "{unresolved:?}"
    );
}

/// rustc unrolls the program's loops, so each iteration calls from its own instruction and the
/// recorder sees one stack per iteration. Before the fix every such stack was its own row of one
/// allocation (as were the leak and temporary rows); rows now merge stacks that symbolize to the
/// same frames, as heaptrack_print merges by location.
#[test]
fn unrolled_loop_is_one_call_site() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("generics");
    must_run(
        Command::new("rustc")
            .args([
                "-g",
                "-C",
                "opt-level=1",
                "-C",
                "force-frame-pointers=yes",
                "-o",
            ])
            .arg(&binary)
            .arg(programs().join("generics.rs")),
    );
    let trace = record(dir.path(), &binary);
    let json = report_json(&trace, &["--top", "1000"]);
    let source = std::fs::read_to_string(programs().join("generics.rs")).unwrap();
    let line_of = |text: &str| source.lines().position(|l| l.contains(text)).unwrap() as u64 + 1;
    // The caller's frame (`generics::main` at the loop's line) tells the two loops apart.
    let rows_called_from =
        |list: &str, line: u64| -> Vec<(u64, u64, u64)> {
            json[list]
                .as_array()
                .unwrap()
                .iter()
                .filter(|row| {
                    row["frames"].as_array().unwrap().iter().any(|f| {
                        f["function"] == "generics::main" && f["line"].as_u64() == Some(line)
                    })
                })
                .map(|row| {
                    (
                        row["allocations"].as_u64().unwrap_or(0),
                        row["blocks"].as_u64().unwrap_or(0),
                        row["temporary"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        };
    for (list, call, expected) in [
        ("hotspots", "boxed::<u64>() as", (4, 0, 0)),
        ("hotspots", "boxed::<[u8; 32]>() as", (6, 0, 0)),
        ("leak_stacks", "boxed::<u64>() as", (0, 4, 0)),
        ("leak_stacks", "boxed::<[u8; 32]>() as", (0, 6, 0)),
        ("temporaries", "with_closure(5);", (5, 0, 5)),
    ] {
        assert_eq!(
            rows_called_from(list, line_of(call)),
            [expected],
            "{list}: {call}"
        );
    }
}

/// blazesym handed every name to the C++ demangler, which reads a C function named `b`, `i` or
/// `f` as the type `bool`, `int` or `float`: before the fix the report named them so.
#[test]
fn c_functions_named_like_type_codes_keep_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile_c(
        dir.path(),
        &programs().join("short_names.c"),
        "short_names",
        &[],
    );
    let trace = record(dir.path(), &binary);
    let json = report_json(&trace, &[]);
    // b() is called from two lines of main: two rows.
    let mut allocating: BTreeMap<String, u64> = BTreeMap::new();
    for hotspot in json["hotspots"].as_array().unwrap() {
        let frame = &hotspot["frames"][0];
        if frame["module"].as_str() == binary.to_str() {
            *allocating
                .entry(frame["function"].as_str().unwrap().to_string())
                .or_default() += hotspot["allocations"].as_u64().unwrap();
        }
    }
    let expected: BTreeMap<String, u64> = [("b", 2), ("f", 1), ("i", 1)]
        .iter()
        .map(|&(name, count)| (name.to_string(), count))
        .collect();
    assert_eq!(allocating, expected);
}

/// memcheck's HEAP SUMMARY `total heap usage: A allocs, F frees, B bytes allocated`.
fn memcheck_heap_usage(binary: &Path) -> (u64, u64, u64) {
    let output = Command::new("valgrind")
        .arg("--run-libc-freeres=no")
        .arg(binary)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("total heap usage:"))
        .unwrap_or_else(|| panic!("no heap usage in {log}"));
    let numbers: Vec<u64> = line[line.find("usage:").unwrap()..]
        .split_whitespace()
        .filter_map(|w| w.replace(',', "").parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

/// Allocation, free and byte totals equal memcheck's, through realloc chains, realloc(NULL, n),
/// realloc(p, 0) (a free), a failed realloc (nothing happens), calloc and the aligned allocators.
#[test]
fn heap_usage_totals_equal_memcheck() {
    let dir = tempfile::tempdir().unwrap();
    let edges = compile_c(
        dir.path(),
        &programs().join("realloc_edges.c"),
        "realloc_edges",
        &["-Wno-alloc-size-larger-than"],
    );
    let counts = compile_c(dir.path(), &programs().join("counts.c"), "counts", &[]);
    // Predicted: realloc_edges.c's header; counts.c's 394 calls, 90 frees.
    let predicted = [(edges, (3, 1, 600)), (counts, (394, 90, 1_070_532))];
    let with_memcheck = installed("valgrind", "heap_usage_totals_equal_memcheck");
    for (binary, expected) in predicted {
        let json = report_json(&record(dir.path(), &binary), &[]);
        let ours = (
            json["allocations"].as_u64().unwrap(),
            json["frees"].as_u64().unwrap(),
            json["allocated_bytes"].as_u64().unwrap(),
        );
        assert_eq!(ours, expected, "{}", binary.display());
        if with_memcheck {
            assert_eq!(ours, memcheck_heap_usage(&binary), "{}", binary.display());
        }
        if binary.ends_with("realloc_edges") {
            assert_eq!(json["live_at_end"]["blocks"], 2);
            assert_eq!(json["leaks"]["still_reachable"]["bytes"], 400);
        }
    }
}

/// A binary stripped before it ran, its debug info in a separate file found later through the
/// `.gnu_debuglink` name or the recorded build-id under `--debug-dir`: the same call sites,
/// functions and lines as the unstripped build.
#[test]
fn stripped_binary_symbolizes_through_debuglink_and_build_id_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile_c(dir.path(), &programs().join("counts.c"), "stripped", &[]);
    let expected = by_call_site(
        &report_json(&record(dir.path(), &binary), &["--top", "1000"])["hotspots"],
        "allocations",
    );
    // For `diff`: a run of an unstripped copy of the binary (same file name, another directory,
    // left unmodified so its symbols stay usable).
    let copy_dir = dir.path().join("unstripped");
    std::fs::create_dir(&copy_dir).unwrap();
    let copy = copy_dir.join("stripped");
    std::fs::copy(&binary, &copy).unwrap();
    let unstripped = record(&copy_dir, &copy);
    let debug_file = dir.path().join("stripped.debug");
    must_run(
        Command::new("objcopy")
            .arg("--only-keep-debug")
            .arg(&binary)
            .arg(&debug_file),
    );
    must_run(
        Command::new("objcopy")
            .args(["--strip-all"])
            .arg(format!("--add-gnu-debuglink={}", debug_file.display()))
            .arg(&binary),
    );
    let trace = record(dir.path(), &binary);

    // Found through the debuglink name in --debug-dir.
    let by_link = dir.path().join("by-link");
    std::fs::create_dir(&by_link).unwrap();
    std::fs::rename(&debug_file, by_link.join("stripped.debug")).unwrap();
    let via_link = report_json(
        &trace,
        &["--top", "1000", "--debug-dir", by_link.to_str().unwrap()],
    );
    assert_eq!(by_call_site(&via_link["hotspots"], "allocations"), expected);

    // Found through the recorded build-id.
    let id = String::from_utf8(must_run(Command::new("readelf").arg("-n").arg(&binary)).stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: ").map(str::to_string))
        .expect("the binary has a build-id");
    let by_id = dir.path().join("by-id");
    let id_dir = by_id.join(".build-id").join(&id[..2]);
    std::fs::create_dir_all(&id_dir).unwrap();
    std::fs::rename(
        by_link.join("stripped.debug"),
        id_dir.join(format!("{}.debug", &id[2..])),
    )
    .unwrap();
    let via_id = report_json(
        &trace,
        &["--top", "1000", "--debug-dir", by_id.to_str().unwrap()],
    );
    assert_eq!(by_call_site(&via_id["hotspots"], "allocations"), expected);
    // The stripped binary without its debuglink, still at its recorded path (same build-id):
    // the build-id debug file under --debug-dir is preferred to it.
    must_run(
        Command::new("objcopy")
            .arg("--remove-section=.gnu_debuglink")
            .arg(&binary),
    );
    let in_place = report_json(
        &trace,
        &["--top", "1000", "--debug-dir", by_id.to_str().unwrap()],
    );
    assert_eq!(by_call_site(&in_place["hotspots"], "allocations"), expected);
    // Without either, no frame claims a line of counts.c.
    let without = report_json(&trace, &["--top", "1000"]);
    assert!(by_call_site(&without["hotspots"], "allocations").is_empty());
    // Nor is the tracer's own wrapper of `main` shown among the unsymbolized frames (with
    // symbols, the stack stops at `main` before it).
    for hotspot in without["hotspots"].as_array().unwrap() {
        for frame in hotspot["frames"].as_array().unwrap() {
            let module = frame["module"].as_str().unwrap_or("");
            assert!(!module.contains("libleaksift_preload"), "{frame}");
        }
    }

    // `diff` symbolizes through the same directories: the stripped run's call sites then match
    // the unstripped run's by function, file and line, and only its frames without symbols differ.
    let changed_sites = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
            .args(["diff", "--json", "-q"])
            .args(extra)
            .arg(&unstripped)
            .arg(&trace)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        json["sites"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|site| {
                site["frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["file"].as_str().is_some_and(|f| f.ends_with("counts.c")))
            })
            .count()
    };
    assert!(changed_sites(&[]) > 0, "without symbols the sites differ");
    assert_eq!(changed_sites(&["--debug-dir", by_id.to_str().unwrap()]), 0);
}

/// A frame chain as `(function, line)` pairs of the frames in `file`, and its count.
type Chain = (u64, Vec<(String, u64)>);

/// heaptrack_print's MOST CALLS section (run with `-t 0` for full template names) as chains of
/// the sites whose innermost located frame is in `file`: the site's frames, then each backtrace.
fn heaptrack_chains(print: &str, file: &str) -> Vec<Chain> {
    let section = print
        .split("MOST CALLS TO ALLOCATION FUNCTIONS")
        .nth(1)
        .expect("a MOST CALLS section");
    let section = section.split("\n\n\n").next().unwrap();
    let mut chains = Vec::new();
    for block in section.split("\n\n") {
        let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
        let Some(split) = lines.iter().position(|l| l.contains(" calls with ")) else {
            continue;
        };
        // (function, "FILE:LINE" or None) in order.
        let frames = |lines: &[&str]| -> Vec<(String, Option<String>)> {
            let mut frames: Vec<(String, Option<String>)> = Vec::new();
            for line in lines {
                let trimmed = line.trim();
                if let Some(at) = trimmed.strip_prefix("at ") {
                    if let Some(last) = frames.last_mut() {
                        last.1 = Some(at.to_string());
                    }
                } else if !trimmed.starts_with("in ") {
                    frames.push((trimmed.to_string(), None));
                }
            }
            frames
        };
        let site = frames(&lines[1..split]);
        if !site
            .iter()
            .find_map(|(_, at)| at.as_deref())
            .is_some_and(|at| at.contains(file))
        {
            continue;
        }
        let mut starts: Vec<usize> = (split..lines.len())
            .filter(|&i| lines[i].contains(" calls with "))
            .collect();
        starts.push(lines.len());
        for pair in starts.windows(2) {
            let count: u64 = lines[pair[0]]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let chain = site
                .iter()
                .cloned()
                .chain(frames(&lines[pair[0] + 1..pair[1]]))
                .filter_map(|(function, at)| {
                    let at = at?;
                    let (path, line) = at.rsplit_once(':')?;
                    path.ends_with(file)
                        .then(|| (function, line.parse().unwrap()))
                })
                .collect();
            chains.push((count, chain));
        }
    }
    chains.sort();
    chains
}

/// The same chains from the report's hotspots: rows whose innermost frame with a source file is
/// in `file` (the C++ `operator new` in libstdc++ has none).
fn report_chains(json: &Value, file: &str) -> Vec<Chain> {
    let mut chains: Vec<Chain> = json["hotspots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| {
            row["frames"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|f| f["file"].as_str())
                .is_some_and(|f| f.ends_with(file))
        })
        .map(|row| {
            let chain = row["frames"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["file"].as_str().is_some_and(|f| f.ends_with(file)))
                .map(|f| {
                    (
                        f["function"].as_str().unwrap().to_string(),
                        f["line"].as_u64().unwrap(),
                    )
                })
                .collect();
            (row["allocations"].as_u64().unwrap(), chain)
        })
        .collect();
    chains.sort();
    chains
}

/// C++ through class templates, a lambda, an always-inlined helper and std::thread workers: the
/// allocation counts and every frame in the program's source (demangled names with template
/// arguments, inlined frames, lines) equal heaptrack_print's, frame by frame.
#[test]
fn cpp_frames_and_counts_equal_heaptrack() {
    let test = "cpp_frames_and_counts_equal_heaptrack";
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("templates");
    must_run(
        Command::new("c++")
            .args(["-g", "-O2", "-fno-omit-frame-pointer", "-pthread", "-o"])
            .arg(&binary)
            .arg(programs().join("templates.cpp")),
    );
    let json = report_json(&record(dir.path(), &binary), &["--top", "1000"]);
    let ours = report_chains(&json, "templates.cpp");
    let chain = |count: u64, frames: &[(&str, u64)]| -> Chain {
        (
            count,
            frames.iter().map(|&(f, l)| (f.to_string(), l)).collect(),
        )
    };
    for expected in [
        chain(7, &[("Pool<Widget>::make()", 16), ("main", 35)]),
        chain(5, &[("Pool<double>::make()", 16), ("main", 38)]),
        chain(
            3,
            &[("inlined_helper", 20), ("operator()", 40), ("main", 42)],
        ),
        chain(40, &[("worker(int)", 26)]),
    ] {
        assert!(ours.contains(&expected), "{expected:?} not in {ours:?}");
    }
    if !installed("heaptrack_print", test) || !installed("heaptrack", test) {
        return;
    }
    let print = heaptrack_print(
        &binary,
        &["-t", "0", "-n", "1000", "-s", "1000", "-p", "0", "-T", "0"],
    );
    let theirs = heaptrack_chains(&print, "templates.cpp");
    assert_eq!(ours, theirs);
}

/// The flamegraph's root (`all`) weighs what the JSON says: lost bytes (definitely, indirectly
/// and possibly lost; heaptrack's "leaked" flamegraph also counts still-reachable blocks), bytes
/// at the peak, allocations.
#[test]
fn flamegraph_totals_equal_the_json() {
    let counts = counts();
    let json = report_json(&counts.trace, &[]);
    let lost = ["definitely_lost", "indirectly_lost", "possibly_lost"]
        .iter()
        .map(|class| json["leaks"][class]["bytes"].as_u64().unwrap())
        .sum::<u64>();
    for (metric, total, unit) in [
        ("leaked", lost, "bytes"),
        ("peak", json["peak_bytes"].as_u64().unwrap(), "bytes"),
        (
            "allocations",
            json["allocations"].as_u64().unwrap(),
            "allocations",
        ),
    ] {
        let svg = counts.trace.with_extension(format!("{metric}.svg"));
        report(
            &counts.trace,
            &[
                "--flamegraph",
                svg.to_str().unwrap(),
                "--flamegraph-metric",
                metric,
            ],
        );
        let svg = std::fs::read_to_string(&svg).unwrap();
        let total = total
            .to_string()
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(",");
        let root = format!("<title>all ({total} {unit}, 100%)</title>");
        assert!(svg.contains(&root), "{metric}: no {root}");
    }
}

/// The keys of docs/json.md's report table, with `a`, `b` rows split.
fn documented_report_keys() -> std::collections::BTreeSet<String> {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/json.md"))
            .unwrap();
    let section = docs
        .split("### report (`leaksift.report.v1`)")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .flat_map(|l| {
            let cell = l.split(" |").next().unwrap().to_string();
            cell.split(", ")
                .map(|k| k.trim_matches('`').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every key `report --json` prints is documented in docs/json.md and every documented key is
/// printed; stack rows and frames have the documented fields.
#[test]
fn json_keys_equal_docs() {
    let counts = counts();
    let json = report_json(&counts.trace, &["--fail-on-leak", "1MiB"]);
    let printed: std::collections::BTreeSet<String> =
        json.as_object().unwrap().keys().cloned().collect();
    assert_eq!(printed, documented_report_keys());
    assert_eq!(json.as_object().unwrap().keys().next().unwrap(), "schema");
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let strings = |names: &[&str]| -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(
        keys(&json["leak_stacks"][0]),
        strings(&[
            "kind",
            "blocks",
            "bytes",
            "suppressed_by",
            "frames",
            "stack_truncated"
        ])
    );
    assert_eq!(
        keys(&json["peak_stacks"][0]),
        strings(&["bytes", "frames", "stack_truncated"])
    );
    for list in ["hotspots", "temporaries"] {
        assert_eq!(
            keys(&json[list][0]),
            strings(&[
                "allocations",
                "allocated_bytes",
                "temporary",
                "frames",
                "stack_truncated"
            ])
        );
    }
    assert_eq!(
        keys(&json["hotspots"][0]["frames"][0]),
        strings(&["function", "file", "line", "module", "offset", "inlined"])
    );
    assert_eq!(
        keys(&json["fail_on_leak"]),
        strings(&["budget_bytes", "lost_bytes", "failed"])
    );
    assert_eq!(
        keys(&json["scan"]),
        strings(&[
            "time_s",
            "trigger",
            "unmatched_blocks",
            "allocated_during_scan"
        ])
    );
    assert_eq!(keys(&json["growth"]), strings(&["samples", "sites"]));
}

/// `--fail-on-leak BYTES` fails only above the budget; suppressions (LSan `TemplateMatch`:
/// substring, `^`/`$` anchors, `*`) over function, file and module names take blocks out of it.
#[test]
fn fail_on_leak_budget_and_suppression_edges() {
    let counts = counts();
    let run = |args: &[&str]| -> (i32, Value) {
        let output = leaksift()
            .arg("report")
            .arg(&counts.trace)
            .args(["--quiet", "--json"])
            .args(args)
            .output()
            .unwrap();
        let json = serde_json::from_slice(&output.stdout).expect("JSON even when failing");
        (output.status.code().unwrap(), json)
    };
    // 9600 bytes definitely lost (the recursion), nothing indirectly lost.
    assert_eq!(run(&["--fail-on-leak", "9600"]).0, 0);
    assert_eq!(run(&["--fail-on-leak", "9599"]).0, 1);
    assert_eq!(run(&["--fail-on-leak"]).0, 1);
    let dir = tempfile::tempdir().unwrap();
    for (pattern, suppressed) in [
        ("recurse", true),
        ("^recurse$", true),
        ("^recur", true),
        ("curse$", true),
        ("^curse", false),
        // As sanitizer_common: `$` ends the match, whatever follows it.
        ("recurse$x", true),
        ("re*se", true),
        ("*counts.c", true),
        ("report_audit/counts.c", true),
        ("counts.c$", true),
        ("counts.h", false),
        ("make_node", false),
    ] {
        let file = dir.path().join("supp");
        std::fs::write(&file, format!("# test\n\nleak:{pattern}\n")).unwrap();
        let (status, json) = run(&["--fail-on-leak", "--suppressions", file.to_str().unwrap()]);
        assert_eq!(status, if suppressed { 0 } else { 1 }, "leak:{pattern}");
        let unsuppressed = json["unsuppressed"]["definitely_lost"]["bytes"]
            .as_u64()
            .unwrap();
        assert_eq!(
            unsuppressed,
            if suppressed { 0 } else { 9600 },
            "leak:{pattern}"
        );
        // The totals by class never change.
        assert_eq!(json["leaks"]["definitely_lost"]["bytes"], 9600);
    }
    // An outer frame cannot match a stack the recorder cut before reaching it (as with LSan's
    // malloc_context_size): `leak:^main$` leaves the 237 blocks of the 64-frame stack. (Anchored:
    // a bare `main` is a substring match on file and module paths too, and a checkout under a
    // directory named `main` would suppress everything.)
    let file = dir.path().join("main.supp");
    std::fs::write(&file, "leak:^main$\n").unwrap();
    let (status, json) = run(&["--fail-on-leak", "--suppressions", file.to_str().unwrap()]);
    assert_eq!(status, 1);
    assert_eq!(json["unsuppressed"]["definitely_lost"]["bytes"], 237 * 32);
}

/// The recorded build itself, stripped after the run (`objcopy --strip-all`, as a release
/// pipeline does): its frames are `??`, and the report now says why and where it looked for
/// the debug file (it listed nothing, while a deleted binary was explained).
#[test]
fn a_stripped_binary_of_the_recorded_build_is_named_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile_c(dir.path(), &programs().join("counts.c"), "stripped", &[]);
    let trace = record(dir.path(), &binary);
    let status = std::process::Command::new("objcopy")
        .arg("--strip-all")
        .arg(&binary)
        .status()
        .unwrap();
    assert!(status.success());
    assert_unresolved(
        &report_json(&trace, &[]),
        &binary,
        &["no symbol", ".build-id/"],
    );
}
