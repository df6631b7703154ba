//! Compiles the library's small C files: its initial-exec thread-locals (`tls.c`), the
//! variadic exec calls stable Rust cannot define (`exec.c`) and the weak reference to
//! libstdc++'s `__gnu_cxx::__freeres` (`freeres.c`), which stable Rust cannot declare.
fn main() {
    println!("cargo:rerun-if-changed=src/tls.c");
    println!("cargo:rerun-if-changed=src/exec.c");
    println!("cargo:rerun-if-changed=src/freeres.c");
    cc::Build::new()
        .file("src/tls.c")
        .file("src/exec.c")
        .file("src/freeres.c")
        .opt_level(2)
        .compile("leaksift_c");
}
