//! Dominator tree and retained sizes over the essential edges (iterative semi-NCA).
//!
//! Semidominators come from the "simple" Lengauer–Tarjan evaluation (path compression,
//! O(E log V)) with an explicit-stack DFS and an explicit-stack `compress`, so there is no
//! recursion at any depth; immediate dominators then follow in one pass in DFS order, as in
//! semi-NCA (Georgiadis and Tarjan): `idom(w)` is the first dominator of `w`'s DFS parent not
//! numbered above `sdom(w)`. All arrays are flat `u32` columns; after the DFS they are indexed
//! by DFS number (1-based, 0 = none), so a vertex's tree ancestors and its retainers' numbers
//! lie close in memory.
//!
//! Nodes the DFS from the root does not reach are handled the way DevTools handles them, so the
//! numbers match its Summary view: first every unreached node without any essential retainer
//! (e.g. reachable only through weak edges) becomes a child of the root and is searched from;
//! then every node still unreached (cycles retained only by each other) is attached to the root
//! on its own. Such nodes are reported in [`Dominators::unreachable_count`]. For the proofs
//! below, this is the dominator tree of the graph plus an edge from the root to each node the
//! second step searches from (the nodes attached one by one are discussed where they matter).
//! A node attached on its own has the root as DFS parent, hence as immediate dominator, and is
//! no one's DFS parent, so it dominates nothing. It is numbered after every searched vertex and
//! its tree path stops at the root, so evaluating it as a retainer of a searched vertex gives
//! its label, the semidominator of an attached vertex — attached itself, since a searched
//! retainer would have reached it — or any number above the searched ones: it lowers none of
//! theirs. So no semidominator is computed for it (its own number stands in), and the rest of
//! the tree is that of the graph with the extra edges, as for DevTools.
//!
//! HPROF graphs add one rule before the nodes are attached one by one: every `referent` target
//! (a non-essential `Weak` edge from a node that is not inert) the root does not reach is
//! searched from too, and gets an edge from the root: its semidominator is the root whether or
//! not an earlier search reached it. So each object held only through `java.lang.ref`
//! references is a top-level dominator retaining what only it holds, also when its own parts
//! point back at it (a cycle, which the DevTools rule attaches node by node) or another
//! referent's parts hold it too ([`held_only_by_references`]). The proofs below hold for the
//! graph with those root edges.
//!
//! Nodes can be made *inert* ([`Dominators::compute_packing_beside`]): their outgoing edges
//! take no part, exactly as if they were not essential (HPROF garbage, found on the core the
//! search from the root leaves idle). They are left out of the reverse CSR and their edges are
//! not followed by the later searches; the search from the root, which runs before they are
//! known, must not reach one (it is run again if it did).
//!
//! # Exact shortcuts
//! None of these changes any result (the tests compare them with the plain algorithm and with
//! the definition); they shrink the work and the reverse CSR.
//!
//! 1. **Single retainer.** A vertex `w` with exactly one essential retainer `p` that a DFS
//!    reached has `p` as DFS parent, so `sdom(w) = p` (`p` is not linked when `w` is processed
//!    and still carries its own number as semidominator) — no `eval`, and no reverse-CSR entry:
//!    such vertices are a bit in a bitset. (`idom(w) = p` follows, since every path to `w` ends
//!    with `p → w`: the dominator pass skips them too.)
//! 2. **Edges into root children** (HPROF). If the root has an edge to `c`, an edge `x → c`
//!    from any other `x` is dropped. Every path `root ⇝ x → c ⇝ v` has the alternative
//!    `root → c ⇝ v` through a subset of its nodes, so no node is dominated by one more or one
//!    fewer node, and `idom(c) = root` either way. In HPROF, bootstrap classes are sticky-class
//!    roots, so the `<class>` edge of every `String`, `Object[]`… instance goes.
//! 3. **Class sinks** (HPROF). Every instance has a `<class>` edge, so a class object with
//!    many instances has that many retainers. A set `C` of class objects (candidates: see
//!    `class_candidates`; no candidate retains another) is left out of the search (`G'` = the
//!    graph without `C` and its edges), then each `c ∈ C` gets `a(c)` = the nearest common
//!    ancestor, in `G'`'s tree, of its retainers (the root if it has none), and hangs under it
//!    as a leaf. Checked for every candidate: (i) all its retainers were reached by a DFS of
//!    `G'` (a retainer attached on its own is ignored: its semidominator is numbered after
//!    every searched vertex, so it cannot lower `sdom(c)`; a candidate retained only by such
//!    vertices fails), and (ii) every target `t` of its essential edges is reached from the
//!    root in `G'` and `idom_G'(t)` dominates `a(c)`. If any check fails, the failing candidates
//!    are put back and the search runs again (after two failures, with none left out).
//!    *Proof* that then `D_G(v) = D_G'(v)` for every `v ∉ C` (`D` = set of dominators):
//!    removing nodes only removes paths, so `D_G(v) ⊆ D_G'(v)`. Conversely let `d ∈ D_G'(v)`
//!    and take, for contradiction, a path `P` of `G` from the root to `v` avoiding `d`, as short
//!    as possible over all such `(v, d)`. `P` must enter `C` (else it lies in `G'`); let `c` be
//!    the last candidate on it and `t` the node after `c`, so `t ⇝ v` lies in `G'`. If `d ∉
//!    D_G'(t)`, a path of `G'` to `t` avoiding `d` followed by `t ⇝ v` avoids `d`: impossible.
//!    So `d ∈ D_G'(t)`, `d ≠ t`, hence `d` dominates `idom_G'(t)`, which by (ii) dominates
//!    `a(c)`, which dominates in `G'` every retainer of `c` — including the node `p` before `c`
//!    on `P` (not a candidate). Then the prefix of `P` up to `p` is a shorter path avoiding `d`
//!    to a node `p ∉ C` with `d ∈ D_G'(p)`: contradiction. With `D_G = D_G'` outside `C`,
//!    `D_G(c) = {c} ∪ ⋂ D_G(p)` over the retainers `p` of `c`, i.e. `idom(c) = a(c)`; and `c`
//!    dominates nothing, since by (ii) each of its targets has its `G'` dominator above `a(c)`.
//!    The same nodes are searched from in `G` and `G'` (a node whose only retainers were
//!    candidates would be unreached in `G'`, which (ii) excludes), so the construction above is
//!    the same on both sides.

mod child_offsets;

use std::sync::OnceLock;

use child_offsets::ChildOffsets;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::compact::CompactU64s;
use crate::graph::{EdgeKind, HeapFormat, HeapGraph, NodeIndex, NodeKind};

/// The immediate dominator of every node, the DFS order, and retained sizes.
#[derive(Debug)]
pub struct Dominators {
    /// Immediate dominator ordinal per node; the root dominates itself.
    idom: Vec<u32>,
    /// Node ordinals in a preorder of the dominator tree, built when first asked for.
    preorder: OnceLock<Vec<u32>>,
    /// Retained size per node: its self size plus that of every node it dominates.
    retained: CompactU64s,
    /// Children of each node in the dominator tree: a CSR over `dominated` whose offsets take
    /// 2.6 bits per node (see [`ChildOffsets`]) instead of a 4-byte column.
    first_dominated: ChildOffsets,
    dominated: Vec<u32>,
    root: NodeIndex,
    unreachable: u32,
}

impl Dominators {
    /// Computes the dominator tree of `graph` from its root over essential edges, and retained sizes.
    pub fn compute(graph: &HeapGraph) -> Dominators {
        let prune_classes = graph.format() == HeapFormat::Hprof;
        Dominators::compute_with(graph, prune_classes, Box::new(|_| Vec::new())).0
    }

    /// [`Dominators::compute`] with the graph's class and self-size columns packed meanwhile
    /// ([`HeapGraph::pack_node_columns`]): the search's own columns take their place, so the
    /// peak memory of an analysis is lower by what the two columns take, less what they pack to
    /// (4 bytes per node when both are in 2-byte form: 62 MiB on the 16.3 M-node HPROF bench
    /// dump), for the time it takes to pack and unpack them (55–70 ms there).
    pub fn compute_packing(graph: &mut HeapGraph) -> Dominators {
        Dominators::compute_packing_beside(graph, |_| Vec::new()).0
    }

    /// [`Dominators::compute_packing`] with the outgoing edges of the nodes `find_inert`
    /// returns taking no part, as if they were not essential: one bit per node ordinal (bit
    /// `i % 64` of word `i / 64`; missing words are clear; the root's bit is ignored). Returns
    /// the tree and those bits; the graph is not changed.
    ///
    /// `find_inert` runs on another core while the depth-first search from the root runs (that
    /// search leaves a core idle for most of its time), so the nodes the root reaches over
    /// essential edges should not be inert: the search is run again, with the inert nodes
    /// known, when one is. This is what HPROF's garbage needs (Eclipse MAT's rule: the objects
    /// no GC root reaches over any reference take no part), without a pass of its own before
    /// the search. On the 16.3 M-node HPROF bench dump the 146 ms pass is gone and this phase
    /// takes about 65 ms longer (the two searches share the memory bandwidth): medians of
    /// `heap -q` went from 1.99 s to 1.86 s.
    pub fn compute_packing_beside(
        graph: &mut HeapGraph,
        find_inert: impl FnOnce(&HeapGraph) -> Vec<u64> + Send,
    ) -> (Dominators, Vec<u64>) {
        graph.pack_node_columns();
        let prune_classes = graph.format() == HeapFormat::Hprof;
        let result = Dominators::compute_with(graph, prune_classes, Box::new(find_inert));
        graph.unpack_node_columns();
        result
    }

    /// [`Dominators::compute_packing_beside`] without packing, leaving class objects and edges
    /// into root children out of the Lengauer–Tarjan pass when `prune_classes` (the result is
    /// the same either way).
    fn compute_with(
        graph: &HeapGraph,
        prune_classes: bool,
        find_inert: FindInert<'_>,
    ) -> (Dominators, Vec<u64>) {
        let (
            LtResult {
                idom,
                retained,
                unreachable,
                spare: [spare_first, spare_dominated],
            },
            inert,
        ) = pruned_lengauer_tarjan(graph, prune_classes, find_inert);
        let (first_dominated, dominated) =
            dominated_csr(&idom, graph.root(), spare_first, spare_dominated);
        let dominators = Dominators {
            idom,
            preorder: OnceLock::new(),
            // Narrowed only now: the spare columns are gone, so the copy does not raise the peak.
            retained: retained.into_narrowest(),
            first_dominated,
            dominated,
            root: graph.root(),
            unreachable,
        };
        (dominators, inert.0)
    }

