//! The symbolized report of one trace: what `leaksift report` prints as tables or JSON, built from
//! a replay [`Analysis`], a [`Symbolizer`] and optional [`Suppressions`].

pub use leaksift_trace::format::RECORDER_MAX_FRAMES;
use leaksift_trace::model::{LeakClass, ProcessEnd, ScanTrigger};

use crate::growth::call_site_growth;
use rustc_hash::FxHashMap;

use crate::replay::{Analysis, BlocksBytes, LeakTotals, ScanInfo, StackIndex, StackStats};
use crate::suppress::Suppressions;
use crate::symbolize::{Frame, Symbolizer, UNKNOWN};
use crate::untraced::UntracedMemory;

/// How much of the analysis the report lists.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    /// Rows in the peak, hotspot, temporary and growth lists.
    pub top: usize,
    /// Call sites whose growth is classified (those holding the most live bytes at the end).
    pub growth_sites: usize,
    pub trend: leaksift_stats::Config,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            top: 10,
            growth_sites: 50,
            trend: site_trend_config(),
        }
    }
}

/// The trend engine's thresholds for one call site's live bytes: growth of 1 KiB is material
/// (the default 256 KiB suits a whole process's RSS), a site that frees everything is not a
/// restart, so drops do not split the series, and "stable" is judged against what the site
/// holds on average (`stable_level_is_mean`: a buffer cycling from zero has a zero baseline).
pub fn site_trend_config() -> leaksift_stats::Config {
    leaksift_stats::Config {
        min_growth_bytes: 1024.0,
        restart_drop: None,
        stable_level_is_mean: true,
        ..leaksift_stats::Config::default()
    }
}

/// The program an `exec` ending the trace was about to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecInto {
    /// Its file (absolute where the recorder could tell; empty when unknown).
    pub program: String,
    /// Its argument vector.
    pub args: Vec<String>,
    /// Whether the environment passed to it still preloaded the tracer and named the trace:
    /// false means it was certainly not traced.
    pub environment_keeps_tracer: bool,
}

/// The symbolized report.
#[derive(Debug, serde::Serialize)]
pub struct NativeReport {
    /// The trace has no end record: the process died or the file was cut short.
    pub truncated: bool,
    /// The traced process's exit status, when it exited cleanly.
    pub exit_status: Option<i32>,
    /// The traced program replaced itself with another one (`exec`): the trace ends there,
    /// without an exit scan (the new program, when it could be traced, to another file).
    pub exec: bool,
    /// With `exec`: the program it replaced itself with, when the trace says (format version 5).
    pub exec_into: Option<ExecInto>,
    pub duration_s: f64,
    pub allocations: u64,
    /// Allocations recorded without a call stack: the tracer's table of distinct stacks was full
    /// (it holds about 2 M stacks, fewer deep ones: 512 MiB of frames), or they came before its
    /// table existed. Their rows have no frames.
    pub allocations_without_stack: u64,
    pub frees: u64,
    pub allocated_bytes: u64,
    pub temporary_allocations: u64,
    pub peak_bytes: u64,
    pub peak_blocks: u64,
    pub peak_time_s: f64,
    pub peak_rss_bytes: Option<u64>,
    pub live_at_end: BlocksBytes,
    pub scan: Option<ScanView>,
    /// All blocks of the scan by class.
    pub leaks: LeakTotals,
    /// Scans before `scan` (on-demand scans of the running program), oldest first.
    pub earlier_scans: Vec<EarlierScanView>,
    /// The same, without blocks whose allocation stack matched a suppression.
    pub unsuppressed: LeakTotals,
    pub leak_stacks: Vec<LeakStack>,
    pub peak_stacks: Vec<PeakStack>,
    pub hotspots: Vec<Hotspot>,
    pub temporaries: Vec<Hotspot>,
    pub growth: GrowthView,
    /// Signs of memory the recorder does not see (an allocator library of the program's own, a
    /// resident set far above the traced heap); `None` when there are none.
    pub untraced_memory: Option<UntracedMemory>,
}

