//! memcheck-style reachability scan over the live blocks, run by the writer thread.
//!
//! Roots are every readable+writable mapping (module data and bss, TLS, thread stacks, anonymous
//! memory) except glibc's heaps, the live blocks themselves, the tracer's own memory and its stack;
//! the thread that asked for the scan (at exit) is scanned from its stack pointer up only, and so
//! is every other thread blocked in the kernel throughout the scan (`BlockedThread`).
//! Classification follows valgrind's `mc_leakcheck.c`: marking from the roots makes a block
//! Reachable through a start pointer from a definite source and Possible through an interior
//! pointer (or from a Possible block); then every still-unreached block, in address order, leads a
//! clique whose unreached members become indirectly lost. The heuristics valgrind enables by
//! default (`--leak-check-heuristics=all`) that need no type information are applied:
//! stdstring, length64 and newarray turn such interior pointers into start pointers.
//! Memory is read with `process_vm_readv` on ourselves, so a block or mapping that disappears
//! while a live program is scanned yields a short read instead of a crash.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};

use leaksift_trace::model::LeakClass;

use crate::alloc::own_mappings;

/// What the writer remembers about a live block.
#[derive(Clone, Copy, Debug)]
pub struct LiveBlock {
    pub size: u64,
    /// Stack-table slot of the allocating stack.
    pub stack: u32,
    /// `AllocKind` code.
    pub kind: u8,
    /// The trace writer's sequence number for the allocation (frees name it by distance).
    pub allocation: u64,
}

impl LiveBlock {
    /// The block an allocation or realloc event creates as allocation number `allocation`.
    pub fn of(event: &crate::buffers::RawEvent, allocation: u64) -> LiveBlock {
        LiveBlock {
            size: event.size,
            stack: event.stack,
            kind: event.kind,
            allocation,
        }
    }
}

const MMAP_KIND: u8 = 9;
const WORD: u64 = 8;
/// glibc's HEAP_MAX_SIZE on 64-bit: non-main arenas live in heaps aligned to it.
const ARENA_HEAP_ALIGN: u64 = 64 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Unreached,
    Possible,
    Reachable,
    Indirect,
}

struct Blocks {
    starts: Vec<u64>,
    sizes: Vec<u64>,
    /// Where the last block ends (0 without blocks): words at or above it, or below the first
    /// start, point into no block, and most words are such (zeros, small numbers, text).
    end: u64,
    /// The block [`Blocks::find`] found last: pointers often lead to it or to its neighbour
    /// (a list allocated in a loop).
    finger: core::cell::Cell<usize>,
}

impl Blocks {
    /// Blocks sorted by start, as (start, size).
    fn new(sorted: &[(u64, u64)]) -> Blocks {
        Blocks {
            starts: sorted.iter().map(|b| b.0).collect(),
            sizes: sorted.iter().map(|b| b.1).collect(),
            end: sorted.iter().map(|b| b.0 + b.1.max(1)).max().unwrap_or(0),
            finger: core::cell::Cell::new(0),
        }
    }

    /// Index of the block `ptr` points into (a zero-sized block only by its start).
    fn find(&self, ptr: u64) -> Option<usize> {
        if self.starts.first().is_none_or(|&first| ptr < first) || ptr >= self.end {
            return None;
        }
        // The last block found, then the one before and the one after it.
        let finger = self.finger.get();
        for i in [finger, finger.wrapping_sub(1), finger + 1] {
            if let (Some(&start), Some(&size)) = (self.starts.get(i), self.sizes.get(i))
                && start <= ptr
                && (ptr < start + size || ptr == start)
                && self.starts.get(i + 1).is_none_or(|&next| next > ptr)
            {
                self.finger.set(i);
                return Some(i);
            }
        }
        let i = self.starts.partition_point(|&s| s <= ptr).checked_sub(1)?;
        let (start, size) = (self.starts[i], self.sizes[i]);
        (ptr < start + size || ptr == start).then(|| {
            self.finger.set(i);
            i
        })
    }
}

/// The thread id a scan reads memory through, set by [`classify`] (0: ask for it per read).
static READER_TID: AtomicI32 = AtomicI32::new(0);

/// The memory is named by the calling thread's id, not the process id: once `main` has ended with
/// `pthread_exit` the leader is a zombie without memory, and reads through its id fail.
fn reader_tid() -> libc::pid_t {
    match READER_TID.load(Ordering::Relaxed) {
        0 => crate::sys::gettid() as libc::pid_t,
        tid => tid,
    }
}

/// `/proc/self/mem`, open while a scan reads through it (-1: reads use `process_vm_readv`).
static MEM_FILE: AtomicI32 = AtomicI32::new(-1);

/// Picks how this scan reads memory: `process_vm_readv`, or `/proc/self/mem` where that is
/// refused (a seccomp filter, such as systemd's `SystemCallFilter=`, that applies to every
/// thread: reads then failed and every block read as definitely lost) or may kill the process
/// (any seccomp filter: only `/proc/self/mem` is tried). Returns false when
/// neither can read a word of this thread's own stack: then there is no scan.
fn choose_reader() -> bool {
    let probe = [0x5au8, 1, 2, 3, 4, 5, 6, 0xa5];
    // Written to memory before the reads: the system call reads it by address.
    std::hint::black_box(&probe);
    let reads_probe = || {
        let mut copy = [0u8; 8];
        read_memory(probe.as_ptr() as u64, &mut copy) == 8 && copy == probe
    };
    // Under a seccomp filter (systemd's `SystemCallFilter=`, a container runtime's profile)
    // `process_vm_readv` may be denied by killing the process (systemd's default action, and
    // the call is in `@debug`, outside `@system-service`): it is not tried at all then.
    // SAFETY: PR_GET_SECCOMP takes no pointer; it returns 2 when a filter applies to this thread.
    let filtered = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } == 2;
    if !filtered && reads_probe() {
        return true;
    }
    let Ok(file) = std::fs::File::open(crate::sys::own_proc_file("mem")) else {
        return false;
    };
    MEM_FILE.store(std::os::fd::IntoRawFd::into_raw_fd(file), Ordering::Relaxed);
    if reads_probe() {
        return true;
    }
    release_reader();
    false
}