    /// The root of the tree (the graph's root).
    pub fn root(&self) -> NodeIndex {
        self.root
    }

    /// The immediate dominator of `node` (the root for the root itself).
    #[inline]
    pub fn idom(&self, node: NodeIndex) -> NodeIndex {
        NodeIndex(self.idom[node.get()])
    }

    /// The retained size of `node`.
    #[inline]
    pub fn retained(&self, node: NodeIndex) -> u64 {
        self.retained.get(node.get())
    }

    /// Every node once, each after its dominator: a preorder of the dominator tree (children in
    /// increasing ordinal order), built on first use.
    pub fn preorder(&self) -> &[u32] {
        self.preorder.get_or_init(|| {
            let mut order = Vec::with_capacity(self.idom.len());
            let mut stack = vec![self.root.0];
            while let Some(node) = stack.pop() {
                order.push(node);
                // Children pushed in reverse, so they come out in increasing ordinal order.
                stack.extend(self.dominated_ordinals(NodeIndex(node)).iter().rev());
            }
            order
        })
    }

    /// The nodes `node` immediately dominates.
    pub fn dominated(&self, node: NodeIndex) -> impl ExactSizeIterator<Item = NodeIndex> + '_ {
        self.dominated_ordinals(node).iter().map(|n| NodeIndex(*n))
    }

    /// The ordinals of the nodes `node` immediately dominates, as a slice.
    pub fn dominated_ordinals(&self, node: NodeIndex) -> &[u32] {
        &self.dominated[self.first_dominated.range(node.get())]
    }

    /// How many nodes were not reachable from the root over essential edges.
    pub fn unreachable_count(&self) -> u32 {
        self.unreachable
    }

    /// Whether `ancestor` dominates `node` (every node dominates itself).
    pub fn dominates(&self, ancestor: NodeIndex, node: NodeIndex) -> bool {
        let mut current = node;
        loop {
            if current == ancestor {
                return true;
            }
            let up = self.idom(current);
            if up == current {
                return false;
            }
            current = up;
        }
    }
}

/// Children lists of the dominator tree, each in increasing ordinal order. `first` and
/// `dominated` are spare buffers (their contents are ignored) reused to avoid fresh memory;
/// `first` is freed once the compact offsets are built from it. Counting and filling write at
/// random places: each core takes a share of the dominators (and so of `dominated`) and scans
/// every node for them.
fn dominated_csr(
    idom: &[u32],
    root: NodeIndex,
    mut first: Vec<u32>,
    mut dominated: Vec<u32>,
) -> (ChildOffsets, Vec<u32>) {
    let n = idom.len();
    let share = n.div_ceil(rayon::current_num_threads()).max(1);
    // The children of the dominators `low..low + counts.len()`, as (node, its dominator - low).
    let children_in = |low: usize, len: usize| {
        idom.iter()
            .enumerate()
            .filter(move |(node, _)| *node != root.get())
            .filter_map(move |(node, &d)| {
                let at = (d as usize).wrapping_sub(low);
                (at < len).then_some((node as u32, at))
            })
    };
    first.clear();
    first.resize(n, 0);
    // Count per dominator, turn counts into range ends, then fill back to front.
    first
        .par_chunks_mut(share)
        .enumerate()
        .for_each(|(chunk, counts)| {
            for (_, at) in children_in(chunk * share, counts.len()) {
                counts[at] += 1;
            }
        });
    for i in 1..n {
        first[i] += first[i - 1];
    }
    let offsets = ChildOffsets::from_ends(&first[..n]);
    dominated.clear();
    dominated.resize(n.saturating_sub(1), 0);
    // Each share of dominators with its part of `dominated` (which starts at `base`).
    let mut shares = Vec::new();
    let (mut ends, mut lists) = (&mut first[..], &mut dominated[..]);
    let mut base = 0;
    while !ends.is_empty() {
        let len = share.min(ends.len());
        let (share_ends, rest) = std::mem::take(&mut ends).split_at_mut(len);
        let end = share_ends.last().map_or(base, |e| *e as usize);
        let (share_lists, rest_lists) = std::mem::take(&mut lists).split_at_mut(end - base);
        shares.push((shares.len() * share, share_ends, share_lists, base));
        (ends, lists, base) = (rest, rest_lists, end);
    }
    shares.into_par_iter().for_each(|(low, ends, lists, base)| {
        for (node, at) in children_in(low, ends.len()).rev() {
            ends[at] -= 1;
            lists[ends[at] as usize - base] = node;
        }
    });
    (offsets, dominated)
}

/// Finds the nodes whose outgoing edges take no part (see
/// [`Dominators::compute_packing_beside`]).
type FindInert<'f> = Box<dyn FnOnce(&HeapGraph) -> Vec<u64> + Send + 'f>;

/// The inert nodes: `bits` (all clear while `find` has not run yet; it runs beside the first
/// search from the root).
struct Inert<'f> {
    find: Option<FindInert<'f>>,
    bits: Bits,
}

impl Inert<'_> {
    /// The bits `find` returned, one per node of `graph` (missing words clear), the root's and
    /// those past the last node clear.
    fn bits_from(mut words: Vec<u64>, graph: &HeapGraph) -> Bits {
        let n = graph.node_count();
        words.resize(n.div_ceil(64), 0);
        if !n.is_multiple_of(64) {
            words[n / 64] &= (1 << (n % 64)) - 1;
        }
        let root = graph.root().get();
        words[root / 64] &= !(1 << (root % 64));
        Bits(words)
    }
}

/// Why a Lengauer–Tarjan attempt must be run again.
#[derive(Debug, PartialEq, Eq)]
enum Retry {
    /// Leaving these candidates (ordinals, ascending) out was not exact.
    Candidates(Vec<u32>),
    /// The search from the root, run while the inert nodes were being found, reached one.
    InertReached,
}

/// Lengauer–Tarjan with the exact shortcuts of the module docs: with `prune_classes`, edges
/// into root children are left out, and class candidates are left out and placed afterwards;
/// candidates for which that is not exact are put back (after two failed attempts, all are).
/// Returns the result and the inert nodes.
fn pruned_lengauer_tarjan(
    graph: &HeapGraph,
    prune_classes: bool,
    find_inert: FindInert<'_>,
) -> (LtResult, Bits) {
    let n = graph.node_count();
    let mut candidates = if prune_classes {
        class_candidates(graph)
    } else {
        Vec::new()
    };
    let mut inert = Inert {
        find: Some(find_inert),
        bits: Bits::new(n),
    };
    let mut attempts = 0;
    loop {
        let cut = if prune_classes {
            Cut::new(graph, candidates)
        } else {
            Cut::none(n)
        };
        let result = lengauer_tarjan(graph, &cut, &mut inert);
        candidates = cut.candidates;
        match result {
            Ok(result) => return (result, inert.bits),
            Err(Retry::InertReached) => {}
            Err(Retry::Candidates(failed)) => {
                attempts += 1;
                candidates.retain(|c| failed.binary_search(c).is_err());
                if attempts >= 2 {
                    candidates.clear();
                }
            }
        }
    }
}

/// What the Lengauer–Tarjan pass leaves: the tree, retained sizes, and two spare buffers.
struct LtResult {
    idom: Vec<u32>,
    retained: CompactU64s,
    unreachable: u32,
    spare: [Vec<u32>; 2],
}

/// A set of node ordinals, one bit each.
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    #[inline]
    fn get(&self, index: usize) -> bool {
        self.0[index / 64] & (1 << (index % 64)) != 0
    }

    #[inline]
    fn set(&mut self, index: usize) {
        self.0[index / 64] |= 1 << (index % 64);
    }

    /// The members, ascending (a bit at a time: sparse sets are cheap).
    fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(word, &bits)| {
            let mut rest = bits;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    word * 64 + bit
                })
            })
        })
    }
}

/// Whether a search that set `visited` (by vertex number: ordinal + 1) reached a node of `nodes`
/// (by ordinal).
fn reached_any(visited: &Bits, nodes: &Bits) -> bool {
    nodes.ones().any(|o| visited.get(o + 1))
}

/// The essential edges a Lengauer–Tarjan attempt leaves out (see "Exact shortcuts" in the
/// module docs): edges into a child of the root from any other node, and every edge into or out
/// of a candidate sink.
struct Cut {
    /// Children of the root, and the candidates.
    target: Bits,
    candidate: Bits,
    /// The candidates' ordinals, ascending.
    candidates: Vec<u32>,
    /// Most nodes are expected to keep a single retainer (HPROF with class objects left out):
    /// retainers are then counted in two bits per node first.
    few_shared: bool,
}

impl Cut {
    /// Nothing left out.
    fn none(n: usize) -> Cut {
        Cut {
            target: Bits::new(n),
            candidate: Bits::new(n),
            candidates: Vec::new(),
            few_shared: false,
        }
    }

    /// Leaves out the edges into root children and `candidates` (which must not be root children).
    fn new(graph: &HeapGraph, candidates: Vec<u32>) -> Cut {
        let mut cut = Cut::none(graph.node_count());
        for child in root_children(graph) {
            cut.target.set(child as usize);
        }
        for &c in &candidates {
            cut.target.set(c as usize);
            cut.candidate.set(c as usize);
        }
        cut.candidates = candidates;
        cut.few_shared = true;
        cut
    }

    /// Whether the essential edge `from → to` (ordinals) takes part.
    #[inline]
    fn keeps(&self, root: u32, from: u32, to: u32) -> bool {
        from == root || !self.target.get(to as usize)
    }
}

/// Targets of the root's essential edges, ascending, without duplicates.
fn root_children(graph: &HeapGraph) -> Vec<u32> {
    let root = graph.root();
    let mut children: Vec<u32> = graph
        .edges(root)
        .filter(|e| graph.is_essential(*e))
        .map(|e| graph.edge_to(e).0)
        .filter(|to| *to != root.0)
        .collect();
    children.sort_unstable();
    children.dedup();
    children
}