/// The reachability scan the leak classes come from.
#[derive(Debug, serde::Serialize)]
pub struct ScanView {
    pub time_s: f64,
    /// `exit` or `on_demand`.
    pub trigger: &'static str,
    /// Scanned blocks whose allocation is not in the trace.
    pub unmatched_blocks: u64,
    /// Blocks allocated while the scan ran, which it does not classify (see
    /// [`ScanInfo::allocated_during`]).
    pub allocated_during_scan: BlocksBytes,
}

/// A scan a later one replaced, with its class totals.
#[derive(Debug, serde::Serialize)]
pub struct EarlierScanView {
    #[serde(flatten)]
    pub scan: ScanView,
    pub leaks: LeakTotals,
}

/// Blocks of one leak class allocated at one stack.
#[derive(Debug, serde::Serialize)]
pub struct LeakStack {
    /// `definitely_lost`, `indirectly_lost`, `possibly_lost` or `still_reachable`.
    pub kind: &'static str,
    pub blocks: u64,
    pub bytes: u64,
    /// The suppression pattern that matched this stack.
    pub suppressed_by: Option<String>,
    /// Innermost first, outermost (`main`) last.
    pub frames: Vec<Frame>,
    /// The recorder cut this stack at its frame limit: frames toward `main` are missing.
    pub stack_truncated: bool,
}

/// A stack's share of the heap at its peak.
#[derive(Debug, serde::Serialize)]
pub struct PeakStack {
    pub bytes: u64,
    pub frames: Vec<Frame>,
    /// The recorder cut this stack at its frame limit: frames toward `main` are missing.
    pub stack_truncated: bool,
}

/// Allocation counts of one stack.
#[derive(Debug, serde::Serialize)]
pub struct Hotspot {
    pub allocations: u64,
    pub allocated_bytes: u64,
    pub temporary: u64,
    pub frames: Vec<Frame>,
    /// The recorder cut this stack at its frame limit: frames toward `main` are missing.
    pub stack_truncated: bool,
}

/// Growth by call site.
#[derive(Debug, serde::Serialize)]
pub struct GrowthView {
    /// Samples of each site's live bytes over the run.
    pub samples: usize,
    /// Classified sites, `leak` verdicts first, then by live bytes at the end.
    pub sites: Vec<SiteView>,
}

/// One call site's trend.
#[derive(Debug, serde::Serialize)]
pub struct SiteView {
    /// `leak`, `plateau`, `stable` or `inconclusive` (as `watch`).
    pub verdict: &'static str,
    /// Why the trend engine decided so (a stable code, as in `watch`'s JSON).
    pub reason: &'static str,
    pub slope_bytes_per_s: f64,
    pub slope_ci_bytes_per_s: [f64; 2],
    pub p_value: f64,
    pub live_bytes_at_end: u64,
    /// Live bytes before the site's exit tail (what it freed as the program exited, after
    /// `main` returned or in `exit`), the same as `live_bytes_at_end` without one.
    pub live_bytes_before_exit: u64,
    pub frames: Vec<Frame>,
    /// The recorder cut this stack at its frame limit: frames toward `main` are missing.
    pub stack_truncated: bool,
}

/// The snake-case name of a leak class, as in the JSON.
pub fn class_name(class: LeakClass) -> &'static str {
    match class {
        LeakClass::DefinitelyLost => "definitely_lost",
        LeakClass::IndirectlyLost => "indirectly_lost",
        LeakClass::PossiblyLost => "possibly_lost",
        LeakClass::StillReachable => "still_reachable",
    }
}

/// The report's rows: stacks that symbolize to the same frames merged into one call site.
///
/// The recorder keys stacks by return address, so one source call site reached through several
/// call instructions (a loop the compiler unrolled, a function inlined twice into one caller)
/// is several stacks. heaptrack_print merges by location; so does the report, or such a site
/// would show as N rows of 1/N each, and might fall off `--top`. Frames merge when function,
/// file, line, module and inlining agree; a frame without a line keeps its offset in the key,
/// so distinct unknown addresses never merge.
pub(crate) struct CallSites {
    /// Per site: its stacks (the first one's frames are shown) and summed figures.
    pub(crate) sites: Vec<CallSite>,
    /// The site of every stack, by [`StackIndex`]; `u32::MAX` for stacks that never allocated.
    pub(crate) site_of: Vec<u32>,
}

