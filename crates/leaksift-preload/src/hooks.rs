//! The exported allocator entry points. Each is a naked trampoline that builds a frame-pointer
//! frame and passes its address to the Rust implementation, so stack capture starts from an exact
//! (return address, stack pointer, caller frame pointer) triple whatever the compiler did with
//! this crate's own frames. Implementations forward to glibc's `__libc_*` functions and record
//! free/realloc before the block can be reused by another thread. The other calls wrapped here
//! (`dlopen`, `exit`, the exec family, ...) forward to the definitions the constructor looked up
//! ([`runtime::resolve_symbols`]): a hook never calls `dlsym`, which would replace the program's
//! `dlerror` state.

use core::ffi::{c_char, c_int, c_void};
use core::mem::MaybeUninit;

use crate::buffers::ThreadState;
use crate::buffers::{Op, RawEvent};
use crate::exec_call;
use crate::runtime::{self, current_thread};
use crate::sys::{self, ReentryGuard};
use crate::unwind::{MAX_FRAMES, capture};

/// `AllocKind` codes of the trace format (see `leaksift_trace::format::alloc_kind_code`).
mod kind {
    pub const MALLOC: u8 = 0;
    pub const CALLOC: u8 = 1;
    pub const REALLOC: u8 = 2;
    pub const POSIX_MEMALIGN: u8 = 4;
    pub const ALIGNED_ALLOC: u8 = 5;
    pub const MEMALIGN: u8 = 6;
    pub const VALLOC: u8 = 7;
    pub const PVALLOC: u8 = 8;
    pub const MMAP: u8 = 9;
}

/// Defines an exported function whose frame address is passed to `$imp` in register `$reg`
/// (the first argument register after the function's own arguments).
macro_rules! trampoline {
    ($name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty, $imp:ident, $reg:literal) => {
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            core::arch::naked_asm!(
                "push rbp",
                "mov rbp, rsp",
                concat!("mov ", $reg, ", rbp"),
                "call {imp}",
                "pop rbp",
                "ret",
                imp = sym $imp,
            )
        }
    };
}

pub(crate) use trampoline;

trampoline!(malloc(size: usize) -> *mut c_void, malloc_impl, "rsi");
trampoline!(calloc(count: usize, size: usize) -> *mut c_void, calloc_impl, "rdx");
trampoline!(realloc(ptr: *mut c_void, size: usize) -> *mut c_void, realloc_impl, "rdx");
trampoline!(reallocarray(ptr: *mut c_void, count: usize, size: usize) -> *mut c_void, reallocarray_impl, "rcx");
trampoline!(free(ptr: *mut c_void) -> (), free_impl, "rsi");
trampoline!(posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int, posix_memalign_impl, "rcx");
trampoline!(aligned_alloc(align: usize, size: usize) -> *mut c_void, aligned_alloc_impl, "rdx");
trampoline!(memalign(align: usize, size: usize) -> *mut c_void, memalign_impl, "rdx");
trampoline!(valloc(size: usize) -> *mut c_void, valloc_impl, "rsi");
trampoline!(pvalloc(size: usize) -> *mut c_void, pvalloc_impl, "rsi");
trampoline!(munmap(addr: *mut c_void, len: usize) -> c_int, munmap_impl, "rdx");

/// `mmap` has six register arguments: the frame goes on the stack as the seventh.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: i64,
) -> *mut c_void {
    core::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "sub rsp, 8",
        "push rbp",
        "call {imp}",
        "leave",
        "ret",
        imp = sym mmap_impl,
    )
}

/// `mmap64` is the same function on 64-bit glibc.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: i64,
) -> *mut c_void {
    core::arch::naked_asm!("jmp {target}", target = sym mmap)
}

