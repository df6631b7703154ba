//! Trend statistics and the leak verdict: pure functions over (time, bytes) series, no I/O.
//!
//! [`analyze`] answers "is this memory series leaking?" with a [`Verdict`] and its evidence. The
//! method, step by step (each step's reason is in `docs/ARCHITECTURE.md`, "leaksift-stats"):
//!
//! 1. **Segments.** The series is split at restarts: indices the caller knows (a PID change, see
//!    [`analyze_with_breaks`]) and drops below half of the recent baseline. Segments are analysed
//!    jointly (pairs never cross a restart), so a leak that is OOM-killed periodically is a leak.
//!    Known restarts are never sawtooth periods. Two or more unmarked drops are a sawtooth, judged
//!    by its troughs (flat: stable; rising: leak) for any number of periods; when most of them
//!    fall below half, they may also be unmarked restarts ([`Analysis::drops_may_be_restarts`]).
//! 2. **Baseline.** Each segment is cut into windows of `⌈n / windows⌉` samples and only each
//!    window's minimum is kept. A GC or temporaries sawtooth moves the peaks, not the troughs, so
//!    the baseline is flat for a sawtooth and rises for a leak. This also aggregates long series:
//!    a million samples become about [`Config::windows`] points, which keeps the O(m²) pairwise
//!    methods below far under a second.
//! 3. **Trend.** Theil–Sen slope of the baseline (median pairwise slope, robust to outliers and
//!    steps) with Sen's 95% interval, and the Mann–Kendall one-sided p-value for an increase, with
//!    the tie correction (memory series have many equal values).
//! 4. **Verdict.** Growth is a finding when it is significant (p < `alpha` and the interval's lower
//!    bound > 0) and material (slope × observed span ≥ the growth threshold). A finding is a
//!    `Plateau` when the last quarter of the last segment grows at under 30% of the overall slope
//!    (Coroot's tail guard), else a `Leak`. Without a finding, a rise the rank test sees whose
//!    possible growth is material but whose tail has flattened (a warm-up that levelled off
//!    early, so the median slope is zero) is a `Plateau` too; otherwise no finding is `Stable`
//!    when the interval rules out material growth, else `Inconclusive` (too noisy). Too few
//!    points, or a baseline too short to pass the test at `alpha` at all, is `Inconclusive`.
//!    Window minima span at least one sawtooth period, when the series has a sawtooth.
//! 5. **Time to limit** (leaks only, with [`Config::limit`]): (limit − fitted current) / slope, as
//!    a range from the slope interval.

mod baseline;
mod exit_tail;
mod mann_kendall;
mod theil_sen;

pub use baseline::{Point, Sawtooth};
pub use exit_tail::{EXIT_WINDOW_MIN_S, exit_tail, exit_window_start};
pub use mann_kendall::{KendallScore, upper_tail};
pub use theil_sen::{SlopeFit, Z_95, median, ols_slope};

use std::fmt;

