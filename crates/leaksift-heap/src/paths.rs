//! Shortest retaining paths from the root to an object, over essential edges, optionally with
//! some retainers cut (DevTools' "ignore this retainer").

use crate::distances::{UNREACHABLE, bfs_parents};
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

/// A BFS tree from the root: each reached node's parent on a shortest path.
#[derive(Debug)]
pub struct PathTree {
    parent: Vec<u32>,
}

impl PathTree {
    /// Builds the tree over essential edges for every node, never entering the nodes in `cut`.
    pub fn new(graph: &HeapGraph, cut: &[NodeIndex]) -> PathTree {
        PathTree {
            parent: bfs_parents(graph, cut, None),
        }
    }

    /// Builds the tree only as far as needed to reach all of `targets`.
    pub fn towards(graph: &HeapGraph, targets: &[NodeIndex]) -> PathTree {
        PathTree {
            parent: bfs_parents(graph, &[], Some(targets)),
        }
    }

    /// Edge count of the shortest path to `node`, or `None` when unreachable.
    pub fn distance(&self, node: NodeIndex) -> Option<u32> {
        let mut current = node.0;
        let mut distance = 0;
        loop {
            let up = *self.parent.get(current as usize)?;
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

    /// The shortest path from the root to `node`, or `None` when unreachable.
    pub fn path_to(&self, graph: &HeapGraph, node: NodeIndex) -> Option<RetainingPath> {
        self.distance(node)?;
        let mut steps = Vec::new();
        let mut current = node;
        loop {
            let up = NodeIndex(self.parent[current.get()]);
            if up == current {
                steps.push(PathStep {
                    via: None,
                    node: current,
                });
                break;
            }
            // The BFS entered `current` through the first essential edge from `up` to it.
            let via = graph
                .edges(up)
                .find(|e| graph.edge_to(*e) == current && graph.is_essential(*e));
            steps.push(PathStep { via, node: current });
            current = up;
        }
        steps.reverse();
        Some(RetainingPath { steps })
    }
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
