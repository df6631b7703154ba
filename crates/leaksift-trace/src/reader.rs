//! Decodes a trace file (or bytes) chunk by chunk into [`Event`]s and detects truncation.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::error::TraceError;
use crate::format::*;
use crate::model::{
    Event, ExecCall, LeakScan, Module, ModuleId, ProcessEnd, ScannedBlock, StackId, ThreadId,
    TraceHeader, TraceTime,
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
/// trace truncated. Chunks are decoded whole; [`TraceReader::open`] does that on a background
/// thread, a few chunks ahead of the consumer.
pub struct TraceReader<R: Read> {
    header: TraceHeader,
    source: Source<R>,
    /// The current chunk's events; those before `delivered` were handed out already.
    current: Vec<Event>,
    delivered: usize,
    /// Whether `current` holds an `End` event.
    current_has_end: bool,
    /// An error met inside the current chunk, returned after the events decoded before it.
    pending_error: Option<TraceError>,
    saw_end: bool,
    truncation: Truncation,
    done: bool,
}

enum Source<R: Read> {
    Inline(Chunks<R>),
    /// Batches decoded by a prefetch thread; emptied event vectors go back to it for reuse.
    Prefetched {
        batches: std::sync::mpsc::Receiver<Batch>,
        recycle: std::sync::mpsc::Sender<Vec<Event>>,
    },
}

/// What decoding the next chunk produced.
enum Batch {
    /// The chunk's events; `error` if a record in it did not decode (after these events).
    Events {
        events: Vec<Event>,
        error: Option<TraceError>,
        has_end: bool,
    },
    /// The stream ended: cleanly, or inside the chunk starting at `partial_chunk_offset`.
    End { partial_chunk_offset: Option<u64> },
    /// The chunk could not be read or failed its checks.
    Failed(TraceError),
}

/// Reads, checks and decodes chunks one at a time.
struct Chunks<R: Read> {
    input: R,
    /// File offset of the next unread byte of `input`.
    offset: u64,
    stored: Vec<u8>,
    payload: Vec<u8>,
    /// The file's zstd stream, continued by every compressed chunk.
    decompressor: zstd::stream::raw::Decoder<'static>,
    /// A leak scan whose later records (and chunks) are still to come.
    scan_in_progress: Option<Box<LeakScan>>,
}

/// Stands in for events moved out of a batch.
const PLACEHOLDER: Event = Event::Free {
    time: TraceTime(0),
    thread: ThreadId(0),
    address: 0,
};

/// Batches the prefetch thread may decode ahead of the consumer.
const PREFETCH_BATCHES: usize = 2;

impl<R: Read> std::fmt::Debug for TraceReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceReader")
            .field("header", &self.header)
            .field("truncation", &self.truncation)
            .finish()
    }
}

impl TraceReader<BufReader<File>> {
    /// Opens a trace file and decodes it on a background thread, a few chunks ahead of the
    /// consumer. Errors from opening carry offset 0.
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let file = File::open(path).map_err(|source| TraceError::Io { offset: 0, source })?;
        let mut input = BufReader::with_capacity(1 << 20, file);
        let (header, offset) = read_header(&mut input)?;
        let mut chunks = Chunks {
            input,
            offset,
            stored: Vec::new(),
            payload: Vec::new(),
            decompressor: zstd_decompressor(offset)?,
            scan_in_progress: None,
        };
        let (sender, batches) = std::sync::mpsc::sync_channel(PREFETCH_BATCHES);
        let (recycle, recycled) = std::sync::mpsc::channel::<Vec<Event>>();
        std::thread::Builder::new()
            .name("trace-reader".into())
            .spawn(move || {
                loop {
                    let events = recycled.try_recv().unwrap_or_default();
                    let batch = chunks.next_batch(events);
                    let last = !matches!(batch, Batch::Events { error: None, .. });
                    if sender.send(batch).is_err() || last {
                        return;
                    }
                }
            })
            .map_err(|source| TraceError::Io { offset, source })?;
        Ok(TraceReader::with_source(
            header,
            Source::Prefetched { batches, recycle },
        ))
    }
}

impl<'a> TraceReader<&'a [u8]> {
    /// Reads a trace held in memory.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, TraceError> {
        TraceReader::new(bytes)
    }
}

/// How a trace that ends with an exec ends, as [`exec_ending`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecEnding {
    /// What the exec was about to run (format version 5), if the trace says.
    pub call: Option<ExecCall>,
}

