//! Fuzzes the HPROF reader and its duplicated-strings pass: arbitrary bytes (with and without a
//! valid header) must give a graph or a typed error, never a panic, and for any bytes the reader
//! accepts, decoding the `java.lang.String` values must give rows or a typed error, and the
//! analyses `heap` runs on the graph (dominators with the HPROF shortcuts, classes, suspects,
//! paths) must finish.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../shared/analyses.rs"]
mod analyses;
use analyses::run_heap_analyses;

fuzz_target!(|data: &[u8]| {
    let _ = leaksift_hprof::read(data, &mut leaksift_hprof::Quiet);
    // Most random inputs fail at the header; also feed the bytes as the records of a real one.
    let (ids, body) = match data.split_first() {
        Some((&first, rest)) => (if first & 1 == 0 { 4u32 } else { 8 }, rest),
        None => (8, data),
    };
    let mut dump = b"JAVA PROFILE 1.0.2\0".to_vec();
    dump.extend_from_slice(&ids.to_be_bytes());
    dump.extend_from_slice(&0u64.to_be_bytes());
    dump.extend_from_slice(body);
    if let Ok(read) = leaksift_hprof::read(&dump, &mut leaksift_hprof::Quiet) {
        let _ = leaksift_hprof::duplicate_strings(&dump, &read.graph, |_| true, 10);
        run_heap_analyses(&read.graph);
    }
});
