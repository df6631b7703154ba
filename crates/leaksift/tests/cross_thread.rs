//! The tracer loaded into a real multi-threaded C program whose blocks are freed and reallocated
//! on other threads than the ones that allocated them: the trace must replay exactly (every free
//! names a live block, no block is allocated twice) and be in time order, which checks the
//! lock-free publication and the membarrier-backed watermark of the event buffers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use leaksift_trace::TraceReader;
use leaksift_trace::model::Event;

mod support;

/// `libleaksift_preload.so` next to the `leaksift` binary, built if needed.
fn preload_library() -> PathBuf {
    support::ensure_preload();
    Path::new(env!("CARGO_BIN_EXE_leaksift")).with_file_name("libleaksift_preload.so")
}

fn compile(dir: &Path) -> PathBuf {
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/record/handoff.c");
    let program = dir.join("handoff");
    let status = Command::new("cc")
        .args(["-O2", "-g", "-pthread", "-o"])
        .arg(&program)
        .arg(&source)
        .status()
        .expect("running cc");
    assert!(status.success(), "compiling {}", source.display());
    program
}

#[test]
fn blocks_freed_on_other_threads_replay_exactly_and_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path());
    let library = preload_library();
    for run in 0..3 {
        let trace = dir.path().join(format!("handoff{run}.lks"));
        let output = Command::new(&program)
            .env("LD_PRELOAD", &library)
            .env("LEAKSIFT_OUTPUT", &trace)
            .output()
            .expect("running the program");
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "done\n");

        let mut reader = TraceReader::open(&trace).unwrap();
        let (mut live, mut allocations, mut last_time) = (HashMap::new(), 0u64, 0u64);
        let allocate = |live: &mut HashMap<u64, u64>, address: u64, size: u64| {
            assert!(
                live.insert(address, size).is_none(),
                "run {run}: block {address:#x} allocated while live"
            );
        };
        for event in reader.events() {
            let event = event.unwrap();
            match event {
                Event::Alloc {
                    time,
                    address,
                    size,
                    ..
                } => {
                    allocate(&mut live, address, size);
                    allocations += 1;
                    assert!(time.0 >= last_time, "run {run}: time went backwards");
                    last_time = time.0;
                }
                Event::Free { time, address, .. } => {
                    assert!(
                        live.remove(&address).is_some(),
                        "run {run}: free of unknown block {address:#x}"
                    );
                    assert!(time.0 >= last_time, "run {run}: time went backwards");
                    last_time = time.0;
                }
                Event::Realloc {
                    time,
                    old_address,
                    new_address,
                    size,
                    ..
                } => {
                    if old_address != 0 {
                        assert!(
                            live.remove(&old_address).is_some(),
                            "run {run}: realloc of unknown block {old_address:#x}"
                        );
                    }
                    allocate(&mut live, new_address, size);
                    allocations += 1;
                    assert!(time.0 >= last_time, "run {run}: time went backwards");
                    last_time = time.0;
                }
                _ => {}
            }
        }
        assert!(!reader.is_truncated(), "run {run}: trace truncated");
        // 4 producers x 200000 blocks, a third of them reallocated, and reallocs by consumers.
        assert!(
            allocations >= 4 * 200_000,
            "run {run}: {allocations} allocations"
        );
        // What stays: glibc's per-thread structures and stdout's buffer, never the handed blocks.
        assert!(
            live.len() <= 16,
            "run {run}: {} blocks live at exit",
            live.len()
        );
    }
}