/// Closes `/proc/self/mem` if the scan read through it.
fn release_reader() {
    let fd = MEM_FILE.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: `choose_reader` took this descriptor from a `File` it owned; nothing else
        // holds it.
        drop(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    }
}

/// Copies `len` bytes at `address` of this process into `out`; returns how many were readable.
fn read_memory(address: u64, out: &mut [u8]) -> usize {
    let file = MEM_FILE.load(Ordering::Relaxed);
    if file >= 0 {
        // SAFETY: `file` is open (`choose_reader`); `out` is writable for its length. The
        // kernel copies up to the first unreadable page and fails only when none is readable.
        let n = unsafe {
            libc::pread64(
                file,
                out.as_mut_ptr() as *mut libc::c_void,
                out.len(),
                address as libc::off64_t,
            )
        };
        return usize::try_from(n).unwrap_or(0);
    }
    let me = reader_tid();
    let local = libc::iovec {
        iov_base: out.as_mut_ptr() as *mut libc::c_void,
        iov_len: out.len(),
    };
    let remote = libc::iovec {
        iov_base: address as *mut libc::c_void,
        iov_len: out.len(),
    };
    // SAFETY: reads our own address space into `out`; faults are reported, not raised.
    let n = unsafe { libc::process_vm_readv(me, &local, 1, &remote, 1, 0) };
    if n >= 0 {
        return n as usize;
    }
    // Partially unmapped: fall back page by page.
    let mut done = 0;
    while done < out.len() {
        let page_end = ((address + done as u64) | 4095) + 1;
        let len = ((page_end - address) as usize - done).min(out.len() - done);
        let local = libc::iovec {
            iov_base: out[done..].as_mut_ptr() as *mut libc::c_void,
            iov_len: len,
        };
        let remote = libc::iovec {
            iov_base: (address + done as u64) as *mut libc::c_void,
            iov_len: len,
        };
        // SAFETY: as above.
        if unsafe { libc::process_vm_readv(me, &local, 1, &remote, 1, 0) } != len as isize {
            break;
        }
        done += len;
    }
    done
}

fn read_word(address: u64) -> Option<u64> {
    let mut bytes = [0u8; 8];
    (read_memory(address, &mut bytes) == 8).then(|| u64::from_ne_bytes(bytes))
}

/// Calls `visit` with every aligned word in `[start, end)`.
fn for_each_word(start: u64, end: u64, buffer: &mut Vec<u8>, mut visit: impl FnMut(u64)) {
    let mut at = (start + WORD - 1) & !(WORD - 1);
    while at + WORD <= end {
        let len = ((end - at) & !(WORD - 1)).min(1 << 20) as usize;
        buffer.resize(len, 0);
        let got = read_memory(at, buffer) & !(WORD as usize - 1);
        for chunk in buffer[..got].chunks_exact(8) {
            visit(u64::from_ne_bytes([
                chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
            ]));
        }
        if got < len {
            // Skip the unreadable page.
            at = ((at + got as u64) | 4095) + 1;
        } else {
            at += len as u64;
        }
    }
}

/// Calls `each` with the runs of `[start, end)` whose pages were ever touched: resident or
/// swapped out, as `/proc/self/pagemap` tells (bits 63 and 62 of each page's 8-byte entry). The
/// other pages of a private anonymous mapping read as zeros, so they hold no pointer. Where
/// pagemap cannot be read, the rest of the range is passed whole.
fn for_each_touched_run(start: u64, end: u64, mut each: impl FnMut(u64, u64)) {
    use std::os::unix::fs::FileExt;
    const TOUCHED: u64 = 3 << 62;
    /// Entries read at a time: 16 MiB of addresses.
    const ENTRIES: u64 = 4096;
    if start >= end {
        return;
    }
    let Ok(pagemap) = std::fs::File::open(crate::sys::own_proc_file("pagemap")) else {
        each(start, end);
        return;
    };
    let mut entries = vec![0u8; ENTRIES as usize * 8];
    // The first page of the current run of touched pages.
    let mut run: Option<u64> = None;
    let mut page = start & !(PAGE - 1);
    while page < end {
        let count = (end - page).div_ceil(PAGE).min(ENTRIES) as usize;
        let bytes = &mut entries[..count * 8];
        if pagemap.read_exact_at(bytes, page / PAGE * 8).is_err() {
            each(run.unwrap_or(page).max(start), end);
            return;
        }
        for entry in bytes.chunks_exact(8) {
            let entry = u64::from_ne_bytes([
                entry[0], entry[1], entry[2], entry[3], entry[4], entry[5], entry[6], entry[7],
            ]);
            match (entry & TOUCHED != 0, run) {
                (true, None) => run = Some(page),
                (false, Some(from)) => {
                    each(from.max(start), page);
                    run = None;
                }
                _ => {}
            }
            page += PAGE;
        }
    }
    if let Some(from) = run {
        each(from.max(start), end);
    }
}

const PAGE: u64 = 4096;
/// Pages a scan keeps (direct-mapped by page number): 256 KiB.
const CACHED_PAGES: usize = 64;
/// Blocks larger than this are read directly (in 1 MiB steps), not through the page cache.
const CACHED_BLOCK_MAX: u64 = 64 << 10;
/// Blocks from this size on are read only where they were ever touched
/// ([`for_each_touched_run`]): the malloc family hands out anonymous memory, whose untouched
/// pages read as zeros.
const SPARSE_BLOCK_MIN: u64 = 1 << 20;

/// The heap pages a scan read last. Reading each small block with its own `process_vm_readv`
/// cost the kernel a page lookup per block (2 million 48-byte blocks: 2.8 s of system time);
/// blocks allocated together lie together, so most reads now come from a page already copied.
struct PageCache {
    /// Per slot: the page's address + 1 (0 = empty) and whether it was readable.
    tags: Vec<u64>,
    readable: Vec<bool>,
    bytes: Vec<u8>,
}

