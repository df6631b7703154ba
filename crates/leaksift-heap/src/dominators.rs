//! Dominator tree and retained sizes over the essential edges (iterative Lengauer–Tarjan).
//!
//! The algorithm is the "simple" Lengauer–Tarjan (path compression, O(E log V)) with an
//! explicit-stack DFS and an explicit-stack `compress`, so there is no recursion at any depth.
//! All arrays are flat `u32` columns; after the DFS they are indexed by DFS number (1-based,
//! 0 = none), so a vertex's tree ancestors and its retainers' numbers lie close in memory.
//!
//! Nodes the DFS from the root does not reach are handled the way DevTools handles them, so the
//! numbers match its Summary view: first every unreached node without any essential retainer
//! (e.g. reachable only through weak edges) becomes a child of the root and is searched from;
//! then every node still unreached (cycles retained only by each other) is attached to the root
//! on its own. Such nodes are reported in [`Dominators::unreachable_count`].

use rayon::prelude::*;

use crate::graph::{EdgeKind, HeapGraph, NodeIndex};

/// The immediate dominator of every node, the DFS order, and retained sizes.
#[derive(Debug)]
pub struct Dominators {
    /// Immediate dominator ordinal per node; the root dominates itself.
    idom: Vec<u32>,
    /// Node ordinals in DFS preorder; a node's dominator always comes before it.
    preorder: Vec<u32>,
    /// Retained size per node: its self size plus that of every node it dominates.
    retained: Vec<u64>,
    /// Children of each node in the dominator tree (CSR over `dominated`).
    first_dominated: Vec<u32>,
    dominated: Vec<u32>,
    root: NodeIndex,
    unreachable: u32,
}

impl Dominators {
    /// Computes the dominator tree of `graph` from its root over essential edges, and retained sizes.
    pub fn compute(graph: &HeapGraph) -> Dominators {
        let LtResult {
            idom,
            preorder,
            unreachable,
            spare: [spare_first, spare_dominated],
        } = lengauer_tarjan(graph);
        let self_sizes = graph.self_sizes();
        let mut retained = self_sizes.to_vec();
        for &node in preorder.iter().skip(1).rev() {
            let dominator = idom[node as usize] as usize;
            retained[dominator] = retained[dominator].saturating_add(retained[node as usize]);
        }
        let (first_dominated, dominated) =
            dominated_csr(&idom, graph.root(), spare_first, spare_dominated);
        Dominators {
            idom,
            preorder,
            retained,
            first_dominated,
            dominated,
            root: graph.root(),
            unreachable,
        }
    }

    /// The root of the tree (the graph's root).
    pub fn root(&self) -> NodeIndex {
        self.root
    }

    /// The immediate dominator of `node` (the root for the root itself).
    #[inline]
    pub fn idom(&self, node: NodeIndex) -> NodeIndex {
        NodeIndex(self.idom[node.get()])
    }

    /// The retained size of `node`.
    #[inline]
    pub fn retained(&self, node: NodeIndex) -> u64 {
        self.retained[node.get()]
    }

    /// Retained sizes of all nodes, indexed by ordinal.
    pub fn retained_sizes(&self) -> &[u64] {
        &self.retained
    }

    /// Nodes in DFS preorder from the root (every node appears once).
    pub fn preorder(&self) -> &[u32] {
        &self.preorder
    }

    /// The nodes `node` immediately dominates.
    pub fn dominated(&self, node: NodeIndex) -> impl ExactSizeIterator<Item = NodeIndex> + '_ {
        let from = self.first_dominated[node.get()] as usize;
        let to = self.first_dominated[node.get() + 1] as usize;
        self.dominated[from..to].iter().map(|n| NodeIndex(*n))
    }

    /// The ordinals of the nodes `node` immediately dominates, as a slice.
    pub fn dominated_ordinals(&self, node: NodeIndex) -> &[u32] {
        let from = self.first_dominated[node.get()] as usize;
        let to = self.first_dominated[node.get() + 1] as usize;
        &self.dominated[from..to]
    }

    /// How many nodes were not reachable from the root over essential edges.
    pub fn unreachable_count(&self) -> u32 {
        self.unreachable
    }

    /// Whether `ancestor` dominates `node` (every node dominates itself).
    pub fn dominates(&self, ancestor: NodeIndex, node: NodeIndex) -> bool {
        let mut current = node;
        loop {
            if current == ancestor {
                return true;
            }
            let up = self.idom(current);
            if up == current {
                return false;
            }
            current = up;
        }
    }
}

