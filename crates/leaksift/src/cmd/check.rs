//! `leaksift check`: a CI gate for servers. Starts the server, waits until it is ready, runs a
//! scenario command repeatedly and fails (exit 1) when memory grows per iteration beyond a budget.
//!
//! Garbage-collected runtimes (the JVM, Node.js) need help that leaksift cannot infer: their
//! resident memory follows the collector's lazy heap growth, so a server that leaks nothing grows
//! for many iterations, and a pre-touched JVM heap hides a heap leak entirely. Measured (see
//! docs/ARCHITECTURE.md, "check on garbage-collected runtimes"), the default gate failed every run
//! of non-leaking Node and Java servers. The signal that tracks live data is the heap after a
//! full GC: `--jvm-heap` reads it with the JDK's jcmd (`GC.class_histogram`), `--sample-cmd`
//! takes it from the user's command (V8 cannot be made to collect from outside; the server must
//! expose it), and `--before-sample` runs a command (a forced GC) before PSS is sampled.
//! leaksift does not pick one by itself from an executable's name: when the server tree runs
//! `java` or `node` without any of them, `check` warns and names the flag to add.

mod junit;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use leaksift_report::progress::Progress;
use leaksift_report::units;
use leaksift_stats::{Config, Verdict as StatsVerdict};
use leaksift_watch::check::{self, CheckOptions, Measure, Ready, Runtime};
use leaksift_watch::child::{self, Launched, Streams};
use leaksift_watch::{Sampler, Target};
use serde::Serialize;

use self::junit::CaseResult;
use super::trend::options::{parse_bytes, parse_duration, parse_probability};
use super::trend::render::{self, Evidence, Per, Verdict};
use super::watch::interrupt_flag;
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Shell command (run with `sh -c`) that exercises the server once; it must exit 0.
    #[arg(long, value_name = "CMD")]
    pub scenario: String,
    /// Scenario runs before measuring (fill caches, JIT, pools).
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub warmup: usize,
    /// Measured scenario runs (at least 5); memory is sampled after each.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u64).range(5..))]
    pub iterations: u64,
    /// Allowed growth per iteration: fail only when the 95% interval's lower bound exceeds it.
    /// The default, 16 KiB (four pages), is above the page-granular noise of RSS/PSS and far below
    /// a leak of one buffer per request.
    #[arg(long, value_name = "BYTES", default_value = "16KiB", value_parser = parse_bytes)]
    pub budget: u64,
    /// Wait this long after starting the server (used when --ready-cmd is not given).
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_duration)]
    pub ready_delay: Duration,
    /// Shell command polled every 100ms until it exits 0 (e.g. `curl -sf localhost:8080/health`).
    #[arg(long, value_name = "CMD")]
    pub ready_cmd: Option<String>,
    /// Shell command run after the warm-up and after each measured iteration, before memory is
    /// sampled; it must exit 0: e.g. a forced GC (`curl -sf localhost:8080/debug/gc`, an endpoint
    /// calling `global.gc()` in `node --expose-gc`). PSS after a GC still follows the heap's
    /// paging: to analyse the heap itself use --jvm-heap or --sample-cmd. $LEAKSIFT_SERVER_PID
    /// holds the server's PID in every command (ready, scenario, before-sample, sample).
    #[arg(long, value_name = "CMD")]
    pub before_sample: Option<String>,
    /// Shell command whose output (a byte count: `123456`, `1.5 MiB`) is analysed instead of the
    /// server tree's PSS, e.g. a Node endpoint answering the heap used after `global.gc()`.
    #[arg(long, value_name = "CMD", conflicts_with = "jvm_heap")]
    pub sample_cmd: Option<String>,
    /// Analyse the live objects of the JVM in the server's tree instead of PSS: runs
    /// `jcmd PID GC.class_histogram` (a full GC, then its byte total) after each iteration.
    /// Needs the JDK's jcmd and the JVM's user.
    #[arg(long)]
    pub jvm_heap: bool,
    /// Give up waiting for --ready-cmd after this long.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// Memory limit of the server (e.g. its container's): projects when a leak would reach it, at
    /// the pace the scenario ran here.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub limit: Option<u64>,
    /// Significance level of the one-sided Mann–Kendall test for growth.
    #[arg(long, value_name = "P", default_value_t = 0.01, value_parser = parse_probability)]
    pub alpha: f64,
    /// Write a JUnit XML report (one test case; slope, interval and p-value as properties).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the chart of memory per iteration as SVG.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Print one JSON object (schema leaksift.check.v1) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// The server command and its arguments.
    #[arg(last = true, required = true, value_name = "SERVER")]
    pub server: Vec<OsString>,
}

