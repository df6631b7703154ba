//! Per-thread event buffers: each thread appends fixed-size raw events to its own buffer under
//! its own (uncontended) spin flag; full buffers go on a lock-free list for the writer thread,
//! which also takes partly filled buffers every cycle. No global lock, no syscall per event.

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::sys;
use crate::unwind::{StackBounds, ThreadUnwinder};

/// What a raw event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// `kind` is an `AllocKind` code.
    Alloc,
    Free,
    Realloc,
}

/// One event as the hooks write it: the writer thread delta-encodes and compresses it.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct RawEvent {
    pub timestamp: u64,
    pub address: u64,
    /// Realloc only: the block that was resized (0 for `realloc(NULL, n)`).
    pub old_address: u64,
    pub size: u64,
    pub stack: u32,
    pub op: Op,
    pub kind: u8,
}

pub const EVENTS_PER_BUFFER: usize = 2000;

/// A batch of one thread's events; allocated from glibc (the scan never reads glibc heaps as roots).
pub struct RawBuffer {
    pub next: *mut RawBuffer,
    /// The thread state that filled it: the writer hands the emptied buffer back as its spare.
    owner: *const ThreadState,
    pub thread: u32,
    pub len: usize,
    pub events: [RawEvent; EVENTS_PER_BUFFER],
}

impl RawBuffer {
    fn allocate(owner: &ThreadState) -> *mut RawBuffer {
        // SAFETY: glibc allocation, initialised field by field before use; `events` needs no init
        // because only `events[..len]` is ever read.
        unsafe {
            let buffer = sys::__libc_malloc(core::mem::size_of::<RawBuffer>()) as *mut RawBuffer;
            if !buffer.is_null() {
                ptr::addr_of_mut!((*buffer).next).write(ptr::null_mut());
                ptr::addr_of_mut!((*buffer).owner).write(owner);
                ptr::addr_of_mut!((*buffer).thread).write(owner.thread);
                ptr::addr_of_mut!((*buffer).len).write(0);
            }
            buffer
        }
    }

    /// Gives an emptied buffer back to its thread as the next one to fill, or frees it if the
    /// thread already has a spare (writer thread only).
    ///
    /// # Safety
    /// `buffer` came from `allocate`, was drained, and nothing else refers to it.
    pub unsafe fn recycle(buffer: *mut RawBuffer) {
        // SAFETY: per the contract; owners are never freed.
        unsafe {
            (*buffer).len = 0;
            let owner = &*(*buffer).owner;
            if owner.exited.load(Ordering::Acquire)
                || owner
                    .spare
                    .compare_exchange(ptr::null_mut(), buffer, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
            {
                sys::__libc_free(buffer as *mut core::ffi::c_void);
            } else if owner.exited.load(Ordering::Acquire) {
                // The thread exited between the check and the hand-back: whoever takes it frees it.
                free_spare(owner);
            }
        }
    }

    pub fn events(&self) -> &[RawEvent] {
        &self.events[..self.len.min(EVENTS_PER_BUFFER)]
    }
}

/// A traced thread. Never freed (a hook may run in a thread after its TLS destructors), so a dead
/// thread costs only this small struct.
pub struct ThreadState {
    pub thread: u32,
    lock: AtomicBool,
    buffer: UnsafeCell<*mut RawBuffer>,
    /// An empty buffer returned by the writer, taken when the current one is handed off.
    spare: AtomicPtr<RawBuffer>,
    /// Set when the thread exits: the writer then frees emptied buffers instead of handing them back.
    exited: AtomicBool,
    /// The exited thread's dead stack `[block start, its sp at exit)` (0, 0 until known).
    dead_stack: (AtomicU64, AtomicU64),
    /// Set by the writer when it found the lock taken: hand the partial buffer over.
    steal_requested: AtomicBool,
    /// Every event of this thread stamped before this is in a buffer the writer has or will
    /// find in the full queue.
    complete_until: AtomicU64,
    next: UnsafeCell<*mut ThreadState>,
    /// Stack bounds and unwind cache: written only by the owning thread.
    unwind: UnsafeCell<(StackBounds, *mut ThreadUnwinder)>,
}

/// Every thread state ever created (push-front only).
static THREADS: AtomicPtr<ThreadState> = AtomicPtr::new(ptr::null_mut());
static NEXT_THREAD_ID: AtomicU32 = AtomicU32::new(0);
/// Full buffers waiting for the writer (a Treiber stack; the writer takes it whole).
static FULL: AtomicPtr<RawBuffer> = AtomicPtr::new(ptr::null_mut());
static FULL_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Bumped whenever the writer has work; the writer sleeps on it.
pub static WAKE: AtomicU32 = AtomicU32::new(0);
/// Above this many queued buffers (512 K events, 20 MiB) producers wait for the writer: it never
/// lags far behind, so exits, scans and followed forks have little backlog to work off.
const MAX_QUEUED: usize = 256;

impl ThreadState {
    /// Creates and registers the calling thread's state (allocates: call under the guard).
    pub fn create(bounds: StackBounds, cache: *mut ThreadUnwinder) -> *mut ThreadState {
        let state = Box::into_raw(Box::new(ThreadState {
            thread: NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed),
            lock: AtomicBool::new(false),
            buffer: UnsafeCell::new(ptr::null_mut()),
            spare: AtomicPtr::new(ptr::null_mut()),
            exited: AtomicBool::new(false),
            dead_stack: (AtomicU64::new(0), AtomicU64::new(0)),
            steal_requested: AtomicBool::new(false),
            complete_until: AtomicU64::new(0),
            next: UnsafeCell::new(ptr::null_mut()),
            unwind: UnsafeCell::new((bounds, cache)),
        }));
        // SAFETY: freshly created, not yet shared.
        unsafe { push_state(state) };
        state
    }

