//! MAT's garbage rule: objects no reference chain from a GC root reaches are discarded.
//!
//! A dump written without a full GC first (`jmap -dump:format=b`, `dumpHeap(file, false)`)
//! holds garbage. Eclipse MAT removes it while parsing and reports only how much there was; the
//! graph keeps the nodes (ordinals stay dense) but their outgoing edges stop retaining anything,
//! so garbage cannot change a live object's dominator, and [`Unreachable::contains`] lets the
//! analyses leave it out of totals, histograms and suspects.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

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

impl Unreachable {
    /// Discards the nodes `bits` holds (one per ordinal, as [`unreachable_bits`] returns them):
    /// makes their outgoing edges non-essential, and counts them and their shallow sizes.
    pub fn discard(graph: &mut HeapGraph, bits: Vec<u64>) -> Unreachable {
        let mut garbage = Unreachable {
            bits,
            objects: 0,
            shallow_bytes: 0,
        };
        // Only the set bits (live dumps have little or no garbage).
        for at in 0..garbage.bits.len() {
            let mut word = garbage.bits[at];
            while word != 0 {
                let node = NodeIndex((at * 64) as u32 + word.trailing_zeros());
                word &= word - 1;
                garbage.objects += 1;
                garbage.shallow_bytes = garbage.shallow_bytes.saturating_add(graph.self_size(node));
                for edge in graph.edges(node) {
                    graph.set_essential(edge, false);
                }
            }
        }
        garbage
    }
}

/// The nodes neither the root nor a class object reaches over any edge, one bit per ordinal
/// (bit `i % 64` of word `i / 64`; none past the last node), found on every core. A dump
/// without any GC root (the root has no edges) has none: nothing would survive.
pub fn unreachable_bits(graph: &HeapGraph) -> Vec<u64> {
    let n = graph.node_count();
    let root = graph.root();
    if graph.out_degree(root) == 0 {
        return Vec::new();
    }
    let starts: Vec<u32> = graph
        .nodes()
        .filter(|&node| node == root || graph.kind(node) == NodeKind::Class)
        .map(|node| node.0)
        .collect();
    let mut bits = reach(graph, &starts, crate::workers(), SWEEPS, SHARE_AT);
    // Invert the reached bits into the unreachable set (bits past `n` stay clear).
    for (i, word) in bits.iter_mut().enumerate() {
        let valid = (n - i * 64).min(64);
        let mask = if valid == 64 {
            u64::MAX
        } else {
            (1u64 << valid) - 1
        };
        *word = !*word & mask;
    }
    bits
}

/// Passes over the nodes before what is left goes to a depth-first search.
const SWEEPS: usize = 16;

/// A worker's stack is split when it holds this many nodes and another worker is idle.
const SHARE_AT: usize = 4096;

/// The nodes reachable from `starts` over every edge, as bits: up to `sweeps` passes over the
/// nodes, then (if the marks still change) a depth-first search on `workers` threads.
fn reach(
    graph: &HeapGraph,
    starts: &[u32],
    workers: usize,
    sweeps: usize,
    share_at: usize,
) -> Vec<u64> {
    let (marked, unvisited) = sweep(graph, starts, sweeps);
    if unvisited.is_empty() {
        return marked;
    }
    search(graph, marked, &unvisited, workers, share_at)
}

/// Marks `starts` and what up to `sweeps` passes over the nodes reach from them, each pass
/// following the edges of every marked node not visited yet, in ordinal order (the odd passes
/// backwards). The node and edge columns are then read front to back (or back to front), not
/// at random as in a search, and a reference points mostly ahead of the pass in one of the two
/// directions (HotSpot dumps objects in address order: lists built by prepending point
/// backwards, arrays filled after they were made point forwards), so that a few passes mark
/// everything. Returns the marks and the marked nodes not visited yet (none when a pass
/// visited nothing, i.e. the marks are complete).
fn sweep(graph: &HeapGraph, starts: &[u32], sweeps: usize) -> (Vec<u64>, Vec<u32>) {
    let words = graph.node_count().div_ceil(64);
    let mut marked = vec![0u64; words];
    let mut visited = vec![0u64; words];
    for &start in starts {
        marked[start as usize / 64] |= 1 << (start % 64);
    }
    let first_edge = graph.first_edges();
    let targets = graph.edge_targets();
    for pass in 0..sweeps {
        let forwards = pass % 2 == 0;
        let mut any = false;
        for step in 0..words {
            let word = if forwards { step } else { words - 1 - step };
            loop {
                // Re-read: the node's own edges may mark nodes of the same word.
                let todo = marked[word] & !visited[word];
                if todo == 0 {
                    break;
                }
                let bit = if forwards {
                    todo.trailing_zeros()
                } else {
                    63 - todo.leading_zeros()
                };
                visited[word] |= 1 << bit;
                any = true;
                let node = word * 64 + bit as usize;
                for &to in &targets[first_edge[node] as usize..first_edge[node + 1] as usize] {
                    marked[to as usize / 64] |= 1 << (to % 64);
                }
            }
        }
        if !any {
            return (marked, Vec::new());
        }
    }
    let mut unvisited = Vec::new();
    for (word, (&marks, &seen)) in marked.iter().zip(&visited).enumerate() {
        let mut todo = marks & !seen;
        while todo != 0 {
            unvisited.push((word * 64) as u32 + todo.trailing_zeros());
            todo &= todo - 1;
        }
    }
    (marked, unvisited)
}

