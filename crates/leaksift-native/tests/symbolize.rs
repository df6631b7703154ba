//! Symbolization of a real binary from a recorded module map: the recorded path, a build-id
//! debug directory when the binary is gone (another machine), and `??` with module+offset when no
//! symbols can be found.

use std::path::{Path, PathBuf};
use std::process::Command;

use leaksift_native::symbolize::{Symbolizer, UNKNOWN};
use leaksift_trace::model::{Module, ModuleId};

const BIAS: u64 = 0x5555_0000_0000;

fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/native")
}

fn run(command: &mut Command) {
    let status = command.status().expect("tool runs");
    assert!(status.success(), "{command:?} failed");
}

/// Builds `stacks.c` with debug info and returns the binary and `inner_alloc`'s ELF address.
fn build(dir: &Path) -> (PathBuf, u64) {
    build_as(dir, "stacks", &[])
}

/// Builds `stacks.c` with debug info and `flags` into `dir/name`, and returns it and
/// `inner_alloc`'s ELF address.
fn build_as(dir: &Path, name: &str, flags: &[&str]) -> (PathBuf, u64) {
    let binary = dir.join(name);
    run(Command::new("cc")
        .args(["-g", "-O0", "-Wl,--build-id"])
        .args(flags)
        .arg("-o")
        .arg(&binary)
        .arg(programs().join("stacks.c")));
    let nm = Command::new("nm").arg(&binary).output().unwrap();
    let listing = String::from_utf8(nm.stdout).unwrap();
    let address = listing
        .lines()
        .find_map(|line| {
            let mut parts = line.split_whitespace();
            let (address, _, name) = (parts.next()?, parts.next()?, parts.next()?);
            (name == "inner_alloc").then(|| u64::from_str_radix(address, 16).unwrap())
        })
        .expect("inner_alloc in nm output");
    (binary, address)
}

fn module(path: &Path, build_id: Option<Vec<u8>>) -> Module {
    Module {
        id: ModuleId(1),
        path: path.display().to_string(),
        build_id,
        base: BIAS,
        ranges: vec![(BIAS, BIAS + 0x10_0000)],
    }
}

fn build_id(path: &Path) -> Vec<u8> {
    blazesym::helper::read_elf_build_id(path)
        .unwrap()
        .expect("binary has a build-id")
        .into_owned()
}

#[test]
fn symbolizes_from_the_recorded_path_and_from_a_build_id_debug_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (binary, inner_alloc) = build(dir.path());
    let id = build_id(&binary);
    // A return address a few bytes into `inner_alloc`.
    let address = BIAS + inner_alloc + 9;

    let modules = [module(&binary, Some(id.clone()))];
    let mut symbolizer = Symbolizer::new(&modules, &[]);
    let frames = symbolizer.stack(&[address]);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].function, "inner_alloc");
    assert!(frames[0].file.as_deref().unwrap().ends_with("stacks.c"));
    assert!(
        (6..=10).contains(&frames[0].line.unwrap()),
        "{:?}",
        frames[0]
    );

    // Another machine: the binary is gone, its debug file sits in a build-id directory.
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let debug_root = dir.path().join("debug");
    let debug_file = debug_root
        .join(".build-id")
        .join(&hex[..2])
        .join(format!("{}.debug", &hex[2..]));
    std::fs::create_dir_all(debug_file.parent().unwrap()).unwrap();
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&binary)
        .arg(&debug_file));
    let elsewhere = [module(&dir.path().join("gone/stacks"), Some(id.clone()))];
    let mut symbolizer = Symbolizer::new(&elsewhere, std::slice::from_ref(&debug_root));
    let moved = symbolizer.stack(&[address]);
    assert_eq!(
        moved,
        frames
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f.module = elsewhere[0].path.clone();
                f
            })
            .collect::<Vec<_>>()
    );

    // A different build at the recorded path is not trusted.
    let wrong = [module(&binary, Some(vec![0xde, 0xad, 0xbe, 0xef]))];
    let mut symbolizer = Symbolizer::new(&wrong, &[debug_root]);
    let unknown = symbolizer.stack(&[address]);
    assert_eq!(unknown[0].function, UNKNOWN);
    assert_eq!(unknown[0].module, binary.display().to_string());
    assert_eq!(unknown[0].offset, inner_alloc + 8);
}

