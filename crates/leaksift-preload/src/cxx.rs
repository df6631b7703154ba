//! C++ `operator new`/`delete` and jemalloc's non-standard API (`mallocx`, `sdallocx` …),
//! exported so that a program linked with an allocator library, whose `malloc` the hooks take
//! over, does not mix two allocators.
//!
//! Debian's jemalloc defines its own `operator new`/`delete`, and reached, they mixed heaps: its
//! `new[]` served from jemalloc's heap while its `delete[]` is `free@plt`, the hooks' `free`,
//! which gave the block to glibc (abort); its aligned `new` took the hooks' `aligned_alloc`
//! (glibc) blocks that its sized `delete` gave back to jemalloc (crash); `free(mallocx(…))` and
//! `sdallocx(malloc(…))` likewise.
//!
//! Each operator here is a dispatch on the definition the program would have reached without
//! the tracer: the next one in the search order (`dlsym(RTLD_NEXT)`, looked up with the other
//! symbols before the program runs, [`resolve_operators`]). When that definition belongs to an
//! allocator library ([`ALLOCATOR_LIBRARIES`]: jemalloc, tcmalloc, mimalloc…), `new(size_t)` and
//! `delete(void*)` are the tracer's own, over the hooks, and the other forms go to the C++
//! runtime's, which call those two: every block comes from the one allocator behind the hooks
//! and C++ `new` is traced. Otherwise (libstdc++'s, libc++'s, a program's or a library's own
//! replacement — C++ lets a program replace only `operator new(size_t)` and `delete(void*)`, the
//! runtime's other forms calling those) the call jumps on to that definition unchanged, as if
//! the tracer defined none. A definition only found later (a C++ extension of a C program: its
//! libstdc++ is loaded outside the global search order) is looked up on the first call
//! ([`resolve_late`]), in the C++ runtime that is loaded.
//!
//! The tracer's own `operator new` must call the new-handler and throw `std::bad_alloc` when
//! memory runs out, which it cannot do: when the hooks' allocation fails, it jumps on (a tail
//! call: nothing of the tracer is left on the stack an exception unwinds) to the C++ runtime's
//! operator, which retries through the hooks' `malloc`, calls the handler and throws. Without a
//! C++ runtime loaded at start, a failed `new` aborts with a message (a nothrow `new` returns
//! null).

use core::ffi::{CStr, c_int, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

use leaksift_trace::allocators::ALLOCATOR_LIBRARIES;

use crate::hooks::{self, free, trampoline};
use crate::runtime;

/// The replaceable operators, by mangled name, in the order of [`OPERATOR_STATES`]; the first
/// eight are the `operator new`s.
static OPERATORS: [&CStr; 20] = [
    c"_Znwm",
    c"_Znam",
    c"_ZnwmRKSt9nothrow_t",
    c"_ZnamRKSt9nothrow_t",
    c"_ZnwmSt11align_val_t",
    c"_ZnamSt11align_val_t",
    c"_ZnwmSt11align_val_tRKSt9nothrow_t",
    c"_ZnamSt11align_val_tRKSt9nothrow_t",
    c"_ZdlPv",
    c"_ZdaPv",
    c"_ZdlPvm",
    c"_ZdaPvm",
    c"_ZdlPvRKSt9nothrow_t",
    c"_ZdaPvRKSt9nothrow_t",
    c"_ZdlPvSt11align_val_t",
    c"_ZdaPvSt11align_val_t",
    c"_ZdlPvmSt11align_val_t",
    c"_ZdaPvmSt11align_val_t",
    c"_ZdlPvSt11align_val_tRKSt9nothrow_t",
    c"_ZdaPvSt11align_val_tRKSt9nothrow_t",
];

/// Where each operator goes: [`UNRESOLVED`], [`OURS`] (the tracer's own, over the hooks), or the
/// address of the definition it jumps on to. Plain words: the trampolines load them with one
/// `mov`.
static OPERATOR_STATES: [AtomicUsize; 20] = [const { AtomicUsize::new(UNRESOLVED) }; 20];
const UNRESOLVED: usize = 0;
const OURS: usize = 1;

/// The C++ runtime's own `operator new`s (the first eight of [`OPERATORS`]), where the tracer's
/// go on to when an allocation fails (0: none found).
static FALLBACKS: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];