/// Nodes waiting to be searched that a busy worker gave away, and how many workers wait.
struct Pool {
    stacks: Vec<Vec<u32>>,
    idle: usize,
    done: bool,
}

/// Completes the `marked` bits with what the marked nodes `from` reach, by a depth-first
/// search on `workers` threads sharing one atomic bitset: whoever sets a node's bit searches
/// from it, and a worker whose stack grows past `share_at` while another one is idle gives it
/// half.
fn search(
    graph: &HeapGraph,
    marked: Vec<u64>,
    from: &[u32],
    workers: usize,
    share_at: usize,
) -> Vec<u64> {
    let bits: Vec<AtomicU64> = marked.into_iter().map(AtomicU64::new).collect();
    let mark = |node: u32| -> bool {
        let (word, bit) = (&bits[node as usize / 64], 1u64 << (node % 64));
        // A plain load first: most targets (class objects, shared objects) are already marked.
        word.load(Ordering::Relaxed) & bit == 0 && word.fetch_or(bit, Ordering::Relaxed) & bit == 0
    };
    let workers = workers.max(1);
    let mut stacks: Vec<Vec<u32>> = vec![Vec::new(); workers];
    for (at, &node) in from.iter().enumerate() {
        stacks[at % workers].push(node);
    }
    let pool = Mutex::new(Pool {
        stacks: Vec::new(),
        idle: 0,
        done: false,
    });
    let idle = AtomicUsize::new(0);
    let wake = Condvar::new();
    let first_edge = graph.first_edges();
    let targets = graph.edge_targets();
    let search = |mut stack: Vec<u32>| {
        loop {
            while let Some(node) = stack.pop() {
                let edges =
                    first_edge[node as usize] as usize..first_edge[node as usize + 1] as usize;
                for &to in &targets[edges] {
                    if mark(to) {
                        stack.push(to);
                    }
                }
                if stack.len() >= share_at && idle.load(Ordering::Relaxed) > 0 {
                    let half = stack.split_off(stack.len() / 2);
                    let mut shared = pool.lock().unwrap_or_else(PoisonError::into_inner);
                    shared.stacks.push(half);
                    wake.notify_one();
                }
            }
            let mut shared = pool.lock().unwrap_or_else(PoisonError::into_inner);
            shared.idle += 1;
            idle.fetch_add(1, Ordering::Relaxed);
            loop {
                if let Some(more) = shared.stacks.pop() {
                    shared.idle -= 1;
                    idle.fetch_sub(1, Ordering::Relaxed);
                    stack = more;
                    break;
                }
                if shared.done || shared.idle == workers {
                    shared.done = true;
                    wake.notify_all();
                    return;
                }
                shared = wake.wait(shared).unwrap_or_else(PoisonError::into_inner);
            }
        }
    };
    let mut stacks = stacks.into_iter();
    let first = stacks.next().unwrap_or_default();
    std::thread::scope(|scope| {
        for stack in stacks {
            scope.spawn(|| search(stack));
        }
        search(first);
    });
    bits.into_iter().map(AtomicU64::into_inner).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use leaksift_heap::{
        ClassInfo, EdgeData, EdgeKind, EdgeName, GraphBuilder, HeapFormat, NodeData, NodeFlags,
        ObjectId, StringTable,
    };
    use proptest::prelude::*;

    fn graph(n: usize, edges: &[(u32, u32)]) -> HeapGraph {
        let mut b = GraphBuilder::new(HeapFormat::Hprof, StringTable::new(), n, edges.len());
        let name = b.strings_mut().intern("N").unwrap();
        let class = b.intern_class(ClassInfo::named(name)).unwrap();
        for i in 0..n {
            b.add_node(NodeData {
                id: ObjectId(i as u64),
                class,
                name,
                self_size: 8,
                kind: NodeKind::Instance,
                flags: NodeFlags::default(),
            })
            .unwrap();
        }
        for &(from, to) in edges {
            b.add_edge(
                NodeIndex(from),
                EdgeData {
                    to: NodeIndex(to),
                    kind: EdgeKind::Field,
                    name: EdgeName::Named(name),
                    essential: true,
                },
            );
        }
        b.finish().unwrap()
    }

    proptest! {
        #[test]
        fn sweeps_and_parallel_search_reach_what_a_plain_search_does(
            n in 1usize..300,
            raw in proptest::collection::vec((0u32..300, 0u32..300), 0..900),
            starts in proptest::collection::vec(0u32..300, 1..4),
            workers in 1usize..5,
            sweeps in 0usize..4,
            share_at in 1usize..4,
        ) {
            let edges: Vec<(u32, u32)> =
                raw.iter().map(|&(a, b)| (a % n as u32, b % n as u32)).collect();
            let starts: Vec<u32> = starts.iter().map(|s| s % n as u32).collect();
            let g = graph(n, &edges);
            let got = reach(&g, &starts, workers, sweeps, share_at);
            let mut seen = vec![false; n];
            let mut stack = starts.clone();
            for &s in &starts {
                seen[s as usize] = true;
            }
            while let Some(v) = stack.pop() {
                for &(a, b) in &edges {
                    if a == v && !seen[b as usize] {
                        seen[b as usize] = true;
                        stack.push(b);
                    }
                }
            }
            for (v, want) in seen.iter().enumerate() {
                prop_assert_eq!(got[v / 64] & (1 << (v % 64)) != 0, *want, "node {}", v);
            }
        }
    }
}
