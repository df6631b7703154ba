//! `leaksift record` on real C, C++ and Rust programs built by this harness: leak classes (also
//! against valgrind), frame-by-frame stacks with and without frame pointers, allocator coverage,
//! threads, fork, exec, crashes and on-demand scans. Traces are checked with the trace reader.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use leaksift_trace::TraceReader;

mod support;
use leaksift_trace::model::{
    AllocKind, Event, LeakClass, LeakScan, Module, ProcessEnd, ScanTrigger, StackId,
};
use support::ensure_preload;

fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/record")
}

fn compile(compiler: &str, source: &str, flags: &[&str], dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(programs_dir().join(source))
        .status()
        .unwrap_or_else(|e| panic!("running {compiler}: {e}"));
    assert!(status.success(), "{compiler} {source} failed");
    out
}

/// Builds `source` twice with `compiler`: with `-DLIBRARY` as the shared library `lib<name>.so`
/// (`library_flags` added), and as the program `name` linked with it. Returns the program.
fn compile_with_library(
    compiler: &str,
    source: &str,
    library_flags: &[&str],
    dir: &Path,
    name: &str,
) -> PathBuf {
    let mut flags = vec!["-O1", "-g", "-shared", "-fPIC", "-DLIBRARY"];
    flags.extend_from_slice(library_flags);
    let library = compile(compiler, source, &flags, dir, &format!("lib{name}.so"));
    let library = library.to_str().expect("a UTF-8 temporary directory");
    compile(
        compiler,
        source,
        &["-O1", "-g", "-Wl,--no-as-needed", library],
        dir,
        name,
    )
}

fn compile_c(source: &str, flags: &[&str], dir: &Path, name: &str) -> PathBuf {
    let mut all = vec!["-g", "-pthread"];
    all.extend_from_slice(flags);
    compile("gcc", source, &all, dir, name)
}

fn record(trace: &Path, extra: &[&str], program: &Path, args: &[&str]) -> Output {
    ensure_preload();
    Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .arg("record")
        .arg("-o")
        .arg(trace)
        .args(extra)
        .arg("--")
        .arg(program)
        .args(args)
        .output()
        .expect("running leaksift record")
}

/// Records `program` into `trace`, expects exit status 0 and returns the decoded trace.
/// What `leaksift report -q ARGS TRACE` prints (it must succeed).
fn report_output(trace: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["report", "-q"])
        .args(args)
        .arg(trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report {}: {}",
        trace.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The lost classes of `leaks.c` (two blocks definitely lost, one indirectly through them, one
/// possibly through an interior pointer), as memcheck counts them.
fn assert_leaks_c_classes(classes: &HashMap<LeakClass, (u64, u64)>, context: &str) {
    for (class, expected) in [
        (LeakClass::DefinitelyLost, (2, 132)),
        (LeakClass::IndirectlyLost, (1, 48)),
        (LeakClass::PossiblyLost, (1, 64)),
    ] {
        assert_eq!(
            classes.get(&class),
            Some(&expected),
            "{context}: {classes:?}"
        );
    }
}

fn record_clean(trace: &Path, extra: &[&str], program: &Path, args: &[&str]) -> Trace {
    let out = record(trace, extra, program, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Trace::read(trace)
}

/// A fully decoded trace.
struct Trace {
    pid: u32,
    events: Vec<Event>,
    truncated: bool,
}

impl Trace {
    fn read(path: &Path) -> Trace {
        let mut reader =
            TraceReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let pid = reader.header().pid;
        let events = reader
            .events()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        Trace {
            pid,
            events,
            truncated: reader.is_truncated(),
        }
    }

    fn allocs(&self, wanted: u64) -> Vec<(u64, StackId, AllocKind)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Alloc {
                    address,
                    size,
                    stack,
                    kind,
                    ..
                } if *size == wanted => Some((*address, *stack, *kind)),
                Event::Realloc {
                    new_address,
                    size,
                    stack,
                    ..
                } if *size == wanted => Some((*new_address, *stack, AllocKind::Realloc)),
                _ => None,
            })
            .collect()
    }

    /// The first scan taken on demand (a signal or the control file), if the trace has one yet.
    fn on_demand_scan(&self) -> Option<&LeakScan> {
        self.events.iter().find_map(|e| match e {
            Event::LeakScan(s) if s.trigger == ScanTrigger::OnDemand => Some(&**s),
            _ => None,
        })
    }

    fn frees(&self) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Free { address, .. } => Some(*address),
                _ => None,
            })
            .collect()
    }

    fn stack(&self, id: StackId) -> Vec<u64> {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Stack { id: i, frames } if *i == id => Some(frames.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("stack {id:?} is not defined"))
    }

    fn modules(&self) -> Vec<&Module> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ModuleLoaded(m) => Some(&**m),
                _ => None,
            })
            .collect()
    }

    /// Sizes of blocks live at the end of the trace, by address.
    fn live(&self) -> HashMap<u64, u64> {
        let mut live = HashMap::new();
        for e in &self.events {
            replay(&mut live, e);
        }
        live
    }

    /// (blocks, bytes) per class of the last scan with `trigger`, sizes from the replay.
    fn leak_summary(&self, trigger: ScanTrigger) -> HashMap<LeakClass, (u64, u64)> {
        let mut live = HashMap::new();
        let mut summary = None;
        for e in &self.events {
            replay(&mut live, e);
            if let Event::LeakScan(scan) = e
                && scan.trigger == trigger
            {
                let mut totals: HashMap<LeakClass, (u64, u64)> = HashMap::new();
                for block in &scan.blocks {
                    let size = *live.get(&block.address).expect("scanned block is live");
                    let t = totals.entry(block.class).or_default();
                    t.0 += 1;
                    t.1 += size;
                }
                summary = Some(totals);
            }
        }
        summary.expect("the trace has a leak scan")
    }

    /// When the last `End` record was written, in nanoseconds since tracing started.
    fn end_time(&self) -> Option<u64> {
        self.events.iter().rev().find_map(|e| match e {
            Event::End { time, .. } => Some(time.0),
            _ => None,
        })
    }

    /// The last `End` record (an exec that failed leaves one before the program's later events).
    fn end(&self) -> Option<ProcessEnd> {
        self.events.iter().rev().find_map(|e| match e {
            Event::End { end, .. } => Some(*end),
            _ => None,
        })
    }
}

/// Applies one event to a map of live block sizes by address.
fn replay(live: &mut HashMap<u64, u64>, event: &Event) {
    match event {
        Event::Alloc { address, size, .. } => {
            live.insert(*address, *size);
        }
        Event::Realloc {
            old_address,
            new_address,
            size,
            ..
        } => {
            live.remove(old_address);
            live.insert(*new_address, *size);
        }
        Event::Free { address, .. } => {
            live.remove(address);
        }
        _ => {}
    }
}

/// The module record of `binary` in the trace.
fn module_of<'t>(trace: &'t Trace, binary: &Path) -> Option<&'t Module> {
    let canonical = std::fs::canonicalize(binary).unwrap();
    trace
        .modules()
        .into_iter()
        .find(|m| std::fs::canonicalize(&m.path).is_ok_and(|p| p == canonical))
}

/// Function symbols of an ELF file: (start, end, name), SVMA.
fn function_symbols(binary: &Path) -> Vec<(u64, u64, String)> {
    let out = Command::new("nm")
        .args(["-S", "--defined-only"])
        .arg(binary)
        .output()
        .expect("running nm");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() != 4 || !matches!(parts[2], "T" | "t") {
                return None;
            }
            let start = u64::from_str_radix(parts[0], 16).ok()?;
            let size = u64::from_str_radix(parts[1], 16).ok()?;
            Some((start, start + size, parts[3].to_string()))
        })
        .collect()
}

/// Names the function each frame returns into (`?` outside `binary`).
fn frame_names(trace: &Trace, frames: &[u64], binary: &Path) -> Vec<String> {
    let module = module_of(trace, binary).expect("the binary is among the modules");
    let symbols = function_symbols(binary);
    frames
        .iter()
        .map(|&frame| {
            let svma = frame.wrapping_sub(module.base).wrapping_sub(1);
            symbols
                .iter()
                .find(|(s, e, _)| *s <= svma && svma < *e)
                .map_or_else(|| "?".to_string(), |(_, _, n)| n.clone())
        })
        .collect()
}

/// Compiles the test program `source` with `flags` (in `dir`, as `name`), records a run and
/// returns the program and the classes of the scan at its exit.
fn exit_classes(
    source: &str,
    flags: &[&str],
    dir: &Path,
    name: &str,
) -> (PathBuf, HashMap<LeakClass, (u64, u64)>) {
    let program = compile_c(source, flags, dir, name);
    let classes = record_clean(&dir.join(format!("{name}.lks")), &[], &program, &[])
        .leak_summary(ScanTrigger::Exit);
    (program, classes)
}

/// [`exit_classes`] of `runs` runs of one build of `source` (for programs whose threads race
/// the exit scan: every run must come out right).
fn exit_classes_of_runs(
    source: &str,
    flags: &[&str],
    dir: &Path,
    runs: usize,
) -> Vec<HashMap<LeakClass, (u64, u64)>> {
    let program = compile_c(source, flags, dir, "program");
    (0..runs)
        .map(|run| {
            record_clean(&dir.join(format!("run{run}.lks")), &[], &program, &[])
                .leak_summary(ScanTrigger::Exit)
        })
        .collect()
}

fn valgrind_summary(program: &Path, args: &[&str]) -> HashMap<LeakClass, (u64, u64)> {
    let out = Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--show-leak-kinds=all",
            "--run-libc-freeres=no",
        ])
        .arg(program)
        .args(args)
        .output()
        .expect("running valgrind");
    let text = String::from_utf8_lossy(&out.stderr);
    let mut summary = HashMap::new();
    for (label, class) in [
        ("definitely lost:", LeakClass::DefinitelyLost),
        ("indirectly lost:", LeakClass::IndirectlyLost),
        ("possibly lost:", LeakClass::PossiblyLost),
        ("still reachable:", LeakClass::StillReachable),
    ] {
        if let Some(line) = text.lines().find(|l| l.contains(label)) {
            let numbers: Vec<u64> = line
                .split(label)
                .nth(1)
                .unwrap_or("")
                .replace(',', "")
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            if let [bytes, blocks] = numbers[..]
                && blocks > 0
            {
                summary.insert(class, (blocks, bytes));
            }
        }
    }
    summary
}

#[test]
fn leak_classes_match_valgrind_with_and_without_frame_pointers() {
    let dir = tempfile::tempdir().unwrap();
    for (name, flags) in [
        ("leaks_fp", &["-O0", "-fno-omit-frame-pointer"][..]),
        ("leaks_nofp", &["-O2", "-fomit-frame-pointer"][..]),
    ] {
        let program = compile_c("leaks.c", flags, dir.path(), name);
        let trace = record_clean(&dir.path().join(format!("{name}.lks")), &[], &program, &[]);
        assert!(!trace.truncated);
        assert_eq!(trace.end(), Some(ProcessEnd::Exited(0)));
        let ours = trace.leak_summary(ScanTrigger::Exit);
        assert_leaks_c_classes(&ours, name);
        let valgrind = valgrind_summary(&program, &[]);
        assert_eq!(ours, valgrind, "{name}: leaksift vs valgrind");
    }
}

