//! Shortest retaining paths from the root to an object, over essential edges, optionally with
//! some retainers cut (DevTools' "ignore this retainer").

use crate::distances::{UNREACHABLE, shortest_path_tree};
use crate::graph::{EdgeIndex, HeapGraph, NodeIndex};

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

/// A BFS tree from the root: each reached node's distance and the edge that first reached it.
#[derive(Debug)]
pub struct PathTree {
    distance: Vec<u32>,
    via: Vec<u64>,
}

impl PathTree {
    /// Builds the tree over essential edges, never entering the nodes in `cut`.
    pub fn new(graph: &HeapGraph, cut: &[NodeIndex]) -> PathTree {
        let (distance, via) = shortest_path_tree(graph, cut);
        PathTree { distance, via }
    }

    /// Edge count of the shortest path to `node`, or `None` when unreachable.
    pub fn distance(&self, node: NodeIndex) -> Option<u32> {
        let d = self.distance[node.get()];
        (d != UNREACHABLE).then_some(d)
    }

    /// The shortest path from the root to `node`, or `None` when unreachable.
    pub fn path_to(&self, graph: &HeapGraph, node: NodeIndex) -> Option<RetainingPath> {
        self.distance(node)?;
        let mut steps = Vec::new();
        let mut current = node;
        loop {
            let via = self.via[current.get()];
            if via == u64::MAX {
                steps.push(PathStep {
                    via: None,
                    node: current,
                });
                break;
            }
            let edge = EdgeIndex(via);
            steps.push(PathStep {
                via: Some(edge),
                node: current,
            });
            current = source_of(graph, edge);
        }
        steps.reverse();
        Some(RetainingPath { steps })
    }
}

/// The node an edge leaves from (binary search in the CSR offsets).
pub fn source_of(graph: &HeapGraph, edge: EdgeIndex) -> NodeIndex {
    let first = graph.first_edges();
    // The last node whose first edge is <= edge and which has edges.
    let position = first.partition_point(|&start| start <= edge.0);
    NodeIndex(position.saturating_sub(1) as u32)
}

/// Up to `max` shortest retaining paths to `target`, one per distinct direct retainer, shortest
/// first. Nodes in `cut` are never used. Empty when the target is unreachable.
pub fn retaining_paths(
    graph: &HeapGraph,
    target: NodeIndex,
    cut: &[NodeIndex],
    max: usize,
) -> Vec<RetainingPath> {
    let tree = PathTree::new(graph, cut);
    if target == graph.root() {
        return tree.path_to(graph, target).into_iter().collect();
    }
    let mut retainers: Vec<(u32, NodeIndex, EdgeIndex)> = Vec::new();
    for node in graph.nodes() {
        if node == target || cut.contains(&node) {
            continue;
        }
        let Some(distance) = tree.distance(node) else {
            continue;
        };
        for edge in graph.edges(node) {
            if graph.edge_to(edge) == target && graph.is_essential(edge) {
                retainers.push((distance, node, edge));
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
