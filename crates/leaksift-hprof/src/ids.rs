//! Object id → dense ordinal, without a hash map of tens of millions of entries.
//!
//! HPROF ids are addresses, and dumps list objects in (nearly) ascending address order. When
//! the addresses are dense enough, the index is a bitmap of the address range at the ids'
//! alignment, in words of 64 addresses, each word stored with the ordinal of its first object:
//! a word whose objects come one after the other in the file, in address order (nearly all of
//! them), gives an object's ordinal as that base plus the number of objects before it in the
//! word, and the other words point into a small side table of ordinals. A lookup then reads one
//! 16-byte entry (one cache miss) after a page table entry. The words are stored only for the
//! pages (64 words: 4096 addresses, 32 KiB at 8-byte alignment) that hold an object, so a heap
//! whose objects lie in a few distant areas (old and young generations of ParallelGC, G1's
//! regions scattered over a large `-Xmx`) is indexed as densely as a compact one. Cost: 4 bytes
//! per page of the address range and 1 KiB per page holding objects, at most 6 bytes per object
//! (about 1 on a typical dump).
//!
//! Sparser address ranges fall back to a sorted permutation of the ordinals plus a table of
//! address buckets (a counting sort; ids inside the rare crowded buckets are sorted) that
//! narrows a lookup to a handful of candidates: 4 bytes per object for the permutation and
//! about 2 bytes per object for the buckets.
//!
//! The index owns the ids and hands them over as the graph's id column when pass 2 is done
//! ([`IdIndex::into_id_column`]). The dense index never reads them, so it keeps them in the
//! graph's compact form from the start and pass 2 runs without the 8-byte list; the bucket
//! index compares candidates with the ids and keeps the list.

use leaksift_heap::IdColumn;

use crate::bytes::Id;

/// Maps object ids to ordinals. Ordinal 0 (the synthetic root) and id 0 (null) never match.
#[derive(Debug)]
pub struct IdIndex {
    min: u64,
    max: u64,
    lookup: Lookup,
}

#[derive(Debug)]
enum Lookup {
    Dense(DenseIndex, IdColumn),
    Buckets(BucketIndex, Vec<u64>),
}

impl Default for IdIndex {
    /// The index of no objects.
    fn default() -> Self {
        IdIndex {
            min: 1,
            max: 0,
            lookup: Lookup::Dense(DenseIndex::default(), IdColumn::default()),
        }
    }
}

impl IdIndex {
    /// Builds the index over `ids[1..]` (`ids[0]` is the root), which it keeps. With duplicate
    /// ids, the first object (in file order) with the id is found.
    pub fn build(ids: Vec<u64>) -> IdIndex {
        // The dense index is used when it takes at most what the bucket index takes.
        Self::with_dense_limit(ids, BucketIndex::BYTES_PER_OBJECT)
    }

    /// Builds the dense index when its 16 bytes per word of addresses come to at most
    /// `dense_limit` bytes per object, the bucket index otherwise.
    fn with_dense_limit(ids: Vec<u64>, dense_limit: u64) -> IdIndex {
        let objects = ids.get(1..).unwrap_or_default();
        let Some(&first) = objects.first() else {
            return IdIndex {
                lookup: Lookup::Dense(DenseIndex::default(), IdColumn::from_wide(ids)),
                ..IdIndex::default()
            };
        };
        // Every id agrees with the first one below its alignment: the lowest bit in which any
        // id differs from the first one is the alignment of the differences.
        let (min, max, differ) = objects
            .iter()
            .fold((u64::MAX, 0, 0), |(lo, hi, differ), &id| {
                (lo.min(id), hi.max(id), differ | (id ^ first))
            });
        let shift = differ.trailing_zeros().min(63);
        let budget = (objects.len() as u64).saturating_mul(dense_limit);
        let lookup = match DenseIndex::pages(objects, min, max, shift, budget) {
            Some(pages) => {
                let dense = DenseIndex::build(objects, min, shift, pages);
                Lookup::Dense(dense, IdColumn::from_wide(ids))
            }
            None => Lookup::Buckets(BucketIndex::build(&ids, min, max), ids),
        };
        IdIndex { min, max, lookup }
    }

