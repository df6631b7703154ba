//! Comparing snapshots: the two-way per-class comparison (DevTools' Comparison view, objects
//! matched by id) and three-way leak finding (allocated between baseline and target, still alive
//! in final), grouped by normalized retaining-path signature and ranked by exact retained size.

use std::collections::HashMap;

use crate::dominators::Dominators;
use crate::graph::{
    ClassId, EdgeIndex, EdgeKind, EdgeName, HeapGraph, NodeIndex, NodeKind, SourceLocation,
};
use crate::histogram::ClassStats;
use crate::paths::{PathTree, RetainingPath};

/// New and deleted objects of one class between a base and a target snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassDiff {
    pub name: String,
    pub location: Option<SourceLocation>,
    pub new_count: u64,
    pub new_bytes: u64,
    pub deleted_count: u64,
    pub deleted_bytes: u64,
}

impl ClassDiff {
    /// New minus deleted bytes.
    pub fn delta_bytes(&self) -> i128 {
        i128::from(self.new_bytes) - i128::from(self.deleted_bytes)
    }

    /// New minus deleted instances.
    pub fn delta_count(&self) -> i128 {
        i128::from(self.new_count) - i128::from(self.deleted_count)
    }
}

type ClassKey = (String, Option<SourceLocation>);

/// `(class key, id, self size)` of every node with a non-zero self size, sorted by key then id.
fn keyed_nodes(graph: &HeapGraph, keys: &mut HashMap<ClassKey, u32>) -> Vec<(u32, u64, u64)> {
    let mut class_keys: Vec<u32> = Vec::with_capacity(graph.class_count());
    for class in 0..graph.class_count() as u32 {
        let info = graph.class_info(ClassId(class));
        let key = (graph.string(info.name).into_owned(), info.location);
        let next = keys.len() as u32;
        class_keys.push(*keys.entry(key).or_insert(next));
    }
    let mut out: Vec<(u32, u64, u64)> = graph
        .nodes()
        .zip(graph.ids().iter())
        .filter(|(n, _)| graph.self_size(*n) != 0)
        .map(|(n, id)| {
            (
                class_keys[graph.class(n).0 as usize],
                id,
                graph.self_size(n),
            )
        })
        .collect();
    out.sort_unstable();
    out
}

/// Per class (name and constructor location), objects in `target` whose id is not in `base`
/// (new) and objects of `base` whose id is not in `target` (deleted). Classes without changes are
/// left out; the largest absolute byte change comes first.
pub fn compare(base: &HeapGraph, target: &HeapGraph) -> Vec<ClassDiff> {
    let mut keys: HashMap<ClassKey, u32> = HashMap::new();
    let a = keyed_nodes(base, &mut keys);
    let b = keyed_nodes(target, &mut keys);
    let mut names: Vec<Option<ClassKey>> = vec![None; keys.len()];
    for (key, index) in keys {
        names[index as usize] = Some(key);
    }
    let mut diffs: Vec<ClassDiff> = names
        .into_iter()
        .map(|key| {
            let (name, location) = key.unwrap_or_default();
            ClassDiff {
                name,
                location,
                new_count: 0,
                new_bytes: 0,
                deleted_count: 0,
                deleted_bytes: 0,
            }
        })
        .collect();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let left = a.get(i).map(|x| (x.0, x.1));
        let right = b.get(j).map(|x| (x.0, x.1));
        match (left, right) {
            (Some(l), Some(r)) if l == r => {
                i += 1;
                j += 1;
            }
            (Some(l), Some(r)) if l < r => {
                diffs[l.0 as usize].deleted_count += 1;
                diffs[l.0 as usize].deleted_bytes =
                    diffs[l.0 as usize].deleted_bytes.saturating_add(a[i].2);
                i += 1;
            }
            (Some(l), None) => {
                diffs[l.0 as usize].deleted_count += 1;
                diffs[l.0 as usize].deleted_bytes =
                    diffs[l.0 as usize].deleted_bytes.saturating_add(a[i].2);
                i += 1;
            }
            (_, Some(r)) => {
                diffs[r.0 as usize].new_count += 1;
                diffs[r.0 as usize].new_bytes =
                    diffs[r.0 as usize].new_bytes.saturating_add(b[j].2);
                j += 1;
            }
            (None, None) => break,
        }
    }
    diffs.retain(|d| d.new_count + d.deleted_count > 0);
    sort_by_change(&mut diffs);
    diffs
}

