//! Pass 2: every object becomes a node and every reference an edge of the heap graph.
//!
//! An object's ordinal is its position in the file (pass 1 counted them), so the heap segments
//! can be split into contiguous groups, one per core: each worker writes its objects' node
//! columns in place and appends its edges in ordinal order. The CSR columns then need no sort:
//! the workers' edge runs are concatenated and their offsets shifted.

use std::collections::HashMap;
use std::ops::Range;

use leaksift_heap::{
    ClassId, ClassInfo, CompactU32s, CompactU64s, EdgeKind, GcRootKind, GraphError, GraphParts,
    HeapFormat, HeapGraph, NodeFlags, NodeIndex, NodeKind, ObjectId, StringId, StringTable,
};
use rustc_hash::FxHashMap;

use crate::bytes::{Id, IdSize};
use crate::error::{ErrorKind, HprofError};
use crate::format::BasicType;
use crate::ids::IdIndex;
use crate::layout::{ClassTable, Retention, SizeRule};
use crate::mutf8;
use crate::parallel::{self, Segment, Shared};
use crate::scan::{GroupStats, Scan};
use crate::threads::ThreadStack;
use crate::walk::{ClassDump, Root, SubRecord, ids};

/// An edge waiting for its source node: GC-root links from the root or from a thread object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PendingEdge {
    from: u32,
    to: u32,
    /// [`EdgeKind::to_byte`] of the `GcRoot` kind.
    kind: u8,
    name: u32,
}

/// Root kinds that belong to a thread: their objects hang off the thread object, so a thread
/// retains what its frames hold (the local variables of a finished thread die with it).
fn is_thread_local(kind: GcRootKind) -> bool {
    matches!(
        kind,
        GcRootKind::JavaFrame
            | GcRootKind::JniLocal
            | GcRootKind::NativeStack
            | GcRootKind::ThreadBlock
            | GcRootKind::JniMonitor
    )
}

/// Counters about references that could not be resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildStats {
    /// References to ids that no object of the dump has (HotSpot omits some VM-internal objects).
    pub dangling_references: u64,
    /// GC roots naming objects missing from the dump.
    pub dangling_roots: u64,
    /// Instances whose class has no CLASS_DUMP.
    pub instances_of_unknown_classes: u64,
    /// Instances whose field data length disagrees with their class layout.
    pub layout_mismatches: u64,
}

impl BuildStats {
    fn add(&mut self, other: &BuildStats) {
        self.dangling_references += other.dangling_references;
        self.dangling_roots += other.dangling_roots;
        self.instances_of_unknown_classes += other.instances_of_unknown_classes;
        self.layout_mismatches += other.layout_mismatches;
    }
}

/// Labels of the synthetic edges.
#[derive(Debug)]
struct Labels {
    class_of: StringId,
    superclass: StringId,
    loader: StringId,
    signers: StringId,
    protection_domain: StringId,
}

/// A class table entry resolved for the graph.
#[derive(Debug)]
struct GraphClass {
    class: ClassId,
    name: StringId,
    /// Ordinal of the class object.
    node: Option<u32>,
    fields: Vec<GraphField>,
    is_finalizer: bool,
    /// `java.lang.Thread` or a subclass: its instances are named after their thread.
    is_thread: bool,
}

/// A reference field ready to become an edge.
#[derive(Debug, Clone, Copy)]
struct GraphField {
    offset: u32,
    name: StringId,
    /// [`EdgeKind::to_byte`] with the essential bit of the field's retention.
    kind: u8,
}

/// A graph class and its class object's ordinal.
type ClassSlot = (ClassId, Option<u32>);

const PRIMITIVES: [BasicType; 8] = [
    BasicType::Boolean,
    BasicType::Char,
    BasicType::Float,
    BasicType::Double,
    BasicType::Byte,
    BasicType::Short,
    BasicType::Int,
    BasicType::Long,
];

fn graph_error(error: GraphError) -> HprofError {
    let text = match error {
        GraphError::TooManyNodes(_) => "the dump has more than 2^32 - 1 objects",
        GraphError::TooManyStrings => "the dump has more than 2^32 - 1 distinct names",
        GraphError::TooManyClasses => "the dump has more than 2^32 - 1 classes",
        GraphError::TooManyEdges(_) => "the dump has more than 2^32 - 1 references",
        _ => "the heap graph could not be built",
    };
    HprofError::new(0, ErrorKind::Malformed(text))
}

