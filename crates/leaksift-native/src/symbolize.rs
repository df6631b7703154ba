//! Symbolization of recorded return addresses with blazesym: function, file:line, inlined frames
//! and demangled C++/Rust names, from the module map in the trace.
//!
//! The trace holds each module's path, GNU build-id and load bias, so symbolization can run later
//! or on another machine: a module is read from its recorded path only when that file's build-id
//! matches the recorded one; otherwise `<debug dir>/.build-id/xx/yyyy.debug` is tried. A file
//! with a `.gnu_debuglink` is replaced by the linked debug file when one with the recorded CRC is
//! in gdb's places (the binary's directory, its `.debug/` subdirectory, each debug directory under
//! the binary's absolute directory and at its top); with the file gone, `<name>.debug` or `<name>`
//! in those places is taken if its build-id is the recorded one. An address that cannot be
//! resolved becomes a frame named `??` carrying its module and offset, never an error; why a
//! module's symbols could not be read is kept ([`Symbolizer::unresolved_modules`]) so the report
//! can say it instead of showing a wall of `??`. A module whose debug information cannot be read
//! (corrupt, or compressed in a way blazesym does not know) keeps the function names of its
//! symbol tables.
//!
//! A module recorded without a build-id cannot be matched by content. Its file is trusted only if
//! it was not modified after the trace started ([`Symbolizer::recorded_at`]): a binary rebuilt
//! since would otherwise be read as if it were the traced one, giving wrong functions and lines
//! without any sign of it.
//!
//! blazesym's `Symbolizer` is `!Send`, and so is this type: symbolize on one thread.

use std::path::{Path, PathBuf};

use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{CodeInfo, Input, Sym, Symbolized};
use leaksift_trace::model::{Module, ModuleId};
use rustc_hash::FxHashMap;

use crate::cxa_demangle;
use crate::debuglink;
use crate::replay::module_of;

/// The directories searched for separate debug files by default (as gdb and blazesym do).
pub const DEFAULT_DEBUG_DIRS: &[&str] = &["/usr/lib/debug", "/lib/debug"];

/// Name shown for a function that could not be resolved.
pub const UNKNOWN: &str = "??";

/// One symbolized frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Frame {
    /// Demangled function name, or `??`.
    pub function: String,
    /// Source file, when debug information has it.
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Path of the module the address is in, or `??` when it is in no recorded module.
    pub module: String,
    /// Offset of the address in the module (its ELF virtual address), or the absolute address
    /// when the module is unknown.
    pub offset: u64,
    /// Whether this function was inlined into the frame that follows it.
    pub inlined: bool,
}

impl Frame {
    /// Whether the frame is inside an allocator, an allocation wrapper or the language's
    /// standard library (a `Vec` or `std::vector` growing): site labels and generated
    /// suppressions skip such frames so they name the caller's code. Inlined standard-library
    /// frames have short names (`alloc`, `push_mut<…>`), so they are told by their source file:
    /// the Rust toolchain's `/rustc/<commit>/library/…` and libstdc++'s headers.
    /// Whether the frame is in the tracer's own library (`libleaksift_preload.so`).
    pub fn is_in_tracer(&self) -> bool {
        let name = self.module.rsplit('/').next().unwrap_or(&self.module);
        name.starts_with("libleaksift_preload")
    }

    pub fn is_in_allocator(&self) -> bool {
        let frame = self;
        let in_standard_library = frame.file.as_deref().is_some_and(|file| {
            (file.starts_with("/rustc/") && file.contains("/library/"))
                || file.starts_with("/usr/include/c++/")
        });
        // The C allocators by exact name: a prefix would also hide the caller's own
        // `realloc_chain` or `calloc_matrix`, naming its caller as the allocation site.
        const ALLOCATORS: [&str; 9] = [
            "malloc",
            "calloc",
            "realloc",
            "reallocarray",
            "aligned_alloc",
            "posix_memalign",
            "memalign",
            "valloc",
            "pvalloc",
        ];
        const PREFIXES: [&str; 6] = [
            "operator new",
            "__rust_",
            "__rdl_",
            "alloc::",
            "<alloc::",
            "std::alloc",
        ];
        in_standard_library
            || ALLOCATORS.contains(&frame.function.as_str())
            || PREFIXES.iter().any(|p| frame.function.starts_with(p))
    }
}