/// Blocks lost in a function main called, then main returns (or a nested function calls exit):
/// copies of their addresses that the allocation path left below main (libstdc++'s `operator
/// new` saving a register, glibc's malloc, the hooks) must not keep them reachable. memcheck
/// never reads such stale slots; before the tracer cleared the dead stack at `main`'s return
/// and at `exit`, the `new` cycle was "still reachable" at both optimisation levels here.
#[test]
fn blocks_lost_before_main_returns_are_lost_despite_stale_copies_on_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let cycle = HashMap::from([
        (LeakClass::DefinitelyLost, (1, 72)),
        (LeakClass::IndirectlyLost, (1, 72)),
    ]);
    let aligned = HashMap::from([(LeakClass::DefinitelyLost, (2, 333 + 8192))]);
    for (name, flags) in [
        ("lost_o1", &["-g", "-O1"][..]),
        ("lost_o2", &["-g", "-O2", "-fomit-frame-pointer"][..]),
    ] {
        let program = compile("g++", "lost_after_return.cpp", flags, dir.path(), name);
        for (args, expected) in [
            (&["1"][..], &cycle),
            (&["1", "exit"][..], &cycle),
            (&["3"][..], &aligned),
        ] {
            let trace_path = dir.path().join(format!("{name}-{}.lks", args.join("-")));
            let trace = record_clean(&trace_path, &[], &program, args);
            assert_eq!(trace.end(), Some(ProcessEnd::Exited(0)), "{name} {args:?}");
            let ours = trace.leak_summary(ScanTrigger::Exit);
            assert_eq!(&ours, expected, "{name} {args:?}");
            let valgrind = valgrind_summary(&program, args);
            if args == ["3"] {
                // The 8 KiB block's only reference is gone, but in some stack layouts (the
                // temporary directory's name is in the environment) valgrind finds a stale
                // word pointing into it and says "possibly lost" (seen once in CI; 40 of 40
                // runs here say definitely). The lost blocks and bytes must agree.
                let lost = |summary: &HashMap<LeakClass, (u64, u64)>| {
                    [LeakClass::DefinitelyLost, LeakClass::PossiblyLost]
                        .iter()
                        .filter_map(|class| summary.get(class))
                        .fold((0, 0), |(b, s), &(blocks, bytes)| (b + blocks, s + bytes))
                };
                assert_eq!(
                    lost(&ours),
                    lost(&valgrind),
                    "{name} {args:?}: {valgrind:?}"
                );
            } else {
                assert_eq!(ours, valgrind, "{name} {args:?}: valgrind");
            }
        }
    }
}

#[test]
fn a_program_ending_with_underscore_exit_still_gets_its_exit_scan() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("leaks.c", &["-O0"], dir.path(), "leaks_exit");
    let trace = record_clean(
        &dir.path().join("leaks_exit.lks"),
        &[],
        &program,
        &["_exit"],
    );
    assert_eq!(trace.end(), Some(ProcessEnd::Exited(0)));
    let ours = trace.leak_summary(ScanTrigger::Exit);
    assert_eq!(
        ours.get(&LeakClass::DefinitelyLost),
        Some(&(2, 132)),
        "{ours:?}"
    );
    assert_eq!(
        ours,
        valgrind_summary(&program, &["_exit"]),
        "leaksift vs valgrind"
    );
}

#[test]
fn a_vfork_child_ending_with_underscore_exit_leaves_the_parents_scan_alone() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("vfork_exit.c", &["-O0"], dir.path(), "vfork_exit");
    let trace_path = dir.path().join("vfork_exit.lks");
    let output = record(&trace_path, &[], &program, &[]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "child status 127\n"
    );
    let trace = Trace::read(&trace_path);
    assert_eq!(trace.end(), Some(ProcessEnd::Exited(0)));
    // The scan ran once, at the parent's exit, after the block it must call lost.
    assert_eq!(
        trace
            .leak_summary(ScanTrigger::Exit)
            .get(&LeakClass::DefinitelyLost),
        Some(&(1, 77))
    );
}

/// A pointer stored in a block's slack (past its request, within what `malloc_usable_size`
/// answered) holds the block it points at: it was "definitely lost" when the scan read only the
/// requested bytes.
#[test]
fn pointers_in_the_usable_slack_of_a_block_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (_, classes) = exit_classes("usable_size_slack.c", &["-O0"], dir.path(), "slack");
    assert_eq!(classes.get(&LeakClass::DefinitelyLost), None, "{classes:?}");
    assert_eq!(
        classes.get(&LeakClass::StillReachable),
        Some(&(2, 125)),
        "{classes:?}"
    );
}

/// Threads freeing and allocating while the program exits: their allocation calls wait while
/// the exit scan reads memory (the exit gate), so the heap stands still as under memcheck: the
/// one block main leaked is the only lost one, and the 3 × 64 blocks the threads cycle are
/// still reachable, less one per thread held between its free and its next allocation.
/// (Before: tens of lost blocks, varying by run; then, with the blocks freed during the scan
/// left out, the cycled ones in no class.)
#[test]
fn threads_allocating_at_exit_wait_for_the_exit_scan() {
    let dir = tempfile::tempdir().unwrap();
    let runs = exit_classes_of_runs("exit_while_threads_churn.c", &["-O0"], dir.path(), 3);
    for (run, classes) in runs.iter().enumerate() {
        assert_eq!(
            classes.get(&LeakClass::DefinitelyLost),
            Some(&(1, 99)),
            "run {run}: {classes:?}"
        );
        assert_eq!(
            classes.get(&LeakClass::IndirectlyLost),
            None,
            "run {run}: {classes:?}"
        );
        let reachable = classes.get(&LeakClass::StillReachable).map_or(0, |c| c.0);
        assert!((189..=192).contains(&reachable), "run {run}: {classes:?}");
    }
}

/// Threads loading and unloading a library while the program exits: the tracer read a
/// library's unwind header after another thread had unloaded it (SIGSEGV in every run), and the
/// exit scan must not wait on the loader's locks that a thread held at the exit gate owns.
#[test]
fn threads_unloading_libraries_at_exit_neither_crash_nor_hold_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    let runs = exit_classes_of_runs("dlopen_churn_at_exit.c", &["-O0", "-ldl"], dir.path(), 3);
    for (run, classes) in runs.iter().enumerate() {
        assert_eq!(
            classes.get(&LeakClass::DefinitelyLost),
            Some(&(1, 55)),
            "run {run}: {classes:?}"
        );
    }
}

/// A worker still blocked in `read` when the program exits, with a block's only pointer left in
/// a returned frame below its stack pointer: memcheck reads no memory there, so the block is
/// definitely lost; the block a live frame of the worker holds is still reachable. The whole
/// stack used to be read, which made both reachable.
#[test]
fn stale_pointers_below_a_blocked_threads_stack_pointer_are_not_roots() {
    // Blocked threads' stack pointers come from this file (x86-64 kernels have it; a sandbox
    // such as gVisor may not, and the scan then reads their stacks whole).
    if std::fs::read_to_string("/proc/self/syscall").is_err() {
        eprintln!("skipped: /proc/self/syscall cannot be read");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (program, ours) = exit_classes("blocked_thread_stale.c", &["-O0"], dir.path(), "blocked");
    assert_eq!(
        ours.get(&LeakClass::DefinitelyLost),
        Some(&(1, 321)),
        "{ours:?}"
    );
    assert_eq!(
        ours.get(&LeakClass::StillReachable),
        Some(&(1, 654)),
        "{ours:?}"
    );
    let valgrind = valgrind_summary(&program, &[]);
    for class in [LeakClass::DefinitelyLost, LeakClass::StillReachable] {
        assert_eq!(ours.get(&class), valgrind.get(&class), "{class:?}");
    }
}

#[test]
fn stale_pointers_in_exited_thread_stacks_are_not_roots() {
    let dir = tempfile::tempdir().unwrap();
    let (program, ours) = exit_classes("thread_leak.c", &["-O1"], dir.path(), "thread_leak");
    let valgrind = valgrind_summary(&program, &[]);
    assert_eq!(
        ours.get(&LeakClass::DefinitelyLost),
        Some(&(1, 777)),
        "{ours:?}"
    );
    assert_eq!(
        ours.get(&LeakClass::DefinitelyLost),
        valgrind.get(&LeakClass::DefinitelyLost)
    );
    // glibc's thread descriptor keeps an interior pointer to the thread's DTV (its size depends
    // on the loaded libraries, which differ under valgrind): the same class, not the same bytes.
    assert_eq!(
        ours.get(&LeakClass::PossiblyLost).map(|c| c.0),
        valgrind.get(&LeakClass::PossiblyLost).map(|c| c.0)
    );
}

#[test]
fn valgrind_default_heuristics_are_applied_like_memcheck() {
    let dir = tempfile::tempdir().unwrap();
    let (program, ours) = exit_classes("heuristics.c", &["-O1"], dir.path(), "heuristics");
    assert_eq!(
        ours.get(&LeakClass::PossiblyLost),
        Some(&(1, 40)),
        "{ours:?}"
    );
    assert_eq!(
        ours.get(&LeakClass::StillReachable).map(|c| c.0),
        Some(3),
        "{ours:?}"
    );
    assert_eq!(
        ours,
        valgrind_summary(&program, &[]),
        "leaksift vs valgrind"
    );
}

#[test]
fn stacks_are_exact_through_frame_pointer_and_dwarf_code() {
    let dir = tempfile::tempdir().unwrap();
    for (name, flags) in [
        ("stacks_fp", &["-O2", "-fno-omit-frame-pointer"][..]),
        ("stacks_nofp", &["-O2", "-fomit-frame-pointer"][..]),
    ] {
        let program = compile_c("stacks.c", flags, dir.path(), name);
        let trace = record_clean(&dir.path().join(format!("{name}.lks")), &[], &program, &[]);

        let (_, stack, kind) = trace.allocs(12345)[0];
        assert_eq!(kind, AllocKind::Malloc);
        let frames = trace.stack(stack);
        let names = frame_names(&trace, &frames, &program);
        assert_eq!(
            names[..4],
            ["level3", "level2", "level1", "main"],
            "{name}: {names:?}"
        );

        // Through glibc's qsort, which has no frame pointers: only CFI gets past it.
        let (_, stack, _) = trace.allocs(23456)[0];
        let names = frame_names(&trace, &trace.stack(stack), &program);
        assert_eq!(names[0], "compare", "{name}: {names:?}");
        let ours: Vec<&String> = names.iter().filter(|n| *n != "?").collect();
        assert_eq!(
            ours[..3],
            ["compare", "sort_with_allocation", "main"],
            "{name}: {names:?}"
        );
        assert!(
            names[1] == "?",
            "{name}: the frame after compare is in libc: {names:?}"
        );
        // One call site at the same depth under two callers: the stacks must differ.
        let callers: Vec<String> = trace
            .allocs(34343)
            .iter()
            .map(|(_, stack, _)| {
                frame_names(&trace, &trace.stack(*stack), &program)[..3].join(" < ")
            })
            .collect();
        assert_eq!(callers.len(), 6, "{name}");
        for (i, chain) in callers.iter().enumerate() {
            let via = if i % 2 == 0 { "via_a" } else { "via_b" };
            assert_eq!(
                chain,
                &format!("common < {via} < main"),
                "{name}: {callers:?}"
            );
        }
    }
}

#[test]
fn every_allocator_entry_point_is_recorded_with_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("allocators.c", &["-O1"], dir.path(), "allocators");
    // The program exits 1 if an aligned allocator returned a misaligned block.
    let trace = record_clean(&dir.path().join("allocators.lks"), &[], &program, &[]);
    let page = 4096u64;
    for (size, kind) in [
        (1001, AllocKind::Malloc),
        (1003, AllocKind::Realloc),
        (50004, AllocKind::Realloc),
        (1005, AllocKind::Realloc),
        (1006, AllocKind::PosixMemalign),
        (1152, AllocKind::AlignedAlloc),
        (1008, AllocKind::Memalign),
        (1009, AllocKind::Valloc),
        (page, AllocKind::Pvalloc),
        (1011, AllocKind::Malloc),
    ] {
        let kinds: Vec<AllocKind> = trace.allocs(size).iter().map(|a| a.2).collect();
        assert!(kinds.contains(&kind), "{size} bytes as {kind:?}: {kinds:?}");
    }
    let callocs = trace
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Alloc {
                    size: 1001,
                    kind: AllocKind::Calloc,
                    ..
                }
            )
        })
        .count();
    assert_eq!(callocs, 1);
    let live = trace.live();
    for size in [1001, 1003, 50004, 1005, 1006, 1152, 1008, 1009, page, 1011] {
        for (address, _, _) in trace.allocs(size) {
            assert!(
                !live.contains_key(&address) || live[&address] != size,
                "{size}-byte block freed"
            );
        }
    }
}

