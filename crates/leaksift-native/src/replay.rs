//! Replays a decoded event stream into flat per-stack tables: live set, totals, peak, hotspots,
//! temporaries, leak classes joined to allocation stacks, and sampled live bytes per call site.
//!
//! The replay is streaming (one [`Replay::event`] call per decoded event) and keeps one hash-map
//! entry per live block plus a few flat arrays indexed by [`StackIndex`]; nothing is allocated per
//! event. Events of different threads arrive in flush order, not time order, so the replay uses the
//! timestamps to resolve the one race that matters: a thread's free of address A flushed after
//! another thread already re-allocated A (see [`Replay::event`]).

use leaksift_trace::format::SYNTHETIC_ADDRESS_BASE;
use leaksift_trace::model::{
    Event, ExecCall, LeakScan, Module, ProcessEnd, ScanTrigger, StackId, ThreadId, TraceTime,
};

/// The leak class of a block, as [`LeakTotals::class`] takes it.
pub use leaksift_trace::model::LeakClass;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::growth::SiteSampler;
use crate::modules::ModuleMap;

/// Dense index of a stack in the replay's tables, assigned in order of definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackIndex(pub u32);

impl StackIndex {
    fn slot(self) -> usize {
        self.0 as usize
    }
}

/// A map from small recorder-assigned ids (stack ids, thread ids: dense from 0) to values: a
/// direct-indexed vector below `DENSE_IDS`, a hash map above it, so a hostile id cannot make the
/// vector huge.
#[derive(Debug)]
struct IdMap<V> {
    dense: Vec<Option<V>>,
    sparse: FxHashMap<u32, V>,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap {
            dense: Vec::new(),
            sparse: FxHashMap::default(),
        }
    }
}

/// Ids below this are stored directly (at most 16 MiB of slots for 8-byte values).
const DENSE_IDS: u32 = 1 << 21;

impl<V: Copy> IdMap<V> {
    fn get(&self, id: u32) -> Option<V> {
        if id < DENSE_IDS {
            self.dense.get(id as usize).copied().flatten()
        } else {
            self.sparse.get(&id).copied()
        }
    }

    /// Sets the value of `id` and returns the previous one.
    fn insert(&mut self, id: u32, value: V) -> Option<V> {
        if id < DENSE_IDS {
            let slot = id as usize;
            if self.dense.len() <= slot {
                self.dense.resize(slot + 1, None);
            }
            self.dense[slot].replace(value)
        } else {
            self.sparse.insert(id, value)
        }
    }
}

/// Every stack of the trace, frames stored back to back in one flat array.
#[derive(Debug, Default)]
pub struct StackTable {
    ids: Vec<StackId>,
    /// `offsets[i]..offsets[i + 1]` are stack `i`'s frames in `frames`.
    offsets: Vec<usize>,
    frames: Vec<u64>,
    by_id: IdMap<StackIndex>,
}

impl StackTable {
    /// Number of stacks.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no stack was defined.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Return addresses of stack `index`, innermost first.
    pub fn frames(&self, index: StackIndex) -> &[u64] {
        let i = index.slot();
        &self.frames[self.offsets[i]..self.offsets[i + 1]]
    }

    /// The trace's id of stack `index`.
    pub fn id(&self, index: StackIndex) -> StackId {
        self.ids[index.slot()]
    }

    /// All stack indices.
    pub fn indices(&self) -> impl Iterator<Item = StackIndex> + use<> {
        (0..self.ids.len() as u32).map(StackIndex)
    }

    fn define(&mut self, id: StackId, frames: &[u64]) -> StackIndex {
        if let Some(index) = self.by_id.get(id.0) {
            return index;
        }
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let index = StackIndex(self.ids.len() as u32);
        self.ids.push(id);
        self.frames.extend_from_slice(frames);
        self.offsets.push(self.frames.len());
        self.by_id.insert(id.0, index);
        index
    }

    /// Index of `id`; an id used before (or without) its definition gets an empty stack, which
    /// symbolizes as unknown rather than failing the whole report.
    fn resolve(&mut self, id: StackId) -> StackIndex {
        match self.by_id.get(id.0) {
            Some(index) => index,
            None => self.define(id, &[]),
        }
    }
}

/// What happened at one allocation stack over the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackStats {
    /// Allocations made here (malloc-family calls and reallocs).
    pub allocations: u64,
    /// Bytes requested by those allocations.
    pub allocated_bytes: u64,
    /// Allocations freed by the same thread before it allocated anything else (heaptrack's
    /// "temporary allocations").
    pub temporaries: u64,
    /// Blocks from this stack still live when the trace ended.
    pub live_blocks: u64,
    /// Bytes from this stack still live when the trace ended.
    pub live_bytes: u64,
    /// Bytes from this stack live at the moment of the heap's peak.
    pub peak_bytes: u64,
}

impl StackStats {
    /// Adds another stack's figures to these (stacks merged into one call site).
    pub fn absorb(&mut self, other: &StackStats) {
        self.allocations += other.allocations;
        self.allocated_bytes = self.allocated_bytes.saturating_add(other.allocated_bytes);
        self.temporaries += other.temporaries;
        self.live_blocks += other.live_blocks;
        self.live_bytes = self.live_bytes.saturating_add(other.live_bytes);
        self.peak_bytes = self.peak_bytes.saturating_add(other.peak_bytes);
    }
}

/// A block count and its total size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlocksBytes {
    pub blocks: u64,
    pub bytes: u64,
}