/// Captures and interns the calling thread's stack from the trampoline frame `frame`.
/// Runs with the re-entry guard held.
#[inline(always)]
fn stack_of(state: &ThreadState, frame: *const u64) -> u32 {
    // SAFETY: the unwinder belongs to this thread and the guard rules out re-entrant use.
    match unsafe { state.cache() } {
        // SAFETY: `frame` is this call's live trampoline frame.
        Some(unwinder) => unsafe {
            unwinder.stack_id(frame, state.bounds(), runtime::intern_stack)
        },
        None => {
            let mut frames = [const { MaybeUninit::<u64>::uninit() }; MAX_FRAMES];
            // SAFETY: `frame` is this call's live trampoline frame.
            let depth = unsafe { capture(frame, state.bounds(), None, None, &mut frames) };
            // SAFETY: `capture` initialised the first `depth` entries.
            let frames =
                unsafe { core::slice::from_raw_parts(frames.as_ptr() as *const u64, depth) };
            runtime::intern_stack(frames)
        }
    }
}

/// Records an allocation with its stack. Runs with the re-entry guard held.
#[inline(always)]
fn record_alloc(frame: *const u64, op: Op, kind: u8, address: u64, old_address: u64, size: u64) {
    let Some(state) = current_thread() else {
        return;
    };
    let stack = stack_of(state, frame);
    state.push(RawEvent {
        timestamp: 0,
        address,
        old_address,
        size,
        stack,
        op,
        kind,
    });
}

#[inline(always)]
fn record_free(address: u64) {
    if let Some(state) = current_thread() {
        state.push(RawEvent {
            timestamp: 0,
            address,
            old_address: 0,
            size: 0,
            stack: 0,
            op: Op::Free,
            kind: 0,
        });
    }
}

pub(crate) extern "C" fn malloc_impl(size: usize, frame: *const u64) -> *mut c_void {
    // SAFETY: glibc's allocator.
    let ptr = unsafe { sys::__libc_malloc(size) };
    if !ptr.is_null()
        && runtime::tracing()
        && let Some(_guard) = ReentryGuard::enter()
    {
        record_alloc(frame, Op::Alloc, kind::MALLOC, ptr as u64, 0, size as u64);
    }
    ptr
}

pub(crate) extern "C" fn calloc_impl(count: usize, size: usize, frame: *const u64) -> *mut c_void {
    // SAFETY: glibc's allocator (it checks the multiplication for overflow).
    let ptr = unsafe { sys::__libc_calloc(count, size) };
    if !ptr.is_null()
        && runtime::tracing()
        && let Some(_guard) = ReentryGuard::enter()
    {
        record_alloc(
            frame,
            Op::Alloc,
            kind::CALLOC,
            ptr as u64,
            0,
            count.wrapping_mul(size) as u64,
        );
    }
    ptr
}

/// glibc's realloc with the caller's arguments.
fn real_realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: the caller's pointer is one glibc handed out (or null), as realloc requires.
    unsafe { sys::__libc_realloc(ptr, size) }
}

fn traced_realloc(ptr: *mut c_void, size: usize, frame: *const u64) -> *mut c_void {
    if !runtime::tracing() {
        return real_realloc(ptr, size);
    }
    let Some(_guard) = ReentryGuard::enter() else {
        return real_realloc(ptr, size);
    };
    if ptr.is_null() {
        let new = real_realloc(ptr, size);
        if !new.is_null() {
            record_alloc(
                frame,
                Op::Realloc,
                kind::REALLOC,
                new as u64,
                0,
                size as u64,
            );
        }
        return new;
    }
    if size == 0 {
        // glibc frees the block and returns NULL.
        record_free(ptr as u64);
        return real_realloc(ptr, size);
    }
    let Some(state) = current_thread() else {
        return real_realloc(ptr, size);
    };
    let stack = stack_of(state, frame);
    let mut result = core::ptr::null_mut();
    state.push_around(|| {
        result = real_realloc(ptr, size);
        (!result.is_null()).then_some(RawEvent {
            timestamp: 0,
            address: result as u64,
            old_address: ptr as u64,
            size: size as u64,
            stack,
            op: Op::Realloc,
            kind: kind::REALLOC,
        })
    });
    result
}

pub(crate) extern "C" fn realloc_impl(
    ptr: *mut c_void,
    size: usize,
    frame: *const u64,
) -> *mut c_void {
    traced_realloc(ptr, size, frame)
}