/// Interns the HPROF string `name` into the graph's string table (once per id), decoded from
/// modified UTF-8 ([`mutf8::decode`]).
fn intern_name(
    strings: &mut StringTable,
    cache: &mut FxHashMap<Id, StringId>,
    scan: &Scan<'_>,
    name: Id,
) -> Result<StringId, HprofError> {
    if let Some(id) = cache.get(&name) {
        return Ok(*id);
    }
    let text = scan
        .strings
        .get(&name)
        .map(|raw| mutf8::decode(raw))
        .unwrap_or_default();
    let id = strings.intern(&text).map_err(graph_error)?;
    cache.insert(name, id);
    Ok(id)
}

/// Everything pass 2 reads, resolved up front so that the workers share it read-only.
pub struct GraphPlan<'s, 'a> {
    scan: &'s Scan<'a>,
    classes: &'s ClassTable,
    /// Owned so that it can be freed before the edge runs are concatenated.
    index: IdIndex,
    rule: SizeRule,
    strings: StringTable,
    class_infos: Vec<ClassInfo>,
    defs: Vec<GraphClass>,
    /// Graph names of every static field name.
    static_names: FxHashMap<Id, StringId>,
    /// The class of class objects (`java.lang.Class`).
    class_class: ClassId,
    primitive_arrays: [ClassSlot; 8],
    unknown_class: (ClassId, StringId),
    root_class: ClassId,
    labels: Labels,
    /// GC-root edges sorted by source ordinal.
    pending: Vec<PendingEdge>,
    dangling_roots: u64,
}

impl<'s, 'a> GraphPlan<'s, 'a> {
    pub fn new(
        scan: &'s Scan<'a>,
        classes: &'s ClassTable,
        index: IdIndex,
        rule: SizeRule,
    ) -> Result<Self, HprofError> {
        let mut strings = StringTable::new();
        let mut class_infos = Vec::new();
        let mut intern_class = |strings: &mut StringTable,
                                name: &str,
                                object: Option<Id>|
         -> Result<(ClassId, StringId), HprofError> {
            let name = strings.intern(name).map_err(graph_error)?;
            let id = ClassId(class_infos.len() as u32);
            class_infos.push(ClassInfo {
                name,
                location: None,
                class_object: object.map(|Id(id)| ObjectId(id)),
            });
            Ok((id, name))
        };
        let mut names = FxHashMap::default();
        let mut defs = Vec::with_capacity(classes.defs.len());
        let mut static_names = FxHashMap::default();
        for def in &classes.defs {
            let (class, name) = intern_class(&mut strings, &def.name, Some(def.dump.id))?;
            let mut fields = Vec::with_capacity(def.ref_fields.len());
            for field in &def.ref_fields {
                let (kind, essential) = match field.retention {
                    Retention::Strong => (EdgeKind::Field, true),
                    Retention::Referent => (EdgeKind::Weak, false),
                    Retention::FinalizerChain => (EdgeKind::Field, false),
                };
                fields.push(GraphField {
                    offset: field.offset,
                    name: intern_name(&mut strings, &mut names, scan, field.name)?,
                    kind: kind.to_byte(essential),
                });
            }
            for field in &def.dump.statics {
                let name = intern_name(&mut strings, &mut names, scan, field.name)?;
                static_names.insert(field.name, name);
            }
            defs.push(GraphClass {
                class,
                name,
                node: index.lookup(def.dump.id),
                fields,
                is_finalizer: def.name == "java.lang.ref.Finalizer",
                is_thread: classes.extends(def, "java.lang.Thread"),
            });
        }
        let class_class = match classes.find_by_name("java.lang.Class") {
            Some(at) => defs[at as usize].class,
            None => intern_class(&mut strings, "java.lang.Class", None)?.0,
        };
        let mut primitive_arrays = [(ClassId(0), None); 8];
        for (slot, ty) in primitive_arrays.iter_mut().zip(PRIMITIVES) {
            *slot = match classes.find_by_name(ty.array_class_name()) {
                Some(at) => {
                    let def = &defs[at as usize];
                    (def.class, def.node)
                }
                None => (
                    intern_class(&mut strings, ty.array_class_name(), None)?.0,
                    None,
                ),
            };
        }
        let unknown_class = intern_class(&mut strings, "<unknown class>", None)?;
        let root_class = intern_class(&mut strings, "<GC roots>", None)?.0;
        let labels = Labels {
            class_of: strings.intern("<class>").map_err(graph_error)?,
            superclass: strings.intern("<super>").map_err(graph_error)?,
            loader: strings.intern("<classloader>").map_err(graph_error)?,
            signers: strings.intern("<signers>").map_err(graph_error)?,
            protection_domain: strings.intern("<protection domain>").map_err(graph_error)?,
        };
        let mut plan = GraphPlan {
            scan,
            classes,
            index,
            rule,
            strings,
            class_infos,
            defs,
            static_names,
            class_class,
            primitive_arrays,
            unknown_class,
            root_class,
            labels,
            pending: Vec::new(),
            dangling_roots: 0,
        };
        plan.plan_root_edges(&scan.roots);
        Ok(plan)
    }