/// Where a module's symbols are read from, decided once per module.
#[derive(Debug)]
enum SymbolFile {
    Found {
        path: PathBuf,
        /// Why the file's debuglink target is not used (not found, or of another build), for
        /// the report when some addresses have no symbol.
        debuglink: Option<String>,
    },
    /// No usable file; the reason, for the report.
    Missing(String),
}

/// A module whose symbols could not be read, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnresolvedModule {
    /// The module's recorded path.
    pub module: String,
    pub reason: String,
}

/// Symbolizes the return addresses of one trace, caching every address it resolved.
pub struct Symbolizer<'t> {
    modules: &'t [Module],
    debug_dirs: Vec<PathBuf>,
    /// When tracing started (Unix seconds), if known: files without a recorded build-id that
    /// were modified later are not trusted.
    recorded_at: Option<RecordedAt>,
    blazesym: blazesym::symbolize::Symbolizer,
    files: FxHashMap<ModuleId, SymbolFile>,
    /// Modules whose file was read but left addresses without a symbol (a stripped binary of
    /// the recorded build), with why, for [`Symbolizer::unresolved_modules`].
    symbolless: FxHashMap<ModuleId, String>,
    /// Modules whose debug information could not be read (their frames have function names from
    /// the symbol tables only), with blazesym's error.
    unreadable_debug_info: FxHashMap<ModuleId, String>,
    cache: FxHashMap<u64, Vec<Frame>>,
}

impl std::fmt::Debug for Symbolizer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("modules", &self.modules.len())
            .field("debug_dirs", &self.debug_dirs)
            .field("cached_addresses", &self.cache.len())
            .finish()
    }
}

impl<'t> Symbolizer<'t> {
    /// A symbolizer for the modules of one trace. `extra_debug_dirs` are searched before the
    /// default debug directories.
    pub fn new(modules: &'t [Module], extra_debug_dirs: &[PathBuf]) -> Self {
        let debug_dirs: Vec<PathBuf> = extra_debug_dirs
            .iter()
            .cloned()
            .chain(DEFAULT_DEBUG_DIRS.iter().map(PathBuf::from))
            .collect();
        let blazesym = blazesym::symbolize::Symbolizer::builder()
            .enable_code_info(true)
            .enable_inlined_fns(true)
            // Demangled here (`demangle`): blazesym also hands plain C names to the C++
            // demangler, which reads a function named `b` or `i` as the type `bool` or `int`.
            .enable_demangling(false)
            .set_debug_dirs(Some(&debug_dirs))
            .build();
        Symbolizer {
            modules,
            debug_dirs,
            recorded_at: None,
            blazesym,
            files: FxHashMap::default(),
            symbolless: FxHashMap::default(),
            unreadable_debug_info: FxHashMap::default(),
            cache: FxHashMap::default(),
        }
    }

    /// Sets when tracing started (the trace header's Unix time, with its nanoseconds when the
    /// trace has them): a module recorded without a build-id is then read from its path only
    /// if that file was not modified after it.
    pub fn recorded_at(mut self, start_unix_s: u64, start_subsec_nanos: Option<u32>) -> Self {
        self.recorded_at = Some(RecordedAt {
            seconds: start_unix_s,
            nanos: start_subsec_nanos,
        });
        self
    }

