//! V8 `.heapsnapshot` reader: meta-driven fields, parallel number scanning, lazy strings, and
//! DevTools' semantics (essential edges, page-owned rule, shallow sizes, class names).

mod allocations;
mod devtools;
pub(crate) mod distance_filter;
mod scan;
mod statistics;

use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value;

pub use allocations::{AllocationFrame, AllocationSite, AllocationStacks};
pub use devtools::InterfaceDefinition;
pub use statistics::{Statistics, statistics};

use crate::compact::{CompactU32s, CompactU64s, IdColumn};
use crate::graph::{
    ClassInfo, Detachedness, EdgeKind, GraphError, GraphParts, HeapFormat, HeapGraph, NodeFlags,
    NodeIndex, NodeKind, SourceLocation, StringEncoding, StringTable,
};
use crate::input::HeapBytes;

/// Why a snapshot could not be read. Offsets are byte offsets into the (inflated) file.
#[derive(Debug, thiserror::Error)]
pub enum V8Error {
    #[error("at byte {offset}: expected {expected}")]
    Syntax { offset: u64, expected: &'static str },
    #[error("at byte {offset}: {what}")]
    Shape { offset: u64, what: String },
    /// `offset`: where the `snapshot` object (holding the meta) starts.
    #[error("at byte {offset}: snapshot meta: {what}")]
    Meta { offset: u64, what: String },
    /// `offset`: the end of the file, where the section was looked for last.
    #[error("at byte {offset} (the end): missing the `{section}` section")]
    MissingSection { offset: u64, section: &'static str },
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// A read snapshot: the graph with DevTools' semantics applied, plus V8-only facts.
#[derive(Debug)]
pub struct V8Snapshot {
    pub graph: HeapGraph,
    /// `snapshot.extra_native_bytes` (added to the total by DevTools), 0 when absent.
    pub extra_native_bytes: u64,
    /// The plain-object interfaces (`{a, b}` class names) applied to this snapshot.
    pub interfaces: Vec<InterfaceDefinition>,
    /// DevTools' Allocation view, for a snapshot taken with allocation tracking; `None` otherwise.
    pub allocation_sites: Option<Vec<AllocationSite>>,
    /// The allocation stack of every node, for a snapshot taken with allocation tracking.
    pub allocation_stacks: Option<AllocationStacks>,
}

/// Division by a fixed divisor of numbers it divides, without a division instruction: the
/// quotient is a multiplication by the divisor's inverse modulo 2^64 and a rotation
/// (Granlund & Montgomery), and it is at most `u64::MAX / divisor` exactly when the division is
/// whole. Edges name their target by its position in the flat nodes array.
struct ExactDivisor {
    inverse: u64,
    shift: u32,
    limit: u64,
}

impl ExactDivisor {
    /// A divisor; `divisor` must not be 0.
    fn new(divisor: u64) -> ExactDivisor {
        let shift = divisor.trailing_zeros();
        let odd = divisor >> shift;
        // Newton's iteration doubles the correct low bits: 3 (odd * odd ≡ 1 mod 8) → 96.
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        ExactDivisor {
            inverse,
            shift,
            limit: u64::MAX / divisor,
        }
    }

    /// `value / divisor` when the division is whole, else `None`.
    #[inline]
    fn exact_quotient(&self, value: u64) -> Option<u64> {
        let quotient = value.wrapping_mul(self.inverse).rotate_right(self.shift);
        (quotient <= self.limit).then_some(quotient)
    }
}

/// Field positions read from `snapshot.meta`.
struct Meta {
    node_fields: usize,
    node_type: usize,
    node_name: usize,
    node_id: usize,
    node_self_size: usize,
    node_edge_count: usize,
    node_detachedness: Option<usize>,
    /// The `trace_node_id` node field.
    node_trace: Option<usize>,
    /// Allocation tracking's record layouts, when the snapshot counts traced functions.
    trace: Option<allocations::TraceFields>,
    node_kinds: Vec<NodeKind>,
    edge_fields: usize,
    edge_type: usize,
    edge_name: usize,
    edge_to: usize,
    edge_kinds: Vec<EdgeKind>,
    location_fields: usize,
    location_object: usize,
    location_script: usize,
    location_line: usize,
    location_column: usize,
    root_index: usize,
    extra_native_bytes: u64,
}

/// What is wrong with the snapshot meta (given its offset by the reader: [`V8Error::Meta`]).
#[derive(Debug)]
struct MetaProblem(String);

fn str_list<'a>(meta: &'a Value, key: &str) -> Result<Vec<&'a str>, MetaProblem> {
    meta.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| MetaProblem(format!("`{key}` is missing or not a list")))?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| MetaProblem(format!("`{key}` holds a non-string")))
        })
        .collect()
}

