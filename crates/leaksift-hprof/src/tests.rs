//! Reader tests on hand-built dumps: a hand-computed dominator tree, both id sizes, both heap
//! record kinds, Android tags, and hostile input (truncation, bit flips, random bytes).

use leaksift_heap::dominators::Dominators;
use leaksift_heap::{EdgeKind, GcRootKind, HeapGraph, IdColumn, NodeFlags, NodeIndex};
use proptest::prelude::*;

use crate::error::ErrorKind;
use crate::format::sub;
use crate::testing::{DumpWriter, OBJECT};
use crate::{HprofDump, Quiet, read, read_with_workers};

const OBJECT_CLASS: u64 = 0x100;
const NODE: u64 = 0x110;
const REFERENCE: u64 = 0x120;
const WEAK_REFERENCE: u64 = 0x130;
const OBJECT_ARRAY: u64 = 0x140;
const HOLDER: u64 = 0x150;
const BYTES_CLASS: u64 = 0x160;

// Objects: the shape is Holder.HOLDER → a; a → b, c; b → d; c → d, wr; d → e, arr;
// arr → e, bytes; wr ~> f (weak referent); x is an interned-string root.
const A: u64 = 0x1000;
const B: u64 = 0x1010;
const C: u64 = 0x1020;
const D: u64 = 0x1030;
const E: u64 = 0x1040;
const WR: u64 = 0x1050;
const F: u64 = 0x1060;
const ARR: u64 = 0x1070;
const BYTES: u64 = 0x1080;
const X: u64 = 0x1090;

/// The hand-built dump; `cut` splits the heap into two segments before the instances.
fn shape(version: &'static str, id_size: usize, cut: bool) -> Vec<u8> {
    let mut w = DumpWriter::new(version, id_size);
    let names = [
        (1, "Node"),
        (2, "left"),
        (3, "right"),
        (4, "java/lang/Object"),
        (5, "java/lang/ref/Reference"),
        (6, "referent"),
        (7, "java/lang/ref/WeakReference"),
        (8, "[Ljava/lang/Object;"),
        (9, "HOLDER"),
        (10, "Holder"),
        (11, "[B"),
    ];
    for (id, text) in names {
        w.string(id, text);
    }
    for (serial, class, name) in [
        (1, OBJECT_CLASS, 4),
        (2, NODE, 1),
        (3, REFERENCE, 5),
        (4, WEAK_REFERENCE, 7),
        (5, OBJECT_ARRAY, 8),
        (6, HOLDER, 10),
        (7, BYTES_CLASS, 11),
    ] {
        w.load_class(serial, class, name);
    }
    w.class(OBJECT_CLASS, 0, &[], &[])
        .class(NODE, OBJECT_CLASS, &[(2, OBJECT), (3, OBJECT)], &[])
        .class(REFERENCE, OBJECT_CLASS, &[(6, OBJECT)], &[])
        .class(WEAK_REFERENCE, REFERENCE, &[], &[])
        .class(OBJECT_ARRAY, OBJECT_CLASS, &[], &[])
        .class(HOLDER, OBJECT_CLASS, &[], &[(9, A)])
        .class(BYTES_CLASS, OBJECT_CLASS, &[], &[]);
    for class in [
        OBJECT_CLASS,
        NODE,
        REFERENCE,
        WEAK_REFERENCE,
        OBJECT_ARRAY,
        HOLDER,
        BYTES_CLASS,
    ] {
        w.root(sub::ROOT_STICKY_CLASS, class);
    }
    if cut {
        w.cut();
    }
    w.instance(A, NODE, &[B, C])
        .instance(B, NODE, &[D, 0])
        .instance(C, NODE, &[D, WR])
        .instance(D, NODE, &[E, ARR])
        .instance(E, NODE, &[0, 0])
        .instance(WR, WEAK_REFERENCE, &[F])
        .instance(F, NODE, &[0, 0])
        .object_array(ARR, OBJECT_ARRAY, &[E, BYTES])
        .byte_array(BYTES, 100)
        .instance(X, NODE, &[0, 0]);
    if version == "1.0.3" {
        // Android extras: an interned-string root, heap info, an int array without data.
        w.root(sub::ANDROID_ROOT_INTERNED_STRING, X);
        let mut info = vec![sub::ANDROID_HEAP_DUMP_INFO, 0, 0, 0, 1];
        info.extend(std::iter::repeat_n(0u8, id_size));
        w.raw_heap(&info);
        let mut no_data = vec![sub::ANDROID_PRIMITIVE_ARRAY_NODATA];
        no_data.extend(std::iter::repeat_n(0u8, id_size - 1));
        no_data.push(0xA0);
        no_data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 10, 10]);
        w.raw_heap(&no_data);
    } else {
        w.root(sub::ROOT_UNKNOWN, X);
    }
    w.finish(if cut { 0x1C } else { 0x0C })
}

