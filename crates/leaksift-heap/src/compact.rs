//! Narrow columns for wide values: 32-bit values in 2 bytes when they fit, sizes in 4 or 2 bytes
//! with their rare big values kept aside, and object ids stored as offsets from a base in units
//! of their common alignment.
//!
//! A heap graph has one size and one id per node; tens of millions of nodes make each 8-byte
//! column a few hundred megabytes. Almost every size fits in 32 bits, and the ids of one dump
//! are either small counters (V8 node ids are `uint32_t` in V8) or addresses of aligned objects
//! inside one heap (HPROF: `(address - base) / 8` fits in 32 bits for heaps below 32 GiB, the
//! compressed-oops limit). Both columns fall back to the wide form when the values do not fit,
//! so no input is refused.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::packed::Packed;

/// A column of `u32` values in 2 bytes each when every value fits in 16 bits, in 4 otherwise;
/// either form can be packed ([`CompactU32s::pack`]) while no phase reads it in bulk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompactU32s {
    Two(Vec<u16>),
    Four(Vec<u32>),
    PackedTwo(Packed<u16>),
    PackedFour(Packed<u32>),
}

impl Default for CompactU32s {
    fn default() -> CompactU32s {
        CompactU32s::Four(Vec::new())
    }
}

impl CompactU32s {
    /// The column of `values` in the narrowest form that holds them all (`values` is freed).
    pub fn narrowest(values: Vec<u32>) -> CompactU32s {
        let fits = values.par_iter().all(|v| *v <= u32::from(u16::MAX));
        if fits {
            CompactU32s::Two(values.par_iter().map(|v| *v as u16).collect())
        } else {
            CompactU32s::Four(values)
        }
    }

    /// The largest value an entry can hold.
    #[inline]
    pub fn limit(&self) -> u32 {
        match self {
            CompactU32s::Two(_) | CompactU32s::PackedTwo(_) => u32::from(u16::MAX),
            CompactU32s::Four(_) | CompactU32s::PackedFour(_) => u32::MAX,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            CompactU32s::Two(values) => values.len(),
            CompactU32s::Four(values) => values.len(),
            CompactU32s::PackedTwo(values) => values.len(),
            CompactU32s::PackedFour(values) => values.len(),
        }
    }

    /// Packs the column (a no-op if it is packed).
    pub fn pack(&mut self) {
        *self = match std::mem::take(self) {
            CompactU32s::Two(values) => CompactU32s::PackedTwo(Packed::pack(&values)),
            CompactU32s::Four(values) => CompactU32s::PackedFour(Packed::pack(&values)),
            packed => packed,
        };
    }

    /// Unpacks a column packed with [`CompactU32s::pack`] (a no-op otherwise).
    pub fn unpack(&mut self) {
        *self = match std::mem::take(self) {
            CompactU32s::PackedTwo(values) => CompactU32s::Two(values.unpack()),
            CompactU32s::PackedFour(values) => CompactU32s::Four(values.unpack()),
            plain => plain,
        };
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `index` (packed: decodes its block unless it was the last one decoded).
    #[inline]
    pub fn get(&self, index: usize) -> u32 {
        match self {
            CompactU32s::Two(values) => u32::from(values[index]),
            CompactU32s::Four(values) => values[index],
            CompactU32s::PackedTwo(values) => u32::from(values.get(index)),
            CompactU32s::PackedFour(values) => values.get(index),
        }
    }

    /// The value at `index`, if the column has one.
    #[inline]
    pub fn try_get(&self, index: usize) -> Option<u32> {
        (index < self.len()).then(|| self.get(index))
    }

    /// Replaces the value at `index` (the column is unpacked, and widens to 4 bytes if `value`
    /// needs it).
    #[inline]
    pub fn set(&mut self, index: usize, value: u32) {
        match self {
            CompactU32s::Two(values) => match u16::try_from(value) {
                Ok(narrow) => values[index] = narrow,
                Err(_) => {
                    let mut wide = std::mem::take(self).into_wide();
                    wide[index] = value;
                    *self = CompactU32s::Four(wide);
                }
            },
            CompactU32s::Four(values) => values[index] = value,
            CompactU32s::PackedTwo(_) | CompactU32s::PackedFour(_) => {
                self.unpack();
                self.set(index, value);
            }
        }
    }

    /// Every value, in order (packed: one block decoded at a time).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let (mut two, mut four, mut packed_two, mut packed_four) = (None, None, None, None);
        match self {
            CompactU32s::Two(values) => two = Some(values.iter().map(|v| u32::from(*v))),
            CompactU32s::Four(values) => four = Some(values.iter().copied()),
            CompactU32s::PackedTwo(values) => packed_two = Some(values.iter().map(u32::from)),
            CompactU32s::PackedFour(values) => packed_four = Some(values.iter()),
        }
        (two.into_iter().flatten())
            .chain(four.into_iter().flatten())
            .chain(packed_two.into_iter().flatten())
            .chain(packed_four.into_iter().flatten())
    }

