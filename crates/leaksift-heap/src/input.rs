//! Opening a heap file: memory-mapping it (or inflating gzip into memory) and detecting its format.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::graph::{HeapFormat, StringBacking};

/// The bytes of a heap file: a read-only memory map (of the file, or of its inflated content),
/// or bytes in memory.
#[derive(Debug)]
pub enum HeapBytes {
    /// The file itself, memory-mapped.
    Mapped(memmap2::Mmap),
    /// Bytes held in memory (test input, fuzzing).
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for HeapBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            HeapBytes::Mapped(map) => map,
            HeapBytes::Owned(bytes) => bytes,
        }
    }
}

impl HeapBytes {
    /// Tells the kernel the pages of `range` will not be read again soon, so they leave this
    /// process's resident set (they stay in the page cache and are re-read on demand).
    /// A no-op for in-memory bytes.
    pub fn release(&self, range: std::ops::Range<usize>) {
        if let HeapBytes::Mapped(map) = self {
            let page = 4096;
            let start = range.start.div_ceil(page) * page;
            let end = range.end.min(map.len()) / page * page;
            if end > start {
                // SAFETY: the mapping is private and read-only and backed by a file, so dropping
                // its pages cannot lose data: later reads fault them back in from the file.
                // No reference into these pages is relied on to stay resident.
                let _ = unsafe {
                    map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start,
                        end - start,
                    )
                };
            }
        }
    }

    /// The bytes as a shared string backing for a [`crate::graph::StringTable`].
    pub fn backing(self: &Arc<Self>) -> StringBacking {
        self.clone()
    }
}

/// Why a heap file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    #[error("gzip data is corrupt or truncated after {inflated} inflated bytes: {cause}")]
    Gzip {
        inflated: u64,
        cause: std::io::Error,
    },
    #[error(
        "not a heap snapshot or heap dump (expected a V8 .heapsnapshot starting with {{\"snapshot\" or an HPROF file starting with \"JAVA PROFILE 1.0.\"); the file starts with {start:?}"
    )]
    UnknownFormat { start: String },
}

impl From<std::io::Error> for InputError {
    fn from(error: std::io::Error) -> Self {
        InputError::Io(error)
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const HPROF_MAGIC: &[u8] = b"JAVA PROFILE 1.0.";

/// Detects the format of heap file content from its first bytes (after gzip inflation).
pub fn detect_format(bytes: &[u8]) -> Option<HeapFormat> {
    if bytes.starts_with(HPROF_MAGIC) {
        return Some(HeapFormat::Hprof);
    }
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &bytes[start..];
    let after_brace = rest.strip_prefix(b"{")?;
    let key_start = after_brace.iter().position(|b| !b.is_ascii_whitespace())?;
    after_brace[key_start..]
        .starts_with(b"\"snapshot\"")
        .then_some(HeapFormat::V8)
}

/// How many bytes [`sniff`] reads from the start of a file, and [`sniff_head`] looks at.
pub const SNIFF_BYTES: usize = 64 << 10;

/// Detects the format of the file at `path` from its first bytes, looking inside gzip, without
/// reading the whole file.
pub fn sniff(path: &Path) -> Result<HeapFormat, InputError> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    File::open(path)?
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    sniff_head(&head)
}

/// Detects the format from the first bytes of a file or stream (up to [`SNIFF_BYTES`]), looking
/// inside gzip: the first 4 KiB these bytes inflate to decide (a gzip stream cut where the head
/// ends is not an error here).
pub fn sniff_head(head: &[u8]) -> Result<HeapFormat, InputError> {
    let inflated;
    let content = if head.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::with_capacity(4096);
        let mut decoder = flate2::read::MultiGzDecoder::new(head).take(4096);
        if let Err(cause) = decoder.read_to_end(&mut out)
            && (cause.kind() != std::io::ErrorKind::UnexpectedEof || out.is_empty())
        {
            return Err(InputError::Gzip {
                inflated: out.len() as u64,
                cause,
            });
        }
        inflated = out;
        &inflated[..]
    } else {
        head
    };
    detect_format(content).ok_or_else(|| InputError::UnknownFormat {
        start: String::from_utf8_lossy(&content[..content.len().min(24)]).into_owned(),
    })
}

/// An opened heap file: its bytes and its detected format.
#[derive(Debug)]
pub struct HeapInput {
    pub bytes: Arc<HeapBytes>,
    pub format: HeapFormat,
    /// Whether the file was gzip-compressed.
    pub gzipped: bool,
}

/// Opens `path`: memory-maps it, inflates it if it is gzip, and detects the format from content.
pub fn open(path: &Path) -> Result<HeapInput, InputError> {
    let file = File::open(path)?;
    // SAFETY: the map is read-only and private. If another process truncates the file while we
    // read it, accesses past the new end fault (SIGBUS); that is the accepted hazard of every
    // mmap-based reader, and heap dumps are not modified after they are written.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let (bytes, gzipped) = if map.starts_with(&GZIP_MAGIC) {
        (HeapBytes::Mapped(inflate_to_unlinked_file(&map)?), true)
    } else {
        (HeapBytes::Mapped(map), false)
    };
    let Some(format) = detect_format(bytes.as_ref()) else {
        let start: String =
            String::from_utf8_lossy(&bytes.as_ref()[..bytes.as_ref().len().min(24)])
                .chars()
                .collect();
        return Err(InputError::UnknownFormat { start });
    };
    Ok(HeapInput {
        bytes: Arc::new(bytes),
        format,
        gzipped,
    })
}

/// Inflates a gzip stream into an unlinked temporary file and maps it, so the inflated bytes
/// can leave the resident set like a plain file's ([`HeapBytes::release`]).
fn inflate_to_unlinked_file(compressed: &[u8]) -> Result<memmap2::Mmap, InputError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = std::env::temp_dir().join(format!(
        "leaksift-{}-{nanos}.inflated-heap",
        std::process::id()
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    // Unlinked at once: the space is freed when the file is closed and the map dropped.
    std::fs::remove_file(&path)?;
    let mut writer = &file;
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut buffer = vec![0u8; 1 << 20];
    let mut inflated = 0u64;
    loop {
        let n = match decoder.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(cause) => return Err(InputError::Gzip { inflated, cause }),
        };
        std::io::Write::write_all(&mut writer, &buffer[..n])?;
        inflated += n as u64;
    }
    if inflated == 0 {
        return Err(InputError::UnknownFormat {
            start: String::new(),
        });
    }
    // SAFETY: the file is private to this process (created exclusively, then unlinked), so
    // nothing else can change it while it is mapped read-only.
    Ok(unsafe { memmap2::Mmap::map(&file)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_from_content() {
        assert_eq!(
            detect_format(b"JAVA PROFILE 1.0.2\0"),
            Some(HeapFormat::Hprof)
        );
        assert_eq!(detect_format(b"{\"snapshot\":{}}"), Some(HeapFormat::V8));
        assert_eq!(detect_format(b" \n{ \"snapshot\":"), Some(HeapFormat::V8));
        assert_eq!(detect_format(b"{\"nodes\":[]}"), None);
        assert_eq!(detect_format(b""), None);
    }

    #[test]
    fn inflates_gzip_into_a_mapped_file() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"{\"snapshot\":1}").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(
            &inflate_to_unlinked_file(&gz).unwrap()[..],
            b"{\"snapshot\":1}"
        );
        assert!(matches!(
            inflate_to_unlinked_file(&gz[..gz.len() / 2]),
            Err(InputError::Gzip { .. })
        ));
    }
}
