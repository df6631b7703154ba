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

/// Top of the calling thread's stack: unwinding reads only between the hook's frame and it.
#[derive(Clone, Copy, Default)]
pub struct StackBounds {
    pub high: u64,
}

/// Fills `out` with return addresses, innermost first, starting from the hook trampoline's frame
/// (`frame[0]` = caller's frame pointer, `frame[1]` = return address into the caller).
///
/// # Safety
/// `frame` must be the live trampoline frame of the calling thread.
pub unsafe fn capture(
    frame: *const u64,
    bounds: StackBounds,
    cache: Option<&mut UnwindCache>,
    out: &mut [core::mem::MaybeUninit<u64>; MAX_FRAMES],
) -> usize {
    // SAFETY: the trampoline pushed these two words on the current stack.
    let (caller_bp, return_address) = unsafe { (*frame, *frame.add(1)) };
    out[0].write(return_address);
    let sp = frame as u64 + 16;
    let mut read_stack = |addr: u64| {
        if addr >= frame as u64 && addr < bounds.high.saturating_sub(7) && addr % 8 == 0 {
            // SAFETY: inside the calling thread's mapped stack, between the current frame and its top.
            Ok(unsafe { *(addr as *const u64) })
        } else {
            Err(())
        }
    };
    let (Some(cache), false) = (cache, bounds.high == 0) else {
        return 1;
    };
    let snapshot = SNAPSHOT.load(Ordering::Acquire);
    if snapshot.is_null() {
        return 1;
    }
    // SAFETY: snapshots are never freed.
    let unwinder = unsafe { &*snapshot };
    let mut regs = UnwindRegsX86_64::new(return_address, sp, caller_bp);
    let mut n = 1;
    let Some(mut address) = FrameAddress::from_return_address(return_address) else {
        return n;
    };
    while n < MAX_FRAMES {
        match unwinder.unwind_frame(address, &mut regs, cache, &mut read_stack) {
            Ok(Some(next)) if next != 0 => {
                out[n].write(next);
                n += 1;
                match FrameAddress::from_return_address(next) {
                    Some(a) => address = a,
                    None => break,
                }
            }
            _ => break,
        }
    }
    n
}

/// A fresh per-thread unwind cache (allocates: call outside hooks' hot path, under the guard).
pub fn new_cache() -> Box<UnwindCache> {
    Box::new(UnwindCache::new_in())
}