extern "C" fn reallocarray_impl(
    ptr: *mut c_void,
    count: usize,
    size: usize,
    frame: *const u64,
) -> *mut c_void {
    match count.checked_mul(size) {
        Some(total) => traced_realloc(ptr, total, frame),
        None => {
            runtime::set_errno(libc::ENOMEM);
            core::ptr::null_mut()
        }
    }
}

extern "C" fn free_impl(ptr: *mut c_void, _frame: *const u64) {
    if !ptr.is_null()
        && runtime::tracing()
        && let Some(_guard) = ReentryGuard::enter()
    {
        record_free(ptr as u64);
    }
    // SAFETY: glibc's allocator with the caller's pointer.
    unsafe { sys::__libc_free(ptr) }
}

/// Records an aligned allocation made by `allocate` (a glibc function).
fn aligned(
    kind: u8,
    size: usize,
    frame: *const u64,
    allocate: impl FnOnce() -> *mut c_void,
) -> *mut c_void {
    let ptr = allocate();
    if !ptr.is_null()
        && runtime::tracing()
        && let Some(_guard) = ReentryGuard::enter()
    {
        record_alloc(frame, Op::Alloc, kind, ptr as u64, 0, size as u64);
    }
    ptr
}

/// glibc's `__libc_memalign`.
fn real_memalign(align: usize, size: usize) -> *mut c_void {
    // SAFETY: glibc's allocator; it validates and rounds `align` itself.
    unsafe { sys::__libc_memalign(align, size) }
}

extern "C" fn posix_memalign_impl(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
    frame: *const u64,
) -> c_int {
    // glibc's own checks (posix_memalign has no public __libc_ twin).
    if align == 0
        || !align.is_power_of_two()
        || !align.is_multiple_of(core::mem::size_of::<usize>())
    {
        return libc::EINVAL;
    }
    let ptr = aligned(kind::POSIX_MEMALIGN, size, frame, || {
        real_memalign(align, size)
    });
    if ptr.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a valid out-pointer (POSIX contract).
    unsafe { *out = ptr };
    0
}

extern "C" fn aligned_alloc_impl(align: usize, size: usize, frame: *const u64) -> *mut c_void {
    type AlignedAllocFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
    // The allocator's own aligned_alloc (glibc's argument checks differ between versions), else
    // memalign, which is what it is up to glibc 2.37.
    aligned(
        kind::ALIGNED_ALLOC,
        size,
        frame,
        || match runtime::ALIGNED_ALLOC.get() {
            // SAFETY: the allocator's aligned_alloc, this signature, with the caller's arguments.
            Some(real) => unsafe {
                core::mem::transmute::<*mut c_void, AlignedAllocFn>(real)(align, size)
            },
            None => real_memalign(align, size),
        },
    )
}

/// `malloc_usable_size`: the answer of the allocator the hooks serve blocks from. Without this
/// hook a program linked with jemalloc got jemalloc's, which read a glibc block as one of its
/// own and crashed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    type UsableSizeFn = unsafe extern "C" fn(*mut c_void) -> usize;
    let usable = match runtime::MALLOC_USABLE_SIZE.get() {
        // SAFETY: the allocator's malloc_usable_size, this signature, with the caller's block.
        Some(real) => unsafe { core::mem::transmute::<*mut c_void, UsableSizeFn>(real)(ptr) },
        None => 0,
    };
    // The program may now store pointers past its request: the scan must read those bytes.
    if usable > 0
        && !ptr.is_null()
        && runtime::tracing()
        && let Some(_guard) = ReentryGuard::enter()
        && let Some(state) = current_thread()
    {
        state.push(RawEvent {
            timestamp: 0,
            address: ptr as u64,
            old_address: 0,
            size: usable as u64,
            stack: 0,
            op: Op::UsableSize,
            kind: 0,
        });
    }
    usable
}

pub(crate) extern "C" fn memalign_impl(
    align: usize,
    size: usize,
    frame: *const u64,
) -> *mut c_void {
    aligned(kind::MEMALIGN, size, frame, || real_memalign(align, size))
}

