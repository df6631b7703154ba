//! Rendering of analysis results: text tables, JSON envelopes, SVG charts, flamegraphs. Renderers never compute.

/// `eprint!` that never panics: a message that cannot be written (stderr a closed pipe, a full
/// disk) is dropped. `eprint!` panics on a failed write, and a panic whose own message cannot be
/// printed aborts, which in `record` also ended the traced program.
#[macro_export]
macro_rules! stderr_print {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!(::std::io::stderr(), $($arg)*);
    }};
}

/// `eprintln!` that never panics (see [`stderr_print!`]).
#[macro_export]
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

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
