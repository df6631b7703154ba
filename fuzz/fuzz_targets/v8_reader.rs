//! Fuzzes the V8 .heapsnapshot reader and the analyses on what it reads: arbitrary bytes, and a
//! real snapshot with bytes patched in, must give a graph or a typed error, never a panic.
#![no_main]

use std::sync::Arc;

use leaksift_heap::input::HeapBytes;
use leaksift_heap::v8;
use libfuzzer_sys::fuzz_target;

#[path = "../shared/analyses.rs"]
mod analyses;
use analyses::run_heap_analyses;

const HANDMADE: &[u8] = include_bytes!("../../tests/fixtures/v8/handmade.heapsnapshot");

fn exercise(bytes: Vec<u8>) {
    let Ok(snapshot) = v8::read(Arc::new(HeapBytes::Owned(bytes)), None, &mut |_| {}) else {
        return;
    };
    let graph = &snapshot.graph;
    let last = run_heap_analyses(graph);
    if let Some(stacks) = &snapshot.allocation_stacks {
        let _ = stacks.stack(last);
        let _ = stacks.most_common_stack(graph.nodes());
    }
}

fuzz_target!(|data: &[u8]| {
    exercise(data.to_vec());
    // Patch the input into a valid snapshot at an offset chosen by its first two bytes.
    if let [a, b, patch @ ..] = data {
        let at = (usize::from(*a) << 8 | usize::from(*b)) % HANDMADE.len();
        let mut bytes = HANDMADE.to_vec();
        let end = (at + patch.len()).min(bytes.len());
        bytes[at..end].copy_from_slice(&patch[..end - at]);
        exercise(bytes);
    }
});