impl PageCache {
    /// A cache without pages: what a marker holds while its cache is lent out.
    fn empty() -> PageCache {
        PageCache {
            tags: Vec::new(),
            readable: Vec::new(),
            bytes: Vec::new(),
        }
    }

    fn new() -> PageCache {
        PageCache {
            tags: vec![0; CACHED_PAGES],
            readable: vec![false; CACHED_PAGES],
            bytes: vec![0; CACHED_PAGES * PAGE as usize],
        }
    }

    /// The bytes of the page at `page` (aligned), `None` if it cannot be read.
    fn page(&mut self, page: u64) -> Option<&[u8]> {
        let slot = ((page / PAGE) as usize) % CACHED_PAGES;
        let range = slot * PAGE as usize..(slot + 1) * PAGE as usize;
        if self.tags[slot] != page + 1 {
            self.tags[slot] = page + 1;
            self.readable[slot] =
                read_memory(page, &mut self.bytes[range.clone()]) == PAGE as usize;
        }
        self.readable[slot].then(|| &self.bytes[range])
    }

    /// Calls `visit` with every aligned word in `[start, end)` (of a block), skipping unreadable
    /// pages, as [`for_each_word`] does.
    fn for_each_word(
        &mut self,
        start: u64,
        end: u64,
        direct: &mut Vec<u8>,
        mut visit: impl FnMut(u64),
    ) {
        if end - start >= SPARSE_BLOCK_MIN {
            // Big blocks are often mostly untouched (buffers sized for the worst case): with
            // 141 MiB of xz's read whole, `record` took 0.13 s for a 23 ms run (now 0.05 s).
            for_each_touched_run(start, end, |from, to| {
                for_each_word(from, to, direct, &mut visit);
            });
            return;
        }
        if end - start > CACHED_BLOCK_MAX {
            for_each_word(start, end, direct, visit);
            return;
        }
        let mut at = (start + WORD - 1) & !(WORD - 1);
        while at + WORD <= end {
            let page = at & !(PAGE - 1);
            let stop = end.min(page + PAGE);
            if let Some(bytes) = self.page(page) {
                let words = &bytes[(at - page) as usize..(stop - page) as usize];
                for chunk in words.chunks_exact(8) {
                    visit(u64::from_ne_bytes([
                        chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6],
                        chunk[7],
                    ]));
                }
            }
            at = page + PAGE;
        }
    }
}

/// valgrind's default interior-pointer heuristics that need no type information.
fn interior_counts_as_start(ptr: u64, start: u64, size: u64) -> bool {
    let offset = ptr - start;
    if offset == 3 * WORD {
        // stdstring: length, capacity, refcount, chars (capacity + 1 bytes).
        if let (Some(length), Some(capacity)) = (read_word(start), read_word(start + WORD))
            && 3 * WORD + capacity.wrapping_add(1) == size
            && length <= capacity
        {
            return true;
        }
    }
    if offset == WORD
        && let Some(first) = read_word(start)
    {
        // length64: the first word is the length of the rest.
        if first > 0 && size - WORD == first {
            return true;
        }
        // newarray: the first word is a plausible element count of a new[] array.
        if first > 0 && (size - WORD).is_multiple_of(first) {
            return true;
        }
    }
    false
}

struct Marker<'a> {
    blocks: &'a Blocks,
    marks: Vec<Mark>,
    stack: Vec<usize>,
    buffer: Vec<u8>,
    pages: PageCache,
}

impl Marker<'_> {
    /// valgrind's lc_push_without_clique_if_a_chunk_ptr.
    fn reach(&mut self, ptr: u64, prior_definite: bool) {
        let Some(i) = self.blocks.find(ptr) else {
            return;
        };
        if self.marks[i] == Mark::Reachable {
            return;
        }
        let start = self.blocks.starts[i];
        let via_start = ptr == start || interior_counts_as_start(ptr, start, self.blocks.sizes[i]);
        if via_start && prior_definite {
            self.marks[i] = Mark::Reachable;
            self.stack.push(i);
        } else if self.marks[i] == Mark::Unreached {
            self.marks[i] = Mark::Possible;
            self.stack.push(i);
        }
    }

    fn scan_root(&mut self, root: &Root) {
        let mut buffer = std::mem::take(&mut self.buffer);
        let mut visit = |word| {
            if !(root.in_libc && self.is_next_chunk_header(word)) {
                self.reach(word, true);
            }
        };
        if root.sparse {
            for_each_touched_run(root.start, root.end, |start, end| {
                for_each_word(start, end, &mut buffer, &mut visit);
            });
        } else {
            for_each_word(root.start, root.end, &mut buffer, visit);
        }
        self.buffer = buffer;
        self.drain_without_clique();
    }

    fn drain_without_clique(&mut self) {
        while let Some(i) = self.stack.pop() {
            let definite = self.marks[i] == Mark::Reachable;
            self.each_word_of(i, |marker, word| marker.reach(word, definite));
        }
    }

    /// Calls `visit` with every word of block `i`, read through the page cache.
    fn each_word_of(&mut self, i: usize, mut visit: impl FnMut(&mut Self, u64)) {
        let (start, size) = (self.blocks.starts[i], self.blocks.sizes[i]);
        let mut buffer = std::mem::take(&mut self.buffer);
        let mut pages = std::mem::replace(&mut self.pages, PageCache::empty());
        pages.for_each_word(start, start + size, &mut buffer, |word| visit(self, word));
        self.pages = pages;
        self.buffer = buffer;
    }

    /// Whether `word` points at the header of the glibc chunk that follows a live block, inside
    /// the block's last bytes (which overlap that header): glibc's main arena, in libc's data,
    /// links its top chunk and free chunks by header. memcheck, whose malloc replaces glibc's,
    /// never sees these pointers, so they must not make the block "possibly lost".
    fn is_next_chunk_header(&self, word: u64) -> bool {
        let Some(i) = self.blocks.find(word) else {
            return false;
        };
        let start = self.blocks.starts[i];
        word != start
            && read_word(start.wrapping_sub(WORD)).is_some_and(|size_field| {
                // The chunk header is two words before the block; the size's low bits are flags.
                start.wrapping_sub(2 * WORD).wrapping_add(size_field & !7) == word
            })
    }

    /// valgrind's clique pass: unreached blocks reachable from `leader` become indirectly lost.
    fn clique(&mut self, leader: usize) {
        self.stack.push(leader);
        while let Some(i) = self.stack.pop() {
            self.each_word_of(i, |marker, word| {
                if let Some(j) = marker.blocks.find(word)
                    && marker.marks[j] == Mark::Unreached
                    && j != leader
                {
                    marker.marks[j] = Mark::Indirect;
                    marker.stack.push(j);
                }
            });
        }
    }
}

