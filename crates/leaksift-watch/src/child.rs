//! A launched command in its own process group, so it and everything it starts can be stopped
//! together (SIGTERM, then SIGKILL after a grace period), also when leaksift is interrupted. On
//! leaksift's terminal the group is also the terminal's foreground job ([`crate::job`]).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{
    Signal, WaitOptions, getpid, kill_process, kill_process_group, set_child_subreaper, waitpid,
};

use crate::job::{Job, Terminal};
use crate::{Pid, WatchError, procfs};

/// Where a launched command's standard input and output go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streams {
    /// Shares leaksift's stdin and stdout (`watch -- CMD`: the command reads and writes as
    /// without leaksift, and gets the terminal when leaksift has it).
    Inherit,
    /// Shares leaksift's stdin (and terminal, as `Inherit`); stdout goes to leaksift's stderr
    /// (keeps leaksift's own stdout, e.g. JSON, clean).
    StdoutToStderr,
    /// No stdin (/dev/null); stdout goes to leaksift's stderr (a server under `check`).
    Detached,
}

/// A running command that leads its own process group. Dropping it stops the group.
#[derive(Debug)]
pub struct Launched {
    child: Child,
    command: String,
    status: Option<ExitStatus>,
    /// Job control, when the command was given leaksift's terminal.
    job: Option<Job>,
}

impl Launched {
    /// Starts `argv` (no shell) as the leader of a new process group, the terminal's foreground
    /// group when it shares leaksift's terminal (see [`crate::job`]).
    pub fn spawn(argv: &[OsString], streams: Streams) -> Result<Self, WatchError> {
        let command = display_command(argv);
        let (program, args) = argv.split_first().ok_or_else(|| WatchError::Spawn {
            command: command.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
        })?;
        let mut cmd = Command::new(program);
        cmd.args(args).process_group(0);
        end_with_parent(&mut cmd);
        if streams == Streams::Detached {
            cmd.stdin(Stdio::null());
        }
        if streams != Streams::Inherit {
            use std::os::fd::AsFd;
            let stderr = std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| WatchError::Spawn {
                    command: command.clone(),
                    source,
                })?;
            cmd.stdout(Stdio::from(stderr));
        }
        let terminal = (streams != Streams::Detached)
            .then(Terminal::foreground)
            .flatten();
        if let Some(terminal) = &terminal {
            terminal.hand_to(&mut cmd);
        }
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(source) => {
                if let Some(terminal) = &terminal {
                    terminal.take_back_from_failed_spawn();
                }
                return Err(WatchError::Spawn { command, source });
            }
        };
        let job = terminal.and_then(|t| Job::new(t, child.id()));
        Ok(Launched {
            child,
            command,
            status: None,
            job,
        })
    }

    pub fn pid(&self) -> Pid {
        Pid(self.child.id())
    }

    /// The command line as the user would type it (for messages).
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The exit status once the command has exited (reaps it). Until then, follows the
    /// command's stops on the terminal ([`Job::poll`]): call it every 50 ms or so.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
            match (&self.status, self.job.as_mut()) {
                (Some(_), Some(job)) => job.finish(),
                (None, Some(job)) => job.poll(),
                _ => {}
            }
        }
        self.status
    }

    /// Waits up to `timeout` for the command to exit.
    pub fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The exit status once the command has ended: its leader exited, and when it exited with 0,
    /// no orphan it left behind runs on (a server that forks into the background and whose parent
    /// exits at once is still running). Orphans are seen only after [`adopt_orphans`].
    pub fn ended(&mut self) -> Option<ExitStatus> {
        let status = self.try_wait()?;
        (!status.success() || self.reap_orphans().is_empty()).then_some(status)
    }

    /// Stops the whole process group and the orphans it left: SIGTERM, then SIGKILL after
    /// `grace`. Returns the leader's exit status.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.signal_all(Signal::TERM);
        if let Some(job) = self.job.as_mut() {
            // A command stopped on the terminal would hold SIGTERM pending until SIGKILL. It
            // keeps the terminal until it has exited (restoring terminal modes at exit needs it).
            job.end();
            self.signal_group(Signal::CONT);
        }
        let deadline = Instant::now() + grace;
        while (self.try_wait().is_none() || !self.reap_orphans().is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Processes that ignored SIGTERM, the leader's or the orphans', get killed.
        self.signal_all(Signal::KILL);
        if self.status.is_none() {
            self.status = self.child.wait().ok();
        }
        for orphan in self.reap_orphans().into_iter().filter_map(raw_pid) {
            let _ = waitpid(Some(orphan), WaitOptions::empty());
        }
        if let Some(job) = self.job.as_mut() {
            job.finish();
        }
        self.status
    }

    /// Sends `signal` to the leader's process group and to every process of the orphans' trees
    /// (a daemon that called setsid() left the group).
    fn signal_all(&mut self, signal: Signal) {
        self.signal_group(signal);
        for orphan in self.reap_orphans() {
            for pid in procfs::descendants(orphan) {
                if let Some(pid) = raw_pid(pid) {
                    // ESRCH (it exited meanwhile) is expected.
                    let _ = kill_process(pid, signal);
                }
            }
        }
    }

    /// The orphans adopted by leaksift (see [`adopt_orphans`]) that still run; those that exited
    /// are reaped. Only children other than the leader are touched: leaksift runs its other
    /// children (scenario, readiness command) to completion before it looks.
    fn reap_orphans(&self) -> Vec<Pid> {
        // Without the subreaper role, every other child is one leaksift itself waits for.
        if !ADOPTING.load(Ordering::Relaxed) {
            return Vec::new();
        }
        procfs::children(Pid(std::process::id()))
            .into_iter()
            .filter(|&pid| pid != self.pid())
            .filter(|&pid| {
                // Some: it had exited and is reaped now; Err (ECHILD): not our child any more.
                raw_pid(pid)
                    .is_some_and(|raw| matches!(waitpid(Some(raw), WaitOptions::NOHANG), Ok(None)))
            })
            .collect()
    }

    fn signal_group(&self, signal: Signal) {
        if let Some(pgid) = raw_pid(self.pid()) {
            // ESRCH (the group is already empty) is the expected outcome, not an error.
            let _ = kill_process_group(pgid, signal);
        }
    }
}

