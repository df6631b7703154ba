//! Stack capture in the allocation hooks: DWARF CFI (`.eh_frame`) through framehop with a
//! per-thread rule cache, falling back to the frame-pointer chain where a module has no CFI.
//! The module snapshot is rebuilt outside the hooks (constructor, writer thread, `dlopen`) and
//! swapped atomically; old snapshots are leaked because a hook may still be reading them.

use core::mem::MaybeUninit;
use core::ops::Deref;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, MustNotAllocateDuringUnwind, Unwinder};

use crate::modules::LoadedModule;

/// Deepest stack recorded (innermost frames are kept): the trace format's constant, which the
/// report uses to tell a stack cut at this depth.
pub const MAX_FRAMES: usize = leaksift_trace::format::RECORDER_MAX_FRAMES;

/// Unwind data read in place from the mapped module.
#[derive(Clone, Copy, Default)]
pub struct MappedBytes(&'static [u8]);

impl Deref for MappedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0
    }
}

pub type ModuleUnwinder = UnwinderX86_64<MappedBytes, MustNotAllocateDuringUnwind>;
pub type UnwindCache = CacheX86_64<MustNotAllocateDuringUnwind>;

static SNAPSHOT: AtomicPtr<ModuleUnwinder> = AtomicPtr::new(core::ptr::null_mut());
static BUILDING: AtomicBool = AtomicBool::new(false);

/// Rebuilds the unwinder from `modules` and publishes it. Call only outside allocation hooks.
pub fn publish(modules: &[LoadedModule]) {
    while BUILDING.swap(true, Ordering::Acquire) {
        core::hint::spin_loop();
    }
    let mut unwinder = ModuleUnwinder::new();
    for module in modules {
        if let Some(m) = unwind_module(module) {
            unwinder.add_module(m);
        }
    }
    let fresh = Box::into_raw(Box::new(unwinder));
    // The previous snapshot is leaked on purpose: another thread may be unwinding with it.
    SNAPSHOT.store(fresh, Ordering::Release);
    GENERATION.fetch_add(1, Ordering::AcqRel);
    BUILDING.store(false, Ordering::Release);
}

fn unwind_module(module: &LoadedModule) -> Option<framehop::Module<MappedBytes>> {
    let start = module.ranges.iter().map(|r| r.0).min()?;
    let end = module.ranges.iter().map(|r| r.1).max()?;
    let mut info = ExplicitModuleSectionInfo::<MappedBytes> {
        base_svma: 0,
        ..Default::default()
    };
    if let (Some((hdr, hdr_len)), Some((eh_frame, seg_end))) =
        (module.eh_frame_hdr, module.eh_frame)
    {
        // SAFETY: both lie inside mapped, read-only PT_LOADs of a module the loader listed;
        // nothing reads them here (framehop reads them when it unwinds a return address inside
        // the module, which is then loaded).
        let (hdr_bytes, bytes): (&'static [u8], &'static [u8]) = unsafe {
            (
                core::slice::from_raw_parts(hdr as *const u8, hdr_len as usize),
                core::slice::from_raw_parts(eh_frame as *const u8, (seg_end - eh_frame) as usize),
            )
        };
        info.eh_frame_svma = Some(eh_frame - module.base..seg_end - module.base);
        info.eh_frame = Some(MappedBytes(bytes));
        info.eh_frame_hdr_svma = Some(hdr - module.base..hdr + hdr_len - module.base);
        info.eh_frame_hdr = Some(MappedBytes(hdr_bytes));
    }
    Some(framehop::Module::new(
        module.path.clone(),
        start..end,
        module.base,
        info,
    ))
}

/// Decodes `eh_frame_ptr` from an `.eh_frame_hdr` (version 1, pcrel/absolute sdata4/udata8).
pub fn eh_frame_address(hdr: u64, bytes: &[u8]) -> Option<u64> {
    if bytes.len() < 8 || bytes[0] != 1 {
        return None;
    }
    let encoding = bytes[1];
    let field = hdr + 4;
    let value = match encoding & 0x0f {
        0x0b => i64::from(i32::from_le_bytes(bytes[4..8].try_into().ok()?)) as u64, // sdata4
        0x03 => u64::from(u32::from_le_bytes(bytes[4..8].try_into().ok()?)),        // udata4
        0x04 | 0x0c if bytes.len() >= 12 => u64::from_le_bytes(bytes[4..12].try_into().ok()?),
        _ => return None,
    };
    match encoding & 0x70 {
        0x00 => Some(value),
        0x10 => Some(field.wrapping_add(value)),
        _ => None,
    }
}

