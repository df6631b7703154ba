//! `leaksift diff`: two heap files compared per class (DevTools' Comparison: new and deleted
//! objects matched by id), three (baseline, target, final) searched for leaked objects, or two
//! native traces compared per call site ([`traces`]).

mod traces;

use std::path::PathBuf;

use anyhow::Context;
use leaksift_report::escape::one_line;

use leaksift_heap::HeapFormat;
use leaksift_heap::diff::{
    ClassDiff, ClassGrowth, ClassTotals, LeakGroup, compare, compare_histograms, find_leaks,
    sorted_ids,
};
use leaksift_report::heap::{
    ClassDiffRow, ClassGrowthRow, LeakRow, allocation_stack_line, render_class_diff,
    render_class_growth, render_leaks,
};
use leaksift_report::progress::Progress;
use serde_json::json;

use super::heap::views::{self, Analysis};
use crate::cmd::file_kind::FileKind;
use crate::cmd::heapfile;
use crate::outcome::Outcome;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Two files (base, compared) or three (baseline, target, final): V8 .heapsnapshot or HPROF;
    /// or two traces of `leaksift record` (old, new).
    /// (Counted in `run`, not by clap: its count is per run of values, so options between the
    /// files, as in `diff a.heapsnapshot -q b.heapsnapshot`, made the first run one file short.)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Rows to show (the JSON lists everything).
    #[arg(long, default_value_t = 25)]
    pub top: usize,
    /// Print one JSON object (schema leaksift.diff.v1) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Traces: extra directory searched for separate debug files (`.build-id/xx/….debug`,
    /// debuglink targets) before /usr/lib/debug, as `report --debug-dir`; repeatable.
    #[arg(long, value_name = "DIR")]
    pub debug_dir: Vec<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if !(2..=3).contains(&args.files.len()) {
        anyhow::bail!(
            "diff takes two files (base, compared) or three (baseline, target, final), not {}",
            args.files.len()
        );
    }
    let mut progress = Progress::stderr(args.quiet);
    let is_trace = |file: &PathBuf| FileKind::of(file) == Some(FileKind::Trace);
    if args.files.iter().any(is_trace) {
        // A file that cannot be read is that, not a file of another kind.
        for file in &args.files {
            std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
            if std::fs::metadata(file).is_ok_and(|m| m.is_dir()) {
                anyhow::bail!("{} is a directory", file.display());
            }
        }
        return match args.files.as_slice() {
            [old, new] if is_trace(old) && is_trace(new) => {
                traces::compare_traces(&args, old, new, &mut progress)
            }
            [_, _] => anyhow::bail!(
                "{} and {} are not both traces of `leaksift record`: a trace compares only with \
                 another trace",
                args.files[0].display(),
                args.files[1].display()
            ),
            _ => anyhow::bail!("traces of `leaksift record` are compared two at a time"),
        };
    }
    if !args.debug_dir.is_empty() {
        anyhow::bail!("--debug-dir symbolizes traces of `leaksift record`; heap files need none");
    }
    refuse_mixed_formats(&args.files)?;
    match args.files.as_slice() {
        [base, compared] => two_way(&args, base, compared, &mut progress),
        [baseline, target, last] => three_way(&args, baseline, target, last, &mut progress),
        _ => anyhow::bail!("diff takes two or three files"),
    }
}

/// Refuses, from the files' first bytes and before anything is loaded (a dump can take
/// seconds), heap files of two formats, and an HPROF dump in a three-way diff. Files whose
/// format cannot be told this way (pipes) are checked again once loaded.
fn refuse_mixed_formats(files: &[PathBuf]) -> anyhow::Result<()> {
    let formats: Vec<(&PathBuf, HeapFormat)> = files
        .iter()
        .filter_map(|file| match FileKind::of(file) {
            Some(FileKind::Heap(format)) => Some((file, format)),
            _ => None,
        })
        .collect();
    if let Some(((a, a_format), (b, b_format))) = formats
        .iter()
        .zip(formats.iter().skip(1))
        .find(|((_, a), (_, b))| a != b)
    {
        anyhow::bail!(
            "{} is a {} file and {} a {} file: only files of one format can be compared",
            a.display(),
            a_format.name(),
            b.display(),
            b_format.name()
        );
    }
    if files.len() == 3
        && let Some((file, _)) = formats.iter().find(|(_, format)| !format.has_stable_ids())
    {
        anyhow::bail!(
            "{}: a three-way diff matches objects by id, and this format's ids are addresses that change between dumps",
            file.display()
        );
    }
    Ok(())
}

