//! The decoded trace: what the reader yields and the analysis consumes, independent of the on-disk encoding.
//!
//! This is the contract between the recorder (`leaksift-preload` + the writer in this crate) and the
//! analysis (`leaksift-native`). Addresses are absolute virtual addresses in the traced process (AVMA);
//! turning them into module-relative offsets is the analysis' job, using [`Module`] records.

/// Identifier of a deduplicated call stack in the trace. Defined by a [`Event::Stack`] before first use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackId(pub u32);

/// Small dense identifier of a traced thread, assigned by the recorder in order of first event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadId(pub u32);

/// Identifier of a loaded module (executable or shared object), unique within one trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(pub u32);

/// Nanoseconds since the start of tracing (monotonic clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceTime(pub u64);

/// What the trace header says about the traced process and how it was recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceHeader {
    /// On-disk format version the file was written with.
    pub format_version: u32,
    pub pid: u32,
    /// The command line of the traced process (argv), lossily decoded.
    pub command: Vec<String>,
    /// Wall-clock start of tracing, seconds since the Unix epoch.
    pub start_unix_s: u64,
    /// The nanoseconds of that start past `start_unix_s` (format version 6; `None` in older
    /// traces, which know the second only).
    pub start_subsec_nanos: Option<u32>,
    pub page_size: u64,
    /// Whether mmap/munmap were traced (`record --mmap`).
    pub traces_mmap: bool,
}

/// A loaded module and where it is mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub id: ModuleId,
    /// Path as the dynamic loader reported it (may be empty for the main program on some systems;
    /// the recorder substitutes `/proc/self/exe`'s target).
    pub path: String,
    /// GNU build-id from `.note.gnu.build-id`, if present: lets symbolization run on another machine.
    pub build_id: Option<Vec<u8>>,
    /// Load bias: AVMA = SVMA + `base`.
    pub base: u64,
    /// Mapped executable/readable ranges `[start, end)` in AVMA, from the program headers.
    pub ranges: Vec<(u64, u64)>,
}

/// Which allocator entry point produced an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocKind {
    Malloc,
    Calloc,
    Realloc,
    ReallocArray,
    PosixMemalign,
    AlignedAlloc,
    Memalign,
    Valloc,
    Pvalloc,
    Mmap,
}

/// memcheck's leak classes (valgrind `--leak-check=full --show-leak-kinds=all`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LeakClass {
    /// No pointer to the block's start or interior anywhere in the roots or reachable blocks.
    DefinitelyLost,
    /// Not reachable from the roots, but pointed to (at its start) from a definitely lost block.
    IndirectlyLost,
    /// Reachable only through pointers into its interior.
    PossiblyLost,
    /// Reachable through a pointer to its start from a root (stacks, registers, globals, TLS).
    StillReachable,
}

/// Why a reachability scan ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanTrigger {
    /// At process exit (after `main` returned or `exit` was called).
    Exit,
    /// On demand, from a signal or the control file, while the program kept running.
    OnDemand,
}

/// One live block's class in a reachability scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScannedBlock {
    pub address: u64,
    pub class: LeakClass,
}

/// The result of a reachability scan: every block live at `time`, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakScan {
    pub time: TraceTime,
    pub trigger: ScanTrigger,
    pub blocks: Vec<ScannedBlock>,
}

/// How the traced process ended, when the trace records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessEnd {
    /// Exited with this status.
    Exited(i32),
    /// Called `exec`: the process goes on as another program, traced to another file. Written
    /// before the system call, which can fail; then the program goes on, so events after this
    /// record mean the exec did not happen.
    Exec,
}

/// The program a traced process was about to `exec` (format version 5): written just before
/// the `End` record of kind exec, so that whoever reads the trace can name the program and, when
/// no trace of it appeared, say why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecCall {
    /// The program's file: absolute where the recorder could tell (a relative path against the
    /// process's directory, a name searched in `PATH` as `execvp` searches it, a descriptor's
    /// file for `fexecve`), else as the program named it; empty when unknown.
    pub program: String,
    /// Its argument vector, lossily decoded.
    pub args: Vec<String>,
    /// Whether the environment passed to it still preloads the tracer and names the trace
    /// (`LD_PRELOAD` holds the tracer library and `LEAKSIFT_OUTPUT` is set). Without that the
    /// new program is not traced (`env -i`, a program that builds its children's environment).
    pub keeps_tracer: bool,
}

/// One decoded trace record, in the order the recorder wrote it (per-thread order is preserved;
/// events of different threads are ordered by their flush, and `time` gives the true order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Defines a stack: return addresses, innermost frame first, outermost (e.g. `_start`) last.
    Stack {
        id: StackId,
        frames: Vec<u64>,
    },
    /// Boxed, like [`Event::LeakScan`]: these rare events would otherwise make every event as
    /// large as they are (decoded batches hold millions of events).
    ModuleLoaded(Box<Module>),
    ModuleUnloaded {
        id: ModuleId,
        time: TraceTime,
    },
    /// A new block. Its `address` (and that of the `Free` or `Realloc` ending it) is real for
    /// every block still live at the end of its chunk; a trace written with
    /// `AddressPolicy::Survivors` (the recorder's) gives the other blocks, allocated and freed
    /// within one chunk, a synthetic address at or above
    /// [`SYNTHETIC_ADDRESS_BASE`](crate::format::SYNTHETIC_ADDRESS_BASE), unique among the live
    /// blocks.
    Alloc {
        time: TraceTime,
        thread: ThreadId,
        address: u64,
        size: u64,
        stack: StackId,
        kind: AllocKind,
    },
    Free {
        time: TraceTime,
        thread: ThreadId,
        address: u64,
    },
    /// A realloc that moved or resized a block: `old_address` (0 for realloc(NULL, n)) is freed
    /// and `new_address` allocated with `size` bytes at `stack`.
    Realloc {
        time: TraceTime,
        thread: ThreadId,
        old_address: u64,
        new_address: u64,
        size: u64,
        stack: StackId,
    },
    /// Resident set size of the whole process, sampled periodically by the writer thread.
    RssSample {
        time: TraceTime,
        rss_bytes: u64,
    },
    LeakScan(Box<LeakScan>),
    /// What an `exec` was about to run (format version 5), just before its `End` record.
    Exec(Box<ExecCall>),
    /// Written last on a clean exit, or before an `exec`. A trace without it was cut short
    /// (crash, SIGKILL, OOM kill).
    End {
        time: TraceTime,
        end: ProcessEnd,
    },
}

// Decoded batches hold millions of events: keep the common ones (allocations, frees, reallocs)
// setting the size.
const _: () = assert!(std::mem::size_of::<Event>() <= 48);
