//! Class histograms: per class, the instance count, shallow bytes and retained bytes (DevTools'
//! Summary view rule: instances of a class nested under another instance of the same class in
//! the dominator tree are not counted twice).

use rayon::prelude::*;

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
    filter: impl Fn(NodeIndex) -> bool + Sync,
) -> Vec<ClassStats> {
    histogram_with(graph, dominators, filter, graph.node_count() / SPARSE_SHARE)
}

/// [`class_histogram_filtered`], finding retained sizes by walking up from each accepted node
/// when there are at most `sparse_limit` of them, else by walking the whole dominator tree.
fn histogram_with(
    graph: &HeapGraph,
    dominators: &Dominators,
    filter: impl Fn(NodeIndex) -> bool + Sync,
    sparse_limit: usize,
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
    let mut accepted = Vec::new();
    for node in graph.nodes() {
        let size = sizes.get(node.get());
        if size == 0 || !filter(node) {
            continue;
        }
        let s = &mut stats[class_of.get(node.get()) as usize];
        s.count += 1;
        s.shallow_bytes = s.shallow_bytes.saturating_add(size);
        if accepted.len() <= sparse_limit {
            accepted.push(node);
        }
    }
    if accepted.len() <= sparse_limit
        && add_retained_by_ancestors(graph, dominators, &filter, &accepted, &mut stats)
    {
        return sorted(stats);
    }
    for s in &mut stats {
        s.retained_bytes = 0;
    }
    let total = dominators.retained(dominators.root());
    let split_above = total / SUBTREES_PER_WALK;
    for (s, retained) in stats
        .iter_mut()
        .zip(walk_tree(graph, dominators, &filter, split_above))
    {
        s.retained_bytes = retained;
    }
    sorted(stats)
}

/// The dominator tree is cut into subtrees of at most about 1/this of the root's retained size,
/// walked on every core.
const SUBTREES_PER_WALK: u64 = 64;

/// At most this many nodes are taken apart to cut the tree into subtrees (a long chain of
/// big nodes stays whole below that).
const MAX_SPLITS: usize = 4096;

/// A node with more children than this is not taken apart (each child would be a subtree of
/// its own to queue and walk).
const MAX_SPLIT_CHILDREN: usize = 1 << 14;

/// A subtree to walk: its top node, and the classes counted on the path above it (an index in
/// a list of (parent index, class) links; `u32::MAX` = none).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Subtree {
    retained: u64,
    node: u32,
    path: u32,
}