    /// Number of ids, the root's included.
    pub fn len(&self) -> usize {
        match &self.lookup {
            Lookup::Dense(_, ids) => ids.len(),
            Lookup::Buckets(_, ids) => ids.len(),
        }
    }

    /// The ids as the graph's column (the index is freed).
    pub fn into_id_column(self) -> IdColumn {
        match self.lookup {
            Lookup::Dense(_, ids) => ids,
            Lookup::Buckets(_, ids) => IdColumn::from_wide(ids),
        }
    }

    /// The ordinal of the object with this id, if the dump contains it.
    #[inline(always)]
    pub fn lookup(&self, Id(id): Id) -> Option<u32> {
        if id < self.min || id > self.max || id == 0 {
            return None;
        }
        match &self.lookup {
            Lookup::Dense(dense, _) => dense.lookup(id - self.min),
            Lookup::Buckets(buckets, ids) => buckets.lookup(ids, id - self.min, id),
        }
    }
}

/// 64 consecutive addresses (at the ids' alignment) of the dense index.
#[derive(Debug, Clone, Copy, Default)]
struct Word {
    /// Bit `i` is set when an object lies at the word's `i`-th address.
    present: u64,
    /// The ordinal of the word's first object (in address order) when its objects are
    /// consecutive in the file and in address order; otherwise where the ordinals of its
    /// objects start in [`DenseIndex::scattered`].
    base: u32,
    scattered: bool,
}

/// Objects one after the other in the file that lie in one word, while the index is built.
struct Run {
    /// `usize::MAX` before the first object.
    word: usize,
    present: u64,
    /// Each object lies at a higher address than the one before.
    in_order: bool,
}

impl Run {
    fn merge_into(&self, words: &mut [Word]) {
        if let Some(word) = words.get_mut(self.word) {
            word.present |= self.present;
            word.scattered |= !self.in_order;
        }
    }
}

/// The index of ids dense enough in their address range (see the module comment).
#[derive(Debug, Default)]
struct DenseIndex {
    /// log2 of the ids' alignment.
    shift: u32,
    /// Per page of the address range: where its words start in `words`, divided by
    /// [`WORDS_PER_PAGE`], or [`NO_PAGE`] when no object lies in it.
    pages: Vec<u32>,
    words: Vec<Word>,
    /// Ordinals of the objects of the scattered words, by word then address.
    scattered: Vec<u32>,
}

/// Words of 64 addresses per page of the dense index.
const WORDS_PER_PAGE: usize = 64;

/// A page of the address range that holds no object.
const NO_PAGE: u32 = u32::MAX;

impl DenseIndex {
    /// The page table of the ids (every page that holds one numbered, the others
    /// [`NO_PAGE`]) when the index takes at most `budget` bytes; `None` otherwise. The table
    /// itself is only allocated when it fits the budget, so a hostile address range costs
    /// nothing.
    fn pages(objects: &[u64], min: u64, max: u64, shift: u32, budget: u64) -> Option<Vec<u32>> {
        let slots_per_page = (WORDS_PER_PAGE * 64) as u64;
        let page_count = ((max - min) >> shift) / slots_per_page + 1;
        let table_bytes = page_count.saturating_mul(4);
        if table_bytes > budget {
            return None;
        }
        let mut pages = vec![NO_PAGE; usize::try_from(page_count).ok()?];
        for &id in objects {
            pages[(((id - min) >> shift) / slots_per_page) as usize] = 0;
        }
        let mut used = 0u32;
        for page in pages.iter_mut().filter(|p| **p == 0) {
            *page = used;
            used += 1;
        }
        let words_bytes = u64::from(used) * (WORDS_PER_PAGE * size_of::<Word>()) as u64;
        (table_bytes + words_bytes <= budget).then_some(pages)
    }

    /// Where the word of address slot `slot / 64` is in `words`, if its page holds objects.
    #[inline(always)]
    fn word_at(pages: &[u32], word: usize) -> Option<usize> {
        let page = *pages.get(word / WORDS_PER_PAGE)?;
        (page != NO_PAGE).then(|| page as usize * WORDS_PER_PAGE + word % WORDS_PER_PAGE)
    }

