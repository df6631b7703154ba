//! DevTools' Allocation view: the JavaScript functions that allocated the snapshot's objects,
//! from a snapshot taken with allocation tracking (`node --track-heap-objects`, DevTools'
//! "Allocation instrumentation on timeline"): `trace_function_infos`, the `trace_tree` of
//! allocation stacks, and each node's `trace_node_id`.
//!
//! The figures are DevTools' (`AllocationProfile.serializeTraceTops`): per function, the
//! allocations the tracker counted at the stacks whose top it is (`count`, `size`), and the
//! snapshot's objects allocated there (`live_count`, `live_size`: every node whose
//! `trace_node_id` is such a stack, with its self size as written in the file).

use rustc_hash::FxHashMap;

use super::V8Error;
use super::scan;
use crate::graph::{NodeIndex, StringId, StringTable};

/// A JavaScript function that allocated, as V8's allocation tracker names it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AllocationFrame {
    pub function: String,
    pub script: String,
    pub script_id: u64,
    /// As V8 records it: 1-based line and column of the function's start.
    pub line: u64,
    pub column: u64,
}

/// One allocating function, as a row of DevTools' Allocation view.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AllocationSite {
    #[serde(flatten)]
    pub frame: AllocationFrame,
    /// Allocations counted by the tracker while it ran (freed ones too).
    pub allocations: u64,
    pub allocated_bytes: u64,
    /// Objects of the snapshot allocated here, and their self sizes.
    pub live_count: u64,
    pub live_bytes: u64,
}

/// Field positions of `trace_function_infos` and `trace_tree` records (from the snapshot meta).
#[derive(Clone, Debug)]
pub(crate) struct TraceFields {
    pub function_fields: usize,
    pub function_name: usize,
    pub script_name: usize,
    pub script_id: usize,
    pub line: usize,
    pub column: usize,
    pub node_fields: usize,
    pub node_id: usize,
    pub node_function: usize,
    pub node_count: usize,
    pub node_size: usize,
    pub node_children: usize,
}

/// A stack of the trace tree: its id, its caller's (0 at the top), function index, and the
/// allocations counted there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TraceNode {
    id: u64,
    parent: u64,
    function: u64,
    count: u64,
    size: u64,
}

/// The allocation stack of every node of a tracked snapshot (DevTools' "Allocation stack" of an
/// object).
#[derive(Debug, Default)]
pub struct AllocationStacks {
    functions: Vec<AllocationFrame>,
    /// Per trace node id: its caller's id and its function.
    callers: FxHashMap<u64, (u64, usize)>,
    /// Per node ordinal: its `trace_node_id` (0: none).
    node_trace: Vec<u64>,
}

impl AllocationStacks {
    /// The stack that allocated `node`, innermost frame first, down to the tracker's `(root)`
    /// frame as DevTools lists it; empty when the node has none.
    pub fn stack(&self, node: NodeIndex) -> Vec<&AllocationFrame> {
        self.stack_of_trace(self.trace_of(node))
    }

    /// The stack that allocated the most of `nodes` (ties: the first in the tree's numbering);
    /// empty when none has one. It names the code that made a suspect's accumulated objects.
    pub fn most_common_stack(
        &self,
        nodes: impl Iterator<Item = NodeIndex>,
    ) -> Vec<&AllocationFrame> {
        let mut counts: FxHashMap<u64, u64> = FxHashMap::default();
        for node in nodes {
            let trace = self.trace_of(node);
            if trace != 0 {
                *counts.entry(trace).or_default() += 1;
            }
        }
        let most = counts
            .into_iter()
            .max_by_key(|&(trace, count)| (count, std::cmp::Reverse(trace)))
            .map_or(0, |(trace, _)| trace);
        self.stack_of_trace(most)
    }

    fn trace_of(&self, node: NodeIndex) -> u64 {
        self.node_trace.get(node.get()).copied().unwrap_or(0)
    }

    /// The innermost [`MAX_ALLOCATION_FRAMES`] frames of the stack of trace node `id`.
    fn stack_of_trace(&self, mut id: u64) -> Vec<&AllocationFrame> {
        let mut frames = Vec::new();
        // A deep recursion (or a hostile tree 300 000 nodes deep in a 4 MB file) would put
        // its every frame in every report row: 378 MB of JSON. A loop ends there too.
        while let Some(&(caller, function)) = self.callers.get(&id) {
            if frames.len() >= MAX_ALLOCATION_FRAMES {
                break;
            }
            frames.extend(self.functions.get(function));
            id = caller;
        }
        frames
    }
}

/// How many frames of an allocation stack are kept, innermost first (the native recorder keeps
/// as many).
pub const MAX_ALLOCATION_FRAMES: usize = 64;

