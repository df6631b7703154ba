//! Java threads: their stacks (STACK TRACE / STACK FRAME records) and the objects each frame's
//! local variables hold (Java frame and JNI local roots).

use leaksift_heap::dominators::Dominators;
use leaksift_heap::{GcRootKind, HeapGraph, NodeIndex};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::bytes::Id;
use crate::error::{ErrorKind, HprofError};
use crate::format::BasicType;
use crate::ids::IdIndex;
use crate::layout::{ClassTable, java_class_name};
use crate::locate::Locator;
use crate::mutf8;
use crate::scan::Scan;
use crate::walk::{SubRecord, ids};

/// One frame of a thread's stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadFrame {
    /// 0 = the innermost frame.
    pub depth: u32,
    /// `package.Class.method`.
    pub method: String,
    /// `File.java:123`, `Native Method`, `Compiled Code` or `Unknown Source`.
    pub location: String,
    /// Objects held by this frame's local variables (Java locals and JNI locals).
    pub locals: Vec<NodeIndex>,
}

/// One thread of the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStack {
    pub object: NodeIndex,
    pub serial: u32,
    /// `Thread.name`, when the dump holds the string.
    pub name: Option<String>,
    pub frames: Vec<ThreadFrame>,
    /// Thread-held roots without a frame (native stack, thread block, JNI monitors, frame -1).
    pub other_locals: Vec<NodeIndex>,
}

/// Collects every thread that has a THREAD OBJECT root.
pub fn collect(
    scan: &Scan<'_>,
    classes: &ClassTable,
    index: &IdIndex,
    locator: &Locator<'_, '_>,
) -> Result<Vec<ThreadStack>, HprofError> {
    let text = |id: Id| {
        scan.strings
            .get(&id)
            .map(|raw| mutf8::decode(raw).into_owned())
    };
    let mut threads = Vec::new();
    let mut by_serial: FxHashMap<u32, usize> = FxHashMap::default();
    for root in &scan.roots {
        let (GcRootKind::ThreadObject, Some(serial)) = (root.kind, root.thread_serial) else {
            continue;
        };
        let Some(object) = index.lookup(root.object) else {
            continue;
        };
        if by_serial.contains_key(&serial) {
            continue;
        }
        let mut frames = Vec::new();
        let trace = root.stack_trace.and_then(|serial| scan.traces.get(&serial));
        for (depth, frame_id) in trace
            .into_iter()
            .flat_map(|frames| ids(frames, scan.id_size))
            .enumerate()
        {
            let Some(frame) = scan.frames.get(&frame_id) else {
                continue;
            };
            let class = scan
                .class_serials
                .get(&frame.class_serial)
                .and_then(|class_id| scan.class_names.get(class_id))
                .and_then(|name| text(*name))
                .map(|name| java_class_name(&name))
                .unwrap_or_else(|| "<unknown class>".to_string());
            let method = text(frame.method_name).unwrap_or_default();
            let source = text(frame.source_file).filter(|s| !s.is_empty());
            let location = match (frame.line, source) {
                (line, Some(file)) if line > 0 => format!("{file}:{line}"),
                (-2, _) => "Compiled Code".to_string(),
                (-3, _) => "Native Method".to_string(),
                (_, Some(file)) => file,
                (_, None) => "Unknown Source".to_string(),
            };
            frames.push(ThreadFrame {
                depth: depth as u32,
                method: format!("{class}.{method}"),
                location,
                locals: Vec::new(),
            });
        }
        by_serial.insert(serial, threads.len());
        threads.push(ThreadStack {
            object: NodeIndex(object),
            serial,
            name: thread_name(scan, classes, index, locator, object)?,
            frames,
            other_locals: Vec::new(),
        });
    }
    for root in &scan.roots {
        let Some(&thread) = root.thread_serial.and_then(|s| by_serial.get(&s)) else {
            continue;
        };
        if root.kind == GcRootKind::ThreadObject {
            continue;
        }
        let Some(object) = index.lookup(root.object) else {
            continue;
        };
        let thread = &mut threads[thread];
        let slot = root
            .frame
            .and_then(|frame| usize::try_from(frame).ok())
            .and_then(|depth| thread.frames.get_mut(depth))
            .map(|frame| &mut frame.locals)
            .unwrap_or(&mut thread.other_locals);
        slot.push(NodeIndex(object));
    }
    // A local held by several variables of one frame is listed once.
    for thread in &mut threads {
        for locals in thread
            .frames
            .iter_mut()
            .map(|f| &mut f.locals)
            .chain(std::iter::once(&mut thread.other_locals))
        {
            locals.sort_unstable();
            locals.dedup();
        }
    }
    Ok(threads)
}

