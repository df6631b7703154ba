//! Pass 1: strings, classes, stack traces, GC roots and the id of every object in file order.
//!
//! The top-level records are walked once on the calling thread (they are small: the heap dump
//! records are only located); the heap dump records are then scanned on every core, each worker
//! taking a contiguous group, and the groups' results are appended in file order.

use std::ops::Range;

use rustc_hash::FxHashMap;

use crate::Observer;
use crate::bytes::{Id, IdSize};
use crate::error::{ErrorKind, HprofError};
use crate::format::{BasicType, Header};
use crate::layout::LayoutVotes;
use crate::parallel::{self, Segment, Shared};
use crate::walk::{ClassDump, Root, StackFrame, SubRecord, Visitor, walk_records};

/// Where the sub-record of an object starts, to re-read it later without a third full pass.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    /// Ordinal of the object at `offset`.
    pub first_ordinal: u32,
    pub offset: usize,
    pub segment_end: usize,
}

/// About every `CHECKPOINT_EVERY`-th object's position is remembered (see [`crate::locate`]).
pub const CHECKPOINT_EVERY: u32 = 64;

/// What pass 1 learns. Object ordinal 0 is the graph's synthetic root (id 0).
#[derive(Debug)]
pub struct Scan<'a> {
    pub id_size: IdSize,
    pub strings: FxHashMap<Id, &'a [u8]>,
    /// LOAD_CLASS: class object id → name string id.
    pub class_names: FxHashMap<Id, Id>,
    /// LOAD_CLASS: class serial → class object id.
    pub class_serials: FxHashMap<u32, Id>,
    pub frames: FxHashMap<Id, StackFrame>,
    /// STACK TRACE serial → raw frame ids (top frame first).
    pub traces: FxHashMap<u32, &'a [u8]>,
    pub class_dumps: Vec<ClassDump>,
    pub roots: Vec<Root>,
    /// Object id per ordinal, in file order; `ids[0]` is the synthetic root's 0.
    pub ids: Vec<u64>,
    /// The groups of heap dump records pass 1 split the work into, with what pass 2 needs to
    /// size each group's edges (pass 2 uses the same groups).
    pub groups: Vec<GroupStats>,
    /// Sorted by ordinal.
    pub checkpoints: Vec<Checkpoint>,
    /// Every heap dump record, in file order, and the ordinal of its first object.
    pub segments: Vec<Segment>,
    pub segment_first_ordinal: Vec<u32>,
    /// Lowest and highest object id (addresses), for the compressed-oops guess.
    pub id_range: Option<(u64, u64)>,
    /// How well each 64-bit HotSpot layout explains the gaps after arrays.
    pub layout_votes: LayoutVotes,
}

impl<'a> Visitor<'a> for Scan<'a> {
    fn utf8(&mut self, id: Id, text: &'a [u8]) {
        self.strings.insert(id, text);
    }

    fn load_class(&mut self, class_serial: u32, class_id: Id, name: Id) {
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
        self.segments.push(Segment { start, end });
    }
}

/// Runs pass 1 with up to `workers` threads; `observer` hears how far the top-level record
/// walk got, then each finished byte range of the heap dump records and the bytes read so far.
pub fn scan<'a>(
    data: &'a [u8],
    header: &Header,
    workers: usize,
    observer: &mut dyn Observer,
) -> Result<Scan<'a>, HprofError> {
    let id_size = header.id_size;
    let mut scan = Scan {
        id_size,
        strings: FxHashMap::default(),
        class_names: FxHashMap::default(),
        class_serials: FxHashMap::default(),
        frames: FxHashMap::default(),
        traces: FxHashMap::default(),
        class_dumps: Vec::new(),
        roots: Vec::new(),
        ids: vec![0],
        groups: Vec::new(),
        checkpoints: Vec::new(),
        segments: Vec::new(),
        segment_first_ordinal: Vec::new(),
        id_range: None,
        layout_votes: LayoutVotes::default(),
    };
    walk_records(data, header, &mut scan, &mut |end| {
        observer.records_walked(end)
    })?;
    let segments = std::mem::take(&mut scan.segments);
    let groups: Vec<HeapScan> = parallel::split_segments(&segments, workers)
        .into_iter()
        .enumerate()
        .map(|(at, range)| HeapScan::new(&segments, range, at == 0))
        .collect();
    let total = data.len();
    let mut groups = parallel::run(
        groups,
        |group, shared| group.run(data, id_size, shared),
        &mut |done, read| observer.consumed(done, read, total),
    )?
    .into_iter();
    // Ordinals are u32 (the graph's node index); more objects cannot be represented.
    let objects: u64 = groups.as_slice().iter().map(|g| g.objects).sum();
    if objects >= u64::from(u32::MAX) - 1 {
        return Err(HprofError::new(
            data.len() as u64,
            ErrorKind::Malformed("the dump has more than 2^32 - 2 objects"),
        ));
    }
    if let Some(first) = groups.next() {
        // The first group's ids (with the root's slot) become the id column; the others are
        // appended, each freed as soon as it is copied.
        let rest: Vec<HeapScan> = groups.collect();
        let mut first = first;
        scan.ids = std::mem::take(&mut first.ids);
        scan.ids.reserve(rest.iter().map(|g| g.ids.len()).sum());
        scan.append(first, 1);
        for group in rest {
            let base = scan.ids.len() as u32;
            scan.ids.extend_from_slice(&group.ids);
            scan.append(group, base);
        }
    }
    scan.segments = segments;
    Ok(scan)
}

