//! The loaded modules, read with `dl_iterate_phdr` (never from inside an allocation hook: it takes
//! the loader lock): path, GNU build-id, load bias, PT_LOAD ranges, writable ranges and unwind tables.

use core::ffi::{c_int, c_void};

/// One module as the dynamic loader reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedModule {
    pub path: String,
    pub build_id: Option<Vec<u8>>,
    pub base: u64,
    /// PT_LOAD ranges `[start, end)` in AVMA.
    pub ranges: Vec<(u64, u64)>,
    /// `.eh_frame_hdr` (from PT_GNU_EH_FRAME) as `(start, len)` in AVMA.
    pub eh_frame_hdr: Option<(u64, u64)>,
    /// `.eh_frame` as `(start, end of the PT_LOAD holding it)` in AVMA, decoded from the
    /// header while the loader keeps the module mapped: read later, the module could be gone
    /// (another thread's `dlclose` between listing the modules and building the unwinder).
    pub eh_frame: Option<(u64, u64)>,
}

/// Load/unload counters of the loader: when they change, the module list changed.
pub fn generation() -> (u64, u64) {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: the loader passes a valid info; `data` is the `(u64, u64)` below.
        unsafe {
            let out = &mut *(data as *mut (u64, u64));
            *out = ((*info).dlpi_adds, (*info).dlpi_subs);
        }
        1
    }
    let mut counters = (0u64, 0u64);
    // SAFETY: the callback only writes through `data`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(first), &mut counters as *mut _ as *mut c_void) };
    counters
}

/// Every loaded module, in loader order (the main program first).
pub fn loaded_modules() -> Vec<LoadedModule> {
    unsafe extern "C" fn collect(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: the loader passes a valid info whose phdrs stay mapped during the callback;
        // `data` is the Vec below.
        unsafe {
            let out = &mut *(data as *mut Vec<LoadedModule>);
            if let Some(module) = describe(&*info) {
                out.push(module);
            }
        }
        0
    }
    let mut modules = Vec::new();
    // SAFETY: the callback only pushes into `modules`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(collect), &mut modules as *mut _ as *mut c_void) };
    make_paths_absolute(&mut modules);
    modules
}