/// One mapping of `/proc/self/smaps` (or of `/proc/self/maps` where smaps cannot be read).
struct Mapping {
    start: u64,
    end: u64,
    readable_writable: bool,
    /// `---p`: no access (a thread stack's guard page, for one).
    inaccessible: bool,
    path: String,
    /// Nothing to scan for pointers: the program asked the kernel to leave it out of core dumps
    /// (`MADV_DONTDUMP`, smaps flag `dd`: sanitizer shadow memory, such as ThreadSanitizer's
    /// 31 TiB of it, and reservations), or it is anonymous and private and no page of it was
    /// ever touched (no resident nor swapped page: it reads as zeros).
    skipped: bool,
    /// Private anonymous, at least [`SPARSE_MAPPING_MIN`] long, and less than a quarter of it
    /// ever touched: only its touched pages are read ([`for_each_touched_run`]). A program that
    /// reserves 16 GiB with `MAP_NORESERVE` and uses a page of it made the exit scan read the
    /// whole range (8.3 s).
    sparse: bool,
}

/// Mappings from this size on are read page run by page run when mostly untouched.
const SPARSE_MAPPING_MIN: u64 = 64 << 20;

impl Mapping {
    /// The mapping named by a maps/smaps header line (`start-end perms offset dev inode path`).
    fn from_header(line: &str) -> Option<Mapping> {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        let perms = fields.next()?;
        let path = fields.nth(3).unwrap_or("").to_string();
        let (start, end) = range.split_once('-')?;
        Some(Mapping {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            readable_writable: perms.len() >= 4 && perms.starts_with("rw"),
            inaccessible: perms.starts_with("---"),
            path,
            skipped: false,
            sparse: false,
        })
    }
}

/// The process's mappings, from smaps when it can be read (it tells which mappings need no
/// scan; the kernel walks each mapping's page tables to write it), else from maps.
fn mappings_to_scan() -> Vec<Mapping> {
    // Parsed as it is read: smaps takes about 1 KiB per mapping (60 MiB for a program near the
    // kernel's 65,530-mapping limit), maps a tenth of that.
    let parsed = std::fs::File::open(crate::sys::own_proc_file("smaps"))
        .map(|file| parse_smaps(std::io::BufReader::with_capacity(64 << 10, file)))
        .unwrap_or_default();
    if parsed.is_empty() {
        return mappings();
    }
    parsed
}

/// The process's mappings from maps (none marked `skipped`). Read as bytes, as smaps is.
fn mappings() -> Vec<Mapping> {
    let maps = std::fs::read(crate::sys::own_proc_file("maps")).unwrap_or_default();
    String::from_utf8_lossy(&maps)
        .lines()
        .filter_map(Mapping::from_header)
        .collect()
}

/// Parses smaps: a header line per mapping, then `Name: value` lines, `VmFlags` last. Lines are
/// bytes (decoded lossily): a mapped file's path need not be UTF-8, and read as text, the first
/// such path (the program's, run from a directory named in Latin-1) ended the list, maps ended
/// the same way, and the scan had no roots: every block was lost.
fn parse_smaps(text: impl std::io::BufRead) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    // Resident plus swapped kB of the current mapping.
    let mut touched_kb = 0u64;
    for line in text.split(b'\n') {
        // A read error leaves the list incomplete: none then (the caller reads maps instead).
        let Ok(line) = line else {
            return Vec::new();
        };
        let line = String::from_utf8_lossy(&line);
        let line = line.as_ref();
        let Some((name, value)) = line.split_once(':').filter(|(name, _)| !name.contains(' '))
        else {
            if let Some(mapping) = Mapping::from_header(line) {
                out.push(mapping);
                touched_kb = 0;
            }
            continue;
        };
        let Some(current) = out.last_mut() else {
            continue;
        };
        match name {
            "Rss" | "Swap" => {
                let kb = value.trim().trim_end_matches("kB").trim();
                touched_kb += kb.parse::<u64>().unwrap_or(1);
            }
            "VmFlags" => {
                let dont_dump = value.split_whitespace().any(|flag| flag == "dd");
                // Anonymous and private: no path, or a name given with
                // `PR_SET_VMA_ANON_NAME` (shared anonymous memory shows as `/dev/zero
                // (deleted)` or `[anon_shmem:…]`: pages another process wrote are not this
                // one's resident pages until it touches them, so it is always scanned).
                let anonymous = current.path.is_empty() || current.path.starts_with("[anon:");
                current.skipped = dont_dump || (anonymous && touched_kb == 0);
                let size = current.end.saturating_sub(current.start);
                current.sparse = !current.skipped
                    && anonymous
                    && size >= SPARSE_MAPPING_MIN
                    && touched_kb.saturating_mul(1024) < size / 4;
            }
            _ => {}
        }
    }
    out
}

/// A memory range scanned for pointers.
struct Root {
    start: u64,
    end: u64,
    /// In libc's own data, where glibc's main arena keeps its chunk links.
    in_libc: bool,
    /// Part of a sparse mapping ([`Mapping::sparse`]): only its touched pages are read.
    sparse: bool,
}