/// Children lists of the dominator tree, each in increasing ordinal order. `first` and
/// `dominated` are spare buffers (their contents are ignored) reused to avoid fresh memory.
fn dominated_csr(
    idom: &[u32],
    root: NodeIndex,
    mut first: Vec<u32>,
    mut dominated: Vec<u32>,
) -> (Vec<u32>, Vec<u32>) {
    let n = idom.len();
    first.clear();
    first.resize(n + 1, 0);
    // Count per dominator, turn counts into range ends, then fill back to front.
    for (node, &d) in idom.iter().enumerate() {
        if node != root.get() {
            first[d as usize] += 1;
        }
    }
    for i in 1..n {
        first[i] += first[i - 1];
    }
    first[n] = n.saturating_sub(1) as u32;
    dominated.clear();
    dominated.resize(n.saturating_sub(1), 0);
    for (node, &d) in idom.iter().enumerate().rev() {
        if node != root.get() {
            first[d as usize] -= 1;
            dominated[first[d as usize] as usize] = node as u32;
        }
    }
    (first, dominated)
}

/// What the Lengauer–Tarjan pass leaves: the tree, the DFS order, and two spare buffers.
struct LtResult {
    idom: Vec<u32>,
    preorder: Vec<u32>,
    unreachable: u32,
    spare: [Vec<u32>; 2],
}

