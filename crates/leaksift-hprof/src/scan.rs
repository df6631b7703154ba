//! Pass 1: strings, classes, stack traces, GC roots and the id of every object in file order.

use rustc_hash::FxHashMap;

use crate::bytes::IdSize;
use crate::error::HprofError;
use crate::walk::{ClassDump, Root, StackFrame, SubRecord, Visitor};

/// Where the sub-record of an object starts, to re-read it later without a third full pass.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    pub offset: usize,
    pub segment_end: usize,
}

/// A HEAP_DUMP(_SEGMENT) body and the ordinal of its first object.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
    pub first_ordinal: u32,
}

/// Every `CHECKPOINT_EVERY`-th object's position is remembered (see [`crate::locate`]).
pub const CHECKPOINT_EVERY: usize = 64;

/// What pass 1 learns. Object ordinal 0 is the graph's synthetic root (id 0).
#[derive(Debug)]
pub struct Scan<'a> {
    pub id_size: IdSize,
    pub strings: FxHashMap<u64, &'a [u8]>,
    /// LOAD_CLASS: class object id → name string id.
    pub class_names: FxHashMap<u64, u64>,
    /// LOAD_CLASS: class serial → class object id.
    pub class_serials: FxHashMap<u32, u64>,
    pub frames: FxHashMap<u64, StackFrame>,
    /// STACK TRACE serial → raw frame ids (top frame first).
    pub traces: FxHashMap<u32, &'a [u8]>,
    pub class_dumps: Vec<ClassDump>,
    pub roots: Vec<Root>,
    /// Object id per ordinal, in file order; `ids[0]` is the synthetic root's 0.
    pub ids: Vec<u64>,
    /// Instances per class id (to size the edge columns before pass 2).
    pub instances_per_class: FxHashMap<u64, u64>,
    /// Object-array elements in the whole dump (also for sizing).
    pub array_elements: u64,
    pub checkpoints: Vec<Checkpoint>,
    /// Every heap dump record, in file order.
    pub segments: Vec<Segment>,
    segment_end: usize,
    /// Lowest and highest object id (addresses), for the compressed-oops guess.
    pub id_range: Option<(u64, u64)>,
    last_class: (u64, u64),
}

impl<'a> Scan<'a> {
    pub fn new(id_size: IdSize) -> Self {
        Scan {
            id_size,
            strings: FxHashMap::default(),
            class_names: FxHashMap::default(),
            class_serials: FxHashMap::default(),
            frames: FxHashMap::default(),
            traces: FxHashMap::default(),
            class_dumps: Vec::new(),
            roots: Vec::new(),
            ids: vec![0],
            instances_per_class: FxHashMap::default(),
            array_elements: 0,
            checkpoints: Vec::new(),
            segments: Vec::new(),
            segment_end: 0,
            id_range: None,
            last_class: (0, 0),
        }
    }

    fn object(&mut self, offset: usize, id: u64) {
        if (self.ids.len() - 1) % CHECKPOINT_EVERY == 0 {
            self.checkpoints.push(Checkpoint {
                offset,
                segment_end: self.segment_end,
            });
        }
        self.ids.push(id);
        self.id_range = Some(match self.id_range {
            None => (id, id),
            Some((lo, hi)) => (lo.min(id), hi.max(id)),
        });
    }

    fn count_instance(&mut self, class_id: u64) {
        // Instances of one class often come in runs: count the run, flush on a class change.
        if self.last_class.0 == class_id {
            self.last_class.1 += 1;
            return;
        }
        self.flush_instance_run();
        self.last_class = (class_id, 1);
    }

    fn flush_instance_run(&mut self) {
        let (class_id, run) = std::mem::take(&mut self.last_class);
        if run > 0 {
            *self.instances_per_class.entry(class_id).or_default() += run;
        }
    }

    /// Completes the scan after the walk.
    pub fn finish(&mut self) {
        self.flush_instance_run();
    }
}

impl<'a> Visitor<'a> for Scan<'a> {
    fn utf8(&mut self, id: u64, text: &'a [u8]) {
        self.strings.insert(id, text);
    }

    fn load_class(&mut self, class_serial: u32, class_id: u64, name: u64) {
        self.class_names.insert(class_id, name);
        self.class_serials.insert(class_serial, class_id);
    }

    fn frame(&mut self, frame: StackFrame) {
        self.frames.insert(frame.id, frame);
    }

    fn trace(&mut self, serial: u32, _thread_serial: u32, frames: &'a [u8]) {
        self.traces.insert(serial, frames);
    }

    fn segment(&mut self, start: usize, end: usize) {
        self.segment_end = end;
        self.segments.push(Segment {
            start,
            end,
            first_ordinal: self.ids.len() as u32,
        });
    }

    fn sub_record(&mut self, offset: usize, record: SubRecord<'a>) -> Result<(), HprofError> {
        match record {
            SubRecord::Root(root) => self.roots.push(root),
            SubRecord::Class(class) => {
                self.object(offset, class.id);
                self.class_dumps.push(class);
            }
            SubRecord::Instance { id, class_id, .. } => {
                self.object(offset, id);
                self.count_instance(class_id);
            }
            SubRecord::ObjectArray { id, elements, .. } => {
                self.object(offset, id);
                self.array_elements += (elements.len() / self.id_size.bytes()) as u64;
            }
            SubRecord::PrimitiveArray { id, .. } => self.object(offset, id),
            SubRecord::Other => {}
        }
        Ok(())
    }
}