/// The allocation sites of a tracked snapshot, largest `allocated_bytes` first (DevTools'
/// order; ties keep the function order of the file), and every node's allocation stack.
/// `node_trace` is each node's `trace_node_id`, `self_size` its size as DevTools counts it.
pub(crate) fn allocation_sites(
    data: &[u8],
    fields: &TraceFields,
    function_infos: &scan::FlatArray,
    trace_tree: std::ops::Range<usize>,
    node_trace: Vec<u64>,
    self_size: impl Fn(usize) -> u64,
    strings: &StringTable,
) -> Result<(Vec<AllocationSite>, AllocationStacks), V8Error> {
    // Per allocation stack: the nodes allocated there and their self sizes (DevTools' "live"
    // figures).
    let mut live: FxHashMap<u64, (u64, u64)> = FxHashMap::default();
    for (node, trace) in node_trace.iter().enumerate() {
        let entry = live.entry(*trace).or_default();
        entry.0 += 1;
        entry.1 = entry.1.saturating_add(self_size(node));
    }
    let string = |index: u64, offset: usize| {
        u32::try_from(index)
            .ok()
            .filter(|&i| (i as usize) < strings.len())
            .map(|i| strings.get(StringId(i)).into_owned())
            .ok_or_else(|| V8Error::Shape {
                offset: offset as u64,
                what: format!("trace function info names string {index}, which does not exist"),
            })
    };
    let mut sites: Vec<AllocationSite> = Vec::new();
    let (chunks, _) = scan::array_chunks(data, function_infos, fields.function_fields, usize::MAX)?;
    for chunk in &chunks {
        scan::parse_records(data, chunk, fields.function_fields, |_, f| {
            sites.push(AllocationSite {
                frame: AllocationFrame {
                    function: string(f[fields.function_name], chunk.bytes.start)?,
                    script: string(f[fields.script_name], chunk.bytes.start)?,
                    script_id: f[fields.script_id],
                    line: f[fields.line],
                    column: f[fields.column],
                },
                allocations: 0,
                allocated_bytes: 0,
                live_count: 0,
                live_bytes: 0,
            });
            Ok(())
        })?;
    }
    let mut callers: FxHashMap<u64, (u64, usize)> = FxHashMap::default();
    for node in trace_nodes(data, trace_tree.clone(), fields)? {
        let function = usize::try_from(node.function)
            .ok()
            .filter(|&f| f < sites.len())
            .ok_or_else(|| V8Error::Shape {
                offset: trace_tree.start as u64,
                what: format!(
                    "trace node {} names function {}, which does not exist",
                    node.id, node.function
                ),
            })?;
        callers.insert(node.id, (node.parent, function));
        // DevTools leaves out the stacks where the tracker counted nothing.
        if node.count == 0 {
            continue;
        }
        let site = &mut sites[function];
        let (live_count, live_bytes) = live.get(&node.id).copied().unwrap_or_default();
        // A hostile file's counts must not overflow.
        site.allocations = site.allocations.saturating_add(node.count);
        site.allocated_bytes = site.allocated_bytes.saturating_add(node.size);
        site.live_count = site.live_count.saturating_add(live_count);
        site.live_bytes = site.live_bytes.saturating_add(live_bytes);
    }
    let stacks = AllocationStacks {
        functions: sites.iter().map(|s| s.frame.clone()).collect(),
        callers,
        node_trace,
    };
    sites.retain(|s| s.allocations > 0);
    sites.sort_by_key(|s| std::cmp::Reverse(s.allocated_bytes));
    Ok((sites, stacks))
}

