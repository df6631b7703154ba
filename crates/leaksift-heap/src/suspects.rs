//! Leak suspects by Eclipse MAT's rule: top-level dominators retaining at least a threshold of
//! the heap, then classes whose top-level instances together do; for a single object the
//! accumulation point is found by following the biggest dominated child while it keeps ≥ 70% of
//! its parent, for a class along the common path from the GC roots to its instances.

use std::collections::{HashMap, HashSet};

use crate::dominators::Dominators;
use crate::graph::{ClassId, HeapGraph, NodeIndex, NodeKind};
use crate::paths::PathTree;

/// MAT's default threshold: a suspect retains at least 10% of the heap.
pub const DEFAULT_THRESHOLD: f64 = 0.10;
/// MAT's accumulation rule: descend while the biggest child keeps this share of its parent.
pub const ACCUMULATION_RATIO: f64 = 0.70;
/// MAT's common path of a class suspect goes on while a step leads to more than this share of
/// the instances.
pub const COMMON_PATH_SHARE: f64 = 0.80;
/// The instances of a class suspect whose paths make the common path (MAT's `max_paths`; the
/// biggest ones here, MAT picks them at random).
pub const COMMON_PATH_INSTANCES: usize = 10_000;

/// What a suspect is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SuspectKind {
    /// One object retains the bytes.
    Single(NodeIndex),
    /// The top-level instances of a class together retain the bytes.
    Class {
        class: ClassId,
        instances: u64,
        /// The biggest instance (its path and accumulation point are shown).
        biggest: NodeIndex,
    },
}

/// A leak suspect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspect {
    pub kind: SuspectKind,
    pub retained_bytes: u64,
    /// Where the retained bytes pile up (may be the suspect itself).
    pub accumulation_point: NodeIndex,
}

impl Suspect {
    /// The object whose retaining path explains the suspect.
    pub fn representative(&self) -> NodeIndex {
        match self.kind {
            SuspectKind::Single(node) => node,
            SuspectKind::Class { biggest, .. } => biggest,
        }
    }
}

/// Whether a node only groups others (the root, V8's synthetic `(GC roots)` categories).
fn is_grouping(graph: &HeapGraph, node: NodeIndex) -> bool {
    node == graph.root() || matches!(graph.kind(node), NodeKind::Synthetic | NodeKind::Root)
}

/// Top-level dominators: nodes immediately dominated by the root or by a grouping node.
pub fn top_level_dominators(graph: &HeapGraph, dominators: &Dominators) -> Vec<NodeIndex> {
    let mut out = Vec::new();
    let mut stack = vec![graph.root()];
    while let Some(node) = stack.pop() {
        for child in dominators.dominated(node) {
            if is_grouping(graph, child) {
                stack.push(child);
            } else {
                out.push(child);
            }
        }
    }
    out.sort_by(|a, b| {
        dominators
            .retained(*b)
            .cmp(&dominators.retained(*a))
            .then(a.cmp(b))
    });
    out
}

/// Follows the biggest dominated child while it keeps at least [`ACCUMULATION_RATIO`] of its
/// parent's retained size.
pub fn accumulation_point(dominators: &Dominators, start: NodeIndex) -> NodeIndex {
    let mut current = start;
    loop {
        let biggest = dominators
            .dominated(current)
            .max_by_key(|c| (dominators.retained(*c), std::cmp::Reverse(c.0)));
        match biggest {
            Some(child)
                if dominators.retained(child) as f64
                    >= ACCUMULATION_RATIO * dominators.retained(current) as f64
                    && dominators.retained(child) > 0 =>
            {
                current = child
            }
            _ => return current,
        }
    }
}

/// A class of the objects an accumulation point immediately dominates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccumulatedClass {
    pub class: ClassId,
    /// How many of those objects are of this class.
    pub count: u64,
    /// What they retain together.
    pub retained_bytes: u64,
}

/// What piles up at an accumulation point, as Eclipse MAT's "accumulated objects by class in
/// the dominator tree": the objects `point` immediately dominates, grouped by class, the `top`
/// classes retaining the most first (ties: more objects, then class order).
pub fn accumulated_by_class(
    graph: &HeapGraph,
    dominators: &Dominators,
    point: NodeIndex,
    top: usize,
) -> Vec<AccumulatedClass> {
    let mut by_class: rustc_hash::FxHashMap<ClassId, (u64, u64)> = Default::default();
    for child in dominators.dominated(point) {
        let entry = by_class.entry(graph.class(child)).or_default();
        entry.0 += 1;
        entry.1 = entry.1.saturating_add(dominators.retained(child));
    }
    let mut classes: Vec<AccumulatedClass> = by_class
        .into_iter()
        .map(|(class, (count, retained_bytes))| AccumulatedClass {
            class,
            count,
            retained_bytes,
        })
        .collect();
    classes.sort_by(|a, b| {
        (b.retained_bytes, b.count)
            .cmp(&(a.retained_bytes, a.count))
            .then(a.class.0.cmp(&b.class.0))
    });
    classes.truncate(top);
    classes
}

