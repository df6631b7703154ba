//! Process-wide tracer state: lazy core initialisation from the first hook, the constructor that
//! looks up the functions the hooks forward to, reads the configuration and starts the writer
//! thread, thread states, fork and exit handling.
//!
//! Configuration comes from the environment set by `leaksift record`:
//! `LEAKSIFT_OUTPUT` (trace path; unset = tracing off), `LEAKSIFT_MMAP=1`, `LEAKSIFT_FOLLOW_FORK=1`,
//! `LEAKSIFT_CONTROL` (a path: creating it requests a leak scan), `LEAKSIFT_SCAN_SIGNAL` (a signal
//! number whose delivery requests a leak scan; unset = no handler installed). Paths are kept as
//! the environment's bytes, never decoded: a trace path need not be UTF-8.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use std::ffi::{CStr, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::buffers::{self, ThreadState};
use crate::stacks::{StackTable, UNKNOWN_STACK};
use crate::sys::{self, ReentryGuard};
use crate::unwind::{self, StackBounds};
use crate::{modules, writer};

const STATE_UNINIT: u8 = 0;
const STATE_ACTIVE: u8 = 1;
const STATE_OFF: u8 = 2;
/// The exit scan runs: the allocation calls of the program's other threads wait at the exit
/// gate ([`exit_gate`]) until it ends, so the heap stands still while it is read.
const STATE_PAUSED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(STATE_UNINIT);
/// 1 while the exit gate is closed (a futex word).
static EXIT_GATE: AtomicU32 = AtomicU32::new(0);
/// How long a thread waits at the exit gate before it opens the gate for every thread: a thread
/// held there could hold a lock the writer needs, and the scan must not wait on it for ever (the
/// writer avoids the loader's locks, the one case found: `dlclose` frees while holding them).
/// A scan that takes longer (a heap of many gigabytes) then goes on with the other threads
/// running, as without the gate: their frees meanwhile still leave its result.
const EXIT_GATE_LIMIT_NS: u64 = 2_000_000_000;
static INIT_LOCK: AtomicBool = AtomicBool::new(false);
static CONSTRUCTED: AtomicBool = AtomicBool::new(false);
static TRACE_MMAP: AtomicBool = AtomicBool::new(false);
static STACKS: AtomicPtr<StackTable> = AtomicPtr::new(core::ptr::null_mut());
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

/// Requests to the writer thread.
pub static SCAN_REQUESTED: AtomicBool = AtomicBool::new(false);
pub static EXIT_REQUESTED: AtomicBool = AtomicBool::new(false);
pub static EXIT_STATUS: AtomicU32 = AtomicU32::new(0);
/// Stack pointer of the exit handler's caller in the thread that called `exit` (the scan reads
/// its stack from there up).
pub static EXIT_SP: AtomicU64 = AtomicU64::new(0);
/// rbx, rbp and r12–r15 as the exit handler received them (the scan reads them as roots, as
/// memcheck reads registers).
pub static EXIT_REGISTERS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
/// Set by the writer when the exit scan and the final flush are done.
pub static EXIT_DONE: AtomicU32 = AtomicU32::new(0);
pub static WRITER_RUNNING: AtomicBool = AtomicBool::new(false);
/// Process id of the traced process, set before its writer starts: `_exit` in a `vfork` child,
/// which shares this memory, must not start the parent's exit scan.
static TRACED_PID: AtomicU32 = AtomicU32::new(0);
/// A page of the tracer's own whose first word is 1 in the process the writer runs in, and 0 in
/// any process that got a copy of its memory: the page is `MADV_WIPEONFORK`, which the kernel
/// honours whenever it copies the address space (`fork`, `_Fork`, `syscall(SYS_fork)`, a raw
/// `clone` without `CLONE_VM`), atfork handlers or not, and not for a `vfork` child, which
/// shares the memory (and whose events the parent's writer still takes). Null when the kernel
/// refused the advice (before 4.14): [`in_copy_of_traced_process`] then compares pids.
static WRITER_PROCESS_MARK: AtomicPtr<AtomicU32> = AtomicPtr::new(core::ptr::null_mut());
/// Claimed by the first exit path that runs the exit scan (`exit`'s handlers or `_exit` called
/// from one of them), so the scan runs once.
static EXIT_SCAN_CLAIMED: AtomicBool = AtomicBool::new(false);
pub static WRITER_TID: AtomicU32 = AtomicU32::new(0);
/// Flush requests (before exec): the writer writes everything pending (and the exec record) and
/// sets `FLUSH_DONE` to the request count it served.
pub static FLUSH_REQUESTED: AtomicU32 = AtomicU32::new(0);
pub static FLUSH_DONE: AtomicU32 = AtomicU32::new(0);
/// Set by an exec hook before its flush request: the writer ends the trace with an exec record
/// and then writes nothing more until the hook clears it (the exec failed and the program goes
/// on), so that nothing the other threads do meanwhile lands after the record.
pub static EXEC_PENDING: AtomicBool = AtomicBool::new(false);

/// Whether allocation events are being recorded. Initialises the core on first use.
#[inline(always)]
pub fn tracing() -> bool {
    match STATE.load(Ordering::Relaxed) {
        STATE_ACTIVE => true,
        STATE_OFF => false,
        STATE_PAUSED => exit_gate(),
        _ => init_core(),
    }
}

