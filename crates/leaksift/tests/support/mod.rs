//! Helpers shared by the integration tests that trace programs (`record`, `report`, `demo`).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// Makes sure the tracer library next to the `leaksift` binary is built and current:
/// `cargo test` builds the cdylib only as a test harness, not as `libleaksift_preload.so`,
/// and test binaries run in name order, so every test that traces must ask for it.
pub fn ensure_preload() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let bin = Path::new(env!("CARGO_BIN_EXE_leaksift"));
        let profile_dir = bin.parent().expect("binary directory");
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "-p", "leaksift-preload"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        if let Some(target) = profile_dir.parent() {
            cargo.env("CARGO_TARGET_DIR", target);
        }
        let status = cargo
            .status()
            .expect("running cargo build -p leaksift-preload");
        assert!(status.success(), "building the preload library failed");
        assert!(profile_dir.join("libleaksift_preload.so").is_file());
    });
}