/// A corrupt file at the build-id debug path (random bytes) was taken over the binary itself,
/// which still had every symbol: all frames became `??`. It is now passed over.
#[test]
fn a_corrupt_build_id_debug_file_is_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let (binary, inner_alloc) = build(dir.path());
    let id = build_id(&binary);
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let debug_root = dir.path().join("garbage");
    let debug_file = debug_root
        .join(".build-id")
        .join(&hex[..2])
        .join(format!("{}.debug", &hex[2..]));
    std::fs::create_dir_all(debug_file.parent().unwrap()).unwrap();
    std::fs::write(&debug_file, b"\x7fELF but not really an ELF file at all").unwrap();
    let address = BIAS + inner_alloc + 9;
    let modules = [module(&binary, Some(id.clone()))];
    let mut symbolizer = Symbolizer::new(&modules, std::slice::from_ref(&debug_root));
    assert_eq!(symbolizer.stack(&[address])[0].function, "inner_alloc");
    assert_eq!(symbolizer.unresolved_modules(), vec![]);

    // With the binary gone too, the reason names the file passed over.
    let gone = [module(&dir.path().join("gone/stacks"), Some(id))];
    let mut symbolizer = Symbolizer::new(&gone, &[debug_root]);
    assert_eq!(symbolizer.stack(&[address])[0].function, UNKNOWN);
    let unresolved = symbolizer.unresolved_modules();
    assert!(
        unresolved[0]
            .reason
            .contains("not an ELF file of this build: passed over"),
        "{unresolved:?}"
    );
}

#[test]
fn addresses_outside_every_module_are_unknown_not_errors() {
    let modules = [module(Path::new("/nonexistent/lib.so"), None)];
    let mut symbolizer = Symbolizer::new(&modules, &[]);
    let frames = symbolizer.stack(&[0x42, BIAS + 0x100]);
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|f| f.function == UNKNOWN));
    assert_eq!(frames[0].module, UNKNOWN);
    assert_eq!(frames[0].offset, 0x42);
    assert_eq!(frames[1].module, "/nonexistent/lib.so");
    assert_eq!(frames[1].offset, 0xff);
}

#[test]
fn follows_gnu_debuglink_into_a_debug_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (binary, inner_alloc) = build(dir.path());
    let debug_root = dir.path().join("debug");
    std::fs::create_dir_all(&debug_root).unwrap();
    let debug_file = debug_root.join("stacks.debug");
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&binary)
        .arg(&debug_file));
    // Strip the binary's DWARF and point it at the separate file, as distributions do.
    run(Command::new("objcopy")
        .arg("--strip-debug")
        .arg(format!("--add-gnu-debuglink={}", debug_file.display()))
        .arg(&binary));
    let modules = [module(&binary, Some(build_id(&binary)))];
    let address = BIAS + inner_alloc + 9;

    let without = Symbolizer::new(&modules, &[]).stack(&[address]);
    assert_eq!(
        without[0].function, "inner_alloc",
        "the symbol table is kept"
    );
    assert_eq!(
        without[0].line, None,
        "no line information without the debug file"
    );

    let with = Symbolizer::new(&modules, std::slice::from_ref(&debug_root)).stack(&[address]);
    assert_eq!(with[0].function, "inner_alloc");
    assert!(with[0].file.as_deref().unwrap().ends_with("stacks.c"));
    assert!(with[0].line.is_some());
}

/// Debug sections compressed with zstd (`objcopy --compress-debug-sections=zstd`, gcc
/// `-gz=zstd`) made the whole module `??` ("failed to read ELF section"): blazesym was built
/// without zstd.
#[test]
fn zstd_compressed_debug_sections_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (binary, inner_alloc) = build(dir.path());
    run(Command::new("objcopy")
        .arg("--compress-debug-sections=zstd")
        .arg(&binary));
    let modules = [module(&binary, Some(build_id(&binary)))];
    let frames = Symbolizer::new(&modules, &[]).stack(&[BIAS + inner_alloc + 9]);
    assert_eq!(frames[0].function, "inner_alloc");
    assert!(frames[0].file.as_deref().unwrap().ends_with("stacks.c"));
    assert!(frames[0].line.is_some(), "{frames:?}");
}

/// The file offset of section `name` in `binary`, from `readelf -S -W`.
fn section_offset(binary: &Path, name: &str) -> u64 {
    let readelf = Command::new("readelf")
        .args(["-S", "-W"])
        .arg(binary)
        .output()
        .unwrap();
    let listing = String::from_utf8(readelf.stdout).unwrap();
    listing
        .lines()
        .find_map(|line| {
            // `  [28] .debug_info  PROGBITS  0000000000000000 003035 0000a1 00  C  0   0  8`
            let fields: Vec<&str> = line.split(']').nth(1)?.split_whitespace().collect();
            (fields.first() == Some(&name)).then(|| u64::from_str_radix(fields[3], 16).unwrap())
        })
        .unwrap_or_else(|| panic!("{name} in readelf output:\n{listing}"))
}