/// Computes idom per ordinal, the preorder of ordinals, and how many nodes the root does not reach.
///
/// Memory: besides the graph, at most five u32 columns plus the reverse CSR of essential edges
/// (built on another core during the DFS from the root), and a bitset and the path during the
/// DFS. Two slots do double duty: before a vertex is linked, `ancestor` holds its DFS parent and
/// `label` holds the head of its bucket; while a vertex waits in a bucket, `dom` holds the link
/// to the next one.
fn lengauer_tarjan(graph: &HeapGraph) -> LtResult {
    let n = graph.node_count();
    let first_edge = graph.first_edges();
    let targets = graph.edge_targets();
    let kinds = graph.edge_kind_bytes();
    let essential = |edge: usize| kinds[edge] & EdgeKind::ESSENTIAL_BIT != 0;
    // Vertex numbers are ordinal + 1; 0 means "none".
    let r = graph.root().0 + 1;
    let mut ancestor = vec![0u32; n + 1];
    let mut semi = vec![0u32; n + 1];
    let mut vertex = vec![0u32; n + 1];
    let mut count = 0u32;
    let reached_from_root;
    let (first_retainer, mut retainers);
    {
        // Visited vertices as a bitset (n / 8 bytes stay in cache, unlike `semi`), and the DFS
        // path as a stack of (vertex, next edge to look at).
        let mut visited = vec![0u64; (n + 1).div_ceil(64)];
        let mut path: Vec<(u32, u64)> = Vec::new();
        let mut dfs = |start: u32, parent: &mut [u32], semi: &mut [u32], count: &mut u32| {
            // The vertex to number and push next (0: none, go on with the top of the path).
            let mut next = start;
            loop {
                if next != 0 {
                    *count += 1;
                    semi[next as usize] = *count;
                    vertex[*count as usize] = next;
                    visited[next as usize / 64] |= 1 << (next % 64);
                    path.push((next, first_edge[next as usize - 1]));
                }
                let Some(&mut (v, ref mut cursor)) = path.last_mut() else {
                    break;
                };
                let end = first_edge[v as usize];
                next = 0;
                while *cursor < end {
                    let edge = *cursor as usize;
                    *cursor += 1;
                    if essential(edge) {
                        let w = targets[edge] + 1;
                        if visited[w as usize / 64] & (1 << (w % 64)) == 0 {
                            next = w;
                            break;
                        }
                    }
                }
                if next == 0 {
                    path.pop();
                } else {
                    parent[next as usize] = v;
                }
            }
        };
        // The reverse CSR of essential edges (by ordinal, sources as vertex numbers) is built on
        // the other core while the DFS from the root runs.
        ((), (first_retainer, retainers)) = rayon::join(
            || dfs(r, &mut ancestor, &mut semi, &mut count),
            || essential_retainers(graph),
        );
        reached_from_root = count;
        if (count as usize) < n {
            for v in 1..=n as u32 {
                if semi[v as usize] == 0 && first_retainer.range(v as usize - 1).is_empty() {
                    ancestor[v as usize] = r;
                    dfs(v, &mut ancestor, &mut semi, &mut count);
                }
            }
        }
    }
    if (count as usize) < n {
        for v in 1..=n as u32 {
            if semi[v as usize] == 0 {
                ancestor[v as usize] = r;
                count += 1;
                semi[v as usize] = count;
                vertex[count as usize] = v;
            }
        }
    }
    // The root is never linked; keep its slot from reading as "has a parent".
    ancestor[r as usize] = 0;
    let unreachable = n as u32 - reached_from_root;

    // From here on every array is indexed by DFS number (every node has one now), which keeps
    // the vertices an evaluation walks, and the buckets, near each other in memory. `number`
    // maps a vertex to its DFS number (number[0] = 0 stands for "none").
    let number = semi;
    let mut parent = vec![0u32; n + 1];
    for (slot, &v) in parent.iter_mut().zip(&vertex).skip(1) {
        *slot = number[ancestor[v as usize] as usize];
    }
    drop(ancestor);
    let mut ancestor = parent;
    // Retainers as DFS numbers too (the CSR stays indexed by ordinal: one lookup per vertex).
    retainers
        .par_iter_mut()
        .for_each(|source| *source = number[*source as usize]);
    drop(number);
    let root_number = 1u32;
    let mut semi: Vec<u32> = (0..=n as u32).collect();
    let mut label = vec![0u32; n + 1];
    let mut dom = vec![0u32; n + 1];
    let mut stack: Vec<u32> = Vec::new();

    // Vertices are processed in decreasing number and linked right after, so "linked" is
    // "number >= bound", where `bound` is the lowest linked number.
    let mut eval = |v: u32, bound: u32, ancestor: &mut [u32], label: &mut [u32], semi: &[u32]| {
        if v < bound {
            return v;
        }
        // compress(v), iteratively: walk up while the ancestor is itself linked.
        let mut x = v;
        while ancestor[x as usize] >= bound {
            stack.push(x);
            x = ancestor[x as usize];
        }
        while let Some(w) = stack.pop() {
            let a = ancestor[w as usize] as usize;
            if semi[label[a] as usize] < semi[label[w as usize] as usize] {
                label[w as usize] = label[a];
            }
            ancestor[w as usize] = ancestor[a];
        }
        label[v as usize]
    };

    for w in (2..=n as u32).rev() {
        let preds = &retainers[first_retainer.range(vertex[w as usize] as usize - 1)];
        if preds.is_empty() {
            // Orphans have the root as their only predecessor.
            semi[w as usize] = semi[root_number as usize];
        }
        for &v in preds {
            let u = eval(v, w + 1, &mut ancestor, &mut label, &semi);
            if semi[u as usize] < semi[w as usize] {
                semi[w as usize] = semi[u as usize];
            }
        }
        // Add w to the bucket of its semidominator (not linked yet: its number is smaller).
        let s = semi[w as usize] as usize;
        dom[w as usize] = label[s];
        label[s] = w;
        // Link w under its parent. Vertices still in w's own bucket can never be processed
        // (only w's children process it, and they are done): like DevTools, they get no
        // dominator here and the final pass sends them to the root.
        let p = ancestor[w as usize];
        let mut stranded = label[w as usize];
        while stranded != 0 {
            let next = dom[stranded as usize];
            dom[stranded as usize] = 0;
            stranded = next;
        }
        label[w as usize] = w;
        // Process the bucket of the parent.
        let mut v = std::mem::take(&mut label[p as usize]);
        while v != 0 {
            let next = dom[v as usize];
            let u = eval(v, w, &mut ancestor, &mut label, &semi);
            dom[v as usize] = if semi[u as usize] < semi[v as usize] {
                u
            } else {
                p
            };
            v = next;
        }
    }
    drop((ancestor, retainers, first_retainer));

    // Unlike the paper, the root dominates itself, and dom[0] = root sends vertices that got no
    // dominator (see above) to the root, as DevTools does.
    dom[0] = root_number;
    dom[root_number as usize] = root_number;
    for w in 2..=n {
        if dom[w] != semi[w] {
            dom[w] = dom[dom[w] as usize];
        }
    }
    // To ordinals: idom[vertex[i] - 1] = vertex[dom[i]] - 1; preorder = vertex[1..] - 1.
    let mut idom = label;
    idom.truncate(n);
    for i in 1..=n {
        idom[vertex[i] as usize - 1] = vertex[dom[i] as usize] - 1;
    }
    vertex.remove(0);
    for v in vertex.iter_mut() {
        *v -= 1;
    }
    LtResult {
        idom,
        preorder: vertex,
        unreachable,
        spare: [dom, semi],
    }
}

