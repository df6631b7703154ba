//! `leaksift diff`: two heap files compared per class (DevTools' Comparison: new and deleted
//! objects matched by id), or three (baseline, target, final) searched for leaked objects.

use std::path::PathBuf;

use leaksift_heap::diff::{ClassDiff, compare, compare_histograms, find_leaks, sorted_ids};
use leaksift_heap::histogram::class_histogram;
use leaksift_report::heap::{ClassDiffRow, LeakRow, render_class_diff, render_leaks};
use leaksift_report::progress::Progress;
use serde_json::json;

use super::heap::views::{Analysis, path_json, print_json};
use crate::cmd::heapfile;
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Two files (base, compared) or three (baseline, target, final): V8 .heapsnapshot or HPROF.
    #[arg(num_args = 2..=3, required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Rows to show (the JSON lists everything).
    #[arg(long, default_value_t = 25)]
    pub top: usize,
    /// Print one JSON object (schema leaksift.diff.v1) instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut progress = Progress::stderr(args.quiet);
    match args.files.as_slice() {
        [base, compared] => two_way(&args, base, compared, &mut progress),
        [baseline, target, last] => three_way(&args, baseline, target, last, &mut progress),
        _ => anyhow::bail!("diff takes two or three files"),
    }
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

fn two_way(
    args: &Args,
    base: &std::path::Path,
    compared: &std::path::Path,
    progress: &mut Progress,
) -> anyhow::Result<Outcome> {
    let a = heapfile::load(base, None, progress)?;
    let b = heapfile::load(compared, Some(&a.class_scheme), progress)?;
    if a.graph.format() != b.graph.format() {
        anyhow::bail!(
            "{} is a {} file and {} a {} file: only files of one format can be compared",
            base.display(),
            a.graph.format().name(),
            compared.display(),
            b.graph.format().name()
        );
    }
    progress.phase("comparing");
    let by_id = a.graph.format().has_stable_ids() && b.graph.format().has_stable_ids();
    let diffs = if by_id {
        compare(&a.graph, &b.graph)
    } else {
        // Object ids are addresses (HPROF): compare class totals instead.
        let da = leaksift_heap::dominators::Dominators::compute(&a.graph);
        let db = leaksift_heap::dominators::Dominators::compute(&b.graph);
        compare_histograms(
            &a.graph,
            &class_histogram(&a.graph, &da),
            &b.graph,
            &class_histogram(&b.graph, &db),
        )
    };
    progress.finish();
    if args.json {
        print_json(&json!({
            "schema": "leaksift.diff.v1",
            "mode": "compare",
            "matched_by": if by_id { "id" } else { "class totals" },
            "files": [base.display().to_string(), compared.display().to_string()],
            "classes": diffs.iter().map(class_diff_json).collect::<Vec<_>>(),
        }))?;
    } else {
        println!(
            "{} → {}: {} classes changed ({})",
            base.display(),
            compared.display(),
            diffs.len(),
            if by_id {
                "objects matched by id"
            } else {
                "class totals; object ids are addresses"
            }
        );
        let rows: Vec<ClassDiffRow> = diffs
            .iter()
            .take(args.top)
            .map(|d| ClassDiffRow {
                name: d.name.clone(),
                new_count: d.new_count,
                deleted_count: d.deleted_count,
                new_bytes: d.new_bytes,
                deleted_bytes: d.deleted_bytes,
            })
            .collect();
        print!("{}", render_class_diff(&rows));
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
            class: graph.class_name(g.class).into_owned(),
            count: g.count,
            retained_bytes: g.retained_bytes,
            path: g
                .path
                .as_ref()
                .map(|p| analysis.path_rows(p))
                .unwrap_or_default(),
        })
        .collect();
    let total = rows
        .iter()
        .fold(0u64, |sum, r| sum.saturating_add(r.retained_bytes));
    if args.json {
        print_json(&json!({
            "schema": "leaksift.diff.v1",
            "mode": "leaks",
            "files": [baseline.display().to_string(), target.display().to_string(), last.display().to_string()],
            "leaked_bytes": total,
            "leaks": groups.iter().zip(&rows).map(|(g, r)| json!({
                "class": r.class,
                "count": r.count,
                "top_level_count": g.roots,
                "retained_bytes": r.retained_bytes,
                "signature": g.signature,
                "representative_id": graph.id(g.representative).0,
                "path": path_json(&r.path),
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        let shown: Vec<LeakRow> = rows.iter().take(args.top).cloned().collect();
        print!("{}", render_leaks(&shown, total));
    }
    Ok(if groups.is_empty() {
        Outcome::Clean
    } else {
        Outcome::LeakFound
    })
}