    /// Stack bounds of the owning thread.
    pub fn bounds(&self) -> StackBounds {
        // SAFETY: a plain copy; only the owner writes it (the scan tolerates a stale value).
        unsafe { (*self.unwind.get()).0 }
    }

    /// The owner's unwind cache, if it has one.
    ///
    /// # Safety
    /// Only the owning thread may call this, and not re-entrantly.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn cache(&self) -> Option<&mut ThreadUnwinder> {
        // SAFETY: per the contract, the owner has exclusive use of its cache.
        unsafe { (*self.unwind.get()).1.as_mut() }
    }

    /// The thread is exiting: records its dead stack range (`stack`), drops its unwinder (returned to
    /// the caller for reuse) and its spare buffer. Events it still records get one-frame stacks.
    ///
    /// # Safety
    /// Only the owning thread may call this.
    pub unsafe fn retire(&self, stack: (u64, u64)) -> *mut ThreadUnwinder {
        self.dead_stack.0.store(stack.0, Ordering::Relaxed);
        self.dead_stack.1.store(stack.1, Ordering::Relaxed);
        self.exited.store(true, Ordering::Release);
        free_spare(self);
        // SAFETY: per the contract, only the owner touches `unwind`.
        unsafe { core::mem::replace(&mut (*self.unwind.get()).1, ptr::null_mut()) }
    }

    /// Installs stack bounds and a cache (owner thread only, e.g. the main thread from the constructor).
    ///
    /// # Safety
    /// Only the owning thread may call this.
    pub unsafe fn set_unwind(&self, bounds: StackBounds, cache: *mut ThreadUnwinder) {
        // SAFETY: per the contract.
        unsafe { *self.unwind.get() = (bounds, cache) };
    }

    /// Runs `operation` under this thread's lock with the timestamp taken before it, then records
    /// the event it returns. Used for realloc, whose old block must not be seen reused by
    /// another thread before this event.
    #[inline]
    pub fn push_around(&self, operation: impl FnOnce() -> Option<RawEvent>) {
        self.lock();
        let timestamp = sys::timestamp();
        match operation() {
            Some(mut event) => {
                event.timestamp = timestamp;
                self.append_locked(event);
            }
            None => self.unlock(),
        }
    }

    /// In a fork child: makes the forking thread's state the only one, with an empty buffer.
    ///
    /// # Safety
    /// Call only in the child, single-threaded, after [`reset_after_fork`].
    pub unsafe fn readopt_after_fork(state: *mut ThreadState) {
        // SAFETY: single-threaded child; the parent's partial events belong to the parent's trace.
        unsafe {
            (*state).lock.store(false, Ordering::Release);
            *(*state).buffer.get() = ptr::null_mut();
            push_state(state);
        }
    }

    fn lock(&self) {
        while self.lock.swap(true, Ordering::Acquire) {
            core::hint::spin_loop();
        }
    }

    fn unlock(&self) {
        self.lock.store(false, Ordering::Release);
    }

    /// Appends one event; the timestamp is taken under the lock so that a writer drain that
    /// started before it cannot miss an earlier-stamped event.
    #[inline]
    pub fn push(&self, mut event: RawEvent) {
        self.lock();
        event.timestamp = sys::timestamp();
        self.append_locked(event);
    }

    /// Writes `event` into the buffer and releases the lock (taken by the caller).
    #[inline]
    fn append_locked(&self, event: RawEvent) {
        // SAFETY: the buffer pointer is only touched under `lock`, which the caller holds.
        let slot = unsafe { &mut *self.buffer.get() };
        if slot.is_null() {
            let spare = self.spare.swap(ptr::null_mut(), Ordering::AcqRel);
            *slot = if spare.is_null() {
                RawBuffer::allocate(self)
            } else {
                spare
            };
            if slot.is_null() {
                self.unlock();
                return;
            }
        }
        // SAFETY: `*slot` is a live buffer owned by this state; len < EVENTS_PER_BUFFER here.
        let full = unsafe {
            let buffer = &mut **slot;
            buffer.events[buffer.len] = event;
            buffer.len += 1;
            buffer.len == EVENTS_PER_BUFFER
        };
        // The writer asks a busy thread to hand its partial buffer over itself rather than
        // fight for the lock.
        let requested = self.steal_requested.load(Ordering::Relaxed);
        let handed_off = if full || requested {
            core::mem::replace(slot, ptr::null_mut())
        } else {
            ptr::null_mut()
        };
        self.unlock();
        if !handed_off.is_null() {
            queue_full(handed_off);
        }
        if requested {
            self.steal_requested.store(false, Ordering::Relaxed);
            // Published after the buffer is queued: every event up to this one is with the writer.
            self.complete_until
                .store(event.timestamp + 1, Ordering::Release);
        }
    }

    /// Takes the partly filled buffer (writer thread). Waits for the lock when `wait`; otherwise
    /// a thread that holds it is asked to hand the buffer over at its next event. Returns whether
    /// the buffer was taken (then every event stamped before `now` has been collected).
    fn take(&self, wait: bool, now: u64, out: &mut Vec<*mut RawBuffer>) -> bool {
        if wait {
            self.lock();
        } else if self.lock.swap(true, Ordering::Acquire) {
            self.steal_requested.store(true, Ordering::Relaxed);
            return false;
        }
        // SAFETY: under `lock`.
        let taken = unsafe { core::mem::replace(&mut *self.buffer.get(), ptr::null_mut()) };
        self.steal_requested.store(false, Ordering::Relaxed);
        self.complete_until.store(now, Ordering::Release);
        self.unlock();
        if !taken.is_null() {
            out.push(taken);
        }
        true
    }
}

