//! Walking the records and heap-dump sub-records of a dump, handing each to a visitor.

use crate::bytes::{Cursor, Id, IdSize};
use crate::error::{ErrorKind, HprofError};
use leaksift_heap::GcRootKind as RootKind;

use crate::format::{BasicType, Header, read_type, sub, tag};

/// One GC root sub-record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Root {
    pub kind: RootKind,
    pub object: Id,
    /// Thread serial number for thread-related roots (Java frame, JNI local, native stack, ...).
    pub thread_serial: Option<u32>,
    /// Frame index in the thread's stack trace (Java frame and JNI local roots; may be -1).
    pub frame: Option<i32>,
    /// The thread's stack trace serial (thread object roots).
    pub stack_trace: Option<u32>,
}

/// A static field of a class dump with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticField {
    pub name: Id,
    pub ty: BasicType,
    /// Object id for reference fields, the raw bits otherwise.
    pub value: u64,
}

/// An instance field declaration (no value; values live in instance dumps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDecl {
    pub name: Id,
    pub ty: BasicType,
}

/// A CLASS_DUMP sub-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassDump {
    pub id: Id,
    pub super_id: Id,
    pub loader_id: Id,
    pub signers_id: Id,
    pub protection_domain_id: Id,
    /// Instance size in bytes as the VM reported it.
    pub instance_size: u32,
    pub statics: Vec<StaticField>,
    /// Instance fields declared by this class only (superclass fields are in its own dump).
    pub fields: Vec<FieldDecl>,
}

/// One heap-dump sub-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubRecord<'a> {
    Root(Root),
    Class(ClassDump),
    Instance {
        id: Id,
        class_id: Id,
        /// Field values: this class's fields, then its superclass's, and so on.
        fields: &'a [u8],
    },
    ObjectArray {
        id: Id,
        class_id: Id,
        /// `length × id size` bytes of element ids.
        elements: &'a [u8],
    },
    PrimitiveArray {
        id: Id,
        ty: BasicType,
        length: u32,
        /// Element bytes; `None` for Android's no-data arrays.
        data: Option<&'a [u8]>,
    },
    /// Android's heap-info marker and other sub-records that carry no objects.
    Other,
}

/// A STACK FRAME record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackFrame {
    pub id: Id,
    pub method_name: Id,
    pub signature: Id,
    pub source_file: Id,
    pub class_serial: u32,
    /// > 0 line number; 0 none; -1 unknown; -2 compiled; -3 native.
    pub line: i32,
}

