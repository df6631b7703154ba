//! Rendering a verdict for `watch`, `trend` and `check`: the human table, the JSON evidence
//! fields and the SVG chart. Nothing here computes statistics.

use leaksift_report::chart::{self, Crossing, Line, MemoryChart, XAxis};
use leaksift_report::table::{Align, Table};
use leaksift_report::units;
use leaksift_stats::Analysis;
use serde::Serialize;

/// What the x values count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Per {
    Second,
    Iteration,
}

impl Per {
    fn suffix(self) -> &'static str {
        match self {
            Per::Second => "/s",
            Per::Iteration => "/iteration",
        }
    }
}

/// A series and its analysis, as the renderers need them.
#[derive(Debug)]
pub struct Verdict<'a> {
    pub analysis: &'a Analysis,
    pub t: &'a [f64],
    pub bytes: &'a [f64],
    pub per: Per,
    /// What the values are, e.g. "RSS of pid 1234".
    pub signal: &'a str,
    /// The y-axis title, short, e.g. "RSS".
    pub axis: &'a str,
    pub limit: Option<f64>,
}

/// The verdict and its headline numbers in `watch` and `trend` JSON (rates per second; `check`
/// names its slope per iteration instead).
#[derive(Debug, Serialize)]
pub struct Headline {
    pub verdict: &'static str,
    pub slope_bytes_per_s: f64,
    pub slope_ci: [f64; 2],
    pub p_value: f64,
    pub samples: usize,
    pub time_to_limit_s: Option<f64>,
    /// `[earliest, latest]`; latest `None` when the interval's lower slope is not positive.
    pub time_to_limit_range_s: Option<[Option<f64>; 2]>,
}

/// JSON fields shared by the three commands (flattened into each command's object).
#[derive(Debug, Serialize)]
pub struct Evidence {
    /// Machine name of the reason for the verdict.
    pub reason: &'static str,
    pub first_bytes: Option<f64>,
    pub last_bytes: Option<f64>,
    pub peak_bytes: Option<f64>,
    pub baseline_level_bytes: f64,
    pub growth_bytes: f64,
    pub tail_slope: Option<f64>,
    pub kendall_s: f64,
    pub kendall_variance: f64,
    pub window_samples: usize,
    pub baseline_points: usize,
    pub restarts: usize,
    /// Drops of the sawtooth the baseline was taken under (0 without one).
    pub sawtooth_drops: usize,
    /// See [`leaksift_stats::Analysis::drops_may_be_restarts`].
    pub drops_may_be_restarts: bool,
    pub span: f64,
    pub limit_bytes: Option<f64>,
}

/// The note under a verdict whose sawtooth drops could be restarts
/// ([`leaksift_stats::Analysis::drops_may_be_restarts`]), read as a sawtooth (`watch`).
pub const DROPS_MAY_BE_RESTARTS: &str = "the memory falls back to the same floor again and again: \
read as a sawtooth (garbage collection, a buffer cleared) around a flat baseline. If those falls \
are restarts of a process killed as it grew (an OOM kill), each run leaks: mark the restarts \
with a `pid` column (watch marks a replaced process of the tree itself)";

/// The note under the same drops left undecided (`trend` without a `pid` column:
/// [`leaksift_stats::Reason::DropsMayBeRestarts`]).
pub const DROPS_UNDECIDED: &str = "the memory falls back to the same floor again and again: a \
sawtooth (garbage collection, a buffer cleared) around a flat baseline, which is stable, or a \
process killed as it grew (an OOM kill) and restarted, whose every run leaks. A `pid` column \
tells them apart (each run is then judged on its own), as `watch` does for a process tree";

