//! Stack capture in the allocation hooks: DWARF CFI (`.eh_frame`) through framehop with a
//! per-thread rule cache, falling back to the frame-pointer chain where a module has no CFI.
//! The module snapshot is rebuilt outside the hooks (constructor, writer thread, `dlopen`) and
//! swapped atomically; old snapshots are leaked because a hook may still be reading them.

use core::ops::Deref;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, MustNotAllocateDuringUnwind, Unwinder};

use crate::modules::LoadedModule;

/// Deepest stack recorded (innermost frames are kept).
pub const MAX_FRAMES: usize = 64;

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
    if let Some((hdr, hdr_len)) = module.eh_frame_hdr {
        // SAFETY: PT_GNU_EH_FRAME lies inside a mapped, read-only PT_LOAD of a loaded module.
        let hdr_bytes: &'static [u8] =
            unsafe { core::slice::from_raw_parts(hdr as *const u8, hdr_len as usize) };
        if let Some(eh_frame) = eh_frame_address(hdr, hdr_bytes) {
            // `.eh_frame` runs to the end of the PT_LOAD that holds it at most.
            if let Some(&(_, seg_end)) = module
                .ranges
                .iter()
                .find(|r| r.0 <= eh_frame && eh_frame < r.1)
            {
                // SAFETY: `eh_frame..seg_end` is inside one mapped PT_LOAD of a loaded module.
                let bytes: &'static [u8] = unsafe {
                    core::slice::from_raw_parts(
                        eh_frame as *const u8,
                        (seg_end - eh_frame) as usize,
                    )
                };
                info.eh_frame_svma = Some(eh_frame - module.base..seg_end - module.base);
                info.eh_frame = Some(MappedBytes(bytes));
                info.eh_frame_hdr_svma = Some(hdr - module.base..hdr + hdr_len - module.base);
                info.eh_frame_hdr = Some(MappedBytes(hdr_bytes));
            }
        }
    }
    Some(framehop::Module::new(
        module.path.clone(),
        start..end,
        module.base,
        info,
    ))
}

/// Decodes `eh_frame_ptr` from an `.eh_frame_hdr` (version 1, pcrel/absolute sdata4/udata8).
fn eh_frame_address(hdr: u64, bytes: &[u8]) -> Option<u64> {
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

/// A thread's unwinding state: framehop's cache plus a direct-mapped cache of distilled steps.
pub struct ThreadUnwinder {
    framehop: UnwindCache,
    generation: u64,
    addresses: [u64; STEP_SLOTS],
    steps: [u64; STEP_SLOTS],
    /// The last stack this thread interned: loops allocate from the same stack again and again.
    last_frames: [u64; MAX_FRAMES],
    last_len: usize,
    last_id: u32,
}

/// Unwinders of exited threads, reused by new threads (thread start/exit only, not the hot path).
static POOL: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// An unwinder for a new thread: a retired one if available, else a fresh one (allocates: call
/// under the guard, not on the hot path).
pub fn take_thread_unwinder() -> *mut ThreadUnwinder {
    if let Some(reused) = POOL.lock().ok().and_then(|mut pool| pool.pop()) {
        let unwinder = reused as *mut ThreadUnwinder;
        // SAFETY: pooled unwinders are owned by nobody; clearing the repeat shortcut keeps a
        // stale stack of the previous thread from being reused.
        unsafe { (*unwinder).last_len = usize::MAX };
        return unwinder;
    }
    Box::into_raw(Box::new(ThreadUnwinder {
        framehop: UnwindCache::new_in(),
        generation: 0,
        addresses: [0; STEP_SLOTS],
        steps: [0; STEP_SLOTS],
        last_frames: [0; MAX_FRAMES],
        last_len: usize::MAX,
        last_id: 0,
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

impl ThreadUnwinder {
    /// The id of `frames`: the previous id if the stack repeats, else `intern`'s answer.
    pub fn stack_id(&mut self, frames: &[u64], intern: impl FnOnce(&[u64]) -> u32) -> u32 {
        if self.last_len == frames.len() && self.last_frames[..frames.len()] == *frames {
            return self.last_id;
        }
        let id = intern(frames);
        self.last_frames[..frames.len()].copy_from_slice(frames);
        self.last_len = frames.len();
        self.last_id = id;
        id
    }

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

/// Fills `out` with return addresses, innermost first, starting from the hook trampoline's frame
/// (`frame[0]` = caller's frame pointer, `frame[1]` = return address into the caller).
///
/// # Safety
/// `frame` must be the live trampoline frame of the calling thread.
pub unsafe fn capture(
    frame: *const u64,
    bounds: StackBounds,
    state: Option<&mut ThreadUnwinder>,
    out: &mut [core::mem::MaybeUninit<u64>; MAX_FRAMES],
) -> usize {
    // SAFETY: the trampoline pushed these two words on the current stack.
    let (caller_bp, return_address) = unsafe { (*frame, *frame.add(1)) };
    out[0].write(return_address);
    let low = frame as u64;
    let high = bounds.high.saturating_sub(7);
    let read = |addr: u64| {
        if addr >= low && addr < high && addr % 8 == 0 {
            // SAFETY: inside the calling thread's mapped stack, between the current frame and its top.
            Some(unsafe { *(addr as *const u64) })
        } else {
            None
        }
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
    let mut n = 1;
    while n < MAX_FRAMES {
        let (new_sp, new_bp, next) = match state.step(unwinder, ra) {
            Step::End => break,
            Step::FramePointer => {
                let Some(new_bp) = read(bp) else { break };
                let new_sp = bp.wrapping_add(16);
                let Some(next) = read(new_sp.wrapping_sub(8)) else {
                    break;
                };
                (new_sp, new_bp, next)
            }
            Step::Offset { delta, bp_at } => {
                let new_sp = sp + u64::from(delta);
                let new_bp = match bp_at {
                    Some(at) => match read(sp + u64::from(at)) {
                        Some(v) => v,
                        None => break,
                    },
                    None => bp,
                };
                let Some(next) = read(new_sp - 8) else { break };
                (new_sp, new_bp, next)
            }
            Step::Framehop => {
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
