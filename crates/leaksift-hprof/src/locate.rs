//! Re-reading single objects after the passes, from the checkpoints pass 1 left about every 64
//! objects.

use std::cell::Cell;

use crate::bytes::Cursor;
use crate::error::HprofError;
use crate::format::{Header, tag};
use crate::scan::Checkpoint;
use crate::walk::{SubRecord, next_sub_record};

/// Random access to objects by ordinal (≥ 1) at the cost of walking at most 63 objects (and
/// the GC roots between them). All lookups together walk at most a budget of sub-records, so
/// a hostile dump (millions of threads, millions of roots between objects) stays linear.
#[derive(Debug)]
pub struct Locator<'d, 'c> {
    data: &'d [u8],
    header: &'c Header,
    checkpoints: &'c [Checkpoint],
    budget: Cell<usize>,
}

/// Sub-records all lookups of one [`Locator`] may walk.
const WALK_BUDGET: usize = 1 << 24;

impl<'d, 'c> Locator<'d, 'c> {
    pub fn new(data: &'d [u8], header: &'c Header, checkpoints: &'c [Checkpoint]) -> Self {
        Locator {
            data,
            header,
            checkpoints,
            budget: Cell::new(WALK_BUDGET),
        }
    }

    /// The sub-record of object `ordinal`, or `None` if there is no such object (or the walk
    /// budget is spent).
    pub fn object(&self, ordinal: u32) -> Result<Option<SubRecord<'d>>, HprofError> {
        let after = self
            .checkpoints
            .partition_point(|c| c.first_ordinal <= ordinal);
        let Some(checkpoint) = after.checked_sub(1).and_then(|at| self.checkpoints.get(at)) else {
            return Ok(None);
        };
        let mut skip = ordinal - checkpoint.first_ordinal;
        let id_size = self.header.id_size;
        let mut segment_end = checkpoint.segment_end.min(self.data.len());
        let mut cursor = Cursor::new(&self.data[..segment_end], checkpoint.offset, id_size);
        loop {
            if cursor.is_empty() {
                // Move on to the next heap dump segment.
                let mut records = Cursor::new(self.data, segment_end, id_size);
                loop {
                    if records.is_empty() {
                        return Ok(None);
                    }
                    let record_tag = records.u1("record tag")?;
                    records.u4("record time")?;
                    let length = records.u4("record length")? as usize;
                    let start = records.pos();
                    records.take(length, "record body")?;
                    if matches!(record_tag, tag::HEAP_DUMP | tag::HEAP_DUMP_SEGMENT) {
                        segment_end = records.pos();
                        cursor = Cursor::new(&self.data[..segment_end], start, id_size);
                        break;
                    }
                }
                continue;
            }
            let Some(left) = self.budget.get().checked_sub(1) else {
                return Ok(None);
            };
            self.budget.set(left);
            let record = next_sub_record(&mut cursor)?;
            if matches!(record, SubRecord::Root(_) | SubRecord::Other) {
                continue;
            }
            if skip == 0 {
                return Ok(Some(record));
            }
            skip -= 1;
        }
    }
}