/// Whether a mapping is glibc's libc (`libc.so.6`, or `libc-2.NN.so` before 2.34).
fn is_libc(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("libc.so") || name.starts_with("libc-")
}

/// The size of the glibc arena heap starting at the 64 MiB-aligned `aligned`, when the words
/// there are a `heap_info`: `ar_ptr` just past a heap_info of some heap (a real address, not a
/// small number), `prev` null or another heap's start, `size` a page multiple up to 64 MiB and
/// `mprotect_size` at least `size`. The looser test before (any `ar_ptr` whose low bits were
/// small, such as the number 8, and any `size`) could take a thread stack holding small numbers
/// at a 64 MiB boundary for a heap, and leave the rest of that stack, glibc's thread descriptor
/// at its top included, out of the roots.
fn arena_heap_size(aligned: u64) -> Option<u64> {
    let word = |i: u64| read_word(aligned + i * WORD);
    let (arena, prev, size, protected) = (word(0)?, word(1)?, word(2)?, word(3)?);
    let heap_like = arena >= ARENA_HEAP_ALIGN
        && arena & (ARENA_HEAP_ALIGN - 1) <= 64
        && prev & (ARENA_HEAP_ALIGN - 1) == 0
        && size >= 4096
        && size % 4096 == 0
        && size <= ARENA_HEAP_ALIGN
        && protected >= size
        && protected <= ARENA_HEAP_ALIGN;
    heap_like.then_some(size)
}

/// Root ranges: rw mappings of `maps` (but those [`parse_smaps`] marks as skipped) minus glibc
/// heaps, live blocks, the tracer's memory, exited threads' stacks, the unused part of the
/// requester's stack and the `dead` ranges (below blocked threads' stack pointers).
fn roots(
    maps: &[Mapping],
    blocks: &Blocks,
    requester_sp: Option<u64>,
    scanner_stack: (u64, u64),
    dead: &[(u64, u64)],
) -> Vec<Root> {
    let mut excluded: Vec<(u64, u64)> = dead.to_vec();
    for m in maps.iter().filter(|m| m.readable_writable && !m.skipped) {
        if m.path == "[heap]" {
            excluded.push((m.start, m.end));
        }
        // Non-main arena heaps: 64 MiB-aligned, starting with heap_info whose ar_ptr points just
        // past a heap_info (first heap) or into another heap of the same arena.
        let mut aligned = (m.start + ARENA_HEAP_ALIGN - 1) & !(ARENA_HEAP_ALIGN - 1);
        while aligned < m.end {
            if let Some(size) = arena_heap_size(aligned) {
                excluded.push((aligned, aligned + size));
            }
            aligned += ARENA_HEAP_ALIGN;
        }
        if let Some(sp) = requester_sp
            && m.start <= sp
            && sp < m.end
        {
            excluded.push((m.start, sp));
        }
    }
    excluded.extend(
        blocks
            .starts
            .iter()
            .zip(&blocks.sizes)
            .map(|(&s, &z)| (s.saturating_sub(16), s + z)),
    );
    excluded.extend(
        own_mappings()
            .into_iter()
            .map(|(s, e)| (s as u64, e as u64)),
    );
    excluded.push(scanner_stack);
    // x86-64 TLS: a descriptor's first word (`tcbhead_t.tcb`) and third (`self`) hold its
    // own address.
    excluded.extend(crate::buffers::dead_thread_stacks(|tp| {
        tp != 0 && read_word(tp) == Some(tp) && read_word(tp + 2 * WORD) == Some(tp)
    }));
    excluded.sort_unstable();

    let mut out = Vec::new();
    for m in maps.iter().filter(|m| m.readable_writable && !m.skipped) {
        if m.path.starts_with("/dev/") && m.path != "/dev/zero" {
            continue;
        }
        let in_libc = is_libc(&m.path);
        let mut cursor = m.start;
        let first = excluded.partition_point(|&(_, end)| end <= m.start);
        for &(s, e) in &excluded[first..] {
            if s >= m.end {
                break;
            }
            if s > cursor {
                out.push(Root {
                    start: cursor,
                    end: s,
                    in_libc,
                    sparse: m.sparse,
                });
            }
            cursor = cursor.max(e);
        }
        if cursor < m.end {
            out.push(Root {
                start: cursor,
                end: m.end,
                in_libc,
                sparse: m.sparse,
            });
        }
    }
    out
}

/// A thread blocked in the kernel when the scan starts, as `/proc/self/task/TID/syscall` shows
/// it (the system call and its arguments, or -1 outside one, then the stack and program
/// pointers). memcheck never reads memory below a thread's stack pointer less its 128-byte red
/// zone; the tracer cannot stop the program's threads, but a thread that stays blocked from
/// before the scan until after it (the same line, no context switch in between) has not touched
/// its stack meanwhile, so what lies below its stack pointer is dead for the whole scan. The
/// range is read after all if the thread ran (as before: whole stacks are conservative).
/// At exit, a program's idle workers are such threads: a block whose only pointer was left in a
/// returned frame of one of them was called still reachable, where memcheck says lost.
struct BlockedThread {
    tid: u32,
    state: String,
    sp: u64,
    /// Voluntary and involuntary context switches so far.
    switches: u64,
}

/// memcheck's stack red zone on x86-64 (`VG_STACK_REDZONE_SZB`): bytes below the stack pointer
/// a leaf function may use, still read as live.
const RED_ZONE: u64 = 128;

impl BlockedThread {
    /// The threads of the process but `except`, blocked in the kernel now.
    fn all_but(except: u32) -> Vec<BlockedThread> {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        tasks
            .filter_map(|task| task.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&tid| tid != except)
            .filter_map(|tid| {
                let (state, sp) = Self::state(tid)?;
                let switches = Self::switches(tid)?;
                Some(BlockedThread {
                    tid,
                    state,
                    sp,
                    switches,
                })
            })
            .collect()
    }