/// `--json` output of `check` (documented in docs/json.md).
#[derive(Debug, Serialize)]
struct CheckJson {
    schema: &'static str,
    server: String,
    scenario: String,
    /// `"tree_pss"`, `"sample_cmd"` (`--sample-cmd`) or `"jvm_heap"` (`--jvm-heap`).
    signal: &'static str,
    before_sample: Option<String>,
    sample_cmd: Option<String>,
    /// The garbage-collected runtime found in the server's tree (`"jvm"`, `"node"`), if any.
    runtime: Option<&'static str>,
    /// What makes the verdict doubtful (also printed on stderr).
    warnings: Vec<String>,
    result: &'static str,
    verdict: &'static str,
    slope_bytes_per_iteration: f64,
    slope_ci: [f64; 2],
    p_value: f64,
    samples: usize,
    budget_bytes_per_iteration: u64,
    warmup: usize,
    iterations: u64,
    bytes_per_iteration_sample: Vec<u64>,
    /// Mean wall time of one measured iteration (the pace used to turn iterations into seconds).
    seconds_per_iteration: Option<f64>,
    /// Iterations until the fitted trend reaches `--limit` (leaks only).
    time_to_limit_iterations: Option<f64>,
    time_to_limit_s: Option<f64>,
    /// `[earliest, latest]` from the slope interval; latest `null` when the lower slope is not positive.
    time_to_limit_range_s: Option<[Option<f64>; 2]>,
    #[serde(flatten)]
    evidence: Evidence,
}

