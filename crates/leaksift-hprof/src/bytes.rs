//! A never-panicking big-endian cursor over the dump bytes, aware of the identifier size.

use crate::error::{ErrorKind, HprofError};

/// An HPROF identifier: an object's address, or a string's id. 0 is null.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub u64);

impl Id {
    /// The null reference.
    pub const NULL: Id = Id(0);
}

/// Size of object and string identifiers in this dump: 4 (32-bit VMs) or 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSize {
    Four,
    Eight,
}

impl IdSize {
    pub fn bytes(self) -> usize {
        match self {
            IdSize::Four => 4,
            IdSize::Eight => 8,
        }
    }

    /// Decodes the identifier at the start of `raw` (null if `raw` is too short).
    #[inline]
    pub fn decode(self, raw: &[u8]) -> Id {
        Id(match self {
            IdSize::Four => raw
                .first_chunk::<4>()
                .map_or(0, |b| u64::from(u32::from_be_bytes(*b))),
            IdSize::Eight => raw.first_chunk::<8>().map_or(0, |b| u64::from_be_bytes(*b)),
        })
    }
}

/// Cursor over a byte slice; `base` is the slice's offset in the whole dump (for error messages).
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    id_size: IdSize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8], pos: usize, id_size: IdSize) -> Self {
        Cursor { data, pos, id_size }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn id_size(&self) -> IdSize {
        self.id_size
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn error(&self, kind: ErrorKind) -> HprofError {
        HprofError::new(self.pos as u64, kind)
    }

    /// The next `n` bytes, advancing past them.
    #[inline]
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HprofError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.data.len() => {
                let out = &self.data[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            _ => Err(self.error(ErrorKind::Truncated {
                what,
                needed: n as u64,
                available: self.remaining() as u64,
            })),
        }
    }

    #[inline]
    pub fn u1(&mut self, what: &'static str) -> Result<u8, HprofError> {
        Ok(self.take(1, what)?[0])
    }

    #[inline]
    pub fn u2(&mut self, what: &'static str) -> Result<u16, HprofError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    #[inline]
    pub fn u4(&mut self, what: &'static str) -> Result<u32, HprofError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u64, HprofError> {
        let b = self.take(8, what)?;
        Ok(u64::from_be_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    #[inline]
    pub fn id(&mut self, what: &'static str) -> Result<Id, HprofError> {
        let size = self.id_size;
        Ok(size.decode(self.take(size.bytes(), what)?))
    }
}
