//! The writer thread: drains the per-thread buffers, restores time order, keeps the live-block
//! map, encodes events with `leaksift_trace::TraceWriter` (delta/varint records, zstd-compressed
//! chunks, real addresses only for blocks that outlive their chunk), logs module
//! changes and RSS, flushes every 100 ms, and runs leak scans on request and at exit.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

use leaksift_trace::TraceWriter;
use leaksift_trace::format::{FORMAT_VERSION, alloc_kind_from_code};
use leaksift_trace::model::{
    AllocKind, LeakScan, Module, ModuleId, ProcessEnd, ScanTrigger, ScannedBlock, StackId,
    ThreadId, TraceHeader, TraceTime,
};
use leaksift_trace::writer::AddressPolicy;

use crate::buffers::{self, Op, RawBuffer, RawEvent, Segment, WAKE};
use crate::modules::{self, LoadedModule};
use crate::runtime::{self, Config};
use crate::scan::{self, LiveBlock};
use crate::sys::{self, ReentryGuard};
use crate::unwind;

const CYCLE_NS: u64 = 100_000_000;
/// How often the published part of the threads' current buffers is collected (and events
/// become writable).
const COLLECT_NS: u64 = 10_000_000;
/// Event times are stored rounded down to whole milliseconds (a tick record per millisecond).
const TIME_RESOLUTION_NS: u64 = 1_000_000;

/// An opened trace file with its header written.
pub struct Sink {
    trace: TraceWriter<GuardedFile>,
}

/// The trace file, checked before every write to still be the file we opened: a program that
/// closes all descriptors and reuses ours must never receive trace bytes. Daemons close every
/// descriptor at start-up (`closefrom`, `close_range`, a loop to 1024, `dup2` over them): the
/// trace then reopens its file by path (absolute, so a `chdir` does not matter) and goes on.
pub struct GuardedFile {
    /// `None` only while being dropped.
    file: Option<File>,
    path: PathBuf,
    identity: FileIdentity,
}

/// Device and inode of a file.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
}

impl GuardedFile {
    fn new(file: File, path: PathBuf) -> Option<GuardedFile> {
        let (identity, _) = file_identity(&file)?;
        Some(GuardedFile {
            file: Some(file),
            path,
            identity,
        })
    }

    /// Our file, reopened by path if the program closed or replaced our descriptor, with its
    /// current length.
    fn ours(&mut self) -> std::io::Result<(&File, u64)> {
        let current = self.file.as_ref().and_then(file_identity);
        let length = match current {
            Some((identity, length)) if identity == self.identity => length,
            _ => {
                let reopened = out_of_the_way(
                    OpenOptions::new()
                        .append(true)
                        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                        .open(&self.path)?,
                );
                let Some((_, length)) =
                    file_identity(&reopened).filter(|(identity, _)| *identity == self.identity)
                else {
                    return Err(std::io::Error::other(
                        "the trace file was replaced while the program ran",
                    ));
                };
                // The old descriptor number is closed or now the program's: never close it.
                if let Some(old) = self.file.replace(reopened) {
                    let _ = std::os::fd::IntoRawFd::into_raw_fd(old);
                }
                length
            }
        };
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no trace file"))?;
        Ok((file, length))
    }
}

fn file_identity(file: &File) -> Option<(FileIdentity, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| {
        (
            FileIdentity {
                device: m.dev(),
                inode: m.ino(),
            },
            m.size(),
        )
    })
}

/// The program's file size limit (`RLIMIT_FSIZE`), if it set one: writing past it would send
/// SIGXFSZ to the whole process, killing it.
fn file_size_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the local struct.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

impl std::io::Write for GuardedFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let (mut file, length) = self.ours()?;
        if file_size_limit().is_some_and(|limit| length.saturating_add(bytes.len() as u64) > limit)
        {
            return Err(std::io::Error::other(
                "the program's file size limit (RLIMIT_FSIZE) ends the trace",
            ));
        }
        file.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for GuardedFile {
    fn drop(&mut self) {
        let ours = self
            .file
            .as_ref()
            .and_then(file_identity)
            .is_some_and(|(identity, _)| identity == self.identity);
        if let Some(file) = self.file.take()
            && !ours
        {
            // The descriptor number is the program's now: leave it open.
            let _ = std::os::fd::IntoRawFd::into_raw_fd(file);
        }
    }
}

/// Multiplicative hasher for block addresses (keys are already well spread).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (value ^ (value >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type LiveMap = HashMap<u64, LiveBlock, BuildHasherDefault<AddressHasher>>;
type AddressSet = HashSet<u64, BuildHasherDefault<AddressHasher>>;

/// How long the tick rate is measured when the writer starts.
const CALIBRATION_NS: u64 = 2_000_000;

/// Converts raw timestamps (TSC ticks) into nanoseconds since tracing started.
#[derive(Clone, Copy)]
struct Clock {
    origin: u64,
    /// Nanoseconds per tick in 32.32 fixed point (no float conversion per event).
    nanos_per_tick_q32: u64,
}

impl Clock {
    /// One nanosecond per tick: timestamps already are nanoseconds.
    fn identity(origin: u64) -> Clock {
        Clock {
            origin,
            nanos_per_tick_q32: 1 << 32,
        }
    }

    /// Measures the tick rate over [`CALIBRATION_NS`]. Both clocks are read at each end, so
    /// how long the sleep really took does not matter; reading them costs tens of nanoseconds,
    /// a relative error of about 1e-4 over the window (0.36 s an hour). Every traced process
    /// waits for it before its exit scan: a 10 ms window made `record --follow-fork` of a shell
    /// loop of short commands 20-30x slower than the loop.
    fn calibrate() -> Clock {
        let (t0, n0) = (sys::timestamp(), sys::monotonic_ns());
        std::thread::sleep(std::time::Duration::from_nanos(CALIBRATION_NS));
        let (t1, n1) = (sys::timestamp(), sys::monotonic_ns());
        let ticks = u128::from(t1.saturating_sub(t0).max(1));
        let q32 = (u128::from(n1.saturating_sub(n0)) << 32) / ticks;
        Clock {
            origin: t0,
            nanos_per_tick_q32: u64::try_from(q32).unwrap_or(u64::MAX),
        }
    }

