//! `leaksift report` end to end.
//!
//! Two kinds of tests:
//! * traces written with `leaksift_trace::TraceWriter` whose stacks point into a real binary
//!   compiled here (exit codes, suppressions, truncation, corruption, JSON shape, flamegraph
//!   escaping), independent of the recorder;
//! * `leaksift record` of real C, C++ and Rust programs, compared with valgrind memcheck's leak
//!   summary and checked frame by frame down to `main`.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::Command as Cli;
use leaksift_trace::TraceWriter;
use leaksift_trace::model::{
    AllocKind, LeakClass, LeakScan, Module, ModuleId, ProcessEnd, ScanTrigger, ScannedBlock,
    StackId, ThreadId, TraceHeader, TraceTime,
};
use serde_json::Value;

#[path = "support/native.rs"]
mod native;
mod support;

use native::{CLASSES, memcheck_summary, must_run, record};

// ---------------------------------------------------------------------------------------------
// Harness

fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/native")
}

fn leaksift() -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_leaksift"))
}

/// Runs `leaksift report TRACE ARGS…`.
fn report(trace: &Path, args: &[&str]) -> std::process::Output {
    leaksift()
        .arg("report")
        .arg(trace)
        .args(args)
        .output()
        .unwrap()
}

/// Runs `leaksift record -o TRACE -- BINARY ARGS…`, whatever its exit status.
fn record_output(trace: &Path, binary: &Path, args: &[&str]) -> std::process::Output {
    support::ensure_preload();
    leaksift()
        .arg("record")
        .arg("-o")
        .arg(trace)
        .arg("--")
        .arg(binary)
        .args(args)
        .output()
        .unwrap()
}

/// A path as a command-line argument.
fn path(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Compiles one test program with `compiler` and `flags` into `dir`.
fn compile(dir: &Path, compiler: &str, source: &str, name: &str, flags: &[&str]) -> PathBuf {
    let binary = dir.join(name);
    must_run(
        Command::new(compiler)
            .args(flags)
            .arg("-o")
            .arg(&binary)
            .arg(programs().join(source)),
    );
    binary
}

/// ELF address of the symbol whose (mangled) name satisfies `wanted`.
fn symbol_address(binary: &Path, wanted: impl Fn(&str) -> bool) -> u64 {
    let listing = must_run(Command::new("nm").arg(binary)).stdout;
    String::from_utf8(listing)
        .unwrap()
        .lines()
        .find_map(|line| {
            let mut parts = line.split_whitespace();
            let (address, _, name) = (parts.next()?, parts.next()?, parts.next()?);
            wanted(name).then(|| u64::from_str_radix(address, 16).unwrap())
        })
        .unwrap_or_else(|| panic!("symbol not found in {}", binary.display()))
}

/// 1-based line of the `line:NAME` marker in a test program.
fn marker_line(source: &str, name: &str) -> u32 {
    let text = std::fs::read_to_string(programs().join(source)).unwrap();
    let marker = format!("line:{name} ");
    let marker_end = format!("line:{name}");
    text.lines()
        .position(|l| l.contains(&marker) || l.trim_end().ends_with(&marker_end))
        .map(|i| i as u32 + 1)
        .unwrap_or_else(|| panic!("no marker line:{name} in {source}"))
}

fn build_id(binary: &Path) -> Option<Vec<u8>> {
    let notes = must_run(Command::new("readelf").arg("-n").arg(binary)).stdout;
    let notes = String::from_utf8(notes).unwrap();
    let hex = notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))?;
    Some(
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect(),
    )
}

const BIAS: u64 = 0x5600_0000_0000;
const MAIN_THREAD: ThreadId = ThreadId(0);

fn module_at(binary: &Path, id: u32, base: u64) -> Module {
    Module {
        id: ModuleId(id),
        path: binary.display().to_string(),
        build_id: build_id(binary),
        base,
        ranges: vec![(base, base + 0x10_0000)],
    }
}

fn header(command: &str) -> TraceHeader {
    TraceHeader {
        format_version: leaksift_trace::format::FORMAT_VERSION,
        pid: 4242,
        command: vec![command.to_string()],
        start_unix_s: 1_700_000_000,
        start_subsec_nanos: Some(250_000_000),
        page_size: 4096,
        traces_mmap: false,
    }
}

fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn class(json: &Value, name: &str) -> (u64, u64) {
    let c = &json["leaks"][name];
    (c["blocks"].as_u64().unwrap(), c["bytes"].as_u64().unwrap())
}

