//! Opening a heap file of either format (V8 .heapsnapshot, Java HPROF), detected from its content.
//!
//! `heap`, `paths` and `diff` only see a [`LoadedHeap`]: the format-neutral graph plus optional
//! format-specific sections. Adding a format means adding one arm to [`load`].

use std::path::{Path, PathBuf};

use anyhow::Context;
use leaksift_heap::input::{self, HeapInput};
use leaksift_heap::{HeapFormat, HeapGraph, v8};
use leaksift_report::heap::render_allocation_sites;
use leaksift_report::progress::Progress;

use crate::cmd::file_kind::{self, FileKind};

/// A format-specific part of the `heap` report (e.g. HPROF threads and frames).
#[derive(Debug, Clone)]
pub struct ExtraSection {
    /// Heading in the text report.
    pub title: String,
    /// Key of the section in the JSON report (under `"extra"`).
    pub json_key: String,
    /// The section rendered as text.
    pub text: String,
    /// The section as JSON.
    pub json: serde_json::Value,
}

/// How a format classifies objects, kept to classify a compared file the same way.
#[derive(Debug, Clone, Default)]
pub enum ClassScheme {
    /// Classes are fixed by the file (HPROF class objects).
    #[default]
    Fixed,
    /// V8: the plain-object interfaces (`{a, b}`) inferred from this snapshot.
    V8Interfaces(Vec<v8::InterfaceDefinition>),
}

/// A heap file read into a graph.
#[derive(Debug)]
pub struct LoadedHeap {
    pub path: PathBuf,
    pub graph: HeapGraph,
    /// Bytes the format counts in its total that are not in any node (V8 `extra_native_bytes`).
    pub extra_bytes: u64,
    /// Sections only this format has, shown after the common ones.
    pub extra_sections: Vec<ExtraSection>,
    pub class_scheme: ClassScheme,
    /// What only an HPROF dump has.
    pub hprof: Option<HprofExtras>,
    /// Every object's allocation stack: V8 snapshots taken with allocation tracking only.
    pub allocation_stacks: Option<v8::AllocationStacks>,
}

/// The parts of an HPROF dump that are not in the graph.
#[derive(Debug)]
pub struct HprofExtras {
    /// Threads, their stacks and the objects each frame's locals hold (the `heap` threads
    /// section ranks them once retained sizes are known).
    pub threads: Vec<leaksift_hprof::ThreadStack>,
    /// What the dump says about itself, and how sizes were derived from it.
    pub info: leaksift_hprof::DumpInfo,
    /// The dump's bytes (mapped), for queries that read object contents again.
    pub file: leaksift_hprof::DumpFile,
}

/// Reads `path`, detecting its format from its content. With `classify_like`, objects are
/// classified the way that other file's were (for comparisons).
pub fn load(
    path: &Path,
    classify_like: Option<&ClassScheme>,
    progress: &mut Progress,
) -> anyhow::Result<LoadedHeap> {
    let shown = path.display();
    // Bytes from a pipe go to an unlinked temporary file, which is then read in place of
    // `path`; it is closed once the file is mapped (the mapping keeps the bytes).
    let spooled = spool_stream(path, progress).with_context(|| format!("{shown}"))?;
    let read_path = spooled.as_ref().map_or(path, |spool| spool.path());
    let format = input::sniff(read_path).map_err(|error| {
        // A trace given to a heap command gets the command that reads it.
        file_kind::wrong_command(path, |kind| matches!(kind, FileKind::Heap(_))).map_or_else(
            || anyhow::Error::new(error).context(format!("{shown}")),
            |advice| anyhow::anyhow!(advice),
        )
    })?;
    super::mapped_inputs::guard(path)?;
    match format {
        HeapFormat::V8 => load_v8(path, read_path, classify_like, progress),
        HeapFormat::Hprof => {
            // Java HPROF (leaksift-hprof): two passes over the memory-mapped (or gunzipped) dump.
            struct Phases<'p>(&'p mut Progress);
            impl leaksift_hprof::Observer for Phases<'_> {
                fn phase(&mut self, name: &'static str) {
                    self.0.phase(&format!("hprof {name}"));
                }
                fn consumed(&mut self, _done: std::ops::Range<usize>, read: usize, total: usize) {
                    self.0.update(&format!("{}%", read * 100 / total.max(1)));
                }
            }
            progress.phase(&format!("opening {shown}"));
            let file =
                leaksift_hprof::DumpFile::open(read_path).with_context(|| format!("{shown}"))?;
            // The garbage is found while the dominators are computed (`Analysis::of`).
            let dump = file
                .read_unswept(&mut Phases(progress))
                .with_context(|| format!("{shown}"))?;
            Ok(LoadedHeap {
                path: path.to_path_buf(),
                graph: dump.graph,
                extra_bytes: 0,
                extra_sections: Vec::new(),
                class_scheme: ClassScheme::Fixed,
                hprof: Some(HprofExtras {
                    threads: dump.threads,
                    info: dump.info,
                    file,
                }),
                allocation_stacks: None,
            })
        }
    }
}

