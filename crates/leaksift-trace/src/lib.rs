//! The native allocation trace: in-memory model, on-disk format, writer and reader.
//!
//! * [`model`] is the decoded form every consumer works with (the contract with `leaksift-native`).
//! * [`TraceWriter`] encodes [`model::Event`]s into the chunked, compressed file format described in
//!   `docs/trace-format.md` (and in [`mod@format`]). The recorder (`leaksift-preload`) drives it from its
//!   writer thread; tests drive it directly.
//! * [`TraceReader`] decodes a file (or bytes) back into the header and the events, in file order,
//!   and tells whether the trace is complete:
//!
//! ```no_run
//! use leaksift_trace::TraceReader;
//! # fn main() -> Result<(), leaksift_trace::TraceError> {
//! let mut reader = TraceReader::open(std::path::Path::new("trace.lks"))?;
//! println!("pid {}", reader.header().pid);
//! for event in reader.events() {
//!     let event = event?; // a corrupt chunk is an error carrying its byte offset
//!     println!("{event:?}");
//! }
//! // Only meaningful once the events are exhausted: no `End` event or a partial last chunk.
//! println!("truncated: {}", reader.is_truncated());
//! # Ok(()) }
//! ```
//!
//! [`TraceReader::open`] decodes on a background thread a few chunks ahead. For big traces,
//! [`TraceReader::read_batch`] hands over a whole chunk's events per call (up to a few hundred thousand),
//! which avoids moving every event through `next_event`'s return value.
//!
//! Event order: the recorder sorts events by time before writing them, so file order is time order
//! (ties keep per-thread order). Event times are rounded down to a multiple of the writer's time
//! resolution (the recorder uses 1 ms): an event's `time` is at most that much earlier than when it
//! happened.

pub mod allocators;
pub mod error;
pub mod format;
pub mod model;
pub mod reader;
mod varint;
pub mod writer;

pub use error::TraceError;
pub use reader::{ExecEnding, TraceReader, Truncation, exec_ending};
pub use writer::TraceWriter;
