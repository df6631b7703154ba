//! The `leaksift` command line: parses flags, calls an engine, picks a renderer, maps outcomes to exit codes.

mod cmd;
mod out_of_memory;
mod outcome;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::outcome::Outcome;

/// Find memory leaks: confirm growth, locate what accumulates, explain what keeps it alive, guard CI.
#[derive(Debug, Parser)]
#[command(name = "leaksift", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sample the memory of a process, a launched command or a cgroup and decide whether it leaks.
    Watch(cmd::watch::Args),
    /// Run the leak verdict on a recorded series (a CSV, a psrecord log, an mprof file, Prometheus JSON).
    Trend(cmd::trend::Args),
    /// CI gate: run a scenario against a server repeatedly and fail on per-iteration growth.
    Check(cmd::check::Args),
    /// Run a command under the LD_PRELOAD allocation tracer and write a trace.
    Record(cmd::record::Args),
    /// Analyse a native trace: leaks by class, peak, hotspots, growth by call site.
    Report(cmd::report::Args),
    /// Analyse a V8 .heapsnapshot or a Java HPROF dump: classes, dominators, leak suspects.
    Heap(cmd::heap::Args),
    /// Show the shortest retaining paths from the GC roots to one object.
    Paths(cmd::paths::Args),
    /// Compare two heap snapshots/dumps or two native traces, or find leaks across baseline,
    /// target and final.
    Diff(cmd::diff::Args),
    /// Run the whole leak hunt on a bundled leaky program.
    Demo(cmd::demo::Args),
}

#[global_allocator]
static ALLOCATOR: out_of_memory::NotingAllocator = out_of_memory::NotingAllocator;

fn main() -> ExitCode {
    out_of_memory::report_as_an_error(&std::env::args_os().collect::<Vec<_>>());
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    let result = match cli.command {
        Command::Watch(args) => cmd::watch::run(args),
        Command::Trend(args) => cmd::trend::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Record(args) => cmd::record::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Heap(args) => cmd::heap::run(args),
        Command::Paths(args) => cmd::paths::run(args),
        Command::Diff(args) => cmd::diff::run(args),
        Command::Demo(args) => cmd::demo::run(args),
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            // One line: the context chain joined by ": " names the file/PID/command and the cause.
            error_line(&format!("{error:#}"));
            Outcome::INPUT_ERROR_CODE.into()
        }
    }
}

/// Help and version go out as clap writes them; a usage error becomes the one line every other
/// error is (`leaksift: error: …`, exit 2), with the usage and the hint folded into it.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        error.exit();
    }
    error_line(&one_line(&error.render().to_string()));
    Outcome::INPUT_ERROR_CODE.into()
}

/// Prints `leaksift: error: MESSAGE` as exactly one line: a message quoting a file's content
/// could hold a newline or a terminal control sequence.
fn error_line(message: &str) {
    let message = message.replace(['\n', '\r'], " ");
    leaksift_report::stderr_line!(
        "leaksift: error: {}",
        leaksift_report::escape::terminal(&message)
    );
}

/// clap's multi-line message as one line: the lines trimmed and joined, without the `error:`
/// prefix and the "For more information" hint, the usage line last in parentheses.
fn one_line(message: &str) -> String {
    let mut parts = Vec::new();
    let mut usage = None;
    for line in message.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("For more information") {
            continue;
        }
        match line.strip_prefix("Usage: ") {
            Some(rest) => usage = Some(rest),
            None => parts.push(line.strip_prefix("error: ").unwrap_or(line)),
        }
    }
    let text = parts.join(" ");
    match usage {
        Some(usage) => format!("{text} (usage: {usage})"),
        None => text,
    }
}
