//! Duplicated `java.lang.String` values (MAT's "duplicate strings" query): one more sequential
//! pass over the dump reads the `value` arrays of the graph's strings, groups equal contents
//! and decodes only the values shown (JDK 8 `char[]`, JDK 9+ Latin-1 or UTF-16 `byte[]`).

use leaksift_heap::{HeapGraph, NodeIndex, NodeKind};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::bytes::Id;
use crate::error::{ErrorKind, HprofError};
use crate::format::{BasicType, parse_header};
use crate::threads::decode_utf16;
use crate::walk::{SubRecord, Visitor, each_sub_record, walk_records};

/// A string value held by several `java.lang.String` objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateString {
    pub value: String,
    /// String objects with this value.
    pub count: u64,
    /// Bytes freed if one String and one value array were kept: the other strings' shallow
    /// sizes and those of the other distinct value arrays (strings sharing one array, as G1's
    /// string deduplication makes them, waste only their own header).
    pub wasted_bytes: u64,
}

/// One set of equal string contents.
#[derive(Default)]
struct Group {
    strings: u64,
    string_bytes: u64,
    array_bytes: u64,
    /// The largest string + array pair, kept when the rest is counted as waste.
    biggest_copy: u64,
    /// An array of the group (its strings' coder decides how the value is decoded).
    representative: Option<u32>,
}

/// Dense-index bit set.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: u32) {
        self.0[i as usize / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// Finds the `top` string values held by the most wasted bytes among the `java.lang.String`
/// objects `counted` accepts. `data` is the dump `graph` was read from.
pub fn duplicate_strings(
    data: &[u8],
    graph: &HeapGraph,
    counted: impl Fn(NodeIndex) -> bool,
    top: usize,
) -> Result<Vec<DuplicateString>, HprofError> {
    duplicate_strings_releasing(data, graph, counted, top, &mut |_| {})
}

/// [`duplicate_strings`], calling `release` with each heap record's byte range once it is read.
pub(crate) fn duplicate_strings_releasing(
    data: &[u8],
    graph: &HeapGraph,
    counted: impl Fn(NodeIndex) -> bool,
    top: usize,
    release: &mut dyn FnMut(std::ops::Range<usize>),
) -> Result<Vec<DuplicateString>, HprofError> {
    let header = parse_header(data)?;
    // The strings (from the graph) and their value arrays, by ordinal.
    let n = graph.node_count();
    let mut is_string = Bits::new(n);
    let mut is_value = Bits::new(n);
    let mut users: Vec<(u32, u32)> = Vec::new();
    for node in graph.nodes() {
        if graph.kind(node) != NodeKind::Instance
            || graph.class_name(graph.class(node)) != "java.lang.String"
            || !counted(node)
        {
            continue;
        }
        is_string.set(node.0);
        if let Some(edge) = graph.edges(node).find(|&e| graph.edge_label(e) == "value") {
            let array = graph.edge_to(edge);
            is_value.set(array.0);
            users.push((array.0, node.0));
        }
    }
    users.sort_unstable();
    if users.is_empty() {
        return Ok(Vec::new());
    }

    // The names `coder` may have, then the pass over the heap records.
    struct Names {
        coder: FxHashSet<Id>,
        segments: Vec<(usize, usize)>,
    }
    impl<'a> Visitor<'a> for Names {
        fn utf8(&mut self, id: Id, text: &'a [u8]) {
            if text == b"coder" {
                self.coder.insert(id);
            }
        }
        fn segment(&mut self, start: usize, end: usize) {
            self.segments.push((start, end));
        }
    }
    let mut names = Names {
        coder: FxHashSet::default(),
        segments: Vec::new(),
    };
    let mut walked = 0;
    walk_records(data, &header, &mut names, &mut |end| {
        release(walked..end);
        walked = end;
    })?;

    // The graph's ids from ordinal 1 on (0 is the root), decoded in the order of the records.
    let mut ids = graph.ids().iter().skip(1);
    let mut coder_offset: FxHashMap<Id, usize> = FxHashMap::default();
    let mut utf16 = Bits::new(n);
    let mut groups: FxHashMap<(BasicType, &[u8]), Group> = FxHashMap::default();
    let mut ordinal = 0u32;
    for &(start, end) in &names.segments {
        each_sub_record(data, start, end, header.id_size, |offset, record| {
            let id = match &record {
                SubRecord::Root(_) | SubRecord::Other => return Ok(()),
                SubRecord::Class(class) => class.id,
                SubRecord::Instance { id, .. }
                | SubRecord::ObjectArray { id, .. }
                | SubRecord::PrimitiveArray { id, .. } => *id,
            };
            ordinal += 1;
            if ids.next() != Some(id.0) {
                return Err(HprofError::new(
                    offset as u64,
                    ErrorKind::Malformed("object order differs from the first read"),
                ));
            }
            match record {
                SubRecord::Class(class) => {
                    // Offset of `coder` in the instance data (this class's fields come first).
                    let mut at = 0;
                    for field in &class.fields {
                        if names.coder.contains(&field.name) {
                            coder_offset.insert(class.id, at);
                            break;
                        }
                        at += field.ty.dump_size(header.id_size);
                    }
                }
                SubRecord::Instance {
                    class_id, fields, ..
                } if is_string.get(ordinal) => {
                    let coder = coder_offset
                        .get(&class_id)
                        .and_then(|at| fields.get(*at))
                        .copied();
                    if coder == Some(1) {
                        utf16.set(ordinal);
                    }
                }
                SubRecord::PrimitiveArray {
                    ty,
                    data: Some(bytes),
                    ..
                } if is_value.get(ordinal) => {
                    let group = groups.entry((ty, bytes)).or_default();
                    let array_size = graph.self_size(NodeIndex(ordinal));
                    group.array_bytes = group.array_bytes.saturating_add(array_size);
                    let from = users.partition_point(|u| u.0 < ordinal);
                    for &(_, string) in users[from..].iter().take_while(|u| u.0 == ordinal) {
                        let string_size = graph.self_size(NodeIndex(string));
                        group.strings += 1;
                        group.string_bytes = group.string_bytes.saturating_add(string_size);
                        group.biggest_copy = group.biggest_copy.max(string_size + array_size);
                    }
                    group.representative.get_or_insert(ordinal);
                }
                _ => {}
            }
            Ok(())
        })?;
        release(start..end);
    }
    // A string's coder may come after its array in the file: look it up now.
    let mut rows: Vec<(u64, u64, BasicType, &[u8], bool)> = groups
        .into_iter()
        .filter_map(|((ty, bytes), group)| {
            let array = group.representative?;
            let wasted =
                (group.string_bytes + group.array_bytes).saturating_sub(group.biggest_copy);
            let from = users.partition_point(|u| u.0 < array);
            let is_utf16 = users
                .get(from)
                .is_some_and(|u| u.0 == array && utf16.get(u.1));
            (group.strings > 1 && wasted > 0).then_some((
                wasted,
                group.strings,
                ty,
                bytes,
                is_utf16,
            ))
        })
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.3.cmp(b.3)));
    Ok(rows
        .into_iter()
        .take(top)
        .map(
            |(wasted_bytes, count, ty, bytes, is_utf16)| DuplicateString {
                value: match ty {
                    BasicType::Char => decode_utf16(bytes, u16::from_be_bytes),
                    BasicType::Byte if is_utf16 => decode_utf16(bytes, u16::from_le_bytes),
                    _ => bytes.iter().map(|&b| char::from(b)).collect(),
                },
                count,
                wasted_bytes,
            },
        )
        .collect())
}