/// Finds the suspects retaining at least `threshold` (a fraction) of the root's retained size.
pub fn find_suspects(graph: &HeapGraph, dominators: &Dominators, threshold: f64) -> Vec<Suspect> {
    let total = dominators.retained(graph.root());
    find_suspects_among(graph, dominators, threshold, total, |_| true)
}

/// Like [`find_suspects`] over the top-level dominators `counted` accepts, against a heap of
/// `total` bytes (HPROF: garbage left out, as MAT does).
pub fn find_suspects_among(
    graph: &HeapGraph,
    dominators: &Dominators,
    threshold: f64,
    total: u64,
    counted: impl Fn(NodeIndex) -> bool,
) -> Vec<Suspect> {
    let limit = (threshold * total as f64).ceil() as u64;
    let mut top = top_level_dominators(graph, dominators);
    top.retain(|node| counted(*node));
    let mut suspects = Vec::new();
    for &node in &top {
        let retained = dominators.retained(node);
        if retained < limit.max(1) {
            break;
        }
        suspects.push(Suspect {
            kind: SuspectKind::Single(node),
            retained_bytes: retained,
            accumulation_point: accumulation_point(dominators, node),
        });
    }
    // Classes whose top-level instances (those not already reported alone) add up to the limit;
    // as MAT, not a class one of the single suspects belongs to.
    let single_classes: Vec<ClassId> = suspects
        .iter()
        .map(|s| graph.class(s.representative()))
        .collect();
    let mut by_class: Vec<(u64, u64, Option<NodeIndex>)> = vec![(0, 0, None); graph.class_count()];
    for &node in top.iter().skip(suspects.len()) {
        let entry = &mut by_class[graph.class(node).0 as usize];
        entry.0 = entry.0.saturating_add(dominators.retained(node));
        entry.1 += 1;
        if entry.2.is_none() {
            entry.2 = Some(node);
        }
    }
    let mut classes: Vec<(ClassId, u64, u64, NodeIndex)> = by_class
        .into_iter()
        .enumerate()
        .filter_map(|(class, (retained, instances, biggest))| {
            let class = ClassId(class as u32);
            (instances > 1 && retained >= limit.max(1) && !single_classes.contains(&class))
                .then_some((class, retained, instances, biggest?))
        })
        .collect();
    classes.sort_by_key(|c| std::cmp::Reverse(c.1));
    if classes.is_empty() {
        return suspects;
    }
    // The instances whose paths make each class's common path, the biggest first; one search
    // from the root reaches them all.
    let mut instances: Vec<Vec<NodeIndex>> = vec![Vec::new(); classes.len()];
    for &node in top.iter().skip(suspects.len()) {
        if let Some(at) = classes.iter().position(|c| c.0 == graph.class(node))
            && instances[at].len() < COMMON_PATH_INSTANCES
        {
            instances[at].push(node);
        }
    }
    let targets: Vec<NodeIndex> = instances.iter().flatten().copied().collect();
    let tree = PathTree::towards(graph, &targets);
    for ((class, retained, count, biggest), members) in classes.into_iter().zip(&instances) {
        suspects.push(Suspect {
            kind: SuspectKind::Class {
                class,
                instances: count,
                biggest,
            },
            retained_bytes: retained,
            accumulation_point: common_path_end(graph, dominators, &tree, members)
                .unwrap_or_else(|| accumulation_point(dominators, biggest)),
        });
    }
    suspects
}