/// The calling thread's stack `[low, high)`: unwinding reads only between the hook's frame and
/// `high`, and only when the frame lies inside the range (a coroutine or signal stack elsewhere
/// gets a one-frame stack instead of reads across unmapped memory).
#[derive(Clone, Copy, Default)]
pub struct StackBounds {
    pub low: u64,
    pub high: u64,
}

/// One frame's unwind step, distilled from framehop's rule for a return address so that the hot
/// path replays it with two or three loads instead of a rule lookup through framehop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// `(sp, bp) = (bp + 16, [bp])`.
    FramePointer,
    /// `sp += delta`; `bp = [old sp + bp_at]` when the function saved it there, else unchanged.
    Offset { delta: u32, bp_at: Option<u32> },
    /// The outermost frame.
    End,
    /// A rule the distillation does not cover: framehop unwinds this frame every time.
    Framehop,
}

impl Step {
    fn pack(self) -> u64 {
        match self {
            Step::FramePointer => 1,
            Step::End => 2,
            Step::Framehop => 3,
            Step::Offset { delta, bp_at } => {
                4 | (u64::from(delta) << 8) | (bp_at.map_or(0, |o| u64::from(o) + 1) << 40)
            }
        }
    }

    fn unpack(packed: u64) -> Step {
        match packed & 0xff {
            1 => Step::FramePointer,
            2 => Step::End,
            4 => Step::Offset {
                delta: ((packed >> 8) & 0xffff_ffff) as u32,
                bp_at: match packed >> 40 {
                    0 => None,
                    o => Some((o - 1) as u32),
                },
            },
            _ => Step::Framehop,
        }
    }
}

const STEP_SLOTS: usize = 2048;
/// Bumped whenever a new module snapshot is published: cached steps are then stale.
static GENERATION: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

/// Distilled steps of recently seen return addresses (direct-mapped), with framehop's cache for
/// the rules the distillation does not cover.
pub struct StepCache {
    framehop: UnwindCache,
    generation: u64,
    addresses: [u64; STEP_SLOTS],
    steps: [u64; STEP_SLOTS],
}

/// Stack words one unwind read (return-address and saved-bp slots): single words, and the
/// adjacent (saved bp, return address) pairs of frame-pointer steps, which are checked 16 bytes
/// at a time.
pub struct ReadLog {
    singles: usize,
    pairs: usize,
    /// Whether the unwind used the starting frame-pointer value (code without frame pointers
    /// keeps anything in rbp, which must then not prevent a replay).
    used_start_bp: bool,
    single_addresses: [u64; MAX_READS],
    single_values: [u64; MAX_READS],
    pair_addresses: [u64; MAX_FRAMES],
    pair_values: [[u64; 2]; MAX_FRAMES],
    /// False once a framehop step (whose reads are not logged) ran or the log overflowed.
    complete: bool,
}

impl ReadLog {
    const EMPTY: ReadLog = ReadLog {
        singles: 0,
        pairs: 0,
        used_start_bp: false,
        single_addresses: [0; MAX_READS],
        single_values: [0; MAX_READS],
        pair_addresses: [0; MAX_FRAMES],
        pair_values: [[0; 2]; MAX_FRAMES],
        complete: false,
    };

    fn clear(&mut self) {
        self.singles = 0;
        self.pairs = 0;
        self.used_start_bp = false;
        self.complete = true;
    }

    fn record(&mut self, address: u64, value: u64) {
        if self.singles < MAX_READS {
            self.single_addresses[self.singles] = address;
            self.single_values[self.singles] = value;
            self.singles += 1;
        } else {
            self.complete = false;
        }
    }

    /// Logs the words at `address` and `address + 8`.
    fn record_pair(&mut self, address: u64, values: [u64; 2]) {
        if self.pairs < MAX_FRAMES {
            self.pair_addresses[self.pairs] = address;
            self.pair_values[self.pairs] = values;
            self.pairs += 1;
        } else {
            self.complete = false;
        }
    }

