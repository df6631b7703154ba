//! C++ `operator new`/`delete` and jemalloc's non-standard API (`mallocx`, `sdallocx` …),
//! exported so that every allocation entry point a program reaches serves from the hooks'
//! allocator and is traced.
//!
//! An allocator library linked into the program or preloaded after the tracer defines these
//! too, and reached them, the program mixed two allocators: Debian's jemalloc, whose `malloc`
//! the hooks take over (glibc's allocator then serves the malloc family), handed out `new int[n]`
//! from its own heap and `delete[]` gave that block to the hooks' `free`, i.e. to glibc: abort;
//! its aligned `operator new` took a block from the hooks' `aligned_alloc` that its sized
//! `delete` gave back to jemalloc: crash; `free(mallocx(…))` and `sdallocx(malloc(…))` likewise.
//! Defined here, before it in the search order, all of them reach the hooks; C++ `new` under
//! tcmalloc or mimalloc, which kept their own `operator new`, is traced too. A program that
//! defines its own `operator new` keeps it (the executable comes first in the search order).
//!
//! `operator new` must call the new-handler and throw `std::bad_alloc` when memory runs out,
//! which the tracer cannot do. When the hooks' allocation fails, the trampoline jumps to the C++
//! runtime's own operator (a tail call: nothing of the tracer is left on the stack an exception
//! unwinds), which retries through the hooks' `malloc`, calls the handler and throws. It is
//! looked up in libstdc++ or libc++ with the other symbols the tracer needs, before the program
//! runs; without either loaded by then (a C program that `dlopen`s C++ later), a failed `new`
//! aborts with a message (a nothrow `new` returns null).

