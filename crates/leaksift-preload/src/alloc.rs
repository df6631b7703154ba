//! The library's own allocator: Rust allocations go straight to glibc (never through our hooks);
//! big ones get their own mappings, registered so the leak scan can skip the tracer's memory.
//!
//! When the system refuses the tracer memory (the program reached its `RLIMIT_AS`, or
//! exhausted memory), tracing stops and what the tracer still needs to stop comes from a
//! reserve: a failed Rust allocation would abort the program, which without the tool would
//! have seen `malloc` return NULL and gone on.
//!
//! What the tracer hands back to glibc is zeroed first: its tables and buffers hold the
//! program's block addresses, and glibc gives that memory to the program's next mallocs. A
//! block the program never writes would then keep such an address, and the leak scan, which
//! reads every word of a block (memcheck skips the words never written), would take it for a
//! reference the program does not have.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::sys;

/// Bytes the tracer holds in glibc's heap: its smaller Rust allocations and its event buffers.
/// With the resident pages of its own mappings ([`own_resident_bytes`]), the RSS samples leave
/// them out, so that a report's peak RSS is the program's.
static TRACER_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Notes `bytes` more (or, with `held` false, fewer) held by the tracer.
pub fn account(bytes: usize, held: bool) {
    if held {
        TRACER_BYTES.fetch_add(bytes, Ordering::Relaxed);
    } else {
        TRACER_BYTES.fetch_sub(
            bytes.min(TRACER_BYTES.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
    }
}

/// Bytes of the tracer's memory in the process's RSS now: what it holds in glibc's heap (see
/// [`account`]) and the resident pages of its own mappings (asked of the kernel with
/// `mincore`: a table's reserved capacity is mapped but mostly never touched).
pub fn tracer_resident_bytes() -> usize {
    TRACER_BYTES.load(Ordering::Relaxed) + own_resident_bytes()
}

/// Resident bytes of the tracer's own mappings.
fn own_resident_bytes() -> usize {
    let mut pages = Vec::new();
    own_mappings()
        .into_iter()
        .map(|(start, end)| {
            pages.clear();
            pages.resize((end - start).div_ceil(4096), 0u8);
            // SAFETY: `start..end` is one of the tracer's live, page-aligned mappings and
            // `pages` has one byte per page of it. A mapping unmapped meanwhile makes the call
            // fail (ENOMEM), and it then counts as nothing.
            let ok = unsafe {
                libc::mincore(start as *mut libc::c_void, end - start, pages.as_mut_ptr()) == 0
            };
            if ok {
                pages.iter().filter(|&&page| page & 1 != 0).count() * 4096
            } else {
                0
            }
        })
        .sum()
}

/// Allocations at least this big are mapped directly. Smaller ones come from glibc's heaps,
/// which the leak scan never treats as roots.
const OWN_MAPPING_MIN: usize = 128 << 10;
const REGISTRY_SLOTS: usize = 4096;

/// Start and length of every mapping the tracer made for itself (0 = free slot).
static OWN_STARTS: [AtomicUsize; REGISTRY_SLOTS] = [const { AtomicUsize::new(0) }; REGISTRY_SLOTS];
static OWN_LENS: [AtomicUsize; REGISTRY_SLOTS] = [const { AtomicUsize::new(0) }; REGISTRY_SLOTS];

/// Records a mapping the tracer owns (stack table, big buffers).
pub fn register_own_mapping(start: *mut u8, len: usize) {
    for (slot, slot_len) in OWN_STARTS.iter().zip(&OWN_LENS) {
        if slot
            .compare_exchange(0, start as usize, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            slot_len.store(len, Ordering::Release);
            return;
        }
    }
    // Registry full: the scan may then read this mapping as a root (only over-reports reachability).
}

fn unregister_own_mapping(start: *mut u8) {
    for (slot, slot_len) in OWN_STARTS.iter().zip(&OWN_LENS) {
        if slot.load(Ordering::Acquire) == start as usize {
            slot_len.store(0, Ordering::Release);
            slot.store(0, Ordering::Release);
            return;
        }
    }
}

/// Snapshot of the tracer's own mappings as `(start, end)`.
pub fn own_mappings() -> Vec<(usize, usize)> {
    OWN_STARTS
        .iter()
        .zip(&OWN_LENS)
        .filter_map(|(s, l)| {
            let start = s.load(Ordering::Acquire);
            let len = l.load(Ordering::Acquire);
            (start != 0 && len != 0).then_some((start, start + len))
        })
        .collect()
}

fn round_to_pages(len: usize) -> usize {
    (len + 4095) & !4095
}

/// Memory for the tracer once the system refuses it: enough for the writer to flush what is
/// queued and stop. In `.bss`, so it is part of the library's image (mapped, and counted in
/// the address space, before the program can lower its limit) and costs nothing until used.
struct Reserve(UnsafeCell<[u8; RESERVE_BYTES]>);
// SAFETY: bytes are handed out once each, by an atomic bump of `RESERVE_USED`.
unsafe impl Sync for Reserve {}
const RESERVE_BYTES: usize = 1 << 20;
static RESERVE: Reserve = Reserve(UnsafeCell::new([0; RESERVE_BYTES]));
static RESERVE_USED: AtomicUsize = AtomicUsize::new(0);
/// Set when the system first refused the tracer memory.
static OUT_OF_MEMORY: AtomicBool = AtomicBool::new(false);

/// Whether the system has refused the tracer memory: tracing has stopped.
pub fn out_of_memory() -> bool {
    OUT_OF_MEMORY.load(Ordering::Acquire)
}

/// An allocation the system refused: stops tracing (once) and serves it from the reserve;
/// null when the reserve is spent too.
#[cold]
fn from_reserve(layout: Layout) -> *mut u8 {
    if !OUT_OF_MEMORY.swap(true, Ordering::AcqRel) {
        crate::runtime::stop_tracing();
        crate::buffers::wake_writer();
    }
    let base = RESERVE.0.get() as usize;
    let mut used = RESERVE_USED.load(Ordering::Relaxed);
    loop {
        let start = (base + used).next_multiple_of(layout.align()) - base;
        let Some(end) = start
            .checked_add(layout.size())
            .filter(|&end| end <= RESERVE_BYTES)
        else {
            return beyond_reserve();
        };
        match RESERVE_USED.compare_exchange_weak(used, end, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return (base + start) as *mut u8,
            Err(now) => used = now,
        }
    }
}

/// A refused allocation the reserve cannot serve either. Returning null would abort the
/// program (Rust's allocation error handler). On the writer thread, which alone makes big
/// allocations (its tables grow while it drains), the writer is given up instead: marked
/// stopped, so that nothing waits for it, and parked for good, its signals blocked; the program
/// goes on untraced and its exit ends the thread. Elsewhere null is all there is.
#[cold]
fn beyond_reserve() -> *mut u8 {
    if crate::runtime::WRITER_TID.load(Ordering::Acquire) == sys::gettid() {
        crate::runtime::WRITER_RUNNING.store(false, Ordering::Release);
        crate::runtime::stop_tracing();
        // An exit that was already waiting for the writer's exit scan waits no more.
        crate::runtime::EXIT_DONE.store(1, Ordering::Release);
        sys::futex_wake(&crate::runtime::EXIT_DONE);
        let parked = core::sync::atomic::AtomicU32::new(0);
        loop {
            sys::futex_wait(&parked, 0, u64::MAX / 2);
        }
    }
    core::ptr::null_mut()
}

/// Whether `ptr` was served by [`from_reserve`] (such memory is never given back).
fn in_reserve(ptr: *mut u8) -> bool {
    let base = RESERVE.0.get() as usize;
    (base..base + RESERVE_BYTES).contains(&(ptr as usize))
}

pub struct TracerAllocator;

// SAFETY: every path returns memory from glibc or a fresh mapping, sized and aligned per `layout`
// (mappings are page-aligned, glibc honours alignment through memalign).
unsafe impl GlobalAlloc for TracerAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= OWN_MAPPING_MIN && layout.align() <= 4096 {
            let len = round_to_pages(layout.size());
            let ptr = sys::map_anonymous(len);
            if ptr.is_null() {
                return from_reserve(layout);
            }
            register_own_mapping(ptr, len);
            return ptr;
        }
        let ptr = if layout.align() <= 16 {
            // SAFETY: plain glibc allocation.
            unsafe { sys::__libc_malloc(layout.size()) as *mut u8 }
        } else {
            // SAFETY: plain glibc allocation; align is a power of two.
            unsafe { sys::__libc_memalign(layout.align(), layout.size()) as *mut u8 }
        };
        if ptr.is_null() {
            return from_reserve(layout);
        }
        account(layout.size(), true);
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if in_reserve(ptr) {
            return;
        }
        if layout.size() >= OWN_MAPPING_MIN && layout.align() <= 4096 {
            unregister_own_mapping(ptr);
            // SAFETY: `ptr` came from `map_anonymous` with this rounded length.
            unsafe { sys::unmap(ptr, round_to_pages(layout.size())) };
        } else {
            account(layout.size(), false);
            // SAFETY: `ptr` came from glibc in `alloc` with `layout.size()` bytes, ours to clear
            // (module docs) before glibc takes them back.
            unsafe {
                core::ptr::write_bytes(ptr, 0, layout.size());
                sys::__libc_free(ptr as *mut core::ffi::c_void)
            }
        }
    }

    // Allocate, copy and free (never glibc's realloc, which would free the old block, or the
    // tail of a shrunk one, without clearing it).
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `layout.align()` is valid; the caller guarantees `new_size` fits isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: fresh allocation of the new layout.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller of the two sizes and do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` was allocated with `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}
