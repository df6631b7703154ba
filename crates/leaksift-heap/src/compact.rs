//! Narrow columns for wide values: 32-bit values in 2 bytes when they fit, sizes in 4 or 2
//! bytes with their rare big values kept aside, and object ids in about one byte (steps from
//! the previous id) or four (offsets from a base in units of their common alignment).
//!
//! A heap graph has one size and one id per node; tens of millions of nodes make each 8-byte
//! column a few hundred megabytes. Almost every size fits in 32 bits, and the ids of one dump
//! are either small counters (V8 node ids are `uint32_t` in V8) or addresses of aligned objects
//! inside one heap (HPROF: `(address - base) / 8` fits in 32 bits for heaps below 32 GiB, the
//! compressed-oops limit); in node order they mostly rise by small steps (V8 ids by 2, HPROF
//! addresses by object sizes). Both columns fall back to the wide form when the values do not
//! fit, so no input is refused.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::packed::Packed;

/// Columns shorter than this are converted on the calling thread: for them, handing work to
/// the thread pool and waking it costs more than the work.
const SEQUENTIAL_BELOW: usize = 1 << 16;

/// A column of `u32` values in 2 bytes each when every value fits in 16 bits, in 4 otherwise;
/// either form can be packed ([`CompactU32s::pack`]) while no phase reads it in bulk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompactU32s {
    /// Every value fits in 16 bits.
    Two(Vec<u16>),
    Four(Vec<u32>),
    /// [`CompactU32s::Two`], packed.
    PackedTwo(Packed<u16>),
    /// [`CompactU32s::Four`], packed.
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
        let fits = values
            .par_iter()
            .with_min_len(SEQUENTIAL_BELOW)
            .all(|v| *v <= u32::from(u16::MAX));
        if fits {
            CompactU32s::Two(
                values
                    .par_iter()
                    .with_min_len(SEQUENTIAL_BELOW)
                    .map(|v| *v as u16)
                    .collect(),
            )
        } else {
            CompactU32s::Four(values)
        }
    }

    /// The column in 2 bytes per value if it is in 4 and every value fits (see
    /// [`CompactU32s::narrowest`]); otherwise as it is.
    pub fn into_narrowest(self) -> CompactU32s {
        match self {
            CompactU32s::Four(values) => CompactU32s::narrowest(values),
            other => other,
        }
    }

    /// The largest value (0 for an empty column).
    pub fn max(&self) -> u32 {
        match self {
            CompactU32s::Two(values) => values
                .par_iter()
                .with_min_len(SEQUENTIAL_BELOW)
                .max()
                .map_or(0, |v| u32::from(*v)),
            CompactU32s::Four(values) => values
                .par_iter()
                .with_min_len(SEQUENTIAL_BELOW)
                .max()
                .copied()
                .unwrap_or(0),
            packed => packed.iter().max().unwrap_or(0),
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
    #[inline(always)]
    pub fn get(&self, index: usize) -> u32 {
        match self {
            CompactU32s::Two(values) => u32::from(values[index]),
            CompactU32s::Four(values) => values[index],
            packed => packed.packed_get(index),
        }
    }

    /// [`CompactU32s::get`] of a packed column, out of line: bulk readers run on plain ones.
    #[cold]
    #[inline(never)]
    fn packed_get(&self, index: usize) -> u32 {
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
    #[inline(always)]
    pub fn set(&mut self, index: usize, value: u32) {
        match self {
            CompactU32s::Two(values) if value <= u32::from(u16::MAX) => {
                values[index] = value as u16;
            }
            CompactU32s::Four(values) => values[index] = value,
            _ => self.set_slowly(index, value),
        }
    }

    /// [`CompactU32s::set`] when the column must change form first (out of line: rare).
    #[cold]
    #[inline(never)]
    fn set_slowly(&mut self, index: usize, value: u32) {
        self.unpack();
        let mut wide = std::mem::take(self).into_wide();
        wide[index] = value;
        *self = CompactU32s::narrowest(wide);
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

    /// Writes every value over `out` (one entry per value).
    pub fn copy_to(&self, out: &mut [u32]) {
        match self {
            CompactU32s::Two(values) => out
                .par_iter_mut()
                .zip(values.par_iter())
                .with_min_len(SEQUENTIAL_BELOW)
                .for_each(|(entry, value)| *entry = u32::from(*value)),
            CompactU32s::Four(values) => out.copy_from_slice(values),
            CompactU32s::PackedTwo(values) => values.unpack_into(out, u32::from),
            CompactU32s::PackedFour(values) => values.unpack_into(out, |value| value),
        }
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
            .with_min_len(SEQUENTIAL_BELOW)
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

    /// A column from its entries (values below the entries' [`CompactU32s::limit`], or the
    /// limit) and the values kept aside, by index (filled in parallel by readers). An entry at
    /// the limit without a value aside reads as 0; a value aside whose entry is not at the limit
    /// is ignored.
    pub fn with_big(small: CompactU32s, big: impl IntoIterator<Item = (u32, u64)>) -> CompactU64s {
        let limit = small.limit();
        let big = big
            .into_iter()
            .filter(|(index, _)| small.try_get(*index as usize) == Some(limit))
            .collect();
        CompactU64s { small, big }
    }

    /// The same values in 4-byte entries written over `entries` (a buffer reused, resized to
    /// the column's length), for a copy to update in place: retained sizes start as self sizes.
    pub fn to_four_byte_entries(&self, mut entries: Vec<u32>) -> CompactU64s {
        entries.resize(self.len(), 0);
        self.small.copy_to(&mut entries);
        if self.small.limit() == Self::BIG {
            return CompactU64s {
                small: CompactU32s::Four(entries),
                big: self.big.clone(),
            };
        }
        // 2-byte entries: every entry at their limit has its value aside, which now fits a
        // 4-byte entry unless it is `BIG` or more.
        let mut big = FxHashMap::default();
        for (&index, &value) in &self.big {
            entries[index as usize] = match u32::try_from(value) {
                Ok(value) if value != Self::BIG => value,
                _ => {
                    big.insert(index, value);
                    Self::BIG
                }
            };
        }
        CompactU64s {
            small: CompactU32s::Four(entries),
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
        let over = entries
            .par_iter()
            .with_min_len(SEQUENTIAL_BELOW)
            .filter(|v| **v >= limit)
            .count();
        if over > entries.len() / Self::NARROW_SHARE {
            return self;
        }
        let narrow = entries
            .par_iter()
            .with_min_len(SEQUENTIAL_BELOW)
            .map(|v| (*v).min(limit) as u16)
            .collect();
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
    #[inline(always)]
    pub fn get(&self, index: usize) -> u64 {
        let (entry, limit) = match &self.small {
            CompactU32s::Two(values) => (u32::from(values[index]), u32::from(u16::MAX)),
            CompactU32s::Four(values) => (values[index], Self::BIG),
            packed => (packed.packed_get(index), packed.limit()),
        };
        if entry == limit {
            self.big.get(&(index as u32)).copied().unwrap_or(0)
        } else {
            u64::from(entry)
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

/// Object ids, one per node, in the smallest of three forms: one byte per id holding its step
/// from the previous id ([`IdSteps`]: ids that mostly rise by small aligned steps, as HPROF
/// addresses in file order and V8 node ids do), 4-byte offsets `(id - base) >> shift` when every
/// id shares the alignment `1 << shift` and the offsets fit, the ids themselves otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdColumn {
    /// `id = base + (offset << shift)`.
    Offsets {
        base: u64,
        shift: u32,
        offsets: Vec<u32>,
    },
    /// One byte per id.
    Steps(IdSteps),
    /// The ids as they are.
    Wide(Vec<u64>),
}

impl Default for IdColumn {
    fn default() -> IdColumn {
        IdColumn::Wide(Vec::new())
    }
}

impl IdColumn {
    /// The column for `ids` in the smallest form that holds them exactly (`ids` is freed unless
    /// it is kept as the wide form; on a tie, the offsets, read without decoding).
    pub fn from_wide(ids: Vec<u64>) -> IdColumn {
        let count = ids.len() as u64;
        let steps = IdSteps::plan(&ids);
        // Below 4 bytes per id the steps beat the other forms whether the offsets fit or not.
        if let Some(plan) = steps.filter(|plan| plan.bytes < count.saturating_mul(4)) {
            return IdColumn::Steps(IdSteps::build(&ids, plan.shift));
        }
        let Some(base) = ids.par_iter().with_min_len(SEQUENTIAL_BELOW).copied().min() else {
            return IdColumn::Wide(ids);
        };
        let (spread, highest) = ids
            .par_iter()
            .with_min_len(SEQUENTIAL_BELOW)
            .map(|&id| (id - base, id - base))
            .reduce(|| (0, 0), |a, b| (a.0 | b.0, a.1.max(b.1)));
        // The common alignment of the offsets from the base (0 when every id is the base).
        let shift = if spread == 0 {
            0
        } else {
            spread.trailing_zeros()
        };
        if highest >> shift > u64::from(u32::MAX) {
            return match steps.filter(|plan| plan.bytes < count.saturating_mul(8)) {
                Some(plan) => IdColumn::Steps(IdSteps::build(&ids, plan.shift)),
                None => IdColumn::Wide(ids),
            };
        }
        let offsets = ids
            .par_iter()
            .with_min_len(SEQUENTIAL_BELOW)
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
            IdColumn::Steps(steps) => steps.steps.len(),
            IdColumn::Wide(ids) => ids.len(),
        }
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id at `index` (in the one-byte form, this decodes up to [`IdSteps::BLOCK`] steps:
    /// use [`IdColumn::iter`] to read many ids in order).
    #[inline]
    pub fn get(&self, index: usize) -> u64 {
        match self {
            IdColumn::Offsets {
                base,
                shift,
                offsets,
            } => base + (u64::from(offsets[index]) << shift),
            IdColumn::Steps(steps) => steps.get(index),
            IdColumn::Wide(ids) => ids[index],
        }
    }

    /// Every id, in order (decoded sequentially).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        match self {
            IdColumn::Offsets {
                base,
                shift,
                offsets,
            } => Ids::Offsets {
                base: *base,
                shift: *shift,
                offsets: offsets.iter(),
            },
            IdColumn::Steps(steps) => Ids::Steps {
                column: steps,
                index: 0,
                id: 0,
                escape: 0,
            },
            IdColumn::Wide(ids) => Ids::Wide(ids.iter()),
        }
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
            IdColumn::Steps(_) => self.iter().position(|x| x == id),
            IdColumn::Wide(ids) => ids.iter().position(|x| *x == id),
        }
    }
}

/// Ids in about one byte each: the id at every multiple of [`IdSteps::BLOCK`] in full (an
/// anchor), every other id as its step `(id - previous) >> shift` from the id before it when that
/// difference is non-negative, a multiple of `1 << shift` and below [`IdSteps::ESCAPE`], and as
/// the byte `ESCAPE` otherwise, its id then kept aside. Reading one id adds at most `BLOCK - 1`
/// steps to the anchor or to the last escaped id before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdSteps {
    shift: u32,
    /// The id at every index that is a multiple of [`IdSteps::BLOCK`].
    anchors: Vec<u64>,
    /// Per index: its step, [`IdSteps::ESCAPE`], or 0 at an anchor.
    steps: Vec<u8>,
    /// The indexes whose step byte is [`IdSteps::ESCAPE`], ascending.
    escaped_at: Vec<u32>,
    /// Their ids.
    escaped_ids: Vec<u64>,
}

/// The shift [`IdSteps`] would use for some ids, and the bytes it would then take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StepsPlan {
    shift: u32,
    bytes: u64,
}

impl IdSteps {
    /// Ids per anchor.
    pub const BLOCK: usize = 64;
    /// The step byte of an id kept aside.
    pub const ESCAPE: u8 = u8::MAX;
    /// Bytes per escaped id (its index and the id).
    const ESCAPED_BYTES: u64 = 12;

    /// The shift that leaves the fewest ids to escape (the largest of those that tie: the ids'
    /// alignment), and the size at that shift (`None` for more ids than `u32` indexes reach).
    fn plan(ids: &[u64]) -> Option<StepsPlan> {
        let count = u32::try_from(ids.len()).ok()?;
        // fits[s] (after a prefix sum over `changes`): how many non-anchor ids have a step at
        // shift s. The shifts that fit one difference form a range, added as two changes.
        let changes = ids
            .par_chunks(Self::BLOCK * 1024)
            .map(|chunk| {
                let mut changes = [0i64; 65];
                for (at, pair) in chunk.windows(2).enumerate() {
                    if (at + 1) % Self::BLOCK == 0 {
                        continue;
                    }
                    let Some(difference) = pair[1].checked_sub(pair[0]) else {
                        continue;
                    };
                    let (lowest, highest) = Self::shifts_fitting(difference);
                    if lowest <= highest {
                        changes[lowest as usize] += 1;
                        changes[highest as usize + 1] -= 1;
                    }
                }
                changes
            })
            .reduce(
                || [0i64; 65],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x += y;
                    }
                    a
                },
            );
        // Ordered by fits, then shift: the largest of the shifts that fit the most.
        let (most, shift) = changes[..64]
            .iter()
            .scan(0i64, |fits, change| {
                *fits += change;
                Some(*fits as u64)
            })
            .zip(0u32..)
            .max()
            .unwrap_or((0, 0));
        let count = u64::from(count);
        let anchors = count.div_ceil(Self::BLOCK as u64);
        let escaped = count - anchors - most;
        Some(StepsPlan {
            shift,
            bytes: count + 8 * anchors + Self::ESCAPED_BYTES * escaped,
        })
    }

    /// The shifts `s` at which `difference` is a step: a multiple of `1 << s` whose quotient is
    /// below [`IdSteps::ESCAPE`] (an empty range when the first exceeds the second).
    fn shifts_fitting(difference: u64) -> (u32, u32) {
        let bits = u64::BITS - difference.leading_zeros();
        let mut lowest = bits.saturating_sub(8);
        if difference >> lowest >= u64::from(Self::ESCAPE) {
            lowest += 1;
        }
        (lowest, difference.trailing_zeros().min(63))
    }

    /// The step byte of `id` after `previous`.
    fn step(previous: u64, id: u64, shift: u32) -> u8 {
        match id.checked_sub(previous) {
            Some(difference)
                if difference & ((1u64 << shift) - 1) == 0
                    && difference >> shift < u64::from(Self::ESCAPE) =>
            {
                (difference >> shift) as u8
            }
            _ => Self::ESCAPE,
        }
    }

    /// The steps of `ids` at `shift` (one pass, in parallel over runs of blocks).
    fn build(ids: &[u64], shift: u32) -> IdSteps {
        const RUN: usize = IdSteps::BLOCK * 1024;
        let anchors = ids
            .par_chunks(Self::BLOCK)
            .with_min_len(SEQUENTIAL_BELOW / Self::BLOCK)
            .map(|block| block[0])
            .collect();
        let mut steps = vec![0u8; ids.len()];
        let escapes: Vec<(Vec<u32>, Vec<u64>)> = steps
            .par_chunks_mut(RUN)
            .zip(ids.par_chunks(RUN))
            .enumerate()
            .map(|(run, (steps, ids))| {
                let mut escaped = (Vec::new(), Vec::new());
                for (block, (steps, ids)) in steps
                    .chunks_mut(Self::BLOCK)
                    .zip(ids.chunks(Self::BLOCK))
                    .enumerate()
                {
                    let start = run * RUN + block * Self::BLOCK;
                    for at in 1..ids.len() {
                        let step = Self::step(ids[at - 1], ids[at], shift);
                        steps[at] = step;
                        if step == Self::ESCAPE {
                            escaped.0.push((start + at) as u32);
                            escaped.1.push(ids[at]);
                        }
                    }
                }
                escaped
            })
            .collect();
        let (escaped_at, escaped_ids) = escapes.into_iter().fold(
            (Vec::new(), Vec::new()),
            |(mut at, mut ids), (run_at, run_ids)| {
                at.extend(run_at);
                ids.extend(run_ids);
                (at, ids)
            },
        );
        IdSteps {
            shift,
            anchors,
            steps,
            escaped_at,
            escaped_ids,
        }
    }

    /// The id at `index`: its anchor or the last escaped id before it, plus the steps between.
    #[inline]
    fn get(&self, index: usize) -> u64 {
        let start = index - index % Self::BLOCK;
        let (from, id) = match self.steps[start + 1..=index]
            .iter()
            .rposition(|&step| step == Self::ESCAPE)
        {
            Some(at) => (start + 1 + at, self.escaped(start + 1 + at)),
            None => (start, self.anchors[index / Self::BLOCK]),
        };
        let steps: u64 = self.steps[from + 1..=index]
            .iter()
            .map(|&step| u64::from(step))
            .sum();
        id + (steps << self.shift)
    }

    /// The id kept aside for the escape byte at `index`.
    fn escaped(&self, index: usize) -> u64 {
        let at = self
            .escaped_at
            .binary_search(&(index as u32))
            .expect("every escape byte has its id aside");
        self.escaped_ids[at]
    }
}

/// The iterator of [`IdColumn::iter`].
enum Ids<'a> {
    Offsets {
        base: u64,
        shift: u32,
        offsets: std::slice::Iter<'a, u32>,
    },
    /// `id` is the id before `index`, `escape` the next entry of the ids kept aside.
    Steps {
        column: &'a IdSteps,
        index: usize,
        id: u64,
        escape: usize,
    },
    Wide(std::slice::Iter<'a, u64>),
}

impl Iterator for Ids<'_> {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        match self {
            Ids::Offsets {
                base,
                shift,
                offsets,
            } => offsets
                .next()
                .map(|offset| *base + (u64::from(*offset) << *shift)),
            Ids::Steps {
                column,
                index,
                id,
                escape,
            } => {
                let step = *column.steps.get(*index)?;
                *id = if *index % IdSteps::BLOCK == 0 {
                    column.anchors[*index / IdSteps::BLOCK]
                } else if step == IdSteps::ESCAPE {
                    *escape += 1;
                    column.escaped_ids[*escape - 1]
                } else {
                    *id + (u64::from(step) << column.shift)
                };
                *index += 1;
                Some(*id)
            }
            Ids::Wide(ids) => ids.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = match self {
            Ids::Offsets { offsets, .. } => offsets.len(),
            Ids::Steps { column, index, .. } => column.steps.len() - *index,
            Ids::Wide(ids) => ids.len(),
        };
        (left, Some(left))
    }
}

