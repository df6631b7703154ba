//! Fuzz target: arbitrary bytes through the native trace reader must never panic, both as a
//! whole file and as the payload of one chunk of an otherwise valid file. Chunks carry a CRC32,
//! so a mutated file almost never reaches the record decoder; the second form gives the payload
//! a correct checksum (an uncompressed chunk, codec 0 in docs/trace-format.md) so that it does.
#![no_main]

use std::sync::OnceLock;

use leaksift_trace::model::TraceHeader;
use leaksift_trace::{TraceReader, TraceWriter};
use libfuzzer_sys::fuzz_target;

/// A valid file's magic, version and header, without any chunk.
fn file_head() -> &'static [u8] {
    static HEAD: OnceLock<Vec<u8>> = OnceLock::new();
    HEAD.get_or_init(|| {
        let header = TraceHeader {
            format_version: leaksift_trace::format::FORMAT_VERSION,
            pid: 1,
            command: vec!["./fuzzed".into()],
            start_unix_s: 0,
            start_subsec_nanos: None,
            page_size: 4096,
            traces_mmap: false,
        };
        let mut bytes = TraceWriter::new(Vec::new(), &header)
            .and_then(TraceWriter::finish)
            .expect("writing to a Vec");
        let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        bytes.truncate(16 + header_len + 4);
        bytes
    })
}

fn read_all(bytes: &[u8]) {
    if let Ok(mut reader) = TraceReader::from_bytes(bytes) {
        for event in reader.events() {
            if event.is_err() {
                break;
            }
        }
        let _ = reader.is_truncated();
    }
}

fuzz_target!(|data: &[u8]| {
    read_all(data);
    if !data.is_empty() {
        let mut file = file_head().to_vec();
        let len = data.len() as u32;
        file.extend_from_slice(&len.to_le_bytes());
        file.extend_from_slice(&len.to_le_bytes());
        file.push(0);
        file.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        file.extend_from_slice(data);
        read_all(&file);
    }
});