fn position(list: &[&str], name: &str, key: &str) -> Result<usize, MetaProblem> {
    list.iter()
        .position(|f| *f == name)
        .ok_or_else(|| MetaProblem(format!("`{key}` has no `{name}` field")))
}

fn type_names<'a>(meta: &'a Value, key: &str, index: usize) -> Result<Vec<&'a str>, MetaProblem> {
    meta.get(key)
        .and_then(|t| t.get(index))
        .and_then(Value::as_array)
        .ok_or_else(|| MetaProblem(format!("`{key}[{index}]` is not the list of type names")))?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| MetaProblem(format!("`{key}` holds a non-string type")))
        })
        .collect()
}

/// The layouts of `trace_function_infos` and `trace_tree` records, when `function_count` > 0.
fn trace_fields(
    meta: &Value,
    function_count: usize,
) -> Result<Option<allocations::TraceFields>, MetaProblem> {
    if function_count == 0 {
        return Ok(None);
    }
    let function = str_list(meta, "trace_function_info_fields")?;
    let node = str_list(meta, "trace_node_fields")?;
    if function.len() > 16 || node.len() > 16 {
        return Err(MetaProblem(
            "more than 16 fields per trace function or trace node".into(),
        ));
    }
    let at = |list: &[&str], name: &str, key: &str| position(list, name, key);
    let functions = "trace_function_info_fields";
    let nodes = "trace_node_fields";
    Ok(Some(allocations::TraceFields {
        function_fields: function.len(),
        function_name: at(&function, "name", functions)?,
        script_name: at(&function, "script_name", functions)?,
        script_id: at(&function, "script_id", functions)?,
        line: at(&function, "line", functions)?,
        column: at(&function, "column", functions)?,
        node_fields: node.len(),
        node_id: at(&node, "id", nodes)?,
        node_function: at(&node, "function_info_index", nodes)?,
        node_count: at(&node, "count", nodes)?,
        node_size: at(&node, "size", nodes)?,
        node_children: at(&node, "children", nodes)?,
    }))
}