/// HPROF class objects worth leaving out of the first attempt: every instance's `<class>` edge
/// points at its class, so a class with many instances has as many retainers. A candidate is a
/// class object that is not a child of the root, whose essential edges all go to root children or
/// are class links (superclass, loader, signers, protection domain: no statics, which the class
/// alone usually retains), and that no other class object references (so no candidate retains
/// another). Whether leaving them out is exact is checked afterwards ([`lengauer_tarjan`]).
fn class_candidates(graph: &HeapGraph) -> Vec<u32> {
    let n = graph.node_count();
    let mut root_child = Bits::new(n);
    for child in root_children(graph) {
        root_child.set(child as usize);
    }
    let is_class = |node: NodeIndex| graph.kind(node) == NodeKind::Class;
    let classes: Vec<NodeIndex> = graph
        .nodes()
        .filter(|&node| is_class(node) && node != graph.root())
        .collect();
    let mut referenced_by_class = Bits::new(n);
    let mut suitable = Vec::new();
    for &class in &classes {
        let mut only_links = true;
        for edge in graph.edges(class).filter(|e| graph.is_essential(*e)) {
            let to = graph.edge_to(edge);
            if root_child.get(to.get()) {
                continue;
            }
            if is_class(to) {
                referenced_by_class.set(to.get());
            }
            only_links &= graph.edge_kind(edge) == EdgeKind::ClassLink;
        }
        if only_links && !root_child.get(class.get()) {
            suitable.push(class.0);
        }
    }
    suitable.retain(|&c| !referenced_by_class.get(c as usize));
    suitable
}

/// The HPROF objects held only through `java.lang.ref` references: the `referent` targets
/// (non-essential `Weak` edges from nodes that are not inert) that the search from the root
/// did not reach (`visited`, by vertex number). Each gets an edge from the root, so each is a
/// top-level dominator that retains what only it holds (docs/json.md). Searching only from
/// referents without any essential retainer, as DevTools does for V8, missed a referent in a
/// cycle (a cached object its parts point back to): the cycle was attached to the root node by
/// node, and the referent retained only itself. `None` for V8 graphs, whose unreached nodes
/// follow DevTools.
fn held_only_by_references(graph: &HeapGraph, visited: &Bits, inert: &Bits) -> Option<Bits> {
    if graph.format() != crate::HeapFormat::Hprof {
        return None;
    }
    let first_edge = graph.first_edges();
    let targets = graph.edge_targets();
    let kinds = graph.edge_kind_bytes();
    let weak = EdgeKind::Weak.to_byte(false);
    let mut held = Bits::new(graph.node_count());
    // Referent edges are few: found by a byte search over the kinds, each source by a binary
    // search (a pass over every node's edges took tens of milliseconds on a 16 M-node dump).
    for edge in memchr::memchr_iter(weak, kinds) {
        let to = targets[edge] as usize;
        if visited.get(to + 1) || inert.get(to) {
            continue;
        }
        let source = first_edge.partition_point(|&first| first as usize <= edge) - 1;
        if !inert.get(source) {
            held.set(to);
        }
    }
    Some(held)
}

/// Computes idom per ordinal, the preorder of ordinals, and how many nodes the root does not
/// reach, over the essential edges `cut` keeps from nodes that are not inert; then places the
/// candidates, or returns the candidates for which leaving them out was not exact. Finds the
/// inert nodes if they are not known yet (beside the search from the root, which must then
/// run again if it reached one).
///
/// The semidominators come from Lengauer–Tarjan's path-compressed evaluation, the immediate
/// dominators from them as in semi-NCA (Georgiadis and Tarjan): no buckets, and nothing to do
/// in either pass for a vertex whose only retainer is its DFS parent.
///
/// Memory: besides the graph, at most four u32 columns (vertex per number, compressed
/// ancestor, label, DFS parent turned dominator) plus the reverse CSR of the kept essential
/// edges into nodes with two or more of them (built on another core during the DFS from the
/// root), the semidominators of the vertices that have several retainers (4 bytes each), three
/// bitsets and the path during the DFS. The columns that die are reused for the results.
fn lengauer_tarjan(graph: &HeapGraph, cut: &Cut, inert: &mut Inert) -> Result<LtResult, Retry> {
    let n = graph.node_count();
    let first_edge = graph.first_edges();
    let targets = graph.edge_targets();
    let kinds = graph.edge_kind_bytes();
    let essential = |edge: usize| kinds[edge] & EdgeKind::ESSENTIAL_BIT != 0;
    let root = graph.root().0;
    // Vertex numbers are ordinal + 1; 0 means "none". DFS numbers start at 1 (the root).
    let r = root + 1;
    let root_number = 1u32;
    // By DFS number: the vertex, and the DFS parent's number (0 for the root). The search
    // writes both in order, so its only random write is the visited bit.
    let mut vertex = vec![0u32; n + 1];
    let mut ancestor = vec![0u32; n + 1];
    // Visited vertices as a bitset (n / 8 bytes mostly stay in cache). The nodes edges are cut
    // into start as visited, so the search tests one bit per edge; the root's own edges into them
    // are followed once each, as `root_entered` tells.
    let mut visited = Bits::new(n + 1);
    for o in cut.target.ones() {
        visited.set(o + 1);
    }
    let mut root_entered = Bits::new(n + 1);
    let mut count = 0u32;
    // Every vertex but the candidates gets a number: once `count` is there, the scans for
    // vertices left unreached would find none (the usual case: HPROF graphs keep only what
    // the roots reach).
    let numberable = n - cut.candidates.len();
    let reached_from_root;
    // HPROF referents no strong path reaches: an edge from the root into each (see
    // `held_only_by_references`).
    let mut root_held: Option<Bits> = None;
    let retainers;
    let columns: [Option<Vec<u32>>; 2];
    {
        // The DFS path as a stack of (vertex, its number, next edge to look at).
        let mut path: Vec<(u32, u32, u64)> = Vec::new();
        // `inert`: nodes whose edges are not followed.
        let mut dfs = |start: u32,
                       start_parent: u32,
                       ancestor: &mut [u32],
                       visited: &mut Bits,
                       count: &mut u32,
                       inert: &Bits| {
            // The vertex to number and push next (0: none, go on with the top of the path),
            // and its parent's number.
            let (mut next, mut next_parent) = (start, start_parent);
            loop {
                if next != 0 {
                    *count += 1;
                    vertex[*count as usize] = next;
                    ancestor[*count as usize] = next_parent;
                    visited.set(next as usize);
                    let o = next as usize - 1;
                    let edges = if inert.get(o) { o + 1 } else { o };
                    path.push((next, *count, u64::from(first_edge[edges])));
                }
                let Some(&mut (v, v_number, ref mut cursor)) = path.last_mut() else {
                    break;
                };
                let end = u64::from(first_edge[v as usize]);
                next = 0;
                while *cursor < end {
                    let edge = *cursor as usize;
                    *cursor += 1;
                    if essential(edge) {
                        let w = targets[edge] + 1;
                        let fresh = if v == r && cut.target.get(w as usize - 1) {
                            !root_entered.get(w as usize) && {
                                root_entered.set(w as usize);
                                true
                            }
                        } else {
                            !visited.get(w as usize)
                        };
                        if fresh {
                            next = w;
                            next_parent = v_number;
                            break;
                        }
                    }
                }
                if next == 0 {
                    path.pop();
                }
            }
        };
        // The reverse CSR of kept essential edges (by ordinal, sources as vertex numbers) is
        // built on the other core while the DFS from the root runs, which then also writes
        // the pages of the columns the DFS is followed by (the copy of the DFS parents, and
        // the labels unless the CSR leaves a spare column), so they are not faulted in later.
        // The inert nodes are found there first when they are not known yet.
        let find = inert.find.take();
        let known = &inert.bits;
        let found;
        ((), (found, retainers, columns)) = rayon::join(
            || dfs(r, 0, &mut ancestor, &mut visited, &mut count, known),
            || {
                let found = find.map(|find| Inert::bits_from(find(graph), graph));
                let retainers = essential_retainers(graph, cut, found.as_ref().unwrap_or(known));
                let label = retainers.spare.is_none().then(|| written_column(n + 1));
                (found, retainers, [Some(written_column(n + 1)), label])
            },
        );
        if let Some(found) = found {
            inert.bits = found;
            if reached_any(&visited, &inert.bits) {
                return Err(Retry::InertReached);
            }
        }
        reached_from_root = count;
        if (count as usize) < numberable {
            root_held = held_only_by_references(graph, &visited, &inert.bits);
            for v in 1..=n as u32 {
                let o = v as usize - 1;
                if !visited.get(v as usize)
                    && !cut.candidate.get(o)
                    && ((retainers.first.range(o).is_empty() && !retainers.single.get(o))
                        || root_held.as_ref().is_some_and(|held| held.get(o)))
                {
                    dfs(
                        v,
                        root_number,
                        &mut ancestor,
                        &mut visited,
                        &mut count,
                        &inert.bits,
                    );
                }
            }
        }
    }
    let searched = count;
    if (count as usize) < numberable {
        for v in 1..=n as u32 {
            if !visited.get(v as usize) && !cut.candidate.get(v as usize - 1) {
                count += 1;
                vertex[count as usize] = v;
                ancestor[count as usize] = root_number;
            }
        }
    }
    drop(visited);
    // Numbered vertices: everything but the candidates.
    let numbered = count;
    let [dom_column, label_column] = columns;
    let Retainers {
        first: first_retainer,
        sources: mut retainers,
        single,
        spare,
    } = retainers;

    // From here on every array is indexed by DFS number, which keeps the vertices an
    // evaluation walks near each other in memory. The retainers become DFS numbers too (the
    // CSR stays indexed by ordinal: one lookup per vertex).
    let spare = renumber(
        &vertex,
        numbered as usize,
        &mut retainers,
        spare
            .or(label_column)
            .unwrap_or_else(|| written_column(n + 1)),
    );
    let held_by_root = |w: u32, vertex: &[u32]| {
        root_held
            .as_ref()
            .is_some_and(|held| held.get(vertex[w as usize] as usize - 1))
    };
    // Whether a searched vertex's semidominator is its DFS parent (a single retainer; the root
    // is one more for a vertex it holds).
    let parent_is_semi = |w: u32, vertex: &[u32]| {
        single.get(vertex[w as usize] as usize - 1) && !held_by_root(w, vertex)
    };
    // `ancestor` is compressed as vertices are linked, so the DFS parents are kept aside: the
    // last pass turns them into immediate dominators in place.
    let mut dom = dom_column.unwrap_or_else(|| written_column(n + 1));
    dom.copy_from_slice(&ancestor);
    // Per linked vertex, the smallest semidominator on its compressed path (values, not
    // vertices: no indirection through a semidominator column). Unlinked slots are never read,
    // so the column needs no clearing.
    let mut label = spare;
    // The searched vertices' semidominators that are not the DFS parent, in decreasing number
    // order.
    let mut semis: Vec<u32> = Vec::new();
    let mut stack: Vec<u32> = Vec::new();

    // Vertices are processed in decreasing number and linked right after, so "linked" is
    // "number >= bound", where `bound` is the lowest linked number. Returns the smallest
    // semidominator on the linked path from `v` up (`v` itself when it is not linked).
    let mut eval = |v: u32, bound: u32, ancestor: &mut [u32], label: &mut [u32]| {
        if v < bound {
            return v;
        }
        // compress(v), iteratively: walk up while the ancestor is itself linked.
        let mut x = v;
        while ancestor[x as usize] >= bound {
            stack.push(x);
            x = ancestor[x as usize];
        }
        while let Some(w) = stack.pop() {
            let a = ancestor[w as usize] as usize;
            if label[a] < label[w as usize] {
                label[w as usize] = label[a];
            }
            ancestor[w as usize] = ancestor[a];
        }
        label[v as usize]
    };

    // Semidominators (semi-NCA: no buckets; the immediate dominators follow in one pass).
    for w in (2..=numbered).rev() {
        let semi = if w > searched {
            // Attached on its own: the root dominates it whatever its semidominator, and any
            // number above the searched ones lowers none of theirs (module docs), so its own
            // number stands in.
            w
        } else if parent_is_semi(w, &vertex) {
            // The only retainer is the DFS parent: not linked yet, so it evaluates to itself.
            ancestor[w as usize]
        } else if held_by_root(w, &vertex) {
            // The root is a retainer: no semidominator is lower.
            semis.push(root_number);
            root_number
        } else {
            let preds = &retainers[first_retainer.range(vertex[w as usize] as usize - 1)];
            // Orphans have the root as their only predecessor.
            let mut semi = if preds.is_empty() { root_number } else { w };
            for &v in preds {
                semi = semi.min(eval(v, w + 1, &mut ancestor, &mut label));
            }
            semis.push(semi);
            semi
        };
        // Link w under its parent (`ancestor[w]` already is the parent).
        label[w as usize] = semi;
    }
    drop((retainers, first_retainer));

    // Immediate dominators in increasing number: idom(w) is the nearest common ancestor of its
    // DFS parent and its semidominator, i.e. the first dominator of the parent not numbered
    // above the semidominator (every smaller number is final by then). The root dominates
    // itself. Vertices attached on their own have the root as parent, hence as dominator, as
    // in DevTools.
    dom[root_number as usize] = root_number;
    let mut listed = semis.iter().rev();
    for w in 2..=searched {
        if parent_is_semi(w, &vertex) {
            continue;
        }
        let semi = *listed.next().unwrap_or(&root_number);
        let mut d = dom[w as usize];
        while d > semi {
            d = dom[d as usize];
        }
        dom[w as usize] = d;
    }
    drop((semis, single, root_held));
    let mut unreachable = n as u32 - reached_from_root;
    let (vertex, [sizes, spare]) = if cut.candidates.is_empty() {
        (vertex, [ancestor, label])
    } else {
        let shape = TreeShape {
            numbered,
            reached_from_root,
            searched,
        };
        let placed = place_candidates(
            graph,
            cut,
            &inert.bits,
            &dom,
            &vertex,
            shape,
            [ancestor, label],
        )
        .map_err(Retry::Candidates)?;
        unreachable -= placed.reached;
        for (k, (&c, &d)) in cut.candidates.iter().zip(&placed.dom).enumerate() {
            let w = numbered as usize + 1 + k;
            vertex[w] = c + 1;
            dom[w] = d;
        }
        (vertex, placed.spare)
    };
    // Retained sizes by ordinal in decreasing number (children have higher numbers than their
    // dominator, so a size is complete when it is added to its dominator's), and meanwhile on
    // another core the immediate dominators by ordinal.
    // The self sizes over the reused buffer (they may be packed: `HeapGraph::pack_node_columns`).
    let mut retained = graph.self_sizes().to_four_byte_entries(sizes);
    let mut idom = spare;
    idom.truncate(n);
    let dominator = |w: usize| vertex[dom[w] as usize] - 1;
    rayon::join(
        || {
            idom[graph.root().get()] = graph.root().0;
            for w in 2..=n {
                idom[vertex[w] as usize - 1] = dominator(w);
            }
        },
        || {
            for w in (2..=n).rev() {
                let size = retained.get(vertex[w] as usize - 1);
                retained.add(dominator(w) as usize, size);
            }
        },
    );
    Ok(LtResult {
        idom,
        retained,
        unreachable,
        spare: [dom, vertex],
    })
}