/// Closes the exit gate (the writer, as the exit scan begins): from now on a traced thread's
/// allocation call waits in [`exit_gate`] until [`stop_tracing`] opens it, as memcheck runs one
/// thread at a time. Without it, threads still allocating at exit changed the heap while it was
/// read, and the blocks they cycled were in no class (memcheck: still reachable).
pub fn close_exit_gate() {
    EXIT_GATE.store(1, Ordering::Release);
    let _ = STATE.compare_exchange(
        STATE_ACTIVE,
        STATE_PAUSED,
        Ordering::AcqRel,
        Ordering::Acquire,
    );
}

/// Whether the exit gate is closed: the writer then calls nothing that takes the loader's locks
/// (`dl_iterate_phdr`), which a thread held at the gate inside `dlopen` or `dlclose` may hold.
pub fn exit_gate_closed() -> bool {
    EXIT_GATE.load(Ordering::Acquire) != 0
}

/// Where [`tracing`] sends a thread while the exit scan runs: it waits there (`free` before
/// the block is freed, `malloc` after the block was made and before it is recorded: either way
/// the heap the scan reads does not change) and then goes on untraced. The writer, and any
/// thread already inside the tracer, passes at once; so does a copy of the process made without
/// fork's handlers while the gate was closed, which has no writer to open it.
#[cold]
fn exit_gate() -> bool {
    if ReentryGuard::enter().is_none() {
        return false;
    }
    if in_copy_of_traced_process(false) {
        leave_copy_untraced();
        return false;
    }
    let start = sys::monotonic_ns();
    while EXIT_GATE.load(Ordering::Acquire) != 0 {
        if sys::monotonic_ns().saturating_sub(start) > EXIT_GATE_LIMIT_NS {
            EXIT_GATE.store(0, Ordering::Release);
            sys::futex_wake(&EXIT_GATE);
            break;
        }
        sys::futex_wait(&EXIT_GATE, 1, 100_000_000);
    }
    STATE.load(Ordering::Acquire) == STATE_ACTIVE
}

pub fn tracing_mmap() -> bool {
    TRACE_MMAP.load(Ordering::Relaxed) && tracing()
}

/// Stops recording (fork child without `--follow-fork`, after the exit scan, or on setup failure).
pub fn stop_tracing() {
    STATE.store(STATE_OFF, Ordering::Release);
    if EXIT_GATE.swap(0, Ordering::AcqRel) != 0 {
        sys::futex_wake(&EXIT_GATE);
    }
}

/// Maps the stack table. Safe in any hook: raw mmap syscalls only.
#[cold]
fn init_core() -> bool {
    while INIT_LOCK.swap(true, Ordering::Acquire) {
        core::hint::spin_loop();
    }
    if STATE.load(Ordering::Acquire) == STATE_UNINIT && untraced_by_environment() {
        // A process that inherited LD_PRELOAD without LEAKSIFT_OUTPUT: stay out of the way.
        STATE.store(STATE_OFF, Ordering::Release);
    }
    if STATE.load(Ordering::Acquire) == STATE_UNINIT {
        match StackTable::new() {
            Some(table) => {
                let table = Box::into_raw(Box::new(table));
                STACKS.store(table, Ordering::Release);
                STATE.store(STATE_ACTIVE, Ordering::Release);
            }
            None => STATE.store(STATE_OFF, Ordering::Release),
        }
    }
    INIT_LOCK.store(false, Ordering::Release);
    STATE.load(Ordering::Acquire) == STATE_ACTIVE
}

/// True when the environment is readable and names no output (allocation-free: usable in a hook).
fn untraced_by_environment() -> bool {
    // SAFETY: reading the `environ` pointer itself; null before libc set it up.
    let ready = unsafe { !sys::environ.is_null() };
    // SAFETY: getenv with a NUL-terminated name; it allocates nothing.
    let value = unsafe { libc::getenv(c"LEAKSIFT_OUTPUT".as_ptr()) };
    // SAFETY: getenv returned a NUL-terminated string when non-null.
    ready && (value.is_null() || unsafe { *value } == 0)
}

pub fn stacks() -> Option<&'static StackTable> {
    let table = STACKS.load(Ordering::Acquire);
    // SAFETY: the table is never freed once published.
    (!table.is_null()).then(|| unsafe { &*table })
}

#[inline(always)]
pub fn intern_stack(frames: &[u64]) -> u32 {
    stacks().map_or(UNKNOWN_STACK, |t| t.intern(frames, crate::stacks::epoch()))
}

pub fn page_size() -> usize {
    PAGE_SIZE.load(Ordering::Relaxed)
}

pub fn set_errno(value: c_int) {
    // SAFETY: errno is thread-local and always valid.
    unsafe { *libc::__errno_location() = value };
}

/// The calling thread's state, created on its first event. Call with the re-entry guard held.
#[inline(always)]
pub fn current_thread() -> Option<&'static ThreadState> {
    let ptr = sys::thread_state_ptr() as *mut ThreadState;
    if !ptr.is_null() {
        // SAFETY: thread states are never freed.
        return Some(unsafe { &*ptr });
    }
    create_thread_state()
}

