//! Refusing, before any work, a run whose output files would overwrite one another or an input.
//!
//! `leaksift report trace.lks --flamegraph trace.lks` would replace the trace with an SVG, and
//! `watch --out run.csv --svg run.csv` would leave only the chart: both are refused with a usage
//! error (exit 2) naming the two flags. Two paths are the same file when they name one existing
//! file (same device and inode: hard links and symlinks included), or, for a file not created
//! yet, when their canonical directories and file names are equal. Devices and pipes
//! (`/dev/null` for two outputs) are never the same file in this sense.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file named on the command line: the flag (or argument name) that named it, and the path.
pub type NamedFile<'a> = (&'static str, Option<&'a Path>);

/// What makes two paths the same file.
#[derive(PartialEq, Eq)]
enum Identity {
    /// An existing file.
    Inode { device: u64, inode: u64 },
    /// A file not created yet: its canonical directory and its name.
    Planned(PathBuf, OsString),
}

fn identity(path: &Path) -> Option<Identity> {
    if let Ok(meta) = std::fs::metadata(path) {
        // A device or a pipe (`/dev/null`, `/dev/stdout`) can take several outputs.
        return meta.is_file().then(|| Identity::Inode {
            device: meta.dev(),
            inode: meta.ino(),
        });
    }
    let name = path.file_name()?.to_os_string();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // A directory that does not exist: the write will fail on its own, with its own message.
    Some(Identity::Planned(dir.canonicalize().ok()?, name))
}

/// Fails when an output in `outputs` is the same file as another output or as an input.
pub fn refuse_overlaps(inputs: &[NamedFile<'_>], outputs: &[NamedFile<'_>]) -> anyhow::Result<()> {
    let known = |files: &[NamedFile<'_>]| -> Vec<(&'static str, Identity)> {
        files
            .iter()
            .filter_map(|(flag, path)| Some((*flag, identity((*path)?)?)))
            .collect()
    };
    let inputs = known(inputs);
    let outputs = known(outputs);
    for (at, (flag, output)) in outputs.iter().enumerate() {
        if let Some((input_flag, _)) = inputs.iter().find(|(_, input)| input == output) {
            anyhow::bail!("{flag} names the same file as {input_flag}: it would overwrite it");
        }
        if let Some((other_flag, _)) = outputs[..at].iter().find(|(_, other)| other == output) {
            anyhow::bail!(
                "{other_flag} and {flag} name the same file: one would overwrite the other"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_existing_file_through_a_symlink_and_planned_files_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("t.lks");
        std::fs::write(&trace, b"x").unwrap();
        let link = dir.path().join("link.lks");
        std::os::unix::fs::symlink(&trace, &link).unwrap();
        let error = refuse_overlaps(&[("TRACE", Some(&trace))], &[("--flamegraph", Some(&link))])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "--flamegraph names the same file as TRACE: it would overwrite it"
        );

        let planned = dir.path().join("new.svg");
        let spelled_otherwise = dir.path().join(".").join("new.svg");
        let error = refuse_overlaps(
            &[],
            &[
                ("--out", Some(&planned)),
                ("--svg", Some(&spelled_otherwise)),
            ],
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "--out and --svg name the same file: one would overwrite the other"
        );

        let null = Path::new("/dev/null");
        refuse_overlaps(&[], &[("--out", Some(null)), ("--svg", Some(null))]).unwrap();

        let other = dir.path().join("other.svg");
        refuse_overlaps(
            &[("TRACE", Some(&trace))],
            &[
                ("--out", Some(&planned)),
                ("--svg", Some(&other)),
                ("--junit", None),
            ],
        )
        .unwrap();
    }
}