#[test]
fn dlopened_modules_are_logged_and_unwound_through() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = compile_c(
        "plugin.c",
        &["-O2", "-fomit-frame-pointer", "-shared", "-fPIC"],
        dir.path(),
        "libplugin.so",
    );
    let program = compile_c(
        "dlopen_main.c",
        &["-O2", "-fomit-frame-pointer"],
        dir.path(),
        "dlopen_main",
    );
    let trace = record_clean(
        &dir.path().join("dlopen.lks"),
        &[],
        &program,
        &[plugin.to_str().unwrap()],
    );
    let module = module_of(&trace, &plugin).expect("the plugin is logged when loaded");
    assert!(module.build_id.as_ref().is_some_and(|id| !id.is_empty()));
    let (_, stack, _) = trace.allocs(9999)[0];
    let frames = trace.stack(stack);
    assert_eq!(frame_names(&trace, &frames[..1], &plugin), ["plugin_alloc"]);
    assert_eq!(frame_names(&trace, &frames[1..2], &program), ["main"]);
    let unloaded = trace
        .events
        .iter()
        .any(|e| matches!(e, Event::ModuleUnloaded { id, .. } if *id == module.id));
    assert!(unloaded, "dlclose is logged");
}

/// Two plugins with the same code layout, each leaking one block from the same call site, loaded
/// one after the other at the same address (the second after `dlclose` of the first). Their
/// leaks have the same return addresses. The report gave both to the plugin loaded last (one
/// 3,333-byte group at `plugin_two_leak`), and once the reader resolved each stack against the
/// modules loaded when it was defined, both to the first (the recorder interned the second
/// plugin's stack as the first's, and wrote the second plugin's load record after the events of
/// its code, stamped from an earlier clock read).
#[test]
fn plugins_loaded_at_the_same_address_keep_their_own_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let plugins: Vec<PathBuf> = ["0", "1"]
        .iter()
        .map(|second| {
            compile_c(
                "reloaded_plugin.c",
                &["-O1", "-shared", "-fPIC", &format!("-DSECOND={second}")],
                dir.path(),
                &format!("libreload{second}.so"),
            )
        })
        .collect();
    let program = compile_c("reload_main.c", &["-O1"], dir.path(), "reload_main");
    let args: Vec<&str> = plugins.iter().map(|p| p.to_str().unwrap()).collect();
    let trace_path = dir.path().join("reload.lks");
    let trace = record_clean(&trace_path, &[], &program, &args);
    let bases: Vec<u64> = plugins
        .iter()
        .map(|plugin| {
            module_of(&trace, plugin)
                .expect("each plugin is logged")
                .base
        })
        .collect();
    assert_eq!(
        bases[0], bases[1],
        "the second plugin was expected where the first was"
    );
    let json: serde_json::Value =
        serde_json::from_str(&report_output(&trace_path, &["--json"])).unwrap();
    let mut lost: Vec<(u64, String)> = json["leak_stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "definitely_lost")
        .map(|s| {
            (
                s["bytes"].as_u64().unwrap(),
                s["frames"][0]["function"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    lost.sort();
    assert_eq!(
        lost,
        [
            (1111, "plugin_one_leak".to_string()),
            (2222, "plugin_two_leak".to_string())
        ],
        "{json:#}"
    );
}

/// A library loaded by a relative path (`dlopen("./librelplug.so")`, or found through
/// `LD_LIBRARY_PATH=.`) was recorded with that path, so `report` run from another directory
/// looked for another file: `??` frames and "the file is gone". The trace now names the file
/// absolutely, and the leak's frame reads `plugin_leak` with its file and line from anywhere.
#[test]
fn a_library_loaded_by_a_relative_path_is_symbolized_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = compile_c(
        "relative_plugin.c",
        &["-O1", "-shared", "-fPIC"],
        dir.path(),
        "librelplug.so",
    );
    let loader = compile_c("relative_dlopen.c", &["-O1"], dir.path(), "relative_dlopen");
    let library_dir = format!("-L{}", dir.path().display());
    let linked = compile_c(
        "relative_dlopen.c",
        &[
            "-O1",
            "-DLINKED",
            "-Wl,--no-as-needed",
            &library_dir,
            "-lrelplug",
        ],
        dir.path(),
        "relative_linked",
    );
    let source = std::fs::read_to_string(programs_dir().join("relative_plugin.c")).unwrap();
    let leak_line = source
        .lines()
        .position(|l| l.contains("malloc(4321)"))
        .unwrap() as u64
        + 1;
    let canonical_plugin = std::fs::canonicalize(&plugin).unwrap();
    ensure_preload();
    for (name, program, args, library_path) in [
        ("dlopen", &loader, &["./librelplug.so"][..], None),
        ("linked", &linked, &[][..], Some(".")),
    ] {
        let trace = dir.path().join(format!("{name}.lks"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_leaksift"));
        command
            .current_dir(dir.path())
            .arg("record")
            .arg("-o")
            .arg(&trace)
            .arg("--")
            .arg(program)
            .args(args);
        if let Some(path) = library_path {
            command.env("LD_LIBRARY_PATH", path);
        }
        let out = command.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
            .current_dir("/")
            .args(["report", "-q", "--json"])
            .arg(&trace)
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        let stack = json["leak_stacks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["bytes"] == 4321)
            .unwrap_or_else(|| panic!("{name}: no 4321-byte leak in {json:#}"));
        assert_eq!(stack["kind"], "definitely_lost", "{name}: {stack:#}");
        let frame = &stack["frames"][0];
        assert_eq!(frame["function"], "plugin_leak", "{name}: {stack:#}");
        assert!(
            frame["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("relative_plugin.c")),
            "{name}: {frame:#}"
        );
        assert_eq!(frame["line"], leak_line, "{name}: {frame:#}");
        assert!(
            json["unresolved_modules"]
                .as_array()
                .is_none_or(|m| m.is_empty()),
            "{name}: {:#}",
            json["unresolved_modules"]
        );
        let recorded = Trace::read(&trace);
        let module = recorded
            .modules()
            .into_iter()
            .find(|m| m.path.ends_with("librelplug.so"))
            .expect("the plugin is logged");
        assert_eq!(
            Path::new(&module.path),
            canonical_plugin,
            "{name}: recorded absolutely"
        );
    }
}

/// The message of a failed `dlsym` or `dlopen`, kept by glibc in the thread's `dlerror` state,
/// is still reachable at exit, as memcheck says. The tracer looked up the functions it wraps
/// (`exit`, `dlopen`, the exec calls, `__gnu_cxx::__freeres` at exit) with `dlsym` when it first
/// needed them, under its re-entry guard: glibc freed the program's message then, unrecorded,
/// and the trace called it definitely lost, so `report --fail-on-leak` failed every program
/// whose `dlsym` had once failed. The constructor looks them all up now.
#[test]
fn the_message_of_a_failed_dlsym_or_dlopen_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c(
        "dlerror_state.c",
        &["-O1", "-ldl"],
        dir.path(),
        "dlerror_state",
    );
    for mode in ["dlsym", "dlopen"] {
        let trace_path = dir.path().join(format!("{mode}.lks"));
        let trace = record_clean(&trace_path, &[], &program, &[mode]);
        assert_eq!(trace.end(), Some(ProcessEnd::Exited(0)), "{mode}");
        let ours = trace.leak_summary(ScanTrigger::Exit);
        for class in [
            LeakClass::DefinitelyLost,
            LeakClass::IndirectlyLost,
            LeakClass::PossiblyLost,
        ] {
            assert_eq!(ours.get(&class), None, "{mode}: {ours:?}");
        }
        let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
            .args(["report", "-q"])
            .arg(&trace_path)
            .arg("--fail-on-leak")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            ours,
            valgrind_summary(&program, &[mode]),
            "{mode}: leaksift vs valgrind"
        );
    }
}

#[test]
fn cxx_new_and_delete_reach_malloc_and_free() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile("g++", "cxx.cpp", &["-O1", "-g"], dir.path(), "cxx");
    let trace = record_clean(&dir.path().join("cxx.lks"), &[], &program, &[]);
    let frees = trace.frees();
    for size in [34567u64, 4321 * 8, 5001] {
        let allocs = trace.allocs(size);
        assert_eq!(allocs.len(), 1, "one block of {size} bytes");
        let (address, stack, kind) = allocs[0];
        assert_eq!(kind, AllocKind::Malloc);
        assert!(
            frees.contains(&address),
            "the {size}-byte block was deleted"
        );
        // Innermost frames are in libstdc++'s operator new (the tracer's jumps on to it); the
        // chain reaches our function.
        let names = frame_names(&trace, &trace.stack(stack), &program);
        assert_eq!(names[0], "?", "{names:?}");
        assert!(
            names.iter().any(|n| n == "_Z15cxx_allocationsv"),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n == "main"), "{names:?}");
    }
    let leaked = trace.allocs(3333)[0].0;
    assert!(trace.live().contains_key(&leaked));
    // libstdc++'s emergency exception pool is released before the scan, as valgrind does.
    let summary = trace.leak_summary(ScanTrigger::Exit);
    assert!(
        summary
            .get(&LeakClass::StillReachable)
            .is_some_and(|(_, bytes)| *bytes >= 3333)
    );
    assert_eq!(
        summary,
        valgrind_summary(&program, &[]),
        "leaksift vs valgrind"
    );
}

#[test]
fn rust_default_allocator_reaches_malloc() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("rust_alloc");
    let status = Command::new("rustc")
        .args(["-O", "-g", "--edition", "2021", "-o"])
        .arg(&program)
        .arg(programs_dir().join("rust_alloc.rs"))
        .status()
        .expect("running rustc");
    assert!(status.success());
    let trace = record_clean(&dir.path().join("rust.lks"), &[], &program, &[]);
    let frees = trace.frees();
    for size in [45678u64, 5678] {
        let allocs = trace.allocs(size);
        assert_eq!(allocs.len(), 1, "one block of {size} bytes");
        assert!(frees.contains(&allocs[0].0));
        let names = frame_names(&trace, &trace.stack(allocs[0].1), &program);
        assert!(
            names.iter().any(|n| n.contains("rust_allocations")),
            "{names:?}"
        );
    }
}

/// The report's peak RSS leaves the tracer's own memory out: 8 threads making 160 000
/// allocations queue enough event buffers to add tens of MiB (36 MiB against 1.4 MiB plain
/// before; a 4 MiB program showed 66 MiB, with a note blaming memory "not from malloc"). Within
/// 32 MiB of the plain run's peak (the compressor's context and the writer's stack stay in),
/// and no such note.
#[test]
fn peak_rss_leaves_the_tracers_own_buffers_out() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("threads.c", &["-O2"], dir.path(), "threads_rss");
    let plain = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(&program)
        .output();
    let Ok(plain) = plain else {
        eprintln!("skipped: /usr/bin/time is missing");
        return;
    };
    let plain_kib: u64 = String::from_utf8_lossy(&plain.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("max RSS from /usr/bin/time");
    let trace_path = dir.path().join("threads_rss.lks");
    record_clean(&trace_path, &[], &program, &[]);
    let report: serde_json::Value =
        serde_json::from_str(&report_output(&trace_path, &["--json"])).unwrap();
    let peak = report["peak_rss_bytes"].as_u64().expect("a peak RSS");
    assert!(
        peak <= plain_kib * 1024 + (32 << 20),
        "peak RSS {peak} against {plain_kib} KiB plain"
    );
    assert!(
        report["untraced_memory"].is_null(),
        "{}",
        report["untraced_memory"]
    );
}

#[test]
fn eight_threads_give_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("threads.c", &["-O2"], dir.path(), "threads");
    let trace = record_clean(&dir.path().join("threads.lks"), &[], &program, &[]);
    let allocs = trace.allocs(77);
    assert_eq!(allocs.len(), 8 * 20000);
    let live = trace.live();
    assert!(
        allocs
            .iter()
            .all(|(address, _, _)| !live.contains_key(address) || live[address] != 77)
    );
    let threads: std::collections::HashSet<u32> = trace
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Alloc {
                thread, size: 77, ..
            } => Some(thread.0),
            _ => None,
        })
        .collect();
    assert_eq!(threads.len(), 8);
    // Events are in time order.
    let times: Vec<u64> = trace
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Alloc { time, .. } | Event::Free { time, .. } => Some(time.0),
            _ => None,
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

