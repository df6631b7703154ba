//! Opening a dump file: memory-mapped when plain, decompressed to an unlinked temporary file and
//! mapped when gzip. Pages already read are released from the process (MADV_DONTNEED) as a pass
//! moves on, so the mapping does not count towards the resident set (but for the first
//! [`KEPT_FOR_SECOND_PASS`] bytes the first pass reads, which the second pass reads first).
//!
//! A dump that is mostly not in the page cache (copied from another machine) is read ahead on a
//! thread of its own while the first pass runs: see [`ReadAhead`].

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::{Advice, Mmap, UncheckedAdvice};

use crate::error::{ErrorKind, HprofError};
use crate::{Observer, UnsweptDump};

/// True when `data` starts with the gzip magic number.
fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

/// A dump file ready to read.
#[derive(Debug)]
pub struct DumpFile {
    map: Option<Mmap>,
    compressed: bool,
    /// The plain file mapped, for [`ReadAhead`] (none for gzip input, whose decompressed copy
    /// was just written and is in the page cache).
    plain: Option<File>,
}

fn io_error(offset: u64, error: &std::io::Error) -> HprofError {
    HprofError::new(offset, ErrorKind::Io(error.to_string()))
}

impl DumpFile {
    /// Opens `path`, decompressing gzip input first.
    pub fn open(path: &Path) -> Result<DumpFile, HprofError> {
        let mut file = File::open(path).map_err(|e| io_error(0, &e))?;
        let mut magic = [0u8; 2];
        let got = file.read(&mut magic).map_err(|e| io_error(0, &e))?;
        let compressed = is_gzip(&magic[..got]);
        let backing = if compressed {
            let file = File::open(path).map_err(|e| io_error(0, &e))?;
            decompress(file)?
        } else {
            file
        };
        let len = backing.metadata().map_err(|e| io_error(0, &e))?.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the file is mapped read-only and we never write through the mapping. A plain
            // dump being modified by another process while we read it is the one hazard of every
            // memory-mapped reader; the reader never panics on changed bytes, it reports errors.
            let map = unsafe { Mmap::map(&backing) }.map_err(|e| io_error(0, &e))?;
            // Both passes read front to back: let the kernel read ahead.
            let _ = map.advise(Advice::Sequential);
            Some(map)
        };
        Ok(DumpFile {
            map,
            compressed,
            plain: (!compressed).then_some(backing),
        })
    }

    /// The (decompressed) dump bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Whether the file was gzip-compressed.
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// Reads the dump into a heap graph ([`crate::read_unswept`]: the garbage is not discarded
    /// yet), releasing mapped pages behind each pass.
    pub fn read_unswept(&self, observer: &mut dyn Observer) -> Result<UnsweptDump, HprofError> {
        let mut releasing = Releasing {
            map: self.map.as_ref(),
            inner: observer,
            keep: 0,
            walked: 0,
        };
        let stop = AtomicBool::new(false);
        let dump = std::thread::scope(|scope| {
            if let (Some(file), Some(map)) = (&self.plain, &self.map)
                && ReadAhead::worth_it(map)
            {
                let stop = &stop;
                // Only a speed-up: without a thread (a process limit reached), the read goes on.
                let _ = std::thread::Builder::new()
                    .name("hprof read-ahead".into())
                    .spawn_scoped(scope, move || ReadAhead::run(file, map.len(), stop));
            }
            let dump = crate::read_unswept(self.bytes(), &mut releasing);
            stop.store(true, Ordering::Relaxed);
            dump
        });
        releasing.release(0..self.bytes().len());
        dump
    }
}

impl DumpFile {
    /// [`crate::duplicate_strings`] over this file's bytes, releasing mapped pages behind the
    /// pass as [`DumpFile::read`] does.
    pub fn duplicate_strings(
        &self,
        graph: &leaksift_heap::HeapGraph,
        counted: impl Fn(leaksift_heap::NodeIndex) -> bool,
        top: usize,
    ) -> Result<Vec<crate::DuplicateString>, HprofError> {
        let mut quiet = crate::Quiet;
        let mut releasing = Releasing {
            map: self.map.as_ref(),
            inner: &mut quiet,
            keep: 0,
            walked: 0,
        };
        let rows = crate::strings::duplicate_strings_releasing(
            self.bytes(),
            graph,
            counted,
            top,
            &mut |range| releasing.release(range),
        );
        releasing.release(0..self.bytes().len());
        rows
    }
}

/// Reading a cold dump ahead of the first pass.
///
/// The first pass starts with a walk over the top-level records, which reads one page per
/// heap-dump segment (HotSpot writes segments of about 1 MiB), each depending on the one before:
/// on a dump not in the page cache, every such read waited for the disk, and the walk alone took
/// 0.77–0.88 s of the 753 MiB benchmark dump's first pass, which reads the whole file in
/// 0.4–0.6 s (`dd bs=1M`). A thread reading the file front to back in 1 MiB blocks meanwhile
/// keeps the disk streaming, and the walk and the workers after it find the pages in the cache.
/// On a warm cache this would only copy the file once more for nothing, so it runs only when
/// most of the file is not resident (`mincore`), and only when the file fits in half the memory
/// available: a larger one would push its own first pages out before the workers read them.
struct ReadAhead;