/// C++ runtimes, in the order tried: for the fallbacks, and for operators found late.
const CXX_RUNTIMES: [&CStr; 2] = [c"libstdc++.so.6", c"libc++.so.1"];

/// Whether `address` lies in one of [`ALLOCATOR_LIBRARIES`].
fn in_allocator_library(address: *mut c_void) -> bool {
    // SAFETY: dladdr fills `info` for an address inside a loaded object (it does not touch the
    // dlerror state); the name it points to lives as long as the object.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        if libc::dladdr(address, &mut info) == 0 || info.dli_fname.is_null() {
            return false;
        }
        let path = CStr::from_ptr(info.dli_fname).to_bytes();
        let name = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
        ALLOCATOR_LIBRARIES
            .iter()
            .any(|prefix| name.starts_with(prefix.as_bytes()))
    }
}

/// The indices in [`OPERATORS`] of the two operators a program replaces (`new(size_t)`,
/// `delete(void*)`): the C++ runtime's other forms call these.
const BASIC_NEW: usize = 0;
const BASIC_DELETE: usize = 8;

/// Decides where each operator goes and finds the C++ runtime's fallbacks (from
/// `runtime::resolve_symbols`, under the re-entry guard, before the program runs). Whether every
/// lookup succeeded: a failed one leaves a `dlerror` message for the caller to drop.
///
/// When the next definition is an allocator library's, the two basic operators are the
/// tracer's, and the other forms go to the C++ runtime's, which call the basic two as the
/// standard's defaults do: through the search order, so to a program's own replacement of
/// them if it has one (jemalloc's sized `delete` would skip it; the tracer's own would have given
/// the replacement's block to glibc), else to the tracer's.
pub fn resolve_operators() -> bool {
    let mut clean = true;
    let mut runtime_operators = [0usize; 20];
    for library in CXX_RUNTIMES {
        let Some(handle) = runtime::loaded_library(library) else {
            clean = false;
            continue;
        };
        for (name, found) in OPERATORS.iter().zip(&mut runtime_operators) {
            // SAFETY: dlsym with a handle from dlopen and a NUL-terminated name.
            *found = unsafe { libc::dlsym(handle, name.as_ptr()) } as usize;
            clean &= *found != 0;
        }
        break;
    }
    for (fallback, found) in FALLBACKS.iter().zip(runtime_operators) {
        fallback.store(found, Ordering::Release);
    }
    for (index, (name, state)) in OPERATORS.iter().zip(&OPERATOR_STATES).enumerate() {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
        let next = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
        clean &= !next.is_null();
        let to = if next.is_null() {
            UNRESOLVED
        } else if !in_allocator_library(next) {
            next as usize
        } else if index == BASIC_NEW || index == BASIC_DELETE || runtime_operators[index] == 0 {
            OURS
        } else {
            runtime_operators[index]
        };
        state.store(to, Ordering::Release);
    }
    clean
}

/// Where operator `index` goes when it was not resolved: what [`resolve_operators`] finds when
/// it has not run yet, else the loaded C++ runtime's definition, else the tracer's own. Called
/// from the operator's trampoline (once per operator), outside the re-entry guard.
extern "C" fn resolve_late(index: usize) -> usize {
    // Called before the constructor (another library's static constructor allocating): the
    // lookups it would make come first.
    runtime::resolve_symbols();
    let state = OPERATOR_STATES[index].load(Ordering::Acquire);
    if state != UNRESOLVED {
        return state;
    }
    let name = OPERATORS[index];
    let found = CXX_RUNTIMES.iter().find_map(|library| {
        let handle = runtime::loaded_library(library)?;
        // SAFETY: dlsym with a handle from dlopen and a NUL-terminated name.
        let found = unsafe { libc::dlsym(handle, name.as_ptr()) };
        (!found.is_null()).then_some(found as usize)
    });
    let to = found.unwrap_or(OURS);
    OPERATOR_STATES[index].store(to, Ordering::Release);
    to
}

