//! Writer → reader round trips, truncation detection and hostile input (no panics, offsets named).

use leaksift_trace::format::SYNTHETIC_ADDRESS_BASE;
use leaksift_trace::model::*;
use leaksift_trace::writer::AddressPolicy;
use leaksift_trace::{TraceError, TraceReader, TraceWriter, Truncation};
use proptest::prelude::*;

fn header() -> TraceHeader {
    TraceHeader {
        format_version: leaksift_trace::format::FORMAT_VERSION,
        pid: 4242,
        command: vec!["./prog".into(), "--flag".into(), "ünïcode".into()],
        start_unix_s: 1_700_000_000,
        start_subsec_nanos: Some(250_000_000),
        page_size: 4096,
        traces_mmap: true,
    }
}

fn sample_events() -> Vec<Event> {
    let t = TraceTime;
    vec![
        Event::ModuleLoaded(Box::new(Module {
            id: ModuleId(0),
            path: "/usr/bin/prog".into(),
            build_id: Some(vec![0xde, 0xad, 0xbe, 0xef]),
            base: 0x5555_5555_4000,
            ranges: vec![(0x5555_5555_4000, 0x5555_5555_9000)],
        })),
        Event::ModuleLoaded(Box::new(Module {
            id: ModuleId(1),
            path: String::new(),
            build_id: None,
            base: 0,
            ranges: vec![],
        })),
        Event::Stack {
            id: StackId(1),
            frames: vec![0x5555_5555_5123, 0x7fff_0000_1000, 0x5555_5555_4fff],
        },
        Event::Stack {
            id: StackId(7),
            frames: vec![],
        },
        Event::Alloc {
            time: t(10),
            thread: ThreadId(0),
            address: 0x5555_5560_0010,
            size: 32,
            stack: StackId(1),
            kind: AllocKind::Malloc,
        },
        Event::Alloc {
            time: t(10),
            thread: ThreadId(3),
            address: 0x7f00_0000_0010,
            size: 1 << 40,
            stack: StackId(7),
            kind: AllocKind::PosixMemalign,
        },
        Event::Realloc {
            time: t(25),
            thread: ThreadId(0),
            old_address: 0x5555_5560_0010,
            new_address: 0x5555_5560_0100,
            size: 64,
            stack: StackId(1),
        },
        Event::Realloc {
            time: t(25),
            thread: ThreadId(0),
            old_address: 0,
            new_address: 0x10,
            size: 0,
            stack: StackId(7),
        },
        Event::Free {
            time: t(30),
            thread: ThreadId(3),
            address: 0x7f00_0000_0010,
        },
        Event::Free {
            time: t(29),
            thread: ThreadId(3),
            address: u64::MAX,
        },
        Event::RssSample {
            time: t(1_000_000),
            rss_bytes: 12 << 20,
        },
        Event::ModuleUnloaded {
            id: ModuleId(1),
            time: t(1_000_001),
        },
        Event::LeakScan(Box::new(LeakScan {
            time: t(2_000_000),
            trigger: ScanTrigger::OnDemand,
            blocks: vec![
                ScannedBlock {
                    address: 0x5555_5560_0100,
                    class: LeakClass::DefinitelyLost,
                },
                ScannedBlock {
                    address: 0x10,
                    class: LeakClass::IndirectlyLost,
                },
                ScannedBlock {
                    address: 0x20,
                    class: LeakClass::PossiblyLost,
                },
                ScannedBlock {
                    address: 0x30,
                    class: LeakClass::StillReachable,
                },
            ],
        })),
        Event::LeakScan(Box::new(LeakScan {
            time: t(2_000_000),
            trigger: ScanTrigger::Exit,
            blocks: vec![],
        })),
        // An exec that failed, then the exit.
        Event::Exec(Box::new(ExecCall {
            program: "/usr/bin/next prog".into(),
            args: vec!["next".into(), "".into(), "ärg \u{1b}".into()],
            keeps_tracer: false,
        })),
        Event::End {
            time: t(2_500_000),
            end: ProcessEnd::Exec,
        },
        Event::End {
            time: t(3_000_000),
            end: ProcessEnd::Exited(-3),
        },
    ]
}

