//! Encodes events into the chunked trace format: delta/varint records, LZ4-compressed chunks.
//!
//! The writer buffers one chunk's payload (default 256 KiB) and writes it as a whole, so a process
//! killed mid-run leaves a file whose complete chunks all decode. Its buffers are reused, so after
//! warm-up encoding allocates nothing.

use std::io::{self, Write};

use crate::format::*;
use crate::model::{
    AllocKind, Event, LeakScan, Module, ModuleId, ProcessEnd, StackId, ThreadId, TraceHeader,
    TraceTime,
};
use crate::varint::{put, put_delta};

/// Default payload size at which a chunk is compressed and written.
pub const DEFAULT_CHUNK_BYTES: usize = 256 << 10;

/// Delta-coding state; reset at every chunk so that chunks decode independently.
#[derive(Default)]
struct DeltaState {
    time: u64,
    address: u64,
    thread: u32,
}

/// Streams a trace to `out`. Call [`TraceWriter::flush`] to make everything written so far
/// durable as complete chunks (the recorder does so every 100 ms); dropping without it loses the
/// pending chunk.
pub struct TraceWriter<W: Write> {
    out: W,
    payload: Vec<u8>,
    compressed: Vec<u8>,
    state: DeltaState,
    /// Allocations (and realloc results) written so far, and how many before this chunk.
    allocations: u64,
    chunk_first_allocation: u64,
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
            allocations: 0,
            chunk_first_allocation: 0,
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
        put_delta(p, self.state.address, address);
        self.state.address = address;
        put(p, size);
        put(p, u64::from(stack.0));
        self.allocations += 1;
        self.record_done()
    }

    pub fn free(&mut self, time: TraceTime, thread: ThreadId, address: u64) -> io::Result<()> {
        self.tick(time);
        self.thread(thread);
        let p = &mut self.payload;
        p.push(TAG_FREE);
        put_delta(p, self.state.address, address);
        self.state.address = address;
        self.record_done()
    }

    /// Frees the block written as allocation number `allocation` (see
    /// [`TraceWriter::last_allocation`]) at `address`: when it is among the chunk's last
    /// [`RECENT_ALLOCATIONS`] allocations, the record names it by distance instead of address.
    pub fn free_allocation(
        &mut self,
        time: TraceTime,
        thread: ThreadId,
        address: u64,
        allocation: u64,
    ) -> io::Result<()> {
        let distance = self.allocations.wrapping_sub(allocation);
        if allocation < self.chunk_first_allocation
            || distance == 0
            || distance > RECENT_ALLOCATIONS
        {
            return self.free(time, thread, address);
        }
        self.tick(time);
        self.thread(thread);
        self.payload.push(TAG_FREE_RECENT);
        put(&mut self.payload, distance);
        self.state.address = address;
        self.record_done()
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
        self.tick(time);
        self.thread(thread);
        let p = &mut self.payload;
        p.push(TAG_REALLOC);
        put_delta(p, self.state.address, old_address);
        put_delta(p, old_address, new_address);
        self.state.address = new_address;
        put(p, size);
        put(p, u64::from(stack.0));
        self.allocations += 1;
        self.record_done()
    }

    pub fn rss_sample(&mut self, time: TraceTime, rss_bytes: u64) -> io::Result<()> {
        self.tick(time);
        self.payload.push(TAG_RSS);
        put(&mut self.payload, rss_bytes);
        self.record_done()
    }

    pub fn leak_scan(&mut self, scan: &LeakScan) -> io::Result<()> {
        self.tick(scan.time);
        let p = &mut self.payload;
        p.push(TAG_LEAK_SCAN);
        p.push(trigger_code(scan.trigger));
        put(p, scan.blocks.len() as u64);
        let mut previous = 0u64;
        for block in &scan.blocks {
            put_delta(p, previous, block.address);
            previous = block.address;
            p.push(leak_class_code(block.class));
        }
        self.record_done()
    }

    pub fn end(&mut self, time: TraceTime, end: ProcessEnd) -> io::Result<()> {
        self.tick(time);
        let p = &mut self.payload;
        p.push(TAG_END);
        match end {
            ProcessEnd::Exited(status) => {
                p.push(0);
                put_delta(p, 0, i64::from(status) as u64);
            }
        }
        self.record_done()
    }

    /// Compresses and writes the pending payload as one chunk (nothing if it is empty).
    fn write_chunk(&mut self) -> io::Result<()> {
        if self.payload.is_empty() {
            return Ok(());
        }
        let raw_len = self.payload.len();
        self.compressed
            .resize(lz4_flex::block::get_maximum_output_size(raw_len), 0);
        let (codec, stored): (u8, &[u8]) =
            match lz4_flex::block::compress_into(&self.payload, &mut self.compressed) {
                Ok(n) if n < raw_len => (CODEC_LZ4, &self.compressed[..n]),
                _ => (CODEC_NONE, &self.payload),
            };
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
