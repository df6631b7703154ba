//! The format-neutral heap graph: flat node columns, CSR edges and the builder that readers fill.
//!
//! Both readers (V8 `.heapsnapshot`, Java HPROF) produce a [`HeapGraph`]; every analysis
//! (dominators, retained sizes, distances, paths, histograms, suspects, diff) works on it alone.
//!
//! Layout, chosen so that tens of millions of nodes fit in bounded memory:
//! - nodes are ordinals `0..node_count` ([`NodeIndex`], u32; more than 2^32 nodes are refused);
//!   each property is one flat `Vec` (struct of arrays), no per-node heap object; ids and self
//!   sizes take 4 bytes each when their values allow it ([`crate::compact`]);
//! - edges are compressed sparse rows: `first_edge[n]..first_edge[n + 1]` (u32 offsets: more
//!   than 2^32 - 1 edges are refused — such a heap would need over 16 GiB for the targets alone)
//!   index the edge columns `to`, `kind` and `name`;
//! - strings are an append-only table addressed by [`StringId`]; entries can be owned UTF-8 or
//!   lazily decoded spans of a shared backing buffer (the reader's memory map);
//! - one synthetic root node has edges to the GC roots; every analysis starts from it.
//!
//! Each edge carries an *essential* bit decided by the reader with its format's rule (DevTools'
//! rule for V8, MAT's for HPROF): only essential edges count for dominators, retained sizes and
//! retaining paths. Non-essential edges (weak references, shortcuts, …) stay visible for display.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rayon::prelude::*;

use crate::compact::{CompactU32s, CompactU64s, IdColumn};
use crate::packed::Packed;

/// Position of a node in the graph's columns (its ordinal), `0..node_count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeIndex(pub u32);

impl NodeIndex {
    /// The ordinal as a `usize`, for indexing columns.
    #[inline]
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// Position of an edge in the graph's edge columns, `0..edge_count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EdgeIndex(pub u64);

impl EdgeIndex {
    /// The position as a `usize`, for indexing columns.
    #[inline]
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// The id the runtime gave an object: V8's stable node id, or the object's address in HPROF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjectId(pub u64);

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Index of a string in the graph's [`StringTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StringId(pub u32);

/// Index of a class in the graph's class table ([`HeapGraph::class_info`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ClassId(pub u32);

/// Which file format a graph was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeapFormat {
    /// A V8 `.heapsnapshot` (Node.js, Chrome, Deno, Electron).
    V8,
    /// A Java HPROF heap dump.
    Hprof,
}

impl HeapFormat {
    /// Short lowercase name used in JSON output: `"v8"` or `"hprof"`.
    pub fn name(self) -> &'static str {
        match self {
            HeapFormat::V8 => "v8",
            HeapFormat::Hprof => "hprof",
        }
    }

    /// Whether object ids identify the same object across files of one process (V8 node ids),
    /// rather than being addresses that change between dumps (HPROF).
    pub fn has_stable_ids(self) -> bool {
        matches!(self, HeapFormat::V8)
    }
}

/// What kind of thing a node is. V8 node types first, then HPROF's object kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NodeKind {
    /// V8 `hidden`: internal VM objects.
    Hidden = 0,
    /// V8 `array`: internal arrays (property backing stores, …).
    Array = 1,
    /// V8 `string` (sequential string).
    String = 2,
    /// V8 `object`: a JS object; its name is the constructor name.
    Object = 3,
    /// V8 `code`: compiled code.
    Code = 4,
    /// V8 `closure`: a JS function.
    Closure = 5,
    /// V8 `regexp`.
    RegExp = 6,
    /// V8 `number`: a heap number.
    Number = 7,
    /// V8 `native`: an embedder (C++/DOM) object.
    Native = 8,
    /// V8 `synthetic`: a grouping node such as `(GC roots)`.
    Synthetic = 9,
    /// V8 `concatenated string`.
    ConsString = 10,
    /// V8 `sliced string`.
    SlicedString = 11,
    /// V8 `symbol`.
    Symbol = 12,
    /// V8 `bigint`.
    BigInt = 13,
    /// V8 `object shape` (hidden classes / maps).
    ObjectShape = 14,
    /// V8 `wasm object`.
    WasmObject = 15,
    /// A node type this build does not know (V8 types are read from the snapshot's meta).
    Other = 16,
    /// HPROF: an instance of a class.
    Instance = 32,
    /// HPROF: a class object (its statics hang off it).
    Class = 33,
    /// HPROF: an array of references.
    ObjectArray = 34,
    /// HPROF: an array of primitives.
    PrimitiveArray = 35,
    /// The graph's synthetic root when the format has none of its own (HPROF).
    Root = 63,
}

impl NodeKind {
    /// Decodes a stored kind byte; unknown bytes become [`NodeKind::Other`].
    #[inline]
    pub fn from_u8(value: u8) -> NodeKind {
        match value {
            0 => NodeKind::Hidden,
            1 => NodeKind::Array,
            2 => NodeKind::String,
            3 => NodeKind::Object,
            4 => NodeKind::Code,
            5 => NodeKind::Closure,
            6 => NodeKind::RegExp,
            7 => NodeKind::Number,
            8 => NodeKind::Native,
            9 => NodeKind::Synthetic,
            10 => NodeKind::ConsString,
            11 => NodeKind::SlicedString,
            12 => NodeKind::Symbol,
            13 => NodeKind::BigInt,
            14 => NodeKind::ObjectShape,
            15 => NodeKind::WasmObject,
            32 => NodeKind::Instance,
            33 => NodeKind::Class,
            34 => NodeKind::ObjectArray,
            35 => NodeKind::PrimitiveArray,
            63 => NodeKind::Root,
            _ => NodeKind::Other,
        }
    }

    /// The V8 type for a meta `node_types` name; `None` for names this build does not know.
    pub fn from_v8_type_name(name: &str) -> Option<NodeKind> {
        Some(match name {
            "hidden" => NodeKind::Hidden,
            "array" => NodeKind::Array,
            "string" => NodeKind::String,
            "object" => NodeKind::Object,
            "code" => NodeKind::Code,
            "closure" => NodeKind::Closure,
            "regexp" => NodeKind::RegExp,
            "number" => NodeKind::Number,
            "native" => NodeKind::Native,
            "synthetic" => NodeKind::Synthetic,
            "concatenated string" => NodeKind::ConsString,
            "sliced string" => NodeKind::SlicedString,
            "symbol" => NodeKind::Symbol,
            "bigint" => NodeKind::BigInt,
            "object shape" => NodeKind::ObjectShape,
            "wasm object" => NodeKind::WasmObject,
            _ => return None,
        })
    }

    /// A short human name: V8's type name, or the HPROF kind.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Hidden => "hidden",
            NodeKind::Array => "array",
            NodeKind::String => "string",
            NodeKind::Object => "object",
            NodeKind::Code => "code",
            NodeKind::Closure => "closure",
            NodeKind::RegExp => "regexp",
            NodeKind::Number => "number",
            NodeKind::Native => "native",
            NodeKind::Synthetic => "synthetic",
            NodeKind::ConsString => "concatenated string",
            NodeKind::SlicedString => "sliced string",
            NodeKind::Symbol => "symbol",
            NodeKind::BigInt => "bigint",
            NodeKind::ObjectShape => "object shape",
            NodeKind::WasmObject => "wasm object",
            NodeKind::Other => "other",
            NodeKind::Instance => "instance",
            NodeKind::Class => "class",
            NodeKind::ObjectArray => "object array",
            NodeKind::PrimitiveArray => "primitive array",
            NodeKind::Root => "root",
        }
    }

    /// Whether the node is a string value (any of V8's string representations).
    pub fn is_string(self) -> bool {
        matches!(
            self,
            NodeKind::String | NodeKind::ConsString | NodeKind::SlicedString
        )
    }
}

