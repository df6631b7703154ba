//! Two traces compared call site by call site, as `heaptrack_print --diff` does: what each
//! site allocated, held at the peak, held at the end and lost in one run and in the other.
//!
//! Sites are matched by their symbolized frames (function, file, line, inlining), not by
//! addresses: two runs of one binary load it at different addresses, and a rebuilt binary moves
//! its code, maybe under another name (`app-1.2` against `app-1.3`). A frame without a line
//! keeps its module's file name and its offset in the module, so unknown code only matches the
//! same offset of the same library.

use std::hash::{Hash, Hasher};

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
    /// Adds one call site's figures (its stacks' summed stats and the bytes lost from them), as
    /// [`StackStats::absorb`] adds them.
    fn absorb(&mut self, stats: &StackStats, lost_bytes: u64) {
        self.allocations += stats.allocations;
        self.allocated_bytes = self.allocated_bytes.saturating_add(stats.allocated_bytes);
        self.temporary += stats.temporaries;
        self.peak_bytes = self.peak_bytes.saturating_add(stats.peak_bytes);
        self.live_bytes = self.live_bytes.saturating_add(stats.live_bytes);
        self.lost_bytes = self.lost_bytes.saturating_add(lost_bytes);
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
#[derive(Clone, Debug, PartialEq)]
pub struct SiteChange {
    pub old: Figures,
    pub new: Figures,
    /// Where its frames are in its comparison's [`SiteFrames`] ([`TraceComparison::frames`]).
    frames: FrameSpan,
    /// Whether the recorder cut the stack before its outermost frame in either trace.
    pub stack_truncated: bool,
}

impl SiteChange {
    /// New minus old (computed, not stored: a comparison can hold millions of sites).
    pub fn delta(&self) -> FigureDeltas {
        self.new.minus(&self.old)
    }
}

/// A site's frames: `len` frame ids from `start` in [`SiteFrames::ids`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FrameSpan {
    start: usize,
    len: u32,
}

impl FrameSpan {
    fn range(self) -> std::ops::Range<usize> {
        self.start..self.start + self.len as usize
    }
}

/// The frames of every site of a comparison, shared: each distinct frame of either trace is
/// stored once, and a site holds the ids of its frames (4 bytes each) rather than frames of its
/// own (a function name, a file and a module path per frame: 17–21 KB per site on a 20-deep
/// stack, gigabytes for a trace of a few hundred thousand distinct stacks).
#[derive(Clone, Debug, Default, PartialEq)]
struct SiteFrames {
    /// The distinct frames of both traces, in first-seen order.
    distinct: Vec<Frame>,
    /// The sites' frames back to back, as indices into `distinct`.
    ids: Vec<u32>,
}

/// Two traces compared.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceComparison {
    pub old: TraceTotals,
    pub new: TraceTotals,
    pub delta: FigureDeltas,
    /// The sites whose figures differ, largest absolute change in lost bytes first, then in
    /// peak bytes, live bytes and allocations.
    pub sites: Vec<SiteChange>,
    frames: SiteFrames,
}

impl TraceComparison {
    /// The frames of `site` (one of [`TraceComparison::sites`]), innermost first, down to
    /// `main`: those of the newer trace when both have it.
    pub fn frames<'a>(
        &'a self,
        site: &SiteChange,
    ) -> impl ExactSizeIterator<Item = &'a Frame> + Clone + 'a {
        self.frames.ids[site.frames.range()]
            .iter()
            .map(|&id| &self.frames.distinct[id as usize])
    }

    /// How many distinct frames the sites' frames are made of (each is stored once).
    pub fn distinct_frames(&self) -> usize {
        self.frames.distinct.len()
    }

    /// The sites as JSON lists them: per site its `old`, `new` and `delta` figures, its
    /// `frames` and `stack_truncated`. Serialized as it is written out, without a copy of
    /// every site's frames.
    pub fn sites_serialized(&self) -> impl serde::Serialize + '_ {
        SitesJson(self)
    }
}

struct SitesJson<'a>(&'a TraceComparison);

impl serde::Serialize for SitesJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let comparison = self.0;
        serializer.collect_seq(
            comparison
                .sites
                .iter()
                .map(|site| SiteJson { comparison, site }),
        )
    }
}

