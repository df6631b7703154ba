//! Decodes a trace file (or bytes) chunk by chunk into [`Event`]s and detects truncation.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::error::TraceError;
use crate::format::*;
use crate::model::{
    Event, LeakScan, Module, ModuleId, ProcessEnd, ScannedBlock, StackId, ThreadId, TraceHeader,
    TraceTime,
};
use crate::varint::{Cursor, DecodeError};

/// Whether (and how) a fully read trace was cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truncation {
    /// Not all events have been read yet: unknown.
    Unknown,
    /// The trace ends with an `End` event and a complete chunk.
    Complete,
    /// Every chunk is complete but no `End` event was written (the process was killed, crashed or
    /// called `_exit`), or the last one was cut mid-way: `partial_chunk_offset` is where it starts.
    Truncated { partial_chunk_offset: Option<u64> },
}

/// Streaming reader: the header is decoded by the constructor, events by [`TraceReader::events`]
/// (or [`TraceReader::next_event`]). A chunk that fails its checksum or does not decode is an error
/// with its byte offset; a chunk cut short by the end of the file ends the stream and marks the
/// trace truncated.
pub struct TraceReader<R: Read> {
    input: R,
    header: TraceHeader,
    /// File offset of the next unread byte of `input`.
    offset: u64,
    /// File offset where the chunk in `payload` starts (for error messages).
    chunk_offset: u64,
    stored: Vec<u8>,
    payload: Vec<u8>,
    pos: usize,
    time: u64,
    address: u64,
    saw_end: bool,
    truncation: Truncation,
    failed: bool,
}

impl<R: Read> std::fmt::Debug for TraceReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceReader")
            .field("header", &self.header)
            .field("offset", &self.offset)
            .field("truncation", &self.truncation)
            .finish()
    }
}

impl TraceReader<BufReader<File>> {
    /// Opens a trace file. Errors from opening carry offset 0.
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let file = File::open(path).map_err(|source| TraceError::Io { offset: 0, source })?;
        TraceReader::new(BufReader::with_capacity(1 << 20, file))
    }
}

impl<'a> TraceReader<&'a [u8]> {
    /// Reads a trace held in memory.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, TraceError> {
        TraceReader::new(bytes)
    }
}

/// Reads as many bytes as are available up to `buf.len()`; returns how many (short only at EOF).
fn read_full(input: &mut impl Read, buf: &mut [u8], offset: u64) -> Result<usize, TraceError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(TraceError::Io {
                    offset: offset + filled as u64,
                    source,
                });
            }
        }
    }
    Ok(filled)
}

fn corrupt(offset: u64, what: impl Into<String>) -> TraceError {
    TraceError::Corrupt {
        offset,
        what: what.into(),
    }
}