impl Verdict<'_> {
    pub fn evidence(&self) -> Evidence {
        let a = self.analysis;
        Evidence {
            reason: a.reason.code(),
            first_bytes: self.bytes.first().copied(),
            last_bytes: self.bytes.last().copied(),
            peak_bytes: self.bytes.iter().copied().reduce(f64::max),
            baseline_level_bytes: a.level,
            growth_bytes: a.growth,
            tail_slope: a.tail_slope,
            kendall_s: a.kendall.s,
            kendall_variance: a.kendall.variance,
            window_samples: a.window_samples,
            baseline_points: a.baseline.len(),
            restarts: a.restarts,
            sawtooth_drops: a.sawtooth.map_or(0, |s| s.drops),
            drops_may_be_restarts: a.drops_may_be_restarts,
            span: a.span,
            limit_bytes: self.limit,
        }
    }

    /// The leading JSON fields of `watch` and `trend`.
    pub fn headline(&self) -> Headline {
        let a = self.analysis;
        Headline {
            verdict: a.verdict.as_str(),
            slope_bytes_per_s: a.slope,
            slope_ci: [a.slope_ci.0, a.slope_ci.1],
            p_value: a.p_value,
            samples: a.samples,
            time_to_limit_s: a.time_to_limit.map(|t| t.estimate),
            time_to_limit_range_s: a.time_to_limit.map(|t| [Some(t.earliest), t.latest]),
        }
    }

    /// A slope as `+1.20 MiB/s` (or per iteration); `n/a` when there is none.
    fn rate(&self, v: f64) -> String {
        if v.is_finite() {
            format!(
                "{}{}{}",
                if v > 0.0 { "+" } else { "" },
                units::bytes(v),
                self.per.suffix()
            )
        } else {
            "n/a".to_string()
        }
    }

    /// The human summary: a two-column table.
    pub fn text(&self) -> String {
        let a = self.analysis;
        let mut table = Table::new(&[("evidence", Align::Left), ("value", Align::Left)]);
        table.row([
            "verdict".to_string(),
            format!("{}  ({})", a.verdict.as_str().to_uppercase(), a.reason),
        ]);
        table.row(["signal", self.signal]);
        // The series' whole time range: the analysed span leaves out segments too short to fit
        // (two samples are no segment, yet they cover time).
        let covered = match (self.t.first(), self.t.last()) {
            (Some(first), Some(last)) => (last - first).max(a.span),
            _ => a.span,
        };
        let over = match self.per {
            Per::Second => format!("over {}", units::duration(covered)),
            Per::Iteration => format!("over {covered:.0} iterations"),
        };
        table.row(["samples".to_string(), format!("{} {over}", a.samples)]);
        if let (Some(first), Some(last)) = (self.bytes.first(), self.bytes.last()) {
            let peak = self.bytes.iter().copied().fold(f64::MIN, f64::max);
            table.row([
                "memory".to_string(),
                format!(
                    "{} → {} (peak {}, baseline level {})",
                    units::bytes(*first),
                    units::bytes(*last),
                    units::bytes(peak),
                    units::bytes(a.level)
                ),
            ]);
        }
        table.row([
            "slope".to_string(),
            format!(
                "{}  (95%: {} … {}, Theil–Sen on {} window minima)",
                self.rate(a.slope),
                self.rate(a.slope_ci.0),
                self.rate(a.slope_ci.1),
                a.baseline.len()
            ),
        ]);
        table.row([
            "p-value".to_string(),
            format!(
                "{}  (Mann–Kendall, one-sided, ties corrected)",
                p_value(a.p_value)
            ),
        ]);
        if let Some(tail) = a.tail_slope {
            table.row(["tail slope".to_string(), self.rate(tail)]);
        }
        if a.restarts > 0 {
            table.row(["restarts".to_string(), a.restarts.to_string()]);
        }
        if a.drops_may_be_restarts {
            let note = if a.reason == leaksift_stats::Reason::DropsMayBeRestarts {
                DROPS_UNDECIDED
            } else {
                DROPS_MAY_BE_RESTARTS
            };
            table.row(["note".to_string(), note.to_string()]);
        }
        if let Some(limit) = self.limit {
            let value = match a.time_to_limit {
                Some(ttl) if ttl.current >= limit => format!(
                    "already above the limit: {} now, limit {}",
                    units::bytes(ttl.current),
                    units::bytes(limit)
                ),
                Some(ttl) => {
                    let fmt = |v: f64| match self.per {
                        Per::Second => units::duration(v),
                        Per::Iteration => format!("{v:.0} iterations"),
                    };
                    format!(
                        "~{} (95%: {} … {}) to reach {}",
                        fmt(ttl.estimate),
                        fmt(ttl.earliest),
                        ttl.latest.map_or("never".to_string(), fmt),
                        units::bytes(limit)
                    )
                }
                None => format!("not projected (no leak), limit {}", units::bytes(limit)),
            };
            table.row(["time to limit".to_string(), value]);
        }
        table.render()
    }

    /// The SVG chart.
    pub fn svg(&self, title: &str) -> String {
        let a = self.analysis;
        let samples: Vec<(f64, f64)> = self
            .t
            .iter()
            .copied()
            .zip(self.bytes.iter().copied())
            .collect();
        let baseline: Vec<(f64, f64)> = a.baseline.iter().map(|p| (p.t, p.bytes)).collect();
        let trend: Vec<Line> = if a.slope.is_finite() {
            a.segments
                .iter()
                .filter(|s| s.intercept.is_finite())
                .map(|s| {
                    let (t0, t1) = (self.t[s.start], self.t[s.end - 1]);
                    Line {
                        t0,
                        y0: s.intercept + a.slope * t0,
                        t1,
                        y1: s.intercept + a.slope * t1,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let now = self.t.last().copied().unwrap_or(0.0);
        let crossing = a.time_to_limit.map(|ttl| Crossing {
            at: now + ttl.estimate,
            earliest: now + ttl.earliest,
            latest: ttl.latest.map(|l| now + l),
        });
        let subtitle = format!(
            "{} — slope {} (95%: {} … {}), p = {}",
            a.reason,
            self.rate(a.slope),
            self.rate(a.slope_ci.0),
            self.rate(a.slope_ci.1),
            p_value(a.p_value),
        );
        chart::render(&MemoryChart {
            title,
            signal: self.axis,
            subtitle: &subtitle,
            verdict: a.verdict.as_str(),
            x_axis: match self.per {
                Per::Second => XAxis::Seconds,
                Per::Iteration => XAxis::Iterations,
            },
            samples: &samples,
            baseline: &baseline,
            trend: &trend,
            limit: self.limit,
            crossing,
        })
    }
}

/// A p-value with sensible precision.
pub fn p_value(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// Checks that the output files of a run can be written before the run starts: a watch or check
/// that runs for an hour must not fail on a bad path only at its end.
pub fn check_writable<'a>(
    paths: impl IntoIterator<Item = &'a std::path::Path>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    for path in paths {
        // Neither truncated nor left behind: a run that fails before writing keeps an earlier
        // run's file as it was, and leaves no empty one (an empty SVG or JUnit file is not
        // well-formed XML, and a CI parser fails on it).
        if path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("opening {} for writing", path.display()))?;
        } else {
            std::fs::File::create_new(path)
                .with_context(|| format!("creating {}", path.display()))?;
            std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Writes `text` to `path` whole or not at all (see [`crate::output::replace_file`]), naming
/// the file on failure.
pub fn write_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    crate::output::replace_file(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