extern "C" fn valloc_impl(size: usize, frame: *const u64) -> *mut c_void {
    // SAFETY: glibc's allocator.
    aligned(kind::VALLOC, size, frame, || unsafe {
        sys::__libc_valloc(size)
    })
}

extern "C" fn pvalloc_impl(size: usize, frame: *const u64) -> *mut c_void {
    let page = runtime::page_size();
    let rounded = size.max(1).div_ceil(page).saturating_mul(page);
    // SAFETY: glibc's allocator.
    aligned(kind::PVALLOC, rounded, frame, || unsafe {
        sys::__libc_pvalloc(size)
    })
}

extern "C" fn mmap_impl(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: i64,
    frame: *const u64,
) -> *mut c_void {
    // SAFETY: the raw syscall with the caller's arguments, exactly what glibc's wrapper does.
    let result = unsafe { libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, offset) };
    let ptr = result as *mut c_void;
    if result != -1
        && runtime::tracing_mmap()
        && let Some(_guard) = ReentryGuard::enter()
    {
        record_alloc(frame, Op::Alloc, kind::MMAP, ptr as u64, 0, len as u64);
    }
    if result == -1 { libc::MAP_FAILED } else { ptr }
}

extern "C" fn munmap_impl(addr: *mut c_void, len: usize, _frame: *const u64) -> c_int {
    if runtime::tracing_mmap()
        && let Some(_guard) = ReentryGuard::enter()
    {
        record_free(addr as u64);
    }
    // SAFETY: the raw syscall with the caller's arguments.
    unsafe { libc::syscall(libc::SYS_munmap, addr, len) as c_int }
}

/// `dlopen`: forwards to the next definition, then refreshes the unwinder so the new module's
/// frames unwind from its first allocation, and logs the module list (outside any allocation
/// hook: no loader lock held).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dlopen(filename: *const libc::c_char, flags: c_int) -> *mut c_void {
    type DlopenFn = unsafe extern "C" fn(*const libc::c_char, c_int) -> *mut c_void;
    let Some(real) = runtime::NEXT_DLOPEN.get() else {
        return core::ptr::null_mut();
    };
    let since = runtime::module_change_started();
    // SAFETY: glibc's dlopen has this signature; the caller's arguments pass through.
    let handle = unsafe { core::mem::transmute::<*mut c_void, DlopenFn>(real)(filename, flags) };
    if !handle.is_null() {
        runtime::modules_changed(since);
    }
    handle
}

/// `dlclose`: forwards, then logs the module list so an unload is recorded when it happens.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dlclose(handle: *mut c_void) -> c_int {
    type DlcloseFn = unsafe extern "C" fn(*mut c_void) -> c_int;
    let Some(real) = runtime::NEXT_DLCLOSE.get() else {
        return -1;
    };
    // SAFETY: glibc's dlclose has this signature; the caller's handle passes through.
    let result = unsafe { core::mem::transmute::<*mut c_void, DlcloseFn>(real)(handle) };
    runtime::modules_changed(runtime::module_change_started());
    result
}

