//! Job control for a command leaksift launches on its terminal, done as a shell does it for a job:
//! the command's process group becomes the terminal's foreground group, its stops are mirrored on
//! leaksift's own job (so the user's shell takes the terminal back and reports the job stopped),
//! `fg`/`bg` continue it, and the terminal returns to leaksift's group when the command ends.
//!
//! Used by `watch -- CMD` ([`crate::child::Launched`]) and `record -- CMD`. The command always
//! leads a process group of its own. Only while leaksift's group is the foreground group of its
//! controlling terminal does anything here run (not in pipes' far ends without a terminal, CI,
//! background jobs). The terminal is handed over when it is leaksift's standard input and standard
//! output is not a pipe: a pipeline's other members (a pager reading the keyboard) share
//! leaksift's group and would be stopped by SIGTTIN. Without the hand-over the command runs in
//! the background of leaksift's job, and a Ctrl-Z that stops the job is passed on to it.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rustix::fs::FileType;
use rustix::process::{
    Pid, Signal, WaitId, WaitIdOptions, getpgid, getpgrp, getppid, getsid, kill_process_group,
    waitid,
};
use rustix::termios::{tcgetpgrp, tcsetpgrp};
use signal_hook::consts::{SIGCONT, SIGTSTP};

/// How often a command's state is looked at while leaksift only waits for it.
const POLL: Duration = Duration::from_millis(50);

/// Set on SIGCONT: leaksift was continued (`fg`, `bg`, `kill -CONT`).
static CONTINUED: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| flag_for(SIGCONT));

/// Set on SIGTSTP (caught only without the hand-over): leaksift's job was stopped.
static STOP_REQUESTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| flag_for(SIGTSTP));

/// Whether a launched command's group holds the terminal (for signal handlers: a signal the
/// terminal sent, a hangup, then reached the command directly).
static COMMAND_HAS_TERMINAL: AtomicBool = AtomicBool::new(false);

/// True while a command leaksift launched is the terminal's foreground group. Async-signal-safe.
pub fn command_has_terminal() -> bool {
    COMMAND_HAS_TERMINAL.load(Ordering::Acquire)
}

/// Leaksift's controlling terminal while leaksift's group is its foreground group.
#[derive(Debug)]
pub struct Terminal {
    /// Leaksift's own process group, the job the user's shell knows.
    leaksift_group: Pid,
    /// The command gets the terminal (it is standard input, standard output is not a pipe).
    hand_over: bool,
}

impl Terminal {
    /// The terminal, when leaksift's group is in its foreground: see the module documentation.
    pub fn foreground() -> Option<Terminal> {
        let leaksift_group = getpgrp();
        // ENOTTY when the descriptor is not a terminal or not leaksift's controlling one.
        let in_foreground = |fd: BorrowedFd<'_>| tcgetpgrp(fd).is_ok_and(|g| g == leaksift_group);
        let stdout_is_pipe = rustix::fs::fstat(std::io::stdout().as_fd())
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Fifo);
        if in_foreground(stdin()) {
            return Some(Terminal {
                leaksift_group,
                hand_over: !stdout_is_pipe,
            });
        }
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        (in_foreground(stdout.as_fd()) || in_foreground(stderr.as_fd())).then_some(Terminal {
            leaksift_group,
            hand_over: false,
        })
    }

    /// Makes `command` lead a new process group, which takes the terminal before it execs when
    /// it is handed over. The child does that itself, so the command never runs a moment in the
    /// background: `spawn` returns only once it has exec'd.
    pub fn hand_to(&self, command: &mut Command) {
        command.process_group(0);
        // Caught from now on, before the command starts: a Ctrl-Z or `fg` meanwhile is kept
        // for the first [`Job::poll`].
        LazyLock::force(&CONTINUED);
        if !self.hand_over {
            LazyLock::force(&STOP_REQUESTED);
            return;
        }
        // SAFETY: the closure runs in the child between fork and exec and only makes
        // async-signal-safe calls (setpgid, getpid, the signal mask, the tcsetpgrp ioctl).
        unsafe {
            command.pre_exec(|| {
                libc::setpgid(0, 0);
                with_sigttou_blocked(|| libc::tcsetpgrp(0, libc::getpid()));
                Ok(())
            });
        }
        COMMAND_HAS_TERMINAL.store(true, Ordering::Release);
    }

    /// After a failed spawn: the child may have taken the terminal before its exec failed.
    pub fn take_back_from_failed_spawn(&self) {
        self.take_back_from(None);
    }

    /// Gives the terminal back to leaksift's group if `command_group` (any group but ours when
    /// `None`) has it.
    fn take_back_from(&self, command_group: Option<Pid>) {
        if !self.hand_over {
            return;
        }
        COMMAND_HAS_TERMINAL.store(false, Ordering::Release);
        // An error: the terminal hung up, there is nothing left to give back.
        let Ok(foreground) = tcgetpgrp(stdin()) else {
            return;
        };
        if foreground != self.leaksift_group && command_group.is_none_or(|g| g == foreground) {
            set_foreground(self.leaksift_group);
        }
    }
}