impl Meta {
    fn parse(snapshot: &[u8]) -> Result<Meta, MetaProblem> {
        let value: Value = serde_json::from_slice(snapshot)
            .map_err(|e| MetaProblem(format!("the `snapshot` object is not valid JSON: {e}")))?;
        let meta = value
            .get("meta")
            .ok_or_else(|| MetaProblem("no `meta` object".into()))?;
        let node_fields = str_list(meta, "node_fields")?;
        let edge_fields = str_list(meta, "edge_fields")?;
        if node_fields.len() > 16 || edge_fields.len() > 16 {
            return Err(MetaProblem("more than 16 fields per node or edge".into()));
        }
        let node_type = position(&node_fields, "type", "node_fields")?;
        let edge_type = position(&edge_fields, "type", "edge_fields")?;
        let node_kinds = type_names(meta, "node_types", node_type)?
            .into_iter()
            .map(|t| NodeKind::from_v8_type_name(t).unwrap_or(NodeKind::Other))
            .collect();
        let edge_kinds = type_names(meta, "edge_types", edge_type)?
            .into_iter()
            .map(|t| EdgeKind::from_v8_type_name(t).unwrap_or(EdgeKind::Other))
            .collect();
        let location_fields = match meta.get("location_fields") {
            Some(_) => str_list(meta, "location_fields")?,
            None => vec!["object_index", "script_id", "line", "column"],
        };
        if location_fields.len() > 16 {
            return Err(MetaProblem("more than 16 fields per location".into()));
        }
        let optional_index = |key: &str| -> Result<Option<usize>, MetaProblem> {
            match value.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| MetaProblem(format!("`{key}` is not a non-negative integer"))),
            }
        };
        Ok(Meta {
            node_fields: node_fields.len(),
            node_type,
            node_name: position(&node_fields, "name", "node_fields")?,
            node_id: position(&node_fields, "id", "node_fields")?,
            node_self_size: position(&node_fields, "self_size", "node_fields")?,
            node_edge_count: position(&node_fields, "edge_count", "node_fields")?,
            node_detachedness: node_fields.iter().position(|f| *f == "detachedness"),
            node_trace: node_fields.iter().position(|f| *f == "trace_node_id"),
            trace: trace_fields(meta, optional_index("trace_function_count")?.unwrap_or(0))?,
            node_kinds,
            edge_fields: edge_fields.len(),
            edge_type,
            edge_name: position(&edge_fields, "name_or_index", "edge_fields")?,
            edge_to: position(&edge_fields, "to_node", "edge_fields")?,
            edge_kinds,
            location_fields: location_fields.len().max(1),
            location_object: position(&location_fields, "object_index", "location_fields")?,
            location_script: position(&location_fields, "script_id", "location_fields")?,
            location_line: position(&location_fields, "line", "location_fields")?,
            location_column: position(&location_fields, "column", "location_fields")?,
            root_index: optional_index("root_index")?.unwrap_or(0),
            extra_native_bytes: optional_index("extra_native_bytes")?.unwrap_or(0) as u64,
        })
    }
}

