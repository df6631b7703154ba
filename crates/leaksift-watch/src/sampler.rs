//! What to watch and how one sample of it is taken.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cgroup::Cgroup;
use crate::procfs::{self, ProcFile};
use crate::{Pid, Sample, WatchError};

/// What to sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One process; `pss` reads smaps_rollup (PSS/USS, exact anon) instead of status.
    Process { pid: Pid, pss: bool },
    /// A process and all its descendants, summed by PSS. With `orphans`, also the processes
    /// leaksift adopted as their subreaper ([`crate::child::adopt_orphans`]) and their
    /// descendants: the tree lives on after its root exits as long as one of them runs.
    Tree { root: Pid, orphans: bool },
    /// A cgroup v2 directory.
    Cgroup { dir: PathBuf },
}

/// Which quantity `Sample::bytes` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// VmRSS of one process.
    Rss,
    /// PSS of one process.
    Pss,
    /// Sum of PSS over a process tree.
    TreePss,
    /// memory.current − inactive_file of a cgroup.
    WorkingSet,
}

impl Signal {
    /// The quantity a [`Sampler`] of `target` analyses (known before the sampler opens).
    pub fn of(target: &Target) -> Signal {
        match target {
            Target::Process { pss: false, .. } => Signal::Rss,
            Target::Process { pss: true, .. } => Signal::Pss,
            Target::Tree { .. } => Signal::TreePss,
            Target::Cgroup { .. } => Signal::WorkingSet,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Rss => "rss",
            Signal::Pss => "pss",
            Signal::TreePss => "tree_pss",
            Signal::WorkingSet => "cgroup_working_set",
        }
    }
}

/// How often a tree's membership is re-enumerated (walking `/proc/*/task/*/children` costs more
/// than a sample, so it is not done at 10 ms intervals).
const TREE_REFRESH: Duration = Duration::from_secs(1);

/// Takes samples of one [`Target`]; `t` counts seconds from the sampler's creation.
#[derive(Debug)]
pub struct Sampler {
    mode: Mode,
    started: Instant,
}

#[derive(Debug)]
enum Mode {
    Status(ProcFile),
    Rollup(ProcFile),
    Tree {
        root: Pid,
        orphans: bool,
        members: Vec<ProcFile>,
        refreshed: Instant,
    },
    Cgroup(Cgroup),
}

impl Sampler {
    /// Opens the target's files; fails when the process is gone, smaps_rollup is not readable
    /// (permission) or the directory is not a cgroup v2 with the memory controller.
    pub fn new(target: &Target) -> Result<Self, WatchError> {
        if let Target::Process { pid, .. } | Target::Tree { root: pid, .. } = target
            && procfs::is_kernel_thread(*pid)
        {
            return Err(WatchError::KernelThread { pid: pid.0 });
        }
        let mode = match target {
            Target::Process { pid, pss: false } => Mode::Status(ProcFile::open(*pid, "status")?),
            Target::Process { pid, pss: true } => Mode::Rollup(open_rollup(*pid)?),
            Target::Tree { root, orphans } => {
                let mut members = Vec::new();
                match open_rollup(*root) {
                    Ok(file) => members.push(file),
                    // A daemon's parent may have exited already: its orphans are the tree.
                    Err(_) if *orphans => {}
                    Err(e) => return Err(e),
                }
                refresh_tree(*root, *orphans, &mut members);
                if members.is_empty() {
                    return Err(WatchError::ProcessGone { pid: root.0 });
                }
                Mode::Tree {
                    root: *root,
                    orphans: *orphans,
                    members,
                    refreshed: Instant::now(),
                }
            }
            Target::Cgroup { dir } => Mode::Cgroup(Cgroup::open(dir)?),
        };
        Ok(Sampler {
            mode,
            started: Instant::now(),
        })
    }

    /// The quantity analysed.
    pub fn signal(&self) -> Signal {
        match self.mode {
            Mode::Status(_) => Signal::Rss,
            Mode::Rollup(_) => Signal::Pss,
            Mode::Tree { .. } => Signal::TreePss,
            Mode::Cgroup(_) => Signal::WorkingSet,
        }
    }

    /// Seconds since the sampler was created.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Takes one sample now; `None` when a process target has no memory at all, which happens
    /// only between fork and exec or while it exits (a zero would fake a restart).
    pub fn sample(&mut self) -> Result<Option<Sample>, WatchError> {
        let sample = self.read()?;
        let empty_process = sample.bytes == 0 && !matches!(self.mode, Mode::Cgroup(_));
        Ok((!empty_process).then_some(sample))
    }