/// One class's totals in two heaps compared class by class (instances, shallow and retained
/// bytes as in [`ClassStats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassGrowth {
    pub name: String,
    pub location: Option<SourceLocation>,
    /// Totals in the base heap (zero when the class has no instances there).
    pub base: ClassTotals,
    /// Totals in the compared heap.
    pub target: ClassTotals,
}

/// Instances, shallow and retained bytes of one class in one heap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassTotals {
    pub count: u64,
    pub shallow_bytes: u64,
    pub retained_bytes: u64,
}

impl ClassGrowth {
    /// Compared minus base instances.
    pub fn delta_count(&self) -> i128 {
        i128::from(self.target.count) - i128::from(self.base.count)
    }

    /// Compared minus base shallow bytes.
    pub fn delta_shallow_bytes(&self) -> i128 {
        i128::from(self.target.shallow_bytes) - i128::from(self.base.shallow_bytes)
    }

    /// Compared minus base retained bytes.
    pub fn delta_retained_bytes(&self) -> i128 {
        i128::from(self.target.retained_bytes) - i128::from(self.base.retained_bytes)
    }
}

/// Per class (by name and location), the totals of two histograms side by side: for formats
/// whose object ids are addresses (HPROF), where objects cannot be matched one by one. Classes
/// whose totals are equal are left out; the largest retained growth comes first, then the
/// largest shallow growth (shrinking classes last).
pub fn compare_histograms(
    base: &HeapGraph,
    base_classes: &[ClassStats],
    target: &HeapGraph,
    target_classes: &[ClassStats],
) -> Vec<ClassGrowth> {
    let mut rows: HashMap<ClassKey, ClassGrowth> = HashMap::new();
    for (graph, classes, in_target) in [(base, base_classes, false), (target, target_classes, true)]
    {
        for stats in classes {
            let info = graph.class_info(stats.class);
            let key = (graph.string(info.name).into_owned(), info.location);
            let row = rows.entry(key).or_default();
            let totals = if in_target {
                &mut row.target
            } else {
                &mut row.base
            };
            // Several class objects may share a name (one per class loader): add them up.
            totals.count += stats.count;
            totals.shallow_bytes = totals.shallow_bytes.saturating_add(stats.shallow_bytes);
            totals.retained_bytes = totals.retained_bytes.saturating_add(stats.retained_bytes);
        }
    }
    let mut growth: Vec<ClassGrowth> = rows
        .into_iter()
        .filter(|(_, row)| row.base != row.target)
        .map(|((name, location), row)| ClassGrowth {
            name,
            location,
            ..row
        })
        .collect();
    growth.sort_by(|x, y| {
        y.delta_retained_bytes()
            .cmp(&x.delta_retained_bytes())
            .then_with(|| y.delta_shallow_bytes().cmp(&x.delta_shallow_bytes()))
            .then_with(|| y.delta_count().cmp(&x.delta_count()))
            .then_with(|| x.name.cmp(&y.name))
    });
    growth
}

fn sort_by_change(diffs: &mut [ClassDiff]) {
    diffs.sort_by(|x, y| {
        y.delta_bytes()
            .abs()
            .cmp(&x.delta_bytes().abs())
            .then_with(|| x.name.cmp(&y.name))
    });
}