/// Whether the trace at `path` ends with an exec (`Some`), found from its last chunk alone:
/// the recorder writes an exec's call and end records in a last chunk of their own, stored
/// uncompressed ([`crate::TraceWriter::end_with_exec`]), so only the chunk headers are read on
/// the way (a trace of hundreds of megabytes is not decompressed). `None` for a trace whose last
/// chunk is compressed or holds no such end (an exit, a crash, an exec that failed and let the
/// program go on, traces written before version 5), and for one cut inside a chunk.
pub fn exec_ending(path: &Path) -> Result<Option<ExecEnding>, TraceError> {
    use std::io::{Seek, SeekFrom};
    let file = File::open(path).map_err(|source| TraceError::Io { offset: 0, source })?;
    let mut input = BufReader::with_capacity(1 << 16, file);
    let (_, mut offset) = read_header(&mut input)?;
    let mut last = None;
    loop {
        let mut head = [0u8; CHUNK_HEADER_LEN];
        let n = read_full(&mut input, &mut head, offset)?;
        if n == 0 {
            break;
        }
        if n < CHUNK_HEADER_LEN {
            return Ok(None);
        }
        let raw_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let stored_len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if raw_len == 0 || raw_len > MAX_CHUNK_LEN {
            return Err(corrupt(
                offset,
                format!("chunk length {raw_len} is implausible"),
            ));
        }
        last = Some((offset, head));
        input
            .seek_relative(i64::from(stored_len))
            .map_err(|source| TraceError::Io { offset, source })?;
        offset += CHUNK_HEADER_LEN as u64 + u64::from(stored_len);
    }
    let Some((start, head)) = last else {
        return Ok(None);
    };
    let raw_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let stored_len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let crc = u32::from_le_bytes([head[9], head[10], head[11], head[12]]);
    if head[8] != CODEC_NONE || stored_len != raw_len {
        return Ok(None);
    }
    let body_start = start + CHUNK_HEADER_LEN as u64;
    input
        .seek(SeekFrom::Start(body_start))
        .map_err(|source| TraceError::Io {
            offset: body_start,
            source,
        })?;
    let mut payload = vec![0u8; raw_len as usize];
    if read_full(&mut input, &mut payload, body_start)? < payload.len() {
        return Ok(None);
    }
    if crc32fast::hash(&payload) != crc {
        return Err(corrupt(start, "chunk checksum mismatch"));
    }
    let mut cursor = Cursor::new(&payload);
    let mut state = ChunkState::default();
    let mut events = Vec::new();
    while !cursor.is_empty() {
        let record_pos = cursor.pos;
        decode_record(&mut cursor, &mut state, &mut events).map_err(|what| {
            corrupt(
                start,
                format!("in the chunk starting here, record at payload byte {record_pos}: {what}"),
            )
        })?;
    }
    events.truncate(state.events);
    let ends_with_exec = matches!(
        events.last(),
        Some(Event::End {
            end: ProcessEnd::Exec,
            ..
        })
    );
    if !ends_with_exec {
        return Ok(None);
    }
    let call = events.iter().rev().find_map(|event| match event {
        Event::Exec(call) => Some(ExecCall::clone(call)),
        _ => None,
    });
    Ok(Some(ExecEnding { call }))
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
    /// Decodes the file header from `input`; events are decoded on the calling thread.
    pub fn new(mut input: R) -> Result<Self, TraceError> {
        let (header, offset) = read_header(&mut input)?;
        let chunks = Chunks {
            input,
            offset,
            stored: Vec::new(),
            payload: Vec::new(),
            decompressor: zstd_decompressor(offset)?,
            scan_in_progress: None,
        };
        Ok(TraceReader::with_source(header, Source::Inline(chunks)))
    }

    fn with_source(header: TraceHeader, source: Source<R>) -> Self {
        TraceReader {
            header,
            source,
            current: Vec::new(),
            delivered: 0,
            pending_error: None,
            current_has_end: false,
            saw_end: false,
            truncation: Truncation::Unknown,
            done: false,
        }
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

    /// The next event, `Ok(None)` at the end of the trace (and after an error).
    pub fn next_event(&mut self) -> Result<Option<Event>, TraceError> {
        loop {
            if let Some(slot) = self.current.get_mut(self.delivered) {
                self.delivered += 1;
                // A cheap stand-in keeps the vector whole for reuse.
                let event = std::mem::replace(slot, PLACEHOLDER);
                if matches!(event, Event::End { .. }) {
                    self.saw_end = true;
                }
                return Ok(Some(event));
            }
            if !self.refill()? {
                return Ok(None);
            }
        }
    }

    /// Replaces `out`'s contents with the rest of the current chunk's events (or the next
    /// chunk's), in order: the cheap way to consume a trace, one chunk (up to a few hundred
    /// thousand events) per call. The chunk's vector is handed over without copying, and `out`'s
    /// previous events go back to the decoder, which drops them (on its own thread for
    /// [`TraceReader::open`]) and reuses the allocation. Returns `Ok(false)` at the end of the
    /// trace (and after an error).
    pub fn read_batch(&mut self, out: &mut Vec<Event>) -> Result<bool, TraceError> {
        while self.delivered >= self.current.len() {
            if !self.refill()? {
                return Ok(false);
            }
        }
        if self.delivered == 0 {
            self.saw_end |= self.current_has_end;
            std::mem::swap(out, &mut self.current);
        } else {
            // Part of the chunk went through `next_event` already.
            let fresh = &self.current[self.delivered..];
            self.saw_end |= fresh.iter().any(|event| matches!(event, Event::End { .. }));
            out.clear();
            out.extend(self.current.drain(self.delivered..));
        }
        // `current` (now `out`'s old events) is spent: the next call recycles it.
        self.delivered = self.current.len();
        Ok(true)
    }

    /// Loads the next batch into `current` (which is empty): `Ok(true)` if that may have given
    /// events, `Ok(false)` at the end, the chunk's error once its events are delivered.
    fn refill(&mut self) -> Result<bool, TraceError> {
        if let Some(error) = self.pending_error.take() {
            self.done = true;
            return Err(error);
        }
        if self.done {
            return Ok(false);
        }
        // Cleared by the decoder, which refills it.
        let spent = std::mem::take(&mut self.current);
        self.delivered = 0;
        let batch = match &mut self.source {
            Source::Inline(chunks) => chunks.next_batch(spent),
            Source::Prefetched { batches, recycle } => {
                // The decoder may have finished already; then the vector is simply dropped.
                let _ = recycle.send(spent);
                batches.recv().unwrap_or(Batch::Failed(TraceError::Io {
                    offset: 0,
                    source: io::Error::other("the trace decoding thread stopped"),
                }))
            }
        };
        match batch {
            Batch::Events {
                events,
                error,
                has_end,
            } => {
                self.current = events;
                self.current_has_end = has_end;
                self.pending_error = error;
                Ok(true)
            }
            Batch::End {
                partial_chunk_offset,
            } => {
                self.done = true;
                self.truncation = if self.saw_end && partial_chunk_offset.is_none() {
                    Truncation::Complete
                } else {
                    Truncation::Truncated {
                        partial_chunk_offset,
                    }
                };
                Ok(false)
            }
            Batch::Failed(error) => {
                self.done = true;
                Err(error)
            }
        }
    }
}

/// Reads and checks the file header; returns it with the offset of the first chunk.
fn read_header(input: &mut impl Read) -> Result<(TraceHeader, u64), TraceError> {
    let mut fixed = [0u8; 16];
    let n = read_full(input, &mut fixed, 0)?;
    if n == 0 {
        return Err(TraceError::Empty);
    }
    if fixed[..n.min(8)] != MAGIC[..n.min(8)] {
        return Err(TraceError::BadMagic);
    }
    if n < 16 {
        return Err(corrupt(n as u64, "file ends inside the header"));
    }
    let version = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
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
    if read_full(input, &mut body, 16)? < body.len() {
        return Err(corrupt(16, "file ends inside the header"));
    }
    let (body, crc) = body.split_at(header_len as usize);
    if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(corrupt(16, "header checksum mismatch"));
    }
    let header = decode_header(body, version).map_err(|what| corrupt(16, what))?;
    Ok((header, 16 + u64::from(header_len) + 4))
}

