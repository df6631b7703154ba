//! Memory sampling of a process, a process tree or a cgroup v2, and the `check` scenario runner.
//!
//! Reading is cheap by default: one `pread` of `/proc/PID/status` per sample on a descriptor kept
//! open (no page-table walk). `smaps_rollup` (PSS/USS, walks page tables) is read only with
//! `--pss` or for a process tree, where summing RSS would count shared pages many times.

pub mod cgroup;
pub mod check;
pub mod child;
pub mod csv;
pub mod import;
pub mod job;
pub mod procfs;
pub mod record;
pub mod sample;
pub mod sampler;
pub mod size;

use std::path::PathBuf;

pub use sample::{Pid, Sample};
pub use sampler::{Sampler, Target};

/// Failures of sampling, launching and scenario running. Each names the PID, file or command.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("process {pid} is gone")]
    ProcessGone { pid: u32 },
    #[error("process {pid} is a kernel thread: it has no user memory to watch")]
    KernelThread { pid: u32 },
    #[error(
        "permission denied reading {} (needs ptrace access to the process: run as its user or root)",
        path.display()
    )]
    PermissionDenied { path: PathBuf },
    #[error("{}: not a cgroup v2 directory (no cgroup.controllers)", path.display())]
    NotCgroupV2 { path: PathBuf },
    #[error("{}: the memory controller is not enabled for this cgroup (no memory.current)", path.display())]
    NoMemoryController { path: PathBuf },
    /// The cause is the error's source (shown after it by the CLI), not repeated here.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unexpected content: {what}", path.display())]
    Format { path: PathBuf, what: String },
    #[error("cannot start `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` exited with {status} before it was ready")]
    ExitedEarly { command: String, status: String },
    #[error("`{command}` was not ready after {seconds:.1} s")]
    NotReady { command: String, seconds: f64 },
    /// `check`: the server ended after it was ready.
    #[error("`{command}` exited with {status} during {run}")]
    ServerExited {
        command: String,
        status: String,
        run: check::Run,
    },
    #[error("scenario `{command}` failed in {run} ({status}){detail}")]
    ScenarioFailed {
        command: String,
        run: check::Run,
        status: String,
        detail: String,
    },
    /// `check --before-sample` or `--sample-cmd` failed, or the latter printed no byte count.
    #[error("{role} `{command}` failed in {run}: {detail}")]
    SampleCommandFailed {
        role: &'static str,
        command: String,
        run: check::Run,
        detail: String,
    },
    #[error("interrupted")]
    Interrupted,
}

impl WatchError {
    /// Maps an I/O error on a `/proc/PID/...` file to the precise cause.
    pub(crate) fn from_proc(pid: u32, path: PathBuf, source: std::io::Error) -> Self {
        match source.kind() {
            std::io::ErrorKind::NotFound => WatchError::ProcessGone { pid },
            std::io::ErrorKind::PermissionDenied => WatchError::PermissionDenied { path },
            // ESRCH: the task exited between open and read.
            _ if source.raw_os_error() == Some(3) => WatchError::ProcessGone { pid },
            _ => WatchError::Io { path, source },
        }
    }
}
