//! Distances (edge counts) and shortest-path parents from the root over essential edges, by
//! iterative BFS.

use crate::graph::{EdgeKind, HeapGraph, NodeIndex};

/// Distance or parent of a node not reachable from the root.
pub const UNREACHABLE: u32 = u32::MAX;

/// Shortest-path parents of a BFS from the root, one per node, [`UNREACHABLE`] when unreached.
/// Stored as `parent + 1`, so that unreached is 0: the column is allocated zeroed, and a search
/// that stops early ([`bfs_parents`] with targets) only makes the pages it writes resident.
#[derive(Debug)]
pub struct BfsParents(Vec<u32>);

impl BfsParents {
    /// Every one of `n` nodes unreached.
    pub fn unreached(n: usize) -> BfsParents {
        BfsParents(vec![0; n])
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parent of `node` ([`UNREACHABLE`] when unreached or out of range).
    #[inline]
    pub fn get(&self, node: usize) -> u32 {
        self.0.get(node).map_or(UNREACHABLE, |p| p.wrapping_sub(1))
    }

    /// Sets the parent of `node` (node ordinals are below `u32::MAX - 1`, so `parent + 1`
    /// never collides with a marker).
    #[inline]
    pub fn set(&mut self, node: usize, parent: u32) {
        self.0[node] = parent.wrapping_add(1);
    }
}

/// BFS distance of every node from the root over essential edges, never entering the nodes in
/// `cut` (DevTools' "ignore this retainer"). Unreached nodes get [`UNREACHABLE`].
pub fn distances_from_root(graph: &HeapGraph, cut: &[NodeIndex]) -> Vec<u32> {
    let parents = bfs_parents(graph, cut, None);
    let mut distance = vec![UNREACHABLE; parents.len()];
    // BFS order is not kept, so resolve each node's depth through its parent chain, memoized.
    let root = graph.root().0;
    distance[root as usize] = 0;
    let mut chain: Vec<u32> = Vec::new();
    for start in 0..parents.len() as u32 {
        let mut node = start;
        while distance[node as usize] == UNREACHABLE && parents.get(node as usize) != UNREACHABLE {
            chain.push(node);
            node = parents.get(node as usize);
        }
        let mut d = distance[node as usize];
        if d == UNREACHABLE {
            chain.clear();
            continue;
        }
        while let Some(n) = chain.pop() {
            d += 1;
            distance[n as usize] = d;
        }
    }
    distance
}

/// BFS from the root over essential edges: for every reached node the node it was first reached
/// from (the root is its own parent), [`UNREACHABLE`] otherwise. Nodes in `cut` are never
/// entered. With `targets`, the search stops once all of them are reached.
pub fn bfs_parents(
    graph: &HeapGraph,
    cut: &[NodeIndex],
    targets: Option<&[NodeIndex]>,
) -> BfsParents {
    let n = graph.node_count();
    let first_edge = graph.first_edges();
    let edge_targets = graph.edge_targets();
    let kinds = graph.edge_kind_bytes();
    let root = graph.root().0;
    let mut parent = BfsParents::unreached(n);
    // Cut nodes are pre-marked so they are never entered (reset below).
    for c in cut {
        if c.0 != root {
            parent.set(c.get(), UNREACHABLE - 1);
        }
    }
    // Looked up once per reached node: a linear scan over thousands of targets (a class
    // suspect's instances) made the search quadratic.
    let targets = targets
        .map(|t| SortedNodes::new(t.iter().filter(|t| !cut.contains(t)).map(|t| t.0).collect()));
    let is_target = |node: u32| targets.as_ref().is_some_and(|t| t.contains(node));
    let mut missing = targets.as_ref().map_or(usize::MAX, SortedNodes::len);
    if is_target(root) {
        missing = missing.saturating_sub(1);
    }
    let mut queue: Vec<u32> = Vec::with_capacity(1024);
    parent.set(root as usize, root);
    queue.push(root);
    let mut head = 0;
    'search: while head < queue.len() && missing > 0 {
        let v = queue[head] as usize;
        head += 1;
        for edge in first_edge[v]..first_edge[v + 1] {
            let e = edge as usize;
            if kinds[e] & EdgeKind::ESSENTIAL_BIT == 0 {
                continue;
            }
            let w = edge_targets[e];
            if parent.get(w as usize) != UNREACHABLE {
                continue;
            }
            parent.set(w as usize, v as u32);
            queue.push(w);
            if is_target(w) {
                missing -= 1;
                if missing == 0 {
                    break 'search;
                }
            }
        }
    }
    for c in cut {
        if c.0 != root {
            parent.set(c.get(), UNREACHABLE);
        }
    }
    parent
}

/// Distinct node ordinals, sorted, for membership tests in O(log n).
pub(crate) struct SortedNodes(Vec<u32>);

impl SortedNodes {
    pub(crate) fn new(mut nodes: Vec<u32>) -> SortedNodes {
        nodes.sort_unstable();
        nodes.dedup();
        SortedNodes(nodes)
    }

    /// Number of distinct nodes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn contains(&self, node: u32) -> bool {
        self.0.binary_search(&node).is_ok()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
}
