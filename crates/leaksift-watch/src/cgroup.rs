//! Reading a cgroup v2 directory: `memory.current`, `memory.stat`, `memory.max`, `memory.events`,
//! `memory.swap.current` and `cgroup.procs`.

use std::path::{Path, PathBuf};

use crate::{Sample, WatchError};

/// A validated cgroup v2 directory with the memory controller enabled.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    /// Checks that `dir` is a cgroup v2 directory (`cgroup.controllers` exists) whose memory
    /// controller is enabled (`memory.current` exists).
    pub fn open(dir: &Path) -> Result<Self, WatchError> {
        let meta = std::fs::metadata(dir).map_err(|source| WatchError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() || !dir.join("cgroup.controllers").exists() {
            return Err(WatchError::NotCgroupV2 {
                path: dir.to_path_buf(),
            });
        }
        if !dir.join("memory.current").exists() {
            return Err(WatchError::NoMemoryController {
                path: dir.to_path_buf(),
            });
        }
        Ok(Cgroup {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self, name: &str) -> Result<String, WatchError> {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| WatchError::Io { path, source })
    }

    fn number(&self, name: &str, text: &str) -> Result<u64, WatchError> {
        text.trim().parse().map_err(|_| WatchError::Format {
            path: self.dir.join(name),
            what: format!("expected a number, found {:?}", text.trim()),
        })
    }

    /// `memory.max` in bytes; `None` for `max` (no limit).
    pub fn limit(&self) -> Result<Option<u64>, WatchError> {
        let text = self.read("memory.max")?;
        if text.trim() == "max" {
            return Ok(None);
        }
        self.number("memory.max", &text).map(Some)
    }

    /// One sample. The analysed signal is the working set, `memory.current − inactive_file`
    /// (kubelet's definition): page cache that the kernel reclaims first must not look like a
    /// leak, and this is what the limit applies to in practice.
    pub fn sample(&self, t: f64) -> Result<Sample, WatchError> {
        let current = self.number("memory.current", &self.read("memory.current")?)?;
        let stat = self.read("memory.stat")?;
        let field = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let inactive_file = field("inactive_file").unwrap_or(0);
        let events = self.read("memory.events")?;
        let oom_kills = events
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok());
        let swap = match self.read("memory.swap.current") {
            Ok(text) => Some(self.number("memory.swap.current", &text)?),
            Err(_) => None,
        };
        let processes = self
            .read("cgroup.procs")
            .ok()
            .map(|p| p.lines().filter(|l| !l.trim().is_empty()).count() as u32);
        Ok(Sample {
            t,
            bytes: current.saturating_sub(inactive_file),
            rss: None,
            anon: field("anon"),
            file: field("file"),
            swap,
            pss: None,
            uss: None,
            limit: self.limit()?,
            oom_kills,
            pid: None,
            processes,
            exited: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files a cgroup v2 memory controller exposes, in their kernel format (checked against
    /// Documentation/admin-guide/cgroup-v2.rst); this machine's memory controller may be on v1.
    fn fake_cgroup(max: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let w = |n: &str, c: &str| std::fs::write(dir.path().join(n), c).unwrap();
        w("cgroup.controllers", "cpu memory pids\n");
        w("memory.current", "104857600\n");
        w(
            "memory.stat",
            "anon 52428800\nfile 41943040\nkernel 1048576\ninactive_file 20971520\n",
        );
        w("memory.max", max);
        w(
            "memory.events",
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        );
        w("cgroup.procs", "101\n102\n");
        dir
    }

    #[test]
    fn samples_a_cgroup_directory() {
        let dir = fake_cgroup("209715200\n");
        let cg = Cgroup::open(dir.path()).unwrap();
        let s = cg.sample(1.5).unwrap();
        assert_eq!(s.bytes, 104_857_600 - 20_971_520);
        assert_eq!(s.anon, Some(52_428_800));
        assert_eq!(s.file, Some(41_943_040));
        assert_eq!(s.limit, Some(209_715_200));
        assert_eq!(s.oom_kills, Some(1));
        assert_eq!(s.processes, Some(2));
        assert_eq!(s.swap, None);
        let unlimited = fake_cgroup("max\n");
        assert_eq!(
            Cgroup::open(unlimited.path()).unwrap().limit().unwrap(),
            None
        );
    }

    #[test]
    fn rejects_non_cgroup_directories() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Cgroup::open(dir.path()),
            Err(WatchError::NotCgroupV2 { .. })
        ));
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu\n").unwrap();
        assert!(matches!(
            Cgroup::open(dir.path()),
            Err(WatchError::NoMemoryController { .. })
        ));
        assert!(matches!(
            Cgroup::open(Path::new("/proc/self/status")),
            Err(WatchError::NotCgroupV2 { .. })
        ));
    }

    #[test]
    fn garbage_is_a_format_error() {
        let dir = fake_cgroup("max\n");
        std::fs::write(dir.path().join("memory.current"), "lots\n").unwrap();
        let err = Cgroup::open(dir.path()).unwrap().sample(0.0).unwrap_err();
        assert!(matches!(err, WatchError::Format { .. }), "{err}");
    }
}