    fn read(&mut self) -> Result<Sample, WatchError> {
        let t = self.elapsed();
        match &mut self.mode {
            Mode::Status(file) => {
                let pid = file.pid();
                let text = file.read()?;
                let s = procfs::parse_status(text).ok_or(WatchError::ProcessGone { pid: pid.0 })?;
                Ok(Sample {
                    t,
                    bytes: s.rss,
                    rss: Some(s.rss),
                    anon: Some(s.anon),
                    file: Some(s.file + s.shmem),
                    swap: Some(s.swap),
                    pid: Some(pid),
                    processes: Some(1),
                    ..Sample::default()
                })
            }
            Mode::Rollup(file) => {
                let pid = file.pid();
                let r = read_rollup(file)?;
                Ok(Sample {
                    t,
                    bytes: r.pss,
                    rss: Some(r.rss),
                    anon: Some(r.anonymous.saturating_sub(r.lazy_free)),
                    swap: Some(r.swap),
                    pss: Some(r.pss),
                    uss: Some(r.private),
                    pid: Some(pid),
                    processes: Some(1),
                    ..Sample::default()
                })
            }
            Mode::Tree {
                root,
                orphans,
                members,
                refreshed,
            } => {
                // Without any member left, an orphan adopted since the last refresh may be all
                // that runs.
                if refreshed.elapsed() >= TREE_REFRESH || members.is_empty() {
                    refresh_tree(*root, *orphans, members);
                    *refreshed = Instant::now();
                }
                let mut total = procfs::Rollup::default();
                let mut alive = Vec::with_capacity(members.len());
                for file in members.iter_mut() {
                    let is_root = file.pid() == *root;
                    match read_rollup(file) {
                        Ok(r) => {
                            total.rss += r.rss;
                            total.pss += r.pss;
                            total.pss_anon += r.pss_anon;
                            total.private += r.private;
                            total.swap_pss += r.swap_pss;
                            alive.push(true);
                        }
                        // The root's failure ends the watch (unless orphans carry the tree on); a
                        // descendant may exit any time.
                        Err(e) if is_root && !*orphans => return Err(e),
                        Err(_) => alive.push(false),
                    }
                }
                let exited = alive.iter().filter(|&&a| !a).count() as u32;
                let mut keep = alive.into_iter();
                members.retain(|_| keep.next().unwrap_or(false));
                if exited > 0 {
                    // A process that exits is often replaced (a supervisor restarting its
                    // worker): look for the newcomer at the next sample, not a second later, so
                    // the new run is measured from its start.
                    *refreshed = Instant::now()
                        .checked_sub(TREE_REFRESH)
                        .unwrap_or(*refreshed);
                }
                if members.is_empty() {
                    return Err(WatchError::ProcessGone { pid: root.0 });
                }
                Ok(Sample {
                    t,
                    bytes: total.pss,
                    rss: Some(total.rss),
                    anon: Some(total.pss_anon),
                    swap: Some(total.swap_pss),
                    pss: Some(total.pss),
                    uss: Some(total.private),
                    pid: Some(*root),
                    processes: Some(members.len() as u32),
                    exited,
                    ..Sample::default()
                })
            }
            Mode::Cgroup(cg) => cg.sample(t),
        }
    }

    /// The cgroup's memory.max, when watching a cgroup that has one.
    pub fn limit(&self) -> Result<Option<u64>, WatchError> {
        match &self.mode {
            Mode::Cgroup(cg) => cg.limit(),
            _ => Ok(None),
        }
    }
}

/// Opens `/proc/PID/smaps_rollup` and reads it once (permission is checked at read time).
fn open_rollup(pid: Pid) -> Result<ProcFile, WatchError> {
    let mut file = ProcFile::open(pid, "smaps_rollup")?;
    file.read()?;
    Ok(file)
}

fn read_rollup(file: &mut ProcFile) -> Result<procfs::Rollup, WatchError> {
    let pid = file.pid();
    procfs::parse_rollup(file.read()?).ok_or(WatchError::ProcessGone { pid: pid.0 })
}

/// Opens smaps_rollup for descendants (and with `orphans`, adopted orphans and their descendants)
/// that appeared since the last refresh. Members whose files fail to open exited in between and
/// are skipped.
fn refresh_tree(root: Pid, orphans: bool, members: &mut Vec<ProcFile>) {
    let known: Vec<Pid> = members.iter().map(ProcFile::pid).collect();
    let mut pids = procfs::descendants(root);
    if orphans {
        for orphan in procfs::children(Pid(std::process::id())) {
            if orphan != root {
                pids.extend(procfs::descendants(orphan));
            }
        }
    }
    for pid in pids {
        if !known.contains(&pid)
            && let Ok(file) = ProcFile::open(pid, "smaps_rollup")
        {
            members.push(file);
        }
    }
}