    fn nanos(&self, timestamp: u64) -> TraceTime {
        let ticks = u128::from(timestamp.saturating_sub(self.origin));
        TraceTime(((ticks * u128::from(self.nanos_per_tick_q32)) >> 32) as u64)
    }
}

#[derive(Clone, Copy)]
struct Pending {
    event: RawEvent,
    thread: u32,
}

/// A collected segment's events with their thread, to append to `Writer::pending`.
fn segment_events(segment: &Segment) -> impl Iterator<Item = Pending> + '_ {
    let thread = segment.thread();
    segment
        .events()
        .iter()
        .map(move |&event| Pending { event, thread })
}

/// Events written between checks for requests (fork pause, exit, scans, flushes): a backlog is
/// worked off in slices so that requests are answered within milliseconds.
const EVENTS_PER_SLICE: usize = 1 << 16;

pub struct Writer {
    sink: Sink,
    clock: Clock,
    pending: Vec<Pending>,
    /// How many leading `pending` events are known to be in time order.
    sorted: usize,
    drained: Vec<Segment>,
    /// Scratch for `cycle`: the earliest first stamp of each suffix of `drained`.
    later: Vec<u64>,
    /// Trace stack id + 1 per stack-table slot (0: not defined in this trace yet).
    stack_ids: Vec<u32>,
    next_stack_id: u32,
    live: LiveMap,
    /// While an on-demand scan runs: the blocks entered in `live` since it began.
    allocated_during_scan: Option<Vec<u64>>,
    /// Usable sizes the program asked for (`malloc_usable_size`), by live block: the scan reads
    /// those blocks that far.
    usable_sizes: HashMap<u64, u64, BuildHasherDefault<AddressHasher>>,
    /// While a scan's result is pending: the addresses whose block left `live` since the scan
    /// began (freed, reallocated, or replaced by a new block at its address).
    freed_during_scan: Option<AddressSet>,
    /// Addresses whose block's free was written early (see [`Writer::retire_reused`]); the
    /// free itself, still queued, is skipped.
    owed_frees: AddressSet,
    modules: Vec<(ModuleId, LoadedModule)>,
    next_module_id: u32,
    module_generation: (u64, u64),
    last_periodic: u64,
    last_flush: u64,
    /// When the threads' current buffers were last collected, and the timestamp before which
    /// events are complete.
    last_collect: u64,
    watermark: u64,
    /// The trace ends with an exec record written for an exec still in progress.
    exec_recorded: bool,
    failed: bool,
}

static WRITER: AtomicPtr<Writer> = AtomicPtr::new(core::ptr::null_mut());
/// Forks in progress (before fork under `--follow-fork` to after it, in the parent): the writer
/// holds still at a safe point while there is one. Each fork's request is numbered
/// (`PAUSE_REQUESTED`) and the writer acknowledges the latest it has seen (`PAUSE_ACKED`): a
/// program forking twice in a row requests the second pause before the writer has woken from
/// the first, and with a flag the writer, still in its first pause, never acknowledged the
/// second (the fork waited out a 2 s timeout). A count, so that two threads forking at
/// once both find the writer held.
static FORKS_IN_PROGRESS: AtomicU32 = AtomicU32::new(0);
static PAUSE_REQUESTED: AtomicU32 = AtomicU32::new(0);
static PAUSE_ACKED: AtomicU32 = AtomicU32::new(0);

/// Opens the trace file for this process. The first process claims `output`. An image that the
/// traced process exec'd takes `output` over (the usual case is a wrapper script exec'ing the
/// real program) and moves the previous image's trace to `output.<pid>`. Under `--follow-fork`,
/// fork children and other programs started by the traced one write `output.<pid>` (`.<pid>.<n>`
/// if taken); without it they stay untraced (`None`).
pub fn open_output(config: &Config, fork_child: bool) -> Option<Sink> {
    let pid = sys::getpid();
    let mut claim_main = !fork_child;
    if claim_main && let Some(owner) = trace_owner(&config.output) {
        if owner == pid {
            // We replaced the traced image: its trace moves aside, this one becomes the main one.
            let moved = (0..100)
                .map(|n| per_pid_path(&config.output, pid, n))
                .find(|p| std::fs::symlink_metadata(p).is_err());
            claim_main = moved.is_some_and(|to| std::fs::rename(&config.output, to).is_ok());
        } else {
            claim_main = false;
            if !config.follow_fork {
                return None;
            }
        }
    }
    let file = if claim_main {
        create_new(&config.output).or_else(|| {
            // Lost a race for the main path: fall back to a per-pid file if following.
            config
                .follow_fork
                .then(|| create_per_pid(&config.output, pid))
                .flatten()
        })?
    } else {
        create_per_pid(&config.output, pid)?
    };
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let header = TraceHeader {
        format_version: FORMAT_VERSION,
        pid,
        command: command_line(),
        start_unix_s: started.as_secs(),
        start_subsec_nanos: Some(started.subsec_nanos()),
        page_size: runtime::page_size() as u64,
        traces_mmap: runtime::tracing_mmap(),
    };
    let (file, path) = file;
    let mut trace = TraceWriter::new(GuardedFile::new(file, path)?, &header).ok()?;
    trace.set_time_resolution(TIME_RESOLUTION_NS);
    // Leak scans and later frees only ever name blocks that outlive their chunk.
    trace.set_address_policy(AddressPolicy::Survivors);
    Some(Sink { trace })
}