impl<R: Read> TraceReader<R> {
    /// Decodes the file header from `input`.
    pub fn new(mut input: R) -> Result<Self, TraceError> {
        let mut fixed = [0u8; 16];
        let n = read_full(&mut input, &mut fixed, 0)?;
        if n < 8 || fixed[..8] != MAGIC {
            return Err(TraceError::BadMagic);
        }
        if n < 16 {
            return Err(corrupt(n as u64, "file ends inside the header"));
        }
        let version = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
        if version != FORMAT_VERSION {
            return Err(TraceError::UnsupportedVersion { offset: 8, version });
        }
        let header_len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]);
        if header_len > MAX_HEADER_LEN {
            return Err(corrupt(
                12,
                format!("header length {header_len} is implausible"),
            ));
        }
        let mut body = vec![0u8; header_len as usize + 4];
        if read_full(&mut input, &mut body, 16)? < body.len() {
            return Err(corrupt(16, "file ends inside the header"));
        }
        let (body, crc) = body.split_at(header_len as usize);
        if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(corrupt(16, "header checksum mismatch"));
        }
        let header = decode_header(body, version).map_err(|what| corrupt(16, what))?;
        Ok(TraceReader {
            input,
            header,
            offset: 16 + u64::from(header_len) + 4,
            chunk_offset: 0,
            stored: Vec::new(),
            payload: Vec::new(),
            pos: 0,
            time: 0,
            address: 0,
            saw_end: false,
            truncation: Truncation::Unknown,
            failed: false,
        })
    }

    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// How the trace ends; [`Truncation::Unknown`] until every event has been read.
    pub fn truncation(&self) -> Truncation {
        self.truncation
    }

    /// True once the events are exhausted and the trace lacks its `End` event or its last chunk
    /// was cut short. False while events remain unread.
    pub fn is_truncated(&self) -> bool {
        matches!(self.truncation, Truncation::Truncated { .. })
    }

    /// Iterates the remaining events; stops after the first error.
    pub fn events(&mut self) -> impl Iterator<Item = Result<Event, TraceError>> + '_ {
        std::iter::from_fn(move || self.next_event().transpose())
    }

    /// The next event, `Ok(None)` at the end of the trace.
    pub fn next_event(&mut self) -> Result<Option<Event>, TraceError> {
        if self.failed {
            return Ok(None);
        }
        loop {
            if self.pos < self.payload.len() {
                let mut cursor = Cursor::new(&self.payload);
                cursor.pos = self.pos;
                let result = decode_record(&mut cursor, &mut self.time, &mut self.address);
                let record_pos = self.pos;
                self.pos = cursor.pos;
                match result {
                    Ok(Some(event)) => {
                        if matches!(event, Event::End { .. }) {
                            self.saw_end = true;
                        }
                        return Ok(Some(event));
                    }
                    Ok(None) => continue,
                    Err(what) => {
                        self.failed = true;
                        return Err(corrupt(
                            self.chunk_offset,
                            format!(
                                "in the chunk starting here, record at payload byte {record_pos}: {what}"
                            ),
                        ));
                    }
                }
            }
            match self.load_chunk() {
                Ok(true) => continue,
                Ok(false) => return Ok(None),
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
    }

    /// Reads and decompresses the next chunk; `Ok(false)` at the end of the stream.
    fn load_chunk(&mut self) -> Result<bool, TraceError> {
        let start = self.offset;
        let mut head = [0u8; CHUNK_HEADER_LEN];
        let n = read_full(&mut self.input, &mut head, start)?;
        if n == 0 {
            self.finish(None);
            return Ok(false);
        }
        if n < CHUNK_HEADER_LEN {
            self.finish(Some(start));
            return Ok(false);
        }
        let raw_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let stored_len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let codec = head[8];
        let crc = u32::from_le_bytes([head[9], head[10], head[11], head[12]]);
        if raw_len > MAX_CHUNK_LEN || raw_len == 0 {
            return Err(corrupt(
                start,
                format!("chunk length {raw_len} is implausible"),
            ));
        }
        let plausible_stored = match codec {
            CODEC_NONE => stored_len == raw_len,
            CODEC_LZ4 => stored_len > 0 && stored_len < raw_len,
            _ => return Err(corrupt(start + 8, format!("unknown chunk codec {codec}"))),
        };
        if !plausible_stored {
            return Err(corrupt(
                start + 4,
                format!("stored chunk length {stored_len} is implausible"),
            ));
        }
        self.stored.resize(stored_len as usize, 0);
        let got = read_full(
            &mut self.input,
            &mut self.stored,
            start + CHUNK_HEADER_LEN as u64,
        )?;
        if got < stored_len as usize {
            self.finish(Some(start));
            return Ok(false);
        }
        self.payload.resize(raw_len as usize, 0);
        if codec == CODEC_LZ4 {
            match lz4_flex::block::decompress_into(&self.stored, &mut self.payload) {
                Ok(n) if n == raw_len as usize => {}
                _ => return Err(corrupt(start, "chunk does not decompress")),
            }
        } else {
            self.payload.copy_from_slice(&self.stored);
        }
        if crc32fast::hash(&self.payload) != crc {
            return Err(corrupt(start, "chunk checksum mismatch"));
        }
        self.offset = start + (CHUNK_HEADER_LEN as u64) + u64::from(stored_len);
        self.chunk_offset = start;
        self.pos = 0;
        self.time = 0;
        self.address = 0;
        Ok(true)
    }

    fn finish(&mut self, partial_chunk_offset: Option<u64>) {
        self.payload.clear();
        self.pos = 0;
        self.truncation = if self.saw_end && partial_chunk_offset.is_none() {
            Truncation::Complete
        } else {
            Truncation::Truncated {
                partial_chunk_offset,
            }
        };
    }
}

fn decode_header(body: &[u8], format_version: u32) -> Result<TraceHeader, DecodeError> {
    let mut c = Cursor::new(body);
    let pid = c.varint_u32()?;
    let start_unix_s = c.varint()?;
    let page_size = c.varint()?;
    let flags = c.varint()?;
    let argc = c.count()?;
    let mut command = Vec::with_capacity(argc);
    for _ in 0..argc {
        let len = c.count()?;
        command.push(String::from_utf8_lossy(c.bytes(len)?).into_owned());
    }
    if !c.is_empty() {
        return Err("trailing bytes after the header fields");
    }
    Ok(TraceHeader {
        format_version,
        pid,
        command,
        start_unix_s,
        page_size,
        traces_mmap: flags & FLAG_TRACES_MMAP != 0,
    })
}

/// Decodes one record; `Ok(None)` for records that only update the decoder state (time ticks).
fn decode_record(
    c: &mut Cursor<'_>,
    time: &mut u64,
    address: &mut u64,
) -> Result<Option<Event>, DecodeError> {
    let tag = c.u8()?;
    let now = TraceTime(*time);
    let event = match tag {
        TAG_TIME => {
            *time = c.delta(*time)?;
            return Ok(None);
        }
        TAG_STACK => {
            let id = StackId(c.varint_u32()?);
            let n = c.count()?;
            let mut frames = Vec::with_capacity(n);
            let mut previous = 0u64;
            for _ in 0..n {
                previous = c.delta(previous)?;
                frames.push(previous);
            }
            Event::Stack { id, frames }
        }
        TAG_MODULE_LOADED => {
            let id = ModuleId(c.varint_u32()?);
            let base = c.varint()?;
            let path_len = c.count()?;
            let path = String::from_utf8_lossy(c.bytes(path_len)?).into_owned();
            let build_id = match c.count()? {
                0 => None,
                n => Some(c.bytes(n - 1)?.to_vec()),
            };
            let n = c.count()?;
            let mut ranges = Vec::with_capacity(n);
            for _ in 0..n {
                let start = c.varint()?;
                let len = c.varint()?;
                ranges.push((start, start.wrapping_add(len)));
            }
            Event::ModuleLoaded(Module {
                id,
                path,
                build_id,
                base,
                ranges,
            })
        }
        TAG_MODULE_UNLOADED => Event::ModuleUnloaded {
            id: ModuleId(c.varint_u32()?),
            time: now,
        },
        TAG_MALLOC | TAG_ALLOC => {
            let kind = if tag == TAG_MALLOC {
                crate::model::AllocKind::Malloc
            } else {
                alloc_kind_from_code(c.u8()?).ok_or("unknown allocation kind")?
            };
            let thread = ThreadId(c.varint_u32()?);
            *address = c.delta(*address)?;
            let size = c.varint()?;
            let stack = StackId(c.varint_u32()?);
            Event::Alloc {
                time: now,
                thread,
                address: *address,
                size,
                stack,
                kind,
            }
        }
        TAG_FREE => {
            let thread = ThreadId(c.varint_u32()?);
            *address = c.delta(*address)?;
            Event::Free {
                time: now,
                thread,
                address: *address,
            }
        }
        TAG_REALLOC => {
            let thread = ThreadId(c.varint_u32()?);
            let old_address = c.delta(*address)?;
            let new_address = c.delta(old_address)?;
            *address = new_address;
            let size = c.varint()?;
            let stack = StackId(c.varint_u32()?);
            Event::Realloc {
                time: now,
                thread,
                old_address,
                new_address,
                size,
                stack,
            }
        }
        TAG_RSS => Event::RssSample {
            time: now,
            rss_bytes: c.varint()?,
        },
        TAG_LEAK_SCAN => {
            let trigger = trigger_from_code(c.u8()?).ok_or("unknown scan trigger")?;
            let n = c.count()?;
            let mut blocks = Vec::with_capacity(n);
            let mut previous = 0u64;
            for _ in 0..n {
                previous = c.delta(previous)?;
                let class = leak_class_from_code(c.u8()?).ok_or("unknown leak class")?;
                blocks.push(ScannedBlock {
                    address: previous,
                    class,
                });
            }
            Event::LeakScan(LeakScan {
                time: now,
                trigger,
                blocks,
            })
        }
        TAG_END => {
            let kind = c.u8()?;
            if kind != 0 {
                return Err("unknown process end kind");
            }
            let status = c.delta(0)? as i64;
            let status = i32::try_from(status).map_err(|_| "exit status out of range")?;
            Event::End {
                time: now,
                end: ProcessEnd::Exited(status),
            }
        }
        _ => return Err("unknown record tag"),
    };
    Ok(Some(event))
}
