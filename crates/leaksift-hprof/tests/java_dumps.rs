//! Reads the committed dumps of the Java programs in tests/programs/java (regenerate them with
//! tests/programs/java/regenerate.sh) and checks the graph against what the programs built.

use std::path::PathBuf;

use leaksift_heap::{EdgeKind, GcRootKind, HeapGraph, NodeIndex, NodeKind};
use leaksift_hprof::{DumpFile, HprofDump, Quiet};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/hprof")
        .join(name)
}

fn read(name: &str) -> HprofDump {
    let file = DumpFile::open(&fixture(name)).expect("open fixture");
    assert!(file.is_compressed());
    file.read_unswept(&mut Quiet)
        .expect("read fixture")
        .sweep(&mut Quiet)
}

fn nodes_of_class<'g>(
    graph: &'g HeapGraph,
    class: &'g str,
) -> impl Iterator<Item = NodeIndex> + 'g {
    graph
        .nodes()
        .filter(move |&n| graph.class_name(graph.class(n)) == class)
}

/// Targets of `node`'s edges named `field`.
fn field(graph: &HeapGraph, node: NodeIndex, field: &str) -> Vec<(NodeIndex, EdgeKind, bool)> {
    graph
        .edges(node)
        .filter(|&e| graph.edge_label(e) == field)
        .map(|e| (graph.edge_to(e), graph.edge_kind(e), graph.is_essential(e)))
        .collect()
}

#[test]
fn shape_dump_has_the_objects_and_references_the_program_made() {
    let dump = read("shape.hprof.gz");
    let g = &dump.graph;
    assert_eq!(dump.info.id_size, 8);
    assert!(dump.info.sizes.compressed_oops);
    assert_eq!(nodes_of_class(g, "Shape$Counted").count(), 1234);
    let nodes: Vec<NodeIndex> = nodes_of_class(g, "Shape$Node").collect();
    assert_eq!(nodes.len(), 6);
    for &n in &nodes {
        assert_eq!(g.kind(n), NodeKind::Instance);
        // 12-byte header + 3 compressed references = 24 bytes.
        assert_eq!(g.self_size(n), 24);
    }
    // Identify the nodes by their payload length: byte[100] is a, ..., byte[600] is w.
    let payload_len = |n: NodeIndex| {
        let (array, _, _) = field(g, n, "payload")[0];
        g.self_size(array)
    };
    let by_size = |size: u64| {
        *nodes
            .iter()
            .find(|&&n| payload_len(n) == size)
            .expect("node")
    };
    // align8(16 + n): 100 → 120, 200 → 216, 300 → 320, 400 → 416, 500 → 520, 600 → 616.
    let (a, b, c, d, e, w) = (
        by_size(120),
        by_size(216),
        by_size(320),
        by_size(416),
        by_size(520),
        by_size(616),
    );
    assert_eq!(field(g, a, "left")[0].0, b);
    assert_eq!(field(g, a, "right")[0].0, c);
    assert_eq!(field(g, b, "left")[0].0, d);
    assert_eq!(field(g, c, "left")[0].0, d);
    assert_eq!(field(g, d, "left")[0].0, e);
    assert_eq!(field(g, e, "right")[0].0, w);
    // The static HOLDER of class Shape points at a.
    let shape_class = g
        .nodes()
        .find(|&n| g.kind(n) == NodeKind::Class && g.name(n) == "Shape")
        .expect("class Shape");
    assert_eq!(
        field(g, shape_class, "HOLDER"),
        vec![(a, EdgeKind::StaticField, true)]
    );
    // WEAK's referent is w, through a weak, non-essential edge.
    let (weak, _, _) = field(g, shape_class, "WEAK")[0];
    assert_eq!(g.class_name(g.class(weak)), "java.lang.ref.WeakReference");
    assert_eq!(field(g, weak, "referent"), vec![(w, EdgeKind::Weak, false)]);
}

#[test]
fn main_thread_holds_its_locals_and_has_a_name_and_stack() {
    let dump = read("listener_leak.hprof.gz");
    let g = &dump.graph;
    let main = dump
        .threads
        .iter()
        .find(|t| t.name.as_deref() == Some("main"))
        .expect("main thread");
    let frame = main
        .frames
        .iter()
        .find(|f| f.method == "ListenerLeak.main")
        .expect("ListenerLeak.main frame");
    assert!(
        frame.location.starts_with("ListenerLeak.java:"),
        "{}",
        frame.location
    );
    let bus = frame
        .locals
        .iter()
        .copied()
        .find(|&n| g.class_name(g.class(n)) == "ListenerLeak$EventBus")
        .expect("bus is a local of main");
    // The local hangs off the thread object as a Java-frame root edge.
    let thread_edges: Vec<_> = g
        .edges(main.object)
        .filter(|&e| g.edge_to(e) == bus)
        .map(|e| g.edge_kind(e))
        .collect();
    assert_eq!(thread_edges, vec![EdgeKind::GcRoot(GcRootKind::JavaFrame)]);
    assert_eq!(nodes_of_class(g, "ListenerLeak$Widget").count(), 1500);
    assert_eq!(
        nodes_of_class(g, "ListenerLeak$Widget$ClickListener").count(),
        1500
    );
}

