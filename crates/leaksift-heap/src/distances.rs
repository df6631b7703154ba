//! Reachability and distances (edge counts) from the root over essential edges, by iterative BFS.

use crate::graph::{EdgeKind, HeapGraph, NodeIndex};

/// Distance of a node not reachable from the root.
pub const UNREACHABLE: u32 = u32::MAX;

/// BFS distance of every node from the root over essential edges, never entering the nodes in
/// `cut` (DevTools' "ignore this retainer"). Unreached nodes get [`UNREACHABLE`].
pub fn distances_from_root(graph: &HeapGraph, cut: &[NodeIndex]) -> Vec<u32> {
    let (distances, _) = bfs(graph, cut, false);
    distances
}

/// BFS from the root over essential edges that also records, for each reached node, the edge
/// through which it was first reached (`u64::MAX` for the root and unreached nodes).
pub fn shortest_path_tree(graph: &HeapGraph, cut: &[NodeIndex]) -> (Vec<u32>, Vec<u64>) {
    bfs(graph, cut, true)
}

fn bfs(graph: &HeapGraph, cut: &[NodeIndex], with_parents: bool) -> (Vec<u32>, Vec<u64>) {
    let n = graph.node_count();
    let first_edge = graph.first_edges();
    let targets = graph.edge_targets();
    let kinds = graph.edge_kind_bytes();
    let mut distance = vec![UNREACHABLE; n];
    let mut via = if with_parents {
        vec![u64::MAX; n]
    } else {
        Vec::new()
    };
    let root = graph.root().get();
    // Cut nodes are pre-marked so they are never entered (their distance is reset below).
    for c in cut {
        if c.get() != root {
            distance[c.get()] = UNREACHABLE - 1;
        }
    }
    let mut queue: Vec<u32> = Vec::with_capacity(1024);
    distance[root] = 0;
    queue.push(root as u32);
    let mut head = 0;
    while head < queue.len() {
        let v = queue[head] as usize;
        head += 1;
        let next = distance[v] + 1;
        for edge in first_edge[v]..first_edge[v + 1] {
            let e = edge as usize;
            if kinds[e] & EdgeKind::ESSENTIAL_BIT == 0 {
                continue;
            }
            let w = targets[e] as usize;
            if distance[w] != UNREACHABLE {
                continue;
            }
            distance[w] = next;
            if with_parents {
                via[w] = edge;
            }
            queue.push(w as u32);
        }
    }
    for c in cut {
        if c.get() != root {
            distance[c.get()] = UNREACHABLE;
        }
    }
    (distance, via)
}