#[cold]
fn create_thread_state() -> Option<&'static ThreadState> {
    // Never pthread_getattr_np here: it may be what called malloc, holding the thread's lock.
    let (bounds, cache) = if CONSTRUCTED.load(Ordering::Acquire) && !is_main_thread() {
        // glibc puts the thread descriptor at the top of the thread's stack block.
        let top = thread_pointer();
        let bounds = StackBounds {
            low: top.saturating_sub(MAX_THREAD_STACK),
            high: top,
        };
        (bounds, unwind::take_thread_unwinder())
    } else {
        (StackBounds::default(), core::ptr::null_mut())
    };
    let state = ThreadState::create(bounds, cache);
    sys::set_thread_state_ptr(state as *mut c_void);
    let key = THREAD_EXIT_KEY.load(Ordering::Acquire);
    if key != u32::MAX {
        // SAFETY: a key created in the constructor; the value is the never-freed state.
        unsafe { libc::pthread_setspecific(key, state as *const c_void) };
    }
    // SAFETY: never freed.
    Some(unsafe { &*state })
}

/// Largest thread stack unwound through (default stacks are 8 MiB).
const MAX_THREAD_STACK: u64 = 256 << 20;

/// pthread key whose destructor runs when a traced thread exits (`u32::MAX` until created).
static THREAD_EXIT_KEY: AtomicU32 = AtomicU32::new(u32::MAX);

/// A traced thread is exiting: give its unwinder to the next new thread and its buffer to the
/// writer. Later allocations in this thread (other TLS destructors) still get recorded,
/// with one-frame stacks.
extern "C" fn thread_exiting(state: *mut c_void) {
    let _guard = ReentryGuard::enter();
    // SAFETY: the value set in `create_thread_state`: a never-freed state owned by this thread.
    let state = unsafe { &*(state as *const ThreadState) };
    // Below this point the stack holds only returned frames: stale, like memcheck's view of
    // memory below the stack pointer. The thread's TLS and descriptor above it stay roots.
    let marker = 0u8;
    let below_sp = (current_stack_block().0, &marker as *const u8 as u64);
    // SAFETY: we are the owning thread.
    let unwinder = unsafe { state.retire(below_sp, thread_pointer()) };
    unwind::give_back_thread_unwinder(unwinder);
}

fn is_main_thread() -> bool {
    // SAFETY: plain syscalls without arguments.
    unsafe { libc::syscall(libc::SYS_gettid) == libc::syscall(libc::SYS_getpid) }
}

/// The thread pointer: glibc places a thread's descriptor (and static TLS) at the top of its
/// stack block, so for threads other than the main one the stack lies below it.
fn thread_pointer() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let tp: u64;
        // SAFETY: reads the TCB self-pointer at %fs:0 (x86-64 TLS ABI).
        unsafe {
            core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags))
        };
        tp
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// The calling thread's stack block `[low, high)` from pthread. Never from an allocation hook
/// (it takes the thread's own lock, and may be what called malloc); for the main thread it reads
/// /proc/self/maps (constructor only).
fn current_stack_block() -> (u64, u64) {
    // SAFETY: standard pthread attribute calls on the current thread with a local attr object.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return (0, 0);
        }
        let mut addr: *mut c_void = core::ptr::null_mut();
        let mut size: usize = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if ok {
            (addr as u64, addr as u64 + size as u64)
        } else {
            (0, 0)
        }
    }
}

/// The main thread's stack bounds (constructor only).
fn main_stack_bounds() -> StackBounds {
    let (low, high) = current_stack_block();
    StackBounds { low, high }
}

/// A function (or object) of another library that this one uses, looked up once by
/// [`resolve_symbols`].
pub struct Forward {
    name: &'static CStr,
    resolved: AtomicPtr<c_void>,
}

