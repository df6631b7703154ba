//! DevTools' interpretation of a V8 snapshot (`HeapSnapshot.ts` in devtools-frontend), re-stated
//! over the heap graph: DOM detachedness propagation, the page-owned rule, essential edges,
//! shallow-size folding of internal arrays, and class names (including plain-object interfaces).

use std::cmp::Ordering;
use std::collections::HashMap;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::graph::{
    ClassInfo, Detachedness, EdgeIndex, EdgeKind, GraphError, HeapGraph, NodeFlags, NodeIndex,
    NodeKind, SourceLocation, StringId,
};

/// After this many characters the inferred interface name stops growing (DevTools' constants).
const MIN_INTERFACE_PROPERTY_COUNT: usize = 1;
const MAX_INTERFACE_NAME_LENGTH: usize = 120;
const MIN_OBJECT_COUNT_PER_INTERFACE: usize = 2;
const MIN_OBJECT_PROPORTION_PER_INTERFACE: usize = 1000;

/// A named set of properties: plain objects having them are grouped as class `name` (`{a, b}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceDefinition {
    pub name: String,
    pub properties: Vec<String>,
}

/// JavaScript's string order (UTF-16 code units), used wherever DevTools sorts or compares names.
fn js_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// JavaScript's `string.length`.
fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Propagates attached/detached state through embedder (`native`) nodes and prefixes the names
/// of detached ones with `Detached `.
pub fn propagate_dom_state(graph: &mut HeapGraph) -> Result<(), GraphError> {
    let n = graph.node_count();
    let mut visited = vec![false; n];
    let mut attached: Vec<u32> = Vec::new();
    let mut detached: Vec<u32> = Vec::new();
    let mut renamed: HashMap<StringId, StringId> = HashMap::new();
    let mut process = |graph: &mut HeapGraph,
                       node: NodeIndex,
                       state: Detachedness,
                       attached: &mut Vec<u32>,
                       detached: &mut Vec<u32>|
     -> Result<(), GraphError> {
        if visited[node.get()] {
            return Ok(());
        }
        visited[node.get()] = true;
        if graph.kind(node) != NodeKind::Native {
            return Ok(());
        }
        let flags = graph.flags(node).set_detachedness(state);
        graph.set_flags(node, flags);
        match state {
            Detachedness::Attached => attached.push(node.0),
            Detachedness::Detached => {
                let old = graph.name_id(node);
                let new = match renamed.get(&old) {
                    Some(id) => *id,
                    None => {
                        let text = format!("Detached {}", graph.string(old));
                        let id = graph.strings_mut().push(&text)?;
                        renamed.insert(old, id);
                        id
                    }
                };
                graph.set_name(node, new);
                detached.push(node.0);
            }
            Detachedness::Unknown => {}
        }
        Ok(())
    };
    for node in graph.nodes() {
        let state = graph.detachedness(node);
        if state != Detachedness::Unknown {
            process(graph, node, state, &mut attached, &mut detached)?;
        }
    }
    // Attached state spreads first; detached state then fills what is still not attached.
    for state in [Detachedness::Attached, Detachedness::Detached] {
        loop {
            let queue = match state {
                Detachedness::Attached => &mut attached,
                _ => &mut detached,
            };
            let Some(node) = queue.pop() else { break };
            let node = NodeIndex(node);
            if state == Detachedness::Detached && graph.detachedness(node) == Detachedness::Attached
            {
                continue;
            }
            for edge in graph.edges(node) {
                if !matches!(graph.edge_kind(edge), EdgeKind::Hidden | EdgeKind::Weak) {
                    let child = graph.edge_to(edge);
                    process(graph, child, state, &mut attached, &mut detached)?;
                }
            }
        }
    }
    Ok(())
}

/// Whether bit `node` is set in a bitset of nodes.
#[inline]
fn has_bit(bits: &[u64], node: usize) -> bool {
    bits[node / 64] & (1 << (node % 64)) != 0
}