pub(crate) struct CallSite {
    stacks: Vec<StackIndex>,
    pub(crate) stats: StackStats,
    pub(crate) truncated: bool,
}

impl CallSites {
    /// Groups the stacks that allocated. Each distinct address gets a location id (addresses
    /// whose frames agree share one), so a stack's key is a short vector of ids and frames are
    /// built only for the rows shown.
    pub(crate) fn new(analysis: &Analysis, symbolizer: &mut Symbolizer<'_>) -> Self {
        let allocating = || {
            analysis
                .stacks
                .indices()
                .filter(|&s| analysis.stats(s).allocations > 0)
        };
        symbolizer.resolve(allocating().flat_map(|s| analysis.stacks.frames(s).iter().copied()));
        let mut location_ids: FxHashMap<Vec<Frame>, u32> = FxHashMap::default();
        // Per address: its location id and whether it is `main` (frames below it are dropped).
        let mut locations: FxHashMap<u64, (u32, bool)> = FxHashMap::default();
        let mut by_key: FxHashMap<Vec<u32>, u32> = FxHashMap::default();
        let mut sites: Vec<CallSite> = Vec::new();
        let mut site_of = vec![u32::MAX; analysis.stacks.len()];
        let mut key = Vec::new();
        for stack in allocating() {
            key.clear();
            for &address in analysis.stacks.frames(stack) {
                let (id, is_main) = *locations.entry(address).or_insert_with(|| {
                    let frames = symbolizer.frames_at(address);
                    let is_main = frames.iter().any(|f| f.function == "main" && !f.inlined);
                    let location: Vec<Frame> = frames
                        .iter()
                        .map(|f| Frame {
                            offset: if f.line.is_some() { 0 } else { f.offset },
                            ..f.clone()
                        })
                        .collect();
                    let next = location_ids.len() as u32;
                    (*location_ids.entry(location).or_insert(next), is_main)
                });
                key.push(id);
                if is_main {
                    break;
                }
            }
            let next = sites.len() as u32;
            let site = match by_key.get(key.as_slice()) {
                Some(&site) => site,
                None => {
                    by_key.insert(key.clone(), next);
                    sites.push(CallSite {
                        stacks: Vec::new(),
                        stats: StackStats::default(),
                        truncated: false,
                    });
                    next
                }
            };
            let entry = &mut sites[site as usize];
            entry.stacks.push(stack);
            entry.stats.absorb(analysis.stats(stack));
            entry.truncated |= stack_truncated(analysis, symbolizer, stack);
            site_of[stack.0 as usize] = site;
        }
        CallSites { sites, site_of }
    }

    /// The stack whose frames are shown for site `i` (its first).
    pub(crate) fn first_stack(&self, i: usize) -> StackIndex {
        self.sites[i].stacks[0]
    }

    /// The frames shown for site `i`: its first stack's, down to `main`.
    pub(crate) fn frames(
        &self,
        i: usize,
        analysis: &Analysis,
        symbolizer: &mut Symbolizer<'_>,
    ) -> Vec<Frame> {
        let stack = self.sites[i].stacks[0];
        trim_below_main(symbolizer.stack(analysis.stacks.frames(stack)))
    }

    /// Indices of the `top` sites with the largest nonzero `key`, largest first.
    fn top_by(&self, top: usize, key: impl Fn(&StackStats) -> u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.sites.len())
            .filter(|&i| key(&self.sites[i].stats) > 0)
            .collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(key(&self.sites[i].stats)), i));
        order.truncate(top);
        order
    }
}

