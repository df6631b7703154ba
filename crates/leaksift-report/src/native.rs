//! Text rendering of native trace reports (`leaksift report`): leak summary, leak stacks, peak
//! holders, hotspots, temporaries and growth by call site.

use std::fmt::Write;

use leaksift_native::symbolize::{Frame, UNKNOWN};
use leaksift_native::untraced::{ManagedRuntime, UntracedMemory, leaves_glibc_serving};
use leaksift_native::view::{GrowthView, Hotspot, NativeReport, SiteView};

use crate::table::{Align, Table};
use crate::units;

/// What the report is about, for its first lines.
#[derive(Debug, Clone, Copy)]
pub struct TraceLabel<'a> {
    pub trace: &'a str,
    pub command: &'a [String],
    pub pid: u32,
}

/// How many frames of a leak stack are printed.
const LEAK_STACK_FRAMES: usize = 24;

/// Renders the whole report as text, listing at most `top` lost-block stacks (the JSON has all).
pub fn render_text(report: &NativeReport, label: TraceLabel<'_>, top: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {}: pid {}, `{}`",
        crate::escape::one_line(label.trace),
        label.pid,
        crate::escape::shell_words(label.command)
    );
    if report.truncated {
        let _ = writeln!(
            out,
            "TRUNCATED: the trace ends without the process's exit (crash, kill, a cut file, or a \
             process still running); \
             figures cover what was recorded"
        );
    } else if report.exec {
        let _ = write!(
            out,
            "replaced itself with another program (exec) after {}",
            units::duration(report.duration_s)
        );
        match &report.exec_into {
            Some(exec) => {
                let program = if exec.program.is_empty() {
                    "its file unknown".to_string()
                } else {
                    crate::escape::shell_word(&exec.program).into_owned()
                };
                let _ = writeln!(
                    out,
                    ": `{}` ({program}); no exit scan",
                    crate::escape::shell_words(&exec.args)
                );
                if exec.environment_keeps_tracer {
                    let _ = writeln!(
                        out,
                        "its trace, if it could be traced, is another file (`leaksift record` \
                         named it, or said why there is none)"
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "it was not traced: the environment it was given no longer preloads the \
                         tracer (LD_PRELOAD or LEAKSIFT_OUTPUT was dropped)"
                    );
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    ": no exit scan; the new program's trace, if it could be traced, is \
                     another file"
                );
            }
        }
    } else if let Some(status) = report.exit_status {
        let _ = writeln!(
            out,
            "exited with status {status} after {}",
            units::duration(report.duration_s)
        );
    }
    let temporary_share = if report.allocations > 0 {
        100.0 * report.temporary_allocations as f64 / report.allocations as f64
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "{} allocations ({}), {} frees, {} temporary ({temporary_share:.0}%)",
        report.allocations,
        units::bytes(report.allocated_bytes as f64),
        report.frees,
        report.temporary_allocations,
    );
    let _ = write!(
        out,
        "peak heap {} in {} blocks at {}",
        units::bytes(report.peak_bytes as f64),
        report.peak_blocks,
        units::duration(report.peak_time_s)
    );
    match report.peak_rss_bytes {
        Some(rss) => {
            let _ = writeln!(out, "; peak RSS {}", units::bytes(rss as f64));
        }
        None => out.push('\n'),
    }
    let _ = writeln!(
        out,
        "live at end: {} in {} blocks",
        units::bytes(report.live_at_end.bytes as f64),
        report.live_at_end.blocks
    );
    if let Some(untraced) = &report.untraced_memory {
        untraced_notes(&mut out, untraced, report, label.pid);
    }
    let allocator_first = report
        .untraced_memory
        .as_ref()
        .is_some_and(|u| u.allocator_before_tracer.is_some());
    if report.allocations_without_stack > 0 {
        let _ = writeln!(
            out,
            "note: {} of the allocations have no call stack (rows without frames): the tracer's \
             table of distinct stacks was full (about 2 M stacks, fewer deep ones: 512 MiB of \
             frames), or they came before it existed; the totals still count them",
            report.allocations_without_stack
        );
    }
    if report.allocations == 0 && !allocator_first {
        let _ = writeln!(
            out,
            "note: no allocation reached the tracer: the program allocates nothing through the \
             malloc family, or has an allocator of its own built in (a statically linked \
             jemalloc or mimalloc, a Rust #[global_allocator]), whose blocks are not traced"
        );
    }

    out.push('\n');
    match &report.scan {
        Some(scan) => {
            let _ = writeln!(
                out,
                "LEAK SUMMARY (reachability scan {} at {})",
                if scan.trigger == "exit" {
                    "at exit"
                } else {
                    "on demand"
                },
                units::duration(scan.time_s)
            );
            let mut table = Table::new(&[
                ("class", Align::Left),
                ("blocks", Align::Right),
                ("bytes", Align::Right),
                ("unsuppressed bytes", Align::Right),
            ]);
            let rows = [
                (
                    "definitely lost",
                    report.leaks.definitely_lost,
                    report.unsuppressed.definitely_lost,
                ),
                (
                    "indirectly lost",
                    report.leaks.indirectly_lost,
                    report.unsuppressed.indirectly_lost,
                ),
                (
                    "possibly lost",
                    report.leaks.possibly_lost,
                    report.unsuppressed.possibly_lost,
                ),
                (
                    "still reachable",
                    report.leaks.still_reachable,
                    report.unsuppressed.still_reachable,
                ),
            ];
            for (name, all, unsuppressed) in rows {
                table.row([
                    name.to_string(),
                    all.blocks.to_string(),
                    all.bytes.to_string(),
                    unsuppressed.bytes.to_string(),
                ]);
            }
            out.push_str(&table.render());
            if scan.unmatched_blocks > 0 {
                let _ = writeln!(
                    out,
                    "({} scanned blocks had no allocation record and are not counted)",
                    scan.unmatched_blocks
                );
            }
            allocated_during_scan_note(&mut out, scan);
        }
        None if report.exit_status.is_some() => {
            // An exited process gets its scan unless its memory could not be read at all.
            let _ = writeln!(
                out,
                "LEAK SUMMARY: not available (the process exited, but the tracer could not read \
                 its memory: process_vm_readv and /proc/self/mem were refused, as by a seccomp \
                 filter); see growth below"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "LEAK SUMMARY: not available (the trace has no reachability scan); see growth below"
            );
        }
    }
    for earlier in &report.earlier_scans {
        let leaks = &earlier.leaks;
        let class = |name: &str, totals: leaksift_native::replay::BlocksBytes| {
            format!(
                "{name} {} ({})",
                totals.blocks,
                units::bytes(totals.bytes as f64)
            )
        };
        let _ = writeln!(
            out,
            "earlier scan {} at {}: {}, {}, {}, {}",
            if earlier.scan.trigger == "exit" {
                "at exit"
            } else {
                "on demand"
            },
            units::duration(earlier.scan.time_s),
            class("definitely lost", leaks.definitely_lost),
            class("indirectly lost", leaks.indirectly_lost),
            class("possibly lost", leaks.possibly_lost),
            class("still reachable", leaks.still_reachable),
        );
        allocated_during_scan_note(&mut out, &earlier.scan);
    }

    let lost: Vec<_> = report
        .leak_stacks
        .iter()
        .filter(|s| s.kind != "still_reachable")
        .collect();
    if !lost.is_empty() {
        let _ = writeln!(
            out,
            "\nLost blocks by allocation stack (innermost frame first):"
        );
        for (rank, stack) in lost.iter().take(top).enumerate() {
            let _ = write!(
                out,
                "\n#{} {}: {} in {} block{}",
                rank + 1,
                stack.kind.replace('_', " "),
                units::bytes(stack.bytes as f64),
                stack.blocks,
                if stack.blocks == 1 { "" } else { "s" }
            );
            match &stack.suppressed_by {
                Some(pattern) => {
                    let _ = writeln!(
                        out,
                        " (suppressed by leak:{})",
                        crate::escape::one_line(pattern)
                    );
                }
                None => out.push('\n'),
            }
            for (i, frame) in stack.frames.iter().take(LEAK_STACK_FRAMES).enumerate() {
                let _ = writeln!(
                    out,
                    "    {} {}",
                    if i == 0 { "at" } else { "by" },
                    frame_text(frame)
                );
            }
            if stack.frames.len() > LEAK_STACK_FRAMES {
                let _ = writeln!(
                    out,
                    "    … {} more frames",
                    stack.frames.len() - LEAK_STACK_FRAMES
                );
            }
            if stack.stack_truncated {
                let _ = writeln!(
                    out,
                    "    … deeper frames not recorded (the recorder keeps {} frames)",
                    leaksift_native::view::RECORDER_MAX_FRAMES
                );
            }
        }
    }

    if lost.len() > top {
        let _ = writeln!(
            out,
            "\n… {} more lost-block stack{} (raise --top, or see --json)",
            lost.len() - top,
            if lost.len() - top == 1 { "" } else { "s" }
        );
    }

    if !report.peak_stacks.is_empty() {
        let _ = writeln!(
            out,
            "\nHeld at the peak ({}):",
            units::bytes(report.peak_bytes as f64)
        );
        let mut table = Table::new(&[("bytes", Align::Right), ("allocated at", Align::Left)]);
        let frames: Vec<&[Frame]> = report.peak_stacks.iter().map(|s| &s.frames[..]).collect();
        for (stack, label) in report.peak_stacks.iter().zip(site_labels(&frames)) {
            table.row([units::bytes(stack.bytes as f64), label]);
        }
        out.push_str(&table.render());
    }
    hotspot_table(&mut out, "Hotspots (most allocations):", &report.hotspots);
    hotspot_table(
        &mut out,
        "Temporary allocations (freed before the next allocation):",
        &report.temporaries,
    );

    render_growth(&mut out, &report.growth);
    out
}