/// Reads a snapshot from its bytes and applies DevTools' semantics. `on_phase` is told the name
/// of each phase as it starts. With `interfaces`, plain objects are classified with those
/// interface definitions (DevTools' Comparison view classifies the base snapshot with the
/// compared snapshot's definitions);
/// otherwise they are inferred from this snapshot.
pub fn read(
    bytes: Arc<HeapBytes>,
    interfaces: Option<&[InterfaceDefinition]>,
    on_phase: &mut dyn FnMut(&str),
) -> Result<V8Snapshot, V8Error> {
    on_phase("scanning snapshot");
    let data: &[u8] = (*bytes).as_ref();
    let mut sections = scan::sections(data, true)?;
    let missing = |section| V8Error::MissingSection {
        offset: data.len() as u64,
        section,
    };
    let snapshot_object = sections.snapshot.clone().ok_or(missing("snapshot"))?;
    let meta_offset = snapshot_object.start as u64;
    let meta = Meta::parse(&data[snapshot_object]).map_err(|MetaProblem(what)| V8Error::Meta {
        offset: meta_offset,
        what,
    })?;
    let nodes = sections.nodes.clone().ok_or(missing("nodes"))?;
    let nodes_body = nodes.body.clone();
    let edges = sections.edges.clone().ok_or(missing("edges"))?;
    let edges_body = edges.body.clone();
    let strings_body = sections.strings.clone().ok_or(missing("strings"))?;

    // The strings are listed on one core while the nodes are parsed on all; node names are
    // checked against the string count afterwards.
    on_phase("reading strings and nodes");
    let pieces = rayon::current_num_threads() * 8;
    let (node_chunks, node_numbers) =
        scan::array_chunks(data, &nodes, meta.node_fields, nodes.body.len() / pieces)?;
    let node_count = node_numbers / meta.node_fields;
    if node_count == 0 {
        return Err(V8Error::Shape {
            offset: nodes_body.start as u64,
            what: "the snapshot has no nodes".into(),
        });
    }
    if node_count >= u32::MAX as usize {
        return Err(GraphError::TooManyNodes(node_count as u64).into());
    }
    let mut ids = vec![0u64; node_count];
    let mut names = vec![0u32; node_count];
    let mut self_size = vec![0u64; node_count];
    let mut kinds = vec![0u8; node_count];
    let mut flags = vec![0u8; node_count];
    // Edge counts go to `first_edge[1..]`, summed into offsets below.
    let mut first_edge = vec![0u32; node_count + 1];
    // Allocation stacks of the nodes, only for a snapshot taken with allocation tracking.
    let node_trace = meta.node_trace.filter(|_| meta.trace.is_some());
    let mut trace_ids = vec![0u64; if node_trace.is_some() { node_count } else { 0 }];
    let (strings, parsed_nodes) = rayon::join(
        || read_strings(&bytes, strings_body.clone()),
        || {
            let lengths: Vec<usize> = node_chunks.iter().map(|c| c.records).collect();
            let columns = scan::split_mut(&mut ids, &lengths)
                .into_iter()
                .zip(scan::split_mut(&mut names, &lengths))
                .zip(scan::split_mut(&mut self_size, &lengths))
                .zip(scan::split_mut(&mut kinds, &lengths))
                .zip(scan::split_mut(&mut flags, &lengths))
                .zip(scan::split_mut(&mut first_edge[1..], &lengths))
                .zip(if node_trace.is_some() {
                    scan::split_mut(&mut trace_ids, &lengths)
                } else {
                    lengths.iter().map(|_| &mut [][..]).collect()
                });
            scan::parse_parallel(
                &bytes,
                &node_chunks,
                meta.node_fields,
                columns.collect(),
                |chunk, ((((((ids, names), sizes), kinds), flags), edge_counts), traces), i, f| {
                    let bad = |detail: String| scan::record_error(chunk, "node", i, detail);
                    let kind = *meta
                        .node_kinds
                        .get(f[meta.node_type] as usize)
                        .ok_or_else(|| bad(format!("unknown type {}", f[meta.node_type])))?;
                    ids[i] = f[meta.node_id];
                    names[i] = u32::try_from(f[meta.node_name]).map_err(|_| {
                        bad(format!("name {} is not a string index", f[meta.node_name]))
                    })?;
                    sizes[i] = f[meta.node_self_size];
                    kinds[i] = kind as u8;
                    let detachedness = meta.node_detachedness.map_or(Detachedness::Unknown, |d| {
                        Detachedness::from_u8(f[d].min(3) as u8)
                    });
                    flags[i] = NodeFlags::with_detachedness(detachedness).0;
                    edge_counts[i] = u32::try_from(f[meta.node_edge_count])
                        .map_err(|_| bad("edge count above 2^32".into()))?;
                    if let Some(trace) = node_trace {
                        traces[i] = f[trace];
                    }
                    Ok(())
                },
            )
        },
    );
    let SnapshotStrings {
        table: mut strings,
        digit_first,
    } = match strings {
        // The strings array was not the last section after all: scan the whole file.
        Err(_) if sections.strings_assumed_last => {
            sections = scan::sections(data, false)?;
            let body = sections.strings.clone().ok_or(missing("strings"))?;
            read_strings(&bytes, body)?
        }
        strings => strings?,
    };
    parsed_nodes?;
    let string_count = strings.len() as u64;
    // A maximum, not a parallel search: that would share its progress per element.
    let highest_name = names.par_iter().copied().max().unwrap_or(0);
    if u64::from(highest_name) >= string_count {
        let node = names
            .iter()
            .position(|n| u64::from(*n) >= string_count)
            .unwrap_or(0);
        let chunk = node_chunks
            .iter()
            .rfind(|c| c.first_record <= node)
            .unwrap_or(&node_chunks[0]);
        return Err(scan::record_error(
            chunk,
            "node",
            node - chunk.first_record,
            format!("name {} is not a string index", names[node]),
        ));
    }
    bytes.release(nodes_body.clone());
    let declared_edges: u64 = first_edge.par_iter().map(|count| u64::from(*count)).sum();
    if u32::try_from(declared_edges).is_err() {
        return Err(GraphError::TooManyEdges(declared_edges).into());
    }
    for i in 0..node_count {
        first_edge[i + 1] += first_edge[i];
    }

    on_phase("parsing edges");
    let (edge_chunks, edge_numbers) =
        scan::array_chunks(data, &edges, meta.edge_fields, edges.body.len() / pieces)?;
    let edge_count = edge_numbers / meta.edge_fields;
    if first_edge[node_count] as usize != edge_count {
        return Err(V8Error::Shape {
            offset: edges_body.start as u64,
            what: format!(
                "the nodes' edge counts add up to {}, but the `edges` array holds {edge_count} edges",
                first_edge[node_count]
            ),
        });
    }
    let mut edge_to = vec![0u32; edge_count];
    let mut edge_kind = vec![0u8; edge_count];
    let mut edge_name = vec![0u32; edge_count];
    // The locations (a few per cent of the file) are parsed alongside.
    let (parsed_edges, locations) = rayon::join(
        || {
            let lengths: Vec<usize> = edge_chunks.iter().map(|c| c.records).collect();
            let columns = scan::split_mut(&mut edge_to, &lengths)
                .into_iter()
                .zip(scan::split_mut(&mut edge_kind, &lengths))
                .zip(scan::split_mut(&mut edge_name, &lengths));
            let node_index = ExactDivisor::new(meta.node_fields as u64);
            // Per edge type: the stored kind byte and whether the name is an index.
            let types: Vec<(u8, bool)> = meta
                .edge_kinds
                .iter()
                .map(|k| (k.to_byte(true), k.name_is_index()))
                .collect();
            scan::parse_parallel(
                &bytes,
                &edge_chunks,
                meta.edge_fields,
                columns.collect(),
                |chunk, ((to, kind), name), i, f| {
                    let bad = |detail: String| scan::record_error(chunk, "edge", i, detail);
                    let (kind_byte, name_is_index) = *types
                        .get(f[meta.edge_type] as usize)
                        .ok_or_else(|| bad(format!("unknown type {}", f[meta.edge_type])))?;
                    let target = f[meta.edge_to];
                    let ordinal = node_index
                        .exact_quotient(target)
                        .filter(|o| *o < node_count as u64)
                        .ok_or_else(|| bad(format!("to_node {target} is not a node")))?;
                    let label = f[meta.edge_name];
                    if !name_is_index && label >= string_count {
                        return Err(bad(format!("name {label} is not a string index")));
                    }
                    to[i] = ordinal as u32;
                    kind[i] = kind_byte;
                    name[i] = u32::try_from(label).map_err(|_| bad("index above 2^32".into()))?;
                    Ok(())
                },
            )
        },
        || match sections.locations.clone() {
            Some(array) => read_locations(&bytes, &array, &meta, node_count, &kinds),
            None => Ok(Vec::new()),
        },
    );
    parsed_edges?;
    let locations = locations?;
    bytes.release(edges_body.clone());

    if meta.root_index % meta.node_fields != 0 || meta.root_index / meta.node_fields >= node_count {
        return Err(V8Error::Meta {
            offset: meta_offset,
            what: format!("root_index {} is not a node", meta.root_index),
        });
    }
    // Provisional classes, one per node type in order of first use; DevTools' naming replaces
    // them below.
    let first_use = kinds
        .par_chunks(1 << 16)
        .enumerate()
        .map(|(k, chunk)| {
            let mut first = [usize::MAX; 256];
            for (i, kind) in chunk.iter().enumerate() {
                let slot = &mut first[usize::from(*kind)];
                if *slot == usize::MAX {
                    *slot = (k << 16) + i;
                }
            }
            first
        })
        .reduce(
            || [usize::MAX; 256],
            |a, b| std::array::from_fn(|k| a[k].min(b[k])),
        );
    let mut used: Vec<usize> = (0..256).filter(|k| first_use[*k] != usize::MAX).collect();
    used.sort_by_key(|k| first_use[*k]);
    let mut classes = Vec::new();
    let mut class_of_kind = [0u32; 256];
    for kind in used {
        class_of_kind[kind] = classes.len() as u32;
        let name = strings.intern(&format!("({})", NodeKind::from_u8(kind as u8).name()))?;
        classes.push(ClassInfo::named(name));
    }
    let mut class = vec![0u32; node_count];
    class
        .par_iter_mut()
        .zip(&kinds)
        .for_each(|(class, kind)| *class = class_of_kind[usize::from(*kind)]);
    let mut graph = HeapGraph::from_parts(GraphParts {
        format: HeapFormat::V8,
        strings,
        classes,
        ids: IdColumn::from_wide(ids),
        class: CompactU32s::Four(class),
        name: names,
        self_size: CompactU64s::from_wide(self_size),
        kind: kinds,
        flags,
        first_edge,
        edge_to,
        edge_kind,
        edge_name,
        root: NodeIndex((meta.root_index / meta.node_fields) as u32),
    })?;

    on_phase("applying DevTools semantics");
    devtools::propagate_dom_state(&mut graph)?;
    // Read-only passes on both cores: classes and shallow-size owners on one, page ownership
    // then the edges' essential bits (themselves parallel) on the other.
    // Their output columns are allocated here, on the calling thread, so freeing them returns
    // the memory; classes are picked into the graph's own class column (taken out meanwhile).
    let mut kinds = vec![0u8; graph.edge_count() as usize];
    let mut owners = vec![0u32; node_count];
    let mut owned = vec![0u64; node_count.div_ceil(64)];
    let of_node = graph.take_class_column();
    let ((classes, has_owners), ()) = rayon::join(
        || {
            (
                devtools::classify_nodes(&graph, &locations, interfaces, of_node),
                devtools::shallow_size_owners(&graph, &mut owners),
            )
        },
        || {
            devtools::page_owned(&graph, &mut owned);
            devtools::essential_edge_kinds(&graph, &owned, &digit_first, &mut kinds);
        },
    );
    devtools::mark_page_owned(&mut graph, &owned);
    graph.restore_edge_kind_bytes(kinds)?;
    if has_owners {
        devtools::fold_shallow_sizes(&mut graph, &owners);
    }
    drop(owners);
    let interfaces = devtools::apply_classes(&mut graph, classes)?;
    drop(locations);
    let (allocation_sites, allocation_stacks) = match (
        &meta.trace,
        &sections.trace_function_infos,
        &sections.trace_tree,
    ) {
        (Some(fields), Some(infos), Some(tree)) => {
            // Self sizes as DevTools counts them: after the sizes it moves into owners.
            let (sites, stacks) = allocations::allocation_sites(
                data,
                fields,
                infos,
                tree.clone(),
                std::mem::take(&mut trace_ids),
                |node| graph.self_size(NodeIndex(node as u32)),
                graph.strings(),
            )?;
            (Some(sites), Some(stacks))
        }
        _ => (None, None),
    };
    Ok(V8Snapshot {
        graph,
        extra_native_bytes: meta.extra_native_bytes,
        interfaces,
        allocation_sites,
        allocation_stacks,
    })
}