/// Finds the page-owned nodes: everything reachable (not through weak edges) from the root's
/// shortcut edges (the global objects) and from `(Document DOM trees)`. Sets their bits in
/// `owned` (one bit per node, zeroed by the caller); [`mark_page_owned`] records them as flags.
pub fn page_owned(graph: &HeapGraph, owned: &mut [u64]) {
    let root = graph.root();
    let first_edge = graph.first_edges();
    let targets = graph.edge_targets();
    let kinds = graph.edge_kind_bytes();
    let weak = EdgeKind::Weak.to_byte(false);
    let mut stack: Vec<u32> = Vec::new();
    let own = |owned: &mut [u64], node: usize| {
        let fresh = !has_bit(owned, node);
        owned[node / 64] |= 1 << (node % 64);
        fresh
    };
    for edge in graph.edges(root) {
        let child = graph.edge_to(edge);
        let entry = match graph.edge_kind(edge) {
            EdgeKind::Shortcut => true,
            EdgeKind::Element => {
                graph.kind(child) == NodeKind::Synthetic
                    && graph.name(child) == "(Document DOM trees)"
            }
            _ => false,
        };
        if entry && own(owned, child.get()) {
            stack.push(child.0);
        }
    }
    while let Some(node) = stack.pop() {
        let node = node as usize;
        let edges = first_edge[node] as usize..first_edge[node + 1] as usize;
        for (&child, &kind) in targets[edges.clone()].iter().zip(&kinds[edges]) {
            if kind & !EdgeKind::ESSENTIAL_BIT != weak && own(owned, child as usize) {
                stack.push(child);
            }
        }
    }
}

/// Sets the page-owned flag of the nodes [`page_owned`] found.
pub fn mark_page_owned(graph: &mut HeapGraph, owned: &[u64]) {
    graph
        .node_flag_bytes_mut()
        .par_chunks_mut(64)
        .zip(owned)
        .for_each(|(flags, &bits)| {
            if bits != 0 {
                for (k, flags) in flags.iter_mut().enumerate() {
                    if bits & (1 << k) != 0 {
                        *flags |= NodeFlags::PAGE_OWNED;
                    }
                }
            }
        });
}

/// The table id in a WeakMap ephemeron edge name
/// `<n> / part of key (<k> @<id>) -> value (<v> @<id>) pair in WeakMap (table @<table>)`.
pub(crate) fn weak_map_table_id(name: &str) -> Option<u64> {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = name[digits..].strip_prefix(" / part of key (")?;
    let (middle, table) = rest.rsplit_once(" pair in WeakMap (table @")?;
    let table = table.strip_suffix(')')?;
    if table.is_empty()
        || !table.bytes().all(|b| b.is_ascii_digit())
        || !middle.contains(") -> value (")
    {
        return None;
    }
    if !middle.ends_with(')') {
        return None;
    }
    table.parse().ok()
}