/// Receives the records of a dump in file order.
pub trait Visitor<'a> {
    fn utf8(&mut self, _id: Id, _text: &'a [u8]) {}
    fn load_class(&mut self, _class_serial: u32, _class_id: Id, _name: Id) {}
    fn frame(&mut self, _frame: StackFrame) {}
    /// A stack trace; `frames` holds the raw frame ids (id size each), top frame first.
    fn trace(&mut self, _serial: u32, _thread_serial: u32, _frames: &'a [u8]) {}
    /// A HEAP_DUMP or HEAP_DUMP_SEGMENT record whose sub-records span `start..end` (read
    /// them with [`each_sub_record`]).
    fn segment(&mut self, _start: usize, _end: usize) {}
}

/// How often (in bytes of the dump) [`walk_records`] says how far it got.
const WALKED_STEP: usize = 16 << 20;

/// Walks the top-level records of the dump after the header; heap dump records are handed
/// over by their byte range without reading their sub-records. `walked(end)` hears, every
/// [`WALKED_STEP`] bytes and at the end, that the walk will not read below `end` again (the
/// caller may then release those pages: the walk touches the first bytes of every record).
pub fn walk_records<'a, V: Visitor<'a>>(
    data: &'a [u8],
    header: &Header,
    visitor: &mut V,
    walked: &mut dyn FnMut(usize),
) -> Result<(), HprofError> {
    let id_size = header.id_size;
    let ids = id_size.bytes();
    let mut cursor = Cursor::new(data, header.records_start, id_size);
    let mut reported = 0;
    // Whether a HEAP DUMP SEGMENT was read and no HEAP DUMP END since: HotSpot and ART close
    // every segmented dump with that record, so a dump that stops before it was cut off (at a
    // record boundary, where nothing else shows it) and may lack segments, the GC roots among
    // them.
    let mut segments_open = false;
    // Whether any heap dump record was read: without one the file holds no heap at all (a dump
    // cut before its first one, or a profile of another kind), which is an error, not an empty
    // heap.
    let mut heap_dumped = false;
    while !cursor.is_empty() {
        if cursor.pos() - reported >= WALKED_STEP {
            reported = cursor.pos();
            walked(reported);
        }
        let record_tag = cursor.u1("record tag")?;
        cursor.u4("record time")?;
        let length = cursor.u4("record length")? as usize;
        let body_start = cursor.pos();
        let body = cursor.take(length, "record body")?;
        let body_end = body_start + body.len();
        let mut rec = Cursor::new(&data[..body_end], body_start, id_size);
        match record_tag {
            tag::UTF8 => {
                let id = rec.id("string id")?;
                let text = rec.take(rec.remaining(), "string bytes")?;
                visitor.utf8(id, text);
            }
            tag::LOAD_CLASS => {
                let serial = rec.u4("class serial")?;
                let class_id = rec.id("class id")?;
                rec.u4("stack trace serial")?;
                let name = rec.id("class name id")?;
                check_length(&rec, body_end)?;
                visitor.load_class(serial, class_id, name);
            }
            tag::FRAME => {
                let frame = StackFrame {
                    id: rec.id("frame id")?,
                    method_name: rec.id("method name id")?,
                    signature: rec.id("method signature id")?,
                    source_file: rec.id("source file id")?,
                    class_serial: rec.u4("class serial")?,
                    line: rec.u4("line number")? as i32,
                };
                check_length(&rec, body_end)?;
                visitor.frame(frame);
            }
            tag::TRACE => {
                let serial = rec.u4("stack trace serial")?;
                let thread_serial = rec.u4("thread serial")?;
                let count = rec.u4("frame count")? as usize;
                let frames = rec.take(count.saturating_mul(ids), "stack trace frames")?;
                check_length(&rec, body_end)?;
                visitor.trace(serial, thread_serial, frames);
            }
            tag::HEAP_DUMP | tag::HEAP_DUMP_SEGMENT => {
                segments_open |= record_tag == tag::HEAP_DUMP_SEGMENT;
                heap_dumped = true;
                visitor.segment(body_start, body_end);
            }
            tag::HEAP_DUMP_END => segments_open = false,
            _ => {}
        }
    }
    walked(cursor.pos());
    if !heap_dumped {
        return Err(HprofError::new(cursor.pos() as u64, ErrorKind::NoHeapDump));
    }
    if segments_open {
        return Err(HprofError::new(
            cursor.pos() as u64,
            ErrorKind::Truncated {
                what: "the HEAP DUMP END record closing the heap dump segments",
                needed: 9,
                available: 0,
            },
        ));
    }
    Ok(())
}

/// Calls `each` with the offset and contents of every sub-record of the heap dump record
/// spanning `start..end`.
pub fn each_sub_record<'a>(
    data: &'a [u8],
    start: usize,
    end: usize,
    id_size: IdSize,
    mut each: impl FnMut(usize, SubRecord<'a>) -> Result<(), HprofError>,
) -> Result<(), HprofError> {
    let end = end.min(data.len());
    let mut cursor = Cursor::new(&data[..end], start, id_size);
    while !cursor.is_empty() {
        let offset = cursor.pos();
        let record = next_sub_record(&mut cursor)
            .map_err(|e| overrun_as_segment_error(e, data.len(), end))?;
        each(offset, record)?;
    }
    Ok(())
}

/// A truncation inside a segment that is not at the end of the file is a segment overrun.
fn overrun_as_segment_error(error: HprofError, file_len: usize, segment_end: usize) -> HprofError {
    match error.kind {
        ErrorKind::Truncated { .. } if segment_end < file_len => {
            HprofError::new(error.offset, ErrorKind::SegmentOverrun(segment_end as u64))
        }
        _ => error,
    }
}

fn check_length(rec: &Cursor<'_>, end: usize) -> Result<(), HprofError> {
    if rec.pos() == end {
        Ok(())
    } else {
        Err(rec.error(ErrorKind::Malformed(
            "record length does not match its contents",
        )))
    }
}

/// Parses the sub-record at the cursor.
pub fn next_sub_record<'a>(cursor: &mut Cursor<'a>) -> Result<SubRecord<'a>, HprofError> {
    let id_size = cursor.id_size();
    let sub_tag = cursor.u1("sub-record tag")?;
    let simple_root = |cursor: &mut Cursor<'a>, kind| -> Result<SubRecord<'a>, HprofError> {
        Ok(SubRecord::Root(Root {
            kind,
            object: cursor.id("root object id")?,
            thread_serial: None,
            frame: None,
            stack_trace: None,
        }))
    };
    Ok(match sub_tag {
        sub::ROOT_UNKNOWN => simple_root(cursor, RootKind::Unknown)?,
        sub::ROOT_STICKY_CLASS => simple_root(cursor, RootKind::StickyClass)?,
        sub::ROOT_MONITOR_USED => simple_root(cursor, RootKind::MonitorUsed)?,
        sub::ANDROID_ROOT_INTERNED_STRING => simple_root(cursor, RootKind::InternedString)?,
        sub::ANDROID_ROOT_FINALIZING => simple_root(cursor, RootKind::Finalizing)?,
        sub::ANDROID_ROOT_DEBUGGER => simple_root(cursor, RootKind::Debugger)?,
        sub::ANDROID_ROOT_REFERENCE_CLEANUP => simple_root(cursor, RootKind::ReferenceCleanup)?,
        sub::ANDROID_ROOT_VM_INTERNAL => simple_root(cursor, RootKind::VmInternal)?,
        sub::ANDROID_ROOT_UNREACHABLE => simple_root(cursor, RootKind::Unreachable)?,
        sub::ROOT_JNI_GLOBAL => {
            let object = cursor.id("root object id")?;
            cursor.id("JNI global ref id")?;
            SubRecord::Root(Root {
                kind: RootKind::JniGlobal,
                object,
                thread_serial: None,
                frame: None,
                stack_trace: None,
            })
        }
        sub::ROOT_JNI_LOCAL | sub::ROOT_JAVA_FRAME | sub::ANDROID_ROOT_JNI_MONITOR => {
            let kind = match sub_tag {
                sub::ROOT_JNI_LOCAL => RootKind::JniLocal,
                sub::ROOT_JAVA_FRAME => RootKind::JavaFrame,
                _ => RootKind::JniMonitor,
            };
            let object = cursor.id("root object id")?;
            let thread_serial = cursor.u4("thread serial")?;
            let frame = cursor.u4("frame number")? as i32;
            SubRecord::Root(Root {
                kind,
                object,
                thread_serial: Some(thread_serial),
                frame: (kind != RootKind::JniMonitor).then_some(frame),
                stack_trace: None,
            })
        }
        sub::ROOT_NATIVE_STACK | sub::ROOT_THREAD_BLOCK => {
            let kind = if sub_tag == sub::ROOT_NATIVE_STACK {
                RootKind::NativeStack
            } else {
                RootKind::ThreadBlock
            };
            let object = cursor.id("root object id")?;
            let thread_serial = cursor.u4("thread serial")?;
            SubRecord::Root(Root {
                kind,
                object,
                thread_serial: Some(thread_serial),
                frame: None,
                stack_trace: None,
            })
        }
        sub::ROOT_THREAD_OBJECT => {
            let object = cursor.id("thread object id")?;
            let thread_serial = cursor.u4("thread serial")?;
            let stack_trace = cursor.u4("stack trace serial")?;
            SubRecord::Root(Root {
                kind: RootKind::ThreadObject,
                object,
                thread_serial: Some(thread_serial),
                frame: None,
                stack_trace: Some(stack_trace),
            })
        }
        sub::CLASS_DUMP => SubRecord::Class(class_dump(cursor)?),
        sub::INSTANCE_DUMP => {
            // id, stack trace serial, class id, field byte count: one bounds check.
            let w = id_size.bytes();
            let head = cursor.take(2 * w + 8, "instance dump header")?;
            let length = be_u32(&head[2 * w + 4..]) as usize;
            let fields = cursor.take(length, "instance field values")?;
            SubRecord::Instance {
                id: id_size.decode(head),
                class_id: id_size.decode(&head[w + 4..]),
                fields,
            }
        }
        sub::OBJECT_ARRAY_DUMP => {
            // id, stack trace serial, length, array class id.
            let w = id_size.bytes();
            let head = cursor.take(2 * w + 8, "object array header")?;
            let length = be_u32(&head[w + 4..]) as usize;
            let elements = cursor.take(length.saturating_mul(w), "array elements")?;
            SubRecord::ObjectArray {
                id: id_size.decode(head),
                class_id: id_size.decode(&head[w + 8..]),
                elements,
            }
        }
        sub::PRIMITIVE_ARRAY_DUMP | sub::ANDROID_PRIMITIVE_ARRAY_NODATA => {
            // id, stack trace serial, length, element type.
            let w = id_size.bytes();
            let head = cursor.take(w + 9, "primitive array header")?;
            let length = be_u32(&head[w + 4..]);
            let code = head[w + 8];
            let ty = BasicType::from_code(code)
                .filter(|ty| *ty != BasicType::Object)
                .ok_or(HprofError::new(
                    (cursor.pos() - 1) as u64,
                    ErrorKind::BadType(code, "primitive array type"),
                ))?;
            let data = if sub_tag == sub::PRIMITIVE_ARRAY_DUMP {
                let bytes = (length as usize).saturating_mul(ty.dump_size(id_size));
                Some(cursor.take(bytes, "array elements")?)
            } else {
                None
            };
            SubRecord::PrimitiveArray {
                id: id_size.decode(head),
                ty,
                length,
                data,
            }
        }
        sub::ANDROID_HEAP_DUMP_INFO => {
            cursor.u4("heap id")?;
            cursor.id("heap name id")?;
            SubRecord::Other
        }
        other => {
            let pos = cursor.pos() - 1;
            return Err(HprofError::new(
                pos as u64,
                ErrorKind::UnknownSubRecord(other),
            ));
        }
    })
}