/// Thresholds of the verdict. Every default is chosen for RSS-like series of a whole process;
/// callers analysing smaller quantities (bytes live at one call site) lower `min_growth_bytes`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// One-sided Mann–Kendall significance level for "it grows". Default 0.01: a watch is often
    /// run many times, and a false leak alarm costs more than a missed weak trend.
    pub alpha: f64,
    /// About how many baseline windows the series is cut into. Default 30: enough points for a
    /// tight Theil–Sen interval and a meaningful tail, while each window is long enough (n/30
    /// samples) to contain a sawtooth trough for sawtooth periods up to 1/30 of the run.
    pub windows: usize,
    /// Fewer samples than this gives `Inconclusive`. Default 6: with 6 perfectly rising points the
    /// one-sided Mann–Kendall p is 0.004, the fewest points that can pass `alpha = 0.01`.
    pub min_samples: usize,
    /// Segments (between restarts) with fewer samples than this are ignored. Default 3.
    pub min_segment_samples: usize,
    /// A sample below this fraction of the recent baseline starts a new segment (a restart);
    /// `None` disables drop detection. Default `Some(0.5)`: Coroot's "drop of more than half".
    pub restart_drop: Option<f64>,
    /// Growth over the observed span below this many bytes is never a finding. Default 256 KiB:
    /// page-granular RSS creep (stacks, TLS, allocator arenas) stays below it, and a leak smaller
    /// than that over the watched span cannot be told from such creep.
    pub min_growth_bytes: f64,
    /// Growth over the observed span below this fraction of the baseline level is never a
    /// finding. Default 0.01 (1%).
    pub min_growth_fraction: f64,
    /// No finding is `Stable` only when the interval's upper bound × span stays below the growth
    /// threshold or this fraction of the level, whichever is larger; else `Inconclusive`.
    /// Default 0.25: "stable" claims that growth of a quarter of the level over the watched span
    /// is ruled out; a sawtooth sampled at random phases leaves baseline noise of several percent
    /// of the level, which a tighter bound would call inconclusive.
    pub stable_fraction: f64,
    /// Fraction of the last segment's time span that forms the tail. Default 0.25 (Coroot).
    pub tail_fraction: f64,
    /// A finding whose tail slope (OLS on the tail's baseline points) is below this fraction of
    /// the overall slope is a `Plateau`. Default 0.3 (Coroot's tail guard).
    pub tail_ratio: f64,
    /// The tail guard needs at least this many baseline points in the tail. Default 4.
    pub min_tail_points: usize,
    /// Bytes at which the process fails (a `--limit` or a cgroup's `memory.max`).
    pub limit: Option<f64>,
    /// With at most `windows` samples, every sample is a baseline point, also under a sawtooth.
    /// Default false; `check` sets it: its samples are taken at quiet moments, after each
    /// iteration. Otherwise a short series' sawtooth is handled as a long one's: a `trend` CSV
    /// of 30 samples, three periods of a deep sawtooth, was read sample by sample as 2 restarts
    /// of a leak.
    pub one_point_per_sample: bool,
    /// When most drops of a sawtooth fall below half ([`Analysis::drops_may_be_restarts`]), the
    /// verdict is `Inconclusive` ([`Reason::DropsMayBeRestarts`]) rather than what the troughs
    /// say. Default false; `trend` sets it: an imported series without a `pid` column draws a
    /// service restarted each time it fills up (an OOM-killed leak, a Grafana panel of a pod) as
    /// a collector's sawtooth, and "stable" would clear the leak the user came for. A watched
    /// process tree marks its restarts, and a call site's live bytes that fall to zero are
    /// freed, not restarted: those keep the troughs' verdict.
    pub deep_drops_undecided: bool,
    /// The level `stable_fraction` applies to is the mean of all samples instead of the
    /// baseline's median. Default false; a call site's live bytes set it: a buffer filled and
    /// freed in cycles has a baseline near zero, so "stable" had to rule out growth of 1 KiB
    /// over the run and the site was always `inconclusive`, while a quarter of what it holds on
    /// average is the scale its growth is judged at.
    pub stable_level_is_mean: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            alpha: 0.01,
            windows: 30,
            min_samples: 6,
            min_segment_samples: 3,
            restart_drop: Some(0.5),
            min_growth_bytes: 256.0 * 1024.0,
            min_growth_fraction: 0.01,
            stable_fraction: 0.25,
            tail_fraction: 0.25,
            tail_ratio: 0.3,
            min_tail_points: 4,
            limit: None,
            one_point_per_sample: false,
            deep_drops_undecided: false,
            stable_level_is_mean: false,
        }
    }
}

/// What the series shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Significant, material growth that does not slow down.
    Leak,
    /// Significant growth that levels off (warm-up, a cache filling up).
    Plateau,
    /// No material growth (flat, or a sawtooth around a flat baseline).
    Stable,
    /// Too few points, or too noisy to rule growth in or out.
    Inconclusive,
}

