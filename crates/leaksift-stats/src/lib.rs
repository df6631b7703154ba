//! Trend statistics and the leak verdict: pure functions over (time, bytes) series, no I/O.
