//! Signs that a traced program used memory the recorder does not see: an allocator of its own
//! loaded as a library, a managed runtime whose objects live in its own heap, or a resident set
//! far above the traced heap.

use leaksift_trace::allocators::ALLOCATOR_LIBRARIES;
use leaksift_trace::model::Module;

/// The file name of the tracer library (`libleaksift_preload.so`), by which its module is known.
const TRACER_LIBRARY: &str = "libleaksift_preload";

/// Whether the allocator library at `path` (one of [`ALLOCATOR_LIBRARIES`]) leaves glibc's
/// internal `__libc_malloc`/`__libc_free` entry points alone, so that under the tracer, whose hooks
/// call those, glibc's allocator serves the program's malloc family and the leak classes are
/// exact. Checked with `LD_DEBUG=bindings`: Debian's jemalloc does; tcmalloc and mimalloc define
/// the entry points too, so they keep serving (traced all the same), and their own bookkeeping,
/// scanned as roots, can make lost blocks look reachable. The others are not known to leave them
/// alone.
pub fn leaves_glibc_serving(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .unwrap_or(path)
        .starts_with("libjemalloc")
}

/// A runtime whose objects live in a heap of its own (arenas or a garbage-collected heap carved
/// from mmap), so they are not in a native report however much memory they take; each has its
/// own tool, which the report names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagedRuntime {
    /// CPython: objects up to 512 bytes come from pymalloc's arenas unless `PYTHONMALLOC=malloc`.
    Python,
    /// Node.js: JavaScript objects live in V8's heap (ArrayBuffer contents are malloc'd).
    Node,
    /// A HotSpot JVM (`libjvm.so`): Java objects live in the Java heap.
    Jvm,
}

impl ManagedRuntime {
    /// The runtime a loaded module is the core of: CPython's executable or `libpython3.x`,
    /// Node's executable or `libnode`, HotSpot's `libjvm`.
    pub fn of_module(path: &str) -> Option<ManagedRuntime> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let versioned = |prefix: &str| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
        };
        if versioned("python") || name.starts_with("libpython3.") || name.starts_with("libpython2.")
        {
            Some(ManagedRuntime::Python)
        } else if name == "node" || name == "nodejs" || name.starts_with("libnode.so") {
            Some(ManagedRuntime::Node)
        } else if name == "libjvm.so" {
            Some(ManagedRuntime::Jvm)
        } else {
            None
        }
    }
}

/// The resident set counts as far above the traced heap past this multiple of the heap's peak…
pub const RSS_OVER_HEAP_RATIO: f64 = 8.0;
/// …and when it exceeds the heap by at least this much (a small program's RSS is mostly its
/// libraries and stacks).
pub const RSS_OVER_HEAP_MIN_BYTES: u64 = 64 << 20;

/// Memory the report may not show, and why leaksift thinks so.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UntracedMemory {
    /// Loaded libraries that are allocators of their own (what they hand out through entry
    /// points of their own is not traced; see [`leaves_glibc_serving`]).
    pub allocator_modules: Vec<String>,
    /// An allocator library that comes before the tracer in the loader's search order (listed
    /// before it in `LD_PRELOAD`, as `LD_PRELOAD="liballoc.so $LD_PRELOAD"` in a start script
    /// puts it): the program's `malloc` family was that library's, so no allocation of it
    /// reached the tracer and the report holds none of them.
    pub allocator_before_tracer: Option<String>,
    /// The managed runtime the program runs on, if leaksift knows it (`python`, `node`, `jvm`).
    pub managed_runtime: Option<ManagedRuntime>,
    /// Peak RSS over the peak traced heap, when it is at least [`RSS_OVER_HEAP_RATIO`] and the
    /// gap at least [`RSS_OVER_HEAP_MIN_BYTES`]: memory from mmap, an allocator linked into the
    /// program, a JIT or an interpreter's arenas.
    pub rss_over_heap: Option<f64>,
}