    /// Whether every logged word still holds its logged value.
    ///
    /// # Safety
    /// The logged addresses must be readable (inside the calling thread's live stack).
    #[inline(always)]
    unsafe fn still_valid(&self) -> bool {
        // Independent loads whose differences are OR-ed together, with no branch per word: the
        // CPU issues them in parallel, unlike the dependent chain of an unwind.
        let mut differences = 0u64;
        for i in 0..self.singles {
            // SAFETY: per the contract.
            differences |=
                unsafe { *(self.single_addresses[i] as *const u64) } ^ self.single_values[i];
        }
        // SAFETY: per the contract (each pair's two words were read by the unwind).
        differences == 0
            && unsafe { pairs_unchanged(&self.pair_addresses[..self.pairs], &self.pair_values) }
    }
}

/// Whether the 16 bytes at each of `addresses` still equal the corresponding `values`.
///
/// # Safety
/// Each address and the word after it must be readable.
#[inline(always)]
unsafe fn pairs_unchanged(addresses: &[u64], values: &[[u64; 2]; MAX_FRAMES]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            __m128i, _mm_loadu_si128, _mm_or_si128, _mm_setzero_si128, _mm_xor_si128,
        };
        // SAFETY: SSE2 is part of x86-64; the loads read what the contract allows (stack
        // words, and the logged values, which are `[u64; 2]`, i.e. 16 bytes, each).
        unsafe {
            let mut differences = _mm_setzero_si128();
            for (i, &address) in addresses.iter().enumerate() {
                let now = _mm_loadu_si128(address as *const __m128i);
                let then = _mm_loadu_si128(values[i].as_ptr() as *const __m128i);
                differences = _mm_or_si128(differences, _mm_xor_si128(now, then));
            }
            let lanes: [u64; 2] = core::mem::transmute(differences);
            lanes[0] | lanes[1] == 0
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut differences = 0u64;
        for (i, &address) in addresses.iter().enumerate() {
            // SAFETY: per the contract.
            unsafe {
                differences |= (*(address as *const u64) ^ values[i][0])
                    | (*((address + 8) as *const u64) ^ values[i][1]);
            }
        }
        differences == 0
    }
}

/// The result of an unwind from one starting point, with the words it depended on.
struct Replay {
    /// (return address, sp, bp) at the hook; 0 return address = empty.
    start: (u64, u64, u64),
    generation: u64,
    reads: ReadLog,
    stack: u32,
}

const REPLAY_SLOTS: usize = 8;
const MAX_READS: usize = 2 * MAX_FRAMES;

/// A thread's unwinding state.
pub struct ThreadUnwinder {
    steps: StepCache,
    /// Unwind results by starting point. An unwind is a pure function of its start, the
    /// distilled steps and the stack words it reads: when all of those are unchanged, the stack
    /// is the same and needs neither unwinding nor interning. Loops allocating from one call
    /// site hit this almost always.
    replays: [Replay; REPLAY_SLOTS],
}

/// Unwinders of exited threads, reused by new threads (thread start/exit only, not the hot path).
static POOL: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// An unwinder for a new thread: a retired one if available, else a fresh one (allocates: call
/// under the guard, not on the hot path).
pub fn take_thread_unwinder() -> *mut ThreadUnwinder {
    if let Some(reused) = POOL.lock().ok().and_then(|mut pool| pool.pop()) {
        let unwinder = reused as *mut ThreadUnwinder;
        // SAFETY: pooled unwinders belong to nobody. Replays name words of the previous
        // thread's stack, which the new thread's stack need not cover: forget them.
        unsafe {
            for replay in &mut (*unwinder).replays {
                replay.start = (0, 0, 0);
                replay.reads.complete = false;
            }
        }
        return unwinder;
    }
    const EMPTY: Replay = Replay {
        start: (0, 0, 0),
        generation: 0,
        reads: ReadLog::EMPTY,
        stack: 0,
    };
    Box::into_raw(Box::new(ThreadUnwinder {
        steps: StepCache {
            framehop: UnwindCache::new_in(),
            generation: 0,
            addresses: [0; STEP_SLOTS],
            steps: [0; STEP_SLOTS],
        },
        replays: [EMPTY; REPLAY_SLOTS],
    }))
}

/// Returns an exited thread's unwinder to the pool.
pub fn give_back_thread_unwinder(unwinder: *mut ThreadUnwinder) {
    if unwinder.is_null() {
        return;
    }
    if let Ok(mut pool) = POOL.lock() {
        pool.push(unwinder as usize);
    }
}

