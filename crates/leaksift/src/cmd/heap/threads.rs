//! The HPROF threads section of `leaksift heap` (Eclipse MAT's thread overview): threads by
//! retained size, and in each the frames whose local variables retain the most.

use leaksift_hprof::{ThreadStack, thread_retention};
use leaksift_report::table::{Align, Table};
use leaksift_report::units::bytes;
use serde_json::{Value, json};

use super::views::Analysis;
use crate::cmd::heapfile::ExtraSection;

/// Threads shown in the text report (the JSON has all of them).
const TEXT_THREADS: usize = 10;
/// Frames shown per thread in the text report, largest retention first.
const TEXT_FRAMES: usize = 5;
/// Frames listed per thread in the JSON, innermost first (HotSpot's default
/// `MaxJavaStackTraceDepth`); deeper frames are listed only when their locals hold objects. A
/// dump with one 200 000-frame thread took 769 MB for its JSON frames.
const JSON_FRAMES: usize = 1024;

/// Builds the section from the dump's threads and the analysis' dominator tree; its JSON only
/// `with_json` (null otherwise: it is the larger part, a few hundred bytes per frame).
pub fn section(analysis: &Analysis, threads: &[ThreadStack], with_json: bool) -> ExtraSection {
    let graph = analysis.graph();
    let ranking = thread_retention(threads, &analysis.dominators);
    let mut table = Table::new(&[
        ("retained", Align::Right),
        ("thread / frame", Align::Left),
        ("biggest object held", Align::Left),
    ]);
    let mut json_threads = Vec::with_capacity(ranking.len());
    for (rank, retention) in ranking.iter().enumerate() {
        let thread = &threads[retention.thread];
        // A named thread object carries its name in its description (`java.lang.Thread "main"
        // @0x…`); an unnamed one is shown by its serial number.
        let label = match &thread.name {
            Some(_) => analysis.describe(thread.object),
            None => format!("#{} {}", thread.serial, analysis.describe(thread.object)),
        };
        if rank < TEXT_THREADS {
            table.row([bytes(retention.retained as f64), label, String::new()]);
            for frame_retention in retention.frames.iter().take(TEXT_FRAMES) {
                let frame = &thread.frames[frame_retention.frame];
                table.row([
                    bytes(frame_retention.retained as f64),
                    format!("  at {} ({})", frame.method, frame.location),
                    frame_retention.biggest.map_or_else(String::new, |node| {
                        format!(
                            "{} ({})",
                            analysis.describe(node),
                            bytes(analysis.dominators.retained(node) as f64)
                        )
                    }),
                ]);
            }
        }
        if !with_json {
            continue;
        }
        let retention_of = |at: usize| retention.frames.iter().find(|f| f.frame == at);
        let listed = |(at, frame): &(usize, &leaksift_hprof::ThreadFrame)| {
            *at < JSON_FRAMES || !frame.locals.is_empty()
        };
        let frames: Vec<Value> = thread
            .frames
            .iter()
            .enumerate()
            .filter(listed)
            .map(|(at, frame)| {
                let held = retention_of(at);
                json!({
                    "depth": frame.depth,
                    "method": frame.method,
                    "location": frame.location,
                    "retained_bytes": held.map_or(0, |f| f.retained),
                    "biggest": held.and_then(|f| f.biggest).map(|node| object(analysis, node)),
                    "locals": frame.locals.iter().map(|n| object(analysis, *n)).collect::<Vec<_>>(),
                })
            })
            .collect();
        let frames_left_out = thread.frames.len() - frames.len();
        json_threads.push(analysis.with_id(
            json!({
                "name": thread.name,
                "serial": thread.serial,
                "description": analysis.describe(thread.object),
                "shallow_bytes": graph.self_size(thread.object),
                "retained_bytes": retention.retained,
                "frames": frames,
                "frames_left_out": frames_left_out,
                "other_locals": thread
                    .other_locals
                    .iter()
                    .map(|n| object(analysis, *n))
                    .collect::<Vec<_>>(),
            }),
            graph.id(thread.object).0,
        ));
    }
    let mut text = table.render();
    if ranking.len() > TEXT_THREADS {
        text.push_str(&format!(
            "… {} more threads (all in --json)\n",
            ranking.len() - TEXT_THREADS
        ));
    }
    ExtraSection {
        title: "Threads by retained size, with the frames whose locals retain the most".to_string(),
        json_key: "threads".to_string(),
        text,
        json: if with_json {
            Value::Array(json_threads)
        } else {
            Value::Null
        },
    }
}

/// A held object in JSON: id, description and retained size.
fn object(analysis: &Analysis, node: leaksift_heap::NodeIndex) -> Value {
    analysis.with_id(
        json!({
            "description": analysis.describe(node),
            "retained_bytes": analysis.dominators.retained(node),
        }),
        analysis.graph().id(node).0,
    )
}
