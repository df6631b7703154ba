//! Columns kept zstd-compressed in blocks, for data a phase reads only here and there.
//!
//! A heap graph's columns are read in bulk by some phases and not at all, or only for the rows
//! a report prints, by others: the dominator search never reads classes or self sizes, and
//! after HPROF's reader only printed paths and the `java.lang.String` pass read edge names.
//! Packed in blocks of [`BLOCK_LEN`] values, such a column took 70–110 bytes per block on the
//! dumps measured (classes come in runs of objects allocated together, field names repeat per
//! class). A packed column can
//! be read in order ([`Packed::iter`], block by block), unpacked whole in parallel
//! ([`Packed::unpack`]), or read at random ([`Packed::get`]): that decodes the value's block
//! into a one-block cache, so a reader that walks indices in order decodes each block once.

use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;
use zstd::bulk::{Compressor, Decompressor};

/// Values per block: 16 Ki values (32 or 64 KiB unpacked), small enough that decoding one for
/// a random read costs microseconds, big enough for zstd to find the repeats.
pub const BLOCK_LEN: usize = 1 << 14;

/// zstd's fastest regular level: these columns are packed and unpacked within one run.
const LEVEL: i32 = 1;

/// A value type a column can be packed in.
pub trait Packable: Copy + Default + Send + Sync {
    /// Bytes per value.
    const BYTES: usize;
    /// Appends the value's little-endian bytes.
    fn put(self, bytes: &mut Vec<u8>);
    /// The value whose little-endian bytes `bytes` starts with.
    fn take(bytes: &[u8]) -> Self;
}

impl Packable for u16 {
    const BYTES: usize = 2;
    fn put(self, bytes: &mut Vec<u8>) {
        bytes.extend_from_slice(&self.to_le_bytes());
    }
    fn take(bytes: &[u8]) -> Self {
        u16::from_le_bytes([bytes[0], bytes[1]])
    }
}