impl BlocksBytes {
    fn add(&mut self, bytes: u64) {
        self.blocks += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// Adds another count to this one.
    pub fn absorb(&mut self, other: BlocksBytes) {
        self.blocks += other.blocks;
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Totals per memcheck leak class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LeakTotals {
    pub definitely_lost: BlocksBytes,
    pub indirectly_lost: BlocksBytes,
    pub possibly_lost: BlocksBytes,
    pub still_reachable: BlocksBytes,
}

impl LeakTotals {
    /// The totals of one class.
    pub fn class(&self, class: LeakClass) -> BlocksBytes {
        match class {
            LeakClass::DefinitelyLost => self.definitely_lost,
            LeakClass::IndirectlyLost => self.indirectly_lost,
            LeakClass::PossiblyLost => self.possibly_lost,
            LeakClass::StillReachable => self.still_reachable,
        }
    }

    /// The totals of one class, for updating.
    pub fn class_mut(&mut self, class: LeakClass) -> &mut BlocksBytes {
        match class {
            LeakClass::DefinitelyLost => &mut self.definitely_lost,
            LeakClass::IndirectlyLost => &mut self.indirectly_lost,
            LeakClass::PossiblyLost => &mut self.possibly_lost,
            LeakClass::StillReachable => &mut self.still_reachable,
        }
    }
}

/// Blocks of one leak class allocated at one stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeakGroup {
    pub class: LeakClass,
    pub stack: StackIndex,
    pub blocks: u64,
    pub bytes: u64,
}

/// The reachability scan the leak classes come from (the last one in the trace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanInfo {
    pub time: TraceTime,
    pub trigger: ScanTrigger,
    /// Scanned blocks whose allocation was never seen in the trace (not counted in any class).
    pub unmatched_blocks: u64,
    /// Blocks live when the scan was written that it does not list: allocated while it ran
    /// (the program runs on during an on-demand scan, other threads during the exit scan).
    /// The scan took them as roots, since the program had just made them; no class counts
    /// them. A churning program replaces most of its blocks during a scan of some
    /// milliseconds.
    pub allocated_during: BlocksBytes,
}

/// A scan a later one replaced (an on-demand scan of the running program, before the exit
/// scan), with its class totals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlierScan {
    pub scan: ScanInfo,
    pub leaks: LeakTotals,
}

/// The heap's high-water mark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peak {
    pub bytes: u64,
    pub blocks: u64,
    pub time: TraceTime,
}

/// Everything the replay computed; per-stack figures are indexed by [`StackIndex`].
#[derive(Debug)]
pub struct Analysis {
    pub stacks: StackTable,
    pub stack_stats: Vec<StackStats>,
    pub modules: Vec<Module>,
    /// No `End` event: the traced process died (or the file was cut) before a clean exit.
    pub truncated: bool,
    pub end: Option<ProcessEnd>,
    /// When the trace ends with an exec: what it was about to run, if the trace says (format
    /// version 5; recorded before the exec's end record).
    pub exec_call: Option<ExecCall>,
    /// Time of the last event.
    pub duration: TraceTime,
    pub allocations: u64,
    pub allocated_bytes: u64,
    pub frees: u64,
    pub temporaries: u64,
    pub peak: Peak,
    pub live_at_end: BlocksBytes,
    pub peak_rss_bytes: Option<u64>,
    /// `None` when the trace holds no reachability scan (e.g. the process was killed).
    pub scan: Option<ScanInfo>,
    pub leaks: LeakTotals,
    /// The scans before `scan`, oldest first.
    pub earlier_scans: Vec<EarlierScan>,
    /// Sorted by class (definitely lost first), then bytes, largest first.
    pub leak_groups: Vec<LeakGroup>,
    /// Live bytes per stack sampled over the run.
    pub sites: SiteSampler,
}

impl Analysis {
    /// Per-run figures of one stack.
    pub fn stats(&self, stack: StackIndex) -> &StackStats {
        &self.stack_stats[stack.slot()]
    }
}

#[derive(Clone, Copy, Debug)]
struct LiveBlock {
    size: u64,
    time: u64,
    stack: StackIndex,
    thread: ThreadId,
}

/// Synthetic addresses below `SYNTHETIC_ADDRESS_BASE + DENSE_SYNTHETIC` live in a direct-indexed
/// table (at most 32 MiB of slots; a chunk rarely holds more blocks), the rest in a hash map.
const DENSE_SYNTHETIC: u64 = 1 << 20;

/// The live blocks by address. Most blocks of an allocation-heavy trace are allocated and freed
/// within one chunk and carry a synthetic address (`SYNTHETIC_ADDRESS_BASE` + a small slot number
/// the reader reuses, see [`Event::Alloc`]): those are kept in a vector indexed by that number, so
/// the common malloc/free pair costs two array accesses instead of two hash-table probes. Real
/// addresses (and hostile synthetic ones) go to a hash map.
#[derive(Debug, Default)]
struct LiveSet {
    synthetic: Vec<Option<LiveBlock>>,
    real: FxHashMap<u64, LiveBlock>,
    /// Blocks in `synthetic`.
    synthetic_count: usize,
}

impl LiveSet {
    /// The slot of a synthetic address in the direct-indexed table.
    fn synthetic_slot(address: u64) -> Option<usize> {
        address
            .checked_sub(SYNTHETIC_ADDRESS_BASE)
            .filter(|&i| i < DENSE_SYNTHETIC)
            .map(|i| i as usize)
    }

    fn len(&self) -> usize {
        self.synthetic_count + self.real.len()
    }

    fn get(&self, address: u64) -> Option<&LiveBlock> {
        match Self::synthetic_slot(address) {
            Some(slot) => self.synthetic.get(slot).and_then(Option::as_ref),
            None => self.real.get(&address),
        }
    }

