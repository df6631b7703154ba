//! The modules of a trace, with modules loaded where an unloaded one was moved apart: a plugin
//! that `dlclose` unmapped and another library `dlopen` then mapped at the same addresses (or a
//! plugin reloaded after a rebuild) must not take each other's frames.
//!
//! The recorder interns the stacks captured after an unload apart from the ones before it, and
//! defines each stack after the module records in effect when it was captured. So a stack's
//! frames belong to the modules loaded when its definition is read, the latest one where
//! ranges were reused. A module loaded over an earlier one's range is given addresses of its
//! own here: its base and ranges, and the frames of every stack defined while it is the latest
//! module at those addresses, are moved into the upper half of the address space, which no
//! x86-64 user address reaches (user space ends below 2^47, or 2^56 with five-level paging),
//! each moved module after the one before. Symbolization subtracts the base, so module offsets,
//! file and line are those of the right module; no address is shown raw for a frame in a
//! module.

use std::borrow::Cow;
use std::collections::BTreeMap;

use leaksift_trace::model::Module;

/// Where moved modules start: the upper half of the address space.
const MOVED_BASE: u64 = 1 << 63;
/// Space left between two moved modules.
const GAP: u64 = 1 << 12;

/// The trace's modules in load order, moved apart where ranges were reused.
#[derive(Debug)]
pub struct ModuleMap {
    modules: Vec<Module>,
    /// The union of every range ever loaded, in the program's addresses: `start → end`,
    /// disjoint and not touching.
    ever: BTreeMap<u64, u64>,
    /// The latest module's range at each address, in the program's addresses: `start → (end,
    /// how far its module was moved)`, disjoint; kept only while something was moved.
    latest: BTreeMap<u64, (u64, u64)>,
    /// Where the next moved module goes (`None` once the upper half is used up, which takes
    /// 2^63 bytes of modules: later ones stay where they are and the latest wins).
    next_moved: Option<u64>,
}

impl Default for ModuleMap {
    fn default() -> Self {
        ModuleMap {
            modules: Vec::new(),
            ever: BTreeMap::new(),
            latest: BTreeMap::new(),
            next_moved: Some(MOVED_BASE),
        }
    }
}

/// Whether `[start, end)` overlaps a range of `ranges` (`start → end`, disjoint).
fn overlaps<V>(
    ranges: &BTreeMap<u64, V>,
    start: u64,
    end: u64,
    end_of: impl Fn(&V) -> u64,
) -> bool {
    ranges
        .range(..end)
        .next_back()
        .is_some_and(|(_, value)| end_of(value) > start)
}

impl ModuleMap {
    /// Adds a module loaded now, moving it apart if it overlaps one loaded before.
    pub fn load(&mut self, module: &Module) {
        let ranges: Vec<(u64, u64)> = module
            .ranges
            .iter()
            .copied()
            .filter(|&(start, end)| start < end)
            .collect();
        let reused = ranges
            .iter()
            .any(|&(start, end)| overlaps(&self.ever, start, end, |&end| end));
        let low = ranges.iter().map(|r| r.0).min();
        let high = ranges.iter().map(|r| r.1).max();
        let shift = match (reused, low, high, self.next_moved) {
            (true, Some(low), Some(high), Some(to)) if to >= low => {
                self.next_moved = to
                    .checked_add(high - low)
                    .and_then(|end| end.checked_add(GAP));
                to - low
            }
            _ => 0,
        };
        for &(start, end) in &ranges {
            add_to_union(&mut self.ever, start, end);
            if self.next_moved != Some(MOVED_BASE) {
                overlay(&mut self.latest, start, end, shift);
            }
        }
        let mut placed = module.clone();
        placed.base = placed.base.wrapping_add(shift);
        for range in &mut placed.ranges {
            *range = (range.0.wrapping_add(shift), range.1.wrapping_add(shift));
        }
        self.modules.push(placed);
    }

