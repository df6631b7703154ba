//! On-disk layout constants of the trace format (version 2); `docs/trace-format.md` is the prose form.
//!
//! ```text
//! file    = MAGIC (8) | version u32le | header_len u32le | header (header_len) | header_crc u32le | chunk*
//! chunk   = raw_len u32le | stored_len u32le | codec u8 | crc32(raw payload) u32le | stored bytes
//! payload = record*            (delta state resets at every chunk: chunks decode independently)
//! record  = tag u8 | fields    (varints are LEB128; "Δ" fields are zigzag varints of a wrapping difference)
//! ```
//!
//! | tag | record | fields |
//! |-----|--------|--------|
//! | 1 | time tick | Δ time (ns) from the previous tick; later records carry this time |
//! | 2 | stack | id, frame count, first frame, then Δ from the previous frame |
//! | 3 | module loaded | id, base, path length + bytes, build-id length + 1 (0 = none) + bytes, range count, (start, length)* |
//! | 4 | module unloaded | id |
//! | 5 | malloc | Δ address (from the previous address), size, stack (thread: the current one) |
//! | 6 | other allocation | kind u8 ([`alloc_kind_code`]), then as malloc |
//! | 7 | free | Δ address |
//! | 8 | realloc | Δ old address, Δ new address from old, size, stack |
//! | 9 | RSS sample | bytes |
//! | 10 | leak scan | trigger u8 (0 exit, 1 on demand), block count, (Δ address from the previous block, class u8)* |
//! | 11 | end | kind u8 (0 exited), Δ status from 0 |
//! | 12 | thread | thread id that the following allocation records belong to (0 at chunk start) |
//! | 13 | recent free | distance d: frees the block made by the chunk's d-th latest allocation or realloc (1 ≤ d ≤ 4096) |

use crate::model::{AllocKind, LeakClass, ScanTrigger};

/// First bytes of every trace file.
pub const MAGIC: [u8; 8] = *b"LKSFTRC\0";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 2;
/// Upper bound on a header's length: anything larger is corruption.
pub const MAX_HEADER_LEN: u32 = 1 << 20;
/// Upper bound on a chunk's decompressed length: anything larger is corruption.
pub const MAX_CHUNK_LEN: u32 = 16 << 20;
/// Bytes of a chunk's fixed header (raw_len, stored_len, codec, crc).
pub const CHUNK_HEADER_LEN: usize = 13;

pub(crate) const CODEC_NONE: u8 = 0;
pub(crate) const CODEC_LZ4: u8 = 1;

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
pub(crate) const TAG_FREE_RECENT: u8 = 13;

/// How far back (in allocations within one chunk) a free may name its block by distance.
pub const RECENT_ALLOCATIONS: u64 = 4096;

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