    /// Stores `block` at `address`; returns the block it replaced.
    fn insert(&mut self, address: u64, block: LiveBlock) -> Option<LiveBlock> {
        match Self::synthetic_slot(address) {
            Some(slot) => {
                if self.synthetic.len() <= slot {
                    self.synthetic.resize(slot + 1, None);
                }
                let old = self.synthetic[slot].replace(block);
                if old.is_none() {
                    self.synthetic_count += 1;
                }
                old
            }
            None => self.real.insert(address, block),
        }
    }

    fn remove(&mut self, address: u64) -> Option<LiveBlock> {
        match Self::synthetic_slot(address) {
            Some(slot) => {
                let old = self.synthetic.get_mut(slot).and_then(Option::take);
                if old.is_some() {
                    self.synthetic_count -= 1;
                }
                old
            }
            None => self.real.remove(&address),
        }
    }
}

/// A scanned block waiting for its allocation event (flushed after the scan by a slow thread).
#[derive(Clone, Copy, Debug)]
struct PendingScanned {
    address: u64,
    class: LeakClass,
}

/// The streaming replay: feed every event in file order, then call [`Replay::finish`].
#[derive(Debug, Default)]
pub struct Replay {
    stacks: StackTable,
    stats: Vec<StackStats>,
    /// Stack live bytes as of the latest peak, valid where `snapshot_epoch == peak_epoch`.
    peak_snapshot: Vec<u64>,
    snapshot_epoch: Vec<u32>,
    peak_epoch: u32,
    live: LiveSet,
    live_bytes: u64,
    /// Addresses whose block was replaced by a new allocation before its free was seen.
    owed_frees: FxHashSet<u64>,
    peak: Peak,
    /// Per thread: the address of its latest allocation, 0 once it freed anything since.
    last_alloc: IdMap<u64>,
    modules: ModuleMap,
    allocations: u64,
    allocated_bytes: u64,
    frees: u64,
    temporaries: u64,
    now: u64,
    /// The last `End` event and when it came.
    end: Option<(ProcessEnd, u64)>,
    /// The last exec call record (what an exec was about to run).
    exec_call: Option<Box<ExecCall>>,
    peak_rss: Option<u64>,
    scan: Option<ScanInfo>,
    leaks: LeakTotals,
    earlier_scans: Vec<EarlierScan>,
    leak_groups: FxHashMap<(LeakClass, StackIndex), BlocksBytes>,
    pending_scanned: Vec<PendingScanned>,
    sites: SiteSampler,
}

impl Replay {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event, in file order (time order, ties in no particular order across threads).
    ///
    /// Address reuse across threads within one timestamp can put thread B's allocation at address
    /// A before thread A's free of the old block at A. An allocation at a still-live address
    /// therefore retires the old block and marks its free as owed; the next free of that address
    /// with a timestamp not after the new block's is that owed free and is ignored. A free of an
    /// address never allocated in the trace (e.g. allocated before tracing started) is ignored.
    pub fn event(&mut self, event: &Event) {
        match event {
            Event::Stack { id, frames } => {
                let index = self.stacks.define(*id, &self.modules.place(frames));
                self.grow_tables(index);
            }
            Event::ModuleLoaded(module) => self.modules.load(module),
            Event::ModuleUnloaded { time, .. } => self.advance(*time),
            Event::Alloc {
                time,
                thread,
                address,
                size,
                stack,
                ..
            } => {
                self.advance(*time);
                self.allocate(*time, *thread, *address, *size, *stack);
            }
            Event::Free {
                time,
                thread,
                address,
            } => {
                self.advance(*time);
                self.free(*time, *thread, *address);
            }
            Event::Realloc {
                time,
                thread,
                old_address,
                new_address,
                size,
                stack,
            } => {
                self.advance(*time);
                if *old_address != 0 {
                    self.free(*time, *thread, *old_address);
                }
                self.allocate(*time, *thread, *new_address, *size, *stack);
            }
            Event::RssSample { time, rss_bytes } => {
                self.advance(*time);
                self.peak_rss = Some(self.peak_rss.unwrap_or(0).max(*rss_bytes));
            }
            Event::LeakScan(scan) => {
                self.advance(scan.time);
                self.apply_scan(scan);
            }
            Event::Exec(call) => self.exec_call = Some(call.clone()),
            Event::End { time, end } => {
                self.advance(*time);
                self.end = Some((*end, self.now));
            }
        }
    }

    /// Ends the replay: resolves scanned blocks whose allocation arrived after the scan and builds
    /// the analysis. The trace counts as truncated when it had no `End` event, or when its last
    /// one is an exec followed by later events (an exec that failed, after which the program
    /// went on).
    pub fn finish(mut self) -> Analysis {
        let end = self.end.and_then(|(end, at)| match end {
            ProcessEnd::Exec if self.now > at => None,
            end => Some(end),
        });
        let pending = std::mem::take(&mut self.pending_scanned);
        for scanned in pending {
            match self.live.get(scanned.address) {
                Some(block) => {
                    let (size, stack) = (block.size, block.stack);
                    self.classify(scanned.class, size, stack);
                }
                None => {
                    if let Some(scan) = &mut self.scan {
                        scan.unmatched_blocks += 1;
                    }
                }
            }
        }
        let mut stats = self.stats;
        for (slot, stat) in stats.iter_mut().enumerate() {
            stat.peak_bytes = if self.snapshot_epoch[slot] == self.peak_epoch {
                self.peak_snapshot[slot]
            } else {
                stat.live_bytes
            };
        }
        let mut leak_groups: Vec<LeakGroup> = self
            .leak_groups
            .into_iter()
            .map(|((class, stack), total)| LeakGroup {
                class,
                stack,
                blocks: total.blocks,
                bytes: total.bytes,
            })
            .collect();
        leak_groups.sort_by(|a, b| {
            (a.class, std::cmp::Reverse(a.bytes), a.stack).cmp(&(
                b.class,
                std::cmp::Reverse(b.bytes),
                b.stack,
            ))
        });
        let mut sites = self.sites;
        sites.finish(
            self.now,
            &stats.iter().map(|s| s.live_bytes).collect::<Vec<_>>(),
        );
        Analysis {
            stacks: self.stacks,
            stack_stats: stats,
            modules: self.modules.into_modules(),
            truncated: end.is_none(),
            exec_call: self
                .exec_call
                .filter(|_| end == Some(ProcessEnd::Exec))
                .map(|call| *call),
            end,
            duration: TraceTime(self.now),
            allocations: self.allocations,
            allocated_bytes: self.allocated_bytes,
            frees: self.frees,
            temporaries: self.temporaries,
            peak: self.peak,
            live_at_end: BlocksBytes {
                blocks: self.live.len() as u64,
                bytes: self.live_bytes,
            },
            peak_rss_bytes: self.peak_rss,
            scan: self.scan,
            leaks: self.leaks,
            earlier_scans: self.earlier_scans,
            leak_groups,
            sites,
        }
    }