impl Verdict {
    /// Lower-case name used in text and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Leak => "leak",
            Verdict::Plateau => "plateau",
            Verdict::Stable => "stable",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the verdict came out as it did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reason {
    /// Fewer samples or baseline points than needed.
    TooFewPoints { needed: usize },
    /// Enough samples, but all at the same time: no slope can be fitted.
    NoTimeSpan,
    /// Significant, material growth whose tail keeps the pace.
    SteadyGrowth,
    /// Significant growth whose tail slope fell below `tail_ratio` × the overall slope.
    TailFlattened { tail_slope: f64 },
    /// The trend is not significant and the interval rules out material growth.
    NoSignificantGrowth,
    /// The rank test sees growth, but the slope's interval reaches zero and rules out material
    /// growth.
    SlopeIntervalIncludesZero,
    /// Growth is significant but below the growth threshold.
    GrowthBelowThreshold { threshold: f64 },
    /// No significant growth, but the interval is too wide to rule material growth out.
    TooNoisy,
    /// Repeated deep drops to the same floor without restart markers: a sawtooth (stable) and a
    /// process restarted each time it fills up (a leak) draw the same series
    /// ([`Config::deep_drops_undecided`]).
    DropsMayBeRestarts,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::TooFewPoints { needed } => write!(f, "too few points (need at least {needed})"),
            Reason::NoTimeSpan => f.write_str("every sample has the same time: no slope to fit"),
            Reason::SteadyGrowth => f.write_str("significant growth that keeps its pace"),
            Reason::TailFlattened { .. } => f.write_str("growth levelled off in the last part"),
            Reason::NoSignificantGrowth => f.write_str("no significant growth"),
            Reason::SlopeIntervalIncludesZero => {
                f.write_str("a rise the slope's interval does not confirm, and no material growth")
            }
            Reason::GrowthBelowThreshold { .. } => {
                f.write_str("growth is significant but below the threshold")
            }
            Reason::TooNoisy => f.write_str("too noisy to rule growth in or out"),
            Reason::DropsMayBeRestarts => f.write_str(
                "repeated drops below half to the same floor: a sawtooth, or restarts of a \
                 leaking process",
            ),
        }
    }
}

impl Reason {
    /// Stable machine name for JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::TooFewPoints { .. } => "too_few_points",
            Reason::NoTimeSpan => "no_time_span",
            Reason::SteadyGrowth => "steady_growth",
            Reason::TailFlattened { .. } => "tail_flattened",
            Reason::NoSignificantGrowth => "no_significant_growth",
            Reason::SlopeIntervalIncludesZero => "slope_interval_includes_zero",
            Reason::GrowthBelowThreshold { .. } => "growth_below_threshold",
            Reason::TooNoisy => "too_noisy",
            Reason::DropsMayBeRestarts => "drops_may_be_restarts",
        }
    }
}

/// One restart segment: sample indices `start..end` and its fitted line `intercept + slope · t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentFit {
    pub start: usize,
    pub end: usize,
    /// Theil–Sen intercept of this segment's baseline with the pooled slope; NaN without a slope.
    pub intercept: f64,
}

/// Time until the fitted trend reaches [`Config::limit`], in units of t.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeToLimit {
    /// At the Theil–Sen slope.
    pub estimate: f64,
    /// At the interval's upper slope.
    pub earliest: f64,
    /// At the interval's lower slope; `None` when that bound is not positive (maybe never).
    pub latest: Option<f64>,
    /// Fitted baseline at the last sample, the starting point of the projection.
    pub current: f64,
}

/// The verdict with its evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub verdict: Verdict,
    pub reason: Reason,
    /// Theil–Sen slope of the baseline, bytes per unit of t; NaN with fewer than two points.
    pub slope: f64,
    /// Sen's 95% interval of `slope`; NaN bounds with fewer than two points.
    pub slope_ci: (f64, f64),
    /// One-sided Mann–Kendall p-value for an increase (ties corrected); 1 without evidence.
    pub p_value: f64,
    /// Mann–Kendall S and its variance, summed over segments.
    pub kendall: KendallScore,
    /// Number of input samples.
    pub samples: usize,
    /// Samples per baseline window.
    pub window_samples: usize,
    /// The baseline points (per-window minima) of all analysed segments, in time order.
    pub baseline: Vec<Point>,
    /// The analysed segments (restarts split them; too-short ones are left out).
    pub segments: Vec<SegmentFit>,
    /// Number of restarts detected or given (segment boundaries, short segments included).
    pub restarts: usize,
    /// The repeated drop pattern the baseline was taken under, if any (drops at given restarts
    /// are not counted).
    pub sawtooth: Option<Sawtooth>,
    /// The verdict is not a leak, and the series is a sawtooth whose drops fall below half of
    /// the value before them, with no restart marker at them: a GC or batch sawtooth, judged by
    /// its troughs, or a leaking process restarted each time it was killed, whose start-up
    /// level is the same "trough". The series cannot tell them apart; callers say so, and that
    /// known restarts (a PID column) make the verdict a judgement of each run's growth.
    pub drops_may_be_restarts: bool,
    /// Median of the baseline, bytes.
    pub level: f64,
    /// Sum of the analysed segments' time spans.
    pub span: f64,
    /// `slope × span`: growth over the observed span, bytes (NaN without a slope).
    pub growth: f64,
    /// OLS slope of the last segment's tail baseline, when the tail has enough points.
    pub tail_slope: Option<f64>,
    /// Present for leaks when [`Config::limit`] is set.
    pub time_to_limit: Option<TimeToLimit>,
}