/// Computes each edge's essential bit by DevTools' rule: not weak, not a self edge, not the WeakMap
/// table → value ephemeron edge, shortcuts only from the root, and no edge from a non-page-owned
/// node into a page-owned one (except from the root).
/// Writes the new edge kind column into `kinds` (one byte per edge, allocated by the caller so a
/// worker thread's allocator arena does not keep it); [`HeapGraph::restore_edge_kind_bytes`]
/// puts it in place.
/// `owned` is the bitset of page-owned nodes from [`page_owned`]; `digit_first` lists the string
/// ids that start with a digit, the only possible ephemeron edge names.
pub fn essential_edge_kinds(
    graph_ref: &HeapGraph,
    owned_bits: &[u64],
    digit_first: &[u32],
    kinds: &mut [u8],
) {
    let root = graph_ref.root().get();
    let internal = EdgeKind::Internal.to_byte(false);
    let weak = EdgeKind::Weak.to_byte(false);
    let shortcut = EdgeKind::Shortcut.to_byte(false);
    let first_edge = graph_ref.first_edges();
    let targets = graph_ref.edge_targets();
    let old_kinds = graph_ref.edge_kind_bytes();
    let ids = graph_ref.ids();
    let n = graph_ref.node_count();
    // Page ownership as a bitset: looked up per edge target, it stays in cache.
    let owned = |node: usize| has_bit(owned_bits, node);
    // The strings that are WeakMap ephemeron edge names, as a bitset by string id (looked up
    // per internal edge) and with their table ids.
    let strings = graph_ref.strings();
    let mut ephemeron_names = vec![0u64; strings.len().div_ceil(64)];
    let mut table_of_name: FxHashMap<u32, u64> = FxHashMap::default();
    for &id in digit_first {
        if let Some(table) = weak_map_table_id(&strings.get(StringId(id))) {
            ephemeron_names[id as usize / 64] |= 1 << (id % 64);
            table_of_name.insert(id, table);
        }
    }
    let is_ephemeron_name = |name: u32| {
        let name = name as usize;
        ephemeron_names
            .get(name / 64)
            .is_some_and(|bits| bits & (1 << (name % 64)) != 0)
    };
    // Node ranges processed in parallel, each owning the kind bytes of its edges.
    let pieces = (rayon::current_num_threads() * 4).max(1);
    let step = n.div_ceil(pieces).max(1);
    let ranges: Vec<(usize, usize)> = (0..n)
        .step_by(step)
        .map(|a| (a, (a + step).min(n)))
        .collect();
    let lengths: Vec<usize> = ranges
        .iter()
        .map(|(a, b)| (first_edge[*b] - first_edge[*a]) as usize)
        .collect();
    let slices = super::scan::split_mut(kinds, &lengths);
    ranges
        .par_iter()
        .zip(slices)
        .for_each(|(&(from, to), out)| {
            let base = first_edge[from] as usize;
            for node in from..to {
                let node_owned = owned(node);
                let edges = first_edge[node] as usize..first_edge[node + 1] as usize;
                let out = &mut out[edges.start - base..edges.end - base];
                let edge_data = targets[edges.clone()].iter().zip(&old_kinds[edges.clone()]);
                for ((byte, (&child, &old)), edge) in out.iter_mut().zip(edge_data).zip(edges) {
                    let kind = old & !EdgeKind::ESSENTIAL_BIT;
                    let child = child as usize;
                    let table_to_value = kind == internal && {
                        let name = graph_ref.edge_name_raw(EdgeIndex(edge as u64));
                        is_ephemeron_name(name) && table_of_name.get(&name) == Some(&ids.get(node))
                    };
                    let essential = kind != weak
                        && child != node
                        && !table_to_value
                        && (node == root || (kind != shortcut && (node_owned || !owned(child))));
                    *byte = kind
                        | if essential {
                            EdgeKind::ESSENTIAL_BIT
                        } else {
                            0
                        };
                }
            }
        });
}

/// DevTools' `calculateShallowSizes` moves the self size of internal arrays and hidden objects
/// owned by exactly one user-visible object into that owner, when the snapshot has user roots.
/// This half finds the single owner of every node (read-only); [`fold_shallow_sizes`] moves
/// the sizes. Returns false, and leaves `owners` (one slot per node, allocated by the caller)
/// unused, when the snapshot has no user roots (nothing is folded).
pub fn shallow_size_owners(graph: &HeapGraph, owners: &mut [u32]) -> bool {
    let root = graph.root();
    let has_user_roots = graph
        .edges(root)
        .any(|e| graph.kind(graph.edge_to(e)) != NodeKind::Synthetic);
    if !has_user_roots {
        return false;
    }
    // Ownable nodes as a bitset: an edge into any other node changes nothing, and the bitset
    // (unlike `owners`) stays in cache.
    let mut ownable = vec![0u64; graph.node_count().div_ceil(64)];
    for node in graph.nodes() {
        let kind = graph.kind(node);
        if matches!(kind, NodeKind::Hidden | NodeKind::Array)
            || (kind == NodeKind::Native && graph.name(node) == "system / ExternalStringData")
        {
            owners[node.get()] = UNVISITED;
            ownable[node.get() / 64] |= 1 << (node.get() % 64);
        } else {
            owners[node.get()] = node.0;
        }
    }
    let first_edge = graph.first_edges();
    let targets = graph.edge_targets();
    let kinds = graph.edge_kind_bytes();
    let weak = EdgeKind::Weak.to_byte(false);
    // Passes `id`'s owner to the ownable nodes it references, queueing those that change. The
    // result is the fixpoint (each slot only moves up: unvisited → one owner → several), so the
    // order nodes are visited in does not matter.
    let mut worklist: Vec<u32> = Vec::new();
    let propagate = |id: usize, owners: &mut [u32], worklist: &mut Vec<u32>| {
        let owner = owners[id];
        let edges = first_edge[id] as usize..first_edge[id + 1] as usize;
        for (&target, &kind) in targets[edges.clone()].iter().zip(&kinds[edges]) {
            if kind & !EdgeKind::ESSENTIAL_BIT == weak || !has_bit(&ownable, target as usize) {
                continue;
            }
            let current = owners[target as usize];
            if current == UNVISITED {
                owners[target as usize] = owner;
                worklist.push(target);
            } else if current != target && current != owner && current != MULTIPLE {
                owners[target as usize] = MULTIPLE;
                worklist.push(target);
            }
        }
    };
    // Every owner in node order (sequential reads), then what changed.
    for id in 0..graph.node_count() {
        if !has_bit(&ownable, id) {
            propagate(id, owners, &mut worklist);
        }
    }
    while let Some(id) = worklist.pop() {
        propagate(id as usize, owners, &mut worklist);
    }
    true
}