    /// The modules looked up so far whose symbols could not be read, in recorded-path order.
    pub fn unresolved_modules(&self) -> Vec<UnresolvedModule> {
        let unresolved = |id: &ModuleId, reason: &String| UnresolvedModule {
            module: self
                .modules
                .iter()
                .rev()
                .find(|m| m.id == *id)
                .map_or_else(|| UNKNOWN.to_string(), |m| m.path.clone()),
            reason: reason.clone(),
        };
        let mut unresolved: Vec<UnresolvedModule> = self
            .files
            .iter()
            .filter_map(|(id, file)| match file {
                SymbolFile::Missing(reason) => Some(unresolved(id, reason)),
                SymbolFile::Found { .. } => None,
            })
            .chain(
                self.symbolless
                    .iter()
                    .map(|(id, reason)| unresolved(id, reason)),
            )
            .collect();
        unresolved.sort_by(|a, b| (&a.module, &a.reason).cmp(&(&b.module, &b.reason)));
        unresolved
    }

    /// Symbolizes a stack of return addresses (innermost first) into frames, innermost first,
    /// with inlined functions expanded in place. The tracer's own frames are left out (its
    /// wrapper of `main` sits between `main` and glibc's start-up code).
    pub fn stack(&mut self, addresses: &[u64]) -> Vec<Frame> {
        self.resolve(addresses.iter().copied());
        addresses
            .iter()
            .flat_map(|address| self.cache[address].iter().cloned())
            .filter(|frame| !frame.is_in_tracer())
            .collect()
    }

    /// The frames of one return address (innermost first), resolving it if needed.
    pub fn frames_at(&mut self, address: u64) -> &[Frame] {
        self.resolve([address]);
        &self.cache[&address]
    }

    /// Resolves every address not cached yet, one blazesym batch per module.
    pub fn resolve(&mut self, addresses: impl IntoIterator<Item = u64>) {
        let mut pending: Vec<u64> = addresses
            .into_iter()
            .filter(|address| !self.cache.contains_key(address))
            .collect();
        pending.sort_unstable();
        pending.dedup();
        let mut by_module: FxHashMap<Option<ModuleId>, Vec<u64>> = FxHashMap::default();
        for address in pending {
            let module = module_of(self.modules, lookup_address(address)).map(|m| m.id);
            by_module.entry(module).or_default().push(address);
        }
        for (module, batch) in by_module {
            let module = module.and_then(|id| self.modules.iter().rev().find(|m| m.id == id));
            let resolved = match module {
                Some(module) => self.resolve_in_module(module, &batch),
                None => batch
                    .iter()
                    .map(|&a| vec![unknown_frame(None, a)])
                    .collect(),
            };
            for (address, frames) in batch.into_iter().zip(resolved) {
                self.cache.insert(address, frames);
            }
        }
    }

    fn resolve_in_module(&mut self, module: &Module, batch: &[u64]) -> Vec<Vec<Frame>> {
        let offsets: Vec<u64> = batch
            .iter()
            .map(|&a| lookup_address(a).wrapping_sub(module.base))
            .collect();
        let unknown = |offsets: &[u64]| -> Vec<Vec<Frame>> {
            offsets
                .iter()
                .map(|&o| vec![unknown_frame(Some(module), o)])
                .collect()
        };
        let (debug_dirs, recorded_at) = (&self.debug_dirs, self.recorded_at);
        let file = self
            .files
            .entry(module.id)
            .or_insert_with(|| find_symbol_file(module, debug_dirs, recorded_at));
        let SymbolFile::Found { path, debuglink } = file else {
            return unknown(&offsets);
        };
        let (path, debuglink) = (path.clone(), debuglink.clone());
        let input = Input::VirtOffset(offsets.as_slice());
        let symbolized = self
            .blazesym
            .symbolize(&elf_source(&path, true), input)
            .map(|mut results| {
                qualify_bare_names(&self.blazesym, &path, &offsets, &mut results);
                results
            })
            .or_else(|debug_error| {
                // Debug information that cannot be read (a compression blazesym lacks, a
                // corrupt section, a debuglink target of another build) failed the whole
                // module: the symbol tables still name its functions.
                let symbols = self.blazesym.symbolize(&elf_source(&path, false), input)?;
                self.unreadable_debug_info
                    .insert(module.id, debug_error.to_string());
                Ok::<_, blazesym::Error>(symbols)
            });
        match symbolized {
            Ok(results) => {
                let mut symbolless = false;
                let frames = results
                    .into_iter()
                    .zip(&offsets)
                    .map(|(result, &offset)| match result {
                        Symbolized::Sym(sym) => sym_frames(&sym, module, offset),
                        Symbolized::Unknown(_) => {
                            symbolless = true;
                            vec![unknown_frame(Some(module), offset)]
                        }
                    })
                    .collect();
                if symbolless {
                    let unreadable = self.unreadable_debug_info.get(&module.id);
                    self.symbolless.entry(module.id).or_insert_with(|| {
                        symbolless_reason(
                            &path,
                            module,
                            &self.debug_dirs,
                            debuglink.as_deref(),
                            unreadable,
                        )
                    });
                }
                frames
            }
            Err(error) => {
                self.files.insert(
                    module.id,
                    SymbolFile::Missing(format!(
                        "cannot read symbols from {}: {error}",
                        path.display()
                    )),
                );
                unknown(&offsets)
            }
        }
    }
}

