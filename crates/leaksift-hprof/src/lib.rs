//! Java HPROF heap dump reader: builds the format-neutral heap graph with MAT semantics.
