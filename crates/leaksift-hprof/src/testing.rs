//! A writer of small HPROF dumps for the tests: hand-built shapes, both id sizes, both heap record
//! kinds, Android tags.

use crate::format::sub;

/// Builds an HPROF file in memory.
#[derive(Debug)]
pub struct DumpWriter {
    records: Vec<u8>,
    heap: Vec<u8>,
    id_size: usize,
    version: &'static str,
    /// A segment was closed by [`Self::cut`].
    segmented: bool,
}

/// Field type codes.
pub const OBJECT: u8 = 2;
pub const BYTE: u8 = 8;

impl DumpWriter {
    pub fn new(version: &'static str, id_size: usize) -> Self {
        DumpWriter {
            records: Vec::new(),
            heap: Vec::new(),
            id_size,
            version,
            segmented: false,
        }
    }

    fn put_id(out: &mut Vec<u8>, id_size: usize, id: u64) {
        if id_size == 4 {
            out.extend_from_slice(&(id as u32).to_be_bytes());
        } else {
            out.extend_from_slice(&id.to_be_bytes());
        }
    }

    fn record(&mut self, tag: u8, body: &[u8]) {
        self.records.push(tag);
        self.records.extend_from_slice(&0u32.to_be_bytes());
        self.records
            .extend_from_slice(&(body.len() as u32).to_be_bytes());
        self.records.extend_from_slice(body);
    }

    /// A UTF8 record.
    pub fn string(&mut self, id: u64, text: &str) -> &mut Self {
        self.string_bytes(id, text.as_bytes())
    }

    /// A UTF8 record with these bytes (modified UTF-8 as HotSpot writes it, or malformed).
    pub fn string_bytes(&mut self, id: u64, bytes: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        Self::put_id(&mut body, self.id_size, id);
        body.extend_from_slice(bytes);
        self.record(0x01, &body);
        self
    }

    /// A STACK FRAME record (no method signature).
    pub fn frame(
        &mut self,
        frame_id: u64,
        method_name: u64,
        source_file: u64,
        class_serial: u32,
        line: i32,
    ) -> &mut Self {
        let mut body = Vec::new();
        for id in [frame_id, method_name, 0, source_file] {
            Self::put_id(&mut body, self.id_size, id);
        }
        body.extend_from_slice(&class_serial.to_be_bytes());
        body.extend_from_slice(&line.to_be_bytes());
        self.record(crate::format::tag::FRAME, &body);
        self
    }

    /// A STACK TRACE record with these frame ids, innermost first.
    pub fn trace(&mut self, serial: u32, thread_serial: u32, frames: &[u64]) -> &mut Self {
        let mut body = serial.to_be_bytes().to_vec();
        body.extend_from_slice(&thread_serial.to_be_bytes());
        body.extend_from_slice(&(frames.len() as u32).to_be_bytes());
        for &frame in frames {
            Self::put_id(&mut body, self.id_size, frame);
        }
        self.record(crate::format::tag::TRACE, &body);
        self
    }

    /// A LOAD CLASS record.
    pub fn load_class(&mut self, serial: u32, class_id: u64, name_id: u64) -> &mut Self {
        let mut body = serial.to_be_bytes().to_vec();
        Self::put_id(&mut body, self.id_size, class_id);
        body.extend_from_slice(&0u32.to_be_bytes());
        Self::put_id(&mut body, self.id_size, name_id);
        self.record(0x02, &body);
        self
    }

    fn heap_id(&mut self, id: u64) {
        Self::put_id(&mut self.heap, self.id_size, id);
    }

    /// A GC root sub-record of a kind whose body is just the object id.
    pub fn root(&mut self, tag: u8, object: u64) -> &mut Self {
        self.heap.push(tag);
        self.heap_id(object);
        self
    }

    /// A ROOT THREAD OBJECT sub-record.
    pub fn thread_root(&mut self, object: u64, thread_serial: u32, trace: u32) -> &mut Self {
        self.heap.push(sub::ROOT_THREAD_OBJECT);
        self.heap_id(object);
        self.heap.extend_from_slice(&thread_serial.to_be_bytes());
        self.heap.extend_from_slice(&trace.to_be_bytes());
        self
    }

    /// Raw bytes in the heap dump body (for malformed input).
    pub fn raw_heap(&mut self, bytes: &[u8]) -> &mut Self {
        self.heap.extend_from_slice(bytes);
        self
    }

