//! `leaksift watch`: sample the memory of a PID, a launched command's process tree or a cgroup v2,
//! show live progress, then print the leak verdict with its evidence, the CSV and the chart.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use leaksift_report::progress::Progress;
use leaksift_report::units;
use leaksift_stats::{Analysis, Config, Verdict as StatsVerdict};
use leaksift_watch::check::Runtime;
use leaksift_watch::child::{self, Launched, Streams};
use leaksift_watch::record::{self, RecordOptions, Recording, Stop};
use leaksift_watch::sampler::Signal;
use leaksift_watch::{Pid, Sample, Sampler, Target};
use serde::Serialize;

use super::trend::options::{Thresholds, parse_bytes, parse_duration};
use super::trend::render::{self, Evidence, Headline, Per, Verdict};
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["pid", "cgroup", "command"])))]
pub struct Args {
    /// Watch this running process.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Watch a cgroup v2 directory (e.g. /sys/fs/cgroup/system.slice/app.service).
    #[arg(long, value_name = "DIR")]
    pub cgroup: Option<PathBuf>,
    /// Time between samples (at least 10ms).
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Stop after this long (default: until the process exits or Ctrl-C).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// With --pid, read PSS/USS from smaps_rollup (precise, but walks page tables at every sample).
    #[arg(long, requires = "pid")]
    pub pss: bool,
    /// Write the samples as CSV (columns documented in docs/json.md).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the chart (samples, baseline, trend, limit crossing) as SVG.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Memory limit for the time-to-limit projection (default: the cgroup's memory.max).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub limit: Option<u64>,
    /// Print one JSON object (schema leaksift.watch.v1) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when the verdict is "leak" (otherwise a launched command's exit code is passed on).
    #[arg(long)]
    pub fail_on_leak: bool,
    /// No progress line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub thresholds: Thresholds,
    /// Command to launch and watch with its whole process tree (summed by PSS).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < record::MIN_INTERVAL {
        return Err(format!(
            "the interval must be at least 10ms, found {text:?}"
        ));
    }
    Ok(d)
}

/// `--json` output of `watch` (documented in docs/json.md).
#[derive(Debug, Serialize)]
struct WatchJson {
    schema: &'static str,
    target: TargetJson,
    signal: &'static str,
    #[serde(flatten)]
    headline: Headline,
    interval_s: f64,
    stopped: &'static str,
    exit_code: Option<u8>,
    /// Samples at the end left out as the command's exit (see [`exit_tail`]).
    exit_tail_samples: usize,
    #[serde(flatten)]
    evidence: Evidence,
}

/// The exit tail of a command that exited by itself (or of a `--pid` process that vanished): the
/// program freeing its memory as it ends.
struct ExitTail {
    /// Index of the first of them.
    from: usize,
    samples: usize,
    /// Memory just before them, and at the last sample.
    before: f64,
    last: f64,
}

impl ExitTail {
    fn text(&self) -> String {
        format!(
            "exit tail   memory fell from {} to {} in the last {} sample{} before the process \
             ended: left out of the analysis (a program freeing its memory as it ends)",
            units::bytes(self.before),
            units::bytes(self.last),
            self.samples,
            if self.samples == 1 { "" } else { "s" }
        )
    }
}

/// Measured (`watch -- python3` on a script that keeps 120 MiB, 50 ms interval): a command
/// frees its memory in its last moments (an interpreter's finalization, `munmap` of large
/// blocks), and the sample taken then (4 runs in 6) either reads as a restart or flattens the
/// tail into a false `plateau`. So when the command exited by itself, its exit tail
/// ([`leaksift_stats::exit_tail`]: a fall that starts within two intervals, at least 200 ms, of
/// the last sample) is left out, if `min_samples` remain. A run stopped by `--duration` or a
/// signal keeps every sample.
fn exit_tail(
    command_exited: bool,
    t: &[f64],
    bytes: &[f64],
    interval_s: f64,
    min_samples: usize,
) -> Option<ExitTail> {
    let end = t.last().copied().unwrap_or(0.0);
    let earliest = leaksift_stats::exit_window_start(t, end, interval_s);
    let samples = leaksift_stats::exit_tail(bytes, earliest, min_samples);
    let from = bytes.len() - samples;
    (command_exited && samples > 0).then(|| ExitTail {
        from,
        samples,
        before: bytes[from - 1],
        last: bytes[bytes.len() - 1],
    })
}

#[derive(Debug, Serialize)]
struct TargetJson {
    kind: &'static str,
    pid: Option<u32>,
    command: Option<String>,
    cgroup: Option<String>,
}