    /// Resolves the GC roots into edges from the root or from their thread's object.
    fn plan_root_edges(&mut self, roots: &[Root]) {
        let mut threads: FxHashMap<u32, u32> = FxHashMap::default();
        for root in roots {
            if let (GcRootKind::ThreadObject, Some(serial)) = (root.kind, root.thread_serial)
                && let Some(ordinal) = self.index.lookup(root.object)
            {
                threads.insert(serial, ordinal);
            }
        }
        let mut pending = Vec::with_capacity(roots.len());
        for root in roots {
            let Some(to) = self.index.lookup(root.object) else {
                self.dangling_roots += 1;
                continue;
            };
            let owner = root
                .thread_serial
                .filter(|_| is_thread_local(root.kind))
                .and_then(|serial| threads.get(&serial).copied());
            if owner == Some(to) {
                // A thread's frame holding the thread itself (`Thread.run`'s `this`): the thread
                // object is already a `Thread` root, the root type MAT shows for it; a second
                // root edge would make paths start with `Java Local` instead.
                continue;
            }
            pending.push(PendingEdge {
                from: owner.unwrap_or(0),
                to,
                kind: EdgeKind::GcRoot(root.kind).to_byte(true),
                name: root.frame.map_or(0, |frame| frame as u32),
            });
        }
        pending.sort_unstable();
        pending.dedup();
        self.pending = pending;
    }

    /// An upper bound of the edges of a group (null references included) whose nodes are the
    /// sources of `pending` root edges: one `<class>` edge per object, the reference fields of
    /// its instances, the elements of its object arrays, and the links and static fields of its
    /// class dumps. The tighter the bound, the less the edge regions are moved when packed.
    fn edge_bound(&self, group: &GroupStats, pending: usize) -> usize {
        let classes = self.classes;
        let instance_refs = group
            .instances_per_class
            .iter()
            .map(|(class_id, count)| {
                let refs = classes
                    .index_of(*class_id)
                    .map_or(0, |at| classes.defs[at as usize].ref_fields.len() as u64);
                count.saturating_mul(refs)
            })
            .fold(0u64, u64::saturating_add);
        // Every edge but the `<class>` and root ones stores its target id in the group's heap
        // records, so a hostile dump cannot make the bound exceed what its bytes can hold.
        let heap_bytes: u64 = self.scan.segments[group.segments.clone()]
            .iter()
            .map(|s| (s.end - s.start) as u64)
            .sum();
        let fixed = group.objects + pending as u64;
        let bound = instance_refs
            .saturating_add(group.array_elements)
            .saturating_add(group.static_fields)
            .saturating_add(group.class_dumps.saturating_mul(4))
            .saturating_add(fixed)
            .min(heap_bytes / self.scan.id_size.bytes() as u64 + fixed);
        usize::try_from(bound).unwrap_or(usize::MAX)
    }

