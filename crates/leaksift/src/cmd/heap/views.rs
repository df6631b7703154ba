//! Turning heap-graph results into report rows and JSON, shared by `heap`, `paths` and `diff`.

use leaksift_heap::dominators::Dominators;
use leaksift_heap::graph::{ClassId, EdgeKind, EdgeName, SourceLocation, StringId};
use leaksift_heap::histogram::{ClassStats, class_histogram_filtered};
use leaksift_heap::paths::{PathStep, RetainingPath};
use leaksift_heap::v8::AllocationFrame;
use leaksift_heap::{HeapFormat, HeapGraph, NodeIndex};
use leaksift_report::heap::{ClassRow, ObjectRow, PathStepRow, SkippedSteps};
use leaksift_report::progress::Progress;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use crate::cmd::heapfile::{self, ClassScheme, LoadedHeap};

/// Steps a reported path keeps at each end: the first ones name the root and the structure
/// holding the object, the last ones the object and what holds it directly.
pub const PATH_ENDS_KEPT: usize = 50;

/// A class name for text, followed by where its constructor is defined (`script:line:column`,
/// 1-based as DevTools shows them) when `ambiguous`: two V8 classes of one name are then told
/// apart.
pub fn class_label(name: &str, location: Option<SourceLocation>, ambiguous: bool) -> String {
    match location {
        Some(l) if ambiguous => format!(
            "{name} (script {}:{}:{})",
            l.script_id,
            l.line + 1,
            l.column + 1
        ),
        _ => name.to_string(),
    }
}

/// A loaded heap with its dominator tree.
pub struct Analysis {
    pub heap: LoadedHeap,
    pub dominators: Dominators,
    /// HPROF objects no GC root reaches, discarded as MAT does (found while the dominators
    /// were computed); none for V8.
    garbage: Option<leaksift_hprof::Unreachable>,
    /// Class names more than one class has (V8 constructors of one name defined in two places),
    /// found on first use.
    shared_class_names: OnceLock<HashSet<StringId>>,
}

impl Analysis {
    /// Loads `path` and computes dominators and retained sizes.
    pub fn load(
        path: &std::path::Path,
        classify_like: Option<&ClassScheme>,
        progress: &mut Progress,
    ) -> anyhow::Result<Analysis> {
        let heap = heapfile::load(path, classify_like, progress)?;
        Ok(Analysis::of(heap, progress))
    }

    /// Computes dominators and retained sizes of a loaded heap (with the columns the search
    /// does not read packed meanwhile: nothing else reads the heap). An HPROF dump's garbage
    /// is found on the core the search leaves idle, and discarded.
    pub fn of(mut heap: LoadedHeap, progress: &mut Progress) -> Analysis {
        progress.phase("dominators and retained sizes");
        let (dominators, garbage) = if heap.hprof.is_some() {
            let (dominators, bits) = Dominators::compute_packing_beside(
                &mut heap.graph,
                leaksift_hprof::unreachable_bits,
            );
            let garbage = leaksift_hprof::Unreachable::discard(&mut heap.graph, bits);
            (dominators, Some(garbage))
        } else {
            (Dominators::compute_packing(&mut heap.graph), None)
        };
        progress.finish();
        Analysis::with(heap, dominators, garbage)
    }

    fn with(
        heap: LoadedHeap,
        dominators: Dominators,
        garbage: Option<leaksift_hprof::Unreachable>,
    ) -> Analysis {
        Analysis {
            heap,
            dominators,
            garbage,
            shared_class_names: OnceLock::new(),
        }
    }

    /// [`Analysis::of`], running `alongside` on the heap on another thread meanwhile (the
    /// dominator search leaves a core mostly idle). For an HPROF dump, whose garbage takes that
    /// core, `alongside` runs after the analysis instead.
    pub fn of_with<T: Send>(
        heap: LoadedHeap,
        progress: &mut Progress,
        alongside: impl FnOnce(&LoadedHeap) -> T + Send,
    ) -> (Analysis, T) {
        if heap.hprof.is_some() {
            let analysis = Analysis::of(heap, progress);
            let extra = alongside(&analysis.heap);
            return (analysis, extra);
        }
        progress.phase("dominators and retained sizes");
        let (dominators, extra) = std::thread::scope(|scope| {
            let extra = scope.spawn(|| alongside(&heap));
            let dominators = Dominators::compute(&heap.graph);
            let extra = extra
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (dominators, extra)
        });
        progress.finish();
        (Analysis::with(heap, dominators, None), extra)
    }

    /// The heap's total: the root's retained size plus bytes the format keeps outside nodes,
    /// without the garbage the format leaves out (HPROF: objects no GC root reaches).
    pub fn total_bytes(&self) -> u64 {
        self.retained(self.heap.graph.root())
            .saturating_add(self.heap.extra_bytes)
    }

