//! `leaksift demo`: the leak hunt on a bundled leaky program, as a list of steps that each run a
//! leaksift command the way a user would type it (later steps can be appended to `STEPS`).

mod leaky;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use super::trend::options::parse_duration;
use crate::outcome::Outcome;
use crate::output::outln;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the demo's outputs (charts, CSV).
    #[arg(long, value_name = "DIR", default_value = "leaksift-demo")]
    pub out_dir: PathBuf,
    /// How long the watch step samples the leaky program.
    #[arg(long, value_name = "DUR", default_value = "6s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Be the bundled leaky program instead of running the demo (the demo launches itself so).
    #[arg(long, hide = true)]
    pub leaky_program: bool,
    /// How long the bundled leaky program runs before it exits by itself.
    #[arg(long, hide = true, value_name = "DUR", default_value = "120s", value_parser = parse_duration)]
    pub leaky_lifetime: Duration,
}

/// What a demo step needs to know.
struct StepContext<'a> {
    exe: PathBuf,
    out_dir: &'a Path,
    duration: Duration,
}

/// One step of the demo: a title, and the work (which prints its own output).
struct Step {
    title: &'static str,
    run: fn(&StepContext<'_>) -> anyhow::Result<()>,
}

const STEPS: &[Step] = &[
    Step {
        title: "confirm the leak: watch memory over time",
        run: watch_step,
    },
    Step {
        title: "locate it: record every allocation of the same program",
        run: record_step,
    },
    Step {
        title: "explain it: report the call sites whose live bytes keep growing",
        run: report_step,
    },
];

/// How long the record step lets the leaky program run: long enough for the growth of its
/// call sites to be significant, short enough for a demo.
const RECORD_LIFETIME: &str = "4s";
/// The function of the bundled program that leaks (see `demo/leaky.rs`).
const LEAKING_FUNCTION: &str = "remember_response";

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if args.leaky_program {
        leaky::run(args.leaky_lifetime);
        return Ok(Outcome::Clean);
    }
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let context = StepContext {
        exe: std::env::current_exe().context("locating the leaksift executable")?,
        out_dir: &args.out_dir,
        duration: args.duration,
    };
    for (n, step) in STEPS.iter().enumerate() {
        outln!("== step {}/{}: {}", n + 1, STEPS.len(), step.title)?;
        (step.run)(&context).with_context(|| format!("demo step {}", n + 1))?;
        outln!()?;
    }
    Ok(Outcome::Clean)
}

/// A subcommand's flags parsed from a command line, exactly as the user would type them.
#[derive(Debug, Parser)]
struct WatchLine {
    #[command(flatten)]
    args: super::watch::Args,
}

fn watch_step(cx: &StepContext<'_>) -> anyhow::Result<()> {
    let svg = cx.out_dir.join("watch.svg");
    let csv = cx.out_dir.join("watch.csv");
    let duration = format!("{}ms", cx.duration.as_millis());
    let line: Vec<OsString> = [
        OsString::from("watch"),
        "--interval".into(),
        "100ms".into(),
        "--duration".into(),
        duration.into(),
        "--fail-on-leak".into(),
        "--svg".into(),
        svg.clone().into(),
        "--out".into(),
        csv.clone().into(),
        "--".into(),
        cx.exe.clone().into(),
        "demo".into(),
        "--leaky-program".into(),
    ]
    .into();
    show_command(&line)?;
    let parsed = WatchLine::try_parse_from(&line).context("building the watch command line")?;
    let outcome = super::watch::run(parsed.args)?;
    outln!("chart: {}   samples: {}", svg.display(), csv.display())?;
    match outcome {
        Outcome::LeakFound => {
            outln!(
                "leaksift confirmed the bundled program's leak (exit code 1 with --fail-on-leak)."
            )?;
            Ok(())
        }
        _ => anyhow::bail!(
            "the bundled leaky program was not found leaking in {} of watching (the verdict is \
             above): watch it longer, e.g. `leaksift demo --duration 15s` (a busy machine blurs \
             the growth too)",
            leaksift_report::units::duration(cx.duration.as_secs_f64())
        ),
    }
}

/// Prints a command line the way a user would type it.
fn show_command(line: &[OsString]) -> std::io::Result<()> {
    let words: Vec<_> = line.iter().map(|a| a.to_string_lossy()).collect();
    outln!("$ leaksift {}", words.join(" "))
}

/// Runs `leaksift ARGS…` (this executable) as a child, letting it print to the terminal.
fn run_leaksift(
    cx: &StepContext<'_>,
    line: &[OsString],
) -> anyhow::Result<std::process::ExitStatus> {
    show_command(line)?;
    std::process::Command::new(&cx.exe)
        .args(line)
        .status()
        .with_context(|| format!("running {}", cx.exe.display()))
}

fn trace_path(cx: &StepContext<'_>) -> PathBuf {
    cx.out_dir.join("demo.trace")
}

fn record_step(cx: &StepContext<'_>) -> anyhow::Result<()> {
    let line: Vec<OsString> = vec![
        "record".into(),
        "-o".into(),
        trace_path(cx).into(),
        "--".into(),
        cx.exe.clone().into(),
        "demo".into(),
        "--leaky-program".into(),
        "--leaky-lifetime".into(),
        RECORD_LIFETIME.into(),
    ];
    let status = run_leaksift(cx, &line)?;
    anyhow::ensure!(status.success(), "`leaksift record` failed ({status})");
    Ok(())
}

fn report_step(cx: &StepContext<'_>) -> anyhow::Result<()> {
    let flamegraph = cx.out_dir.join("peak-flamegraph.svg");
    let mut line: Vec<OsString> = vec![
        "report".into(),
        trace_path(cx).into(),
        "--top".into(),
        "3".into(),
        "--flamegraph".into(),
        flamegraph.clone().into(),
        "--flamegraph-metric".into(),
        "peak".into(),
    ];
    let status = run_leaksift(cx, &line)?;
    anyhow::ensure!(status.success(), "`leaksift report` failed ({status})");
    outln!(
        "flamegraph of the heap at its peak: {}",
        flamegraph.display()
    )?;

    // Check the finding the way a CI job would: from the JSON report.
    line.truncate(2);
    line.push("--json".into());
    let output = std::process::Command::new(&cx.exe)
        .args(&line)
        .stderr(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {}", cx.exe.display()))?;
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing the report's JSON")?;
    let leaking_site = report["growth"]["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|site| {
            site["verdict"] == "leak"
                && site["frames"].as_array().is_some_and(|frames| {
                    frames.iter().any(|f| {
                        f["function"]
                            .as_str()
                            .is_some_and(|name| name.contains(LEAKING_FUNCTION))
                    })
                })
        });
    match leaking_site {
        Some(site) => {
            let frame = site["frames"]
                .as_array()
                .and_then(|frames| {
                    frames.iter().find(|f| {
                        f["function"]
                            .as_str()
                            .is_some_and(|name| name.contains(LEAKING_FUNCTION))
                    })
                })
                .cloned()
                .unwrap_or_default();
            outln!(
                "leaksift found the leaking call site: {} ({}:{})",
                frame["function"].as_str().unwrap_or("?"),
                frame["file"].as_str().unwrap_or("?"),
                frame["line"]
            )?;
            Ok(())
        }
        None => anyhow::bail!(
            "the report did not single out `{LEAKING_FUNCTION}` as a growing call site; the machine may be \
             too busy: run `leaksift report {}` to see why",
            trace_path(cx).display()
        ),
    }
}
