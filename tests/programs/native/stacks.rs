//! A leak through Rust's default global allocator (which calls malloc), for demangled-name checks.

#[inline(never)]
fn make_leak(size: usize) -> usize {
    let leaked: &'static mut Vec<u8> = Box::leak(Box::new(vec![5u8; size])); // line:make_leak
    leaked.len()
}

#[inline(never)]
fn run() -> usize {
    make_leak(333) // line:run
}

fn main() {
    let length = run(); // line:main
    std::process::exit(if length == 333 { 0 } else { 1 });
}