/// Return addresses point after the call; the call instruction (and its line) is one byte
/// earlier.
fn lookup_address(return_address: u64) -> u64 {
    return_address.saturating_sub(1)
}

/// The file to read `module`'s symbols from: its recorded path if that file is the same build,
/// else a build-id debug file; or why there is none.
fn find_symbol_file(
    module: &Module,
    debug_dirs: &[PathBuf],
    recorded_at: Option<RecordedAt>,
) -> SymbolFile {
    let path = Path::new(&module.path);
    let hex: Option<String> = module
        .build_id
        .as_deref()
        .filter(|id| id.len() >= 2)
        .map(|id| id.iter().map(|b| format!("{b:02x}")).collect());
    // A build-id debug file under a directory the user named comes first: the recorded file
    // may be the same build but stripped (its debug information moved out, as distributions
    // ship it), and would give `??` frames. One that is no ELF file of this build (corrupt,
    // truncated, misplaced) is passed over: taking it lost every symbol of a binary that had
    // them.
    let mut passed_over = Vec::new();
    if let (Some(hex), Some(recorded)) = (&hex, &module.build_id) {
        for dir in debug_dirs {
            let candidate = dir
                .join(".build-id")
                .join(&hex[..2])
                .join(format!("{}.debug", &hex[2..]));
            if !candidate.is_file() {
                continue;
            }
            match blazesym::helper::read_elf_build_id(&candidate) {
                Ok(Some(id)) if id.as_ref() == recorded.as_slice() => {
                    return SymbolFile::Found {
                        path: candidate,
                        debuglink: None,
                    };
                }
                _ => passed_over.push(candidate.display().to_string()),
            }
        }
    }
    let on_disk_problem = if path.is_relative() && !module.path.is_empty() && !path.is_file() {
        // Traces recorded before module paths were made absolute: relative to the directory
        // the program ran in, which the trace does not name.
        "recorded by a path relative to the directory the program ran in, and not found \
         from this one"
            .to_string()
    } else if module.path.is_empty() || !path.is_file() {
        "the file is gone".to_string()
    } else {
        let on_disk = blazesym::helper::read_elf_build_id(path).ok().flatten();
        match (&module.build_id, &on_disk) {
            (Some(recorded), Some(found)) if recorded.as_slice() == found.as_ref() => {
                return with_debuglink(path, debug_dirs);
            }
            (Some(_), Some(found)) => format!(
                "the file is another build (build-id {})",
                found.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
            (Some(_), None) => "the file has no build-id (another build)".to_string(),
            (None, _) => match modified_after(path, recorded_at) {
                Some(modified) => {
                    return SymbolFile::Missing(format!(
                        "recorded without a build-id and the file was modified {} after the \
                         trace started, so it may be another build: not used",
                        human_duration(modified)
                    ));
                }
                None => return with_debuglink(path, debug_dirs),
            },
        }
    };
    let (Some(hex), Some(recorded)) = (hex, &module.build_id) else {
        return SymbolFile::Missing(format!("{on_disk_problem}, and no build-id was recorded"));
    };
    // The trace does not record the debuglink name: the usual ones (`prog.debug`, or a copy of
    // `prog` itself) are tried in gdb's places, and taken only if of the recorded build.
    let base = path.file_name().map(|name| name.to_string_lossy());
    let by_name = base
        .as_ref()
        .map(|base| [format!("{base}.debug"), base.to_string()]);
    let dirs = debug_file_dirs(path, debug_dirs);
    for name in by_name.iter().flatten() {
        for candidate in dirs.iter().map(|dir| dir.join(name)) {
            if candidate.is_file()
                && blazesym::helper::read_elf_build_id(&candidate)
                    .ok()
                    .flatten()
                    .is_some_and(|id| id.as_ref() == recorded.as_slice())
            {
                return with_debuglink(&candidate, debug_dirs);
            }
        }
    }
    let by_name = match by_name {
        Some([debug, base]) => format!(
            ", nor {debug} or {base} of that build in {}",
            display_list(&dirs)
        ),
        None => String::new(),
    };
    let passed_over = if passed_over.is_empty() {
        String::new()
    } else {
        format!(
            " ({} not an ELF file of this build: passed over)",
            passed_over.join(", ")
        )
    };
    SymbolFile::Missing(format!(
        "{on_disk_problem}, and no .build-id/{}/{}.debug (recorded build-id) under \
         {}{by_name}{passed_over}",
        &hex[..2],
        &hex[2..],
        display_list(debug_dirs),
    ))
}

/// The directories gdb searches for a separate debug file of the binary at `binary`: the
/// binary's own, its `.debug/` subdirectory, and each debug directory, under the binary's
/// absolute directory (`/usr/lib/debug/usr/bin/`) and at its top.
fn debug_file_dirs(binary: &Path, debug_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let dir = binary.parent().unwrap_or(Path::new("/"));
    let relative = dir.strip_prefix("/").unwrap_or(dir);
    let mut dirs = vec![dir.to_path_buf(), dir.join(".debug")];
    for debug_dir in debug_dirs {
        dirs.push(debug_dir.join(relative));
        dirs.push(debug_dir.clone());
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|dir| seen.insert(dir.clone()));
    dirs
}

/// The symbol file of `binary`, the recorded build: the target of its `.gnu_debuglink` when
/// one with the recorded CRC is in gdb's places ([`debug_file_dirs`]), else `binary` itself,
/// with where the target was looked for. blazesym's own debuglink search leaves out the
/// `.debug/` subdirectory, and cannot say where it looked.
fn with_debuglink(binary: &Path, debug_dirs: &[PathBuf]) -> SymbolFile {
    let Some(link) = debuglink::read(binary) else {
        return SymbolFile::Found {
            path: binary.to_path_buf(),
            debuglink: None,
        };
    };
    let dirs = debug_file_dirs(binary, debug_dirs);
    let mut other_builds = Vec::new();
    for candidate in dirs.iter().map(|dir| dir.join(&link.name)) {
        if candidate == binary || !candidate.is_file() {
            continue;
        }
        match debuglink::crc32(&candidate) {
            Ok(crc) if crc == link.crc => {
                return SymbolFile::Found {
                    path: candidate,
                    debuglink: None,
                };
            }
            _ => other_builds.push(candidate),
        }
    }
    let other_builds = if other_builds.is_empty() {
        String::new()
    } else {
        format!(
            " ({} with another CRC, another build: passed over)",
            display_list(&other_builds)
        )
    };
    SymbolFile::Found {
        path: binary.to_path_buf(),
        debuglink: Some(format!(
            "no debuglink target {} of this build in {}{other_builds}",
            link.name,
            display_list(&dirs)
        )),
    }
}

/// Paths joined by `, ` for a reason.
fn display_list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why addresses of `module` have no symbol in `path`, the file of its recorded build: it was
/// stripped (or the code has no symbol), and no debug file was found (a stripped binary gave
/// `??` frames with no word on why, while a deleted one named the directories searched).
fn symbolless_reason(
    path: &Path,
    module: &Module,
    debug_dirs: &[PathBuf],
    debuglink: Option<&str>,
    unreadable_debug_info: Option<&String>,
) -> String {
    let searched = display_list(debug_dirs);
    let debug_file = match module.build_id.as_deref().filter(|id| id.len() >= 2) {
        Some(id) => {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            format!("no .build-id/{}/{}.debug", &hex[..2], &hex[2..])
        }
        None => "no build-id recorded to find a debug file by, and nothing".to_string(),
    };
    let debuglink = debuglink
        .map(|debuglink| format!(", {debuglink}"))
        .unwrap_or_default();
    let unreadable = unreadable_debug_info
        .map(|error| format!("; its debug information could not be read ({error})"))
        .unwrap_or_default();
    format!(
        "{} has no symbol for some addresses (stripped?), and {debug_file} under \
         {searched}{debuglink} (install its debug package, or give the directory with \
         --debug-dir){unreadable}",
        path.display()
    )
}

/// Gives the functions DWARF names only by their bare `DW_AT_name` their qualified name from the
/// symbol table. gcc emits no `DW_AT_linkage_name` for a C++ function with internal linkage (a
/// member of an anonymous namespace, a lambda's `operator()`, a template instantiated on a
/// lambda), so blazesym named `(anonymous namespace)::Alpha::make(int)` and `Beta::make` alike
/// `make`, and `main::{lambda(int)#1}::operator()(int) const` just `operator()`; its local
/// `.symtab` symbol is mangled in full (valgrind and addr2line show that one). A symbol is taken
/// only when it starts where the DWARF function does and its demangled name contains the bare
/// one (not another function folded onto the same code). Inlined functions keep their DWARF
/// names: they have no symbol of their own.
fn qualify_bare_names<'s>(
    blazesym: &'s blazesym::symbolize::Symbolizer,
    path: &Path,
    offsets: &[u64],
    results: &mut [Symbolized<'s>],
) {
    let bare: Vec<usize> = (0..results.len())
        .filter(|&i| matches!(&results[i], Symbolized::Sym(sym) if !is_mangled(&sym.name)))
        .collect();
    if bare.is_empty() {
        return;
    }
    let bare_offsets: Vec<u64> = bare.iter().map(|&i| offsets[i]).collect();
    let Ok(symbols) = blazesym.symbolize(
        &elf_source(path, false),
        Input::VirtOffset(bare_offsets.as_slice()),
    ) else {
        return;
    };
    for (i, symbol) in bare.into_iter().zip(symbols) {
        if let (Symbolized::Sym(sym), Symbolized::Sym(symbol)) = (&mut results[i], symbol)
            && symbol.addr == sym.addr
            && is_mangled(&symbol.name)
            && demangle(&symbol.name).contains(sym.name.as_ref())
        {
            sym.name = symbol.name;
        }
    }
}

/// Whether `name` is a mangled C++ (`_Z…`) or Rust (`_R…`, legacy `_ZN…`) symbol name.
fn is_mangled(name: &str) -> bool {
    name.starts_with("_Z") || name.starts_with("_R")
}

/// An ELF source for blazesym: with `debug_syms`, DWARF (and the debug files it links to) first,
/// else the symbol tables (`.symtab`, `.dynsym`) only.
fn elf_source(path: &Path, debug_syms: bool) -> Source<'static> {
    let mut elf = Elf::new(path);
    elf.debug_syms = debug_syms;
    Source::Elf(elf)
}