/// V8's detachedness of embedder (DOM) objects; always `Unknown` for HPROF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Detachedness {
    /// Not known (most nodes).
    #[default]
    Unknown = 0,
    /// Attached to a live document / context.
    Attached = 1,
    /// Detached: an embedder object no longer in its tree, still retained.
    Detached = 2,
}

impl Detachedness {
    /// Decodes V8's `detachedness` field value (values above 2 are treated as unknown).
    pub fn from_u8(value: u8) -> Detachedness {
        match value {
            1 => Detachedness::Attached,
            2 => Detachedness::Detached,
            _ => Detachedness::Unknown,
        }
    }
}

/// Per-node flag bits stored next to the detachedness (bits 0–1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct NodeFlags(pub u8);

impl NodeFlags {
    const DETACHEDNESS_MASK: u8 = 0b11;
    /// The reader marked this node as owned by the page / user roots (DevTools' page-owned rule).
    pub const PAGE_OWNED: u8 = 1 << 2;
    /// The node is a GC root (a direct target of one of the synthetic root's root edges).
    pub const GC_ROOT: u8 = 1 << 3;

    /// Flags with only the detachedness set.
    pub fn with_detachedness(detachedness: Detachedness) -> NodeFlags {
        NodeFlags(detachedness as u8)
    }

    /// The detachedness bits.
    pub fn detachedness(self) -> Detachedness {
        Detachedness::from_u8(self.0 & Self::DETACHEDNESS_MASK)
    }

    /// Returns the flags with the detachedness replaced.
    pub fn set_detachedness(self, detachedness: Detachedness) -> NodeFlags {
        NodeFlags((self.0 & !Self::DETACHEDNESS_MASK) | detachedness as u8)
    }

    /// Whether every bit of `bits` is set.
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

/// How a GC root holds its object (HPROF root sub-record kinds; V8 roots are ordinary edges).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GcRootKind {
    Unknown = 0,
    JniGlobal = 1,
    JniLocal = 2,
    JavaFrame = 3,
    NativeStack = 4,
    StickyClass = 5,
    ThreadBlock = 6,
    MonitorUsed = 7,
    ThreadObject = 8,
    /// Android `ROOT_INTERNED_STRING` and friends (1.0.3 dumps).
    InternedString = 9,
    Finalizing = 10,
    Debugger = 11,
    ReferenceCleanup = 12,
    VmInternal = 13,
    JniMonitor = 14,
    Unreachable = 15,
}

impl GcRootKind {
    const ALL: [GcRootKind; 16] = [
        GcRootKind::Unknown,
        GcRootKind::JniGlobal,
        GcRootKind::JniLocal,
        GcRootKind::JavaFrame,
        GcRootKind::NativeStack,
        GcRootKind::StickyClass,
        GcRootKind::ThreadBlock,
        GcRootKind::MonitorUsed,
        GcRootKind::ThreadObject,
        GcRootKind::InternedString,
        GcRootKind::Finalizing,
        GcRootKind::Debugger,
        GcRootKind::ReferenceCleanup,
        GcRootKind::VmInternal,
        GcRootKind::JniMonitor,
        GcRootKind::Unreachable,
    ];

    /// MAT-style name of the root kind, e.g. `"JNI Global"`, `"Java Local"`.
    pub fn name(self) -> &'static str {
        match self {
            GcRootKind::Unknown => "Unknown",
            GcRootKind::JniGlobal => "JNI Global",
            GcRootKind::JniLocal => "JNI Local",
            GcRootKind::JavaFrame => "Java Local",
            GcRootKind::NativeStack => "Native Stack",
            GcRootKind::StickyClass => "System Class",
            GcRootKind::ThreadBlock => "Thread Block",
            GcRootKind::MonitorUsed => "Busy Monitor",
            GcRootKind::ThreadObject => "Thread",
            GcRootKind::InternedString => "Interned String",
            GcRootKind::Finalizing => "Finalizable",
            GcRootKind::Debugger => "Debugger",
            GcRootKind::ReferenceCleanup => "Reference Cleanup",
            GcRootKind::VmInternal => "VM Internal",
            GcRootKind::JniMonitor => "JNI Monitor",
            GcRootKind::Unreachable => "Unreachable",
        }
    }
}

/// What an edge is. V8 edge types first, then HPROF reference kinds, then GC-root links.
///
/// Stored as one byte per edge together with the essential bit (see [`EdgeKind::to_byte`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// V8 `context`: a variable captured in a function context. Named.
    Context,
    /// V8 `element`: an indexed element. Name is an index.
    Element,
    /// V8 `property`: a named property. Named.
    Property,
    /// V8 `internal`: a VM-internal link. Named.
    Internal,
    /// V8 `hidden`: a VM-internal link. Name is an index.
    Hidden,
    /// V8 `shortcut`: a link added for display (root → globals). Named.
    Shortcut,
    /// V8 `weak` (and HPROF `Reference.referent`): does not retain. Named.
    Weak,
    /// A V8 edge type this build does not know (V8 edge types are read from the meta). Named.
    Other,
    /// HPROF: an instance field. Named (the field name).
    Field,
    /// HPROF: an element of an object array. Name is an index.
    ArrayElement,
    /// HPROF: a static field of a class. Named.
    StaticField,
    /// HPROF: an instance's link to its class object. Named (e.g. `<class>`).
    ClassOf,
    /// HPROF: a class's link to its class loader, superclass, signers or protection domain. Named.
    ClassLink,
    /// A link from the synthetic root (or a thread) to a GC root object. Name is an index
    /// (e.g. the frame number for Java locals) or unused.
    GcRoot(GcRootKind),
}

impl EdgeKind {
    /// Bit set in the stored kind byte when the edge is essential.
    pub const ESSENTIAL_BIT: u8 = 0x80;
    const ROOT_BASE: u8 = 0x40;

    /// Encodes the kind and the essential bit into one byte.
    pub fn to_byte(self, essential: bool) -> u8 {
        let kind = match self {
            EdgeKind::Context => 0,
            EdgeKind::Element => 1,
            EdgeKind::Property => 2,
            EdgeKind::Internal => 3,
            EdgeKind::Hidden => 4,
            EdgeKind::Shortcut => 5,
            EdgeKind::Weak => 6,
            EdgeKind::Other => 7,
            EdgeKind::Field => 16,
            EdgeKind::ArrayElement => 17,
            EdgeKind::StaticField => 18,
            EdgeKind::ClassOf => 19,
            EdgeKind::ClassLink => 20,
            EdgeKind::GcRoot(root) => Self::ROOT_BASE + root as u8,
        };
        if essential {
            kind | Self::ESSENTIAL_BIT
        } else {
            kind
        }
    }

    /// Decodes a stored byte (the essential bit is ignored; unknown values become `Other`).
    pub fn from_byte(byte: u8) -> EdgeKind {
        let kind = byte & !Self::ESSENTIAL_BIT;
        match kind {
            0 => EdgeKind::Context,
            1 => EdgeKind::Element,
            2 => EdgeKind::Property,
            3 => EdgeKind::Internal,
            4 => EdgeKind::Hidden,
            5 => EdgeKind::Shortcut,
            6 => EdgeKind::Weak,
            16 => EdgeKind::Field,
            17 => EdgeKind::ArrayElement,
            18 => EdgeKind::StaticField,
            19 => EdgeKind::ClassOf,
            20 => EdgeKind::ClassLink,
            k if k >= Self::ROOT_BASE => GcRootKind::ALL
                .get(usize::from(k - Self::ROOT_BASE))
                .map_or(EdgeKind::Other, |r| EdgeKind::GcRoot(*r)),
            _ => EdgeKind::Other,
        }
    }

