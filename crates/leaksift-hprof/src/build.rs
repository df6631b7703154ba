//! Pass 2: every object becomes a node and every reference an edge of the heap graph, in file
//! order, so the CSR columns are filled by appending (no sort, no per-edge source column).

use leaksift_heap::{
    ClassId, ClassInfo, EdgeKind, GcRootKind, GraphError, GraphParts, HeapFormat, HeapGraph,
    NodeFlags, NodeIndex, NodeKind, ObjectId, StringId, StringTable,
};
use rustc_hash::FxHashMap;

use crate::bytes::IdSize;
use crate::error::{ErrorKind, HprofError};
use crate::format::BasicType;
use crate::ids::IdIndex;
use crate::layout::{ClassTable, Retention, SizeRule};
use crate::scan::Scan;
use crate::walk::{ClassDump, Root, SubRecord, Visitor, ids};

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
}

/// A reference field ready to become an edge.
#[derive(Debug, Clone, Copy)]
struct GraphField {
    offset: u32,
    name: StringId,
    /// [`EdgeKind::to_byte`] with the essential bit of the field's retention.
    kind: u8,
}

fn intern_name(
    strings: &mut StringTable,
    cache: &mut FxHashMap<u64, StringId>,
    scan: &Scan<'_>,
    name: u64,
) -> Result<StringId, HprofError> {
    if let Some(id) = cache.get(&name) {
        return Ok(*id);
    }
    let text = scan
        .strings
        .get(&name)
        .map(|raw| String::from_utf8_lossy(raw))
        .unwrap_or_default();
    let id = strings.intern(&text).map_err(graph_error)?;
    cache.insert(name, id);
    Ok(id)
}

/// Fills the graph columns during pass 2.
pub struct GraphFill<'s, 'a> {
    scan: &'s Scan<'a>,
    classes: &'s ClassTable,
    index: &'s IdIndex,
    rule: SizeRule,
    strings: StringTable,
    class_infos: Vec<ClassInfo>,
    /// Graph class, name, class node and reference fields per class table entry.
    defs: Vec<GraphClass>,
    /// Graph class of `java.lang.Class` (the class of class objects).
    class_class: ClassId,
    /// Graph class and class object ordinal of each primitive array type.
    primitive_arrays: FxHashMap<BasicType, (ClassId, StringId, Option<u32>)>,
    unknown_class: (ClassId, StringId),
    field_names: FxHashMap<u64, StringId>,
    labels: Labels,
    pending: Vec<PendingEdge>,
    next_pending: usize,
    next_ordinal: u32,
    last_class: Option<(u64, u32)>,
    pub stats: BuildStats,
    // Graph columns.
    class: Vec<u32>,
    name: Vec<u32>,
    self_size: Vec<u64>,
    kind: Vec<u8>,
    flags: Vec<u8>,
    first_edge: Vec<u64>,
    edge_to: Vec<u32>,
    edge_kind: Vec<u8>,
    edge_name: Vec<u32>,
}

fn graph_error(error: GraphError) -> HprofError {
    HprofError::new(0, ErrorKind::Malformed(graph_error_text(&error)))
}

fn graph_error_text(error: &GraphError) -> &'static str {
    match error {
        GraphError::TooManyNodes(_) => "the dump has more than 2^32 - 1 objects",
        GraphError::TooManyStrings => "the dump has more than 2^32 - 1 distinct names",
        GraphError::TooManyClasses => "the dump has more than 2^32 - 1 classes",
        _ => "the heap graph could not be built",
    }
}

