//! `leaksift heap`: classes, top dominators, leak suspects with their paths, detached objects and
//! duplicated strings of a V8 .heapsnapshot or a Java HPROF dump.

mod threads;
pub(crate) mod views;

use std::path::PathBuf;

use anyhow::Context;

use leaksift_heap::histogram::{self, ClassStats, class_histogram_filtered};
use leaksift_heap::paths::PathTree;
use leaksift_heap::suspects::{self, SuspectKind, find_suspects_among, top_level_dominators};
use leaksift_heap::{Detachedness, HeapFormat, HeapGraph, NodeIndex, v8};
use leaksift_report::heap::{
    AccumulatedRow, DuplicateStringRow, ExtraSectionText, GarbageRow, HeapSummary, SuspectRow,
    allocation_stack_line, render_summary,
};
use leaksift_report::progress::Progress;
use serde_json::json;

use self::views::Analysis;
use crate::cmd::heapfile;
use crate::outcome::Outcome;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The heap file: a V8 .heapsnapshot (optionally gzip-compressed) or a Java HPROF dump.
    pub file: PathBuf,
    /// Print one JSON object (schema leaksift.heap.v1) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Rows in the class and dominator tables (the JSON lists every class).
    #[arg(long, default_value_t = 25)]
    pub top: usize,
    /// Share of the heap (percent) an object or class must retain to be a leak suspect.
    #[arg(long, default_value_t = 10.0)]
    pub threshold: f64,
    /// HPROF: decode java.lang.String values to list duplicated strings (one more pass over
    /// the dump; V8 snapshots always list them).
    #[arg(long)]
    pub duplicate_strings: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if !(0.0..=100.0).contains(&args.threshold) {
        anyhow::bail!("--threshold must be a percentage between 0 and 100");
    }
    let mut progress = Progress::stderr(args.quiet);
    let heap = heapfile::load(&args.file, None, &mut progress)?;
    // V8's duplicated strings need only the graph: they are found while the dominators are
    // computed. HPROF graphs hold no string values (the decoded `java.lang.String` values are
    // read from the dump later, they need the garbage set), so nothing runs alongside and the
    // search can pack the columns it does not read.
    let (analysis, graph_duplicates) = if heap.hprof.is_some() {
        (Analysis::of(heap, &mut progress), None)
    } else {
        Analysis::of_with(heap, &mut progress, |heap| {
            Some(duplicate_strings(&heap.graph, DUPLICATE_STRING_ROWS))
        })
    };
    progress.phase("classes and suspects");
    let graph = analysis.graph();
    let dominators = &analysis.dominators;
    let total = analysis.total_bytes();

    // The class histograms (a walk of the whole dominator tree each) run on other threads
    // while this one finds the suspects, their paths and the duplicated strings.
    let is_detached =
        |n: NodeIndex| graph.detachedness(n) == Detachedness::Detached && analysis.counts(n);
    let (histogram, detached, statistics, (top_dominators, found, tree, duplicates)) =
        std::thread::scope(|scope| {
            let histogram = scope.spawn(|| analysis.histogram());
            // V8: DevTools' Statistics view (one pass over the nodes and one over the edges).
            let statistics = scope.spawn(|| {
                (graph.format() == HeapFormat::V8)
                    .then(|| v8::statistics(graph, total, analysis.heap.extra_bytes))
            });
            let detached = scope.spawn(|| {
                if graph.nodes().any(is_detached) {
                    class_histogram_filtered(graph, dominators, is_detached)
                } else {
                    Vec::new()
                }
            });
            let top_dominators: Vec<NodeIndex> = top_level_dominators(graph, dominators)
                .into_iter()
                .filter(|n| analysis.counts(*n))
                .take(args.top)
                .collect();
            let found =
                find_suspects_among(graph, dominators, args.threshold / 100.0, total, |n| {
                    analysis.counts(n)
                });
            // Paths to each suspect, and to a single suspect's accumulation point below it.
            let targets: Vec<NodeIndex> = found
                .iter()
                .map(|s| s.representative())
                .chain(found.iter().filter_map(accumulation_below))
                .collect();
            let tree = PathTree::towards(graph, &targets);
            let duplicates = match &analysis.heap.hprof {
                Some(hprof) if args.duplicate_strings => {
                    progress.phase("java.lang.String values");
                    hprof
                        .file
                        .duplicate_strings(graph, |n| analysis.counts(n), DUPLICATE_STRING_ROWS)
                        .with_context(|| format!("{}", args.file.display()))
                        .map(|rows| {
                            rows.into_iter()
                                .map(|d| DuplicateStringRow {
                                    value: d.value.chars().take(200).collect(),
                                    count: d.count,
                                    wasted_bytes: d.wasted_bytes,
                                })
                                .collect()
                        })
                }
                _ => Ok(graph_duplicates.unwrap_or_default()),
            };
            let joined = |handle: std::thread::ScopedJoinHandle<'_, Vec<ClassStats>>| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            };
            (
                joined(histogram),
                joined(detached),
                statistics
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                (top_dominators, found, tree, duplicates),
            )
        });
    let duplicates: Vec<DuplicateStringRow> = duplicates?;
    let suspects: Vec<SuspectRow> = found
        .iter()
        .map(|s| {
            let representative = s.representative();
            let description = match &s.kind {
                SuspectKind::Single(node) => format!("one object: {}", analysis.describe(*node)),
                SuspectKind::Class {
                    class, instances, ..
                } => format!(
                    "{instances} instances of {} (biggest: {})",
                    graph.class_name(*class),
                    analysis.describe(representative)
                ),
            };
            let path = tree.path_to(graph, representative);
            // HPROF: no strong path, the path goes through a `Reference.referent` or the
            // finalizer chain (collectable, or waiting for `finalize()`): said in the description.
            let through_references = path.as_ref().is_some_and(|p| {
                p.steps
                    .iter()
                    .any(|step| step.via.is_some_and(|e| !graph.is_essential(e)))
            });
            let description = if through_references {
                format!(
                    "{description}, held only through java.lang.ref references (weak, soft, \
                     phantom or pending finalization)"
                )
            } else {
                description
            };
            SuspectRow {
                description,
                retained_bytes: s.retained_bytes,
                accumulation_point: analysis.describe(s.accumulation_point),
                accumulated: suspects::accumulated_by_class(
                    graph,
                    &analysis.dominators,
                    s.accumulation_point,
                    ACCUMULATED_CLASSES,
                )
                .iter()
                .map(|a| AccumulatedRow {
                    class: graph.class_name(a.class).to_string(),
                    count: a.count,
                    retained_bytes: a.retained_bytes,
                    allocation_stack: analysis.common_allocation_stack(
                        analysis
                            .dominators
                            .dominated(s.accumulation_point)
                            .filter(|&n| graph.class(n) == a.class),
                    ),
                })
                .collect(),
                // MAT's "shortest paths to the accumulation point": through the suspect (it
                // dominates the point), down to the field or variable that holds the bytes.
                accumulation_path: accumulation_below(s)
                    .and_then(|point| tree.path_to(graph, point))
                    .map(|p| analysis.path_rows(&p))
                    .unwrap_or_default(),
                path: path.map(|p| analysis.path_rows(&p)).unwrap_or_default(),
                instances_of_class: matches!(s.kind, SuspectKind::Class { .. }),
                allocated_at: allocation_stack_line(&analysis.allocation_stack(s.representative())),
            }
        })
        .collect();
    let garbage = analysis.garbage().map(|g| GarbageRow {
        objects: g.objects,
        shallow_bytes: g.shallow_bytes,
    });
    let mut extra_sections = analysis.heap.extra_sections.clone();
    if let (Some(hprof), Some(garbage)) = (&analysis.heap.hprof, analysis.garbage()) {
        extra_sections.push(heapfile::hprof_dump_section(&hprof.info, garbage));
        extra_sections.push(threads::section(&analysis, &hprof.threads, args.json));
    }

    let summary = HeapSummary {
        file: args.file.display().to_string(),
        format: graph.format().name().to_string(),
        node_count: graph.node_count() as u64,
        object_count: graph.node_count() as u64
            - u64::from(graph.format() == leaksift_heap::HeapFormat::Hprof),
        edge_count: graph.edge_count(),
        total_bytes: total,
        class_count: histogram.len() as u64,
        classes: histogram
            .iter()
            .take(args.top)
            .map(|s| analysis.class_row(s))
            .collect(),
        dominators: top_dominators
            .iter()
            .map(|n| analysis.object_row(*n))
            .collect(),
        suspects,
        detached: detached.iter().map(|s| analysis.class_row(s)).collect(),
        duplicate_strings: duplicates,
        // Nodes attached to the root as DevTools does (garbage is reported on its own).
        unreachable_count: u64::from(dominators.unreachable_count())
            .saturating_sub(garbage.as_ref().map_or(0, |g| g.objects)),
        garbage,
        statistics,
        extra_sections: extra_sections
            .iter()
            .map(|s| ExtraSectionText {
                title: s.title.clone(),
                text: s.text.clone(),
            })
            .collect(),
    };
    progress.finish();

    if args.json {
        let extra: serde_json::Map<String, serde_json::Value> = extra_sections
            .iter()
            .map(|s| (s.json_key.clone(), s.json.clone()))
            .collect();
        output::print_json(&json!({
            "schema": "leaksift.heap.v1",
            "file": summary.file,
            "format": summary.format,
            "node_count": summary.node_count,
            "edge_count": summary.edge_count,
            "total_bytes": summary.total_bytes,
            "unreachable_count": summary.unreachable_count,
            "garbage": summary.garbage.as_ref().map(|g| json!({
                "objects": g.objects, "shallow_bytes": g.shallow_bytes,
                "classes": analysis.garbage_histogram().iter().map(|s| json!({
                    "name": analysis.graph().class_name(s.class),
                    "count": s.count,
                    "shallow_bytes": s.shallow_bytes,
                })).collect::<Vec<_>>(),
            })),
            "statistics": summary.statistics,
            "suspect_threshold": args.threshold / 100.0,
            "accumulation_ratio": suspects::ACCUMULATION_RATIO,
            "classes": histogram.iter().map(|s| analysis.class_json(s)).collect::<Vec<_>>(),
            "dominators": summary.dominators.iter().map(|d| analysis.object_json(d)).collect::<Vec<_>>(),
            "suspects": summary.suspects.iter().zip(&found).map(|(s, suspect)| json!({
                "description": s.description,
                "retained_bytes": s.retained_bytes,
                "accumulation_point": s.accumulation_point,
                "accumulated": s.accumulated.iter().map(|a| json!({
                    "class": a.class, "count": a.count, "retained_bytes": a.retained_bytes,
                    "allocation_stack": a.allocation_stack,
                })).collect::<Vec<_>>(),
                "path": analysis.path_json(&s.path),
                "accumulation_path": analysis.path_json(&s.accumulation_path),
                "allocation_stack": analysis.allocation_stack(suspect.representative()),
            })).collect::<Vec<_>>(),
            "detached": detached.iter().map(|s| analysis.class_json(s)).collect::<Vec<_>>(),
            "duplicate_strings": summary.duplicate_strings.iter().map(|d| json!({
                "value": d.value, "count": d.count, "wasted_bytes": d.wasted_bytes,
            })).collect::<Vec<_>>(),
            "extra": extra,
        }))?;
    } else {
        output::print(&render_summary(&summary))?;
    }
    // Freeing a big heap's columns takes a while: the graph and the dominator tree are freed
    // on two threads.
    let Analysis {
        heap, dominators, ..
    } = analysis;
    std::thread::scope(|scope| {
        scope.spawn(move || drop(dominators));
        drop(heap);
    });
    Ok(Outcome::Clean)
}

/// A single-object suspect's accumulation point when it lies below the suspect (the path shown
/// then goes down to it); `None` for class suspects and when the suspect is its own point.
fn accumulation_below(suspect: &suspects::Suspect) -> Option<NodeIndex> {
    match suspect.kind {
        SuspectKind::Single(node) if suspect.accumulation_point != node => {
            Some(suspect.accumulation_point)
        }
        _ => None,
    }
}

/// Rows of the duplicated strings table.
const DUPLICATE_STRING_ROWS: usize = 10;
/// Classes listed under a suspect's accumulation point (what piles up there).
const ACCUMULATED_CLASSES: usize = 3;

/// String values held by several string objects, most wasted bytes first.
fn duplicate_strings(graph: &HeapGraph, top: usize) -> Vec<DuplicateStringRow> {
    histogram::duplicate_strings(graph, top)
        .into_iter()
        .map(|d| DuplicateStringRow {
            value: graph.string(d.value).chars().take(200).collect(),
            count: d.count,
            wasted_bytes: d.wasted_bytes,
        })
        .collect()
}