impl Scan<'_> {
    /// Appends one group's results (groups arrive in file order; their ids are already in
    /// the id column from ordinal `base` on).
    fn append(&mut self, group: HeapScan<'_>, base: u32) {
        let mut first = base;
        for count in &group.segment_counts {
            self.segment_first_ordinal.push(first);
            first += count;
        }
        self.checkpoints
            .extend(group.checkpoints.into_iter().map(|c| Checkpoint {
                first_ordinal: c.first_ordinal + base,
                ..c
            }));
        self.groups.push(GroupStats {
            segments: group.range,
            objects: group.objects,
            instances_per_class: group.instances_per_class,
            array_elements: group.array_elements,
            class_dumps: group.class_dumps.len() as u64,
            static_fields: group.static_fields,
        });
        self.roots.extend(group.roots);
        self.class_dumps.extend(group.class_dumps);
        self.layout_votes.merge(&group.layout_votes);
        if let Some((lo, hi)) = group.id_range {
            self.id_range = Some(match self.id_range {
                None => (lo, hi),
                Some((a, b)) => (a.min(lo), b.max(hi)),
            });
        }
    }
}

/// What pass 2 needs to know about one group of heap dump records to bound its edges.
#[derive(Debug, Clone, Default)]
pub struct GroupStats {
    /// Indices into [`Scan::segments`].
    pub segments: Range<usize>,
    pub objects: u64,
    pub instances_per_class: FxHashMap<Id, u64>,
    pub array_elements: u64,
    /// Class dumps of the group, and their static fields.
    pub class_dumps: u64,
    pub static_fields: u64,
}

/// The heap part of pass 1 for one group of heap dump records.
#[derive(Debug)]
struct HeapScan<'g> {
    segments: &'g [Segment],
    range: Range<usize>,
    /// Objects per segment of the group.
    segment_counts: Vec<u32>,
    /// Ids in file order (the first group's starts with the root's 0).
    ids: Vec<u64>,
    /// Local ordinals: the group's first object is 0.
    checkpoints: Vec<Checkpoint>,
    /// Objects seen so far (u64: the u32 ordinal limit is checked once the groups are done).
    objects: u64,
    roots: Vec<Root>,
    class_dumps: Vec<ClassDump>,
    instances_per_class: FxHashMap<Id, u64>,
    /// The current run of instances of one class, counted before it goes to the map.
    run: (Id, u64),
    array_elements: u64,
    static_fields: u64,
    id_range: Option<(u64, u64)>,
    layout_votes: LayoutVotes,
}

impl<'g> HeapScan<'g> {
    fn new(all: &'g [Segment], range: Range<usize>, with_root: bool) -> Self {
        HeapScan {
            segments: &all[range.clone()],
            range,
            segment_counts: Vec::new(),
            ids: if with_root { vec![0] } else { Vec::new() },
            checkpoints: Vec::new(),
            objects: 0,
            roots: Vec::new(),
            class_dumps: Vec::new(),
            instances_per_class: FxHashMap::default(),
            run: (Id::NULL, 0),
            array_elements: 0,
            static_fields: 0,
            id_range: None,
            layout_votes: LayoutVotes::default(),
        }
    }

    fn run(&mut self, data: &[u8], id_size: IdSize, shared: &Shared<'_>) -> Result<(), HprofError> {
        let segments = self.segments;
        self.segment_counts = vec![0; segments.len()];
        shared.each_sub_record(data, segments, id_size, |offset, at, segment, record| {
            let before = self.objects;
            self.sub_record(offset, segment.end, record, id_size);
            // A segment is at most 4 GiB of sub-records of 10+ bytes: its count fits a u32.
            self.segment_counts[at] += (self.objects - before) as u32;
            Ok(())
        })?;
        self.flush_run();
        Ok(())
    }

    fn object(&mut self, offset: usize, segment_end: usize, Id(id): Id) {
        if self.objects.is_multiple_of(u64::from(CHECKPOINT_EVERY)) {
            self.checkpoints.push(Checkpoint {
                // Local until `Scan::append`, which runs only when every ordinal fits a u32.
                first_ordinal: self.objects as u32,
                offset,
                segment_end,
            });
        }
        self.objects += 1;
        self.ids.push(id);
        self.id_range = Some(match self.id_range {
            None => (id, id),
            Some((lo, hi)) => (lo.min(id), hi.max(id)),
        });
    }

    fn count_instance(&mut self, class_id: Id) {
        if self.run.0 == class_id {
            self.run.1 += 1;
            return;
        }
        self.flush_run();
        self.run = (class_id, 1);
    }

    fn flush_run(&mut self) {
        let (class_id, count) = std::mem::take(&mut self.run);
        if count > 0 {
            *self.instances_per_class.entry(class_id).or_default() += count;
        }
    }

    fn sub_record(
        &mut self,
        offset: usize,
        segment_end: usize,
        record: SubRecord<'_>,
        id_size: IdSize,
    ) {
        match record {
            SubRecord::Root(root) => self.roots.push(root),
            SubRecord::Class(class) => {
                self.object(offset, segment_end, class.id);
                self.layout_votes.object(class.id.0);
                self.static_fields += class.statics.len() as u64;
                self.class_dumps.push(class);
            }
            SubRecord::Instance { id, class_id, .. } => {
                self.object(offset, segment_end, id);
                self.layout_votes.object(id.0);
                self.count_instance(class_id);
            }
            SubRecord::ObjectArray { id, elements, .. } => {
                self.object(offset, segment_end, id);
                let length = (elements.len() / id_size.bytes()) as u64;
                self.layout_votes.array(id.0, BasicType::Object, length);
                self.array_elements += length;
            }
            SubRecord::PrimitiveArray { id, ty, length, .. } => {
                self.object(offset, segment_end, id);
                self.layout_votes.array(id.0, ty, u64::from(length));
            }
            SubRecord::Other => {}
        }
    }
}
