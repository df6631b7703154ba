//! Compiles the tiny C file that holds the library's initial-exec thread-locals.
fn main() {
    println!("cargo:rerun-if-changed=src/tls.c");
    cc::Build::new()
        .file("src/tls.c")
        .opt_level(2)
        .compile("leaksift_tls");
}