#[test]
fn static_leak_dump_counts_sessions() {
    let dump = read("static_leak.hprof.gz");
    let g = &dump.graph;
    assert_eq!(nodes_of_class(g, "StaticLeak$Session").count(), 3000);
    assert_eq!(dump.info.stats.layout_mismatches, 0);
    assert_eq!(dump.info.stats.instances_of_unknown_classes, 0);
    let roots = g.edges(g.root()).count();
    assert!(roots > 100, "{roots} root edges");
}

#[test]
fn main_frame_of_the_listener_leak_retains_the_widgets() {
    let dump = read("listener_leak.hprof.gz");
    let g = &dump.graph;
    let dominators = leaksift_heap::dominators::Dominators::compute(g);
    let ranking = leaksift_hprof::thread_retention(&dump.threads, &dominators);
    let top = &ranking[0];
    let thread = &dump.threads[top.thread];
    assert_eq!(thread.name.as_deref(), Some("main"));
    let frame = &top.frames[0];
    assert_eq!(thread.frames[frame.frame].method, "ListenerLeak.main");
    // 1500 widgets, each with an int[250] (16 + 1000 bytes) and a listener: well over 1.5 MB.
    assert!(frame.retained > 1_500_000, "{}", frame.retained);
    assert!(top.retained >= frame.retained);
    let biggest = frame.biggest.expect("a local");
    assert_eq!(g.class_name(g.class(biggest)), "ListenerLeak$EventBus");
}

#[test]
fn shape_dominator_tree_matches_the_hand_computed_one() {
    let dump = read("shape.hprof.gz");
    let g = &dump.graph;
    let dom = leaksift_heap::dominators::Dominators::compute(g);
    let nodes: Vec<NodeIndex> = nodes_of_class(g, "Shape$Node").collect();
    let by_payload = |size: u64| {
        *nodes
            .iter()
            .find(|&&n| g.self_size(field(g, n, "payload")[0].0) == size)
            .expect("node")
    };
    let (a, b, c, d, e, w) = (
        by_payload(120),
        by_payload(216),
        by_payload(320),
        by_payload(416),
        by_payload(520),
        by_payload(616),
    );
    // Shape.HOLDER -> a; a -> b, c; b -> d; c -> d; d -> e; e -> w; Shape.WEAK ~> w.
    assert_eq!(dom.idom(b), a);
    assert_eq!(dom.idom(c), a);
    assert_eq!(dom.idom(d), a);
    assert_eq!(dom.idom(e), d);
    assert_eq!(dom.idom(w), e, "the weak referent must not count");
    // Hand-computed retained sizes (24-byte nodes, byte[n] = align8(16 + n)):
    // w = 24 + 616; e = 24 + 520 + w; d = 24 + 416 + e; b = 24 + 216; c = 24 + 320;
    // a = 24 + 120 + b + c + d.
    assert_eq!(dom.retained(w), 640);
    assert_eq!(dom.retained(e), 1184);
    assert_eq!(dom.retained(d), 1624);
    assert_eq!(dom.retained(b), 240);
    assert_eq!(dom.retained(c), 344);
    assert_eq!(dom.retained(a), 2352);
    let shape = g
        .nodes()
        .find(|&n| g.kind(n) == NodeKind::Class && g.name(n) == "Shape")
        .expect("class Shape");
    assert!(dom.dominates(shape, a));
}

/// Every `java.lang.Thread` object is named after its thread, as MAT labels them: also those
/// without a THREAD OBJECT root (the JIT compiler threads, which a JNI global holds).
#[test]
fn every_thread_object_is_named_after_its_thread() {
    for fixture in [
        "listener_leak.hprof.gz",
        "static_leak.hprof.gz",
        "shape.hprof.gz",
    ] {
        let dump = read(fixture);
        let g = &dump.graph;
        let threads: Vec<NodeIndex> = nodes_of_class(g, "java.lang.Thread").collect();
        let rooted = dump.threads.len();
        assert!(
            threads.len() > rooted,
            "{fixture}: {} Thread objects, {rooted} with a THREAD OBJECT root",
            threads.len()
        );
        for thread in threads {
            assert_ne!(
                g.name(thread),
                "java.lang.Thread",
                "{fixture}: {}",
                g.describe(thread)
            );
        }
    }
}