    /// The V8 edge type for a meta `edge_types` name; `None` for names this build does not know.
    pub fn from_v8_type_name(name: &str) -> Option<EdgeKind> {
        Some(match name {
            "context" => EdgeKind::Context,
            "element" => EdgeKind::Element,
            "property" => EdgeKind::Property,
            "internal" => EdgeKind::Internal,
            "hidden" => EdgeKind::Hidden,
            "shortcut" => EdgeKind::Shortcut,
            "weak" => EdgeKind::Weak,
            _ => return None,
        })
    }

    /// Whether the edge's `name` column holds an index rather than a [`StringId`].
    pub fn name_is_index(self) -> bool {
        matches!(
            self,
            EdgeKind::Element | EdgeKind::Hidden | EdgeKind::ArrayElement | EdgeKind::GcRoot(_)
        )
    }

    /// A short human name of the kind, e.g. `"property"`, `"static field"`, `"GC root (JNI Global)"`.
    pub fn name(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            EdgeKind::Context => "context",
            EdgeKind::Element => "element",
            EdgeKind::Property => "property",
            EdgeKind::Internal => "internal",
            EdgeKind::Hidden => "hidden",
            EdgeKind::Shortcut => "shortcut",
            EdgeKind::Weak => "weak",
            EdgeKind::Other => "other",
            EdgeKind::Field => "field",
            EdgeKind::ArrayElement => "array element",
            EdgeKind::StaticField => "static field",
            EdgeKind::ClassOf => "class",
            EdgeKind::ClassLink => "class link",
            EdgeKind::GcRoot(root) => return Cow::Owned(format!("GC root ({})", root.name())),
        })
    }
}

/// An edge's label: a string for named kinds, a number for indexed kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdgeName {
    /// A property, field or variable name.
    Named(StringId),
    /// An element or slot index.
    Index(u32),
}

impl EdgeName {
    /// The raw value stored in the edge `name` column.
    pub fn raw(self) -> u32 {
        match self {
            EdgeName::Named(s) => s.0,
            EdgeName::Index(i) => i,
        }
    }
}

/// A source location of a class's constructor (V8 `locations`), used in DevTools' class key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceLocation {
    pub script_id: u32,
    pub line: u32,
    pub column: u32,
}

/// One entry of the class table. Nodes with the same [`ClassId`] are grouped in histograms and
/// diffs; two classes may share a name (different constructor locations, different loaders).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClassInfo {
    /// Display name, e.g. `Foo`, `(closure)`, `java.util.HashMap`.
    pub name: StringId,
    /// V8: where the constructor is defined (objects only, when the snapshot has locations).
    pub location: Option<SourceLocation>,
    /// HPROF: the id of the class object.
    pub class_object: Option<ObjectId>,
}

impl ClassInfo {
    /// A class known only by its name.
    pub fn named(name: StringId) -> ClassInfo {
        ClassInfo {
            name,
            location: None,
            class_object: None,
        }
    }
}

/// How the bytes of a backed string entry are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringEncoding {
    /// Plain UTF-8 (invalid sequences are replaced by U+FFFD when read).
    Utf8,
    /// The inside of a JSON string literal: escapes (`\n`, `\uXXXX`, surrogate pairs) are decoded
    /// when read; lone surrogates become U+FFFD.
    JsonEscaped,
}

/// Bytes shared between a reader and the string table (typically the file's memory map).
pub type StringBacking = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// The graph's strings: owned UTF-8 entries, or spans of a backing buffer decoded when read.
///
/// Each entry costs 12 bytes of index; decoding happens in [`StringTable::get`], so strings never
/// displayed are never decoded.
pub struct StringTable {
    backing: Option<StringBacking>,
    owned: String,
    /// Entry start: bit 63 set = owned, bit 62 set = JSON-escaped backing span; low bits = offset.
    starts: Vec<u64>,
    lens: Vec<u32>,
    interned: HashMap<Box<str>, StringId>,
}

impl fmt::Debug for StringTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StringTable")
            .field("len", &self.starts.len())
            .field("owned_bytes", &self.owned.len())
            .field("backed", &self.backing.is_some())
            .finish()
    }
}

impl Default for StringTable {
    fn default() -> Self {
        StringTable::new()
    }
}

impl StringTable {
    const OWNED: u64 = 1 << 63;
    const JSON: u64 = 1 << 62;
    const OFFSET_MASK: u64 = (1 << 62) - 1;

    /// An empty table holding only owned strings.
    pub fn new() -> StringTable {
        StringTable {
            backing: None,
            owned: String::new(),
            starts: Vec::new(),
            lens: Vec::new(),
            interned: HashMap::new(),
        }
    }

    /// An empty table whose backed entries are spans of `backing`.
    pub fn with_backing(backing: StringBacking) -> StringTable {
        StringTable {
            backing: Some(backing),
            ..StringTable::new()
        }
    }

    /// Reserves room for `additional` more entries.
    pub fn reserve(&mut self, additional: usize) {
        self.starts.reserve(additional);
        self.lens.reserve(additional);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    fn next_id(&self) -> Result<StringId, GraphError> {
        u32::try_from(self.starts.len())
            .map(StringId)
            .map_err(|_| GraphError::TooManyStrings)
    }

    /// Appends an owned string (no deduplication) and returns its id.
    pub fn push(&mut self, text: &str) -> Result<StringId, GraphError> {
        let id = self.next_id()?;
        let len = u32::try_from(text.len()).map_err(|_| GraphError::StringTooLong)?;
        self.starts.push(Self::OWNED | self.owned.len() as u64);
        self.lens.push(len);
        self.owned.push_str(text);
        Ok(id)
    }

    /// Returns the id of an owned string equal to `text` added through `intern`, adding it if new.
    pub fn intern(&mut self, text: &str) -> Result<StringId, GraphError> {
        if let Some(id) = self.interned.get(text) {
            return Ok(*id);
        }
        let id = self.push(text)?;
        self.interned.insert(text.into(), id);
        Ok(id)
    }

    /// Appends a span `offset..offset + len` of the backing buffer and returns its id.
    ///
    /// The span is checked against the backing buffer when read, not here.
    pub fn push_backed(
        &mut self,
        offset: u64,
        len: u32,
        encoding: StringEncoding,
    ) -> Result<StringId, GraphError> {
        if self.backing.is_none() {
            return Err(GraphError::NoStringBacking);
        }
        if offset > Self::OFFSET_MASK {
            return Err(GraphError::StringTooLong);
        }
        let id = self.next_id()?;
        let flag = match encoding {
            StringEncoding::Utf8 => 0,
            StringEncoding::JsonEscaped => Self::JSON,
        };
        self.starts.push(flag | offset);
        self.lens.push(len);
        Ok(id)
    }

    /// The raw (undecoded) bytes of an entry, or `None` for an unknown id or a span outside the
    /// backing buffer.
    pub fn raw(&self, id: StringId) -> Option<&[u8]> {
        let index = id.0 as usize;
        let start = *self.starts.get(index)?;
        let len = self.lens[index] as usize;
        let offset = (start & Self::OFFSET_MASK) as usize;
        let bytes = if start & Self::OWNED != 0 {
            self.owned.as_bytes()
        } else {
            self.backing.as_ref()?.as_ref().as_ref()
        };
        bytes.get(offset..offset.checked_add(len)?)
    }

    /// The decoded text of an entry; unknown ids and bad spans read as the empty string.
    pub fn get(&self, id: StringId) -> Cow<'_, str> {
        let Some(raw) = self.raw(id) else {
            return Cow::Borrowed("");
        };
        let start = self.starts[id.0 as usize];
        if start & Self::OWNED != 0 {
            // Owned entries are pushed from `&str` at char boundaries.
            return String::from_utf8_lossy(raw);
        }
        if start & Self::JSON != 0 {
            decode_json_string(raw)
        } else {
            String::from_utf8_lossy(raw)
        }
    }
}