/// Marks an owner slot of [`shallow_size_owners`] not yet reached.
const UNVISITED: u32 = u32::MAX;
/// Marks an owner slot of [`shallow_size_owners`] reached from several owners.
const MULTIPLE: u32 = u32::MAX - 1;

/// Moves each owned node's self size into its owner (the second half of DevTools'
/// `calculateShallowSizes`, see [`shallow_size_owners`]).
pub fn fold_shallow_sizes(graph: &mut HeapGraph, owners: &[u32]) {
    let root = graph.root();
    for (i, &owner) in owners.iter().enumerate() {
        if owner == UNVISITED || owner == MULTIPLE || owner == i as u32 {
            continue;
        }
        let owner = NodeIndex(owner);
        if graph.kind(owner) == NodeKind::Synthetic || owner == root {
            continue;
        }
        graph.fold_self_size(NodeIndex(i as u32), owner);
    }
}

/// DevTools' `formatPropertyName`: names with `,'"{}` are shown as JSON string literals.
fn format_property_name(name: &str) -> String {
    if name.contains([',', '\'', '"', '{', '}']) {
        serde_json::to_string(name).unwrap_or_else(|_| name.to_string())
    } else {
        name.to_string()
    }
}

/// Caches whether node names equal "Object" (plain JS objects), per string id.
struct PlainObjects {
    is_object_name: Vec<u8>,
}

impl PlainObjects {
    fn new(graph: &HeapGraph) -> PlainObjects {
        PlainObjects {
            is_object_name: vec![0; graph.strings().len()],
        }
    }

    fn is_plain(&mut self, graph: &HeapGraph, node: NodeIndex) -> bool {
        if graph.kind(node) != NodeKind::Object {
            return false;
        }
        let name = graph.name_id(node);
        let Some(cached) = self.is_object_name.get_mut(name.0 as usize) else {
            return graph.name(node) == "Object";
        };
        if *cached == 0 {
            *cached = if graph.string(name) == "Object" { 1 } else { 2 };
        }
        *cached == 1
    }
}

/// The name ids of a node's property edges, in edge order, into `shape`: everything DevTools'
/// interface inference and matching read of a plain object, so results can be cached per shape.
fn property_shape(graph: &HeapGraph, node: NodeIndex, shape: &mut Vec<u32>) {
    shape.clear();
    let kinds = graph.edge_kind_bytes();
    let property = EdgeKind::Property.to_byte(false);
    for edge in graph.edges(node) {
        if kinds[edge.get()] & !EdgeKind::ESSENTIAL_BIT == property {
            shape.push(graph.edge_name_raw(edge));
        }
    }
}