    /// The thread's `syscall` line and stack pointer, unless it is running (or gone).
    fn state(tid: u32) -> Option<(String, u64)> {
        let line = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
        let sp = parse_blocked_stack_pointer(&line)?;
        Some((line, sp))
    }

    fn switches(tid: u32) -> Option<u64> {
        // Bytes: the thread's name (`Name:`) need not be UTF-8.
        let status = std::fs::read(format!("/proc/self/task/{tid}/status")).ok()?;
        parse_context_switches(&String::from_utf8_lossy(&status))
    }

    /// Whether the thread has not run since it was first seen.
    fn stayed_blocked(&self) -> bool {
        Self::switches(self.tid) == Some(self.switches)
            && Self::state(self.tid).is_some_and(|(state, _)| state == self.state)
    }

    /// The dead part of its stack, `[start of its stack mapping, sp - red zone)`, when the
    /// mapping holding `sp` is known to be this thread's stack alone: the process stack, or a
    /// thread stack glibc made (a guard page right below it, a traced thread's descriptor above
    /// `sp` in it, and no other thread's descriptor nor stack pointer below `sp`). A stack in
    /// memory of the program's own (a coroutine's, `pthread_attr_setstack`) is read whole.
    fn dead_stack(
        &self,
        maps: &[Mapping],
        thread_pointers: &[u64],
        blocked: &[BlockedThread],
    ) -> Option<(u64, u64)> {
        let at = maps
            .iter()
            .position(|m| m.readable_writable && m.start <= self.sp && self.sp < m.end)?;
        let m = &maps[at];
        let own_stack = m.path == "[stack]"
            || (at > 0
                && maps[at - 1].inaccessible
                && maps[at - 1].end == m.start
                && thread_pointers.iter().any(|&tp| self.sp < tp && tp < m.end)
                && !thread_pointers
                    .iter()
                    .chain(blocked.iter().filter(|b| b.tid != self.tid).map(|b| &b.sp))
                    .any(|&p| m.start <= p && p <= self.sp));
        let end = self.sp.saturating_sub(RED_ZONE);
        (own_stack && m.start < end).then_some((m.start, end))
    }
}

/// The stack pointer in a `/proc/PID/task/TID/syscall` line of a blocked thread (`NR ARGS… SP
/// PC`, or `-1 SP PC` outside a system call), in hex; `None` for `running`.
fn parse_blocked_stack_pointer(line: &str) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 3 || fields[0] == "running" {
        return None;
    }
    let sp = fields[fields.len() - 2];
    u64::from_str_radix(sp.strip_prefix("0x").unwrap_or(sp), 16).ok()
}

/// Voluntary plus involuntary context switches in a `/proc/PID/task/TID/status` text.
fn parse_context_switches(status: &str) -> Option<u64> {
    let mut total = None;
    for line in status.lines() {
        if let Some(rest) = line
            .strip_prefix("voluntary_ctxt_switches:")
            .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
        {
            let count: u64 = rest.trim().parse().ok()?;
            total = Some(total.unwrap_or(0) + count);
        }
    }
    total
}

/// Stack of the calling (scanning) thread.
fn own_stack() -> (u64, u64) {
    let marker = 0u8;
    let here = &marker as *const u8 as u64;
    mappings()
        .into_iter()
        .find(|m| m.start <= here && here < m.end)
        .map_or((here, here), |m| (m.start, m.end))
}

/// The thread that asked for a scan (at exit): its stack is read from `sp` up, and the
/// callee-saved register values it had are roots too.
#[derive(Clone, Copy, Debug)]
pub struct Requester {
    pub sp: u64,
    pub registers: [u64; 6],
}

