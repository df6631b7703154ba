//! GNU debuglinks: the `.gnu_debuglink` section of a stripped ELF file (the name of its separate
//! debug file and that file's CRC-32), read from the section headers without loading the file.
//!
//! The symbolizer searches gdb's places for the named file itself (blazesym's search leaves out
//! the binary's `.debug/` subdirectory and cannot say where it looked), and checks the CRC.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What a `.gnu_debuglink` section holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DebugLink {
    /// The debug file's name, without directories.
    pub name: String,
    /// The CRC-32 of the whole debug file.
    pub crc: u32,
}

/// The sizes of the ELF header and of one section header, and where their fields are, for
/// 32- and 64-bit little-endian files.
struct Layout {
    shoff: (usize, usize),
    shentsize: usize,
    shnum: usize,
    shstrndx: usize,
    header_len: usize,
    /// Offsets of `sh_name`, `sh_offset`, `sh_size` in a section header, and the width of the
    /// latter two.
    sh_name: usize,
    sh_offset: usize,
    sh_size: usize,
    word: usize,
}

const ELF32: Layout = Layout {
    shoff: (32, 4),
    shentsize: 46,
    shnum: 48,
    shstrndx: 50,
    header_len: 52,
    sh_name: 0,
    sh_offset: 16,
    sh_size: 20,
    word: 4,
};

const ELF64: Layout = Layout {
    shoff: (40, 8),
    shentsize: 58,
    shnum: 60,
    shstrndx: 62,
    header_len: 64,
    sh_name: 0,
    sh_offset: 24,
    sh_size: 32,
    word: 8,
};

/// Sections larger than this are not a debuglink (a name and four bytes of CRC).
const MAX_SECTION: u64 = 4096;

/// The debuglink of the ELF file at `path`, or `None` when it has none or is no readable
/// little-endian ELF file (never an error: the file's own symbols are used then).
pub(crate) fn read(path: &Path) -> Option<DebugLink> {
    let file = File::open(path).ok()?;
    let mut ident = [0u8; 64];
    file.read_exact_at(&mut ident[..16], 0).ok()?;
    // ELF magic, little-endian (EI_DATA = 1).
    if &ident[..4] != b"\x7fELF" || ident[5] != 1 {
        return None;
    }
    let layout = match ident[4] {
        1 => &ELF32,
        2 => &ELF64,
        _ => return None,
    };
    let header = &mut ident[..layout.header_len];
    file.read_exact_at(header, 0).ok()?;
    let shoff = uint(header, layout.shoff.0, layout.shoff.1)?;
    let shentsize = uint(header, layout.shentsize, 2)?;
    let shnum = uint(header, layout.shnum, 2)?;
    let shstrndx = uint(header, layout.shstrndx, 2)?;
    // An extended section count (shnum 0) or a header too small to hold the fields read.
    if shnum == 0 || shstrndx >= shnum || shentsize < (layout.sh_size + layout.word) as u64 {
        return None;
    }
    let section_header = |index: u64| -> Option<(u64, u64, u64)> {
        let mut buffer = vec![0u8; usize::try_from(shentsize).ok()?];
        file.read_exact_at(
            &mut buffer,
            shoff.checked_add(index.checked_mul(shentsize)?)?,
        )
        .ok()?;
        Some((
            uint(&buffer, layout.sh_name, 4)?,
            uint(&buffer, layout.sh_offset, layout.word)?,
            uint(&buffer, layout.sh_size, layout.word)?,
        ))
    };
    let read_at = |offset: u64, size: u64| -> Option<Vec<u8>> {
        let mut buffer = vec![0u8; usize::try_from(size).ok()?];
        file.read_exact_at(&mut buffer, offset).ok()?;
        Some(buffer)
    };
    let (_, names_offset, names_size) = section_header(shstrndx)?;
    // Section names are short; a huge string table is read only as far as names go.
    let names = read_at(names_offset, names_size.min(1 << 20))?;
    let section = (0..shnum).find_map(|index| {
        let (name, offset, size) = section_header(index)?;
        let name = names.get(usize::try_from(name).ok()?..)?;
        name.starts_with(b".gnu_debuglink\0")
            .then_some((offset, size))
    })?;
    if section.1 > MAX_SECTION {
        return None;
    }
    parse(&read_at(section.0, section.1)?)
}

/// Parses a `.gnu_debuglink` section: a NUL-terminated file name, padding to four bytes, the
/// CRC-32 (little-endian here).
fn parse(section: &[u8]) -> Option<DebugLink> {
    let end = section.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&section[..end]).ok()?;
    // A name with directories would let a debuglink point anywhere: gdb takes the base name.
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let crc_at = (end + 1).next_multiple_of(4);
    let crc = uint(section, crc_at, 4)?;
    Some(DebugLink {
        name: name.to_string(),
        crc: u32::try_from(crc).ok()?,
    })
}

/// The little-endian unsigned integer of `width` bytes at `at`, if `bytes` holds it.
fn uint(bytes: &[u8], at: usize, width: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(width)?)?;
    Some(
        field
            .iter()
            .rev()
            .fold(0u64, |value, &byte| value << 8 | u64::from(byte)),
    )
}

/// The CRC-32 of the file at `path` (the checksum a debuglink records), read in 1 MiB pieces.
pub(crate) fn crc32(path: &Path) -> std::io::Result<u32> {
    let mut file = File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buffer)? {
            0 => return Ok(hasher.finalize()),
            read => hasher.update(&buffer[..read]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DebugLink, parse, uint};

    #[test]
    fn sections_parse_with_their_padding_and_bad_ones_are_none() {
        assert_eq!(
            parse(b"prog.debug\0\0\x78\x56\x34\x12"),
            Some(DebugLink {
                name: "prog.debug".to_string(),
                crc: 0x1234_5678
            })
        );
        assert_eq!(
            parse(b"abc\0\x01\0\0\0").map(|l| l.crc),
            Some(1),
            "no padding after a name of 3"
        );
        for bad in [
            &b""[..],
            b"no terminator",
            b"\0\0\0\0\x01\0\0\0",
            b"dir/x.debug\0\x01\0\0\0",
            b"short.debug\0\x01\0",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integers_out_of_bounds_are_none() {
        assert_eq!(uint(&[1, 2, 3, 4], 0, 4), Some(0x0403_0201));
        assert_eq!(uint(&[1, 2, 3], 0, 4), None);
        assert_eq!(uint(&[1, 2, 3], usize::MAX, 4), None);
    }
}