/// Builds the report.
pub fn build(
    analysis: &Analysis,
    symbolizer: &mut Symbolizer<'_>,
    suppressions: &Suppressions,
    options: &ViewOptions,
) -> NativeReport {
    let call_sites = CallSites::new(analysis, symbolizer);
    let site_stacks: Vec<&[StackIndex]> = call_sites
        .sites
        .iter()
        .map(|s| s.stacks.as_slice())
        .collect();
    let growth = call_site_growth(analysis, &site_stacks, options.growth_sites, &options.trend);
    let site = |i: usize| &call_sites.sites[i];
    let mut frames_of = |i: usize| call_sites.frames(i, analysis, symbolizer);

    // Leak groups of the stacks of one site and class are one row, in the replay's order
    // (class, then bytes) after merging.
    let mut leak_rows: Vec<(LeakClass, usize, BlocksBytes)> = Vec::new();
    let mut leak_row_of: FxHashMap<(LeakClass, usize), usize> = FxHashMap::default();
    for group in &analysis.leak_groups {
        let site_index = call_sites.site_of[group.stack.0 as usize];
        // A scanned block's stack always allocated; guard against a hostile trace anyway.
        if site_index == u32::MAX {
            continue;
        }
        let key = (group.class, site_index as usize);
        let row = *leak_row_of.entry(key).or_insert_with(|| {
            leak_rows.push((group.class, key.1, BlocksBytes::default()));
            leak_rows.len() - 1
        });
        leak_rows[row].2.absorb(BlocksBytes {
            blocks: group.blocks,
            bytes: group.bytes,
        });
    }
    leak_rows.sort_by_key(|&(class, site, total)| (class, std::cmp::Reverse(total.bytes), site));

    let mut unsuppressed = LeakTotals::default();
    let leak_stacks: Vec<LeakStack> = leak_rows
        .into_iter()
        .map(|(class, site_index, total)| {
            let frames = frames_of(site_index);
            let suppressed_by = suppressions.matching(&frames).map(str::to_string);
            if suppressed_by.is_none() {
                unsuppressed.class_mut(class).absorb(total);
            }
            LeakStack {
                kind: class_name(class),
                blocks: total.blocks,
                bytes: total.bytes,
                suppressed_by,
                frames,
                stack_truncated: site(site_index).truncated,
            }
        })
        .collect();
    let peak_stacks = call_sites
        .top_by(options.top, |s| s.peak_bytes)
        .into_iter()
        .map(|i| PeakStack {
            bytes: site(i).stats.peak_bytes,
            frames: frames_of(i),
            stack_truncated: site(i).truncated,
        })
        .collect();
    let mut hotspot = |i: usize| Hotspot {
        allocations: site(i).stats.allocations,
        allocated_bytes: site(i).stats.allocated_bytes,
        temporary: site(i).stats.temporaries,
        frames: frames_of(i),
        stack_truncated: site(i).truncated,
    };
    let hotspots = call_sites
        .top_by(options.top, |s| s.allocations)
        .into_iter()
        .map(&mut hotspot)
        .collect();
    let temporaries = call_sites
        .top_by(options.top, |s| s.temporaries)
        .into_iter()
        .map(&mut hotspot)
        .collect();

    let mut sites: Vec<SiteView> = growth
        .into_iter()
        .map(|growth| SiteView {
            verdict: growth.trend.verdict.as_str(),
            reason: growth.trend.reason.code(),
            slope_bytes_per_s: growth.trend.slope,
            slope_ci_bytes_per_s: [growth.trend.slope_ci.0, growth.trend.slope_ci.1],
            p_value: growth.trend.p_value,
            live_bytes_at_end: growth.live_bytes_at_end,
            live_bytes_before_exit: growth.live_bytes_before_exit,
            frames: frames_of(growth.site),
            stack_truncated: site(growth.site).truncated,
        })
        .collect();
    sites.sort_by_key(|site| {
        (
            site.verdict != "leak",
            std::cmp::Reverse(site.live_bytes_before_exit),
        )
    });
    sites.truncate(options.top);

    NativeReport {
        truncated: analysis.truncated,
        exit_status: match analysis.end {
            Some(ProcessEnd::Exited(code)) => Some(code),
            Some(ProcessEnd::Exec) | None => None,
        },
        exec: analysis.end == Some(ProcessEnd::Exec),
        exec_into: analysis.exec_call.as_ref().map(|call| ExecInto {
            program: call.program.clone(),
            args: call.args.clone(),
            environment_keeps_tracer: call.keeps_tracer,
        }),
        duration_s: seconds(analysis.duration.0),
        allocations: analysis.allocations,
        allocations_without_stack: analysis
            .stacks
            .indices()
            .filter(|&s| analysis.stacks.frames(s).is_empty())
            .map(|s| analysis.stack_stats[s.0 as usize].allocations)
            .sum(),
        frees: analysis.frees,
        allocated_bytes: analysis.allocated_bytes,
        temporary_allocations: analysis.temporaries,
        peak_bytes: analysis.peak.bytes,
        peak_blocks: analysis.peak.blocks,
        peak_time_s: seconds(analysis.peak.time.0),
        peak_rss_bytes: analysis.peak_rss_bytes,
        live_at_end: analysis.live_at_end,
        scan: analysis.scan.map(scan_view),
        leaks: analysis.leaks,
        earlier_scans: analysis
            .earlier_scans
            .iter()
            .map(|earlier| EarlierScanView {
                scan: scan_view(earlier.scan),
                leaks: earlier.leaks,
            })
            .collect(),
        unsuppressed,
        leak_stacks,
        peak_stacks,
        hotspots,
        temporaries,
        growth: GrowthView {
            samples: analysis.sites.len(),
            sites,
        },
        untraced_memory: UntracedMemory::detect(
            &analysis.modules,
            analysis.peak.bytes,
            analysis.peak_rss_bytes,
        ),
    }
}

