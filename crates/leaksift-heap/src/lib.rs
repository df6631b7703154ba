//! The heap graph and its readers (V8 .heapsnapshot, Java HPROF): dominators, retained sizes, paths, suspects, diff.

pub mod compact;
pub mod graph;
pub mod packed;

pub use compact::{CompactU32s, CompactU64s, IdColumn};
pub use graph::{
    ClassId, ClassInfo, Detachedness, EdgeData, EdgeIndex, EdgeKind, EdgeName, GcRootKind,
    GraphBuilder, GraphError, GraphParts, HeapFormat, HeapGraph, NodeData, NodeFlags, NodeIndex,
    NodeKind, ObjectId, SourceLocation, StringBacking, StringEncoding, StringId, StringTable,
};
pub mod diff;
pub mod distances;
pub mod dominators;
pub mod histogram;
pub mod input;
pub mod paths;
pub mod suspects;
pub mod v8;