/// The sorted object ids of a snapshot, for membership tests in [`find_leaks`].
pub fn sorted_ids(graph: &HeapGraph) -> Vec<u64> {
    let mut ids: Vec<u64> = graph.ids().iter().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A group of leaked objects that share a retaining-path signature.
#[derive(Clone, Debug)]
pub struct LeakGroup {
    /// The class of the group's biggest top-level leaked object.
    pub class: ClassId,
    /// Leaked objects in the group (top-level ones and the leaked objects they dominate).
    pub count: u64,
    /// `count` by class, the program's classes before the engine's (`(array)`, `system / …`),
    /// most instances first, then by name: what the group is made of when its top-level objects
    /// are containers (a Map's backing table, a closure context).
    pub contents: Vec<(ClassId, u64)>,
    /// Top-level leaked objects (no other leaked object dominates them).
    pub roots: u64,
    /// Exact bytes freed if the group's top-level leaked objects were freed (their own sizes
    /// counted even when DevTools' folding moved them into an owner that is not leaked).
    pub retained_bytes: u64,
    /// The normalized path signature shared by the group.
    pub signature: String,
    /// The shortest retaining path of the biggest top-level object (none if unreachable).
    pub path: Option<RetainingPath>,
    /// The biggest top-level leaked object.
    pub representative: NodeIndex,
}

/// Finds objects of `final_graph` allocated after `baseline` and present in `target` (by id),
/// groups the top-level ones (those no other leaked object dominates) by the signature of their
/// shortest retaining path, and ranks groups by exact retained size. Nothing is filtered out
/// except grouping nodes (the root and synthetic categories).
pub fn find_leaks(
    baseline_ids: &[u64],
    target_ids: &[u64],
    final_graph: &HeapGraph,
    dominators: &Dominators,
) -> Vec<LeakGroup> {
    let n = final_graph.node_count();
    let leaked: Vec<bool> = final_graph
        .nodes()
        .zip(final_graph.ids().iter())
        .map(|(node, id)| {
            let kind = final_graph.kind(node);
            node != final_graph.root()
                && !matches!(kind, NodeKind::Synthetic | NodeKind::Root)
                && target_ids.binary_search(&id).is_ok()
                && baseline_ids.binary_search(&id).is_err()
        })
        .collect();
    // top[n] = the top-level leaked node above n (itself if it is one), u32::MAX if none.
    let mut top = vec![u32::MAX; n];
    for &node in dominators.preorder() {
        let node_index = NodeIndex(node);
        let dominator = dominators.idom(node_index);
        let above = if dominator == node_index {
            u32::MAX
        } else {
            top[dominator.get()]
        };
        top[node as usize] = if above != u32::MAX {
            above
        } else if leaked[node as usize] {
            node
        } else {
            u32::MAX
        };
    }
    let tree = PathTree::new(final_graph, &[]);
    let mut signatures = Signatures::new(final_graph, &tree);
    struct Building {
        class_retained: HashMap<ClassId, u64>,
        class_counts: HashMap<ClassId, u64>,
        count: u64,
        roots: u64,
        retained: u64,
        representative: NodeIndex,
        /// The representative's retained size and path length (longest paths rank last).
        rank: (u64, std::cmp::Reverse<u32>),
    }
    let mut groups: HashMap<u32, Building> = HashMap::new();
    let mut unreachable_groups: HashMap<ClassId, u32> = HashMap::new();
    let mut group_of_top: HashMap<u32, u32> = HashMap::new();
    for node in 0..n as u32 {
        if top[node as usize] == node {
            let node_index = NodeIndex(node);
            let (group_key, depth) = match signatures.of(node_index) {
                Some(found) => found,
                None => {
                    // Unreachable top-level objects group by class, apart from every path.
                    let next = u32::MAX - unreachable_groups.len() as u32;
                    let key = *unreachable_groups
                        .entry(final_graph.class(node_index))
                        .or_insert(next);
                    (key, u32::MAX)
                }
            };
            // A top-level leaked object's own size, if DevTools' folding moved it into an
            // owner that is not leaked (a grown array's new backing store), is leaked memory
            // all the same: count it here. (The owner dominates what it owns, so sizes folded
            // from below this object stay in its subtree, unless they too are owned from
            // above it through it: internal arrays inside a folded store, not counted.)
            let retained = dominators
                .retained(node_index)
                .saturating_add(final_graph.folded_self_size(node_index));
            let rank = (retained, std::cmp::Reverse(depth));
            let group = groups.entry(group_key).or_insert(Building {
                class_retained: HashMap::new(),
                class_counts: HashMap::new(),
                count: 0,
                roots: 0,
                retained: 0,
                representative: node_index,
                rank,
            });
            group.roots += 1;
            group.retained = group.retained.saturating_add(retained);
            let class_total = group
                .class_retained
                .entry(final_graph.class(node_index))
                .or_default();
            *class_total = class_total.saturating_add(retained);
            if rank > group.rank {
                group.representative = node_index;
                group.rank = rank;
            }
            group_of_top.insert(node, group_key);
        }
    }
    let unreachable_class: HashMap<u32, ClassId> = unreachable_groups
        .into_iter()
        .map(|(class, key)| (key, class))
        .collect();
    for node in 0..n {
        if leaked[node]
            && top[node] != u32::MAX
            && let Some(group) = group_of_top
                .get(&top[node])
                .and_then(|key| groups.get_mut(key))
        {
            group.count += 1;
            *group
                .class_counts
                .entry(final_graph.class(NodeIndex(node as u32)))
                .or_default() += 1;
        }
    }
    let mut out: Vec<LeakGroup> = groups
        .into_iter()
        .map(|(key, g)| {
            let signature = match unreachable_class.get(&key) {
                Some(class) => format!("(unreachable) {}", final_graph.class_name(*class)),
                None => signatures.render(key),
            };
            let class = g
                .class_retained
                .iter()
                .max_by_key(|(class, bytes)| (**bytes, std::cmp::Reverse(**class)))
                .map_or(final_graph.class(g.representative), |(class, _)| *class);
            let mut contents: Vec<(ClassId, u64)> = g.class_counts.into_iter().collect();
            contents.sort_by_cached_key(|(class, count)| {
                let name = final_graph.class_name(*class).into_owned();
                (is_engine_class(&name), std::cmp::Reverse(*count), name)
            });
            LeakGroup {
                class,
                count: g.count,
                contents,
                roots: g.roots,
                retained_bytes: g.retained,
                path: tree.path_to(final_graph, g.representative),
                representative: g.representative,
                signature,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.retained_bytes
            .cmp(&a.retained_bytes)
            .then_with(|| a.signature.cmp(&b.signature))
    });
    out
}

/// Whether a class is the engine's rather than the program's: V8 names its internal objects
/// `(array)`, `(string)`, `(compiled code)`…, or `system / Context`, `system / Map`….
fn is_engine_class(name: &str) -> bool {
    name.starts_with('(') || name.starts_with("system / ")
}

/// Writes a property (or other) edge name with the parts that differ from key to key of one
/// dictionary folded to `#`: a UUID whole, and every run of hex digits that holds a decimal
/// digit (`user_17` → `user_#`, `3f2a9c1e-4b7d-…` → `#`, `0x7ffd` → `#x#`). Objects stored as
/// `sessions[randomUUID()]` were 400 leak groups of one object each, not one group.
fn push_generic_key(out: &mut String, name: &str) {
    if is_uuid(name) {
        out.push('#');
        return;
    }
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.bytes().any(|b| b.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for ch in name.chars() {
        if ch.is_ascii_hexdigit() {
            run.push(ch);
        } else {
            flush(&mut run, out);
            out.push(ch);
        }
    }
    flush(&mut run, out);
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hex digits.
fn is_uuid(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(part, len)| part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Retaining-path signatures of many nodes, built along the BFS tree so that every node's
/// signature is worked out once: a node's signature is its parent's plus one step (edge kind,
/// edge name with indices as `[]` and generated key parts as `#` ([`push_generic_key`];
/// closure variables as named), class name). A step, or a pair of
/// steps, that repeats the one just before it is absorbed, so that the members of a linked list
/// (`_idleNext` → `_idleNext` → …) share one signature whatever their position.
struct Signatures<'g> {
    graph: &'g HeapGraph,
    tree: &'g PathTree,
    /// Per graph node: its signature (an index into `trie`), `NOT_YET` when not worked out.
    of_node: Vec<u32>,
    /// Per graph node whose signature is known: its path length.
    depth: Vec<u32>,
    step_ids: HashMap<String, u32>,
    step_text: Vec<String>,
    /// Signatures as a trie: `(parent signature or NOT_YET for the root's, last step)`.
    trie: Vec<(u32, u32)>,
    children: HashMap<(u32, u32), u32>,
    /// Entry edges of parents with more than [`WIDE_PARENT_EDGES`] edges, by parent.
    wide_parents: HashMap<u32, HashMap<u32, EdgeIndex>>,
}

const NOT_YET: u32 = u32::MAX;

/// Parents with more edges than this have their entry edges looked up all at once.
const WIDE_PARENT_EDGES: u64 = 64;

impl<'g> Signatures<'g> {
    fn new(graph: &'g HeapGraph, tree: &'g PathTree) -> Signatures<'g> {
        Signatures {
            graph,
            tree,
            of_node: vec![NOT_YET; graph.node_count()],
            depth: vec![0; graph.node_count()],
            step_ids: HashMap::new(),
            step_text: Vec::new(),
            trie: Vec::new(),
            children: HashMap::new(),
            wide_parents: HashMap::new(),
        }
    }

    /// The signature and path length of `node`, `None` when it is unreachable.
    fn of(&mut self, node: NodeIndex) -> Option<(u32, u32)> {
        if !self.tree.reaches(node) {
            return None;
        }
        let mut pending = Vec::new();
        let mut current = node;
        while self.of_node[current.get()] == NOT_YET {
            match self.tree.parent(current) {
                Some(up) => {
                    let via = self.entry_edge(up, current);
                    pending.push((current, via));
                    current = up;
                }
                None => {
                    // The root: a signature of its own.
                    let step = self.step(self.graph.class_name(self.graph.class(current)).into());
                    self.of_node[current.get()] = self.extend(NOT_YET, step);
                    self.depth[current.get()] = 0;
                }
            }
        }
        while let Some((child, via)) = pending.pop() {
            let text = self.step_label(via, child);
            let step = self.step(text);
            self.of_node[child.get()] = self.extend(self.of_node[current.get()], step);
            self.depth[child.get()] = self.depth[current.get()] + 1;
            current = child;
        }
        Some((self.of_node[node.get()], self.depth[node.get()]))
    }

    /// The edge from `up` to its BFS child `node`; a parent with many edges has all of them
    /// looked up at once (one array holding every leaked object otherwise costs a scan of the
    /// array per object).
    fn entry_edge(&mut self, up: NodeIndex, node: NodeIndex) -> Option<EdgeIndex> {
        if self.graph.edge_range(up).end - self.graph.edge_range(up).start <= WIDE_PARENT_EDGES {
            return self.tree.entry_edge(self.graph, up, node);
        }
        let (graph, tree) = (self.graph, self.tree);
        self.wide_parents
            .entry(up.0)
            .or_insert_with(|| tree.entry_edges_from(graph, up))
            .get(&node.0)
            .copied()
    }

    fn step_label(&self, via: Option<EdgeIndex>, node: NodeIndex) -> String {
        let graph = self.graph;
        let mut out = String::new();
        if let Some(edge) = via {
            out.push_str(" -");
            out.push_str(&graph.edge_kind(edge).name());
            out.push(':');
            match graph.edge_name(edge) {
                EdgeName::Index(_) => out.push_str("[]"),
                // A closure variable is named by the programmer: `cacheV1` and `cacheV2` are two
                // caches, and read as one leak when their digits were folded.
                EdgeName::Named(name) if graph.edge_kind(edge) == EdgeKind::Context => {
                    out.push_str(&graph.string(name));
                }
                EdgeName::Named(name) => push_generic_key(&mut out, &graph.string(name)),
            }
            out.push_str("-> ");
        } else {
            out.push_str(" -?-> ");
        }
        out.push_str(&graph.class_name(graph.class(node)));
        out
    }

    fn step(&mut self, text: String) -> u32 {
        let next = self.step_text.len() as u32;
        *self.step_ids.entry(text.clone()).or_insert_with(|| {
            self.step_text.push(text);
            next
        })
    }

    /// `parent` followed by `step`, repeats absorbed.
    fn extend(&mut self, parent: u32, step: u32) -> u32 {
        if parent != NOT_YET {
            let (grandparent, last) = self.trie[parent as usize];
            // … A + A → … A
            if last == step {
                return parent;
            }
            // … A B A + B → … A B
            if grandparent != NOT_YET {
                let (great, before_last) = self.trie[grandparent as usize];
                if before_last == step && great != NOT_YET && self.trie[great as usize].1 == last {
                    return grandparent;
                }
            }
        }
        let next = self.trie.len() as u32;
        *self.children.entry((parent, step)).or_insert_with(|| {
            self.trie.push((parent, step));
            next
        })
    }

    /// The text of a signature: its steps from the root.
    fn render(&self, mut signature: u32) -> String {
        let mut steps = Vec::new();
        while signature != NOT_YET {
            let (parent, step) = self.trie[signature as usize];
            steps.push(self.step_text[step as usize].as_str());
            signature = parent;
        }
        steps.reverse();
        steps.concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::*;

    #[test]
    fn generated_key_parts_fold_and_names_stay() {
        let folded = |name: &str| {
            let mut out = String::new();
            push_generic_key(&mut out, name);
            out
        };
        assert_eq!(folded("3f2a9c1e-4b7d-4abe-9f1d-0a1b2c3d4e5f"), "#");
        assert_eq!(folded("abcdefab-4b7d-4abe-abcd-0a1b2c3d4e5f"), "#");
        assert_eq!(folded("user_17"), "user_#");
        assert_eq!(folded("item42x"), "item#x");
        assert_eq!(folded("0x7ffd"), "#x#");
        assert_eq!(folded("_idleNext"), "_idleNext");
        assert_eq!(folded("cacheV1"), "cacheV#");
    }

    /// Adds a node of class `name`: the synthetic root when `id` is 1, else an object.
    fn node(b: &mut GraphBuilder, name: &str, id: u64, size: u64) -> NodeIndex {
        let s = b.strings_mut().intern(name).unwrap();
        let class = b.intern_class(ClassInfo::named(s)).unwrap();
        b.add_node(NodeData {
            id: ObjectId(id),
            class,
            name: s,
            self_size: size,
            kind: if id == 1 {
                NodeKind::Synthetic
            } else {
                NodeKind::Object
            },
            flags: NodeFlags::default(),
        })
        .unwrap()
    }

    /// Adds an essential property edge named `name`.
    fn property(b: &mut GraphBuilder, from: NodeIndex, to: NodeIndex, name: &str) {
        let name = EdgeName::Named(b.strings_mut().intern(name).unwrap());
        b.add_edge(
            from,
            EdgeData {
                to,
                kind: EdgeKind::Property,
                name,
                essential: true,
            },
        );
    }

    /// A V8-like graph: root -> holder -> items (class Item, ids given), plus a Keep object.
    fn snapshot(item_ids: &[u64]) -> HeapGraph {
        let mut b = GraphBuilder::new(HeapFormat::V8, StringTable::new(), 8, 8);
        let root = node(&mut b, "", 1, 0);
        let holder = node(&mut b, "Holder", 3, 10);
        let keep = node(&mut b, "Keep", 5, 7);
        let items: Vec<NodeIndex> = item_ids
            .iter()
            .map(|id| node(&mut b, "Item", *id, 100))
            .collect();
        property(&mut b, root, holder, "list");
        property(&mut b, root, keep, "list");
        for (i, item) in items.iter().enumerate() {
            b.add_edge(
                holder,
                EdgeData {
                    to: *item,
                    kind: EdgeKind::Element,
                    name: EdgeName::Index(i as u32),
                    essential: true,
                },
            );
        }
        b.finish().unwrap()
    }

    #[test]
    fn compare_matches_objects_by_id() {
        let a = snapshot(&[11, 13, 15]);
        let b = snapshot(&[13, 15, 17, 19]);
        let diffs = compare(&a, &b);
        assert_eq!(diffs.len(), 1);
        let item = &diffs[0];
        assert_eq!(item.name, "Item");
        assert_eq!((item.new_count, item.deleted_count), (2, 1));
        assert_eq!((item.new_bytes, item.deleted_bytes), (200, 100));
    }

    #[test]
    fn compare_histograms_ranks_classes_by_retained_growth() {
        let a = snapshot(&[11, 13, 15]);
        let b = snapshot(&[21, 23, 25, 27, 29]);
        let (da, db) = (Dominators::compute(&a), Dominators::compute(&b));
        let ha = crate::histogram::class_histogram(&a, &da);
        let hb = crate::histogram::class_histogram(&b, &db);
        let growth = compare_histograms(&a, &ha, &b, &hb);
        // Holder keeps one instance of 10 bytes but retains two more items; Keep is unchanged.
        let names: Vec<&str> = growth.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["Item", "Holder"]);
        let holder = &growth[1];
        assert_eq!((holder.delta_count(), holder.delta_shallow_bytes()), (0, 0));
        assert_eq!(holder.base.retained_bytes, 310);
        assert_eq!(holder.target.retained_bytes, 510);
        let item = &growth[0];
        assert_eq!(item.delta_count(), 2);
        assert_eq!(item.delta_shallow_bytes(), 200);
        assert_eq!(item.delta_retained_bytes(), 200);
        // Shrinking classes come last.
        let back = compare_histograms(&b, &hb, &a, &ha);
        let last = back.last().unwrap();
        assert_eq!(
            (last.name.as_str(), last.delta_retained_bytes()),
            ("Item", -200)
        );
    }

    /// root → queue; queue -head-> j1 … j5 <-tail- queue, doubly linked by next/prev.
    fn doubly_linked(job_ids: &[u64; 5]) -> HeapGraph {
        let mut b = GraphBuilder::new(HeapFormat::V8, StringTable::new(), 8, 8);
        let root = node(&mut b, "", 1, 0);
        let queue = node(&mut b, "Queue", 3, 10);
        let jobs: Vec<NodeIndex> = job_ids
            .iter()
            .map(|id| node(&mut b, "Job", *id, 10))
            .collect();
        property(&mut b, root, queue, "queue");
        property(&mut b, queue, jobs[0], "head");
        property(&mut b, queue, jobs[4], "tail");
        for pair in jobs.windows(2) {
            property(&mut b, pair[0], pair[1], "next");
        }
        for pair in jobs.windows(2) {
            property(&mut b, pair[1], pair[0], "prev");
        }
        b.finish().unwrap()
    }

    #[test]
    fn linked_list_entries_share_a_signature_whatever_their_depth() {
        let baseline = doubly_linked(&[11, 13, 15, 17, 19]);
        let later = doubly_linked(&[21, 23, 25, 27, 29]);
        let d = Dominators::compute(&later);
        let leaks = find_leaks(&sorted_ids(&baseline), &sorted_ids(&later), &later, &d);
        // Every job is top-level (held from both ends). Reached: head (j1), head→next (j2,
        // then j3 through j2), tail (j5), tail→prev (j4).
        let mut found: Vec<(String, u64)> = leaks
            .iter()
            .map(|l| (l.signature.clone(), l.roots))
            .collect();
        found.sort();
        let expected = [
            (" -property:queue-> Queue -property:head-> Job", 1),
            (
                " -property:queue-> Queue -property:head-> Job -property:next-> Job",
                2,
            ),
            (" -property:queue-> Queue -property:tail-> Job", 1),
            (
                " -property:queue-> Queue -property:tail-> Job -property:prev-> Job",
                1,
            ),
        ];
        let expected: Vec<(String, u64)> =
            expected.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        assert_eq!(found, expected);
        // The representative is the entry with the shortest path.
        let group = leaks.iter().find(|l| l.roots == 2).unwrap();
        assert_eq!(later.id(group.representative), ObjectId(23));
    }

    #[test]
    fn three_way_groups_new_survivors_by_path() {
        let baseline = snapshot(&[11]);
        let target = snapshot(&[11, 13, 15, 17]);
        let last = snapshot(&[11, 13, 15, 19]);
        let d = Dominators::compute(&last);
        let leaks = find_leaks(&sorted_ids(&baseline), &sorted_ids(&target), &last, &d);
        // 13 and 15 survive (17 died, 19 is newer than target); one path signature.
        assert_eq!(leaks.len(), 1);
        assert_eq!(leaks[0].count, 2);
        let contents: Vec<(String, u64)> = leaks[0]
            .contents
            .iter()
            .map(|(class, count)| (last.class_name(*class).into_owned(), *count))
            .collect();
        assert_eq!(contents, [("Item".to_string(), 2)]);
        assert_eq!(leaks[0].retained_bytes, 200);
        assert_eq!(last.class_name(leaks[0].class), "Item");
        assert!(
            leaks[0].signature.contains("-element:[]-> Item"),
            "{}",
            leaks[0].signature
        );
        let path = leaks[0].path.as_ref().unwrap();
        assert_eq!(path.steps.len(), 3);
    }
}