/// Baseline points of a check's analysis at most (see `windows` in `run`).
const MAX_BASELINE_POINTS: usize = 2000;

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    super::distinct_files::refuse_overlaps(
        &[],
        &[
            ("--junit", args.junit.as_deref()),
            ("--svg", args.svg.as_deref()),
        ],
    )?;
    let interrupted = interrupt_flag()?;
    render::check_writable(args.svg.iter().chain(&args.junit).map(|p| p.as_path()))?;
    let started = Instant::now();
    // A server that daemonizes is re-parented to leaksift: measured, and stopped at the end.
    child::adopt_orphans().context("adopting the server's daemonized processes")?;
    // Dropping `server` (on every path out of this function) stops its process group and orphans.
    let mut server = match Launched::spawn(&args.server, Streams::Detached) {
        Ok(server) => server,
        Err(error) => {
            let error = anyhow::Error::new(error);
            write_junit_error(&args, started.elapsed().as_secs_f64(), &error, "")?;
            return Err(error);
        }
    };
    let server_name = server.command().to_string();
    let mut progress = Progress::stderr(args.quiet);
    let ready = match &args.ready_cmd {
        Some(cmd) => Ready::Command(cmd.clone()),
        None => Ready::Delay(args.ready_delay),
    };
    progress.phase(&format!("starting `{server_name}`"));
    let ready_result = check::wait_ready(&mut server, &ready, args.ready_timeout, &interrupted);
    let mut runtime = None;
    let run = ready_result.and_then(|()| {
        runtime = check::find_runtime(server.pid()).map(|found| found.runtime);
        let mut sampler = Sampler::new(&Target::Tree {
            root: server.pid(),
            orphans: true,
        })?;
        progress.phase("running the scenario");
        let options = CheckOptions {
            scenario: args.scenario.clone(),
            warmup: args.warmup,
            iterations: args.iterations as usize,
            ready: ready.clone(),
            ready_timeout: args.ready_timeout,
            before_sample: args.before_sample.clone(),
            measure: measure(&args),
        };
        Ok(check::run_iterations(
            &mut server,
            &mut sampler,
            &options,
            &interrupted,
            |k, s| {
                progress.update(&format!(
                    "iteration {k}/{}  {}",
                    args.iterations,
                    units::bytes(s.bytes as f64)
                ));
            },
        ))
    });
    progress.finish();
    server.stop(Duration::from_secs(2));
    let seconds = started.elapsed().as_secs_f64();
    let (samples, error) = match run {
        Ok(run) => (run.samples, run.error),
        Err(e) => (Vec::new(), Some(e)),
    };
    let t: Vec<f64> = (0..samples.len()).map(|k| k as f64).collect();
    let bytes: Vec<f64> = samples.iter().map(|s| s.bytes as f64).collect();
    let samples_text = bytes
        .iter()
        .enumerate()
        .map(|(k, b)| format!("iteration {k}: {b:.0} bytes"))
        .collect::<Vec<_>>()
        .join("\n");

    // The samples measured before an error are still analysed and reported, then the error ends
    // the run (exit 2); without any sample there is nothing to show but the error.
    let error = error.map(|e| anyhow::Error::new(e).context(format!("checking `{server_name}`")));
    let error = match error {
        Some(error) if samples.is_empty() => {
            write_junit_error(&args, seconds, &error, &samples_text)?;
            return Err(error);
        }
        error => error,
    };

    let config = Config {
        alpha: args.alpha,
        // One baseline point per iteration (samples are taken at quiet moments already), up to
        // 2000: the pairwise slope and test are quadratic, and an interrupted run of a hundred
        // thousand iterations took seconds to report after the signal.
        windows: MAX_BASELINE_POINTS,
        min_samples: 6,
        // A "leak" verdict means at least the budget per iteration over the run.
        min_growth_bytes: args.budget as f64 * args.iterations as f64,
        min_growth_fraction: 0.0,
        restart_drop: None,
        one_point_per_sample: true,
        limit: args.limit.map(|l| l as f64),
        ..Config::default()
    };
    let analysis = leaksift_stats::analyze(&t, &bytes, &config).context("analysing the samples")?;
    // The gate is the slope interval, whatever the verdict: a plateau (growth that levelled off
    // in the last quarter) gets a warning but still fails when its interval clears the budget,
    // because a leak measured through PSS can look flat for a few iterations (a GC'd heap fills
    // the free space of its pages before it takes new ones).
    let failed = analysis.p_value < args.alpha && analysis.slope_ci.0 > args.budget as f64;
    let warnings = warnings(&args, runtime, analysis.verdict);
    for warning in &warnings {
        leaksift_report::stderr_line!("leaksift: warning: {warning}");
    }
    let (signal, signal_text, axis) = match measure(&args) {
        Measure::JvmHeap => (
            "jvm_heap",
            "live objects in the JVM's heap (after a full GC)",
            "JVM heap after iteration",
        ),
        Measure::Command(_) => (
            "sample_cmd",
            "value printed by --sample-cmd",
            "--sample-cmd after iteration",
        ),
        Measure::TreePss => (
            "tree_pss",
            "PSS of the server's process tree",
            "PSS after iteration",
        ),
    };
    let verdict = Verdict {
        analysis: &analysis,
        t: &t,
        bytes: &bytes,
        per: Per::Iteration,
        signal: signal_text,
        axis,
        limit: None,
    };
    // The x axis is iterations; the measured pace of the scenario turns them into seconds.
    let seconds_per_iteration = match (samples.first(), samples.last()) {
        (Some(first), Some(last)) if samples.len() > 1 => {
            Some((last.t - first.t) / (samples.len() - 1) as f64)
        }
        _ => None,
    };
    let to_seconds = |iterations: f64| seconds_per_iteration.map(|pace| iterations * pace);
    // Files are written first, their errors reported after the verdict is printed.
    let svg_written = args.svg.as_ref().map_or(Ok(()), |svg| {
        render::write_file(
            svg,
            &verdict.svg(&format!("leaksift check `{server_name}`")),
        )
    });
    let summary = format!(
        "{} per iteration (95%: {} … {}), p = {}, budget {} per iteration",
        units::bytes(analysis.slope),
        units::bytes(analysis.slope_ci.0),
        units::bytes(analysis.slope_ci.1),
        render::p_value(analysis.p_value),
        units::bytes(args.budget as f64)
    );
    let junit_written = match &args.junit {
        None => Ok(()),
        Some(path) => {
            // Without a slope (a run that ended before two samples) its properties are left
            // out rather than written as NaN.
            let fitted = [
                ("slope_bytes_per_iteration", analysis.slope),
                ("slope_ci_low", analysis.slope_ci.0),
                ("slope_ci_high", analysis.slope_ci.1),
                ("p_value", analysis.p_value),
            ];
            let mut properties: Vec<(&str, String)> = fitted
                .into_iter()
                .filter(|(_, value)| value.is_finite())
                .map(|(name, value)| (name, format!("{value}")))
                .collect();
            properties.extend([
                ("budget_bytes_per_iteration", args.budget.to_string()),
                ("iterations", args.iterations.to_string()),
                ("warmup", args.warmup.to_string()),
                ("verdict", analysis.verdict.as_str().to_string()),
                ("server", server_name.clone()),
                ("signal", signal.to_string()),
            ]);
            properties.extend(warnings.iter().map(|w| ("warning", w.clone())));
            let result = if let Some(error) = &error {
                CaseResult::Error {
                    message: format!("{error:#}"),
                }
            } else if failed {
                CaseResult::Failed {
                    message: format!("memory grows {summary}"),
                    detail: samples_text.clone(),
                }
            } else {
                CaseResult::Passed
            };
            render::write_file(
                path,
                &junit::render(&args.scenario, seconds, &properties, &result, &samples_text),
            )
        }
    };
    if args.json {
        let json = CheckJson {
            schema: "leaksift.check.v1",
            server: server_name,
            scenario: args.scenario.clone(),
            signal,
            before_sample: args.before_sample.clone(),
            sample_cmd: args.sample_cmd.clone(),
            runtime: runtime.map(Runtime::as_str),
            warnings,
            result: match (&error, failed) {
                (Some(_), _) => "error",
                (None, true) => "fail",
                (None, false) => "pass",
            },
            verdict: analysis.verdict.as_str(),
            slope_bytes_per_iteration: analysis.slope,
            slope_ci: [analysis.slope_ci.0, analysis.slope_ci.1],
            p_value: analysis.p_value,
            samples: analysis.samples,
            budget_bytes_per_iteration: args.budget,
            warmup: args.warmup,
            iterations: args.iterations,
            bytes_per_iteration_sample: samples.iter().map(|s| s.bytes).collect(),
            seconds_per_iteration,
            time_to_limit_iterations: analysis.time_to_limit.map(|ttl| ttl.estimate),
            time_to_limit_s: analysis
                .time_to_limit
                .and_then(|ttl| to_seconds(ttl.estimate)),
            time_to_limit_range_s: analysis
                .time_to_limit
                .map(|ttl| [to_seconds(ttl.earliest), ttl.latest.and_then(to_seconds)]),
            evidence: verdict.evidence(),
        };
        crate::output::println(&serde_json::to_string_pretty(&json)?)?;
    } else {
        let heading = match (&error, failed) {
            (Some(_), _) => format!(
                "INCOMPLETE (stopped after {} of {} measured iterations)",
                samples.len() - 1,
                args.iterations
            ),
            (None, true) => "FAIL".to_string(),
            (None, false) => "PASS".to_string(),
        };
        let mut text = format!("{heading}: memory grows {summary}\n{}", verdict.text());
        if let Some(limit) = args.limit {
            let limit = units::bytes(limit as f64);
            text += &match analysis.time_to_limit {
                Some(ttl) => format!(
                    "time to limit  after about {:.0} more iterations (~{} at this pace), limit {limit}\n",
                    ttl.estimate,
                    to_seconds(ttl.estimate).map_or_else(|| "?".to_string(), units::duration),
                ),
                None => format!("time to limit  not projected (no leak), limit {limit}\n"),
            };
        }
        crate::output::print(&text)?;
    }
    svg_written?;
    junit_written?;
    if let Some(error) = error {
        return Err(error);
    }
    Ok(if failed {
        Outcome::LeakFound
    } else {
        Outcome::Clean
    })
}