/// The shape of the dominator tree of the numbered vertices (all but the candidates).
#[derive(Clone, Copy)]
struct TreeShape {
    numbered: u32,
    /// Numbers `1..=reached_from_root` are the vertices the DFS from the root reached.
    reached_from_root: u32,
    /// Numbers up to here were reached by a DFS (from the root, or from a node without
    /// retainers, which DevTools hangs off the root); the rest were attached one by one.
    searched: u32,
}

/// The candidates' immediate dominators (as numbers, in candidate order), how many of them the
/// root reaches, and the two spare columns given to [`place_candidates`].
struct Placed {
    dom: Vec<u32>,
    reached: u32,
    spare: [Vec<u32>; 2],
}

/// Places the candidates left out of a Lengauer–Tarjan attempt, after checking that leaving
/// them out was exact; otherwise returns the candidates (ordinals, ascending) that failed.
///
/// `dom` is the immediate dominator per number (`dom[1]` = 1, the root) and `vertex` the vertex
/// (ordinal + 1) per number; `spare` are two columns of `n + 1` entries (contents ignored). A
/// candidate's immediate dominator is the nearest common ancestor of its retainers in the tree:
/// that of the two retainers first and last in a preorder of the tree (whose subtrees are
/// intervals of it). The check, for each candidate `c` with immediate dominator `a`: every
/// retainer of `c` is reached from the root, and every target `t` of `c`'s essential edges is
/// reached from the root without `c` and has an immediate dominator that dominates `a` (proof
/// in the module docs). A candidate without retainers hangs off the root, as DevTools does.
fn place_candidates(
    graph: &HeapGraph,
    cut: &Cut,
    inert: &Bits,
    dom: &[u32],
    vertex: &[u32],
    tree: TreeShape,
    spare: [Vec<u32>; 2],
) -> Result<Placed, Vec<u32>> {
    let n = graph.node_count();
    let numbered = tree.numbered as usize;
    let vertex = &vertex[..=numbered];
    let [mut next, mut position] = spare;
    tree_positions(dom, &mut next[..=numbered]);
    scatter_positions(vertex, &next, &mut position[..n]);
    // The root's children took their intervals from the top down in increasing number, and a
    // subtree's vertices were all reached by the DFS that reached its top (each vertex's
    // dominator is an ancestor in its DFS tree): the vertices the root reached hold the top
    // `reached_from_root - 1` positions (and the root 0), those any DFS reached the top
    // `searched - 1`.
    let top_share = |reached: u32, at: u32| at == 0 || at as usize > numbered - reached as usize;
    let from_root = |at: u32| top_share(tree.reached_from_root, at);
    let searched = |at: u32| top_share(tree.searched, at);
    let candidates = &cut.candidates;
    // A candidate's own `position` slot is free: it holds the candidate's index.
    for (k, &c) in candidates.iter().enumerate() {
        position[c as usize] = k as u32;
    }
    // Per candidate: the searched retainers first and last in preorder, as (position,
    // ordinal), found by scanning the nodes in order on every core.
    const CHUNK: usize = 1 << 16;
    let found = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let mut found = CandidateRetainers::new(candidates.len());
            for from in chunk * CHUNK..n.min(chunk * CHUNK + CHUNK) {
                if cut.candidate.get(from) || inert.get(from) {
                    continue;
                }
                for to in essential_targets(graph, from) {
                    if !cut.candidate.get(to as usize) {
                        continue;
                    }
                    let k = position[to as usize] as usize;
                    let at = position[from];
                    found.reached_by_root[k] |= from_root(at);
                    if !searched(at) {
                        // Attached on its own: its semidominator is numbered after every
                        // searched vertex, so it cannot lower the candidate's (module docs).
                        found.attached[k] = true;
                        continue;
                    }
                    found.first[k] = found.first[k].min((at, from as u32));
                    found.last[k] = found.last[k].max((at, from as u32));
                }
            }
            found
        })
        .reduce(
            || CandidateRetainers::new(candidates.len()),
            CandidateRetainers::merge,
        );
    // The DFS numbers of those retainers and of the candidates' targets.
    let targets = |c: u32| {
        graph
            .edges(NodeIndex(c))
            .filter(move |e| !inert.get(c as usize) && graph.is_essential(*e))
            .map(|e| graph.edge_to(e).0)
    };
    let has_retainer = |k: usize| found.first[k].0 != u32::MAX;
    let wanted = (0..candidates.len())
        .filter(|&k| has_retainer(k))
        .flat_map(|k| [found.first[k].1, found.last[k].1])
        .chain(candidates.iter().flat_map(|&c| targets(c)))
        .filter(|&o| !cut.candidate.get(o as usize))
        .map(|o| o + 1);
    let numbers = dfs_numbers(vertex, wanted, n + 1);
    let number = |o: u32| numbers[&(o + 1)];
    let mut nca = vec![1u32; candidates.len()];
    let mut failed = vec![false; candidates.len()];
    let mut reached = 0;
    for (k, &c) in candidates.iter().enumerate() {
        if has_retainer(k) {
            // The nearest common ancestor of the first and last retainers in preorder is
            // that of all of them (a subtree is an interval of the preorder).
            nca[k] = common_dominator(dom, number(found.first[k].1), number(found.last[k].1));
        } else {
            // No retainer at all: hangs off the root. Only attached ones: attached itself.
            failed[k] |= found.attached[k];
        }
        reached += u32::from(found.reached_by_root[k]);
        for t in targets(c) {
            let fine = !cut.candidate.get(t as usize)
                && from_root(position[t as usize])
                && dominates_number(dom, dom[number(t) as usize], nca[k]);
            if !fine {
                failed[k] = true;
            }
        }
    }
    if failed.contains(&true) {
        return Err(candidates
            .iter()
            .zip(&failed)
            .filter(|(_, f)| **f)
            .map(|(c, _)| *c)
            .collect());
    }
    Ok(Placed {
        dom: nca,
        reached,
        spare: [next, position],
    })
}