    /// The values as a plain column (the column is freed).
    pub fn into_wide(self) -> Vec<u32> {
        match self {
            CompactU32s::Two(values) => values.into_iter().map(u32::from).collect(),
            CompactU32s::Four(values) => values,
            CompactU32s::PackedTwo(values) => values.iter().map(u32::from).collect(),
            CompactU32s::PackedFour(values) => values.unpack(),
        }
    }
}

/// A column of `u64` values in 4 bytes each, or in 2 ([`CompactU64s::into_narrowest`]): the
/// values an entry cannot hold are kept in a map, their entry set to the entries' limit.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactU64s {
    /// The value, or `small.limit()` for values kept in `big`.
    small: CompactU32s,
    big: FxHashMap<u32, u64>,
}

impl CompactU64s {
    /// The 4-byte entry of a value kept aside.
    pub const BIG: u32 = u32::MAX;

    /// See [`CompactU64s::into_narrowest`].
    pub const NARROW_SHARE: usize = 64;

    /// A column of `len` zeros in 4-byte entries.
    pub fn zeros(len: usize) -> CompactU64s {
        CompactU64s {
            small: CompactU32s::Four(vec![0; len]),
            big: FxHashMap::default(),
        }
    }

    /// The same values as `wide`, in 4-byte entries (converted in parallel; `wide` is freed).
    pub fn from_wide(wide: Vec<u64>) -> CompactU64s {
        let small: Vec<u32> = wide
            .par_iter()
            .map(|&value| u32::try_from(value).map_or(Self::BIG, |v| v))
            .collect();
        let big = small
            .iter()
            .enumerate()
            .filter(|(_, v)| **v == Self::BIG)
            .map(|(index, _)| (index as u32, wide[index]))
            .collect();
        CompactU64s {
            small: CompactU32s::Four(small),
            big,
        }
    }

    /// A column from its 4-byte entries (values below [`CompactU64s::BIG`], or `BIG`) and the
    /// values kept aside, by index (filled in parallel by readers). An entry `BIG` without a
    /// value aside reads as 0; a value aside whose entry is not `BIG` is ignored.
    pub fn with_big(small: Vec<u32>, big: impl IntoIterator<Item = (u32, u64)>) -> CompactU64s {
        let big = big
            .into_iter()
            .filter(|(index, _)| small.get(*index as usize) == Some(&Self::BIG))
            .collect();
        CompactU64s {
            small: CompactU32s::Four(small),
            big,
        }
    }

    /// The same values in 2-byte entries when at most one value in [`Self::NARROW_SHARE`] needs
    /// the map then (the map's 16 or so bytes per value are then under 2 bytes per entry
    /// saved); otherwise the column as it is. For columns that are read much more than
    /// written, such as self sizes (almost all objects are below 64 KiB).
    pub fn into_narrowest(self) -> CompactU64s {
        let CompactU32s::Four(entries) = &self.small else {
            return self;
        };
        let limit = u32::from(u16::MAX);
        let over = entries.par_iter().filter(|v| **v >= limit).count();
        if over > entries.len() / Self::NARROW_SHARE {
            return self;
        }
        let narrow = entries.par_iter().map(|v| (*v).min(limit) as u16).collect();
        let big = entries
            .iter()
            .enumerate()
            .filter(|(_, v)| **v >= limit)
            .map(|(index, _)| (index as u32, self.get(index)))
            .collect();
        CompactU64s {
            small: CompactU32s::Two(narrow),
            big,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.small.len()
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.small.is_empty()
    }

    /// The value at `index`.
    #[inline]
    pub fn get(&self, index: usize) -> u64 {
        match self.small.get(index) {
            entry if entry == self.small.limit() => {
                self.big.get(&(index as u32)).copied().unwrap_or(0)
            }
            entry => u64::from(entry),
        }
    }

    /// Replaces the value at `index`.
    #[inline]
    pub fn set(&mut self, index: usize, value: u64) {
        let limit = self.small.limit();
        match u32::try_from(value) {
            Ok(small) if small < limit => {
                if self.small.get(index) == limit {
                    self.big.remove(&(index as u32));
                }
                self.small.set(index, small);
            }
            _ => {
                self.small.set(index, limit);
                self.big.insert(index as u32, value);
            }
        }
    }

    /// Adds `value` to the value at `index` (saturating).
    #[inline]
    pub fn add(&mut self, index: usize, value: u64) {
        let sum = self.get(index).saturating_add(value);
        self.set(index, sum);
    }

    /// Every value, in order (packed: one block decoded at a time).
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let limit = self.small.limit();
        self.small
            .iter()
            .enumerate()
            .map(move |(index, entry)| match entry {
                entry if entry == limit => self.big.get(&(index as u32)).copied().unwrap_or(0),
                entry => u64::from(entry),
            })
    }