/// The strings of a snapshot and the ids of those that start with a digit (the only ones that
/// can be WeakMap ephemeron edge names).
struct SnapshotStrings {
    table: StringTable,
    digit_first: Vec<u32>,
}

/// Lists the strings of the `strings` array body as spans of the file, then drops its pages
/// from memory (strings are decoded when read).
fn read_strings(
    bytes: &Arc<HeapBytes>,
    body: std::ops::Range<usize>,
) -> Result<SnapshotStrings, V8Error> {
    let mut strings = StringTable::with_backing(bytes.backing());
    let mut digit_first = Vec::new();
    let data: &[u8] = (**bytes).as_ref();
    scan::strings(data, body.clone(), |offset, len, escaped| {
        if data[offset..offset + len]
            .first()
            .is_some_and(u8::is_ascii_digit)
        {
            digit_first.push(strings.len() as u32);
        }
        let len = u32::try_from(len).map_err(|_| V8Error::Shape {
            offset: offset as u64,
            what: "a string longer than 4 GiB".into(),
        })?;
        let encoding = if escaped {
            StringEncoding::JsonEscaped
        } else {
            StringEncoding::Utf8
        };
        strings.push_backed(offset as u64, len, encoding)?;
        Ok(())
    })?;
    bytes.release(body);
    Ok(SnapshotStrings {
        table: strings,
        digit_first,
    })
}