    fn grow_tables(&mut self, index: StackIndex) {
        let needed = index.slot() + 1;
        if self.stats.len() < needed {
            self.stats.resize(needed, StackStats::default());
            self.peak_snapshot.resize(needed, 0);
            self.snapshot_epoch.resize(needed, 0);
            self.sites.grow(needed);
        }
    }

    /// Moves the clock forward (events of different threads may step back slightly; the clock
    /// never does) and lets the call-site sampler take a sample when one is due.
    fn advance(&mut self, time: TraceTime) {
        if time.0 > self.now {
            // The state so far is the state as of the previous event's time, and it held until
            // this event.
            self.sites.maybe_sample(self.now, &self.stats);
            self.sites.idle_until(time.0, &self.stats);
            self.now = time.0;
        }
    }

    fn allocate(
        &mut self,
        time: TraceTime,
        thread: ThreadId,
        address: u64,
        size: u64,
        id: StackId,
    ) {
        let stack = self.stacks.resolve(id);
        self.grow_tables(stack);
        let block = LiveBlock {
            size,
            time: time.0,
            stack,
            thread,
        };
        if let Some(old) = self.live.insert(address, block) {
            // Its free is still to come (same timestamp, another thread, ordered after us).
            self.owed_frees.insert(address);
            self.release(old);
        }
        self.allocations += 1;
        self.allocated_bytes = self.allocated_bytes.saturating_add(size);
        self.last_alloc.insert(thread.0, address);
        let stat = &mut self.stats[stack.slot()];
        stat.allocations += 1;
        stat.allocated_bytes = stat.allocated_bytes.saturating_add(size);
        self.touch(stack);
        let stat = &mut self.stats[stack.slot()];
        stat.live_blocks += 1;
        stat.live_bytes = stat.live_bytes.saturating_add(size);
        self.live_bytes = self.live_bytes.saturating_add(size);
        self.sites.mark(stack);
        if self.live_bytes > self.peak.bytes {
            self.peak = Peak {
                bytes: self.live_bytes,
                blocks: self.live.len() as u64,
                time,
            };
            // Every stack's current live bytes is now its value at the peak; stacks changed later
            // save that value first (`touch`), so a new peak costs O(1), not O(stacks).
            self.peak_epoch = self.peak_epoch.wrapping_add(1);
        }
    }

    fn free(&mut self, time: TraceTime, thread: ThreadId, address: u64) {
        let last = self.last_alloc.insert(thread.0, 0);
        let Some(block) = self.live.remove(address) else {
            return;
        };
        // Either the late free of a block an allocation at this address already replaced, or
        // (in a file out of time order) a free older than the block: the block stays live.
        let stale = time.0 < block.time
            || (time.0 == block.time
                && !self.owed_frees.is_empty()
                && self.owed_frees.contains(&address));
        if stale {
            self.owed_frees.remove(&address);
            self.live.insert(address, block);
            return;
        }
        self.frees += 1;
        if last == Some(address) && block.thread == thread {
            self.temporaries += 1;
            self.stats[block.stack.slot()].temporaries += 1;
        }
        self.release(block);
    }

    fn release(&mut self, block: LiveBlock) {
        self.touch(block.stack);
        let stat = &mut self.stats[block.stack.slot()];
        stat.live_blocks -= 1;
        stat.live_bytes = stat.live_bytes.saturating_sub(block.size);
        self.live_bytes = self.live_bytes.saturating_sub(block.size);
        self.sites.mark(block.stack);
    }

    /// Saves `stack`'s live bytes as its peak value before the first change after a new peak.
    fn touch(&mut self, stack: StackIndex) {
        let slot = stack.slot();
        if self.snapshot_epoch[slot] != self.peak_epoch {
            self.peak_snapshot[slot] = self.stats[slot].live_bytes;
            self.snapshot_epoch[slot] = self.peak_epoch;
        }
    }

