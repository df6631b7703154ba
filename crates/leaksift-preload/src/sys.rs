//! Thin FFI layer: glibc's real allocator, the C thread-locals, raw syscalls and clocks.
//!
//! Everything here is callable from inside an allocation hook: no allocation, no locks, no
//! lazily-bound symbol that could recurse into the hooks.

use core::ffi::c_void;

unsafe extern "C" {
    // glibc's public allocator entry points (GLIBC_2.2.5): they never call back into `malloc`.
    pub fn __libc_malloc(size: usize) -> *mut c_void;
    pub fn __libc_calloc(count: usize, size: usize) -> *mut c_void;
    pub fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    pub fn __libc_free(ptr: *mut c_void);
    pub fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    pub fn __libc_valloc(size: usize) -> *mut c_void;
    pub fn __libc_pvalloc(size: usize) -> *mut c_void;

    /// The process environment (null until libc set it up).
    pub static environ: *const *const core::ffi::c_char;

    // src/tls.c: initial-exec thread-locals (the portable path; x86-64 uses `fast_tls`).
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn leaksift_enter() -> i32;
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn leaksift_leave();
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn leaksift_get_thread_state() -> *mut c_void;
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn leaksift_set_thread_state(state: *mut c_void);
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn leaksift_tls_address() -> *mut c_void;
}

/// x86-64: the C block `{ thread_state, busy }` reached with one %fs-relative instruction per
/// access, instead of a call into C: the offset from the thread pointer is the same in every
/// thread for initial-exec TLS, so it is computed once.
#[cfg(target_arch = "x86_64")]
mod fast_tls {
    use core::sync::atomic::{AtomicI64, Ordering};

    /// Offset of the block from the thread pointer (0: not computed yet; it is never 0).
    static OFFSET: AtomicI64 = AtomicI64::new(0);
    const BUSY: i64 = 8;

    #[inline(always)]
    fn offset() -> i64 {
        let offset = OFFSET.load(Ordering::Relaxed);
        if offset != 0 {
            offset
        } else {
            compute_offset()
        }
    }

    #[cold]
    fn compute_offset() -> i64 {
        // SAFETY: returns the address of the calling thread's block.
        let block = unsafe { super::leaksift_tls_address() } as i64;
        let thread_pointer: i64;
        // SAFETY: reads the TCB self-pointer at %fs:0 (x86-64 TLS ABI).
        unsafe {
            core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) thread_pointer, options(nostack, readonly, preserves_flags))
        };
        let offset = block.wrapping_sub(thread_pointer);
        OFFSET.store(offset, Ordering::Relaxed);
        offset
    }

    #[inline(always)]
    pub fn busy() -> u32 {
        let value: u32;
        // SAFETY: the calling thread's own `busy` word.
        unsafe {
            core::arch::asm!("mov {v:e}, dword ptr fs:[{o}]", o = in(reg) offset() + BUSY, v = out(reg) value, options(nostack, readonly, preserves_flags))
        };
        value
    }

    #[inline(always)]
    pub fn set_busy(value: u32) {
        // SAFETY: the calling thread's own `busy` word.
        unsafe {
            core::arch::asm!("mov dword ptr fs:[{o}], {v:e}", o = in(reg) offset() + BUSY, v = in(reg) value, options(nostack, preserves_flags))
        };
    }

    #[inline(always)]
    pub fn thread_state() -> *mut core::ffi::c_void {
        let value: *mut core::ffi::c_void;
        // SAFETY: the calling thread's own `thread_state` word.
        unsafe {
            core::arch::asm!("mov {v}, qword ptr fs:[{o}]", o = in(reg) offset(), v = out(reg) value, options(nostack, readonly, preserves_flags))
        };
        value
    }

    #[inline(always)]
    pub fn set_thread_state(value: *mut core::ffi::c_void) {
        // SAFETY: the calling thread's own `thread_state` word.
        unsafe {
            core::arch::asm!("mov qword ptr fs:[{o}], {v}", o = in(reg) offset(), v = in(reg) value, options(nostack, preserves_flags))
        };
    }
}

/// Held while the current thread is inside the tracer; allocations made meanwhile (by libc on our
/// behalf, by `dlsym`, by the writer thread) go straight to glibc untraced.
pub struct ReentryGuard(());

impl ReentryGuard {
    /// `None` when the thread is already inside the tracer.
    #[inline(always)]
    pub fn enter() -> Option<ReentryGuard> {
        #[cfg(target_arch = "x86_64")]
        let entered = fast_tls::busy() == 0 && {
            fast_tls::set_busy(1);
            true
        };
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: touches only the calling thread's initial-exec TLS word.
        let entered = unsafe { leaksift_enter() } != 0;
        // Not `then_some`: it would build (and, when re-entrant, drop) a guard, clearing the flag.
        if entered {
            Some(ReentryGuard(()))
        } else {
            None
        }
    }

    /// Marks the calling thread as permanently inside the tracer (the writer thread).
    pub fn enter_forever() {
        core::mem::forget(ReentryGuard::enter());
    }
}

impl Drop for ReentryGuard {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        fast_tls::set_busy(0);
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: clears the calling thread's TLS word set by `enter`.
        unsafe {
            leaksift_leave()
        }
    }
}

/// The calling thread's tracer state pointer (null until its first traced event).
#[inline(always)]
pub fn thread_state_ptr() -> *mut c_void {
    #[cfg(target_arch = "x86_64")]
    return fast_tls::thread_state();
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: reads the calling thread's initial-exec TLS word.
    unsafe {
        leaksift_get_thread_state()
    }
}