/// Names every module by an absolute path.
///
/// The loader names a library loaded by a relative path (`dlopen("./libplug.so")`, a relative
/// `LD_LIBRARY_PATH` or `RPATH` entry) by that path, relative to the directory the program was
/// in at the time: `report`, run from another directory, looked for another file. Such a
/// module's path becomes that of the file mapped at its first segment, which
/// `/proc/self/maps` gives absolutely whatever the program's directory is now (read only when
/// needed, and never in a hook: it allocates). Names without a `/` are left alone: the vDSO's
/// (`linux-vdso.so.1`) is the one the loader reports.
///
/// The main program has no name: it is `/proc/self/exe`, unless the program was run through
/// the loader as a command (`/lib64/ld-linux-x86-64.so.2 ./prog`), when that is the loader,
/// which is listed as itself too: the program's frames were symbolized in the loader's file.
/// Then it is the file mapped at its first segment as well.
fn make_paths_absolute(modules: &mut [LoadedModule]) {
    let main = modules.iter().position(|m| m.path.is_empty());
    if let Some(main) = main {
        modules[main].path = std::fs::read_link(crate::sys::own_proc_file("exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    let loader_as_main = main.is_some_and(|main| {
        let exe = &modules[main].path;
        let file_name = |path: &str| path.rsplit('/').next().unwrap_or_default().to_string();
        // The loader is listed by the name programs give it (`/lib64/…`), the link
        // `/proc/self/exe` by its target (`/usr/lib/…`): the same file.
        let same_file = |a: &str, b: &str| {
            use std::os::unix::fs::MetadataExt;
            match (std::fs::metadata(a), std::fs::metadata(b)) {
                (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
                _ => false,
            }
        };
        !exe.is_empty()
            && modules.iter().enumerate().any(|(i, m)| {
                i != main && file_name(&m.path) == file_name(exe) && same_file(&m.path, exe)
            })
    });
    let relative = |m: &LoadedModule| !m.path.starts_with('/') && m.path.contains('/');
    if !loader_as_main && !modules.iter().any(relative) {
        return;
    }
    // Bytes: a mapped file's path need not be UTF-8.
    let Ok(maps) = std::fs::read(crate::sys::own_proc_file("maps")) else {
        return;
    };
    let maps = String::from_utf8_lossy(&maps);
    for (i, module) in modules.iter_mut().enumerate() {
        if !(relative(module) || (loader_as_main && Some(i) == main)) {
            continue;
        }
        if let Some(path) = module
            .ranges
            .first()
            .and_then(|&(start, _)| mapped_file_at(&maps, start))
        {
            module.path = path;
        }
    }
}

/// The absolute path of the file mapped at `address` in a `/proc/PID/maps` text.
fn mapped_file_at(maps: &str, address: u64) -> Option<String> {
    maps.lines().find_map(|line| {
        // start-end perms offset dev inode, then the path after padding.
        let mut fields = line.splitn(6, ' ');
        let (start, end) = fields.next()?.split_once('-')?;
        let start = u64::from_str_radix(start, 16).ok()?;
        let end = u64::from_str_radix(end, 16).ok()?;
        if !(start <= address && address < end) {
            return None;
        }
        let path = fields.nth(4)?.trim_start();
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        path.starts_with('/').then(|| path.to_string())
    })
}

/// # Safety
/// `info` must be a loader-provided `dl_phdr_info` for a module that stays mapped.
unsafe fn describe(info: &libc::dl_phdr_info) -> Option<LoadedModule> {
    if info.dlpi_phdr.is_null() || info.dlpi_phnum == 0 {
        return None;
    }
    // SAFETY: the loader guarantees `dlpi_phnum` headers at `dlpi_phdr`.
    let phdrs =
        unsafe { core::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    let base = info.dlpi_addr;
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a NUL-terminated string owned by the loader.
        unsafe { core::ffi::CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    // The main program's empty name is filled in by `make_paths_absolute`.
    let mut module = LoadedModule {
        path: name,
        build_id: None,
        base,
        ranges: Vec::new(),
        eh_frame_hdr: None,
        eh_frame: None,
    };
    for ph in phdrs {
        let start = base.wrapping_add(ph.p_vaddr);
        let end = start.wrapping_add(ph.p_memsz);
        match ph.p_type {
            libc::PT_LOAD => {
                module.ranges.push((start, end));
            }
            libc::PT_GNU_EH_FRAME => module.eh_frame_hdr = Some((start, ph.p_memsz)),
            libc::PT_NOTE if module.build_id.is_none() => {
                // SAFETY: PT_NOTE of a loaded module is mapped readable for `p_memsz` bytes.
                let notes =
                    unsafe { core::slice::from_raw_parts(start as *const u8, ph.p_memsz as usize) };
                module.build_id = gnu_build_id(notes);
            }
            _ => {}
        }
    }
    if let Some((hdr, hdr_len)) = module.eh_frame_hdr {
        // SAFETY: PT_GNU_EH_FRAME lies inside a mapped, read-only PT_LOAD of the module, which
        // the loader keeps mapped while it reports it; at most the 12 header bytes are read.
        let header =
            unsafe { core::slice::from_raw_parts(hdr as *const u8, hdr_len.min(12) as usize) };
        module.eh_frame = crate::unwind::eh_frame_address(hdr, header).and_then(|eh_frame| {
            // `.eh_frame` runs to the end of the PT_LOAD that holds it at most.
            let &(_, end) = module
                .ranges
                .iter()
                .find(|r| r.0 <= eh_frame && eh_frame < r.1)?;
            Some((eh_frame, end))
        });
    }
    (!module.ranges.is_empty()).then_some(module)
}

/// Finds NT_GNU_BUILD_ID in a note segment.
fn gnu_build_id(mut notes: &[u8]) -> Option<Vec<u8>> {
    let align4 = |n: usize| (n + 3) & !3;
    while notes.len() >= 12 {
        let word = |i: usize| {
            u32::from_ne_bytes([notes[i], notes[i + 1], notes[i + 2], notes[i + 3]]) as usize
        };
        let (namesz, descsz, kind) = (word(0), word(4), word(8));
        let name_end = 12 + align4(namesz);
        let desc_end = name_end.checked_add(align4(descsz))?;
        if desc_end > notes.len() {
            return None;
        }
        if kind == 3 && namesz == 4 && &notes[12..16] == b"GNU\0" {
            return Some(notes[name_end..name_end + descsz].to_vec());
        }
        notes = &notes[desc_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::mapped_file_at;

    const MAPS: &str = "\
55d0c8a00000-55d0c8a01000 r--p 00000000 08:01 1234                       /tmp/run dir/app
7f1e2c000000-7f1e2c001000 r--p 00000000 08:01 5678                       /tmp/run dir/libplug.so
7f1e2c001000-7f1e2c002000 r-xp 00001000 08:01 5678                       /tmp/run dir/libplug.so (deleted)
7ffd1b5f0000-7ffd1b5f2000 r-xp 00000000 00:00 0                          [vdso]
7ffd1b600000-7ffd1b601000 rw-p 00000000 00:00 0 
";

    #[test]
    fn the_file_mapped_at_an_address_is_named_absolutely() {
        assert_eq!(
            mapped_file_at(MAPS, 0x7f1e2c000010).as_deref(),
            Some("/tmp/run dir/libplug.so")
        );
        assert_eq!(
            mapped_file_at(MAPS, 0x7f1e2c001000).as_deref(),
            Some("/tmp/run dir/libplug.so")
        );
        assert_eq!(mapped_file_at(MAPS, 0x7ffd1b5f0000), None);
        assert_eq!(mapped_file_at(MAPS, 0x7ffd1b600000), None);
        assert_eq!(mapped_file_at(MAPS, 0x1000), None);
    }
}
