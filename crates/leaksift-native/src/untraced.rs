//! Signs that a traced program used memory the recorder does not see: an allocator of its own
//! loaded as a library, or a resident set far above the traced heap.

use leaksift_trace::model::Module;

/// Library name prefixes of allocators that replace glibc's malloc family: what they hand out
/// never reaches the hooks.
const ALLOCATOR_LIBRARIES: [&str; 7] = [
    "libjemalloc",
    "libtcmalloc",
    "libmimalloc",
    "libhoard",
    "libsnmalloc",
    "librpmalloc",
    "libtbbmalloc",
];

/// The resident set counts as far above the traced heap past this multiple of the heap's peak…
pub const RSS_OVER_HEAP_RATIO: f64 = 8.0;
/// …and when it exceeds the heap by at least this much (a small program's RSS is mostly its
/// libraries and stacks).
pub const RSS_OVER_HEAP_MIN_BYTES: u64 = 64 << 20;

/// Memory the report may not show, and why leaksift thinks so.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UntracedMemory {
    /// Loaded libraries that are allocators of their own (their allocations are not traced).
    pub allocator_modules: Vec<String>,
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
        let mut allocator_modules: Vec<String> = modules
            .iter()
            .filter(|m| {
                let name = m.path.rsplit('/').next().unwrap_or(&m.path);
                ALLOCATOR_LIBRARIES.iter().any(|lib| {
                    name.strip_prefix(lib)
                        .is_some_and(|rest| rest.starts_with(['.', '_', '-']))
                })
            })
            .map(|m| m.path.clone())
            .collect();
        allocator_modules.sort();
        allocator_modules.dedup();
        let rss_over_heap = peak_rss_bytes.and_then(|rss| {
            let ratio = rss as f64 / peak_heap_bytes.max(1) as f64;
            (ratio >= RSS_OVER_HEAP_RATIO
                && rss.saturating_sub(peak_heap_bytes) >= RSS_OVER_HEAP_MIN_BYTES)
                .then_some(ratio)
        });
        (!allocator_modules.is_empty() || rss_over_heap.is_some()).then_some(UntracedMemory {
            allocator_modules,
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
}
