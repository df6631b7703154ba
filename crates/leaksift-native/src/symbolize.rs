//! Symbolization of recorded return addresses with blazesym: function, file:line, inlined frames
//! and demangled C++/Rust names, from the module map in the trace.
//!
//! The trace holds each module's path, GNU build-id and load bias, so symbolization can run later
//! or on another machine: a module is read from its recorded path only when that file's build-id
//! matches the recorded one; otherwise `<debug dir>/.build-id/xx/yyyy.debug` is tried. blazesym
//! itself follows `.gnu_debuglink` into the same debug directories. An address that cannot be
//! resolved becomes a frame named `??` carrying its module and offset, never an error.
//!
//! blazesym's `Symbolizer` is `!Send`, and so is this type: symbolize on one thread.

use std::path::{Path, PathBuf};

use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{CodeInfo, Input, Sym, Symbolized};
use leaksift_trace::model::{Module, ModuleId};
use rustc_hash::FxHashMap;

use crate::replay::module_of;

/// The directories searched for separate debug files by default (as gdb and blazesym do).
pub const DEFAULT_DEBUG_DIRS: &[&str] = &["/usr/lib/debug", "/lib/debug"];

/// Name shown for a function that could not be resolved.
pub const UNKNOWN: &str = "??";

/// One symbolized frame.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
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

/// Where a module's symbols are read from, decided once per module.
#[derive(Debug)]
enum SymbolFile {
    Found(PathBuf),
    Missing,
}

/// Symbolizes the return addresses of one trace, caching every address it resolved.
pub struct Symbolizer<'t> {
    modules: &'t [Module],
    debug_dirs: Vec<PathBuf>,
    blazesym: blazesym::symbolize::Symbolizer,
    files: FxHashMap<ModuleId, SymbolFile>,
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
            .enable_demangling(true)
            .set_debug_dirs(Some(&debug_dirs))
            .build();
        Symbolizer {
            modules,
            debug_dirs,
            blazesym,
            files: FxHashMap::default(),
            cache: FxHashMap::default(),
        }
    }

    /// Symbolizes a stack of return addresses (innermost first) into frames, innermost first,
    /// with inlined functions expanded in place.
    pub fn stack(&mut self, addresses: &[u64]) -> Vec<Frame> {
        self.resolve(addresses.iter().copied());
        addresses
            .iter()
            .flat_map(|address| self.cache[address].iter().cloned())
            .collect()
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
        let debug_dirs = &self.debug_dirs;
        let file = self
            .files
            .entry(module.id)
            .or_insert_with(|| find_symbol_file(module, debug_dirs));
        let SymbolFile::Found(path) = file else {
            return unknown(&offsets);
        };
        let source = Source::Elf(Elf::new(path.clone()));
        match self
            .blazesym
            .symbolize(&source, Input::VirtOffset(offsets.as_slice()))
        {
            Ok(results) => results
                .into_iter()
                .zip(&offsets)
                .map(|(result, &offset)| match result {
                    Symbolized::Sym(sym) => sym_frames(&sym, module, offset),
                    Symbolized::Unknown(_) => vec![unknown_frame(Some(module), offset)],
                })
                .collect(),
            Err(_) => unknown(&offsets),
        }
    }
}

/// Return addresses point after the call; the call instruction (and its line) is one byte
/// earlier.
fn lookup_address(return_address: u64) -> u64 {
    return_address.saturating_sub(1)
}

/// The file to read `module`'s symbols from: its recorded path if that file is the same build,
/// else a build-id debug file.
fn find_symbol_file(module: &Module, debug_dirs: &[PathBuf]) -> SymbolFile {
    let path = Path::new(&module.path);
    if !module.path.is_empty() && path.is_file() {
        let on_disk = blazesym::helper::read_elf_build_id(path).ok().flatten();
        let same_build = match (&module.build_id, &on_disk) {
            (Some(recorded), Some(found)) => recorded.as_slice() == found.as_ref(),
            (None, _) => true,
            (Some(_), None) => false,
        };
        if same_build {
            return SymbolFile::Found(path.to_path_buf());
        }
    }
    if let Some(build_id) = module.build_id.as_deref().filter(|id| id.len() >= 2) {
        let hex: String = build_id.iter().map(|b| format!("{b:02x}")).collect();
        for dir in debug_dirs {
            let candidate = dir
                .join(".build-id")
                .join(&hex[..2])
                .join(format!("{}.debug", &hex[2..]));
            if candidate.is_file() {
                return SymbolFile::Found(candidate);
            }
        }
    }
    SymbolFile::Missing
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
            function: inlined.name.to_string(),
            file,
            line,
            module: module.path.clone(),
            offset,
            inlined: true,
        });
    }
    let (file, line) = location(sym.code_info.as_deref());
    frames.push(Frame {
        function: sym.name.to_string(),
        file,
        line,
        module: module.path.clone(),
        offset,
        inlined: false,
    });
    frames
}