/// A scan as the report shows it.
fn scan_view(scan: ScanInfo) -> ScanView {
    ScanView {
        time_s: seconds(scan.time.0),
        trigger: match scan.trigger {
            ScanTrigger::Exit => "exit",
            ScanTrigger::OnDemand => "on_demand",
        },
        unmatched_blocks: scan.unmatched_blocks,
        allocated_during_scan: scan.allocated_during,
    }
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// Functions a complete stack ends in: `main` and the C runtime below it, thread entry points.
const STACK_ROOTS: [&str; 7] = [
    "main",
    "__libc_start_call_main",
    "__libc_start_main",
    "_start",
    "start_thread",
    "clone3",
    "__clone",
];

/// Whether the recorder cut `stack` at its frame limit (deep recursion, deep call chains): it
/// has the limit's number of frames and none of them is a root (a stack of exactly that depth
/// reaching `main` is complete).
pub fn stack_truncated(
    analysis: &Analysis,
    symbolizer: &mut Symbolizer<'_>,
    stack: StackIndex,
) -> bool {
    let addresses = analysis.stacks.frames(stack);
    addresses.len() >= RECORDER_MAX_FRAMES
        && !addresses.iter().any(|&address| {
            symbolizer
                .frames_at(address)
                .iter()
                .any(|f| !f.inlined && STACK_ROOTS.contains(&f.function.as_str()))
        })
}

/// The outermost flamegraph frame of a stack the recorder cut short, so such stacks stand apart
/// instead of rooting at whatever function was [`RECORDER_MAX_FRAMES`] calls deep.
pub const TRUNCATED_FLAME_ROOT: &str = "[stack cut: deeper frames not recorded]";

/// Drops the C runtime frames below `main` (`__libc_start_main`, `_start`), as memcheck does.
pub fn trim_below_main(mut frames: Vec<Frame>) -> Vec<Frame> {
    if let Some(main) = frames
        .iter()
        .position(|f| f.function == "main" && !f.inlined)
    {
        frames.truncate(main + 1);
    }
    frames
}

/// What a flamegraph's widths measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlameMetric {
    /// Bytes lost at the end (definitely, indirectly and possibly lost) when the trace has a
    /// reachability scan; all bytes still live at the end of the trace otherwise.
    Leaked,
    /// Bytes each stack held at the heap's peak.
    Peak,
    /// Number of allocations.
    Allocations,
}

/// One flamegraph stack: function names outermost first (`main` first), and its weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlameStack {
    pub frames: Vec<String>,
    pub weight: u64,
}

/// A frame's name in a flamegraph: its function, or for a frame without a symbol its module's
/// file name and offset, so that different unsymbolized functions are not one `??` box.
fn flame_label(frame: Frame) -> String {
    if frame.function != UNKNOWN {
        return frame.function;
    }
    let module = frame.module.rsplit('/').next().unwrap_or(&frame.module);
    format!("{UNKNOWN} ({module}+{:#x})", frame.offset)
}