fn traces_with_size(dir: &Path, prefix: &str, size: u64) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .filter(|p| !Trace::read(p).allocs(size).is_empty())
        .collect();
    found.sort();
    found
}

/// Records `fork_exec.c` (built as `program`) into `trace_path` with `extra` options: exit
/// status 5 from the image it execs, whose trace (the main one) holds its 4444-byte block and
/// its exit. Returns that trace and `record`'s output.
fn record_fork_exec(program: &Path, trace_path: &Path, extra: &[&str]) -> (Trace, Output) {
    let out = record(trace_path, extra, program, &[]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "the exec'd image's status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = Trace::read(trace_path);
    assert_eq!(image.allocs(4444).len(), 1);
    assert_eq!(image.end(), Some(ProcessEnd::Exited(5)));
    (image, out)
}

#[test]
fn fork_children_are_untraced_unless_followed_and_exec_images_get_their_own_trace() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("fork_exec.c", &["-O1"], dir.path(), "fork_exec");

    // The exec'd image takes the main trace over; the image before exec moves to OUTPUT.<pid>.
    let (image, out) = record_fork_exec(&program, &dir.path().join("plain.lks"), &[]);
    let before_exec = Trace::read(&dir.path().join(format!("plain.lks.{}", image.pid)));
    assert_eq!(before_exec.pid, image.pid);
    assert_eq!(
        before_exec.allocs(1111).len(),
        1,
        "parent allocation flushed before exec"
    );
    assert!(!before_exec.truncated);
    assert_eq!(before_exec.end(), Some(ProcessEnd::Exec));
    assert!(before_exec.allocs(2222).is_empty(), "fork child untraced");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let before_exec_line = format!(
        "leaksift: before an exec, pid {} ran `{}`: its trace is {}",
        image.pid,
        program.display(),
        dir.path()
            .join(format!("plain.lks.{}", image.pid))
            .display()
    );
    assert!(stderr.contains(&before_exec_line), "{stderr}");
    assert!(traces_with_size(dir.path(), "plain.lks", 2222).is_empty());

    let trace_path = dir.path().join("follow.lks");
    let out = record(&trace_path, &["--follow-fork"], &program, &[]);
    assert_eq!(out.status.code(), Some(5));
    let children = traces_with_size(dir.path(), "follow.lks.", 2222);
    assert_eq!(children.len(), 1, "the followed child has its own trace");
    let child = Trace::read(&children[0]);
    assert_ne!(child.pid, image.pid);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let child_line = format!(
        "leaksift: process {} (`{}`), started by the traced one, wrote {}",
        child.pid,
        program.display(),
        children[0].display()
    );
    assert!(stderr.contains(&child_line), "{stderr}");
    assert_eq!(child.end(), Some(ProcessEnd::Exited(0)));
    // Its times count from the fork, not from the parent's start 500 ms before (it "exec'd
    // after 468 ms" when it did at once).
    let ended = child.end_time().expect("the child's end record");
    assert!(ended < 400_000_000, "child ended at {ended} ns");
    assert_eq!(
        child.allocs(1111).len(),
        1,
        "blocks inherited from the parent are restated"
    );
}

/// Every exec call writes out the events pending before it (not only the four glibc lets a
/// library intercept through `execve`): the block allocated just before the exec is in the first
/// image's trace, which ends with the exec record (also while another thread allocates), and
/// the new image's block and exit status are in the main trace.
#[test]
fn every_exec_call_writes_out_what_came_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("exec_variants.c", &["-O1"], dir.path(), "exec_variants");
    for how in [
        "execl", "execle", "execlp", "fexecve", "execveat", "threads",
    ] {
        let trace_path = dir.path().join(format!("{how}.lks"));
        let out = record(&trace_path, &[], &program, &[how]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{how}: {stderr}");
        let image = Trace::read(&trace_path);
        assert_eq!(image.allocs(4444).len(), 1, "{how}");
        assert_eq!(image.end(), Some(ProcessEnd::Exited(5)), "{how}");
        let before_exec = Trace::read(&dir.path().join(format!("{how}.lks.{}", image.pid)));
        assert_eq!(
            before_exec.allocs(3333).len(),
            1,
            "{how}: the block allocated just before the exec"
        );
        // The exec record comes last: nothing another thread did meanwhile follows it.
        assert!(
            matches!(
                before_exec.events.last(),
                Some(Event::End {
                    end: ProcessEnd::Exec,
                    ..
                })
            ),
            "{how}: {:?}",
            before_exec.events.last()
        );
    }
}

/// An exec that fails (no such file) leaves an exec record in the trace, and the program goes on
/// in the same trace: its later block and its exit come after the record, and `report` takes the
/// exit as the end, not the exec. A trace whose program did exec says so instead of TRUNCATED.
#[test]
fn a_failed_exec_goes_on_in_the_same_trace() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("exec_variants.c", &["-O1"], dir.path(), "exec_variants");
    let trace_path = dir.path().join("missing.lks");
    let out = record(&trace_path, &[], &program, &["missing"]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = Trace::read(&trace_path);
    let position = |wanted: &dyn Fn(&Event) -> bool| trace.events.iter().position(wanted);
    let exec_record = position(&|e| {
        matches!(
            e,
            Event::End {
                end: ProcessEnd::Exec,
                ..
            }
        )
    })
    .expect("an exec record before the failed exec");
    let later_block = position(&|e| matches!(e, Event::Alloc { size: 5555, .. }))
        .expect("the block allocated after the failed exec");
    assert!(exec_record < later_block);
    assert_eq!(trace.end(), Some(ProcessEnd::Exited(6)));
    let report = report_output(&trace_path, &[]);
    assert!(
        report.contains("exited with status 6") && !report.contains("TRUNCATED"),
        "{report}"
    );

    // A successful exec: the first image's trace ends with the exec, and says so.
    let trace_path = dir.path().join("execl.lks");
    let out = record(&trace_path, &[], &program, &["execl"]);
    assert_eq!(out.status.code(), Some(5));
    let image = Trace::read(&trace_path);
    let before_exec = dir.path().join(format!("execl.lks.{}", image.pid));
    let report = report_output(&before_exec, &[]);
    assert!(
        report.contains("replaced itself with another program (exec) after")
            && !report.contains("TRUNCATED"),
        "{report}"
    );
    let json = report_output(&before_exec, &["--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["exec"], true);
    assert_eq!(json["truncated"], false);
    assert_eq!(json["exit_status"], serde_json::Value::Null);
    // No exit scan, so no lost bytes to check: an error, not "0 lost: ok".
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["report", "-q"])
        .arg(&before_exec)
        .arg("--fail-on-leak")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("has no reachability scan (the program replaced itself with exec)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("--fail-on-leak: not checked (no reachability scan)")
            && !stdout.contains("budget 0: ok"),
        "{stdout}"
    );
}

/// An exec into a program the tracer cannot follow (`env -i` drops its environment; a static
/// program has no dynamic loader) left only the first image's trace, `record` said nothing, and
/// `report` claimed "the new program's trace is another file". `record` now names the program
/// that went untraced and why; `report` names it too, and says it was not traced when the
/// environment it was given dropped the tracer (which the trace records), or words it
/// conditionally when only `record` can tell (a static program).
#[test]
fn an_exec_into_a_program_that_cannot_be_traced_is_named_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let dynamic = compile_c("static_hello.c", &[], dir.path(), "hello");
    let fixed = compile_c("static_hello.c", &["-static"], dir.path(), "static_hello");

    let trace = dir.path().join("env.lks");
    let out = record(
        &trace,
        &[],
        Path::new("env"),
        &["-i", dynamic.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let pid = Trace::read(&trace).pid;
    let note = format!(
        "leaksift: note: pid {pid} exec'd {} (`{}`), which was not traced, so no trace of it \
         follows {}: the environment it was given no longer preloads the tracer",
        dynamic.display(),
        dynamic.display(),
        trace.display()
    );
    assert!(stderr.contains(&note), "{note}\nin:\n{stderr}");
    let report = report_output(&trace, &[]);
    let said = format!(
        "`{0}` ({0}); no exit scan\nit was not traced: the environment it was given no longer \
         preloads the tracer",
        dynamic.display()
    );
    assert!(
        report.contains("replaced itself with another program (exec) after")
            && report.contains(&said),
        "{said}\nin:\n{report}"
    );
    assert!(!report.contains("is another file"), "{report}");
    let json: serde_json::Value =
        serde_json::from_str(&report_output(&trace, &["--json"])).unwrap();
    assert_eq!(json["exec"], true);
    assert_eq!(
        json["exec_into"],
        serde_json::json!({
            "program": dynamic.to_str().unwrap(),
            "args": [dynamic.to_str().unwrap()],
            "environment_keeps_tracer": false,
        })
    );

    // The shell runs in the test's directory; the program is named relatively.
    let trace = dir.path().join("static.lks");
    ensure_preload();
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .current_dir(dir.path())
        .args(["record", "-o"])
        .arg(&trace)
        .args(["--", "sh", "-c", "exec ./static_hello"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let pid = Trace::read(&trace).pid;
    let note = format!(
        "leaksift: note: pid {pid} exec'd {} (`./static_hello`), which was not traced, so no \
         trace of it follows {}: {} is statically linked",
        fixed.display(),
        trace.display(),
        fixed.display()
    );
    assert!(stderr.contains(&note), "{note}\nin:\n{stderr}");
    let report = report_output(&trace, &[]);
    let said = format!(
        "`./static_hello` ({}); no exit scan\nits trace, if it could be traced, is another file",
        fixed.display()
    );
    assert!(
        report.contains("replaced itself with another program (exec) after")
            && report.contains(&said),
        "{said}\nin:\n{report}"
    );

    // A traced exec chain gets no such note.
    let trace = dir.path().join("traced.lks");
    let out = record(&trace, &[], Path::new("env"), &[dynamic.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(!stderr.contains("note:"), "{stderr}");
    assert_eq!(Trace::read(&trace).end(), Some(ProcessEnd::Exited(4)));
}

/// A `vfork` child runs in the parent's memory until its exec: its exec must not end the
/// parent's trace (nor hold the parent's writer, which then made the next vfork child wait 5 s
/// for a flush), nor a failed exec (followed by `_exit`) start the parent's exit scan; so the
/// parent's trace has no exec record, has the block allocated after the children, and ends
/// with its own exit.
#[test]
fn a_vfork_childs_exec_leaves_the_parents_trace_alone() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("vfork_exec.c", &["-O1"], dir.path(), "vfork_exec");
    let trace_path = dir.path().join("vfork.lks");
    let trace = record_clean(&trace_path, &[], &program, &[]);
    let exec_records = trace
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::End {
                    end: ProcessEnd::Exec,
                    ..
                }
            )
        })
        .count();
    assert_eq!(exec_records, 0);
    assert_eq!(trace.end(), Some(ProcessEnd::Exited(0)));
    assert_eq!(trace.allocs(1111).len(), 1);
    assert_eq!(trace.allocs(2222).len(), 1);
}

/// A program built with gcc's AddressSanitizer aborts when another library is preloaded before
/// its runtime: `record` says that this is why there is no trace (it blamed static linking).
#[test]
fn an_address_sanitizer_build_is_named_as_the_reason_for_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("vfork_exec.c", &["-fsanitize=address"], dir.path(), "asan");
    let out = record(&dir.path().join("asan.lks"), &[], &program, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("it is built with AddressSanitizer (libasan.so)")
            && !stderr.contains("statically linked"),
        "{stderr}"
    );
}

/// A 4 GiB reservation (`MAP_NORESERVE`) of which three pages are written, and a 64 MiB block
/// of which one page is: the exit scan reads only the touched pages of such a mapping or block
/// (it read all 4 GiB before, 2 s; 8.3 s for 16 GiB), and still finds each block whose only
/// pointer lies on one of them, the mapping's first and last page included.
#[test]
fn mostly_untouched_reservations_and_blocks_are_scanned_through_their_touched_pages() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("sparse_reservation.c", &["-O0"], dir.path(), "sparse");
    let trace = record_clean(&dir.path().join("sparse.lks"), &[], &program, &[]);
    assert_eq!(trace.end(), Some(ProcessEnd::Exited(0)));
    let ours = trace.leak_summary(ScanTrigger::Exit);
    assert_eq!(
        ours,
        HashMap::from([
            (LeakClass::DefinitelyLost, (1, 50)),
            (LeakClass::StillReachable, (5, 600 + (64 << 20) + 400)),
        ])
    );
}