/// Preorder positions of the tree of immediate dominators `dom` (by DFS number, `dom[1]` = 1
/// the root, every other vertex's dominator numbered below it), written to `next` (numbers
/// `1..next.len()`, contents ignored) as position + 1. A subtree takes an interval of
/// positions starting with its top. Subtree sizes first (in decreasing number), then in
/// increasing number each vertex takes the top free part of its dominator's interval, whose
/// counter `next` goes down from the interval's end; once its own children are placed, a
/// vertex's counter has come down to its position + 1. No write is by ordinal.
fn tree_positions(dom: &[u32], next: &mut [u32]) {
    next.fill(1);
    for i in (2..next.len()).rev() {
        next[dom[i] as usize] += next[i];
    }
    for i in 2..next.len() {
        let d = dom[i] as usize;
        let size = next[i];
        next[d] -= size;
        next[i] = next[d] + size;
    }
}

/// `position[vertex[i] - 1] = next[i] - 1` for every number `i >= 1` (see [`tree_positions`]):
/// each core takes a share of the ordinals and scans every number for them, so the random
/// writes are shared out.
fn scatter_positions(vertex: &[u32], next: &[u32], position: &mut [u32]) {
    let share = position.len().div_ceil(rayon::current_num_threads()).max(1);
    position
        .par_chunks_mut(share)
        .enumerate()
        .for_each(|(chunk, out)| {
            let low = chunk * share;
            for (&v, &at) in vertex.iter().zip(next).skip(1) {
                let o = (v as usize - 1).wrapping_sub(low);
                if o < out.len() {
                    out[o] = at - 1;
                }
            }
        });
}

/// The nearest common ancestor of the vertices numbered `a` and `b` in the tree of immediate
/// dominators `dom` (by number: every vertex but the root has a lower-numbered dominator).
fn common_dominator(dom: &[u32], mut a: u32, mut b: u32) -> u32 {
    while a != b {
        if a > b {
            a = dom[a as usize];
        } else {
            b = dom[b as usize];
        }
    }
    a
}

/// Whether the vertex numbered `d` dominates the one numbered `w` (`dom` as in
/// [`common_dominator`]).
fn dominates_number(dom: &[u32], d: u32, mut w: u32) -> bool {
    while w > d {
        w = dom[w as usize];
    }
    w == d
}

/// What [`place_candidates`] gathers about the candidates' retainers, per candidate.
struct CandidateRetainers {
    /// The searched retainers first and last in the preorder of the tree, as (position,
    /// ordinal); `(u32::MAX, 0)` and `(0, 0)` when there are none.
    first: Vec<(u32, u32)>,
    last: Vec<(u32, u32)>,
    /// Whether the root reached a retainer.
    reached_by_root: Vec<bool>,
    /// Whether a retainer was attached to the root on its own.
    attached: Vec<bool>,
}

impl CandidateRetainers {
    fn new(candidates: usize) -> CandidateRetainers {
        CandidateRetainers {
            first: vec![(u32::MAX, 0); candidates],
            last: vec![(0, 0); candidates],
            reached_by_root: vec![false; candidates],
            attached: vec![false; candidates],
        }
    }

    /// Both sets of retainers together.
    fn merge(mut self, other: CandidateRetainers) -> CandidateRetainers {
        for k in 0..self.first.len() {
            self.first[k] = self.first[k].min(other.first[k]);
            self.last[k] = self.last[k].max(other.last[k]);
            self.reached_by_root[k] |= other.reached_by_root[k];
            self.attached[k] |= other.attached[k];
        }
        self
    }
}

/// A column of `len` entries whose pages are written (all ones: zeros would be left to the
/// kernel to fault in on first use), for callers that ignore its contents.
fn written_column(len: usize) -> Vec<u32> {
    vec![u32::MAX; len]
}

/// The DFS numbers of the `wanted` vertices (ordinal + 1, each below `len`), found with one
/// scan of `vertex` (vertex per number): no vertex → number column, whose filling is a random
/// scatter over every vertex.
fn dfs_numbers(
    vertex: &[u32],
    wanted: impl Iterator<Item = u32>,
    len: usize,
) -> FxHashMap<u32, u32> {
    let mut wanted_bits = Bits::new(len);
    for v in wanted {
        wanted_bits.set(v as usize);
    }
    let mut numbers = FxHashMap::default();
    for (w, &v) in vertex.iter().enumerate().skip(1) {
        if wanted_bits.get(v as usize) {
            numbers.insert(v, w as u32);
        }
    }
    numbers
}

/// Replaces the vertices (ordinal + 1) in `sources` by their DFS numbers (`vertex` maps
/// numbers `1..=numbered` to vertices); returns `spare`, a column of `vertex.len()` entries
/// (contents ignored), with unspecified contents. When there are few to replace (HPROF), one
/// scan of `vertex` finds their numbers; otherwise the full vertex → number map is built (a
/// random scatter over every vertex) and then handed back.
fn renumber(vertex: &[u32], numbered: usize, sources: &mut [u32], spare: Vec<u32>) -> Vec<u32> {
    let len = vertex.len();
    let numbered = &vertex[..=numbered];
    if sources.len() <= len / 16 {
        let numbers = dfs_numbers(numbered, sources.iter().copied(), len);
        for v in sources.iter_mut() {
            *v = numbers[v];
        }
        return spare;
    }
    let mut number = spare;
    number.fill(0);
    for (w, &v) in numbered.iter().enumerate().skip(1) {
        number[v as usize] = w as u32;
    }
    sources
        .par_iter_mut()
        .for_each(|source| *source = number[*source as usize]);
    number
}

/// Targets of `node`'s essential edges.
#[inline]
fn essential_targets(graph: &HeapGraph, node: usize) -> impl Iterator<Item = u32> + '_ {
    let first_edge = graph.first_edges();
    let edges = first_edge[node] as usize..first_edge[node + 1] as usize;
    graph.edge_targets()[edges.clone()]
        .iter()
        .zip(&graph.edge_kind_bytes()[edges])
        .filter(|(_, kind)| **kind & EdgeKind::ESSENTIAL_BIT != 0)
        .map(|(to, _)| *to)
}

/// Offsets of a reverse CSR: 32-bit while the edge count allows, and only for the nodes that
/// have retainers listed when they are few (HPROF, once the single-retainer nodes are left out),
/// to save memory.
enum RetainerOffsets {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
    /// `nodes` (ascending ordinals) have the ranges `starts[i]..starts[i + 1]`; others none.
    Sparse {
        nodes: Vec<u32>,
        starts: Vec<u32>,
    },
}

impl RetainerOffsets {
    #[inline]
    fn range(&self, ordinal: usize) -> std::ops::Range<usize> {
        match self {
            RetainerOffsets::Narrow(v) => v[ordinal] as usize..v[ordinal + 1] as usize,
            RetainerOffsets::Wide(v) => v[ordinal] as usize..v[ordinal + 1] as usize,
            RetainerOffsets::Sparse { nodes, starts } => {
                match nodes.binary_search(&(ordinal as u32)) {
                    Ok(i) => starts[i] as usize..starts[i + 1] as usize,
                    Err(_) => 0..0,
                }
            }
        }
    }

    /// The sparse form of narrow offsets when at most one node in 16 has retainers listed,
    /// then with the dense column given back for reuse.
    fn sparse_if_few(first: Vec<u32>) -> (RetainerOffsets, Option<Vec<u32>>) {
        let n = first.len() - 1;
        let listed = first.windows(2).filter(|w| w[0] != w[1]).count();
        if listed > n / 16 {
            return (RetainerOffsets::Narrow(first), None);
        }
        let mut nodes = Vec::with_capacity(listed);
        let mut starts = Vec::with_capacity(listed + 1);
        for (node, w) in first.windows(2).enumerate() {
            if w[0] != w[1] {
                nodes.push(node as u32);
                starts.push(w[0]);
            }
        }
        starts.push(first[n]);
        (RetainerOffsets::Sparse { nodes, starts }, Some(first))
    }
}

/// An integer type usable as a CSR offset.
trait Offset: Copy + Default {
    fn get(self) -> usize;
    fn set(value: usize) -> Self;
}

impl Offset for u32 {
    fn get(self) -> usize {
        self as usize
    }
    fn set(value: usize) -> Self {
        value as u32
    }
}

impl Offset for u64 {
    fn get(self) -> usize {
        self as usize
    }
    fn set(value: usize) -> Self {
        value as u64
    }
}

/// The kept essential edges reversed: nodes with exactly one kept retainer are only marked in
/// `single` (that retainer is their DFS parent), the others list theirs in a CSR.
struct Retainers {
    /// Per ordinal, the range of its retainers in `sources` (empty for `single` nodes).
    first: RetainerOffsets,
    /// Retainers' vertex numbers (ordinal + 1) until the DFS numbers replace them.
    sources: Vec<u32>,
    single: Bits,
    /// A column of `n + 1` entries no longer needed (memory already faulted in, for reuse).
    spare: Option<Vec<u32>>,
}

/// Reverse CSR of the essential edges `cut` keeps.
fn essential_retainers(graph: &HeapGraph, cut: &Cut, inert: &Bits) -> Retainers {
    if let Some(retainers) = cut
        .few_shared
        .then(|| few_shared_retainers(graph, cut, inert))
        .flatten()
    {
        return retainers;
    }
    if graph.edge_count() < u32::MAX as u64 {
        let (first, sources, single) = fill_retainers::<u32>(graph, cut, inert);
        let (first, spare) = RetainerOffsets::sparse_if_few(first);
        Retainers {
            first,
            sources,
            single,
            spare,
        }
    } else {
        let (first, sources, single) = fill_retainers::<u64>(graph, cut, inert);
        Retainers {
            first: RetainerOffsets::Wide(first),
            sources,
            single,
            spare: None,
        }
    }
}