impl<R: Read> Chunks<R> {
    /// Decodes the next chunk into `events` (cleared first; its capacity is reused).
    fn next_batch(&mut self, events: Vec<Event>) -> Batch {
        match self.load_chunk() {
            Ok(Some(start)) => self.decode_chunk(start, events),
            Ok(None) => Batch::End {
                partial_chunk_offset: None,
            },
            Err(Ok(partial)) => Batch::End {
                partial_chunk_offset: Some(partial),
            },
            Err(Err(error)) => Batch::Failed(error),
        }
    }

    /// Decodes every record of the loaded payload, stopping at the first bad one. `events` (a
    /// spent batch) is overwritten slot by slot: each old event is dropped as its slot is
    /// written, a single pass over memory instead of a clear and a refill.
    fn decode_chunk(&mut self, start: u64, mut events: Vec<Event>) -> Batch {
        let mut cursor = Cursor::new(&self.payload);
        let mut state = ChunkState {
            scan_in_progress: self.scan_in_progress.take(),
            ..ChunkState::default()
        };
        let mut error = None;
        while !cursor.is_empty() {
            let record_pos = cursor.pos;
            match decode_record(&mut cursor, &mut state, &mut events) {
                Ok(()) => {}
                Err(what) => {
                    error = Some(corrupt(
                        start,
                        format!(
                            "in the chunk starting here, record at payload byte {record_pos}: {what}"
                        ),
                    ));
                    break;
                }
            }
        }
        events.truncate(state.events);
        self.scan_in_progress = state.scan_in_progress.take();
        Batch::Events {
            events,
            error,
            has_end: state.has_end,
        }
    }