/// A seccomp filter on every thread (as systemd's `SystemCallFilter=` sets up) that refuses
/// `process_vm_readv`: the exit scan read nothing and called every block definitely lost (and
/// a filter that kills the process on it got the program killed). It
/// now reads through `/proc/self/mem`; when that is refused too (`pread64`), the trace has no
/// scan, and `report --fail-on-leak` says why instead of failing the leak check.
#[test]
fn a_seccomp_filter_refusing_memory_reads_gives_true_classes_or_no_scan() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("seccomp_filter.c", &["-O0"], dir.path(), "seccomp");
    // Refused with EPERM, or with the process killed (systemd's default action): the tracer
    // must then not try `process_vm_readv` at all (it killed the program before).
    for mode in [&[][..], &["kill"][..]] {
        let trace = record_clean(&dir.path().join("readv.lks"), &[], &program, mode);
        let ours = trace.leak_summary(ScanTrigger::Exit);
        assert_eq!(
            ours,
            HashMap::from([
                (LeakClass::DefinitelyLost, (1, 50)),
                (LeakClass::StillReachable, (2, 100 + 4096)),
            ]),
            "{mode:?}"
        );
    }

    // Writes refused: the trace ends after its header, and `record` says so, where before
    // only `report`'s TRUNCATED ("crash, kill, a cut file") hinted at it.
    let out = record(&dir.path().join("no_writes.lks"), &[], &program, &["write"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the program exited with code 0, but its trace")
            && stderr.contains("a write to the trace was refused"),
        "{stderr}"
    );

    let trace_path = dir.path().join("no_reads.lks");
    let out = record(&trace_path, &[], &program, &["pread"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["report", "-q"])
        .arg(&trace_path)
        .arg("--fail-on-leak")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("the tracer could not read its memory")
            && stderr.contains("/proc/self/mem were refused, as by a seccomp filter"),
        "{stdout}{stderr}"
    );
}

/// The trace's file system fills up (an 8 KiB tmpfs, mounted in a mount namespace of a user
/// namespace by `unshare -rm`, so no privilege is needed). The tracer used to retry the write
/// for every queued event, three system calls each, and the program, held back by the full
/// queue, ran for more than ten minutes; it now stops at the first failed write. `record`
/// exits with the program's status and says why the trace ends early; `report` reads what was
/// written. (Bounded by `timeout`, so the old behaviour fails instead of hanging the suite.)
#[test]
fn a_full_file_system_stops_the_trace_and_not_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("disk_full.c", &["-O1"], dir.path(), "disk_full");
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).unwrap();
    ensure_preload();
    let script = r#"mount -t tmpfs -o size=8k tmpfs "$1" || exit 90
"$2" record -o "$1/full.lks" -- "$3"
echo "record exited $?"
"$2" report -q "$1/full.lks" | head -3"#;
    let out = Command::new("timeout")
        .args(["120", "unshare", "-rm", "sh", "-c", script, "sh"])
        .arg(&mount)
        .arg(env!("CARGO_BIN_EXE_leaksift"))
        .arg(&program)
        .output()
        .expect("running timeout and unshare (coreutils, util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("churned\nrecord exited 7\n"),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains("full.lks is full: the tracer stopped when a write failed"),
        "{stderr}"
    );
    assert!(stdout.contains("TRUNCATED"), "{stdout}{stderr}");
}

/// `pthread_cancel` of threads that only allocate and free: no cancellation point, so none is
/// cancelled, with or without the tracer. The tracer's back-pressure sleep (six threads outrun
/// its writer on two cores) was glibc's `usleep`, a cancellation point: all six threads were
/// cancelled inside `malloc`.
#[test]
fn threads_allocating_under_the_tracer_meet_no_cancellation_point() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("cancel_storm.c", &["-O1"], dir.path(), "cancel_storm");
    let out = record(&dir.path().join("cancel.lks"), &[], &program, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "joined, 0 cancelled\n");
}

/// A program built with gcc's ThreadSanitizer runs with the tracer before its runtime. That
/// runtime maps 31 TiB of shadow memory read-write (`MADV_DONTDUMP`): the exit scan read it as a
/// root for the 60 s the exit waits, then the process ended with nothing but the trace header
/// written. The scan now skips memory left out of core dumps, and the program's own lost blocks
/// come out in their classes. (The runtime keeps blocks of its own, so only the stacks through
/// the program's functions are compared.)
#[test]
fn a_thread_sanitizer_build_is_traced_with_its_leak_classes() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("leaks.c", &["-O0", "-fsanitize=thread"], dir.path(), "tsan");
    let trace_path = dir.path().join("tsan.lks");
    let started = Instant::now();
    let out = record(&trace_path, &[], &program, &[]);
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&report_output(&trace_path, &["--json"])).unwrap();
    assert_eq!(report["exit_status"], 0, "after {elapsed:?}");
    let stacks = report["leak_stacks"].as_array().unwrap();
    // (blocks, bytes) of `kind` allocated through `function`.
    let lost = |kind: &str, function: &str| {
        stacks
            .iter()
            .filter(|s| s["kind"] == kind)
            .filter(|s| {
                s["frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["function"] == function)
            })
            .fold((0, 0), |(blocks, bytes), s| {
                (
                    blocks + s["blocks"].as_u64().unwrap(),
                    bytes + s["bytes"].as_u64().unwrap(),
                )
            })
    };
    assert_eq!(lost("definitely_lost", "lose_plain"), (1, 100));
    assert_eq!(lost("definitely_lost", "lose_owner"), (1, 32));
    assert_eq!(lost("indirectly_lost", "lose_owner"), (1, 48));
    assert_eq!(lost("possibly_lost", "keep_interior"), (1, 64));
    assert_eq!(lost("still_reachable", "keep_global"), (1, 200));
}

/// Other allocators as Debian packages them (`.ci/run` installs libjemalloc2 and
/// libmimalloc2.0), with what the report says about each: jemalloc leaves glibc's internal
/// entry points alone, so glibc serves the program under the tracer; mimalloc defines them and
/// keeps serving.
const OTHER_ALLOCATORS: [(&str, &str); 2] = [
    (
        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
        "libjemalloc.so.2, an allocator of its own: its malloc family was served by glibc's \
         allocator and traced",
    ),
    (
        "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
        "libmimalloc.so.2, an allocator of its own: its malloc family was traced",
    ),
];

/// Whether the allocator library `library` is there; if not, says so (the tests that need it
/// are skipped: `.ci/run` installs Debian's `package`).
fn installed(library: &str, package: &str) -> bool {
    let there = Path::new(library).exists();
    if !there {
        eprintln!("skipped: {library} is missing (Debian package {package})");
    }
    there
}

