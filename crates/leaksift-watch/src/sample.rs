//! One memory sample and the process id newtype.

/// A Linux process id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(pub u32);

impl std::fmt::Display for Pid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Memory of the target at one instant. `bytes` is the headline signal that is analysed (which
/// one depends on the target, see [`crate::Sampler::signal`]); the others are `None` when the
/// target kind or the chosen files do not provide them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// Seconds since sampling started.
    pub t: f64,
    /// The analysed signal, bytes.
    pub bytes: u64,
    /// Resident set size (for a tree: the sum, which double-counts shared pages; shown, never
    /// analysed).
    pub rss: Option<u64>,
    /// Anonymous memory (process: RssAnon, or Anonymous − LazyFree with PSS; tree: Pss_Anon;
    /// cgroup: `anon` of memory.stat).
    pub anon: Option<u64>,
    /// File-backed memory (process: RssFile + RssShmem; cgroup: `file` of memory.stat).
    pub file: Option<u64>,
    /// Swapped out (process: VmSwap; tree: SwapPss sum; cgroup: memory.swap.current).
    pub swap: Option<u64>,
    /// Proportional set size (with `--pss`, or summed for a tree).
    pub pss: Option<u64>,
    /// Unique set size: private clean + private dirty (with `--pss`, or summed for a tree).
    pub uss: Option<u64>,
    /// The cgroup's memory.max (`None` for "max" or for processes).
    pub limit: Option<u64>,
    /// The cgroup's `oom_kill` count from memory.events.
    pub oom_kills: Option<u64>,
    /// The watched (root) process.
    pub pid: Option<Pid>,
    /// Number of processes summed (tree) or found in the cgroup.
    pub processes: Option<u32>,
    /// Processes of a tree that exited since the previous sample (0 for other targets). With a
    /// fall of the memory at the same sample, a restart: a supervisor replacing a worker that
    /// was killed (see `leaksift watch`). Not written to the CSV.
    pub exited: u32,
}