/// Defines an exported naked `$name` taking one `int` that zeroes the caller-saved registers
/// other than its argument, then jumps to `$imp` (same argument, same return address).
///
/// The exit scan reads the frames of the `exit` hooks (they are above its start), and a Rust
/// body may pad its frame with `push rax`: the caller's rax, often the address of a block it
/// just allocated and lost (`p = malloc(99); p = NULL; exit(0);`), which made that block still
/// reachable. memcheck reads no frame of ours, and glibc's `exit` saves no such register.
macro_rules! scrubbed_entry {
    ($(#[$attr:meta])* fn $name:ident($arg:ident: c_int) -> !, $imp:path) => {
        $(#[$attr])*
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($arg: c_int) -> ! {
            core::arch::naked_asm!(
                "xor eax, eax",
                "xor ecx, ecx",
                "xor edx, edx",
                "xor esi, esi",
                "xor r8d, r8d",
                "xor r9d, r9d",
                "xor r10d, r10d",
                "xor r11d, r11d",
                "jmp {imp}",
                imp = sym $imp,
            )
        }
    };
}

scrubbed_entry!(
    /// `exit`: clears the dead stack below the caller ([`runtime::clear_dead_stack`]) so that
    /// the frames glibc's exit path builds there, which the exit scan reads, hold no stale
    /// block addresses, then runs glibc's `exit` (in [`exit_impl`]).
    fn exit(status: c_int) -> !,
    exit_impl
);

/// `exit`'s work, entered through [`scrubbed_entry`].
extern "C" fn exit_impl(status: c_int) -> ! {
    type ExitFn = unsafe extern "C" fn(c_int) -> !;
    let real = runtime::NEXT_EXIT.get();
    runtime::clear_dead_stack();
    match real {
        // SAFETY: glibc's exit has this signature; it does not return.
        Some(real) => unsafe { core::mem::transmute::<*mut c_void, ExitFn>(real)(status) },
        // SAFETY: no exit to forward to: end without the handlers rather than not at all.
        None => _exit(status),
    }
}

/// The program's `main`, as `__libc_start_main` received it.
static PROGRAM_MAIN: core::sync::atomic::AtomicPtr<c_void> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

type MainFn = unsafe extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) -> c_int;

/// `__libc_start_main`: glibc's, with `main` wrapped so that the dead stack is cleared when it
/// returns (glibc then calls `exit` internally, past the `exit` above).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_start_main(
    main: MainFn,
    argc: c_int,
    argv: *mut *mut c_char,
    init: *mut c_void,
    fini: *mut c_void,
    rtld_fini: *mut c_void,
    stack_end: *mut c_void,
) -> c_int {
    type StartFn = unsafe extern "C" fn(
        MainFn,
        c_int,
        *mut *mut c_char,
        *mut c_void,
        *mut c_void,
        *mut c_void,
        *mut c_void,
    ) -> c_int;
    let Some(real) = runtime::NEXT_LIBC_START_MAIN.get() else {
        // SAFETY: no glibc entry to forward to: run the program as `_start` would have it run.
        unsafe {
            let envp = argv.add(argc as usize + 1);
            exit(main(argc, argv, envp))
        }
    };
    PROGRAM_MAIN.store(main as *mut c_void, core::sync::atomic::Ordering::Release);
    // SAFETY: glibc's __libc_start_main has this signature; the caller's arguments pass
    // through with `main` wrapped.
    unsafe {
        core::mem::transmute::<*mut c_void, StartFn>(real)(
            main_then_clear,
            argc,
            argv,
            init,
            fini,
            rtld_fini,
            stack_end,
        )
    }
}

/// Runs the program's `main`, then clears the dead stack before glibc's `exit` runs.
unsafe extern "C" fn main_then_clear(
    argc: c_int,
    argv: *mut *mut c_char,
    envp: *mut *mut c_char,
) -> c_int {
    let main = PROGRAM_MAIN.load(core::sync::atomic::Ordering::Acquire);
    // SAFETY: `__libc_start_main` stored the program's main, of this type, before glibc
    // called this.
    let status = unsafe { core::mem::transmute::<*mut c_void, MainFn>(main)(argc, argv, envp) };
    runtime::clear_dead_stack();
    status
}

runtime::scan_entry!(
    /// `_exit`: runs the exit scan (the program's exit handlers are skipped, the scan is not),
    /// then ends the process as glibc's `_exit` does.
    #[unsafe(no_mangle)]
    pub fn _exit(status: c_int) -> !,
    exit_without_handlers
);

/// `_exit`'s work, entered through [`runtime::scan_entry`]: the exit scan from the program's
/// frame up, then the end of the process.
extern "C" fn exit_without_handlers(
    status: c_int,
    _unused: usize,
    registers: *const [u64; 6],
    caller_sp: u64,
) -> ! {
    runtime::exiting_without_handlers(status, registers, caller_sp);
    loop {
        // SAFETY: exit_group ends every thread of the process and does not return.
        unsafe { libc::syscall(libc::SYS_exit_group, status) };
    }
}

/// `_Exit`: the C99 name of `_exit` (a jump, so that `_exit` sees the program as its caller).
#[allow(non_snake_case)]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    core::arch::naked_asm!("jmp {target}", target = sym _exit)
}

