//! Text rendering of heap-graph analyses (heap, paths, diff) from plain view rows.
//!
//! The CLI turns engine results into these rows (names already decoded); this module only lays
//! them out. JSON is produced by the CLI from the same rows.

use leaksift_heap::v8::{AllocationFrame, AllocationSite, Statistics};

use std::collections::HashMap;

use crate::escape;
use crate::table::{Align, Table};
use crate::units::bytes;

/// One class in a histogram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassRow {
    pub name: String,
    pub count: u64,
    pub shallow_bytes: u64,
    pub retained_bytes: u64,
}

/// One object (a dominator, a detached object…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRow {
    /// Class and name, e.g. `Foo @123` or `(string) "abc" @55`.
    pub description: String,
    pub id: u64,
    pub shallow_bytes: u64,
    pub retained_bytes: u64,
}

/// One step of a retaining path: the edge into the node (none for the root) and the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathStepRow {
    pub edge_kind: Option<String>,
    pub edge_name: Option<String>,
    pub node: String,
    pub id: u64,
    pub shallow_bytes: u64,
    pub retained_bytes: u64,
    /// The steps of a long path left out right before this one (a linked list of a million
    /// nodes would otherwise give a million rows); `None` when none were.
    pub skipped_before: Option<SkippedSteps>,
}

/// Steps of a retaining path left out of a report, counted in the first step shown after them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSteps {
    /// How many steps were left out.
    pub count: u64,
    /// The commonest kind of step among them, as a path shows it (`--[field next]--> Node`),
    /// and how many of them are of that kind: it tells a linked list or a deep tree at a glance.
    pub commonest: String,
    pub commonest_count: u64,
}

/// A leak suspect with the path that explains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuspectRow {
    pub description: String,
    pub retained_bytes: u64,
    pub accumulation_point: String,
    /// What piles up there: the objects it immediately dominates, by class, biggest first.
    pub accumulated: Vec<AccumulatedRow>,
    pub path: Vec<PathStepRow>,
    /// The stack that allocated the suspect (a group's biggest instance) on one line: V8
    /// snapshots taken with allocation tracking; empty otherwise.
    pub allocated_at: String,
    /// Whether the suspect is a class's instances (its `path` leads to the biggest of them,
    /// which need not pass the accumulation point the group's common path ends at).
    pub instances_of_class: bool,
    /// For a single object whose accumulation point lies below it: the path to that point
    /// (shown instead of `path`, which it extends); empty otherwise.
    pub accumulation_path: Vec<PathStepRow>,
}

/// A class of the objects an accumulation point immediately dominates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccumulatedRow {
    pub class: String,
    pub count: u64,
    pub retained_bytes: u64,
    /// The stack that allocated the most of them, innermost first (tracked V8 snapshots;
    /// empty otherwise).
    pub allocation_stack: Vec<AllocationFrame>,
}

/// A string value held by several objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateStringRow {
    pub value: String,
    pub count: u64,
    pub wasted_bytes: u64,
}

/// A format-specific section appended by the reader (e.g. HPROF threads), already rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraSectionText {
    pub title: String,
    pub text: String,
}

/// Objects left out of the analysis because no GC root reaches them (HPROF, as MAT does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GarbageRow {
    pub objects: u64,
    pub shallow_bytes: u64,
}

/// Everything `leaksift heap` shows.
#[derive(Clone, Debug, Default)]
pub struct HeapSummary {
    pub file: String,
    pub format: String,
    /// Nodes of the graph (HPROF: the reader's root over the GC roots included).
    pub node_count: u64,
    /// Objects of the file: the nodes less the HPROF reader's root.
    pub object_count: u64,
    pub edge_count: u64,
    pub total_bytes: u64,
    pub class_count: u64,
    pub classes: Vec<ClassRow>,
    pub dominators: Vec<ObjectRow>,
    pub suspects: Vec<SuspectRow>,
    pub detached: Vec<ClassRow>,
    pub duplicate_strings: Vec<DuplicateStringRow>,
    pub unreachable_count: u64,
    /// V8: DevTools' Statistics view (what kind of memory the total is); `None` for HPROF.
    pub statistics: Option<Statistics>,
    /// Garbage left out of every number (HPROF dumps written without a full GC).
    pub garbage: Option<GarbageRow>,
    pub extra_sections: Vec<ExtraSectionText>,
}

/// Shortens a display string to `max` characters with an ellipsis, on one line
/// ([`escape::one_line`]).
pub fn clip(text: &str, max: usize) -> String {
    shorten(&escape::one_line(text), max)
}

/// Shortens `text` to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        return "-".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / total as f64)
}