impl Forward {
    const fn new(name: &'static CStr) -> Forward {
        Forward {
            name,
            resolved: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Its address, if it was found.
    pub fn get(&self) -> Option<*mut c_void> {
        resolve_symbols();
        let ptr = self.resolved.load(Ordering::Acquire);
        (!ptr.is_null()).then_some(ptr)
    }
}

/// glibc's `dlopen`, which the `dlopen` hook wraps.
pub static NEXT_DLOPEN: Forward = Forward::new(c"dlopen");
/// glibc's `dlclose`.
pub static NEXT_DLCLOSE: Forward = Forward::new(c"dlclose");
/// glibc's `exit`.
pub static NEXT_EXIT: Forward = Forward::new(c"exit");
/// glibc's `quick_exit`.
pub static NEXT_QUICK_EXIT: Forward = Forward::new(c"quick_exit");
/// glibc's `__libc_start_main`.
pub static NEXT_LIBC_START_MAIN: Forward = Forward::new(c"__libc_start_main");
/// glibc's `execvpe` (it searches `PATH`).
pub static NEXT_EXECVPE: Forward = Forward::new(c"execvpe");
/// glibc's `fexecve`.
pub static NEXT_FEXECVE: Forward = Forward::new(c"fexecve");
/// glibc's count of running threads, an `unsigned int` (see `writer::adjust_thread_count`).
pub static THREAD_COUNT: Forward = Forward::new(c"__nptl_nthreads");
/// `aligned_alloc` of the hooks' allocator (its argument checks differ between glibc versions).
pub static ALIGNED_ALLOC: Forward = Forward::new(c"aligned_alloc");
/// `malloc_usable_size` of the hooks' allocator.
pub static MALLOC_USABLE_SIZE: Forward = Forward::new(c"malloc_usable_size");

/// The definitions after this library (`dlsym(RTLD_NEXT)`): glibc's, for the calls the hooks
/// wrap.
static NEXT: [&Forward; 7] = [
    &NEXT_DLOPEN,
    &NEXT_DLCLOSE,
    &NEXT_EXIT,
    &NEXT_QUICK_EXIT,
    &NEXT_LIBC_START_MAIN,
    &NEXT_EXECVPE,
    &NEXT_FEXECVE,
];

/// Set once every [`Forward`] has been looked up.
static SYMBOLS_RESOLVED: AtomicBool = AtomicBool::new(false);

/// Looks every [`Forward`] up, once: from the constructor, before the program runs, or from the
/// first hook that needs one if that comes earlier (another library's constructor). Never
/// later, because glibc's `dlsym` and `dlopen` replace the calling thread's `dlerror` state:
/// they free the message of the program's last failed call (still reachable from that state,
/// as memcheck sees it). Looked up lazily, under the re-entry guard, by the hooks of `exit`,
/// `dlopen` and the exec calls (and `__gnu_cxx::__freeres` at exit), that free went
/// unrecorded, and the message ended the trace "definitely lost" (any C program that made a
/// `dlsym` fail, at its exit).
///
/// The `dlsym` lookups run without the guard, so that such a free (only possible in that early
/// case: a message of the constructor that called the hook) is recorded; they allocate nothing
/// that stays. The allocator's library is then opened under the guard: `dlopen` keeps the
/// dependency list it builds for it, which is the tracer's (the thread has no message left to
/// free by then). A failed lookup leaves a message of its own, which the program's `dlerror`
/// would return: it is taken and dropped again ([`drop_dlerror_message`]).
pub fn resolve_symbols() {
    if SYMBOLS_RESOLVED.load(Ordering::Acquire) {
        return;
    }
    let next = look_up(Some(libc::RTLD_NEXT), &NEXT);
    let default = look_up(Some(libc::RTLD_DEFAULT), &[&THREAD_COUNT]);
    if !(next && default) {
        drop_dlerror_message();
    }
    {
        let _guard = ReentryGuard::enter();
        let allocator = look_up(allocator_library(), &[&ALIGNED_ALLOC, &MALLOC_USABLE_SIZE]);
        // Where the C++ operators go, and the C++ runtime's `operator new`s (`cxx`).
        let cxx_runtime = crate::cxx::resolve_operators();
        if !(allocator && cxx_runtime) {
            drop_dlerror_message();
        }
    }
    SYMBOLS_RESOLVED.store(true, Ordering::Release);
}

/// Looks `forwards` up with `dlsym` in `handle` (none: nothing is found). Whether all were found.
fn look_up(handle: Option<*mut c_void>, forwards: &[&Forward]) -> bool {
    let mut found = true;
    for forward in forwards {
        let ptr = handle.map_or(core::ptr::null_mut(), |handle| {
            // SAFETY: dlsym with a NUL-terminated name, and RTLD_NEXT, RTLD_DEFAULT or a handle
            // glibc's dlopen returned.
            unsafe { libc::dlsym(handle, forward.name.as_ptr()) }
        });
        found &= !ptr.is_null();
        forward.resolved.store(ptr, Ordering::Release);
    }
    found
}

/// Clears the calling thread's `dlerror` state: the first `dlerror` call formats the pending
/// message, the second frees it and the state. Nothing happens when no message is pending.
fn drop_dlerror_message() {
    // SAFETY: dlerror takes no arguments; the strings it returns are not used.
    unsafe {
        libc::dlerror();
        libc::dlerror();
    }
}

/// The library whose `__libc_free` the hooks call (glibc's, or an allocator that overrides
/// glibc's internal entry points too, such as tcmalloc), opened with [`loaded_library`]. None if
/// it cannot be told.
///
/// Its `aligned_alloc` and `malloc_usable_size` are the ones the hooks forward to, not those
/// `dlsym(RTLD_NEXT)` finds: an allocator loaded after this library but serving none of the
/// hooks' blocks (jemalloc preloaded or linked: the hooks take its `malloc` over) also defines
/// them, and its versions would hand out, or read, a block the hooks' `free` then gives to
/// another allocator: a crash.
fn allocator_library() -> Option<*mut c_void> {
    // SAFETY: dladdr fills `info` for an address inside a loaded object (the function the hooks
    // call), whose path stays valid while the object is loaded (for ever: it is never unloaded).
    let path = unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        let free_fn = sys::__libc_free as unsafe extern "C" fn(*mut c_void);
        if libc::dladdr(free_fn as *const c_void, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        CStr::from_ptr(info.dli_fname)
    };
    loaded_library(path)
}

/// The handle of `library` (a file name or path) if it is loaded, opened with `RTLD_NOLOAD`
/// through glibc's `dlopen` (not this library's hook) and left open: it is never unloaded. Call
/// it under the re-entry guard from [`resolve_symbols`]: `dlopen` keeps a dependency list it
/// builds (the tracer's), and a failed lookup leaves a `dlerror` message to drop.
pub fn loaded_library(library: &CStr) -> Option<*mut c_void> {
    type DlopenFn = unsafe extern "C" fn(*const libc::c_char, c_int) -> *mut c_void;
    let dlopen = NEXT_DLOPEN.resolved.load(Ordering::Acquire);
    if dlopen.is_null() {
        return None;
    }
    // SAFETY: glibc's dlopen, this signature; RTLD_NOLOAD only looks the object up.
    let handle = unsafe {
        core::mem::transmute::<*mut c_void, DlopenFn>(dlopen)(
            library.as_ptr(),
            libc::RTLD_LAZY | libc::RTLD_NOLOAD,
        )
    };
    (!handle.is_null()).then_some(handle)
}

/// Module lists captured by the `dlopen`/`dlclose` hooks with the timestamp they take effect,
/// for the writer to log in time order (a module may be gone before the writer looks).
pub static MODULE_SNAPSHOTS: std::sync::Mutex<Vec<(u64, Vec<modules::LoadedModule>)>> =
    std::sync::Mutex::new(Vec::new());

/// The current timestamp, for a `dlopen`/`dlclose` hook to take before calling glibc. No later
/// event of the calling thread is stamped before it, so the module records come before the
/// allocations made by the library's constructors and by the code it loaded (while one thread
/// records, most events are stamped from an earlier clock read).
pub fn module_change_started() -> u64 {
    let state = sys::thread_state_ptr() as *const ThreadState;
    if state.is_null() {
        return sys::timestamp();
    }
    // SAFETY: thread states are never freed, and this is the owning thread.
    unsafe { (*state).fresh_stamp() }
}

/// After `dlopen`/`dlclose` returned (no loader lock held): rebuild the unwinder now and hand
/// the module list to the writer, effective at `since` (taken before the call, so allocations
/// made by a library's constructors come after its load record).
pub fn modules_changed(since: u64) {
    if !CONSTRUCTED.load(Ordering::Acquire) || STATE.load(Ordering::Acquire) != STATE_ACTIVE {
        return;
    }
    let Some(_guard) = ReentryGuard::enter() else {
        return;
    };
    let current = modules::loaded_modules();
    // Before the unwinder changes: a stack captured with it is interned in the new epoch.
    crate::stacks::note_unloads(modules::generation().1);
    unwind::publish(&current);
    if let Ok(mut snapshots) = MODULE_SNAPSHOTS.lock() {
        snapshots.push((since, current));
    }
}

/// Settings read from the environment by the constructor. The paths are the environment's
/// bytes as they are: a path need not be UTF-8, and one decoded lossily named another file (a
/// trace under a directory whose name is Latin-1 was never created).
#[derive(Debug, Clone)]
pub struct Config {
    pub output: PathBuf,
    pub follow_fork: bool,
    pub control: Option<PathBuf>,
}

/// The value of the environment variable `name`, unless unset or empty.
fn env(name: &CStr) -> Option<OsString> {
    // SAFETY: getenv with a NUL-terminated name; the result is copied immediately.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: getenv returns a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(value) }.to_bytes();
    (!bytes.is_empty()).then(|| OsStr::from_bytes(bytes).to_os_string())
}

static CONFIG: AtomicPtr<Config> = AtomicPtr::new(core::ptr::null_mut());

pub fn config() -> Option<&'static Config> {
    let c = CONFIG.load(Ordering::Acquire);
    // SAFETY: the config is leaked once set.
    (!c.is_null()).then(|| unsafe { &*c })
}

/// Runs from `.init_array` when the library is loaded, before the program's constructors.
extern "C" fn constructor() {
    // Before the guard is taken: see `resolve_symbols`.
    resolve_symbols();
    let _guard = ReentryGuard::enter();
    // SAFETY: sysconf is always safe.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE_SIZE.store(page as usize, Ordering::Relaxed);
    }
    let Some(output) = env(c"LEAKSIFT_OUTPUT") else {
        stop_tracing();
        return;
    };
    let config = Config {
        output: PathBuf::from(output),
        follow_fork: env(c"LEAKSIFT_FOLLOW_FORK").is_some_and(|v| v == "1"),
        control: env(c"LEAKSIFT_CONTROL").map(PathBuf::from),
    };
    TRACE_MMAP.store(
        env(c"LEAKSIFT_MMAP").is_some_and(|v| v == "1"),
        Ordering::Relaxed,
    );
    CONFIG.store(Box::into_raw(Box::new(config.clone())), Ordering::Release);
    if !tracing() {
        return;
    }
    unwind::publish(&modules::loaded_modules());
    // The main thread may already have a state from allocations made before this constructor.
    let main = current_thread();
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: creates a key with a plain extern "C" destructor.
    if unsafe { libc::pthread_key_create(&mut key, Some(thread_exiting)) } == 0 {
        THREAD_EXIT_KEY.store(key, Ordering::Release);
    }
    CONSTRUCTED.store(true, Ordering::Release);
    if let Some(main) = main {
        // SAFETY: we are the owning (main) thread.
        unsafe {
            if main.cache().is_none() {
                main.set_unwind(main_stack_bounds(), unwind::take_thread_unwinder());
            }
        }
    }
    let Some(sink) = writer::open_output(&config, false) else {
        stop_tracing();
        return;
    };
    if let Some(signal) =
        env(c"LEAKSIFT_SCAN_SIGNAL").and_then(|s| s.to_str()?.parse::<c_int>().ok())
    {
        install_scan_signal(signal);
    }
    // SAFETY: registering plain extern "C" callbacks with glibc.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_parent),
            Some(after_fork_child),
        );
        on_exit(at_exit, core::ptr::null_mut());
        at_quick_exit(at_quick_exit_handler);
    }
    mark_writer_process();
    TRACED_PID.store(sys::getpid(), Ordering::Release);
    writer::spawn(sink);
}

