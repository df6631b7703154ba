//! Rust's default global allocator (System) reaches malloc/free.
use std::hint::black_box;

#[inline(never)]
fn rust_allocations() {
    let v: Vec<u8> = Vec::with_capacity(45678);
    black_box(&v);
    drop(v);
    let b = Box::new([7u8; 5678]);
    black_box(&b);
}

fn main() {
    rust_allocations();
    println!("rust done");
}