    /// Reads, decompresses and checks the next chunk into `payload`: `Ok(Some(offset))` with the
    /// chunk's file offset, `Ok(None)` at a clean end of the stream, `Err(Ok(offset))` when the
    /// stream ends inside the chunk at `offset`, `Err(Err(error))` when it is corrupt.
    #[allow(clippy::type_complexity)]
    fn load_chunk(&mut self) -> Result<Option<u64>, Result<u64, TraceError>> {
        let start = self.offset;
        let mut head = [0u8; CHUNK_HEADER_LEN];
        let n = read_full(&mut self.input, &mut head, start).map_err(Err)?;
        if n == 0 {
            return Ok(None);
        }
        if n < CHUNK_HEADER_LEN {
            return Err(Ok(start));
        }
        let raw_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let stored_len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let codec = head[8];
        let crc = u32::from_le_bytes([head[9], head[10], head[11], head[12]]);
        if raw_len > MAX_CHUNK_LEN || raw_len == 0 {
            return Err(Err(corrupt(
                start,
                format!("chunk length {raw_len} is implausible"),
            )));
        }
        let plausible_stored = match codec {
            CODEC_NONE => stored_len == raw_len,
            CODEC_ZSTD_STREAM => stored_len > 0 && stored_len as usize <= max_stored_len(raw_len),
            _ => {
                return Err(Err(corrupt(
                    start + 8,
                    format!("unknown chunk codec {codec}"),
                )));
            }
        };
        if !plausible_stored {
            return Err(Err(corrupt(
                start + 4,
                format!("stored chunk length {stored_len} is implausible"),
            )));
        }
        self.stored.resize(stored_len as usize, 0);
        let got = read_full(
            &mut self.input,
            &mut self.stored,
            start + CHUNK_HEADER_LEN as u64,
        )
        .map_err(Err)?;
        if got < stored_len as usize {
            return Err(Ok(start));
        }
        if codec == CODEC_ZSTD_STREAM {
            self.decompress(raw_len as usize)
                .map_err(|what| Err(corrupt(start, what)))?;
        } else {
            self.payload.clear();
            self.payload.extend_from_slice(&self.stored);
        }
        if crc32fast::hash(&self.payload) != crc {
            return Err(Err(corrupt(start, "chunk checksum mismatch")));
        }
        self.offset = start + (CHUNK_HEADER_LEN as u64) + u64::from(stored_len);
        Ok(Some(start))
    }
}

/// A zstd stream decoder for a trace whose chunks start at `offset`.
fn zstd_decompressor(offset: u64) -> Result<zstd::stream::raw::Decoder<'static>, TraceError> {
    let mut decoder =
        zstd::stream::raw::Decoder::new().map_err(|source| TraceError::Io { offset, source })?;
    // A corrupt frame header must not make the decoder reserve a huge window.
    decoder
        .set_parameter(zstd::stream::raw::DParameter::WindowLogMax(ZSTD_WINDOW_LOG))
        .map_err(|source| TraceError::Io { offset, source })?;
    Ok(decoder)
}

