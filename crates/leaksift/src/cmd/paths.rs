//! `leaksift paths`: the shortest retaining paths from the GC roots to one object, optionally
//! with some retainers ignored (DevTools' "ignore this retainer").

use std::path::PathBuf;

use leaksift_heap::paths::{PathTree, retaining_paths};
use leaksift_report::heap::render_path;
use leaksift_report::progress::Progress;
use serde_json::json;

use super::heap::views::{Analysis, parse_object_id};
use crate::outcome::Outcome;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The heap file: a V8 .heapsnapshot (optionally gzip-compressed) or a Java HPROF dump.
    pub file: PathBuf,
    /// Object id: the V8 node id as DevTools shows it (`@N`), or the HPROF object address
    /// (`0x7f3a01c8`); decimal or `0x` hex.
    #[arg(long, value_parser = parse_object_id)]
    pub id: u64,
    /// Ignore this retainer (by object id, decimal or 0x hex) and recompute; repeatable.
    #[arg(long = "ignore", value_name = "ID", value_parser = parse_object_id)]
    pub ignore: Vec<u64>,
    /// At most this many paths (one per direct retainer, shortest first).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max: u32,
    /// Print one JSON object (schema leaksift.paths.v1) instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut progress = Progress::stderr(args.quiet);
    let analysis = Analysis::load(&args.file, None, &mut progress)?;
    let target = analysis.node_by_id(args.id)?;
    let cut = args
        .ignore
        .iter()
        .map(|id| analysis.node_by_id(*id))
        .collect::<anyhow::Result<Vec<_>>>()?;
    progress.phase("retaining paths");
    let graph = analysis.graph();
    let mut paths = retaining_paths(graph, target, &cut, args.max as usize);
    // HPROF: an object held only through `Reference.referent` or the finalizer queue (a soft
    // cache's value, a suspect `heap` lists) gets its path over every reference, as MAT's "Path
    // to GC Roots – with all references" (only without --ignore: that search cuts nothing).
    let through_references = paths.is_empty() && cut.is_empty() && target != graph.root();
    if through_references {
        paths.extend(PathTree::towards(graph, &[target]).path_to(graph, target));
    }
    let through_references = through_references && !paths.is_empty();
    progress.finish();
    let rows: Vec<_> = paths.iter().map(|p| analysis.path_rows(p)).collect();
    let object = analysis.object_row(target);
    if args.json {
        output::print_json(&json!({
            "schema": "leaksift.paths.v1",
            "file": args.file.display().to_string(),
            "object": analysis.object_json(&object),
            "ignored": args.ignore,
            "reachable": !rows.is_empty(),
            "garbage": !analysis.counts(target),
            "held_only_by_references": through_references,
            "paths": rows.iter().map(|r| analysis.path_json(r)).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut text = format!(
            "{} — retains {}\n",
            leaksift_report::escape::one_line(&object.description),
            leaksift_report::units::bytes(object.retained_bytes as f64)
        );
        if through_references {
            text.push_str(
                "held only through java.lang.ref references (weak, soft, phantom or pending \
                 finalization): its path over every reference\n",
            );
        } else if !analysis.counts(target) {
            text.push_str(
                "garbage: no GC root reaches it over any reference (MAT discards such objects; \
                 `heap` leaves them out of its totals)\n",
            );
        } else if rows.is_empty() && !cut.is_empty() {
            text.push_str(
                "not reachable from the roots over strong references with the ignored retainers cut\n",
            );
        } else if rows.is_empty() {
            text.push_str("not reachable from the roots over strong references\n");
        }
        for (i, row) in rows.iter().enumerate() {
            text.push_str(&format!("\npath {}:\n{}", i + 1, render_path(row)));
        }
        output::print(&text)?;
    }
    Ok(Outcome::Clean)
}
