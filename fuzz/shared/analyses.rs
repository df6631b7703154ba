//! The analyses `leaksift heap` runs on a graph, shared by the heap readers' fuzz targets: on any
//! graph a reader accepts they must finish without a panic. Returns the last node.

use leaksift_heap::{HeapGraph, NodeIndex, dominators, histogram, paths, suspects};

pub fn run_heap_analyses(graph: &HeapGraph) -> NodeIndex {
    let doms = dominators::Dominators::compute(graph);
    let _ = histogram::class_histogram(graph, &doms);
    let _ = suspects::find_suspects(graph, &doms, 0.1);
    let last = NodeIndex(graph.node_count() as u32 - 1);
    let _ = paths::retaining_paths(graph, last, &[], 3);
    last
}