    /// Runs pass 2 over `data`, one worker per group of pass 1; `consumed` hears each finished
    /// byte range and the bytes read so far.
    pub fn fill(
        mut self,
        data: &[u8],
        consumed: &mut dyn FnMut(Range<usize>, usize),
    ) -> Result<Columns, HprofError> {
        let node_count = self.index.len();
        let segments = &self.scan.segments;
        let groups = &self.scan.groups;
        let first_ordinal = |group: Option<&GroupStats>| {
            group
                .and_then(|g| {
                    self.scan
                        .segment_first_ordinal
                        .get(g.segments.start)
                        .copied()
                })
                .unwrap_or(node_count as u32)
        };
        // Each group's ordinal range, root edges and edge bound.
        let mut plans = Vec::with_capacity(groups.len());
        for (at, group) in groups.iter().enumerate() {
            let first = if at == 0 {
                0
            } else {
                first_ordinal(Some(group))
            };
            let end = first_ordinal(groups.get(at + 1)).max(first);
            let pending = self.pending.partition_point(|e| e.from < first)
                ..self.pending.partition_point(|e| e.from < end);
            let bound = self.edge_bound(group, pending.len());
            plans.push((first, end, pending, bound));
        }
        let total_bound = plans
            .iter()
            .fold(0usize, |sum, plan| sum.saturating_add(plan.3));
        // Zeroed allocations come from the kernel untouched: the bound costs address space, and
        // only the entries written cost memory. Each group writes its own region; the regions
        // are then packed together in place.
        // Classes in 2 bytes; ids above `u16::MAX` (dumps of more than 65 536 classes) are kept
        // aside and widen the column at the end.
        let mut class = vec![0u16; node_count];
        // Sizes in 2 bytes; the rare bigger ones (64 KiB or more: big arrays) are kept aside.
        // There are at most as many as the dump holds 64 KiB objects, so the map stays small.
        let mut self_size = vec![0u16; node_count];
        let mut kind = vec![0u8; node_count];
        let mut first_edge = vec![0u32; node_count + 1];
        let mut edge_to = vec![0u32; total_bound];
        let mut edge_kind = vec![0u8; total_bound];
        // Names in 2 bytes; the rare bigger ones (indices in big arrays) are kept aside.
        let mut edge_name = vec![0u16; total_bound];
        let mut nodes = NodeSlices {
            class: &mut class,
            self_size: &mut self_size,
            kind: &mut kind,
            first_edge: &mut first_edge[..node_count],
        };
        let mut edges = EdgeSlices {
            to: &mut edge_to,
            kind: &mut edge_kind,
            name: &mut edge_name,
            rare_names: Vec::new(),
            len: 0,
            overflow: false,
        };
        let mut workers = Vec::with_capacity(plans.len());
        for (group, (first, end, pending, bound)) in groups.iter().zip(&plans) {
            let (my_nodes, rest) = nodes.split_at((end - first) as usize);
            nodes = rest;
            let (my_edges, rest) = edges.split_at(*bound);
            edges = rest;
            workers.push(Worker {
                plan: &self,
                segments: &segments[group.segments.clone()],
                first: *first,
                next: *first,
                nodes: my_nodes,
                edges: my_edges,
                pending: &self.pending[pending.clone()],
                next_pending: 0,
                last_class: None,
                class_names: Vec::new(),
                thread_objects: Vec::new(),
                big_sizes: Vec::new(),
                rare_classes: Vec::new(),
                stats: BuildStats::default(),
            });
        }
        let runs: Vec<WorkerRun> =
            parallel::run(workers, |w, shared| w.run(data, shared), consumed)?
                .into_iter()
                .map(Worker::finish)
                .collect();
        let ids = std::mem::take(&mut self.index).into_id_column();
        // Pack the groups' edge regions and make their CSR offsets global.
        let mut stats = BuildStats {
            dangling_roots: self.dangling_roots,
            ..BuildStats::default()
        };
        let mut packed = 0;
        let mut region = 0;
        let mut class_names = FxHashMap::default();
        let mut thread_objects = Vec::new();
        let mut rare_edge_names = HashMap::new();
        let mut big_sizes = Vec::new();
        let mut rare_classes = Vec::new();
        // Per group: its nodes, where its edges are, and where they go.
        let mut moves = Vec::with_capacity(runs.len());
        for (run, plan) in runs.into_iter().zip(&plans) {
            let WorkerRun {
                nodes,
                edges: len,
                rare_edge_names: rare,
                big_sizes: big,
                rare_classes: rare_run_classes,
                class_names: names,
                thread_objects: threads,
                stats: run_stats,
            } = run;
            if u32::try_from(packed + len).is_err() {
                return Err(graph_error(GraphError::TooManyEdges((packed + len) as u64)));
            }
            big_sizes.extend(big);
            rare_classes.extend(rare_run_classes);
            class_names.extend(names);
            thread_objects.extend(threads);
            rare_edge_names.extend(
                rare.into_iter()
                    .map(|(at, name)| ((packed + at) as u64, name)),
            );
            moves.push((nodes, region..region + len, packed));
            packed += len;
            region += plan.3;
            stats.add(&run_stats);
        }
        // The target column moves on a second thread while this one moves the other two and
        // shifts the offsets (all of it is memory bound); small dumps start no thread.
        let move_targets = |targets: &mut Vec<u32>| {
            for (_, from, to) in &moves {
                if from.start != *to {
                    targets.copy_within(from.clone(), *to);
                }
            }
        };
        std::thread::scope(|scope| {
            let targets = &mut edge_to;
            if packed >= 1 << 20 {
                scope.spawn(move || move_targets(targets));
            } else {
                move_targets(targets);
            }
            for (nodes, from, to) in &moves {
                if from.start != *to {
                    edge_kind.copy_within(from.clone(), *to);
                    edge_name.copy_within(from.clone(), *to);
                }
                for offset in &mut first_edge[nodes.clone()] {
                    *offset += *to as u32;
                }
            }
        });
        first_edge[node_count] = packed as u32;
        edge_to.truncate(packed);
        edge_to.shrink_to_fit();
        edge_name.truncate(packed);
        edge_name.shrink_to_fit();
        edge_kind.truncate(packed);
        edge_kind.shrink_to_fit();
        // Direct targets of the root are the GC roots.
        let mut flags = vec![0u8; node_count];
        if node_count > 0 {
            for &to in &edge_to[first_edge[0] as usize..first_edge[1] as usize] {
                flags[to as usize] |= NodeFlags::GC_ROOT;
            }
        }
        let parts = GraphParts {
            format: HeapFormat::Hprof,
            strings: self.strings,
            classes: self.class_infos,
            ids,
            class: class_column(class, rare_classes),
            // Untouched zeroed pages (no memory): [`into_graph`] names nodes after their class.
            name: vec![0u32; node_count],
            self_size: CompactU64s::with_big(CompactU32s::Two(self_size), big_sizes),
            kind,
            flags,
            first_edge,
            edge_to,
            edge_kind,
            // Untouched zeroed pages: [`into_graph`] puts the 2-byte names in.
            edge_name: vec![0u32; packed],
            root: NodeIndex(0),
        };
        Ok(Columns {
            parts,
            class_names,
            thread_objects,
            edge_names: edge_name,
            rare_edge_names,
            stats,
        })
    }
}