/// Decodes the inside of a JSON string literal, tolerating lone surrogates (→ U+FFFD) and
/// malformed escapes (kept literally). Borrows when there is nothing to decode.
pub fn decode_json_string(raw: &[u8]) -> Cow<'_, str> {
    if !raw.contains(&b'\\') {
        return String::from_utf8_lossy(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    let mut literal_start = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&String::from_utf8_lossy(&raw[literal_start..i]));
        let Some(&escape) = raw.get(i + 1) else {
            out.push('\\');
            i += 1;
            literal_start = i;
            break;
        };
        i += 2;
        match escape {
            b'n' => out.push('\n'),
            b't' => out.push('\t'),
            b'r' => out.push('\r'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'u' => {
                let Some(unit) = hex4(raw, i) else {
                    out.push_str("\\u");
                    literal_start = i;
                    continue;
                };
                i += 4;
                if (0xD800..0xDC00).contains(&unit) {
                    let low = (raw.get(i) == Some(&b'\\') && raw.get(i + 1) == Some(&b'u'))
                        .then(|| hex4(raw, i + 2))
                        .flatten()
                        .filter(|low| (0xDC00..0xE000).contains(low));
                    if let Some(low) = low {
                        i += 6;
                        let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    } else {
                        out.push('\u{fffd}');
                    }
                } else {
                    out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                }
            }
            other => out.push(char::from(other)),
        }
        literal_start = i;
    }
    out.push_str(&String::from_utf8_lossy(
        &raw[literal_start.min(raw.len())..],
    ));
    Cow::Owned(out)
}

fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let digits = raw.get(at..at + 4)?;
    let mut value = 0u32;
    for &d in digits {
        value = value * 16 + char::from(d).to_digit(16)?;
    }
    Some(value)
}

/// Why a graph could not be built.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GraphError {
    #[error("the heap has more than 2^32 - 1 objects ({0}); leaksift indexes nodes with 32 bits")]
    TooManyNodes(u64),
    #[error(
        "the heap has more than 2^32 - 1 references ({0}); leaksift indexes edges with 32 bits"
    )]
    TooManyEdges(u64),
    #[error("the heap has more than 2^32 - 1 distinct strings")]
    TooManyStrings,
    #[error("the heap has more than 2^32 - 1 classes")]
    TooManyClasses,
    #[error("a string is longer than 4 GiB or lies past 2^62 bytes")]
    StringTooLong,
    #[error("a backed string was added to a string table without a backing buffer")]
    NoStringBacking,
    #[error("edge {edge} points to node {to}, but the heap has only {node_count} nodes")]
    EdgeTargetOutOfRange { edge: u64, to: u32, node_count: u32 },
    #[error("edge {edge} starts at node {from}, but the heap has only {node_count} nodes")]
    EdgeSourceOutOfRange {
        edge: u64,
        from: u32,
        node_count: u32,
    },
    #[error("node {node} has class {class}, but only {class_count} classes exist")]
    ClassOutOfRange {
        node: u32,
        class: u32,
        class_count: u32,
    },
    #[error("the graph has no nodes (a heap graph needs at least its root)")]
    Empty,
    #[error("the root node {root} is out of range ({node_count} nodes)")]
    RootOutOfRange { root: u32, node_count: u32 },
    #[error("edge offsets are not a valid CSR index: {0}")]
    BadEdgeIndex(&'static str),
}

/// Everything about one node that a reader supplies to [`GraphBuilder::add_node`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeData {
    pub id: ObjectId,
    pub class: ClassId,
    pub name: StringId,
    pub self_size: u64,
    pub kind: NodeKind,
    pub flags: NodeFlags,
}

/// Everything about one edge that a reader supplies to [`GraphBuilder::add_edge`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeData {
    pub to: NodeIndex,
    pub kind: EdgeKind,
    pub name: EdgeName,
    /// Whether the edge retains its target for dominators, retained sizes and paths.
    pub essential: bool,
}

/// Builds a [`HeapGraph`] from nodes and edges.
///
/// Add all nodes (their ordinals are assigned in order), then the edges. Edges may be added in
/// node order (the common case for both formats: then no sort happens) or in any order, in which
/// case [`GraphBuilder::finish`] groups them by source with a stable counting sort (O(E), one
/// extra u32 per edge during the build). Edges may also be added before their target nodes
/// exist; targets are checked in `finish`.
#[derive(Debug)]
pub struct GraphBuilder {
    format: HeapFormat,
    strings: StringTable,
    classes: Vec<ClassInfo>,
    class_lookup: HashMap<ClassInfo, ClassId>,
    ids: Vec<u64>,
    class: Vec<u32>,
    name: Vec<u32>,
    self_size: Vec<u64>,
    kind: Vec<u8>,
    flags: Vec<u8>,
    edge_from: Vec<u32>,
    edge_to: Vec<u32>,
    edge_kind: Vec<u8>,
    edge_name: Vec<u32>,
    edges_sorted: bool,
    root: NodeIndex,
}

impl GraphBuilder {
    /// A builder for a graph of `format` with room for the given numbers of nodes and edges.
    pub fn new(
        format: HeapFormat,
        strings: StringTable,
        node_capacity: usize,
        edge_capacity: usize,
    ) -> GraphBuilder {
        GraphBuilder {
            format,
            strings,
            classes: Vec::new(),
            class_lookup: HashMap::new(),
            ids: Vec::with_capacity(node_capacity),
            class: Vec::with_capacity(node_capacity),
            name: Vec::with_capacity(node_capacity),
            self_size: Vec::with_capacity(node_capacity),
            kind: Vec::with_capacity(node_capacity),
            flags: Vec::with_capacity(node_capacity),
            edge_from: Vec::with_capacity(edge_capacity),
            edge_to: Vec::with_capacity(edge_capacity),
            edge_kind: Vec::with_capacity(edge_capacity),
            edge_name: Vec::with_capacity(edge_capacity),
            edges_sorted: true,
            root: NodeIndex(0),
        }
    }

    /// The string table, to add names while building.
    pub fn strings_mut(&mut self) -> &mut StringTable {
        &mut self.strings
    }

    /// The string table.
    pub fn strings(&self) -> &StringTable {
        &self.strings
    }

    /// Returns the class id for `info`, adding it to the class table if it is new.
    pub fn intern_class(&mut self, info: ClassInfo) -> Result<ClassId, GraphError> {
        if let Some(id) = self.class_lookup.get(&info) {
            return Ok(*id);
        }
        let id =
            ClassId(u32::try_from(self.classes.len()).map_err(|_| GraphError::TooManyClasses)?);
        self.classes.push(info);
        self.class_lookup.insert(info, id);
        Ok(id)
    }

    /// Number of nodes added so far.
    pub fn node_count(&self) -> usize {
        self.ids.len()
    }

    /// Adds a node and returns its ordinal. Fails past 2^32 - 1 nodes.
    pub fn add_node(&mut self, node: NodeData) -> Result<NodeIndex, GraphError> {
        let ordinal = u32::try_from(self.ids.len())
            .ok()
            .filter(|o| *o != u32::MAX)
            .ok_or(GraphError::TooManyNodes(self.ids.len() as u64 + 1))?;
        self.ids.push(node.id.0);
        self.class.push(node.class.0);
        self.name.push(node.name.0);
        self.self_size.push(node.self_size);
        self.kind.push(node.kind as u8);
        self.flags.push(node.flags.0);
        Ok(NodeIndex(ordinal))
    }

