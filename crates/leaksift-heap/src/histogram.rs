//! Class histograms: per class, the instance count, shallow bytes and retained bytes (DevTools'
//! Summary view rule: instances of a class nested under another instance of the same class in
//! the dominator tree are not counted twice).

use crate::dominators::Dominators;
use crate::graph::{ClassId, HeapGraph, NodeIndex};

/// One class's totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassStats {
    pub class: ClassId,
    /// Instances with a non-zero self size (DevTools leaves zero-size nodes out of the Summary).
    pub count: u64,
    /// Sum of the instances' self sizes.
    pub shallow_bytes: u64,
    /// Bytes freed if every instance were freed: the retained sizes of instances that no other
    /// instance of the class dominates.
    pub retained_bytes: u64,
}

/// Computes the histogram of all classes that have instances, largest retained size first.
pub fn class_histogram(graph: &HeapGraph, dominators: &Dominators) -> Vec<ClassStats> {
    class_histogram_filtered(graph, dominators, |_| true)
}

/// Like [`class_histogram`] but only over nodes accepted by `filter` (e.g. objects new since a
/// baseline).
pub fn class_histogram_filtered(
    graph: &HeapGraph,
    dominators: &Dominators,
    filter: impl Fn(NodeIndex) -> bool,
) -> Vec<ClassStats> {
    let classes = graph.class_count();
    let mut stats: Vec<ClassStats> = (0..classes as u32)
        .map(|c| ClassStats {
            class: ClassId(c),
            count: 0,
            shallow_bytes: 0,
            retained_bytes: 0,
        })
        .collect();
    let class_of = graph.classes();
    let sizes = graph.self_sizes();
    for node in graph.nodes() {
        let size = sizes[node.get()];
        if size == 0 || !filter(node) {
            continue;
        }
        let s = &mut stats[class_of[node.get()] as usize];
        s.count += 1;
        s.shallow_bytes = s.shallow_bytes.saturating_add(size);
    }
    // Depth-first over the dominator tree, tracking how many counted instances of each class
    // are on the current path; a node counts only if none are. The stack holds (node, index of
    // the next child to visit, whether the node was counted), so it is as deep as the tree.
    let mut active = vec![0u32; classes];
    let root = dominators.root();
    let mut stack: Vec<(NodeIndex, usize, bool)> = vec![(root, 0, false)];
    let enter_node = |node: NodeIndex, stats: &mut Vec<ClassStats>, active: &mut Vec<u32>| {
        let class = class_of[node.get()] as usize;
        if active[class] == 0 && sizes[node.get()] != 0 && filter(node) {
            stats[class].retained_bytes = stats[class]
                .retained_bytes
                .saturating_add(dominators.retained(node));
            active[class] += 1;
            true
        } else {
            false
        }
    };
    stack[0].2 = enter_node(root, &mut stats, &mut active);
    while let Some(top) = stack.last_mut() {
        let (node, next, _) = *top;
        match dominators
            .dominated_ordinals(node)
            .get(next)
            .map(|c| NodeIndex(*c))
        {
            Some(child) => {
                top.1 += 1;
                let counted = enter_node(child, &mut stats, &mut active);
                stack.push((child, 0, counted));
            }
            None => {
                if top.2 {
                    active[class_of[node.get()] as usize] -= 1;
                }
                stack.pop();
            }
        }
    }
    stats.retain(|s| s.count > 0);
    stats.sort_by(|a, b| {
        b.retained_bytes
            .cmp(&a.retained_bytes)
            .then(b.shallow_bytes.cmp(&a.shallow_bytes))
            .then(a.class.cmp(&b.class))
    });
    stats
}

/// A string value held by several string objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuplicateString {
    pub value: crate::graph::StringId,
    pub count: u64,
    /// Bytes of all copies but the biggest.
    pub wasted_bytes: u64,
}

/// Whether a node's name is its string value (V8 names concatenated strings by their type).
fn has_string_value(kind: crate::graph::NodeKind) -> bool {
    kind.is_string() && kind != crate::graph::NodeKind::ConsString
}

/// String values held by more than one string object, most wasted bytes first (at most `top`).
pub fn duplicate_strings(graph: &HeapGraph, top: usize) -> Vec<DuplicateString> {
    // First pass: how many string objects have each value (a counter per string-table entry).
    let mut copies = vec![0u32; graph.strings().len()];
    for node in graph.nodes() {
        if has_string_value(graph.kind(node)) {
            if let Some(c) = copies.get_mut(graph.name_id(node).0 as usize) {
                *c = c.saturating_add(1);
            }
        }
    }
    // Second pass: sizes of the values held more than once.
    let mut sizes: rustc_hash::FxHashMap<u32, (u64, u64)> = Default::default();
    for node in graph.nodes() {
        let name = graph.name_id(node).0;
        if has_string_value(graph.kind(node)) && copies.get(name as usize).is_some_and(|c| *c > 1) {
            let size = graph.self_size(node);
            let entry = sizes.entry(name).or_insert((0, 0));
            entry.0 = entry.0.saturating_add(size);
            entry.1 = entry.1.max(size);
        }
    }
    let mut rows: Vec<DuplicateString> = sizes
        .into_iter()
        .map(|(value, (total, biggest))| DuplicateString {
            value: crate::graph::StringId(value),
            count: u64::from(copies[value as usize]),
            wasted_bytes: total - biggest,
        })
        .filter(|d| d.wasted_bytes > 0)
        .collect();
    rows.sort_by(|a, b| {
        b.wasted_bytes
            .cmp(&a.wasted_bytes)
            .then(a.value.cmp(&b.value))
    });
    rows.truncate(top);
    rows
}