/// Per class, the retained sizes of its counted instances that no other counted instance of
/// the class dominates, walking the dominator tree depth-first while tracking how many counted
/// instances of each class are on the current path (a node counts only if none are). The
/// nodes retaining more than `split_above` bytes are taken apart first (at most
/// [`MAX_SPLITS`], biggest first, none with over [`MAX_SPLIT_CHILDREN`] children), and the
/// subtrees left are walked in parallel.
fn walk_tree<F: Fn(NodeIndex) -> bool + Sync>(
    graph: &HeapGraph,
    dominators: &Dominators,
    filter: &F,
    split_above: u64,
) -> Vec<u64> {
    let classes = graph.class_count();
    let class_of = graph.classes();
    let sizes = graph.self_sizes();
    // Whether `node` counts, given whether a counted instance of its class is above it.
    let counts = |node: NodeIndex, class_above: bool| {
        !class_above && sizes.get(node.get()) != 0 && filter(node)
    };
    let mut retained = vec![0u64; classes];
    let mut links: Vec<(u32, u32)> = Vec::new();
    let on_path = |links: &[(u32, u32)], mut path: u32, class: u32| {
        while path != u32::MAX {
            let (parent, counted) = links[path as usize];
            if counted == class {
                return true;
            }
            path = parent;
        }
        false
    };
    let root = dominators.root();
    let mut pending = std::collections::BinaryHeap::from([Subtree {
        retained: dominators.retained(root),
        node: root.0,
        path: u32::MAX,
    }]);
    // Subtrees kept whole although big: their top has too many children to take apart.
    let mut whole = Vec::new();
    for _ in 0..MAX_SPLITS {
        let Some(top) = pending.pop() else { break };
        if top.retained <= split_above {
            pending.push(top);
            break;
        }
        let node = NodeIndex(top.node);
        if dominators.dominated_ordinals(node).len() > MAX_SPLIT_CHILDREN {
            whole.push(top);
            continue;
        }
        let mut path = top.path;
        let class = class_of.get(node.get());
        if counts(node, on_path(&links, top.path, class)) {
            retained[class as usize] =
                retained[class as usize].saturating_add(dominators.retained(node));
            links.push((path, class));
            path = links.len() as u32 - 1;
        }
        pending.extend(dominators.dominated(node).map(|child| Subtree {
            retained: dominators.retained(child),
            node: child.0,
            path,
        }));
    }
    // In decreasing node order, as a single walk from the root would take them: nodes near
    // each other in the tree are often near each other in memory.
    let mut subtrees = pending.into_vec();
    subtrees.append(&mut whole);
    subtrees.sort_unstable_by_key(|s| std::cmp::Reverse(s.node));
    // The stack holds nodes to visit and, below a counted node's children, the mark that
    // leaves it (its class with `LEAVE`).
    const LEAVE: u64 = 1 << 32;
    let walk = |(mut active, mut retained): (Vec<u32>, Vec<u64>), subtree: &Subtree| {
        let mut path = subtree.path;
        while path != u32::MAX {
            let (parent, class) = links[path as usize];
            active[class as usize] += 1;
            path = parent;
        }
        let mut stack: Vec<u64> = vec![u64::from(subtree.node)];
        while let Some(entry) = stack.pop() {
            if entry & LEAVE != 0 {
                active[(entry & !LEAVE) as usize] -= 1;
                continue;
            }
            let node = NodeIndex(entry as u32);
            let class = class_of.get(node.get());
            if counts(node, active[class as usize] != 0) {
                let r = &mut retained[class as usize];
                *r = r.saturating_add(dominators.retained(node));
                active[class as usize] += 1;
                stack.push(LEAVE | u64::from(class));
            }
            stack.extend(
                dominators
                    .dominated_ordinals(node)
                    .iter()
                    .map(|c| u64::from(*c)),
            );
        }
        let mut path = subtree.path;
        while path != u32::MAX {
            let (parent, class) = links[path as usize];
            active[class as usize] -= 1;
            path = parent;
        }
        (active, retained)
    };
    let sum = |mut a: Vec<u64>, b: Vec<u64>| {
        for (x, y) in a.iter_mut().zip(b) {
            *x = x.saturating_add(y);
        }
        a
    };
    let walked = subtrees
        .par_iter()
        .fold(|| (vec![0u32; classes], vec![0u64; classes]), walk)
        .map(|(_, retained)| retained)
        .reduce(|| vec![0u64; classes], sum);
    sum(retained, walked)
}

/// A filter accepting at most one node in this many is sparse: its instances' retained sizes
/// are found by walking up the dominator tree from each instead of walking the whole tree.
const SPARSE_SHARE: usize = 64;

/// Adds the retained size of every `accepted` node (in node order) that has no accepted
/// dominator of its class, found by walking up its dominators. A node's topmost accepted
/// dominator of its class is never itself below another, so this is the rule of the tree walk.
/// Gives up (returning false, stats partly filled) after as many steps as the graph has nodes.
fn add_retained_by_ancestors(
    graph: &HeapGraph,
    dominators: &Dominators,
    filter: &impl Fn(NodeIndex) -> bool,
    accepted: &[NodeIndex],
    stats: &mut [ClassStats],
) -> bool {
    let class_of = graph.classes();
    let sizes = graph.self_sizes();
    let mut budget = graph.node_count();
    for &node in accepted {
        let class = class_of.get(node.get());
        let mut ancestor = node;
        let nested = loop {
            let up = dominators.idom(ancestor);
            if up == ancestor {
                break false;
            }
            if budget == 0 {
                return false;
            }
            budget -= 1;
            ancestor = up;
            if class_of.get(up.get()) == class && sizes.get(up.get()) != 0 && filter(up) {
                break true;
            }
        };
        if !nested {
            let s = &mut stats[class as usize];
            s.retained_bytes = s.retained_bytes.saturating_add(dominators.retained(node));
        }
    }
    true
}

