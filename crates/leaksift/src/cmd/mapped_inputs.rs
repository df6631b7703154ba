//! Turning the SIGBUS of a mapped heap file that shrank under us into a one-line error (exit 2).
//!
//! `heap`, `paths` and `diff` map plain heap files into memory. When another process truncates
//! such a file while it is read (a dump still being written, a file rotated away), touching a
//! page past the new end raises SIGBUS, as does a disk read error under a mapping; either would
//! kill leaksift without a word. Before a file is mapped, [`guard`] names it in the message the
//! handler prints; the handler writes that line and exits with the input-error code. The fault
//! mostly comes while the file is loaded, before anything is computed; an HPROF dump is also
//! read again for `--duplicate-strings` before the report is printed, and a fault there loses
//! the analysis with the run (README, limitations).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use anyhow::Context;

use crate::outcome::Outcome;

/// The line the handler writes: a leaked, immutable buffer, replaced (and the old one leaked:
/// a handler may be reading it) when another file is guarded.
static MESSAGE: AtomicPtr<Vec<u8>> = AtomicPtr::new(std::ptr::null_mut());

/// Set by the first thread in the handler.
static HANDLING: AtomicBool = AtomicBool::new(false);

/// The files guarded so far, and whether the handler is installed.
static GUARDED: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Names `path` in the SIGBUS message, installing the handler the first time.
pub fn guard(path: &Path) -> anyhow::Result<()> {
    let mut guarded = GUARDED.lock().unwrap_or_else(|poison| poison.into_inner());
    if guarded.is_none() {
        install_handler()?;
    }
    let files = guarded.get_or_insert_with(Vec::new);
    files.push(path.display().to_string());
    let line = format!(
        "leaksift: error: {}: a page of the mapped file could not be read (SIGBUS): the file \
         was shortened while being read, or the disk failed; read a copy of a file that is \
         still being written\n",
        files.join(" or ")
    );
    let line = leaksift_report::escape::terminal(&line).into_owned();
    MESSAGE.store(
        Box::into_raw(Box::new(line.into_bytes())),
        Ordering::Release,
    );
    Ok(())
}

/// Replaces the SIGBUS disposition with [`on_sigbus`]. Set with sigaction rather than through
/// signal-hook, which first calls the handler already there (the Rust runtime's, for stack
/// overflows): that one resets SIGBUS to its default, so a second thread faulting meanwhile
/// killed the process before the line was out.
fn install_handler() -> anyhow::Result<()> {
    // SAFETY: a zeroed sigaction is a valid value (no flags, empty mask) before it is filled in.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `action` is initialised; on_sigbus only loads an atomic pointer, reads the
    // immutable buffer it points to, and calls write(2) and _exit(2), all async-signal-safe. It
    // never returns, so the faulting access is not retried.
    if unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error())
            .context("installing the SIGBUS handler for mapped files");
    }
    Ok(())
}

extern "C" fn on_sigbus(_signal: libc::c_int) {
    // Threads reading the file in parallel fault together: the first one writes the line and
    // ends the process; the others wait for that end, so the line is written once.
    if HANDLING.swap(true, Ordering::AcqRel) {
        loop {
            // SAFETY: pause(2) is async-signal-safe; the first thread's _exit ends this wait.
            unsafe { libc::pause() };
        }
    }
    let message = MESSAGE.load(Ordering::Acquire);
    if !message.is_null() {
        // SAFETY: a non-null MESSAGE points to a leaked Vec that is never freed or changed.
        let bytes = unsafe { &*message };
        // SAFETY: writes the buffer's initialised bytes to stderr; the result does not matter.
        unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
    }
    // SAFETY: _exit is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(i32::from(Outcome::INPUT_ERROR_CODE)) };
}
