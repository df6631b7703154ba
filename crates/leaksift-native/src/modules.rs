//! The modules of a trace, with modules loaded where an unloaded one was moved apart: a plugin
//! that `dlclose` unmapped and another library `dlopen` then mapped at the same addresses (or a
//! plugin reloaded after a rebuild) must not take each other's frames.
//!
//! The recorder interns the stacks captured after an unload apart from the ones before it, and
//! defines each stack after the module records in effect when it was captured. So a stack's
//! frames belong to the modules loaded when its definition is read, the latest one where
//! ranges were reused. A module loaded over an earlier one's range is given a distinct
//! address space here: its base and ranges, and the frames of every stack defined while it is
//! the latest module at those addresses, are moved up by a multiple of 2^56, above any user
//! address x86-64 hands out (47 bits, 56 with five-level paging). Symbolization subtracts the
//! base, so module offsets, file and line are those of the right module; no address is shown
//! raw for a frame in a module. After 255 such moves, further reused ranges are left where they
//! are and resolve to the latest module, as before.

use std::borrow::Cow;

use leaksift_trace::model::Module;

/// Multiples of this separate the address spaces of modules loaded over one another.
const SPACE: u64 = 1 << 56;
/// How many modules can be moved apart (the 255 multiples of [`SPACE`] above the first).
const MAX_MOVED: u64 = 255;

/// One loaded range as the program saw it, and how far its module was moved.
#[derive(Clone, Copy, Debug)]
struct LoadedRange {
    start: u64,
    end: u64,
    shift: u64,
}

/// The trace's modules in load order, moved apart where ranges were reused.
#[derive(Debug, Default)]
pub struct ModuleMap {
    modules: Vec<Module>,
    /// Every range ever loaded, in load order, in the program's addresses.
    loaded: Vec<LoadedRange>,
    moved: u64,
}

impl ModuleMap {
    /// Adds a module loaded now, moving it apart if it overlaps one loaded before.
    pub fn load(&mut self, module: &Module) {
        let reused = module.ranges.iter().any(|&(start, end)| {
            self.loaded
                .iter()
                .any(|range| start < range.end && range.start < end)
        });
        let shift = if reused && self.moved < MAX_MOVED {
            self.moved += 1;
            self.moved * SPACE
        } else {
            0
        };
        self.loaded
            .extend(
                module
                    .ranges
                    .iter()
                    .map(|&(start, end)| LoadedRange { start, end, shift }),
            );
        let mut placed = module.clone();
        placed.base = placed.base.wrapping_add(shift);
        for range in &mut placed.ranges {
            *range = (range.0 + shift, range.1 + shift);
        }
        self.modules.push(placed);
    }

    /// A stack's frames in the address space of the modules loaded now: each frame in a moved
    /// module's range (the latest loaded there) moved with it.
    pub fn place<'f>(&self, frames: &'f [u64]) -> Cow<'f, [u64]> {
        if self.moved == 0 {
            return Cow::Borrowed(frames);
        }
        let shift_of = |frame: u64| {
            // A return address may be one past its module's last byte (a call ending it).
            let address = frame.saturating_sub(1);
            self.loaded
                .iter()
                .rev()
                .find(|range| range.start <= address && address < range.end)
                .map_or(0, |range| range.shift)
        };
        if frames.iter().all(|&frame| shift_of(frame) == 0) {
            return Cow::Borrowed(frames);
        }
        Cow::Owned(
            frames
                .iter()
                .map(|&frame| frame.wrapping_add(shift_of(frame)))
                .collect(),
        )
    }

    /// The modules, moved apart, in load order.
    pub fn into_modules(self) -> Vec<Module> {
        self.modules
    }
}

#[cfg(test)]
mod tests {
    use leaksift_trace::model::ModuleId;

    use super::*;
    use crate::replay::module_of;

    fn module(id: u32, path: &str, base: u64, ranges: &[(u64, u64)]) -> Module {
        Module {
            id: ModuleId(id),
            path: path.to_string(),
            build_id: None,
            base,
            ranges: ranges.to_vec(),
        }
    }

    #[test]
    fn a_module_loaded_over_an_unloaded_one_keeps_its_own_frames() {
        let mut map = ModuleMap::default();
        map.load(&module(0, "main", 0x40_0000, &[(0x40_0000, 0x41_0000)]));
        map.load(&module(
            1,
            "one.so",
            0x7f00_0000,
            &[(0x7f00_0000, 0x7f01_0000)],
        ));
        let before = [0x7f00_1234, 0x40_1000];
        assert_eq!(map.place(&before), &before[..], "nothing moved yet");
        map.load(&module(
            2,
            "two.so",
            0x7f00_0000,
            &[(0x7f00_0000, 0x7f01_0000)],
        ));
        let after = map.place(&before).into_owned();
        assert_eq!(after, [0x7f00_1234 + SPACE, 0x40_1000]);
        let modules = map.into_modules();
        let path = |address: u64| module_of(&modules, address).map(|m| m.path.as_str());
        assert_eq!(path(before[0]), Some("one.so"));
        assert_eq!(path(after[0]), Some("two.so"));
        assert_eq!(path(after[1]), Some("main"));
        assert_eq!(modules[2].base, 0x7f00_0000 + SPACE);
    }

    #[test]
    fn a_return_address_at_the_end_of_a_moved_range_moves_with_it() {
        let mut map = ModuleMap::default();
        map.load(&module(1, "one.so", 0x1000, &[(0x1000, 0x2000)]));
        map.load(&module(2, "two.so", 0x1000, &[(0x1000, 0x2000)]));
        assert_eq!(map.place(&[0x2000]).into_owned(), [0x2000 + SPACE]);
        assert_eq!(
            map.place(&[0x2001]).into_owned(),
            [0x2001],
            "past the range"
        );
    }

    #[test]
    fn moves_stop_after_the_last_address_space() {
        let mut map = ModuleMap::default();
        for id in 0..=MAX_MOVED as u32 + 1 {
            map.load(&module(id, "again.so", 0x1000, &[(0x1000, 0x2000)]));
        }
        let modules = map.into_modules();
        assert_eq!(modules[MAX_MOVED as usize].base, 0x1000 + MAX_MOVED * SPACE);
        assert_eq!(
            modules[MAX_MOVED as usize + 1].base,
            0x1000,
            "left in place"
        );
    }
}