/// MAT's accumulation point of a group of objects: the end of the common path from the GC roots
/// to them — from the root, follow the step that leads to the most of them while it leads to
/// more than [`COMMON_PATH_SHARE`] of them and its objects keep [`ACCUMULATION_RATIO`] of the
/// retained size the previous step led to. `None` when the paths part at the root (no common
/// holder) or when none of them is reachable.
fn common_path_end(
    graph: &HeapGraph,
    dominators: &Dominators,
    tree: &PathTree,
    members: &[NodeIndex],
) -> Option<NodeIndex> {
    // The members' paths as a tree (each path walked up only to the first node already seen,
    // so a queue of a million objects is not walked a million times), then for every node on
    // them how many members it leads to and their retained bytes.
    let mut own: HashMap<NodeIndex, (u64, u64)> = HashMap::new();
    let mut children: HashMap<NodeIndex, Vec<NodeIndex>> = HashMap::new();
    let mut on_paths: HashSet<NodeIndex> = HashSet::new();
    let mut reached = 0u64;
    for &member in members.iter().filter(|m| tree.reaches(**m)) {
        reached += 1;
        let entry = own.entry(member).or_insert((0, 0));
        entry.0 += 1;
        entry.1 = entry.1.saturating_add(dominators.retained(member));
        if !on_paths.insert(member) {
            continue;
        }
        let mut node = member;
        while let Some(up) = tree.parent(node) {
            children.entry(up).or_default().push(node);
            if !on_paths.insert(up) {
                break;
            }
            node = up;
        }
    }
    let mut below: HashMap<NodeIndex, (u64, u64)> = HashMap::new();
    let mut stack = vec![(graph.root(), false)];
    while let Some((node, done)) = stack.pop() {
        let kids = children.get(&node).map_or(&[][..], Vec::as_slice);
        if !done {
            stack.push((node, true));
            stack.extend(kids.iter().map(|&k| (k, false)));
            continue;
        }
        let mut sum = own.get(&node).copied().unwrap_or((0, 0));
        for kid in kids {
            let (count, bytes) = below[kid];
            sum = (sum.0 + count, sum.1.saturating_add(bytes));
        }
        below.insert(node, sum);
    }
    let share = (COMMON_PATH_SHARE * reached as f64) as u64;
    let mut current = graph.root();
    loop {
        let (_, current_retained) = below.get(&current).copied()?;
        let next = children.get(&current).and_then(|c| {
            c.iter()
                .copied()
                .max_by_key(|n| (below[n].0, std::cmp::Reverse(n.0)))
        });
        let Some(next) = next else {
            break;
        };
        let (next_count, next_retained) = below[&next];
        if next_count <= share
            || (next_retained as f64) < ACCUMULATION_RATIO * current_retained as f64
        {
            break;
        }
        current = next;
    }
    (current != graph.root()).then_some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::*;

    /// root -> a (10) -> b (1000) -> c (900); root -> d (50); root -> e1, e2 (class E, 80 each)
    fn graph() -> HeapGraph {
        build(
            &[
                ("Root", 0),
                ("A", 10),
                ("B", 1000),
                ("C", 900),
                ("D", 50),
                ("E", 80),
                ("E", 80),
            ],
            &[(0, 1), (1, 2), (2, 3), (0, 4), (0, 5), (0, 6)],
        )
    }

    /// Nodes `(class, size)` (the first is the root) and edges `(from, to)`.
    fn build(nodes: &[(&str, u64)], edges: &[(u32, u32)]) -> HeapGraph {
        let mut b = GraphBuilder::new(HeapFormat::Hprof, StringTable::new(), 8, 8);
        let class = |b: &mut GraphBuilder, name: &str| {
            let s = b.strings_mut().intern(name).unwrap();
            (b.intern_class(ClassInfo::named(s)).unwrap(), s)
        };
        for (i, (name, size)) in nodes.iter().enumerate() {
            let (class, s) = class(&mut b, name);
            b.add_node(NodeData {
                id: ObjectId(i as u64),
                class,
                name: s,
                self_size: *size,
                kind: if i == 0 {
                    NodeKind::Root
                } else {
                    NodeKind::Instance
                },
                flags: NodeFlags::default(),
            })
            .unwrap();
        }
        for &(from, to) in edges {
            b.add_edge(
                NodeIndex(from),
                EdgeData {
                    to: NodeIndex(to),
                    kind: EdgeKind::Field,
                    name: EdgeName::Index(0),
                    essential: true,
                },
            );
        }
        b.finish().unwrap()
    }

    #[test]
    fn finds_single_and_class_suspects_with_accumulation_points() {
        let g = graph();
        let d = Dominators::compute(&g);
        assert_eq!(d.retained(g.root()), 2120);
        let s = find_suspects(&g, &d, 0.05);
        // A retains 1910 (90%); its biggest child B keeps 1900 ≥ 70%, then C keeps 900 < 70% of B.
        assert_eq!(s[0].kind, SuspectKind::Single(NodeIndex(1)));
        assert_eq!(s[0].retained_bytes, 1910);
        assert_eq!(s[0].accumulation_point, NodeIndex(2));
        // D (50) and each E (80) are below 5% alone (106); the two E together (160) are not.
        assert_eq!(s.len(), 2);
        assert!(matches!(s[1].kind, SuspectKind::Class { instances: 2, .. }));
        assert_eq!(s[1].retained_bytes, 160);
    }

    #[test]
    fn accumulated_objects_are_grouped_by_class_biggest_first() {
        // The root immediately dominates A (1910), D (50) and the two E (80 each).
        let g = graph();
        let d = Dominators::compute(&g);
        let got: Vec<(String, u64, u64)> = accumulated_by_class(&g, &d, g.root(), 2)
            .iter()
            .map(|c| (g.class_name(c.class).to_string(), c.count, c.retained_bytes))
            .collect();
        assert_eq!(got, [("A".into(), 1, 1910), ("E".into(), 2, 160)]);
        // B dominates only C.
        let below_b = accumulated_by_class(&g, &d, NodeIndex(2), 5);
        assert_eq!(below_b.len(), 1);
        assert_eq!((below_b[0].count, below_b[0].retained_bytes), (1, 900));
        assert!(accumulated_by_class(&g, &d, NodeIndex(3), 5).is_empty());
    }

    #[test]
    fn a_class_suspect_is_accumulated_in_the_collection_holding_its_instances() {
        // root -> h (8) -> list (16) -> i1..i4 (class I, 100 each); root -> p -> q -> x (8 each)
        // -> i1..i4 too: the I are top-level dominators (two ways in), their shortest paths all
        // go through h and the list, and the list is MAT's accumulation point for the group.
        let g = build(
            &[
                ("Root", 0),
                ("H", 8),
                ("List", 16),
                ("I", 100),
                ("I", 100),
                ("I", 100),
                ("I", 100),
                ("X", 8),
                ("P", 8),
                ("Q", 8),
            ],
            &[
                (0, 1),
                (0, 8),
                (1, 2),
                (2, 3),
                (2, 4),
                (2, 5),
                (2, 6),
                (8, 9),
                (9, 7),
                (7, 3),
                (7, 4),
                (7, 5),
                (7, 6),
            ],
        );
        let d = Dominators::compute(&g);
        let s = find_suspects(&g, &d, 0.5);
        assert_eq!(s.len(), 1, "{s:?}");
        assert!(matches!(s[0].kind, SuspectKind::Class { instances: 4, .. }));
        assert_eq!(s[0].retained_bytes, 400);
        // Not inside one instance (the old answer: the biggest instance itself).
        assert_eq!(s[0].accumulation_point, NodeIndex(2));
    }

    #[test]
    fn a_member_on_another_members_path_can_be_the_accumulation_point() {
        // root -> h (8) -> list (16) -> i1 (I, 100) -> i2 (I, 100); root -> p -> q -> x (8
        // each) -> i1, i2: both top-level, i2's path goes through i1. The common path ends at
        // i1 (the step to i2 leads to one of two instances, not more than 80%).
        let g = build(
            &[
                ("Root", 0),
                ("H", 8),
                ("List", 16),
                ("I", 100),
                ("I", 100),
                ("X", 8),
                ("P", 8),
                ("Q", 8),
            ],
            &[
                (0, 1),
                (0, 6),
                (1, 2),
                (2, 3),
                (3, 4),
                (6, 7),
                (7, 5),
                (5, 3),
                (5, 4),
            ],
        );
        let d = Dominators::compute(&g);
        let s = find_suspects(&g, &d, 0.5);
        assert_eq!(s.len(), 1, "{s:?}");
        assert!(matches!(s[0].kind, SuspectKind::Class { instances: 2, .. }));
        assert_eq!(s[0].accumulation_point, NodeIndex(3));
    }

    #[test]
    fn no_class_suspect_for_the_class_of_a_single_suspect() {
        // root -> t1 (T, 600); root -> t2, t3, t4 (T, 200 each): MAT reports
        // t1 alone and no class suspect for T, although the other three add up to 600 too.
        let g = build(
            &[("Root", 0), ("T", 600), ("T", 200), ("T", 200), ("T", 200)],
            &[(0, 1), (0, 2), (0, 3), (0, 4)],
        );
        let d = Dominators::compute(&g);
        let s = find_suspects(&g, &d, 0.3);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].kind, SuspectKind::Single(NodeIndex(1)));
    }

    #[test]
    fn left_out_dominators_are_neither_suspects_nor_in_the_total() {
        let g = graph();
        let d = Dominators::compute(&g);
        // Without A (1910 bytes) the heap is 210 bytes: the two E (160) are 76% of it, D is 24%.
        let s = find_suspects_among(&g, &d, 0.2, 210, |n| n != NodeIndex(1));
        assert!(
            s.iter().all(|x| x.representative() != NodeIndex(1)),
            "{s:?}"
        );
        assert_eq!(s[0].kind, SuspectKind::Single(NodeIndex(5)));
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(s.contains(&Suspect {
            kind: SuspectKind::Single(NodeIndex(4)),
            retained_bytes: 50,
            accumulation_point: NodeIndex(4),
        }));
    }

    #[test]
    fn class_histogram_counts_nested_instances_once() {
        let g = graph();
        let d = Dominators::compute(&g);
        let h = crate::histogram::class_histogram(&g, &d);
        let e = h.iter().find(|c| g.class_name(c.class) == "E").unwrap();
        assert_eq!((e.count, e.shallow_bytes, e.retained_bytes), (2, 160, 160));
        let a = h.iter().find(|c| g.class_name(c.class) == "A").unwrap();
        assert_eq!(a.retained_bytes, 1910);
        assert_eq!(h[0].class, a.class);
    }
}
