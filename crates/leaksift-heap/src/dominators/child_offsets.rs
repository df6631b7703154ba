//! Where each node's children start in the dominator tree's child list, in 1.25 bytes per
//! node instead of a 4-byte offset: a start per block of nodes, a byte per node above it.

use std::ops::Range;

use rayon::prelude::*;
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
    /// The boundaries of consecutive ranges that end at `ends` (a running sum of their
    /// lengths, below 2^32), built on every core: each block needs only its first start.
    pub(super) fn from_ends(ends: &[u32]) -> ChildOffsets {
        let positions = ends.len() + 1;
        let blocks = positions.div_ceil(BLOCK);
        let start = |position: usize| position.checked_sub(1).map_or(0, |p| ends[p]);
        let base: Vec<u32> = (0..blocks)
            .into_par_iter()
            .map(|block| start(block * BLOCK))
            .collect();
        // A block is wide when its last start is too far above its first for a byte.
        let block_end = |block: usize| positions.min(block * BLOCK + BLOCK);
        let wide_block = |block: usize| start(block_end(block) - 1) - base[block] > 255;
        let mut within = vec![0u8; positions];
        within
            .par_chunks_mut(BLOCK)
            .zip(&base)
            .enumerate()
            .for_each(|(block, (bytes, &first))| {
                for (i, byte) in bytes.iter_mut().enumerate() {
                    let above = start(block * BLOCK + i) - first;
                    *byte = above.min(u32::from(u8::MAX)) as u8;
                }
            });
        // Wide blocks are rare: only the words of bits that have one are written, so the
        // others' pages are never touched.
        let wide_words: Vec<(usize, u64)> = (0..blocks.div_ceil(64))
            .into_par_iter()
            .filter_map(|word| {
                let bits = (0..64)
                    .filter(|bit| word * 64 + bit < blocks && wide_block(word * 64 + bit))
                    .fold(0u64, |bits, bit| bits | 1 << bit);
                (bits != 0).then_some((word, bits))
            })
            .collect();
        let mut is_wide = vec![0u64; blocks.div_ceil(64)];
        let mut wide = FxHashMap::default();
        for (word, bits) in wide_words {
            is_wide[word] = bits;
            for block in (0..64).filter(|bit| bits & (1 << bit) != 0) {
                let block = word * 64 + block;
                for position in block * BLOCK..block_end(block) {
                    wide.insert(position as u32, start(position));
                }
            }
        }
        ChildOffsets {
            base,
            within,
            is_wide,
            wide,
        }
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
        let ends: Vec<u32> = lengths
            .iter()
            .scan(0, |end, l| {
                *end += l;
                Some(*end)
            })
            .collect();
        let offsets = ChildOffsets::from_ends(&ends);
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