/// Sets the first word of the [`WRITER_PROCESS_MARK`] page (mapped and advised on first use):
/// this process is the one the writer runs in.
fn mark_writer_process() {
    let mut mark = WRITER_PROCESS_MARK.load(Ordering::Acquire);
    if mark.is_null() {
        let page = sys::map_anonymous(page_size());
        if page.is_null() {
            return;
        }
        crate::alloc::register_own_mapping(page, page_size());
        // SAFETY: advice on a page this library just mapped for itself.
        let advised =
            unsafe { libc::madvise(page as *mut c_void, page_size(), libc::MADV_WIPEONFORK) } == 0;
        if !advised {
            return;
        }
        mark = page as *mut AtomicU32;
        WRITER_PROCESS_MARK.store(mark, Ordering::Release);
    }
    // SAFETY: the page is never unmapped, and an `AtomicU32` fits at its (aligned) start.
    unsafe { (*mark).store(1, Ordering::Release) };
}

/// Whether this process runs without the writer it records for: a copy of the traced process
/// made without the atfork handlers (`_Fork`, `syscall(SYS_fork)`, a raw `clone`), whose
/// threads would otherwise fill buffers nobody drains and then wait for ever. Slow paths only
/// (a thread about to wait for the writer, a fork, an `unshare`). Without the wipe-on-fork
/// page (kernels before 4.14) it compares pids, which cannot tell a `vfork` child (served by
/// the parent's writer, in shared memory) from a copy: then only once `waited_out`, when the
/// writer has not drained the queue in the whole back-pressure wait.
#[cold]
pub fn in_copy_of_traced_process(waited_out: bool) -> bool {
    if !matches!(STATE.load(Ordering::Acquire), STATE_ACTIVE | STATE_PAUSED) {
        return false;
    }
    let mark = WRITER_PROCESS_MARK.load(Ordering::Acquire);
    if !mark.is_null() {
        // SAFETY: the page is never unmapped.
        return unsafe { (*mark).load(Ordering::Acquire) } == 0;
    }
    let traced = TRACED_PID.load(Ordering::Acquire);
    waited_out && traced != 0 && sys::getpid() != traced
}