struct SiteJson<'a> {
    comparison: &'a TraceComparison,
    site: &'a SiteChange,
}

impl serde::Serialize for SiteJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct FramesJson<I>(I);
        impl<'f, I: Iterator<Item = &'f Frame> + Clone> serde::Serialize for FramesJson<I> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.clone())
            }
        }
        let site = self.site;
        let mut out = serializer.serialize_struct("SiteChange", 5)?;
        out.serialize_field("old", &site.old)?;
        out.serialize_field("new", &site.new)?;
        out.serialize_field("delta", &site.delta())?;
        out.serialize_field("frames", &FramesJson(self.comparison.frames(site)))?;
        out.serialize_field("stack_truncated", &site.stack_truncated)?;
        out.end()
    }
}

/// Compares trace `old` with trace `new`, each with the symbolizer of its own modules.
pub fn compare(
    old: &Analysis,
    old_symbols: &mut Symbolizer<'_>,
    new: &Analysis,
    new_symbols: &mut Symbolizer<'_>,
) -> TraceComparison {
    let mut matcher = Matcher::default();
    matcher.add_trace(Side::Old, old, old_symbols);
    matcher.add_trace(Side::New, new, new_symbols);
    let Matcher {
        frames, mut sites, ..
    } = matcher;
    sites.retain(|change| !change.delta().is_zero());
    sort_by_change(&mut sites);
    let (old, new) = (totals(old), totals(new));
    TraceComparison {
        delta: new.figures.minus(&old.figures),
        old,
        new,
        sites,
        frames,
    }
}