/// The reverse CSR when at most one node in 16 has two or more kept retainers (else `None`):
/// the kept edges are first counted in two bits per node (4 MB for 16 M nodes, mostly in cache,
/// instead of a 4-byte counter per node), then a second pass collects the edges into the shared
/// nodes (few) and lists their retainers, indexed by the nodes' position in the sorted list of
/// shared nodes. Both passes take the nodes in chunks on every core: this runs beside the
/// depth-first search, and the core the search frees takes over the chunks left (the passes
/// were on the search's critical path: 0.36–0.48 s against 0.22–0.35 s for the search on the
/// HPROF bench dump, with a third pass over every edge).
fn few_shared_retainers(graph: &HeapGraph, cut: &Cut, inert: &Bits) -> Option<Retainers> {
    use std::sync::atomic::{AtomicU64, Ordering};
    const CHUNK: usize = 1 << 16;
    let n = graph.node_count();
    let root = graph.root().0;
    let chunks = n.div_ceil(CHUNK);
    // The kept essential edges of the nodes of one chunk.
    let each_kept = |chunk: usize, visit: &mut dyn FnMut(u32, u32)| {
        for from in chunk * CHUNK..n.min(chunk * CHUNK + CHUNK) {
            if cut.candidate.get(from) || inert.get(from) {
                continue;
            }
            for to in essential_targets(graph, from) {
                if cut.keeps(root, from as u32, to) {
                    visit(from as u32, to);
                }
            }
        }
    };
    // `once`: at least one kept retainer; `more`: at least two. Whoever sets a `once` bit first
    // sees it clear; everyone after sets `more`.
    let words = n.div_ceil(64);
    let once: Vec<AtomicU64> = (0..words).map(|_| AtomicU64::new(0)).collect();
    let more: Vec<AtomicU64> = (0..words).map(|_| AtomicU64::new(0)).collect();
    (0..chunks).into_par_iter().for_each(|chunk| {
        each_kept(chunk, &mut |_, to| {
            let (word, bit) = (to as usize / 64, 1u64 << (to % 64));
            if once[word].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
                more[word].fetch_or(bit, Ordering::Relaxed);
            }
        });
    });
    let once = Bits(once.into_iter().map(AtomicU64::into_inner).collect());
    let more = Bits(more.into_iter().map(AtomicU64::into_inner).collect());
    let shared: Vec<u32> = more.ones().map(|o| o as u32).collect();
    if shared.len() > n / 16 {
        return None;
    }
    // The edges into shared nodes as (target's rank, source), in source order.
    let rank = |to: u32| shared.binary_search(&to).unwrap_or_default() as u32;
    let into_shared: Vec<(u32, u32)> = (0..chunks)
        .into_par_iter()
        .flat_map_iter(|chunk| {
            let mut found = Vec::new();
            each_kept(chunk, &mut |from, to| {
                if more.get(to as usize) {
                    found.push((rank(to), from));
                }
            });
            found
        })
        .collect();
    // Counts, then running ends, then (filling back to front) starts, as in `fill_retainers`.
    let mut starts = vec![0u32; shared.len() + 1];
    for &(rank, _) in &into_shared {
        starts[rank as usize] += 1;
    }
    let mut end = 0;
    for slot in &mut starts {
        end += *slot;
        *slot = end;
    }
    let mut sources = vec![0u32; end as usize];
    for &(rank, from) in &into_shared {
        let slot = &mut starts[rank as usize];
        *slot -= 1;
        sources[*slot as usize] = from + 1;
    }
    // Nodes with exactly one kept retainer.
    let mut single = once;
    for (word, &shared_bits) in single.0.iter_mut().zip(&more.0) {
        *word &= !shared_bits;
    }
    Some(Retainers {
        first: RetainerOffsets::Sparse {
            nodes: shared,
            starts,
        },
        sources,
        single,
        spare: None,
    })
}

