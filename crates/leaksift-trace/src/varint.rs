//! LEB128 varints, zigzag signed deltas and a bounds-checked cursor over a decoded chunk.

/// Appends `value` as an unsigned LEB128 varint.
#[inline]
pub(crate) fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends the signed difference `to - from` (wrapping) as a zigzag varint.
#[inline]
pub(crate) fn put_delta(out: &mut Vec<u8>, from: u64, to: u64) {
    let delta = to.wrapping_sub(from) as i64;
    put(out, ((delta << 1) ^ (delta >> 63)) as u64);
}

/// Reads records out of one decompressed chunk payload; every read is bounds-checked.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pub(crate) pos: usize,
}

/// What went wrong inside a payload (the reader adds the file offset).
pub(crate) type DecodeError = &'static str;

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    #[inline(always)]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let byte = *self
            .bytes
            .get(self.pos)
            .ok_or("record runs past the end of its chunk")?;
        self.pos += 1;
        Ok(byte)
    }

    #[inline(always)]
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        // Fast path: most fields are one byte.
        if let Some(&byte) = self.bytes.get(self.pos)
            && byte < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(byte));
        }
        self.varint_slow()
    }

    #[inline]
    fn varint_slow(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if shift == 63 && byte > 1 {
                    return Err("varint overflows 64 bits");
                }
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes")
    }

    /// Reads a zigzag delta and applies it to `base`.
    #[inline(always)]
    pub(crate) fn delta(&mut self, base: u64) -> Result<u64, DecodeError> {
        let zigzag = self.varint()?;
        let delta = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        Ok(base.wrapping_add(delta as u64))
    }

    /// A varint that must fit in `u32`.
    #[inline(always)]
    pub(crate) fn varint_u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.varint()?).map_err(|_| "value does not fit in 32 bits")
    }

    /// A length that cannot exceed what is left in the payload (each counted item takes ≥ 1 byte).
    pub(crate) fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        let left = (self.bytes.len() - self.pos.min(self.bytes.len())) as u64;
        if n > left {
            return Err("count larger than the rest of the chunk");
        }
        Ok(n as usize)
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(len).ok_or("length overflows")?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or("byte string runs past the end of its chunk")?;
        self.pos = end;
        Ok(slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_deltas_round_trip_at_the_extremes() {
        let values = [
            0u64,
            1,
            127,
            128,
            300,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ];
        let mut out = Vec::new();
        for &v in &values {
            put(&mut out, v);
        }
        for w in values.windows(2) {
            put_delta(&mut out, w[0], w[1]);
            put_delta(&mut out, w[1], w[0]);
        }
        let mut cursor = Cursor::new(&out);
        for &v in &values {
            assert_eq!(cursor.varint(), Ok(v));
        }
        for w in values.windows(2) {
            assert_eq!(cursor.delta(w[0]), Ok(w[1]));
            assert_eq!(cursor.delta(w[1]), Ok(w[0]));
        }
        assert!(cursor.is_empty());
        assert!(cursor.u8().is_err());
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let bytes = [0xffu8; 11];
        assert!(Cursor::new(&bytes).varint().is_err());
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Cursor::new(&too_big).varint().is_err());
    }
}