/// Makes a copy of the traced process that [`in_copy_of_traced_process`] found untraced, as an
/// untraced fork child is: no writer, nothing recorded from now on, and the events it queued
/// (never to be written) freed.
#[cold]
pub fn leave_copy_untraced() {
    WRITER_RUNNING.store(false, Ordering::Release);
    stop_tracing();
    buffers::discard_queued();
}

#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;

unsafe extern "C" {
    fn on_exit(function: extern "C" fn(c_int, *mut c_void), arg: *mut c_void) -> c_int;
    fn at_quick_exit(function: extern "C" fn()) -> c_int;
}

extern "C" fn scan_signal_handler(_signal: c_int) {
    SCAN_REQUESTED.store(true, Ordering::Release);
    buffers::wake_writer();
}

fn install_scan_signal(signal: c_int) {
    // SAFETY: installs an async-signal-safe handler (atomics and a futex syscall only).
    unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = scan_signal_handler as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, core::ptr::null_mut());
    }
}

/// Asks the writer to write out every pending event and waits up to `timeout_ms` for it
/// (before exec).
///
/// No signal handler calls it: the library installs no handler of its own except the opt-in
/// scan signal, because runtimes check dispositions at start-up (Rust's stack-overflow guard
/// only installs itself over SIG_DFL, CPython only takes SIGINT when it is SIG_DFL). A crash
/// loses at most the last 100 ms of events.
fn flush_and_wait(timeout_ms: u32) {
    let target = FLUSH_REQUESTED
        .fetch_add(1, Ordering::AcqRel)
        .wrapping_add(1);
    buffers::wake_writer();
    for _ in 0..timeout_ms / 10 {
        let done = FLUSH_DONE.load(Ordering::Acquire);
        if done.wrapping_sub(target) as i32 >= 0 {
            return;
        }
        sys::futex_wait(&FLUSH_DONE, done, 10_000_000);
    }
}

/// What the exec in progress is about to run, for the writer's exec call record (set by
/// [`around_exec`] before its flush request).
pub static EXEC_CALL: std::sync::Mutex<Option<leaksift_trace::model::ExecCall>> =
    std::sync::Mutex::new(None);

/// Runs `exec` (one of the exec calls) after writing out every pending event and ending the trace
/// with an exec call record (from `describe`, run with the re-entry guard held) and an exec
/// record (see [`flush_and_wait`]). If the exec fails, the program goes on: the writer resumes
/// and the program's errno is the one the call left.
pub fn around_exec(
    describe: impl FnOnce() -> leaksift_trace::model::ExecCall,
    exec: impl FnOnce() -> c_int,
) -> c_int {
    // An exec while the exit scan runs waits for it (the trace then ends with the exit).
    if STATE.load(Ordering::Acquire) == STATE_PAUSED {
        exit_gate();
    }
    // A `vfork` child shares this memory (tracer state included) but is not the traced
    // process: its exec must neither end the parent's trace nor pause the parent's writer.
    let traced = STATE.load(Ordering::Acquire) == STATE_ACTIVE
        && WRITER_RUNNING.load(Ordering::Acquire)
        && WRITER_TID.load(Ordering::Acquire) != sys::gettid()
        && sys::getpid() == TRACED_PID.load(Ordering::Acquire);
    if !traced {
        return exec();
    }
    // SAFETY: errno is thread-local and always valid.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(_guard) = ReentryGuard::enter() {
        let call = describe();
        if let Ok(mut slot) = EXEC_CALL.lock() {
            *slot = Some(call);
        }
    }
    set_errno(errno);
    EXEC_PENDING.store(true, Ordering::Release);
    flush_and_wait(5000);
    let result = exec();
    // SAFETY: errno is thread-local and always valid.
    let errno = unsafe { *libc::__errno_location() };
    EXEC_PENDING.store(false, Ordering::Release);
    buffers::wake_writer();
    set_errno(errno);
    result
}