/// Fills the reverse CSR back to front, so no cursor array is needed: `first[i]` counts, then
/// becomes the end of i's range, then (after filling) its start.
fn fill_retainers<T: Offset>(
    graph: &HeapGraph,
    cut: &Cut,
    inert: &Bits,
) -> (Vec<T>, Vec<u32>, Bits) {
    let n = graph.node_count();
    let targets = graph.edge_targets();
    let kinds = graph.edge_kind_bytes();
    let essential = |edge: usize| kinds[edge] & EdgeKind::ESSENTIAL_BIT != 0;
    let root = graph.root().0;
    let mut first = vec![T::default(); n + 1];
    let mut add = |to: u32, delta: isize| {
        let slot = &mut first[to as usize];
        *slot = T::set(slot.get().wrapping_add_signed(delta));
    };
    // Every essential edge into a node not cut off, then the root's edges into cut nodes (root
    // children), less the candidates' and the inert nodes' own edges (they take no part).
    for (edge, &to) in targets.iter().enumerate() {
        if essential(edge) && !cut.target.get(to as usize) {
            add(to, 1);
        }
    }
    for to in essential_targets(graph, root as usize) {
        if cut.target.get(to as usize) {
            add(to, 1);
        }
    }
    let left_out = cut.candidates.iter().copied().chain(
        inert
            .ones()
            .filter(|&o| !cut.candidate.get(o))
            .map(|o| o as u32),
    );
    for c in left_out {
        for to in essential_targets(graph, c as usize) {
            if cut.keeps(root, c, to) {
                add(to, -1);
            }
        }
    }
    let mut single = Bits::new(n);
    for (node, slot) in first.iter_mut().enumerate().take(n) {
        if slot.get() == 1 {
            single.set(node);
            *slot = T::set(0);
        }
    }
    for i in 1..=n {
        first[i] = T::set(first[i].get() + first[i - 1].get());
    }
    let count = first[n].get();
    let mut sources = vec![0u32; count];
    for from in 0..n {
        if cut.candidate.get(from) || inert.get(from) {
            continue;
        }
        for to in essential_targets(graph, from) {
            if cut.keeps(root, from as u32, to) && !single.get(to as usize) {
                let slot = first[to as usize].get() - 1;
                first[to as usize] = T::set(slot);
                sources[slot] = from as u32 + 1;
            }
        }
    }
    (first, sources, single)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::CompactU32s;
    use crate::graph::*;
    use proptest::prelude::*;

    /// A graph with `n` nodes of self size `10 * (i + 1)` and the given essential edges; root 0.
    fn graph(n: usize, edges: &[(u32, u32)], weak: &[(u32, u32)]) -> HeapGraph {
        let mut b = GraphBuilder::new(HeapFormat::V8, StringTable::new(), n, edges.len());
        let name = b.strings_mut().intern("N").unwrap();
        let class = b.intern_class(ClassInfo::named(name)).unwrap();
        for i in 0..n {
            b.add_node(NodeData {
                id: ObjectId(i as u64 * 2 + 1),
                class,
                name,
                self_size: 10 * (i as u64 + 1),
                kind: NodeKind::Object,
                flags: NodeFlags::default(),
            })
            .unwrap();
        }
        let all = edges
            .iter()
            .map(|e| (*e, true))
            .chain(weak.iter().map(|e| (*e, false)));
        for ((from, to), essential) in all {
            b.add_edge(
                NodeIndex(from),
                EdgeData {
                    to: NodeIndex(to),
                    kind: if essential {
                        EdgeKind::Property
                    } else {
                        EdgeKind::Weak
                    },
                    name: EdgeName::Named(name),
                    essential,
                },
            );
        }
        b.finish().unwrap()
    }

    /// An HPROF-shaped graph: root 0, node `i` a class object when `classes` has bit `i`;
    /// edges `(from, to, essential)` get the kind an HPROF reader would give them (an instance's
    /// edge to a class is its `<class>` edge, a class's edge a class link or, when `to` is not
    /// a class and `from` is 3 mod 4, a static field).
    fn hprof_graph(n: usize, classes: u32, edges: &[(u32, u32, bool)]) -> HeapGraph {
        hprof_graph_with_referents(n, classes, edges, &[])
    }

    /// [`hprof_graph`] plus `referents`: `Reference.referent` edges `(from, to)` (non-essential
    /// `Weak`).
    fn hprof_graph_with_referents(
        n: usize,
        classes: u32,
        edges: &[(u32, u32, bool)],
        referents: &[(u32, u32)],
    ) -> HeapGraph {
        let mut b = GraphBuilder::new(HeapFormat::Hprof, StringTable::new(), n, edges.len());
        let name = b.strings_mut().intern("N").unwrap();
        let class = b.intern_class(ClassInfo::named(name)).unwrap();
        let is_class = |i: u32| i != 0 && classes & (1 << i) != 0;
        for i in 0..n as u32 {
            b.add_node(NodeData {
                id: ObjectId(u64::from(i) * 8),
                class,
                name,
                self_size: 10 * (u64::from(i) + 1),
                kind: match i {
                    0 => NodeKind::Root,
                    i if is_class(i) => NodeKind::Class,
                    _ => NodeKind::Instance,
                },
                flags: NodeFlags::default(),
            })
            .unwrap();
        }
        for &(from, to, essential) in edges {
            let kind = match (from, is_class(from), is_class(to)) {
                (0, ..) => EdgeKind::GcRoot(GcRootKind::StickyClass),
                (_, true, false) if from % 4 == 3 => EdgeKind::StaticField,
                (_, true, _) => EdgeKind::ClassLink,
                (_, false, true) => EdgeKind::ClassOf,
                _ => EdgeKind::Field,
            };
            b.add_edge(
                NodeIndex(from),
                EdgeData {
                    to: NodeIndex(to),
                    kind,
                    name: EdgeName::Named(name),
                    essential,
                },
            );
        }
        for &(from, to) in referents {
            b.add_edge(
                NodeIndex(from),
                EdgeData {
                    to: NodeIndex(to),
                    kind: EdgeKind::Weak,
                    name: EdgeName::Named(name),
                    essential: false,
                },
            );
        }
        b.finish().unwrap()
    }

    /// Asserts that the shortcuts change nothing: idoms, retained sizes, unreachable count,
    /// and a preorder in which every node comes after its dominator.
    fn assert_shortcuts_exact(g: &HeapGraph) {
        let plain = computed(g, false);
        let pruned = computed(g, true);
        let n = g.node_count();
        assert_eq!(idoms(&pruned, n), idoms(&plain, n));
        for node in g.nodes() {
            assert_eq!(pruned.retained(node), plain.retained(node));
        }
        assert_eq!(pruned.unreachable_count(), plain.unreachable_count());
        let mut seen = vec![false; n];
        for &v in pruned.preorder() {
            assert!(!seen[v as usize], "node {v} twice in the preorder");
            let d = pruned.idom(NodeIndex(v)).get();
            assert!(
                d == v as usize || seen[d],
                "node {v} before its dominator {d}"
            );
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn class_candidates_are_placed_by_their_instances() {
        // 0 -> 1 (loader, root child), 0 -> 2 -> 4, 0 -> 3 -> 5; instances 4 and 5 of class 6
        // (a candidate: only a loader link to 1); 7 is an instance only 4 holds, of class 6 too.
        let edges = [
            (0, 1, true),
            (0, 2, true),
            (0, 3, true),
            (2, 4, true),
            (3, 5, true),
            (4, 6, true),
            (5, 6, true),
            (4, 7, true),
            (7, 6, true),
            (6, 1, true),
        ];
        let g = hprof_graph(8, 1 << 6, &edges);
        assert_eq!(class_candidates(&g), vec![6]);
        assert!(attempt(&g, &Cut::new(&g, vec![6])).is_ok());
        let d = Dominators::compute(&g);
        assert_eq!(idoms(&d, 8), vec![0, 0, 0, 0, 2, 3, 0, 4]);
        assert_shortcuts_exact(&g);
    }

    #[test]
    fn a_candidate_that_alone_reaches_its_loader_is_put_back() {
        // Class 5's loader 6 is held by 3 only, but 5 (held by instance 4 from the root) also
        // reaches it: leaving 5 out would make 3 dominate 6, so the check refuses it.
        let edges = [
            (0, 2, true),
            (0, 4, true),
            (2, 3, true),
            (3, 6, true),
            (4, 5, true),
            (5, 6, true),
            (2, 5, true),
        ];
        let g = hprof_graph(7, 1 << 5, &edges);
        assert_eq!(class_candidates(&g), vec![5]);
        assert_eq!(
            attempt(&g, &Cut::new(&g, vec![5])).err(),
            Some(Retry::Candidates(vec![5]))
        );
        let d = Dominators::compute(&g);
        assert_eq!(idoms(&d, 7), vec![0, 0, 0, 2, 0, 0, 0]);
        assert_shortcuts_exact(&g);
    }

    /// The tree with or without the class shortcuts, no node inert.
    fn computed(g: &HeapGraph, prune_classes: bool) -> Dominators {
        Dominators::compute_with(g, prune_classes, Box::new(|_| Vec::new())).0
    }

    /// One Lengauer–Tarjan attempt with no node inert.
    fn attempt(g: &HeapGraph, cut: &Cut) -> Result<LtResult, Retry> {
        let mut inert = Inert {
            find: None,
            bits: Bits::new(g.node_count()),
        };
        lengauer_tarjan(g, cut, &mut inert)
    }

    fn idoms(d: &Dominators, n: usize) -> Vec<u32> {
        (0..n as u32).map(|i| d.idom(NodeIndex(i)).0).collect()
    }

    /// HPROF referents no strong path reaches are top-level dominators retaining what only they
    /// hold. A referent whose parts point back at it (a cycle: every node of it has an
    /// essential retainer) was attached to the root node by node, retaining only itself; one
    /// also held by another referent's parts hung under those parts.
    #[test]
    fn hprof_referents_hang_under_the_root_even_in_a_cycle() {
        // 0 root -> 1 Reference; 1 =weak=> 2 A; A -> 3 payload, A -> 4 B, B -> A (cycle);
        // 1 =weak=> 5 N; N -> 6 S; 1 =weak=> 6 S (S is a referent too).
        let n = 7;
        let strong = [
            (0, 1, true),
            (2, 3, true),
            (2, 4, true),
            (4, 2, true),
            (5, 6, true),
        ];
        let g = hprof_graph_with_referents(n, 0, &strong, &[(1, 2), (1, 5), (1, 6)]);
        for prune in [false, true] {
            let d = computed(&g, prune);
            assert_eq!(idoms(&d, n), vec![0, 0, 0, 2, 2, 0, 0], "prune {prune}");
            assert_eq!(d.retained(NodeIndex(2)), 30 + 40 + 50);
            assert_eq!(d.retained(NodeIndex(5)), 60);
        }
    }

    #[test]
    fn diamond_and_chain() {
        // 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3, 3 -> 4
        let g = graph(5, &[(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)], &[]);
        let d = Dominators::compute(&g);
        assert_eq!(idoms(&d, 5), vec![0, 0, 0, 0, 3]);
        assert_eq!(d.retained(NodeIndex(3)), 40 + 50);
        assert_eq!(d.retained(NodeIndex(1)), 20);
        assert_eq!(d.retained(NodeIndex(0)), 150);
        assert_eq!(d.unreachable_count(), 0);
    }

    #[test]
    fn classic_lengauer_tarjan_example() {
        // The flowgraph from Lengauer & Tarjan (1979), letters R=0, A=1, B=2, C=3, D=4, E=5,
        // F=6, G=7, H=8, I=9, J=10, K=11, L=12.
        let edges = [
            (0, 1),
            (0, 2),
            (0, 3),
            (1, 4),
            (2, 1),
            (2, 4),
            (2, 5),
            (3, 6),
            (3, 7),
            (4, 12),
            (5, 8),
            (6, 9),
            (7, 9),
            (7, 10),
            (8, 5),
            (8, 11),
            (9, 11),
            (10, 9),
            (11, 9),
            (11, 0),
            (12, 8),
        ];
        let g = graph(13, &edges, &[]);
        let d = Dominators::compute(&g);
        // Expected idoms from the paper: A,B,C,D,E,H,I,K -> R; F,G -> C; J -> G; L -> D.
        assert_eq!(idoms(&d, 13), vec![0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 7, 0, 4]);
    }

    #[test]
    fn weak_only_and_cliques_hang_off_the_root() {
        // 3 is reachable only by a weak edge and owns 4; 5 <-> 6 is an unreachable clique.
        let g = graph(7, &[(0, 1), (1, 2), (3, 4), (5, 6), (6, 5)], &[(2, 3)]);
        let d = Dominators::compute(&g);
        assert_eq!(d.idom(NodeIndex(3)), NodeIndex(0));
        assert_eq!(d.idom(NodeIndex(4)), NodeIndex(3));
        assert_eq!(d.idom(NodeIndex(5)), NodeIndex(0));
        assert_eq!(d.unreachable_count(), 4);
        let total: u64 = g.self_sizes().iter().sum();
        assert_eq!(d.retained(NodeIndex(0)), total);
        assert_eq!(d.preorder().len(), 7);
    }

    #[test]
    fn root_need_not_be_the_first_node() {
        // Root is node 4: 4 -> 0 -> 1, 4 -> 2 -> 1, 0 -> 3; 5 <-> 6 is an unreachable cycle.
        let g = graph(
            7,
            &[(4, 0), (0, 1), (4, 2), (2, 1), (0, 3), (5, 6), (6, 5)],
            &[],
        );
        let g = rebuild_with_root(g, NodeIndex(4));
        let d = Dominators::compute(&g);
        assert_eq!(idoms(&d, 7), vec![4, 4, 4, 0, 4, 4, 4]);
        assert_eq!(d.retained(NodeIndex(4)), g.self_sizes().iter().sum::<u64>());
        assert_eq!(d.retained(NodeIndex(0)), 10 + 40);
    }

    /// The same graph with another root.
    fn rebuild_with_root(g: HeapGraph, root: NodeIndex) -> HeapGraph {
        let mut b = GraphBuilder::new(HeapFormat::Hprof, StringTable::new(), g.node_count(), 0);
        let name = b.strings_mut().intern("N").unwrap();
        let class = b.intern_class(ClassInfo::named(name)).unwrap();
        for node in g.nodes() {
            b.add_node(NodeData {
                id: g.id(node),
                class,
                name,
                self_size: g.self_size(node),
                kind: NodeKind::Instance,
                flags: NodeFlags::default(),
            })
            .unwrap();
            for edge in g.edges(node) {
                b.add_edge(
                    node,
                    EdgeData {
                        to: g.edge_to(edge),
                        kind: g.edge_kind(edge),
                        name: EdgeName::Named(name),
                        essential: g.is_essential(edge),
                    },
                );
            }
        }
        b.set_root(root);
        b.finish().unwrap()
    }

    #[test]
    fn deep_chain_needs_no_recursion() {
        let n = 300_000u32;
        let edges: Vec<(u32, u32)> = (0..n - 1).map(|i| (i, i + 1)).collect();
        let g = graph(n as usize, &edges, &[]);
        let d = Dominators::compute(&g);
        assert_eq!(d.idom(NodeIndex(n - 1)), NodeIndex(n - 2));
        assert_eq!(
            d.retained(NodeIndex(n - 2)),
            10 * (n as u64 - 1) + 10 * n as u64
        );
    }

    #[test]
    fn few_multi_retainer_nodes_use_sparse_offsets() {
        // A 120-node chain plus a few random shortcuts: at most one node in 16 has two or more
        // retainers, so the reverse CSR keeps offsets only for those.
        let mut seed = 12345u64;
        for _ in 0..8 {
            let n = 120u32;
            let mut edges: Vec<(u32, u32)> = (0..n - 1).map(|i| (i, i + 1)).collect();
            for _ in 0..5 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let a = (seed >> 33) as u32 % n;
                let b = (seed >> 13) as u32 % n;
                if a != b {
                    edges.push((a, b));
                }
            }
            let g = graph(n as usize, &edges, &[]);
            let cut = Cut::none(g.node_count());
            let retainers = essential_retainers(&g, &cut, &Bits::new(g.node_count()));
            assert!(matches!(retainers.first, RetainerOffsets::Sparse { .. }));
            let few_shared = Cut::new(&g, Vec::new());
            assert!(few_shared_retainers(&g, &few_shared, &Bits::new(g.node_count())).is_some());
            for prune in [false, true] {
                let d = computed(&g, prune);
                for (v, want) in naive_idoms(n as usize, &edges).iter().enumerate() {
                    assert_eq!(Some(d.idom(NodeIndex(v as u32)).0), *want, "node {v}");
                }
            }
        }
    }

    #[test]
    fn few_shared_retainers_over_many_chunks_list_what_the_full_csr_lists() {
        // 200 000 nodes (four chunks of the parallel passes): a chain, shortcuts to every 1000th
        // node from far away, and root edges (whose targets' other edges are cut).
        let n = 200_000u32;
        let mut edges: Vec<(u32, u32)> = (0..n - 1).map(|i| (i, i + 1)).collect();
        edges.extend((1..n / 1000).map(|k| (n - 1 - k, k * 1000)));
        edges.extend([(0, 70_000), (0, 140_000)]);
        let g = graph(n as usize, &edges, &[]);
        let cut = Cut::new(&g, Vec::new());
        let few =
            few_shared_retainers(&g, &cut, &Bits::new(g.node_count())).expect("few shared nodes");
        // 199 shortcut targets with two retainers each, but the two root children keep only the root.
        assert_eq!(few.sources.len(), 2 * 197);
        let (first, sources, single) = fill_retainers::<u32>(&g, &cut, &Bits::new(g.node_count()));
        let full = RetainerOffsets::Narrow(first);
        for v in 0..n as usize {
            let mut want = sources[full.range(v)].to_vec();
            let mut got = few.sources[few.first.range(v)].to_vec();
            want.sort_unstable();
            got.sort_unstable();
            // Both list only nodes with several retainers (a single one is a bit).
            assert_eq!(got, want, "node {v}");
            assert_eq!(single.get(v), few.single.get(v), "node {v}");
        }
        let pruned = computed(&g, true);
        let plain = computed(&g, false);
        for v in 0..n {
            assert_eq!(
                pruned.idom(NodeIndex(v)),
                plain.idom(NodeIndex(v)),
                "node {v}"
            );
        }
    }

    #[test]
    fn retained_sizes_past_4_gib_are_exact() {
        // 0 -> 1 -> 2 and 0 -> 3, where 1 and 2 are 3 GiB each and 3 is 4 GiB - 1 byte.
        let sizes = [16, 3 << 30, 3 << 30, (4 << 30) - 1];
        let mut b = GraphBuilder::new(HeapFormat::Hprof, StringTable::new(), 4, 3);
        let name = b.strings_mut().intern("N").unwrap();
        let class = b.intern_class(ClassInfo::named(name)).unwrap();
        for (i, size) in sizes.iter().enumerate() {
            b.add_node(NodeData {
                id: ObjectId(i as u64),
                class,
                name,
                self_size: *size,
                kind: NodeKind::Instance,
                flags: NodeFlags::default(),
            })
            .unwrap();
        }
        for (from, to) in [(0, 1), (1, 2), (0, 3)] {
            b.add_edge(
                NodeIndex(from),
                EdgeData {
                    to: NodeIndex(to),
                    kind: EdgeKind::Field,
                    name: EdgeName::Named(name),
                    essential: true,
                },
            );
        }
        let d = Dominators::compute(&b.finish().unwrap());
        assert_eq!(d.retained(NodeIndex(0)), 16 + (6 << 30) + (4 << 30) - 1);
        assert_eq!(d.retained(NodeIndex(1)), 6 << 30);
        assert_eq!(d.retained(NodeIndex(2)), 3 << 30);
        assert_eq!(d.retained(NodeIndex(3)), (4 << 30) - 1);
    }

    /// Dominators by definition: d dominates v iff v is unreachable from the root without d.
    fn naive_idoms(n: usize, edges: &[(u32, u32)]) -> Vec<Option<u32>> {
        let reach = |skip: Option<u32>| {
            let mut seen = vec![false; n];
            if skip == Some(0) {
                return seen;
            }
            let mut stack = vec![0u32];
            seen[0] = true;
            while let Some(v) = stack.pop() {
                for &(a, b) in edges {
                    if a == v && Some(b) != skip && !seen[b as usize] {
                        seen[b as usize] = true;
                        stack.push(b);
                    }
                }
            }
            seen
        };
        let reachable = reach(None);
        let mut dominators: Vec<Vec<u32>> = vec![Vec::new(); n];
        for d in 0..n as u32 {
            let without = reach(Some(d));
            for v in 0..n {
                if reachable[v] && (v as u32 == d || !without[v]) {
                    dominators[v].push(d);
                }
            }
        }
        (0..n)
            .map(|v| {
                if !reachable[v] {
                    return None;
                }
                if v == 0 {
                    return Some(0);
                }
                // The immediate dominator is the strict dominator dominated by all others.
                let strict: Vec<u32> = dominators[v]
                    .iter()
                    .copied()
                    .filter(|d| *d as usize != v)
                    .collect();
                strict
                    .iter()
                    .copied()
                    .find(|&c| strict.iter().all(|&o| dominators[c as usize].contains(&o)))
            })
            .collect()
    }

    /// Dominators as DevTools defines them when some nodes are unreachable: every node other
    /// than the root without any essential retainer hangs off the root (dominators of the graph
    /// plus an edge from the root to each), and nodes still unreachable (cycles that only
    /// retain each other) are dominated by the root alone.
    fn devtools_idoms(n: usize, edges: &[(u32, u32)]) -> Vec<u32> {
        let mut retained = vec![false; n];
        for &(_, to) in edges {
            retained[to as usize] = true;
        }
        let mut augmented = edges.to_vec();
        augmented.extend(
            (1..n as u32)
                .filter(|&v| !retained[v as usize])
                .map(|v| (0, v)),
        );
        naive_idoms(n, &augmented)
            .into_iter()
            .map(|d| d.unwrap_or(0))
            .collect()
    }

    /// Asserts `d`'s immediate dominators are `expected`, and that every retained size is the
    /// sum of the self sizes of the nodes dominated.
    fn assert_tree(g: &HeapGraph, d: &Dominators, expected: &[u32]) {
        let n = g.node_count();
        assert_eq!(idoms(d, n), expected);
        for v in g.nodes() {
            let sum: u64 = g
                .nodes()
                .filter(|&u| d.dominates(v, u))
                .map(|u| g.self_size(u))
                .sum();
            assert_eq!(d.retained(v), sum, "retained size of {v:?}");
        }
    }

    proptest! {
        #[test]
        fn unreached_nodes_hang_off_the_root_as_in_devtools(
            n in 2usize..14,
            raw in proptest::collection::vec((0u32..14, 0u32..14), 0..30),
        ) {
            // No spanning tree: some nodes are unreachable, some have no retainer at all, and
            // some form cycles that only retain each other (self loops included).
            let edges: Vec<(u32, u32)> = raw
                .into_iter()
                .map(|(a, b)| (a % n as u32, b % n as u32))
                .collect();
            let g = graph(n, &edges, &[]);
            let d = Dominators::compute(&g);
            assert_tree(&g, &d, &devtools_idoms(n, &edges));
            let reached = naive_idoms(n, &edges).iter().filter(|d| d.is_some()).count();
            prop_assert_eq!(d.unreachable_count() as usize, n - reached);
        }

        #[test]
        fn shortcuts_change_nothing_on_random_hprof_graphs(
            n in 2usize..16,
            classes in 0u32..(1 << 16),
            raw in proptest::collection::vec((0u32..16, 0u32..16, 0u8..8), 0..48),
            tree in proptest::collection::vec(0u32..1000, 16),
            spanning in any::<bool>(),
        ) {
            let mut edges: Vec<(u32, u32, bool)> = raw
                .into_iter()
                .map(|(a, b, e)| (a % n as u32, b % n as u32, e != 0))
                .filter(|(a, b, _)| b != &0 || a == b)
                .collect();
            if spanning {
                for v in 1..n as u32 {
                    edges.push((tree[v as usize] % v, v, true));
                }
            }
            let mut g = hprof_graph(n, classes, &edges);
            assert_shortcuts_exact(&g);
            let essential: Vec<(u32, u32)> =
                edges.iter().filter(|e| e.2).map(|e| (e.0, e.1)).collect();
            let plain = Dominators::compute(&g);
            assert_tree(&g, &plain, &devtools_idoms(n, &essential));
            // Packing the columns the search does not read changes neither the tree nor them.
            let (class_column, sizes) = (g.classes().clone(), g.self_sizes().clone());
            let packed = Dominators::compute_packing(&mut g);
            prop_assert_eq!(idoms(&packed, n), idoms(&plain, n));
            for v in 0..n as u32 {
                prop_assert_eq!(packed.retained(NodeIndex(v)), plain.retained(NodeIndex(v)));
            }
            prop_assert_eq!(g.classes(), &class_column);
            prop_assert_eq!(g.self_sizes(), &sizes);
            prop_assert!(matches!(g.classes(), CompactU32s::Two(_) | CompactU32s::Four(_)));
        }

        #[test]
        fn inert_nodes_count_as_if_their_edges_were_not_essential(
            n in 2usize..16,
            classes in 0u32..(1 << 16),
            raw in proptest::collection::vec((0u32..16, 0u32..16, 0u8..8), 0..48),
            inert in 0u32..(1 << 16),
            hprof in any::<bool>(),
        ) {
            // Random inert sets: mostly nodes the root does not reach (garbage), sometimes ones
            // it does (the search then runs again with them known).
            let edges: Vec<(u32, u32, bool)> = raw
                .into_iter()
                .map(|(a, b, e)| (a % n as u32, b % n as u32, e != 0))
                .filter(|(a, b, _)| b != &0 || a == b)
                .collect();
            let build = |essential: &dyn Fn(u32, bool) -> bool| {
                let edges: Vec<(u32, u32, bool)> =
                    edges.iter().map(|&(a, b, e)| (a, b, essential(a, e))).collect();
                if hprof {
                    hprof_graph(n, classes, &edges)
                } else {
                    let kept: Vec<(u32, u32)> =
                        edges.iter().filter(|e| e.2).map(|e| (e.0, e.1)).collect();
                    let weak: Vec<(u32, u32)> =
                        edges.iter().filter(|e| !e.2).map(|e| (e.0, e.1)).collect();
                    graph(n, &kept, &weak)
                }
            };
            // The root's bit is ignored.
            let is_inert = |v: u32| v != 0 && inert & (1 << v) != 0;
            let mut g = build(&|_, e| e);
            let discarded = build(&|from, e| e && !is_inert(from));
            let (beside, bits) =
                Dominators::compute_packing_beside(&mut g, |_| vec![u64::from(inert)]);
            prop_assert_eq!(bits, vec![u64::from(inert & !1) & ((1 << n) - 1)]);
            let after = Dominators::compute(&discarded);
            prop_assert_eq!(idoms(&beside, n), idoms(&after, n));
            for v in 0..n as u32 {
                prop_assert_eq!(beside.retained(NodeIndex(v)), after.retained(NodeIndex(v)));
            }
            prop_assert_eq!(beside.unreachable_count(), after.unreachable_count());
        }

        #[test]
        fn matches_the_definition_on_random_graphs(
            n in 2usize..14,
            raw in proptest::collection::vec((0u32..14, 0u32..14), 0..40),
            tree in proptest::collection::vec(0u32..1000, 14),
        ) {
            let mut edges: Vec<(u32, u32)> = raw
                .into_iter()
                .map(|(a, b)| (a % n as u32, b % n as u32))
                .filter(|(a, b)| a != b)
                .collect();
            // A random spanning tree makes every node reachable, so the definition applies.
            for v in 1..n as u32 {
                edges.push((tree[v as usize] % v, v));
            }
            let g = graph(n, &edges, &[]);
            let d = Dominators::compute(&g);
            let expected = naive_idoms(n, &edges);
            for (v, want) in expected.iter().enumerate() {
                prop_assert_eq!(Some(d.idom(NodeIndex(v as u32)).0), *want, "node {}", v);
            }
            // Retained size = sum of self sizes over the dominated subtree.
            for v in 0..n as u32 {
                let mut sum = 0;
                for u in 0..n as u32 {
                    if d.dominates(NodeIndex(v), NodeIndex(u)) {
                        sum += g.self_size(NodeIndex(u));
                    }
                }
                prop_assert_eq!(d.retained(NodeIndex(v)), sum);
            }
        }
    }
}