/// `daemon`: glibc's forks and ends the parent with its internal `_exit`, which the `_exit` hook
/// never sees, so the parent's trace had no exit scan and no End record. Done here as glibc
/// does it (fork, the parent ends, the child starts a session, moves to `/`, and points its
/// standard streams at `/dev/null`), the parent ending through the hooked `_exit`. The child is
/// traced as any fork child: with `--follow-fork` only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn daemon(nochdir: c_int, noclose: c_int) -> c_int {
    // SAFETY: plain libc calls with valid arguments; `fork` runs the tracer's fork handlers.
    unsafe {
        match libc::fork() {
            -1 => return -1,
            0 => {}
            _ => _exit(0),
        }
        if libc::setsid() < 0 {
            return -1;
        }
        if nochdir == 0 && libc::chdir(c"/".as_ptr()) != 0 {
            return -1;
        }
        if noclose == 0 {
            let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if fd < 0 {
                return -1;
            }
            let mut status: libc::stat = core::mem::zeroed();
            if libc::fstat(fd, &mut status) != 0 || status.st_mode & libc::S_IFMT != libc::S_IFCHR {
                // glibc refuses a `/dev/null` that is not the null device.
                libc::close(fd);
                *libc::__errno_location() = libc::ENODEV;
                return -1;
            }
            for standard in 0..3 {
                libc::dup2(fd, standard);
            }
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
    0
}

scrubbed_entry!(
    /// `quick_exit`: runs the program's `at_quick_exit` handlers and ends the process through
    /// glibc's internal `_exit`, which our `_exit` never sees. The status is kept for the exit
    /// scan, which the handler registered first (so run last) by the constructor starts (in
    /// [`quick_exit_impl`]).
    fn quick_exit(status: c_int) -> !,
    quick_exit_impl
);

/// `quick_exit`'s work, entered through [`scrubbed_entry`].
extern "C" fn quick_exit_impl(status: c_int) -> ! {
    type QuickExitFn = unsafe extern "C" fn(c_int) -> !;
    runtime::quick_exit_called(status);
    let real = runtime::NEXT_QUICK_EXIT.get();
    runtime::clear_dead_stack();
    if let Some(real) = real {
        // SAFETY: glibc's quick_exit has this signature; it does not return.
        unsafe { core::mem::transmute::<*mut c_void, QuickExitFn>(real)(status) }
    }
    // No quick_exit to forward to: end as it would, without the handlers.
    _exit(status)
}

/// `unshare`: a new user namespace (or unsharing what threads share) needs a single-threaded
/// process, so the writer thread steps aside for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn unshare(flags: c_int) -> c_int {
    // SAFETY: the raw syscall with the caller's flags, as glibc's wrapper does.
    let call = || unsafe { libc::syscall(libc::SYS_unshare, flags) as c_int };
    let single_threaded =
        libc::CLONE_NEWUSER | libc::CLONE_THREAD | libc::CLONE_SIGHAND | libc::CLONE_VM;
    if flags & single_threaded != 0 {
        runtime::without_writer_thread(call)
    } else {
        call()
    }
}

/// `setns`: joining a user or mount namespace needs a single-threaded process (the descriptor's
/// namespace type is not known here): the writer thread steps aside for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setns(fd: c_int, nstype: c_int) -> c_int {
    // SAFETY: the raw syscall with the caller's arguments, as glibc's wrapper does.
    runtime::without_writer_thread(|| unsafe {
        libc::syscall(libc::SYS_setns, fd, nstype) as c_int
    })
}