/// A launched command on leaksift's terminal: follows its stops (or, without the hand-over,
/// leaksift's) and leaksift's continuation, as a shell follows a job.
#[derive(Debug)]
pub struct Job {
    terminal: Terminal,
    /// The command: its pid, which is also its process group.
    leader: Pid,
    /// The command stopped and leaksift has not continued it since.
    stopped: bool,
    /// Leaksift is ending the command: its stops are no longer passed on.
    ending: bool,
}

impl Job {
    /// Follows `leader`, started with [`Terminal::hand_to`].
    pub fn new(terminal: Terminal, leader: u32) -> Option<Job> {
        let leader = Pid::from_raw(i32::try_from(leader).ok()?)?;
        Some(Job {
            terminal,
            leader,
            stopped: false,
            ending: false,
        })
    }

    /// Call often (every 50 ms or so) while the command runs. When the command holding the
    /// terminal has stopped (Ctrl-Z, SIGTTIN, SIGSTOP), leaksift takes the terminal back and
    /// stops its own job with the same signal: the shell then reports the job stopped and gets
    /// the terminal. Without the hand-over, a Ctrl-Z reaches leaksift's job: the command is
    /// stopped with it. When leaksift is continued, the command is continued once, with the
    /// terminal if it holds it and leaksift is in the foreground (`fg`), without it otherwise.
    pub fn poll(&mut self) {
        if self.ending {
            return;
        }
        if self.terminal.hand_over {
            self.pass_on_command_stop();
        } else {
            self.pass_on_job_stop();
        }
        if CONTINUED.swap(false, Ordering::AcqRel) && self.stopped {
            self.stopped = false;
            if self.terminal.hand_over
                && tcgetpgrp(stdin()).is_ok_and(|g| g == self.terminal.leaksift_group)
            {
                set_foreground(self.leader);
                COMMAND_HAS_TERMINAL.store(true, Ordering::Release);
            }
            let _ = kill_process_group(self.leader, Signal::CONT);
        }
    }

    /// The command holding the terminal stopped: leaksift's job stops with the same signal.
    fn pass_on_command_stop(&mut self) {
        let options = WaitIdOptions::STOPPED | WaitIdOptions::NOHANG;
        let stop = waitid(WaitId::Pid(self.leader), options)
            .ok()
            .flatten()
            .and_then(|status| status.stopping_signal())
            .and_then(stop_signal);
        if let Some(signal) = stop {
            self.stopped = true;
            self.terminal.take_back_from(Some(self.leader));
            CONTINUED.store(false, Ordering::Release);
            // ESRCH cannot happen (we are in the group); in an orphaned group the kernel
            // discards the stop and the command stays stopped until leaksift is continued.
            let _ = kill_process_group(self.terminal.leaksift_group, signal);
        }
    }