/// When tracing started: to the second in traces before format version 6.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordedAt {
    seconds: u64,
    nanos: Option<u32>,
}

/// How long after `recorded_at` the file at `path` was last modified, when it was. Without the
/// start's nanoseconds, a file modified within the second the trace started counts as not
/// modified after it (it may have been built just before the run).
fn modified_after(path: &Path, recorded_at: Option<RecordedAt>) -> Option<std::time::Duration> {
    let recorded_at = recorded_at?;
    let modified = std::fs::metadata(path)
        .ok()?
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let started = match recorded_at.nanos {
        Some(nanos) => std::time::Duration::new(recorded_at.seconds, nanos),
        None => std::time::Duration::from_secs(recorded_at.seconds.saturating_add(1)),
    };
    modified
        .checked_sub(started)
        .filter(|after| !after.is_zero())
}

/// A duration for a person: milliseconds under a second, else seconds.
fn human_duration(duration: std::time::Duration) -> String {
    if duration.as_secs() == 0 {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{} s", duration.as_secs())
    }
}

fn unknown_frame(module: Option<&Module>, offset: u64) -> Frame {
    Frame {
        function: UNKNOWN.to_string(),
        file: None,
        line: None,
        module: module.map_or_else(|| UNKNOWN.to_string(), |m| m.path.clone()),
        offset,
        inlined: false,
    }
}