/// Debug information blazesym cannot read (here a compressed `.debug_info` whose compression
/// header names an unknown algorithm) failed the whole module, every frame `??`: the symbol
/// table still names the functions.
#[test]
fn unreadable_debug_information_still_gives_symbol_table_names() {
    use std::io::{Seek, SeekFrom, Write};

    let dir = tempfile::tempdir().unwrap();
    let (binary, inner_alloc) = build(dir.path());
    run(Command::new("objcopy")
        .arg("--compress-debug-sections=zlib")
        .arg(&binary));
    // Elf64_Chdr.ch_type, the section's first word: 1 is zlib, 2 zstd, 0x7f nothing known.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&binary)
        .unwrap();
    file.seek(SeekFrom::Start(section_offset(&binary, ".debug_info")))
        .unwrap();
    file.write_all(&0x7f_u32.to_le_bytes()).unwrap();
    drop(file);

    let modules = [module(&binary, Some(build_id(&binary)))];
    let mut symbolizer = Symbolizer::new(&modules, &[]);
    let frames = symbolizer.stack(&[BIAS + inner_alloc + 9, BIAS + 0x5]);
    assert_eq!(frames[0].function, "inner_alloc", "{frames:?}");
    assert_eq!(frames[0].line, None);
    // An address no symbol covers is `??`, and the reason says the debug information is unreadable.
    assert_eq!(frames[1].function, UNKNOWN);
    let unresolved = symbolizer.unresolved_modules();
    assert!(
        unresolved[0]
            .reason
            .contains("its debug information could not be read"),
        "{unresolved:?}"
    );
}

/// gcc's DWARF names a C++ function with internal linkage by its bare name (no
/// `DW_AT_linkage_name`): both anonymous-namespace `make`s were `make`, both lambdas
/// `operator()`. The symbol table's mangled name gives the qualified one, as in valgrind and
/// `addr2line -C`.
#[test]
fn internal_linkage_cxx_functions_get_their_qualified_names() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("internal_linkage");
    run(Command::new("g++")
        .args(["-g", "-O0", "-Wl,--build-id", "-o"])
        .arg(&binary)
        .arg(programs().join("internal_linkage.cpp")));
    let nm = Command::new("nm").arg(&binary).output().unwrap();
    let listing = String::from_utf8(nm.stdout).unwrap();
    let address_of = |symbol: &str| {
        listing
            .lines()
            .find_map(|line| {
                let (address, name) = line.split_once(' ')?;
                (name.ends_with(&format!(" {symbol}")))
                    .then(|| u64::from_str_radix(address, 16).unwrap())
            })
            .unwrap_or_else(|| panic!("{symbol} in nm output:\n{listing}"))
    };
    let modules = [module(&binary, Some(build_id(&binary)))];
    let mut symbolizer = Symbolizer::new(&modules, &[]);
    for (symbol, expected) in [
        (
            "_ZN12_GLOBAL__N_15Alpha4makeEi",
            "(anonymous namespace)::Alpha::make(int)",
        ),
        (
            "_ZN12_GLOBAL__N_14Beta4makeEi",
            "(anonymous namespace)::Beta::make(int)",
        ),
        (
            "_ZZ4mainENKUliE_clEi",
            "main::{lambda(int)#1}::operator()(int) const",
        ),
        (
            "_ZZ4mainENKUliE0_clEi",
            "main::{lambda(int)#2}::operator()(int) const",
        ),
        ("main", "main"),
    ] {
        let frames = symbolizer.stack(&[BIAS + address_of(symbol) + 5]);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0].function, expected);
        assert!(frames[0].line.is_some(), "{frames:?}");
    }
}

/// Splits `binary` as distributions do: its debug information into `debug_file`, the binary
/// stripped of everything but `.dynsym` (`--strip-all`) with a debuglink naming the file.
fn split_debug_file(binary: &Path, debug_file: &Path) {
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(binary)
        .arg(debug_file));
    run(Command::new("objcopy")
        .arg("--strip-all")
        .arg(format!("--add-gnu-debuglink={}", debug_file.display()))
        .arg(binary));
}