/// Plain-object shapes ([`property_shape`]) numbered in first-seen order: objects of one shape
/// get the same interface name and match, so those are worked out once per shape.
#[derive(Default)]
struct Shapes {
    ids: FxHashMap<Box<[u32]>, u32>,
    list: Vec<Box<[u32]>>,
}

impl Shapes {
    /// The number of `node`'s shape (`scratch` is reused between calls).
    fn id_of(&mut self, graph: &HeapGraph, node: NodeIndex, scratch: &mut Vec<u32>) -> u32 {
        property_shape(graph, node, scratch);
        if let Some(id) = self.ids.get(scratch.as_slice()) {
            return *id;
        }
        let id = self.list.len() as u32;
        self.list.push(scratch.as_slice().into());
        self.ids.insert(scratch.as_slice().into(), id);
        id
    }

    /// The property name ids of shape `id`.
    fn get(&self, id: u32) -> &[u32] {
        &self.list[id as usize]
    }
}

/// The interface DevTools' `inferInterfaceDefinitions` derives from a plain object with these
/// property names ([`property_shape`]): `{a, b}` up to the name length limit, `__proto__` left
/// out; `None` when no property is left.
fn interface_candidate(graph: &HeapGraph, shape: &[u32]) -> Option<InterfaceDefinition> {
    let mut name = String::from("{");
    let mut name_len = 1usize;
    let mut properties = Vec::new();
    for &id in shape {
        let edge_name = graph.string(StringId(id));
        if edge_name == "__proto__" {
            continue;
        }
        let formatted = format_property_name(&edge_name);
        let formatted_len = js_len(&formatted);
        if name_len > MIN_INTERFACE_PROPERTY_COUNT
            && name_len + formatted_len > MAX_INTERFACE_NAME_LENGTH
        {
            break;
        }
        if name_len != 1 {
            name.push_str(", ");
            name_len += 2;
        }
        name.push_str(&formatted);
        name_len += formatted_len;
        properties.push(edge_name.into_owned());
    }
    if properties.is_empty() {
        return None;
    }
    name.push('}');
    Some(InterfaceDefinition { name, properties })
}

/// DevTools' `inferInterfaceDefinitions`: popular property sets of plain objects. Records each
/// plain object's shape number in `shape_of` (one slot per node).
fn infer_interfaces(
    graph: &HeapGraph,
    plain: &mut PlainObjects,
    shapes: &mut Shapes,
    shape_of: &mut [u32],
) -> Vec<InterfaceDefinition> {
    struct Candidate {
        definition: InterfaceDefinition,
        count: usize,
    }
    // Candidates in first-seen order, found by name; objects of one shape share a candidate
    // (found once per shape: building the name per object was most of this pass).
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut candidate_of_shape: Vec<Option<usize>> = Vec::new();
    let mut scratch = Vec::new();
    let mut total = 0usize;
    for node in graph.nodes() {
        if !plain.is_plain(graph, node) {
            continue;
        }
        total += 1;
        let shape = shapes.id_of(graph, node, &mut scratch);
        shape_of[node.get()] = shape;
        if shape as usize == candidate_of_shape.len() {
            let candidate = interface_candidate(graph, shapes.get(shape)).map(|definition| {
                *by_name.entry(definition.name.clone()).or_insert_with(|| {
                    candidates.push(Candidate {
                        definition,
                        count: 0,
                    });
                    candidates.len() - 1
                })
            });
            candidate_of_shape.push(candidate);
        }
        if let Some(candidate) = candidate_of_shape[shape as usize] {
            candidates[candidate].count += 1;
        }
    }
    // Most objects first; a stable sort keeps first-seen order among equal counts.
    candidates.sort_by_key(|c| std::cmp::Reverse(c.count));
    // DevTools keeps candidates with count >= max(2, total / 1000), a real-number division.
    let min_count_exact = |count: usize| {
        count >= MIN_OBJECT_COUNT_PER_INTERFACE
            && count * MIN_OBJECT_PROPORTION_PER_INTERFACE >= total
    };
    candidates
        .into_iter()
        .take_while(|c| min_count_exact(c.count))
        .map(|c| c.definition)
        .collect()
}