impl<R: Read> Chunks<R> {
    /// Continues the zstd stream with the chunk's stored bytes into exactly `raw_len` bytes of
    /// `payload`.
    fn decompress(&mut self, raw_len: usize) -> Result<(), &'static str> {
        use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        self.payload.resize(raw_len, 0);
        let mut input = InBuffer::around(&self.stored);
        let mut written = 0;
        loop {
            let consumed = input.pos();
            // A slice of exactly `raw_len` bytes: the decoder cannot write past the chunk.
            let mut output = OutBuffer::around_pos(&mut self.payload[..], written);
            self.decompressor
                .run(&mut input, &mut output)
                .map_err(|_| "chunk does not decompress")?;
            let progressed = output.pos() != written || input.pos() != consumed;
            written = output.pos();
            if written == raw_len && input.pos() == self.stored.len() {
                return Ok(());
            }
            if !progressed {
                return Err("chunk does not decompress to its stated length");
            }
        }
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
    let start_subsec_nanos = if format_version >= 6 {
        let nanos = c.varint()?;
        Some(
            u32::try_from(nanos)
                .ok()
                .filter(|&n| n < 1_000_000_000)
                .ok_or("start time nanoseconds out of range")?,
        )
    } else {
        None
    };
    if !c.is_empty() {
        return Err("trailing bytes after the header fields");
    }
    Ok(TraceHeader {
        format_version,
        pid,
        command,
        start_unix_s,
        start_subsec_nanos,
        page_size,
        traces_mmap: flags & FLAG_TRACES_MMAP != 0,
    })
}

/// Decoder state of one chunk (reset at every chunk, like the writer's).
#[derive(Default)]
struct ChunkState {
    time: u64,
    address: u64,
    thread: u32,
    /// The chunk's blocks (allocations and realloc results), by index.
    blocks: Vec<BlockEvents>,
    /// Synthetic address slots of blocks already freed in this chunk, free for the next blocks:
    /// reusing them keeps the live blocks' synthetic addresses small and dense (the replay keeps
    /// them in a direct-indexed table that then stays in cache).
    free_slots: Vec<u64>,
    /// Synthetic address slots handed out so far (reused ones count once).
    slots: u64,
    /// Whether the chunk's addresses record was read (it must be the last record).
    addresses_stated: bool,
    /// Whether the chunk holds an `End` event.
    has_end: bool,
    /// Events decoded so far (the batch vector's first slots; the rest are stale).
    events: usize,
    /// A leak scan whose later records are still to come (carried over from chunk to chunk).
    scan_in_progress: Option<Box<LeakScan>>,
}

/// Where a chunk block's address appears in the decoded events.
#[derive(Clone, Copy)]
struct BlockEvents {
    /// The `Alloc` or `Realloc` event that made the block.
    made: usize,
    /// The `Free` or `Realloc` event that freed it, if any did in this chunk.
    freed: Option<usize>,
    /// Its synthetic address is `SYNTHETIC_ADDRESS_BASE + slot` until the addresses record
    /// states the real one.
    slot: u64,
}

impl ChunkState {
    /// Registers a block made by event `made`; returns its synthetic address: the slot of a
    /// block freed earlier in the chunk (its free event comes first, so the address is unique
    /// among the live blocks), else a new one.
    fn block_made(&mut self, made: usize) -> u64 {
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.slots += 1;
            self.slots - 1
        });
        self.blocks.push(BlockEvents {
            made,
            freed: None,
            slot,
        });
        SYNTHETIC_ADDRESS_BASE + slot
    }

    /// Marks the `distance`-th latest block freed by event `freed`; returns its synthetic address.
    fn block_freed(&mut self, distance: u64, freed: usize) -> Result<u64, DecodeError> {
        let count = self.blocks.len() as u64;
        if distance == 0 || distance > count {
            return Err("a free names no block of this chunk");
        }
        let index = (count - distance) as usize;
        let block = &mut self.blocks[index];
        if block.freed.is_some() {
            return Err("a block of this chunk is freed twice");
        }
        block.freed = Some(freed);
        let slot = block.slot;
        self.free_slots.push(slot);
        Ok(SYNTHETIC_ADDRESS_BASE + slot)
    }
}

/// Writes a chunk block's real address into the events that made and freed it.
fn state_address(events: &mut [Event], block: BlockEvents, address: u64) {
    match &mut events[block.made] {
        Event::Alloc { address: a, .. } | Event::Realloc { new_address: a, .. } => *a = address,
        _ => {}
    }
    if let Some(freed) = block.freed {
        match &mut events[freed] {
            Event::Free { address: a, .. } | Event::Realloc { old_address: a, .. } => *a = address,
            _ => {}
        }
    }
}

