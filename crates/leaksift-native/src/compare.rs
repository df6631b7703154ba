//! Two traces compared call site by call site, as `heaptrack_print --diff` does: what each
//! site allocated, held at the peak, held at the end and lost in one run and in the other.
//!
//! Sites are matched by their symbolized frames (function, file, line, inlining), not by
//! addresses: two runs of one binary load it at different addresses, and a rebuilt binary moves
//! its code, maybe under another name (`app-1.2` against `app-1.3`). A frame without a line
//! keeps its module's file name and its offset in the module, so unknown code only matches the
//! same offset of the same library.

use leaksift_trace::model::LeakClass;
use rustc_hash::FxHashMap;

use crate::replay::{Analysis, LeakTotals, StackStats};
use crate::symbolize::{Frame, Symbolizer};
use crate::view::CallSites;

/// What one call site (or a whole trace) did, as compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Figures {
    pub allocations: u64,
    pub allocated_bytes: u64,
    /// Allocations freed by the same thread before it allocated anything else.
    pub temporary: u64,
    /// Bytes held at the heap's peak.
    pub peak_bytes: u64,
    /// Bytes still live when the trace ended.
    pub live_bytes: u64,
    /// Definitely plus indirectly lost bytes (0 without a reachability scan).
    pub lost_bytes: u64,
}

impl Figures {
    /// A call site's figures: its stacks' summed stats and the bytes lost from them.
    fn of(stats: &StackStats, lost_bytes: u64) -> Figures {
        Figures {
            allocations: stats.allocations,
            allocated_bytes: stats.allocated_bytes,
            temporary: stats.temporaries,
            peak_bytes: stats.peak_bytes,
            live_bytes: stats.live_bytes,
            lost_bytes,
        }
    }

    /// `self` minus `old`, per figure.
    pub fn minus(&self, old: &Figures) -> FigureDeltas {
        // Exact for any two u64 (a hostile trace's sizes too), clamped to what i64 holds.
        let delta = |new: u64, old: u64| {
            (i128::from(new) - i128::from(old)).clamp(i64::MIN.into(), i64::MAX.into()) as i64
        };
        FigureDeltas {
            allocations: delta(self.allocations, old.allocations),
            allocated_bytes: delta(self.allocated_bytes, old.allocated_bytes),
            temporary: delta(self.temporary, old.temporary),
            peak_bytes: delta(self.peak_bytes, old.peak_bytes),
            live_bytes: delta(self.live_bytes, old.live_bytes),
            lost_bytes: delta(self.lost_bytes, old.lost_bytes),
        }
    }
}

/// New minus old, per figure of [`Figures`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FigureDeltas {
    pub allocations: i64,
    pub allocated_bytes: i64,
    pub temporary: i64,
    pub peak_bytes: i64,
    pub live_bytes: i64,
    pub lost_bytes: i64,
}

impl FigureDeltas {
    fn is_zero(&self) -> bool {
        *self == FigureDeltas::default()
    }
}

/// A whole trace's figures, its leak classes (when it has a reachability scan) and whether it
/// ended early.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TraceTotals {
    #[serde(flatten)]
    pub figures: Figures,
    pub leaks: Option<LeakTotals>,
    pub truncated: bool,
}

/// One call site's figures in both traces (zero where it did not allocate).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SiteChange {
    pub old: Figures,
    pub new: Figures,
    pub delta: FigureDeltas,
    /// Innermost frame first, down to `main` (the frames of the newer trace when both have it).
    pub frames: Vec<Frame>,
    /// Whether the recorder cut the stack before its outermost frame in either trace.
    pub stack_truncated: bool,
}

/// Two traces compared.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TraceComparison {
    pub old: TraceTotals,
    pub new: TraceTotals,
    pub delta: FigureDeltas,
    /// The sites whose figures differ, largest absolute change in lost bytes first, then in
    /// peak bytes, live bytes and allocations.
    pub sites: Vec<SiteChange>,
}

/// Compares trace `old` with trace `new`, each with the symbolizer of its own modules.
pub fn compare(
    old: &Analysis,
    old_symbols: &mut Symbolizer<'_>,
    new: &Analysis,
    new_symbols: &mut Symbolizer<'_>,
) -> TraceComparison {
    let old_sites = site_figures(old, old_symbols);
    let new_sites = site_figures(new, new_symbols);
    // Per matched site: its figures so far in each trace (stats, lost bytes), its frames and
    // whether either trace cut its stack.
    type Side = (StackStats, u64);
    let mut by_key: FxHashMap<Vec<FrameKey>, usize> = FxHashMap::default();
    let mut matched: Vec<([Side; 2], Vec<Frame>, bool)> = Vec::new();
    for (site, side) in old_sites
        .into_iter()
        .map(|s| (s, 0))
        .chain(new_sites.into_iter().map(|s| (s, 1)))
    {
        let key: Vec<FrameKey> = site.frames.iter().map(FrameKey::of).collect();
        let at = *by_key.entry(key).or_insert_with(|| {
            matched.push(Default::default());
            matched.len() - 1
        });
        let (sides, frames, truncated) = &mut matched[at];
        sides[side].0.absorb(&site.stats);
        sides[side].1 = sides[side].1.saturating_add(site.lost_bytes);
        if side == 1 || frames.is_empty() {
            *frames = site.frames;
        }
        *truncated |= site.truncated;
    }
    let mut sites: Vec<SiteChange> = matched
        .into_iter()
        .map(|([old, new], frames, stack_truncated)| {
            let (old, new) = (Figures::of(&old.0, old.1), Figures::of(&new.0, new.1));
            SiteChange {
                delta: new.minus(&old),
                old,
                new,
                frames,
                stack_truncated,
            }
        })
        .collect();
    sites.retain(|change| !change.delta.is_zero());
    sites.sort_by_key(|change| {
        let d = change.delta;
        std::cmp::Reverse((
            d.lost_bytes.unsigned_abs(),
            d.peak_bytes.unsigned_abs(),
            d.live_bytes.unsigned_abs(),
            d.allocations.unsigned_abs(),
        ))
    });
    let (old, new) = (totals(old), totals(new));
    TraceComparison {
        delta: new.figures.minus(&old.figures),
        old,
        new,
        sites,
    }
}

