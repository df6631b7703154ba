//! Turning heap-graph results into report rows and JSON, shared by `heap`, `paths` and `diff`.

use leaksift_heap::dominators::Dominators;
use leaksift_heap::histogram::ClassStats;
use leaksift_heap::paths::RetainingPath;
use leaksift_heap::{HeapGraph, NodeIndex};
use leaksift_report::heap::{ClassRow, ObjectRow, PathStepRow};
use leaksift_report::progress::Progress;
use serde_json::{Value, json};

use crate::cmd::heapfile::{self, ClassScheme, LoadedHeap};

/// A loaded heap with its dominator tree.
pub struct Analysis {
    pub heap: LoadedHeap,
    pub dominators: Dominators,
}

impl Analysis {
    /// Loads `path` and computes dominators and retained sizes.
    pub fn load(
        path: &std::path::Path,
        classify_like: Option<&ClassScheme>,
        progress: &mut Progress,
    ) -> anyhow::Result<Analysis> {
        let heap = heapfile::load(path, classify_like, progress)?;
        progress.phase("dominators and retained sizes");
        let dominators = Dominators::compute(&heap.graph);
        progress.finish();
        Ok(Analysis { heap, dominators })
    }

    /// The heap's total: the root's retained size plus bytes the format keeps outside nodes.
    pub fn total_bytes(&self) -> u64 {
        self.dominators
            .retained(self.heap.graph.root())
            .saturating_add(self.heap.extra_bytes)
    }

    pub fn graph(&self) -> &HeapGraph {
        &self.heap.graph
    }

    /// Finds the node with object id `id`.
    pub fn node_by_id(&self, id: u64) -> anyhow::Result<NodeIndex> {
        let graph = self.graph();
        graph
            .ids()
            .iter()
            .position(|x| *x == id)
            .map(|i| NodeIndex(i as u32))
            .ok_or_else(|| anyhow::anyhow!("{}: no object with id {id}", self.heap.path.display()))
    }

    /// A table row for one object.
    pub fn object_row(&self, node: NodeIndex) -> ObjectRow {
        let graph = self.graph();
        ObjectRow {
            description: graph.describe(node),
            id: graph.id(node).0,
            shallow_bytes: graph.self_size(node),
            retained_bytes: self.dominators.retained(node),
        }
    }

    /// Rows for a retaining path, root first.
    pub fn path_rows(&self, path: &RetainingPath) -> Vec<PathStepRow> {
        let graph = self.graph();
        path.steps
            .iter()
            .map(|step| PathStepRow {
                edge_kind: step.via.map(|e| graph.edge_kind(e).name().into_owned()),
                edge_name: step.via.map(|e| graph.edge_label(e).into_owned()),
                node: graph.describe(step.node),
                id: graph.id(step.node).0,
                shallow_bytes: graph.self_size(step.node),
                retained_bytes: self.dominators.retained(step.node),
            })
            .collect()
    }

    /// A class row from histogram stats.
    pub fn class_row(&self, stats: &ClassStats) -> ClassRow {
        ClassRow {
            name: self.graph().class_name(stats.class).into_owned(),
            count: stats.count,
            shallow_bytes: stats.shallow_bytes,
            retained_bytes: stats.retained_bytes,
        }
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
}

/// JSON for a retaining path.
pub fn path_json(rows: &[PathStepRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "edge_kind": r.edge_kind,
                    "edge": r.edge_name,
                    "node": r.node,
                    "id": r.id,
                    "shallow_bytes": r.shallow_bytes,
                    "retained_bytes": r.retained_bytes,
                })
            })
            .collect(),
    )
}

/// JSON for an object row.
pub fn object_json(row: &ObjectRow) -> Value {
    json!({
        "description": row.description,
        "id": row.id,
        "shallow_bytes": row.shallow_bytes,
        "retained_bytes": row.retained_bytes,
    })
}

/// Prints one JSON object on stdout.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}