/// Renders a class table (count, shallow, retained, share of total).
pub fn render_classes(rows: &[ClassRow], total: u64) -> String {
    let mut t = Table::new(&[
        ("count", Align::Right),
        ("shallow", Align::Right),
        ("retained", Align::Right),
        ("%", Align::Right),
        ("class", Align::Left),
    ]);
    for r in rows {
        t.row([
            r.count.to_string(),
            bytes(r.shallow_bytes as f64),
            bytes(r.retained_bytes as f64),
            percent(r.retained_bytes, total),
            clip(&r.name, 100),
        ]);
    }
    t.render()
}

fn render_objects(rows: &[ObjectRow], total: u64) -> String {
    let mut t = Table::new(&[
        ("retained", Align::Right),
        ("%", Align::Right),
        ("shallow", Align::Right),
        ("object", Align::Left),
    ]);
    for r in rows {
        t.row([
            bytes(r.retained_bytes as f64),
            percent(r.retained_bytes, total),
            bytes(r.shallow_bytes as f64),
            clip(&r.description, 100),
        ]);
    }
    t.render()
}

/// Renders a retaining path, one step per line, root first; a gap of left-out steps is one
/// line saying how many and of what kind.
pub fn render_path(steps: &[PathStepRow]) -> String {
    let mut out = String::new();
    for (i, step) in steps.iter().enumerate() {
        let indent = "  ".repeat(i.min(12));
        if let Some(skipped) = &step.skipped_before {
            out.push_str(&format!(
                "{indent}… {} more references ({} of them {})\n",
                skipped.count,
                skipped.commonest_count,
                clip(&skipped.commonest, 120)
            ));
        }
        match (&step.edge_kind, &step.edge_name) {
            (Some(kind), Some(name)) => out.push_str(&format!(
                "{indent}--[{kind} {}]--> {}  (retains {})\n",
                clip(name, 60),
                clip(&step.node, 80),
                bytes(step.retained_bytes as f64)
            )),
            _ => out.push_str(&format!("{indent}{}\n", clip(&step.node, 80))),
        }
    }
    out
}

/// `steps` with only the first `head` and the last `tail` kept when there are more: the steps
/// between them, and the gaps they held, are counted in the first of the last `tail`.
pub fn abridge_path(steps: &[PathStepRow], head: usize, tail: usize) -> Vec<PathStepRow> {
    if steps.len() <= head + tail + 1 || tail == 0 {
        return steps.to_vec();
    }
    let (kept_head, rest) = steps.split_at(head);
    let (left_out, kept_tail) = rest.split_at(rest.len() - tail);
    // Kinds of step (edge and class) left out, with the gaps already there.
    let mut kinds: HashMap<String, u64> = HashMap::new();
    let mut count = 0;
    let earlier_gaps = left_out
        .iter()
        .chain(&kept_tail[..1])
        .filter_map(|step| step.skipped_before.as_ref());
    for gap in earlier_gaps {
        count += gap.count;
        *kinds.entry(gap.commonest.clone()).or_default() += gap.commonest_count;
    }
    for step in left_out {
        count += 1;
        *kinds.entry(step_kind(step)).or_default() += 1;
    }
    let (commonest, commonest_count) = kinds
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        .unwrap_or_default();
    let mut abridged = kept_head.to_vec();
    abridged.extend_from_slice(kept_tail);
    abridged[head].skipped_before = Some(SkippedSteps {
        count,
        commonest,
        commonest_count,
    });
    abridged
}

/// A step's kind as a gap of left-out steps names it: its reference and the target's
/// description without the object's id (`--[field next]--> Node`).
pub fn step_kind(step: &PathStepRow) -> String {
    let target = step
        .node
        .rsplit_once(" @")
        .map_or(step.node.as_str(), |(head, _)| head);
    match (&step.edge_kind, &step.edge_name) {
        (Some(kind), Some(name)) => format!("--[{kind} {name}]--> {target}"),
        _ => target.to_string(),
    }
}

/// Suspects shown in the text report (MAT's threshold leaves a handful; `--threshold 0` made every
/// object one, 18,480 of them on a small snapshot). The JSON has all.
const TEXT_SUSPECTS: usize = 20;

