//! `leaksift report`: replays a native trace, symbolizes it and prints leaks by class, peak,
//! hotspots, temporaries and growth by call site; optionally a flamegraph and a CI verdict.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use leaksift_native::replay::{Analysis, Replay};
use leaksift_native::suppress::{Suppressions, suppression_for};
use leaksift_native::symbolize::{Symbolizer, UnresolvedModule};
use leaksift_native::view::{self, FlameMetric, NativeReport, ViewOptions};
use leaksift_report::escape::{one_line, terminal};
use leaksift_report::flamegraph::{self, WeightedStack};
use leaksift_report::native::{TraceLabel, frame_text, render_text};
use leaksift_report::progress::Progress;
use leaksift_trace::model::TraceHeader;
use leaksift_trace::{TraceError, TraceReader};

use crate::cmd::file_kind::{self, FileKind};
use crate::cmd::trend::options::parse_bytes;
use crate::outcome::Outcome;
use crate::output;

/// JSON schema name of this command's output.
const SCHEMA: &str = "leaksift.report.v1";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trace written by `leaksift record`.
    pub trace: PathBuf,
    /// Print one JSON object (schema `leaksift.report.v1`) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Write a flamegraph SVG of the metric chosen by --flamegraph-metric.
    #[arg(long, value_name = "FILE.svg")]
    pub flamegraph: Option<PathBuf>,
    /// What the flamegraph's widths measure.
    #[arg(long, value_enum, default_value_t = MetricArg::Leaked)]
    pub flamegraph_metric: MetricArg,
    /// Exit 1 when unsuppressed definitely + indirectly lost bytes exceed BYTES (default 0).
    /// Accepts suffixes like 10KiB. Put TRACE before this flag when giving no value.
    #[arg(long, value_name = "BYTES", num_args = 0..=1, default_missing_value = "0", value_parser = parse_bytes)]
    pub fail_on_leak: Option<u64>,
    /// LeakSanitizer-style suppressions: `leak:PATTERN` lines, `#` comments.
    #[arg(long, value_name = "FILE")]
    pub suppressions: Option<PathBuf>,
    /// Write a suppressions file with one `leak:` line per unsuppressed definitely or indirectly
    /// lost stack (as valgrind's --gen-suppressions), for --suppressions.
    #[arg(long, value_name = "FILE")]
    pub gen_suppressions: Option<PathBuf>,
    /// Rows in the peak, hotspot, temporary and growth lists, and lost-block stacks printed
    /// (the JSON lists every leak stack).
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Extra directory searched for separate debug files (`.build-id/xx/….debug`, debuglink
    /// targets) before /usr/lib/debug; repeatable.
    #[arg(long, value_name = "DIR")]
    pub debug_dir: Vec<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--flamegraph-metric` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricArg {
    /// Bytes lost at exit, suppressed stacks left out (all live bytes when the trace has no
    /// leak scan).
    Leaked,
    /// Bytes held at the heap's peak.
    Peak,
    /// Allocation counts.
    Allocations,
}

/// The `--fail-on-leak` check as written to JSON.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct FailCheck {
    budget_bytes: u64,
    /// Unsuppressed definitely + indirectly lost bytes.
    lost_bytes: u64,
    failed: bool,
}

/// The `--gen-suppressions` file as written to JSON.
#[derive(Debug, Clone, serde::Serialize)]
struct GeneratedSuppressions {
    file: String,
    /// The `leak:` patterns written, in the order of the lost stacks.
    patterns: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
struct JsonReport<'a> {
    schema: &'static str,
    trace: String,
    pid: u32,
    command: &'a [String],
    #[serde(flatten)]
    report: &'a NativeReport,
    fail_on_leak: Option<FailCheck>,
    flamegraph: Option<String>,
    generated_suppressions: Option<GeneratedSuppressions>,
    /// Modules whose frames show as `??`, and why their symbols could not be read.
    unresolved_modules: &'a [UnresolvedModule],
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    super::distinct_files::refuse_overlaps(
        &[
            ("TRACE", Some(&args.trace)),
            ("--suppressions", args.suppressions.as_deref()),
        ],
        &[
            ("--flamegraph", args.flamegraph.as_deref()),
            ("--gen-suppressions", args.gen_suppressions.as_deref()),
        ],
    )?;
    let suppressions = match &args.suppressions {
        Some(path) => load_suppressions(path)?,
        None => Suppressions::default(),
    };
    let trace_name = args.trace.display().to_string();
    let mut progress = Progress::stderr(args.quiet);
    let ReplayedTrace {
        header,
        analysis,
        read_error,
    } = replay_file(&args.trace, &mut progress)?;
    progress.phase("symbolizing");
    let mut symbolizer = symbolizer_for(&header, &analysis, &args.debug_dir);
    let options = ViewOptions {
        top: args.top,
        ..ViewOptions::default()
    };
    let report = view::build(&analysis, &mut symbolizer, &suppressions, &options);

    // Written first, its error reported after the report is printed.
    let mut flamegraph_written = Ok(());
    if let Some(path) = &args.flamegraph {
        progress.phase("writing flamegraph");
        let (metric, title, unit) = match args.flamegraph_metric {
            MetricArg::Leaked => (FlameMetric::Leaked, "Bytes lost at exit", "bytes"),
            MetricArg::Peak => (FlameMetric::Peak, "Bytes held at the heap peak", "bytes"),
            MetricArg::Allocations => (FlameMetric::Allocations, "Allocations", "allocations"),
        };
        let stacks: Vec<WeightedStack> =
            view::flame_stacks(&analysis, &mut symbolizer, &suppressions, metric)
                .into_iter()
                .map(|s| WeightedStack {
                    frames: s.frames,
                    weight: s.weight,
                })
                .collect();
        let title = format!(
            "{title}: {}",
            leaksift_report::escape::shell_words(&header.command)
        );
        flamegraph_written = write_flamegraph(path, &stacks, &title, unit);
    }
    let generated = args.gen_suppressions.as_ref().map(|path| {
        let (text, patterns) = generated_suppressions(&report, &header.command);
        let written = crate::output::replace_file(path, text.as_bytes())
            .with_context(|| format!("cannot write suppressions file {}", path.display()));
        let json = GeneratedSuppressions {
            file: path.display().to_string(),
            patterns,
        };
        (json, written)
    });
    progress.finish();
    let unresolved = symbolizer.unresolved_modules();

    // Without a reachability scan, or when the program's allocator came before the tracer,
    // there are no lost bytes to check: an error below.
    let allocator_before_tracer = report
        .untraced_memory
        .as_ref()
        .and_then(|u| u.allocator_before_tracer.clone());
    let fail_check = args
        .fail_on_leak
        .filter(|_| report.scan.is_some() && allocator_before_tracer.is_none())
        .map(|budget| {
            let lost = report
                .unsuppressed
                .definitely_lost
                .bytes
                .saturating_add(report.unsuppressed.indirectly_lost.bytes);
            FailCheck {
                budget_bytes: budget,
                lost_bytes: lost,
                failed: lost > budget,
            }
        });
    // Through `output`: a reader that closed the pipe (`| head`) ends the output quietly and
    // the exit status stays the verdict's.
    if args.json {
        let json = JsonReport {
            schema: SCHEMA,
            trace: trace_name.clone(),
            pid: header.pid,
            command: &header.command,
            report: &report,
            fail_on_leak: fail_check,
            // Only files actually written are named (the error follows the JSON).
            flamegraph: args
                .flamegraph
                .as_ref()
                .filter(|_| flamegraph_written.is_ok())
                .map(|p| p.display().to_string()),
            generated_suppressions: generated
                .as_ref()
                .filter(|(_, written)| written.is_ok())
                .map(|(json, _)| json.clone()),
            unresolved_modules: &unresolved,
        };
        output::println(&serde_json::to_string(&json)?)?;
    } else {
        let label = TraceLabel {
            trace: &trace_name,
            command: &header.command,
            pid: header.pid,
        };
        let mut text = render_text(&report, label, args.top);
        if !unresolved.is_empty() {
            text.push_str("\nFrames shown as ?? (no symbols):\n");
            for module in &unresolved {
                text.push_str(&format!(
                    "  {}: {}\n",
                    one_line(&module.module),
                    one_line(&module.reason)
                ));
            }
        }
        if let Some((generated, Ok(()))) = &generated {
            text.push_str(&format!(
                "\n--gen-suppressions: {} suppressions written to {}\n",
                generated.patterns.len(),
                generated.file
            ));
        }
        if let Some(check) = &fail_check {
            text.push_str(&format!(
                "\n--fail-on-leak: {} lost (definitely + indirectly, unsuppressed), budget {}: {}\n",
                check.lost_bytes,
                check.budget_bytes,
                if check.failed { "FAIL" } else { "ok" }
            ));
        } else if args.fail_on_leak.is_some() {
            text.push_str(if allocator_before_tracer.is_some() {
                "\n--fail-on-leak: not checked (the allocations were not traced)\n"
            } else {
                "\n--fail-on-leak: not checked (no reachability scan)\n"
            });
        }
        output::print(&text)?;
    }

    flamegraph_written?;
    if let Some((_, written)) = generated {
        written?;
    }
    if let Some(error) = read_error {
        return Err(anyhow!(error).context(format!("trace {trace_name} is corrupt")));
    }
    if let (Some(_), Some(first)) = (args.fail_on_leak, &allocator_before_tracer) {
        return Err(anyhow!(
            "cannot check --fail-on-leak: in trace {trace_name}, {first} came before the tracer \
             in the loader's search order, so the program's allocations went to it untraced \
             (list it after the tracer in LD_PRELOAD)"
        ));
    }
    if args.fail_on_leak.is_some() && report.scan.is_none() {
        let why = if report.exec {
            "the program replaced itself with exec"
        } else if report.exit_status.is_some() {
            // The tracer writes no scan when it cannot read the process's memory at all.
            "the tracer could not read the process's memory: process_vm_readv and \
             /proc/self/mem were refused, as by a seccomp filter"
        } else {
            "the process did not exit normally"
        };
        return Err(anyhow!(
            "cannot check --fail-on-leak: trace {trace_name} has no reachability scan ({why})"
        ));
    }
    match fail_check {
        Some(check) if check.failed => Ok(Outcome::LeakFound),
        _ => Ok(Outcome::Clean),
    }
}

/// A trace read and replayed, and the error that ended it early, if any.
pub(crate) struct ReplayedTrace {
    pub header: TraceHeader,
    pub analysis: Analysis,
    pub read_error: Option<TraceError>,
}

/// Opens the trace at `path` (a heap file gets the command that reads it) and replays it.
pub(crate) fn replay_file(path: &Path, progress: &mut Progress) -> anyhow::Result<ReplayedTrace> {
    let reader = TraceReader::open(path).map_err(|error| {
        file_kind::wrong_command(path, |kind| kind == FileKind::Trace).map_or_else(
            || anyhow!(error).context(format!("cannot open trace {}", path.display())),
            |advice| anyhow!(advice),
        )
    })?;
    progress.phase("reading trace");
    let header = reader.header().clone();
    let (analysis, read_error) = replay_trace(reader, progress);
    Ok(ReplayedTrace {
        header,
        analysis,
        read_error,
    })
}

/// The symbolizer of a trace's modules, looking for separate debug files in `debug_dirs` too.
pub(crate) fn symbolizer_for<'a>(
    header: &TraceHeader,
    analysis: &'a Analysis,
    debug_dirs: &[PathBuf],
) -> Symbolizer<'a> {
    let symbolizer = Symbolizer::new(&analysis.modules, debug_dirs);
    if header.start_unix_s != 0 {
        symbolizer.recorded_at(header.start_unix_s, header.start_subsec_nanos)
    } else {
        symbolizer
    }
}

/// Replays every event of the trace. [`TraceReader::open`] decodes on its own thread a few chunks
/// ahead, so decoding and replay overlap; each chunk's events arrive as one vector through
/// [`TraceReader::read_batch`] (no per-event copying), and the replayed vector goes back to the
/// decoder, which drops its events on its own thread. A decoding error ends the stream: the
/// analysis covers the events before it (and is marked truncated) and the error is returned
/// beside it.
fn replay_trace<R: std::io::Read>(
    mut reader: TraceReader<R>,
    progress: &mut Progress,
) -> (Analysis, Option<TraceError>) {
    let mut replay = Replay::new();
    let mut batch = Vec::new();
    let mut events = 0usize;
    let mut shown_millions = 0usize;
    let error = loop {
        match reader.read_batch(&mut batch) {
            Ok(true) => {}
            Ok(false) => break None,
            Err(error) => break Some(error),
        }
        for event in &batch {
            replay.event(event);
        }
        events += batch.len();
        if events >> 20 != shown_millions {
            shown_millions = events >> 20;
            progress.update(&format!("{shown_millions} M events"));
        }
    };
    let mut analysis = replay.finish();
    analysis.truncated |= reader.is_truncated() || error.is_some();
    (analysis, error)
}

/// The `--gen-suppressions` file for the report's unsuppressed definitely and indirectly lost
/// stacks: one `leak:` line per distinct pattern, after a comment naming the stacks it covers;
/// and the patterns.
fn generated_suppressions(report: &NativeReport, command: &[String]) -> (String, Vec<String>) {
    let mut text = format!(
        "# leaksift suppressions for the lost blocks of `{}`\n# (generated by `leaksift report --gen-suppressions`; use with `--suppressions`)\n",
        leaksift_report::escape::shell_words(command)
    );
    let mut patterns: Vec<String> = Vec::new();
    let lost = report.leak_stacks.iter().filter(|stack| {
        stack.suppressed_by.is_none() && matches!(stack.kind, "definitely_lost" | "indirectly_lost")
    });
    for stack in lost {
        let site = stack
            .frames
            .iter()
            .take(4)
            .map(frame_text)
            .collect::<Vec<_>>()
            .join(" ← ");
        // Only a comment, but one a terminal may show: no control character raw.
        let site = terminal(&site);
        text.push_str(&format!(
            "\n# {}: {} B in {} block{} at {site}\n",
            stack.kind.replace('_', " "),
            stack.bytes,
            stack.blocks,
            if stack.blocks == 1 { "" } else { "s" }
        ));
        match suppression_for(&stack.frames) {
            Some(pattern) if patterns.contains(&pattern) => {
                text.push_str(&format!("# (covered by leak:{pattern} above)\n"));
            }
            Some(pattern) => {
                text.push_str(&format!("leak:{pattern}\n"));
                patterns.push(pattern);
            }
            None => text.push_str("# (no symbol or module to match: not suppressible)\n"),
        }
    }
    (text, patterns)
}

fn load_suppressions(path: &Path) -> anyhow::Result<Suppressions> {
    let bytes = super::file_kind::read_whole(path)
        .with_context(|| format!("cannot read suppressions file {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    Suppressions::parse(&text).map_err(|error| {
        anyhow!(
            "suppressions file {}:{}: {}",
            path.display(),
            error.line,
            error.reason
        )
    })
}

fn write_flamegraph(
    path: &Path,
    stacks: &[WeightedStack],
    title: &str,
    unit: &str,
) -> anyhow::Result<()> {
    let mut svg = Vec::new();
    flamegraph::write_svg(stacks, title, unit, &mut svg)
        .and_then(|()| crate::output::replace_file(path, &svg))
        .with_context(|| format!("cannot write flamegraph {}", path.display()))
}
