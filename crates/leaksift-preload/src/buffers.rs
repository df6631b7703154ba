//! Per-thread event buffers. Each thread appends fixed-size raw events to its own buffer and
//! publishes each with a plain release store of the buffer's length: no lock, no atomic
//! read-modify-write and no syscall per event. Full buffers go on a lock-free list for the writer
//! thread, which also copies the published part of every thread's current buffer each cycle.
//!
//! Time order across threads: the writer may only write events stamped before a watermark that
//! no thread can still publish an older event under. Each thread raises `recording` (a plain
//! store) around taking its timestamp and publishing; the writer stamps `now`, then runs
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` (a memory barrier on every running thread of
//! the process, so that flag stores are visible), and a thread that is not recording then can
//! only publish events stamped after `now`. Where membarrier is unavailable the threads fence
//! after raising the flag instead (slower, same guarantee).
//!
//! Timestamps: reading the TSC costs about 10 ns on the machines measured (AMD Zen), two per
//! malloc/free pair. While a single thread records, only one event in 64 ([`STAMP_REUSE`] + 1) reads
//! it; the others are stamped with the previous stamp plus one tick (an event takes far longer
//! than a tick, so a stamp never runs ahead of the clock, and a thread's stamps strictly
//! increase). A thread also reads the TSC whenever the writer's clock word [`WRITER_CLOCK`]
//! moved, so a stamp is never older than the writer's last cycle (10 ms at most) and never older
//! than a `now` the writer wrote events up to. Once a second thread records, every event reads
//! the TSC: a thread that allocates a block another thread freed must stamp it after that free,
//! which only a real clock guarantees.

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, compiler_fence,
};

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
    /// The program asked for the block's usable size (`malloc_usable_size`), `size`: it may use
    /// the bytes past its request (glibc allows it), so the scan reads them. Not written to the
    /// trace.
    UsableSize,
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

/// How many events ahead of the one written a buffer line is prefetched for writing: the
/// writer thread read it on the other core last time round, and a store that has to fetch it
/// would stall the thread at its next atomic instruction (glibc's arena lock, for one).
const PREFETCH_AHEAD: usize = 32;

/// Single-threaded: events stamped from one TSC read before the next read.
const STAMP_REUSE: u32 = 63;

/// Set once a second thread records: every event then reads the TSC.
static SEVERAL_THREADS: AtomicBool = AtomicBool::new(false);
/// The writer's latest `now` (TSC), stored before its barrier: a thread that sees it move
/// reads the TSC for its next stamp.
pub static WRITER_CLOCK: AtomicU64 = AtomicU64::new(0);
/// membarrier is unavailable: threads fence after raising `recording`.
static PRODUCERS_FENCE: AtomicBool = AtomicBool::new(false);

/// A batch of one thread's events; allocated from glibc (the scan never reads glibc heaps as roots).
pub struct RawBuffer {
    pub next: *mut RawBuffer,
    /// The thread state that fills it (its completeness mark moves when the buffer is drained).
    owner: *const ThreadState,
    pub thread: u32,
    /// Events published by the owner (a release store after each event).
    len: AtomicUsize,
    /// Events the writer already copied while the buffer was its owner's current one
    /// (writer only).
    taken: usize,
    events: [RawEvent; EVENTS_PER_BUFFER],
}

impl RawBuffer {
    /// An empty buffer for `owner`: a pooled one, else a new one from glibc (null if that fails).
    fn take(owner: &ThreadState) -> *mut RawBuffer {
        let mut buffer = POOL.pop();
        // SAFETY: a pooled buffer is nobody's; a new one is initialised field by field before
        // use (`events` needs no initialisation: only published events are ever read).
        unsafe {
            if buffer.is_null() {
                buffer = sys::__libc_malloc(core::mem::size_of::<RawBuffer>()) as *mut RawBuffer;
                if buffer.is_null() {
                    return buffer;
                }
                crate::alloc::account(core::mem::size_of::<RawBuffer>(), true);
            }
            ptr::addr_of_mut!((*buffer).next).write(ptr::null_mut());
            ptr::addr_of_mut!((*buffer).owner).write(owner);
            ptr::addr_of_mut!((*buffer).thread).write(owner.thread);
            ptr::addr_of_mut!((*buffer).len).write(AtomicUsize::new(0));
            ptr::addr_of_mut!((*buffer).taken).write(0);
        }
        buffer
    }

    /// Puts a drained buffer in the pool, or frees it if the pool is full (writer thread only).
    ///
    /// # Safety
    /// `buffer` came from `take`, was drained, and nothing else refers to it.
    pub unsafe fn recycle(buffer: *mut RawBuffer) {
        if !POOL.push(buffer) {
            // SAFETY: per the contract, exclusively ours. Cleared first: its events hold the
            // program's block addresses, and glibc gives the memory to the program next (see
            // `alloc`'s module docs).
            unsafe {
                core::ptr::write_bytes(buffer as *mut u8, 0, core::mem::size_of::<RawBuffer>());
                sys::__libc_free(buffer as *mut core::ffi::c_void)
            };
            crate::alloc::account(core::mem::size_of::<RawBuffer>(), false);
        }
    }

    /// Published events `start..end` (writer thread).
    ///
    /// # Safety
    /// `buffer` is live and `end` is at most a length the writer loaded (acquire) from it.
    pub unsafe fn published(
        buffer: *const RawBuffer,
        start: usize,
        end: usize,
    ) -> &'static [RawEvent] {
        let end = end.min(EVENTS_PER_BUFFER);
        // SAFETY: per the contract, these events were written before their length was
        // published, and the owner only writes past it.
        unsafe {
            let events = ptr::addr_of!((*buffer).events) as *const RawEvent;
            core::slice::from_raw_parts(events.add(start.min(end)), end - start.min(end))
        }
    }
}

/// A run of published events the writer collected.
#[derive(Clone, Copy)]
pub struct Segment {
    pub buffer: *mut RawBuffer,
    pub start: usize,
    pub end: usize,
    /// The buffer was handed over full: recycle it once copied.
    pub full: bool,
}

impl Segment {
    pub fn thread(&self) -> u32 {
        // SAFETY: collected buffers stay live until recycled.
        unsafe { (*self.buffer).thread }
    }

    pub fn events(&self) -> &[RawEvent] {
        // SAFETY: `end` was loaded from the buffer by `drain_all`.
        unsafe { RawBuffer::published(self.buffer, self.start, self.end) }
    }
}

/// A thread's stamping state (owner only).
#[derive(Default)]
struct StampClock {
    last: u64,
    writer_clock_seen: u64,
    reuses_left: u32,
}

/// A traced thread. Never freed (a hook may run in a thread after its TLS destructors), so a dead
/// thread costs only this small struct.
pub struct ThreadState {
    pub thread: u32,
    /// 1 while the owner takes a timestamp and publishes its event (plain stores).
    recording: AtomicU32,
    /// The buffer being filled: written by the owner, read by the writer to copy its published
    /// part.
    buffer: AtomicPtr<RawBuffer>,
    clock: UnsafeCell<StampClock>,
    /// Set when the thread exits: the writer then frees emptied buffers instead of handing them back.
    exited: AtomicBool,
    /// The exited thread's dead stack `[block start, its sp at exit)` (0, 0 until known).
    dead_stack: (AtomicU64, AtomicU64),
    /// The exited thread's descriptor (its thread pointer), which tells whether its stack block
    /// is still the same one when the dead range is used.
    descriptor: AtomicU64,
    /// Writer only: every event of this thread stamped before this is with the writer.
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
/// The writer is about to sleep on, or sleeps on, `WAKE`: only then do wakers make a syscall.
static WRITER_SLEEPING: AtomicBool = AtomicBool::new(false);
/// Above this many queued buffers (512 K events, 20 MiB) producers wait for the writer: it never
/// lags far behind, so exits, scans and followed forks have little backlog to work off.
const MAX_QUEUED: usize = 256;
/// Every this many queued buffers the writer is woken.
const WAKE_BATCH: usize = 32;
/// Bumped by the writer whenever it takes queued buffers; threads waiting for the queue to
/// drain sleep on it.
static DRAINED: AtomicU32 = AtomicU32::new(0);
/// Threads sleeping on [`DRAINED`] (the writer makes the wake system call only when some do).
static DRAIN_WAITERS: AtomicU32 = AtomicU32::new(0);
/// A waiting thread gives up after this long with the queue still full (then checks whether
/// this process has a writer at all; see `runtime::in_copy_of_traced_process`).
const MAX_DRAIN_WAIT_NS: u64 = 2_000_000_000;
/// Each wait is bounded, so a lost wake costs at most this.
const DRAIN_WAIT_SLICE_NS: u64 = 20_000_000;

impl ThreadState {
    /// Creates and registers the calling thread's state (allocates: call under the guard).
    pub fn create(bounds: StackBounds, cache: *mut ThreadUnwinder) -> *mut ThreadState {
        if !THREADS.load(Ordering::Acquire).is_null() {
            // Before this thread's first stamp (see the module documentation).
            SEVERAL_THREADS.store(true, Ordering::SeqCst);
        }
        let state = Box::into_raw(Box::new(ThreadState {
            thread: NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed),
            recording: AtomicU32::new(0),
            buffer: AtomicPtr::new(ptr::null_mut()),
            clock: UnsafeCell::new(StampClock::default()),
            exited: AtomicBool::new(false),
            dead_stack: (AtomicU64::new(0), AtomicU64::new(0)),
            descriptor: AtomicU64::new(0),
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

    /// The thread is exiting: records its dead stack range (`stack`) and its descriptor (thread
    /// pointer), drops its unwinder (returned to the caller for reuse) and hands its buffer to
    /// the writer. Events it still records get one-frame stacks and are handed over one by one.
    ///
    /// # Safety
    /// Only the owning thread may call this.
    pub unsafe fn retire(&self, stack: (u64, u64), descriptor: u64) -> *mut ThreadUnwinder {
        self.dead_stack.0.store(stack.0, Ordering::Relaxed);
        self.dead_stack.1.store(stack.1, Ordering::Relaxed);
        self.descriptor.store(descriptor, Ordering::Relaxed);
        self.exited.store(true, Ordering::Release);
        let buffer = self.buffer.load(Ordering::Relaxed);
        if !buffer.is_null() {
            after_enqueue(self.hand_over(buffer, ptr::null_mut()));
        }
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

    /// Records one event (its timestamp is taken here).
    #[inline(always)]
    pub fn push(&self, event: RawEvent) {
        self.push_around(|| Some(event));
    }

    /// Takes a timestamp, runs `operation` and records the event it returns with that
    /// timestamp. Used as is for realloc, whose old block must not be seen reused by another
    /// thread before this event.
    #[inline(always)]
    pub fn push_around(&self, operation: impl FnOnce() -> Option<RawEvent>) {
        self.recording.store(1, Ordering::Relaxed);
        if PRODUCERS_FENCE.load(Ordering::Relaxed) {
            sys::full_fence();
        }
        // The flag store stays before the clock reads (the TSC read is an `asm!` that the
        // compiler treats as touching memory).
        compiler_fence(Ordering::SeqCst);
        let timestamp = self.stamp();
        let queued = match operation() {
            Some(mut event) => {
                event.timestamp = timestamp;
                self.append(event)
            }
            None => None,
        };
        self.recording.store(0, Ordering::Release);
        if let Some(queued) = queued {
            after_enqueue(queued);
        }
    }

    /// The next timestamp of this thread (see the module documentation). Owner only.
    #[inline(always)]
    fn stamp(&self) -> u64 {
        // SAFETY: only the owning thread stamps, and never re-entrantly (the re-entry guard).
        let clock = unsafe { &mut *self.clock.get() };
        if !SEVERAL_THREADS.load(Ordering::Relaxed) {
            let writer_clock = WRITER_CLOCK.load(Ordering::Relaxed);
            if writer_clock == clock.writer_clock_seen && clock.reuses_left > 0 {
                clock.reuses_left -= 1;
                clock.last += 1;
                return clock.last;
            }
            clock.writer_clock_seen = writer_clock;
            clock.reuses_left = STAMP_REUSE;
        }
        clock.last = sys::timestamp().max(clock.last + 1);
        clock.last
    }

    /// A timestamp taken now, before every later event of the owner: its next event reads the
    /// clock again instead of adding a tick to a stamp that may be older than this one. Owner
    /// only.
    pub fn fresh_stamp(&self) -> u64 {
        // SAFETY: only the owning thread stamps; a plain store that at worst makes one more
        // event read the clock.
        unsafe { (*self.clock.get()).reuses_left = 0 };
        sys::timestamp()
    }

    /// Writes `event` into the current buffer and publishes it. When that fills the buffer (or
    /// the thread has exited) the buffer is handed over, and the number of queued buffers
    /// returned.
    #[inline(always)]
    fn append(&self, event: RawEvent) -> Option<usize> {
        let mut buffer = self.buffer.load(Ordering::Relaxed);
        if buffer.is_null() {
            buffer = self.fresh_buffer();
            if buffer.is_null() {
                return None;
            }
        }
        // SAFETY: the owner's live buffer; only the owner writes events and `len`, and the
        // writer reads only events below the published `len`.
        unsafe {
            let len = (*buffer).len.load(Ordering::Relaxed);
            let events = ptr::addr_of_mut!((*buffer).events) as *mut RawEvent;
            events.add(len).write(event);
            sys::prefetch_for_write(events.add(len + PREFETCH_AHEAD) as *const u8);
            (*buffer).len.store(len + 1, Ordering::Release);
            if len + 1 < EVENTS_PER_BUFFER && !self.exited.load(Ordering::Relaxed) {
                return None;
            }
        }
        // An exited thread hands over every event: nobody would take its last buffer.
        let next = if self.exited.load(Ordering::Relaxed) {
            ptr::null_mut()
        } else {
            RawBuffer::take(self)
        };
        Some(self.hand_over(buffer, next))
    }

    /// Queues the current buffer `buffer` for the writer, then makes `next` current: a writer
    /// that finds `next` (or null) current therefore finds `buffer` queued, and one that finds
    /// `buffer` copies what it holds. Returns the number of queued buffers.
    fn hand_over(&self, buffer: *mut RawBuffer, next: *mut RawBuffer) -> usize {
        let queued = enqueue(buffer);
        self.buffer.store(next, Ordering::Release);
        queued
    }

    #[cold]
    fn fresh_buffer(&self) -> *mut RawBuffer {
        let buffer = RawBuffer::take(self);
        self.buffer.store(buffer, Ordering::Release);
        buffer
    }

    /// Copies out (as a segment) the events this thread published since the last collection
    /// and advances its completeness mark (writer thread, after [`writer_barrier`] at `now`).
    fn collect_published(&self, now: u64, out: &mut Vec<Segment>) {
        // In this order: when the thread is not recording, every event it stamped before `now`
        // is in the buffer read next, or in one handed over before it (queued, see
        // `hand_over`, so found by the swap of the full list that follows).
        let recording = self.recording.load(Ordering::Acquire) != 0;
        let buffer = self.buffer.load(Ordering::Acquire);
        let mut latest = None;
        if !buffer.is_null() {
            // SAFETY: the owner's current buffer: never freed while current, and only the
            // writer (this thread) recycles buffers.
            unsafe {
                let end = (*buffer).len.load(Ordering::Acquire).min(EVENTS_PER_BUFFER);
                let start = (*buffer).taken;
                if end > start {
                    out.push(Segment {
                        buffer,
                        start,
                        end,
                        full: false,
                    });
                    (*buffer).taken = end;
                    latest = RawBuffer::published(buffer, end - 1, end)
                        .first()
                        .map(|e| e.timestamp);
                }
            }
        }
        // A thread that is not recording publishes only events stamped after `now`; one that
        // is stamps its next events after its latest published one.
        let complete = if recording { latest } else { Some(now) };
        if let Some(complete) = complete {
            self.complete_until.fetch_max(complete, Ordering::Relaxed);
        }
    }

    /// In a fork child: makes the forking thread's state the only one, with an empty buffer.
    ///
    /// # Safety
    /// Call only in the child, single-threaded, after [`reset_after_fork`].
    pub unsafe fn readopt_after_fork(state: *mut ThreadState) {
        // SAFETY: single-threaded child; the parent's partial events belong to the parent's trace.
        unsafe {
            (*state).recording.store(0, Ordering::Relaxed);
            (*state).buffer.store(ptr::null_mut(), Ordering::Relaxed);
            push_state(state);
        }
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

/// Drained buffers kept for reuse (an intrusive list under a try-lock: a thread that finds it
/// taken allocates instead of waiting, and buffers are taken once per 2000 events).
struct BufferPool {
    locked: AtomicBool,
    head: UnsafeCell<*mut RawBuffer>,
    len: UnsafeCell<usize>,
}

// SAFETY: `head` and `len` are only touched under `locked`.
unsafe impl Sync for BufferPool {}

/// Pooled buffers beyond this are freed (5 MiB): enough for the writer to fall a few
/// milliseconds behind without the threads allocating (and faulting in) new buffers.
const POOL_MAX: usize = 64;

static POOL: BufferPool = BufferPool {
    locked: AtomicBool::new(false),
    head: UnsafeCell::new(ptr::null_mut()),
    len: UnsafeCell::new(0),
};

impl BufferPool {
    fn try_lock(&self) -> bool {
        !self.locked.swap(true, Ordering::Acquire)
    }

    fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// A pooled buffer, or null (none, or the pool is busy).
    fn pop(&self) -> *mut RawBuffer {
        if !self.try_lock() {
            return ptr::null_mut();
        }
        // SAFETY: under the lock; pooled buffers are live and linked through `next`.
        let buffer = unsafe {
            let buffer = *self.head.get();
            if !buffer.is_null() {
                *self.head.get() = (*buffer).next;
                *self.len.get() -= 1;
            }
            buffer
        };
        self.unlock();
        buffer
    }

    /// Pools `buffer`; false if the pool is full or busy (the caller keeps it).
    fn push(&self, buffer: *mut RawBuffer) -> bool {
        if !self.try_lock() {
            return false;
        }
        // SAFETY: under the lock; `buffer` is exclusively the caller's.
        let pooled = unsafe {
            let pooled = *self.len.get() < POOL_MAX;
            if pooled {
                (*buffer).next = *self.head.get();
                *self.head.get() = buffer;
                *self.len.get() += 1;
            }
            pooled
        };
        self.unlock();
        pooled
    }

    /// Forgets the pooled buffers (in a fork child: the lock may be held by a thread that does
    /// not exist there).
    fn reset(&self) {
        self.locked.store(false, Ordering::Release);
        // SAFETY: single-threaded fork child.
        unsafe {
            *self.head.get() = ptr::null_mut();
            *self.len.get() = 0;
        }
    }
}

/// Queues a buffer for the writer and returns how many are queued. Call it before the buffer
/// stops being its thread's current one (see [`ThreadState::hand_over`]).
fn enqueue(buffer: *mut RawBuffer) -> usize {
    let mut head = FULL.load(Ordering::Acquire);
    loop {
        // SAFETY: `buffer` is exclusively ours until the CAS publishes it.
        unsafe { (*buffer).next = head };
        match FULL.compare_exchange_weak(head, buffer, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(current) => head = current,
        }
    }
    FULL_COUNT.fetch_add(1, Ordering::Relaxed) + 1
}

/// After [`enqueue`], outside the event: wakes the writer now and then, and waits while too
/// much is queued.
fn after_enqueue(queued: usize) {
    // The writer also looks every 10 ms: waking it for every buffer would cost a syscall and a
    // context switch per 2000 events.
    if queued.is_multiple_of(WAKE_BATCH) || queued > MAX_QUEUED {
        wake_writer();
    }
    if queued > MAX_QUEUED && FULL_COUNT.load(Ordering::Relaxed) > MAX_QUEUED {
        wait_for_drain();
    }
}

/// Back-pressure: never lets an allocation storm outrun the writer without bound. Sleeps until
/// the writer has taken the queue ([`drained`] wakes the sleepers), not in a polling loop: a
/// 200 µs sleep-and-look loop cost every waiting thread 5000 wake-ups a second, and with
/// hundreds of threads those wake-ups (over a million a second, each a context switch that
/// preempted the writer) were what the program spent its time on (see ARCHITECTURE.md).
#[cold]
#[inline(never)]
fn wait_for_drain() {
    if crate::runtime::in_copy_of_traced_process(false) {
        // No writer in this process (a child made by `_Fork` or a raw `clone`): waiting for one
        // would last for ever.
        crate::runtime::leave_copy_untraced();
        return;
    }
    DRAIN_WAITERS.fetch_add(1, Ordering::SeqCst);
    let start = sys::monotonic_ns();
    let mut waited_out = false;
    loop {
        // Either this sees the writer's bump (and the count it lowered before it), or the
        // writer sees this thread among the waiters and wakes it.
        let seen = DRAINED.load(Ordering::SeqCst);
        if FULL_COUNT.load(Ordering::SeqCst) <= MAX_QUEUED {
            break;
        }
        if sys::monotonic_ns().saturating_sub(start) >= MAX_DRAIN_WAIT_NS {
            waited_out = true;
            break;
        }
        // A raw futex wait, not a cancellation point: `pthread_cancel` must not find one
        // inside `malloc`. Bounded, so that the limit above is checked however long the
        // writer takes.
        sys::futex_wait(&DRAINED, seen, DRAIN_WAIT_SLICE_NS);
    }
    DRAIN_WAITERS.fetch_sub(1, Ordering::SeqCst);
    if waited_out && crate::runtime::in_copy_of_traced_process(true) {
        crate::runtime::leave_copy_untraced();
    }
}

/// The writer took queued buffers and lowered [`FULL_COUNT`]: wakes the threads waiting in
/// [`wait_for_drain`] (a system call only when there are some).
fn drained() {
    DRAINED.fetch_add(1, Ordering::SeqCst);
    if DRAIN_WAITERS.load(Ordering::SeqCst) != 0 {
        sys::futex_wake(&DRAINED);
    }
}

/// Frees the queued buffers of a process no writer drains (see
/// [`crate::runtime::leave_copy_untraced`]; tracing is already off there).
pub fn discard_queued() {
    let mut full = FULL.swap(ptr::null_mut(), Ordering::AcqRel);
    while !full.is_null() {
        // SAFETY: taken from the queue, so exclusively ours: its owner no longer writes it, and
        // this process has no writer to read it.
        unsafe {
            let next = (*full).next;
            sys::__libc_free(full as *mut core::ffi::c_void);
            full = next;
        }
        crate::alloc::account(core::mem::size_of::<RawBuffer>(), false);
        FULL_COUNT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Tells the writer there is work (async-signal-safe): a futex wake only if it sleeps.
pub fn wake_writer() {
    // Either the writer sees the new count before it sleeps, or this sees it sleeping.
    WAKE.fetch_add(1, Ordering::SeqCst);
    if WRITER_SLEEPING.load(Ordering::SeqCst) {
        sys::futex_wake(&WAKE);
    }
}

/// Sleeps the writer until [`wake_writer`] or `timeout_ns`, unless woken since it read `seen`
/// from `WAKE`.
pub fn writer_sleep(seen: u32, timeout_ns: u64) {
    WRITER_SLEEPING.store(true, Ordering::SeqCst);
    if WAKE.load(Ordering::SeqCst) == seen {
        sys::futex_wait(&WAKE, seen, timeout_ns);
    }
    WRITER_SLEEPING.store(false, Ordering::Relaxed);
}

/// Collects the queued full buffers (writer only). With `collect = Some(now)` it first copies
/// out the published part of every thread's current buffer, which must follow
/// [`writer_barrier`]`(now)`. Returns the timestamp before which every event is now collected:
/// the minimum over threads of their completeness marks.
pub fn drain_all(out: &mut Vec<Segment>, collect: Option<u64>) -> u64 {
    let first = out.len();
    if let Some(now) = collect {
        for_each_thread(|s| s.collect_published(now, out));
    }
    // Swapped after the completeness marks: the buffers they promise are already queued.
    let partials = out.len();
    let mut full = FULL.swap(ptr::null_mut(), Ordering::AcqRel);
    let took = !full.is_null();
    while !full.is_null() {
        // SAFETY: taken from the queue, exclusively ours now; its owner published `len`
        // before queueing it, and owners are never freed.
        unsafe {
            let end = (*full).len.load(Ordering::Acquire);
            // The thread's events up to this buffer's last one are all queued (in order) or
            // already collected.
            if let Some(last) = RawBuffer::published(full, end.saturating_sub(1), end).first() {
                (*(*full).owner)
                    .complete_until
                    .fetch_max(last.timestamp, Ordering::Relaxed);
            }
            // A buffer handed over since its partial collection just above: one segment for
            // all of it, so that it is recycled only once every event of it is copied.
            match out[first..partials]
                .iter_mut()
                .find(|segment| segment.buffer == full)
            {
                Some(segment) => {
                    segment.end = end;
                    segment.full = true;
                }
                None => out.push(Segment {
                    buffer: full,
                    start: (*full).taken,
                    end,
                    full: true,
                }),
            }
            FULL_COUNT.fetch_sub(1, Ordering::Relaxed);
            full = (*full).next;
        }
    }
    if took {
        drained();
    }
    let mut complete = u64::MAX;
    for_each_thread(|s| complete = complete.min(s.complete_until.load(Ordering::Relaxed)));
    // Oldest first: full buffers in the order they were queued (the list is LIFO), then the
    // partial ones. A single thread's events then usually come out already sorted.
    out[partials..].reverse();
    out[first..].rotate_left(partials - first);
    complete
}

/// Runs `visit` on every thread state ever created.
fn for_each_thread(mut visit: impl FnMut(&ThreadState)) {
    let mut state = THREADS.load(Ordering::Acquire);
    while !state.is_null() {
        // SAFETY: states are never freed.
        let s = unsafe { &*state };
        visit(s);
        // SAFETY: `next` is written once before the state is published.
        state = unsafe { *s.next.get() };
    }
}

/// Makes every thread's `recording` flag and clock reads consistent with the writer's `now`
/// (see the module documentation). Writer thread only, before `drain_all(.., Some(now))`.
pub fn writer_barrier(now: u64) {
    WRITER_CLOCK.store(now, Ordering::SeqCst);
    if PRODUCERS_FENCE.load(Ordering::Relaxed) || !sys::membarrier() {
        PRODUCERS_FENCE.store(true, Ordering::SeqCst);
        sys::full_fence();
    }
}

/// Prepares [`writer_barrier`] (when the writer starts): registers for expedited membarrier, or
/// makes the threads fence instead.
pub fn prepare_writer_barrier() {
    if !sys::register_membarrier() {
        PRODUCERS_FENCE.store(true, Ordering::SeqCst);
    }
}

/// Dead stack ranges of exited threads whose block no live thread has reused (glibc caches thread
/// stacks): their contents are stale, so the leak scan does not treat them as roots, like
/// memcheck, for which memory below a stack pointer is inaccessible. A range counts only while
/// its block is still there: `still_descriptor(tp)` must say that the thread's descriptor is
/// still at its thread pointer. glibc unmaps stacks its cache has no room for, and a later
/// stack mapped over the addresses had its own descriptor (its DTV pointer among others)
/// inside the old range: in a program creating threads in a loop, the DTVs of cached stacks
/// read as definitely lost in most runs.
pub fn dead_thread_stacks(still_descriptor: impl Fn(u64) -> bool) -> Vec<(u64, u64)> {
    let mut dead = Vec::new();
    for_each_thread(|s| {
        if s.exited.load(Ordering::Acquire) {
            let (low, high) = (
                s.dead_stack.0.load(Ordering::Relaxed),
                s.dead_stack.1.load(Ordering::Relaxed),
            );
            let descriptor = s.descriptor.load(Ordering::Relaxed);
            if low < high && still_descriptor(descriptor) {
                dead.push((low, high));
            }
        }
    });
    let live_tops = live_thread_pointers();
    dead.retain(|&(low, high)| !live_tops.iter().any(|&top| low < top && top <= high));
    dead
}

/// The tops of the stacks of the traced threads that have not exited: their thread pointers
/// (glibc puts a thread's descriptor at the top of its stack block), and the top of the process
/// stack for the main thread (once known).
pub fn live_thread_pointers() -> Vec<u64> {
    let mut tops = Vec::new();
    for_each_thread(|s| {
        let high = s.bounds().high;
        if !s.exited.load(Ordering::Acquire) && high != 0 {
            tops.push(high);
        }
    });
    tops
}

/// Forgets every thread state and queued buffer (in a fork child: those threads do not exist).
pub fn reset_after_fork() {
    THREADS.store(ptr::null_mut(), Ordering::Release);
    SEVERAL_THREADS.store(false, Ordering::Release);
    POOL.reset();
    FULL.store(ptr::null_mut(), Ordering::Release);
    FULL_COUNT.store(0, Ordering::Release);
    DRAIN_WAITERS.store(0, Ordering::Release);
}