/// The growth-by-call-site section: the sites with a verdict, and how many have none.
fn render_growth(out: &mut String, growth: &GrowthView) {
    let decided: Vec<_> = growth
        .sites
        .iter()
        .filter(|site| site.verdict != "inconclusive")
        .collect();
    if decided.is_empty() {
        if !growth.sites.is_empty() {
            let _ = writeln!(
                out,
                "\nGrowth by call site: inconclusive at every site ({} samples of live bytes)",
                growth.samples
            );
        }
    } else {
        let _ = writeln!(
            out,
            "\nGrowth by call site ({} samples of live bytes):",
            growth.samples
        );
        let mut table = Table::new(&[
            ("verdict", Align::Left),
            ("growth/s", Align::Right),
            ("live at end", Align::Right),
            ("allocated at", Align::Left),
        ]);
        let frames: Vec<&[Frame]> = decided.iter().map(|g| &g.frames[..]).collect();
        for (site, label) in decided.iter().zip(site_labels(&frames)) {
            table.row([
                site.verdict.to_string(),
                units::bytes(site.slope_bytes_per_s),
                live_at_end(site),
                label,
            ]);
        }
        out.push_str(&table.render());
        let undecided = growth.sites.len() - decided.len();
        if undecided > 0 {
            let _ = writeln!(
                out,
                "… and {undecided} inconclusive (too few samples, or too noisy to tell: a site \
                 that fills and frees at a pace the samples cannot follow); --json lists them"
            );
        }
    }
}