/// Writes `--junit`, if asked, for a run that ended with `error` before any sample.
fn write_junit_error(
    args: &Args,
    seconds: f64,
    error: &anyhow::Error,
    samples_text: &str,
) -> anyhow::Result<()> {
    let Some(path) = &args.junit else {
        return Ok(());
    };
    let result = CaseResult::Error {
        message: format!("{error:#}"),
    };
    render::write_file(
        path,
        &junit::render(&args.scenario, seconds, &[], &result, samples_text),
    )
}

/// What `--sample-cmd` and `--jvm-heap` ask to analyse (clap lets only one of them through).
fn measure(args: &Args) -> Measure {
    match &args.sample_cmd {
        Some(command) => Measure::Command(command.clone()),
        None if args.jvm_heap => Measure::JvmHeap,
        None => Measure::TreePss,
    }
}

/// Why the verdict may be wrong: a garbage-collected server measured by PSS (also after a forced
/// GC: measured, the JVM's PSS still crept and V8's still hid a small leak), or growth that
/// stopped within the measured iterations.
fn warnings(args: &Args, runtime: Option<Runtime>, verdict: StatsVerdict) -> Vec<String> {
    let mut out = Vec::new();
    let by_pss = measure(args) == Measure::TreePss;
    match runtime {
        Some(Runtime::Jvm) if by_pss => out.push(
            "the server runs on the JVM: its PSS follows how much of the heap the collector has \
             touched, not live data (a server that leaks nothing grows until the heap is paged \
             in, and with -XX:+AlwaysPreTouch a heap leak never shows); analyse the heap used \
             after a full GC with --jvm-heap"
                .to_string(),
        ),
        Some(Runtime::Node) if by_pss => out.push(
            "the server runs on Node.js: V8 grows its heap and compiles code over the first \
             hundreds of requests, so PSS grows without a leak, and a small leak hides in the free \
             space of V8's pages; analyse the heap used after a full GC with --sample-cmd (node \
             --expose-gc and an endpoint answering global.gc() then process.memoryUsage()), or \
             warm up for a few hundred requests (--warmup)"
                .to_string(),
        ),
        _ => {}
    }
    if verdict == StatsVerdict::Plateau {
        out.push(format!(
            "memory growth levelled off in the last quarter of the iterations: if that is the \
             server warming up (JIT, caches, heap sizing) rather than a leak, raise --warmup {}",
            args.warmup
        ));
    }
    out
}
