//! Errors of the trace reader: each names the byte offset in the file where decoding failed.

use std::io;

/// Why a trace could not be read. Every variant carries the byte offset (from the start of the file)
/// of the structure that failed to decode; [`TraceError::offset`] returns it.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The cause is the error's source (shown after it by the CLI), not repeated here.
    #[error("cannot read trace at byte {offset}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("not a leaksift trace: bad magic bytes at byte 0")]
    BadMagic,
    /// A trace file with no byte at all: `record`'s tracer wrote nothing (a disk full before
    /// its first write, a tracer that stopped at once).
    #[error(
        "empty trace (0 bytes): nothing was recorded (a disk full before the first write, or a \
         tracer that stopped at once)"
    )]
    Empty,
    #[error(
        "unsupported trace format version {version} at byte {offset} (this build reads versions {} to {})",
        crate::format::OLDEST_READABLE_VERSION,
        crate::format::FORMAT_VERSION
    )]
    UnsupportedVersion { offset: u64, version: u32 },
    #[error("corrupt trace at byte {offset}: {what}")]
    Corrupt { offset: u64, what: String },
}

impl TraceError {
    /// Byte offset in the file where the failing structure starts.
    pub fn offset(&self) -> u64 {
        match self {
            TraceError::Io { offset, .. }
            | TraceError::UnsupportedVersion { offset, .. }
            | TraceError::Corrupt { offset, .. } => *offset,
            TraceError::BadMagic | TraceError::Empty => 0,
        }
    }
}