/// pid in the header of an existing trace at `path`.
fn trace_owner(path: &Path) -> Option<u32> {
    let mut bytes = Vec::with_capacity(4096);
    File::open(path)
        .ok()?
        .take(1 << 16)
        .read_to_end(&mut bytes)
        .ok()?;
    leaksift_trace::TraceReader::from_bytes(&bytes)
        .ok()
        .map(|r| r.header().pid)
}

/// Creates the trace file, returning it with its absolute path (to reopen it by).
fn create_new(path: &Path) -> Option<(File, PathBuf)> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    Some((out_of_the_way(file), std::path::absolute(path).ok()?))
}

/// Lowest descriptor number the trace file is moved to.
const TRACE_DESCRIPTOR_MIN: i32 = 100;

/// `file` moved to a descriptor number of at least [`TRACE_DESCRIPTOR_MIN`] (at least 3 if the
/// limit is lower): the lowest free number, which `open` returns, is the program's. A program
/// started with stdout closed must not find the trace at descriptor 1 (its writes would land
/// in the trace and succeed), and `exec 3>file` in a script or `close(0); open(..)` expect
/// their number free.
fn out_of_the_way(file: File) -> File {
    use std::os::fd::{AsRawFd, FromRawFd};
    let fd = file.as_raw_fd();
    if fd >= TRACE_DESCRIPTOR_MIN {
        return file;
    }
    for minimum in [TRACE_DESCRIPTOR_MIN, 3] {
        // SAFETY: duplicates our own open descriptor; the copy is owned by the new File.
        let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, minimum) };
        if moved >= 0 {
            // SAFETY: `moved` is a fresh descriptor nothing else owns; `file` is dropped (closed).
            return unsafe { File::from_raw_fd(moved) };
        }
    }
    file
}

/// `output.<pid>` (`output.<pid>.<n>` for `n` > 0), built on the bytes of `output` as they are:
/// a path need not be UTF-8.
fn per_pid_path(output: &Path, pid: u32, n: u32) -> PathBuf {
    let mut path = output.as_os_str().to_os_string();
    if n == 0 {
        path.push(format!(".{pid}"));
    } else {
        path.push(format!(".{pid}.{n}"));
    }
    PathBuf::from(path)
}

fn create_per_pid(output: &Path, pid: u32) -> Option<(File, PathBuf)> {
    (0..100).find_map(|n| create_new(&per_pid_path(output, pid, n)))
}