    /// Packs the entries ([`CompactU32s::pack`]) while no phase reads them in bulk.
    pub fn pack(&mut self) {
        self.small.pack();
    }

    /// Unpacks entries packed with [`CompactU64s::pack`].
    pub fn unpack(&mut self) {
        self.small.unpack();
    }
}

/// Object ids, one per node: 4-byte offsets `(id - base) >> shift` when every id shares the
/// alignment `1 << shift` and the offsets fit, the ids themselves otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdColumn {
    /// `id = base + (offset << shift)`.
    Offsets {
        base: u64,
        shift: u32,
        offsets: Vec<u32>,
    },
    /// The ids as they are.
    Wide(Vec<u64>),
}

impl Default for IdColumn {
    fn default() -> IdColumn {
        IdColumn::Wide(Vec::new())
    }
}

impl IdColumn {
    /// The column for `ids` (in 4 bytes per id when they allow it; `ids` is then freed).
    pub fn from_wide(ids: Vec<u64>) -> IdColumn {
        let Some(base) = ids.par_iter().copied().min() else {
            return IdColumn::Wide(ids);
        };
        let (spread, highest) = ids
            .par_iter()
            .map(|&id| (id - base, id - base))
            .reduce(|| (0, 0), |a, b| (a.0 | b.0, a.1.max(b.1)));
        // The common alignment of the offsets from the base (0 when every id is the base).
        let shift = if spread == 0 {
            0
        } else {
            spread.trailing_zeros()
        };
        if highest >> shift > u64::from(u32::MAX) {
            return IdColumn::Wide(ids);
        }
        let offsets = ids
            .par_iter()
            .map(|&id| ((id - base) >> shift) as u32)
            .collect();
        IdColumn::Offsets {
            base,
            shift,
            offsets,
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        match self {
            IdColumn::Offsets { offsets, .. } => offsets.len(),
            IdColumn::Wide(ids) => ids.len(),
        }
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id at `index`.
    #[inline]
    pub fn get(&self, index: usize) -> u64 {
        match self {
            IdColumn::Offsets {
                base,
                shift,
                offsets,
            } => base + (u64::from(offsets[index]) << shift),
            IdColumn::Wide(ids) => ids[index],
        }
    }

    /// Every id, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        (0..self.len()).map(|index| self.get(index))
    }

    /// The first index holding `id`.
    pub fn position(&self, id: u64) -> Option<usize> {
        match self {
            IdColumn::Offsets {
                base,
                shift,
                offsets,
            } => {
                let offset = id.checked_sub(*base)?;
                if offset & ((1u64 << shift) - 1) != 0 {
                    return None;
                }
                let offset = u32::try_from(offset >> shift).ok()?;
                offsets.iter().position(|o| *o == offset)
            }
            IdColumn::Wide(ids) => ids.iter().position(|x| *x == id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aligned_addresses_take_four_bytes() {
        let ids = vec![0, 0x7_0000_0000, 0x7_0000_0018, 0x7_ffff_fff8];
        let column = IdColumn::from_wide(ids.clone());
        assert!(matches!(column, IdColumn::Offsets { shift: 3, .. }));
        assert_eq!(column.iter().collect::<Vec<_>>(), ids);
        assert_eq!(column.position(0x7_0000_0018), Some(2));
        assert_eq!(column.position(0x7_0000_0019), None);
        assert_eq!(column.position(0x7_0000_0020), None);
    }

    #[test]
    fn ids_spread_over_more_than_32_bits_stay_wide() {
        let ids = vec![1, 0x7f12_3456_7001];
        let column = IdColumn::from_wide(ids.clone());
        assert!(matches!(column, IdColumn::Wide(_)));
        assert_eq!(column.iter().collect::<Vec<_>>(), ids);
        assert_eq!(column.position(0x7f12_3456_7001), Some(1));
    }

    #[test]
    fn big_sizes_are_kept_aside_and_replaced() {
        let mut sizes = CompactU64s::from_wide(vec![1, u64::from(u32::MAX), 5 << 32, 7]);
        assert_eq!(
            sizes.iter().collect::<Vec<_>>(),
            [1, u64::from(u32::MAX), 5 << 32, 7]
        );
        sizes.set(2, 3);
        sizes.add(0, u64::MAX);
        assert_eq!(
            sizes.iter().collect::<Vec<_>>(),
            [u64::MAX, u64::from(u32::MAX), 3, 7]
        );
        assert_eq!(sizes.big.len(), 2);
    }

    #[test]
    fn small_values_take_two_bytes_and_a_big_one_widens_the_column() {
        let mut column = CompactU32s::narrowest(vec![0, 7, u32::from(u16::MAX)]);
        assert!(matches!(column, CompactU32s::Two(_)));
        column.set(1, 9);
        assert!(matches!(column, CompactU32s::Two(_)));
        column.set(0, 1 << 16);
        assert!(matches!(column, CompactU32s::Four(_)));
        assert_eq!(column.iter().collect::<Vec<_>>(), [1 << 16, 9, 65_535]);
        assert_eq!(column.try_get(3), None);
        let wide = CompactU32s::narrowest(vec![1, u32::MAX]);
        assert!(matches!(wide, CompactU32s::Four(_)));
    }

    #[test]
    fn sizes_narrow_to_two_bytes_only_when_few_need_the_map() {
        let mut few: Vec<u64> = (0..640).map(|i| i * 7).collect();
        few[3] = 65_535;
        few[600] = 5 << 32;
        let narrow = CompactU64s::from_wide(few.clone()).into_narrowest();
        assert!(matches!(narrow.small, CompactU32s::Two(_)));
        assert_eq!(narrow.big.len(), 2);
        assert_eq!(narrow.iter().collect::<Vec<_>>(), few);
        let many: Vec<u64> = (0..640).map(|i| i * 1000).collect();
        let kept = CompactU64s::from_wide(many.clone()).into_narrowest();
        assert!(matches!(kept.small, CompactU32s::Four(_)));
        assert_eq!(kept.iter().collect::<Vec<_>>(), many);
    }

    proptest! {
        #[test]
        fn narrow_sizes_read_and_write_like_wide_ones(
            values in proptest::collection::vec(prop_oneof![0u64..70_000, any::<u64>()], 0..200),
            writes in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![0u64..70_000, any::<u64>()]), 0..20),
        ) {
            let mut expected = values.clone();
            let mut column = CompactU64s::from_wide(values).into_narrowest();
            for (at, value) in writes {
                if expected.is_empty() {
                    break;
                }
                let at = at.index(expected.len());
                expected[at] = expected[at].saturating_add(value);
                column.add(at, value);
            }
            prop_assert_eq!(column.iter().collect::<Vec<_>>(), expected);
        }

        #[test]
        fn ids_round_trip(
            base in any::<u64>(),
            shift in 0u32..12,
            steps in proptest::collection::vec(0u64..1 << 40, 1..40),
        ) {
            let ids: Vec<u64> = steps
                .iter()
                .map(|s| base.wrapping_add(s << shift))
                .collect();
            let column = IdColumn::from_wide(ids.clone());
            prop_assert_eq!(column.iter().collect::<Vec<_>>(), ids.clone());
            for (index, id) in ids.iter().enumerate() {
                let found = column.position(*id).unwrap();
                prop_assert_eq!(ids[found], *id);
                prop_assert!(found <= index);
            }
        }

        #[test]
        fn sizes_round_trip(values in proptest::collection::vec(any::<u64>(), 0..40)) {
            let column = CompactU64s::from_wide(values.clone());
            prop_assert_eq!(column.iter().collect::<Vec<_>>(), values);
        }
    }
}
