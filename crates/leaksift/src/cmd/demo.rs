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

const STEPS: &[Step] = &[Step {
    title: "confirm the leak: watch memory over time",
    run: watch_step,
}];

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if args.leaky_program {
        leaky::run();
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
        println!("== step {}/{}: {}", n + 1, STEPS.len(), step.title);
        (step.run)(&context).with_context(|| format!("demo step {}", n + 1))?;
        println!();
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
    println!(
        "$ leaksift {}",
        line.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let parsed = WatchLine::try_parse_from(&line).context("building the watch command line")?;
    let outcome = super::watch::run(parsed.args)?;
    println!("chart: {}   samples: {}", svg.display(), csv.display());
    match outcome {
        Outcome::LeakFound => {
            println!(
                "leaksift confirmed the bundled program's leak (exit code 1 with --fail-on-leak)."
            );
            Ok(())
        }
        other => anyhow::bail!(
            "the bundled leaky program was not classified as a leak ({other:?}); the machine may be \
             too busy: try `leaksift demo --duration 15s`"
        ),
    }
}