    fn apply_scan(&mut self, scan: &LeakScan) {
        if let Some(mut previous) = self.scan.take() {
            // Its blocks still waiting for their allocation record never get one now.
            previous.unmatched_blocks += self.pending_scanned.len() as u64;
            self.earlier_scans.push(EarlierScan {
                scan: previous,
                leaks: self.leaks,
            });
        }
        self.leaks = LeakTotals::default();
        self.leak_groups.clear();
        self.pending_scanned.clear();
        let mut listed = BlocksBytes::default();
        for scanned in &scan.blocks {
            match self.live.get(scanned.address) {
                Some(block) => {
                    let (size, stack) = (block.size, block.stack);
                    listed.add(size);
                    self.classify(scanned.class, size, stack);
                }
                None => self.pending_scanned.push(PendingScanned {
                    address: scanned.address,
                    class: scanned.class,
                }),
            }
        }
        self.scan = Some(ScanInfo {
            time: scan.time,
            trigger: scan.trigger,
            unmatched_blocks: 0,
            allocated_during: BlocksBytes {
                blocks: (self.live.len() as u64).saturating_sub(listed.blocks),
                bytes: self.live_bytes.saturating_sub(listed.bytes),
            },
        });
    }

    fn classify(&mut self, class: LeakClass, size: u64, stack: StackIndex) {
        self.leaks.class_mut(class).add(size);
        self.leak_groups
            .entry((class, stack))
            .or_default()
            .add(size);
    }
}

/// Looks up the module an absolute address falls in (as [`ModuleMap`] placed it); the latest
/// loaded module wins where ranges are shared.
pub fn module_of(modules: &[Module], address: u64) -> Option<&Module> {
    modules.iter().rev().find(|m| {
        m.ranges
            .iter()
            .any(|&(start, end)| address >= start && address < end)
    })
}

#[cfg(test)]
mod tests {
    use leaksift_trace::model::{AllocKind, LeakScan, ScanTrigger, ScannedBlock, TraceHeader};
    use leaksift_trace::writer::AddressPolicy;
    use leaksift_trace::{TraceReader, TraceWriter};
    use proptest::prelude::*;

    use super::*;

    const T1: ThreadId = ThreadId(1);
    const T2: ThreadId = ThreadId(2);

    fn stack(id: u32) -> Event {
        Event::Stack {
            id: StackId(id),
            frames: vec![0x1000 + u64::from(id), 0x2000],
        }
    }

    fn alloc(time: u64, thread: ThreadId, address: u64, size: u64, stack: u32) -> Event {
        Event::Alloc {
            time: TraceTime(time),
            thread,
            address,
            size,
            stack: StackId(stack),
            kind: AllocKind::Malloc,
        }
    }

    fn free(time: u64, thread: ThreadId, address: u64) -> Event {
        Event::Free {
            time: TraceTime(time),
            thread,
            address,
        }
    }

    fn end(time: u64) -> Event {
        Event::End {
            time: TraceTime(time),
            end: ProcessEnd::Exited(0),
        }
    }

    /// Events of a program doing `ops` (kind, thread, size, stack): allocations, frees,
    /// reallocs and temporaries over reused addresses, then an exit scan and `End`.
    fn allocation_program(ops: &[(u8, u32, u64, u32)]) -> Vec<Event> {
        let mut events: Vec<Event> = (0..3).map(stack).collect();
        let mut free_slots: Vec<u64> = Vec::new();
        let mut next_slot = 0u64;
        let mut live: Vec<u64> = Vec::new();
        let mut take_address = |free_slots: &mut Vec<u64>| {
            let slot = free_slots.pop().unwrap_or_else(|| {
                next_slot += 1;
                next_slot
            });
            0x5000_0000 + slot * 0x40
        };
        let slot_of = |address: u64| (address - 0x5000_0000) / 0x40;
        for (i, &(op, thread, size, stack)) in ops.iter().enumerate() {
            let (time, thread) = (i as u64 * 300_000, ThreadId(thread));
            match op {
                0 => {
                    let address = take_address(&mut free_slots);
                    events.push(alloc(time, thread, address, size, stack));
                    live.push(address);
                }
                1 if !live.is_empty() => {
                    let address = live.swap_remove(size as usize % live.len());
                    events.push(free(time, thread, address));
                    free_slots.push(slot_of(address));
                }
                2 => {
                    let old_address = if live.is_empty() || size % 5 == 0 {
                        0
                    } else {
                        live.swap_remove(size as usize % live.len())
                    };
                    let new_address = take_address(&mut free_slots);
                    if old_address != 0 {
                        free_slots.push(slot_of(old_address));
                    }
                    events.push(Event::Realloc {
                        time: TraceTime(time),
                        thread,
                        old_address,
                        new_address,
                        size,
                        stack: StackId(stack),
                    });
                    live.push(new_address);
                }
                _ => {
                    let address = take_address(&mut free_slots);
                    events.push(alloc(time, thread, address, size, stack));
                    events.push(free(time, thread, address));
                    free_slots.push(slot_of(address));
                }
            }
        }
        let time = ops.len() as u64 * 300_000;
        let classes = [
            LeakClass::DefinitelyLost,
            LeakClass::IndirectlyLost,
            LeakClass::PossiblyLost,
            LeakClass::StillReachable,
        ];
        live.sort_unstable();
        events.push(Event::LeakScan(Box::new(LeakScan {
            time: TraceTime(time),
            trigger: ScanTrigger::Exit,
            blocks: live
                .iter()
                .map(|&address| ScannedBlock {
                    address,
                    class: classes[slot_of(address) as usize % 4],
                })
                .collect(),
        })));
        events.push(end(time));
        events
    }

    /// Writes `events` as a trace of small chunks with `policy` and reads them back.
    fn through_trace(events: &[Event], policy: AddressPolicy) -> Vec<Event> {
        let header = TraceHeader {
            format_version: leaksift_trace::format::FORMAT_VERSION,
            pid: 1,
            command: Vec::new(),
            start_unix_s: 0,
            start_subsec_nanos: None,
            page_size: 4096,
            traces_mmap: false,
        };
        let mut writer = TraceWriter::new(Vec::new(), &header).expect("writing to a Vec");
        writer.set_chunk_bytes(1024);
        writer.set_address_policy(policy);
        for event in events {
            writer.write(event).expect("writing to a Vec");
        }
        let bytes = writer.finish().expect("writing to a Vec");
        let mut reader = TraceReader::from_bytes(&bytes).expect("a valid header");
        reader
            .events()
            .collect::<Result<_, _>>()
            .expect("a valid trace")
    }

