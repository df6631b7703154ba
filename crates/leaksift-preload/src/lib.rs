//! LD_PRELOAD allocation tracer: allocator hooks, stack capture, per-thread buffers, writer
//! thread, reachability scan. Loaded by `leaksift record`; configured through `LEAKSIFT_*`
//! environment variables (see `runtime`). Only crate of the workspace with much `unsafe`: every
//! block says why it is sound.

mod alloc;
mod buffers;
mod cxx;
mod exec_call;
mod hooks;
mod modules;
mod runtime;
mod scan;
mod stacks;
mod sys;
mod unwind;
mod writer;

#[global_allocator]
static ALLOCATOR: alloc::TracerAllocator = alloc::TracerAllocator;