/// The big-endian u32 at the start of `raw` (0 if `raw` is too short).
#[inline]
fn be_u32(raw: &[u8]) -> u32 {
    raw.first_chunk::<4>().map_or(0, |b| u32::from_be_bytes(*b))
}

/// Reads a value of type `ty`: the id for references, the raw big-endian bits otherwise.
fn value(cursor: &mut Cursor<'_>, ty: BasicType) -> Result<u64, HprofError> {
    let size = ty.dump_size(cursor.id_size());
    let raw = cursor.take(size, "field value")?;
    Ok(raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

fn class_dump(cursor: &mut Cursor<'_>) -> Result<ClassDump, HprofError> {
    let id = cursor.id("class id")?;
    cursor.u4("stack trace serial")?;
    let super_id = cursor.id("superclass id")?;
    let loader_id = cursor.id("class loader id")?;
    let signers_id = cursor.id("signers id")?;
    let protection_domain_id = cursor.id("protection domain id")?;
    cursor.id("reserved id")?;
    cursor.id("reserved id")?;
    let instance_size = cursor.u4("instance size")?;
    let constants = cursor.u2("constant pool size")?;
    for _ in 0..constants {
        cursor.u2("constant pool index")?;
        let ty = read_type(cursor, "constant pool entry")?;
        value(cursor, ty)?;
    }
    let static_count = cursor.u2("static field count")?;
    let mut statics = Vec::with_capacity(usize::from(static_count));
    for _ in 0..static_count {
        let name = cursor.id("static field name id")?;
        let ty = read_type(cursor, "static field")?;
        statics.push(StaticField {
            name,
            ty,
            value: value(cursor, ty)?,
        });
    }
    let field_count = cursor.u2("instance field count")?;
    let mut fields = Vec::with_capacity(usize::from(field_count));
    for _ in 0..field_count {
        let name = cursor.id("instance field name id")?;
        let ty = read_type(cursor, "instance field")?;
        fields.push(FieldDecl { name, ty });
    }
    Ok(ClassDump {
        id,
        super_id,
        loader_id,
        signers_id,
        protection_domain_id,
        instance_size,
        statics,
        fields,
    })
}

/// Iterates the ids packed in `raw` (object array elements, stack trace frames).
pub fn ids(raw: &[u8], id_size: IdSize) -> impl Iterator<Item = Id> + '_ {
    raw.chunks_exact(id_size.bytes())
        .map(move |chunk| id_size.decode(chunk))
}