fn read_locations(
    bytes: &HeapBytes,
    array: &scan::FlatArray,
    meta: &Meta,
    node_count: usize,
    kinds: &[u8],
) -> Result<Vec<(u32, SourceLocation)>, V8Error> {
    let data: &[u8] = bytes.as_ref();
    let pieces = rayon::current_num_threads() * 4;
    let (chunks, _) =
        scan::array_chunks(data, array, meta.location_fields, array.body.len() / pieces)?;
    let node_index = ExactDivisor::new(meta.node_fields as u64);
    let parts: Vec<Vec<(u32, SourceLocation)>> = chunks
        .par_iter()
        .map(|chunk| {
            let mut locations = Vec::new();
            scan::parse_records(data, chunk, meta.location_fields, |_, f| {
                let index = f[meta.location_object];
                let ordinal = node_index
                    .exact_quotient(index)
                    .filter(|o| *o < node_count as u64)
                    .ok_or_else(|| V8Error::Shape {
                        offset: chunk.bytes.start as u64,
                        what: format!("location object_index {index} is not a node"),
                    })? as u32;
                // DevTools uses locations only for the class key of `object` nodes.
                if kinds[ordinal as usize] == NodeKind::Object as u8 {
                    let to_u32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
                    locations.push((
                        ordinal,
                        SourceLocation {
                            script_id: to_u32(f[meta.location_script]),
                            line: to_u32(f[meta.location_line]),
                            column: to_u32(f[meta.location_column]),
                        },
                    ));
                }
                Ok(())
            })?;
            bytes.release(chunk.bytes.clone());
            Ok(locations)
        })
        .collect::<Result<_, V8Error>>()?;
    bytes.release(array.body.clone());
    let mut locations = parts.concat();
    // Sorted by node, the last entry for a node winning (DevTools builds a map in file order).
    if !locations.windows(2).all(|w| w[0].0 < w[1].0) {
        locations.reverse();
        locations.par_sort_by_key(|(ordinal, _)| *ordinal);
        locations.dedup_by_key(|(ordinal, _)| *ordinal);
    }
    Ok(locations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HANDMADE: &[u8] = include_bytes!("../../../../tests/fixtures/v8/handmade.heapsnapshot");

    fn read_bytes(bytes: Vec<u8>) -> Result<V8Snapshot, V8Error> {
        read(Arc::new(HeapBytes::Owned(bytes)), None, &mut |_| {})
    }

    /// Reads and runs every analysis; nothing may panic whatever the input.
    fn exercise(bytes: Vec<u8>) {
        if let Ok(snapshot) = read_bytes(bytes) {
            let graph = &snapshot.graph;
            let dominators = crate::dominators::Dominators::compute(graph);
            let _ = crate::histogram::class_histogram(graph, &dominators);
            let _ = crate::suspects::find_suspects(graph, &dominators, 0.1);
            let ids = crate::diff::sorted_ids(graph);
            let _ = crate::diff::find_leaks(&[], &ids, graph, &dominators);
            let _ = crate::diff::compare(graph, graph);
            let last = NodeIndex(graph.node_count() as u32 - 1);
            let _ = crate::paths::retaining_paths(graph, last, &[graph.root()], 3);
            for node in graph.nodes() {
                let _ = graph.describe(node);
            }
        }
    }

    #[test]
    fn reads_the_handmade_fixture() {
        let snapshot = read_bytes(HANDMADE.to_vec()).unwrap();
        assert_eq!(snapshot.graph.node_count(), 19);
        assert_eq!(snapshot.graph.edge_count(), 24);
        let text = snapshot
            .graph
            .nodes()
            .find(|n| snapshot.graph.kind(*n) == NodeKind::String)
            .unwrap();
        assert_eq!(snapshot.graph.name(text), "caf\u{fffd} é \"quoted\"");
    }

    #[test]
    fn exact_division_finds_whole_quotients_only() {
        for divisor in [1u64, 2, 3, 6, 7, 8, 12, 16] {
            let exact = ExactDivisor::new(divisor);
            for value in (0..2000).chain([u64::MAX - 1, u64::MAX, 1 << 40, (1 << 40) + 7]) {
                let expected = (value % divisor == 0).then_some(value / divisor);
                assert_eq!(exact.exact_quotient(value), expected, "{value} / {divisor}");
            }
        }
    }

    #[test]
    fn reports_meta_errors() {
        let broken = String::from_utf8_lossy(HANDMADE).replace("\"to_node\"", "\"target\"");
        let error = read_bytes(broken.into_bytes()).unwrap_err();
        assert!(matches!(error, V8Error::Meta { .. }));
        // Where the meta is, as every other error says where it is.
        assert!(
            error.to_string().starts_with("at byte 12: snapshot meta:"),
            "{error}"
        );
        let bad_target = String::from_utf8_lossy(HANDMADE).replacen(",1,14,", ",1,15,", 1);
        assert!(read_bytes(bad_target.into_bytes()).is_err());
        // A location record wider than the parser's 16 fields is refused, not an index panic.
        let wide = String::from_utf8_lossy(HANDMADE).replace(
            "\"location_fields\":[\"object_index\",",
            &format!(
                "\"location_fields\":[{}\"object_index\",",
                "\"x\",".repeat(13)
            ),
        );
        assert!(matches!(
            read_bytes(wide.into_bytes()),
            Err(V8Error::Meta { .. })
        ));
    }

    #[test]
    fn self_sizes_of_4_gib_and_more_are_kept_exactly() {
        // Sizes are stored in 4 bytes, the big ones aside: node id 5 gets 5 GB more (DevTools'
        // rules fold some internal nodes' sizes into it, on top of its own).
        let more = 5_000_000_000 - 100;
        let big =
            String::from_utf8_lossy(HANDMADE).replacen(",3,3,5,100,7,", ",3,3,5,5000000000,7,", 1);
        let small = read_bytes(HANDMADE.to_vec()).unwrap().graph;
        let graph = read_bytes(big.into_bytes()).unwrap().graph;
        let size_of_5 = |g: &HeapGraph| g.self_size(g.nodes().find(|n| g.id(*n).0 == 5).unwrap());
        assert!(size_of_5(&graph) > u64::from(u32::MAX));
        assert_eq!(size_of_5(&graph), size_of_5(&small) + more);
        let retained = |g: &HeapGraph| crate::dominators::Dominators::compute(g).retained(g.root());
        assert_eq!(retained(&graph), retained(&small) + more);
    }

    #[test]
    fn more_than_2_pow_32_edges_is_a_typed_error() {
        // Each count fits 32 bits; their sum does not (edge offsets are u32).
        let many = String::from_utf8_lossy(HANDMADE).replacen(
            "\"nodes\":[9,0,1,0,2,0,0,9,2,3,0,2,0,0,",
            "\"nodes\":[9,0,1,0,4294967295,0,0,9,2,3,0,4294967295,0,0,",
            1,
        );
        assert_eq!(
            read_bytes(many.into_bytes()).err().map(|e| e.to_string()),
            Some(GraphError::TooManyEdges(2 * 4294967295 - 4 + 24).to_string())
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            exercise(bytes);
        }

        #[test]
        fn mutated_snapshots_never_panic(
            at in 0usize..HANDMADE.len(),
            patch in proptest::collection::vec(
                prop_oneof![Just(b'0'), Just(b'9'), Just(b','), Just(b']'), Just(b'"'), any::<u8>()],
                1..6,
            ),
            cut in 0usize..=HANDMADE.len(),
        ) {
            let mut bytes = HANDMADE.to_vec();
            for (i, b) in patch.iter().enumerate() {
                if at + i < bytes.len() {
                    bytes[at + i] = *b;
                }
            }
            bytes.truncate(cut.max(at));
            exercise(bytes);
        }
    }
}