/// Classifies every live heap block (mmap regions are roots, not blocks), sorted by address.
/// A block in `usable_sizes` is read up to that size (the program asked for it and may store
/// past its request). `root_words` are extra roots, read as pointers (blocks the caller knows
/// to be held).
pub fn classify<S: std::hash::BuildHasher>(
    live: &HashMap<u64, LiveBlock, S>,
    usable_sizes: &HashMap<u64, u64, S>,
    requester: Option<Requester>,
    root_words: &[u64],
) -> Option<Vec<(u64, LeakClass)>> {
    // One thread id for every read of this scan (a system call less per read).
    READER_TID.store(crate::sys::gettid() as i32, Ordering::Relaxed);
    if !choose_reader() {
        READER_TID.store(0, Ordering::Relaxed);
        return None;
    }
    let mut sorted: Vec<(u64, u64)> = live
        .iter()
        .filter(|(_, b)| b.kind != MMAP_KIND)
        .map(|(&a, b)| {
            let usable = usable_sizes.get(&a).copied().unwrap_or(0);
            (a, b.size.max(usable))
        })
        .collect();
    sorted.sort_unstable();
    let blocks = Blocks::new(&sorted);
    let maps = mappings_to_scan();
    let blocked = BlockedThread::all_but(crate::sys::gettid());
    let thread_pointers = crate::buffers::live_thread_pointers();
    let dead: Vec<(&BlockedThread, (u64, u64))> = blocked
        .iter()
        .filter_map(|b| Some((b, b.dead_stack(&maps, &thread_pointers, &blocked)?)))
        .collect();
    let roots = roots(
        &maps,
        &blocks,
        requester.map(|r| r.sp),
        own_stack(),
        &dead.iter().map(|(_, range)| *range).collect::<Vec<_>>(),
    );
    let mut marker = Marker {
        blocks: &blocks,
        marks: vec![Mark::Unreached; sorted.len()],
        stack: Vec::new(),
        buffer: Vec::new(),
        pages: PageCache::new(),
    };
    for word in requester
        .iter()
        .flat_map(|r| r.registers)
        .chain(root_words.iter().copied())
    {
        marker.reach(word, true);
    }
    marker.drain_without_clique();
    for root in &roots {
        marker.scan_root(root);
    }
    // A thread that ran during the scan may have stored pointers below where its stack pointer
    // was: its range is read after all.
    for (thread, (start, end)) in &dead {
        if !thread.stayed_blocked() {
            marker.scan_root(&Root {
                start: *start,
                end: *end,
                in_libc: false,
                sparse: false,
            });
        }
    }
    for leader in 0..sorted.len() {
        if marker.marks[leader] == Mark::Unreached {
            marker.clique(leader);
        }
    }
    READER_TID.store(0, Ordering::Relaxed);
    release_reader();
    let classes = sorted
        .iter()
        .zip(&marker.marks)
        .map(|(&(address, _), mark)| {
            let class = match mark {
                Mark::Unreached => LeakClass::DefinitelyLost,
                Mark::Indirect => LeakClass::IndirectlyLost,
                Mark::Possible => LeakClass::PossiblyLost,
                Mark::Reachable => LeakClass::StillReachable,
            };
            (address, class)
        })
        .collect();
    Some(classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `find` (bounds check, finger, binary search) answers as a plain search over every block
    /// does, whatever order pointers come in: blocks with gaps, adjacent blocks, zero-sized ones.
    /// One smaps entry: header, `Rss` and `Swap` in kB, `VmFlags`.
    fn smaps_entry(header: &str, rss_kb: u64, swap_kb: u64, flags: &str) -> String {
        format!(
            "{header}\nSize:               8 kB\nKernelPageSize:     4 kB\nRss:       \
             {rss_kb:>8} kB\nPss:                0 kB\nSwap:      {swap_kb:>8} kB\n\
             SwapPss:            0 kB\nVmFlags: {flags}\n"
        )
    }

    #[test]
    fn smaps_marks_what_needs_no_scan_or_only_its_touched_pages() {
        let entries = [
            // ThreadSanitizer's shadow: touched, but left out of core dumps.
            (
                "10000000000-1f000000000 rw-p 00000000 00:00 0 ",
                12,
                0,
                "rd wr mr mw me ac nr dd",
            ),
            // Anonymous, never touched; the same swapped out; the same with a name.
            (
                "7f0000000000-7f0000002000 rw-p 00000000 00:00 0 ",
                0,
                0,
                "rd wr mr mw me ac",
            ),
            (
                "7f0000002000-7f0000004000 rw-p 00000000 00:00 0 ",
                0,
                4,
                "rd wr mr mw me ac",
            ),
            (
                "7f0000004000-7f0000006000 rw-p 00000000 00:00 0    [anon:pool]",
                0,
                0,
                "rd wr",
            ),
            // Shared anonymous memory another process may have written, and a file's data.
            (
                "7f0000006000-7f0000008000 rw-s 00000000 00:01 7    /dev/zero (deleted)",
                0,
                0,
                "rd wr sh",
            ),
            (
                "7f0000008000-7f000000a000 rw-p 00002000 fe:00 12   /usr/lib/libfoo.so",
                0,
                0,
                "rd wr",
            ),
            (
                "7f000000a000-7f000000c000 rw-p 00000000 00:00 0    [heap]",
                8,
                0,
                "rd wr",
            ),
            // A 4 GiB reservation with three pages touched, and one with a third touched.
            (
                "7f1000000000-7f1100000000 rw-p 00000000 00:00 0 ",
                12,
                0,
                "rd wr mr mw me nr",
            ),
            (
                "7f2000000000-7f2006000000 rw-p 00000000 00:00 0 ",
                32768,
                0,
                "rd wr mr mw me",
            ),
        ];
        let text: String = entries
            .iter()
            .map(|(header, rss, swap, flags)| smaps_entry(header, *rss, *swap, flags))
            .collect();
        let parsed = parse_smaps(text.as_bytes());
        let skipped: Vec<bool> = parsed.iter().map(|m| m.skipped).collect();
        assert_eq!(
            skipped,
            [true, true, false, true, false, false, false, false, false]
        );
        let sparse: Vec<bool> = parsed.iter().map(|m| m.sparse).collect();
        assert_eq!(
            sparse,
            [false, false, false, false, false, false, false, true, false]
        );
        assert_eq!(parsed[0].start, 0x100_0000_0000);
        assert_eq!(parsed[0].end, 0x1f0_0000_0000);
        assert!(parsed.iter().all(|m| m.readable_writable));
        assert_eq!(parsed[4].path, "/dev/zero");
        assert_eq!(parsed[6].path, "[heap]");
    }

    #[test]
    fn finding_the_block_a_pointer_points_into_matches_a_plain_search() {
        let mut sorted = Vec::new();
        let mut at = 0x1000u64;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..500 {
            let size = [0, 8, 24, 48, 100, 4096][(next() % 6) as usize];
            sorted.push((at, size));
            at += size.max(1) + [0, 16, 1000][(next() % 3) as usize];
        }
        let blocks = Blocks::new(&sorted);
        let plain = |ptr: u64| {
            sorted
                .iter()
                .position(|&(start, size)| ptr == start || (start <= ptr && ptr < start + size))
        };
        let last = at + 100;
        // In order, backwards, and at random.
        let pointers: Vec<u64> = (0..last)
            .step_by(3)
            .chain((0..last).rev().step_by(5))
            .chain((0..20_000).map(|_| next() % last))
            .collect();
        for ptr in pointers {
            assert_eq!(blocks.find(ptr), plain(ptr), "{ptr:#x}");
        }
    }

    /// Words of `[start, end)` as the direct reader and the page cache see them.
    fn both_readers(cache: &mut PageCache, start: u64, end: u64) -> (Vec<u64>, Vec<u64>) {
        let (mut direct, mut cached) = (Vec::new(), Vec::new());
        let mut buffer = Vec::new();
        for_each_word(start, end, &mut buffer, |w| direct.push(w));
        cache.for_each_word(start, end, &mut buffer, |w| cached.push(w));
        (direct, cached)
    }

    /// Through the page cache a block reads exactly as it does directly: words across page
    /// boundaries, unaligned ends, an unreadable page skipped, and pages reused between blocks.
    #[test]
    fn the_page_cache_reads_blocks_as_direct_reads_do() {
        let len = 4 * PAGE as usize;
        // SAFETY: a fresh private anonymous mapping, unmapped at the end of the test; the third
        // page is made unreadable before anything reads it.
        let base = unsafe {
            let map = libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            let words = core::slice::from_raw_parts_mut(map as *mut u64, len / 8);
            for (i, word) in words.iter_mut().enumerate() {
                *word = 0x1000_0000 + i as u64;
            }
            assert_eq!(
                libc::mprotect(
                    (map as usize + 2 * PAGE as usize) as *mut libc::c_void,
                    PAGE as usize,
                    libc::PROT_NONE
                ),
                0
            );
            map as u64
        };
        let mut cache = PageCache::new();
        let cases = [
            (0, 48),
            (16, 64),
            (PAGE - 24, PAGE + 40),
            (PAGE - 8, PAGE + 7),
            (3, 61),
            (PAGE + 4000, 2 * PAGE + 100),
            (2 * PAGE - 16, 3 * PAGE + 32),
            (3 * PAGE + 8, 4 * PAGE),
            (0, 4 * PAGE),
        ];
        for (from, to) in cases {
            let (direct, cached) = both_readers(&mut cache, base + from, base + to);
            assert_eq!(cached, direct, "[{from}, {to})");
        }
        let (direct, cached) = both_readers(&mut cache, base + PAGE + 8, base + 3 * PAGE + 16);
        assert_eq!(cached, direct);
        assert_eq!(
            direct.len(),
            (PAGE as usize - 8) / 8 + 2,
            "the unreadable page is skipped"
        );
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(base as *mut libc::c_void, len) };
    }

    #[test]
    fn blocked_threads_are_read_from_their_proc_files() {
        assert_eq!(parse_blocked_stack_pointer("running\n"), None);
        assert_eq!(
            parse_blocked_stack_pointer(
                "0 0x3 0x7fe60fccd000 0x20000 0x7fe60fd60b60 0xffffffff 0x0 0x7fff0f882358 0x7fe60fe492ad\n"
            ),
            Some(0x7fff_0f88_2358)
        );
        // Blocked outside a system call.
        assert_eq!(
            parse_blocked_stack_pointer("-1 0x7ffc1000 0x401000\n"),
            Some(0x7ffc_1000)
        );
        assert_eq!(parse_blocked_stack_pointer(""), None);
        assert_eq!(parse_blocked_stack_pointer("0 0x1 nothex 0x2"), None);
        let status = "Name:\tw\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(parse_context_switches(status), Some(15));
        assert_eq!(parse_context_switches("Name:\tw\n"), None);

        // A thread blocked reading a pipe, seen from this one: its stack pointer lies in its
        // stack, it stays blocked until the pipe is written, and is gone once joined.
        let mut fds = [0i32; 2];
        // SAFETY: a plain pipe(2) into a local array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (tid_sender, tid_receiver) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let marker = 0u8;
            tid_sender
                .send((crate::sys::gettid(), &marker as *const u8 as u64))
                .unwrap();
            let mut byte = 0u8;
            // SAFETY: reads one byte into a local.
            unsafe { libc::read(fds[0], (&mut byte as *mut u8).cast(), 1) }
        });
        let (tid, frame) = tid_receiver.recv().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let blocked = loop {
            let found = BlockedThread::all_but(crate::sys::gettid());
            if let Some(b) = found.into_iter().find(|b| b.tid == tid && b.sp < frame) {
                break b;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the reader never blocked"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert!(frame - blocked.sp < 64 << 10, "{:x} {frame:x}", blocked.sp);
        assert!(blocked.stayed_blocked());
        // SAFETY: writes one byte from a local.
        assert_eq!(unsafe { libc::write(fds[1], [1u8].as_ptr().cast(), 1) }, 1);
        assert_eq!(reader.join().unwrap(), 1);
        assert!(!blocked.stayed_blocked());
        // SAFETY: closing the pipe made above.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }

    #[test]
    fn only_a_threads_own_stack_below_its_stack_pointer_is_dead() {
        let mapping = |start: u64, end: u64, perms: &str, path: &str| {
            Mapping::from_header(&format!(
                "{start:x}-{end:x} {perms} 00000000 00:00 0 {path}"
            ))
            .unwrap()
        };
        let thread = |tid: u32, sp: u64| BlockedThread {
            tid,
            state: String::new(),
            sp,
            switches: 0,
        };
        let maps = [
            mapping(0x1000, 0x2000, "---p", ""),
            // A glibc thread stack: guard below, descriptor (thread pointer 0x9f00) at the top.
            mapping(0x2000, 0xa000, "rw-p", ""),
            // Memory of the program's own holding a coroutine's stack: no guard, no descriptor.
            mapping(0xa000, 0x20000, "rw-p", ""),
            mapping(0x7000_0000, 0x7001_0000, "rw-p", "[stack]"),
        ];
        let tps = [0x9f00];
        let worker = thread(2, 0x8000);
        assert_eq!(
            worker.dead_stack(&maps, &tps, &[]),
            Some((0x2000, 0x8000 - RED_ZONE))
        );
        // The process stack needs no descriptor.
        let main = thread(1, 0x7000_8000);
        assert_eq!(
            main.dead_stack(&maps, &tps, &[]),
            Some((0x7000_0000, 0x7000_8000 - RED_ZONE))
        );
        assert_eq!(thread(3, 0x10000).dead_stack(&maps, &tps, &[]), None);
        // Another thread's descriptor or stack pointer below: two stacks in one mapping.
        assert_eq!(worker.dead_stack(&maps, &[0x3000, 0x9f00], &[]), None);
        assert_eq!(worker.dead_stack(&maps, &tps, &[thread(4, 0x4000)]), None);
        // No guard page right below.
        let unguarded = [mapping(0x2000, 0xa000, "rw-p", "")];
        assert_eq!(worker.dead_stack(&unguarded, &tps, &[]), None);
        // Within the red zone of the mapping's start: nothing below it.
        assert_eq!(thread(2, 0x2040).dead_stack(&maps, &tps, &[]), None);
    }
}