fn node(g: &HeapGraph, id: u64) -> NodeIndex {
    g.nodes().find(|&n| g.id(n).0 == id).expect("node with id")
}

fn check_shape(dump: &HprofDump, id_size: u64) {
    let g = &dump.graph;
    let dom = Dominators::compute(g);
    let n = |id| node(g, id);
    assert_eq!(dom.idom(n(A)), n(HOLDER));
    assert_eq!(dom.idom(n(HOLDER)), g.root());
    assert_eq!(dom.idom(n(B)), n(A));
    assert_eq!(dom.idom(n(C)), n(A));
    assert_eq!(dom.idom(n(D)), n(A));
    assert_eq!(dom.idom(n(E)), n(D));
    assert_eq!(dom.idom(n(ARR)), n(D));
    assert_eq!(dom.idom(n(BYTES)), n(ARR));
    assert_eq!(dom.idom(n(WR)), n(C));
    // The weak referent is not retained by its reference.
    assert_ne!(dom.idom(n(F)), n(WR));
    // Sizes: 8-byte ids → 12-byte header, 4-byte references (compressed oops), 16-byte array
    // header; 4-byte ids → 8-byte header, 12-byte array header.
    let (node_size, array2, bytes100) = if id_size == 8 {
        (24, 24, 120)
    } else {
        (16, 24, 112)
    };
    assert_eq!(g.self_size(n(A)), node_size);
    assert_eq!(g.self_size(n(ARR)), array2);
    assert_eq!(g.self_size(n(BYTES)), bytes100);
    assert_eq!(dom.retained(n(ARR)), array2 + bytes100);
    assert_eq!(dom.retained(n(D)), 2 * node_size + array2 + bytes100);
    assert_eq!(dom.retained(n(C)), node_size + g.self_size(n(WR)));
    assert_eq!(
        dom.retained(n(A)),
        4 * node_size + g.self_size(n(WR)) + array2 + bytes100 + node_size
    );
    let referent: Vec<_> = g
        .edges(n(WR))
        .filter(|&e| g.edge_label(e) == "referent")
        .map(|e| (g.edge_to(e), g.edge_kind(e), g.is_essential(e)))
        .collect();
    assert_eq!(referent, vec![(n(F), EdgeKind::Weak, false)]);
    assert!(g.flags(n(X)).has(NodeFlags::GC_ROOT));
    assert!(g.flags(n(HOLDER)).has(NodeFlags::GC_ROOT));
    assert!(!g.flags(n(A)).has(NodeFlags::GC_ROOT));
}

#[test]
fn hand_built_dump_with_4_byte_ids_and_android_tags() {
    let dump = read(&shape("1.0.3", 4, false), &mut Quiet).expect("read");
    assert_eq!(dump.info.id_size, 4);
    assert_eq!(dump.info.version, "1.0.3");
    check_shape(&dump, 4);
    let g = &dump.graph;
    let kinds: Vec<_> = g
        .edges(g.root())
        .filter(|&e| g.edge_to(e) == node(g, X))
        .map(|e| g.edge_kind(e))
        .collect();
    assert_eq!(kinds, vec![EdgeKind::GcRoot(GcRootKind::InternedString)]);
    // The no-data int[10]: 12 + 40 → 56 bytes.
    assert_eq!(g.self_size(node(g, 0xA0)), 56);
}

#[test]
fn hand_built_dump_with_8_byte_ids_and_segments() {
    let dump = read(&shape("1.0.2", 8, true), &mut Quiet).expect("read");
    assert!(dump.info.sizes.compressed_oops);
    check_shape(&dump, 8);
}