/// # Safety
/// `state` must be a live, never-freed state not yet in the list.
unsafe fn push_state(state: *mut ThreadState) {
    let mut head = THREADS.load(Ordering::Acquire);
    loop {
        // SAFETY: `state` is not shared until the CAS publishes it.
        unsafe { *(*state).next.get() = head };
        match THREADS.compare_exchange_weak(head, state, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(current) => head = current,
        }
    }
}

/// Frees `state`'s spare buffer, if it still has one.
fn free_spare(state: &ThreadState) {
    let spare = state.spare.swap(ptr::null_mut(), Ordering::AcqRel);
    if !spare.is_null() {
        // SAFETY: taken out of the slot, so exclusively ours.
        unsafe { sys::__libc_free(spare as *mut core::ffi::c_void) };
    }
}

fn queue_full(buffer: *mut RawBuffer) {
    let mut head = FULL.load(Ordering::Acquire);
    loop {
        // SAFETY: `buffer` is exclusively ours until the CAS publishes it.
        unsafe { (*buffer).next = head };
        match FULL.compare_exchange_weak(head, buffer, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(current) => head = current,
        }
    }
    let queued = FULL_COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    WAKE.fetch_add(1, Ordering::Release);
    sys::futex_wake(&WAKE);
    // Back-pressure: never let an allocation storm outrun the writer without bound.
    let mut waited = 0;
    while FULL_COUNT.load(Ordering::Relaxed) > MAX_QUEUED && queued > MAX_QUEUED && waited < 10_000
    {
        // SAFETY: plain sleep.
        unsafe { libc::usleep(200) };
        waited += 1;
    }
}

