//! Replaying a native trace: live set over time, leaks by class, peak, hotspots, growth, symbolization.
//!
//! Data flows one way: decoded [`leaksift_trace::model::Event`]s → [`replay::Replay`] →
//! [`replay::Analysis`] (flat per-stack tables) → [`view::build`] with a
//! [`symbolize::Symbolizer`] and [`suppress::Suppressions`] → [`view::NativeReport`], which the
//! renderers print as tables, JSON or a flamegraph.

pub mod compare;
mod cxa_demangle;
mod debuglink;
pub mod growth;
pub mod modules;
pub mod replay;
pub mod suppress;
pub mod symbolize;
pub mod untraced;
pub mod view;
