//! Replaying a native trace: live set over time, leaks by class, peak, hotspots, growth, symbolization.