/// The classes with instances, largest retained size first (then shallow size, then class id).
fn sorted(mut stats: Vec<ClassStats>) -> Vec<ClassStats> {
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

/// Whether a node's name is its string value (V8 names concatenated and sliced strings by
/// their kind: "(concatenated string)", "(sliced string)").
fn has_string_value(kind: crate::graph::NodeKind) -> bool {
    use crate::graph::NodeKind;
    kind.is_string() && !matches!(kind, NodeKind::ConsString | NodeKind::SlicedString)
}

/// String values held by more than one string object, most wasted bytes first (at most `top`).
pub fn duplicate_strings(graph: &HeapGraph, top: usize) -> Vec<DuplicateString> {
    // First pass: how many string objects have each value (a counter per string-table entry).
    let mut copies = vec![0u32; graph.strings().len()];
    for node in graph.nodes() {
        if has_string_value(graph.kind(node))
            && let Some(c) = copies.get_mut(graph.name_id(node).0 as usize)
        {
            *c = c.saturating_add(1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{
        ClassInfo, EdgeData, EdgeKind, EdgeName, GraphBuilder, HeapFormat, NodeData, NodeFlags,
        NodeKind, ObjectId, StringTable,
    };
    use proptest::prelude::*;

    /// A graph of `n` nodes with the given edges, node `i` of class `i % classes` and size `i % 5`.
    fn graph(n: usize, classes: u32, edges: &[(u32, u32)]) -> HeapGraph {
        let mut b = GraphBuilder::new(HeapFormat::V8, StringTable::new(), n, edges.len());
        let name = b.strings_mut().push("x").unwrap();
        let class_ids: Vec<ClassId> = (0..classes)
            .map(|c| {
                let label = b.strings_mut().push(&format!("C{c}")).unwrap();
                b.intern_class(ClassInfo::named(label)).unwrap()
            })
            .collect();
        for i in 0..n {
            b.add_node(NodeData {
                id: ObjectId(i as u64),
                class: class_ids[i % classes as usize],
                name,
                self_size: (i % 5) as u64,
                kind: NodeKind::Object,
                flags: NodeFlags::default(),
            })
            .unwrap();
        }
        for &(from, to) in edges {
            b.add_edge(
                NodeIndex(from % n as u32),
                EdgeData {
                    to: NodeIndex(to % n as u32),
                    kind: EdgeKind::Property,
                    name: EdgeName::Named(name),
                    essential: true,
                },
            );
        }
        b.finish().unwrap()
    }

    proptest! {
        #[test]
        fn walking_up_equals_walking_the_tree(
            n in 1usize..40,
            classes in 1u32..4,
            edges in proptest::collection::vec((0u32..40, 0u32..40), 0..120),
            accepted in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let g = graph(n, classes, &edges);
            let dominators = Dominators::compute(&g);
            let filter = |node: NodeIndex| accepted[node.get()];
            let by_tree = histogram_with(&g, &dominators, filter, 0);
            let by_ancestors = histogram_with(&g, &dominators, filter, usize::MAX);
            prop_assert_eq!(by_tree, by_ancestors);
        }

        #[test]
        fn walking_subtrees_in_parallel_equals_one_walk(
            n in 1usize..40,
            classes in 1u32..4,
            edges in proptest::collection::vec((0u32..40, 0u32..40), 0..120),
            accepted in proptest::collection::vec(any::<bool>(), 40),
            split_above in 0u64..12,
        ) {
            let g = graph(n, classes, &edges);
            let dominators = Dominators::compute(&g);
            let filter = |node: NodeIndex| accepted[node.get()];
            let whole = walk_tree(&g, &dominators, &filter, u64::MAX);
            let cut = walk_tree(&g, &dominators, &filter, split_above);
            prop_assert_eq!(whole, cut);
        }
    }
}