fn command_line() -> Vec<String> {
    std::fs::read("/proc/self/cmdline")
        .map(|bytes| {
            bytes
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Starts the writer thread for a freshly opened trace.
pub fn spawn(sink: Sink) {
    let writer = Box::new(Writer {
        sink,
        clock: Clock::identity(sys::timestamp()),
        pending: Vec::new(),
        sorted: 0,
        drained: Vec::new(),
        later: Vec::new(),
        stack_ids: Vec::new(),
        next_stack_id: 0,
        live: LiveMap::default(),
        allocated_during_scan: None,
        freed_during_scan: None,
        usable_sizes: HashMap::default(),
        owed_frees: AddressSet::default(),
        modules: Vec::new(),
        next_module_id: 0,
        module_generation: (u64::MAX, u64::MAX),
        last_periodic: 0,
        last_flush: 0,
        last_collect: 0,
        watermark: 0,
        exec_recorded: false,
        failed: false,
    });
    start_thread(Box::into_raw(writer), true);
}

/// In a followed fork child: continue with the parent's live blocks (paused, hence consistent)
/// in a new file, restating them as allocations at time 0.
pub fn spawn_in_child(sink: Sink) {
    let writer = WRITER.load(Ordering::Acquire);
    if writer.is_null() {
        spawn(sink);
        return;
    }
    // SAFETY: the parent's writer thread does not exist in the child; its state was left at a
    // safe point by `pause`, so we are its only user now.
    let w = unsafe { &mut *writer };
    w.sink = sink;
    w.pending.clear();
    w.sorted = 0;
    w.drained.clear();
    w.watermark = 0;
    w.last_collect = 0;
    w.stack_ids.clear();
    w.next_stack_id = 0;
    w.modules.clear();
    w.next_module_id = 0;
    w.module_generation = (u64::MAX, u64::MAX);
    w.failed = false;
    // The child's times count from the fork, as an exec'd image's count from its start (a
    // child that exec'd at once read "after 468 ms": its parent's age).
    w.clock.origin = sys::timestamp();
    w.refresh_modules(true);
    let inherited: Vec<(u64, LiveBlock)> = w.live.iter().map(|(a, b)| (*a, *b)).collect();
    for (address, block) in inherited {
        let stack = w.define_stack(block.stack);
        let kind = alloc_kind_from_code(block.kind).unwrap_or(AllocKind::Malloc);
        let result =
            w.sink
                .trace
                .alloc(TraceTime(0), ThreadId(0), address, block.size, stack, kind);
        w.check(result);
        let allocation = w.sink.trace.last_allocation();
        w.live.insert(
            address,
            LiveBlock {
                allocation,
                ..block
            },
        );
    }
    start_thread(writer, false);
}

/// Starts the writer thread with raw `pthread_create`, so that the re-entry guard is set before
/// any code runs on it (std's thread start-up would allocate through our hooks first).
fn start_thread(writer: *mut Writer, calibrate: bool) {
    buffers::prepare_writer_barrier();
    extern "C" fn writer_main(arg: *mut libc::c_void) -> *mut libc::c_void {
        ReentryGuard::enter_forever();
        runtime::WRITER_TID.store(sys::gettid(), Ordering::Release);
        let calibrate = arg as usize & 1 == 1;
        let writer = WRITER.load(Ordering::Acquire);
        // SAFETY: the writer state is owned by this thread from now on (pause hands it over only
        // while this thread waits at a safe point).
        let writer = unsafe { &mut *writer };
        if calibrate {
            writer.clock = Clock::calibrate();
        }
        writer.run();
        // glibc's thread exit counts this thread out again.
        adjust_thread_count(1);
        core::ptr::null_mut()
    }
    WRITER.store(writer, Ordering::Release);
    // Stored by the new thread (an earlier writer's, or a fork parent's, id is stale).
    runtime::WRITER_TID.store(0, Ordering::Release);
    runtime::WRITER_RUNNING.store(true, Ordering::Release);
    let _guard = ReentryGuard::enter();
    // SAFETY: standard thread creation with default attributes; the thread is detached. It
    // starts with every signal blocked (the creator's mask is restored after): a signal sent to
    // the process must go to the program's threads, which may block it to read it from a
    // signalfd or sigwait — delivered to the writer, SIGTERM would kill the process instead.
    let created = unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut previous: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
        let mut thread: libc::pthread_t = 0;
        let rc = libc::pthread_create(
            &mut thread,
            core::ptr::null(),
            writer_main,
            usize::from(calibrate) as *mut libc::c_void,
        );
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, core::ptr::null_mut());
        if rc == 0 {
            libc::pthread_detach(thread);
            adjust_thread_count(-1);
        }
        rc == 0
    };
    if !created {
        runtime::WRITER_RUNNING.store(false, Ordering::Release);
        runtime::stop_tracing();
    }
}

/// Takes the writer thread out of glibc's count of running threads (`delta` -1 once it runs, +1
/// just before it ends): when the program's last thread exits — `main` may end with
/// `pthread_exit` — glibc ends the process with `exit(0)` only if that count drops to zero, so
/// the writer would otherwise keep the process alive for ever. Nothing to do with a libc that
/// has no `__nptl_nthreads`.
fn adjust_thread_count(delta: i32) {
    let Some(count) = runtime::THREAD_COUNT.get() else {
        return;
    };
    // SAFETY: a valid, suitably aligned `unsigned int` of glibc's, for the process's lifetime,
    // that glibc only changes atomically.
    let count = unsafe { &*(count as *const AtomicU32) };
    if delta < 0 {
        count.fetch_sub(1, Ordering::AcqRel);
    } else {
        count.fetch_add(1, Ordering::AcqRel);
    }
}

/// Tells the threads waiting in a flush request (before exec) that requests up to `requested`
/// are served.
fn acknowledge_flush(requested: u32) {
    if runtime::FLUSH_DONE.swap(requested, Ordering::AcqRel) != requested {
        sys::futex_wake(&runtime::FLUSH_DONE);
    }
}

/// Whether the writer should look at its requests before working off more backlog.
fn requests_waiting() -> bool {
    FORKS_IN_PROGRESS.load(Ordering::Relaxed) != 0
        || runtime::EXIT_REQUESTED.load(Ordering::Relaxed)
        || runtime::SCAN_REQUESTED.load(Ordering::Relaxed)
        || runtime::FLUSH_REQUESTED.load(Ordering::Relaxed)
            != runtime::FLUSH_DONE.load(Ordering::Relaxed)
}

/// In a followed fork child, before the thread states are forgotten: every event recorded before
/// the fork (queued, in partial buffers, or drained but not yet written) updates the inherited
/// live map, so the child starts from the parent's live blocks at the fork.
pub fn absorb_inherited_events() {
    let writer = WRITER.load(Ordering::Acquire);
    if writer.is_null() {
        return;
    }
    // SAFETY: single-threaded child; the parent's writer was parked at a safe point by `pause`.
    let w = unsafe { &mut *writer };
    // Every event the parent's threads published is here (their buffers were copied by fork).
    buffers::drain_all(&mut w.drained, Some(sys::timestamp()));
    for segment in &w.drained {
        w.pending.extend(segment_events(segment));
    }
    w.drained.clear();
    w.pending.sort_by_key(|p| p.event.timestamp);
    for p in std::mem::take(&mut w.pending) {
        let e = p.event;
        match e.op {
            Op::Alloc => {
                w.live.insert(e.address, LiveBlock::of(&e, 0));
            }
            Op::Free => {
                w.live.remove(&e.address);
            }
            Op::UsableSize => {}
            Op::Realloc => {
                if e.old_address != 0 {
                    w.live.remove(&e.old_address);
                }
                w.live.insert(e.address, LiveBlock::of(&e, 0));
            }
        }
    }
}

/// Before fork: park the writer at a safe point so a followed child inherits a consistent state.
pub fn pause() {
    if !runtime::WRITER_RUNNING.load(Ordering::Acquire) {
        return;
    }
    FORKS_IN_PROGRESS.fetch_add(1, Ordering::AcqRel);
    let request = PAUSE_REQUESTED
        .fetch_add(1, Ordering::AcqRel)
        .wrapping_add(1);
    buffers::wake_writer();
    // Up to 2 s, as `request_and_wait`.
    for _ in 0..200 {
        let acked = PAUSE_ACKED.load(Ordering::Acquire);
        // This request or a later one (numbers wrap).
        if acked.wrapping_sub(request) as i32 >= 0 {
            return;
        }
        sys::futex_wait(&PAUSE_ACKED, acked, 10_000_000);
    }
}

/// Sets `request`, wakes the writer and waits up to 2 s for it to set `reached` to 1 at its next
/// safe point. Returns whether it did.
fn request_and_wait(request: &AtomicBool, reached: &AtomicU32) -> bool {
    request.store(true, Ordering::Release);
    buffers::wake_writer();
    for _ in 0..200 {
        if reached.load(Ordering::Acquire) == 1 {
            return true;
        }
        sys::futex_wait(reached, 0, 10_000_000);
    }
    reached.load(Ordering::Acquire) == 1
}

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);
static STOPPED: AtomicU32 = AtomicU32::new(0);