/// Runs `call` (a system call that requires a single-threaded process: `unshare` of a user
/// namespace, `setns`) with the writer thread ended, then starts a new one. The program's errno
/// is the one the call leaves.
pub fn without_writer_thread(call: impl FnOnce() -> c_int) -> c_int {
    // SAFETY: errno is thread-local and always valid.
    let errno = || unsafe { *libc::__errno_location() };
    let before = errno();
    if in_copy_of_traced_process(false) {
        leave_copy_untraced();
    }
    let stopped = STATE.load(Ordering::Acquire) == STATE_ACTIVE && writer::stop_thread();
    set_errno(before);
    let result = call();
    let after = errno();
    if stopped {
        writer::restart();
    }
    set_errno(after);
    result
}

/// Defines a naked function that pushes the callee-saved registers and calls `$imp(rdi, rsi,
/// registers, caller_sp)`: the registers as they were at the call (r15 first), and where the
/// caller's frame starts (at entry rsp points at the return address, so at rsp + 8). The exit
/// scan reads the registers as roots and the stack from `caller_sp` up: the entry's own frames
/// are the tracer's, and their unwritten slots hold what the allocation hooks left on that part
/// of the stack (returned block addresses), which would make lost blocks look reachable.
macro_rules! scan_entry {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, $imp:path) => {
        $(#[$attr])*
        #[unsafe(naked)]
        $vis extern "C" fn $name($($arg: $ty),*) -> $ret {
            core::arch::naked_asm!(
                "push rbx",
                "push rbp",
                "push r12",
                "push r13",
                "push r14",
                "push r15",
                "mov rdx, rsp",
                "lea rcx, [rsp + 56]",
                // rsp is 8 mod 16 at entry, then 48 bytes lower: realign for the call.
                "sub rsp, 8",
                "call {imp}",
                // The registers are callee-saved: `$imp` left them as they were.
                "add rsp, 56",
                "ret",
                imp = sym $imp,
            )
        }
    };
}
pub(crate) use scan_entry;

scan_entry!(
    /// Last exit handler (registered first): runs [`exit_scan`].
    fn at_exit(status: c_int, arg: *mut c_void) -> (),
    exit_scan
);

/// The exit scan: asks the writer for it and waits. `registers` are r15, r14, r13, r12, rbp
/// and rbx as [`at_exit`] pushed them; `caller_sp` is where its caller's frame starts.
extern "C" fn exit_scan(
    status: c_int,
    _arg: *mut c_void,
    registers: *const [u64; 6],
    caller_sp: u64,
) {
    // A `vfork` child that ends with `_exit`, or (undefined behaviour, which also uses the
    // parent's exit handlers up) with `exit`, gets here in the traced process's memory: the
    // traced process has not exited.
    if STATE.load(Ordering::Acquire) != STATE_ACTIVE
        || !WRITER_RUNNING.load(Ordering::Acquire)
        || sys::getpid() != TRACED_PID.load(Ordering::Acquire)
        || EXIT_SCAN_CLAIMED.swap(true, Ordering::AcqRel)
    {
        return;
    }
    // SAFETY: `at_exit` pushed the six words just before calling.
    let registers = unsafe { *registers };
    for (slot, value) in EXIT_REGISTERS.iter().zip(registers) {
        slot.store(value, Ordering::Relaxed);
    }
    release_cxx_pools();
    let _guard = ReentryGuard::enter();
    EXIT_SP.store(caller_sp, Ordering::Release);
    EXIT_STATUS.store(status as u32, Ordering::Release);
    EXIT_REQUESTED.store(true, Ordering::Release);
    buffers::wake_writer();
    // Wait for the writer (bounded: a wedged writer must not hang the exit forever). A writer
    // that stopped meanwhile (a failed write, no memory left) will not answer.
    for _ in 0..600 {
        if EXIT_DONE.load(Ordering::Acquire) != 0 || !WRITER_RUNNING.load(Ordering::Acquire) {
            break;
        }
        sys::futex_wait(&EXIT_DONE, 0, 100_000_000);
    }
}

/// How much of the unused stack below the caller [`clear_dead_stack`] zeroes: far more than
/// glibc's exit path (exit, its handlers, `_IO_cleanup`) builds frames in.
const DEAD_STACK_CLEARED: u64 = 64 << 10;