/// Renders the whole `heap` report.
pub fn render_summary(s: &HeapSummary) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut out = format!(
        "{} ({}): {}, {}, {} reachable total\n",
        escape::one_line(&s.file),
        s.format,
        plural(s.object_count, "object", "objects"),
        plural(s.edge_count, "reference", "references"),
        bytes(s.total_bytes as f64)
    );
    if s.object_count == 0 {
        out.push_str("the file holds no heap objects\n");
    }
    if let Some(st) = &s.statistics {
        // DevTools' Statistics pie, in one line.
        out.push_str(&format!(
            "V8 heap {} (code {}, strings {}, JS arrays {}, system {}), native {} (typed arrays {})\n",
            bytes(st.v8_heap as f64),
            bytes(st.code as f64),
            bytes(st.strings as f64),
            bytes(st.js_arrays as f64),
            bytes(st.system as f64),
            bytes(st.native as f64),
            bytes(st.typed_arrays as f64)
        ));
    }
    if let Some(garbage) = s.garbage.as_ref().filter(|g| g.objects > 0) {
        out.push_str(&format!(
            "{} unreachable objects ({}) left out, as Eclipse MAT does: no GC root reaches them\n",
            garbage.objects,
            bytes(garbage.shallow_bytes as f64)
        ));
    }
    if s.unreachable_count > 0 {
        // HPROF: garbage is left out above, so these are held only through a Reference's
        // `referent` or the finalizer queue (not counted as retaining, like MAT's paths).
        let how = if s.format == "hprof" {
            "are held only through java.lang.ref references (weak, soft, phantom) or the \
             finalizer queue: they hang under the root, not under what refers to them"
        } else {
            "are not reachable from the roots over strong references (attached to the root, \
             as DevTools does)"
        };
        out.push_str(&format!("{} objects {how}\n", s.unreachable_count));
    }
    out.push_str("\nLeak suspects\n");
    if s.suspects.is_empty() {
        out.push_str("  none: no object or class retains the threshold share of the heap\n");
    }
    for (i, suspect) in s.suspects.iter().take(TEXT_SUSPECTS).enumerate() {
        out.push_str(&format!(
            "{}. {} — {} ({})\n",
            i + 1,
            escape::one_line(&suspect.description),
            bytes(suspect.retained_bytes as f64),
            percent(suspect.retained_bytes, s.total_bytes)
        ));
        out.push_str(&format!(
            "   accumulated in: {}\n",
            escape::one_line(&suspect.accumulation_point)
        ));
        if !suspect.accumulated.is_empty() {
            let made_of: Vec<String> = suspect
                .accumulated
                .iter()
                .map(|a| {
                    let allocated = a
                        .allocation_stack
                        .iter()
                        .find(|f| f.function != "(root)")
                        .map(|f| format!(", allocated in {}", allocation_frame(f)))
                        .unwrap_or_default();
                    format!(
                        "{} × {} ({}{allocated})",
                        a.count,
                        escape::one_line(&a.class),
                        bytes(a.retained_bytes as f64)
                    )
                })
                .collect();
            out.push_str(&format!("   made of: {}\n", made_of.join(", ")));
        }
        if !suspect.allocated_at.is_empty() {
            out.push_str(&format!(
                "   allocated at: {}\n",
                escape::one_line(&suspect.allocated_at)
            ));
        }
        if suspect.path.is_empty() {
            out.push_str("   (not reachable from the roots over strong references)\n");
        }
        // A path along a long chain (a linked list, a finalizer queue) keeps its two ends.
        const PATH_HEAD: usize = 16;
        const PATH_TAIL: usize = 6;
        // The path down to the accumulation point when there is one: it names the field or
        // variable holding the bytes.
        let shown = if suspect.accumulation_path.is_empty() {
            &suspect.path
        } else {
            &suspect.accumulation_path
        };
        if suspect.instances_of_class && !shown.is_empty() {
            out.push_str("   path to the biggest instance:\n");
        }
        for line in render_path(&abridge_path(shown, PATH_HEAD, PATH_TAIL)).lines() {
            out.push_str("   ");
            out.push_str(line);
            out.push('\n');
        }
    }
    if s.suspects.len() > TEXT_SUSPECTS {
        out.push_str(&format!(
            "… {} more suspects (a low --threshold; all in --json)\n",
            s.suspects.len() - TEXT_SUSPECTS
        ));
    }
    out.push_str(&format!(
        "\nClasses by retained size (top {} of {})\n",
        s.classes.len(),
        s.class_count
    ));
    out.push_str(&render_classes(&s.classes, s.total_bytes));
    out.push_str("\nTop dominators\n");
    out.push_str(&render_objects(&s.dominators, s.total_bytes));
    if !s.detached.is_empty() {
        out.push_str("\nDetached objects\n");
        out.push_str(&render_classes(&s.detached, s.total_bytes));
    }
    if !s.duplicate_strings.is_empty() {
        out.push_str("\nDuplicated strings\n");
        let mut t = Table::new(&[
            ("copies", Align::Right),
            ("wasted", Align::Right),
            ("value", Align::Left),
        ]);
        for d in &s.duplicate_strings {
            t.row([
                d.count.to_string(),
                bytes(d.wasted_bytes as f64),
                format!("{:?}", shorten(&d.value, 80)),
            ]);
        }
        out.push_str(&t.render());
    }
    for section in &s.extra_sections {
        out.push_str(&format!("\n{}\n{}", section.title, section.text));
        if !section.text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// One class in a two-way comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassDiffRow {
    pub name: String,
    pub new_count: u64,
    pub deleted_count: u64,
    pub new_bytes: u64,
    pub deleted_bytes: u64,
}