    /// Two sequential passes over the ids (and a third over those of scattered words), after
    /// [`DenseIndex::pages`] numbered the pages.
    fn build(objects: &[u64], min: u64, shift: u32, pages: Vec<u32>) -> DenseIndex {
        let used = pages.iter().filter(|p| **p != NO_PAGE).count();
        let mut words = vec![Word::default(); used * WORDS_PER_PAGE];
        // Every object's page is numbered, so its word is always found.
        let word_of = |id: u64| -> (usize, u64) {
            let slot = (id - min) >> shift;
            let word = Self::word_at(&pages, (slot / 64) as usize).unwrap_or(usize::MAX);
            (word, slot % 64)
        };
        // A word stays in order while each of its objects but the first follows an object of
        // the same word at a lower address. The current run of objects in one word is kept in
        // registers and merged into its word when the run ends.
        let mut run = Run {
            word: usize::MAX,
            present: 0,
            in_order: true,
        };
        let mut previous = 0;
        for (at, &id) in objects.iter().enumerate() {
            let (word, bit) = word_of(id);
            if word != run.word {
                run.merge_into(&mut words);
                run = Run {
                    word,
                    present: 0,
                    in_order: true,
                };
                let word = &mut words[word];
                if word.present == 0 {
                    word.base = at as u32 + 1;
                } else {
                    // The word's objects are not all one after the other in the file.
                    word.scattered = true;
                }
            } else if previous >= bit {
                run.in_order = false;
            }
            run.present |= 1 << bit;
            previous = bit;
        }
        run.merge_into(&mut words);
        let mut scattered_len = 0usize;
        for word in words.iter_mut().filter(|w| w.scattered) {
            word.base = scattered_len as u32;
            scattered_len += word.present.count_ones() as usize;
        }
        let mut scattered = vec![0u32; scattered_len];
        if scattered_len > 0 {
            for (at, &id) in objects.iter().enumerate() {
                let (word, bit) = word_of(id);
                let word = &words[word];
                if word.scattered {
                    let below = word.present & ((1u64 << bit) - 1);
                    let entry = &mut scattered[word.base as usize + below.count_ones() as usize];
                    if *entry == 0 {
                        *entry = at as u32 + 1;
                    }
                }
            }
        }
        DenseIndex {
            shift,
            pages,
            words,
            scattered,
        }
    }

    /// `offset`: the id minus the lowest id.
    #[inline(always)]
    fn lookup(&self, offset: u64) -> Option<u32> {
        if offset & ((1u64 << self.shift) - 1) != 0 {
            return None;
        }
        let slot = offset >> self.shift;
        let word = Self::word_at(&self.pages, usize::try_from(slot / 64).ok()?)?;
        let word = &self.words[word];
        let bit = 1u64 << (slot % 64);
        if word.present & bit == 0 {
            return None;
        }
        let before = (word.present & (bit - 1)).count_ones();
        if word.scattered {
            self.scattered.get((word.base + before) as usize).copied()
        } else {
            Some(word.base + before)
        }
    }
}

/// The index of sparse ids: ordinals sorted by address bucket.
#[derive(Debug)]
struct BucketIndex {
    shift: u32,
    /// `buckets[b]..buckets[b + 1]` is the range of `order` holding ids of bucket `b`.
    buckets: Vec<u32>,
    /// Ordinals (≥ 1) by bucket; by id within buckets of more than [`BucketIndex::SCANNED`].
    order: Vec<u32>,
}

impl BucketIndex {
    /// A counting sort of the ordinals by bucket (three sequential passes, as dumps list
    /// objects in nearly ascending address order), then a sort by id inside the rare buckets
    /// of more than [`BucketIndex::SCANNED`] ids.
    fn build(ids: &[u64], min: u64, max: u64) -> BucketIndex {
        let objects = ids.get(1..).unwrap_or_default();
        let span = max - min;
        let target_buckets = (objects.len() as u64 / 2).max(1);
        let mut shift = 0;
        while shift < 63 && (span >> shift) >= target_buckets {
            shift += 1;
        }
        let bucket_count = (span >> shift) as usize + 1;
        let bucket = |id: u64| ((id - min) >> shift) as usize;
        // Counts, then running ends, then (filling back to front) starts.
        let mut buckets = vec![0u32; bucket_count + 1];
        for &id in objects {
            buckets[bucket(id)] += 1;
        }
        let mut end = 0;
        for slot in &mut buckets[..bucket_count] {
            end += *slot;
            *slot = end;
        }
        buckets[bucket_count] = end;
        let mut order = vec![0u32; objects.len()];
        for (at, &id) in objects.iter().enumerate().rev() {
            let slot = &mut buckets[bucket(id)];
            *slot -= 1;
            order[*slot as usize] = at as u32 + 1;
        }
        for b in 0..bucket_count {
            let range = buckets[b] as usize..buckets[b + 1] as usize;
            if range.len() > Self::SCANNED {
                // Stable: equal ids stay in file order, the first one is found.
                order[range].sort_by_key(|&ordinal| ids[ordinal as usize]);
            }
        }
        BucketIndex {
            shift,
            buckets,
            order,
        }
    }

