//! Java HPROF heap dump reader: builds the format-neutral heap graph with MAT semantics.
//!
//! Reads HPROF 1.0.1 and 1.0.2 (HotSpot `jmap`, `jcmd GC.heap_dump`, `HeapDumpOnOutOfMemoryError`)
//! and tolerates Android's 1.0.3 extra tags; 4- and 8-byte identifiers; HEAP_DUMP and
//! HEAP_DUMP_SEGMENT records; gzip input (`jcmd GC.heap_dump -gz=N`, concatenated members).
//!
//! Two passes over the bytes, in bounded memory:
//! 1. `scan`: strings, classes, stack traces, GC roots and the id of every object in file order
//!    (an object's ordinal is its position in the file);
//! 2. `build`: ids are resolved to ordinals through `ids::IdIndex` (a bitmap of the address
//!    range with each word's first ordinal when the ids are dense, a bucket table over a sorted
//!    permutation otherwise; no hash map of objects) and the graph's CSR columns are appended
//!    in order.
//!
//! MAT's semantics: typed GC roots; thread-held roots (Java and JNI locals, native stack, thread
//! block) hang off their thread object so a thread retains its locals; `Reference.referent`
//! becomes a non-essential weak edge and `Finalizer`'s unfinalized chain a non-essential field
//! edge (neither counts for dominators or paths); class objects hold their statics, superclass,
//! loader, signers and protection domain; every object references its class; instance fields are
//! decoded through the superclass chain. Shallow sizes follow [`SizeRule`].

// REQUESTS FROM h5 (HPROF) TO THE HEAP COMMANDS: 1–6 done by h6 — `paths --id` takes `0x…`;
// HPROF ids print as `@0x…` (`views::Analysis::describe`, `id_hex` in JSON); threads ranked with
// `thread_retention` in `cmd/heap/threads.rs`; a closed stdout ends quietly (`output.rs`); garbage
// is discarded as MAT does (`reachability`); the HPROF `diff` has retained growth per class.

mod build;
mod bytes;
mod error;
mod format;
mod ids;
mod layout;
mod locate;
mod mutf8;
mod parallel;
mod reachability;
mod scan;
mod source;
mod strings;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod threads;
mod walk;

use leaksift_heap::HeapGraph;

pub use build::BuildStats;
pub use error::{ErrorKind, HprofError};
pub use layout::SizeRule;
pub use reachability::{Unreachable, unreachable_bits};
pub use source::DumpFile;
pub use strings::{DuplicateString, duplicate_strings};
pub use threads::{FrameRetention, ThreadFrame, ThreadRetention, ThreadStack, thread_retention};

/// Facts about a dump that the graph does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpInfo {
    /// HPROF version: "1.0.1", "1.0.2" or "1.0.3".
    pub version: String,
    /// Identifier size in bytes (4 or 8).
    pub id_size: u8,
    /// When the dump was written, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The shallow-size rule used (header sizes, reference size, compressed oops guess).
    pub sizes: SizeRule,
    /// Objects in the dump (classes and arrays included, the synthetic root excluded).
    pub objects: u64,
    /// CLASS_DUMP records.
    pub classes: u64,
    /// GC root sub-records.
    pub gc_roots: u64,
    pub stats: BuildStats,
}

impl DumpInfo {
    /// When the dump was written, as `YYYY-MM-DD HH:MM:SS UTC`.
    pub fn written_utc(&self) -> String {
        let seconds = self.timestamp_ms / 1000;
        let (days, rest) = (seconds / 86_400, seconds % 86_400);
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        )
    }
}

/// A dump read into a heap graph, with its threads.
#[derive(Debug)]
pub struct HprofDump {
    pub graph: HeapGraph,
    pub info: DumpInfo,
    /// Threads with their stacks and the objects their frames hold.
    pub threads: Vec<ThreadStack>,
    /// Objects no GC root reaches (garbage in a non-live dump): they stay in the graph without
    /// retaining anything, and MAT leaves them out of every analysis.
    pub unreachable: Unreachable,
}