    /// Leaksift's job got SIGTSTP (Ctrl-Z): the command, in a group of its own, is stopped too,
    /// then leaksift stops as the default action would have. In an orphaned process group the
    /// kernel discards such a stop, so nothing is stopped there either.
    fn pass_on_job_stop(&mut self) {
        if !STOP_REQUESTED.swap(false, Ordering::AcqRel) || !group_can_stop() {
            return;
        }
        let _ = kill_process_group(self.leader, Signal::TSTP);
        self.stopped = true;
        CONTINUED.store(false, Ordering::Release);
        // SAFETY: sigaction with a zeroed (SIG_DFL) action and the saved one; raise sends
        // SIGTSTP to this thread, delivered with the default action (leaksift stops here) before
        // raise returns, then the handler is put back.
        unsafe {
            let default: libc::sigaction = std::mem::zeroed();
            let mut caught: libc::sigaction = std::mem::zeroed();
            libc::sigaction(SIGTSTP, &default, &mut caught);
            libc::raise(SIGTSTP);
            libc::sigaction(SIGTSTP, &caught, std::ptr::null_mut());
        }
    }

    /// Leaksift is ending the command: from now on its stops are not passed on to leaksift's
    /// job (it keeps the terminal until [`Job::finish`]).
    pub fn end(&mut self) {
        self.ending = true;
    }

    /// The command ended (or is being stopped): the terminal goes back to leaksift's group, so
    /// the terminal's foreground group never names a dead group.
    pub fn finish(&mut self) {
        self.terminal.take_back_from(Some(self.leader));
    }

    /// Waits for `child` (the job's leader) to exit, following its stops meanwhile; then takes
    /// the terminal back.
    pub fn wait(&mut self, child: &mut Child) -> std::io::Result<ExitStatus> {
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            self.poll();
            std::thread::sleep(POLL);
        };
        self.finish();
        Ok(status)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Prints `text` as a line on stderr, also while a command holds the terminal: on a terminal with
/// `stty tostop`, a write from the background would stop leaksift (SIGTTOU, blocked for it).
pub fn eprintln_from_background(text: &str) {
    // A message that cannot be written (stderr a closed pipe) is dropped: `eprintln!` would panic.
    with_sigttou_blocked(|| {
        let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("{text}\n"));
    });
}

/// Whether `signal` is ignored in this process (as `nohup`, `trap ''` or a shell's background
/// job leave SIGHUP, SIGINT and SIGQUIT). Such a signal gets no handler of leaksift's: a handler
/// would end the ignoring, and exec would start the command with the default action, so
/// `nohup leaksift record -- server` would die at the hangup that plain `nohup server` survives.
pub fn ignored(signal: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current disposition.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// The terminal is leaksift's standard input.
fn stdin() -> BorrowedFd<'static> {
    rustix::stdio::stdin()
}

/// The stop signals a shell reports for a job, as [`Signal`]s.
fn stop_signal(number: i32) -> Option<Signal> {
    [Signal::TSTP, Signal::TTIN, Signal::TTOU, Signal::STOP]
        .into_iter()
        .find(|s| s.as_raw() == number)
}

/// Makes `group` the terminal's foreground group. Leaksift may be in the background when it does
/// (the command has the terminal): SIGTTOU is blocked for the call, as the kernel then allows it.
fn set_foreground(group: Pid) {
    with_sigttou_blocked(|| {
        // EPERM or ENOTTY (the terminal hung up): there is nothing left to restore.
        let _ = tcsetpgrp(stdin(), group);
    });
}

/// Runs `f` with SIGTTOU blocked in the calling thread, then restores the previous mask.
fn with_sigttou_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigset_t is plain data initialised by sigemptyset; pthread_sigmask only changes
    // the calling thread's mask and is async-signal-safe (also used between fork and exec).
    unsafe {
        let mut blocked: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut blocked);
        libc::sigaddset(&mut blocked, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, &mut previous);
        let result = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        result
    }
}

/// Whether a stop signal to leaksift's group would stop it: the group is not orphaned, which
/// leaksift's parent (the shell) being in another group of the same session ensures.
fn group_can_stop() -> bool {
    let Some(parent) = getppid() else {
        return false;
    };
    let same_session = getsid(Some(parent)).ok() == getsid(None).ok();
    same_session && getpgid(Some(parent)).is_ok_and(|g| g != getpgrp())
}

/// A flag set when leaksift receives `signal` (SIGCONT still continues the process; exec resets
/// the handler in commands started later). Without the handler, only job control is lost.
fn flag_for(signal: libc::c_int) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
    flag
}
