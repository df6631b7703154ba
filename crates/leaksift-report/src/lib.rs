//! Rendering of analysis results: text tables, JSON envelopes, SVG charts, flamegraphs. Renderers never compute.

pub mod escape;
pub mod flamegraph;
pub mod progress;
pub mod table;
pub mod units;
// Domain renderers, one module per engine (owned by the engine's author):
pub mod chart;
pub mod heap;
pub mod native;
pub mod native_diff;