/// Offsets of a reverse CSR: 32-bit while the edge count allows, to save memory.
enum RetainerOffsets {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl RetainerOffsets {
    #[inline]
    fn range(&self, ordinal: usize) -> std::ops::Range<usize> {
        match self {
            RetainerOffsets::Narrow(v) => v[ordinal] as usize..v[ordinal + 1] as usize,
            RetainerOffsets::Wide(v) => v[ordinal] as usize..v[ordinal + 1] as usize,
        }
    }
}

/// An integer type usable as a CSR offset.
trait Offset: Copy + Default {
    fn get(self) -> usize;
    fn set(value: usize) -> Self;
}

impl Offset for u32 {
    fn get(self) -> usize {
        self as usize
    }
    fn set(value: usize) -> Self {
        value as u32
    }
}

impl Offset for u64 {
    fn get(self) -> usize {
        self as usize
    }
    fn set(value: usize) -> Self {
        value as u64
    }
}

/// Reverse CSR of the essential edges: for each node, the vertex numbers (ordinal + 1) of the
/// sources of essential edges into it.
fn essential_retainers(graph: &HeapGraph) -> (RetainerOffsets, Vec<u32>) {
    if graph.edge_count() < u32::MAX as u64 {
        let (first, sources) = fill_retainers::<u32>(graph);
        (RetainerOffsets::Narrow(first), sources)
    } else {
        let (first, sources) = fill_retainers::<u64>(graph);
        (RetainerOffsets::Wide(first), sources)
    }
}

/// Fills the reverse CSR back to front, so no cursor array is needed: `first[i]` counts, then
/// becomes the end of i's range, then (after filling) its start.
fn fill_retainers<T: Offset>(graph: &HeapGraph) -> (Vec<T>, Vec<u32>) {
    let n = graph.node_count();
    let first_edge = graph.first_edges();
    let targets = graph.edge_targets();
    let kinds = graph.edge_kind_bytes();
    let mut first = vec![T::default(); n + 1];
    for (edge, &to) in targets.iter().enumerate() {
        if kinds[edge] & EdgeKind::ESSENTIAL_BIT != 0 {
            let slot = &mut first[to as usize];
            *slot = T::set(slot.get() + 1);
        }
    }
    for i in 1..=n {
        first[i] = T::set(first[i].get() + first[i - 1].get());
    }
    let count = first[n].get();
    let mut sources = vec![0u32; count];
    for from in 0..n {
        for edge in first_edge[from]..first_edge[from + 1] {
            let edge = edge as usize;
            if kinds[edge] & EdgeKind::ESSENTIAL_BIT != 0 {
                let to = targets[edge] as usize;
                let slot = first[to].get() - 1;
                first[to] = T::set(slot);
                sources[slot] = from as u32 + 1;
            }
        }
    }
    (first, sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::*;
    use proptest::prelude::*;

    /// A graph with `n` nodes of self size `10 * (i + 1)` and the given essential edges; root 0.
    fn graph(n: usize, edges: &[(u32, u32)], weak: &[(u32, u32)]) -> HeapGraph {
        let mut b = GraphBuilder::new(HeapFormat::V8, StringTable::new(), n, edges.len());
        let name = b.strings_mut().intern("N").unwrap();
        let class = b.intern_class(ClassInfo::named(name)).unwrap();
        for i in 0..n {
            b.add_node(NodeData {
                id: ObjectId(i as u64 * 2 + 1),
                class,
                name,
                self_size: 10 * (i as u64 + 1),
                kind: NodeKind::Object,
                flags: NodeFlags::default(),
            })
            .unwrap();
        }
        let all = edges
            .iter()
            .map(|e| (*e, true))
            .chain(weak.iter().map(|e| (*e, false)));
        for ((from, to), essential) in all {
            b.add_edge(
                NodeIndex(from),
                EdgeData {
                    to: NodeIndex(to),
                    kind: if essential {
                        EdgeKind::Property
                    } else {
                        EdgeKind::Weak
                    },
                    name: EdgeName::Named(name),
                    essential,
                },
            );
        }
        b.finish().unwrap()
    }

    fn idoms(d: &Dominators, n: usize) -> Vec<u32> {
        (0..n as u32).map(|i| d.idom(NodeIndex(i)).0).collect()
    }

    #[test]
    fn diamond_and_chain() {
        // 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3, 3 -> 4
        let g = graph(5, &[(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)], &[]);
        let d = Dominators::compute(&g);
        assert_eq!(idoms(&d, 5), vec![0, 0, 0, 0, 3]);
        assert_eq!(d.retained(NodeIndex(3)), 40 + 50);
        assert_eq!(d.retained(NodeIndex(1)), 20);
        assert_eq!(d.retained(NodeIndex(0)), 150);
        assert_eq!(d.unreachable_count(), 0);
    }

    #[test]
    fn classic_lengauer_tarjan_example() {
        // The flowgraph from Lengauer & Tarjan (1979), letters R=0, A=1, B=2, C=3, D=4, E=5,
        // F=6, G=7, H=8, I=9, J=10, K=11, L=12.
        let edges = [
            (0, 1),
            (0, 2),
            (0, 3),
            (1, 4),
            (2, 1),
            (2, 4),
            (2, 5),
            (3, 6),
            (3, 7),
            (4, 12),
            (5, 8),
            (6, 9),
            (7, 9),
            (7, 10),
            (8, 5),
            (8, 11),
            (9, 11),
            (10, 9),
            (11, 9),
            (11, 0),
            (12, 8),
        ];
        let g = graph(13, &edges, &[]);
        let d = Dominators::compute(&g);
        // Expected idoms from the paper: A,B,C,D,E,H,I,K -> R; F,G -> C; J -> G; L -> D.
        assert_eq!(idoms(&d, 13), vec![0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 7, 0, 4]);
    }

    #[test]
    fn weak_only_and_cliques_hang_off_the_root() {
        // 3 is reachable only by a weak edge and owns 4; 5 <-> 6 is an unreachable clique.
        let g = graph(7, &[(0, 1), (1, 2), (3, 4), (5, 6), (6, 5)], &[(2, 3)]);
        let d = Dominators::compute(&g);
        assert_eq!(d.idom(NodeIndex(3)), NodeIndex(0));
        assert_eq!(d.idom(NodeIndex(4)), NodeIndex(3));
        assert_eq!(d.idom(NodeIndex(5)), NodeIndex(0));
        assert_eq!(d.unreachable_count(), 4);
        let total: u64 = g.self_sizes().iter().sum();
        assert_eq!(d.retained(NodeIndex(0)), total);
        assert_eq!(d.preorder().len(), 7);
    }

    #[test]
    fn root_need_not_be_the_first_node() {
        // Root is node 4: 4 -> 0 -> 1, 4 -> 2 -> 1, 0 -> 3; 5 <-> 6 is an unreachable cycle.
        let g = graph(
            7,
            &[(4, 0), (0, 1), (4, 2), (2, 1), (0, 3), (5, 6), (6, 5)],
            &[],
        );
        let g = rebuild_with_root(g, NodeIndex(4));
        let d = Dominators::compute(&g);
        assert_eq!(idoms(&d, 7), vec![4, 4, 4, 0, 4, 4, 4]);
        assert_eq!(d.retained(NodeIndex(4)), g.self_sizes().iter().sum::<u64>());
        assert_eq!(d.retained(NodeIndex(0)), 10 + 40);
    }

    /// The same graph with another root.
    fn rebuild_with_root(g: HeapGraph, root: NodeIndex) -> HeapGraph {
        let mut b = GraphBuilder::new(HeapFormat::Hprof, StringTable::new(), g.node_count(), 0);
        let name = b.strings_mut().intern("N").unwrap();
        let class = b.intern_class(ClassInfo::named(name)).unwrap();
        for node in g.nodes() {
            b.add_node(NodeData {
                id: g.id(node),
                class,
                name,
                self_size: g.self_size(node),
                kind: NodeKind::Instance,
                flags: NodeFlags::default(),
            })
            .unwrap();
            for edge in g.edges(node) {
                b.add_edge(
                    node,
                    EdgeData {
                        to: g.edge_to(edge),
                        kind: g.edge_kind(edge),
                        name: EdgeName::Named(name),
                        essential: g.is_essential(edge),
                    },
                );
            }
        }
        b.set_root(root);
        b.finish().unwrap()
    }

    #[test]
    fn deep_chain_needs_no_recursion() {
        let n = 300_000u32;
        let edges: Vec<(u32, u32)> = (0..n - 1).map(|i| (i, i + 1)).collect();
        let g = graph(n as usize, &edges, &[]);
        let d = Dominators::compute(&g);
        assert_eq!(d.idom(NodeIndex(n - 1)), NodeIndex(n - 2));
        assert_eq!(
            d.retained(NodeIndex(n - 2)),
            10 * (n as u64 - 1) + 10 * n as u64
        );
    }

    /// Dominators by definition: d dominates v iff v is unreachable from the root without d.
    fn naive_idoms(n: usize, edges: &[(u32, u32)]) -> Vec<Option<u32>> {
        let reach = |skip: Option<u32>| {
            let mut seen = vec![false; n];
            if skip == Some(0) {
                return seen;
            }
            let mut stack = vec![0u32];
            seen[0] = true;
            while let Some(v) = stack.pop() {
                for &(a, b) in edges {
                    if a == v && Some(b) != skip && !seen[b as usize] {
                        seen[b as usize] = true;
                        stack.push(b);
                    }
                }
            }
            seen
        };
        let reachable = reach(None);
        let mut dominators: Vec<Vec<u32>> = vec![Vec::new(); n];
        for d in 0..n as u32 {
            let without = reach(Some(d));
            for v in 0..n {
                if reachable[v] && (v as u32 == d || !without[v]) {
                    dominators[v].push(d);
                }
            }
        }
        (0..n)
            .map(|v| {
                if !reachable[v] {
                    return None;
                }
                if v == 0 {
                    return Some(0);
                }
                // The immediate dominator is the strict dominator dominated by all others.
                let strict: Vec<u32> = dominators[v]
                    .iter()
                    .copied()
                    .filter(|d| *d as usize != v)
                    .collect();
                strict
                    .iter()
                    .copied()
                    .find(|&c| strict.iter().all(|&o| dominators[c as usize].contains(&o)))
            })
            .collect()
    }

    proptest! {
        #[test]
        fn matches_the_definition_on_random_graphs(
            n in 2usize..14,
            raw in proptest::collection::vec((0u32..14, 0u32..14), 0..40),
            tree in proptest::collection::vec(0u32..1000, 14),
        ) {
            let mut edges: Vec<(u32, u32)> = raw
                .into_iter()
                .map(|(a, b)| (a % n as u32, b % n as u32))
                .filter(|(a, b)| a != b)
                .collect();
            // A random spanning tree makes every node reachable, so the definition applies.
            for v in 1..n as u32 {
                edges.push((tree[v as usize] % v, v));
            }
            let g = graph(n, &edges, &[]);
            let d = Dominators::compute(&g);
            let expected = naive_idoms(n, &edges);
            for (v, want) in expected.iter().enumerate() {
                prop_assert_eq!(Some(d.idom(NodeIndex(v as u32)).0), *want, "node {}", v);
            }
            // Retained size = sum of self sizes over the dominated subtree.
            for v in 0..n as u32 {
                let mut sum = 0;
                for u in 0..n as u32 {
                    if d.dominates(NodeIndex(v), NodeIndex(u)) {
                        sum += g.self_size(NodeIndex(u));
                    }
                }
                prop_assert_eq!(d.retained(NodeIndex(v)), sum);
            }
        }
    }
}