impl ExactSizeIterator for Ids<'_> {}

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

    /// Bytes a column takes (without spare capacity).
    fn bytes(column: &IdColumn) -> u64 {
        let bytes = match column {
            IdColumn::Offsets { offsets, .. } => 4 * offsets.len(),
            IdColumn::Steps(steps) => {
                steps.steps.len() + 8 * steps.anchors.len() + 12 * steps.escaped_at.len()
            }
            IdColumn::Wide(ids) => 8 * ids.len(),
        };
        bytes as u64
    }

    /// Checks every accessor of `column` against `ids`.
    fn assert_holds(column: &IdColumn, ids: &[u64]) {
        assert_eq!(column.len(), ids.len());
        assert_eq!(column.is_empty(), ids.is_empty());
        let iter = column.iter();
        assert_eq!(iter.len(), ids.len());
        assert_eq!(iter.collect::<Vec<_>>(), ids);
        for (index, &id) in ids.iter().enumerate() {
            assert_eq!(column.get(index), id, "get({index})");
            assert_eq!(
                column.position(id),
                ids.iter().position(|x| *x == id),
                "position({id:#x})"
            );
            for probe in [id.wrapping_add(1), id.wrapping_sub(8)] {
                assert_eq!(
                    column.position(probe),
                    ids.iter().position(|x| *x == probe),
                    "position({probe:#x})"
                );
            }
        }
    }

    /// `ids` in the one-byte form at `shift`, whatever form `from_wide` would pick.
    fn as_steps(ids: &[u64], shift: u32) -> IdColumn {
        IdColumn::Steps(IdSteps::build(ids, shift))
    }

    /// Checks `from_wide` and the one-byte form at several shifts, and that the pick is no
    /// bigger than the one-byte form at its best shift or the wide form.
    fn assert_round_trips(ids: &[u64]) {
        let picked = IdColumn::from_wide(ids.to_vec());
        assert_holds(&picked, ids);
        assert!(bytes(&picked) <= 8 * ids.len() as u64);
        if let Some(plan) = IdSteps::plan(ids) {
            let best = as_steps(ids, plan.shift);
            assert_eq!(bytes(&best), plan.bytes, "the plan counts the escapes");
            assert!(bytes(&picked) <= bytes(&best));
            for shift in [0, 1, 3, 63] {
                let steps = as_steps(ids, shift);
                assert!(bytes(&steps) >= plan.bytes, "shift {shift} beats the plan");
                assert_holds(&steps, ids);
            }
            assert_holds(&best, ids);
        }
    }

    /// Ascending 8-byte-aligned addresses like objects in a dump: 16 to 48 bytes apart, and
    /// every 100th up to 1.6 KiB (more than a step at shift 0).
    fn addresses(count: usize, start: u64) -> Vec<u64> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut id = start;
        (0..count)
            .map(|index| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                id += 16 + 8 * (state % 5);
                if index % 100 == 0 {
                    id += 8 * (state % 200);
                }
                id
            })
            .collect()
    }

    #[test]
    fn dump_addresses_take_about_one_byte_each() {
        let mut ids = vec![0];
        ids.extend(addresses(100_000, 0x7_0000_0000));
        // A segment boundary: back to a lower address, then far ahead.
        ids.extend(addresses(100_000, 0x6_8000_0000));
        ids.extend(addresses(100_000, 0x7_4000_0000));
        let column = IdColumn::from_wide(ids.clone());
        let IdColumn::Steps(steps) = &column else {
            panic!("not the one-byte form: {column:?}");
        };
        assert_eq!(steps.shift, 3);
        assert_eq!(steps.escaped_at.len(), 3, "{:?}", steps.escaped_at);
        let per_id = bytes(&column) as f64 / ids.len() as f64;
        assert!(per_id < 1.13, "{per_id} bytes per id");
        assert_holds_sequentially(&column, &ids);
        assert_round_trips(&ids[..1000]);
    }

    /// [`assert_holds`] without the quadratic position checks, for long columns.
    fn assert_holds_sequentially(column: &IdColumn, ids: &[u64]) {
        assert_eq!(column.iter().collect::<Vec<_>>(), ids);
        for index in (0..ids.len()).step_by(7) {
            assert_eq!(column.get(index), ids[index], "get({index})");
        }
        let last = ids.len() - 1;
        assert_eq!(column.position(ids[last]), Some(last));
    }

    #[test]
    fn v8_node_ids_rising_by_two_take_about_one_byte_each() {
        let mut ids: Vec<u64> = (0..5000).map(|n| 1 + 2 * n).collect();
        ids.extend((0..5000).map(|n| 100_001 + 2 * n + 2 * (n / 3)));
        let column = IdColumn::from_wide(ids.clone());
        assert!(matches!(&column, IdColumn::Steps(steps) if steps.shift == 1));
        assert!(bytes(&column) < ids.len() as u64 * 9 / 8 + 100);
        assert_round_trips(&ids[..200]);
        assert_holds_sequentially(&column, &ids);
    }

    #[test]
    fn escapes_at_block_starts_and_ends_read_back() {
        for len in [0, 1, 2, 63, 64, 65, 127, 128, 129, 200] {
            for escaped in [
                vec![],
                vec![1],
                vec![63],
                vec![1, 63, 64, 65],
                vec![62, 63, 127, 128, 129],
                (1..len).collect(),
            ] {
                let mut ids = Vec::with_capacity(len);
                let mut id = 0x1000u64;
                for index in 0..len {
                    id = match (escaped.contains(&index), index % 3) {
                        (false, _) => id + 16,
                        (true, 0) => id - 24,
                        (true, 1) => id + 3,
                        (true, _) => id + (1 << 40),
                    };
                    ids.push(id);
                }
                assert_round_trips(&ids);
            }
        }
    }

    #[test]
    fn descending_duplicate_and_extreme_ids_read_back() {
        let descending: Vec<u64> = (0..300).rev().map(|n| 0x7000 + 8 * n).collect();
        assert_round_trips(&descending);
        assert!(matches!(
            IdColumn::from_wide(descending),
            IdColumn::Offsets { .. }
        ));
        let same = vec![5u64; 300];
        assert_round_trips(&same);
        assert!(matches!(IdColumn::from_wide(same), IdColumn::Steps(_)));
        let top: Vec<u64> = (0..300).rev().map(|n| u64::MAX - 8 * n).collect();
        assert_round_trips(&top);
        assert!(matches!(IdColumn::from_wide(top), IdColumn::Steps(_)));
        assert_round_trips(&[0, u64::MAX, 0, u64::MAX, u64::MAX - 1, 1]);
        assert_round_trips(&[u64::MAX; 70]);
        assert_round_trips(&[u64::MAX, 0]);
        let alternating: Vec<u64> = (0..130).map(|n| (n % 2) * u64::MAX).collect();
        assert_round_trips(&alternating);
    }

    #[test]
    fn one_byte_form_across_plan_chunks() {
        // Longer than one chunk of the shift count, with steps down on either side of the
        // seams: escapes, except at `seam` and `2 * seam` (anchors).
        let seam = IdSteps::BLOCK * 1024;
        let mut ids = addresses(2 * seam + 100, 0x10_0000);
        for at in [seam - 1, seam, seam + 1, 2 * seam] {
            ids[at] = ids[at - 1] - 8;
        }
        let column = IdColumn::from_wide(ids.clone());
        let plan = IdSteps::plan(&ids).expect("a plan");
        assert_eq!(bytes(&column), plan.bytes);
        assert!(matches!(&column, IdColumn::Steps(steps) if steps.escaped_at.len() == 2));
        assert_holds_sequentially(&column, &ids);
    }

    /// How one id follows the one before it.
    #[derive(Debug, Clone, Copy)]
    enum Move {
        /// Up by this many 8-byte words (some beyond a one-byte step).
        Words(u64),
        /// Down by this much.
        Down(u64),
        /// Up by this much, unaligned.
        Up(u64),
        /// To this id.
        To(u64),
    }

    impl Move {
        fn after(self, previous: u64) -> u64 {
            match self {
                Move::Words(words) => previous.wrapping_add(8 * words),
                Move::Down(by) => previous.wrapping_sub(by),
                Move::Up(by) => previous.wrapping_add(by),
                Move::To(id) => id,
            }
        }
    }

    fn moves() -> impl Strategy<Value = Move> {
        prop_oneof![
            4 => (0u64..300).prop_map(Move::Words),
            1 => (0u64..64).prop_map(Move::Down),
            1 => (0u64..4).prop_map(Move::Up),
            1 => any::<u64>().prop_map(Move::To),
        ]
    }

    proptest! {
        #[test]
        fn any_ids_round_trip_in_every_form(
            start in any::<u64>(),
            moves in proptest::collection::vec(moves(), 0..260),
        ) {
            let mut id = start;
            let ids: Vec<u64> = moves
                .iter()
                .map(|step| {
                    id = step.after(id);
                    id
                })
                .collect();
            assert_round_trips(&ids);
        }

        #[test]
        fn random_ids_round_trip(ids in proptest::collection::vec(any::<u64>(), 0..140)) {
            assert_round_trips(&ids);
        }
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
            prop_assert_eq!(column.iter().collect::<Vec<_>>(), expected.clone());
            let copy = column.to_four_byte_entries(vec![7; 3]);
            prop_assert_eq!(copy.iter().collect::<Vec<_>>(), expected.clone());
            column.pack();
            prop_assert_eq!(column.iter().collect::<Vec<_>>(), expected.clone());
            let copy = column.to_four_byte_entries(Vec::new());
            prop_assert_eq!(copy.iter().collect::<Vec<_>>(), expected.clone());
            for (index, value) in expected.iter().enumerate() {
                prop_assert_eq!(column.get(index), *value);
            }
            column.unpack();
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