/// A watched thing: how to describe it, and the command to stop if we launched it.
struct Watched {
    target: Target,
    label: String,
    json: TargetJson,
    child: Option<Launched>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    super::distinct_files::refuse_overlaps(
        &[],
        &[
            ("--out", args.out.as_deref()),
            ("--svg", args.svg.as_deref()),
        ],
    )?;
    // Refused before the command runs, which could take long; nothing is created yet.
    render::check_writable(args.out.as_deref())?;
    render::check_writable(args.svg.as_deref())?;
    let interrupted = interrupt_flag()?;
    let mut watched = start(&args)?;
    let signal = Signal::of(&watched.target);
    // A launched command that exits before the first sample leaves nothing to sample: the
    // verdict (inconclusive, no samples) and the files are still written, with its exit code.
    let mut sampler = match Sampler::new(&watched.target) {
        Ok(sampler) => Ok(sampler),
        Err(error) => {
            let exited = watched
                .child
                .as_mut()
                .and_then(|c| c.wait_for(Duration::from_millis(500)));
            match exited {
                Some(status) => {
                    leaksift_report::stderr_line!(
                        "leaksift: {} exited with code {} before the first sample",
                        watched.label,
                        child::exit_code(status)
                    );
                    Err(status)
                }
                None => {
                    return Err(
                        anyhow::Error::new(error).context(format!("watching {}", watched.label))
                    );
                }
            }
        }
    };
    let limit = match (args.limit, &sampler) {
        (Some(l), _) => Some(l),
        (None, Ok(sampler)) => sampler
            .limit()
            .with_context(|| format!("watching {}", watched.label))?,
        (None, Err(_)) => None,
    };
    let config = args.thresholds.config(limit);
    let mut csv = CsvOut::create(args.out.as_deref())?;
    // While the command holds the terminal (a REPL, a pager), leaksift writes nothing to it
    // until the verdict, as `time CMD` does.
    let mut progress = Progress::stderr(args.quiet || leaksift_watch::job::command_has_terminal());
    progress.phase(&format!("watching {}", watched.label));
    let mut last_update = Instant::now() - Duration::from_secs(1);
    // The live verdict re-analyses all samples; compute it only when someone sees it.
    let live = !args.quiet && std::io::stderr().is_terminal();
    let options = RecordOptions {
        interval: args.interval,
        duration: args.duration,
    };
    let recording = match sampler.as_mut() {
        Ok(sampler) => record::record(
            sampler,
            watched.child.as_mut(),
            &options,
            &interrupted,
            |samples| {
                if let Some(last) = samples.last() {
                    csv.row(last);
                }
                if live && last_update.elapsed() >= Duration::from_millis(250) {
                    last_update = Instant::now();
                    progress.update(&live_line(samples, &config));
                }
            },
        ),
        Err(status) => Recording {
            samples: Vec::new(),
            stop: Stop::ChildExited(*status),
        },
    };
    progress.finish();
    let csv_result = csv.finish();
    let exit_status = match &recording.stop {
        Stop::ChildExited(status) => Some(child::exit_code(*status)),
        _ => None,
    };
    // Looked up while a launched command still runs (before it is stopped).
    let runtime = match &watched.target {
        Target::Process { pid, .. } | Target::Tree { root: pid, .. } => {
            leaksift_watch::check::find_runtime(*pid).map(|found| found.runtime)
        }
        Target::Cgroup { .. } => None,
    };
    if let Some(child) = watched.child.as_mut() {
        child.stop(Duration::from_secs(2));
    }