/// A throwing `operator new` failed and no C++ runtime was found to throw `std::bad_alloc`.
extern "C" fn new_failed_without_runtime() -> ! {
    let message = b"leaksift: operator new: out of memory, and no C++ runtime was loaded at start \
                    to throw std::bad_alloc\n";
    // SAFETY: write(2) of a static buffer; abort ends the process as an uncaught bad_alloc would.
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::abort()
    }
}

/// A nothrow `operator new` failed and no C++ runtime was found: null, as it returns.
extern "C" fn new_nothrow_failed_without_runtime() -> *mut c_void {
    core::ptr::null_mut()
}

/// A replaceable operator: its state word ([`OPERATOR_STATES`]`[$index]`) says whether to jump
/// on to another definition, to resolve one first ([`resolve_late`], the arguments saved), or
/// to run `$ours` (the tracer's own), whose operands follow.
macro_rules! replaceable_operator {
    ($symbol:literal, $name:ident ( $($arg:ident : $ty:ty),* ) $(-> $ret:ty)?, $index:literal,
     [$($ours:literal),*] $(, $operand:ident = sym $target:path)*) => {
        #[unsafe(naked)]
        #[unsafe(export_name = $symbol)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            core::arch::naked_asm!(
                "mov rax, qword ptr [rip + {states} + {offset}]",
                "cmp rax, 1",
                "je 1f",
                "test rax, rax",
                "jz 3f",
                "jmp rax",
                "3:",
                "push rdi",
                "push rsi",
                "push rdx",
                "push rcx",
                "push rcx",
                "mov edi, {index}",
                "call {late}",
                "mov r11, rax",
                "pop rcx",
                "pop rcx",
                "pop rdx",
                "pop rsi",
                "pop rdi",
                "cmp r11, 1",
                "je 1f",
                "jmp r11",
                "1:",
                $($ours),*,
                states = sym OPERATOR_STATES,
                offset = const $index * 8,
                index = const $index,
                late = sym resolve_late,
                $($operand = sym $target),*
            )
        }
    };
}

/// The tracer's own `operator new`: its arguments (`rdi`, `rsi`, `rdx`, `rcx`) saved, `$setup`
/// puts those of `$imp` (a hook implementation taking the trampoline frame, `rbp`, last) in
/// place, and a null result goes on to the C++ runtime's operator (`[FALLBACKS + $index * 8]`)
/// with the original arguments, or to `$missing` without one. The setups: `(size)` and
/// `(size, nothrow)` call `malloc_impl(size, frame)`; `(size, align)` and
/// `(size, align, nothrow)` call `memalign_impl(align, size, frame)`.
macro_rules! operator_new {
    ($symbol:literal, $name:ident ( $($arg:ident : $ty:ty),* ), $index:literal, $setup:literal,
     $imp:path, $missing:path) => {
        replaceable_operator!($symbol, $name($($arg: $ty),*) -> *mut c_void, $index, [
            "push rbp",
            "mov rbp, rsp",
            "push rdi",
            "push rsi",
            "push rdx",
            "push rcx",
            $setup,
            "call {imp}",
            "pop rcx",
            "pop rdx",
            "pop rsi",
            "pop rdi",
            "pop rbp",
            "test rax, rax",
            "jz 2f",
            "ret",
            "2:",
            "mov rax, qword ptr [rip + {fallbacks} + {offset}]",
            "test rax, rax",
            "jz 4f",
            "jmp rax",
            "4:",
            "jmp {missing}"
        ], imp = sym $imp, fallbacks = sym FALLBACKS, missing = sym $missing);
    };
}

operator_new!("_Znwm", operator_new(size: usize), 0, "mov rsi, rbp", hooks::malloc_impl,
    new_failed_without_runtime);
operator_new!("_Znam", operator_new_array(size: usize), 1, "mov rsi, rbp", hooks::malloc_impl,
    new_failed_without_runtime);
operator_new!("_ZnwmRKSt9nothrow_t", operator_new_nothrow(size: usize, nothrow: *const c_void),
    2, "mov rsi, rbp", hooks::malloc_impl, new_nothrow_failed_without_runtime);
operator_new!("_ZnamRKSt9nothrow_t",
    operator_new_array_nothrow(size: usize, nothrow: *const c_void), 3, "mov rsi, rbp",
    hooks::malloc_impl, new_nothrow_failed_without_runtime);
