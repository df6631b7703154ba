//! Where each node's children start in the dominator tree's child list, in 1.25 bytes per
//! node instead of a 4-byte offset: a start per block of nodes, a byte per node above it.

use std::ops::Range;

use rustc_hash::FxHashMap;

/// Nodes per block.
const BLOCK: usize = 16;

/// The boundaries of consecutive ranges (one per node, in node order) in a list. A node's
/// range starts at its block's start plus its byte; a block whose ranges before its last node
/// hold more than 255 entries (a node with many children) keeps its nodes' starts in a map.
#[derive(Debug)]
pub(super) struct ChildOffsets {
    /// Per block of `BLOCK` positions (nodes, then one past the last), the first one's start.
    base: Vec<u32>,
    /// Per position, its start less its block's.
    within: Vec<u8>,
    /// Per block, whether its starts are in `wide` instead (one bit each).
    is_wide: Vec<u64>,
    /// The starts of the positions in wide blocks.
    wide: FxHashMap<u32, u32>,
}

impl ChildOffsets {
    /// The boundaries of ranges with the given lengths (which sum to less than 2^32).
    pub(super) fn from_lengths(lengths: impl ExactSizeIterator<Item = u32>) -> ChildOffsets {
        let positions = lengths.len() + 1;
        let blocks = positions.div_ceil(BLOCK);
        let mut offsets = ChildOffsets {
            base: Vec::with_capacity(blocks),
            within: Vec::with_capacity(positions),
            is_wide: vec![0; blocks.div_ceil(64)],
            wide: FxHashMap::default(),
        };
        let mut start = 0u32;
        let mut lengths = lengths.map(Some).chain([None]);
        for block in 0..blocks {
            let base = start;
            offsets.base.push(base);
            let first = block * BLOCK;
            for position in first..positions.min(first + BLOCK) {
                let above = start - base;
                if above > u32::from(u8::MAX)
                    && offsets.is_wide[block / 64] & (1 << (block % 64)) == 0
                {
                    // Too far for a byte: the whole block goes to the map.
                    offsets.is_wide[block / 64] |= 1 << (block % 64);
                    for (i, &byte) in offsets.within[first..position].iter().enumerate() {
                        offsets
                            .wide
                            .insert((first + i) as u32, base + u32::from(byte));
                    }
                }
                if offsets.is_wide[block / 64] & (1 << (block % 64)) != 0 {
                    offsets.wide.insert(position as u32, start);
                }
                offsets.within.push(above.min(u32::from(u8::MAX)) as u8);
                if let Some(Some(length)) = lengths.next() {
                    start += length;
                }
            }
        }
        offsets
    }

    /// Where the range at `position` (a node, or the node count for the end) starts.
    #[inline]
    fn start(&self, position: usize) -> usize {
        let block = position / BLOCK;
        if self.is_wide[block / 64] & (1 << (block % 64)) != 0 {
            return self.wide[&(position as u32)] as usize;
        }
        self.base[block] as usize + usize::from(self.within[position])
    }

    /// The range of node `node` (below the node count).
    #[inline]
    pub(super) fn range(&self, node: usize) -> Range<usize> {
        self.start(node)..self.start(node + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ranges(lengths: &[u32]) -> Vec<Range<usize>> {
        let mut start = 0;
        lengths
            .iter()
            .map(|&l| {
                start += l as usize;
                start - l as usize..start
            })
            .collect()
    }

    fn check(lengths: &[u32]) {
        let offsets = ChildOffsets::from_lengths(lengths.iter().copied());
        for (node, want) in ranges(lengths).into_iter().enumerate() {
            assert_eq!(offsets.range(node), want, "node {node} of {lengths:?}");
        }
    }

    #[test]
    fn long_ranges_empty_ranges_and_block_edges() {
        check(&[0]);
        check(&[5]);
        check(&[0, 0, 0, 1]);
        // Blocks just within a byte, and just past it.
        check(&[255, 0, 0]);
        check(&[255, 1, 0]);
        check(&[0; 15].into_iter().chain([300]).collect::<Vec<_>>());
        // One node with many children (the root), then a long stretch of leaves, and wide
        // blocks in the middle and at the end.
        let mut lengths = vec![3000, 0, 64, 63, 65, 1];
        lengths.extend(std::iter::repeat_n(0, 1000));
        lengths.extend((0..2000).map(|i| i % 3));
        lengths.push(130);
        check(&lengths);
    }

    proptest! {
        #[test]
        fn ranges_match_prefix_sums(
            lengths in proptest::collection::vec(
                prop_oneof![8 => 0u32..3, 1 => 0u32..200, 1 => Just(0u32)],
                1..1500,
            ),
        ) {
            check(&lengths);
        }
    }
}