/// Zeroes up to [`DEAD_STACK_CLEARED`] bytes of the calling thread's unused stack below its
/// caller's frame, before the exit path builds its frames there.
///
/// Frames keep stale words in slots they have not written yet. memcheck never reads those as
/// pointers: a word below the stack pointer becomes undefined to it when the frame that wrote
/// it returns. A preloaded tracer cannot track definedness, and the allocation path leaves
/// block addresses behind that valgrind's never does (libstdc++'s `operator new` saving a
/// register, glibc's malloc, these hooks): found in a slot of `__run_exit_handlers`' frame,
/// such a copy made a lost `new`-allocated cycle "still reachable". Clearing the dead stack
/// once, when `main` returns or the program calls `exit`, gives the exit path's frames the
/// zeros memcheck's view amounts to.
#[inline(always)]
pub fn clear_dead_stack() {
    let state = sys::thread_state_ptr() as *const ThreadState;
    if state.is_null() {
        return;
    }
    // SAFETY: thread states are never freed; the bounds are a plain copy.
    let bounds = unsafe { (*state).bounds() };
    let sp: u64;
    // SAFETY: reads the stack pointer.
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    if !(bounds.low < sp && sp <= bounds.high) {
        return;
    }
    let low = (sp.saturating_sub(DEAD_STACK_CLEARED).max(bounds.low) + 7) & !7;
    if low + 4096 > sp {
        return;
    }
    // SAFETY: `[low, rsp)` lies in this thread's stack below the current frame: no frame of
    // this thread lives there (without `nostack`, the compiler keeps nothing in the red zone
    // across this block), and a signal handler interrupting the stores builds its frame
    // further down and is gone before they resume. rsp is at most a few words away from `sp`,
    // so the count is positive.
    unsafe {
        core::arch::asm!(
            "mov rcx, rsp",
            "sub rcx, rdi",
            "shr rcx, 3",
            "cld",
            "rep stosq",
            inout("rdi") low => _,
            out("rcx") _,
            in("rax") 0u64,
        );
    }
}

/// `_exit` and `_Exit` end the process without exit handlers: the traced process still gets its
/// exit scan (memcheck scans at any exit), a `vfork` child sharing its memory does not.
///
/// `registers` and `caller_sp` as [`scan_entry`] passes them (the `_exit` hook is one).
pub fn exiting_without_handlers(status: c_int, registers: *const [u64; 6], caller_sp: u64) {
    exit_scan(status, core::ptr::null_mut(), registers, caller_sp);
}

/// The status passed to `quick_exit`, for the exit scan its handlers start.
static QUICK_EXIT_STATUS: AtomicU32 = AtomicU32::new(0);

pub fn quick_exit_called(status: c_int) {
    QUICK_EXIT_STATUS.store(status as u32, Ordering::Release);
}

scan_entry!(
    /// Last `at_quick_exit` handler (registered first): the exit scan, as at `exit`.
    fn at_quick_exit_handler() -> (),
    quick_exit_scan
);

/// [`exit_scan`] with the status `quick_exit` was given (`_unused` are whatever the handler's
/// argument registers held).
extern "C" fn quick_exit_scan(
    _unused: usize,
    _unused_too: usize,
    registers: *const [u64; 6],
    caller_sp: u64,
) {
    exit_scan(
        QUICK_EXIT_STATUS.load(Ordering::Acquire) as c_int,
        core::ptr::null_mut(),
        registers,
        caller_sp,
    );
}

unsafe extern "C" {
    /// Calls `__gnu_cxx::__freeres()` if the program has libstdc++ (freeres.c).
    fn leaksift_cxx_freeres();
}

/// Lets libstdc++ free its emergency exception pool (and other once-per-process buffers) before
/// the exit scan, as valgrind does (`--run-cxx-freeres=yes`, its default): otherwise every C++
/// program shows a 70 KiB "still reachable" block that is not the program's. Found through a
/// weak reference the loader bound, as valgrind finds it, not with `dlsym`, which would free the
/// program's last `dlerror` message here unrecorded (see [`resolve_symbols`]).
fn release_cxx_pools() {
    // SAFETY: a C function without arguments; `__gnu_cxx::__freeres()` takes nothing and
    // returns nothing, and its frees are recorded (no guard is held here).
    unsafe { leaksift_cxx_freeres() };
}

/// Only a followed child needs the writer parked (it takes the writer's state over).
fn pauses_for_fork() -> bool {
    STATE.load(Ordering::Acquire) == STATE_ACTIVE && config().is_some_and(|c| c.follow_fork)
}

extern "C" fn before_fork() {
    if in_copy_of_traced_process(false) {
        // No writer to park here: this process and its children stay untraced.
        leave_copy_untraced();
        return;
    }
    if pauses_for_fork() {
        writer::pause();
    }
}

extern "C" fn after_fork_parent() {
    if pauses_for_fork() {
        writer::resume();
    }
}

/// The child has one thread and no writer. Untraced unless `--follow-fork`, then traced to
/// `<output>.<pid>` by a new writer thread.
extern "C" fn after_fork_child() {
    if STATE.load(Ordering::Acquire) != STATE_ACTIVE {
        return;
    }
    WRITER_RUNNING.store(false, Ordering::Release);
    let follow = config().is_some_and(|c| c.follow_fork);
    if !follow {
        stop_tracing();
        return;
    }
    let _guard = ReentryGuard::enter();
    writer::absorb_inherited_events();
    buffers::reset_after_fork();
    let me = sys::thread_state_ptr() as *mut ThreadState;
    if !me.is_null() {
        // SAFETY: single-threaded child, after the reset.
        unsafe { ThreadState::readopt_after_fork(me) };
    }
    writer::resume_in_child();
    match config().and_then(|c| writer::open_output(c, true)) {
        Some(sink) => {
            mark_writer_process();
            TRACED_PID.store(sys::getpid(), Ordering::Release);
            writer::spawn_in_child(sink);
        }
        None => stop_tracing(),
    }
}