/// Collects queued buffers (writer only). With `steal = Some((now, wait))` it first takes each
/// thread's partial buffer (see [`ThreadState::take`]). Returns the timestamp before which every
/// event is now collected: the minimum over threads of what each has handed over.
pub fn drain_all(out: &mut Vec<*mut RawBuffer>, steal: Option<(u64, bool)>) -> u64 {
    let first = out.len();
    let mut complete = u64::MAX;
    let mut state = THREADS.load(Ordering::Acquire);
    while !state.is_null() {
        // SAFETY: states are never freed.
        let s = unsafe { &*state };
        if let Some((now, wait)) = steal {
            s.take(wait, now, out);
        }
        complete = complete.min(s.complete_until.load(Ordering::Acquire));
        // SAFETY: `next` is written once before the state is published.
        state = unsafe { *s.next.get() };
    }
    // Read after the completeness marks: buffers they promise are already queued.
    let partials = out.len();
    let mut full = FULL.swap(ptr::null_mut(), Ordering::AcqRel);
    while !full.is_null() {
        out.push(full);
        FULL_COUNT.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: taken from the queue, exclusively ours now.
        full = unsafe { (*full).next };
    }
    // Oldest first: full buffers in the order they were queued (the list is LIFO), then the
    // partial ones. A single thread's events then come out already sorted.
    out[partials..].reverse();
    out[first..].rotate_left(partials - first);
    complete
}

/// Dead stack ranges of exited threads whose block no live thread has reused (glibc caches thread
/// stacks): their contents are stale, so the leak scan does not treat them as roots, like
/// memcheck, for which memory below a stack pointer is inaccessible.
pub fn dead_thread_stacks() -> Vec<(u64, u64)> {
    let mut dead = Vec::new();
    let mut live_tops = Vec::new();
    let mut state = THREADS.load(Ordering::Acquire);
    while !state.is_null() {
        // SAFETY: states are never freed.
        let s = unsafe { &*state };
        if s.exited.load(Ordering::Acquire) {
            let (low, high) = (
                s.dead_stack.0.load(Ordering::Relaxed),
                s.dead_stack.1.load(Ordering::Relaxed),
            );
            if low < high {
                dead.push((low, high));
            }
        } else {
            live_tops.push(s.bounds().high);
        }
        // SAFETY: `next` is written once before the state is published.
        state = unsafe { *s.next.get() };
    }
    dead.retain(|&(low, high)| !live_tops.iter().any(|&top| low < top && top <= high));
    dead
}

/// Forgets every thread state and queued buffer (in a fork child: those threads do not exist).
pub fn reset_after_fork() {
    THREADS.store(ptr::null_mut(), Ordering::Release);
    FULL.store(ptr::null_mut(), Ordering::Release);
    FULL_COUNT.store(0, Ordering::Release);
}