    /// Adds an edge from `from`.
    pub fn add_edge(&mut self, from: NodeIndex, edge: EdgeData) {
        if let Some(&last) = self.edge_from.last()
            && from.0 < last
        {
            self.edges_sorted = false;
        }
        self.edge_from.push(from.0);
        self.edge_to.push(edge.to.0);
        self.edge_kind.push(edge.kind.to_byte(edge.essential));
        self.edge_name.push(edge.name.raw());
    }

    /// Declares which node is the root (default: node 0).
    pub fn set_root(&mut self, root: NodeIndex) {
        self.root = root;
    }

    /// Sets flag bits on an already added node (e.g. [`NodeFlags::GC_ROOT`]).
    pub fn add_node_flags(&mut self, node: NodeIndex, bits: u8) {
        if let Some(flags) = self.flags.get_mut(node.get()) {
            *flags |= bits;
        }
    }

    /// Checks everything and produces the graph.
    pub fn finish(self) -> Result<HeapGraph, GraphError> {
        let node_count = self.ids.len();
        let n =
            u32::try_from(node_count).map_err(|_| GraphError::TooManyNodes(node_count as u64))?;
        let edge_count = self.edge_from.len();
        if u32::try_from(edge_count).is_err() {
            return Err(GraphError::TooManyEdges(edge_count as u64));
        }
        let mut first_edge = vec![0u32; node_count + 1];
        for (edge, &from) in self.edge_from.iter().enumerate() {
            let slot = first_edge
                .get_mut(from as usize + 1)
                .filter(|_| from < n)
                .ok_or(GraphError::EdgeSourceOutOfRange {
                    edge: edge as u64,
                    from,
                    node_count: n,
                })?;
            *slot += 1;
        }
        for i in 0..node_count {
            first_edge[i + 1] += first_edge[i];
        }
        let (edge_to, edge_kind, edge_name) = if self.edges_sorted {
            (self.edge_to, self.edge_kind, self.edge_name)
        } else {
            let mut cursor: Vec<u32> = first_edge[..node_count].to_vec();
            let mut to = vec![0u32; edge_count];
            let mut kind = vec![0u8; edge_count];
            let mut name = vec![0u32; edge_count];
            for (edge, &from) in self.edge_from.iter().enumerate() {
                let slot = cursor[from as usize] as usize;
                cursor[from as usize] += 1;
                to[slot] = self.edge_to[edge];
                kind[slot] = self.edge_kind[edge];
                name[slot] = self.edge_name[edge];
            }
            (to, kind, name)
        };
        drop(self.edge_from);
        HeapGraph::from_parts(GraphParts {
            format: self.format,
            strings: self.strings,
            classes: self.classes,
            ids: IdColumn::from_wide(self.ids),
            class: CompactU32s::Four(self.class),
            name: self.name,
            self_size: CompactU64s::from_wide(self.self_size),
            kind: self.kind,
            flags: self.flags,
            first_edge,
            edge_to,
            edge_kind,
            edge_name,
            root: self.root,
        })
    }
}

/// The raw columns of a graph, for readers that fill columns directly (e.g. in parallel).
/// [`HeapGraph::from_parts`] validates them.
#[derive(Debug)]
pub struct GraphParts {
    pub format: HeapFormat,
    pub strings: StringTable,
    pub classes: Vec<ClassInfo>,
    /// Object id per node ([`IdColumn::from_wide`] for a plain column).
    pub ids: IdColumn,
    /// [`ClassId`] per node (narrowed to 2 bytes when the ids allow).
    pub class: CompactU32s,
    /// [`StringId`] of the node's name.
    pub name: Vec<u32>,
    /// Self size per node ([`CompactU64s::from_wide`] for a plain column).
    pub self_size: CompactU64s,
    /// [`NodeKind`] byte per node.
    pub kind: Vec<u8>,
    /// [`NodeFlags`] byte per node.
    pub flags: Vec<u8>,
    /// CSR offsets, `node_count + 1` entries, non-decreasing, starting at 0 and ending at the
    /// edge count (at most `u32::MAX`: [`GraphError::TooManyEdges`]).
    pub first_edge: Vec<u32>,
    /// Target ordinal per edge.
    pub edge_to: Vec<u32>,
    /// Kind byte per edge ([`EdgeKind::to_byte`]).
    pub edge_kind: Vec<u8>,
    /// Name per edge: a [`StringId`] or an index, depending on the kind.
    pub edge_name: Vec<u32>,
    pub root: NodeIndex,
}

/// The nodes not named after their class in a graph named after classes: a bit per node (so
/// that the common case, a clear bit, costs no lookup) and the names by node.
#[derive(Debug, Default)]
struct OtherNames {
    bits: Vec<u64>,
    names: HashMap<u32, StringId>,
}

impl OtherNames {
    #[inline]
    fn get(&self, node: u32) -> Option<StringId> {
        let word = self.bits.get(node as usize / 64)?;
        if word & (1 << (node % 64)) == 0 {
            return None;
        }
        self.names.get(&node).copied()
    }

    fn insert(&mut self, node: u32, name: StringId) {
        let word = node as usize / 64;
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << (node % 64);
        self.names.insert(node, name);
    }
}

/// A heap as a graph: node columns, CSR edges, strings, classes, and the root.
#[derive(Debug)]
pub struct HeapGraph {
    format: HeapFormat,
    strings: StringTable,
    classes: Vec<ClassInfo>,
    class_lookup: HashMap<ClassInfo, ClassId>,
    ids: IdColumn,
    /// Class per node, in 2 bytes while the graph has at most 65 536 classes.
    class: CompactU32s,
    name: Vec<u32>,
    self_size: CompactU64s,
    kind: Vec<u8>,
    flags: Vec<u8>,
    first_edge: Vec<u32>,
    edge_to: Vec<u32>,
    edge_kind: Vec<u8>,
    edge_name: Vec<u32>,
    root: NodeIndex,
    /// After [`HeapGraph::name_after_classes`] (`name` is then empty): the nodes not named
    /// after their class.
    other_names: OtherNames,
    /// After [`HeapGraph::narrow_edge_names`] (`edge_name` is then empty): 2-byte edge names,
    /// `u16::MAX` for the names kept in `rare_edge_names`, packed (only printed rows read them).
    narrow_edge_names: Option<Packed<u16>>,
    rare_edge_names: HashMap<u64, u32>,
    /// V8: `(node, self size)` of the nodes whose self size was moved into their owner (see
    /// [`HeapGraph::fold_self_size`]), by node; empty for other formats.
    folded_sizes: Vec<(u32, u64)>,
}

