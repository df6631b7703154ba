//! The tracer loaded into a real multi-threaded C program whose blocks are freed and reallocated
//! on other threads than the ones that allocated them: the trace must replay exactly (every free
//! names a live block, no block is allocated twice) and be in time order, which checks the
//! lock-free publication and the membarrier-backed watermark of the event buffers. And hundreds
//! of threads allocating at once, which wait for the writer (back-pressure): none of their
//! events is lost.

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

fn compile(dir: &Path, name: &str) -> PathBuf {
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/programs/record/{name}.c"));
    let program = dir.join(name);
    let status = Command::new("cc")
        .args(["-O2", "-g", "-pthread", "-o"])
        .arg(&program)
        .arg(&source)
        .status()
        .expect("running cc");
    assert!(status.success(), "compiling {}", source.display());
    program
}

/// What replaying a trace left.
struct Replay {
    /// Blocks live at the end, by address: their sizes.
    live: HashMap<u64, u64>,
    /// Allocations and reallocations.
    allocations: u64,
    /// Allocations and reallocations by size.
    by_size: HashMap<u64, u64>,
}

/// Replays `trace`, checking that every free names a live block, that no block is allocated
/// while live, that time never goes backwards and that the trace is complete.
/// Runs `program` with the tracer preloaded, tracing into `trace`; it must print `done`.
fn run_traced(program: &Path, library: &Path, trace: &Path) {
    let output = Command::new(program)
        .env("LD_PRELOAD", library)
        .env("LEAKSIFT_OUTPUT", trace)
        .output()
        .expect("running the program");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "done\n");
}

fn replay(trace: &Path, run: &str) -> Replay {
    let mut reader = TraceReader::open(trace).unwrap();
    let (mut live, mut allocations, mut last_time) = (HashMap::new(), 0u64, 0u64);
    let mut by_size = HashMap::new();
    let mut allocate = |live: &mut HashMap<u64, u64>, address: u64, size: u64| {
        *by_size.entry(size).or_insert(0u64) += 1;
        assert!(
            live.insert(address, size).is_none(),
            "{run}: block {address:#x} allocated while live"
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
                assert!(time.0 >= last_time, "{run}: time went backwards");
                last_time = time.0;
            }
            Event::Free { time, address, .. } => {
                assert!(
                    live.remove(&address).is_some(),
                    "{run}: free of unknown block {address:#x}"
                );
                assert!(time.0 >= last_time, "{run}: time went backwards");
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
                        "{run}: realloc of unknown block {old_address:#x}"
                    );
                }
                allocate(&mut live, new_address, size);
                allocations += 1;
                assert!(time.0 >= last_time, "{run}: time went backwards");
                last_time = time.0;
            }
            _ => {}
        }
    }
    assert!(!reader.is_truncated(), "{run}: trace truncated");
    Replay {
        live,
        allocations,
        by_size,
    }
}

#[test]
fn blocks_freed_on_other_threads_replay_exactly_and_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path(), "handoff");
    let library = preload_library();
    for run in 0..3 {
        let trace = dir.path().join(format!("handoff{run}.lks"));
        run_traced(&program, &library, &trace);

        let Replay {
            live, allocations, ..
        } = replay(&trace, &format!("run {run}"));
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

/// 300 threads allocating at once outrun the writer on a few cores, so they wait for it
/// (back-pressure; a wait that polled the queue once made 200 threads 36 times slower than 8).
/// However long they wait, every block is in the trace once, freed, in time order.
#[test]
fn many_concurrent_threads_waiting_for_the_writer_lose_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path(), "many_threads");
    let library = preload_library();
    let trace = dir.path().join("many.lks");
    run_traced(&program, &library, &trace);
    let Replay { live, by_size, .. } = replay(&trace, "many threads");
    // Exactly the 300 x 2000 worker blocks in the workers' sizes.
    let workers: u64 = (1000..1016).filter_map(|size| by_size.get(&size)).sum();
    assert_eq!(workers, 300 * 2000);
    assert!(
        live.values().all(|size| !(1000..1016).contains(size)),
        "a worker block is live at exit"
    );
}
