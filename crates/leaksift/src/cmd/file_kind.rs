//! Tells what a file given to the wrong command is (a leaksift trace, a V8 snapshot, an HPROF
//! dump) from its first bytes, so the error can name the command that reads it.

use std::io::Read;
use std::path::Path;

use leaksift_heap::HeapFormat;

/// A kind of file one of leaksift's commands reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A trace written by `leaksift record`.
    Trace,
    /// A V8 `.heapsnapshot` or a Java HPROF dump (gzipped or not).
    Heap(HeapFormat),
}

impl FileKind {
    /// What the file at `path` is, or `None` when it is none of these (or cannot be read).
    /// Only regular files are looked into: reading the start of a pipe (`trend <(curl …)`) would
    /// take those bytes from the command that reads it next.
    pub fn of(path: &Path) -> Option<FileKind> {
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let mut magic = [0u8; 8];
        let read = std::fs::File::open(path)
            .and_then(|mut file| file.read_exact(&mut magic))
            .is_ok();
        if read && magic == leaksift_trace::format::MAGIC {
            return Some(FileKind::Trace);
        }
        leaksift_heap::input::sniff(path).ok().map(FileKind::Heap)
    }

    /// The file's kind and the command that reads it, e.g. "a Java HPROF dump: read it with
    /// `leaksift heap`".
    fn advice(self) -> &'static str {
        match self {
            FileKind::Trace => {
                "a trace of `leaksift record`: read it with `leaksift report` (`leaksift diff` \
                 compares two)"
            }
            FileKind::Heap(HeapFormat::V8) => {
                "a V8 heap snapshot: read it with `leaksift heap`, `paths` or `diff`"
            }
            FileKind::Heap(HeapFormat::Hprof) => {
                "a Java HPROF dump: read it with `leaksift heap`, `paths` or `diff`"
            }
        }
    }
}

/// "PATH is a V8 heap snapshot: read it with `leaksift heap` …" when the file at `path` is of a
/// kind `reader` does not read; `None` otherwise (the command's own error stands).
pub fn wrong_command(path: &Path, reader: impl Fn(FileKind) -> bool) -> Option<String> {
    FileKind::of(path)
        .filter(|kind| !reader(*kind))
        .map(|kind| format!("{} is {}", path.display(), kind.advice()))
}

/// Reads a whole input file (a series, a suppressions file). A device is refused: `/dev/zero`
/// would be read for ever, growing memory without bound. Pipes are read to their end.
pub fn read_whole(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path)?.file_type();
    if kind.is_char_device() || kind.is_block_device() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a device, not a file to read",
        ));
    }
    std::fs::read(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(path)
    }

    #[test]
    fn heap_files_are_told_apart_inside_gzip() {
        assert_eq!(
            FileKind::of(&fixture("hprof/shape.hprof.gz")),
            Some(FileKind::Heap(HeapFormat::Hprof))
        );
        assert_eq!(
            FileKind::of(&fixture("v8/handmade.heapsnapshot")),
            Some(FileKind::Heap(HeapFormat::V8))
        );
    }

    #[test]
    fn traces_are_told_by_their_magic_and_other_files_are_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("t.lks");
        let mut bytes = leaksift_trace::format::MAGIC.to_vec();
        bytes.extend_from_slice(&[3, 0, 0, 0]);
        std::fs::write(&trace, bytes).unwrap();
        assert_eq!(FileKind::of(&trace), Some(FileKind::Trace));
        let csv = dir.path().join("m.csv");
        std::fs::write(&csv, "t,bytes\n0,1\n").unwrap();
        assert_eq!(FileKind::of(&csv), None);
        assert_eq!(FileKind::of(&dir.path().join("missing")), None);
        // A command that reads the kind gets no advice.
        assert_eq!(wrong_command(&trace, |k| k == FileKind::Trace), None);
        let advice = wrong_command(&trace, |k| matches!(k, FileKind::Heap(_))).unwrap();
        assert!(
            advice.ends_with("read it with `leaksift report` (`leaksift diff` compares two)"),
            "{advice}"
        );
    }
}