    fn replay(events: &[Event]) -> Analysis {
        let mut replay = Replay::new();
        for event in events {
            replay.event(event);
        }
        replay.finish()
    }

    /// Every figure of an analysis, for comparing two replays.
    fn figures(a: &Analysis) -> String {
        format!(
            "{:?}",
            (
                a.allocations,
                a.allocated_bytes,
                a.frees,
                a.temporaries,
                a.peak,
                a.live_at_end,
                a.leaks,
                &a.leak_groups,
                &a.stack_stats,
                a.scan,
                a.duration,
            )
        )
    }

    fn index_of(analysis: &Analysis, id: u32) -> StackIndex {
        analysis
            .stacks
            .indices()
            .find(|&s| analysis.stacks.id(s) == StackId(id))
            .unwrap()
    }

    #[test]
    fn tracks_live_set_totals_and_peak_holders() {
        let analysis = replay(&[
            stack(1),
            stack(2),
            alloc(10, T1, 0xa0, 100, 1),
            alloc(20, T1, 0xb0, 50, 2),
            free(30, T1, 0xa0),
            alloc(40, T1, 0xc0, 60, 2),
            end(50),
        ]);
        assert!(!analysis.truncated);
        assert_eq!(analysis.allocations, 3);
        assert_eq!(analysis.allocated_bytes, 210);
        assert_eq!(analysis.frees, 1);
        assert_eq!(analysis.peak.bytes, 150);
        assert_eq!(analysis.peak.blocks, 2);
        assert_eq!(analysis.peak.time, TraceTime(20));
        assert_eq!(
            analysis.live_at_end,
            BlocksBytes {
                blocks: 2,
                bytes: 110
            }
        );
        let (a, b) = (index_of(&analysis, 1), index_of(&analysis, 2));
        assert_eq!(analysis.stats(a).peak_bytes, 100);
        assert_eq!(analysis.stats(b).peak_bytes, 50);
        assert_eq!(analysis.stats(a).live_bytes, 0);
        assert_eq!(analysis.stats(b).live_bytes, 110);
        assert_eq!(analysis.stats(b).allocations, 2);
    }

    /// An exec record ends the trace when nothing follows it; events after it mean the exec
    /// failed and the program went on, so the trace ends with whatever comes last.
    #[test]
    fn an_exec_record_ends_the_trace_only_when_nothing_follows_it() {
        let exec = |time| Event::End {
            time: TraceTime(time),
            end: ProcessEnd::Exec,
        };
        let events = [stack(1), alloc(10, T1, 0xa0, 100, 1), exec(20)];
        let analysis = replay(&events);
        assert!(!analysis.truncated);
        assert_eq!(analysis.end, Some(ProcessEnd::Exec));

        let failed = [&events[..], &[alloc(30, T1, 0xb0, 10, 1)]].concat();
        let analysis = replay(&failed);
        assert!(analysis.truncated);
        assert_eq!(analysis.end, None);

        let failed_then_exited = [&failed[..], &[end(40)]].concat();
        let analysis = replay(&failed_then_exited);
        assert!(!analysis.truncated);
        assert_eq!(analysis.end, Some(ProcessEnd::Exited(0)));
    }

    #[test]
    fn a_later_higher_peak_replaces_the_holders() {
        let analysis = replay(&[
            stack(1),
            stack(2),
            alloc(10, T1, 0xa0, 100, 1),
            alloc(20, T1, 0xb0, 50, 2),
            free(30, T1, 0xa0),
            alloc(40, T1, 0xc0, 60, 2),
            alloc(50, T1, 0xd0, 200, 1),
            free(60, T1, 0xd0),
        ]);
        assert!(analysis.truncated);
        assert_eq!(analysis.peak.bytes, 310);
        let (a, b) = (index_of(&analysis, 1), index_of(&analysis, 2));
        assert_eq!(analysis.stats(a).peak_bytes, 200);
        assert_eq!(analysis.stats(b).peak_bytes, 110);
    }

    #[test]
    fn temporaries_are_freed_before_the_thread_allocates_again() {
        let analysis = replay(&[
            stack(1),
            alloc(1, T1, 0xa0, 8, 1),
            free(2, T1, 0xa0), // temporary
            alloc(3, T1, 0xb0, 8, 1),
            alloc(4, T1, 0xc0, 8, 1),
            free(5, T1, 0xb0), // not: another allocation came between
            alloc(6, T1, 0xd0, 8, 1),
            alloc(6, T2, 0xe0, 8, 1),
            free(7, T1, 0xd0), // temporary: the other thread's allocation does not count
            alloc(8, T1, 0xf0, 8, 1),
            free(9, T2, 0xf0), // not: freed by another thread
        ]);
        assert_eq!(analysis.temporaries, 2);
        assert_eq!(analysis.stats(index_of(&analysis, 1)).temporaries, 2);
    }