fn class_diff_json(d: &ClassDiff) -> serde_json::Value {
    json!({
        "name": d.name,
        "location": d.location.map(|l| json!({"script_id": l.script_id, "line": l.line, "column": l.column})),
        "new_count": d.new_count,
        "deleted_count": d.deleted_count,
        "delta_count": d.delta_count() as i64,
        "new_bytes": d.new_bytes,
        "deleted_bytes": d.deleted_bytes,
        "delta_bytes": d.delta_bytes() as i64,
    })
}

fn class_growth_json(g: &ClassGrowth) -> serde_json::Value {
    let totals = |t: &ClassTotals| json!({"count": t.count, "shallow_bytes": t.shallow_bytes, "retained_bytes": t.retained_bytes});
    json!({
        "name": g.name,
        "location": g.location.map(|l| json!({"script_id": l.script_id, "line": l.line, "column": l.column})),
        "base": totals(&g.base),
        "compared": totals(&g.target),
        "delta_count": g.delta_count() as i64,
        "delta_bytes": g.delta_shallow_bytes() as i64,
        "delta_retained_bytes": g.delta_retained_bytes() as i64,
    })
}

fn two_way(
    args: &Args,
    base: &std::path::Path,
    compared: &std::path::Path,
    progress: &mut Progress,
) -> anyhow::Result<Outcome> {
    // As DevTools' Comparison view: the compared snapshot's plain-object interfaces classify
    // the base snapshot too (a shape that only the compared one has names its new objects).
    let b = heapfile::load(compared, None, progress)?;
    let a = heapfile::load(base, Some(&b.class_scheme), progress)?;
    if a.graph.format() != b.graph.format() {
        anyhow::bail!(
            "{} is a {} file and {} a {} file: only files of one format can be compared",
            base.display(),
            a.graph.format().name(),
            compared.display(),
            b.graph.format().name()
        );
    }
    if !(a.graph.format().has_stable_ids() && b.graph.format().has_stable_ids()) {
        return growth_by_class(args, a, b, progress);
    }
    progress.phase("comparing");
    let diffs = compare(&a.graph, &b.graph);
    progress.finish();
    if args.json {
        output::print_json(&json!({
            "schema": "leaksift.diff.v1",
            "mode": "compare",
            "matched_by": "id",
            "files": [base.display().to_string(), compared.display().to_string()],
            "classes": diffs.iter().map(class_diff_json).collect::<Vec<_>>(),
        }))?;
    } else {
        output::println(&format!(
            "{} → {}: {} classes changed (objects matched by id)",
            one_line(&base.display().to_string()),
            one_line(&compared.display().to_string()),
            diffs.len(),
        ))?;
        let mut seen = std::collections::HashSet::new();
        let shared: std::collections::HashSet<&str> = diffs
            .iter()
            .map(|d| d.name.as_str())
            .filter(|name| !seen.insert(*name))
            .collect();
        let rows: Vec<ClassDiffRow> = diffs
            .iter()
            .take(args.top)
            .map(|d| ClassDiffRow {
                name: views::class_label(&d.name, d.location, shared.contains(d.name.as_str())),
                new_count: d.new_count,
                deleted_count: d.deleted_count,
                new_bytes: d.new_bytes,
                deleted_bytes: d.deleted_bytes,
            })
            .collect();
        output::print(&render_class_diff(&rows))?;
    }
    Ok(Outcome::Clean)
}

/// Object ids are addresses (HPROF): class totals (instances, shallow and retained bytes, garbage
/// left out) compared side by side, largest retained growth first.
fn growth_by_class(
    args: &Args,
    a: heapfile::LoadedHeap,
    b: heapfile::LoadedHeap,
    progress: &mut Progress,
) -> anyhow::Result<Outcome> {
    let (base, compared) = (a.path.clone(), b.path.clone());
    let a = Analysis::of(a, progress);
    let b = Analysis::of(b, progress);
    progress.phase("comparing");
    let growth = compare_histograms(a.graph(), &a.histogram(), b.graph(), &b.histogram());
    progress.finish();
    if args.json {
        output::print_json(&json!({
            "schema": "leaksift.diff.v1",
            "mode": "compare",
            "matched_by": "class totals",
            "files": [base.display().to_string(), compared.display().to_string()],
            "total_bytes": [a.total_bytes(), b.total_bytes()],
            "classes": growth.iter().map(class_growth_json).collect::<Vec<_>>(),
        }))?;
    } else {
        output::println(&format!(
            "{} → {}: {} classes changed (class totals; object ids are addresses); \
             heap {} → {}",
            one_line(&base.display().to_string()),
            one_line(&compared.display().to_string()),
            growth.len(),
            leaksift_report::units::bytes(a.total_bytes() as f64),
            leaksift_report::units::bytes(b.total_bytes() as f64),
        ))?;
        let rows: Vec<ClassGrowthRow> = growth
            .iter()
            .take(args.top)
            .map(|g| ClassGrowthRow {
                name: g.name.clone(),
                delta_count: g.delta_count(),
                delta_shallow_bytes: g.delta_shallow_bytes(),
                delta_retained_bytes: g.delta_retained_bytes(),
                count: g.target.count,
                retained_bytes: g.target.retained_bytes,
            })
            .collect();
        output::print(&render_class_growth(&rows))?;
    }
    Ok(Outcome::Clean)
}

