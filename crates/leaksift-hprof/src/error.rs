//! Typed reader errors; every one names the byte offset in the (decompressed) dump.

/// Why a dump could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("not an HPROF dump (expected \"JAVA PROFILE 1.0.1/1.0.2/1.0.3\" header)")]
    NotHprof,
    #[error("unsupported identifier size {0} (expected 4 or 8)")]
    IdSize(u32),
    #[error("truncated: {what} needs {needed} bytes, {available} left")]
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("unknown heap dump sub-record tag 0x{0:02x}")]
    UnknownSubRecord(u8),
    #[error("invalid basic type {0} in {1}")]
    BadType(u8, &'static str),
    #[error("sub-record runs past the end of its heap dump segment (segment ends at byte {0})")]
    SegmentOverrun(u64),
    #[error(
        "the file ends without a HEAP DUMP or HEAP DUMP SEGMENT record: it holds no heap (cut \
         before its first heap dump record?)"
    )]
    NoHeapDump,
    #[error("{0}")]
    Malformed(&'static str),
    #[error("I/O: {0}")]
    Io(String),
}

/// A reader error at a byte offset of the dump (after gzip decompression, if any).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {kind}")]
pub struct HprofError {
    pub offset: u64,
    pub kind: ErrorKind,
}

impl HprofError {
    pub(crate) fn new(offset: u64, kind: ErrorKind) -> Self {
        HprofError { offset, kind }
    }
}