/// A program linked with another allocator runs as it does without the tracer (whose `malloc`
/// comes first): `malloc_usable_size` and `aligned_alloc` must come from the allocator behind the
/// hooks' `free` (with jemalloc both crashed: its versions were found first). Its blocks are
/// traced, and the report says which allocator served them.
#[test]
fn a_program_linked_with_another_allocator_runs_and_is_traced() {
    let dir = tempfile::tempdir().unwrap();
    for (library, note) in OTHER_ALLOCATORS {
        if !installed(library, "libjemalloc2, libmimalloc2.0") {
            continue;
        }
        let name = Path::new(library).file_name().unwrap().to_string_lossy();
        let program = compile_c(
            "other_allocator.c",
            &["-O1", "-Wl,--no-as-needed", library],
            dir.path(),
            &format!("with_{name}"),
        );
        let trace_path = dir.path().join(format!("{name}.lks"));
        let out = record(&trace_path, &[], &program, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{library}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ok",
            "{library}"
        );
        let trace = Trace::read(&trace_path);
        assert_eq!(trace.allocs(777).len(), 1, "{library}");
        assert_eq!(
            trace.allocs(64 * 100).len(),
            1,
            "{library}: aligned_alloc is traced"
        );
        let report = report_output(&trace_path, &[]);
        assert!(report.contains(note), "{report}");
    }
}

/// A C++ program linked with jemalloc, using `new[]`/`delete[]`, aligned `new`/`delete` and
/// jemalloc's own API (`mallocx`, `rallocx`, `sdallocx`…) beside `malloc`/`free`, was killed
/// under the tracer (SIGABRT or SIGSEGV): jemalloc's `operator new` and `mallocx` served blocks
/// from its heap that the hooks' `free` gave to glibc, and the other way round. The tracer now
/// defines those entry points too: the program runs, and C++ `new` and `mallocx` are traced.
#[test]
fn a_cxx_program_linked_with_jemalloc_runs_and_its_new_is_traced() {
    let library = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
    if !installed(library, "libjemalloc2") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        "g++",
        "jemalloc_mix.cpp",
        &["-O1", "-g", "-Wl,--no-as-needed", library],
        dir.path(),
        "jemalloc_mix",
    );
    let trace_path = dir.path().join("mix.lks");
    let out = record(&trace_path, &[], &program, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    let trace = Trace::read(&trace_path);
    // 1000 `new int[10 + i]`: every one traced and freed.
    for i in [0u64, 500, 999] {
        assert_eq!(trace.allocs(4 * (10 + i)).len(), 1, "new int[{}]", 10 + i);
    }
    let lost = trace
        .leak_summary(ScanTrigger::Exit)
        .get(&LeakClass::DefinitelyLost)
        .copied();
    assert_eq!(lost, Some((2, 4444 + 1234)), "new[] and mallocx leaks");
}

/// Runs `program` plain and under `record`: the same stdout and exit status 0 both times.
fn runs_as_without_the_tracer(program: &Path, trace: &Path) -> String {
    let plain = Command::new(program).output().unwrap();
    assert_eq!(
        plain.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let out = record(trace, &[], program, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, plain.stdout);
    String::from_utf8(out.stdout).unwrap()
}

/// The tracer defines every form of the C++ operators (for allocator libraries it takes
/// `malloc` over). A program replacing only `new(size_t)` and `delete(void*)`, and a library
/// replacing them with its own calls bound to its own (`-Bsymbolic-functions`), had their blocks
/// freed by the tracer's `delete` (glibc aborted); a library's static constructor whose `new`
/// failed before the tracer's constructor ran aborted the process. Each operator now goes on to
/// the definition the program would have reached without the tracer; under an allocator library
/// whose operators the tracer takes over, the forms a program did not replace reach its
/// replacements (the tracer's sized `delete` gave their blocks to glibc).
#[test]
fn replaced_cxx_operators_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        "g++",
        "replaced_operators.cpp",
        &["-O1", "-g"],
        dir.path(),
        "replaced",
    );
    let printed = runs_as_without_the_tracer(&program, &dir.path().join("replaced.lks"));
    assert!(printed.starts_with("news="), "{printed}");
    // Linked with jemalloc too, whose operators the tracer's take over: the forms the program
    // did not replace still reach its replacements (the C++ runtime's defaults route them
    // there), not glibc's free. jemalloc's own sized delete skips the replacement (the program
    // counts no delete without the tool), so only the tracer's run is checked.
    let jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
    if installed(jemalloc, "libjemalloc2") {
        let program = compile(
            "g++",
            "replaced_operators.cpp",
            &["-O1", "-g", "-Wl,--no-as-needed", jemalloc],
            dir.path(),
            "replaced_jemalloc",
        );
        let out = record(&dir.path().join("replaced_je.lks"), &[], &program, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(
                &Command::new(dir.path().join("replaced"))
                    .output()
                    .unwrap()
                    .stdout
            )
        );
    }
    let program = compile_with_library(
        "g++",
        "library_operators.cpp",
        &["-Wl,-Bsymbolic-functions"],
        dir.path(),
        "operators",
    );
    let printed = runs_as_without_the_tracer(&program, &dir.path().join("library.lks"));
    assert_eq!(
        printed,
        "static init: bad_alloc caught\nlive in the library: 40\n\
         live in the library after delete: 0\n"
    );
}

/// `operator new` when memory runs out: the new-handler is called and `std::bad_alloc` thrown as
/// without the tool (the tracer's operators go on to libstdc++'s, whose failure path it is).
#[test]
fn operator_new_out_of_memory_throws_as_without_the_tracer() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        "g++",
        "new_out_of_memory.cpp",
        &["-O0", "-g"],
        dir.path(),
        "new_oom",
    );
    assert_eq!(
        runs_as_without_the_tracer(&program, &dir.path().join("oom.lks")),
        "new[]: bad_alloc\nnew: bad_alloc after 1 new-handler call(s)\n\
         nothrow new: null\naligned new[]: bad_alloc\n"
    );
}

/// A start script that puts an allocator before the tracer (`LD_PRELOAD="liballoc.so
/// $LD_PRELOAD"`) gives the program that allocator's `malloc`: nothing reaches the tracer. The
/// report said "0 allocations", no leak, and that the malloc family "was traced (the tracer's
/// malloc comes first)", and `--fail-on-leak` passed. It now warns, and `--fail-on-leak` refuses
/// to judge (exit 2).
#[test]
fn an_allocator_preloaded_before_the_tracer_is_reported_and_fails_the_leak_check() {
    let library = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";
    if !installed(library, "libmimalloc2.0") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("other_allocator.c", &["-O1"], dir.path(), "plain");
    let trace_path = dir.path().join("first.lks");
    let script = format!(
        "LD_PRELOAD=\"{library} $LD_PRELOAD\" exec '{}'",
        program.display()
    );
    let out = record(&trace_path, &[], Path::new("sh"), &["-c", &script]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The shell's own trace is the `.PID` one; after its exec the program's is `first.lks`.
    let report = report_output(&trace_path, &[]);
    assert!(
        report.contains(&format!(
            "warning: {library}, an allocator of its own, comes before the tracer"
        )),
        "{report}"
    );
    assert!(
        !report.contains("the tracer's malloc comes first"),
        "{report}"
    );
    let checked = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["report", "-q"])
        .arg(&trace_path)
        .arg("--fail-on-leak")
        .output()
        .unwrap();
    assert_eq!(checked.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&checked.stderr).contains("cannot check --fail-on-leak"),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// Children forked back to back under `--follow-fork` (the writer is held at a safe point while
/// each fork runs, and a second request arrives before it woke from the first): every child has
/// its own complete trace with its one lost block, and the parent's trace is complete.
#[test]
fn back_to_back_forks_are_all_followed() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("fork_burst.c", &["-O1"], dir.path(), "fork_burst");
    let trace_path = dir.path().join("burst.lks");
    let parent = record_clean(&trace_path, &["--follow-fork"], &program, &["6"]);
    assert_eq!(parent.end(), Some(ProcessEnd::Exited(0)));
    for i in 0..6u64 {
        let children = traces_with_size(dir.path(), "burst.lks.", 2222 + i);
        assert_eq!(children.len(), 1, "child {i}");
        let child = Trace::read(&children[0]);
        assert_eq!(child.end(), Some(ProcessEnd::Exited(0)), "child {i}");
        assert_eq!(
            child
                .leak_summary(ScanTrigger::Exit)
                .get(&LeakClass::DefinitelyLost),
            Some(&(1, 2222 + i)),
            "child {i}"
        );
    }
}

/// Children made without glibc's `fork` (`syscall(SYS_fork)`, `_Fork`, a raw `clone`) run no
/// atfork handler: they inherited a tracer that believed it had a writer thread, and once their
/// event buffers filled up (about 512 K events) every further buffer waited 2 s for it, for
/// ever in effect. They now go untraced at that point, as fork children do, and the parent's
/// trace is as without them; under `--follow-fork` too (such children are not followed). The
/// program's children kill themselves with an alarm after 20 s, so the old behaviour fails
/// instead of hanging the suite.
#[test]
fn children_made_without_forks_atfork_handlers_run_on_untraced() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("raw_fork.c", &["-O1"], dir.path(), "raw_fork");
    for (name, extra) in [
        ("raw.lks", &[][..]),
        ("raw_follow.lks", &["--follow-fork"][..]),
    ] {
        let trace_path = dir.path().join(name);
        let started = Instant::now();
        let out = record(&trace_path, extra, &program, &[]);
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "children done\n");
        assert!(
            elapsed < Duration::from_secs(15),
            "{name}: took {elapsed:?}"
        );
        let trace = Trace::read(&trace_path);
        assert!(!trace.truncated, "{name}");
        assert_eq!(trace.end(), Some(ProcessEnd::Exited(0)), "{name}");
        assert!(trace.allocs(777).is_empty(), "{name}: a child's events");
        assert_eq!(
            trace
                .leak_summary(ScanTrigger::Exit)
                .get(&LeakClass::DefinitelyLost),
            Some(&(2, 1111 + 2222)),
            "{name}"
        );
        assert!(
            traces_with_size(dir.path(), &format!("{name}."), 777).is_empty(),
            "{name}: no child is traced"
        );
    }
}

/// A program that becomes a daemon with daemon(3): the parent's trace ends with its exit scan
/// (glibc's daemon ends the parent through an `_exit` no hook sees, which left the trace
/// truncated, without leak classes); the daemon itself runs on, untraced without
/// `--follow-fork`.
#[test]
fn a_daemonizing_program_leaves_a_complete_trace_for_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("daemonize.c", &["-O1"], dir.path(), "daemonize");
    let pid_file = dir.path().join("daemon.pid");
    let trace_path = dir.path().join("daemon.lks");
    let parent = record_clean(&trace_path, &[], &program, &[pid_file.to_str().unwrap()]);
    assert!(!parent.truncated);
    assert_eq!(parent.end(), Some(ProcessEnd::Exited(0)));
    assert_eq!(
        parent
            .leak_summary(ScanTrigger::Exit)
            .get(&LeakClass::DefinitelyLost),
        Some(&(1, 3333))
    );
    // The daemon ran (and, untraced, left no trace of its own).
    for _ in 0..100 {
        if std::fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n')) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(pid_file.exists(), "the daemon did not run");
    assert!(traces_with_size(dir.path(), "daemon.lks.", 3333).is_empty());
}

#[test]
fn a_program_that_reuses_the_trace_descriptor_never_receives_trace_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("crash.c", &["-O1"], dir.path(), "crash");
    let trace_path = dir.path().join("closefds.lks");
    let victim = dir.path().join("victim.txt");
    let out = record(
        &trace_path,
        &[],
        &program,
        &["closefds", victim.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "the program's own file stayed clean"
    );
    let trace = Trace::read(&trace_path);
    assert!(
        !trace.truncated,
        "tracing went on in the reopened trace file"
    );
    assert_eq!(trace.end(), Some(ProcessEnd::Exited(0)));
}

