//! The native allocation trace: in-memory model, on-disk format, writer and reader.

pub mod model;