operator_new!("_ZnwmSt11align_val_t", operator_new_aligned(size: usize, align: usize), 4,
    "xchg rdi, rsi\nmov rdx, rbp", hooks::memalign_impl, new_failed_without_runtime);
operator_new!("_ZnamSt11align_val_t", operator_new_array_aligned(size: usize, align: usize), 5,
    "xchg rdi, rsi\nmov rdx, rbp", hooks::memalign_impl, new_failed_without_runtime);
operator_new!("_ZnwmSt11align_val_tRKSt9nothrow_t",
    operator_new_aligned_nothrow(size: usize, align: usize, nothrow: *const c_void), 6,
    "xchg rdi, rsi\nmov rdx, rbp", hooks::memalign_impl, new_nothrow_failed_without_runtime);
operator_new!("_ZnamSt11align_val_tRKSt9nothrow_t",
    operator_new_array_aligned_nothrow(size: usize, align: usize, nothrow: *const c_void), 7,
    "xchg rdi, rsi\nmov rdx, rbp", hooks::memalign_impl, new_nothrow_failed_without_runtime);

/// The tracer's own `operator delete` (any form: the size, alignment and nothrow arguments
/// change nothing for the hooks' allocator): a tail call to the `free` hook.
macro_rules! operator_delete {
    ($symbol:literal, $name:ident, $index:literal) => {
        replaceable_operator!($symbol, $name(ptr: *mut c_void), $index, ["jmp {free}"],
            free = sym free);
    };
}

operator_delete!("_ZdlPv", operator_delete, 8);
operator_delete!("_ZdaPv", operator_delete_array, 9);
operator_delete!("_ZdlPvm", operator_delete_sized, 10);
operator_delete!("_ZdaPvm", operator_delete_array_sized, 11);
operator_delete!("_ZdlPvRKSt9nothrow_t", operator_delete_nothrow, 12);
operator_delete!("_ZdaPvRKSt9nothrow_t", operator_delete_array_nothrow, 13);
operator_delete!("_ZdlPvSt11align_val_t", operator_delete_aligned, 14);
operator_delete!("_ZdaPvSt11align_val_t", operator_delete_array_aligned, 15);
operator_delete!("_ZdlPvmSt11align_val_t", operator_delete_sized_aligned, 16);
operator_delete!(
    "_ZdaPvmSt11align_val_t",
    operator_delete_array_sized_aligned,
    17
);
operator_delete!(
    "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    operator_delete_aligned_nothrow,
    18
);
operator_delete!(
    "_ZdaPvSt11align_val_tRKSt9nothrow_t",
    operator_delete_array_aligned_nothrow,
    19
);

/// jemalloc's `flags` argument: `MALLOCX_LG_ALIGN(la)`/`MALLOCX_ALIGN(a)` in the low six bits
/// (log2 of the alignment, 0 = none), `MALLOCX_ZERO`; tcache and arena choices mean nothing
/// to the hooks' allocator.
#[derive(Clone, Copy)]
struct MallocxFlags(c_int);

impl MallocxFlags {
    const ZERO: c_int = 0x40;

    /// The alignment asked for, if any beyond malloc's own (16 bytes).
    fn alignment(self) -> Option<usize> {
        let lg = (self.0 & 0x3f) as u32;
        (lg > 4).then(|| 1usize.checked_shl(lg).unwrap_or(usize::MAX))
    }

    fn zeroed(self) -> bool {
        self.0 & Self::ZERO != 0
    }
}

/// Zeroes `len` bytes at `ptr`, writing only words that are not zero already: the fresh pages
/// of a large block are zero, and writing them would make them all resident (a zeroed 1 GiB
/// `mallocx` or `rallocx` took 1 GiB of memory, where jemalloc's takes none). Reading an
/// untouched page maps the shared zero page, which counts for nothing.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes.
unsafe fn zero_where_not_zero(ptr: *mut u8, len: usize) {
    let (head, words, tail) = {
        // SAFETY: per the contract; the slice is the caller's block.
        let bytes = unsafe { core::slice::from_raw_parts_mut(ptr, len) };
        // SAFETY: any bit pattern is a valid u64.
        unsafe { bytes.align_to_mut::<u64>() }
    };
    head.fill(0);
    tail.fill(0);
    for word in words {
        if *word != 0 {
            *word = 0;
        }
    }
}

