//! Encodes events into the chunked trace format: delta/varint records, one zstd stream flushed
//! at every chunk's end.
//!
//! The writer buffers one chunk's payload (default 1 MiB) and writes it as a whole, so a process
//! killed mid-run leaves a file whose complete chunks all decode. Allocation records carry no
//! address: frees name a block of the current chunk by its distance, and the chunk's last record
//! states the real addresses of its blocks (all of them, or under [`AddressPolicy::Survivors`]
//! only of those still live). Its buffers are reused, so after warm-up encoding allocates little.

use std::collections::HashMap;
use std::io::{self, Write};

use zstd::stream::raw::{InBuffer, Operation, OutBuffer};

use crate::format::*;
use crate::model::{
    AllocKind, Event, ExecCall, LeakScan, Module, ModuleId, ProcessEnd, StackId, ThreadId,
    TraceHeader, TraceTime,
};
use crate::varint::{put, put_delta};

/// Default payload size at which a chunk is compressed and written.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// Delta-coding state; reset at every chunk.
#[derive(Default)]
struct DeltaState {
    time: u64,
    address: u64,
    thread: u32,
}

/// Which blocks' real addresses a chunk states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AddressPolicy {
    /// Every block's: the decoded events are exactly those written.
    #[default]
    All,
    /// Only blocks still live at the chunk's end (what leak scans and later frees refer to);
    /// blocks allocated and freed within one chunk decode at synthetic addresses
    /// ([`SYNTHETIC_ADDRESS_BASE`] + a small slot number). The recorder's choice: short-lived
    /// blocks then cost no address bytes at all.
    Survivors,
}

/// A block allocated in the current chunk: its address, and whether it was freed since.
#[derive(Clone, Copy)]
struct ChunkBlock {
    address: u64,
    freed: bool,
}

/// Streams a trace to `out`. Call [`TraceWriter::flush`] to make everything written so far
/// durable as complete chunks (the recorder does so every 100 ms); dropping without it loses the
/// pending chunk.
pub struct TraceWriter<W: Write> {
    out: W,
    payload: Vec<u8>,
    compressed: Vec<u8>,
    state: DeltaState,
    encoder: zstd::stream::raw::Encoder<'static>,
    address_policy: AddressPolicy,
    /// Allocations (and realloc results) written so far, and how many before this chunk.
    allocations: u64,
    chunk_first_allocation: u64,
    /// This chunk's blocks, by index (allocation number - `chunk_first_allocation`).
    chunk_blocks: Vec<ChunkBlock>,
    /// Address → index of `chunk_blocks[..indexed]`, built lazily for frees and reallocs that
    /// name their block by address only (see [`TraceWriter::free_allocation`] for the fast path).
    block_index: HashMap<u64, usize>,
    indexed: usize,
    time_resolution_ns: u64,
    chunk_bytes: usize,
    bytes_written: u64,
}

impl<W: Write> std::fmt::Debug for TraceWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceWriter")
            .field("pending_payload", &self.payload.len())
            .field("bytes_written", &self.bytes_written)
            .finish()
    }
}

/// The zstd stream compressor: [`ZSTD_LEVEL`], window of 2^[`ZSTD_WINDOW_LOG`] bytes.
fn zstd_encoder() -> io::Result<zstd::stream::raw::Encoder<'static>> {
    let mut encoder = zstd::stream::raw::Encoder::new(ZSTD_LEVEL)?;
    encoder.set_parameter(zstd::stream::raw::CParameter::WindowLog(ZSTD_WINDOW_LOG))?;
    Ok(encoder)
}

