//! Lock-free, allocation-free stack deduplication: an open-addressing table of stack hashes whose
//! frames live in an append-only arena. A stack's id is its slot index, so ids are stable and
//! published before any event refers to them; the writer defines each id on first use.
//!
//! Stacks are interned per *epoch*, which moves whenever the loader unloaded a module: code
//! loaded afterwards may sit at the addresses of the unloaded module, so the same return
//! addresses then name other functions, and must get a new id, defined after the new module's
//! load record (the report resolves each stack against the modules loaded at its definition).
//!
//! The arena is mapped in 8 MiB segments as stacks fill it: reserving its 512 MiB bound up front
//! made any program under an address-space limit (`ulimit -v`, `RLIMIT_AS`) run out of memory,
//! or left it untraced.

use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::alloc::register_own_mapping;
use crate::sys;

const SLOT_BITS: u32 = 21;
const SLOTS: usize = 1 << SLOT_BITS;
/// Words per arena segment (8 MiB), far more than one stack's `[len, frames...]`.
const SEGMENT_WORDS: usize = 1 << 20;
/// At most 512 MiB of frames.
const SEGMENTS: usize = 64;
const ARENA_WORDS: usize = SEGMENTS * SEGMENT_WORDS;
const MAX_PROBES: usize = 256;
/// How long a reader waits for another thread to publish the frames of a slot it claimed.
const PUBLISH_SPINS: u32 = 1 << 16;

/// The loader's unload count last seen, and the interning epoch it moves.
static UNLOADS_SEEN: AtomicU64 = AtomicU64::new(0);
static EPOCH: AtomicU32 = AtomicU32::new(0);

/// Notes the loader's unload counter (`dlpi_subs`): when it moved, stacks interned from now on
/// are kept apart from earlier ones with the same frames.
pub fn note_unloads(unloads: u64) {
    if UNLOADS_SEEN.fetch_max(unloads, Ordering::AcqRel) < unloads {
        EPOCH.fetch_add(1, Ordering::AcqRel);
    }
}

/// The epoch stacks are interned in now.
pub fn epoch() -> u32 {
    EPOCH.load(Ordering::Acquire)
}

/// Stack id used when the table or arena is full, or before the table exists: no frames.
pub const UNKNOWN_STACK: u32 = 0;

#[repr(C)]
struct Slot {
    /// Hash of the frames, never 0 for a claimed slot.
    hash: AtomicU64,
    /// Arena offset of `[len | epoch << 32, frames...]` plus one; 0 until published.
    frames_at: AtomicU64,
}

pub struct StackTable {
    slots: *mut Slot,
    /// Arena segments, mapped on first use (null until then).
    segments: [AtomicPtr<u64>; SEGMENTS],
    /// Arena words handed out, across segments (a region never straddles two).
    arena_used: AtomicUsize,
}

// SAFETY: all shared mutation goes through atomics; the arena is append-only and each region is
// written by exactly one thread before it is published with a release store.
unsafe impl Sync for StackTable {}
// SAFETY: as above.
unsafe impl Send for StackTable {}

/// The first word of a stack's arena region: its frame count and epoch.
fn header(frames: &[u64], epoch: u32) -> u64 {
    frames.len() as u64 | u64::from(epoch) << 32
}

fn hash_frames(frames: &[u64], epoch: u32) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64 ^ header(frames, epoch);
    for &f in frames {
        h = (h ^ f).wrapping_mul(0x1000_0000_01b3).rotate_left(29);
    }
    h ^= h >> 31;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (h ^ (h >> 29)) | 1
}

impl StackTable {
    /// Maps the table; `None` if the address space is not available.
    pub fn new() -> Option<StackTable> {
        let slots_len = SLOTS * core::mem::size_of::<Slot>();
        let slots = sys::map_anonymous(slots_len);
        if slots.is_null() {
            return None;
        }
        register_own_mapping(slots, slots_len);
        // Word 0 of the arena is never handed out, so offsets are ≥ 1.
        Some(StackTable {
            slots: slots as *mut Slot,
            segments: [const { AtomicPtr::new(core::ptr::null_mut()) }; SEGMENTS],
            arena_used: AtomicUsize::new(1),
        })
    }

