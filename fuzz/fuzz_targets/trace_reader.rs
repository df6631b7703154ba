//! Fuzz target: arbitrary bytes through the native trace reader must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut reader) = leaksift_trace::TraceReader::from_bytes(data) {
        for event in reader.events() {
            if event.is_err() {
                break;
            }
        }
        let _ = reader.is_truncated();
    }
});
