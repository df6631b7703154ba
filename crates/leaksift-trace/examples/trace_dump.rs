//! Prints a trace's header, events and truncation (`--summary`: leak classes of the last scan with
//! each lost block's stack instead of every event). Debugging aid:
//! `cargo run -p leaksift-trace --example trace_dump -- [--summary] FILE`.

use std::collections::HashMap;
use std::io::Write;

use leaksift_trace::TraceReader;
use leaksift_trace::model::{Event, LeakClass};

fn main() {
    // A closed stdout (e.g. `| head`) ends the dump quietly.
    if dump().is_err() {
        std::process::exit(0);
    }
}

fn dump() -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let summary = args.iter().any(|a| a == "--summary");
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: trace_dump [--summary] FILE");
        std::process::exit(2);
    };
    let mut reader = match TraceReader::open(std::path::Path::new(path)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("trace_dump: {e}");
            std::process::exit(2);
        }
    };
    writeln!(out, "{:?}", reader.header())?;
    let mut sizes: HashMap<u64, (u64, u32)> = HashMap::new();
    let mut stacks: HashMap<u32, Vec<u64>> = HashMap::new();
    let mut last_scan = None;
    let mut counts = (0u64, 0u64);
    for event in reader.events() {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                eprintln!("trace_dump: {e}");
                std::process::exit(2);
            }
        };
        if !summary {
            writeln!(out, "{event:?}")?;
            continue;
        }
        match event {
            Event::Stack { id, frames } => {
                stacks.insert(id.0, frames);
            }
            Event::Alloc {
                address,
                size,
                stack,
                ..
            } => {
                counts.0 += 1;
                sizes.insert(address, (size, stack.0));
            }
            Event::Realloc {
                old_address,
                new_address,
                size,
                stack,
                ..
            } => {
                counts.0 += 1;
                sizes.remove(&old_address);
                sizes.insert(new_address, (size, stack.0));
            }
            Event::Free { address, .. } => {
                counts.1 += 1;
                sizes.remove(&address);
            }
            Event::LeakScan(scan) => last_scan = Some(scan),
            _ => {}
        }
    }
    if summary {
        writeln!(
            out,
            "allocations {} frees {} live {}",
            counts.0,
            counts.1,
            sizes.len()
        )?;
        if let Some(scan) = last_scan {
            let mut totals: HashMap<LeakClass, (u64, u64)> = HashMap::new();
            for block in &scan.blocks {
                let (size, stack) = sizes.get(&block.address).copied().unwrap_or((0, 0));
                let t = totals.entry(block.class).or_default();
                t.0 += 1;
                t.1 += size;
                if block.class != LeakClass::StillReachable {
                    let frames: Vec<String> = stacks
                        .get(&stack)
                        .map(|f| f.iter().map(|a| format!("{a:#x}")).collect())
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "{:?} {:#x} {} bytes at [{}]",
                        block.class,
                        block.address,
                        size,
                        frames.join(" ")
                    )?;
                }
            }
            let mut classes: Vec<_> = totals.into_iter().collect();
            classes.sort();
            for (class, (blocks, bytes)) in classes {
                writeln!(out, "{class:?}: {blocks} blocks, {bytes} bytes")?;
            }
        }
    }
    writeln!(out, "truncation: {:?}", reader.truncation())?;
    out.flush()
}
