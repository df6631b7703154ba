//! Text rendering and flamegraphs of native trace reports.
