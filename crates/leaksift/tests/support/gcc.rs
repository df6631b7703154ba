//! Builds the C test programs under `tests/programs/` with gcc.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles `tests/programs/<area>/<name>.c` into `dir/<name>` with `flags` and returns its path.
pub fn compile(area: &str, name: &str, dir: &Path, flags: &[&str]) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/programs")
        .join(area)
        .join(format!("{name}.c"));
    let binary = dir.join(name);
    let status = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .status()
        .expect("running gcc");
    assert!(status.success(), "gcc {} failed", source.display());
    binary
}
