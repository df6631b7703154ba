//! Reads a dump and prints what the reader found and how long each phase took (profiling aid).

use std::time::Instant;

struct Phases {
    start: Instant,
}

impl leaksift_hprof::Observer for Phases {
    fn phase(&mut self, name: &'static str) {
        eprintln!("{:>8.3}s {name}", self.start.elapsed().as_secs_f64());
    }
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: read_dump FILE");
    let start = Instant::now();
    let file = leaksift_hprof::DumpFile::open(path.as_ref()).expect("open");
    let dump = file.read(&mut Phases { start }).expect("read");
    eprintln!("{:>8.3}s read done", start.elapsed().as_secs_f64());
    let dom = leaksift_heap::dominators::Dominators::compute(&dump.graph);
    eprintln!("{:>8.3}s dominators done", start.elapsed().as_secs_f64());
    println!(
        "nodes {} edges {} info {:?} unreachable {} root retained {}",
        dump.graph.node_count(),
        dump.graph.edge_count(),
        dump.info,
        dom.unreachable_count(),
        dom.retained(dump.graph.root())
    );
}