#[test]
fn hand_built_dump_1_0_1_single_heap_dump_record() {
    let dump = read(&shape("1.0.1", 8, false), &mut Quiet).expect("read");
    check_shape(&dump, 8);
    assert_eq!(dump.info.objects, 7 + 10);
}

/// A dump (8-byte ids) whose one class is `Node { left, right }`, a sticky-class root, and whose
/// object `A` (still to be written) is a root.
fn node_dump() -> DumpWriter {
    let mut w = DumpWriter::new("1.0.2", 8);
    w.string(1, "Node").string(2, "left").string(3, "right");
    w.load_class(1, NODE, 1);
    w.class(NODE, 0, &[(2, OBJECT), (3, OBJECT)], &[]);
    w.root(sub::ROOT_STICKY_CLASS, NODE)
        .root(sub::ROOT_UNKNOWN, A);
    w
}

#[test]
fn any_number_of_workers_builds_the_same_graph() {
    // Segments: classes and roots | a b c | d e wr | f arr bytes x (+ the root kinds).
    let mut w = node_dump();
    w.cut();
    w.instance(A, NODE, &[B, C])
        .instance(B, NODE, &[D, 0])
        .instance(C, NODE, &[D, E])
        .cut();
    w.instance(D, NODE, &[E, A])
        .instance(E, NODE, &[0, 0])
        .cut();
    w.instance(F, NODE, &[A, 0]).root(sub::ROOT_UNKNOWN, F);
    let data = w.finish(0x1C);
    let shape = |workers| {
        let dump = read_with_workers(&data, &mut Quiet, workers).expect("read");
        let g = dump.graph;
        let edges: Vec<(u64, u64, String)> = g
            .nodes()
            .flat_map(|n| {
                g.edges(n)
                    .map(|e| {
                        (
                            g.id(n).0,
                            g.id(g.edge_to(e)).0,
                            g.edge_label(e).into_owned(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        (g.node_count(), g.first_edges().to_vec(), edges)
    };
    let one = shape(1);
    assert_eq!(one.0, 1 + 1 + 6);
    assert!(one.2.contains(&(D, A, "right".to_string())));
    for workers in 2..7 {
        assert_eq!(shape(workers), one, "{workers} workers");
    }
}

#[test]
fn classes_past_65_535_and_sizes_of_64_kib_and_more_read_back() {
    // Class ids and self sizes are written in 2 bytes: classes above `u16::MAX` are kept aside
    // (the class column then widens to 4 bytes), sizes of 64 KiB and more too.
    const CLASSES: u64 = 65_600;
    let class_id = |k: u64| 0x10_0000 + k * 0x10;
    let mut w = DumpWriter::new("1.0.2", 8);
    for k in 0..CLASSES {
        w.string(100 + k, &format!("C{k}"));
        w.load_class(k as u32 + 1, class_id(k), 100 + k);
        w.class(class_id(k), 0, &[], &[]);
        w.root(sub::ROOT_STICKY_CLASS, class_id(k));
    }
    let (first, last) = (0x900_0000, 0x900_0010);
    w.instance(first, class_id(0), &[])
        .instance(last, class_id(CLASSES - 1), &[])
        .byte_array(0x900_0020, 70_000)
        .byte_array(0x900_0040, 65_520)
        .byte_array(0x900_0060, 65_512)
        .root(sub::ROOT_UNKNOWN, first)
        .root(sub::ROOT_UNKNOWN, last);
    let data = w.finish(0x0C);
    for workers in [1, 3] {
        let g = read_with_workers(&data, &mut Quiet, workers)
            .expect("read")
            .graph;
        assert_eq!(g.name(node(&g, first)), "C0", "{workers} workers");
        assert_eq!(g.name(node(&g, last)), format!("C{}", CLASSES - 1));
        assert_eq!(
            g.name(node(&g, class_id(CLASSES - 1))),
            format!("C{}", CLASSES - 1)
        );
        // A byte array takes its 16-byte header and its bytes, rounded up to 8.
        let size = |id| g.self_size(node(&g, id));
        assert_eq!(size(0x900_0020), 70_016);
        assert_eq!(size(0x900_0040), 65_536);
        assert_eq!(size(0x900_0060), 65_528);
        assert_eq!(g.self_sizes().iter().filter(|s| *s >= 65_535).count(), 2);
    }
}

#[test]
fn big_array_indices_and_class_names_survive_the_narrow_columns() {
    // Edge names are stored in 2 bytes, indices of 65 535 and more aside; nodes are named after
    // their class, class objects after themselves. Several workers shift the kept-aside names.
    let mut w = DumpWriter::new("1.0.2", 8);
    w.string(1, "Node").string(2, "left").string(3, "right");
    w.string(8, "[Ljava/lang/Object;");
    w.load_class(1, NODE, 1).load_class(2, OBJECT_ARRAY, 8);
    w.class(NODE, 0, &[(2, OBJECT), (3, OBJECT)], &[])
        .class(OBJECT_ARRAY, 0, &[], &[]);
    w.root(sub::ROOT_STICKY_CLASS, NODE)
        .root(sub::ROOT_UNKNOWN, A)
        .root(sub::ROOT_UNKNOWN, ARR)
        .cut();
    w.instance(A, NODE, &[B, 0])
        .instance(B, NODE, &[0, 0])
        .cut();
    let mut elements = vec![0u64; 70_000];
    for at in [3, 65_534, 65_535, 69_999] {
        elements[at] = B;
    }
    w.object_array(ARR, OBJECT_ARRAY, &elements).cut();
    w.instance(C, NODE, &[A, B]).root(sub::ROOT_UNKNOWN, C);
    let data = w.finish(0x1C);
    for workers in 1..5 {
        let g = read_with_workers(&data, &mut Quiet, workers)
            .expect("read")
            .graph;
        let labels = |id| -> Vec<String> {
            let n = node(&g, id);
            g.edges(n).map(|e| g.edge_label(e).into_owned()).collect()
        };
        assert_eq!(
            labels(ARR),
            ["<class>", "[3]", "[65534]", "[65535]", "[69999]"],
            "{workers} workers"
        );
        assert_eq!(labels(C), ["<class>", "left", "right"], "{workers} workers");
        assert_eq!(g.name(node(&g, A)), "Node");
        assert_eq!(g.name(node(&g, ARR)), "java.lang.Object[]");
        assert_eq!(g.name(node(&g, NODE)), "Node");
        assert_eq!(g.class_name(g.class(node(&g, NODE))), "java.lang.Class");
    }
}

/// HotSpot writes names in modified UTF-8: a character outside the BMP is its surrogate pair,
/// each surrogate in 3 bytes. Class, field, static, method and source file names all decode it.
#[test]
fn names_in_modified_utf8_decode_supplementary_characters() {
    use crate::mutf8::encode;
    const THREAD: u64 = 0x2000;
    let mut w = DumpWriter::new("1.0.2", 8);
    // U+10400 (𐐀) is D801 DC00: ED A0 81 ED B0 80 in the dump.
    assert_eq!(encode("𐐀"), b"\xED\xA0\x81\xED\xB0\x80");
    w.string_bytes(1, &encode("Supp$𐐀Widget"))
        .string_bytes(2, &encode("data𐐀"))
        .string_bytes(3, &encode("keep𐐀"))
        .string_bytes(4, &encode("run𐐀"))
        .string_bytes(5, &encode("W𐐀.java"))
        // A lone high surrogate.
        .string_bytes(6, b"lone\xED\xA0\x81");
    w.load_class(1, NODE, 1);
    w.frame(0x77, 4, 5, 1, 7).trace(9, 1, &[0x77]);
    w.class(NODE, 0, &[(2, OBJECT)], &[(3, A), (6, B)]);
    w.root(sub::ROOT_STICKY_CLASS, NODE)
        .thread_root(THREAD, 1, 9);
    w.instance(A, NODE, &[B])
        .instance(B, NODE, &[0])
        .instance(THREAD, NODE, &[0]);
    let dump = read(&w.finish(0x0C), &mut Quiet).expect("read");
    let g = &dump.graph;
    assert_eq!(g.name(node(g, A)), "Supp$𐐀Widget");
    let labels = |id| -> Vec<String> {
        let n = node(g, id);
        g.edges(n).map(|e| g.edge_label(e).into_owned()).collect()
    };
    assert_eq!(labels(A), ["<class>", "data𐐀"]);
    let statics = labels(NODE);
    assert!(statics.contains(&"keep𐐀".to_string()), "{statics:?}");
    assert!(statics.contains(&"lone\u{FFFD}".to_string()), "{statics:?}");
    let frames = &dump.threads[0].frames;
    assert_eq!(frames[0].method, "Supp$𐐀Widget.run𐐀");
    assert_eq!(frames[0].location, "W𐐀.java:7");
}

#[test]
fn ids_in_1_4_or_8_bytes_read_back_exactly() {
    // The graph keeps ids in the smallest exact form: 4-byte offsets from the lowest id in units
    // of their alignment when they fit, one byte per step from the previous id with the ids that
    // are no step kept aside (an object 2^40 bytes away), u64 when those would be as big (that
    // object listed before the one 2^40 bytes below it); an odd id drops the alignment.
    const FAR: u64 = 0x7f12_3456_7000;
    for (far, far_first, form) in [
        (0x9_0000_0000 + A, false, "offsets"),
        (FAR, false, "steps"),
        (FAR, true, "wide"),
        (A + 1, false, "offsets"),
    ] {
        let mut w = node_dump();
        if far_first {
            w.instance(far, NODE, &[0, A]).instance(A, NODE, &[far, 0]);
        } else {
            w.instance(A, NODE, &[far, 0]).instance(far, NODE, &[0, A]);
        }
        let g = read(&w.finish(0x0C), &mut Quiet).expect("read").graph;
        let picked = match g.ids() {
            IdColumn::Offsets { .. } => "offsets",
            IdColumn::Steps(_) => "steps",
            IdColumn::Wide(_) => "wide",
        };
        assert_eq!(picked, form, "{far:#x}");
        let ids: Vec<u64> = g.ids().iter().collect();
        let expected = if far_first {
            [0, NODE, far, A]
        } else {
            [0, NODE, A, far]
        };
        assert_eq!(ids, expected, "{far:#x}");
        let far_node = node(&g, far);
        assert_eq!(g.ids().position(far), Some(far_node.get()));
        assert_eq!(g.ids().position(far + 8), None);
        assert_eq!(g.id(far_node).0, far);
        assert_eq!(Dominators::compute(&g).idom(far_node), node(&g, A));
    }
}

#[test]
fn every_truncation_inside_the_heap_is_an_error_with_its_offset() {
    let data = shape("1.0.2", 8, false);
    let heap_start = last_record_start(&data);
    for cut in 0..data.len() {
        let result = read(&data[..cut], &mut Quiet);
        if cut > heap_start {
            let error = result.expect_err("a cut inside the heap record must fail");
            assert!(
                error.offset <= cut as u64,
                "offset {} past cut {cut}",
                error.offset
            );
            assert!(matches!(error.kind, ErrorKind::Truncated { .. }), "{error}");
        }
    }
}

/// Offset of the last top-level record (the heap dump) of a dump built by [`shape`].
fn last_record_start(data: &[u8]) -> usize {
    *record_starts(data).last().expect("a record")
}

#[test]
fn unknown_sub_record_names_its_offset() {
    let mut w = DumpWriter::new("1.0.2", 8);
    w.raw_heap(&[0x42, 1, 2, 3]);
    let data = w.finish(0x1C);
    let error = read(&data, &mut Quiet).expect_err("unknown tag");
    assert_eq!(error.kind, ErrorKind::UnknownSubRecord(0x42));
    // The sub-record is the last one before the 9-byte HEAP DUMP END record.
    assert_eq!(error.offset, (data.len() - 9 - 4) as u64);
}

/// A dump cut at a record boundary after a heap dump segment, before the HEAP DUMP END record
/// that closes the segments: nothing else shows the cut, and the segments that are missing may
/// hold the GC roots (jcmd writes them last), so it is an error at the end of the file, not an
/// analysis of part of a heap.
#[test]
fn a_segmented_dump_cut_before_its_heap_dump_end_record_is_truncated() {
    let whole = shape("1.0.2", 8, true);
    assert!(read(&whole, &mut Quiet).is_ok());
    let starts = record_starts(&whole);
    let first_segment = starts
        .iter()
        .position(|&at| whole[at] == 0x1C)
        .expect("a segment");
    // Every boundary after a segment: after the first one, after the last one (only the END
    // record missing).
    let cuts = &starts[first_segment + 1..];
    assert!(cuts.len() >= 2, "the shape has several segments");
    for &cut in cuts {
        let error = read(&whole[..cut], &mut Quiet).expect_err("cut before HEAP DUMP END");
        assert!(
            matches!(error.kind, ErrorKind::Truncated { what, .. } if what.contains("HEAP DUMP END")),
            "cut at {cut}: {error}"
        );
        assert_eq!(error.offset, cut as u64);
    }
}

/// Offsets of the top-level records of a dump built by [`DumpWriter`].
fn record_starts(data: &[u8]) -> Vec<usize> {
    let mut at = data.iter().position(|&b| b == 0).unwrap() + 1 + 4 + 8;
    let mut starts = Vec::new();
    while at < data.len() {
        starts.push(at);
        let len = u32::from_be_bytes(data[at + 5..at + 9].try_into().unwrap()) as usize;
        at += 9 + len;
    }
    starts
}

#[test]
fn dump_time_is_shown_in_utc() {
    let mut info = read(&shape("1.0.2", 8, false), &mut Quiet)
        .expect("read")
        .info;
    info.timestamp_ms = 1_795_231_337_753;
    assert_eq!(info.written_utc(), "2026-11-21 03:22:17 UTC");
    info.timestamp_ms = 951_782_400_000;
    assert_eq!(info.written_utc(), "2000-02-29 00:00:00 UTC");
    info.timestamp_ms = 0;
    assert_eq!(info.written_utc(), "1970-01-01 00:00:00 UTC");
}

#[test]
fn deep_wide_class_chains_are_refused_not_exploded() {
    // 600 classes in one chain, each declaring 4000 reference fields: flattened, 600 × 300 ×
    // 4000 = 720 M entries from a ~22 MB dump.
    let mut w = DumpWriter::new("1.0.2", 8);
    let fields: Vec<(u64, u8)> = (0..4000).map(|_| (1, OBJECT)).collect();
    for class in 0..600u64 {
        let super_id = if class == 0 { 0 } else { 0x1000 + class - 1 };
        w.class(0x1000 + class, super_id, &fields, &[]);
    }
    let data = w.finish(0x1C);
    let error = read(&data, &mut Quiet).expect_err("refused");
    assert!(matches!(error.kind, ErrorKind::Malformed(_)), "{error}");
}

#[test]
fn bad_headers_are_rejected() {
    assert_eq!(read(b"", &mut Quiet).unwrap_err().kind, ErrorKind::NotHprof);
    assert_eq!(
        read(b"JAVA PROFILE 1.0.9\0", &mut Quiet).unwrap_err().kind,
        ErrorKind::NotHprof
    );
    let mut bad_ids = b"JAVA PROFILE 1.0.2\0".to_vec();
    bad_ids.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
    let error = read(&bad_ids, &mut Quiet).unwrap_err();
    assert_eq!(error.kind, ErrorKind::IdSize(3));
    assert_eq!(error.offset, 19);
}

#[test]
fn empty_heap_still_makes_a_graph_with_its_root() {
    let data = DumpWriter::new("1.0.2", 8).finish(0x1C);
    let dump = read(&data, &mut Quiet).expect("read");
    assert_eq!(dump.graph.node_count(), 1);
}

/// java.lang.String objects: 0x3000, 0x3010 and 0x3020 hold "ab" in three Latin-1 arrays,
/// 0x3030 and 0x3040 share one UTF-16 array "πx" (G1 deduplication), 0x3050 holds "ab" as a JDK 8
/// char[] and 0x3060 is "lone"; all rooted.
fn strings_dump() -> Vec<u8> {
    const STRING: u64 = 0x200;
    let mut w = DumpWriter::new("1.0.2", 8);
    w.string(1, "java/lang/String")
        .string(2, "value")
        .string(3, "coder")
        .string(4, "hash");
    w.load_class(1, STRING, 1);
    // Fields as HotSpot writes java.lang.String's: value, hash, coder.
    w.class(
        STRING,
        0,
        &[(2, OBJECT), (4, 10), (3, crate::testing::BYTE)],
        &[],
    );
    w.root(sub::ROOT_STICKY_CLASS, STRING);
    let fields = |value: u64, coder: u8| {
        let mut raw = value.to_be_bytes().to_vec();
        raw.extend_from_slice(&[0, 0, 0, 0, coder]);
        raw
    };
    for (string, array, coder) in [
        (0x3000, 0x4000, 0),
        (0x3010, 0x4010, 0),
        (0x3020, 0x4020, 0),
        (0x3030, 0x4030, 1),
        (0x3040, 0x4030, 1),
        (0x3050, 0x4050, 0),
        (0x3060, 0x4060, 0),
    ] {
        w.instance_bytes(string, STRING, &fields(array, coder));
        w.root(sub::ROOT_UNKNOWN, string);
    }
    let byte = crate::testing::BYTE;
    w.primitive_array(0x4000, byte, 2, b"ab")
        .primitive_array(0x4010, byte, 2, b"ab")
        .primitive_array(0x4020, byte, 2, b"ab")
        .primitive_array(0x4030, byte, 4, &[0xC0, 0x03, b'x', 0])
        .primitive_array(0x4050, 5, 2, &[0, b'a', 0, b'b'])
        .primitive_array(0x4060, byte, 4, b"lone");
    w.finish(0x0C)
}

#[test]
fn duplicate_strings_group_equal_values_and_decode_them() {
    let data = strings_dump();
    let dump = read(&data, &mut Quiet).expect("read");
    let g = &dump.graph;
    let size = |id| g.self_size(node(g, id));
    let rows = crate::duplicate_strings(&data, g, |_| true, 10).expect("strings");
    let values: Vec<(&str, u64)> = rows.iter().map(|r| (r.value.as_str(), r.count)).collect();
    // The char[] "ab" is another array type: not grouped with the byte[] ones.
    assert_eq!(values, [("ab", 3), ("πx", 2)], "{rows:?}");
    assert_eq!(
        rows[0].wasted_bytes,
        size(0x3010) + size(0x3020) + size(0x4010) + size(0x4020)
    );
    // One array shared by two strings: only the second String's header is wasted.
    assert_eq!(rows[1].wasted_bytes, size(0x3040));
    // Strings left out do not count.
    let without = crate::duplicate_strings(&data, g, |n| g.id(n).0 != 0x3040, 10).unwrap();
    assert_eq!(without.len(), 1);
    assert_eq!((without[0].value.as_str(), without[0].count), ("ab", 3));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn duplicate_strings_on_damaged_dumps_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..6)) {
        let mut data = strings_dump();
        for (at, bit) in flips {
            let at = at.index(data.len());
            data[at] ^= 1 << bit;
        }
        if let Ok(dump) = read(&data, &mut Quiet) {
            let _ = crate::duplicate_strings(&data, &dump.graph, |_| true, 10);
        }
    }

    #[test]
    fn random_bytes_after_a_header_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600), ids8 in any::<bool>()) {
        let mut data = b"JAVA PROFILE 1.0.2\0".to_vec();
        data.extend_from_slice(&(if ids8 { 8u32 } else { 4 }).to_be_bytes());
        data.extend_from_slice(&0u64.to_be_bytes());
        data.extend_from_slice(&body);
        let _ = read(&data, &mut Quiet);
    }

    #[test]
    fn bit_flips_and_truncations_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..6), cut in any::<prop::sample::Index>(), ids8 in any::<bool>()) {
        let mut data = shape("1.0.2", if ids8 { 8 } else { 4 }, ids8);
        for (at, bit) in flips {
            let at = at.index(data.len());
            data[at] ^= 1 << bit;
        }
        let keep = cut.index(data.len() + 1);
        match read(&data[..keep], &mut Quiet) {
            Ok(dump) => prop_assert!(dump.graph.node_count() >= 1),
            Err(error) => prop_assert!(error.offset <= keep as u64),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = read(&data, &mut Quiet);
    }
}

#[test]
fn garbage_is_marked_and_does_not_take_live_objects_from_their_dominator() {
    // a (rooted) → b; g → b and h → g are garbage; wr (rooted) ~> f is weakly reachable only;
    // the Holder class has no root and no instances.
    let mut w = DumpWriter::new("1.0.2", 8);
    let names = [
        (1, "Node"),
        (2, "left"),
        (3, "right"),
        (5, "java/lang/ref/Reference"),
        (6, "referent"),
        (10, "Holder"),
    ];
    for (id, text) in names {
        w.string(id, text);
    }
    w.load_class(1, NODE, 1)
        .load_class(2, REFERENCE, 5)
        .load_class(3, HOLDER, 10);
    w.class(NODE, 0, &[(2, OBJECT), (3, OBJECT)], &[])
        .class(REFERENCE, 0, &[(6, OBJECT)], &[])
        .class(HOLDER, 0, &[], &[]);
    w.root(sub::ROOT_STICKY_CLASS, NODE)
        .root(sub::ROOT_STICKY_CLASS, REFERENCE)
        .root(sub::ROOT_UNKNOWN, A)
        .root(sub::ROOT_UNKNOWN, WR);
    const G: u64 = 0x2000;
    const H: u64 = 0x2010;
    w.instance(A, NODE, &[B, 0])
        .instance(B, NODE, &[0, 0])
        .instance(G, NODE, &[B, 0])
        .instance(H, NODE, &[G, 0])
        .instance(WR, REFERENCE, &[F])
        .instance(F, NODE, &[0, 0]);
    let dump = read(&w.finish(0x0C), &mut Quiet).expect("read");
    let g = &dump.graph;
    let n = |id| node(g, id);
    let garbage: Vec<u64> = g
        .nodes()
        .filter(|&x| dump.unreachable.contains(x))
        .map(|x| g.id(x).0)
        .collect();
    assert_eq!(garbage, vec![G, H]);
    assert_eq!(dump.unreachable.objects, 2);
    assert_eq!(
        dump.unreachable.shallow_bytes,
        g.self_size(n(G)) + g.self_size(n(H))
    );
    assert!(
        !dump.unreachable.contains(n(F)),
        "weakly reachable is not garbage"
    );
    assert!(
        !dump.unreachable.contains(n(HOLDER)),
        "classes are never garbage"
    );
    assert!(g.edges(n(G)).all(|e| !g.is_essential(e)));
    let dom = Dominators::compute(g);
    assert_eq!(dom.idom(n(B)), n(A));
    assert_eq!(dom.retained(n(A)), g.self_size(n(A)) + g.self_size(n(B)));
    assert_eq!(dom.retained(n(H)), g.self_size(n(H)));
}

#[test]
fn a_dump_without_gc_roots_keeps_every_object() {
    let mut w = DumpWriter::new("1.0.2", 8);
    w.string(1, "Node").string(2, "left").string(3, "right");
    w.load_class(1, NODE, 1);
    w.class(NODE, 0, &[(2, OBJECT), (3, OBJECT)], &[]);
    w.instance(A, NODE, &[B, 0]).instance(B, NODE, &[0, 0]);
    let dump = read(&w.finish(0x0C), &mut Quiet).expect("read");
    assert_eq!(dump.unreachable.objects, 0);
    assert!(dump.graph.nodes().all(|x| !dump.unreachable.contains(x)));
}

/// Records what a pass tells its observer about the top-level walk.
#[derive(Default)]
struct WalkLog {
    walked: Vec<usize>,
}

impl crate::Observer for WalkLog {
    fn records_walked(&mut self, end: usize) {
        self.walked.push(end);
    }
}

#[test]
fn the_record_walk_says_how_far_it_got_so_its_pages_can_be_released() {
    // 40 segments of 1 MiB arrays: a 40 MiB dump whose record headers the walk touches.
    let mut w = node_dump();
    for k in 0..40u64 {
        w.byte_array(0x10_0000 + k * 0x20_0000, 1 << 20).cut();
    }
    let data = w.finish(0x1C);
    let mut log = WalkLog::default();
    read(&data, &mut log).unwrap();
    let walked = log.walked;
    // In steps of at least 16 MiB (plus less than one record), rising, ending at the end.
    assert_eq!(walked.last(), Some(&data.len()), "{walked:?}");
    assert!(walked.len() >= 3, "{walked:?}");
    for pair in walked.windows(2) {
        assert!(pair[0] < pair[1], "{walked:?}");
        assert!(pair[1] - pair[0] <= (16 << 20) + (2 << 20), "{walked:?}");
    }
}
