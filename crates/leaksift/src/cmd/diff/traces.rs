//! `leaksift diff A.trace B.trace`: two native traces compared call site by call site, as
//! `heaptrack_print --diff` does.

use std::path::Path;

use anyhow::anyhow;
use leaksift_native::compare::{FigureDeltas, TraceTotals, compare};
use leaksift_report::native_diff::render_trace_diff;
use leaksift_report::progress::Progress;

use super::Args;
use crate::cmd::report::{ReplayedTrace, replay_file, symbolizer_for};
use crate::outcome::Outcome;
use crate::output;

/// Compares trace `old` with trace `new`. A trace cut by corruption is compared as far as it
/// reads, and the error is returned after the output.
pub fn compare_traces(
    args: &Args,
    old: &Path,
    new: &Path,
    progress: &mut Progress,
) -> anyhow::Result<Outcome> {
    let old_trace = replay_file(old, progress)?;
    let new_trace = replay_file(new, progress)?;
    progress.phase("symbolizing and comparing");
    let ReplayedTrace {
        header: old_header,
        analysis: old_analysis,
        read_error: old_error,
    } = old_trace;
    let ReplayedTrace {
        header: new_header,
        analysis: new_analysis,
        read_error: new_error,
    } = new_trace;
    let mut old_symbols = symbolizer_for(&old_header, &old_analysis, &args.debug_dir);
    let mut new_symbols = symbolizer_for(&new_header, &new_analysis, &args.debug_dir);
    let comparison = compare(
        &old_analysis,
        &mut old_symbols,
        &new_analysis,
        &mut new_symbols,
    );
    progress.finish();
    let (old_name, new_name) = (old.display().to_string(), new.display().to_string());
    if args.json {
        // Written as it is serialized: a `serde_json::Value` of every site's frames took
        // gigabytes for a few hundred thousand sites (the fields in the order `json!` gave).
        #[derive(serde::Serialize)]
        struct Json<'a, S> {
            schema: &'static str,
            mode: &'static str,
            matched_by: &'static str,
            files: [&'a str; 2],
            commands: [&'a [String]; 2],
            old: &'a TraceTotals,
            new: &'a TraceTotals,
            delta: &'a FigureDeltas,
            sites: S,
        }
        output::print_json_streamed(&Json {
            schema: "leaksift.diff.v1",
            mode: "traces",
            matched_by: "frames",
            files: [&old_name, &new_name],
            commands: [&old_header.command, &new_header.command],
            old: &comparison.old,
            new: &comparison.new,
            delta: &comparison.delta,
            sites: comparison.sites_serialized(),
        })?;
    } else {
        output::print(&render_trace_diff(
            &comparison,
            &old_name,
            &new_name,
            args.top,
        ))?;
    }
    for (name, error) in [(old_name, old_error), (new_name, new_error)] {
        if let Some(error) = error {
            return Err(anyhow!(error).context(format!("trace {name} is corrupt")));
        }
    }
    Ok(Outcome::Clean)
}