/// Invalid input series.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("{t} time values but {bytes} byte values")]
    LengthMismatch { t: usize, bytes: usize },
    #[error("sample {index}: value is not a finite number")]
    NonFinite { index: usize },
    #[error("sample {index}: time goes backwards")]
    TimeDecreasing { index: usize },
    #[error("restart index {index} is outside the series of {len} samples")]
    BreakOutOfRange { index: usize, len: usize },
}

/// Analyses a series: `t` non-decreasing (any unit; `slope` is bytes per that unit), `bytes` the
/// memory at each time. Restarts are detected from drops only.
pub fn analyze(t: &[f64], bytes: &[f64], config: &Config) -> Result<Analysis, StatsError> {
    analyze_with_breaks(t, bytes, &[], config)
}

/// Like [`analyze`], with known restarts: a new segment starts at each index in `breaks` (e.g. the
/// first sample after the watched PID changed).
pub fn analyze_with_breaks(
    t: &[f64],
    bytes: &[f64],
    breaks: &[usize],
    config: &Config,
) -> Result<Analysis, StatsError> {
    validate(t, bytes, breaks)?;
    let n = t.len();
    let sawtooth = baseline::sawtooth(bytes, breaks);
    let windows = window_len(n, sawtooth, config);
    let ranges = baseline::segments(bytes, breaks, windows.restart, config.restart_drop);
    let restarts = ranges.len().saturating_sub(1);
    let kept: Vec<_> = ranges
        .into_iter()
        .filter(|r| r.len() >= config.min_segment_samples.max(1))
        .collect();
    let per_segment: Vec<(Vec<f64>, Vec<f64>)> = kept
        .iter()
        .map(|r| {
            // A run between restarts keeps a few points of its own: eight restarted runs of 20
            // samples under 23-sample windows had none, and the leak was "too few points".
            let window = windows.baseline.min((r.len() / MIN_SEGMENT_POINTS).max(1));
            let reach = windows.reach.max(window);
            let pts = baseline::window_minima(t, bytes, r.clone(), window, reach);
            (
                pts.iter().map(|p| p.t).collect(),
                pts.iter().map(|p| p.bytes).collect(),
            )
        })
        .collect();
    let kendall = KendallScore::combine(per_segment.iter().map(|(_, b)| KendallScore::of(b)));
    let p_value = kendall.p_increasing();
    let groups: Vec<(&[f64], &[f64])> = per_segment
        .iter()
        .map(|(t, b)| (t.as_slice(), b.as_slice()))
        .collect();
    let fit = theil_sen::fit(&groups, kendall);
    let baseline: Vec<Point> = per_segment
        .iter()
        .flat_map(|(t, b)| t.iter().zip(b).map(|(&t, &bytes)| Point { t, bytes }))
        .collect();
    let level = median(&baseline.iter().map(|p| p.bytes).collect::<Vec<_>>());
    // `+ 0.0`: the empty sum is -0.0.
    let span: f64 = kept.iter().map(|r| t[r.end - 1] - t[r.start]).sum::<f64>() + 0.0;
    let (slope, slope_ci) = fit.map_or((f64::NAN, (f64::NAN, f64::NAN)), |f| (f.slope, f.ci));
    let segments: Vec<SegmentFit> = kept
        .iter()
        .zip(&per_segment)
        .map(|(r, (pt, pb))| {
            let offsets: Vec<f64> = pt.iter().zip(pb).map(|(t, b)| b - slope * t).collect();
            SegmentFit {
                start: r.start,
                end: r.end,
                intercept: median(&offsets),
            }
        })
        .collect();
    let tail_slope = per_segment
        .last()
        .and_then(|(pt, pb)| tail_slope(pt, pb, config));
    let growth = slope * span;

    let mut analysis = Analysis {
        verdict: Verdict::Inconclusive,
        reason: Reason::TooFewPoints {
            needed: config.min_samples,
        },
        slope,
        slope_ci,
        p_value,
        kendall,
        samples: n,
        window_samples: windows.baseline,
        baseline,
        segments,
        restarts,
        sawtooth,
        drops_may_be_restarts: false,
        level,
        span,
        growth,
        tail_slope,
        time_to_limit: None,
    };
    if n >= config.min_samples && t[n - 1] <= t[0] {
        analysis.reason = Reason::NoTimeSpan;
        return Ok(analysis);
    }
    if n < config.min_samples || analysis.baseline.len() < 2 || fit.is_none() {
        return Ok(analysis);
    }
    // A baseline this short cannot pass the test at `alpha` even rising at every point (few
    // windows, or a small `alpha`): "no significant growth" would then be no evidence at all.
    let lengths = per_segment.iter().map(|(_, b)| b.len());
    if best_p_value(lengths.clone()) >= config.alpha {
        let needed = (2..=MAX_POINTS_NEEDED)
            .find(|&m| best_p_value(std::iter::once(m)) < config.alpha)
            .unwrap_or(MAX_POINTS_NEEDED);
        analysis.reason = Reason::TooFewPoints { needed };
        return Ok(analysis);
    }
    let threshold = config
        .min_growth_bytes
        .max(config.min_growth_fraction * level.abs());
    let rank_test_sees_growth = p_value < config.alpha;
    let significant = rank_test_sees_growth && slope_ci.0 > 0.0;
    let stable_level = if config.stable_level_is_mean {
        bytes.iter().sum::<f64>() / n as f64
    } else {
        level
    };
    let stable_bound = threshold.max(config.stable_fraction * stable_level.abs());
    (analysis.verdict, analysis.reason) = if significant && growth >= threshold {
        match tail_slope {
            Some(tail) if tail < config.tail_ratio * slope => {
                (Verdict::Plateau, Reason::TailFlattened { tail_slope: tail })
            }
            _ => (Verdict::Leak, Reason::SteadyGrowth),
        }
    } else if let Some(tail) = tail_slope.filter(|&tail| {
        // A warm-up that levelled off early: the rank test sees the rise, but the flat part
        // holds most pairs of points, so the median slope and its interval start at zero.
        // Material growth is possible and the tail has stopped growing.
        rank_test_sees_growth
            && slope_ci.1 * span > stable_bound
            && tail < config.tail_ratio * slope_ci.1
    }) {
        (Verdict::Plateau, Reason::TailFlattened { tail_slope: tail })
    } else if slope_ci.1 * span <= stable_bound {
        if significant {
            (Verdict::Stable, Reason::GrowthBelowThreshold { threshold })
        } else if rank_test_sees_growth {
            (Verdict::Stable, Reason::SlopeIntervalIncludesZero)
        } else {
            (Verdict::Stable, Reason::NoSignificantGrowth)
        }
    } else {
        (Verdict::Inconclusive, Reason::TooNoisy)
    };
    analysis.drops_may_be_restarts =
        analysis.verdict != Verdict::Leak && sawtooth.is_some_and(|s| 2 * s.deep_drops >= s.drops);
    if analysis.drops_may_be_restarts && config.deep_drops_undecided {
        (analysis.verdict, analysis.reason) = (Verdict::Inconclusive, Reason::DropsMayBeRestarts);
    }
    if analysis.verdict == Verdict::Leak {
        analysis.time_to_limit = config.limit.and_then(|limit| {
            let last = analysis.segments.last()?;
            time_to_limit(limit, last.intercept + slope * t[n - 1], slope, slope_ci)
        });
    }
    Ok(analysis)
}