    /// Buckets of at most this many ids are scanned; bigger ones are sorted and searched.
    const SCANNED: usize = 8;

    /// Memory taken per object: the permutation's 4 bytes and about 2 for the buckets.
    const BYTES_PER_OBJECT: u64 = 6;

    /// `offset`: the id minus the lowest id.
    #[inline(never)]
    fn lookup(&self, ids: &[u64], offset: u64, id: u64) -> Option<u32> {
        let bucket = usize::try_from(offset >> self.shift).ok()?;
        let lo = *self.buckets.get(bucket)? as usize;
        let hi = *self.buckets.get(bucket.checked_add(1)?)? as usize;
        let candidates = self.order.get(lo..hi)?;
        if candidates.len() <= Self::SCANNED {
            return candidates
                .iter()
                .copied()
                .find(|&ordinal| ids[ordinal as usize] == id);
        }
        let first = candidates.partition_point(|&ordinal| ids[ordinal as usize] < id);
        candidates
            .get(first)
            .copied()
            .filter(|&ordinal| ids[ordinal as usize] == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index built both ways (dense only when it takes at most 1 MiB per object).
    fn both(ids: &[u64]) -> [IdIndex; 2] {
        [
            IdIndex::with_dense_limit(ids.to_vec(), 1 << 20),
            IdIndex::with_dense_limit(ids.to_vec(), 0),
        ]
    }

    /// What a lookup must answer: the first object with the id.
    fn expected(ids: &[u64], id: u64) -> Option<u32> {
        (id != 0)
            .then(|| ids.iter().skip(1).position(|&x| x == id))
            .flatten()
            .map(|p| p as u32 + 1)
    }

    #[test]
    fn finds_every_id_and_nothing_else() {
        let ids = vec![0, 0x1000, 0x10, 0x2000_0000_0000, 0x18, 0x1008, 0x20];
        for index in both(&ids) {
            for (ordinal, &id) in ids.iter().enumerate().skip(1) {
                assert_eq!(index.lookup(Id(id)), Some(ordinal as u32), "id {id:#x}");
            }
            for missing in [0, 1, 0x11, 0x1004, 0x1fff_ffff_ffff, u64::MAX] {
                assert_eq!(index.lookup(Id(missing)), None, "id {missing:#x}");
            }
            assert_eq!(index.len(), ids.len());
            assert_eq!(index.into_id_column().iter().collect::<Vec<_>>(), ids);
        }
    }

    #[test]
    fn picks_the_dense_index_for_dense_ids_and_buckets_for_sparse_ones() {
        let dense: Vec<u64> = (0..1000u64).map(|i| 0x7000_0000 + i * 24).collect();
        let sparse: Vec<u64> = (0..1000u64).map(|i| (i << 20) + i * 8).collect();
        assert!(matches!(IdIndex::build(dense).lookup, Lookup::Dense(..)));
        assert!(matches!(IdIndex::build(sparse).lookup, Lookup::Buckets(..)));
    }

    #[test]
    fn distant_dense_areas_use_the_dense_index() {
        // ParallelGC after a full GC: the old generation at the start of a 6 GiB heap, what
        // stayed in the young generation 4 GiB further. A bitmap of the whole range would take
        // 670 bytes per object; the paged one takes 3.5 (mostly the page table, which a dump of
        // millions of objects spreads thinner).
        let mut ids = vec![0];
        ids.extend((0..100_000u64).map(|i| 0x6_8000_0000 + i * 24));
        ids.extend((0..100_000u64).map(|i| 0x7_8000_0000 + i * 32));
        let index = IdIndex::build(ids.clone());
        let Lookup::Dense(dense, _) = &index.lookup else {
            panic!("bucket index for two dense areas");
        };
        let bytes = dense.pages.len() * 4 + dense.words.len() * size_of::<Word>();
        assert!(
            bytes < 4 * ids.len(),
            "{bytes} bytes for {} objects",
            ids.len()
        );
        for (ordinal, &id) in ids.iter().enumerate().skip(1) {
            assert_eq!(index.lookup(Id(id)), Some(ordinal as u32), "id {id:#x}");
        }
        for missing in [0x6_8000_0008, 0x7_0000_0000, 0x7_8000_0000 + 100_000 * 32] {
            assert_eq!(index.lookup(Id(missing)), None, "id {missing:#x}");
        }
    }

    proptest::proptest! {
        #[test]
        fn finds_random_ids(
            raw in proptest::collection::vec(1u64..1 << 20, 1..400),
            crowd in proptest::collection::vec(0u64..64, 0..64),
            run in 0u64..300,
            probes in proptest::collection::vec(0u64..1 << 23, 0..50),
        ) {
            // Random addresses (duplicates included), a crowded cluster (buckets with more
            // than 8 ids) and an ascending run of 8-byte aligned ids (in-order words).
            let mut ids = vec![0];
            ids.extend(raw.iter().copied());
            ids.extend(crowd.iter().map(|c| (1 << 21) + c * 8));
            ids.extend((0..run).map(|i| (1 << 22) + i * 8));
            for index in both(&ids) {
                for &id in ids.iter().skip(1) {
                    proptest::prop_assert_eq!(index.lookup(Id(id)), expected(&ids, id));
                }
                for &probe in &probes {
                    proptest::prop_assert_eq!(
                        index.lookup(Id(probe)),
                        expected(&ids, probe)
                    );
                }
            }
        }

        #[test]
        fn finds_nearly_sorted_aligned_ids(
            count in 1usize..2000,
            align_shift in 0u32..5,
            swaps in proptest::collection::vec((0usize..2000, 0usize..2000), 0..20),
            gaps in proptest::collection::vec(0u64..5, 1..50),
            probes in proptest::collection::vec(0u64..40_000, 0..50),
        ) {
            // Objects in address order with gaps, a few moved out of order: most words are in
            // order, some are scattered.
            let align = 1u64 << align_shift;
            let mut ids = vec![0];
            let mut at = 0x1000u64;
            for i in 0..count {
                at += align * (1 + gaps[i % gaps.len()]);
                ids.push(at);
            }
            for (a, b) in swaps {
                let (a, b) = (1 + a % count, 1 + b % count);
                ids.swap(a, b);
            }
            for index in both(&ids) {
                for &id in ids.iter().skip(1) {
                    proptest::prop_assert_eq!(index.lookup(Id(id)), expected(&ids, id));
                }
                for &probe in &probes {
                    let probe = 0x1000 + probe;
                    proptest::prop_assert_eq!(
                        index.lookup(Id(probe)),
                        expected(&ids, probe)
                    );
                }
            }
        }
    }

    #[test]
    fn empty_index_finds_nothing() {
        let ids = vec![0];
        for index in both(&ids) {
            assert_eq!(index.lookup(Id(0)), None);
            assert_eq!(index.lookup(Id(8)), None);
        }
    }

    #[test]
    fn one_object_and_repeated_ids() {
        let ids = vec![0, 0x40];
        for index in both(&ids) {
            assert_eq!(index.lookup(Id(0x40)), Some(1));
            assert_eq!(index.lookup(Id(0x48)), None);
        }
        let ids = vec![0, 0x40, 0x40, 0x40];
        for index in both(&ids) {
            assert_eq!(index.lookup(Id(0x40)), Some(1));
        }
    }

    #[test]
    fn dense_runs_with_a_distant_cluster() {
        let mut ids = vec![0];
        ids.extend((0..5000u64).map(|i| 0x7f00_0000_0000 + i * 16));
        ids.extend((0..5000u64).map(|i| 0x1000 + i * 24));
        for index in both(&ids) {
            for (ordinal, &id) in ids.iter().enumerate().skip(1) {
                assert_eq!(index.lookup(Id(id)), Some(ordinal as u32));
            }
            assert_eq!(index.lookup(Id(0x1000 + 8)), None);
        }
    }
}
