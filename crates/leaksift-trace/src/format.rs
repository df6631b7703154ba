//! On-disk layout constants of the trace format (version 6); `docs/trace-format.md` is the prose form.
//!
//! ```text
//! file    = MAGIC (8) | version u32le | header_len u32le | header (header_len) | header_crc u32le | chunk*
//! chunk   = raw_len u32le | stored_len u32le | codec u8 | crc32(raw payload) u32le | stored bytes
//! payload = record*            (record state resets at every chunk; the zstd stream runs across chunks)
//! record  = tag u8 | fields    (varints are LEB128; "Δ" fields are zigzag varints of a wrapping difference)
//! ```
//!
//! | tag | record | fields |
//! |-----|--------|--------|
//! | 1 | time tick | Δ time (ns) from the previous tick; later records carry this time |
//! | 2 | stack | id, frame count, first frame, then Δ from the previous frame |
//! | 3 | module loaded | id, base, path length + bytes, build-id length + 1 (0 = none) + bytes, range count, (start, length)* |
//! | 4 | module unloaded | id |
//! | 5 | malloc | size, stack (thread: the current one); the block is the chunk's next one |
//! | 6 | other allocation | kind u8 ([`alloc_kind_code`]), then as malloc |
//! | 7 | free | Δ address (a block of an earlier chunk) |
//! | 8 | realloc | old block (0 none, 1 + Δ address of an earlier chunk's block, d + 1 for the chunk's d-th latest block), size, stack |
//! | 9 | RSS sample | bytes |
//! | 10 | leak scan | trigger u8 (0 exit, 1 on demand; bit 7, version 6: the scan goes on in the next leak-scan record), block count, (Δ address from the previous block, class u8)* |
//! | 11 | end | kind u8: 0 exited, then Δ status from 0; 1 exec (version 4), no fields |
//! | 12 | thread | thread id that the following allocation records belong to (0 at chunk start) |
//! | 13 | chunk free | distance d ≥ 1: frees the chunk's d-th latest block (allocation or realloc result) |
//! | 14 | addresses | last record of a chunk: count, (Δ index, Δ address)* — the real address of those chunk blocks |
//! | 15 | exec call | (version 5) flags u8 (bit 0: the environment keeps the tracer), program length + bytes, argument count, (length + bytes)* — just before an `end` of kind exec |

use crate::model::{AllocKind, LeakClass, ScanTrigger};

/// Deepest stack the recorder writes (innermost frames kept). Not part of the format (a reader
/// takes any frame count); a stack of exactly this many frames was most likely cut short, which
/// the report says rather than passing the deepest recorded frame off as the outermost.
pub const RECORDER_MAX_FRAMES: usize = 64;

/// First bytes of every trace file.
pub const MAGIC: [u8; 8] = *b"LKSFTRC\0";
/// The format version this crate writes.
pub const FORMAT_VERSION: u32 = 6;
/// The oldest version this crate reads: version 4 only added the `exec` end kind, version 5
/// the exec call record and version 6 the header's start nanoseconds and scans split over
/// several records, so a version 3, 4 or 5 trace is a version 6 trace without them.
pub const OLDEST_READABLE_VERSION: u32 = 3;
/// Upper bound on a header's length: anything larger is corruption.
pub const MAX_HEADER_LEN: u32 = 1 << 20;
/// Upper bound on a chunk's decompressed length: anything larger is corruption.
pub const MAX_CHUNK_LEN: u32 = 16 << 20;
/// Upper bound on the stored (compressed) length of a chunk of `raw_len` bytes: zstd's worst
/// case for that input, with room for the stream's frame header and flush. Anything larger is
/// corruption, refused before the reader sets aside memory for it.
pub fn max_stored_len(raw_len: u32) -> usize {
    zstd::zstd_safe::compress_bound(raw_len as usize) + (64 << 10)
}
/// Bytes of a chunk's fixed header (raw_len, stored_len, codec, crc).
pub const CHUNK_HEADER_LEN: usize = 13;

pub(crate) const CODEC_NONE: u8 = 0;
/// The chunk continues the file's zstd stream, flushed at the chunk's end (code 1, LZ4, was
/// format version 2's).
pub(crate) const CODEC_ZSTD_STREAM: u8 = 2;

