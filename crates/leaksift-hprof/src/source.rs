//! Opening a dump file: memory-mapped when plain, decompressed to an unlinked temporary file and
//! mapped when gzip. Pages already read are released from the process (MADV_DONTNEED) as a pass
//! moves on, so the mapping does not count towards the resident set (but for the first
//! [`KEPT_FOR_SECOND_PASS`] bytes the first pass reads, which the second pass reads first).

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

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
        Ok(DumpFile { map, compressed })
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
        let dump = crate::read_unswept(self.bytes(), &mut releasing);
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
