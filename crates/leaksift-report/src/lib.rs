//! Rendering of analysis results: text tables, JSON envelopes, SVG charts, flamegraphs. Renderers never compute.

pub mod escape;
pub mod progress;
pub mod table;
pub mod units;