    /// A CLASS DUMP with instance fields `(name id, type)` and object statics `(name id, value)`.
    pub fn class(
        &mut self,
        id: u64,
        super_id: u64,
        fields: &[(u64, u8)],
        statics: &[(u64, u64)],
    ) -> &mut Self {
        self.heap.push(sub::CLASS_DUMP);
        self.heap_id(id);
        self.heap.extend_from_slice(&0u32.to_be_bytes());
        self.heap_id(super_id);
        for _ in 0..5 {
            self.heap_id(0);
        }
        self.heap.extend_from_slice(&0u32.to_be_bytes());
        self.heap.extend_from_slice(&0u16.to_be_bytes());
        self.heap
            .extend_from_slice(&(statics.len() as u16).to_be_bytes());
        for &(name, value) in statics {
            self.heap_id(name);
            self.heap.push(OBJECT);
            self.heap_id(value);
        }
        self.heap
            .extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for &(name, ty) in fields {
            self.heap_id(name);
            self.heap.push(ty);
        }
        self
    }

    /// An INSTANCE DUMP whose field values are object ids (one per reference field, in order).
    pub fn instance(&mut self, id: u64, class_id: u64, refs: &[u64]) -> &mut Self {
        self.heap.push(sub::INSTANCE_DUMP);
        self.heap_id(id);
        self.heap.extend_from_slice(&0u32.to_be_bytes());
        self.heap_id(class_id);
        let len = refs.len() * self.id_size;
        self.heap.extend_from_slice(&(len as u32).to_be_bytes());
        for &r in refs {
            self.heap_id(r);
        }
        self
    }

    /// An INSTANCE DUMP with its field bytes as given.
    pub fn instance_bytes(&mut self, id: u64, class_id: u64, fields: &[u8]) -> &mut Self {
        self.heap.push(sub::INSTANCE_DUMP);
        self.heap_id(id);
        self.heap.extend_from_slice(&0u32.to_be_bytes());
        self.heap_id(class_id);
        self.heap
            .extend_from_slice(&(fields.len() as u32).to_be_bytes());
        self.heap.extend_from_slice(fields);
        self
    }

    /// A PRIMITIVE ARRAY DUMP of `len` elements of basic type `ty` with the element bytes given.
    pub fn primitive_array(&mut self, id: u64, ty: u8, len: u32, data: &[u8]) -> &mut Self {
        self.heap.push(sub::PRIMITIVE_ARRAY_DUMP);
        self.heap_id(id);
        self.heap.extend_from_slice(&0u32.to_be_bytes());
        self.heap.extend_from_slice(&len.to_be_bytes());
        self.heap.push(ty);
        self.heap.extend_from_slice(data);
        self
    }

    /// An OBJECT ARRAY DUMP.
    pub fn object_array(&mut self, id: u64, class_id: u64, elements: &[u64]) -> &mut Self {
        self.heap.push(sub::OBJECT_ARRAY_DUMP);
        self.heap_id(id);
        self.heap.extend_from_slice(&0u32.to_be_bytes());
        self.heap
            .extend_from_slice(&(elements.len() as u32).to_be_bytes());
        self.heap_id(class_id);
        for &e in elements {
            self.heap_id(e);
        }
        self
    }

    /// A PRIMITIVE ARRAY DUMP of bytes.
    pub fn byte_array(&mut self, id: u64, len: usize) -> &mut Self {
        self.primitive_array(id, BYTE, len as u32, &vec![0u8; len])
    }

    /// The file: header, records (including segments closed by [`Self::cut`]), then the rest of
    /// the heap in one record with `tag` (HEAP_DUMP or HEAP_DUMP_SEGMENT), and after segments
    /// the HEAP DUMP END record that closes them, as HotSpot writes it.
    pub fn finish(&mut self, tag: u8) -> Vec<u8> {
        let mut out = format!("JAVA PROFILE {}\0", self.version).into_bytes();
        out.extend_from_slice(&(self.id_size as u32).to_be_bytes());
        out.extend_from_slice(&0u64.to_be_bytes());
        out.extend_from_slice(&self.records);
        let heap = std::mem::take(&mut self.heap);
        out.push(tag);
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&(heap.len() as u32).to_be_bytes());
        out.extend_from_slice(&heap);
        if tag == crate::format::tag::HEAP_DUMP_SEGMENT || self.segmented {
            out.push(crate::format::tag::HEAP_DUMP_END);
            out.extend_from_slice(&[0; 8]);
        }
        out
    }

    /// Closes the current heap segment (so the next sub-records go to a new one).
    pub fn cut(&mut self) -> &mut Self {
        let heap = std::mem::take(&mut self.heap);
        self.record(crate::format::tag::HEAP_DUMP_SEGMENT, &heap);
        self.segmented = true;
        self
    }
}