/// Renders a two-way comparison table.
pub fn render_class_diff(rows: &[ClassDiffRow]) -> String {
    let mut t = Table::new(&[
        ("# new", Align::Right),
        ("# deleted", Align::Right),
        ("# delta", Align::Right),
        ("alloc", Align::Right),
        ("freed", Align::Right),
        ("size delta", Align::Right),
        ("class", Align::Left),
    ]);
    for r in rows {
        t.row([
            r.new_count.to_string(),
            r.deleted_count.to_string(),
            (i128::from(r.new_count) - i128::from(r.deleted_count)).to_string(),
            bytes(r.new_bytes as f64),
            bytes(r.deleted_bytes as f64),
            bytes(r.new_bytes as f64 - r.deleted_bytes as f64),
            clip(&r.name, 100),
        ]);
    }
    t.render()
}

/// One class compared by totals (heaps whose object ids are addresses, HPROF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassGrowthRow {
    pub name: String,
    pub delta_count: i128,
    pub delta_shallow_bytes: i128,
    pub delta_retained_bytes: i128,
    /// Instances and retained bytes in the compared heap.
    pub count: u64,
    pub retained_bytes: u64,
}

/// A JavaScript function as the allocation tracker names it: `name (script:line:column)`, the
/// script by its file name.
pub fn allocation_frame(frame: &AllocationFrame) -> String {
    let function = if frame.function.is_empty() {
        "(anonymous)"
    } else {
        &frame.function
    };
    let script = frame.script.rsplit('/').next().unwrap_or(&frame.script);
    if script.is_empty() {
        function.to_string()
    } else {
        format!("{function} ({script}:{}:{})", frame.line, frame.column)
    }
}

/// Frames of an allocation stack shown on one line (the JSON has them all).
const ALLOCATION_LINE_FRAMES: usize = 6;

/// An allocation stack on one line, innermost first, without the tracker's `(root)` frame, at
/// most [`ALLOCATION_LINE_FRAMES`] frames.
pub fn allocation_stack_line(stack: &[&AllocationFrame]) -> String {
    let shown: Vec<String> = stack
        .iter()
        .filter(|f| f.function != "(root)")
        .take(ALLOCATION_LINE_FRAMES)
        .map(|f| allocation_frame(f))
        .collect();
    shown.join(" ← ")
}

/// Renders DevTools' Allocation view: the `top` functions whose objects take the most bytes in
/// the snapshot, with what the tracker counted there.
pub fn render_allocation_sites(sites: &[AllocationSite], top: usize) -> String {
    let mut rows: Vec<&AllocationSite> = sites.iter().filter(|s| s.live_count > 0).collect();
    rows.sort_by_key(|s| std::cmp::Reverse((s.live_bytes, s.live_count)));
    let mut t = Table::new(&[
        ("live", Align::Right),
        ("live size", Align::Right),
        ("allocated", Align::Right),
        ("allocated size", Align::Right),
        ("function", Align::Left),
    ]);
    for s in rows.iter().take(top) {
        t.row([
            s.live_count.to_string(),
            bytes(s.live_bytes as f64),
            s.allocations.to_string(),
            bytes(s.allocated_bytes as f64),
            allocation_frame(&s.frame),
        ]);
    }
    let mut out = format!(
        "objects of the snapshot by the function that allocated them (top {} of {} with live \
         objects; allocated: what the tracker counted, freed objects too)\n",
        rows.len().min(top),
        rows.len()
    );
    out.push_str(&t.render());
    out
}