impl UntracedMemory {
    /// The signs found in a trace's modules and peaks, or `None` when there are none.
    pub fn detect(
        modules: &[Module],
        peak_heap_bytes: u64,
        peak_rss_bytes: Option<u64>,
    ) -> Option<UntracedMemory> {
        let file_name = |m: &Module| m.path.rsplit('/').next().unwrap_or(&m.path).to_string();
        let is_allocator = |m: &Module| {
            let name = file_name(m);
            ALLOCATOR_LIBRARIES.iter().any(|lib| {
                name.strip_prefix(lib)
                    .is_some_and(|rest| rest.starts_with(['.', '_', '-']))
            })
        };
        // The modules come in the loader's order (`dl_iterate_phdr`'s, at the start: the
        // executable, then `LD_PRELOAD` in order, then the libraries they need), which is the
        // order a symbol such as `malloc` is looked up in.
        let allocator_before_tracer = modules
            .iter()
            .take_while(|m| !file_name(m).starts_with(TRACER_LIBRARY))
            .find(|m| is_allocator(m))
            .filter(|_| {
                modules
                    .iter()
                    .any(|m| file_name(m).starts_with(TRACER_LIBRARY))
            })
            .map(|m| m.path.clone());
        let mut allocator_modules: Vec<String> = modules
            .iter()
            .filter(|m| is_allocator(m))
            .map(|m| m.path.clone())
            .collect();
        allocator_modules.sort();
        allocator_modules.dedup();
        let managed_runtime = modules
            .iter()
            .find_map(|m| ManagedRuntime::of_module(&m.path));
        let rss_over_heap = peak_rss_bytes.and_then(|rss| {
            let ratio = rss as f64 / peak_heap_bytes.max(1) as f64;
            (ratio >= RSS_OVER_HEAP_RATIO
                && rss.saturating_sub(peak_heap_bytes) >= RSS_OVER_HEAP_MIN_BYTES)
                .then_some(ratio)
        });
        (!allocator_modules.is_empty() || managed_runtime.is_some() || rss_over_heap.is_some())
            .then_some(UntracedMemory {
                allocator_modules,
                allocator_before_tracer,
                managed_runtime,
                rss_over_heap,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leaksift_trace::model::ModuleId;

    fn module(path: &str) -> Module {
        Module {
            id: ModuleId(1),
            path: path.to_string(),
            build_id: None,
            base: 0,
            ranges: Vec::new(),
        }
    }

    #[test]
    fn allocator_libraries_are_named_and_lookalikes_are_not() {
        let modules = [
            module("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
            module("/usr/lib/libtcmalloc_minimal.so.4"),
            module("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            module("/opt/app/libjemallocator-helper.so"),
        ];
        let found = UntracedMemory::detect(&modules, 1 << 20, Some(2 << 20)).unwrap();
        assert_eq!(
            found.allocator_modules,
            [
                "/usr/lib/libtcmalloc_minimal.so.4",
                "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
            ]
        );
        assert_eq!(found.rss_over_heap, None);
    }

    #[test]
    fn an_allocator_before_the_tracer_in_the_search_order_is_named() {
        let tracer = module("/opt/leaksift/libleaksift_preload.so");
        let mimalloc = module("/usr/lib/x86_64-linux-gnu/libmimalloc.so.2");
        let libc = module("/usr/lib/x86_64-linux-gnu/libc.so.6");
        let app = module("/opt/app/server");
        let first = [app.clone(), mimalloc.clone(), tracer.clone(), libc.clone()];
        let found = UntracedMemory::detect(&first, 0, None).unwrap();
        assert_eq!(
            found.allocator_before_tracer.as_deref(),
            Some(mimalloc.path.as_str())
        );
        // After the tracer (`LD_PRELOAD="$LD_PRELOAD liballoc.so"`, or linked): traced.
        let after = [app.clone(), tracer, mimalloc.clone(), libc];
        let found = UntracedMemory::detect(&after, 0, None).unwrap();
        assert_eq!(found.allocator_before_tracer, None);
        assert_eq!(
            found.allocator_modules,
            std::slice::from_ref(&mimalloc.path)
        );
        // No tracer module at all (a hand-made trace): nothing to say about the order.
        let found = UntracedMemory::detect(&[app, mimalloc], 0, None).unwrap();
        assert_eq!(found.allocator_before_tracer, None);
    }

    #[test]
    fn a_resident_set_far_above_the_heap_is_flagged_only_past_both_bounds() {
        let libc = [module("/usr/lib/x86_64-linux-gnu/libc.so.6")];
        let mib = 1u64 << 20;
        // 100 MiB resident over 1 MiB of heap.
        let found = UntracedMemory::detect(&libc, mib, Some(100 * mib)).unwrap();
        assert_eq!(found.rss_over_heap, Some(100.0));
        // A small program: 20× but only 19 MiB apart.
        assert_eq!(UntracedMemory::detect(&libc, mib, Some(20 * mib)), None);
        // A big heap: 300 MiB apart but 4×.
        assert_eq!(
            UntracedMemory::detect(&libc, 100 * mib, Some(400 * mib)),
            None
        );
        assert_eq!(UntracedMemory::detect(&libc, mib, None), None);
    }

    #[test]
    fn runtimes_are_known_by_their_core_module_and_lookalikes_are_not() {
        let runtime = |path| ManagedRuntime::of_module(path);
        for python in [
            "/usr/bin/python3.11",
            "/usr/bin/python3",
            "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0",
        ] {
            assert_eq!(runtime(python), Some(ManagedRuntime::Python), "{python}");
        }
        for node in ["/usr/bin/node", "/usr/lib/x86_64-linux-gnu/libnode.so.108"] {
            assert_eq!(runtime(node), Some(ManagedRuntime::Node), "{node}");
        }
        assert_eq!(
            runtime("/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so"),
            Some(ManagedRuntime::Jvm)
        );
        for other in [
            "/usr/bin/python-config",
            "/usr/lib/python3/dist-packages/_cffi_backend.cpython-311-x86_64-linux-gnu.so",
            "/opt/app/node_helper",
            "/usr/lib/libjvmti_agent.so",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        ] {
            assert_eq!(runtime(other), None, "{other}");
        }
        let modules = [
            module("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            module("/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so"),
        ];
        // Named even when the resident set is close to the heap.
        let found = UntracedMemory::detect(&modules, 1 << 20, Some(2 << 20)).unwrap();
        assert_eq!(found.managed_runtime, Some(ManagedRuntime::Jvm));
        assert_eq!(found.rss_over_heap, None);
    }
}