/// Reads `Thread.name` → `String.value` (+ `coder`) and decodes it (JDK 8 char[] or JDK 9+
/// compact strings: Latin-1 bytes, or UTF-16 in the VM's little-endian byte order).
fn thread_name(
    scan: &Scan<'_>,
    classes: &ClassTable,
    index: &IdIndex,
    locator: &Locator<'_, '_>,
    thread: u32,
) -> Result<Option<String>, HprofError> {
    let field = |ordinal, name| field_value(scan, classes, locator, ordinal, name);
    let Some(string) = field(thread, b"name")?.and_then(|id| index.lookup(Id(id))) else {
        return Ok(None);
    };
    let Some(array) = field(string, b"value")?.and_then(|id| index.lookup(Id(id))) else {
        return Ok(None);
    };
    string_text(scan, classes, locator, string, array)
}

/// The raw value of the field `name` of the instance `ordinal` (an object id for references),
/// read from the dump.
fn field_value(
    scan: &Scan<'_>,
    classes: &ClassTable,
    locator: &Locator<'_, '_>,
    ordinal: u32,
    name: &[u8],
) -> Result<Option<u64>, HprofError> {
    let Some(SubRecord::Instance {
        class_id, fields, ..
    }) = locator.object(ordinal)?
    else {
        return Ok(None);
    };
    let Some(class) = classes.index_of(class_id) else {
        return Ok(None);
    };
    let Some((offset, ty)) = classes.field(class, name, &scan.strings, scan.id_size) else {
        return Ok(None);
    };
    let width = ty.dump_size(scan.id_size);
    Ok(fields
        .get(offset..offset + width)
        .map(|raw| raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))))
}

/// The text of the `java.lang.String` instance `string` whose value array is `array`.
fn string_text(
    scan: &Scan<'_>,
    classes: &ClassTable,
    locator: &Locator<'_, '_>,
    string: u32,
    array: u32,
) -> Result<Option<String>, HprofError> {
    let utf16 = field_value(scan, classes, locator, string, b"coder")? == Some(1);
    let text = match locator.object(array)? {
        Some(SubRecord::PrimitiveArray {
            ty: BasicType::Char,
            data: Some(data),
            ..
        }) => decode_utf16(data, u16::from_be_bytes),
        Some(SubRecord::PrimitiveArray {
            ty: BasicType::Byte,
            data: Some(data),
            ..
        }) if utf16 => decode_utf16(data, u16::from_le_bytes),
        Some(SubRecord::PrimitiveArray {
            ty: BasicType::Byte,
            data: Some(data),
            ..
        }) => data.iter().map(|&b| char::from(b)).collect(),
        _ => return Ok(None),
    };
    Ok(Some(text))
}

/// Thread objects named by [`name_other_threads`] at most: each name is read from the dump.
const MAX_OTHER_THREADS: usize = 10_000;