/// The class column from pass 2's 2-byte entries and the classes above `u16::MAX`.
fn class_column(narrow: Vec<u16>, rare: Vec<(u32, u32)>) -> CompactU32s {
    if rare.is_empty() {
        return CompactU32s::Two(narrow);
    }
    let mut wide: Vec<u32> = narrow.into_iter().map(u32::from).collect();
    for (ordinal, class) in rare {
        wide[ordinal as usize] = class;
    }
    CompactU32s::Four(wide)
}

/// What pass 2 produces: the graph's columns (every name still 0), the names of the class
/// objects (every other node is named after its class), the edge names in 2 bytes (`u16::MAX`:
/// in `rare_edge_names`), and the counters.
pub struct Columns {
    pub parts: GraphParts,
    class_names: FxHashMap<u32, StringId>,
    /// Ordinals of the `java.lang.Thread` objects (and of its subclasses').
    pub thread_objects: Vec<u32>,
    edge_names: Vec<u16>,
    rare_edge_names: HashMap<u64, u32>,
    pub stats: BuildStats,
}

/// Produces the graph from pass 2's columns. Class objects are named after the class they
/// define, and thread objects after the thread (`Thread.name`), as Eclipse MAT labels them
/// (`java.lang.Thread "main" @0x…` in suspects, paths and dominators); every other node is
/// named after its class.
pub fn into_graph(columns: Columns, threads: &[ThreadStack]) -> Result<HeapGraph, HprofError> {
    let Columns {
        parts,
        class_names,
        edge_names,
        rare_edge_names,
        ..
    } = columns;
    let mut graph = HeapGraph::from_parts(parts).map_err(graph_error)?;
    let mut names: HashMap<u32, StringId> = class_names.into_iter().collect();
    for thread in threads {
        if let Some(name) = &thread.name {
            let name = graph.strings_mut().intern(name).map_err(graph_error)?;
            names.entry(thread.object.0).or_insert(name);
        }
    }
    graph.name_after_classes(names);
    graph
        .narrow_edge_names(edge_names, rare_edge_names)
        .map_err(graph_error)?;
    Ok(graph)
}