struct MatchInfo {
    name: usize,
    property_count: usize,
    index: usize,
}

#[derive(Default)]
struct TreeNode {
    next: HashMap<String, usize>,
    match_info: Option<usize>,
    greatest_next: Option<String>,
}

/// The property tree of DevTools' `applyInterfaceDefinitions`.
struct InterfaceMatcher {
    tree: Vec<TreeNode>,
    infos: Vec<MatchInfo>,
}

impl InterfaceMatcher {
    fn new(definitions: &[InterfaceDefinition]) -> InterfaceMatcher {
        let mut tree = vec![TreeNode::default()];
        let mut infos = Vec::new();
        for (index, definition) in definitions.iter().enumerate() {
            let mut properties = definition.properties.clone();
            properties.sort_by(|a, b| js_cmp(a, b));
            let mut current = 0usize;
            for property in &properties {
                let next = match tree[current].next.get(property) {
                    Some(next) => *next,
                    None => {
                        tree.push(TreeNode::default());
                        let next = tree.len() - 1;
                        let node = &mut tree[current];
                        node.next.insert(property.clone(), next);
                        if node
                            .greatest_next
                            .as_deref()
                            .is_none_or(|g| js_cmp(g, property) == Ordering::Less)
                        {
                            node.greatest_next = Some(property.clone());
                        }
                        next
                    }
                };
                current = next;
            }
            if tree[current].match_info.is_none() {
                infos.push(MatchInfo {
                    name: index,
                    property_count: properties.len(),
                    index,
                });
                tree[current].match_info = Some(infos.len() - 1);
            }
        }
        InterfaceMatcher { tree, infos }
    }

    fn better(&self, a: Option<usize>, b: Option<usize>) -> Option<usize> {
        let Some(b) = b else { return a };
        let Some(a_index) = a else { return Some(b) };
        let (ai, bi) = (&self.infos[a_index], &self.infos[b]);
        if ai.property_count > bi.property_count {
            return a;
        }
        if bi.property_count > ai.property_count {
            return Some(b);
        }
        if ai.index <= bi.index { a } else { Some(b) }
    }

    /// The index of the matching definition for an object with these (sorted) properties.
    fn best_match(&self, properties: &[String]) -> Option<usize> {
        let mut states: Vec<usize> = vec![0];
        // `None` stands for DevTools' fallback match "Object" (property count 0, index ∞).
        let mut best = self.better(None, self.tree[0].match_info);
        for property in properties {
            let current = states.clone();
            for state in current {
                let node = &self.tree[state];
                let exhausted = node
                    .greatest_next
                    .as_deref()
                    .is_none_or(|g| js_cmp(property, g) != Ordering::Less);
                if exhausted {
                    states.retain(|s| *s != state);
                }
                if let Some(&next) = node.next.get(property) {
                    if !states.contains(&next) {
                        states.push(next);
                    }
                    best = self.better(best, self.tree[next].match_info);
                }
            }
        }
        best.map(|m| self.infos[m].name)
    }
}

/// How a node's class is derived, before it is turned into text (a cache key).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum ClassSource {
    /// Named after the node's own name (objects and embedder objects).
    Name(StringId),
    /// A plain object matching interface definition `n`.
    Interface(usize),
    /// Named after the node type (`(system)`, `Function`, `(string)`, …).
    Kind(u8),
}