/// `execve`: the new image replaces this one, so write out the pending events first and end the
/// trace with an exec record ([`runtime::around_exec`]; the new image traces to `OUTPUT.<pid>`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execve(
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> c_int {
    runtime::around_exec(
        // SAFETY: the caller's exec arguments.
        || unsafe { exec_call::of_path(path, argv, envp) },
        // SAFETY: the raw syscall with the caller's arguments, as glibc's wrapper does.
        || unsafe { libc::syscall(libc::SYS_execve, path, argv, envp) as c_int },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn execv(
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
) -> c_int {
    runtime::around_exec(
        // SAFETY: the caller's exec arguments and the current environment.
        || unsafe { exec_call::of_path(path, argv, sys::environ) },
        // SAFETY: the raw syscall with the caller's arguments and the current environment.
        || unsafe { libc::syscall(libc::SYS_execve, path, argv, sys::environ) as c_int },
    )
}

type ExecvpeFn = unsafe extern "C" fn(
    *const libc::c_char,
    *const *const libc::c_char,
    *const *const libc::c_char,
) -> c_int;

/// `execvp`/`execvpe` search PATH: flush, then let glibc's versions do the search.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvpe(
    file: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> c_int {
    runtime::around_exec(
        // SAFETY: the caller's exec arguments.
        || unsafe { exec_call::of_search(file, argv, envp) },
        || {
            call_next(&runtime::NEXT_EXECVPE, |real| {
                // SAFETY: glibc's execvpe has this signature; the caller's arguments pass through.
                unsafe { core::mem::transmute::<*mut c_void, ExecvpeFn>(real)(file, argv, envp) }
            })
        },
    )
}

type FexecveFn =
    unsafe extern "C" fn(c_int, *const *const libc::c_char, *const *const libc::c_char) -> c_int;

/// `fexecve` (exec of an open file): flush, then glibc's version (it falls back to
/// `/proc/self/fd` on kernels without `execveat`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fexecve(
    fd: c_int,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> c_int {
    runtime::around_exec(
        // SAFETY: the caller's exec arguments.
        || unsafe { exec_call::of_descriptor(fd, argv, envp) },
        || {
            call_next(&runtime::NEXT_FEXECVE, |real| {
                // SAFETY: glibc's fexecve has this signature; the caller's arguments pass through.
                unsafe { core::mem::transmute::<*mut c_void, FexecveFn>(real)(fd, argv, envp) }
            })
        },
    )
}

/// `execveat` (glibc 2.34's wrapper of the system call): flush, then the system call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execveat(
    dirfd: c_int,
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    flags: c_int,
) -> c_int {
    runtime::around_exec(
        // SAFETY: the caller's exec arguments.
        || unsafe { exec_call::of_directory_entry(dirfd, path, argv, envp, flags) },
        // SAFETY: the raw syscall with the caller's arguments, as glibc's wrapper does.
        || unsafe { libc::syscall(libc::SYS_execveat, dirfd, path, argv, envp, flags) as c_int },
    )
}

/// Calls `next` (glibc's definition), or fails with ENOSYS when there is none.
fn call_next(next: &runtime::Forward, call: impl FnOnce(*mut c_void) -> c_int) -> c_int {
    match next.get() {
        Some(real) => call(real),
        None => {
            runtime::set_errno(libc::ENOSYS);
            -1
        }
    }
}

// The variadic exec calls, defined in exec.c (hidden): each gathers its arguments into an array
// and calls `execve` or `execvp` above.
unsafe extern "C" {
    fn leaksift_execl(path: *const c_char, arg: *const c_char, ...) -> c_int;
    fn leaksift_execle(path: *const c_char, arg: *const c_char, ...) -> c_int;
    fn leaksift_execlp(file: *const c_char, arg: *const c_char, ...) -> c_int;
}

/// Exports `$name` as a jump to the C function `$imp`: stable Rust cannot define a variadic
/// function, and a jump leaves the arguments (registers, stack, and `al`, the count of vector
/// registers used) exactly as the caller set them. The Rust signature is nominal: callers use
/// the C one, e.g. `int execl(const char *path, const char *arg, ...)`.
macro_rules! variadic_exec {
    ($name:ident, $imp:ident) => {
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name() -> c_int {
            core::arch::naked_asm!("jmp {imp}", imp = sym $imp)
        }
    };
}

variadic_exec!(execl, leaksift_execl);
variadic_exec!(execle, leaksift_execle);
variadic_exec!(execlp, leaksift_execlp);

#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvp(
    file: *const libc::c_char,
    argv: *const *const libc::c_char,
) -> c_int {
    // SAFETY: forwards with the current environment, as execvp is defined to.
    unsafe { execvpe(file, argv, sys::environ) }
}