    let mut t: Vec<f64> = recording.samples.iter().map(|s| s.t).collect();
    let mut bytes: Vec<f64> = recording.samples.iter().map(|s| s.bytes as f64).collect();
    // A `--pid` process that vanished ended as a launched command does.
    let ended_by_itself = matches!(
        recording.stop,
        Stop::ChildExited(_) | Stop::Failed(leaksift_watch::WatchError::ProcessGone { .. })
    );
    let exit_tail = exit_tail(
        ended_by_itself,
        &t,
        &bytes,
        args.interval.as_secs_f64(),
        config.min_samples,
    );
    if let Some(tail) = &exit_tail {
        t.truncate(tail.from);
        bytes.truncate(tail.from);
    }
    let breaks = restarts(&recording.samples[..t.len()], config.restart_drop);
    let analysis = leaksift_stats::analyze_with_breaks(&t, &bytes, &breaks, &config)
        .context("analysing the samples")?;
    if let Some(runtime) = runtime
        && matches!(analysis.verdict, StatsVerdict::Leak | StatsVerdict::Plateau)
    {
        // Measured: a JVM that leaks nothing reads as a leak over a 30 s watch under load.
        let heap_check = match runtime {
            Runtime::Jvm => "leaksift check --jvm-heap",
            Runtime::Node => "leaksift check --sample-cmd",
        };
        leaksift_report::stderr_line!(
            "leaksift: warning: the watched process runs on {}: its resident memory grows while \
             the collector pages in and sizes its heap, also without a leak; trust a {} verdict \
             only over a run long enough for the heap to reach its steady size, or compare the \
             heap after a full GC (`{heap_check}`, or heap dumps with `leaksift diff`)",
            runtime.name(),
            analysis.verdict
        );
    }
    let axis = axis_name(signal);
    let signal_kind = signal;
    let signal = format!("{} of {}", signal_name(signal_kind), watched.label);
    let verdict = Verdict {
        analysis: &analysis,
        t: &t,
        bytes: &bytes,
        per: Per::Second,
        signal: &signal,
        axis,
        limit: limit.map(|l| l as f64),
    };
    // Written first, their errors reported after the verdict is printed.
    let svg_written = args.svg.as_ref().map_or(Ok(()), |svg| {
        render::write_file(
            svg,
            &verdict.svg(&format!("leaksift watch {}", watched.label)),
        )
    });
    let stopped = match recording.stop {
        Stop::DurationReached => "duration",
        Stop::Interrupted => "interrupted",
        Stop::ChildExited(_) => "command_exited",
        Stop::Failed(_) => "error",
    };
    if args.json {
        let json = WatchJson {
            schema: "leaksift.watch.v1",
            target: watched.json,
            signal: signal_kind.as_str(),
            headline: verdict.headline(),
            interval_s: args.interval.as_secs_f64(),
            stopped,
            exit_code: exit_status,
            exit_tail_samples: exit_tail.as_ref().map_or(0, |tail| tail.samples),
            evidence: verdict.evidence(),
        };
        crate::output::println(&serde_json::to_string_pretty(&json)?)?;
    } else {
        crate::output::print(&verdict.text())?;
        if let Some(tail) = &exit_tail {
            crate::output::println(&tail.text())?;
        }
        if let Some(code) = exit_status {
            crate::output::println(&format!("command exited with code {code}"))?;
        }
    }
    csv_result?;
    svg_written?;
    // A failed sampling (the process vanished, a cgroup file went bad) still shows the verdict
    // on the samples taken before it, then ends as an error.
    if let Stop::Failed(error) = recording.stop {
        return Err(anyhow::Error::new(error).context(format!(
            "watching {} (stopped after {} samples)",
            watched.label,
            recording.samples.len()
        )));
    }
    Ok(outcome(&analysis, args.fail_on_leak, exit_status))
}

/// Leak with --fail-on-leak → 1; else a launched command's exit code; else 0.
fn outcome(analysis: &Analysis, fail_on_leak: bool, exit_code: Option<u8>) -> Outcome {
    if fail_on_leak && analysis.verdict == StatsVerdict::Leak {
        Outcome::LeakFound
    } else {
        exit_code.map_or(Outcome::Clean, Outcome::ChildExit)
    }
}

/// SIGINT/SIGTERM/SIGHUP set a flag: sampling stops, the command is stopped (the terminal given
/// back to leaksift's group) and the verdict is still printed. One leaksift inherited ignored
/// (`nohup`) stays ignored, in leaksift and in the command it starts.
pub fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        if leaksift_watch::job::ignored(signal) {
            continue;
        }
        signal_hook::flag::register(signal, Arc::clone(&flag))
            .context("installing the Ctrl-C handler")?;
    }
    Ok(flag)
}

fn start(args: &Args) -> anyhow::Result<Watched> {
    if let Some(pid) = args.pid {
        return Ok(Watched {
            target: Target::Process {
                pid: Pid(pid),
                pss: args.pss,
            },
            label: format!("pid {pid}"),
            json: TargetJson {
                kind: "pid",
                pid: Some(pid),
                command: None,
                cgroup: None,
            },
            child: None,
        });
    }
    if let Some(dir) = &args.cgroup {
        return Ok(Watched {
            target: Target::Cgroup { dir: dir.clone() },
            label: format!("cgroup {}", dir.display()),
            json: TargetJson {
                kind: "cgroup",
                pid: None,
                command: None,
                cgroup: Some(dir.display().to_string()),
            },
            child: None,
        });
    }
    let streams = if args.json {
        Streams::StdoutToStderr
    } else {
        Streams::Inherit
    };
    let child = Launched::spawn(&args.command, streams)?;
    let pid = child.pid();
    Ok(Watched {
        target: Target::Tree {
            root: pid,
            orphans: false,
        },
        label: format!("`{}` (pid {pid})", child.command()),
        json: TargetJson {
            kind: "command",
            pid: Some(pid.0),
            command: Some(child.command().to_string()),
            cgroup: None,
        },
        child: Some(child),
    })
}

fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Rss => "RSS",
        Signal::Pss => "PSS",
        Signal::TreePss => "PSS summed over the process tree",
        Signal::WorkingSet => "working set (memory.current − inactive_file)",
    }
}

fn axis_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Rss => "RSS",
        Signal::Pss => "PSS",
        Signal::TreePss => "PSS, process tree",
        Signal::WorkingSet => "working set",
    }
}

/// The restarts `watch` sees itself: a process of the watched tree exited and the memory fell
/// below `drop` × the sample before, at that sample or at the one before it (a process may free
/// its memory as it exits, before it is gone). A supervisor that restarts a killed worker gives
/// a break at each restart, as a PID column does for `trend`, so the drops are never read as a
/// sawtooth: each run's growth is what counts (a worker leaking until it was killed, restarted
/// 8 times, read `inconclusive`). An exit without a fall (a short-lived helper) is no restart.
/// `None` (`--restart-drop 0`) finds none.
fn restarts(samples: &[Sample], drop: Option<f64>) -> Vec<usize> {
    let Some(drop) = drop else {
        return Vec::new();
    };
    let fell = |i: usize| i >= 1 && (samples[i].bytes as f64) < drop * samples[i - 1].bytes as f64;
    let mut breaks: Vec<usize> = Vec::new();
    for (j, sample) in samples.iter().enumerate() {
        if sample.exited == 0 {
            continue;
        }
        let at = if fell(j) {
            j
        } else if j >= 1 && fell(j - 1) {
            j - 1
        } else {
            continue;
        };
        if breaks.last() != Some(&at) {
            breaks.push(at);
        }
    }
    breaks
}

/// "123 samples  45.6 MiB  slope +1.2 MiB/s  so far: leak".
fn live_line(samples: &[Sample], config: &Config) -> String {
    let last = samples.last().map_or(0.0, |s| s.bytes as f64);
    let t: Vec<f64> = samples.iter().map(|s| s.t).collect();
    let b: Vec<f64> = samples.iter().map(|s| s.bytes as f64).collect();
    let breaks = restarts(samples, config.restart_drop);
    match leaksift_stats::analyze_with_breaks(&t, &b, &breaks, config) {
        Ok(a) if a.slope.is_finite() => format!(
            "{} samples  {}  slope {}/s  so far: {}",
            samples.len(),
            units::bytes(last),
            units::bytes(a.slope),
            a.verdict
        ),
        _ => format!("{} samples  {}", samples.len(), units::bytes(last)),
    }
}

/// The `--out` CSV, written as samples arrive so an interrupted run keeps its data.
struct CsvOut {
    path: Option<PathBuf>,
    writer: Option<BufWriter<File>>,
    error: Option<std::io::Error>,
}

impl CsvOut {
    fn create(path: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let writer = match path {
            Some(p) => {
                let file = File::create(p).with_context(|| format!("creating {}", p.display()))?;
                let mut w = BufWriter::new(file);
                leaksift_watch::csv::write_header(&mut w)
                    .with_context(|| format!("writing {}", p.display()))?;
                Some(w)
            }
            None => None,
        };
        Ok(CsvOut {
            path: path.map(Into::into),
            writer,
            error: None,
        })
    }

    fn row(&mut self, sample: &Sample) {
        if let (Some(w), None) = (self.writer.as_mut(), &self.error) {
            // Flushed row by row: a run killed with SIGKILL (or OOM-killed) keeps every sample.
            if let Err(e) = leaksift_watch::csv::write_row(w, sample).and_then(|()| w.flush()) {
                self.error = Some(e);
            }
        }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        let flushed = self.writer.take().map_or(Ok(()), |mut w| w.flush());
        match self.error.take().map_or(flushed, Err) {
            Ok(()) => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context(format!(
                "writing {}",
                self.path
                    .as_deref()
                    .unwrap_or(std::path::Path::new("-"))
                    .display()
            ))),
        }
    }
}