/// Sorts `sites` by largest absolute change in lost bytes, then in peak bytes, live bytes and
/// allocations, keeping the order of ties (a stable sort). Sorted as a list of indices, then
/// moved into place, so the only extra memory is 4 bytes per site (a stable sort of the sites
/// themselves takes a buffer of half of them).
fn sort_by_change(sites: &mut [SiteChange]) {
    let key = |change: &SiteChange| {
        let d = change.delta();
        std::cmp::Reverse((
            d.lost_bytes.unsigned_abs(),
            d.peak_bytes.unsigned_abs(),
            d.live_bytes.unsigned_abs(),
            d.allocations.unsigned_abs(),
        ))
    };
    let mut order: Vec<u32> = (0..sites.len() as u32).collect();
    // The index breaks ties: stable without a buffer.
    order.sort_unstable_by_key(|&i| (key(&sites[i as usize]), i));
    // Site `order[k]` goes to position `k`: each cycle of the permutation is followed once,
    // its visited entries marked with `NONE`.
    for start in 0..order.len() {
        let mut at = start;
        while order[at] != NONE {
            let from = order[at] as usize;
            order[at] = NONE;
            if from == start {
                break;
            }
            sites.swap(at, from);
            at = from;
        }
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Old,
    New,
}

/// No entry (end of a hash chain, no `main` frame at an address).
const NONE: u32 = u32::MAX;

/// Matches the call sites of two traces by the keys of their frames. Frames are interned
/// (symbolized once per distinct address of each trace, stored once per distinct frame), and a
/// site's key is never stored: it is read through its frame ids (`key_of`), so what a site costs
/// is its figures, a 4-byte id per frame and a hash-table slot.
#[derive(Default)]
struct Matcher {
    frames: SiteFrames,
    /// The id of each distinct frame, as in `frames.distinct`.
    frame_ids: FxHashMap<Frame, u32>,
    /// Per distinct frame: the id of its [`FrameKey`].
    key_of: Vec<u32>,
    key_ids: FxHashMap<FrameKey, u32>,
    /// The matched sites so far (their `delta` is filled in at the end).
    sites: Vec<SiteChange>,
    /// Per hash of a key: the last site with that hash; the others with it are chained
    /// through `next`.
    by_hash: FxHashMap<u64, u32>,
    next: Vec<u32>,
}

impl Matcher {
    /// Adds the call sites of one trace: each is merged into the site of the same key, or
    /// becomes a new one.
    fn add_trace(&mut self, side: Side, analysis: &Analysis, symbolizer: &mut Symbolizer<'_>) {
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
        // Per address of this trace: where its frames' ids are in `address_ids` (the tracer's
        // own frames left out, as `Symbolizer::stack` does) and the position among them of a
        // `main` frame, below which frames are cut (`trim_below_main`).
        let mut at_address: FxHashMap<u64, (usize, u32, u32)> = FxHashMap::default();
        let mut address_ids: Vec<u32> = Vec::new();
        let (mut ids, mut keys) = (Vec::new(), Vec::new());
        for (i, (site, lost_bytes)) in call_sites.sites.iter().zip(lost).enumerate() {
            ids.clear();
            for &address in analysis.stacks.frames(call_sites.first_stack(i)) {
                let (start, len, main) = match at_address.get(&address) {
                    Some(&entry) => entry,
                    None => {
                        let start = address_ids.len();
                        let mut main = NONE;
                        for frame in symbolizer
                            .frames_at(address)
                            .iter()
                            .filter(|frame| !frame.is_in_tracer())
                        {
                            if main == NONE && frame.function == "main" && !frame.inlined {
                                main = (address_ids.len() - start) as u32;
                            }
                            address_ids.push(self.intern(frame));
                        }
                        let entry = (start, (address_ids.len() - start) as u32, main);
                        at_address.insert(address, entry);
                        entry
                    }
                };
                if main != NONE {
                    ids.extend_from_slice(&address_ids[start..=start + main as usize]);
                    break;
                }
                ids.extend_from_slice(&address_ids[start..start + len as usize]);
            }
            keys.clear();
            keys.extend(ids.iter().map(|&id| self.key_of[id as usize]));
            let hash = {
                let mut hasher = rustc_hash::FxHasher::default();
                keys.hash(&mut hasher);
                hasher.finish()
            };
            let at = self.find_or_insert(hash, &keys);
            let frames = &mut self.frames;
            let change = &mut self.sites[at];
            let figures = match side {
                Side::Old => &mut change.old,
                Side::New => &mut change.new,
            };
            figures.absorb(&site.stats, lost_bytes);
            // The old trace's first frames, replaced by the newer trace's; stored again only
            // if they differ (another build, another library path).
            let span = change.frames;
            if (side == Side::New || span.len == 0) && frames.ids[span.range()] != ids[..] {
                change.frames = FrameSpan {
                    start: frames.ids.len(),
                    len: ids.len() as u32,
                };
                frames.ids.extend_from_slice(&ids);
            }
            change.stack_truncated |= site.truncated;
        }
    }

    /// The index of the matched site with key `keys` (of hash `hash`), added if there is none.
    fn find_or_insert(&mut self, hash: u64, keys: &[u32]) -> usize {
        let head = self.by_hash.get(&hash).copied().unwrap_or(NONE);
        let mut at = head;
        while at != NONE {
            let span = self.sites[at as usize].frames;
            if span.len as usize == keys.len()
                && self.frames.ids[span.range()]
                    .iter()
                    .zip(keys)
                    .all(|(&id, &key)| self.key_of[id as usize] == key)
            {
                return at as usize;
            }
            at = self.next[at as usize];
        }
        let index = self.sites.len();
        self.sites.push(SiteChange {
            old: Figures::default(),
            new: Figures::default(),
            frames: FrameSpan::default(),
            stack_truncated: false,
        });
        self.next.push(head);
        self.by_hash.insert(hash, index as u32);
        index
    }

    /// The id of `frame`, added to the distinct frames if new.
    fn intern(&mut self, frame: &Frame) -> u32 {
        if let Some(&id) = self.frame_ids.get(frame) {
            return id;
        }
        let id = self.frames.distinct.len() as u32;
        let key = FrameKey::of(frame);
        let next_key = self.key_ids.len() as u32;
        self.key_of
            .push(*self.key_ids.entry(key).or_insert(next_key));
        self.frames.distinct.push(frame.clone());
        self.frame_ids.insert(frame.clone(), id);
        id
    }
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
    use leaksift_trace::model::{AllocKind, Event, StackId, ThreadId, TraceTime};

    use super::*;
    use crate::replay::Replay;
    use crate::view::trim_below_main;

    /// A trace in which each of `stacks` allocates `times` blocks of 16 bytes, freed at once.
    fn trace(stacks: &[Vec<u64>], times: u64) -> Analysis {
        let mut replay = Replay::new();
        let mut time = 0;
        for (id, frames) in stacks.iter().enumerate() {
            replay.event(&Event::Stack {
                id: StackId(id as u32 + 1),
                frames: frames.clone(),
            });
            for _ in 0..times {
                time += 1;
                replay.event(&Event::Alloc {
                    time: TraceTime(time),
                    thread: ThreadId(0),
                    address: 0x1000,
                    size: 16,
                    stack: StackId(id as u32 + 1),
                    kind: AllocKind::Malloc,
                });
                replay.event(&Event::Free {
                    time: TraceTime(time),
                    thread: ThreadId(0),
                    address: 0x1000,
                });
            }
        }
        replay.finish()
    }

    /// Many distinct stacks made of few distinct addresses (as a recursion choosing between
    /// two call sites at each level): the comparison stores each distinct frame once and a
    /// site's frames as ids, once even when both traces have the site, and gives back the
    /// frames the symbolizer gives for the stack.
    #[test]
    fn site_frames_are_shared_and_stored_once_per_site() {
        const DEPTH: u32 = 8;
        let stacks: Vec<Vec<u64>> = (0..1u64 << DEPTH)
            .map(|bits| {
                let mut frames = vec![0x500];
                frames.extend((0..DEPTH).map(|level| 0x100 + 0x100 * ((bits >> level) & 1)));
                frames.push(0x400);
                frames
            })
            .collect();
        let (old, new) = (trace(&stacks, 1), trace(&stacks, 2));
        let mut old_symbols = Symbolizer::new(&old.modules, &[]);
        let mut new_symbols = Symbolizer::new(&new.modules, &[]);
        let comparison = compare(&old, &mut old_symbols, &new, &mut new_symbols);

        assert_eq!(comparison.sites.len(), stacks.len());
        // 0x100, 0x200, 0x400, 0x500 (no modules: each address is its own `??` frame).
        assert_eq!(comparison.distinct_frames(), 4);
        let frame_count: usize = stacks.iter().map(Vec::len).sum();
        assert_eq!(comparison.frames.ids.len(), frame_count);
        let mut expected: Vec<Vec<Frame>> = stacks
            .iter()
            .map(|stack| trim_below_main(new_symbols.stack(stack)))
            .collect();
        let mut got: Vec<Vec<Frame>> = comparison
            .sites
            .iter()
            .map(|site| comparison.frames(site).cloned().collect())
            .collect();
        expected.sort_by_key(|frames| frames.iter().map(|f| f.offset).collect::<Vec<_>>());
        got.sort_by_key(|frames| frames.iter().map(|f| f.offset).collect::<Vec<_>>());
        assert_eq!(got, expected);
        for site in &comparison.sites {
            assert_eq!((site.old.allocations, site.new.allocations), (1, 2));
            assert_eq!(site.delta().allocations, 1);
        }
    }

    /// Ties keep the order the sites were met in (the old trace's first).
    #[test]
    fn sites_sort_by_change_and_keep_the_order_of_ties() {
        let site = |allocations: u64, start: usize| SiteChange {
            old: Figures::default(),
            new: Figures {
                allocations,
                ..Figures::default()
            },
            frames: FrameSpan { start, len: 0 },
            stack_truncated: false,
        };
        let mut sites: Vec<SiteChange> = [1, 5, 1, 3, 5, 1, 3, 0, 7]
            .into_iter()
            .enumerate()
            .map(|(i, allocations)| site(allocations, i))
            .collect();
        sort_by_change(&mut sites);
        let order: Vec<(u64, usize)> = sites
            .iter()
            .map(|s| (s.new.allocations, s.frames.start))
            .collect();
        assert_eq!(
            order,
            [
                (7, 8),
                (5, 1),
                (5, 4),
                (3, 3),
                (3, 6),
                (1, 0),
                (1, 2),
                (1, 5),
                (0, 7)
            ]
        );
    }

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