pub(crate) const TAG_TIME: u8 = 1;
pub(crate) const TAG_STACK: u8 = 2;
pub(crate) const TAG_MODULE_LOADED: u8 = 3;
pub(crate) const TAG_MODULE_UNLOADED: u8 = 4;
pub(crate) const TAG_MALLOC: u8 = 5;
pub(crate) const TAG_ALLOC: u8 = 6;
pub(crate) const TAG_FREE: u8 = 7;
pub(crate) const TAG_REALLOC: u8 = 8;
pub(crate) const TAG_RSS: u8 = 9;
pub(crate) const TAG_LEAK_SCAN: u8 = 10;
pub(crate) const TAG_END: u8 = 11;
pub(crate) const TAG_THREAD: u8 = 12;
pub(crate) const TAG_FREE_CHUNK_BLOCK: u8 = 13;
pub(crate) const TAG_ADDRESSES: u8 = 14;
pub(crate) const TAG_EXEC_CALL: u8 = 15;

/// Flags of the exec call record.
pub(crate) const EXEC_KEEPS_TRACER: u8 = 1;

/// Kinds of the end record.
pub(crate) const END_EXITED: u8 = 0;
pub(crate) const END_EXEC: u8 = 1;

/// Where the addresses of blocks whose real address the trace omits start (blocks allocated and
/// freed within one chunk, recorded with [`crate::writer::AddressPolicy::Survivors`]): such a
/// block decodes at `SYNTHETIC_ADDRESS_BASE + slot`, above every user-space address. `slot` is
/// that of a block freed earlier in the chunk when there is one (the reader reuses them, so live
/// synthetic addresses stay small and unique among the live blocks), else the next new one.
pub const SYNTHETIC_ADDRESS_BASE: u64 = 1 << 63;

/// zstd level of the chunk stream: level 6 finds the long repeats of allocation loops at about
/// level 3's speed (measured on bench/native_overhead.py's trace: 4× smaller than level 1).
pub(crate) const ZSTD_LEVEL: i32 = 6;
/// log2 of the zstd window (2 MiB): the writer's, and the most a reader accepts.
pub(crate) const ZSTD_WINDOW_LOG: u32 = 21;

/// Header flag bit: mmap/munmap were traced.
pub(crate) const FLAG_TRACES_MMAP: u64 = 1;

const ALLOC_KINDS: [AllocKind; 10] = [
    AllocKind::Malloc,
    AllocKind::Calloc,
    AllocKind::Realloc,
    AllocKind::ReallocArray,
    AllocKind::PosixMemalign,
    AllocKind::AlignedAlloc,
    AllocKind::Memalign,
    AllocKind::Valloc,
    AllocKind::Pvalloc,
    AllocKind::Mmap,
];

/// The byte an [`AllocKind`] is stored as.
pub fn alloc_kind_code(kind: AllocKind) -> u8 {
    ALLOC_KINDS.iter().position(|k| *k == kind).unwrap_or(0) as u8
}

/// The [`AllocKind`] stored as `code`, if it is one.
pub fn alloc_kind_from_code(code: u8) -> Option<AllocKind> {
    ALLOC_KINDS.get(usize::from(code)).copied()
}

const LEAK_CLASSES: [LeakClass; 4] = [
    LeakClass::DefinitelyLost,
    LeakClass::IndirectlyLost,
    LeakClass::PossiblyLost,
    LeakClass::StillReachable,
];

pub(crate) fn leak_class_code(class: LeakClass) -> u8 {
    LEAK_CLASSES.iter().position(|c| *c == class).unwrap_or(0) as u8
}

pub(crate) fn leak_class_from_code(code: u8) -> Option<LeakClass> {
    LEAK_CLASSES.get(usize::from(code)).copied()
}

/// Set in a leak-scan record's trigger byte when the scan goes on in the next leak-scan record
/// (version 6): a scan of millions of blocks is written in pieces, since one record must fit in
/// a chunk ([`MAX_CHUNK_LEN`]).
pub(crate) const SCAN_CONTINUES: u8 = 0x80;
/// Blocks per leak-scan record: at most 11 bytes each (a 10-byte varint and the class), so a
/// piece stays far below [`MAX_CHUNK_LEN`].
pub(crate) const SCAN_PIECE_BLOCKS: usize = 1 << 19;

pub(crate) fn trigger_code(trigger: ScanTrigger) -> u8 {
    match trigger {
        ScanTrigger::Exit => 0,
        ScanTrigger::OnDemand => 1,
    }
}

pub(crate) fn trigger_from_code(code: u8) -> Option<ScanTrigger> {
    match code {
        0 => Some(ScanTrigger::Exit),
        1 => Some(ScanTrigger::OnDemand),
        _ => None,
    }
}
