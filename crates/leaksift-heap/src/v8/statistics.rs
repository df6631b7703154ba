//! DevTools' Statistics view of a V8 snapshot: the heap split into code, strings, JS arrays,
//! system objects and native memory (typed arrays), computed as `calculateStatistics` in
//! devtools-frontend's `HeapSnapshot.ts` does.

use crate::graph::{Detachedness, EdgeKind, HeapGraph, NodeIndex, NodeKind};

/// What DevTools' Statistics pie shows, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Statistics {
    /// The snapshot's total: the root's retained size plus `extra_native_bytes`.
    pub total: u64,
    /// Native memory: `native` nodes (DOM, array buffer backing stores, …) and
    /// `extra_native_bytes`.
    pub native: u64,
    /// Of which the backing stores of ArrayBuffers and typed arrays
    /// (`system / JSArrayBufferData`).
    pub typed_arrays: u64,
    /// The V8 heap: the total less native memory.
    pub v8_heap: u64,
    /// Compiled code (`code` nodes).
    pub code: u64,
    /// Strings of every kind (sequential, cons, sliced).
    pub strings: u64,
    /// JS arrays (`Array` objects) with their elements store when nothing else refers to it.
    pub js_arrays: u64,
    /// VM-internal objects (`hidden` nodes).
    pub system: u64,
}

/// Splits the snapshot's `total` bytes (the root's retained size plus `extra_native_bytes`) as
/// DevTools' Statistics view does. Every node counts, reachable or not, by its snapshot type and
/// raw name; an `Array`'s `elements` store counts with it when the array is its only retainer
/// (over edges of every type, self edges included).
pub fn statistics(graph: &HeapGraph, total: u64, extra_native_bytes: u64) -> Statistics {
    let strings = graph.strings();
    // A node's name as in the snapshot: a detached native node's `Detached ` prefix is ours.
    let raw_name = |node: NodeIndex| -> &[u8] {
        let raw = strings.raw(graph.name_id(node)).unwrap_or_default();
        if graph.detachedness(node) == Detachedness::Detached {
            raw.strip_prefix(b"Detached ").unwrap_or(raw)
        } else {
            raw
        }
    };
    // The elements store of each `Array`, then who else refers to it.
    let mut elements: Vec<(NodeIndex, NodeIndex)> = Vec::new();
    let mut stats = Statistics {
        total,
        native: extra_native_bytes,
        ..Statistics::default()
    };
    for node in graph.nodes() {
        let size = graph.self_size(node);
        match graph.kind(node) {
            NodeKind::Hidden => stats.system += size,
            NodeKind::Native => {
                stats.native += size;
                if raw_name(node) == b"system / JSArrayBufferData" {
                    stats.typed_arrays += size;
                }
            }
            NodeKind::Code => stats.code += size,
            NodeKind::String | NodeKind::ConsString | NodeKind::SlicedString => {
                stats.strings += size;
            }
            _ if raw_name(node) == b"Array" => {
                stats.js_arrays += size;
                let store = graph.edges(node).find(|&e| {
                    graph.edge_kind(e) == EdgeKind::Internal && graph.edge_label(e) == "elements"
                });
                if let Some(edge) = store {
                    elements.push((node, graph.edge_to(edge)));
                }
            }
            _ => {}
        }
    }
    if !elements.is_empty() {
        // Retainer counts of the stores only: once, and twice or more.
        let words = graph.node_count().div_ceil(64);
        let mut wanted = vec![0u64; words];
        for &(_, store) in &elements {
            wanted[store.get() / 64] |= 1 << (store.get() % 64);
        }
        let (mut once, mut more) = (vec![0u64; words], vec![0u64; words]);
        for &to in graph.edge_targets() {
            let (word, bit) = (to as usize / 64, 1u64 << (to % 64));
            if wanted[word] & bit != 0 {
                if once[word] & bit != 0 {
                    more[word] |= bit;
                }
                once[word] |= bit;
            }
        }
        for (_, store) in elements {
            let (word, bit) = (store.get() / 64, 1u64 << (store.get() % 64));
            if more[word] & bit == 0 {
                stats.js_arrays += graph.self_size(store);
            }
        }
    }
    stats.v8_heap = total.saturating_sub(stats.native);
    stats
}