impl<W: Write> TraceWriter<W> {
    /// Writes the file header and returns a writer with exact times (resolution 0).
    pub fn new(mut out: W, header: &TraceHeader) -> io::Result<Self> {
        let mut body = Vec::new();
        put(&mut body, u64::from(header.pid));
        put(&mut body, header.start_unix_s);
        put(&mut body, header.page_size);
        put(
            &mut body,
            if header.traces_mmap {
                FLAG_TRACES_MMAP
            } else {
                0
            },
        );
        put(&mut body, header.command.len() as u64);
        for arg in &header.command {
            put(&mut body, arg.len() as u64);
            body.extend_from_slice(arg.as_bytes());
        }
        put(&mut body, u64::from(header.start_subsec_nanos.unwrap_or(0)));
        let mut head = Vec::with_capacity(body.len() + 20);
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&header.format_version.to_le_bytes());
        head.extend_from_slice(&(body.len() as u32).to_le_bytes());
        head.extend_from_slice(&body);
        head.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.write_all(&head)?;
        Ok(TraceWriter {
            out,
            payload: Vec::with_capacity(DEFAULT_CHUNK_BYTES + 4096),
            compressed: Vec::new(),
            state: DeltaState::default(),
            encoder: zstd_encoder()?,
            address_policy: AddressPolicy::All,
            allocations: 0,
            chunk_first_allocation: 0,
            chunk_blocks: Vec::new(),
            block_index: HashMap::new(),
            indexed: 0,
            time_resolution_ns: 0,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            bytes_written: head.len() as u64,
        })
    }

    /// Quantise event times: each event's time is rounded down to a multiple of `nanos`
    /// (0 = exact times).
    pub fn set_time_resolution(&mut self, nanos: u64) {
        self.time_resolution_ns = nanos;
    }

    /// Which block addresses the trace states (default [`AddressPolicy::All`]).
    pub fn set_address_policy(&mut self, policy: AddressPolicy) {
        self.address_policy = policy;
    }

    /// Payload size at which a chunk is written (at least 1 KiB).
    pub fn set_chunk_bytes(&mut self, bytes: usize) {
        self.chunk_bytes = bytes.clamp(1024, MAX_CHUNK_LEN as usize / 2);
    }

    /// Bytes written to `out` so far (complete chunks only).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Encodes any event.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Stack { id, frames } => self.stack(*id, frames),
            Event::ModuleLoaded(module) => self.module_loaded(module),
            Event::ModuleUnloaded { id, time } => self.module_unloaded(*time, *id),
            Event::Alloc {
                time,
                thread,
                address,
                size,
                stack,
                kind,
            } => self.alloc(*time, *thread, *address, *size, *stack, *kind),
            Event::Free {
                time,
                thread,
                address,
            } => self.free(*time, *thread, *address),
            Event::Realloc {
                time,
                thread,
                old_address,
                new_address,
                size,
                stack,
            } => self.realloc(*time, *thread, *old_address, *new_address, *size, *stack),
            Event::RssSample { time, rss_bytes } => self.rss_sample(*time, *rss_bytes),
            Event::LeakScan(scan) => self.leak_scan(scan),
            Event::Exec(call) => self.exec_call(call),
            Event::End { time, end } => self.end(*time, *end),
        }
    }

    /// Moves the current time to `time` rounded down to the resolution. Ticks are multiples of
    /// the resolution, so a steady stream repeats the same tick bytes (which compress well).
    #[inline]
    fn tick(&mut self, time: TraceTime) {
        let resolution = self.time_resolution_ns.max(1);
        // Still inside the current tick's interval (the common case): nothing to write.
        if time.0 >= self.state.time && time.0 - self.state.time < resolution {
            return;
        }
        let quantised = time.0 - time.0 % resolution;
        self.payload.push(TAG_TIME);
        put_delta(&mut self.payload, self.state.time, quantised);
        self.state.time = quantised;
    }

    fn record_done(&mut self) -> io::Result<()> {
        if self.payload.len() >= self.chunk_bytes {
            self.write_chunk()?;
        }
        Ok(())
    }

    /// Defines stack `id` (innermost frame first).
    pub fn stack(&mut self, id: StackId, frames: &[u64]) -> io::Result<()> {
        let p = &mut self.payload;
        p.push(TAG_STACK);
        put(p, u64::from(id.0));
        put(p, frames.len() as u64);
        let mut previous = 0u64;
        for &frame in frames {
            put_delta(p, previous, frame);
            previous = frame;
        }
        self.record_done()
    }

    pub fn module_loaded(&mut self, module: &Module) -> io::Result<()> {
        let p = &mut self.payload;
        p.push(TAG_MODULE_LOADED);
        put(p, u64::from(module.id.0));
        put(p, module.base);
        put(p, module.path.len() as u64);
        p.extend_from_slice(module.path.as_bytes());
        match &module.build_id {
            Some(id) => {
                put(p, id.len() as u64 + 1);
                p.extend_from_slice(id);
            }
            None => put(p, 0),
        }
        put(p, module.ranges.len() as u64);
        for &(start, end) in &module.ranges {
            put(p, start);
            put(p, end.wrapping_sub(start));
        }
        self.record_done()
    }

    pub fn module_unloaded(&mut self, time: TraceTime, id: ModuleId) -> io::Result<()> {
        self.tick(time);
        self.payload.push(TAG_MODULE_UNLOADED);
        put(&mut self.payload, u64::from(id.0));
        self.record_done()
    }

    /// Makes `thread` the current thread (a record only when it changes).
    fn thread(&mut self, thread: ThreadId) {
        if thread.0 != self.state.thread {
            self.payload.push(TAG_THREAD);
            put(&mut self.payload, u64::from(thread.0));
            self.state.thread = thread.0;
        }
    }

    /// Sequence number of the last allocation (or realloc result) written, for
    /// [`TraceWriter::free_allocation`].
    pub fn last_allocation(&self) -> u64 {
        self.allocations.wrapping_sub(1)
    }

    pub fn alloc(
        &mut self,
        time: TraceTime,
        thread: ThreadId,
        address: u64,
        size: u64,
        stack: StackId,
        kind: AllocKind,
    ) -> io::Result<()> {
        self.tick(time);
        self.thread(thread);
        let p = &mut self.payload;
        if kind == AllocKind::Malloc {
            p.push(TAG_MALLOC);
        } else {
            p.push(TAG_ALLOC);
            p.push(alloc_kind_code(kind));
        }
        put(p, size);
        put(p, u64::from(stack.0));
        self.allocated(address);
        self.record_done()
    }

    /// Registers the block just written as the chunk's next one.
    fn allocated(&mut self, address: u64) {
        self.chunk_blocks.push(ChunkBlock {
            address,
            freed: false,
        });
        self.allocations += 1;
    }

    /// The index of the live chunk block at `address`, if there is one.
    fn chunk_block_at(&mut self, address: u64) -> Option<usize> {
        for (index, block) in self.chunk_blocks.iter().enumerate().skip(self.indexed) {
            self.block_index.insert(block.address, index);
        }
        self.indexed = self.chunk_blocks.len();
        let index = *self.block_index.get(&address)?;
        let block = self.chunk_blocks[index];
        (block.address == address && !block.freed).then_some(index)
    }

    /// Marks chunk block `index` freed and returns its distance from the chunk's latest block.
    fn free_chunk_block(&mut self, index: usize) -> u64 {
        self.chunk_blocks[index].freed = true;
        (self.chunk_blocks.len() - index) as u64
    }

    pub fn free(&mut self, time: TraceTime, thread: ThreadId, address: u64) -> io::Result<()> {
        match self.chunk_block_at(address) {
            Some(index) => self.free_by_distance(time, thread, index),
            None => self.free_by_address(time, thread, address),
        }
    }

    fn free_by_address(
        &mut self,
        time: TraceTime,
        thread: ThreadId,
        address: u64,
    ) -> io::Result<()> {
        self.tick(time);
        self.thread(thread);
        let p = &mut self.payload;
        p.push(TAG_FREE);
        put_delta(p, self.state.address, address);
        self.state.address = address;
        self.record_done()
    }

    fn free_by_distance(
        &mut self,
        time: TraceTime,
        thread: ThreadId,
        index: usize,
    ) -> io::Result<()> {
        self.tick(time);
        self.thread(thread);
        let distance = self.free_chunk_block(index);
        self.payload.push(TAG_FREE_CHUNK_BLOCK);
        put(&mut self.payload, distance);
        self.record_done()
    }

    /// Frees the block written as allocation number `allocation` (see
    /// [`TraceWriter::last_allocation`]) at `address`, like [`TraceWriter::free`] but without
    /// looking the block up by address.
    pub fn free_allocation(
        &mut self,
        time: TraceTime,
        thread: ThreadId,
        address: u64,
        allocation: u64,
    ) -> io::Result<()> {
        let index = allocation.wrapping_sub(self.chunk_first_allocation) as usize;
        match self.chunk_blocks.get(index) {
            Some(block)
                if allocation >= self.chunk_first_allocation
                    && block.address == address
                    && !block.freed =>
            {
                self.free_by_distance(time, thread, index)
            }
            _ => self.free(time, thread, address),
        }
    }

    pub fn realloc(
        &mut self,
        time: TraceTime,
        thread: ThreadId,
        old_address: u64,
        new_address: u64,
        size: u64,
        stack: StackId,
    ) -> io::Result<()> {
        let old_block = match old_address {
            0 => None,
            _ => self.chunk_block_at(old_address),
        };
        self.tick(time);
        self.thread(thread);
        self.payload.push(TAG_REALLOC);
        match (old_address, old_block) {
            (0, _) => put(&mut self.payload, 0),
            (_, Some(index)) => {
                let distance = self.free_chunk_block(index);
                put(&mut self.payload, distance + 1);
            }
            (_, None) => {
                put(&mut self.payload, 1);
                put_delta(&mut self.payload, self.state.address, old_address);
                self.state.address = old_address;
            }
        }
        put(&mut self.payload, size);
        put(&mut self.payload, u64::from(stack.0));
        self.allocated(new_address);
        self.record_done()
    }

    pub fn rss_sample(&mut self, time: TraceTime, rss_bytes: u64) -> io::Result<()> {
        self.tick(time);
        self.payload.push(TAG_RSS);
        put(&mut self.payload, rss_bytes);
        self.record_done()
    }

    /// Writes a leak scan. It starts a new chunk, so that every block it lists has its real
    /// address in the trace, and goes over as many records (and chunks) as it takes
    /// ([`SCAN_PIECE_BLOCKS`] blocks each): a scan of 8.4 M blocks in one record made a chunk
    /// over [`MAX_CHUNK_LEN`], which readers refuse.
    pub fn leak_scan(&mut self, scan: &LeakScan) -> io::Result<()> {
        self.write_chunk()?;
        let mut pieces = scan.blocks.chunks(SCAN_PIECE_BLOCKS).peekable();
        loop {
            let piece = pieces.next().unwrap_or_default();
            let continues = pieces.peek().is_some();
            self.tick(scan.time);
            let p = &mut self.payload;
            p.push(TAG_LEAK_SCAN);
            p.push(trigger_code(scan.trigger) | if continues { SCAN_CONTINUES } else { 0 });
            put(p, piece.len() as u64);
            let mut previous = 0u64;
            for block in piece {
                put_delta(p, previous, block.address);
                previous = block.address;
                p.push(leak_class_code(block.class));
            }
            self.record_done()?;
            if !continues {
                return Ok(());
            }
        }
    }

    /// Writes what an `exec` is about to run; the `end` record of kind exec follows. (The
    /// recorder uses [`TraceWriter::end_with_exec`], which writes both.)
    pub fn exec_call(&mut self, call: &ExecCall) -> io::Result<()> {
        self.put_exec_call(call);
        self.record_done()
    }

    fn put_exec_call(&mut self, call: &ExecCall) {
        let p = &mut self.payload;
        p.push(TAG_EXEC_CALL);
        p.push(if call.keeps_tracer {
            EXEC_KEEPS_TRACER
        } else {
            0
        });
        put(p, call.program.len() as u64);
        p.extend_from_slice(call.program.as_bytes());
        put(p, call.args.len() as u64);
        for arg in &call.args {
            put(p, arg.len() as u64);
            p.extend_from_slice(arg.as_bytes());
        }
    }

    pub fn end(&mut self, time: TraceTime, end: ProcessEnd) -> io::Result<()> {
        self.put_end(time, end);
        self.record_done()
    }

    fn put_end(&mut self, time: TraceTime, end: ProcessEnd) {
        self.tick(time);
        let p = &mut self.payload;
        p.push(TAG_END);
        match end {
            ProcessEnd::Exited(status) => {
                p.push(END_EXITED);
                put_delta(p, 0, i64::from(status) as u64);
            }
            ProcessEnd::Exec => p.push(END_EXEC),
        }
    }

    /// Ends an image's trace before its `exec`: what is pending in a chunk as usual, then the
    /// exec call record (when known) and the end record of kind exec in a last chunk of their
    /// own, stored uncompressed, so that [`crate::reader::exec_ending`] finds them by reading
    /// chunk headers only, without decompressing the file. Flushes. (An exec that fails lets
    /// the program go on: its later chunks continue the zstd stream, which the raw chunk did
    /// not touch.)
    pub fn end_with_exec(&mut self, time: TraceTime, call: Option<&ExecCall>) -> io::Result<()> {
        self.write_chunk()?;
        if let Some(call) = call {
            self.put_exec_call(call);
        }
        self.put_end(time, ProcessEnd::Exec);
        self.write_raw_chunk()?;
        self.out.flush()
    }

    /// Ends the chunk's records with its blocks' addresses (see [`AddressPolicy`]).
    fn write_addresses(&mut self) {
        let keep_all = self.address_policy == AddressPolicy::All;
        let stated = self
            .chunk_blocks
            .iter()
            .filter(|block| keep_all || !block.freed)
            .count();
        if stated == 0 {
            return;
        }
        let p = &mut self.payload;
        p.push(TAG_ADDRESSES);
        put(p, stated as u64);
        let (mut next_index, mut previous_address) = (0usize, 0u64);
        for (index, block) in self.chunk_blocks.iter().enumerate() {
            if keep_all || !block.freed {
                put(p, (index - next_index) as u64);
                put_delta(p, previous_address, block.address);
                next_index = index + 1;
                previous_address = block.address;
            }
        }
    }

    /// Compresses and writes the pending payload as one chunk (nothing if it is empty): the
    /// file's zstd stream continues with the payload and is flushed, so the chunk's bytes decode
    /// given the earlier chunks'.
    fn write_chunk(&mut self) -> io::Result<()> {
        self.write_chunk_as(CODEC_ZSTD_STREAM)
    }

    /// Writes the pending records as a chunk stored uncompressed (outside the zstd stream).
    fn write_raw_chunk(&mut self) -> io::Result<()> {
        self.write_chunk_as(CODEC_NONE)
    }

    fn write_chunk_as(&mut self, codec: u8) -> io::Result<()> {
        if self.payload.is_empty() {
            return Ok(());
        }
        self.write_addresses();
        let raw_len = self.payload.len();
        if codec == CODEC_NONE {
            self.compressed.clear();
            self.compressed.extend_from_slice(&self.payload);
            return self.write_stored_chunk(codec);
        }
        self.compressed.clear();
        self.compressed
            .reserve(zstd::zstd_safe::compress_bound(raw_len) + 1024);
        let mut input = InBuffer::around(&self.payload);
        while input.pos() < raw_len {
            self.compressed.reserve(1024);
            let written = self.compressed.len();
            let mut output = OutBuffer::around_pos(&mut self.compressed, written);
            self.encoder.run(&mut input, &mut output)?;
        }
        loop {
            self.compressed.reserve(1024);
            let written = self.compressed.len();
            let mut output = OutBuffer::around_pos(&mut self.compressed, written);
            if self.encoder.flush(&mut output)? == 0 {
                break;
            }
        }
        self.write_stored_chunk(codec)
    }

    /// Writes the chunk whose stored bytes are in `compressed` (for `codec`) and whose records
    /// are in `payload`, and starts the next one.
    fn write_stored_chunk(&mut self, codec: u8) -> io::Result<()> {
        let raw_len = self.payload.len();
        let stored: &[u8] = &self.compressed;
        let mut head = [0u8; CHUNK_HEADER_LEN];
        head[0..4].copy_from_slice(&(raw_len as u32).to_le_bytes());
        head[4..8].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        head[8] = codec;
        head[9..13].copy_from_slice(&crc32fast::hash(&self.payload).to_le_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(stored)?;
        self.bytes_written += (CHUNK_HEADER_LEN + stored.len()) as u64;
        self.payload.clear();
        self.state = DeltaState::default();
        self.chunk_first_allocation = self.allocations;
        self.chunk_blocks.clear();
        self.block_index.clear();
        self.indexed = 0;
        Ok(())
    }

    /// Ends the current chunk, writes it and flushes `out`.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_chunk()?;
        self.out.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }
}
