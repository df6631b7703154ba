//! Fuzzes the analysis side of `leaksift report`: arbitrary bytes as a trace are decoded and every
//! decoded event replayed; the same bytes read as a stream of events (allocations, frees,
//! reallocs, RSS samples, scans, stacks) are replayed directly, since the trace format's chunk
//! checksums keep most mutated files from reaching the replay, then built into the report's view
//! and compared with itself as `diff` does; and arbitrary text is parsed as a suppressions file
//! and its patterns matched. None of it may panic.
#![no_main]

use leaksift_native::replay::{LeakClass, Replay};
use leaksift_native::compare;
use leaksift_native::suppress::{Suppressions, template_match};
use leaksift_native::symbolize::Symbolizer;
use leaksift_native::view::{self, ViewOptions};
use leaksift_trace::model::{
    AllocKind, Event, LeakScan, ProcessEnd, ScanTrigger, ScannedBlock, StackId, ThreadId,
    TraceTime,
};
use libfuzzer_sys::fuzz_target;

/// Bytes per event of the structured stream.
const EVENT_BYTES: usize = 12;

/// The event encoded by 12 bytes: a kind, a time step, a small address and a full 64-bit size
/// (hostile sizes included), on 16 threads and 8 stacks.
fn event(op: &[u8], time: &mut u64) -> Event {
    *time += u64::from(op[1]);
    let at = TraceTime(*time);
    let thread = ThreadId(u32::from(op[0] >> 4));
    let address = 0x1000 + u64::from(u16::from_le_bytes([op[2], op[3]])) * 16;
    let size = u64::from_le_bytes(op[4..12].try_into().unwrap());
    let stack = StackId(u32::from(op[1] & 7));
    match op[0] & 7 {
        0 | 1 => Event::Alloc {
            time: at,
            thread,
            address,
            size,
            stack,
            kind: AllocKind::Malloc,
        },
        2 => Event::Free {
            time: at,
            thread,
            address,
        },
        3 => Event::Realloc {
            time: at,
            thread,
            old_address: address,
            new_address: address ^ (size & 0xff0),
            size: size >> (op[1] & 63),
            stack,
        },
        4 => Event::RssSample {
            time: at,
            rss_bytes: size,
        },
        5 => Event::Stack {
            id: stack,
            frames: op[4..12].iter().map(|b| u64::from(*b) << 12).collect(),
        },
        6 => Event::LeakScan(Box::new(LeakScan {
            time: at,
            trigger: ScanTrigger::Exit,
            blocks: op[4..12]
                .chunks(2)
                .map(|b| ScannedBlock {
                    address: 0x1000 + u64::from(b[0]) * 16,
                    class: match b[1] & 3 {
                        0 => LeakClass::DefinitelyLost,
                        1 => LeakClass::IndirectlyLost,
                        2 => LeakClass::PossiblyLost,
                        _ => LeakClass::StillReachable,
                    },
                })
                .collect(),
        })),
        _ => Event::End {
            time: at,
            end: ProcessEnd::Exited(i32::from(op[2])),
        },
    }
}

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
    let mut replay = Replay::new();
    let mut time = 0u64;
    for op in data.chunks_exact(EVENT_BYTES) {
        replay.event(&event(op, &mut time));
    }
    let analysis = replay.finish();
    let _ = analysis.sites.times_s();
    // The report's view and a trace diff of it with itself (no modules: every frame is `??`).
    let mut symbols = Symbolizer::new(&analysis.modules, &[]);
    let report = view::build(
        &analysis,
        &mut symbols,
        &Suppressions::default(),
        &ViewOptions::default(),
    );
    let _ = report.leak_stacks.len();
    let mut other = Symbolizer::new(&analysis.modules, &[]);
    let _ = compare::compare(&analysis, &mut symbols, &analysis, &mut other);
});