/// Picks DevTools' class (name + constructor location for objects) for every node, and the
/// interface definitions used for plain objects (`given`, or inferred from the snapshot).
/// `locations` are `(node ordinal, location)` sorted by ordinal, one per node.
///
/// This half only reads the graph: it picks each node's class as an index into a list of new
/// classes (name text, location) in first-use order, in `of_node` (one slot per node: the
/// graph's class column, taken out); [`apply_classes`] adds them to the graph.
pub fn classify_nodes(
    graph: &HeapGraph,
    locations: &[(u32, SourceLocation)],
    given: Option<&[InterfaceDefinition]>,
    mut of_node: Vec<u32>,
) -> NodeClasses {
    let mut plain = PlainObjects::new(graph);
    let mut shapes = Shapes::default();
    // Inference numbers every plain object's shape into `of_node` (overwritten below with its
    // class); with given definitions the shapes are numbered as they are met.
    let (definitions, shapes_known) = match given {
        Some(defs) => (defs.to_vec(), false),
        None => (
            infer_interfaces(graph, &mut plain, &mut shapes, &mut of_node),
            true,
        ),
    };
    let matcher = InterfaceMatcher::new(&definitions);
    // Classes without a location are cached by their source; located ones by source + location.
    const NONE: u32 = u32::MAX;
    let mut by_name: Vec<u32> = vec![NONE; graph.strings().len()];
    let mut unlocated: FxHashMap<ClassSource, u32> = FxHashMap::default();
    let mut located: FxHashMap<(ClassSource, SourceLocation), u32> = FxHashMap::default();
    let mut new_classes: Vec<(String, Option<SourceLocation>)> = Vec::new();

    // Interface matches by shape number (`None`: not matched yet).
    let mut match_of_shape: Vec<Option<Option<usize>>> = Vec::new();
    let mut scratch = Vec::new();
    let mut properties: Vec<String> = Vec::new();
    let mut next_location = 0usize;
    let mut last_located = (
        (
            ClassSource::Kind(u8::MAX),
            SourceLocation {
                script_id: u32::MAX,
                line: u32::MAX,
                column: u32::MAX,
            },
        ),
        u32::MAX,
    );
    for node in 0..graph.node_count() as u32 {
        let node = NodeIndex(node);
        let kind = graph.kind(node);
        let source = match kind {
            NodeKind::Object if !definitions.is_empty() && plain.is_plain(graph, node) => {
                let shape = if shapes_known {
                    of_node[node.get()]
                } else {
                    shapes.id_of(graph, node, &mut scratch)
                } as usize;
                if match_of_shape.len() <= shape {
                    match_of_shape.resize(shape + 1, None);
                }
                let best = match match_of_shape[shape] {
                    Some(best) => best,
                    None => {
                        properties.clear();
                        properties.extend(
                            shapes
                                .get(shape as u32)
                                .iter()
                                .map(|id| graph.string(StringId(*id)).into_owned()),
                        );
                        properties.sort_by(|a, b| js_cmp(a, b));
                        let best = matcher.best_match(&properties);
                        match_of_shape[shape] = Some(best);
                        best
                    }
                };
                match best {
                    Some(index) => ClassSource::Interface(index),
                    None => ClassSource::Name(graph.name_id(node)),
                }
            }
            NodeKind::Object | NodeKind::Native => ClassSource::Name(graph.name_id(node)),
            other => ClassSource::Kind(other as u8),
        };
        while locations
            .get(next_location)
            .is_some_and(|(o, _)| *o < node.0)
        {
            next_location += 1;
        }
        let location = match locations.get(next_location) {
            Some((o, location)) if *o == node.0 && kind == NodeKind::Object => Some(*location),
            _ => None,
        };
        let cached = match (source, location) {
            (ClassSource::Name(name), None) => {
                by_name.get(name.0 as usize).copied().filter(|c| *c != NONE)
            }
            (_, None) => unlocated.get(&source).copied(),
            // Objects of one class are often adjacent: try the previous node's class first.
            (_, Some(location)) if last_located.0 == (source, location) => Some(last_located.1),
            (_, Some(location)) => located.get(&(source, location)).copied(),
        };
        let class = match cached {
            Some(class) => class,
            None => {
                let text = match source {
                    ClassSource::Name(name) => class_name_from_node_name(&graph.string(name)),
                    ClassSource::Interface(index) => definitions[index].name.clone(),
                    ClassSource::Kind(kind) => kind_class_name(NodeKind::from_u8(kind)),
                };
                let class = new_classes.len() as u32;
                new_classes.push((text, location));
                match (source, location) {
                    (ClassSource::Name(name), None) if (name.0 as usize) < by_name.len() => {
                        by_name[name.0 as usize] = class;
                    }
                    (_, None) => {
                        unlocated.insert(source, class);
                    }
                    (_, Some(location)) => {
                        located.insert((source, location), class);
                    }
                }
                class
            }
        };
        if let Some(location) = location {
            last_located = ((source, location), class);
        }
        of_node[node.get()] = class;
    }
    NodeClasses {
        of_node,
        new_classes,
        definitions,
    }
}