impl ReadAhead {
    const BLOCK: usize = 1 << 20;

    /// Pages sampled to tell whether a file is in the page cache (checking every page of the
    /// 753 MiB benchmark dump took 11 ms).
    const SAMPLES: usize = 64;

    /// Whether `map`'s file is worth reading ahead.
    fn worth_it(map: &Mmap) -> bool {
        let pages = map.len().div_ceil(PAGE);
        let resident = (0..Self::SAMPLES)
            .filter(|i| {
                let page = pages * i / Self::SAMPLES;
                let mut state = 0u8;
                // SAFETY: `map` is a live mapping of whole pages from a page boundary and `page`
                // is one of them; mincore writes one byte for the one page asked about.
                let status = unsafe {
                    libc::mincore(
                        map.as_ptr().add(page * PAGE) as *mut libc::c_void,
                        1,
                        &mut state,
                    )
                };
                status == 0 && state & 1 != 0
            })
            .count();
        resident * 2 < Self::SAMPLES && (map.len() as u64) < available_memory().unwrap_or(0) / 2
    }

    /// Reads `file` up to `len` in blocks until done or `stop` is set; errors end it quietly
    /// (the pass reads the same bytes and reports them).
    fn run(file: &File, len: usize, stop: &AtomicBool) {
        let mut block = vec![0u8; Self::BLOCK];
        let mut at = 0usize;
        while at < len && !stop.load(Ordering::Relaxed) {
            match file.read_at(&mut block, at as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => at += n,
            }
        }
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Decompresses a gzip stream (all members) into an unlinked temporary file.
fn decompress(file: File) -> Result<File, HprofError> {
    let mut decoder = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file));
    let mut out = tempfile::tempfile().map_err(|e| io_error(0, &e))?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        let n = match decoder.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(HprofError::new(
                    written,
                    ErrorKind::Io(format!(
                        "gzip stream cut or corrupt (the offset counts decompressed bytes): {e}"
                    )),
                ));
            }
        };
        out.write_all(&buffer[..n])
            .map_err(|e| io_error(written, &e))?;
        written += n as u64;
    }
    Ok(out)
}

/// Forwards progress and drops the mapped pages a pass has finished with.
struct Releasing<'m, 'o> {
    map: Option<&'m Mmap>,
    inner: &'o mut dyn Observer,
    /// Bytes the first pass may still leave mapped for the second one.
    keep: usize,
    /// How far the current top-level record walk has been released.
    walked: usize,
}

/// What the first pass leaves mapped: the first bytes of each worker's part, which the second
/// pass reads first (without faulting them in again) and then releases. The graph pass's
/// columns are still small then, so this does not raise the reader's peak.
const KEPT_FOR_SECOND_PASS: usize = 256 << 20;

const PAGE: usize = 4096;

impl Releasing<'_, '_> {
    /// Drops the whole pages inside `range` from the resident set.
    fn release(&mut self, range: std::ops::Range<usize>) {
        let Some(map) = self.map else {
            return;
        };
        let start = range.start.div_ceil(PAGE) * PAGE;
        let end = range.end.min(map.len()) / PAGE * PAGE;
        if end > start {
            // SAFETY: the mapping is private, read-only and never written, so MADV_DONTNEED
            // only drops our page-table entries: the next access faults the same bytes back in
            // from the file, and every slice into the mapping stays valid and unchanged.
            let _ = unsafe {
                map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
}

impl Observer for Releasing<'_, '_> {
    fn phase(&mut self, name: &'static str) {
        self.keep = if name == "scan" {
            KEPT_FOR_SECOND_PASS
        } else {
            0
        };
        self.inner.phase(name);
    }

    /// Each touch of the walk maps the pages around a record's header. When the file sits in
    /// the page cache as large folios (a file copied or read in big blocks; kernel 6.x), a
    /// touch maps a whole folio, up to 2 MiB, so the walk alone would map most of the dump:
    /// the pages behind it are released as it goes (measured on the 753 MiB bench dump in that
    /// state: a peak RSS of 791–811 MiB before, 530 MiB after; docs/ARCHITECTURE.md).
    fn records_walked(&mut self, end: usize) {
        self.release(self.walked..end);
        self.walked = end;
        self.inner.records_walked(end);
    }

    fn consumed(&mut self, done: std::ops::Range<usize>, read: usize, total: usize) {
        if done.len() <= self.keep {
            self.keep -= done.len();
        } else {
            self.keep = 0;
            self.release(done.clone());
        }
        self.inner.consumed(done, read, total);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    use super::*;

    /// A file dropped from the page cache is read ahead, and not once it is back in the cache.
    #[test]
    fn only_a_file_mostly_out_of_the_page_cache_is_read_ahead() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; 4 << 20]).unwrap();
        file.sync_all().unwrap();
        // SAFETY: fadvise on an open descriptor; it only drops clean cached pages.
        let dropped =
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(dropped, 0);
        // SAFETY: a private read-only mapping of a file nobody else changes.
        let map = unsafe { Mmap::map(&file) }.unwrap();
        assert!(ReadAhead::worth_it(&map), "a file out of the cache");
        let stop = AtomicBool::new(false);
        ReadAhead::run(&file, map.len(), &stop);
        assert!(!ReadAhead::worth_it(&map), "the same file read");
    }
}