/// A trace's totals.
fn totals(analysis: &Analysis) -> TraceTotals {
    let leaks = analysis.scan.map(|_| analysis.leaks);
    TraceTotals {
        figures: Figures {
            allocations: analysis.allocations,
            allocated_bytes: analysis.allocated_bytes,
            temporary: analysis.temporaries,
            peak_bytes: analysis.peak.bytes,
            live_bytes: analysis.live_at_end.bytes,
            lost_bytes: leaks.map_or(0, |l| {
                l.definitely_lost
                    .bytes
                    .saturating_add(l.indirectly_lost.bytes)
            }),
        },
        leaks,
        truncated: analysis.truncated,
    }
}

/// One trace's call sites with their figures.
struct SiteFigures {
    frames: Vec<Frame>,
    stats: StackStats,
    lost_bytes: u64,
    truncated: bool,
}

fn site_figures(analysis: &Analysis, symbolizer: &mut Symbolizer<'_>) -> Vec<SiteFigures> {
    let call_sites = CallSites::new(analysis, symbolizer);
    let mut lost = vec![0u64; call_sites.sites.len()];
    for group in &analysis.leak_groups {
        let site = call_sites.site_of[group.stack.0 as usize];
        if site != u32::MAX
            && matches!(
                group.class,
                LeakClass::DefinitelyLost | LeakClass::IndirectlyLost
            )
        {
            lost[site as usize] = lost[site as usize].saturating_add(group.bytes);
        }
    }
    call_sites
        .sites
        .iter()
        .zip(lost)
        .enumerate()
        .map(|(i, (site, lost_bytes))| SiteFigures {
            frames: call_sites.frames(i, analysis, symbolizer),
            stats: site.stats,
            lost_bytes,
            truncated: site.truncated,
        })
        .collect()
}

/// What of a frame two traces must agree on for their sites to match.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FrameKey {
    function: String,
    file: Option<String>,
    line: Option<u32>,
    inlined: bool,
    /// The module's file name and the offset in it, for frames without a line only.
    module_name: String,
    offset: u64,
}

impl FrameKey {
    fn of(frame: &Frame) -> FrameKey {
        FrameKey {
            function: frame.function.clone(),
            file: frame.file.clone(),
            line: frame.line,
            inlined: frame.inlined,
            module_name: match frame.line {
                Some(_) => String::new(),
                None => frame
                    .module
                    .rsplit('/')
                    .next()
                    .unwrap_or(&frame.module)
                    .to_string(),
            },
            offset: if frame.line.is_some() {
                0
            } else {
                frame.offset
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(module: &str, line: Option<u32>, offset: u64) -> Frame {
        Frame {
            function: "remember".to_string(),
            file: line.map(|_| "/src/app.c".to_string()),
            line,
            module: module.to_string(),
            offset,
            inlined: false,
        }
    }

    #[test]
    fn frames_match_by_source_across_builds_and_by_offset_without_it() {
        // The same line in a binary built elsewhere, at another offset: one site.
        assert_eq!(
            FrameKey::of(&frame("/build/a/app", Some(12), 0x11a7)),
            FrameKey::of(&frame("/home/ci/app", Some(12), 0x11c3))
        );
        assert_ne!(
            FrameKey::of(&frame("/build/a/app", Some(12), 0x11a7)),
            FrameKey::of(&frame("/build/a/app", Some(13), 0x11a7))
        );
        // A versioned binary name (app-1.2 against app-1.3) is the same source.
        assert_eq!(
            FrameKey::of(&frame("/opt/app-1.2", Some(12), 0x11a7)),
            FrameKey::of(&frame("/opt/app-1.3", Some(12), 0x11c3))
        );
        // Without a line, another library at the same offset is other code.
        assert_ne!(
            FrameKey::of(&frame("/usr/lib/libx.so.1", None, 0x40)),
            FrameKey::of(&frame("/usr/lib/liby.so.1", None, 0x40))
        );
        // Without a line only the offset in the module tells code apart.
        assert_eq!(
            FrameKey::of(&frame("/usr/lib/libx.so.1", None, 0x40)),
            FrameKey::of(&frame("/opt/libx.so.1", None, 0x40))
        );
        assert_ne!(
            FrameKey::of(&frame("/usr/lib/libx.so.1", None, 0x40)),
            FrameKey::of(&frame("/usr/lib/libx.so.1", None, 0x48))
        );
    }

    #[test]
    fn deltas_are_new_minus_old_per_figure() {
        let old = Figures {
            allocations: 3,
            lost_bytes: 500,
            ..Figures::default()
        };
        let new = Figures {
            allocations: 5,
            peak_bytes: 64,
            ..Figures::default()
        };
        let delta = new.minus(&old);
        assert_eq!(delta.allocations, 2);
        assert_eq!(delta.lost_bytes, -500);
        assert_eq!(delta.peak_bytes, 64);
        assert!(!delta.is_zero());
        assert!(new.minus(&new).is_zero());
    }
}