/// Ends the writer thread at a safe point, keeping its state, and waits until the kernel has
/// removed the thread: `unshare(CLONE_NEWUSER)` and `setns` fail with EINVAL in a process with
/// more than one thread. Returns whether the thread was stopped (to [`restart`] it).
pub fn stop_thread() -> bool {
    if !runtime::WRITER_RUNNING.load(Ordering::Acquire) {
        return false;
    }
    // A writer just created may not have stored its id yet (a program unsharing at once).
    let mut tid = runtime::WRITER_TID.load(Ordering::Acquire);
    for _ in 0..100_000 {
        if tid != 0 {
            break;
        }
        std::thread::yield_now();
        tid = runtime::WRITER_TID.load(Ordering::Acquire);
    }
    if tid == 0 || tid == sys::gettid() {
        return false;
    }
    if !request_and_wait(&STOP_REQUESTED, &STOPPED) {
        // A wedged writer: leave it be, the caller's call then fails as it would have.
        STOP_REQUESTED.store(false, Ordering::Release);
        return false;
    }
    // The thread returned; it leaves the thread group shortly after.
    for _ in 0..10_000 {
        // SAFETY: signal 0 only checks that the thread still exists.
        let gone = unsafe {
            libc::syscall(libc::SYS_tgkill, sys::getpid(), tid, 0) == -1
                && *libc::__errno_location() == libc::ESRCH
        };
        if gone {
            break;
        }
        std::thread::yield_now();
    }
    true
}

/// Starts a new writer thread on the state a [`stop_thread`] kept.
pub fn restart() {
    STOPPED.store(0, Ordering::Release);
    STOP_REQUESTED.store(false, Ordering::Release);
    start_thread(WRITER.load(Ordering::Acquire), false);
}

/// After fork (parent, or child before it starts its own writer).
/// After fork, in the parent: this fork no longer holds the writer.
pub fn resume() {
    let _ =
        FORKS_IN_PROGRESS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    sys::futex_wake(&FORKS_IN_PROGRESS);
    buffers::wake_writer();
}

/// In a followed child, before it starts its own writer: the child has one thread, so no other
/// fork is in progress whatever the parent's count was.
pub fn resume_in_child() {
    FORKS_IN_PROGRESS.store(0, Ordering::Release);
    buffers::wake_writer();
}

/// The leader's wait status (as `waitpid` gives it) when no thread of the program is left
/// but this one: the leader and every other thread are zombies or gone. A program whose main
/// thread ends with a raw `exit` system call skips glibc's exit path; the writer then was the
/// process's last thread and kept it alive for ever, blocking the signals that could end it.
/// Costs one read of the leader's `stat` while the leader lives.
fn orphaned_exit_status() -> Option<i32> {
    let pid = sys::getpid();
    let writer = runtime::WRITER_TID.load(Ordering::Acquire);
    let (leader_state, leader_status) = task_state(pid)?;
    if !matches!(leader_state, 'Z' | 'X') {
        return None;
    }
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        if tid == writer || tid == pid {
            continue;
        }
        if task_state(tid).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X')) {
            return None;
        }
    }
    Some(leader_status)
}