impl Packable for u32 {
    const BYTES: usize = 4;
    fn put(self, bytes: &mut Vec<u8>) {
        bytes.extend_from_slice(&self.to_le_bytes());
    }
    fn take(bytes: &[u8]) -> Self {
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
}

/// A column of `T` values packed in zstd blocks.
pub struct Packed<T: Packable> {
    len: usize,
    blocks: Vec<Box<[u8]>>,
    /// The block last decoded for [`Packed::get`] (by block index), and the decoder it used.
    cache: Mutex<Option<(usize, Vec<T>, Decompressor<'static>)>>,
}

impl<T: Packable> Packed<T> {
    /// Packs `values` (blocks in parallel).
    pub fn pack(values: &[T]) -> Packed<T> {
        // One compression context per rayon job, not per block (a context takes ~1 MiB).
        let blocks = values
            .par_chunks(BLOCK_LEN)
            .map_init(
                // Creating a context or compressing in memory fails only if zstd cannot allocate.
                || Compressor::new(LEVEL).expect("zstd allocates a compression context"),
                |compressor, block| {
                    let mut bytes = Vec::with_capacity(block.len() * T::BYTES);
                    for value in block {
                        value.put(&mut bytes);
                    }
                    compressor
                        .compress(&bytes)
                        .expect("zstd compresses a block in memory")
                        .into_boxed_slice()
                },
            )
            .collect();
        Packed {
            len: values.len(),
            blocks,
            cache: Mutex::new(None),
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the packed blocks take.
    pub fn packed_bytes(&self) -> usize {
        self.blocks.iter().map(|b| b.len()).sum()
    }

    /// Number of values in block `block`.
    fn block_len(&self, block: usize) -> usize {
        (self.len - block * BLOCK_LEN).min(BLOCK_LEN)
    }

    /// The values of block `block`.
    fn decode(&self, block: usize, decompressor: &mut Decompressor<'static>) -> Vec<T> {
        let bytes = decompressor
            .decompress(&self.blocks[block], self.block_len(block) * T::BYTES)
            // The blocks are this column's own output of `pack`, never outside input.
            .expect("a packed block decodes to the size it was packed from");
        bytes.chunks_exact(T::BYTES).map(T::take).collect()
    }

    /// The value at `index` (decodes its block unless it is the one decoded last).
    pub fn get(&self, index: usize) -> T {
        assert!(index < self.len, "index {index} out of {} values", self.len);
        let block = index / BLOCK_LEN;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *cache {
            Some((cached, values, _)) if *cached == block => values[index % BLOCK_LEN],
            Some((cached, values, decompressor)) => {
                *values = self.decode(block, decompressor);
                *cached = block;
                values[index % BLOCK_LEN]
            }
            None => {
                let mut decompressor = new_decompressor();
                let values = self.decode(block, &mut decompressor);
                let value = values[index % BLOCK_LEN];
                *cache = Some((block, values, decompressor));
                value
            }
        }
    }

    /// Every value, in order (one block decoded at a time).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        let mut decompressor = new_decompressor();
        (0..self.blocks.len()).flat_map(move |block| self.decode(block, &mut decompressor))
    }

    /// The values as a plain column (blocks decoded in parallel).
    pub fn unpack(&self) -> Vec<T> {
        let mut values = vec![T::default(); self.len];
        self.unpack_into(&mut values, |value| value);
        values
    }

    /// Writes every value, converted, over `out` (one entry per value; blocks decoded in
    /// parallel).
    pub fn unpack_into<U: Send>(&self, out: &mut [U], convert: impl Fn(T) -> U + Sync) {
        assert_eq!(out.len(), self.len, "one entry per packed value");
        out.par_chunks_mut(BLOCK_LEN).enumerate().for_each_init(
            new_decompressor,
            |decompressor, (block, out)| {
                for (entry, value) in out.iter_mut().zip(self.decode(block, decompressor)) {
                    *entry = convert(value);
                }
            },
        );
    }
}

impl<T: Packable> std::fmt::Debug for Packed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packed")
            .field("len", &self.len)
            .field("packed_bytes", &self.packed_bytes())
            .finish()
    }
}

/// A decompression context (creating one fails only if zstd cannot allocate).
fn new_decompressor() -> Decompressor<'static> {
    Decompressor::new().expect("zstd allocates a decompression context")
}

impl<T: Packable + PartialEq> PartialEq for Packed<T> {
    fn eq(&self, other: &Packed<T>) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Packable + Eq> Eq for Packed<T> {}

impl<T: Packable> Clone for Packed<T> {
    fn clone(&self) -> Packed<T> {
        Packed {
            len: self.len,
            blocks: self.blocks.clone(),
            cache: Mutex::new(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn runs_pack_to_a_fraction_and_read_back_in_every_way() {
        let values: Vec<u16> = (0..100_000u32).map(|i| (i / 1000) as u16).collect();
        let packed = Packed::pack(&values);
        assert!(
            packed.packed_bytes() < values.len() / 20,
            "{}",
            packed.packed_bytes()
        );
        assert_eq!(packed.unpack(), values);
        assert!(packed.iter().eq(values.iter().copied()));
        for index in [0, 1, BLOCK_LEN - 1, BLOCK_LEN, 99_999, 5, 70_000, 6] {
            assert_eq!(packed.get(index), values[index]);
        }
    }

    proptest! {
        #[test]
        fn any_column_round_trips(
            values in proptest::collection::vec(any::<u32>(), 0..3 * BLOCK_LEN),
            reads in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let packed = Packed::pack(&values);
            prop_assert_eq!(packed.len(), values.len());
            prop_assert_eq!(packed.unpack(), values.clone());
            prop_assert!(packed.iter().eq(values.iter().copied()));
            if !values.is_empty() {
                for read in reads {
                    let index = read.index(values.len());
                    prop_assert_eq!(packed.get(index), values[index]);
                }
            }
        }
    }
}