/// A growth row's live bytes at the end, with what the site held before the exit freed it.
fn live_at_end(growth: &SiteView) -> String {
    let at_end = units::bytes(growth.live_bytes_at_end as f64);
    if growth.live_bytes_before_exit == growth.live_bytes_at_end {
        at_end
    } else {
        format!(
            "{at_end} ({} before exit)",
            units::bytes(growth.live_bytes_before_exit as f64)
        )
    }
}

/// The note on an allocator library the program loaded: who served its malloc family (traced
/// either way: the tracer's malloc comes first) and what is not traced.
fn allocator_note(module: &str) -> String {
    let served = if leaves_glibc_serving(module) {
        "its malloc family was served by glibc's allocator and traced (the tracer's malloc comes \
         first)"
            .to_string()
    } else {
        format!(
            "its malloc family was traced (the tracer's malloc comes first), but if {name} also \
             replaces glibc's internal entry points, as tcmalloc and mimalloc do, it kept serving \
             it, and its own bookkeeping, scanned as roots, can make lost blocks look reachable \
             (run without it for exact leak classes)",
            name = module.rsplit('/').next().unwrap_or(module)
        )
    };
    format!(
        "note: the program loaded {module}, an allocator of its own: {served}; what it hands out \
         through entry points of its own beyond the malloc family, C++ new/delete and mallocx \
         (tc_malloc, mi_malloc…) is not traced"
    )
}

