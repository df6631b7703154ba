//! Shortest retaining paths from the root to an object, optionally with some retainers cut
//! (DevTools' "ignore this retainer"): over essential edges, and for V8 over the strong edges
//! DevTools' distances and Retainers view use, paths from user roots first.

use std::collections::HashMap;

use crate::distances::{BfsParents, SortedNodes, UNREACHABLE, bfs_parents};

use crate::graph::{EdgeIndex, EdgeKind, HeapFormat, HeapGraph, NodeIndex, NodeKind};
use crate::v8::distance_filter::{DistanceFilter, Expanded};

/// One step of a retaining path: a node and the edge that leads to it (none for the root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathStep {
    pub via: Option<EdgeIndex>,
    pub node: NodeIndex,
}

/// A chain of references from the root to an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetainingPath {
    pub steps: Vec<PathStep>,
}

/// A BFS tree from the root: each reached node's parent on a shortest path.
#[derive(Debug)]
pub struct PathTree {
    parent: BfsParents,
    /// One bit per node reached only through system roots (V8 `(GC roots)` and other synthetic
    /// children of the root) after the BFS from the user roots; empty when not tracked.
    system: Vec<u64>,
}

impl PathTree {
    /// Builds the tree over essential edges for every node, never entering the nodes in `cut`.
    /// For V8, as DevTools computes distances: first a BFS from the user roots (the root's
    /// non-synthetic children, e.g. the global objects), then one from the root for the rest.
    pub fn new(graph: &HeapGraph, cut: &[NodeIndex]) -> PathTree {
        if graph.format() == HeapFormat::V8 {
            return PathTree::user_roots_first(graph, cut);
        }
        PathTree {
            parent: bfs_parents(graph, cut, None),
            system: Vec::new(),
        }
    }

    /// Builds the tree only as far as needed to reach all of `targets`. A target no essential
    /// path reaches (HPROF: held only through `Reference.referent` or the finalizer chain) gets
    /// a path over any reference, as Eclipse MAT's "Path to GC Roots – with all references":
    /// the shortest essential path to a reached object, then the fewest further references.
    pub fn towards(graph: &HeapGraph, targets: &[NodeIndex]) -> PathTree {
        let mut parent = bfs_parents(graph, &[], Some(targets));
        if graph.format() != HeapFormat::V8
            && targets.iter().any(|t| parent.get(t.get()) == UNREACHABLE)
        {
            extend_over_all_edges(graph, &mut parent, targets);
        }
        PathTree {
            parent,
            system: Vec::new(),
        }
    }

    fn user_roots_first(graph: &HeapGraph, cut: &[NodeIndex]) -> PathTree {
        let n = graph.node_count();
        let root = graph.root();
        let mut parent = BfsParents::unreached(n);
        for c in cut.iter().filter(|c| **c != root) {
            parent.set(c.get(), UNREACHABLE - 1);
        }
        let first_edge = graph.first_edges();
        let targets = graph.edge_targets();
        let mut filter = DistanceFilter::new(graph);
        let mut queue: Vec<u32> = Vec::new();
        parent.set(root.get(), root.0);
        // DevTools' BFS: every non-weak edge its distance filter lets through (not only
        // essential ones), one filter (and WeakMap pairing) for both searches.
        let mut search = |queue: &mut Vec<u32>, parent: &mut BfsParents, mut head: usize| {
            while let Some(&v) = queue.get(head) {
                head += 1;
                let expanded = filter.expanded(NodeIndex(v));
                for e in first_edge[v as usize]..first_edge[v as usize + 1] {
                    let w = targets[e as usize];
                    if parent.get(w as usize) == UNREACHABLE
                        && filter.follows(expanded, EdgeIndex(u64::from(e)))
                    {
                        parent.set(w as usize, v);
                        queue.push(w);
                    }
                }
            }
        };
        // The user roots: the root's children that are not synthetic, and `(Document DOM
        // trees)`, over any of the root's edges.
        for edge in graph.edges(root) {
            let w = graph.edge_to(edge);
            let user_root =
                graph.kind(w) != NodeKind::Synthetic || graph.name(w) == "(Document DOM trees)";
            if user_root && parent.get(w.get()) == UNREACHABLE {
                parent.set(w.get(), root.0);
                queue.push(w.0);
            }
        }
        search(&mut queue, &mut parent, 0);
        let user_reached = queue.len();
        queue.push(root.0);
        search(&mut queue, &mut parent, user_reached);
        let mut system = vec![0u64; n.div_ceil(64)];
        for &node in &queue[user_reached + 1..] {
            system[node as usize / 64] |= 1 << (node % 64);
        }
        for c in cut.iter().filter(|c| **c != root) {
            parent.set(c.get(), UNREACHABLE);
        }
        PathTree { parent, system }
    }