/// Runs `crash MODE` under record, returns the record process and the program's pid.
fn start_waiting(
    program: &Path,
    trace: &Path,
    extra: &[&str],
    mode: &str,
) -> (
    std::process::Child,
    BufReader<std::process::ChildStdout>,
    i32,
) {
    ensure_preload();
    let mut record = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .arg("record")
        .arg("-o")
        .arg(trace)
        .args(extra)
        .arg("--")
        .arg(program)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(record.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let pid = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .expect("ready line");
    (record, stdout, pid)
}

/// Polls the trace until `done` holds for what it contains (the writer flushes every 100 ms).
fn wait_for_trace(path: &Path, done: impl Fn(&Trace) -> bool) -> Trace {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut reader) = TraceReader::open(path) {
            let events: Vec<Event> = reader.events().map_while(Result::ok).collect();
            let trace = Trace {
                pid: reader.header().pid,
                events,
                truncated: reader.is_truncated(),
            };
            if done(&trace) {
                return trace;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the trace never showed what was expected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigkill_leaves_a_trace_readable_up_to_the_last_flush() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("crash.c", &["-O1"], dir.path(), "crash");
    let trace_path = dir.path().join("kill.lks");
    let (mut record, _stdout, pid) = start_waiting(&program, &trace_path, &[], "wait");
    wait_for_trace(&trace_path, |t| !t.allocs(6666).is_empty());
    // SAFETY: signalling the traced program we started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let status = record.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 9));
    let trace = Trace::read(&trace_path);
    assert!(trace.truncated);
    assert_eq!(trace.allocs(6666).len(), 1);
}

#[test]
fn forking_while_threads_allocate_neither_deadlocks_nor_loses_children() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("fork_threads.c", &["-O1"], dir.path(), "fork_threads");
    for follow in [false, true] {
        let trace_path = dir.path().join(format!("fork_threads_{follow}.lks"));
        let extra: &[&str] = if follow { &["--follow-fork"] } else { &[] };
        assert!(!record_clean(&trace_path, extra, &program, &[]).truncated);
        let prefix = format!("fork_threads_{follow}.lks.");
        let children: usize = (0..4)
            .map(|i| traces_with_size(dir.path(), &prefix, 3000 + i).len())
            .sum();
        assert_eq!(children, if follow { 4 } else { 0 });
    }
}

#[test]
fn a_segfault_leaves_a_trace_readable_up_to_the_last_flush() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("crash.c", &["-O1"], dir.path(), "crash");
    let trace_path = dir.path().join("segv.lks");
    let (mut record, _stdout, _pid) = start_waiting(&program, &trace_path, &[], "segv");
    wait_for_trace(&trace_path, |t| !t.allocs(5555).is_empty());
    use std::io::Write;
    record.stdin.take().unwrap().write_all(b"crash\n").unwrap();
    assert_eq!(record.wait().unwrap().code(), Some(128 + 11));
    let trace = Trace::read(&trace_path);
    assert!(trace.truncated);
    assert_eq!(trace.allocs(5555).len(), 1);
}

#[test]
fn the_control_file_or_the_scan_signal_triggers_a_scan_of_the_running_program() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("crash.c", &["-O1"], dir.path(), "crash");
    for by_signal in [false, true] {
        let trace_path = dir.path().join(format!("scan_{by_signal}.lks"));
        let extra: &[&str] = if by_signal {
            &["--scan-signal", "USR2"]
        } else {
            &[]
        };
        let (mut record, _stdout, pid) = start_waiting(&program, &trace_path, extra, "scan");
        if by_signal {
            // SAFETY: signalling the traced program we started.
            unsafe { libc::kill(pid, libc::SIGUSR2) };
        } else {
            std::fs::write(dir.path().join(format!("scan_{by_signal}.lks.scan")), b"").unwrap();
        }
        let trace = wait_for_trace(&trace_path, |t| t.on_demand_scan().is_some());
        let lost = trace.allocs(7777)[0].0;
        let scan = trace.on_demand_scan().unwrap();
        let class = scan
            .blocks
            .iter()
            .find(|b| b.address == lost)
            .map(|b| b.class);
        assert_eq!(class, Some(LeakClass::DefinitelyLost));
        use std::io::Write;
        record.stdin.take().unwrap().write_all(b"go\n").unwrap();
        assert_eq!(record.wait().unwrap().code(), Some(0));
        assert!(!Trace::read(&trace_path).truncated);
        // The report's classes come from the exit scan; the on-demand one is kept beside them.
        let report: serde_json::Value =
            serde_json::from_str(&report_output(&trace_path, &["--json"])).unwrap();
        assert_eq!(report["scan"]["trigger"], "exit", "{report}");
        let earlier = &report["earlier_scans"];
        assert_eq!(earlier.as_array().map(Vec::len), Some(1), "{earlier}");
        assert_eq!(earlier[0]["trigger"], "on_demand");
        assert!(
            earlier[0]["leaks"]["definitely_lost"]["bytes"]
                .as_u64()
                .unwrap()
                >= 7777,
            "{earlier}"
        );
    }
}

/// An on-demand scan while the program keeps allocating: `growing_server` prepends an entry to
/// a global list every 10 ms. A block allocated during the scan (not yet known to it) became
/// the list's head, and the whole list looked lost behind it (definitely + indirectly lost
/// every time through `--scan-signal`). Every entry is still reachable.
#[test]
fn a_scan_of_a_program_that_keeps_allocating_finds_its_global_list_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/native");
    let program = dir.path().join("growing_server");
    assert!(
        Command::new("gcc")
            .args(["-g", "-O1", "-o"])
            .arg(&program)
            .arg(source.join("growing_server.c"))
            .status()
            .unwrap()
            .success()
    );
    let trace_path = dir.path().join("growing.lks");
    ensure_preload();
    let mut record = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["record", "--scan-signal", "USR2", "-o"])
        .arg(&trace_path)
        .arg("--")
        .arg(&program)
        .args(["400", "10"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = wait_for_trace(&trace_path, |t| t.allocs(512).len() >= 30);
    // SAFETY: signalling the traced program we started.
    unsafe { libc::kill(started.pid as i32, libc::SIGUSR2) };
    let trace = wait_for_trace(&trace_path, |t| t.on_demand_scan().is_some());
    // The program would run 3 s more before killing itself: end it (record then exits).
    // SAFETY: signalling the traced program we started.
    unsafe { libc::kill(started.pid as i32, libc::SIGKILL) };
    let _ = record.wait();
    let entries: std::collections::HashSet<u64> = trace
        .allocs(512)
        .iter()
        .map(|(address, _, _)| *address)
        .collect();
    let scan = trace.on_demand_scan().unwrap();
    let classes: Vec<LeakClass> = scan
        .blocks
        .iter()
        .filter(|b| entries.contains(&b.address))
        .map(|b| b.class)
        .collect();
    assert!(classes.len() >= 30, "{} entries scanned", classes.len());
    assert!(
        classes.iter().all(|&c| c == LeakClass::StillReachable),
        "{classes:?}"
    );
}

#[test]
fn mmap_is_traced_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("mmap.c", &["-O1"], dir.path(), "mmap");
    let trace = record_clean(&dir.path().join("mmap.lks"), &["--mmap"], &program, &[]);
    let gone = trace.allocs(1 << 20);
    let kept = trace.allocs(3 << 20);
    assert_eq!((gone.len(), kept.len()), (1, 1));
    assert_eq!(gone[0].2, AllocKind::Mmap);
    assert!(trace.frees().contains(&gone[0].0));
    assert!(trace.live().contains_key(&kept[0].0));

    let trace_path = dir.path().join("nommap.lks");
    record(&trace_path, &[], &program, &[]);
    assert!(Trace::read(&trace_path).allocs(3 << 20).is_empty());
}

/// A program for another architecture (a 32-bit x86 build, or an aarch64 one run through
/// qemu-user's binfmt) would have its loader refuse the x86-64 tracer and run untraced, and
/// `record` then blamed static linking. It is refused up front with the reason. The programs
/// are a dynamically linked x86-64 build with the ELF class or machine field changed: the check
/// reads only the header, and refuses before anything runs.
#[test]
fn a_program_for_another_architecture_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let native = compile_c("static_hello.c", &[], dir.path(), "hello");
    for (name, offset, bytes, expected) in [
        ("hello_i386", 0x12, [3u8, 0], "is built for 32-bit x86:"),
        (
            "hello_aarch64",
            0x12,
            [183, 0],
            "is built for 64-bit ARM (aarch64):",
        ),
        ("hello_class32", 4, [1, 1], "is built for x32:"),
    ] {
        let mut image = std::fs::read(&native).unwrap();
        image[offset..offset + 2].copy_from_slice(&bytes);
        let program = dir.path().join(name);
        std::fs::write(&program, image).unwrap();
        std::fs::set_permissions(
            &program,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let out = record(&dir.path().join(format!("{name}.lks")), &[], &program, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(expected) && stderr.contains("cannot be traced"),
            "{name}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{name} ran: {out:?}");
    }
    // The unchanged build is traced (and exits with its status, 4).
    let out = record(&dir.path().join("hello.lks"), &[], &native, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("trace written to"), "{stderr}");
}

/// The dynamic loader run as a command (`/lib64/ld-linux-x86-64.so.2 ./prog`) has no
/// interpreter of its own, and was refused as statically linked; it preloads the tracer into
/// the program it runs like any other.
#[test]
fn a_program_run_through_the_dynamic_loader_is_traced() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = compile_c(
        "reloaded_plugin.c",
        &["-O1", "-shared", "-fPIC", "-DSECOND=0"],
        dir.path(),
        "libreload0.so",
    );
    let program = compile_c("reload_main.c", &["-O1"], dir.path(), "reload_main");
    let loader = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap();
    let trace_path = dir.path().join("loader.lks");
    let out = record(
        &trace_path,
        &[],
        &loader,
        &[program.to_str().unwrap(), plugin.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&report_output(&trace_path, &["--json"])).unwrap();
    let lost = &json["leak_stacks"][0];
    assert_eq!(lost["kind"], "definitely_lost", "{json:#}");
    assert_eq!(lost["bytes"], 1111, "{json:#}");
    assert_eq!(lost["frames"][0]["function"], "plugin_one_leak", "{json:#}");
    assert_eq!(lost["frames"][2]["function"], "main", "{json:#}");
}

#[test]
fn a_static_binary_is_reported_as_untraceable() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("static_hello.c", &["-static"], dir.path(), "static_hello");
    let out = record(&dir.path().join("static.lks"), &[], &program, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("leaksift: error: ") && stderr.contains("is statically linked"),
        "{stderr}"
    );
    // Refused before it ran, not after a whole untraced run.
    assert!(out.stdout.is_empty(), "{out:?}");
    // A program setuid to someone else (the loader would ignore LD_PRELOAD): the same, when
    // this user can make one (root can).
    let setuid = dir.path().join("setuid_sleep");
    std::fs::copy("/bin/sleep", &setuid).unwrap();
    let owned_by_nobody = Command::new("chown")
        .arg("65534")
        .arg(&setuid)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("chmod")
            .arg("u+s")
            .arg(&setuid)
            .status()
            .is_ok_and(|s| s.success());
    // SAFETY: a getter of the process's effective user id.
    if owned_by_nobody && unsafe { libc::geteuid() } != 65534 {
        let out = record(&dir.path().join("setuid.lks"), &[], &setuid, &["5"]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is setuid or setgid"), "{stderr}");
    }
}