/// Every record of the `trace_tree` value at `range`: nested arrays where each array is a flat
/// list of records and a record's `children` field is such an array. Read with an explicit
/// stack (a hostile file may nest as deep as it is long).
fn trace_nodes(
    data: &[u8],
    range: std::ops::Range<usize>,
    fields: &TraceFields,
) -> Result<Vec<TraceNode>, V8Error> {
    let syntax = |at: usize, expected: &'static str| V8Error::Syntax {
        offset: at as u64,
        expected,
    };
    let text = &data[..range.end];
    let mut nodes = Vec::new();
    // Per open array: the record being read, how many of its fields are read, and the id of the
    // record whose children the array holds (0 at the top). V8 writes `children` last, so the
    // owner's id is known when its children start; a layout with `children` earlier leaves the
    // callers of its nodes unknown (0).
    let mut open: Vec<([u64; 16], usize, u64)> = Vec::new();
    let mut i = range.start;
    let skip_ws = |mut i: usize| {
        while text.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    i = skip_ws(i);
    if text.get(i) != Some(&b'[') {
        return Err(syntax(i, "the `trace_tree` array"));
    }
    open.push(([0; 16], 0, 0));
    i += 1;
    // Whether a value must come next (after `,`) or may (after `[`), rather than `,` or `]`.
    let mut expect_value = true;
    let mut array_start = true;
    while let Some((record, field, owner)) = open.last_mut() {
        let owner = *owner;
        i = skip_ws(i);
        let Some(&b) = text.get(i) else {
            return Err(syntax(i, "the end of `trace_tree` (the file is truncated)"));
        };
        match b {
            b']' if !expect_value || array_start => {
                if *field != 0 {
                    return Err(syntax(i, "the rest of a trace node's fields"));
                }
                open.pop();
                i += 1;
                // The array was a record's children: that field is read.
                if let Some((record, field, owner)) = open.last_mut() {
                    *field += 1;
                    if *field == fields.node_fields {
                        nodes.push(trace_node(record, *owner, fields));
                        *field = 0;
                    }
                }
                expect_value = false;
                array_start = false;
            }
            b',' if !expect_value => {
                i += 1;
                expect_value = true;
                array_start = false;
            }
            b'[' if expect_value && *field == fields.node_children => {
                // Children come after the numbers in V8's files; a record whose children come
                // first is completed when its last field is read.
                let id = if fields.node_id < *field {
                    record[fields.node_id]
                } else {
                    0
                };
                open.push(([0; 16], 0, id));
                i += 1;
                expect_value = true;
                array_start = true;
                continue;
            }
            b'0'..=b'9' if expect_value && *field != fields.node_children => {
                let start = i;
                let mut value = 0u64;
                while let Some(d) = text.get(i).filter(|d| d.is_ascii_digit()) {
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(d - b'0')))
                        .ok_or_else(|| syntax(start, "a number below 2^64"))?;
                    i += 1;
                }
                record[*field] = value;
                *field += 1;
                if *field == fields.node_fields {
                    nodes.push(trace_node(record, owner, fields));
                    *field = 0;
                }
                expect_value = false;
                array_start = false;
            }
            _ => {
                return Err(syntax(
                    i,
                    if expect_value {
                        "a trace node field (a number, or the children array)"
                    } else {
                        "`,` or `]` in `trace_tree`"
                    },
                ));
            }
        }
        if open.is_empty() {
            break;
        }
    }
    if !open.is_empty() {
        return Err(syntax(range.end, "the end of `trace_tree`"));
    }
    Ok(nodes)
}

fn trace_node(record: &[u64; 16], parent: u64, fields: &TraceFields) -> TraceNode {
    TraceNode {
        id: record[fields.node_id],
        parent,
        function: record[fields.node_function],
        count: record[fields.node_count],
        size: record[fields.node_size],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> TraceFields {
        TraceFields {
            function_fields: 6,
            function_name: 1,
            script_name: 2,
            script_id: 3,
            line: 4,
            column: 5,
            node_fields: 5,
            node_id: 0,
            node_function: 1,
            node_count: 2,
            node_size: 3,
            node_children: 4,
        }
    }

    fn nodes(text: &str) -> Result<Vec<(u64, u64, u64, u64)>, V8Error> {
        trace_nodes(text.as_bytes(), 0..text.len(), &fields()).map(|n| {
            n.iter()
                .map(|n| (n.id, n.parent, n.function, n.size))
                .collect()
        })
    }

    /// A trace tree 300 000 nodes deep made every report row carry 300 000 frames.
    #[test]
    fn a_deep_stack_keeps_its_innermost_frames() {
        let deep = 1000u64;
        let stacks = AllocationStacks {
            functions: vec![AllocationFrame {
                function: "recurse".to_string(),
                script: "x.js".to_string(),
                script_id: 1,
                line: 1,
                column: 1,
            }],
            // Node i is called by node i - 1; node 1 is the root.
            callers: (1..=deep).map(|i| (i, (i - 1, 0))).collect(),
            node_trace: vec![deep],
        };
        assert_eq!(stacks.stack(NodeIndex(0)).len(), MAX_ALLOCATION_FRAMES);
        // A loop ends at the cap too.
        let looping = AllocationStacks {
            callers: [(1, (2, 0)), (2, (1, 0))].into_iter().collect(),
            node_trace: vec![1],
            ..stacks
        };
        assert_eq!(looping.stack(NodeIndex(0)).len(), MAX_ALLOCATION_FRAMES);
    }

    #[test]
    fn every_record_of_the_nested_tree_is_read() {
        // A record is complete once its children are: children come out before their parent.
        // (id, caller, function, size)
        let tree = "[1,0,0,0,[2,1,5,80,[], 3,2,1,16,[4,1,2,32,[]]]]";
        assert_eq!(
            nodes(tree).unwrap(),
            [(2, 1, 1, 80), (4, 3, 1, 32), (3, 1, 2, 16), (1, 0, 0, 0)]
        );
    }

    #[test]
    fn malformed_trees_are_errors_with_offsets() {
        for bad in [
            "[1,0,0,0,[2,1,5,80,[]]",
            "[1,0,0,0]",
            "[1,0,0,0,[2,1,5,80,[]],]",
            "[1,0,0,0,[2,1,5,x,[]]]",
            "[1,0,0,[],0]",
            "{}",
            "[1,0,0,0,99999999999999999999999,[]]",
        ] {
            assert!(nodes(bad).is_err(), "{bad}");
        }
        // Deep nesting is read without recursion.
        let depth = 100_000;
        let deep = format!("{}{}", "[1,0,1,8,".repeat(depth) + "[]", "]".repeat(depth));
        assert_eq!(nodes(&deep).unwrap().len(), depth);
    }
}