/// The classes [`classify_nodes`] picked, not yet in the graph.
pub struct NodeClasses {
    /// Per node: an index into `new_classes`.
    of_node: Vec<u32>,
    /// Class name text and location, in first-use order.
    new_classes: Vec<(String, Option<SourceLocation>)>,
    /// The interface definitions used for plain objects.
    definitions: Vec<InterfaceDefinition>,
}

/// Adds the classes picked by [`classify_nodes`] to the graph (in first-use order, so ids
/// come out as if they were added node by node), sets every node's class, and returns the
/// interface definitions used.
pub fn apply_classes(
    graph: &mut HeapGraph,
    classes: NodeClasses,
) -> Result<Vec<InterfaceDefinition>, GraphError> {
    let mut ids = Vec::with_capacity(classes.new_classes.len());
    for (text, location) in classes.new_classes {
        let name = graph.strings_mut().intern(&text)?;
        ids.push(graph.intern_class(ClassInfo {
            name,
            location,
            class_object: None,
        })?);
    }
    let mut column = classes.of_node;
    for class in column.iter_mut() {
        *class = ids[*class as usize].0;
    }
    graph.restore_class_column(column)?;
    Ok(classes.definitions)
}

/// DevTools' class name for nodes of a type other than object/native.
fn kind_class_name(kind: NodeKind) -> String {
    match kind {
        NodeKind::Hidden => "(system)".into(),
        NodeKind::Code => "(compiled code)".into(),
        NodeKind::Closure => "Function".into(),
        NodeKind::RegExp => "RegExp".into(),
        other => format!("({})", other.name()),
    }
}

/// DevTools' class name for object/native nodes: the name, with HTML-like names cut to the tag
/// (`<div id="a">` → `<div>`, `Detached <div id="a">` → `Detached <div>`).
fn class_name_from_node_name(name: &str) -> String {
    if name.starts_with('<') {
        if let Some(space) = name.find(' ') {
            return format!("{}>", &name[..space]);
        }
    } else if let Some(rest) = name.strip_prefix("Detached <")
        && let Some(space) = rest.find(' ')
    {
        return format!("Detached <{}>", &rest[..space]);
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weak_map_edge_names() {
        let name =
            "7 / part of key (Object @123) -> value (Array @456) pair in WeakMap (table @789)";
        assert_eq!(weak_map_table_id(name), Some(789));
        assert_eq!(weak_map_table_id("part of key"), None);
        assert_eq!(
            weak_map_table_id("7 / part of key (x @1) pair in WeakMap (table @)"),
            None
        );
    }

    #[test]
    fn class_names_follow_devtools() {
        assert_eq!(class_name_from_node_name("<div id=\"a\">"), "<div>");
        assert_eq!(
            class_name_from_node_name("Detached <div id=\"a\">"),
            "Detached <div>"
        );
        assert_eq!(class_name_from_node_name("Foo"), "Foo");
        assert_eq!(
            kind_class_name(NodeKind::ConsString),
            "(concatenated string)"
        );
        assert_eq!(format_property_name("a,b"), "\"a,b\"");
    }

    #[test]
    fn interface_matching_prefers_larger_then_earlier() {
        let defs = vec![
            InterfaceDefinition {
                name: "{a}".into(),
                properties: vec!["a".into()],
            },
            InterfaceDefinition {
                name: "{a, b}".into(),
                properties: vec!["b".into(), "a".into()],
            },
        ];
        let m = InterfaceMatcher::new(&defs);
        let props = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(m.best_match(&props(&["a", "b", "c"])), Some(1));
        assert_eq!(m.best_match(&props(&["a", "c"])), Some(0));
        assert_eq!(m.best_match(&props(&["b"])), None);
    }
}
