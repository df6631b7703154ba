//! DevTools' rule for the edges its distance BFS may follow (`JSHeapSnapshot.calculateDistances`
//! in devtools-frontend's HeapSnapshot.ts): the Retainers view ranks retainers by these
//! distances, so `paths` follows the same edges to list retainers in the same order.

use std::collections::HashSet;

use crate::graph::{EdgeIndex, EdgeKind, EdgeName, HeapGraph, NodeIndex, NodeKind};

use super::devtools::weak_map_table_id;

/// The node-level part of the rule, worked out once per node the BFS expands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expanded {
    /// `system / NativeContext` (hidden): its `sloppy_function_map` edge is not followed.
    NativeContext,
    /// `(map descriptors)` (array): descriptor slots are not followed (maps may share descriptor
    /// arrays, so those links are not valid for every map; crbug.com/413608).
    MapDescriptors,
    /// Any other node.
    Other,
}

/// Edges of the V8 distance BFS. Stateful: of the two edges V8 writes for a WeakMap entry's
/// value (one from the table, one from the key, with the same name after the leading number),
/// the first one examined is skipped and the second followed, so the value's distance is the
/// greater of the two (crbug.com/1290800).
pub(crate) struct DistanceFilter<'g> {
    graph: &'g HeapGraph,
    pending_ephemerons: HashSet<String>,
}

impl<'g> DistanceFilter<'g> {
    pub(crate) fn new(graph: &'g HeapGraph) -> DistanceFilter<'g> {
        DistanceFilter {
            graph,
            pending_ephemerons: HashSet::new(),
        }
    }

    /// The node-level part of the rule for `node`.
    pub(crate) fn expanded(&self, node: NodeIndex) -> Expanded {
        match self.graph.kind(node) {
            NodeKind::Hidden if self.graph.name(node) == "system / NativeContext" => {
                Expanded::NativeContext
            }
            NodeKind::Array if self.graph.name(node) == "(map descriptors)" => {
                Expanded::MapDescriptors
            }
            _ => Expanded::Other,
        }
    }

    /// Whether the BFS may follow `edge` (from a node of kind `from`) to its still undiscovered
    /// target. Weak edges are never followed.
    pub(crate) fn follows(&mut self, from: Expanded, edge: EdgeIndex) -> bool {
        if !self.follows_statelessly(from, edge) {
            return false;
        }
        if self.graph.edge_kind(edge) != EdgeKind::Internal {
            return true;
        }
        let EdgeName::Named(name) = self.graph.edge_name(edge) else {
            return true;
        };
        // Only names starting with a digit can be ephemeron names.
        if !self
            .graph
            .strings()
            .raw(name)
            .is_some_and(|raw| raw.first().is_some_and(u8::is_ascii_digit))
        {
            return true;
        }
        let name = self.graph.string(name);
        if weak_map_table_id(&name).is_none() {
            return true;
        }
        let digits = name.bytes().take_while(u8::is_ascii_digit).count();
        let shared_part = &name[digits..];
        if self.pending_ephemerons.remove(shared_part) {
            return true;
        }
        self.pending_ephemerons.insert(shared_part.to_owned());
        false
    }

    /// The rule without the WeakMap pairing: weak edges, `sloppy_function_map` and descriptor
    /// slots are not followed. (Also names the edge a path step went through.)
    pub(crate) fn follows_statelessly(&self, from: Expanded, edge: EdgeIndex) -> bool {
        if self.graph.edge_kind(edge) == EdgeKind::Weak {
            return false;
        }
        match from {
            Expanded::NativeContext => self.graph.edge_label(edge) != "sloppy_function_map",
            Expanded::MapDescriptors => match self.leading_number(edge) {
                // DevTools: `index < 2 || index % 3 !== 1` on `parseInt(edge.name())`.
                Some(index) => index < 2 || index % 3 != 1,
                None => true,
            },
            Expanded::Other => true,
        }
    }

    /// `parseInt` of the edge's name: the index of an indexed edge, the leading decimal digits of
    /// a named one, `None` when there are none.
    fn leading_number(&self, edge: EdgeIndex) -> Option<u64> {
        match self.graph.edge_name(edge) {
            EdgeName::Index(index) => Some(u64::from(index)),
            EdgeName::Named(name) => {
                let raw = self.graph.strings().raw(name)?;
                let digits = raw.trim_ascii_start();
                let digits = &digits[..digits.iter().take_while(|b| b.is_ascii_digit()).count()];
                std::str::from_utf8(digits).ok()?.parse().ok()
            }
        }
    }
}