    /// Whether `node` was reached only through system roots (V8; always false otherwise).
    pub fn through_system_roots(&self, node: NodeIndex) -> bool {
        self.system
            .get(node.get() / 64)
            .is_some_and(|w| w & (1 << (node.0 % 64)) != 0)
    }

    /// Edge count of the shortest path to `node`, or `None` when unreachable.
    pub fn distance(&self, node: NodeIndex) -> Option<u32> {
        let mut current = node.0;
        let mut distance = 0;
        loop {
            let up = self.parent.get(current as usize);
            if up == UNREACHABLE {
                return None;
            }
            if up == current {
                return Some(distance);
            }
            distance += 1;
            current = up;
        }
    }

    /// The node before `node` on its shortest path; `None` for the root and unreachable nodes.
    pub fn parent(&self, node: NodeIndex) -> Option<NodeIndex> {
        let up = self.parent.get(node.get());
        (up != UNREACHABLE && up != node.0).then_some(NodeIndex(up))
    }

    /// Whether `node` is reachable (the root included).
    pub fn reaches(&self, node: NodeIndex) -> bool {
        self.parent.get(node.get()) != UNREACHABLE
    }

    /// The shortest path from the root to `node`, or `None` when unreachable.
    pub fn path_to(&self, graph: &HeapGraph, node: NodeIndex) -> Option<RetainingPath> {
        self.distance(node)?;
        let mut steps = Vec::new();
        let mut current = node;
        loop {
            let up = NodeIndex(self.parent.get(current.get()));
            if up == current {
                steps.push(PathStep {
                    via: None,
                    node: current,
                });
                break;
            }
            let via = self.entry_edge(graph, up, current);
            steps.push(PathStep { via, node: current });
            current = up;
        }
        steps.reverse();
        Some(RetainingPath { steps })
    }
}

/// Continues a search whose `parent` reached every node over essential edges, over all edges
/// until all of `targets` are reached: every node reached so far is a source, so each new path
/// is an essential one followed by as few other references as possible.
fn extend_over_all_edges(graph: &HeapGraph, parent: &mut BfsParents, targets: &[NodeIndex]) {
    let first_edge = graph.first_edges();
    let edge_targets = graph.edge_targets();
    let targets = SortedNodes::new(targets.iter().map(|t| t.0).collect());
    let mut missing = targets
        .iter()
        .filter(|&t| parent.get(t as usize) == UNREACHABLE)
        .count();
    let mut queue: Vec<u32> = (0..parent.len() as u32)
        .filter(|&node| parent.get(node as usize) != UNREACHABLE)
        .collect();
    let mut head = 0;
    while let Some(&v) = queue.get(head) {
        head += 1;
        for edge in first_edge[v as usize]..first_edge[v as usize + 1] {
            let w = edge_targets[edge as usize];
            if parent.get(w as usize) != UNREACHABLE {
                continue;
            }
            parent.set(w as usize, v);
            queue.push(w);
            if targets.contains(w) {
                missing -= 1;
                if missing == 0 {
                    return;
                }
            }
        }
    }
}