/// A thread's state letter and exit status (fields 3 and 52 of `/proc/self/task/TID/stat`).
fn task_state(tid: u32) -> Option<(char, i32)> {
    let stat = std::fs::read(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything, bytes that are not
    // UTF-8 too: fields follow the last `)`.
    let after_name = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let fields: Vec<&str> = std::str::from_utf8(after_name)
        .ok()?
        .split_whitespace()
        .collect();
    let state = fields.first()?.chars().next()?;
    let status = fields.get(49).and_then(|s| s.parse().ok()).unwrap_or(0);
    Some((state, status))
}

impl Writer {
    fn run(&mut self) {
        loop {
            let seen = WAKE.load(Ordering::Acquire);
            if FORKS_IN_PROGRESS.load(Ordering::Acquire) != 0 {
                // A safe point: a followed child takes this state over and catches up itself.
                // Held while a fork is in progress, acknowledging every request meanwhile.
                loop {
                    let requested = PAUSE_REQUESTED.load(Ordering::Acquire);
                    if PAUSE_ACKED.load(Ordering::Acquire) != requested {
                        PAUSE_ACKED.store(requested, Ordering::Release);
                        sys::futex_wake(&PAUSE_ACKED);
                    }
                    let forks = FORKS_IN_PROGRESS.load(Ordering::Acquire);
                    if forks == 0 {
                        break;
                    }
                    sys::futex_wait(&FORKS_IN_PROGRESS, forks, 10_000_000);
                }
                continue;
            }
            if STOP_REQUESTED.load(Ordering::Acquire) {
                // A safe point: the thread ends, its state waits in `WRITER` for the next one.
                STOPPED.store(1, Ordering::Release);
                sys::futex_wake(&STOPPED);
                return;
            }
            if runtime::EXIT_REQUESTED.load(Ordering::Acquire) {
                self.finish();
                return;
            }
            if self.exec_recorded {
                // The trace ends with an exec record: nothing more until the exec fails. Another
                // thread's exec meanwhile needs no flush (its events would follow the record),
                // only the answer, or it would wait out its timeout.
                if runtime::EXEC_PENDING.load(Ordering::Acquire) {
                    acknowledge_flush(runtime::FLUSH_REQUESTED.load(Ordering::Acquire));
                    buffers::writer_sleep(seen, COLLECT_NS);
                    continue;
                }
                self.exec_recorded = false;
            }
            self.cycle(false);
            let now = sys::monotonic_ns();
            if now.saturating_sub(self.last_periodic) >= CYCLE_NS {
                self.last_periodic = now;
                self.periodic(now);
                if let Some(status) = orphaned_exit_status() {
                    self.finish_orphaned(status);
                    // The process ends with this thread, and without a group exit the last
                    // thread's code is the process's: the leader's.
                    sys::exit_thread((status >> 8) & 0xff);
                }
            }
            if runtime::SCAN_REQUESTED.swap(false, Ordering::AcqRel) {
                // Every event the program published before the scan first: a block allocated
                // since the last cycle is not yet in the live map, and a list whose head it
                // became (a global pointing at it) looked lost behind it. The scan-signal path
                // reaches here straight from its wake-up, the control file's after a cycle.
                self.cycle(true);
                self.scan(ScanTrigger::OnDemand, None);
                let result = self.sink.trace.flush();
                self.check(result);
            }
            let requested = runtime::FLUSH_REQUESTED.load(Ordering::Acquire);
            if requested != runtime::FLUSH_DONE.load(Ordering::Acquire) {
                self.cycle(true);
                if runtime::EXEC_PENDING.load(Ordering::Acquire) {
                    // In a last chunk of their own, stored raw: `record` reads them from there.
                    let call = runtime::EXEC_CALL.lock().ok().and_then(|mut c| c.take());
                    let time = self.clock.nanos(sys::timestamp());
                    let result = self.sink.trace.end_with_exec(time, call.as_ref());
                    self.check(result);
                    self.exec_recorded = true;
                }
                let result = self.sink.trace.flush();
                self.check(result);
                acknowledge_flush(requested);
            }
            if crate::alloc::out_of_memory() {
                // Tracing has stopped: what is queued is written, with no scan to follow (it
                // would need memory), and the trace ends there (reported as truncated).
                self.cycle(true);
                let result = self.sink.trace.flush();
                self.check(result);
                self.failed = true;
            }
            if self.failed {
                runtime::stop_tracing();
                runtime::WRITER_RUNNING.store(false, Ordering::Release);
                return;
            }
            buffers::writer_sleep(seen, COLLECT_NS);
        }
    }

    fn check(&mut self, result: std::io::Result<()>) {
        if result.is_err() {
            self.failed = true;
        }
    }

    /// Writes an RSS sample stamped now.
    fn sample_rss(&mut self) {
        let time = self.clock.nanos(sys::timestamp());
        if let Some(rss) = resident_bytes() {
            let rss = rss.saturating_sub(crate::alloc::tracer_resident_bytes() as u64);
            let result = self.sink.trace.rss_sample(time, rss);
            self.check(result);
        }
    }

    fn periodic(&mut self, now: u64) {
        self.sample_rss();
        if let Some(control) = runtime::config().and_then(|c| c.control.as_deref())
            && std::fs::remove_file(control).is_ok()
        {
            runtime::SCAN_REQUESTED.store(true, Ordering::Release);
        }
        if now.saturating_sub(self.last_flush) >= CYCLE_NS {
            self.last_flush = now;
            let result = self.sink.trace.flush();
            self.check(result);
        }
    }

    /// Drains every buffer and writes, in time order, the events stamped before the drain began
    /// (all of them when `everything`); later ones wait for the next cycle.
    fn cycle(&mut self, everything: bool) {
        let now = sys::monotonic_ns();
        let collect = if everything || now.saturating_sub(self.last_collect) >= COLLECT_NS {
            self.last_collect = now;
            let stamp = sys::fenced_timestamp();
            buffers::writer_barrier(stamp);
            Some(stamp)
        } else {
            // Between collections only full buffers move.
            None
        };
        self.watermark = self
            .watermark
            .max(buffers::drain_all(&mut self.drained, collect));
        self.refresh_modules(false);
        let limit = if everything { u64::MAX } else { self.watermark };
        // Segment by segment, so that buffers go back to the pool (and `pending` stays small)
        // while a backlog is worked off.
        let mut segments = std::mem::take(&mut self.drained);
        // Later segments may hold older events: only what precedes them all can be written.
        // `later[i]` is the earliest first stamp of `segments[i..]`.
        let mut later = std::mem::take(&mut self.later);
        later.clear();
        later.resize(segments.len() + 1, u64::MAX);
        for i in (0..segments.len()).rev() {
            let first = segments[i]
                .events()
                .first()
                .map_or(u64::MAX, |e| e.timestamp);
            later[i] = later[i + 1].min(first);
        }
        let mut finished = true;
        let mut next_attempt = EVENTS_PER_SLICE;
        for i in 0..segments.len() {
            let segment = segments[i];
            self.pending.extend(segment_events(&segment));
            if segment.full {
                // SAFETY: handed over full and copied out above.
                unsafe { RawBuffer::recycle(segment.buffer) };
            }
            if finished && self.pending.len() >= next_attempt {
                finished = self.write_ready(limit.min(later[i + 1]), everything);
                // Not again before another slice has arrived: ordering what is pending costs
                // its length, and while many threads' segments interleave little of it is
                // ready. Trying after every 2000-event segment sorted a pending list of
                // hundreds of thousands of events hundreds of times a cycle.
                next_attempt = self.pending.len() + EVENTS_PER_SLICE;
            }
        }
        self.later = later;
        segments.clear();
        self.drained = segments;
        if finished && self.write_ready(limit, everything) {
            self.apply_module_snapshots(limit);
        }
    }

    /// Writes, in time order, the pending events stamped before `limit`. Returns false when it
    /// stopped early so that the writer can answer a request (unless `everything`); the rest
    /// stays pending and is still older than anything collected later.
    fn write_ready(&mut self, limit: u64, everything: bool) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        // One thread's events arrive in order; only interleaved threads need sorting.
        let checked = self.sorted.min(self.pending.len()).saturating_sub(1);
        if !self.pending[checked..].is_sorted_by_key(|p| p.event.timestamp) {
            self.pending.sort_by_key(|p| p.event.timestamp);
        }
        let ready = self.pending.partition_point(|p| p.event.timestamp < limit);
        let mut pending = std::mem::take(&mut self.pending);
        let has_snapshots = runtime::MODULE_SNAPSHOTS
            .lock()
            .is_ok_and(|s| !s.is_empty());
        let mut written = 0;
        while written < ready {
            let p = pending[written];
            if has_snapshots {
                self.apply_module_snapshots(p.event.timestamp);
            }
            self.emit(p);
            written += 1;
            if !everything && written % EVENTS_PER_SLICE == 0 && requests_waiting() {
                break;
            }
        }
        pending.drain(..written);
        self.sorted = pending.len();
        self.pending = pending;
        written == ready
    }

    fn emit(&mut self, p: Pending) {
        // A failed write (disk full) ends the trace: the events still queued are dropped, not
        // retried one by one (each retry cost three system calls, and the program, held back
        // by the queue, ran thousands of times slower).
        if self.failed {
            return;
        }
        let e = p.event;
        let time = self.clock.nanos(e.timestamp);
        let thread = ThreadId(p.thread);
        let result = match e.op {
            Op::Alloc => {
                let stack = self.define_stack(e.stack);
                let kind = alloc_kind_from_code(e.kind).unwrap_or(AllocKind::Malloc);
                self.allocate_at(time, thread, &e, |trace| {
                    trace.alloc(time, thread, e.address, e.size, stack, kind)
                })
            }
            Op::Free => {
                if !self.owed_frees.is_empty() && self.owed_frees.remove(&e.address) {
                    return;
                }
                // Frees of blocks allocated before tracing began are not events of this trace.
                let Some(block) = self.forget_live(e.address) else {
                    return;
                };
                self.sink
                    .trace
                    .free_allocation(time, thread, e.address, block.allocation)
            }
            Op::UsableSize => {
                if self.live.contains_key(&e.address) {
                    self.usable_sizes.insert(e.address, e.size);
                }
                return;
            }
            Op::Realloc => {
                let stack = self.define_stack(e.stack);
                let owed = !self.owed_frees.is_empty() && self.owed_frees.remove(&e.old_address);
                let old =
                    if e.old_address != 0 && !owed && self.forget_live(e.old_address).is_some() {
                        e.old_address
                    } else {
                        0
                    };
                self.allocate_at(time, thread, &e, |trace| {
                    trace.realloc(time, thread, old, e.address, e.size, stack)
                })
            }
        };
        self.check(result);
    }

    /// Writes the allocation `event` (with `write`) and makes its block live, in one lookup of
    /// the live map. A block still live at the same address was freed, by another thread
    /// within the same timestamp, and its free is still queued behind this event: that free is
    /// written first (the trace names blocks of a chunk by position, so the new block must not
    /// take it) and skipped when it comes.
    fn allocate_at(
        &mut self,
        time: TraceTime,
        thread: ThreadId,
        event: &RawEvent,
        write: impl FnOnce(&mut TraceWriter<GuardedFile>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if let Some(blocks) = &mut self.allocated_during_scan {
            blocks.push(event.address);
        }
        let trace = &mut self.sink.trace;
        match self.live.entry(event.address) {
            Entry::Occupied(mut entry) => {
                if let Some(freed) = &mut self.freed_during_scan {
                    freed.insert(event.address);
                }
                self.usable_sizes.remove(&event.address);
                let freed =
                    trace.free_allocation(time, thread, event.address, entry.get().allocation);
                self.owed_frees.insert(event.address);
                let written = write(trace);
                entry.insert(LiveBlock::of(event, trace.last_allocation()));
                freed.and(written)
            }
            Entry::Vacant(entry) => {
                let written = write(trace);
                entry.insert(LiveBlock::of(event, trace.last_allocation()));
                written
            }
        }
    }

    /// Removes the block at `address` from `live`, noting it while a scan's result is pending.
    fn forget_live(&mut self, address: u64) -> Option<LiveBlock> {
        let block = self.live.remove(&address)?;
        if !self.usable_sizes.is_empty() {
            self.usable_sizes.remove(&address);
        }
        if let Some(freed) = &mut self.freed_during_scan {
            freed.insert(address);
        }
        Some(block)
    }

    /// The trace's id for stack-table slot `slot`, defining the stack on first use. Trace ids
    /// are dense (order of first use) so they stay one or two bytes.
    fn define_stack(&mut self, slot: u32) -> StackId {
        let index = slot as usize;
        if self.stack_ids.len() <= index {
            self.stack_ids.resize(index + 1, 0);
        }
        if self.stack_ids[index] != 0 {
            return StackId(self.stack_ids[index] - 1);
        }
        let id = StackId(self.next_stack_id);
        self.next_stack_id += 1;
        self.stack_ids[index] = id.0 + 1;
        let frames = runtime::stacks().map_or(&[][..], |t| t.frames(slot));
        let result = self.sink.trace.stack(id, frames);
        self.check(result);
        id
    }

    /// Logs modules loaded or unloaded behind our hooks (glibc's own dlopen, e.g. NSS) when the
    /// loader's counters moved, and rebuilds the unwinder for them.
    fn refresh_modules(&mut self, force: bool) {
        if runtime::exit_gate_closed() {
            return;
        }
        let generation = modules::generation();
        if !force && generation == self.module_generation {
            return;
        }
        let first = self.module_generation == (u64::MAX, u64::MAX);
        self.module_generation = generation;
        let current = modules::loaded_modules();
        crate::stacks::note_unloads(generation.1);
        if !first {
            unwind::publish(&current);
        }
        self.log_modules(self.clock.nanos(sys::timestamp()), current);
    }

    /// Logs the module lists the `dlopen`/`dlclose` hooks captured up to `until` (a timestamp).
    fn apply_module_snapshots(&mut self, until: u64) {
        let due: Vec<(u64, Vec<LoadedModule>)> = match runtime::MODULE_SNAPSHOTS.lock() {
            Ok(mut snapshots) if snapshots.iter().any(|(t, _)| *t <= until) => {
                snapshots.sort_by_key(|(t, _)| *t);
                let split = snapshots.partition_point(|(t, _)| *t <= until);
                snapshots.drain(..split).collect()
            }
            _ => return,
        };
        for (timestamp, modules) in due {
            self.log_modules(self.clock.nanos(timestamp), modules);
        }
    }

    /// Writes unload records for known modules missing from `current` and load records for new ones.
    fn log_modules(&mut self, time: TraceTime, current: Vec<LoadedModule>) {
        let same = |a: &LoadedModule, b: &LoadedModule| a.base == b.base && a.path == b.path;
        let mut kept = Vec::with_capacity(current.len());
        for (id, known) in std::mem::take(&mut self.modules) {
            if current.iter().any(|m| same(m, &known)) {
                kept.push((id, known));
            } else {
                let result = self.sink.trace.module_unloaded(time, id);
                self.check(result);
            }
        }
        for module in current {
            if kept.iter().any(|(_, k)| same(k, &module)) {
                continue;
            }
            let id = ModuleId(self.next_module_id);
            self.next_module_id += 1;
            let record = Module {
                id,
                path: module.path.clone(),
                build_id: module.build_id.clone(),
                base: module.base,
                ranges: module.ranges.clone(),
            };
            let result = self.sink.trace.module_loaded(&record);
            self.check(result);
            kept.push((id, module));
        }
        self.modules = kept;
        // The loader's counters now match what is logged (not asked once the exit gate is
        // closed: no refresh follows then).
        if !runtime::exit_gate_closed() {
            self.module_generation = modules::generation();
        }
    }

    /// Writes a leak scan, or nothing when this process's memory cannot be read at all (the
    /// report then says the trace has no scan, rather than that every block was lost).
    fn scan(&mut self, trigger: ScanTrigger, requester: Option<scan::Requester>) {
        self.freed_during_scan = Some(AddressSet::default());
        let Some(mut classes) = scan::classify(&self.live, &self.usable_sizes, requester, &[])
        else {
            self.freed_during_scan = None;
            return;
        };
        if trigger == ScanTrigger::OnDemand {
            // The program runs on while its memory is read: a block it allocated meanwhile is
            // not in the live map, and what only that block points at (a list it became the
            // head of, a global pointing at it) looked lost. The blocks allocated during the
            // scan are then known: scan again with them as roots (just made, the program holds
            // them; conservative), which reaches what they point at whatever it does meanwhile.
            self.allocated_during_scan = Some(Vec::new());
            self.cycle(true);
            let fresh = self.allocated_during_scan.take().unwrap_or_default();
            if !fresh.is_empty() {
                // The second pass reads the live map as it is now: what was freed, or freed and
                // allocated again at the same address, before it began is already right there.
                // Only what changes while it runs leaves its result (a busy server replacing
                // cache entries lost them all from the scan: their addresses came back at once).
                let freed_before = self.freed_during_scan.replace(AddressSet::default());
                match scan::classify(&self.live, &self.usable_sizes, requester, &fresh) {
                    Some(again) => classes = again,
                    None => self.freed_during_scan = freed_before,
                }
            }
        }
        // Other threads ran on while memory was read (at exit too: `exit` stops none of them):
        // a block one of them freed meanwhile was still in the scanned map, while the slot that
        // held it may already hold its successor, so it looked lost (a thread cycling 64 blocks
        // through an array on its stack gave tens of "lost" blocks at exit). Such blocks, and
        // those whose free was still queued when the scan began, leave the result: their frees
        // are written before it.
        self.cycle(true);
        if let Some(freed) = self.freed_during_scan.take()
            && !freed.is_empty()
        {
            classes.retain(|(address, _)| !freed.contains(address));
        }
        // Stamped after the events written above, which the trace keeps in time order.
        let time = self.clock.nanos(sys::timestamp());
        let blocks = classes
            .into_iter()
            .map(|(address, class)| ScannedBlock { address, class })
            .collect();
        let result = self.sink.trace.leak_scan(&LeakScan {
            time,
            trigger,
            blocks,
        });
        self.check(result);
    }

    /// Ends the trace of a program whose every thread left with a raw `exit` system call (the
    /// leader's `syscall(SYS_exit, n)`, a strict-seccomp program): no exit scan (there is no
    /// thread to stop, and glibc's exit path did not run), the leader's status when it exited.
    fn finish_orphaned(&mut self, wait_status: i32) {
        self.cycle(true);
        self.sample_rss();
        runtime::stop_tracing();
        if wait_status & 0x7f == 0 {
            let time = self.clock.nanos(sys::timestamp());
            let result = self
                .sink
                .trace
                .end(time, ProcessEnd::Exited((wait_status >> 8) & 0xff));
            self.check(result);
        }
        let result = self.sink.trace.flush();
        self.check(result);
        runtime::WRITER_RUNNING.store(false, Ordering::Release);
    }

    /// Exit: write everything, sample RSS, scan, write `End`, flush, stop tracing and release the exiting thread.
    fn finish(&mut self) {
        // The module list as the gate closes: afterwards the loader is not asked (see
        // `runtime::exit_gate_closed`), and the `dlopen` hooks' own snapshots still arrive.
        self.refresh_modules(false);
        runtime::close_exit_gate();
        self.cycle(true);
        // The state at exit: a program shorter than one cycle still has its peak RSS.
        self.sample_rss();
        let requester = scan::Requester {
            sp: runtime::EXIT_SP.load(Ordering::Acquire),
            registers: runtime::EXIT_REGISTERS
                .each_ref()
                .map(|r| r.load(Ordering::Relaxed)),
        };
        self.scan(ScanTrigger::Exit, Some(requester));
        runtime::stop_tracing();
        let status = runtime::EXIT_STATUS.load(Ordering::Acquire) as i32;
        let time = self.clock.nanos(sys::timestamp());
        let result = self.sink.trace.end(time, ProcessEnd::Exited(status));
        self.check(result);
        let result = self.sink.trace.flush();
        self.check(result);
        runtime::WRITER_RUNNING.store(false, Ordering::Release);
        runtime::EXIT_DONE.store(1, Ordering::Release);
        sys::futex_wake(&runtime::EXIT_DONE);
    }
}

/// Resident set size from `/proc/self/statm` (cheap: no page-table walk).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string(sys::own_proc_file("statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * runtime::page_size() as u64)
}