impl HeapGraph {
    /// Validates raw columns and wraps them into a graph.
    pub fn from_parts(parts: GraphParts) -> Result<HeapGraph, GraphError> {
        let node_count = parts.ids.len();
        if node_count == 0 {
            return Err(GraphError::Empty);
        }
        let n = u32::try_from(node_count)
            .ok()
            .filter(|n| *n != u32::MAX)
            .ok_or(GraphError::TooManyNodes(node_count as u64))?;
        let columns_ok = [
            parts.class.len(),
            parts.name.len(),
            parts.self_size.len(),
            parts.kind.len(),
            parts.flags.len(),
        ]
        .iter()
        .all(|len| *len == node_count);
        if !columns_ok {
            return Err(GraphError::BadEdgeIndex("node columns differ in length"));
        }
        let edge_count = parts.edge_to.len();
        if parts.edge_kind.len() != edge_count || parts.edge_name.len() != edge_count {
            return Err(GraphError::BadEdgeIndex("edge columns differ in length"));
        }
        // The column checks run in parallel; each is a reduction (a parallel search would
        // share its progress per element), the failing position is found afterwards.
        if parts.first_edge.len() != node_count + 1
            || parts.first_edge[0] != 0
            || u64::from(parts.first_edge[node_count]) != edge_count as u64
            || parts
                .first_edge
                .par_windows(2)
                .map(|w| w[0] > w[1])
                .reduce(|| false, |a, b| a | b)
        {
            return Err(GraphError::BadEdgeIndex(
                "offsets must start at 0, never decrease and end at the edge count",
            ));
        }
        let highest_target = parts.edge_to.par_iter().copied().max();
        if let Some((edge, &to)) = highest_target
            .filter(|to| *to >= n)
            .and_then(|_| parts.edge_to.iter().enumerate().find(|(_, to)| **to >= n))
        {
            return Err(GraphError::EdgeTargetOutOfRange {
                edge: edge as u64,
                to,
                node_count: n,
            });
        }
        let class_count =
            u32::try_from(parts.classes.len()).map_err(|_| GraphError::TooManyClasses)?;
        // One parallel pass; the culprit is looked for only when there is one.
        if parts.class.max() >= class_count
            && let Some((node, class)) = parts
                .class
                .iter()
                .enumerate()
                .find(|(_, c)| *c >= class_count)
        {
            return Err(GraphError::ClassOutOfRange {
                node: node as u32,
                class,
                class_count,
            });
        }
        if parts.root.0 >= n {
            return Err(GraphError::RootOutOfRange {
                root: parts.root.0,
                node_count: n,
            });
        }
        let class_lookup = parts
            .classes
            .iter()
            .enumerate()
            .map(|(index, info)| (*info, ClassId(index as u32)))
            .collect();
        Ok(HeapGraph {
            format: parts.format,
            strings: parts.strings,
            classes: parts.classes,
            class_lookup,
            ids: parts.ids,
            class: parts.class.into_narrowest(),
            name: parts.name,
            self_size: parts.self_size.into_narrowest(),
            kind: parts.kind,
            flags: parts.flags,
            first_edge: parts.first_edge,
            edge_to: parts.edge_to,
            edge_kind: parts.edge_kind,
            edge_name: parts.edge_name,
            root: parts.root,
            other_names: OtherNames::default(),
            narrow_edge_names: None,
            rare_edge_names: HashMap::new(),
            folded_sizes: Vec::new(),
        })
    }

    /// Replaces the edge name column by 2-byte names: `names[e]` is edge `e`'s name (a
    /// [`StringId`] or an index, by kind), or `u16::MAX` when the name is in `rare`, which holds
    /// every name of 65 535 or more (indices in big arrays). For readers whose edge names are
    /// almost all small (HPROF: field names and array indices) and read only for printed rows:
    /// the names are packed in zstd blocks ([`Packed`]), 5–13 bytes per thousand edges on the
    /// dumps measured instead of 2 per edge, and a read decodes a 32 KiB block.
    pub fn narrow_edge_names(
        &mut self,
        names: Vec<u16>,
        rare: HashMap<u64, u32>,
    ) -> Result<(), GraphError> {
        if names.len() != self.edge_to.len() {
            return Err(GraphError::BadEdgeIndex("edge names of the wrong length"));
        }
        self.edge_name = Vec::new();
        self.narrow_edge_names = Some(Packed::pack(&names));
        self.rare_edge_names = rare;
        Ok(())
    }

    /// Frees the name column: from now on every node is named after its class (its
    /// [`ClassInfo::name`]) except the nodes in `others`, which keep the name given there. For
    /// readers whose nodes are almost all named after their class (HPROF: instances and arrays
    /// are, class objects are named after the class they define and threads after the thread),
    /// this saves 4 bytes per node. The class
    /// column must then stay in place ([`HeapGraph::take_class_column`] is for V8 graphs).
    pub fn name_after_classes(&mut self, others: HashMap<u32, StringId>) {
        let mut other_names = OtherNames::default();
        for (node, name) in others {
            other_names.insert(node, name);
        }
        self.name = Vec::new();
        self.other_names = other_names;
    }

    /// The format the graph was read from.
    pub fn format(&self) -> HeapFormat {
        self.format
    }

    /// Number of nodes (the root included).
    pub fn node_count(&self) -> usize {
        self.ids.len()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> u64 {
        self.edge_to.len() as u64
    }

    /// The synthetic root node.
    pub fn root(&self) -> NodeIndex {
        self.root
    }

    /// All node ordinals, in order.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = NodeIndex> + use<> {
        (0..self.ids.len() as u32).map(NodeIndex)
    }

    /// The string table.
    pub fn strings(&self) -> &StringTable {
        &self.strings
    }