/// Names the Thread objects (`java.lang.Thread` or a subclass: `thread_objects`, found by pass
/// 2) that have no THREAD OBJECT root after their thread, as [`collect`]'s threads are named:
/// MAT labels every Thread instance so. Threads a JNI global holds (the JIT compiler threads),
/// threads not started yet and ended ones have no such root. Follows the graph's `name` and
/// `value` edges and reads the string from the dump; at most [`MAX_OTHER_THREADS`].
pub fn name_other_threads(
    graph: &mut HeapGraph,
    scan: &Scan<'_>,
    classes: &ClassTable,
    locator: &Locator<'_, '_>,
    thread_objects: &[u32],
    named: &[ThreadStack],
) -> Result<(), HprofError> {
    let already: FxHashSet<u32> = named.iter().map(|thread| thread.object.0).collect();
    let target = |graph: &HeapGraph, node: NodeIndex, field: &str| {
        graph
            .edges(node)
            .find(|&edge| graph.edge_label(edge) == field)
            .map(|edge| graph.edge_to(edge))
    };
    for &thread in thread_objects
        .iter()
        .filter(|thread| !already.contains(thread))
        .take(MAX_OTHER_THREADS)
    {
        let thread = NodeIndex(thread);
        let Some(string) = target(graph, thread, "name") else {
            continue;
        };
        let Some(array) = target(graph, string, "value") else {
            continue;
        };
        if let Some(name) = string_text(scan, classes, locator, string.0, array.0)? {
            let name = graph.strings_mut().intern(&name).map_err(|_| {
                HprofError::new(
                    0,
                    ErrorKind::Malformed("the dump has more than 2^32 - 1 distinct names"),
                )
            })?;
            graph.set_name(thread, name);
        }
    }
    Ok(())
}

/// Decodes UTF-16 code units (unpaired surrogates become U+FFFD).
pub(crate) fn decode_utf16(data: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units = data.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// What one frame's locals keep alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRetention {
    /// Index into [`ThreadStack::frames`].
    pub frame: usize,
    /// Retained bytes of the frame's locals (a local dominated by another local of the same
    /// thread is counted once, inside that one; the thread's own object is not counted).
    pub retained: u64,
    /// The local retaining the most (never the thread's own object).
    pub biggest: Option<NodeIndex>,
}

/// What one thread keeps alive: its object's retained size (which includes its locals, since
/// they hang off the thread object) and its frames ranked by what their locals retain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRetention {
    /// Index into the thread list.
    pub thread: usize,
    pub retained: u64,
    /// Frames with locals, largest retention first.
    pub frames: Vec<FrameRetention>,
}

/// How far up the dominator tree `thread_retention` looks for an enclosing local.
const DOMINATOR_STEPS: usize = 4096;

/// Ranks threads by retained size and, inside each, frames by what their locals retain.
pub fn thread_retention(threads: &[ThreadStack], dominators: &Dominators) -> Vec<ThreadRetention> {
    let mut out: Vec<ThreadRetention> = threads
        .iter()
        .enumerate()
        .map(|(index, thread)| {
            // A frame holding its own thread (`Thread.run`'s `this`) does not retain the
            // thread: the thread's locals hang off it, so counting it would credit that frame
            // with everything and hide the frames whose locals really hold the bytes.
            let held = |local: &NodeIndex| *local != thread.object;
            let all_locals: FxHashSet<NodeIndex> = thread
                .frames
                .iter()
                .flat_map(|f| f.locals.iter().copied())
                .chain(thread.other_locals.iter().copied())
                .filter(held)
                .collect();
            // A local is counted where no other local of the thread dominates it (looked up the
            // dominator tree for a bounded number of steps).
            let counted = |local: NodeIndex| {
                let mut up = local;
                for _ in 0..DOMINATOR_STEPS {
                    let next = dominators.idom(up);
                    if next == up {
                        break;
                    }
                    if all_locals.contains(&next) {
                        return false;
                    }
                    up = next;
                }
                true
            };
            let mut frames: Vec<FrameRetention> = thread
                .frames
                .iter()
                .enumerate()
                .filter(|(_, frame)| !frame.locals.is_empty())
                .map(|(at, frame)| FrameRetention {
                    frame: at,
                    retained: frame
                        .locals
                        .iter()
                        .filter(|&local| held(local) && counted(*local))
                        .map(|&local| dominators.retained(local))
                        .sum(),
                    biggest: frame
                        .locals
                        .iter()
                        .copied()
                        .filter(held)
                        .max_by_key(|&local| dominators.retained(local)),
                })
                .collect();
            frames.sort_by(|a, b| b.retained.cmp(&a.retained).then(a.frame.cmp(&b.frame)));
            ThreadRetention {
                thread: index,
                retained: dominators.retained(thread.object),
                frames,
            }
        })
        .collect();
    out.sort_by(|a, b| b.retained.cmp(&a.retained).then(a.thread.cmp(&b.thread)));
    out
}
