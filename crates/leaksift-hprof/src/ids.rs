//! Object id → dense ordinal: a sorted permutation of the ordinals plus a bucket index by address.
//!
//! HPROF ids are addresses. Instead of a hash map of tens of millions of entries, the ordinals
//! are grouped by address bucket (a counting sort; ids inside the rare crowded buckets are
//! sorted), and a table of bucket starts over the address range narrows a lookup to a handful
//! of candidates. Cost: 4 bytes per object for the permutation and about
//! 2 bytes per object for the buckets; the ids themselves are the graph's id column.

use crate::bytes::Id;

/// Maps object ids to ordinals. Ordinal 0 (the synthetic root) and id 0 (null) never match.
#[derive(Debug)]
pub struct IdIndex {
    min: u64,
    max: u64,
    shift: u32,
    /// `buckets[b]..buckets[b + 1]` is the range of `order` holding ids of bucket `b`.
    buckets: Vec<u32>,
    /// Ordinals (≥ 1) by bucket; by id within buckets of more than [`IdIndex::SCANNED`].
    order: Vec<u32>,
}

impl Default for IdIndex {
    /// The index of no objects.
    fn default() -> Self {
        IdIndex {
            min: 1,
            max: 0,
            shift: 0,
            buckets: vec![0, 0],
            order: Vec::new(),
        }
    }
}

impl IdIndex {
    /// Builds the index over `ids[1..]` (`ids[0]` is the root): a counting sort of the
    /// ordinals by bucket (three sequential passes, as dumps list objects in nearly ascending
    /// address order), then a sort by id inside the rare buckets of more than
    /// [`IdIndex::SCANNED`] ids.
    pub fn build(ids: &[u64]) -> IdIndex {
        let objects = ids.get(1..).unwrap_or_default();
        let (Some(&min), Some(&max)) = (objects.iter().min(), objects.iter().max()) else {
            return IdIndex::default();
        };
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
                order[range].sort_by_key(|&ordinal| ids[ordinal as usize]);
            }
        }
        IdIndex {
            min,
            max,
            shift,
            buckets,
            order,
        }
    }

    /// Buckets of at most this many ids are scanned; bigger ones are sorted and searched.
    const SCANNED: usize = 8;

    /// The ordinal of the object with this id, if the dump contains it.
    #[inline]
    pub fn lookup(&self, ids: &[u64], Id(id): Id) -> Option<u32> {
        if id < self.min || id > self.max || id == 0 {
            return None;
        }
        let bucket = ((id - self.min) >> self.shift) as usize;
        let lo = *self.buckets.get(bucket)? as usize;
        let hi = *self.buckets.get(bucket + 1)? as usize;
        let candidates = self.order.get(lo..hi)?;
        if candidates.len() <= Self::SCANNED {
            return candidates
                .iter()
                .copied()
                .find(|&ordinal| ids[ordinal as usize] == id);
        }
        candidates
            .binary_search_by_key(&id, |&ordinal| ids[ordinal as usize])
            .ok()
            .map(|position| candidates[position])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_id_and_nothing_else() {
        let ids = vec![0, 0x1000, 0x10, 0x2000_0000_0000, 0x18, 0x1008, 0x20];
        let index = IdIndex::build(&ids);
        for (ordinal, &id) in ids.iter().enumerate().skip(1) {
            assert_eq!(
                index.lookup(&ids, Id(id)),
                Some(ordinal as u32),
                "id {id:#x}"
            );
        }
        for missing in [0, 1, 0x11, 0x1004, 0x1fff_ffff_ffff, u64::MAX] {
            assert_eq!(index.lookup(&ids, Id(missing)), None, "id {missing:#x}");
        }
    }

    proptest::proptest! {
        #[test]
        fn finds_random_ids(
            raw in proptest::collection::hash_set(1u64..1 << 40, 1..400),
            crowd in proptest::collection::hash_set(0u64..64, 0..64),
            probes in proptest::collection::vec(0u64..1 << 40, 0..50),
        ) {
            // Random addresses plus a crowded cluster (buckets with more than 8 ids).
            let mut ids = vec![0];
            ids.extend(raw.iter().copied());
            ids.extend(crowd.iter().map(|c| (1 << 41) + c * 8));
            let index = IdIndex::build(&ids);
            for (ordinal, &id) in ids.iter().enumerate().skip(1) {
                proptest::prop_assert_eq!(index.lookup(&ids, Id(id)), Some(ordinal as u32));
            }
            for probe in probes {
                let want = ids.iter().skip(1).position(|&id| id == probe).map(|p| p as u32 + 1);
                proptest::prop_assert_eq!(index.lookup(&ids, Id(probe)), want);
            }
        }
    }

    #[test]
    fn empty_index_finds_nothing() {
        let ids = vec![0];
        let index = IdIndex::build(&ids);
        assert_eq!(index.lookup(&ids, Id(0)), None);
        assert_eq!(index.lookup(&ids, Id(8)), None);
    }

    #[test]
    fn dense_runs_with_a_distant_cluster() {
        let mut ids = vec![0];
        ids.extend((0..5000u64).map(|i| 0x7f00_0000_0000 + i * 16));
        ids.extend((0..5000u64).map(|i| 0x1000 + i * 24));
        let index = IdIndex::build(&ids);
        for (ordinal, &id) in ids.iter().enumerate().skip(1) {
            assert_eq!(index.lookup(&ids, Id(id)), Some(ordinal as u32));
        }
        assert_eq!(index.lookup(&ids, Id(0x1000 + 8)), None);
    }
}