/// The smallest one-sided Mann–Kendall p-value baselines of these lengths (one per segment)
/// can give: every point above the previous one.
fn best_p_value(lengths: impl Iterator<Item = usize>) -> f64 {
    KendallScore::combine(lengths.map(|m| {
        let rising: Vec<f64> = (0..m).map(|i| i as f64).collect();
        KendallScore::of(&rising)
    }))
    .p_increasing()
}

/// [`Reason::TooFewPoints`] names at most this many baseline points as needed.
const MAX_POINTS_NEEDED: usize = 64;

/// A run between restarts gets windows of at most a third of its samples, so it gives at least
/// this many baseline points.
const MIN_SEGMENT_POINTS: usize = 3;

/// Window lengths, in samples.
#[derive(Clone, Copy, Debug)]
struct Windows {
    /// Samples per baseline window.
    baseline: usize,
    /// Samples each window's minimum is taken over, looking back before the window when it is
    /// longer than the window ([`baseline::window_minima`]): a sawtooth period, 0 without one.
    reach: usize,
    /// The window of the restart test ([`baseline::segments`]), which looks three of them back.
    restart: usize,
}

/// Samples per baseline window: about `n / windows`, and at least one sawtooth period when the
/// series has one ([`baseline::sawtooth`]), so that every window holds a trough. Windows
/// shorter than the period keep samples from a sawtooth's upper part as minima: the baseline
/// then swings with the sawtooth's phase, and the tail guard read a rising sawtooth as a plateau
/// on one run and a leak on the next. At most `n / min_samples`, which keeps enough points for
/// the test; a window held shorter than the period by that bound still reaches back a whole
/// period for its minimum. The restart test looks back over three windows of at least a period
/// too: a sawtooth's drop lands on its troughs, never below half of them, so a drop to the
/// trough is a cycle, judged by the troughs, whatever the number of periods; with look-backs
/// shorter than a period, a deep sawtooth of 5 periods read as 4 restarts of a leak. A caller
/// asking for a window per sample ([`Config::one_point_per_sample`]) gets that.
fn window_len(n: usize, sawtooth: Option<Sawtooth>, config: &Config) -> Windows {
    let by_count = baseline::window_len(n, config.windows);
    let by_count_only = Windows {
        baseline: by_count,
        // No sawtooth: each window's own samples (a run's windows may be shorter than this).
        reach: 0,
        restart: by_count,
    };
    if config.windows >= n && (config.one_point_per_sample || sawtooth.is_none()) {
        // One window per sample, as asked (`check`: its samples are taken at quiet moments).
        return by_count_only;
    }
    let longest = (n / config.min_samples.max(1)).max(by_count);
    match sawtooth {
        Some(saw) => {
            let period = (saw.period.ceil() as usize).max(by_count);
            Windows {
                baseline: period.min(longest),
                reach: period,
                restart: period,
            }
        }
        None => by_count_only,
    }
}