    /// A node's retained size. The dominator tree hangs HPROF garbage off the root, one object
    /// at a time; MAT discards it, so the root's figure leaves it out.
    pub fn retained(&self, node: NodeIndex) -> u64 {
        let retained = self.dominators.retained(node);
        if node == self.heap.graph.root() {
            retained.saturating_sub(self.garbage().map_or(0, |g| g.shallow_bytes))
        } else {
            retained
        }
    }

    /// HPROF objects no GC root reaches (MAT discards them); none for V8.
    pub fn garbage(&self) -> Option<&leaksift_hprof::Unreachable> {
        self.garbage.as_ref()
    }

    /// Whether `node` counts in totals, histograms, dominator lists and suspects.
    pub fn counts(&self, node: NodeIndex) -> bool {
        self.garbage().is_none_or(|g| !g.contains(node))
    }

    /// The class histogram of the garbage (HPROF objects no GC root reaches), largest retained
    /// size first; empty for V8. In a live dump these are objects the JVM keeps through
    /// references the format does not write (`java.lang.Class` instance fields, VM handles).
    pub fn garbage_histogram(&self) -> Vec<ClassStats> {
        match self.garbage() {
            Some(garbage) if garbage.objects > 0 => {
                class_histogram_filtered(self.graph(), &self.dominators, |n| garbage.contains(n))
            }
            _ => Vec::new(),
        }
    }

    /// The class histogram over the counted objects, largest retained size first.
    pub fn histogram(&self) -> Vec<ClassStats> {
        class_histogram_filtered(self.graph(), &self.dominators, |n| self.counts(n))
    }

    /// A node's one-line description (`Class @id`), with HPROF ids (addresses) in hex.
    pub fn describe(&self, node: NodeIndex) -> String {
        let graph = self.graph();
        let text = graph.describe(node);
        let id = graph.id(node).0;
        match text.strip_suffix(&format!("@{id}")) {
            Some(head) if self.hex_ids() => format!("{head}@{}", hex_id(id)),
            _ => text,
        }
    }

    /// Whether object ids are addresses, shown in hex (HPROF).
    pub fn hex_ids(&self) -> bool {
        self.graph().format() == HeapFormat::Hprof
    }

    /// An object id as the user writes it: hex for HPROF, decimal for V8.
    pub fn id_text(&self, id: u64) -> String {
        if self.hex_ids() {
            hex_id(id)
        } else {
            id.to_string()
        }
    }

    pub fn graph(&self) -> &HeapGraph {
        &self.heap.graph
    }