/// Finds framehop's rule for `return_address` by unwinding one frame of a synthetic stack whose
/// every word holds its own (tagged) address: the new sp and bp then say which rule ran.
fn distill(unwinder: &ModuleUnwinder, cache: &mut UnwindCache, return_address: u64) -> Step {
    const SP: u64 = 0x1000_0000;
    const BP: u64 = 0x4000_0000;
    const TAG: u64 = 0x5a5a_0000_0000_0000;
    let Some(address) = FrameAddress::from_return_address(return_address) else {
        return Step::End;
    };
    let mut regs = UnwindRegsX86_64::new(return_address, SP, BP);
    let mut read = |addr: u64| Ok(addr ^ TAG);
    match unwinder.unwind_frame(address, &mut regs, cache, &mut read) {
        Ok(None) => Step::End,
        Ok(Some(next)) => {
            let (sp, bp) = (regs.sp(), regs.bp());
            if sp < 8 || next != (sp - 8) ^ TAG {
                return Step::Framehop;
            }
            if sp == BP + 16 && bp == BP ^ TAG {
                return Step::FramePointer;
            }
            let delta = sp.wrapping_sub(SP);
            if delta == 0 || delta >= 1 << 24 || delta % 8 != 0 {
                return Step::Framehop;
            }
            if bp == BP {
                return Step::Offset {
                    delta: delta as u32,
                    bp_at: None,
                };
            }
            let saved_at = (bp ^ TAG).wrapping_sub(SP);
            if saved_at < delta {
                Step::Offset {
                    delta: delta as u32,
                    bp_at: Some(saved_at as u32),
                }
            } else {
                Step::Framehop
            }
        }
        Err(_) => Step::Framehop,
    }
}

impl StepCache {
    fn step(&mut self, unwinder: &ModuleUnwinder, return_address: u64) -> Step {
        let generation = GENERATION.load(Ordering::Acquire);
        if self.generation != generation {
            self.addresses = [0; STEP_SLOTS];
            self.generation = generation;
        }
        let slot = ((return_address ^ (return_address >> 11)) as usize) % STEP_SLOTS;
        if self.addresses[slot] == return_address {
            return Step::unpack(self.steps[slot]);
        }
        let step = distill(unwinder, &mut self.framehop, return_address);
        self.addresses[slot] = return_address;
        self.steps[slot] = step.pack();
        step
    }
}

impl ThreadUnwinder {
    /// The stack id of the current hook call: replayed when the last unwind from the same start
    /// read the same stack words, else unwound (see [`capture`]) and interned with `intern`.
    ///
    /// # Safety
    /// `frame` must be the live trampoline frame of the calling thread.
    #[inline(always)]
    pub unsafe fn stack_id(
        &mut self,
        frame: *const u64,
        bounds: StackBounds,
        intern: impl FnOnce(&[u64]) -> u32,
    ) -> u32 {
        // SAFETY: the trampoline pushed these two words on the current stack.
        let start = unsafe { (*frame.add(1), frame as u64 + 16, *frame) };
        let generation = GENERATION.load(Ordering::Acquire);
        let slot = ((start.0 ^ start.1.rotate_left(17)) as usize) % REPLAY_SLOTS;
        let replay = &self.replays[slot];
        let same_start = replay.start.0 == start.0
            && replay.start.1 == start.1
            && (!replay.reads.used_start_bp || replay.start.2 == start.2);
        let hit = same_start && replay.generation == generation && replay.reads.complete && {
            // SAFETY: the same start means the same frame, so the logged words lie between it
            // and the top of this thread's stack, where they were read before.
            unsafe { replay.reads.still_valid() }
        };
        if hit {
            return replay.stack;
        }
        // SAFETY: per this function's contract.
        unsafe { self.unwind_into(slot, start, generation, frame, bounds, intern) }
    }