use core::ffi::{CStr, c_int, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::hooks::{self, free, trampoline};
use crate::runtime;

// The C++ runtime's own version of each replaced `operator new` (0: not found), where a failed
// allocation goes on to. Plain words: the trampolines load them with one `mov`.
static NEW: AtomicUsize = AtomicUsize::new(0);
static NEW_ARRAY: AtomicUsize = AtomicUsize::new(0);
static NEW_NOTHROW: AtomicUsize = AtomicUsize::new(0);
static NEW_ARRAY_NOTHROW: AtomicUsize = AtomicUsize::new(0);
static NEW_ALIGNED: AtomicUsize = AtomicUsize::new(0);
static NEW_ARRAY_ALIGNED: AtomicUsize = AtomicUsize::new(0);
static NEW_ALIGNED_NOTHROW: AtomicUsize = AtomicUsize::new(0);
static NEW_ARRAY_ALIGNED_NOTHROW: AtomicUsize = AtomicUsize::new(0);

/// Each fallback with the mangled name it is looked up by.
static FALLBACKS: [(&CStr, &AtomicUsize); 8] = [
    (c"_Znwm", &NEW),
    (c"_Znam", &NEW_ARRAY),
    (c"_ZnwmRKSt9nothrow_t", &NEW_NOTHROW),
    (c"_ZnamRKSt9nothrow_t", &NEW_ARRAY_NOTHROW),
    (c"_ZnwmSt11align_val_t", &NEW_ALIGNED),
    (c"_ZnamSt11align_val_t", &NEW_ARRAY_ALIGNED),
    (c"_ZnwmSt11align_val_tRKSt9nothrow_t", &NEW_ALIGNED_NOTHROW),
    (
        c"_ZnamSt11align_val_tRKSt9nothrow_t",
        &NEW_ARRAY_ALIGNED_NOTHROW,
    ),
];

/// C++ runtimes whose `operator new` a failed allocation goes on to, in the order tried.
const CXX_RUNTIMES: [&CStr; 2] = [c"libstdc++.so.6", c"libc++.so.1"];

/// Finds the C++ runtime's operators (from `runtime::resolve_symbols`, under the re-entry
/// guard; the runtime must already be loaded). Whether every lookup succeeded: a failed one
/// leaves a `dlerror` message for the caller to drop (a C program has no C++ runtime at all).
pub fn find_cxx_runtime() -> bool {
    let mut clean = true;
    for library in CXX_RUNTIMES {
        let Some(handle) = runtime::loaded_library(library) else {
            clean = false;
            continue;
        };
        for (name, address) in &FALLBACKS {
            // SAFETY: dlsym with a handle from dlopen and a NUL-terminated name.
            let found = unsafe { libc::dlsym(handle, name.as_ptr()) };
            clean &= !found.is_null();
            address.store(found as usize, Ordering::Release);
        }
        break;
    }
    clean
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

/// An `operator new` whose arguments (`rdi`, `rsi`, `rdx`, `rcx`) are saved, `$setup` puts the
/// arguments of `$imp` (a hook implementation taking the trampoline frame, `rbp`, as its last
/// argument) in place, and a null result goes on to `$fallback` with the original arguments, or
/// to `$missing` when the C++ runtime was not found. The setups: `(size)` and `(size, nothrow)`
/// call `malloc_impl(size, frame)`; `(size, align)` and `(size, align, nothrow)` call
/// `memalign_impl(align, size, frame)`.
macro_rules! operator_new {
    ($symbol:literal, $name:ident ( $($arg:ident : $ty:ty),* ), $setup:literal, $imp:path,
     $fallback:ident, $missing:path) => {
        #[unsafe(naked)]
        #[unsafe(export_name = $symbol)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> *mut c_void {
            core::arch::naked_asm!(
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
                "mov rax, qword ptr [rip + {fallback}]",
                "test rax, rax",
                "jz 3f",
                "jmp rax",
                "3:",
                "jmp {missing}",
                imp = sym $imp,
                fallback = sym $fallback,
                missing = sym $missing,
            )
        }
    };
}

operator_new!("_Znwm", operator_new(size: usize), "mov rsi, rbp", hooks::malloc_impl, NEW,
    new_failed_without_runtime);
operator_new!("_Znam", operator_new_array(size: usize), "mov rsi, rbp", hooks::malloc_impl,
    NEW_ARRAY, new_failed_without_runtime);
operator_new!("_ZnwmRKSt9nothrow_t", operator_new_nothrow(size: usize, nothrow: *const c_void),
    "mov rsi, rbp", hooks::malloc_impl, NEW_NOTHROW, new_nothrow_failed_without_runtime);
operator_new!("_ZnamRKSt9nothrow_t",
    operator_new_array_nothrow(size: usize, nothrow: *const c_void), "mov rsi, rbp",
    hooks::malloc_impl, NEW_ARRAY_NOTHROW, new_nothrow_failed_without_runtime);
operator_new!("_ZnwmSt11align_val_t", operator_new_aligned(size: usize, align: usize),
    "xchg rdi, rsi\nmov rdx, rbp", hooks::memalign_impl, NEW_ALIGNED, new_failed_without_runtime);
operator_new!("_ZnamSt11align_val_t", operator_new_array_aligned(size: usize, align: usize),
    "xchg rdi, rsi\nmov rdx, rbp", hooks::memalign_impl, NEW_ARRAY_ALIGNED, new_failed_without_runtime);
operator_new!("_ZnwmSt11align_val_tRKSt9nothrow_t",
    operator_new_aligned_nothrow(size: usize, align: usize, nothrow: *const c_void),
    "xchg rdi, rsi\nmov rdx, rbp", hooks::memalign_impl, NEW_ALIGNED_NOTHROW,
    new_nothrow_failed_without_runtime);
operator_new!("_ZnamSt11align_val_tRKSt9nothrow_t",
    operator_new_array_aligned_nothrow(size: usize, align: usize, nothrow: *const c_void),
    "xchg rdi, rsi\nmov rdx, rbp", hooks::memalign_impl, NEW_ARRAY_ALIGNED_NOTHROW,
    new_nothrow_failed_without_runtime);

/// An `operator delete` (any of its forms: the size, alignment and nothrow arguments change
/// nothing for the hooks' allocator): a tail call to the `free` hook.
macro_rules! operator_delete {
    ($symbol:literal, $name:ident) => {
        #[unsafe(naked)]
        #[unsafe(export_name = $symbol)]
        pub unsafe extern "C" fn $name(ptr: *mut c_void) {
            core::arch::naked_asm!("jmp {free}", free = sym free)
        }
    };
}

operator_delete!("_ZdlPv", operator_delete);
operator_delete!("_ZdaPv", operator_delete_array);
operator_delete!("_ZdlPvm", operator_delete_sized);
operator_delete!("_ZdaPvm", operator_delete_array_sized);
operator_delete!("_ZdlPvRKSt9nothrow_t", operator_delete_nothrow);
operator_delete!("_ZdaPvRKSt9nothrow_t", operator_delete_array_nothrow);
operator_delete!("_ZdlPvSt11align_val_t", operator_delete_aligned);
operator_delete!("_ZdaPvSt11align_val_t", operator_delete_array_aligned);
operator_delete!("_ZdlPvmSt11align_val_t", operator_delete_sized_aligned);
operator_delete!(
    "_ZdaPvmSt11align_val_t",
    operator_delete_array_sized_aligned
);
operator_delete!(
    "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    operator_delete_aligned_nothrow
);
operator_delete!(
    "_ZdaPvSt11align_val_tRKSt9nothrow_t",
    operator_delete_array_aligned_nothrow
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

/// `mallocx(size, flags)` through the hooks (traced as `malloc`, `memalign` when aligned).
extern "C" fn mallocx_impl(size: usize, flags: c_int, frame: *const u64) -> *mut c_void {
    let flags = MallocxFlags(flags);
    let ptr = match flags.alignment() {
        Some(align) => hooks::memalign_impl(align, size, frame),
        None => hooks::malloc_impl(size, frame),
    };
    if flags.zeroed() && !ptr.is_null() {
        // SAFETY: the block just allocated holds at least `size` bytes.
        unsafe { core::ptr::write_bytes(ptr.cast::<u8>(), 0, size) };
    }
    ptr
}

/// `rallocx(ptr, size, flags)`: a traced `realloc` when no alignment beyond malloc's is asked,
/// else a new aligned block with the contents copied. With `MALLOCX_ZERO` the bytes past the
/// old size are zero.
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
                // SAFETY: both blocks are live and hold at least the bytes copied.
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
        unsafe { core::ptr::write_bytes(new.cast::<u8>().add(old_size), 0, size - old_size) };
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