/// The `heap` report's section on an HPROF dump: what it says about itself, how sizes were
/// derived from it, and how much garbage was left out.
pub fn hprof_dump_section(
    info: &leaksift_hprof::DumpInfo,
    unreachable: &leaksift_hprof::Unreachable,
) -> ExtraSection {
    // How `SizeRule::guess` infers the layout is in docs/ARCHITECTURE.md.
    let oops = if info.sizes.compressed_oops {
        "compressed oops"
    } else {
        "no compressed oops"
    };
    ExtraSection {
        title: "HPROF dump".to_string(),
        json_key: "dump".to_string(),
        text: format!(
            "HPROF {}, {}-byte ids, written {}\n\
             {} objects, {} classes, {} GC roots; {} references to objects missing \
             from the dump\n\
             shallow sizes: {}-byte headers, {}-byte array headers, {}-byte references \
             ({oops}), {}-byte object alignment\n\
             {} objects ({}) no GC root reaches are left out, as Eclipse MAT does\n",
            info.version,
            info.id_size,
            info.written_utc(),
            info.objects,
            info.classes,
            info.gc_roots,
            info.stats.dangling_references,
            info.sizes.header,
            info.sizes.array_header,
            info.sizes.reference,
            info.sizes.alignment,
            unreachable.objects,
            leaksift_report::units::bytes(unreachable.shallow_bytes as f64),
        ),
        json: serde_json::json!({
            "version": info.version,
            "id_size": info.id_size,
            "timestamp_ms": info.timestamp_ms,
            "objects": info.objects,
            "classes": info.classes,
            "gc_roots": info.gc_roots,
            "dangling_references": info.stats.dangling_references,
            "header_bytes": info.sizes.header,
            "array_header_bytes": info.sizes.array_header,
            "reference_bytes": info.sizes.reference,
            "compressed_oops": info.sizes.compressed_oops,
            "alignment_bytes": info.sizes.alignment,
            "unreachable_objects": unreachable.objects,
            "unreachable_shallow_bytes": unreachable.shallow_bytes,
        }),
    }
}

/// Functions listed in the text of a tracked snapshot's allocation sites (the JSON has all).
const ALLOCATION_SITE_ROWS: usize = 15;

/// A heap file given as a pipe or a socket (`<(zcat …)`, `/dev/stdin`): its bytes copied into
/// an unlinked temporary file (in `TMPDIR`), as the readers map their input and read it more
/// than once. Its first bytes are checked first, so a stream that is no heap file is refused
/// before anything is copied, and the copy leaves nothing behind however leaksift ends. A
/// device is refused (`/dev/zero` would be copied until the disk is full). `None` for a regular
/// file, read in place (other errors come from the readers).
fn spool_stream(path: &Path, progress: &mut Progress) -> anyhow::Result<Option<Spooled>> {
    use std::io::{Read, Write};
    use std::os::unix::fs::FileTypeExt;
    let Ok(kind) = std::fs::metadata(path).map(|m| m.file_type()) else {
        return Ok(None);
    };
    if kind.is_char_device() || kind.is_block_device() {
        anyhow::bail!("a device, not a file to read");
    }
    if !(kind.is_fifo() || kind.is_socket()) {
        return Ok(None);
    }
    let mut source = std::fs::File::open(path).context("cannot read")?;
    let mut head = Vec::with_capacity(input::SNIFF_BYTES);
    (&mut source)
        .take(input::SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .context("cannot read")?;
    input::sniff_head(&head)?;
    progress.phase(&format!(
        "copying {} (a stream) to a temporary file",
        path.display()
    ));
    let mut file = tempfile::tempfile().with_context(|| {
        format!(
            "cannot create a temporary file in {} (TMPDIR)",
            std::env::temp_dir().display()
        )
    })?;
    file.write_all(&head)
        .and_then(|()| std::io::copy(&mut source, &mut file).map(drop))
        .context("copying the stream to a temporary file")?;
    Ok(Some(Spooled::new(file)))
}

/// An unlinked temporary file, opened again by the readers through `/proc/self/fd`.
struct Spooled {
    /// Held open: the file has no other name.
    _file: std::fs::File,
    path: PathBuf,
}

impl Spooled {
    fn new(file: std::fs::File) -> Spooled {
        use std::os::fd::AsRawFd;
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        Spooled { _file: file, path }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a V8 snapshot from `read_path`, named `path` in messages.
fn load_v8(
    path: &Path,
    read_path: &Path,
    classify_like: Option<&ClassScheme>,
    progress: &mut Progress,
) -> anyhow::Result<LoadedHeap> {
    let shown = path.display();
    progress.phase(&format!("reading {shown}"));
    let HeapInput { bytes, .. } = input::open(read_path).with_context(|| format!("{shown}"))?;
    let interfaces = match classify_like {
        Some(ClassScheme::V8Interfaces(defs)) => Some(defs.as_slice()),
        _ => None,
    };
    let len = AsRef::<[u8]>::as_ref(&*bytes).len() as u64;
    let snapshot =
        v8::read(bytes, interfaces, &mut |phase| progress.phase(phase)).map_err(|error| {
            // An error where the file ends is a file cut short, not a malformed one.
            let at_end = matches!(
                error,
                v8::V8Error::Syntax { offset, .. } | v8::V8Error::Shape { offset, .. }
                    if offset + 1 >= len
            ) && !error.to_string().contains("truncated");
            let context = if at_end {
                format!("{shown} (the file ends at byte {len}: truncated?)")
            } else {
                format!("{shown}")
            };
            anyhow::Error::new(error).context(context)
        })?;
    let extra_sections = snapshot
        .allocation_sites
        .iter()
        .map(|sites| ExtraSection {
            title: "Allocation sites (allocation tracking)".to_string(),
            json_key: "allocation_sites".to_string(),
            text: render_allocation_sites(sites, ALLOCATION_SITE_ROWS),
            json: serde_json::to_value(sites).unwrap_or_default(),
        })
        .collect();
    Ok(LoadedHeap {
        path: path.to_path_buf(),
        graph: snapshot.graph,
        extra_bytes: snapshot.extra_native_bytes,
        extra_sections,
        class_scheme: ClassScheme::V8Interfaces(snapshot.interfaces),
        hprof: None,
        allocation_stacks: snapshot.allocation_stacks,
    })
}