/// Renders the per-class growth table, in the order given (largest retained growth first).
pub fn render_class_growth(rows: &[ClassGrowthRow]) -> String {
    let mut t = Table::new(&[
        ("# delta", Align::Right),
        ("shallow delta", Align::Right),
        ("retained delta", Align::Right),
        ("# now", Align::Right),
        ("retained now", Align::Right),
        ("class", Align::Left),
    ]);
    for r in rows {
        let sign = if r.delta_count > 0 { "+" } else { "" };
        t.row([
            format!("{sign}{}", r.delta_count),
            crate::units::signed_bytes(r.delta_shallow_bytes),
            crate::units::signed_bytes(r.delta_retained_bytes),
            r.count.to_string(),
            bytes(r.retained_bytes as f64),
            clip(&r.name, 100),
        ]);
    }
    t.render()
}

/// One group of leaked objects in a three-way comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakRow {
    pub class: String,
    pub count: u64,
    pub retained_bytes: u64,
    pub path: Vec<PathStepRow>,
    /// The stack that allocated the group's representative on one line (snapshots taken with
    /// allocation tracking; empty otherwise).
    pub allocated_at: String,
}

/// Renders the three-way leak list, largest first, each with its representative path: `rows`
/// are the groups shown, the first of `total_groups` retaining `total_leaked` bytes in all.
pub fn render_leaks(rows: &[LeakRow], total_groups: usize, total_leaked: u64) -> String {
    if total_groups == 0 {
        return "No leaks: nothing allocated between baseline and target is still alive in final.\n"
            .into();
    }
    let shown = if rows.len() < total_groups {
        format!(" (the first {} shown)", rows.len())
    } else {
        String::new()
    };
    let mut out = format!(
        "{total_groups} leak groups, {} retained in total; largest first{shown}\n",
        bytes(total_leaked as f64)
    );
    for (i, row) in rows.iter().enumerate() {
        out.push_str(&format!(
            "\n{}. {} × {} objects, retaining {}\n",
            i + 1,
            clip(&row.class, 80),
            row.count,
            bytes(row.retained_bytes as f64)
        ));
        if !row.allocated_at.is_empty() {
            out.push_str(&format!(
                "   allocated at: {}\n",
                escape::one_line(&row.allocated_at)
            ));
        }
        for line in render_path(&row.path).lines() {
            out.push_str("   ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(len: usize) -> Vec<PathStepRow> {
        (0..len)
            .map(|i| PathStepRow {
                edge_kind: (i > 0).then(|| "field".into()),
                edge_name: (i > 0).then(|| if i % 2 == 0 { "next" } else { "prev" }.into()),
                node: format!("Node @{i}"),
                id: i as u64,
                shallow_bytes: 8,
                retained_bytes: 8 * (len - i) as u64,
                skipped_before: None,
            })
            .collect()
    }

    #[test]
    fn abridged_paths_count_what_they_leave_out_and_earlier_gaps() {
        let short = chain(5);
        assert_eq!(abridge_path(&short, 2, 2), short, "5 steps fit 2 + 1 + 2");
        let steps = chain(12);
        let abridged = abridge_path(&steps, 3, 2);
        let ids: Vec<u64> = abridged.iter().map(|s| s.id).collect();
        assert_eq!(ids, [0, 1, 2, 10, 11]);
        // Steps 3..=9: 4 `prev` (3, 5, 7, 9) and 3 `next`.
        let gap = SkippedSteps {
            count: 7,
            commonest: "--[field prev]--> Node".into(),
            commonest_count: 4,
        };
        assert_eq!(abridged[3].skipped_before, Some(gap));
        // Abridged again: the earlier gap and the steps around it are one gap; its kind counts.
        let again = abridge_path(&abridged, 1, 1);
        let ids: Vec<u64> = again.iter().map(|s| s.id).collect();
        assert_eq!(ids, [0, 11]);
        let gap = again[1].skipped_before.clone().unwrap();
        assert_eq!((gap.count, gap.commonest_count), (10, 5), "{gap:?}");
        assert_eq!(gap.commonest, "--[field prev]--> Node");
        assert!(
            render_path(&again)
                .contains("  … 10 more references (5 of them --[field prev]--> Node)\n"),
            "{}",
            render_path(&again)
        );
    }

    #[test]
    fn renders_paths_root_first() {
        let steps = vec![
            PathStepRow {
                edge_kind: None,
                edge_name: None,
                node: "(root)".into(),
                id: 1,
                shallow_bytes: 0,
                retained_bytes: 100,
                skipped_before: None,
            },
            PathStepRow {
                edge_kind: Some("property".into()),
                edge_name: Some("cache".into()),
                node: "Map @5".into(),
                id: 5,
                shallow_bytes: 10,
                retained_bytes: 2048,
                skipped_before: None,
            },
        ];
        assert_eq!(
            render_path(&steps),
            "(root)\n  --[property cache]--> Map @5  (retains 2.00 KiB)\n"
        );
    }

    #[test]
    fn clips_long_names() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
