//! LD_PRELOAD allocation tracer: allocator hooks, stack capture, per-thread buffers, reachability scan.