fn raw_pid(pid: Pid) -> Option<rustix::process::Pid> {
    rustix::process::Pid::from_raw(i32::try_from(pid.0).ok()?)
}

/// Makes the command `cmd` starts receive SIGTERM when leaksift dies (`PR_SET_PDEATHSIG`): a
/// `kill -9` of leaksift (an out-of-memory kill, a CI runner's timeout) left the watched
/// command, the checked server or the traced program running, with nobody to stop it. A
/// normal end of leaksift stops them itself first. Call it on the thread that spawns and then
/// waits (the signal follows the parent *thread*): leaksift's commands run on the main thread.
pub fn end_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec and calls only prctl(2),
    // getppid(2) and raise(3), which are async-signal-safe; it allocates nothing and takes no
    // lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // leaksift died between fork and prctl: the signal would never come.
            if libc::getppid() as u32 != parent {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
}

/// Makes leaksift the reaper of the processes its launched commands orphan (PR_SET_CHILD_SUBREAPER):
/// a server that daemonizes (forks, lets its parent exit, maybe calls setsid()) is re-parented to
/// leaksift instead of init, so it is still measured ([`crate::Target::Tree`] with `orphans`) and
/// stopped at the end ([`Launched::stop`]). Call it before [`Launched::spawn`].
pub fn adopt_orphans() -> Result<(), WatchError> {
    set_child_subreaper(Some(getpid())).map_err(|errno| WatchError::Io {
        path: "prctl(PR_SET_CHILD_SUBREAPER)".into(),
        source: errno.into(),
    })?;
    ADOPTING.store(true, Ordering::Relaxed);
    Ok(())
}

/// Set once leaksift is the subreaper: only then are children other than a leader orphans.
static ADOPTING: AtomicBool = AtomicBool::new(false);

impl Drop for Launched {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// Exit code to pass on: the code, or 128 + signal number as shells report it.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(signal)) => (128 + signal).min(255) as u8,
        (None, None) => 1,
    }
}

/// Joins arguments with spaces, quoting those that need it, for messages only.
pub fn display_command(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| {
            let s = a.to_string_lossy();
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn passes_on_exit_codes() {
        let mut l = Launched::spawn(&argv(&["sh", "-c", "exit 7"]), Streams::Inherit).unwrap();
        let status = l.wait_for(Duration::from_secs(10)).unwrap();
        assert_eq!(exit_code(status), 7);
    }

    #[test]
    fn stops_the_whole_group() {
        // The shell starts a grandchild; stopping the group must end it too.
        let mut l = Launched::spawn(
            &argv(&["sh", "-c", "sleep 30 & echo $! ; wait"]),
            Streams::StdoutToStderr,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let kids = crate::procfs::descendants(l.pid());
        assert!(kids.len() >= 2, "{kids:?}");
        let status = l.stop(Duration::from_secs(2)).unwrap();
        assert_eq!(exit_code(status), 128 + 15);
        std::thread::sleep(Duration::from_millis(100));
        for kid in &kids[1..] {
            let state = std::fs::read_to_string(format!("/proc/{kid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for init to reap it.
            assert!(
                state.is_empty() || state.contains(") Z "),
                "{kid} still runs: {state}"
            );
        }
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = Launched::spawn(&argv(&["/nonexistent/prog"]), Streams::Inherit).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/prog"), "{err}");
    }

    #[test]
    fn quotes_for_display() {
        assert_eq!(
            display_command(&argv(&["echo", "a b", "it's"])),
            r"echo 'a b' 'it'\''s'"
        );
    }
}