/// `mallocx(size, flags)` through the hooks (traced as `malloc`, `calloc` when zeroed,
/// `memalign` when aligned).
extern "C" fn mallocx_impl(size: usize, flags: c_int, frame: *const u64) -> *mut c_void {
    let flags = MallocxFlags(flags);
    match (flags.alignment(), flags.zeroed()) {
        // calloc, which leaves fresh pages untouched (they are zero).
        (None, true) => hooks::calloc_impl(1, size, frame),
        (None, false) => hooks::malloc_impl(size, frame),
        (Some(align), zeroed) => {
            let ptr = hooks::memalign_impl(align, size, frame);
            if zeroed && !ptr.is_null() {
                // SAFETY: the block just allocated holds at least `size` bytes.
                unsafe { zero_where_not_zero(ptr.cast(), size) };
            }
            ptr
        }
    }
}

/// `rallocx(ptr, size, flags)`: a traced `realloc`, or, with an alignment beyond malloc's, a new
/// aligned block with the contents copied and the old one freed. With `MALLOCX_ZERO` the bytes
/// past the old size are zero.
extern "C" fn rallocx_impl(
    ptr: *mut c_void,
    size: usize,
    flags: c_int,
    frame: *const u64,
) -> *mut c_void {
    let flags = MallocxFlags(flags);
    // SAFETY: `ptr` is a live block of the hooks' allocator (rallocx's contract).
    let old_size = unsafe { hooks::malloc_usable_size(ptr) };
    let new = match flags.alignment() {
        None => hooks::realloc_impl(ptr, size, frame),
        Some(align) => {
            let new = hooks::memalign_impl(align, size, frame);
            if !new.is_null() {
                // SAFETY: both blocks are live and hold at least the bytes copied; the old one
                // is freed once, as rallocx's success does.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        ptr.cast::<u8>(),
                        new.cast::<u8>(),
                        old_size.min(size),
                    );
                    free(ptr);
                }
            }
            new
        }
    };
    if flags.zeroed() && !new.is_null() && size > old_size {
        // SAFETY: the new block holds at least `size` bytes.
        unsafe { zero_where_not_zero(new.cast::<u8>().add(old_size), size - old_size) };
    }
    new
}

trampoline!(mallocx(size: usize, flags: c_int) -> *mut c_void, mallocx_impl, "rdx");
trampoline!(rallocx(ptr: *mut c_void, size: usize, flags: c_int) -> *mut c_void, rallocx_impl, "rcx");

/// `xallocx(ptr, size, extra, flags)`: the block cannot grow in place in the hooks' allocator,
/// so its real size, unchanged (what jemalloc returns when it cannot resize in place).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xallocx(
    ptr: *mut c_void,
    _size: usize,
    _extra: usize,
    _flags: c_int,
) -> usize {
    // SAFETY: `ptr` is a live block of the hooks' allocator (xallocx's contract).
    unsafe { hooks::malloc_usable_size(ptr) }
}

/// `sallocx(ptr, flags)`: the block's real size.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sallocx(ptr: *mut c_void, _flags: c_int) -> usize {
    // SAFETY: `ptr` is a live block of the hooks' allocator (sallocx's contract).
    unsafe { hooks::malloc_usable_size(ptr) }
}

/// `dallocx(ptr, flags)`: `free`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dallocx(ptr: *mut c_void, flags: c_int) {
    core::arch::naked_asm!("jmp {free}", free = sym free)
}

/// `sdallocx(ptr, size, flags)`: `free`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sdallocx(ptr: *mut c_void, size: usize, flags: c_int) {
    core::arch::naked_asm!("jmp {free}", free = sym free)
}

/// `nallocx(size, flags)`: the real size `mallocx(size, flags)` gives is at least `size`; the
/// hooks' allocator may round up more (glibc's and tcmalloc's or mimalloc's size classes differ),
/// so `size` itself, which a program can always use in full, or 0 when it cannot be allocated.
#[unsafe(no_mangle)]
pub extern "C" fn nallocx(size: usize, _flags: c_int) -> usize {
    if size <= isize::MAX as usize { size } else { 0 }
}