/// The stacks with a nonzero `metric`, symbolized. For [`FlameMetric::Leaked`] after a scan,
/// the stacks `suppressions` match are left out, as they are from the unsuppressed totals.
pub fn flame_stacks(
    analysis: &Analysis,
    symbolizer: &mut Symbolizer<'_>,
    suppressions: &Suppressions,
    metric: FlameMetric,
) -> Vec<FlameStack> {
    let suppressible = metric == FlameMetric::Leaked && analysis.scan.is_some();
    let mut weights = vec![0u64; analysis.stacks.len()];
    match metric {
        FlameMetric::Leaked if analysis.scan.is_some() => {
            for group in &analysis.leak_groups {
                if group.class != LeakClass::StillReachable {
                    weights[group.stack.0 as usize] =
                        weights[group.stack.0 as usize].saturating_add(group.bytes);
                }
            }
        }
        FlameMetric::Leaked => {
            for (weight, stats) in weights.iter_mut().zip(&analysis.stack_stats) {
                *weight = stats.live_bytes;
            }
        }
        FlameMetric::Peak => {
            for (weight, stats) in weights.iter_mut().zip(&analysis.stack_stats) {
                *weight = stats.peak_bytes;
            }
        }
        FlameMetric::Allocations => {
            for (weight, stats) in weights.iter_mut().zip(&analysis.stack_stats) {
                *weight = stats.allocations;
            }
        }
    }
    let shown = || {
        analysis
            .stacks
            .indices()
            .filter(|s| weights[s.0 as usize] > 0)
    };
    symbolizer.resolve(shown().flat_map(|s| analysis.stacks.frames(s).iter().copied()));
    shown()
        .filter_map(|s| {
            let symbolized = trim_below_main(symbolizer.stack(analysis.stacks.frames(s)));
            if suppressible && suppressions.matching(&symbolized).is_some() {
                return None;
            }
            let root =
                stack_truncated(analysis, symbolizer, s).then(|| TRUNCATED_FLAME_ROOT.to_string());
            Some(FlameStack {
                frames: root
                    .into_iter()
                    .chain(symbolized.into_iter().rev().map(flame_label))
                    .collect(),
                weight: weights[s.0 as usize],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use leaksift_trace::model::{
        AllocKind, Event, LeakScan, ScannedBlock, StackId, ThreadId, TraceTime,
    };

    use super::*;
    use crate::replay::Replay;

    /// Two stacks: stack 1 allocates 100 (lost) and 10 (freed), stack 2 allocates 40 (reachable).
    fn analysis(scanned: bool) -> Analysis {
        let mut replay = Replay::new();
        let alloc = |time: u64, address: u64, size: u64, stack: u32| Event::Alloc {
            time: TraceTime(time),
            thread: ThreadId(0),
            address,
            size,
            stack: StackId(stack),
            kind: AllocKind::Malloc,
        };
        let mut events = vec![
            Event::Stack {
                id: StackId(1),
                frames: vec![0x10, 0x20],
            },
            Event::Stack {
                id: StackId(2),
                frames: vec![0x30],
            },
            alloc(1, 0xa0, 100, 1),
            alloc(2, 0xb0, 10, 1),
            alloc(3, 0xc0, 40, 2),
            Event::Free {
                time: TraceTime(4),
                thread: ThreadId(0),
                address: 0xb0,
            },
        ];
        if scanned {
            events.push(Event::LeakScan(Box::new(LeakScan {
                time: TraceTime(5),
                trigger: ScanTrigger::Exit,
                blocks: vec![
                    ScannedBlock {
                        address: 0xa0,
                        class: LeakClass::DefinitelyLost,
                    },
                    ScannedBlock {
                        address: 0xc0,
                        class: LeakClass::StillReachable,
                    },
                ],
            })));
        }
        for event in &events {
            replay.event(event);
        }
        replay.finish()
    }

    fn weights(analysis: &Analysis, metric: FlameMetric) -> Vec<(usize, u64)> {
        let mut symbolizer = Symbolizer::new(&analysis.modules, &[]);
        let mut stacks: Vec<(usize, u64)> =
            flame_stacks(analysis, &mut symbolizer, &Suppressions::default(), metric)
                .into_iter()
                .map(|s| (s.frames.len(), s.weight))
                .collect();
        stacks.sort();
        stacks
    }

    #[test]
    fn flame_metrics_weigh_the_right_bytes() {
        let scanned = analysis(true);
        // Lost bytes only: the still-reachable 40 B do not count.
        assert_eq!(weights(&scanned, FlameMetric::Leaked), [(2, 100)]);
        assert_eq!(weights(&scanned, FlameMetric::Peak), [(1, 40), (2, 110)]);
        assert_eq!(
            weights(&scanned, FlameMetric::Allocations),
            [(1, 1), (2, 2)]
        );
        // Without a scan, everything still live counts as leaked.
        assert_eq!(
            weights(&analysis(false), FlameMetric::Leaked),
            [(1, 40), (2, 100)]
        );
    }

    /// Allocations the recorder could give no stack (its stack table full) were one frameless
    /// row at the top of every table, and nothing said why.
    #[test]
    fn allocations_without_a_stack_are_counted() {
        let mut replay = Replay::new();
        let events = [
            Event::Stack {
                id: StackId(0),
                frames: vec![],
            },
            Event::Stack {
                id: StackId(1),
                frames: vec![0x10],
            },
        ]
        .into_iter()
        .chain((0..3u64).map(|i| Event::Alloc {
            time: TraceTime(i),
            thread: ThreadId(0),
            address: 0x100 + i * 16,
            size: 8,
            stack: StackId(u32::from(i == 2)),
            kind: AllocKind::Malloc,
        }));
        for event in events {
            replay.event(&event);
        }
        let analysis = replay.finish();
        let mut symbolizer = Symbolizer::new(&analysis.modules, &[]);
        let report = build(
            &analysis,
            &mut symbolizer,
            &Suppressions::default(),
            &ViewOptions::default(),
        );
        assert_eq!(report.allocations, 3);
        assert_eq!(report.allocations_without_stack, 2);
    }

    /// Suppressed leaks were still drawn in the leaked-bytes flamegraph, and every frame
    /// without a symbol was one `??` box, whatever its address.
    #[test]
    fn flamegraphs_leave_suppressed_leaks_out_and_tell_unsymbolized_frames_apart() {
        let analysis = analysis(true);
        let mut symbolizer = Symbolizer::new(&analysis.modules, &[]);
        let everything = Suppressions::parse("leak:^??$").unwrap();
        let leaked = flame_stacks(&analysis, &mut symbolizer, &everything, FlameMetric::Leaked);
        assert_eq!(leaked, []);
        let peak = flame_stacks(&analysis, &mut symbolizer, &everything, FlameMetric::Peak);
        assert_eq!(peak.len(), 2, "only lost bytes are suppressed");
        let innermost: Vec<&str> = peak
            .iter()
            .map(|s| s.frames.last().unwrap().as_str())
            .collect();
        assert!(
            innermost.iter().all(|f| f.starts_with("?? (??+0x")),
            "{innermost:?}"
        );
        assert_ne!(innermost[0], innermost[1]);
    }

    #[test]
    fn suppressed_stacks_leave_the_unsuppressed_totals() {
        let analysis = analysis(true);
        let mut symbolizer = Symbolizer::new(&analysis.modules, &[]);
        let options = ViewOptions::default();
        let all = build(
            &analysis,
            &mut symbolizer,
            &Suppressions::default(),
            &options,
        );
        assert_eq!(all.unsuppressed, all.leaks);
        assert_eq!(all.leak_stacks.len(), 2);
        // Every frame is `??` here (no modules), so a `??` pattern suppresses everything.
        let everything = Suppressions::parse("leak:^??$").unwrap();
        let none = build(&analysis, &mut symbolizer, &everything, &options);
        assert_eq!(none.unsuppressed, LeakTotals::default());
        assert_eq!(none.leaks.definitely_lost.bytes, 100);
        assert!(none.leak_stacks.iter().all(|s| s.suppressed_by.is_some()));
    }
}