    #[test]
    fn realloc_moves_the_block_to_the_new_stack() {
        let analysis = replay(&[
            stack(1),
            stack(2),
            alloc(1, T1, 0xa0, 10, 1),
            Event::Realloc {
                time: TraceTime(2),
                thread: T1,
                old_address: 0xa0,
                new_address: 0xb0,
                size: 30,
                stack: StackId(2),
            },
            Event::Realloc {
                time: TraceTime(3),
                thread: T1,
                old_address: 0,
                new_address: 0xc0,
                size: 5,
                stack: StackId(2),
            },
        ]);
        assert_eq!(analysis.allocations, 3);
        assert_eq!(
            analysis.live_at_end,
            BlocksBytes {
                blocks: 2,
                bytes: 35
            }
        );
        assert_eq!(analysis.stats(index_of(&analysis, 2)).live_bytes, 35);
        assert_eq!(analysis.peak.bytes, 35);
    }

    #[test]
    fn late_free_of_a_reused_address_does_not_free_the_new_block() {
        let analysis = replay(&[
            stack(1),
            alloc(1, T1, 0xa0, 10, 1),
            // Same quantised timestamp: thread 2's allocation at the freed address is ordered
            // before thread 1's free of the old block.
            alloc(5, T2, 0xa0, 20, 1),
            free(5, T1, 0xa0),
            end(9),
        ]);
        assert_eq!(
            analysis.live_at_end,
            BlocksBytes {
                blocks: 1,
                bytes: 20
            }
        );
    }

    #[test]
    fn cross_thread_free_within_one_timestamp_is_a_free() {
        let analysis = replay(&[stack(1), alloc(5, T1, 0xa0, 10, 1), free(5, T2, 0xa0)]);
        assert_eq!(analysis.live_at_end, BlocksBytes::default());
        assert_eq!(analysis.frees, 1);
    }

    #[test]
    fn frees_of_unknown_addresses_are_ignored() {
        let analysis = replay(&[stack(1), free(1, T1, 0x99), alloc(2, T1, 0xa0, 4, 1)]);
        assert_eq!(analysis.frees, 0);
        assert_eq!(analysis.live_at_end.bytes, 4);
    }

    #[test]
    fn leak_scan_is_joined_to_allocation_stacks() {
        let scan = |blocks: Vec<(u64, LeakClass)>| {
            Event::LeakScan(Box::new(LeakScan {
                time: TraceTime(20),
                trigger: ScanTrigger::Exit,
                blocks: blocks
                    .into_iter()
                    .map(|(address, class)| ScannedBlock { address, class })
                    .collect(),
            }))
        };
        let analysis = replay(&[
            stack(1),
            stack(2),
            alloc(1, T1, 0xa0, 100, 1),
            alloc(2, T1, 0xb0, 16, 2),
            alloc(3, T1, 0xc0, 200, 2),
            alloc(4, T1, 0xd0, 32, 1),
            // An earlier on-demand scan is superseded by the last one.
            scan(vec![(0xa0, LeakClass::StillReachable)]),
            scan(vec![
                (0xa0, LeakClass::DefinitelyLost),
                (0xb0, LeakClass::DefinitelyLost),
                (0xc0, LeakClass::IndirectlyLost),
                (0xd0, LeakClass::StillReachable),
                (0xe0, LeakClass::PossiblyLost), // allocated after the scan in file order
                (0xf0, LeakClass::PossiblyLost), // never allocated
            ]),
            alloc(21, T2, 0xe0, 64, 1),
            end(30),
        ]);
        let leaks = analysis.leaks;
        assert_eq!(
            leaks.definitely_lost,
            BlocksBytes {
                blocks: 2,
                bytes: 116
            }
        );
        assert_eq!(
            leaks.indirectly_lost,
            BlocksBytes {
                blocks: 1,
                bytes: 200
            }
        );
        assert_eq!(
            leaks.possibly_lost,
            BlocksBytes {
                blocks: 1,
                bytes: 64
            }
        );
        assert_eq!(
            leaks.still_reachable,
            BlocksBytes {
                blocks: 1,
                bytes: 32
            }
        );
        let scan = analysis.scan.unwrap();
        assert_eq!(scan.unmatched_blocks, 1);
        assert_eq!(scan.allocated_during, BlocksBytes::default());
        // The blocks live at the first scan that it does not list were allocated while it ran:
        // an on-demand scan of a churning program listed 0 of 1,000 and said nothing.
        assert_eq!(
            analysis.earlier_scans[0].scan.allocated_during,
            BlocksBytes {
                blocks: 3,
                bytes: 248
            }
        );
        let groups: Vec<(LeakClass, StackId, u64, u64)> = analysis
            .leak_groups
            .iter()
            .map(|g| (g.class, analysis.stacks.id(g.stack), g.blocks, g.bytes))
            .collect();
        assert_eq!(
            groups,
            vec![
                (LeakClass::DefinitelyLost, StackId(1), 1, 100),
                (LeakClass::DefinitelyLost, StackId(2), 1, 16),
                (LeakClass::IndirectlyLost, StackId(2), 1, 200),
                (LeakClass::PossiblyLost, StackId(1), 1, 64),
                (LeakClass::StillReachable, StackId(1), 1, 32),
            ]
        );
    }