fn functions(frames: &Value) -> Vec<String> {
    frames
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Synthetic traces over a real binary

/// A trace of `stacks.c`'s functions: definitely lost 100 + 48 B, indirectly lost 40 B, possibly
/// lost 64 B and still reachable 32 B, plus a temporary allocation. `complete` adds the exit
/// scan and the end record.
struct Synthetic {
    _dir: tempfile::TempDir,
    trace: PathBuf,
    dir: PathBuf,
}

fn synthetic(complete: bool) -> Synthetic {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(dir.path(), "cc", "stacks.c", "stacks", &["-g", "-O0"]);
    let at = |name: &str| BIAS + symbol_address(&binary, |n| n == name) + 9;
    let trace = dir.path().join("synthetic.trace");
    let file = std::fs::File::create(&trace).unwrap();
    let mut writer = TraceWriter::new(file, &header(&binary.display().to_string())).unwrap();
    writer.module_loaded(&module_at(&binary, 0, BIAS)).unwrap();
    let deep = [
        at("inner_alloc"),
        at("middle_call"),
        at("outer_call"),
        at("main"),
        0xdead_0000,
    ];
    writer.stack(StackId(1), &deep).unwrap();
    writer.stack(StackId(2), &[0x1234, at("main")]).unwrap();
    let mut time = 1_000u64;
    let mut alloc = |w: &mut TraceWriter<std::fs::File>, address: u64, size: u64, stack: u32| {
        time += 1_000;
        w.alloc(
            TraceTime(time),
            MAIN_THREAD,
            address,
            size,
            StackId(stack),
            AllocKind::Malloc,
        )
        .unwrap();
    };
    alloc(&mut writer, 0x1000, 100, 1);
    alloc(&mut writer, 0x2000, 48, 1);
    alloc(&mut writer, 0x3000, 40, 1);
    alloc(&mut writer, 0x4000, 64, 2);
    alloc(&mut writer, 0x5000, 32, 2);
    alloc(&mut writer, 0x6000, 7, 2);
    writer.free(TraceTime(20_000), MAIN_THREAD, 0x6000).unwrap();
    if complete {
        let blocks = [
            (0x1000, LeakClass::DefinitelyLost),
            (0x2000, LeakClass::DefinitelyLost),
            (0x3000, LeakClass::IndirectlyLost),
            (0x4000, LeakClass::PossiblyLost),
            (0x5000, LeakClass::StillReachable),
        ];
        writer
            .leak_scan(&LeakScan {
                time: TraceTime(30_000),
                trigger: ScanTrigger::Exit,
                blocks: blocks
                    .iter()
                    .map(|&(address, class)| ScannedBlock { address, class })
                    .collect(),
            })
            .unwrap();
        writer
            .end(TraceTime(31_000), ProcessEnd::Exited(0))
            .unwrap();
    }
    writer.finish().unwrap();
    Synthetic {
        dir: dir.path().to_path_buf(),
        trace,
        _dir: dir,
    }
}

#[test]
fn json_report_of_a_synthetic_trace() {
    let t = synthetic(true);
    let output = report(&t.trace, &["--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = json_of(&output);
    assert_eq!(json["schema"], "leaksift.report.v1");
    let first_key = String::from_utf8_lossy(&output.stdout);
    assert!(first_key.starts_with("{\"schema\":"));
    assert_eq!(json["truncated"], false);
    assert_eq!(json["exit_status"], 0);
    assert_eq!(json["allocations"], 6);
    assert_eq!(json["frees"], 1);
    assert_eq!(json["temporary_allocations"], 1);
    assert_eq!(json["peak_bytes"], 291);
    assert_eq!(class(&json, "definitely_lost"), (2, 148));
    assert_eq!(class(&json, "indirectly_lost"), (1, 40));
    assert_eq!(class(&json, "possibly_lost"), (1, 64));
    assert_eq!(class(&json, "still_reachable"), (1, 32));

    let stacks = json["leak_stacks"].as_array().unwrap();
    assert_eq!(stacks.len(), 4);
    assert_eq!(stacks[0]["kind"], "definitely_lost");
    assert_eq!(stacks[0]["blocks"], 2);
    assert_eq!(stacks[0]["bytes"], 148);
    // Outermost frame last, cut below main (the 0xdead0000 frame is gone).
    assert_eq!(
        functions(&stacks[0]["frames"]),
        ["inner_alloc", "middle_call", "outer_call", "main"]
    );
    for frame in stacks[0]["frames"].as_array().unwrap() {
        assert!(
            frame["file"].as_str().unwrap().ends_with("stacks.c"),
            "{frame}"
        );
        assert!(frame["line"].as_u64().unwrap() > 0);
    }
    // An address outside every module is `??`, never an error.
    let possibly = &stacks[2];
    assert_eq!(possibly["kind"], "possibly_lost");
    assert_eq!(functions(&possibly["frames"]), ["??", "main"]);
    assert_eq!(possibly["frames"][0]["module"], "??");
    assert_eq!(json["fail_on_leak"], Value::Null);
    assert_eq!(json["hotspots"][0]["allocations"], 3);
}

/// `--json` named the flamegraph and suppressions files it had failed to write; it names only
/// files written, and the run still ends with the write error (exit 2).
#[test]
fn json_names_only_the_files_it_wrote() {
    let t = synthetic(true);
    let output = report(
        &t.trace,
        &[
            "--json",
            "--flamegraph",
            "/nonexistent/dir/f.svg",
            "--gen-suppressions",
            "/nonexistent/dir/g.supp",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let json = json_of(&output);
    assert_eq!(json["flamegraph"], Value::Null);
    assert_eq!(json["generated_suppressions"], Value::Null);
    let svg = t.dir.join("f.svg");
    let output = report(&t.trace, &["--json", "--flamegraph", path(&svg)]);
    assert!(output.status.success());
    assert_eq!(json_of(&output)["flamegraph"], path(&svg));
}

#[test]
fn memory_from_outside_malloc_is_pointed_out_unless_it_is_traced() {
    // untraced.c maps and touches 96 MiB and mallocs 64 bytes.
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(dir.path(), "gcc", "untraced.c", "untraced", &["-O1"]);
    let trace = record(dir.path(), &binary);
    let json = json_of(&report(&trace, &["--json"]));
    let untraced = &json["untraced_memory"];
    let ratio = untraced["rss_over_heap"].as_f64().expect("flagged");
    assert!(ratio >= 8.0, "{untraced}");
    assert!(
        json["peak_rss_bytes"].as_u64().unwrap() >= 96 << 20,
        "{json}"
    );
    assert_eq!(untraced["allocator_modules"], serde_json::json!([]));
    let text = String::from_utf8(report(&trace, &[]).stdout).unwrap();
    assert!(text.contains("note: peak RSS "), "{text}");

    // With --mmap the region is traced: it is part of the heap, and nothing is said.
    crate::support::ensure_preload();
    let traced = dir.path().join("traced.lks");
    must_run(
        Command::new(env!("CARGO_BIN_EXE_leaksift"))
            .args(["record", "--mmap", "-o"])
            .arg(&traced)
            .arg("--")
            .arg(&binary),
    );
    let json = json_of(&report(&traced, &["--json"]));
    assert!(
        json["untraced_memory"].is_null(),
        "{}",
        json["untraced_memory"]
    );
    assert!(json["peak_bytes"].as_u64().unwrap() >= 96 << 20);
}

#[test]
fn managed_runtimes_are_named_with_the_tool_that_sees_their_objects() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::ensure_preload();
    let runtimes: [(&str, &[&str], &str, &str); 3] = [
        (
            "python3",
            &["-c", "print(len([{} for _ in range(1000)]))"],
            "python",
            "PYTHONMALLOC=malloc",
        ),
        (
            "node",
            &["-e", "console.log([1, 2].length)"],
            "node",
            "leaksift diff",
        ),
        ("java", &["-version"], "jvm", "leaksift check --jvm-heap"),
    ];
    for (program, args, runtime, advice) in runtimes {
        if Command::new(program).args(args).output().is_err() {
            eprintln!("{program} not found: skipping its case");
            continue;
        }
        let trace = dir.path().join(format!("{runtime}.lks"));
        let recorded = must_run(
            Command::new(env!("CARGO_BIN_EXE_leaksift"))
                .env_remove("PYTHONMALLOC")
                .args(["record", "-o"])
                .arg(&trace)
                .arg("--")
                .arg(program)
                .args(args),
        );
        // `record` tells a CPython user how to see the small objects before the run.
        let hint = String::from_utf8_lossy(&recorded.stderr).contains("set PYTHONMALLOC=malloc");
        assert_eq!(hint, runtime == "python", "{program}");
        let json = json_of(&report(&trace, &["--json"]));
        assert_eq!(
            json["untraced_memory"]["managed_runtime"], runtime,
            "{program}: {}",
            json["untraced_memory"]
        );
        let text = String::from_utf8(report(&trace, &[]).stdout).unwrap();
        assert!(text.contains("note: this is "), "{program}: {text}");
        assert!(text.contains(advice), "{program}: {text}");
        if runtime == "jvm" {
            // The command names the traced JVM, usable while it still runs.
            let jcmd = format!("jcmd {} GC.heap_dump", json["pid"]);
            assert!(text.contains(&jcmd), "{text}");
        }
    }
    // With PYTHONMALLOC set, no hint.
    if Command::new("python3")
        .arg("-c")
        .arg("pass")
        .output()
        .is_ok()
    {
        let recorded = must_run(
            Command::new(env!("CARGO_BIN_EXE_leaksift"))
                .env("PYTHONMALLOC", "malloc")
                .args(["record", "-o"])
                .arg(dir.path().join("malloc.lks"))
                .args(["--", "python3", "-c", "pass"]),
        );
        assert!(!String::from_utf8_lossy(&recorded.stderr).contains("PYTHONMALLOC"));
    }
    // A C program is no runtime's.
    let binary = compile(dir.path(), "gcc", "untraced.c", "untraced", &["-O1"]);
    let json = json_of(&report(&record(dir.path(), &binary), &["--json"]));
    assert!(
        json["untraced_memory"]["managed_runtime"].is_null(),
        "{json}"
    );
}

#[test]
fn diff_of_two_traces_names_the_call_sites_that_changed() {
    // regressed.c loses N blocks in remember() and frees N temporaries in scratch(); its
    // cache_page() allocates the same in both runs.
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(
        dir.path(),
        "gcc",
        "regressed.c",
        "regressed",
        &["-O1", "-g"],
    );
    crate::support::ensure_preload();
    let record_with = |n: &str| {
        let trace = dir.path().join(format!("regressed-{n}.lks"));
        must_run(
            Command::new(env!("CARGO_BIN_EXE_leaksift"))
                .args(["record", "-o"])
                .arg(&trace)
                .arg("--")
                .arg(&binary)
                .arg(n),
        );
        trace
    };
    let (one, five) = (record_with("1"), record_with("5"));
    let diff = |old: &Path, new: &Path, json: bool| {
        let mut cli = leaksift();
        cli.arg("diff").arg(old).arg(new);
        if json {
            cli.arg("--json");
        }
        cli.output().unwrap()
    };
    let output = diff(&one, &five, true);
    assert_eq!(output.status.code(), Some(0));
    let json = json_of(&output);
    assert_eq!(json["mode"], "traces");
    assert_eq!(json["old"]["leaks"]["definitely_lost"]["blocks"], 1);
    assert_eq!(json["new"]["leaks"]["definitely_lost"]["blocks"], 5);
    assert_eq!(json["new"]["leaks"]["definitely_lost"]["bytes"], 500);
    assert_eq!(json["delta"]["lost_bytes"], 400);
    assert_eq!(json["delta"]["allocations"], 8);
    let sites = json["sites"].as_array().unwrap();
    let innermost: Vec<&str> = sites
        .iter()
        .map(|s| s["frames"][0]["function"].as_str().unwrap())
        .collect();
    // Lost bytes first; cache_page did the same in both runs and is not listed.
    assert_eq!(innermost, ["remember", "scratch"], "{json}");
    let [remember, scratch] = [&sites[0], &sites[1]];
    assert_eq!(remember["delta"]["lost_bytes"], 400);
    assert_eq!(remember["delta"]["live_bytes"], 400);
    assert_eq!(remember["old"]["allocations"], 1);
    assert_eq!(remember["new"]["allocations"], 5);
    assert_eq!(scratch["delta"]["temporary"], 4);
    assert_eq!(scratch["delta"]["lost_bytes"], 0);
    assert_eq!(
        functions(&remember["frames"]).last().map(String::as_str),
        Some("main"),
        "{remember}"
    );

    // The other way round, every change has the opposite sign.
    let back = json_of(&diff(&five, &one, true));
    assert_eq!(back["delta"]["lost_bytes"], -400);
    assert_eq!(back["sites"][0]["delta"]["allocations"], -4);

    let text = String::from_utf8(diff(&one, &five, false).stdout).unwrap();
    let lost_table = text
        .split("Call sites by change in bytes lost")
        .nth(1)
        .expect("a lost-bytes table");
    assert!(lost_table.contains("remember (regressed.c:"), "{text}");
    assert!(text.contains("definitely lost"), "{text}");

    // A trace compares only with another trace, two at a time.
    let heap =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/v8/handmade.heapsnapshot");
    for files in [vec![&one, &heap], vec![&one, &five, &five]] {
        let output = leaksift().arg("diff").args(&files).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{files:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("trace"), "{stderr}");
    }
}

#[test]
fn human_report_lists_the_summary_and_stacks() {
    let t = synthetic(true);
    let output = report(&t.trace, &[]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("LEAK SUMMARY"), "{text}");
    assert!(text.contains("definitely lost"));
    assert!(text.contains("at inner_alloc (stacks.c:"), "{text}");
    assert!(text.contains("by main (stacks.c:"), "{text}");
}

#[test]
fn fail_on_leak_exit_codes_and_budget() {
    let t = synthetic(true);
    // 148 + 40 bytes definitely and indirectly lost.
    assert_eq!(report(&t.trace, &["--fail-on-leak"]).status.code(), Some(1));
    assert_eq!(
        report(&t.trace, &["--fail-on-leak", "187"]).status.code(),
        Some(1)
    );
    let output = report(&t.trace, &["--fail-on-leak=188", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let json = json_of(&output);
    assert_eq!(json["fail_on_leak"]["lost_bytes"], 188);
    assert_eq!(json["fail_on_leak"]["failed"], false);
    assert_eq!(
        report(&t.trace, &["--fail-on-leak", "1KiB"]).status.code(),
        Some(0)
    );
}

#[test]
fn suppressions_silence_matching_stacks() {
    let t = synthetic(true);
    let supp = t.dir.join("leaks.supp");
    std::fs::write(&supp, "# third-party init\n\nleak:^middle_*$\n").unwrap();
    let output = report(
        &t.trace,
        &["--json", "--suppressions", path(&supp), "--fail-on-leak"],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = json_of(&output);
    assert_eq!(json["leak_stacks"][0]["suppressed_by"], "^middle_*$");
    assert_eq!(json["unsuppressed"]["definitely_lost"]["bytes"], 0);
    assert_eq!(json["leaks"]["definitely_lost"]["bytes"], 148);

    // A pattern matching nothing leaves the verdict alone.
    std::fs::write(&supp, "leak:nothing_matches_this\n").unwrap();
    assert_eq!(
        report(&t.trace, &["--suppressions", path(&supp), "--fail-on-leak"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn generated_suppressions_silence_exactly_the_lost_stacks_they_were_made_from() {
    // leak_classes.c: lose_block() loses a block, lose_owner() a struct owning a buffer
    // (indirectly lost), keep_interior() keeps a block by an interior pointer only.
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(
        dir.path(),
        "gcc",
        "leak_classes.c",
        "leak_classes",
        &["-O0", "-g"],
    );
    let trace = record(dir.path(), &binary);
    let supp = dir.path().join("generated.supp");
    let output = report(
        &trace,
        &[
            "--json",
            "--fail-on-leak",
            "--gen-suppressions",
            path(&supp),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let json = json_of(&output);
    assert_eq!(
        json["generated_suppressions"]["patterns"],
        serde_json::json!(["^lose_block$", "^lose_owner$"]),
        "{}",
        json["generated_suppressions"]
    );
    let text = std::fs::read_to_string(&supp).unwrap();
    assert!(
        text.contains("# indirectly lost: 200 B in 1 block at "),
        "{text}"
    );
    assert!(
        text.contains("# (covered by leak:^lose_owner$ above)"),
        "{text}"
    );

    let output = report(
        &trace,
        &["--json", "--fail-on-leak", "--suppressions", path(&supp)],
    );
    assert_eq!(output.status.code(), Some(0));
    let json = json_of(&output);
    assert_eq!(json["unsuppressed"]["definitely_lost"]["bytes"], 0);
    assert_eq!(json["unsuppressed"]["indirectly_lost"]["bytes"], 0);
    // Possibly lost is not what --fail-on-leak counts: it keeps no suppression.
    assert_eq!(json["unsuppressed"]["possibly_lost"]["bytes"], 64);
    assert_eq!(json["leaks"]["definitely_lost"]["bytes"], 148);
}

#[test]
fn malformed_suppressions_name_file_and_line() {
    let t = synthetic(true);
    let supp = t.dir.join("bad.supp");
    std::fs::write(&supp, "leak:fine\nrace:not_a_leak_rule\n").unwrap();
    let output = report(&t.trace, &["--suppressions", path(&supp)]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("leaksift: error: "), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:2:", supp.display())),
        "{stderr}"
    );
}

#[test]
fn truncated_trace_is_reported_as_truncated() {
    let t = synthetic(false);
    let output = report(&t.trace, &["--json"]);
    assert!(output.status.success());
    let json = json_of(&output);
    assert_eq!(json["truncated"], true);
    assert_eq!(json["scan"], Value::Null);
    assert_eq!(json["live_at_end"]["bytes"], 284);
    let text = report(&t.trace, &[]).stdout;
    assert!(String::from_utf8(text).unwrap().contains("TRUNCATED"));
    // A CI gate cannot pass a trace without a leak scan; the report is still printed.
    let output = report(&t.trace, &["--json", "--fail-on-leak"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(json_of(&output)["truncated"], true);
}

#[test]
fn corrupt_traces_fail_with_one_line_and_keep_partial_results() {
    let t = synthetic(true);
    let garbage = t.dir.join("garbage.trace");
    std::fs::write(&garbage, b"definitely not a trace").unwrap();
    let output = report(&garbage, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("garbage.trace"), "{stderr}");

    // Flip bytes near the end of the file: the events decoded before still give a report.
    let mut bytes = std::fs::read(&t.trace).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 12..n - 4] {
        *b ^= 0x5a;
    }
    let corrupt = t.dir.join("corrupt.trace");
    std::fs::write(&corrupt, &bytes).unwrap();
    let output = report(&corrupt, &["--json"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Progress lines of the phases that ran come first; the error is one line, the last.
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("leaksift: error: "), "{stderr}");
    assert!(
        last.contains("corrupt.trace") && last.contains("byte"),
        "{stderr}"
    );
    assert_eq!(json_of(&output)["truncated"], true);

    let missing = report(&t.dir.join("missing.trace"), &[]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn flamegraph_escapes_names_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(
        dir.path(),
        "c++",
        "markup_names.cpp",
        "markup",
        &["-g", "-O0"],
    );
    let make = BIAS + symbol_address(&binary, |n| n.contains("makeI6script")) + 9;
    let main = BIAS + symbol_address(&binary, |n| n == "main") + 9;
    let trace = dir.path().join("markup.trace");
    let mut writer = TraceWriter::new(
        std::fs::File::create(&trace).unwrap(),
        &header("<b>cmd</b>"),
    )
    .unwrap();
    writer.module_loaded(&module_at(&binary, 0, BIAS)).unwrap();
    writer.stack(StackId(7), &[make, main]).unwrap();
    writer
        .alloc(
            TraceTime(5),
            MAIN_THREAD,
            0x10,
            24,
            StackId(7),
            AllocKind::Malloc,
        )
        .unwrap();
    writer.end(TraceTime(9), ProcessEnd::Exited(0)).unwrap();
    writer.finish().unwrap();

    for metric in ["leaked", "peak", "allocations"] {
        let svg = dir.path().join(format!("{metric}.svg"));
        assert!(
            report(
                &trace,
                &["--flamegraph", path(&svg), "--flamegraph-metric", metric]
            )
            .status
            .success()
        );
        let svg = std::fs::read_to_string(&svg).unwrap();
        assert!(
            svg.contains("make&lt;script&gt;"),
            "{metric}: demangled name missing"
        );
        assert!(!svg.contains("<script>"), "{metric}: unescaped name in SVG");
        assert!(
            !svg.contains("<b>cmd"),
            "{metric}: unescaped command in title"
        );
    }
}

/// Control characters from a symbol name and from the command line reached the flamegraph raw
/// (inferno escapes markup, not them), and XML 1.0 forbids them even escaped: browsers refused
/// the SVG. They are now written as visible `\u{1b}`-style text there. The text report (and the flamegraph's title) shows
/// the command as a shell reads it back: the argument with a space single-quoted, the one with
/// ESC in `$'…'` form.
#[test]
fn control_characters_never_reach_the_flamegraph_and_the_command_is_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(
        dir.path(),
        "cc",
        "control_names.c",
        "control_names",
        &["-g", "-O0"],
    );
    let trace = dir.path().join("control.trace");
    let out = record_output(&trace, &binary, &["red\u{1b}[31m", "a b"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for metric in ["leaked", "peak", "allocations"] {
        let svg = dir.path().join(format!("{metric}.svg"));
        let out = report(
            &trace,
            &[
                "-q",
                "--flamegraph",
                path(&svg),
                "--flamegraph-metric",
                metric,
            ],
        );
        assert!(out.status.success(), "{metric}: {out:?}");
        let svg = std::fs::read_to_string(&svg).unwrap();
        // XML 1.0's Char production: no C0 control but tab, newline and carriage return.
        let bad = svg
            .char_indices()
            .find(|&(_, c)| c < ' ' && !matches!(c, '\t' | '\n' | '\r'));
        assert_eq!(bad, None, "{metric}: a control character in the SVG");
        assert!(
            svg.contains(r"odd\u{1}\u{1b}[31mred"),
            "{metric}: the function's name is missing"
        );
        assert!(
            svg.contains("red\\e[31m"),
            "{metric}: the argument is missing from the title"
        );
    }
    let out = report(&trace, &["-q"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = format!(
        "pid {}, `{} $'red\\e[31m' 'a b'`\n",
        leaksift_trace::TraceReader::open(&trace)
            .unwrap()
            .header()
            .pid,
        path(&binary)
    );
    assert!(text.contains(&expected), "{expected} in:\n{text}");
}

// ---------------------------------------------------------------------------------------------
// Real programs under `leaksift record`

fn report_json(trace: &Path) -> Value {
    let output = report(trace, &["--json"]);
    assert!(
        output.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    json_of(&output)
}

fn leaksift_summary(json: &Value) -> [(u64, u64); 4] {
    CLASSES.map(|name| class(json, name))
}

fn assert_classes_equal_memcheck(flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(dir.path(), "cc", "leak_classes.c", "leak_classes", flags);
    let json = report_json(&record(dir.path(), &binary));
    assert_eq!(json["truncated"], false);
    let ours = leaksift_summary(&json);
    let memcheck = memcheck_summary(&binary);
    assert_eq!(
        ours, memcheck,
        "leaksift vs memcheck (blocks, bytes) per {CLASSES:?}"
    );
    // And they are the program's known leaks, so the comparison is not vacuous.
    assert_eq!(ours[0], (2, 148));
    assert_eq!(ours[1], (1, 200));
    assert_eq!(ours[2], (1, 64));
    assert!(ours[3].0 >= 1 && ours[3].1 >= 32);
}

#[test]
fn leak_classes_equal_memcheck_with_frame_pointers() {
    assert_classes_equal_memcheck(&["-g", "-O0", "-fno-omit-frame-pointer"]);
}

#[test]
fn leak_classes_equal_memcheck_without_frame_pointers() {
    assert_classes_equal_memcheck(&["-g", "-O0", "-fomit-frame-pointer"]);
}

/// The leak stack of the given size, whatever its class (stack tests check stacks; the classes
/// are checked against memcheck by the `leak_classes_*` tests).
fn sized_stack(json: &Value, bytes: u64) -> &Value {
    json["leak_stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["bytes"] == bytes)
        .unwrap_or_else(|| panic!("no stack of {bytes} bytes in {:#}", json["leak_stacks"]))
}

/// The frames of `stack` that lie in `binary`, as (function, file name, line).
fn frames_in(stack: &Value, binary: &Path) -> Vec<(String, String, u64)> {
    let module = binary.display().to_string();
    stack["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["module"] == module.as_str())
        .map(|f| {
            let file = f["file"].as_str().unwrap_or("");
            (
                f["function"].as_str().unwrap().to_string(),
                file.rsplit('/').next().unwrap().to_string(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn assert_c_stack(flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(dir.path(), "cc", "stacks.c", "stacks", flags);
    let json = report_json(&record(dir.path(), &binary));
    let stack = sized_stack(&json, 42);
    let frames = stack["frames"].as_array().unwrap();
    assert_eq!(
        frames.last().unwrap()["function"],
        "main",
        "outermost frame last"
    );
    let expected: Vec<(String, String, u64)> = ["inner_alloc", "middle_call", "outer_call", "main"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                "stacks.c".to_string(),
                u64::from(marker_line("stacks.c", f)),
            )
        })
        .collect();
    assert_eq!(frames_in(stack, &binary), expected, "{stack:#}");
    // Nothing but the allocator sits between malloc's caller and the program's frames.
    assert_eq!(frames[0]["function"], "inner_alloc", "{stack:#}");
}

#[test]
fn c_stack_frame_by_frame_with_frame_pointers() {
    assert_c_stack(&["-g", "-O0", "-fno-omit-frame-pointer"]);
}

#[test]
fn c_stack_frame_by_frame_without_frame_pointers() {
    assert_c_stack(&["-g", "-O0", "-fomit-frame-pointer"]);
}

#[test]
fn cpp_stack_has_demangled_names() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(
        dir.path(),
        "c++",
        "stacks.cpp",
        "stacks_cpp",
        &["-g", "-O0"],
    );
    let json = report_json(&record(dir.path(), &binary));
    let stack = sized_stack(&json, 72);
    let frames = stack["frames"].as_array().unwrap();
    assert!(
        frames[0]["function"]
            .as_str()
            .unwrap()
            .starts_with("operator new"),
        "{stack:#}"
    );
    let line = |name| u64::from(marker_line("stacks.cpp", name));
    assert_eq!(
        frames_in(stack, &binary),
        [
            (
                "shapes::Factory::create(int)".to_string(),
                "stacks.cpp".to_string(),
                line("create")
            ),
            (
                "build_and_forget(int)".to_string(),
                "stacks.cpp".to_string(),
                line("build_and_forget")
            ),
            ("main".to_string(), "stacks.cpp".to_string(), line("main")),
        ],
        "{stack:#}"
    );
    assert_eq!(frames.last().unwrap()["function"], "main");
}

#[test]
fn rust_stack_has_demangled_names() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("stacks_rs");
    must_run(
        Command::new("rustc")
            .args(["-g", "-C", "opt-level=0", "--edition", "2021", "-o"])
            .arg(&binary)
            .arg(programs().join("stacks.rs")),
    );
    let json = report_json(&record(dir.path(), &binary));
    // The Box (24 bytes) owns the 333-byte Vec buffer.
    assert_eq!(sized_stack(&json, 333)["blocks"], 1);
    let stack = sized_stack(&json, 24);
    let user: Vec<(String, String, u64)> = frames_in(stack, &binary)
        .into_iter()
        .filter(|(_, file, _)| file == "stacks.rs")
        .collect();
    let line = |name| u64::from(marker_line("stacks.rs", name));
    assert_eq!(
        user,
        [
            (
                "stacks::make_leak".to_string(),
                "stacks.rs".to_string(),
                line("make_leak")
            ),
            (
                "stacks::run".to_string(),
                "stacks.rs".to_string(),
                line("run")
            ),
            (
                "stacks::main".to_string(),
                "stacks.rs".to_string(),
                line("main")
            ),
        ],
        "{stack:#}"
    );
    let frames = stack["frames"].as_array().unwrap();
    assert_eq!(frames.last().unwrap()["function"], "main", "{stack:#}");
}

#[test]
fn inlined_frames_are_expanded_from_dwarf() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(dir.path(), "cc", "inlined.c", "inlined", &["-g", "-O2"]);
    let json = report_json(&record(dir.path(), &binary));
    let stack = sized_stack(&json, 54);
    let frames: Vec<(String, u64, bool)> = stack["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["function"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap_or(0),
                f["inlined"].as_bool().unwrap(),
            )
        })
        .collect();
    let line = |name| u64::from(marker_line("inlined.c", name));
    assert_eq!(
        frames,
        [
            ("fill".to_string(), line("fill"), true),
            ("make".to_string(), line("make"), false),
            ("main".to_string(), line("main"), false),
        ],
        "{stack:#}"
    );
}

/// A global cache freed by its destructor after `main` returned: nothing is live at the end,
/// yet its call site is a leak, with what it held before the exit.
#[test]
fn growth_by_call_site_sees_through_what_the_exit_frees() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(
        dir.path(),
        "c++",
        "global_cache.cpp",
        "global_cache",
        &["-g", "-O1"],
    );
    let trace = dir.path().join("cache.trace");
    let output = record_output(&trace, &binary, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = report_json(&trace);
    assert_eq!(
        json["live_at_end"]["bytes"], 0,
        "the destructor freed the cache"
    );
    let sites = json["growth"]["sites"].as_array().unwrap();
    let top = &sites[0];
    assert_eq!(top["verdict"], "leak", "{:#}", json["growth"]);
    let remember = top["frames"]
        .as_array()
        .unwrap()
        .iter()
        // `static void remember(int)`: DWARF has no linkage name for it, the symbol table's
        // `_ZL8rememberi` gives the full one.
        .find(|frame| frame["function"] == "remember(int)")
        .unwrap_or_else(|| panic!("{top:#}"));
    assert_eq!(
        remember["line"].as_u64().unwrap(),
        u64::from(marker_line("global_cache.cpp", "remember"))
    );
    assert_eq!(top["live_bytes_at_end"], 0);
    // The live bytes at the last sample before the fall. Samples are 4-8 ms apart in this run
    // (evenly spaced, halved as they reach 512), and halving can drop the one sample taken in
    // the 10 ms between the 150th entry and the exit (seen once in CI: 149 entries).
    let before_exit = top["live_bytes_before_exit"].as_u64().unwrap();
    assert!(
        (148 * 65536..=150 * 65536).contains(&before_exit),
        "{top:#}"
    );
    let text = report(&trace, &[]);
    let text = String::from_utf8_lossy(&text.stdout);
    let shown = format!(
        "0 B ({:.2} MiB before exit)",
        before_exit as f64 / 1048576.0
    );
    assert!(text.contains(&shown), "{shown} in {text}");

    // Emptied by `main` 1 s before the exit: a fall the program made, not its exit. (The
    // vector's own buffer, grown by `push_back` in `remember` and kept by `clear` until the
    // destructor, may still read as growth: only the entries' site is checked.)
    let output = record_output(&trace, &binary, &["150", "clear"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = report_json(&trace);
    let entry_line = u64::from(marker_line("global_cache.cpp", "remember"));
    let allocated_in_remember = |site: &&Value| {
        site["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|frame| frame["function"] == "remember" && frame["line"] == entry_line)
    };
    assert!(
        json["growth"]["sites"]
            .as_array()
            .unwrap()
            .iter()
            .filter(allocated_in_remember)
            .all(|site| site["verdict"] != "leak"),
        "{:#}",
        json["growth"]
    );
}

#[test]
fn growth_by_call_site_finds_the_leak_in_a_killed_server() {
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(
        dir.path(),
        "cc",
        "growing_server.c",
        "growing_server",
        &["-g", "-O0"],
    );
    let trace = dir.path().join("server.trace");
    let output = record_output(&trace, &binary, &[]);
    assert_eq!(
        output.status.code(),
        Some(128 + 9),
        "record passes on the SIGKILL"
    );
    let json = report_json(&trace);
    assert_eq!(json["truncated"], true);
    assert_eq!(json["scan"], Value::Null);
    let sites = json["growth"]["sites"].as_array().unwrap();
    let top = &sites[0];
    assert_eq!(top["verdict"], "leak", "{:#}", json["growth"]);
    assert!(top["slope_bytes_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(top["frames"][0]["function"], "remember");
    assert_eq!(
        top["frames"][0]["line"].as_u64().unwrap(),
        u64::from(marker_line("growing_server.c", "remember"))
    );
    // The churned scratch buffer is not a suspect.
    assert!(
        sites
            .iter()
            .filter(|s| s["verdict"] == "leak")
            .all(|s| s["frames"][0]["function"] == "remember"),
        "{:#}",
        json["growth"]
    );
}