    /// A stack's frames in the addresses of the modules loaded now: each frame in a moved
    /// module's range (the latest loaded there) moved with it.
    pub fn place<'f>(&self, frames: &'f [u64]) -> Cow<'f, [u64]> {
        if self.latest.is_empty() {
            return Cow::Borrowed(frames);
        }
        let shift_of = |frame: u64| {
            // A return address may be one past its module's last byte (a call ending it).
            let address = frame.saturating_sub(1);
            self.latest
                .range(..=address)
                .next_back()
                .filter(|(_, (end, _))| address < *end)
                .map_or(0, |(_, (_, shift))| *shift)
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

/// Adds `[start, end)` to a union of disjoint ranges, merging what it overlaps or touches.
fn add_to_union(union: &mut BTreeMap<u64, u64>, mut start: u64, mut end: u64) {
    let touching: Vec<(u64, u64)> = union
        .range(..=end)
        .rev()
        .take_while(|&(_, &e)| e >= start)
        .map(|(&s, &e)| (s, e))
        .collect();
    for (s, e) in touching {
        union.remove(&s);
        start = start.min(s);
        end = end.max(e);
    }
    union.insert(start, end);
}

/// Puts `[start, end)`, moved by `shift`, over whatever `latest` had there (cut around it).
fn overlay(latest: &mut BTreeMap<u64, (u64, u64)>, start: u64, end: u64, shift: u64) {
    let covered: Vec<(u64, (u64, u64))> = latest
        .range(..end)
        .rev()
        .take_while(|&(_, &(e, _))| e > start)
        .map(|(&s, &v)| (s, v))
        .collect();
    for (s, (e, old_shift)) in covered {
        latest.remove(&s);
        if s < start {
            latest.insert(s, (start, old_shift));
        }
        if e > end {
            latest.insert(end, (e, old_shift));
        }
    }
    latest.insert(start, (end, shift));
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
        assert_eq!(after, [MOVED_BASE + 0x1234, 0x40_1000]);
        let modules = map.into_modules();
        let path = |address: u64| module_of(&modules, address).map(|m| m.path.as_str());
        assert_eq!(path(before[0]), Some("one.so"));
        assert_eq!(path(after[0]), Some("two.so"));
        assert_eq!(path(after[1]), Some("main"));
        assert_eq!(modules[2].base, MOVED_BASE);
    }

    #[test]
    fn a_return_address_at_the_end_of_a_moved_range_moves_with_it() {
        let mut map = ModuleMap::default();
        map.load(&module(1, "one.so", 0x1000, &[(0x1000, 0x2000)]));
        map.load(&module(2, "two.so", 0x1000, &[(0x1000, 0x2000)]));
        assert_eq!(map.place(&[0x2000]).into_owned(), [MOVED_BASE + 0x1000]);
        assert_eq!(
            map.place(&[0x2001]).into_owned(),
            [0x2001],
            "past the range"
        );
    }

    proptest::proptest! {
        /// Right after a module is loaded, a frame anywhere in its ranges resolves to it,
        /// whatever was loaded before (overlapping partly, wholly, or not at all).
        #[test]
        fn a_frame_resolves_to_the_module_loaded_last_there(
            loads in proptest::collection::vec(
                (0u64..48, 1u64..16, proptest::option::of((0u64..48, 1u64..8)), 0u64..16),
                1..40,
            )
        ) {
            let page = 0x1000;
            let mut map = ModuleMap::default();
            let mut placed = Vec::new();
            for (id, &(start, len, second, at)) in loads.iter().enumerate() {
                let mut ranges = vec![(start * page, (start + len) * page)];
                if let Some((s, l)) = second {
                    ranges.push((s * page, (s + l) * page));
                }
                map.load(&module(id as u32, &format!("m{id}"), start * page, &ranges));
                let frame = start * page + (at % len) * page + 1;
                placed.push((id, map.place(&[frame]).into_owned()[0]));
            }
            let modules = map.into_modules();
            for (id, frame) in placed {
                let found = module_of(&modules, frame - 1).map(|m| m.path.clone());
                proptest::prop_assert_eq!(found, Some(format!("m{id}")));
            }
        }
    }

    /// A QA run dlopened 300 plugins one after the other at one address: with 255 address
    /// spaces, 45 of them had their leaks shown in other plugins.
    #[test]
    fn every_module_loaded_at_one_address_keeps_its_frames() {
        let mut map = ModuleMap::default();
        let mut frames = Vec::new();
        for id in 0..1_000u32 {
            map.load(&module(
                id,
                &format!("lib{id}.so"),
                0x1000,
                &[(0x1000, 0x3000)],
            ));
            frames.push(map.place(&[0x2345]).into_owned()[0]);
        }
        let modules = map.into_modules();
        for (id, &frame) in frames.iter().enumerate() {
            assert_eq!(
                module_of(&modules, frame - 1).map(|m| m.path.clone()),
                Some(format!("lib{id}.so"))
            );
            assert_eq!(frame - modules[id].base, 0x1345, "the offset in the module");
        }
    }
}