/// Says what memory the report cannot show, and why leaksift thinks there is some.
fn untraced_notes(out: &mut String, untraced: &UntracedMemory, report: &NativeReport, pid: u32) {
    if let Some(first) = &untraced.allocator_before_tracer {
        let _ = writeln!(
            out,
            "warning: {first}, an allocator of its own, comes before the tracer in the loader's \
             search order (it is listed before it in LD_PRELOAD, as LD_PRELOAD=\"liballoc.so \
             $LD_PRELOAD\" puts it): the program's malloc family was its, not the tracer's, so \
             its allocations are not in this report and its leaks cannot be judged; add the \
             library after the tracer instead (LD_PRELOAD=\"$LD_PRELOAD liballoc.so\")"
        );
    }
    for module in &untraced.allocator_modules {
        if untraced.allocator_before_tracer.as_ref() != Some(module) {
            let _ = writeln!(out, "{}", allocator_note(module));
        }
    }
    if let Some(runtime) = untraced.managed_runtime {
        let _ = writeln!(out, "note: {}", runtime_advice(runtime, pid));
    }
    if let (Some(ratio), Some(rss)) = (untraced.rss_over_heap, report.peak_rss_bytes) {
        let times = if report.peak_bytes == 0 {
            "far above".to_string()
        } else {
            format!("{ratio:.0}×")
        };
        let _ = writeln!(
            out,
            "note: peak RSS {} is {times} the peak traced heap ({}): most of the memory did \
             not come from malloc and friends (mmap — `record --mmap` traces it —, an allocator \
             linked into the program, a JIT or interpreter arenas) and is not in this report",
            units::bytes(rss as f64),
            units::bytes(report.peak_bytes as f64)
        );
    }
}

/// Where a managed runtime's objects are, and the tool that sees them (for a JVM, the command
/// with the traced process's id, usable while it still runs: after an on-demand scan).
fn runtime_advice(runtime: ManagedRuntime, pid: u32) -> String {
    match runtime {
        ManagedRuntime::Python => {
            "this is CPython: objects of up to 512 bytes come from pymalloc's \
             arenas, which this report does not see unless the program ran with \
             PYTHONMALLOC=malloc (as for Valgrind); the Python lines that allocate them are \
             tracemalloc's to show"
                .to_string()
        }
        ManagedRuntime::Node => "this is Node.js: JavaScript objects live in V8's heap, not in \
             this report (only native memory such as ArrayBuffer contents is); take heap \
             snapshots (`node --heapsnapshot-signal=SIGUSR2`) and compare them with \
             `leaksift diff`"
            .to_string(),
        ManagedRuntime::Jvm => format!(
            "this is a JVM: Java objects live in the Java heap, not in this report (only native \
             memory such as direct buffers and JNI is); confirm growth with `leaksift check \
             --jvm-heap` and find what holds it with `jcmd {pid} GC.heap_dump FILE` and \
             `leaksift heap FILE`"
        ),
    }
}

fn hotspot_table(out: &mut String, title: &str, rows: &[Hotspot]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}");
    let mut table = Table::new(&[
        ("allocations", Align::Right),
        ("temporary", Align::Right),
        ("bytes", Align::Right),
        ("allocated at", Align::Left),
    ]);
    let frames: Vec<&[Frame]> = rows.iter().map(|r| &r.frames[..]).collect();
    for (row, label) in rows.iter().zip(site_labels(&frames)) {
        table.row([
            row.allocations.to_string(),
            row.temporary.to_string(),
            units::bytes(row.allocated_bytes as f64),
            label,
        ]);
    }
    out.push_str(&table.render());
}

/// `function (file:line)`, or `?? (module+0xoffset)` when unresolved, on one line
/// ([`crate::escape::one_line`]: a name may hold a newline or a tab).
pub fn frame_text(frame: &Frame) -> String {
    let inlined = if frame.inlined { " [inlined]" } else { "" };
    let text = match (&frame.file, frame.line) {
        _ if frame.function == UNKNOWN => format!("?? ({}+{:#x})", frame.module, frame.offset),
        (Some(file), Some(line)) => {
            format!("{}{inlined} ({}:{line})", frame.function, short_file(file))
        }
        (Some(file), None) => format!("{}{inlined} ({})", frame.function, short_file(file)),
        _ => format!(
            "{}{inlined} ({}+{:#x})",
            frame.function,
            short_file(&frame.module),
            frame.offset
        ),
    };
    crate::escape::one_line(&text).into_owned()
}