    #[test]
    fn site_samples_follow_live_bytes_through_halving() {
        // 3000 allocations 1 ms apart at one stack, every third one's predecessor freed 0.5 ms
        // later: enough samples to halve the table several times.
        let mut events = vec![stack(1), stack(2)];
        let mut live_after = Vec::new(); // (event time, live bytes after it)
        let mut live = 0u64;
        for i in 0..3000u64 {
            let time = i * 1_000_000;
            events.push(alloc(time, T1, 0x10_0000 + i * 16, 8, 1));
            live += 8;
            live_after.push((time, live));
            if i % 3 == 2 {
                events.push(free(time + 500_000, T1, 0x10_0000 + (i - 1) * 16));
                live -= 8;
                live_after.push((time + 500_000, live));
            }
        }
        let analysis = replay(&events);
        let sites = &analysis.sites;
        assert!(
            sites.len() >= crate::growth::MAX_SAMPLES / 2
                && sites.len() <= crate::growth::MAX_SAMPLES
        );
        let series = sites.series(index_of(&analysis, 1));
        for (time_s, bytes) in sites.times_s().iter().zip(&series) {
            let time_ns = (time_s * 1e9).round() as u64;
            let truth = live_after
                .iter()
                .take_while(|&&(t, _)| t <= time_ns)
                .last()
                .map_or(0, |&(_, l)| l);
            assert_eq!(*bytes as u64, truth, "sample at {time_ns} ns");
        }
        assert_eq!(*series.last().unwrap() as u64, live);
        assert!(
            sites
                .series(index_of(&analysis, 2))
                .iter()
                .all(|&b| b == 0.0)
        );
    }

    fn arbitrary_event() -> impl Strategy<Value = Event> {
        let address = 0u64..16;
        prop_oneof![
            (0u32..4).prop_map(stack),
            (0u64..50, 0u32..3, address.clone(), 0u64..1000, 0u32..5)
                .prop_map(|(t, th, a, s, st)| alloc(t, ThreadId(th), a, s, st)),
            (0u64..50, 0u32..3, address.clone()).prop_map(|(t, th, a)| free(t, ThreadId(th), a)),
            (0u64..50, address.clone(), address, 0u64..1000, 0u32..5).prop_map(
                |(t, old, new, size, st)| Event::Realloc {
                    time: TraceTime(t),
                    thread: T1,
                    old_address: old,
                    new_address: new,
                    size,
                    stack: StackId(st),
                }
            ),
            proptest::collection::vec((0u64..16, 0u8..4), 0..6).prop_map(|blocks| {
                Event::LeakScan(Box::new(LeakScan {
                    time: TraceTime(25),
                    trigger: ScanTrigger::OnDemand,
                    blocks: blocks
                        .into_iter()
                        .map(|(address, c)| ScannedBlock {
                            address,
                            class: [
                                LeakClass::DefinitelyLost,
                                LeakClass::IndirectlyLost,
                                LeakClass::PossiblyLost,
                                LeakClass::StillReachable,
                            ][c as usize],
                        })
                        .collect(),
                }))
            }),
            (0u64..50).prop_map(end),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_streams_keep_the_books_balanced(events in proptest::collection::vec(arbitrary_event(), 0..200)) {
            let analysis = replay(&events);
            let live: u64 = analysis.stack_stats.iter().map(|s| s.live_bytes).sum();
            let blocks: u64 = analysis.stack_stats.iter().map(|s| s.live_blocks).sum();
            prop_assert_eq!(live, analysis.live_at_end.bytes);
            prop_assert_eq!(blocks, analysis.live_at_end.blocks);
            prop_assert!(analysis.peak.bytes >= analysis.live_at_end.bytes);
            let at_peak: u64 = analysis.stack_stats.iter().map(|s| s.peak_bytes).sum();
            prop_assert_eq!(at_peak, analysis.peak.bytes);
            let scanned: u64 = analysis.leak_groups.iter().map(|g| g.bytes).sum();
            let totals = analysis.leaks;
            prop_assert_eq!(scanned, totals.definitely_lost.bytes + totals.indirectly_lost.bytes
                + totals.possibly_lost.bytes + totals.still_reachable.bytes);
        }

        /// The recorder's trace states real addresses only for blocks that outlive their chunk;
        /// the replay of such a trace must equal that of the exact one in every figure.
        #[test]
        fn survivor_addresses_replay_like_exact_addresses(
            ops in proptest::collection::vec((0u8..4, 1u32..3, 1u64..5000, 0u32..3), 0..400),
        ) {
            let events = allocation_program(&ops);
            let exact = replay(&through_trace(&events, AddressPolicy::All));
            prop_assert_eq!(&through_trace(&events, AddressPolicy::All), &events);
            let anonymous = through_trace(&events, AddressPolicy::Survivors);
            // Temporaries never outlive their chunk: their addresses are synthetic.
            let synthetic = anonymous.iter().any(|e| matches!(e,
                Event::Alloc { address, .. } if *address >= leaksift_trace::format::SYNTHETIC_ADDRESS_BASE));
            prop_assert!(synthetic || !ops.iter().any(|op| op.0 == 3));
            let survivors = replay(&anonymous);
            prop_assert_eq!(figures(&survivors), figures(&exact));
        }

        /// The live set keeps low synthetic addresses in its direct-indexed table and every other
        /// address in its hash map: which one holds a block must not change any figure.
        #[test]
        fn live_set_storage_does_not_change_the_replay(events in proptest::collection::vec(arbitrary_event(), 0..200)) {
            let moved = |address: u64| match address {
                0 => 0,
                a if a % 2 == 0 => SYNTHETIC_ADDRESS_BASE + a,
                a => SYNTHETIC_ADDRESS_BASE + DENSE_SYNTHETIC + a,
            };
            let remapped: Vec<Event> = events.iter().cloned().map(|mut event| {
                match &mut event {
                    Event::Alloc { address, .. } | Event::Free { address, .. } => *address = moved(*address),
                    Event::Realloc { old_address, new_address, .. } => {
                        *old_address = moved(*old_address);
                        *new_address = moved(*new_address);
                    }
                    Event::LeakScan(scan) => {
                        for block in &mut scan.blocks {
                            block.address = moved(block.address);
                        }
                    }
                    _ => {}
                }
                event
            }).collect();
            prop_assert_eq!(figures(&replay(&remapped)), figures(&replay(&events)));
        }
    }
}