impl PathTree {
    /// The edge from `up` to `node` the search went through: for V8 the first one DevTools'
    /// distance filter follows (or any non-weak one), otherwise the first essential one; the
    /// first edge of any kind for a step a [`PathTree::towards`] search took over all edges.
    pub fn entry_edge(
        &self,
        graph: &HeapGraph,
        up: NodeIndex,
        node: NodeIndex,
    ) -> Option<EdgeIndex> {
        let preference = EntryPreference::new(graph, up);
        graph
            .edges(up)
            .filter(|e| graph.edge_to(*e) == node)
            .filter_map(|e| Some((preference.rank(e)?, e)))
            .min_by_key(|(rank, e)| (*rank, e.0))
            .map(|(_, e)| e)
            .or_else(|| graph.edges(up).find(|e| graph.edge_to(*e) == node))
    }

    /// [`PathTree::entry_edge`] for every node `up` references, in one pass over `up`'s
    /// edges (finding them one child at a time is quadratic for an array of many children).
    pub fn entry_edges_from(&self, graph: &HeapGraph, up: NodeIndex) -> HashMap<u32, EdgeIndex> {
        let preference = EntryPreference::new(graph, up);
        let mut best: HashMap<u32, (u8, EdgeIndex)> = HashMap::new();
        for edge in graph.edges(up) {
            let Some(rank) = preference.rank(edge) else {
                continue;
            };
            let slot = best.entry(graph.edge_to(edge).0).or_insert((rank, edge));
            if rank < slot.0 {
                *slot = (rank, edge);
            }
        }
        best.into_iter()
            .map(|(node, (_, edge))| (node, edge))
            .collect()
    }
}

/// How [`PathTree::entry_edge`] ranks the edges from one node: `None` for edges a path never
/// takes, then lower first (ties: the first edge).
struct EntryPreference<'g> {
    graph: &'g HeapGraph,
    filter: Option<(DistanceFilter<'g>, Expanded)>,
}