    /// A string's decoded text.
    pub fn string(&self, id: StringId) -> Cow<'_, str> {
        self.strings.get(id)
    }

    /// Number of classes.
    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    /// A class's table entry.
    pub fn class_info(&self, class: ClassId) -> ClassInfo {
        self.classes[class.0 as usize]
    }

    /// A class's display name.
    pub fn class_name(&self, class: ClassId) -> Cow<'_, str> {
        self.strings.get(self.class_info(class).name)
    }

    /// A node's object id.
    #[inline]
    pub fn id(&self, node: NodeIndex) -> ObjectId {
        ObjectId(self.ids.get(node.get()))
    }

    /// A node's class.
    #[inline]
    pub fn class(&self, node: NodeIndex) -> ClassId {
        ClassId(self.class.get(node.get()))
    }

    /// A node's name (V8: constructor name, string value, function name…; HPROF: class name).
    #[inline]
    pub fn name_id(&self, node: NodeIndex) -> StringId {
        match self.name.get(node.get()) {
            Some(name) => StringId(*name),
            None => self.derived_name(node),
        }
    }

    /// The name of a node whose graph is named after classes ([`HeapGraph::name_after_classes`]).
    fn derived_name(&self, node: NodeIndex) -> StringId {
        if let Some(name) = self.other_names.get(node.0) {
            return name;
        }
        self.class
            .try_get(node.get())
            .and_then(|class| self.classes.get(class as usize))
            .map_or(StringId(0), |info| info.name)
    }

    /// A node's decoded name.
    pub fn name(&self, node: NodeIndex) -> Cow<'_, str> {
        self.strings.get(self.name_id(node))
    }

    /// A node's own size in bytes.
    #[inline]
    pub fn self_size(&self, node: NodeIndex) -> u64 {
        self.self_size.get(node.get())
    }

    /// A node's kind.
    #[inline]
    pub fn kind(&self, node: NodeIndex) -> NodeKind {
        NodeKind::from_u8(self.kind[node.get()])
    }

    /// A node's flags.
    #[inline]
    pub fn flags(&self, node: NodeIndex) -> NodeFlags {
        NodeFlags(self.flags[node.get()])
    }

    /// A node's detachedness.
    pub fn detachedness(&self, node: NodeIndex) -> Detachedness {
        self.flags(node).detachedness()
    }

    /// The column of self sizes, one per node (for bulk passes).
    pub fn self_sizes(&self) -> &CompactU64s {
        &self.self_size
    }

    /// The column of object ids, one per node (for bulk passes).
    pub fn ids(&self) -> &IdColumn {
        &self.ids
    }

    /// The column of class ids, one per node (for bulk passes).
    pub fn classes(&self) -> &CompactU32s {
        &self.class
    }

    /// The CSR offsets (`node_count + 1` entries).
    pub fn first_edges(&self) -> &[u32] {
        &self.first_edge
    }

    /// The edge target column.
    pub fn edge_targets(&self) -> &[u32] {
        &self.edge_to
    }

    /// The edge kind bytes ([`EdgeKind::from_byte`], [`EdgeKind::ESSENTIAL_BIT`]).
    pub fn edge_kind_bytes(&self) -> &[u8] {
        &self.edge_kind
    }

    /// The edge indices leaving `node`.
    #[inline]
    pub fn edge_range(&self, node: NodeIndex) -> std::ops::Range<u64> {
        u64::from(self.first_edge[node.get()])..u64::from(self.first_edge[node.get() + 1])
    }

    /// Number of edges leaving `node`.
    pub fn out_degree(&self, node: NodeIndex) -> u64 {
        let range = self.edge_range(node);
        range.end - range.start
    }

    /// The edges leaving `node`.
    pub fn edges(&self, node: NodeIndex) -> impl Iterator<Item = EdgeIndex> + use<> {
        self.edge_range(node).map(EdgeIndex)
    }

    /// An edge's target.
    #[inline]
    pub fn edge_to(&self, edge: EdgeIndex) -> NodeIndex {
        NodeIndex(self.edge_to[edge.get()])
    }

    /// An edge's kind.
    #[inline]
    pub fn edge_kind(&self, edge: EdgeIndex) -> EdgeKind {
        EdgeKind::from_byte(self.edge_kind[edge.get()])
    }

    /// Whether an edge retains its target (counts for dominators, retained sizes and paths).
    #[inline]
    pub fn is_essential(&self, edge: EdgeIndex) -> bool {
        self.edge_kind[edge.get()] & EdgeKind::ESSENTIAL_BIT != 0
    }

    /// The raw value of an edge's `name` column (a [`StringId`] or an index, by kind).
    #[inline]
    pub fn edge_name_raw(&self, edge: EdgeIndex) -> u32 {
        if let Some(name) = self.edge_name.get(edge.get()) {
            return *name;
        }
        let narrow = self
            .narrow_edge_names
            .as_ref()
            .map_or(0, |n| n.get(edge.get()));
        match narrow {
            u16::MAX => self
                .rare_edge_names
                .get(&edge.0)
                .copied()
                .unwrap_or(u32::from(u16::MAX)),
            name => u32::from(name),
        }
    }

    /// An edge's name or index.
    pub fn edge_name(&self, edge: EdgeIndex) -> EdgeName {
        let raw = self.edge_name_raw(edge);
        if self.edge_kind(edge).name_is_index() {
            EdgeName::Index(raw)
        } else {
            EdgeName::Named(StringId(raw))
        }
    }

    /// An edge's label as text: the name, or the index in brackets (`[3]`).
    pub fn edge_label(&self, edge: EdgeIndex) -> Cow<'_, str> {
        match self.edge_name(edge) {
            EdgeName::Named(s) => self.strings.get(s),
            EdgeName::Index(i) => Cow::Owned(format!("[{i}]")),
        }
    }

    /// The edge kind bytes, writable: readers set essential bits in bulk
    /// ([`EdgeKind::ESSENTIAL_BIT`]); the kind bits must be left as they are.
    pub fn edge_kind_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.edge_kind
    }

    /// The node flag bytes, writable ([`NodeFlags`] per node), for readers that set flags in
    /// bulk.
    pub fn node_flag_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.flags
    }

    /// Takes the class column out of the graph so a pass can fill it (as scratch, then with
    /// class ids) while reading the other columns; give it back with
    /// [`HeapGraph::restore_class_column`]. Until then, node classes must not be read.
    pub fn take_class_column(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.class).into_wide()
    }

    /// Puts back a column taken with [`HeapGraph::take_class_column`]; every entry must be a
    /// class of the table.
    pub fn restore_class_column(&mut self, class: Vec<u32>) -> Result<(), GraphError> {
        if class.len() != self.ids.len() {
            return Err(GraphError::BadEdgeIndex("class column of the wrong length"));
        }
        if class.iter().any(|c| *c as usize >= self.classes.len()) {
            return Err(GraphError::BadEdgeIndex(
                "class column names an unknown class",
            ));
        }
        self.class = CompactU32s::narrowest(class);
        Ok(())
    }

    /// Packs the class and self-size columns in zstd blocks ([`CompactU32s::pack`]) for a
    /// phase that reads neither in bulk, such as the dominator search, so that its own columns
    /// take their place; [`HeapGraph::unpack_node_columns`] restores them. Reads stay correct
    /// meanwhile, but each one that leaves the block last read decodes another.
    pub fn pack_node_columns(&mut self) {
        let (class, self_size) = (&mut self.class, &mut self.self_size);
        rayon::join(|| class.pack(), || self_size.pack());
    }

    /// Unpacks the columns packed by [`HeapGraph::pack_node_columns`].
    pub fn unpack_node_columns(&mut self) {
        let (class, self_size) = (&mut self.class, &mut self.self_size);
        rayon::join(|| class.unpack(), || self_size.unpack());
    }

    /// Takes the edge kind column out of the graph so it can be rewritten in parallel while the
    /// other columns are read; give it back with [`HeapGraph::restore_edge_kind_bytes`]. Until
    /// then, edge kinds must not be read through the graph.
    pub fn take_edge_kind_bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.edge_kind)
    }

    /// Puts back a column taken with [`HeapGraph::take_edge_kind_bytes`].
    pub fn restore_edge_kind_bytes(&mut self, kinds: Vec<u8>) -> Result<(), GraphError> {
        if kinds.len() != self.edge_to.len() {
            return Err(GraphError::BadEdgeIndex(
                "edge kind column of the wrong length",
            ));
        }
        self.edge_kind = kinds;
        Ok(())
    }

    /// Changes an edge's essential bit (readers whose rule depends on reachability, such as
    /// DevTools' page-owned rule, decide after the graph is built).
    pub fn set_essential(&mut self, edge: EdgeIndex, essential: bool) {
        let byte = &mut self.edge_kind[edge.get()];
        if essential {
            *byte |= EdgeKind::ESSENTIAL_BIT;
        } else {
            *byte &= !EdgeKind::ESSENTIAL_BIT;
        }
    }

    /// Replaces a node's flags.
    pub fn set_flags(&mut self, node: NodeIndex, flags: NodeFlags) {
        self.flags[node.get()] = flags.0;
    }

    /// Replaces a node's name (DevTools renames detached embedder objects).
    pub fn set_name(&mut self, node: NodeIndex, name: StringId) {
        match self.name.get_mut(node.get()) {
            Some(slot) => *slot = name.0,
            None => self.other_names.insert(node.0, name),
        }
    }

    /// Replaces a node's self size (DevTools folds some internal sizes into their owners).
    pub fn set_self_size(&mut self, node: NodeIndex, size: u64) {
        self.self_size.set(node.get(), size);
    }

    /// Moves `owned`'s self size into `owner`'s (DevTools' shallow-size folding), remembering
    /// it: [`HeapGraph::folded_self_size`]. Nodes must be folded in increasing order.
    pub fn fold_self_size(&mut self, owned: NodeIndex, owner: NodeIndex) {
        let size = self.self_size(owned);
        self.set_self_size(owned, 0);
        self.set_self_size(owner, self.self_size(owner).saturating_add(size));
        debug_assert!(self.folded_sizes.last().is_none_or(|(n, _)| *n < owned.0));
        self.folded_sizes.push((owned.0, size));
    }

    /// The self size [`HeapGraph::fold_self_size`] moved out of `node` (0 if none): what the
    /// node itself occupies, for questions about the object rather than its owner.
    pub fn folded_self_size(&self, node: NodeIndex) -> u64 {
        self.folded_sizes
            .binary_search_by_key(&node.0, |(n, _)| *n)
            .map_or(0, |i| self.folded_sizes[i].1)
    }

    /// Replaces a node's class (readers that name classes after a whole-graph pass).
    pub fn set_class(&mut self, node: NodeIndex, class: ClassId) {
        debug_assert!((class.0 as usize) < self.classes.len());
        self.class.set(node.get(), class.0);
    }

    /// Adds a class to the table after building, or returns the existing id for an equal entry.
    pub fn intern_class(&mut self, info: ClassInfo) -> Result<ClassId, GraphError> {
        if let Some(id) = self.class_lookup.get(&info) {
            return Ok(*id);
        }
        let id =
            ClassId(u32::try_from(self.classes.len()).map_err(|_| GraphError::TooManyClasses)?);
        self.classes.push(info);
        self.class_lookup.insert(info, id);
        Ok(id)
    }

    /// Mutable access to the string table (to add names after building).
    pub fn strings_mut(&mut self) -> &mut StringTable {
        &mut self.strings
    }

    /// A one-line description of a node for paths and tables: `Class @id` or `Class "name" @id`.
    pub fn describe(&self, node: NodeIndex) -> String {
        let class = self.class_name(self.class(node));
        let name = self.name(node);
        let id = self.id(node);
        if node == self.root && name.is_empty() {
            return format!("(root) @{id}");
        }
        if name.is_empty() || name == class {
            format!("{class} @{id}")
        } else {
            let shown: String = name.chars().take(60).collect();
            let ellipsis = if shown.len() < name.len() { "…" } else { "" };
            format!("{class} {shown:?}{ellipsis} @{id}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(builder: &mut GraphBuilder, id: u64, size: u64) -> NodeIndex {
        let name = builder.strings_mut().intern("N").unwrap();
        let class = builder.intern_class(ClassInfo::named(name)).unwrap();
        builder
            .add_node(NodeData {
                id: ObjectId(id),
                class,
                name,
                self_size: size,
                kind: NodeKind::Object,
                flags: NodeFlags::default(),
            })
            .unwrap()
    }

    fn edge(to: NodeIndex, index: u32) -> EdgeData {
        EdgeData {
            to,
            kind: EdgeKind::Element,
            name: EdgeName::Index(index),
            essential: true,
        }
    }

    #[test]
    fn builds_csr_from_unordered_edges() {
        let mut b = GraphBuilder::new(HeapFormat::V8, StringTable::new(), 3, 3);
        let a = node(&mut b, 1, 10);
        let bb = node(&mut b, 3, 20);
        let c = node(&mut b, 5, 30);
        b.add_edge(c, edge(a, 0));
        b.add_edge(a, edge(bb, 1));
        b.add_edge(a, edge(c, 2));
        let g = b.finish().unwrap();
        assert_eq!(g.first_edges(), &[0, 2, 2, 3]);
        let targets: Vec<_> = g.edges(a).map(|e| g.edge_to(e)).collect();
        assert_eq!(targets, vec![bb, c]);
        assert_eq!(g.edge_name(EdgeIndex(1)), EdgeName::Index(2));
        assert_eq!(g.edge_to(EdgeIndex(2)), a);
    }

    #[test]
    fn narrow_columns_read_as_the_wide_ones() {
        let mut b = GraphBuilder::new(HeapFormat::Hprof, StringTable::new(), 3, 3);
        let a = node(&mut b, 1, 10);
        let bb = node(&mut b, 3, 20);
        let c = node(&mut b, 5, 30);
        b.add_edge(a, edge(bb, 7));
        b.add_edge(a, edge(c, 70_000));
        b.add_edge(c, edge(a, 65_535));
        let mut g = b.finish().unwrap();
        let other = g.strings_mut().intern("Other").unwrap();
        g.name_after_classes(HashMap::from([(2, other)]));
        assert_eq!(g.name(a), "N");
        assert_eq!(g.name(c), "Other");
        g.set_name(bb, other);
        assert_eq!(g.name(bb), "Other");
        assert!(g.narrow_edge_names(vec![7], HashMap::new()).is_err());
        let rare = HashMap::from([(1, 70_000), (2, 65_535)]);
        g.narrow_edge_names(vec![7, u16::MAX, u16::MAX], rare)
            .unwrap();
        let names: Vec<EdgeName> = (0..3).map(|e| g.edge_name(EdgeIndex(e))).collect();
        assert_eq!(
            names,
            [
                EdgeName::Index(7),
                EdgeName::Index(70_000),
                EdgeName::Index(65_535)
            ]
        );
    }

    #[test]
    fn rejects_edges_to_missing_nodes() {
        let mut b = GraphBuilder::new(HeapFormat::Hprof, StringTable::new(), 1, 1);
        let a = node(&mut b, 1, 10);
        b.add_edge(a, edge(NodeIndex(7), 0));
        assert!(matches!(
            b.finish(),
            Err(GraphError::EdgeTargetOutOfRange { to: 7, .. })
        ));
    }

    #[test]
    fn node_kind_bytes_round_trip() {
        let kinds = [
            NodeKind::Hidden,
            NodeKind::Array,
            NodeKind::String,
            NodeKind::Object,
            NodeKind::Code,
            NodeKind::Closure,
            NodeKind::RegExp,
            NodeKind::Number,
            NodeKind::Native,
            NodeKind::Synthetic,
            NodeKind::ConsString,
            NodeKind::SlicedString,
            NodeKind::Symbol,
            NodeKind::BigInt,
            NodeKind::ObjectShape,
            NodeKind::WasmObject,
            NodeKind::Other,
            NodeKind::Instance,
            NodeKind::Class,
            NodeKind::ObjectArray,
            NodeKind::PrimitiveArray,
            NodeKind::Root,
        ];
        for kind in kinds {
            assert_eq!(NodeKind::from_u8(kind as u8), kind);
            if kind != NodeKind::Other && (kind as u8) < 16 {
                assert_eq!(NodeKind::from_v8_type_name(kind.name()), Some(kind));
            }
        }
        assert_eq!(NodeKind::from_u8(200), NodeKind::Other);
    }

    #[test]
    fn edge_kind_bytes_round_trip() {
        let kinds = [
            EdgeKind::Context,
            EdgeKind::Weak,
            EdgeKind::Field,
            EdgeKind::ClassLink,
            EdgeKind::GcRoot(GcRootKind::JavaFrame),
            EdgeKind::GcRoot(GcRootKind::Unreachable),
        ];
        for kind in kinds {
            for essential in [false, true] {
                let byte = kind.to_byte(essential);
                assert_eq!(EdgeKind::from_byte(byte), kind);
                assert_eq!(byte & EdgeKind::ESSENTIAL_BIT != 0, essential);
            }
        }
    }

    #[test]
    fn decodes_json_strings_with_lone_surrogates() {
        assert_eq!(decode_json_string(br"plain"), "plain");
        assert_eq!(decode_json_string(br"a\nb\u0041"), "a\nbA");
        assert_eq!(decode_json_string(br"\ud83d\ude00"), "😀");
        assert_eq!(decode_json_string(br"x\ud800y"), "x\u{fffd}y");
        assert_eq!(decode_json_string(br"\udc00"), "\u{fffd}");
        assert_eq!(decode_json_string(br"bad\u12"), "bad\\u12");
        assert_eq!(decode_json_string(b"end\\"), "end\\");
    }

    #[test]
    fn backed_strings_decode_lazily() {
        let backing: StringBacking = Arc::new(br#"ab\"c"#.to_vec());
        let mut t = StringTable::with_backing(backing);
        let id = t.push_backed(0, 5, StringEncoding::JsonEscaped).unwrap();
        let bad = t.push_backed(3, 10, StringEncoding::Utf8).unwrap();
        let own = t.intern("own").unwrap();
        assert_eq!(t.intern("own").unwrap(), own);
        assert_eq!(t.get(id), "ab\"c");
        assert_eq!(t.get(bad), "");
        assert_eq!(t.get(own), "own");
    }
}
