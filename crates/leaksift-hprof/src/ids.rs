//! Object id → dense ordinal: a sorted permutation of the ordinals plus a bucket index by address.
//!
//! HPROF ids are addresses. Instead of a hash map of tens of millions of entries, the ordinals
//! are sorted by id (a stable merge sort: dumps list objects in long ascending address runs, so
//! the sort mostly merges runs), and a table of bucket starts over the address range narrows a
//! lookup to a handful of candidates. Cost: 4 bytes per object for the permutation and about
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
    /// Ordinals (≥ 1) sorted by id.
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
    /// Builds the index over `ids[1..]` (`ids[0]` is the root).
    pub fn build(ids: &[u64]) -> IdIndex {
        let mut order: Vec<u32> = (1..ids.len() as u32).collect();
        order.sort_by_key(|&ordinal| ids[ordinal as usize]);
        let (Some(&first), Some(&last)) = (order.first(), order.last()) else {
            return IdIndex::default();
        };
        let (min, max) = (ids[first as usize], ids[last as usize]);
        let span = max - min;
        let target_buckets = (order.len() as u64 / 2).max(1);
        let mut shift = 0;
        while shift < 63 && (span >> shift) >= target_buckets {
            shift += 1;
        }
        let bucket_count = (span >> shift) as usize + 1;
        let mut buckets = Vec::with_capacity(bucket_count + 1);
        for (position, &ordinal) in order.iter().enumerate() {
            let bucket = ((ids[ordinal as usize] - min) >> shift) as usize;
            while buckets.len() <= bucket {
                buckets.push(position as u32);
            }
        }
        while buckets.len() <= bucket_count {
            buckets.push(order.len() as u32);
        }
        IdIndex {
            min,
            max,
            shift,
            buckets,
            order,
        }
    }

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
        if candidates.len() <= 8 {
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