fn validate(t: &[f64], bytes: &[f64], breaks: &[usize]) -> Result<(), StatsError> {
    if t.len() != bytes.len() {
        return Err(StatsError::LengthMismatch {
            t: t.len(),
            bytes: bytes.len(),
        });
    }
    for i in 0..t.len() {
        if !t[i].is_finite() || !bytes[i].is_finite() {
            return Err(StatsError::NonFinite { index: i });
        }
        if i > 0 && t[i] < t[i - 1] {
            return Err(StatsError::TimeDecreasing { index: i });
        }
    }
    if let Some(&index) = breaks.iter().find(|&&b| b >= t.len()) {
        return Err(StatsError::BreakOutOfRange {
            index,
            len: t.len(),
        });
    }
    Ok(())
}

/// OLS slope over the baseline points in the last `tail_fraction` of the segment's span.
fn tail_slope(t: &[f64], bytes: &[f64], config: &Config) -> Option<f64> {
    let (&first, &last) = (t.first()?, t.last()?);
    // A point at the window's start belongs to it whatever the time unit: the start is computed
    // with rounding, so it is compared with a tolerance relative to the span.
    let span = last - first;
    let from = last - config.tail_fraction * span - 1e-9 * span;
    let start = t.iter().position(|&x| x >= from)?;
    if t.len() - start < config.min_tail_points.max(2) {
        return None;
    }
    ols_slope(&t[start..], &bytes[start..])
}

/// Projects `current` to `limit` along the slope and its interval.
fn time_to_limit(limit: f64, current: f64, slope: f64, ci: (f64, f64)) -> Option<TimeToLimit> {
    if slope <= 0.0 {
        return None;
    }
    let left = (limit - current).max(0.0);
    Some(TimeToLimit {
        estimate: left / slope,
        earliest: left / ci.1.max(slope),
        latest: (ci.0 > 0.0).then(|| left / ci.0),
        current,
    })
}

#[cfg(test)]
mod tests;