/// A debuglink target in the binary's `.debug/` subdirectory (gdb's second place, after the
/// binary's own directory) was not found, and the reason named only the build-id path.
#[test]
fn finds_a_debuglink_target_in_the_binarys_debug_subdirectory() {
    let dir = tempfile::tempdir().unwrap();
    let (binary, inner_alloc) = build(dir.path());
    let id = build_id(&binary);
    let subdir = dir.path().join(".debug");
    std::fs::create_dir(&subdir).unwrap();
    split_debug_file(&binary, &subdir.join("stacks.debug"));
    let modules = [module(&binary, Some(id))];
    let address = BIAS + inner_alloc + 9;

    let frames = Symbolizer::new(&modules, &[]).stack(&[address]);
    assert_eq!(frames[0].function, "inner_alloc", "{frames:?}");
    assert!(frames[0].line.is_some(), "{frames:?}");

    // Without it, the reason lists where the debuglink target was looked for.
    std::fs::remove_file(subdir.join("stacks.debug")).unwrap();
    let mut symbolizer = Symbolizer::new(&modules, &[]);
    assert_eq!(symbolizer.stack(&[address])[0].function, UNKNOWN);
    let reason = &symbolizer.unresolved_modules()[0].reason;
    let binary_dir = dir.path().display().to_string();
    for place in [
        format!("no debuglink target stacks.debug of this build in {binary_dir}, "),
        format!("{binary_dir}/.debug, /usr/lib/debug{binary_dir}, /usr/lib/debug"),
    ] {
        assert!(reason.contains(&place), "{place:?} not in {reason}");
    }
}

/// A debuglink target of another build (a stale debug file of the same name) is rightly
/// rejected by its CRC, but the error lost the whole module, even the stripped library's own
/// `.dynsym` names: `??` where, with no debug file at all, the function was named.
#[test]
fn a_debuglink_target_of_another_build_leaves_the_binarys_own_symbols() {
    let dir = tempfile::tempdir().unwrap();
    let (library, inner_alloc) = build_as(dir.path(), "libstacks.so", &["-shared", "-fPIC"]);
    let id = build_id(&library);
    let debug_file = dir.path().join("libstacks.so.debug");
    split_debug_file(&library, &debug_file);
    // Another build's debug file under the same name.
    let other = build_as(dir.path(), "other.so", &["-shared", "-fPIC", "-O1"]).0;
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&other)
        .arg(&debug_file));
    let modules = [module(&library, Some(id))];
    let mut symbolizer = Symbolizer::new(&modules, &[]);
    let frames = symbolizer.stack(&[BIAS + inner_alloc + 9, BIAS + 0x5]);
    assert_eq!(frames[0].function, "inner_alloc", "{frames:?}");
    assert_eq!(frames[0].line, None);
    assert_eq!(frames[1].function, UNKNOWN);
    let reason = &symbolizer.unresolved_modules()[0].reason;
    assert!(
        reason.contains(&format!(
            "({} with another CRC, another build: passed over)",
            debug_file.display()
        )),
        "{reason}"
    );
}

/// Symbolizing elsewhere: the binary is gone and `--debug-dir` holds its debuglink target by
/// name (the trace does not record the debuglink), flat or under the binary's absolute
/// directory. Only a file of the recorded build-id is taken.
#[test]
fn a_gone_binarys_debug_file_is_found_by_name_in_a_debug_dir_when_its_build_id_matches() {
    let dir = tempfile::tempdir().unwrap();
    let (binary, inner_alloc) = build(dir.path());
    let id = build_id(&binary);
    let debug_root = dir.path().join("debug");
    let gone = dir.path().join("gone/bin/stacks");
    let mirrored = debug_root.join(gone.parent().unwrap().strip_prefix("/").unwrap());
    std::fs::create_dir_all(&mirrored).unwrap();
    let address = BIAS + inner_alloc + 9;
    for place in [
        debug_root.join("stacks.debug"),
        mirrored.join("stacks.debug"),
    ] {
        run(Command::new("objcopy")
            .arg("--only-keep-debug")
            .arg(&binary)
            .arg(&place));
        let modules = [module(&gone, Some(id.clone()))];
        let mut symbolizer = Symbolizer::new(&modules, std::slice::from_ref(&debug_root));
        let frames = symbolizer.stack(&[address]);
        assert_eq!(frames[0].function, "inner_alloc", "{place:?}: {frames:?}");
        assert!(frames[0].line.is_some(), "{place:?}: {frames:?}");
        std::fs::remove_file(&place).unwrap();
    }

    // Another build's file of that name is not taken, and the reason says where it looked.
    let other = build_as(dir.path(), "other", &["-O1"]).0;
    std::fs::rename(&other, debug_root.join("stacks")).unwrap();
    let modules = [module(&gone, Some(id))];
    let mut symbolizer = Symbolizer::new(&modules, std::slice::from_ref(&debug_root));
    assert_eq!(symbolizer.stack(&[address])[0].function, UNKNOWN);
    let reason = &symbolizer.unresolved_modules()[0].reason;
    assert!(
        reason.contains(&format!(
            "nor stacks.debug or stacks of that build in {}/gone/bin, {}/gone/bin/.debug, {}, {}",
            dir.path().display(),
            dir.path().display(),
            mirrored.display(),
            debug_root.display()
        )),
        "{reason}"
    );
}