impl<'g> EntryPreference<'g> {
    fn new(graph: &'g HeapGraph, from: NodeIndex) -> EntryPreference<'g> {
        let filter = (graph.format() == HeapFormat::V8).then(|| {
            let filter = DistanceFilter::new(graph);
            let expanded = filter.expanded(from);
            (filter, expanded)
        });
        EntryPreference { graph, filter }
    }

    /// V8: 0 for an edge the distance filter follows, 1 for another non-weak one; otherwise 0
    /// for an essential edge.
    fn rank(&self, edge: EdgeIndex) -> Option<u8> {
        match &self.filter {
            None => self.graph.is_essential(edge).then_some(0),
            Some(_) if self.graph.edge_kind(edge) == EdgeKind::Weak => None,
            Some((filter, expanded)) => {
                Some(u8::from(!filter.follows_statelessly(*expanded, edge)))
            }
        }
    }
}

/// Up to `max` shortest retaining paths to `target`, one per distinct direct retainer (V8: any
/// strong reference, as DevTools' Retainers view; otherwise essential edges), shortest
/// first (V8: retainers reached from user roots before those reached only from system roots, as
/// DevTools ranks them by distance). Nodes in `cut` are never used, and no path goes through the
/// target before its last step (a retainer reachable only through the target is left out).
/// Empty when the target is unreachable.
pub fn retaining_paths(
    graph: &HeapGraph,
    target: NodeIndex,
    cut: &[NodeIndex],
    max: usize,
) -> Vec<RetainingPath> {
    if target == graph.root() {
        return PathTree::new(graph, cut)
            .path_to(graph, target)
            .into_iter()
            .collect();
    }
    // The retainers' own paths must not go through the target (in a doubly linked list the
    // next entry's shortest path is often through the target itself): search without it.
    let mut cut_and_target = cut.to_vec();
    cut_and_target.push(target);
    let tree = PathTree::new(graph, &cut_and_target);
    // V8: every strong edge retains, as DevTools' Retainers view lists them; the essential-edge
    // rule (page-owned, WeakMap table, shortcuts) shapes dominators, not who holds a reference —
    // an object held by a global and by a stack slot is kept alive by either.
    let retains = |edge: EdgeIndex| match graph.format() {
        HeapFormat::V8 => graph.edge_kind(edge) != EdgeKind::Weak,
        _ => graph.is_essential(edge),
    };
    let mut retainers: Vec<((bool, u32), NodeIndex, EdgeIndex)> = Vec::new();
    for node in graph.nodes() {
        if node == target || cut.contains(&node) {
            continue;
        }
        for edge in graph.edges(node) {
            if graph.edge_to(edge) == target && retains(edge) {
                // Distances only for the target's retainers: a distance walks the tree up to
                // the root, and a long chain (a linked list of millions) makes that walk for
                // every node quadratic.
                let Some(distance) = tree.distance(node) else {
                    break;
                };
                retainers.push(((tree.through_system_roots(node), distance), node, edge));
            }
        }
    }
    retainers.sort_by_key(|(d, node, edge)| (*d, node.0, edge.0));
    retainers.dedup_by_key(|(_, node, _)| *node);
    retainers
        .into_iter()
        .take(max)
        .filter_map(|(_, node, edge)| {
            let mut path = tree.path_to(graph, node)?;
            path.steps.push(PathStep {
                via: Some(edge),
                node: target,
            });
            Some(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::*;

    /// A graph of `nodes` (name, kind; ids are ordinals, node 0 the root) and `edges` (from,
    /// to, kind; every edge but weak ones essential), all edges named "to".
    fn build(
        format: HeapFormat,
        nodes: &[(&str, NodeKind)],
        edges: &[(u32, u32, EdgeKind)],
    ) -> HeapGraph {
        let mut builder = GraphBuilder::new(format, StringTable::new(), 8, 8);
        for (i, (name, kind)) in nodes.iter().enumerate() {
            let name = builder.strings_mut().intern(name).unwrap();
            let class = builder.intern_class(ClassInfo::named(name)).unwrap();
            builder
                .add_node(NodeData {
                    id: ObjectId(i as u64),
                    class,
                    name,
                    self_size: 10,
                    kind: *kind,
                    flags: NodeFlags::default(),
                })
                .unwrap();
        }
        let to = builder.strings_mut().intern("to").unwrap();
        for (from, target, kind) in edges {
            builder.add_edge(
                NodeIndex(*from),
                EdgeData {
                    to: NodeIndex(*target),
                    kind: *kind,
                    name: EdgeName::Named(to),
                    essential: *kind != EdgeKind::Weak,
                },
            );
        }
        builder.finish().unwrap()
    }

    /// Object nodes named `names`, after a synthetic root.
    fn objects<'a>(names: &[&'a str]) -> Vec<(&'a str, NodeKind)> {
        std::iter::once(("", NodeKind::Synthetic))
            .chain(names.iter().map(|n| (*n, NodeKind::Object)))
            .collect()
    }

    /// Property edges.
    fn properties(pairs: &[(u32, u32)]) -> Vec<(u32, u32, EdgeKind)> {
        pairs
            .iter()
            .map(|(from, to)| (*from, *to, EdgeKind::Property))
            .collect()
    }

    /// root → (GC roots) → t, and root → global → a → b → t; ids are ordinals.
    fn graph(format: HeapFormat) -> HeapGraph {
        let mut nodes = objects(&["(GC roots)", "global", "A", "B", "T"]);
        nodes[1].1 = NodeKind::Synthetic;
        let edges = properties(&[(0, 1), (0, 2), (1, 5), (2, 3), (3, 4), (4, 5)]);
        build(format, &nodes, &edges)
    }

    fn retainers(graph: &HeapGraph, cut: &[NodeIndex]) -> Vec<Vec<u32>> {
        retaining_paths(graph, NodeIndex(5), cut, 5)
            .iter()
            .map(|p| p.steps.iter().map(|s| s.node.0).collect())
            .collect()
    }

    #[test]
    fn v8_paths_from_user_roots_come_before_shorter_system_ones() {
        let v8 = graph(HeapFormat::V8);
        assert_eq!(retainers(&v8, &[]), [vec![0, 2, 3, 4, 5], vec![0, 1, 5]]);
        let tree = PathTree::new(&v8, &[]);
        assert!(tree.through_system_roots(NodeIndex(1)));
        assert!(!tree.through_system_roots(NodeIndex(5)));
        // Cutting the user path leaves the system one.
        assert_eq!(retainers(&v8, &[NodeIndex(3)]), [vec![0, 1, 5]]);
    }

    #[test]
    fn a_retainer_path_never_runs_through_the_target() {
        // root → global → A → T ⇄ B, and global → C → D → B: B's shortest path is through T.
        let nodes = objects(&["global", "A", "T", "B", "C", "D"]);
        let edges = properties(&[
            (0, 1),
            (1, 2),
            (1, 5),
            (2, 3),
            (3, 4),
            (4, 3),
            (5, 6),
            (6, 4),
        ]);
        let graph = build(HeapFormat::V8, &nodes, &edges);
        let paths: Vec<Vec<u32>> = retaining_paths(&graph, NodeIndex(3), &[], 5)
            .iter()
            .map(|p| p.steps.iter().map(|s| s.node.0).collect())
            .collect();
        assert_eq!(paths, [vec![0, 1, 2, 3], vec![0, 1, 5, 6, 4, 3]]);
        // Cutting A leaves B's own path.
        let cut: Vec<Vec<u32>> = retaining_paths(&graph, NodeIndex(3), &[NodeIndex(2)], 5)
            .iter()
            .map(|p| p.steps.iter().map(|s| s.node.0).collect())
            .collect();
        assert_eq!(cut, [vec![0, 1, 5, 6, 4, 3]]);
    }

    #[test]
    fn entry_edges_of_a_whole_parent_match_the_one_by_one_choice() {
        // root → A with, into each of B and C, a weak edge first and then two strong ones.
        let edges = [
            (0, 1, EdgeKind::Property),
            (1, 2, EdgeKind::Weak),
            (1, 3, EdgeKind::Weak),
            (1, 2, EdgeKind::Property),
            (1, 3, EdgeKind::Internal),
            (1, 2, EdgeKind::Internal),
            (1, 3, EdgeKind::Property),
        ];
        let graph = build(HeapFormat::V8, &objects(&["A", "B", "C"]), &edges);
        let tree = PathTree::new(&graph, &[]);
        let a = NodeIndex(1);
        let all = tree.entry_edges_from(&graph, a);
        assert_eq!(all.len(), 2);
        for child in [NodeIndex(2), NodeIndex(3)] {
            let one = tree.entry_edge(&graph, a, child).unwrap();
            assert_eq!(all[&child.0], one);
            assert_ne!(graph.edge_kind(one), EdgeKind::Weak);
            assert_eq!(tree.parent(child), Some(a));
        }
    }

    #[test]
    fn other_formats_rank_paths_by_length_only() {
        let hprof = graph(HeapFormat::Hprof);
        assert_eq!(retainers(&hprof, &[]), [vec![0, 1, 5], vec![0, 2, 3, 4, 5]]);
    }

    #[test]
    fn a_search_towards_repeated_targets_stops_once_each_is_reached() {
        let hprof = graph(HeapFormat::Hprof);
        // BFS: root; (GC roots), global; T, A — A is the last target, so B is never entered.
        let tree = PathTree::towards(&hprof, &[NodeIndex(3), NodeIndex(1), NodeIndex(3)]);
        assert_eq!(tree.parent.get(3), 2);
        assert_eq!(tree.parent.get(5), 1);
        assert_eq!(tree.parent.get(4), UNREACHABLE);
        let path = tree.path_to(&hprof, NodeIndex(3)).unwrap();
        let nodes: Vec<u32> = path.steps.iter().map(|s| s.node.0).collect();
        assert_eq!(nodes, [0, 2, 3]);
    }
}