/// What one worker of pass 2 leaves.
struct WorkerRun {
    /// Its ordinals.
    nodes: Range<usize>,
    /// How many edges it wrote.
    edges: usize,
    /// Its edges' names of `u16::MAX` or more, by position in its region.
    rare_edge_names: Vec<(usize, u32)>,
    /// Its nodes' self sizes of `u16::MAX` or more, by ordinal.
    big_sizes: Vec<(u32, u64)>,
    /// Its nodes' classes above `u16::MAX`, by ordinal.
    rare_classes: Vec<(u32, u32)>,
    /// The names of its class objects, by ordinal.
    class_names: Vec<(u32, StringId)>,
    /// Its `java.lang.Thread` objects.
    thread_objects: Vec<u32>,
    stats: BuildStats,
}

/// The node columns of one worker's ordinal range.
struct NodeSlices<'c> {
    class: &'c mut [u16],
    self_size: &'c mut [u16],
    kind: &'c mut [u8],
    first_edge: &'c mut [u32],
}

impl<'c> NodeSlices<'c> {
    fn split_at(self, at: usize) -> (NodeSlices<'c>, NodeSlices<'c>) {
        let at = at.min(self.class.len());
        let (class, class_rest) = self.class.split_at_mut(at);
        let (self_size, size_rest) = self.self_size.split_at_mut(at);
        let (kind, kind_rest) = self.kind.split_at_mut(at);
        let (first_edge, edge_rest) = self.first_edge.split_at_mut(at);
        (
            NodeSlices {
                class,
                self_size,
                kind,
                first_edge,
            },
            NodeSlices {
                class: class_rest,
                self_size: size_rest,
                kind: kind_rest,
                first_edge: edge_rest,
            },
        )
    }
}

/// One worker's region of the edge columns, filled in its nodes' order.
struct EdgeSlices<'c> {
    to: &'c mut [u32],
    kind: &'c mut [u8],
    name: &'c mut [u16],
    /// Names that do not fit 2 bytes (stored as `u16::MAX`), by position in the region.
    rare_names: Vec<(usize, u32)>,
    /// Entries written.
    len: usize,
    /// More edges came than the region holds (the bound was wrong: the dump changed between
    /// the passes, or a bug).
    overflow: bool,
}

impl<'c> EdgeSlices<'c> {
    fn split_at(self, at: usize) -> (EdgeSlices<'c>, EdgeSlices<'c>) {
        let at = at.min(self.to.len());
        let (to, to_rest) = self.to.split_at_mut(at);
        let (kind, kind_rest) = self.kind.split_at_mut(at);
        let (name, name_rest) = self.name.split_at_mut(at);
        (
            EdgeSlices {
                to,
                kind,
                name,
                rare_names: Vec::new(),
                len: 0,
                overflow: false,
            },
            EdgeSlices {
                to: to_rest,
                kind: kind_rest,
                name: name_rest,
                rare_names: Vec::new(),
                len: 0,
                overflow: false,
            },
        )
    }

    #[inline]
    fn push(&mut self, to: u32, kind: u8, name: u32) {
        let at = self.len;
        match (
            self.to.get_mut(at),
            self.kind.get_mut(at),
            self.name.get_mut(at),
        ) {
            (Some(slot_to), Some(slot_kind), Some(slot_name)) => {
                *slot_to = to;
                *slot_kind = kind;
                *slot_name = match u16::try_from(name) {
                    Ok(short) if short != u16::MAX => short,
                    _ => {
                        self.rare_names.push((at, name));
                        u16::MAX
                    }
                };
                self.len += 1;
            }
            _ => self.overflow = true,
        }
    }
}

/// Builds the nodes and edges of one group of segments.
struct Worker<'p, 's, 'a> {
    plan: &'p GraphPlan<'s, 'a>,
    segments: &'p [Segment],
    first: u32,
    next: u32,
    nodes: NodeSlices<'p>,
    edges: EdgeSlices<'p>,
    pending: &'p [PendingEdge],
    next_pending: usize,
    last_class: Option<(Id, u32)>,
    /// Class objects are named after themselves, not after `java.lang.Class`.
    class_names: Vec<(u32, StringId)>,
    /// Ordinals of its `java.lang.Thread` objects.
    thread_objects: Vec<u32>,
    /// Self sizes of `u16::MAX` or more, by ordinal.
    big_sizes: Vec<(u32, u64)>,
    /// Classes above `u16::MAX`, by ordinal.
    rare_classes: Vec<(u32, u32)>,
    stats: BuildStats,
}