/// A dump read into a heap graph that still holds its garbage: what [`HprofDump`] is before
/// MAT's garbage rule is applied, by [`UnsweptDump::sweep`] or beside the dominator search
/// ([`unreachable_bits`], [`Unreachable::discard`]).
#[derive(Debug)]
pub struct UnsweptDump {
    pub graph: HeapGraph,
    pub info: DumpInfo,
    pub threads: Vec<ThreadStack>,
}

impl UnsweptDump {
    /// Finds the objects no GC root reaches and discards them ([`Unreachable::discard`]).
    pub fn sweep(mut self, observer: &mut dyn Observer) -> HprofDump {
        observer.phase("reachability");
        let bits = unreachable_bits(&self.graph);
        let unreachable = Unreachable::discard(&mut self.graph, bits);
        HprofDump {
            graph: self.graph,
            info: self.info,
            threads: self.threads,
            unreachable,
        }
    }
}

/// Hears about the reader's progress.
pub trait Observer {
    /// A new phase starts ("scan", "index", "threads", "graph").
    fn phase(&mut self, _name: &'static str) {}
    /// The current pass is done with the bytes `done` and has read `read` of the `total` bytes.
    /// Passes may work on several parts of the dump at once (one per core).
    fn consumed(&mut self, _done: std::ops::Range<usize>, _read: usize, _total: usize) {}
    /// The walk over the top-level records will not read below `end` again. It reads the first
    /// bytes of every record (each heap dump segment's header among them); the heap passes read
    /// the segments later.
    fn records_walked(&mut self, _end: usize) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// Reads a whole (uncompressed) dump held in memory, building the graph on every core, and
/// discards its garbage.
pub fn read(data: &[u8], observer: &mut dyn Observer) -> Result<HprofDump, HprofError> {
    Ok(read_unswept(data, observer)?.sweep(observer))
}

/// [`read`] without discarding the garbage.
pub fn read_unswept(data: &[u8], observer: &mut dyn Observer) -> Result<UnsweptDump, HprofError> {
    read_with_workers(data, observer, workers())
}

/// The threads the reader's passes run on.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

fn read_with_workers(
    data: &[u8],
    observer: &mut dyn Observer,
    workers: usize,
) -> Result<UnsweptDump, HprofError> {
    let header = format::parse_header(data)?;
    observer.phase("scan");
    let total = data.len();
    let mut scan = scan::scan(data, &header, workers, observer)?;
    observer.phase("index");
    let index = ids::IdIndex::build(std::mem::take(&mut scan.ids));
    let objects = index.len() as u64 - 1;
    let sizes = SizeRule::guess(header.id_size, scan.id_range, &scan.layout_votes);
    let classes = layout::ClassTable::build(&mut scan, &sizes, data.len())?;
    // Threads need only pass 1 (roots, stack traces, and single objects re-read for names).
    observer.phase("threads");
    let locator = locate::Locator::new(data, &header, &scan.checkpoints);
    let threads = threads::collect(&scan, &classes, &index, &locator)?;
    observer.phase("graph");
    let plan = build::GraphPlan::new(&scan, &classes, index, sizes)?;
    let mut columns = plan.fill(data, &mut |done, read| observer.consumed(done, read, total))?;
    let info = DumpInfo {
        version: header.version.clone(),
        id_size: header.id_size.bytes() as u8,
        timestamp_ms: header.timestamp_ms,
        sizes,
        objects,
        classes: classes.defs.len() as u64,
        gc_roots: scan.roots.len() as u64,
        stats: columns.stats,
    };
    let thread_objects = std::mem::take(&mut columns.thread_objects);
    let mut graph = build::into_graph(columns, &threads)?;
    threads::name_other_threads(
        &mut graph,
        &scan,
        &classes,
        &locator,
        &thread_objects,
        &threads,
    )?;
    Ok(UnsweptDump {
        graph,
        info,
        threads,
    })
}
