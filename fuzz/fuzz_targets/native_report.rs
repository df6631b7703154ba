//! Fuzzes the analysis side of `leaksift report`: arbitrary bytes as a trace are decoded and every
//! decoded event replayed, and arbitrary text is parsed as a suppressions file and its patterns
//! matched; none of it may panic.
#![no_main]

use leaksift_native::replay::Replay;
use leaksift_native::suppress::{Suppressions, template_match};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(suppressions) = Suppressions::parse(&text) {
        for pattern in suppressions.patterns() {
            let _ = template_match(pattern, &text);
        }
    }
    if let Ok(mut reader) = leaksift_trace::TraceReader::from_bytes(data) {
        let mut replay = Replay::new();
        while let Ok(Some(event)) = reader.next_event() {
            replay.event(&event);
        }
        let analysis = replay.finish();
        let _ = analysis.sites.times_s();
    }
});
