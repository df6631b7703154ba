//! `leaksift trend`: the leak verdict on a series someone already has: `watch --out`, any CSV with
//! a time and a memory column (Grafana's export), a psrecord log, an `mprof` file or Prometheus
//! range-query JSON.

pub mod options;
pub mod render;

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use leaksift_watch::import::Format;

use self::options::{Thresholds, parse_bytes};
use self::render::{Evidence, Headline, Per, Verdict};
use crate::cmd::file_kind;
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The series: a CSV with a header naming `t` (seconds) or a time/timestamp/date column and a
    /// `bytes` (or single) memory column, a psrecord log, an mprof file or Prometheus query_range
    /// JSON; a `pid` column marks restarts.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The memory column of a CSV with several (name, or a unique part of it), psrecord's
    /// `virtual` instead of `real`, or the Prometheus series whose labels contain this text.
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Memory limit; gives the time to reach it (default: the file's `limit` column, if any).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub limit: Option<u64>,
    /// Write the chart (samples, baseline, trend, limit crossing) as SVG.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Print one JSON object (schema leaksift.trend.v1) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when the verdict is "leak".
    #[arg(long)]
    pub fail_on_leak: bool,
    #[command(flatten)]
    pub thresholds: Thresholds,
}

/// `--json` output of `trend` (documented in docs/json.md).
#[derive(Debug, Serialize)]
struct TrendJson {
    schema: &'static str,
    file: String,
    format: &'static str,
    source: String,
    #[serde(flatten)]
    headline: Headline,
    #[serde(flatten)]
    evidence: Evidence,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let name = args.file.display().to_string();
    super::distinct_files::refuse_overlaps(
        &[("FILE", Some(&args.file))],
        &[("--svg", args.svg.as_deref())],
    )?;
    // A trace or a heap file (hundreds of MiB) is refused before it is read whole.
    if let Some(advice) = file_kind::wrong_command(&args.file, |_| false) {
        anyhow::bail!(advice);
    }
    let text = file_kind::read_whole(&args.file).with_context(|| format!("reading {name}"))?;
    // A gzipped series (`mprof` and CSV exports are often kept compressed) is read inflated;
    // it gave "header has no `t` column". Line numbers in errors count inflated lines.
    let text = if text.starts_with(&[0x1f, 0x8b]) {
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::MultiGzDecoder::new(&text[..]),
            &mut inflated,
        )
        .with_context(|| format!("{name}: gzip data is corrupt or truncated"))?;
        inflated
    } else {
        text
    };
    let text = String::from_utf8_lossy(&text);
    let imported = leaksift_watch::import::read_series(&text, args.column.as_deref())
        .map_err(|e| anyhow::anyhow!("{name}:{}: {}", e.line, e.message))?;
    let series = &imported.series;
    let signal = match imported.format {
        Format::Csv => format!("column `{}`", imported.source),
        Format::Psrecord => format!("psrecord log, `{}` (MiB)", imported.source),
        Format::Mprof => match imported.source.as_str() {
            "MEM+CHLD" => "mprof file, MEM + CHLD lines: the process and its children (MiB)",
            "CHLD" => "mprof file, CHLD lines: the children (MiB)",
            _ => "mprof file, MEM lines (MiB)",
        }
        .to_string(),
        Format::Prometheus => format!("Prometheus series {}", imported.source),
    };
    let limit = args.limit.map(|l| l as f64).or(series.limit);
    let mut config = args.thresholds.config(None);
    config.limit = limit;
    // Without a `pid` column, deep drops to one floor may be restarts: undecided rather than
    // stable (see `Config::deep_drops_undecided`).
    config.deep_drops_undecided = !series.marks_restarts;
    let analysis =
        leaksift_stats::analyze_with_breaks(&series.t, &series.bytes, &series.breaks, &config)
            .with_context(|| format!("analysing {name}"))?;
    let verdict = Verdict {
        analysis: &analysis,
        t: &series.t,
        bytes: &series.bytes,
        per: Per::Second,
        signal: &signal,
        axis: "memory",
        limit,
    };
    // Written first, its error reported after the verdict is printed.
    let svg_written = args.svg.as_ref().map_or(Ok(()), |svg| {
        render::write_file(svg, &verdict.svg(&format!("leaksift trend {name}")))
    });
    if args.json {
        let json = TrendJson {
            schema: "leaksift.trend.v1",
            file: name,
            format: imported.format.name(),
            source: imported.source.clone(),
            headline: verdict.headline(),
            evidence: verdict.evidence(),
        };
        crate::output::println(&serde_json::to_string_pretty(&json)?)?;
    } else {
        crate::output::print(&verdict.text())?;
    }
    svg_written?;
    Ok(
        if args.fail_on_leak && analysis.verdict == leaksift_stats::Verdict::Leak {
            Outcome::LeakFound
        } else {
            Outcome::Clean
        },
    )
}
