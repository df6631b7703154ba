//! Compiles the library's two small C files: its initial-exec thread-locals (`tls.c`) and the
//! variadic exec calls stable Rust cannot define (`exec.c`).
fn main() {
    println!("cargo:rerun-if-changed=src/tls.c");
    println!("cargo:rerun-if-changed=src/exec.c");
    cc::Build::new()
        .file("src/tls.c")
        .file("src/exec.c")
        .opt_level(2)
        .compile("leaksift_c");
}
