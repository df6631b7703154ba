//! Text and JSON rendering of heap-graph analyses (heap, paths, diff).
