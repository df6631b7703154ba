//! Allocator libraries that replace glibc's malloc family, known by file name: the recorder's
//! C++ operators make way for theirs, and the report names them as memory it may not see.

/// Library file name prefixes of allocators that define `malloc` (and, most, C++ operators) of
/// their own: jemalloc, tcmalloc, mimalloc, Hoard, snmalloc, rpmalloc, TBB's scalable allocator.
pub const ALLOCATOR_LIBRARIES: [&str; 7] = [
    "libjemalloc",
    "libtcmalloc",
    "libmimalloc",
    "libhoard",
    "libsnmalloc",
    "librpmalloc",
    "libtbbmalloc",
];