impl Worker<'_, '_, '_> {
    fn run(&mut self, data: &[u8], shared: &Shared<'_>) -> Result<(), HprofError> {
        let id_size = self.plan.scan.id_size;
        if self.first == 0 {
            self.begin_node(self.plan.root_class, 0, NodeKind::Root)?;
        }
        let segments = self.segments;
        shared.each_sub_record(data, segments, id_size, |_, _, _, record| match record {
            SubRecord::Root(_) | SubRecord::Other => Ok(()),
            SubRecord::Class(dump) => self.class_dump(&dump),
            SubRecord::Instance {
                class_id, fields, ..
            } => self.instance(class_id, fields),
            SubRecord::ObjectArray {
                class_id, elements, ..
            } => self.object_array(class_id, elements),
            SubRecord::PrimitiveArray { ty, length, .. } => self.primitive_array(ty, length),
        })?;
        if self.edges.overflow {
            return Err(HprofError::new(
                segments.first().map_or(0, |s| s.start as u64),
                ErrorKind::Malformed("the second pass saw more references than the first"),
            ));
        }
        let expected = self.nodes.class.len();
        if (self.next - self.first) as usize != expected {
            return Err(HprofError::new(
                segments.first().map_or(0, |s| s.start as u64),
                ErrorKind::Malformed("the second pass saw a different number of objects"),
            ));
        }
        Ok(())
    }

    fn finish(self) -> WorkerRun {
        WorkerRun {
            nodes: self.first as usize..self.next as usize,
            edges: self.edges.len,
            rare_edge_names: self.edges.rare_names,
            big_sizes: self.big_sizes,
            rare_classes: self.rare_classes,
            class_names: self.class_names,
            thread_objects: self.thread_objects,
            stats: self.stats,
        }
    }

    /// Starts the next node: an instance of `class`, named after it.
    fn begin_node(&mut self, class: ClassId, size: u64, kind: NodeKind) -> Result<(), HprofError> {
        let at = (self.next - self.first) as usize;
        if at >= self.nodes.class.len() {
            return Err(HprofError::new(
                0,
                ErrorKind::Malformed("the second pass saw more objects than the first"),
            ));
        }
        let ordinal = self.next;
        let edges_before = u32::try_from(self.edges.len)
            .map_err(|_| graph_error(GraphError::TooManyEdges(self.edges.len as u64)))?;
        self.nodes.class[at] = u16::try_from(class.0).unwrap_or_else(|_| {
            self.rare_classes.push((ordinal, class.0));
            u16::MAX
        });
        self.nodes.self_size[at] = match u16::try_from(size) {
            Ok(small) if small != u16::MAX => small,
            _ => {
                self.big_sizes.push((ordinal, size));
                u16::MAX
            }
        };
        self.nodes.kind[at] = kind as u8;
        self.nodes.first_edge[at] = edges_before;
        self.next += 1;
        while let Some(edge) = self.pending.get(self.next_pending).copied() {
            if edge.from > ordinal {
                break;
            }
            self.next_pending += 1;
            if edge.from == ordinal {
                self.push_edge(edge.to, edge.kind, edge.name);
            }
        }
        Ok(())
    }

    #[inline]
    fn push_edge(&mut self, to: u32, kind: u8, name: u32) {
        self.edges.push(to, kind, name);
    }

    /// An edge to the object with id `to_id` (nothing for null); `kind` is a stored kind byte.
    #[inline]
    fn edge(&mut self, to_id: Id, kind: u8, name: u32) {
        if to_id == Id::NULL {
            return;
        }
        match self.plan.index.lookup(to_id) {
            Some(to) => self.push_edge(to, kind, name),
            None => self.stats.dangling_references += 1,
        }
    }

    /// The edge from an object to its class object.
    #[inline]
    fn class_edge(&mut self, class_node: Option<u32>) {
        if let Some(to) = class_node {
            let kind = EdgeKind::ClassOf.to_byte(true);
            self.push_edge(to, kind, self.plan.labels.class_of.0);
        }
    }

    fn class_index(&mut self, class_id: Id) -> Option<u32> {
        if let Some((id, index)) = self.last_class
            && id == class_id
        {
            return Some(index);
        }
        let index = self.plan.classes.index_of(class_id)?;
        self.last_class = Some((class_id, index));
        Some(index)
    }

    fn class_dump(&mut self, dump: &ClassDump) -> Result<(), HprofError> {
        let plan = self.plan;
        let def = plan
            .classes
            .index_of(dump.id)
            .map(|at| &plan.defs[at as usize]);
        let name = def.map_or(plan.unknown_class.1, |def| def.name);
        let size = plan
            .classes
            .class_object_size(dump, &plan.rule, &plan.scan.strings);
        self.class_names.push((self.next, name));
        self.begin_node(plan.class_class, size, NodeKind::Class)?;
        let link = EdgeKind::ClassLink.to_byte(true);
        self.edge(dump.super_id, link, plan.labels.superclass.0);
        self.edge(dump.loader_id, link, plan.labels.loader.0);
        self.edge(dump.signers_id, link, plan.labels.signers.0);
        self.edge(
            dump.protection_domain_id,
            link,
            plan.labels.protection_domain.0,
        );
        let is_finalizer = def.is_some_and(|def| def.is_finalizer);
        for field in &dump.statics {
            if field.ty != BasicType::Object {
                continue;
            }
            let name = plan
                .static_names
                .get(&field.name)
                .copied()
                .unwrap_or_default();
            let chain = is_finalizer
                && plan
                    .scan
                    .strings
                    .get(&field.name)
                    .is_some_and(|s| *s == b"unfinalized");
            let kind = EdgeKind::StaticField.to_byte(!chain);
            self.edge(Id(field.value), kind, name.0);
        }
        Ok(())
    }

    fn instance(&mut self, class_id: Id, fields: &[u8]) -> Result<(), HprofError> {
        let plan = self.plan;
        let id_size = plan.scan.id_size;
        let Some(at) = self.class_index(class_id) else {
            self.stats.instances_of_unknown_classes += 1;
            let size = plan.rule.align(plan.rule.header + fields.len() as u64);
            return self.begin_node(plan.unknown_class.0, size, NodeKind::Instance);
        };
        let layout = &plan.classes.defs[at as usize];
        if layout.field_bytes as usize != fields.len() {
            self.stats.layout_mismatches += 1;
        }
        let def = &plan.defs[at as usize];
        if def.is_thread {
            self.thread_objects.push(self.next);
        }
        self.begin_node(def.class, layout.instance_size, NodeKind::Instance)?;
        self.class_edge(def.node);
        let width = id_size.bytes();
        for field in &def.fields {
            let start = field.offset as usize;
            if let Some(raw) = fields.get(start..start + width) {
                self.edge(id_size.decode(raw), field.kind, field.name.0);
            }
        }
        Ok(())
    }

    fn object_array(&mut self, class_id: Id, elements: &[u8]) -> Result<(), HprofError> {
        let plan = self.plan;
        let id_size: IdSize = plan.scan.id_size;
        let length = (elements.len() / id_size.bytes()) as u64;
        let (class, class_node) = match self.class_index(class_id) {
            Some(at) => {
                let def = &plan.defs[at as usize];
                (def.class, def.node)
            }
            None => (plan.unknown_class.0, None),
        };
        let size = plan.rule.array(BasicType::Object, length);
        self.begin_node(class, size, NodeKind::ObjectArray)?;
        self.class_edge(class_node);
        let kind = EdgeKind::ArrayElement.to_byte(true);
        for (slot, target) in ids(elements, id_size).enumerate() {
            self.edge(target, kind, slot as u32);
        }
        Ok(())
    }

    fn primitive_array(&mut self, ty: BasicType, length: u32) -> Result<(), HprofError> {
        let plan = self.plan;
        let slot = PRIMITIVES.iter().position(|&p| p == ty).unwrap_or(0);
        let (class, class_node) = plan.primitive_arrays[slot];
        let size = plan.rule.array(ty, u64::from(length));
        self.begin_node(class, size, NodeKind::PrimitiveArray)?;
        self.class_edge(class_node);
        Ok(())
    }
}
