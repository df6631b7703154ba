//! Running out of memory, or of threads, ends leaksift with one error line and exit status 2,
//! not an abort.
//!
//! Rust's allocation error handler prints "memory allocation of N bytes failed" and aborts
//! (SIGABRT, exit status 134, a core dump where they are on): what a user with a dump larger than
//! its memory limit (`ulimit -v`, a container, `vm.overcommit_memory=2`) got from `heap`, `diff`,
//! `report` or `trend`, instead of an error. Stable Rust cannot replace that handler, so the
//! allocator notes when an allocation fails and a SIGABRT handler, seeing that note, prints the
//! error line and exits with status 2. The note stays once set: the handler's own report (a
//! backtrace with `RUST_BACKTRACE`) may allocate fine before it aborts. A SIGABRT after a panic
//! (panics abort: a bug), or with no allocation failed (glibc's heap checks), keeps its default
//! action.
//!
//! A thread that cannot be started (the user's or container's process limit: `ulimit -u`, a
//! cgroup's `pids.max`) panics in std's `spawn` and in rayon's first use; the panic hook tells
//! that panic from the others and turns it into the error line too.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The system allocator, noting whether an allocation failed.
pub struct NotingAllocator;

/// Set when an allocation fails (`try_reserve` failures included: they are rare, and an abort
/// after one that is not a panic is as good as out of memory).
static ALLOCATION_FAILED: AtomicBool = AtomicBool::new(false);
/// Set by the panic hook.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// The error line, made at start (the handler must not allocate).
static MESSAGE: OnceLock<Vec<u8>> = OnceLock::new();

fn note(ptr: *mut u8) -> *mut u8 {
    if ptr.is_null() {
        ALLOCATION_FAILED.store(true, Ordering::Relaxed);
    }
    ptr
}

// SAFETY: every method forwards to the system allocator with the caller's arguments.
unsafe impl GlobalAlloc for NotingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: per GlobalAlloc's contract, passed on.
        note(unsafe { System.alloc(layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: per GlobalAlloc's contract, passed on.
        note(unsafe { System.alloc_zeroed(layout) })
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: per GlobalAlloc's contract, passed on.
        note(unsafe { System.realloc(ptr, layout, new_size) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: per GlobalAlloc's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

extern "C" fn on_abort(_signal: libc::c_int) {
    if ALLOCATION_FAILED.load(Ordering::Relaxed)
        && !PANICKED.load(Ordering::Relaxed)
        && let Some(message) = MESSAGE.get()
    {
        // SAFETY: write(2) and _exit are async-signal-safe; the buffer was made at start.
        unsafe {
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::_exit(2);
        }
    }
    // SAFETY: restores the default action and raises the signal again: the abort goes on.
    unsafe {
        libc::signal(libc::SIGABRT, libc::SIG_DFL);
        libc::raise(libc::SIGABRT);
    }
}

/// The operating system's reason when `info` is the panic of a thread that could not be
/// started: std's `spawn` (`failed to spawn thread: Os { … }`) and rayon's first use
/// (`ThreadPoolBuildError`) panic when the process limit is reached, which is no bug of ours.
fn thread_limit_reached(info: &std::panic::PanicHookInfo<'_>) -> Option<String> {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())?;
    thread_limit_reason(message)
}

/// [`thread_limit_reached`] for a panic's message.
fn thread_limit_reason(message: &str) -> Option<String> {
    if !(message.starts_with("failed to spawn thread") || message.contains("ThreadPoolBuildError"))
    {
        return None;
    }
    // The `message: "…"` of the io::Error's debug form, else the whole text.
    let reason = message
        .split_once("message: \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or(message, |(reason, _)| reason);
    Some(reason.to_string())
}

/// Installs the handler; the error line names the arguments that are files (the inputs).
pub fn report_as_an_error(arguments: &[OsString]) {
    let files: Vec<String> = arguments
        .iter()
        .skip(1)
        .filter(|a| Path::new(a).is_file())
        .map(|a| leaksift_report::escape::terminal(&a.to_string_lossy()).into_owned())
        .collect();
    let subject = if files.is_empty() {
        String::new()
    } else {
        format!("{}: ", files.join(", "))
    };
    let line = format!(
        "leaksift: error: {subject}out of memory: the analysis needs more memory than this \
         process may use (ulimit -v, a container's memory limit, vm.overcommit_memory=2)\n"
    );
    let _ = MESSAGE.set(line.into_bytes());
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(reason) = thread_limit_reached(info) {
            // Not a bug: the process may create no more threads. One line, status 2.
            crate::error_line(&format!(
                "{subject}cannot start a thread ({reason}): this user or container may run no \
                 more processes (ulimit -u, a cgroup's pids.max)"
            ));
            std::process::exit(2);
        }
        PANICKED.store(true, Ordering::Relaxed);
        default_hook(info);
    }));
    // SAFETY: installs a handler that only reads atomics and a buffer set above, and calls
    // async-signal-safe functions.
    unsafe {
        libc::signal(
            libc::SIGABRT,
            on_abort as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::thread_limit_reason;

    #[test]
    fn a_thread_that_could_not_start_is_told_from_other_panics() {
        assert_eq!(
            thread_limit_reason(
                "failed to spawn thread: Os { code: 11, kind: WouldBlock, message: \"Resource \
                 temporarily unavailable\" }"
            )
            .as_deref(),
            Some("Resource temporarily unavailable")
        );
        assert!(
            thread_limit_reason(
                "The global thread pool has not been initialized.: ThreadPoolBuildError { kind: \
                 IOError(...) }"
            )
            .is_some()
        );
        assert_eq!(thread_limit_reason("index out of bounds"), None);
    }
}