    /// Arena segment `index`, mapped by the first thread that needs it (`None` when the address
    /// space is exhausted). Raw syscalls only: callable from any hook.
    fn segment(&self, index: usize) -> Option<*mut u64> {
        let current = self.segments[index].load(Ordering::Acquire);
        if !current.is_null() {
            return Some(current);
        }
        let len = SEGMENT_WORDS * 8;
        let mapped = sys::map_anonymous(len);
        if mapped.is_null() {
            return None;
        }
        match self.segments[index].compare_exchange(
            core::ptr::null_mut(),
            mapped as *mut u64,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                register_own_mapping(mapped, len);
                Some(mapped as *mut u64)
            }
            Err(winner) => {
                // SAFETY: our fresh mapping lost the race; nothing refers to it.
                unsafe { sys::unmap(mapped, len) };
                Some(winner)
            }
        }
    }

    /// Address of arena word `at` in a segment already mapped.
    fn word(&self, at: usize) -> *mut u64 {
        let base = self.segments[at / SEGMENT_WORDS].load(Ordering::Acquire);
        // SAFETY: callers pass offsets of published or reserved regions, whose segment is mapped;
        // the offset within it is below SEGMENT_WORDS.
        unsafe { base.add(at % SEGMENT_WORDS) }
    }

    fn slot(&self, index: usize) -> &Slot {
        // SAFETY: index < SLOTS (masked by callers); the mapping is zero-initialised, and an all-zero
        // `Slot` is a valid pair of atomics.
        unsafe { &*self.slots.add(index) }
    }

    /// Frames of a published stack.
    pub fn frames(&self, id: u32) -> &[u64] {
        if id as usize >= SLOTS || id == UNKNOWN_STACK {
            return &[];
        }
        let at = self.slot(id as usize).frames_at.load(Ordering::Acquire);
        if at == 0 {
            return &[];
        }
        let at = (at - 1) as usize;
        let region = self.word(at);
        // SAFETY: published regions `[header, frames...]` lie inside one mapped segment and
        // are immutable.
        unsafe {
            let len = (*region & 0xffff_ffff) as usize;
            core::slice::from_raw_parts(region.add(1), len)
        }
    }

    /// The header word of a published stack (see [`header`]).
    fn header_of(&self, id: u32) -> u64 {
        let at = self.slot(id as usize).frames_at.load(Ordering::Acquire);
        // SAFETY: as in `frames`: `at` is a published region's offset plus one.
        unsafe { *self.word((at - 1) as usize) }
    }

    /// Returns the id of `frames` in `epoch`, inserting it if new. Never blocks for long, never
    /// allocates.
    pub fn intern(&self, frames: &[u64], epoch: u32) -> u32 {
        let hash = hash_frames(frames, epoch);
        let mask = SLOTS - 1;
        let mut index = (hash as usize) & mask;
        for _ in 0..MAX_PROBES {
            if index == UNKNOWN_STACK as usize {
                index = 1;
            }
            let slot = self.slot(index);
            let mut seen = slot.hash.load(Ordering::Acquire);
            if seen == 0 {
                match slot
                    .hash
                    .compare_exchange(0, hash, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return self.publish(index, frames, epoch),
                    Err(current) => seen = current,
                }
            }
            if seen == hash
                && self.wait_published(slot)
                && self.header_of(index as u32) == header(frames, epoch)
                && self.frames(index as u32) == frames
            {
                return index as u32;
            }
            index = (index + 1) & mask;
        }
        UNKNOWN_STACK
    }

    fn publish(&self, index: usize, frames: &[u64], epoch: u32) -> u32 {
        let words = frames.len() + 1;
        let at = loop {
            let at = self.arena_used.fetch_add(words, Ordering::Relaxed);
            if at + words > ARENA_WORDS || words > SEGMENT_WORDS {
                // Arena exhausted: the claimed slot stays unpublished; readers give up on it.
                return UNKNOWN_STACK;
            }
            // A region straddling two segments is skipped (the next one starts in the later).
            if at / SEGMENT_WORDS == (at + words - 1) / SEGMENT_WORDS {
                break at;
            }
        };
        if self.segment(at / SEGMENT_WORDS).is_none() {
            return UNKNOWN_STACK;
        }
        let region = self.word(at);
        // SAFETY: `at..at+words` was reserved for this thread alone by the fetch_add above and
        // lies inside one mapped segment.
        unsafe {
            *region = header(frames, epoch);
            core::ptr::copy_nonoverlapping(frames.as_ptr(), region.add(1), frames.len());
        }
        self.slot(index)
            .frames_at
            .store(at as u64 + 1, Ordering::Release);
        index as u32
    }

    fn wait_published(&self, slot: &Slot) -> bool {
        for _ in 0..PUBLISH_SPINS {
            if slot.frames_at.load(Ordering::Acquire) != 0 {
                return true;
            }
            core::hint::spin_loop();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_spanning_several_arena_segments_read_back_exactly() {
        let table = StackTable::new().expect("mapping the table");
        // 64-frame stacks: about 16k fill a segment; 40k need three, with regions skipped at
        // segment ends.
        let stack = |n: u64| -> Vec<u64> { (0..64).map(|f| n * 1000 + f + 1).collect() };
        let ids: Vec<u32> = (0..40_000).map(|n| table.intern(&stack(n), 0)).collect();
        assert!(ids.iter().all(|&id| id != UNKNOWN_STACK));
        assert!(!table.segments[2].load(Ordering::Acquire).is_null());
        for (n, &id) in ids.iter().enumerate() {
            assert_eq!(table.frames(id), stack(n as u64).as_slice());
            assert_eq!(table.intern(&stack(n as u64), 0), id, "interned once");
        }
        assert!(
            table.segments[3].load(Ordering::Acquire).is_null(),
            "mapped on demand"
        );
    }

    #[test]
    fn the_same_frames_in_another_epoch_are_another_stack() {
        let table = StackTable::new().expect("mapping the table");
        let frames = [0x7f00_1234, 0x40_1000];
        let before = table.intern(&frames, 3);
        let after = table.intern(&frames, 4);
        assert_ne!(before, after);
        assert_eq!(table.intern(&frames, 3), before);
        assert_eq!(table.intern(&frames, 4), after);
        assert_eq!(table.frames(after), frames);
    }
}