    /// The replay miss: unwinds, interns, and remembers the unwind in replay slot `slot`. Kept
    /// out of line so that the hit path needs no room for a stack on its frame.
    ///
    /// # Safety
    /// As for [`ThreadUnwinder::stack_id`].
    #[inline(never)]
    #[cold]
    unsafe fn unwind_into(
        &mut self,
        slot: usize,
        start: (u64, u64, u64),
        generation: u64,
        frame: *const u64,
        bounds: StackBounds,
        intern: impl FnOnce(&[u64]) -> u32,
    ) -> u32 {
        let replay = &mut self.replays[slot];
        let mut frames = [const { MaybeUninit::<u64>::uninit() }; MAX_FRAMES];
        replay.reads.clear();
        // SAFETY: per this function's contract.
        let depth = unsafe {
            capture(
                frame,
                bounds,
                Some(&mut self.steps),
                Some(&mut replay.reads),
                &mut frames,
            )
        };
        // SAFETY: `capture` initialised the first `depth` entries.
        let frames = unsafe { core::slice::from_raw_parts(frames.as_ptr() as *const u64, depth) };
        let stack = intern(frames);
        replay.start = start;
        replay.generation = generation;
        replay.stack = stack;
        stack
    }
}

/// Fills `out` with return addresses, innermost first, starting from the hook trampoline's frame
/// (`frame[0]` = caller's frame pointer, `frame[1]` = return address into the caller).
///
/// # Safety
/// `frame` must be the live trampoline frame of the calling thread.
pub unsafe fn capture(
    frame: *const u64,
    bounds: StackBounds,
    state: Option<&mut StepCache>,
    mut log: Option<&mut ReadLog>,
    out: &mut [MaybeUninit<u64>; MAX_FRAMES],
) -> usize {
    // SAFETY: the trampoline pushed these two words on the current stack.
    let (caller_bp, return_address) = unsafe { (*frame, *frame.add(1)) };
    out[0].write(return_address);
    let low = frame as u64;
    let high = bounds.high.saturating_sub(7);
    let read = |addr: u64| {
        if addr >= low && addr < high && addr.is_multiple_of(8) {
            // SAFETY: inside the calling thread's mapped stack, between the current frame and its top.
            Some(unsafe { *(addr as *const u64) })
        } else {
            None
        }
    };
    let logged_read = |log: &mut Option<&mut ReadLog>, addr: u64| {
        let value = read(addr);
        if let (Some(log), Some(value)) = (log.as_deref_mut(), value) {
            log.record(addr, value);
        }
        value
    };
    let on_own_stack = bounds.low <= low && low < bounds.high;
    let (Some(state), true) = (state, on_own_stack) else {
        return 1;
    };
    let snapshot = SNAPSHOT.load(Ordering::Acquire);
    if snapshot.is_null() {
        return 1;
    }
    // SAFETY: snapshots are never freed.
    let unwinder = unsafe { &*snapshot };
    let (mut ra, mut sp, mut bp) = (return_address, low + 16, caller_bp);
    let mut bp_is_start = true;
    let mut n = 1;
    while n < MAX_FRAMES {
        let (new_sp, new_bp, next) = match state.step(unwinder, ra) {
            Step::End => break,
            Step::FramePointer => {
                if bp_is_start && let Some(log) = log.as_deref_mut() {
                    log.used_start_bp = true;
                }
                bp_is_start = false;
                let (Some(new_bp), Some(next)) = (read(bp), read(bp.wrapping_add(8))) else {
                    break;
                };
                if let Some(log) = log.as_deref_mut() {
                    log.record_pair(bp, [new_bp, next]);
                }
                (bp.wrapping_add(16), new_bp, next)
            }
            Step::Offset { delta, bp_at } => {
                let new_sp = sp + u64::from(delta);
                bp_is_start &= bp_at.is_none();
                let new_bp = match bp_at {
                    Some(at) => match logged_read(&mut log, sp + u64::from(at)) {
                        Some(v) => v,
                        None => break,
                    },
                    None => bp,
                };
                let Some(next) = logged_read(&mut log, new_sp - 8) else {
                    break;
                };
                (new_sp, new_bp, next)
            }
            Step::Framehop => {
                if let Some(log) = log.as_deref_mut() {
                    log.complete = false;
                }
                let Some(address) = FrameAddress::from_return_address(ra) else {
                    break;
                };
                let mut regs = UnwindRegsX86_64::new(ra, sp, bp);
                let mut read_stack = |addr: u64| read(addr).ok_or(());
                match unwinder.unwind_frame(
                    address,
                    &mut regs,
                    &mut state.framehop,
                    &mut read_stack,
                ) {
                    Ok(Some(next)) => (regs.sp(), regs.bp(), next),
                    _ => break,
                }
            }
        };
        if next == 0 || new_sp <= sp {
            break;
        }
        out[n].write(next);
        n += 1;
        (ra, sp, bp) = (next, new_sp, new_bp);
    }
    n
}