#[inline(always)]
pub fn set_thread_state_ptr(state: *mut c_void) {
    #[cfg(target_arch = "x86_64")]
    fast_tls::set_thread_state(state);
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: writes the calling thread's initial-exec TLS word.
    unsafe {
        leaksift_set_thread_state(state)
    }
}

/// Anonymous private mapping through the raw syscall (never through a hooked `mmap`).
pub fn map_anonymous(len: usize) -> *mut u8 {
    // SAFETY: a fresh anonymous mapping has no aliasing requirements; failure returns MAP_FAILED.
    let ptr = unsafe {
        libc::syscall(
            libc::SYS_mmap,
            0usize,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1i32,
            0usize,
        )
    };
    if ptr == -1 || ptr == 0 {
        core::ptr::null_mut()
    } else {
        ptr as *mut u8
    }
}

/// Unmaps a mapping made by [`map_anonymous`].
///
/// # Safety
/// `ptr..ptr+len` must be a mapping made by `map_anonymous` that nothing refers to any more.
pub unsafe fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: per the function contract.
    unsafe { libc::syscall(libc::SYS_munmap, ptr as usize, len) };
}

/// Monotonic nanoseconds (vDSO clock_gettime, no syscall).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Cheap per-event timestamp: the TSC on x86-64 (constant and synchronised across cores on the
/// machines we target), the monotonic clock elsewhere. Converted to nanoseconds by the writer.
/// Not reordered by the compiler across memory accesses (an `asm!` without `nomem`); the CPU may
/// still read the TSC early, which [`full_fence`] prevents where it matters.
#[inline(always)]
pub fn timestamp() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let (low, high): (u32, u32);
        // SAFETY: rdtsc reads the time-stamp counter into edx:eax and touches nothing else.
        unsafe {
            core::arch::asm!("rdtsc", out("eax") low, out("edx") high, options(nostack, preserves_flags))
        };
        (u64::from(high) << 32) | u64::from(low)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        monotonic_ns()
    }
}

/// Hints the CPU to fetch the cache line at `address` in a writable state (`prefetchw`; a no-op
/// elsewhere). Never faults, whatever the address.
#[inline(always)]
pub fn prefetch_for_write(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no architectural effect and never faults.
    unsafe {
        core::arch::asm!("prefetchw [{}]", in(reg) address, options(nostack, readonly, preserves_flags))
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// A timestamp read only after every earlier instruction completed, and before any later one
/// starts (the writer's `now`: see `buffers`).
pub fn fenced_timestamp() -> u64 {
    full_fence();
    let now = timestamp();
    full_fence();
    now
}

/// A full memory barrier after which later instructions (including a TSC read) start only once
/// every earlier one completed: `mfence; lfence` on x86-64.
#[inline]
pub fn full_fence() {
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: lfence has no effect besides ordering.
    unsafe {
        core::arch::x86_64::_mm_lfence()
    };
}

/// `membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)`: whether [`membarrier`] will work.
pub fn register_membarrier() -> bool {
    const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
    // SAFETY: a plain syscall with integer arguments.
    unsafe { libc::syscall(libc::SYS_membarrier, REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 }
}

/// `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: a full memory barrier on every running
/// thread of the process (Linux 4.14+, after [`register_membarrier`]). Returns false when
/// unavailable.
pub fn membarrier() -> bool {
    const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    // SAFETY: a plain syscall with integer arguments.
    unsafe { libc::syscall(libc::SYS_membarrier, PRIVATE_EXPEDITED, 0, 0) == 0 }
}

/// Sleeps on `word` until it differs from `expected`, a wake, or `timeout_ns`. A raw system
/// call: unlike glibc's `usleep` and `nanosleep`, not a cancellation point, so a
/// `pthread_cancel`led thread is never cancelled inside the tracer (`malloc` has none).
pub fn futex_wait(word: &core::sync::atomic::AtomicU32, expected: u32, timeout_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as i64,
        tv_nsec: (timeout_ns % 1_000_000_000) as i64,
    };
    // SAFETY: `word` is a live aligned u32; FUTEX_WAIT only reads it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        )
    };
}

/// Wakes every waiter on `word` (async-signal-safe).
pub fn futex_wake(word: &core::sync::atomic::AtomicU32) {
    // SAFETY: `word` is a live aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}

/// Ends the calling thread only (the `exit` system call, not `exit_group`) with `code`,
/// skipping every cleanup of glibc's. When it is the process's last thread, `code` is the
/// process's exit status.
pub fn exit_thread(code: i32) -> ! {
    loop {
        // SAFETY: ends this thread; nothing of it is used afterwards.
        unsafe { libc::syscall(libc::SYS_exit, code) };
    }
}

pub fn gettid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

pub fn getpid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::syscall(libc::SYS_getpid) as u32 }
}

/// Path of the calling thread's `/proc` file `name` (`maps`, `statm`, `exe`): under
/// `/proc/thread-self`, because once `main` has ended with `pthread_exit` the process's leader
/// is a zombie and `/proc/self/maps` reads empty, `/proc/self/exe` unreadable. `/proc/self` on
/// kernels before 3.17, which lack `thread-self`.
pub fn own_proc_file(name: &str) -> String {
    if std::path::Path::new("/proc/thread-self").exists() {
        format!("/proc/thread-self/{name}")
    } else {
        format!("/proc/self/{name}")
    }
}