impl<'s, 'a> GraphFill<'s, 'a> {
    pub fn new(
        scan: &'s Scan<'a>,
        classes: &'s ClassTable,
        index: &'s IdIndex,
        rule: SizeRule,
    ) -> Result<Self, HprofError> {
        let mut strings = StringTable::new();
        let mut class_infos = Vec::new();
        let mut intern_class = |strings: &mut StringTable,
                                name: &str,
                                object: Option<u64>|
         -> Result<(ClassId, StringId), HprofError> {
            let name = strings.intern(name).map_err(graph_error)?;
            let id = ClassId(class_infos.len() as u32);
            class_infos.push(ClassInfo {
                name,
                location: None,
                class_object: object.map(ObjectId),
            });
            Ok((id, name))
        };
        let mut field_names = FxHashMap::default();
        let mut defs = Vec::with_capacity(classes.defs.len());
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
                    name: intern_name(&mut strings, &mut field_names, scan, field.name)?,
                    kind: kind.to_byte(essential),
                });
            }
            defs.push(GraphClass {
                class,
                name,
                node: index.lookup(&scan.ids, def.dump.id),
                fields,
            });
        }
        let class_class = match classes.find_by_name("java.lang.Class") {
            Some(index) => defs[index as usize].class,
            None => intern_class(&mut strings, "java.lang.Class", None)?.0,
        };
        let mut primitive_arrays = FxHashMap::default();
        for ty in [
            BasicType::Boolean,
            BasicType::Char,
            BasicType::Float,
            BasicType::Double,
            BasicType::Byte,
            BasicType::Short,
            BasicType::Int,
            BasicType::Long,
        ] {
            let entry = match classes.find_by_name(ty.array_class_name()) {
                Some(at) => {
                    let def = &defs[at as usize];
                    (def.class, def.name, def.node)
                }
                None => {
                    let (class, name) = intern_class(&mut strings, ty.array_class_name(), None)?;
                    (class, name, None)
                }
            };
            primitive_arrays.insert(ty, entry);
        }
        let unknown_class = intern_class(&mut strings, "<unknown class>", None)?;
        let root_class = intern_class(&mut strings, "<GC roots>", None)?;
        let labels = Labels {
            class_of: strings.intern("<class>").map_err(graph_error)?,
            superclass: strings.intern("<super>").map_err(graph_error)?,
            loader: strings.intern("<classloader>").map_err(graph_error)?,
            signers: strings.intern("<signers>").map_err(graph_error)?,
            protection_domain: strings.intern("<protection domain>").map_err(graph_error)?,
        };
        let node_count = scan.ids.len();
        // Upper bound of the edge count (null references included), so the columns never
        // reallocate; untouched capacity costs address space, not memory.
        let instance_refs: u64 = scan
            .instances_per_class
            .iter()
            .map(|(class_id, count)| {
                let refs = classes
                    .index_of(*class_id)
                    .map_or(0, |at| classes.defs[at as usize].ref_fields.len() as u64);
                count * (refs + 1)
            })
            .sum();
        let static_refs: u64 = classes
            .defs
            .iter()
            .map(|def| def.dump.statics.len() as u64 + 4)
            .sum();
        let edge_bound = instance_refs
            + static_refs
            + scan.array_elements
            + node_count as u64
            + scan.roots.len() as u64;
        let edge_capacity = usize::try_from(edge_bound).unwrap_or(usize::MAX / 16);
        let mut fill = GraphFill {
            scan,
            classes,
            index,
            rule,
            strings,
            class_infos,
            defs,
            class_class,
            primitive_arrays,
            unknown_class,
            field_names,
            labels,
            pending: Vec::new(),
            next_pending: 0,
            next_ordinal: 1,
            last_class: None,
            stats: BuildStats::default(),
            class: Vec::with_capacity(node_count),
            name: Vec::with_capacity(node_count),
            self_size: Vec::with_capacity(node_count),
            kind: Vec::with_capacity(node_count),
            flags: Vec::with_capacity(node_count),
            first_edge: Vec::with_capacity(node_count + 1),
            edge_to: Vec::with_capacity(edge_capacity),
            edge_kind: Vec::with_capacity(edge_capacity),
            edge_name: Vec::with_capacity(edge_capacity),
        };
        fill.plan_root_edges(&scan.roots);
        // The synthetic root: ordinal 0, its edges first.
        fill.push_node(root_class.0, root_class.1, 0, NodeKind::Root);
        fill.pending_edges_of(0);
        Ok(fill)
    }

    /// Resolves the GC roots into edges from the root or from their thread's object.
    fn plan_root_edges(&mut self, roots: &[Root]) {
        let ids = &self.scan.ids;
        let mut threads: FxHashMap<u32, u32> = FxHashMap::default();
        for root in roots {
            if let (GcRootKind::ThreadObject, Some(serial)) = (root.kind, root.thread_serial) {
                if let Some(ordinal) = self.index.lookup(ids, root.object) {
                    threads.insert(serial, ordinal);
                }
            }
        }
        let mut pending = Vec::with_capacity(roots.len());
        for root in roots {
            let Some(to) = self.index.lookup(ids, root.object) else {
                self.stats.dangling_roots += 1;
                continue;
            };
            let owner = root
                .thread_serial
                .filter(|_| is_thread_local(root.kind))
                .and_then(|serial| threads.get(&serial).copied())
                .filter(|&thread| thread != to);
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

    fn pending_edges_of(&mut self, ordinal: u32) {
        while let Some(edge) = self.pending.get(self.next_pending).copied() {
            if edge.from > ordinal {
                break;
            }
            self.next_pending += 1;
            if edge.from < ordinal {
                continue;
            }
            self.edge_to.push(edge.to);
            self.edge_kind.push(edge.kind);
            self.edge_name.push(edge.name);
        }
    }

    fn push_node(&mut self, class: ClassId, name: StringId, size: u64, kind: NodeKind) -> u32 {
        let ordinal = self.class.len() as u32;
        self.class.push(class.0);
        self.name.push(name.0);
        self.self_size.push(size);
        self.kind.push(kind as u8);
        self.flags.push(0);
        self.first_edge.push(self.edge_to.len() as u64);
        ordinal
    }

    /// An edge to the object with id `to_id` (nothing for null); `kind` is a stored kind byte.
    #[inline]
    fn edge_byte(&mut self, to_id: u64, kind: u8, name: u32) {
        if to_id == 0 {
            return;
        }
        match self.index.lookup(&self.scan.ids, to_id) {
            Some(to) => {
                self.edge_to.push(to);
                self.edge_kind.push(kind);
                self.edge_name.push(name);
            }
            None => self.stats.dangling_references += 1,
        }
    }

    fn edge(&mut self, to_id: u64, kind: EdgeKind, name: u32, essential: bool) {
        self.edge_byte(to_id, kind.to_byte(essential), name);
    }

    fn class_index(&mut self, class_id: u64) -> Option<u32> {
        if let Some((id, index)) = self.last_class {
            if id == class_id {
                return Some(index);
            }
        }
        let index = self.classes.index_of(class_id)?;
        self.last_class = Some((class_id, index));
        Some(index)
    }

    fn begin_node(&mut self, class: ClassId, name: StringId, size: u64, kind: NodeKind) {
        let ordinal = self.push_node(class, name, size, kind);
        debug_assert_eq!(ordinal, self.next_ordinal);
        self.next_ordinal += 1;
        self.pending_edges_of(ordinal);
    }

    fn class_dump(&mut self, dump: &ClassDump) -> Result<(), HprofError> {
        let def = self.classes.index_of(dump.id);
        let name = def.map_or(self.unknown_class.1, |at| self.defs[at as usize].name);
        let statics: u64 = dump
            .statics
            .iter()
            .map(|field| self.rule.value_size(field.ty))
            .sum();
        let size = (self.rule.header + statics + 7) & !7;
        let class = self.class_class;
        self.begin_node(class, name, size, NodeKind::Class);
        let labels = [
            (dump.super_id, self.labels.superclass),
            (dump.loader_id, self.labels.loader),
            (dump.signers_id, self.labels.signers),
            (dump.protection_domain_id, self.labels.protection_domain),
        ];
        for (target, label) in labels {
            self.edge(target, EdgeKind::ClassLink, label.0, true);
        }
        let is_finalizer =
            def.is_some_and(|at| self.classes.defs[at as usize].name == "java.lang.ref.Finalizer");
        for field in &dump.statics {
            if field.ty != BasicType::Object || field.value == 0 {
                continue;
            }
            let name = intern_name(
                &mut self.strings,
                &mut self.field_names,
                self.scan,
                field.name,
            )?;
            let chain = is_finalizer
                && self
                    .scan
                    .strings
                    .get(&field.name)
                    .is_some_and(|s| *s == b"unfinalized");
            self.edge(field.value, EdgeKind::StaticField, name.0, !chain);
        }
        Ok(())
    }

    fn instance(&mut self, class_id: u64, fields: &[u8]) {
        let id_size = self.scan.id_size;
        let Some(at) = self.class_index(class_id) else {
            self.stats.instances_of_unknown_classes += 1;
            let size = (self.rule.header + fields.len() as u64 + 7) & !7;
            let (class, name) = self.unknown_class;
            self.begin_node(class, name, size, NodeKind::Instance);
            return;
        };
        let at = at as usize;
        let layout = &self.classes.defs[at];
        if layout.field_bytes as usize != fields.len() {
            self.stats.layout_mismatches += 1;
        }
        let size = layout.instance_size;
        let def = &self.defs[at];
        let (class, name, class_node) = (def.class, def.name, def.node);
        self.begin_node(class, name, size, NodeKind::Instance);
        self.class_edge(class_node);
        let width = id_size.bytes();
        for slot in 0..self.defs[at].fields.len() {
            let field = self.defs[at].fields[slot];
            let start = field.offset as usize;
            let Some(raw) = fields.get(start..start + width) else {
                continue;
            };
            self.edge_byte(id_size.decode(raw), field.kind, field.name.0);
        }
    }

    /// The edge from an object to its class object.
    #[inline]
    fn class_edge(&mut self, class_node: Option<u32>) {
        if let Some(to) = class_node {
            self.edge_to.push(to);
            self.edge_kind.push(EdgeKind::ClassOf.to_byte(true));
            self.edge_name.push(self.labels.class_of.0);
        }
    }

    fn object_array(&mut self, class_id: u64, elements: &[u8]) {
        let id_size: IdSize = self.scan.id_size;
        let length = (elements.len() / id_size.bytes()) as u64;
        let (class, name, class_node) = match self.class_index(class_id) {
            Some(at) => {
                let def = &self.defs[at as usize];
                (def.class, def.name, def.node)
            }
            None => (self.unknown_class.0, self.unknown_class.1, None),
        };
        let size = self.rule.array(BasicType::Object, length);
        self.begin_node(class, name, size, NodeKind::ObjectArray);
        self.class_edge(class_node);
        let kind = EdgeKind::ArrayElement.to_byte(true);
        for (slot, target) in ids(elements, id_size).enumerate() {
            self.edge_byte(target, kind, slot as u32);
        }
    }

    fn primitive_array(&mut self, ty: BasicType, length: u32) {
        let (class, name, class_node) = self.primitive_arrays[&ty];
        let size = self.rule.array(ty, u64::from(length));
        self.begin_node(class, name, size, NodeKind::PrimitiveArray);
        self.class_edge(class_node);
    }

    /// Completes the columns (the id column is added by [`FilledColumns::into_graph`]).
    pub fn finish(mut self) -> FilledColumns {
        self.first_edge.push(self.edge_to.len() as u64);
        // Direct targets of the root are the GC roots.
        let root_edges = self.first_edge[0] as usize..self.first_edge[1] as usize;
        for &to in &self.edge_to[root_edges] {
            self.flags[to as usize] |= NodeFlags::GC_ROOT;
        }
        self.edge_to.shrink_to_fit();
        self.edge_kind.shrink_to_fit();
        self.edge_name.shrink_to_fit();
        FilledColumns {
            stats: self.stats,
            strings: self.strings,
            classes: self.class_infos,
            class: self.class,
            name: self.name,
            self_size: self.self_size,
            kind: self.kind,
            flags: self.flags,
            first_edge: self.first_edge,
            edge_to: self.edge_to,
            edge_kind: self.edge_kind,
            edge_name: self.edge_name,
        }
    }
}

/// The graph columns after pass 2, waiting for pass 1's id column.
#[derive(Debug)]
pub struct FilledColumns {
    pub stats: BuildStats,
    strings: StringTable,
    classes: Vec<ClassInfo>,
    class: Vec<u32>,
    name: Vec<u32>,
    self_size: Vec<u64>,
    kind: Vec<u8>,
    flags: Vec<u8>,
    first_edge: Vec<u64>,
    edge_to: Vec<u32>,
    edge_kind: Vec<u8>,
    edge_name: Vec<u32>,
}

impl FilledColumns {
    /// The graph; `ids` is pass 1's id column (moved in, not copied).
    pub fn into_graph(self, ids: Vec<u64>) -> Result<HeapGraph, HprofError> {
        if self.class.len() != ids.len() {
            return Err(HprofError::new(
                0,
                ErrorKind::Malformed("the second pass saw a different number of objects"),
            ));
        }
        HeapGraph::from_parts(GraphParts {
            format: HeapFormat::Hprof,
            strings: self.strings,
            classes: self.classes,
            ids,
            class: self.class,
            name: self.name,
            self_size: self.self_size,
            kind: self.kind,
            flags: self.flags,
            first_edge: self.first_edge,
            edge_to: self.edge_to,
            edge_kind: self.edge_kind,
            edge_name: self.edge_name,
            root: NodeIndex(0),
        })
        .map_err(graph_error)
    }
}

impl<'a> Visitor<'a> for GraphFill<'_, 'a> {
    fn sub_record(&mut self, _offset: usize, record: SubRecord<'a>) -> Result<(), HprofError> {
        match record {
            SubRecord::Root(_) | SubRecord::Other => Ok(()),
            SubRecord::Class(dump) => self.class_dump(&dump),
            SubRecord::Instance {
                class_id, fields, ..
            } => {
                self.instance(class_id, fields);
                Ok(())
            }
            SubRecord::ObjectArray {
                class_id, elements, ..
            } => {
                self.object_array(class_id, elements);
                Ok(())
            }
            SubRecord::PrimitiveArray { ty, length, .. } => {
                self.primitive_array(ty, length);
                Ok(())
            }
        }
    }
}