    /// Finds the node with object id `id`.
    pub fn node_by_id(&self, id: u64) -> anyhow::Result<NodeIndex> {
        let graph = self.graph();
        graph
            .ids()
            .position(id)
            .map(|i| NodeIndex(i as u32))
            // HPROF's root is the reader's own node over the GC roots (id 0), not an object.
            .filter(|&node| !(self.hex_ids() && node == graph.root()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no object with id {}",
                    self.heap.path.display(),
                    self.id_text(id)
                )
            })
    }

    /// A table row for one object.
    pub fn object_row(&self, node: NodeIndex) -> ObjectRow {
        let graph = self.graph();
        ObjectRow {
            description: self.describe(node),
            id: graph.id(node).0,
            shallow_bytes: graph.self_size(node),
            retained_bytes: self.retained(node),
        }
    }

    /// The stack that allocated `node`, innermost first (V8 snapshots taken with allocation
    /// tracking; empty otherwise).
    pub fn allocation_stack(&self, node: NodeIndex) -> Vec<&AllocationFrame> {
        self.heap
            .allocation_stacks
            .as_ref()
            .map(|stacks| stacks.stack(node))
            .unwrap_or_default()
    }

    /// The stack that allocated the most of `nodes`, owned for a report row (tracked V8
    /// snapshots; empty otherwise).
    pub fn common_allocation_stack(
        &self,
        nodes: impl Iterator<Item = NodeIndex>,
    ) -> Vec<AllocationFrame> {
        self.heap
            .allocation_stacks
            .as_ref()
            .map(|stacks| {
                stacks
                    .most_common_stack(nodes)
                    .into_iter()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Rows for a retaining path, root first: the first and last [`PATH_ENDS_KEPT`] steps of a
    /// longer one, the steps between them counted in the first of the last (a linked list of a
    /// million nodes gives a million-step path, and rows for all of it took gigabytes of JSON).
    pub fn path_rows(&self, path: &RetainingPath) -> Vec<PathStepRow> {
        let steps = &path.steps;
        let kept = PATH_ENDS_KEPT;
        if steps.len() <= 2 * kept + 1 {
            return steps.iter().map(|step| self.path_row(step)).collect();
        }
        let (left_out, tail) = steps[kept..].split_at(steps.len() - 2 * kept);
        let mut rows: Vec<PathStepRow> = steps[..kept]
            .iter()
            .chain(tail)
            .map(|step| self.path_row(step))
            .collect();
        rows[kept].skipped_before = Some(self.skipped_steps(left_out));
        rows
    }

    fn path_row(&self, step: &PathStep) -> PathStepRow {
        let graph = self.graph();
        PathStepRow {
            edge_kind: step.via.map(|e| graph.edge_kind(e).name().into_owned()),
            edge_name: step.via.map(|e| graph.edge_label(e).into_owned()),
            node: self.describe(step.node),
            id: graph.id(step.node).0,
            shallow_bytes: graph.self_size(step.node),
            retained_bytes: self.retained(step.node),
            skipped_before: None,
        }
    }

    /// How many `steps` a path leaves out, and their commonest kind (reference and class).
    fn skipped_steps(&self, steps: &[PathStep]) -> SkippedSteps {
        let graph = self.graph();
        let mut kinds: HashMap<(Option<(EdgeKind, EdgeName)>, ClassId), u64> = HashMap::new();
        for step in steps {
            let via = step.via.map(|e| (graph.edge_kind(e), graph.edge_name(e)));
            // Array elements count as one kind whatever their index.
            let via = via.map(|(kind, name)| match name {
                EdgeName::Index(_) => (kind, EdgeName::Index(0)),
                named => (kind, named),
            });
            *kinds.entry((via, graph.class(step.node))).or_default() += 1;
        }
        let ((via, class), commonest_count) = kinds
            .into_iter()
            .max_by_key(|&(_, count)| count)
            .expect("a gap holds at least one step");
        let class = self.class_label(class);
        let commonest = match via {
            Some((kind, EdgeName::Named(name))) => {
                format!("--[{} {}]--> {class}", kind.name(), graph.string(name))
            }
            Some((kind, EdgeName::Index(_))) => format!("--[{} [i]]--> {class}", kind.name()),
            None => class,
        };
        SkippedSteps {
            count: steps.len() as u64,
            commonest,
            commonest_count,
        }
    }

    /// A class row from histogram stats.
    pub fn class_row(&self, stats: &ClassStats) -> ClassRow {
        ClassRow {
            name: self.class_label(stats.class),
            count: stats.count,
            shallow_bytes: stats.shallow_bytes,
            retained_bytes: stats.retained_bytes,
        }
    }

    /// A class's name for text: with its constructor's location when another class of the heap
    /// has the same name (the JSON has `location` for every class).
    pub fn class_label(&self, class: ClassId) -> String {
        let graph = self.graph();
        let info = graph.class_info(class);
        let shared = self.shared_class_names.get_or_init(|| {
            let mut seen = HashSet::new();
            (0..graph.class_count() as u32)
                .map(|c| graph.class_info(ClassId(c)).name)
                .filter(|name| !seen.insert(*name))
                .collect()
        });
        class_label(
            &graph.class_name(class),
            info.location,
            shared.contains(&info.name),
        )
    }

    /// JSON for a class, with the constructor location when the format has one.
    pub fn class_json(&self, stats: &ClassStats) -> Value {
        let info = self.graph().class_info(stats.class);
        json!({
            "name": self.graph().class_name(stats.class),
            "location": info.location.map(|l| json!({
                "script_id": l.script_id, "line": l.line, "column": l.column
            })),
            "count": stats.count,
            "shallow_bytes": stats.shallow_bytes,
            "retained_bytes": stats.retained_bytes,
        })
    }

    /// JSON for a retaining path.
    pub fn path_json(&self, rows: &[PathStepRow]) -> Value {
        Value::Array(
            rows.iter()
                .map(|r| {
                    let mut step = self.with_id(
                        json!({
                            "edge_kind": r.edge_kind,
                            "edge": r.edge_name,
                            "node": r.node,
                            "shallow_bytes": r.shallow_bytes,
                            "retained_bytes": r.retained_bytes,
                        }),
                        r.id,
                    );
                    if let (Some(gap), Value::Object(map)) = (&r.skipped_before, &mut step) {
                        map.insert(
                            "skipped_before".into(),
                            json!({
                                "steps": gap.count,
                                "commonest": gap.commonest,
                                "commonest_count": gap.commonest_count,
                            }),
                        );
                    }
                    step
                })
                .collect(),
        )
    }

    /// JSON for an object row.
    pub fn object_json(&self, row: &ObjectRow) -> Value {
        self.with_id(
            json!({
                "description": row.description,
                "shallow_bytes": row.shallow_bytes,
                "retained_bytes": row.retained_bytes,
            }),
            row.id,
        )
    }

    /// Adds `"id"` (a number) to a JSON object, and `"id_hex"` (`"0x…"`) for HPROF.
    pub fn with_id(&self, mut value: Value, id: u64) -> Value {
        if let Value::Object(map) = &mut value {
            map.insert("id".into(), id.into());
            if self.hex_ids() {
                map.insert("id_hex".into(), hex_id(id).into());
            }
        }
        value
    }
}

/// An address-like object id in hex: `0x7f3a01c8`.
pub fn hex_id(id: u64) -> String {
    format!("{id:#x}")
}

/// Parses an object id given on the command line: decimal, or hex with a `0x` prefix.
pub fn parse_object_id(text: &str) -> Result<u64, String> {
    let text = text.trim().trim_start_matches('@');
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("not an object id (decimal, or hex as 0x…): {e}"))
}