/// Demangles a Rust (`_R…`, or legacy `_ZN…17h<hash>E`) or C++ (`_Z…`) symbol name; any other
/// name (C functions, names DWARF already gives demangled) is kept as it is. C++ names go to
/// libstdc++'s demangler when it can be loaded (see `cxa_demangle`), else to `cpp_demangle`.
fn demangle(name: &str) -> String {
    if (name.starts_with("_R") || name.starts_with("_ZN"))
        && let Ok(rust) = rustc_demangle::try_demangle(name)
    {
        let without_hash = format!("{rust:#}");
        // A legacy Rust name ends in a hash the alternate form drops; a C++ name has none.
        if name.starts_with("_R") || without_hash != rust.to_string() {
            return without_hash;
        }
    }
    if name.starts_with("_Z") {
        if let Some(demangled) = cxa_demangle::demangle(name) {
            return demangled;
        }
        if let Ok(cpp) = cpp_demangle::Symbol::new(name)
            && let Ok(demangled) = cpp.demangle()
        {
            return demangled;
        }
    }
    name.to_string()
}

/// The frames of one resolved address: the innermost inlined function first, the function
/// containing the address last. Each carries the source location inside that function.
fn sym_frames(sym: &Sym<'_>, module: &Module, offset: u64) -> Vec<Frame> {
    let location = |info: Option<&CodeInfo<'_>>| match info {
        Some(info) => (Some(info.to_path().display().to_string()), info.line),
        None => (None, None),
    };
    let mut frames = Vec::with_capacity(sym.inlined.len() + 1);
    for inlined in sym.inlined.iter().rev() {
        let (file, line) = location(inlined.code_info.as_ref());
        frames.push(Frame {
            function: demangle(&inlined.name),
            file,
            line,
            module: module.path.clone(),
            offset,
            inlined: true,
        });
    }
    let (file, line) = location(sym.code_info.as_deref());
    frames.push(Frame {
        function: demangle(&sym.name),
        file,
        line,
        module: module.path.clone(),
        offset,
        inlined: false,
    });
    frames
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn c_names_that_read_as_mangled_types_stay_as_they_are() {
        for name in ["b", "i", "v", "f", "Ss", "main", "operator()"] {
            assert_eq!(demangle(name), name);
        }
    }

    #[test]
    fn cpp_and_rust_names_are_demangled() {
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar()");
        assert_eq!(demangle("_Z4makei"), "make(int)");
        // Names `cpp_demangle` garbles (an empty pack, pack-expanded parameters) read as in
        // c++filt, gdb and valgrind: libstdc++'s demangler comes first.
        assert_eq!(
            demangle("_ZSt11make_sharedI4NodeJEESt10shared_ptrIT_EDpOT0_"),
            "std::shared_ptr<Node> std::make_shared<Node>()"
        );
        assert_eq!(
            demangle(
                "_ZNSaISt23_Sp_counted_ptr_inplaceI4NodeSaIvELN9__gnu_cxx12_Lock_policyE2EEEC2IvEERKSaIT_E"
            ),
            "std::allocator<std::_Sp_counted_ptr_inplace<Node, std::allocator<void>, \
             (__gnu_cxx::_Lock_policy)2> >::allocator<void>(std::allocator<void> const&)"
        );
        assert_eq!(
            demangle("_ZN8generics5boxed17h0123456789abcdefE"),
            "generics::boxed"
        );
    }
}
