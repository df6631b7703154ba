//! One module per subcommand: flag definitions and the glue from engine to renderer.

pub mod check;
pub mod demo;
pub mod diff;
pub mod distinct_files;
pub mod file_kind;
pub mod heap;
pub mod heapfile;
pub mod mapped_inputs;
pub mod paths;
pub mod record;
pub mod report;
pub mod trend;
pub mod watch;