fn three_way(
    args: &Args,
    baseline: &std::path::Path,
    target: &std::path::Path,
    last: &std::path::Path,
    progress: &mut Progress,
) -> anyhow::Result<Outcome> {
    let baseline_heap = heapfile::load(baseline, None, progress)?;
    if !baseline_heap.graph.format().has_stable_ids() {
        anyhow::bail!(
            "{}: a three-way diff matches objects by id, and this format's ids are addresses that change between dumps",
            baseline.display()
        );
    }
    let baseline_ids = sorted_ids(&baseline_heap.graph);
    drop(baseline_heap);
    let target_heap = heapfile::load(target, None, progress)?;
    let target_ids = sorted_ids(&target_heap.graph);
    let target_format = target_heap.graph.format();
    drop(target_heap);
    let analysis = Analysis::load(last, None, progress)?;
    if !target_format.has_stable_ids() || !analysis.graph().format().has_stable_ids() {
        anyhow::bail!(
            "a three-way diff matches objects by id: it needs three snapshots of one process in a format with stable ids (V8)"
        );
    }
    progress.phase("grouping leaked objects");
    let groups = find_leaks(
        &baseline_ids,
        &target_ids,
        analysis.graph(),
        &analysis.dominators,
    );
    progress.finish();
    let graph = analysis.graph();
    let rows: Vec<LeakRow> = groups
        .iter()
        .map(|g| LeakRow {
            class: group_label(graph, g),
            count: g.count,
            retained_bytes: g.retained_bytes,
            path: g
                .path
                .as_ref()
                .map(|p| analysis.path_rows(p))
                .unwrap_or_default(),
            allocated_at: allocation_stack_line(&analysis.allocation_stack(g.representative)),
        })
        .collect();
    let total = rows
        .iter()
        .fold(0u64, |sum, r| sum.saturating_add(r.retained_bytes));
    if args.json {
        output::print_json(&json!({
            "schema": "leaksift.diff.v1",
            "mode": "leaks",
            "files": [baseline.display().to_string(), target.display().to_string(), last.display().to_string()],
            "leaked_bytes": total,
            "leaks": groups.iter().zip(&rows).map(|(g, r)| json!({
                "class": graph.class_name(g.class),
                "count": r.count,
                "top_level_count": g.roots,
                "retained_bytes": r.retained_bytes,
                "signature": g.signature,
                "contents": g.contents.iter().take(CONTENTS_LISTED).map(|(class, count)| json!({
                    "class": graph.class_name(*class),
                    "count": count,
                })).collect::<Vec<_>>(),
                "representative_id": graph.id(g.representative).0,
                "path": analysis.path_json(&r.path),
                "allocation_stack": analysis.allocation_stack(g.representative),
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        let shown: Vec<LeakRow> = rows.iter().take(args.top).cloned().collect();
        output::print(&render_leaks(&shown, rows.len(), total))?;
    }
    Ok(if groups.is_empty() {
        Outcome::Clean
    } else {
        Outcome::LeakFound
    })
}

/// Classes listed per leak group in `contents` (JSON).
const CONTENTS_LISTED: usize = 10;

/// The width a group's label keeps to in the text report (it clips longer labels, and a
/// label cut inside its list read `150000 (string… × 450000 objects`).
const LABEL_WIDTH: usize = 80;

/// A leak group's class, followed by its most numerous leaked classes when it holds others (a
/// Map leak's top-level object is the Map's backing `(array)`; memlab's trace continues into
/// the entries, so the label names them): at most three, and only as many as fit in
/// [`LABEL_WIDTH`] with the list closed.
fn group_label(graph: &leaksift_heap::graph::HeapGraph, group: &LeakGroup) -> String {
    let class = graph.class_name(group.class).into_owned();
    if group.contents.len() < 2 {
        return class;
    }
    let mut label = format!("{class} (with ");
    let mut listed = 0;
    for (count, name) in group
        .contents
        .iter()
        .take(3)
        .map(|(class, count)| (count, graph.class_name(*class)))
    {
        let item = format!("{}{count} {name}", if listed > 0 { ", " } else { "" });
        // Room for ", …)" after it.
        if listed > 0 && label.chars().count() + item.chars().count() + 4 > LABEL_WIDTH {
            break;
        }
        label.push_str(&item);
        listed += 1;
    }
    if group.contents.len() > listed {
        label.push_str(", …");
    }
    label.push(')');
    label
}
