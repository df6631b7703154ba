//! Writing results to stdout without panicking when the reader has gone away
//! (`leaksift heap --json f | head -1`): a closed pipe ends the output quietly.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout turned out to be a closed pipe: later output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout and flushes. Control characters from dumps and traces (ESC, CR…) are
/// replaced, so a hostile name cannot drive the terminal. A closed pipe (EPIPE) is not an error:
/// the rest of the output is dropped and the command ends with its usual exit code. Other write
/// errors are returned.
pub fn print(text: &str) -> std::io::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let text = leaksift_report::escape::terminal(text);
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() == ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        // Said to be stdout: "No space left on device" alone names no file.
        Err(error) => Err(std::io::Error::new(
            error.kind(),
            format!("writing to stdout: {error}"),
        )),
        Ok(()) => Ok(()),
    }
}

/// [`print`] with a newline after `text`.
pub fn println(text: &str) -> std::io::Result<()> {
    print(&format!("{text}\n"))
}

/// Prints one JSON value, pretty, on stdout (see [`print`] for closed pipes).
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println(&serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// Prints one JSON value, pretty, on stdout as [`print_json`] does, but written as it is
/// serialized (in chunks of about 64 KiB, each through [`print`]) rather than built whole first:
/// for outputs of hundreds of megabytes. The text is the same as [`print_json`]'s of the value
/// `serde_json::to_value` makes of `value` (with `preserve_order`, fields in declaration order).
pub fn print_json_streamed<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    /// Buffers serialized bytes and prints them at UTF-8 boundaries ([`terminal`] escapes
    /// character by character, so chunks print as the whole would).
    ///
    /// [`terminal`]: leaksift_report::escape::terminal
    struct Chunks(Vec<u8>);
    const CHUNK: usize = 64 * 1024;
    impl Chunks {
        fn print_valid_prefix(&mut self) -> std::io::Result<()> {
            let valid = match std::str::from_utf8(&self.0) {
                Ok(text) => text.len(),
                Err(error) => error.valid_up_to(),
            };
            print(std::str::from_utf8(&self.0[..valid]).unwrap_or_default())?;
            self.0.drain(..valid);
            if STDOUT_CLOSED.load(Ordering::Relaxed) {
                // Nobody reads the rest: stop serializing (reported as a closed pipe below).
                return Err(std::io::Error::from(ErrorKind::BrokenPipe));
            }
            Ok(())
        }
    }
    impl Write for Chunks {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.extend_from_slice(bytes);
            if self.0.len() >= CHUNK {
                self.print_valid_prefix()?;
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Chunks(Vec::with_capacity(2 * CHUNK));
    let written = serde_json::to_writer_pretty(&mut out, value).and_then(|()| {
        out.0.push(b'\n');
        out.print_valid_prefix().map_err(serde_json::Error::io)
    });
    match written {
        Err(error)
            if error.io_error_kind() == Some(ErrorKind::BrokenPipe)
                && STDOUT_CLOSED.load(Ordering::Relaxed) =>
        {
            Ok(())
        }
        written => Ok(written?),
    }
}

/// `println!` through [`println`]: evaluates to `std::io::Result<()>`, quiet on a closed stdout.
macro_rules! outln {
    () => {
        $crate::output::println("")
    };
    ($($arg:tt)*) => {
        $crate::output::println(&format!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes a whole output file (a chart, a flamegraph, a suppressions or JUnit file) so that a
/// failed write leaves the previous file as it was: an existing regular file is replaced by
/// renaming a complete copy written beside it (same directory, same permissions), which a full
/// disk or a kill cannot leave half-written. A new file, or anything else (a FIFO, a device,
/// `/dev/stdout`), is written in place; a new file that could not be written whole is removed.
pub fn replace_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let existing = std::fs::symlink_metadata(path).ok();
    let Some(metadata) = existing.filter(|m| m.file_type().is_file()) else {
        let new = !path.exists();
        let written = std::fs::write(path, bytes);
        if written.is_err() && new {
            let _ = std::fs::remove_file(path);
        }
        return written;
    };
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".leaksift-{}", std::process::id()));
    let temporary = path.with_file_name(name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(std::os::unix::fs::PermissionsExt::mode(
            &metadata.permissions(),
        ))
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_data()))
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}