/// Decodes one record, appending its event (if it is one) to `events`.
fn decode_record(
    c: &mut Cursor<'_>,
    state: &mut ChunkState,
    events: &mut Vec<Event>,
) -> Result<(), DecodeError> {
    let tag = c.u8()?;
    if state.addresses_stated {
        return Err("a record follows the chunk's addresses record");
    }
    let now = TraceTime(state.time);
    let thread = ThreadId(state.thread);
    let position = state.events;
    let event = match tag {
        TAG_TIME => {
            state.time = c.delta(state.time)?;
            return Ok(());
        }
        TAG_THREAD => {
            state.thread = c.varint_u32()?;
            return Ok(());
        }
        TAG_ADDRESSES => {
            state.addresses_stated = true;
            let n = c.count()?;
            let (mut next_index, mut address) = (0u64, 0u64);
            for _ in 0..n {
                let index = next_index
                    .checked_add(c.varint()?)
                    .filter(|&i| i < state.blocks.len() as u64)
                    .ok_or("an address is stated for no block of this chunk")?;
                address = c.delta(address)?;
                state_address(events, state.blocks[index as usize], address);
                next_index = index + 1;
            }
            return Ok(());
        }
        TAG_FREE_CHUNK_BLOCK => Event::Free {
            time: now,
            thread,
            address: state.block_freed(c.varint()?, position)?,
        },
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
            Event::ModuleLoaded(Box::new(Module {
                id,
                path,
                build_id,
                base,
                ranges,
            }))
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
            let size = c.varint()?;
            let stack = StackId(c.varint_u32()?);
            Event::Alloc {
                time: now,
                thread,
                address: state.block_made(position),
                size,
                stack,
                kind,
            }
        }
        TAG_FREE => {
            let address = c.delta(state.address)?;
            state.address = address;
            Event::Free {
                time: now,
                thread,
                address,
            }
        }
        TAG_REALLOC => {
            let old_address = match c.varint()? {
                0 => 0,
                1 => {
                    state.address = c.delta(state.address)?;
                    state.address
                }
                old => state.block_freed(old - 1, position)?,
            };
            let size = c.varint()?;
            let stack = StackId(c.varint_u32()?);
            Event::Realloc {
                time: now,
                thread,
                old_address,
                new_address: state.block_made(position),
                size,
                stack,
            }
        }
        TAG_RSS => Event::RssSample {
            time: now,
            rss_bytes: c.varint()?,
        },
        TAG_LEAK_SCAN => {
            let code = c.u8()?;
            let trigger =
                trigger_from_code(code & !SCAN_CONTINUES).ok_or("unknown scan trigger")?;
            let n = c.count()?;
            let mut scan = match state.scan_in_progress.take() {
                Some(scan) if scan.trigger != trigger => {
                    return Err("a leak scan goes on in a record of another trigger");
                }
                Some(scan) => scan,
                None => Box::new(LeakScan {
                    time: now,
                    trigger,
                    blocks: Vec::new(),
                }),
            };
            scan.blocks.reserve(n);
            let mut previous = 0u64;
            for _ in 0..n {
                previous = c.delta(previous)?;
                let class = leak_class_from_code(c.u8()?).ok_or("unknown leak class")?;
                scan.blocks.push(ScannedBlock {
                    address: previous,
                    class,
                });
            }
            if code & SCAN_CONTINUES != 0 {
                state.scan_in_progress = Some(scan);
                return Ok(());
            }
            Event::LeakScan(scan)
        }
        TAG_EXEC_CALL => {
            let keeps_tracer = c.u8()? & EXEC_KEEPS_TRACER != 0;
            let len = c.count()?;
            let program = String::from_utf8_lossy(c.bytes(len)?).into_owned();
            let n = c.count()?;
            let mut args = Vec::with_capacity(n);
            for _ in 0..n {
                let len = c.count()?;
                args.push(String::from_utf8_lossy(c.bytes(len)?).into_owned());
            }
            Event::Exec(Box::new(ExecCall {
                program,
                args,
                keeps_tracer,
            }))
        }
        TAG_END => {
            let end = match c.u8()? {
                END_EXITED => {
                    let status = c.delta(0)? as i64;
                    ProcessEnd::Exited(
                        i32::try_from(status).map_err(|_| "exit status out of range")?,
                    )
                }
                END_EXEC => ProcessEnd::Exec,
                _ => return Err("unknown process end kind"),
            };
            state.has_end = true;
            Event::End { time: now, end }
        }
        _ => return Err("unknown record tag"),
    };
    match events.get_mut(position) {
        Some(slot) => *slot = event,
        None => events.push(event),
    }
    state.events += 1;
    Ok(())
}