fn encode(events: &[Event], chunk_bytes: usize) -> Vec<u8> {
    let mut writer = TraceWriter::new(Vec::new(), &header()).expect("writing to a Vec");
    writer.set_chunk_bytes(chunk_bytes);
    for event in events {
        writer.write(event).expect("writing to a Vec");
    }
    writer.finish().expect("writing to a Vec")
}

fn decode(bytes: &[u8]) -> Result<(Vec<Event>, Truncation), TraceError> {
    let mut reader = TraceReader::from_bytes(bytes)?;
    let events = reader.events().collect::<Result<Vec<_>, _>>()?;
    Ok((events, reader.truncation()))
}

#[test]
fn every_event_kind_round_trips_exactly() {
    for chunk_bytes in [1024, 1 << 20] {
        let events = sample_events();
        let bytes = encode(&events, chunk_bytes);
        let mut reader = TraceReader::from_bytes(&bytes).unwrap();
        assert_eq!(reader.header(), &header());
        assert_eq!(reader.truncation(), Truncation::Unknown);
        let decoded: Vec<Event> = reader.events().map(Result::unwrap).collect();
        assert_eq!(decoded, events);
        assert_eq!(reader.truncation(), Truncation::Complete);
        assert!(!reader.is_truncated());
    }
}

#[test]
fn many_chunks_round_trip_through_a_file() {
    let mut events = Vec::new();
    for i in 0..20_000u64 {
        events.push(Event::Alloc {
            time: TraceTime(i * 7),
            thread: ThreadId((i % 5) as u32),
            address: 0x1000 + (i % 97) * 48,
            size: i % 300,
            stack: StackId((i % 13) as u32),
            kind: if i % 3 == 0 {
                AllocKind::Calloc
            } else {
                AllocKind::Malloc
            },
        });
        events.push(Event::Free {
            time: TraceTime(i * 7 + 3),
            thread: ThreadId(0),
            address: 0x1000 + (i % 97) * 48,
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.lks");
    std::fs::write(&path, encode(&events, 4096)).unwrap();
    let mut reader = TraceReader::open(&path).unwrap();
    let decoded: Vec<Event> = reader.events().map(Result::unwrap).collect();
    assert_eq!(decoded, events);
    assert!(reader.is_truncated(), "no End event was written");
    assert_eq!(
        reader.truncation(),
        Truncation::Truncated {
            partial_chunk_offset: None
        }
    );
}

#[test]
fn time_resolution_quantises_times_downwards() {
    let mut writer = TraceWriter::new(Vec::new(), &header()).unwrap();
    writer.set_time_resolution(100);
    for time in [0u64, 50, 99, 100, 150, 260, 261] {
        writer.free(TraceTime(time), ThreadId(0), 8).unwrap();
    }
    let bytes = writer.finish().unwrap();
    let times: Vec<u64> = decode(&bytes)
        .unwrap()
        .0
        .iter()
        .map(|e| match e {
            Event::Free { time, .. } => time.0,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(times, vec![0, 0, 0, 100, 100, 200, 200]);
}

#[test]
fn a_cut_file_reads_up_to_the_last_complete_chunk() {
    let events = sample_events();
    let bytes = encode(&events, 1024);
    let full = decode(&bytes).unwrap().0;
    // Cutting anywhere after the header never errors: it yields a prefix and reports truncation.
    let header_len = {
        let mut writer = TraceWriter::new(Vec::new(), &header()).unwrap();
        writer.flush().unwrap();
        writer.finish().unwrap().len()
    };
    for cut in header_len..bytes.len() {
        let (prefix, truncation) = decode(&bytes[..cut]).unwrap();
        assert!(
            matches!(truncation, Truncation::Truncated { .. }),
            "cut at {cut}"
        );
        assert_eq!(prefix[..], full[..prefix.len()]);
    }
}

#[test]
fn bad_magic_version_and_checksums_are_named_errors() {
    assert!(matches!(
        decode(b"not a trace at all"),
        Err(TraceError::BadMagic)
    ));
    // Nothing written (a disk full at once) and a header cut short are said as such.
    assert!(matches!(decode(b""), Err(TraceError::Empty)));
    assert!(matches!(
        decode(b"LKSF"),
        Err(TraceError::Corrupt { offset: 4, .. })
    ));
    let mut bytes = encode(&sample_events(), 1 << 20);
    bytes[8] = 9;
    let err = decode(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            TraceError::UnsupportedVersion {
                offset: 8,
                version: 9
            }
        ),
        "{err}"
    );
    let mut bytes = encode(&sample_events(), 1 << 20);
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    let err = decode(&bytes).unwrap_err();
    assert!(err.to_string().contains("corrupt trace at byte"), "{err}");
    assert!(err.offset() > 16);
}

#[test]
fn a_chunk_claiming_gigabytes_of_compressed_bytes_is_refused_before_any_are_read() {
    // Found by the trace_reader fuzz target: a 43-byte file made the reader set aside 4 GB.
    let mut bytes = encode(&sample_events(), 1 << 20);
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let chunk = 16 + header_len + 4;
    bytes[chunk + 4..chunk + 8].copy_from_slice(&0xFF00_00DEu32.to_le_bytes());
    let err = decode(&bytes).unwrap_err();
    assert_eq!(err.offset(), (chunk + 4) as u64, "{err}");
    assert!(
        err.to_string()
            .contains("stored chunk length 4278190302 is implausible"),
        "{err}"
    );
}

#[test]
fn frees_named_by_allocation_distance_decode_to_their_addresses() {
    for chunk_bytes in [1024, 1 << 20] {
        let mut writer = TraceWriter::new(Vec::new(), &header()).unwrap();
        writer.set_chunk_bytes(chunk_bytes);
        let mut expected = Vec::new();
        let mut live: Vec<(u64, u64)> = Vec::new();
        for i in 0..12_000u64 {
            let address = 0x10_0000 + (i * 7919 % 5000) * 32 + i;
            let thread = ThreadId((i % 3) as u32);
            writer
                .alloc(
                    TraceTime(i),
                    thread,
                    address,
                    i % 100,
                    StackId(1),
                    AllocKind::Malloc,
                )
                .unwrap();
            expected.push(Event::Alloc {
                time: TraceTime(i),
                thread,
                address,
                size: i % 100,
                stack: StackId(1),
                kind: AllocKind::Malloc,
            });
            live.push((address, writer.last_allocation()));
            // Free blocks at varying ages: recent ones, and some far beyond the window.
            let age = [1usize, 3, 64, 5000][(i % 4) as usize];
            if live.len() > age {
                let (address, allocation) = live.remove(live.len() - 1 - age);
                writer
                    .free_allocation(TraceTime(i), ThreadId(1), address, allocation)
                    .unwrap();
                expected.push(Event::Free {
                    time: TraceTime(i),
                    thread: ThreadId(1),
                    address,
                });
            }
        }
        let bytes = writer.finish().unwrap();
        let (decoded, _) = decode(&bytes).unwrap();
        assert_eq!(decoded, expected, "chunk size {chunk_bytes}");
    }
}

#[test]
fn version_2_traces_are_refused_by_name() {
    let mut bytes = encode(&sample_events(), 1 << 20);
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    let err = decode(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            TraceError::UnsupportedVersion {
                offset: 8,
                version: 2
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("this build reads versions 3 to 6"),
        "{err}"
    );
}

/// Version 4 only added the exec end kind, version 5 the exec call record, version 6 the
/// header's start nanoseconds and split scans: a version 3, 4 or 5 trace (the same records
/// with that version, without what came later) still reads.
/// `events` encoded as format `version` (3 to 5) writes them: the header without the start
/// nanoseconds of version 6 (written as 0 here, one byte at the end of the header).
fn encode_as(version: u32, events: &[Event]) -> Vec<u8> {
    let mut writer = TraceWriter::new(
        Vec::new(),
        &TraceHeader {
            start_subsec_nanos: Some(0),
            ..header()
        },
    )
    .expect("writing to a Vec");
    for event in events {
        writer.write(event).expect("writing to a Vec");
    }
    let bytes = writer.finish().expect("writing to a Vec");
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let body = &bytes[16..16 + header_len];
    assert_eq!(body.last(), Some(&0), "the nanoseconds come last");
    let old_body = &body[..header_len - 1];
    let mut old = bytes[..8].to_vec();
    old.extend_from_slice(&version.to_le_bytes());
    old.extend_from_slice(&(header_len as u32 - 1).to_le_bytes());
    old.extend_from_slice(old_body);
    old.extend_from_slice(&crc32fast::hash(old_body).to_le_bytes());
    old.extend_from_slice(&bytes[16 + header_len + 4..]);
    old
}

#[test]
fn version_3_to_5_traces_still_read() {
    let without_exec_calls: Vec<Event> = sample_events()
        .into_iter()
        .filter(|e| !matches!(e, Event::Exec(_)))
        .collect();
    let bytes = encode_as(5, &sample_events());
    let mut reader = TraceReader::from_bytes(&bytes).unwrap();
    assert_eq!(reader.header().format_version, 5);
    assert_eq!(
        reader.header().start_subsec_nanos,
        None,
        "version 5 knows the second"
    );
    let decoded: Vec<Event> = reader.events().map(Result::unwrap).collect();
    assert_eq!(decoded, sample_events());

    let bytes = encode_as(4, &without_exec_calls);
    let (decoded, _) = decode(&bytes).unwrap();
    assert_eq!(decoded, without_exec_calls);

    let events: Vec<Event> = without_exec_calls
        .into_iter()
        .filter(|e| {
            !matches!(
                e,
                Event::End {
                    end: ProcessEnd::Exec,
                    ..
                }
            )
        })
        .collect();
    let bytes = encode_as(3, &events);
    let (decoded, _) = decode(&bytes).unwrap();
    assert_eq!(decoded, events);
}

/// A scan of millions of blocks went into one record, whose chunk (16.8 MB at 8.4 M blocks)
/// was over the readers' limit: the whole trace then read as corrupt, without its scan. It is
/// written over several records now and read back as one scan.
#[test]
fn a_scan_of_millions_of_blocks_reads_back_whole() {
    let classes = [
        LeakClass::DefinitelyLost,
        LeakClass::IndirectlyLost,
        LeakClass::PossiblyLost,
        LeakClass::StillReachable,
    ];
    let blocks: Vec<ScannedBlock> = (0..9_000_000u64)
        .map(|i| ScannedBlock {
            address: 0x1000 + i * 32,
            class: classes[(i % 4) as usize],
        })
        .collect();
    let events = vec![
        Event::LeakScan(Box::new(LeakScan {
            time: TraceTime(5),
            trigger: ScanTrigger::OnDemand,
            blocks,
        })),
        Event::LeakScan(Box::new(LeakScan {
            time: TraceTime(6),
            trigger: ScanTrigger::Exit,
            blocks: Vec::new(),
        })),
        Event::End {
            time: TraceTime(7),
            end: ProcessEnd::Exited(0),
        },
    ];
    let bytes = encode(&events, 1 << 20);
    let (decoded, truncation) = decode(&bytes).unwrap();
    assert!(decoded == events, "the scans differ");
    assert_eq!(truncation, Truncation::Complete);
}

/// The recorder ends an exec'd image's trace with `end_with_exec`: the exec call and end records
/// in a last chunk stored raw, which `exec_ending` finds from the chunk headers alone; the whole
/// trace still reads, complete, with both events. A trace that goes on after the exec (it
/// failed) or ends with an exit has no exec ending.
#[test]
fn an_exec_ending_is_found_from_the_last_chunk_alone() {
    let dir = tempfile::tempdir().unwrap();
    let call = ExecCall {
        program: "/bin/static prog".into(),
        args: vec!["./static prog".into(), "a\u{1b}".into()],
        keeps_tracer: true,
    };
    let write = |name: &str, after_exec: bool| {
        let path = dir.path().join(name);
        let mut writer =
            TraceWriter::new(std::fs::File::create(&path).unwrap(), &header()).unwrap();
        writer.set_chunk_bytes(64);
        for i in 0..200u64 {
            writer
                .alloc(
                    TraceTime(i),
                    ThreadId(0),
                    0x1000 + i * 64,
                    48,
                    StackId(0),
                    AllocKind::Malloc,
                )
                .unwrap();
        }
        writer.end_with_exec(TraceTime(300), Some(&call)).unwrap();
        if after_exec {
            writer.free(TraceTime(400), ThreadId(0), 0x1000).unwrap();
            writer.end(TraceTime(500), ProcessEnd::Exited(6)).unwrap();
        }
        writer.finish().unwrap();
        path
    };
    let exec = write("exec.lks", false);
    assert_eq!(
        leaksift_trace::exec_ending(&exec).unwrap(),
        Some(leaksift_trace::ExecEnding {
            call: Some(call.clone())
        })
    );
    let mut reader = TraceReader::open(&exec).unwrap();
    let events: Vec<Event> = reader.events().collect::<Result<_, _>>().unwrap();
    assert!(!reader.is_truncated());
    assert_eq!(events.len(), 202);
    assert_eq!(events[200], Event::Exec(Box::new(call.clone())));
    assert_eq!(
        events[201],
        Event::End {
            time: TraceTime(300),
            end: ProcessEnd::Exec
        }
    );

    let failed = write("failed.lks", true);
    assert_eq!(leaksift_trace::exec_ending(&failed).unwrap(), None);
    let mut reader = TraceReader::open(&failed).unwrap();
    let events: Vec<Event> = reader.events().collect::<Result<_, _>>().unwrap();
    assert!(!reader.is_truncated());
    assert_eq!(events.len(), 204);

    let exited = dir.path().join("exited.lks");
    std::fs::write(&exited, encode(&sample_events(), 1 << 20)).unwrap();
    assert_eq!(leaksift_trace::exec_ending(&exited).unwrap(), None);
}

/// Under `AddressPolicy::Survivors` only blocks live at their chunk's end keep their address:
/// the rest decode at synthetic addresses, consistently between allocation and free, and a leak
/// scan's blocks all have their real addresses.
#[test]
fn survivor_policy_states_the_addresses_that_outlive_their_chunk() {
    let mut writer = TraceWriter::new(Vec::new(), &header()).unwrap();
    writer.set_chunk_bytes(1024);
    writer.set_address_policy(AddressPolicy::Survivors);
    let mut kept = Vec::new();
    for i in 0..3000u64 {
        let address = 0x7f00_0000 + (i % 50) * 0x100 + i / 50;
        writer
            .alloc(
                TraceTime(i),
                ThreadId(1),
                address,
                24,
                StackId(0),
                AllocKind::Malloc,
            )
            .unwrap();
        if i % 7 == 0 {
            kept.push(address);
        } else {
            writer.free(TraceTime(i), ThreadId(1), address).unwrap();
        }
    }
    // Some kept blocks are freed chunks later, by address; one through realloc.
    let freed_late: Vec<u64> = kept.drain(..10).collect();
    for &address in &freed_late[1..] {
        writer.free(TraceTime(5000), ThreadId(2), address).unwrap();
    }
    writer
        .realloc(
            TraceTime(5001),
            ThreadId(2),
            freed_late[0],
            0x9000_0000,
            8,
            StackId(0),
        )
        .unwrap();
    kept.push(0x9000_0000);
    let blocks = kept
        .iter()
        .map(|&address| ScannedBlock {
            address,
            class: LeakClass::StillReachable,
        })
        .collect();
    writer
        .leak_scan(&LeakScan {
            time: TraceTime(6000),
            trigger: ScanTrigger::Exit,
            blocks,
        })
        .unwrap();
    let (decoded, _) = decode(&writer.finish().unwrap()).unwrap();

    let mut live = std::collections::HashSet::new();
    let mut synthetic = 0;
    for event in &decoded {
        match event {
            Event::Alloc { address, .. } => {
                synthetic += usize::from(*address >= SYNTHETIC_ADDRESS_BASE);
                assert!(live.insert(*address), "{address:#x} allocated twice");
            }
            Event::Free { address, .. } => assert!(live.remove(address), "{address:#x}"),
            Event::Realloc {
                old_address,
                new_address,
                ..
            } => {
                assert!(live.remove(old_address));
                assert!(live.insert(*new_address));
            }
            Event::LeakScan(scan) => {
                let scanned: std::collections::HashSet<u64> =
                    scan.blocks.iter().map(|b| b.address).collect();
                assert_eq!(scanned, live, "the scan names exactly the live blocks");
            }
            _ => {}
        }
    }
    assert!(
        synthetic > 2000,
        "{synthetic} blocks at synthetic addresses"
    );
    assert_eq!(live.len(), kept.len());
}

#[test]
fn read_batch_delivers_the_same_events_chunk_by_chunk() {
    let mut events = sample_events();
    events.pop();
    for i in 0..5000u64 {
        events.push(Event::Free {
            time: TraceTime(i),
            thread: ThreadId(1),
            address: i * 16,
        });
    }
    events.push(Event::End {
        time: TraceTime(9),
        end: ProcessEnd::Exited(0),
    });
    let bytes = encode(&events, 1024);
    let mut reader = TraceReader::from_bytes(&bytes).unwrap();
    let (mut batch, mut all) = (Vec::new(), Vec::new());
    let mut calls = 0;
    while reader.read_batch(&mut batch).unwrap() {
        calls += 1;
        all.extend_from_slice(&batch);
    }
    assert!(calls > 1, "several chunks");
    assert_eq!(all, events);
    // Mixed with `next_event`: a batch is the rest of the current chunk.
    let mut reader = TraceReader::from_bytes(&bytes).unwrap();
    let mut mixed = vec![reader.next_event().unwrap().unwrap()];
    while reader.read_batch(&mut batch).unwrap() {
        mixed.extend_from_slice(&batch);
        mixed.extend(reader.next_event().unwrap());
    }
    assert_eq!(mixed, events);
    assert_eq!(reader.truncation(), Truncation::Complete);
    assert_eq!(reader.truncation(), Truncation::Complete);
}

#[test]
fn files_read_on_the_prefetch_thread_behave_like_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = sample_events();
    for i in 0..3000u64 {
        events.insert(
            3,
            Event::Free {
                time: TraceTime(i),
                thread: ThreadId(2),
                address: i,
            },
        );
    }
    let good = encode(&events, 1024);
    let mut variants = vec![good.clone(), good[..good.len() - 7].to_vec()];
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    variants.push(flipped);
    for bytes in variants {
        let path = dir.path().join("t.lks");
        std::fs::write(&path, &bytes).unwrap();
        let mut from_file = TraceReader::open(&path).unwrap();
        let file_events: Vec<Result<Event, String>> = from_file
            .events()
            .map(|e| e.map_err(|e| e.to_string()))
            .collect();
        let mut from_bytes = TraceReader::from_bytes(&bytes).unwrap();
        let byte_events: Vec<Result<Event, String>> = from_bytes
            .events()
            .map(|e| e.map_err(|e| e.to_string()))
            .collect();
        assert_eq!(file_events, byte_events);
        assert_eq!(from_file.truncation(), from_bytes.truncation());
    }
}

/// `sample_events()` in 1 KiB chunks, encoded once for the bit-flip cases.
fn sample_trace() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| encode(&sample_events(), 1024))
}

/// Allocations freed by chunk distance over three threads, recorded like the recorder does
/// (survivor addresses only), encoded once for the bit-flip cases.
fn chunk_frees_trace() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let mut writer = TraceWriter::new(Vec::new(), &header()).unwrap();
        writer.set_chunk_bytes(1024);
        writer.set_address_policy(AddressPolicy::Survivors);
        for i in 0..400u64 {
            writer
                .alloc(
                    TraceTime(i),
                    ThreadId((i % 3) as u32),
                    0x1000 + i * 64,
                    i,
                    StackId(0),
                    AllocKind::Malloc,
                )
                .unwrap();
            let allocation = writer.last_allocation();
            if i % 5 != 0 {
                writer
                    .free_allocation(TraceTime(i), ThreadId(1), 0x1000 + i * 64, allocation)
                    .unwrap();
            }
        }
        writer.finish().unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
        let mut with_magic = leaksift_trace::format::MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = decode(&with_magic);
    }

    #[test]
    fn bit_flips_in_recent_frees_and_thread_switches_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let mut bytes = chunk_frees_trace().to_vec();
        for (index, bit) in flips {
            let i = index.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        let _ = decode(&bytes);
    }

    #[test]
    fn bit_flips_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..6)) {
        let mut bytes = sample_trace().to_vec();
        for (index, bit) in flips {
            let i = index.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        let _ = decode(&bytes);
    }
}
