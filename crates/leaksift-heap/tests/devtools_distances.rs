//! Retaining-path distances of V8 snapshots equal DevTools' own (`HeapSnapshot.ts`
//! `calculateDistances`, run in Node by `tests/programs/node/devtools-distances.mjs` through the
//! npm package `heap-snapshot-toolkit`) for every node of every committed fixture: DevTools ranks
//! retainers by these distances, so equal distances give the same retainer order.

use std::path::{Path, PathBuf};
use std::process::Command;

use leaksift_heap::paths::PathTree;
use leaksift_heap::{NodeIndex, input, v8};

/// DevTools' distance of the root when user roots exist, and the base of every distance reached
/// only from system roots.
const BASE_SYSTEM_DISTANCE: i64 = 100_000_000;
/// DevTools' distance of a node no BFS reached.
const NO_DISTANCE: i64 = -5;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// DevTools' distances by node id, or `None` when node or the toolkit is missing.
fn devtools_distances(snapshot: &Path) -> Option<Vec<(u64, i64)>> {
    let programs = repo().join("tests/programs/node");
    if !programs.join("node_modules/heap-snapshot-toolkit").exists() {
        return None;
    }
    let out = Command::new("node")
        .arg(programs.join("devtools-distances.mjs"))
        .arg(snapshot)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let (id, distance) = line.split_once(' ').unwrap();
                (id.parse().unwrap(), distance.parse().unwrap())
            })
            .collect(),
    )
}

/// Ours, in DevTools' numbering.
fn our_distances(snapshot: &Path) -> Vec<(u64, i64)> {
    let input = input::open(snapshot).unwrap();
    let graph = v8::read(input.bytes, None, &mut |_| {}).unwrap().graph;
    let tree = PathTree::new(&graph, &[]);
    let root = graph.root();
    let reached_from_user_roots =
        |n: NodeIndex| n != root && tree.distance(n).is_some() && !tree.through_system_roots(n);
    let system_base = if graph.nodes().any(reached_from_user_roots) {
        BASE_SYSTEM_DISTANCE
    } else {
        0
    };
    graph
        .nodes()
        .map(|node: NodeIndex| {
            let distance = match tree.distance(node) {
                None => NO_DISTANCE,
                Some(d) if tree.through_system_roots(node) || node == root => {
                    system_base + i64::from(d)
                }
                Some(d) => i64::from(d),
            };
            (graph.id(node).0, distance)
        })
        .collect()
}

#[test]
fn distances_of_every_fixture_node_equal_devtools() {
    let fixtures = repo().join("tests/fixtures/v8");
    for name in [
        "handmade.heapsnapshot",
        "shapes.heapsnapshot.gz",
        "shapes-node18.heapsnapshot.gz",
        "shapes-node22.heapsnapshot.gz",
        "emitter-final.heapsnapshot.gz",
        "chrome-detached.heapsnapshot.gz",
    ] {
        let file = fixtures.join(name);
        let Some(theirs) = devtools_distances(&file) else {
            // CI installs the toolkit (`.ci/run` runs `npm ci`), so there it must not be missing.
            assert!(
                std::env::var_os("CI").is_none(),
                "heap-snapshot-toolkit is not installed in tests/programs/node"
            );
            eprintln!("skipped: run `npm ci` in tests/programs/node to compare with DevTools");
            return;
        };
        let ours = our_distances(&file);
        assert_eq!(ours.len(), theirs.len(), "{name}: node counts");
        let differing: Vec<_> = ours.iter().zip(&theirs).filter(|(a, b)| a != b).collect();
        assert!(
            differing.is_empty(),
            "{name}: {} of {} distances differ from DevTools (ours, theirs): {:?}",
            differing.len(),
            ours.len(),
            &differing[..differing.len().min(8)]
        );
    }
}
