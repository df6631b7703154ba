//! MAT's garbage rule: objects no reference chain from a GC root reaches are discarded.
//!
//! A dump written without a full GC first (`jmap -dump:format=b`, `dumpHeap(file, false)`)
//! holds garbage. Eclipse MAT removes it while parsing and reports only how much there was; the
//! graph keeps the nodes (ordinals stay dense) but their outgoing edges stop retaining anything,
//! so garbage cannot change a live object's dominator, and [`Unreachable::contains`] lets the
//! analyses leave it out of totals, histograms and suspects.

use leaksift_heap::{HeapGraph, NodeIndex, NodeKind};

/// The objects of a dump that no GC root reaches, over any reference (weak ones included, as
/// MAT's garbage cleaner follows every outbound reference). Class objects are never garbage: a
/// CLASS DUMP record is a loaded class (HotSpot gives only the bootstrap loader's instance
/// classes a root, not array classes nor classes its loaders keep outside the Java heap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unreachable {
    /// One bit per node ordinal, set for unreachable nodes.
    bits: Vec<u64>,
    /// How many objects are unreachable.
    pub objects: u64,
    /// Their shallow sizes added up.
    pub shallow_bytes: u64,
}

impl Unreachable {
    /// Whether `node` is garbage.
    #[inline]
    pub fn contains(&self, node: NodeIndex) -> bool {
        self.bits
            .get(node.get() / 64)
            .is_some_and(|word| word & (1 << (node.get() % 64)) != 0)
    }
}

/// Marks every node neither the root nor a class object reaches and makes its outgoing edges
/// non-essential. A dump without any GC root (the root has no edges) is left as it is: nothing
/// would survive.
pub fn discard_unreachable(graph: &mut HeapGraph) -> Unreachable {
    let n = graph.node_count();
    let root = graph.root();
    if graph.out_degree(root) == 0 {
        return Unreachable::default();
    }
    // Reached bits, then a depth-first search over every edge kind (a stack stays far smaller
    // than a BFS queue, and its top stays in cache).
    let mut reached = vec![0u64; n.div_ceil(64)];
    let mark = |bits: &mut [u64], node: u32| -> bool {
        let (word, bit) = (node as usize / 64, 1u64 << (node % 64));
        let fresh = bits[word] & bit == 0;
        bits[word] |= bit;
        fresh
    };
    let first_edge = graph.first_edges();
    let targets = graph.edge_targets();
    let mut stack: Vec<u32> = Vec::new();
    for node in graph.nodes() {
        if (node == root || graph.kind(node) == NodeKind::Class) && mark(&mut reached, node.0) {
            stack.push(node.0);
        }
    }
    while let Some(node) = stack.pop() {
        let edges = first_edge[node as usize] as usize..first_edge[node as usize + 1] as usize;
        for &to in &targets[edges] {
            if mark(&mut reached, to) {
                stack.push(to);
            }
        }
    }
    drop(stack);
    // Invert the reached bits into the unreachable set (bits past `n` stay clear).
    let mut bits = reached;
    for (i, word) in bits.iter_mut().enumerate() {
        let valid = (n - i * 64).min(64);
        let mask = if valid == 64 {
            u64::MAX
        } else {
            (1u64 << valid) - 1
        };
        *word = !*word & mask;
    }
    let mut garbage = Unreachable {
        bits,
        objects: 0,
        shallow_bytes: 0,
    };
    for node in graph.nodes() {
        if !garbage.contains(node) {
            continue;
        }
        garbage.objects += 1;
        garbage.shallow_bytes = garbage.shallow_bytes.saturating_add(graph.self_size(node));
        for edge in graph.edges(node) {
            graph.set_essential(edge, false);
        }
    }
    garbage
}