fn short_file(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Frames a site label starts with (outside the allocator).
const SITE_FRAMES: usize = 2;
/// The most frames a label grows to while it still reads like another row's.
const SITE_FRAMES_MAX: usize = 8;

/// A one-line label for a stack: its first two frames outside the allocator.
fn site(frames: &[Frame]) -> String {
    site_with(frames, SITE_FRAMES)
}

/// A one-line label for a stack: its first `depth` frames outside the allocator (the first
/// frames at all when every frame is the allocator's).
fn site_with(frames: &[Frame], depth: usize) -> String {
    let user: Vec<&Frame> = frames
        .iter()
        .filter(|f| !f.is_in_allocator())
        .take(depth)
        .collect();
    let shown: Vec<&Frame> = if user.is_empty() {
        frames.iter().take(depth).collect()
    } else {
        user
    };
    if shown.is_empty() {
        return UNKNOWN.to_string();
    }
    shown
        .iter()
        .map(|f| frame_text(f))
        .collect::<Vec<_>>()
        .join(" ← ")
}

/// Labels for the rows of one table: each row's two-frame [`site`], lengthened by one caller
/// at a time (up to [`SITE_FRAMES_MAX`]) while it still equals another row's. Rows are call
/// sites that differ somewhere down their stacks, so two rows that read alike would look like
/// one site split in two (heaptrack_print shows every backtrace under a site for the same
/// reason).
pub(crate) fn site_labels(rows: &[&[Frame]]) -> Vec<String> {
    let mut labels: Vec<String> = rows.iter().map(|frames| site(frames)).collect();
    for depth in SITE_FRAMES + 1..=SITE_FRAMES_MAX {
        let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for label in &labels {
            *seen.entry(label.as_str()).or_default() += 1;
        }
        let repeated: Vec<usize> = (0..rows.len())
            .filter(|&i| seen[labels[i].as_str()] > 1)
            .collect();
        if repeated.is_empty() {
            break;
        }
        for i in repeated {
            labels[i] = site_with(rows[i], depth);
        }
    }
    labels
}

/// The blocks a scan left unclassified because the program allocated them while it ran.
fn allocated_during_scan_note(out: &mut String, scan: &leaksift_native::view::ScanView) {
    let during = scan.allocated_during_scan;
    if during.blocks > 0 {
        let _ = writeln!(
            out,
            "({} blocks, {}, were allocated while the scan ran and are in no class: the program \
             had just made them, so the scan took them as roots)",
            during.blocks,
            units::bytes(during.bytes as f64)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: Option<&str>, line: Option<u32>) -> Frame {
        Frame {
            function: function.to_string(),
            file: file.map(str::to_string),
            line,
            module: "/usr/lib/libfoo.so".to_string(),
            offset: 0x1234,
            inlined: false,
        }
    }

    /// A tab or newline in a function, file or module name split a lost-block stack's line in
    /// the text report (the tables already wrote them `\t`, `\n`).
    #[test]
    fn frame_text_stays_on_one_line() {
        let text = frame_text(&frame("tab\tnew\nline", Some("dir/a\nb.c"), Some(7)));
        assert_eq!(text, r"tab\tnew\nline (a\nb.c:7)");
        let mut unknown = frame(UNKNOWN, None, None);
        unknown.module = "/lib/evil\n.so".to_string();
        assert_eq!(frame_text(&unknown), r"?? (/lib/evil\n.so+0x1234)");
    }

    /// jemalloc leaves glibc serving under the tracer; tcmalloc and mimalloc keep serving.
    fn growth_site(verdict: &'static str, function: &str) -> SiteView {
        SiteView {
            verdict,
            reason: "",
            slope_bytes_per_s: 0.0,
            slope_ci_bytes_per_s: [0.0, 0.0],
            p_value: 1.0,
            live_bytes_at_end: 0,
            live_bytes_before_exit: 0,
            frames: vec![frame(function, Some("app.c"), Some(3))],
            stack_truncated: false,
        }
    }

    /// Sites without a verdict are counted under the table, not dropped without a word (the
    /// busiest site of a program, a buffer filled and freed in a fast cycle, just was not
    /// there).
    #[test]
    fn growth_says_how_many_sites_are_inconclusive() {
        let growth = GrowthView {
            samples: 256,
            sites: vec![
                growth_site("leak", "leak_one"),
                growth_site("inconclusive", "sawtooth"),
                growth_site("inconclusive", "burst"),
            ],
        };
        let mut out = String::new();
        render_growth(&mut out, &growth);
        assert!(
            out.contains("leak_one") && !out.contains("sawtooth"),
            "{out}"
        );
        assert!(out.contains("… and 2 inconclusive"), "{out}");
        let mut out = String::new();
        render_growth(
            &mut out,
            &GrowthView {
                samples: 256,
                sites: vec![growth_site("inconclusive", "sawtooth")],
            },
        );
        assert!(out.contains("inconclusive at every site"), "{out}");
    }

    #[test]
    fn allocator_notes_say_who_served_the_malloc_family() {
        let jemalloc = allocator_note("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2");
        assert!(
            jemalloc.contains("served by glibc's allocator and traced")
                && !jemalloc.contains("kept serving"),
            "{jemalloc}"
        );
        for other in ["/usr/lib/libtcmalloc.so.4", "/usr/lib/libmimalloc.so.2"] {
            let note = allocator_note(other);
            assert!(
                note.contains("kept serving it") && !note.contains("served by glibc"),
                "{note}"
            );
        }
    }

    #[test]
    fn frames_show_source_or_module_offset() {
        assert_eq!(
            frame_text(&frame("f", Some("/src/a.c"), Some(12))),
            "f (a.c:12)"
        );
        assert_eq!(
            frame_text(&frame("??", None, None)),
            "?? (/usr/lib/libfoo.so+0x1234)"
        );
        assert_eq!(frame_text(&frame("g", None, None)), "g (libfoo.so+0x1234)");
    }

    #[test]
    fn site_labels_skip_allocator_frames() {
        let frames = [
            frame("operator new(unsigned long)", None, None),
            frame("make", Some("/src/m.cpp"), Some(3)),
            frame("main", Some("/src/m.cpp"), Some(9)),
        ];
        assert_eq!(site(&frames), "make (m.cpp:3) ← main (m.cpp:9)");
    }

    #[test]
    fn site_labels_keep_callers_named_like_allocators() {
        let frames = [
            frame("realloc_chain", Some("/src/c.c"), Some(50)),
            frame("main", Some("/src/c.c"), Some(71)),
        ];
        assert_eq!(site(&frames), "realloc_chain (c.c:50) ← main (c.c:71)");
    }

    #[test]
    fn site_labels_skip_inlined_standard_library_frames() {
        let std_file = "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/alloc/src/alloc.rs";
        let frames = [
            frame("alloc", Some(std_file), Some(95)),
            frame(
                "push_mut<u8>",
                Some("/usr/include/c++/12/bits/stl_vector.h"),
                Some(1029),
            ),
            frame("remember_response", Some("/src/leaky.rs"), Some(43)),
            frame("run", Some("/src/leaky.rs"), Some(29)),
        ];
        assert_eq!(
            site(&frames),
            "remember_response (leaky.rs:43) ← run (leaky.rs:29)"
        );
        // A stack made only of such frames still gets a label.
        assert_eq!(site(&frames[..1]), "alloc (alloc.rs:95)");
    }

    #[test]
    fn rows_that_read_alike_get_callers_until_they_differ() {
        let stack = |caller: &str| {
            vec![
                frame("malloc", None, None),
                frame("arg", Some("arg_group.rs"), Some(139)),
                frame("args", Some("arg_group.rs"), Some(172)),
                frame("build", Some("cli.rs"), Some(10)),
                frame(caller, Some("main.rs"), Some(3)),
            ]
        };
        let (a, b, other) = (stack("parse"), stack("augment"), stack("parse"));
        let unique = vec![frame("make", Some("m.rs"), Some(1))];
        let labels = site_labels(&[&a, &unique, &b]);
        assert_eq!(
            labels,
            [
                "arg (arg_group.rs:139) ← args (arg_group.rs:172) ← build (cli.rs:10) ← parse (main.rs:3)",
                "make (m.rs:1)",
                "arg (arg_group.rs:139) ← args (arg_group.rs:172) ← build (cli.rs:10) ← augment (main.rs:3)",
            ]
        );
        // Nothing tells two equal stacks apart: their labels stop growing at the whole stack.
        let same = site_labels(&[&a, &other]);
        assert_eq!(same[0], same[1]);
        assert!(same[0].ends_with("parse (main.rs:3)"), "{}", same[0]);
        // A row alone keeps its two frames.
        assert_eq!(
            site_labels(&[&a]),
            ["arg (arg_group.rs:139) ← args (arg_group.rs:172)"]
        );
    }
}