/// `-o` naming something that is not a regular file (a FIFO here; `/dev/full` as root was
/// deleted and replaced by a trace) is refused and left alone.
#[test]
fn an_output_path_that_is_not_a_regular_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = record(&fifo, &[], Path::new("/bin/true"), &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a regular file"), "{stderr}");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

/// Long but legal names: a program name of 240 bytes made the default output
/// `leaksift.<program>.lks` (and its control file `.scan`) too long, and record refused to run
/// with "File name too long". The program part is now cut so that the trace and its companions
/// fit. An explicit `-o` whose `.scan` companion cannot exist is one clear error before the
/// command starts; one with room for `.scan` but not for `.<pid>.<n>` runs, with a note.
#[test]
fn long_program_and_output_names_are_fitted_or_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let long_name = "q".repeat(240);
    let program = compile_c("static_hello.c", &[], dir.path(), &long_name);
    ensure_preload();
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .current_dir(dir.path())
        .arg("record")
        .arg("--")
        .arg(&program)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "static hello\n");
    // 9 + 231 + 4 bytes: room left for `.scan` and `.<pid>.<n>` (11 bytes) within 255.
    let expected = dir.path().join(format!("leaksift.{}.lks", "q".repeat(231)));
    assert!(
        stderr.contains(&format!("trace written to {}", expected.display())),
        "{stderr}"
    );
    assert_eq!(Trace::read(&expected).end(), Some(ProcessEnd::Exited(4)));

    let short = compile_c("static_hello.c", &[], dir.path(), "hello");
    let refused = dir.path().join("t".repeat(251));
    let out = record(&refused, &[], &short, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "leaksift: error: -o {}: its file name is 251 bytes long, so the control file \
             beside it, OUTPUT.scan",
            refused.display()
        )) && stderr.contains("use a file name of at most 250 bytes"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "the command must not run: {out:?}");

    let fits = dir.path().join("t".repeat(250));
    let out = record(&fits, &[], &short, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr
            .contains("leaves no room, within the file system's 255-byte limit, for OUTPUT.<pid>"),
        "{stderr}"
    );
    assert_eq!(Trace::read(&fits).end(), Some(ProcessEnd::Exited(4)));
}

#[test]
fn a_command_that_cannot_run_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = record(
        &dir.path().join("x.lks"),
        &[],
        &dir.path().join("missing-program"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("leaksift: error: cannot run"),
        "{stderr}"
    );
}

/// A main thread that ends with `syscall(SYS_exit, n)` left the tracer's writer as the last
/// thread, and `record` waited for ever (SIGTERM could not end it). The writer now notices that
/// no thread of the program is left, ends the trace with the leader's status and leaves with
/// it. It reads that in the threads' `stat` files, which hold the program's name: read as text,
/// a name that is not UTF-8 hid the program's end, and `record` waited for ever again. (Bounded
/// by `timeout`, so the old behaviour fails instead of hanging the suite: `record`'s output
/// goes to files, which the program left running cannot hold open as it would hold pipes.)
#[test]
fn a_main_thread_ending_with_a_raw_exit_ends_the_process() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let built = compile_c("raw_exit.c", &["-O1"], dir.path(), "raw_exit");
    let renamed = dir.path().join(OsStr::from_bytes(b"raw\xe9exit"));
    std::fs::copy(&built, &renamed).unwrap();
    ensure_preload();
    for (n, program) in [built, renamed].iter().enumerate() {
        let trace = dir.path().join(format!("raw{n}.lks"));
        let stderr = dir.path().join(format!("raw{n}.stderr"));
        let status = Command::new("timeout")
            .args(["-s", "KILL", "60"])
            .arg(env!("CARGO_BIN_EXE_leaksift"))
            .args(["record", "-o"])
            .arg(&trace)
            .arg("--")
            .arg(program)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .status()
            .expect("running timeout (coreutils)");
        assert_eq!(
            status.code(),
            Some(3),
            "{program:?}: {}",
            String::from_utf8_lossy(&std::fs::read(&stderr).unwrap())
        );
        let text = report_output(&trace, &[]);
        assert!(text.contains("exited with status 3"), "{program:?}: {text}");
        assert!(
            text.contains("1 allocations (111 B), 0 frees"),
            "{program:?}: {text}"
        );
    }
}

/// A command killed before the tracer started (a library's constructor aborting) left no trace,
/// and `record` said "did not start the tracer … statically linked or setuid" with exit status 2;
/// the status is now the command's, 128 + the signal, and the message says what happened.
#[test]
fn a_command_killed_before_the_tracer_started_keeps_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_with_library("gcc", "early_abort.c", &[], dir.path(), "early");
    ensure_preload();
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["record", "-o"])
        .arg(dir.path().join("early.lks"))
        .arg("--")
        .arg(&program)
        .env("EARLY_ABORT", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + 6), "{stderr}");
    assert!(stderr.contains("before the tracer started"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

/// A program that exhausts its `RLIMIT_AS` was aborted by the tracer ("memory allocation of N
/// bytes failed"): the tracer's own allocations failed too. Tracing now stops instead, and the
/// program sees its `malloc` return NULL and ends as it would without the tool.
#[test]
fn a_program_out_of_address_space_is_not_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("address_space_limit.c", &["-O1"], dir.path(), "as_limit");
    let out = record(&dir.path().join("as.lks"), &[], &program, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("malloc returned NULL after"), "{stdout}");
}

/// Threads created and joined in rounds: glibc's cached stacks keep their DTVs, which are only
/// possibly lost (an interior pointer in each thread descriptor); none may read as definitely
/// lost. They did in most runs while a gone stack's dead range hid a newer stack's descriptor,
/// so each of three runs is checked.
#[test]
fn dtvs_of_cached_thread_stacks_are_never_definitely_lost() {
    let dir = tempfile::tempdir().unwrap();
    // -O0: its bigger frames put the threads' stack pointers where the old ranges covered
    // later descriptors (at -O1 and -O2 the bug did not show).
    let program = compile_c("thread_rounds.c", &["-O0"], dir.path(), "thread_rounds");
    for run in 0..3 {
        let trace = record_clean(
            &dir.path().join(format!("rounds{run}.lks")),
            &[],
            &program,
            &[],
        );
        let classes = trace.leak_summary(ScanTrigger::Exit);
        assert_eq!(
            classes.get(&LeakClass::DefinitelyLost),
            None,
            "run {run}: {classes:?}"
        );
        assert_eq!(
            classes.get(&LeakClass::IndirectlyLost),
            None,
            "run {run}: {classes:?}"
        );
        assert!(
            classes.contains_key(&LeakClass::PossiblyLost),
            "run {run}: {classes:?}"
        );
    }
}

/// `record`'s status lines printed the trace's name (made from the program's) raw: a newline
/// split a line and an escape sequence reached the terminal. It is shell-quoted now.
#[test]
fn status_lines_quote_names_with_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let built = compile_c("raw_exit.c", &["-O1"], dir.path(), "raw_exit");
    let name = "e<v&i\"l\nx\u{1b}[31m";
    std::fs::rename(&built, dir.path().join(name)).unwrap();
    ensure_preload();
    let out = Command::new(env!("CARGO_BIN_EXE_leaksift"))
        .args(["record", "--", &format!("./{name}")])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    for line in stderr.lines() {
        assert!(line.starts_with("leaksift: "), "{stderr}");
    }
    assert!(
        stderr.contains(r#"leaksift.e<v&i"l\nx\e[31m.lks'"#),
        "{stderr}"
    );
}

/// A trace path that is not UTF-8 (a directory named in Latin-1, `-o $'trace\xff.lks'`): the
/// tracer decoded `LEAKSIFT_OUTPUT` lossily, so it created another file (`trace\u{fffd}.lks`) or
/// none at all, and `record` said the program "did not start the tracer" and exited 2. The
/// trace, the image's before an exec (`OUTPUT.<pid>`) and a followed child's now carry the
/// path's bytes as given. A program in such a directory gets its true leak classes: the scan
/// read `/proc/self/smaps` as text, stopped at the program's path, and found every block lost.
#[test]
fn a_trace_path_that_is_not_utf8_is_written_byte_for_byte() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let programs = dir.path().join(OsStr::from_bytes(b"bin\xe9"));
    std::fs::create_dir(&programs).unwrap();
    let leaks = compile_c("leaks.c", &["-O0"], &programs, "leaks");
    let classes =
        record_clean(&programs.join("leaks.lks"), &[], &leaks, &[]).leak_summary(ScanTrigger::Exit);
    assert_leaks_c_classes(&classes, "under bin\\xe9");
    let program = compile_c("fork_exec.c", &["-O1"], dir.path(), "fork_exec");
    let traces = dir.path().join(OsStr::from_bytes(b"dir\xe9"));
    std::fs::create_dir(&traces).unwrap();
    let name = b"trace\xff.lks";
    let trace_path = traces.join(OsStr::from_bytes(name));
    let (image, _) = record_fork_exec(&program, &trace_path, &["--follow-fork"]);
    let mut companions = Vec::new();
    for entry in std::fs::read_dir(&traces).unwrap() {
        let file_name = entry.unwrap().file_name();
        let bytes = file_name.as_bytes();
        if bytes == name {
            continue;
        }
        let pid = bytes
            .strip_prefix(&name[..])
            .and_then(|rest| rest.strip_prefix(b"."))
            .and_then(|pid| std::str::from_utf8(pid).ok()?.parse::<u32>().ok());
        assert!(pid.is_some(), "unexpected file {file_name:?}");
        companions.push(Trace::read(&traces.join(&file_name)));
    }
    let before_exec = companions.iter().find(|t| t.pid == image.pid);
    assert!(
        before_exec.is_some_and(|t| t.allocs(1111).len() == 1),
        "the image before the exec has its trace"
    );
    assert!(
        companions
            .iter()
            .any(|t| t.pid != image.pid && t.allocs(2222).len() == 1),
        "the followed child has its trace"
    );
    report_output(&trace_path, &[]);
}

/// The control file of a trace path that is not UTF-8 (`OUTPUT.scan`, which `record` names in
/// `LEAKSIFT_CONTROL`): the tracer watched a lossily decoded name, so touching the real one
/// never requested a scan.
#[test]
fn the_control_file_of_a_trace_path_that_is_not_utf8_requests_a_scan() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("crash.c", &["-O1"], dir.path(), "crash");
    let trace_path = dir.path().join(OsStr::from_bytes(b"scan\xff.lks"));
    let (mut record, _stdout, _pid) = start_waiting(&program, &trace_path, &[], "scan");
    std::fs::write(
        dir.path().join(OsStr::from_bytes(b"scan\xff.lks.scan")),
        b"",
    )
    .unwrap();
    let trace = wait_for_trace(&trace_path, |t| t.on_demand_scan().is_some());
    assert!(!trace.allocs(7777).is_empty());
    use std::io::Write;
    record.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(record.wait().unwrap().code(), Some(0));
    assert!(!Trace::read(&trace_path).truncated);
}
