//! Lock-free, allocation-free stack deduplication: an open-addressing table of stack hashes whose
//! frames live in an append-only arena. A stack's id is its slot index, so ids are stable and
//! published before any event refers to them; the writer defines each id on first use.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::alloc::register_own_mapping;
use crate::sys;

const SLOT_BITS: u32 = 21;
const SLOTS: usize = 1 << SLOT_BITS;
const ARENA_WORDS: usize = 64 << 20; // 512 MiB of reserved, lazily touched address space
const MAX_PROBES: usize = 256;
/// How long a reader waits for another thread to publish the frames of a slot it claimed.
const PUBLISH_SPINS: u32 = 1 << 16;

/// Stack id used when the table or arena is full, or before the table exists: no frames.
pub const UNKNOWN_STACK: u32 = 0;

#[repr(C)]
struct Slot {
    /// Hash of the frames, never 0 for a claimed slot.
    hash: AtomicU64,
    /// Arena offset of `[len, frames...]` plus one; 0 until published.
    frames_at: AtomicU64,
}

pub struct StackTable {
    slots: *mut Slot,
    arena: *mut u64,
    arena_used: AtomicUsize,
}

// SAFETY: all shared mutation goes through atomics; the arena is append-only and each region is
// written by exactly one thread before it is published with a release store.
unsafe impl Sync for StackTable {}
// SAFETY: as above.
unsafe impl Send for StackTable {}

fn hash_frames(frames: &[u64]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64 ^ frames.len() as u64;
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
        let arena = sys::map_anonymous(ARENA_WORDS * 8);
        if slots.is_null() || arena.is_null() {
            return None;
        }
        register_own_mapping(slots, slots_len);
        register_own_mapping(arena, ARENA_WORDS * 8);
        // Word 0 of the arena is never handed out, so offsets are ≥ 1.
        Some(StackTable {
            slots: slots as *mut Slot,
            arena: arena as *mut u64,
            arena_used: AtomicUsize::new(1),
        })
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
        // SAFETY: published regions `[len, frames...]` lie inside the arena and are immutable.
        unsafe {
            let len = *self.arena.add(at) as usize;
            core::slice::from_raw_parts(self.arena.add(at + 1), len)
        }
    }

    /// Returns the id of `frames`, inserting it if new. Never blocks for long, never allocates.
    pub fn intern(&self, frames: &[u64]) -> u32 {
        let hash = hash_frames(frames);
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
                    Ok(_) => return self.publish(index, frames),
                    Err(current) => seen = current,
                }
            }
            if seen == hash && self.wait_published(slot) && self.frames(index as u32) == frames {
                return index as u32;
            }
            index = (index + 1) & mask;
        }
        UNKNOWN_STACK
    }

    fn publish(&self, index: usize, frames: &[u64]) -> u32 {
        let words = frames.len() + 1;
        let at = self.arena_used.fetch_add(words, Ordering::Relaxed);
        if at + words > ARENA_WORDS {
            // Arena exhausted: the claimed slot stays unpublished; readers give up on it.
            return UNKNOWN_STACK;
        }
        // SAFETY: `at..at+words` was reserved for this thread alone by the fetch_add above.
        unsafe {
            *self.arena.add(at) = frames.len() as u64;
            core::ptr::copy_nonoverlapping(frames.as_ptr(), self.arena.add(at + 1), frames.len());
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
