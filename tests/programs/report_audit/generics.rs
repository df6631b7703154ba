//! report_audit: Rust stacks through generic functions, closures and Box/Vec, with known counts
//! (see crates/leaksift/tests/report_oracle.rs).
//!  - boxed::<u64>() x 4 and boxed::<[u8; 32]>() x 6: generic instances, leaked with Box::leak
//!    and the addresses scrambled (definitely lost).
//!  - a closure allocating 5 Vec<u32> of capacity 32 (128 bytes each), each freed at once
//!    (5 temporaries).
//! At opt-level=1 rustc unrolls both loops: every iteration calls from its own instruction.
use std::hint::black_box;

#[inline(never)]
fn boxed<T: Default>() -> &'static mut T {
    Box::leak(Box::new(T::default()))
}

#[inline(never)]
fn with_closure(n: usize) {
    let make = |i: usize| -> Vec<u32> {
        let mut v = Vec::with_capacity(32);
        v.push(i as u32);
        v
    };
    for i in 0..n {
        black_box(make(i));
    }
}

fn main() {
    for _ in 0..4 {
        black_box(boxed::<u64>() as *mut u64 as usize ^ 1);
    }
    for _ in 0..6 {
        black_box(boxed::<[u8; 32]>() as *mut [u8; 32] as usize ^ 1);
    }
    with_closure(5);
}
