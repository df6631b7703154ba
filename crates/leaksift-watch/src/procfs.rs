//! Reading `/proc/PID/{status,smaps_rollup,task/*/children}`: kept-open descriptors re-read with
//! `pread`, and parsers of the `Key:  value kB` lines.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::{Pid, WatchError};

/// A `/proc` file opened once and re-read from offset 0 for every sample (the kernel regenerates
/// the content on each read; re-opening would double the syscalls).
///
/// A descriptor on a memory file (`smaps_rollup`) is bound to the address space the process had
/// when it was opened: after an `exec` (`env VAR=1 prog`, `bash -c 'prog'`, wrapper scripts) it
/// reads ESRCH although the process lives on. Such a read re-opens the file once, provided the
/// PID still belongs to the same process (same start time: not a reused PID).
#[derive(Debug)]
pub struct ProcFile {
    pid: Pid,
    path: PathBuf,
    file: File,
    start_time: Option<u64>,
    buf: Vec<u8>,
}

impl ProcFile {
    pub fn open(pid: Pid, name: &str) -> Result<Self, WatchError> {
        let path = PathBuf::from(format!("/proc/{pid}/{name}"));
        let start_time = start_time(pid);
        let file = File::open(&path).map_err(|e| WatchError::from_proc(pid.0, path.clone(), e))?;
        Ok(ProcFile {
            pid,
            path,
            file,
            start_time,
            buf: Vec::with_capacity(4096),
        })
    }

    /// The current content. An empty read means the process has exited (a zombie has no memory).
    pub fn read(&mut self) -> Result<&str, WatchError> {
        if let Err(error) = self.read_once() {
            if !matches!(error, WatchError::ProcessGone { .. }) || !self.reopen_after_exec() {
                return Err(error);
            }
            self.read_once()?;
        }
        std::str::from_utf8(&self.buf).map_err(|_| WatchError::Format {
            path: self.path.clone(),
            what: "not UTF-8".into(),
        })
    }

    /// Re-opens the file when the same process (not a reused PID) still exists; `false` when it
    /// is gone.
    fn reopen_after_exec(&mut self) -> bool {
        if self.start_time.is_none() || start_time(self.pid) != self.start_time {
            return false;
        }
        match File::open(&self.path) {
            Ok(file) => {
                self.file = file;
                true
            }
            Err(_) => false,
        }
    }

    /// Reads the whole file into `buf`; an empty file is [`WatchError::ProcessGone`].
    fn read_once(&mut self) -> Result<(), WatchError> {
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            let n = self
                .file
                .read_at(&mut chunk, self.buf.len() as u64)
                .map_err(|e| WatchError::from_proc(self.pid.0, self.path.clone(), e))?;
            if n == 0 {
                break;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        if self.buf.is_empty() {
            return Err(WatchError::ProcessGone { pid: self.pid.0 });
        }
        Ok(())
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }
}

/// The start time of a process (field 22 of `/proc/PID/stat`, clock ticks since boot): with the
/// PID, it names one process for good. `None` when the process is gone.
pub fn start_time(pid: Pid) -> Option<u64> {
    stat_field(pid, 22)
}

/// Whether `pid` is a kernel thread (PF_KTHREAD in the flags, field 9 of `/proc/PID/stat`): it
/// has no user memory to watch.
pub fn is_kernel_thread(pid: Pid) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    stat_field(pid, 9).is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// Numeric field `number` (1-based, as in proc(5)) of `/proc/PID/stat`, from field 3 on.
fn stat_field(pid: Pid, number: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name
        .split_whitespace()
        .nth(number.checked_sub(3)?)?
        .parse()
        .ok()
}

/// The memory fields of `/proc/PID/status`, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub rss: u64,
    pub anon: u64,
    pub file: u64,
    pub shmem: u64,
    pub swap: u64,
}

/// Parses `/proc/PID/status`; `None` when it has no `VmRSS` (a zombie or a kernel thread).
pub fn parse_status(text: &str) -> Option<Status> {
    let mut s = Status::default();
    let mut seen_rss = false;
    for (key, value) in kib_fields(text) {
        let slot = match key {
            "VmRSS" => {
                seen_rss = true;
                &mut s.rss
            }
            "RssAnon" => &mut s.anon,
            "RssFile" => &mut s.file,
            "RssShmem" => &mut s.shmem,
            "VmSwap" => &mut s.swap,
            _ => continue,
        };
        *slot = value()?;
    }
    seen_rss.then_some(s)
}

/// The `Key: value` lines of a /proc file, each value parsed on demand as `N kB` → bytes.
fn kib_fields(text: &str) -> impl Iterator<Item = (&str, impl Fn() -> Option<u64>)> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key, move || kib_value(value)))
}

/// The fields of `/proc/PID/smaps_rollup`, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rollup {
    pub rss: u64,
    pub pss: u64,
    pub pss_anon: u64,
    pub private: u64,
    pub anonymous: u64,
    pub lazy_free: u64,
    pub swap: u64,
    pub swap_pss: u64,
}

/// Parses `/proc/PID/smaps_rollup`; `None` when it has no `Pss` line (an exited process).
pub fn parse_rollup(text: &str) -> Option<Rollup> {
    let mut r = Rollup::default();
    let mut seen_pss = false;
    for (key, value) in kib_fields(text) {
        match key {
            "Rss" => r.rss = value()?,
            "Pss" => {
                r.pss = value()?;
                seen_pss = true;
            }
            "Pss_Anon" => r.pss_anon = value()?,
            "Private_Clean" | "Private_Dirty" => r.private += value()?,
            "Anonymous" => r.anonymous = value()?,
            "LazyFree" => r.lazy_free = value()?,
            "Swap" => r.swap = value()?,
            "SwapPss" => r.swap_pss = value()?,
            _ => {}
        }
    }
    seen_pss.then_some(r)
}

/// `"   1234 kB"` → 1234 × 1024.
fn kib_value(value: &str) -> Option<u64> {
    let number = value.trim().strip_suffix("kB").unwrap_or(value).trim();
    number.parse::<u64>().ok()?.checked_mul(1024)
}

/// The direct children of `pid`, from every thread's `task/TID/children` (a child is listed under
/// the thread that forked it). Missing files (exited threads) are skipped.
pub fn children(pid: Pid) -> Vec<Pid> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|s| s.parse().ok())
                    .map(Pid),
            );
        }
    }
    out
}

/// `root` and all its descendants, root first (iterative, so deep trees cannot overflow).
pub fn descendants(root: Pid) -> Vec<Pid> {
    let mut out = vec![root];
    let mut next = 0;
    while next < out.len() {
        let kids = children(out[next]);
        for kid in kids {
            if !out.contains(&kid) {
                out.push(kid);
            }
        }
        next += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tcat\nState:\tR (running)\nVmPeak:\t    8000 kB\nVmRSS:\t    1920 kB\nRssAnon:\t     128 kB\nRssFile:\t    1792 kB\nRssShmem:\t       0 kB\nVmSwap:\t       4 kB\nThreads:\t1\n";

    #[test]
    fn parses_status() {
        let s = parse_status(STATUS).unwrap();
        assert_eq!(s.rss, 1920 * 1024);
        assert_eq!(s.anon, 128 * 1024);
        assert_eq!(s.file, 1792 * 1024);
        assert_eq!(s.swap, 4 * 1024);
        assert_eq!(parse_status("Name:\tzombie\nState:\tZ (zombie)\n"), None);
        assert_eq!(parse_status("VmRSS:\t  x kB\n"), None);
    }

    #[test]
    fn parses_rollup() {
        let text = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:  2048 kB\nPss:  1024 kB\nPss_Anon:  512 kB\nPrivate_Clean:  100 kB\nPrivate_Dirty:  400 kB\nAnonymous:  600 kB\nLazyFree:  100 kB\nSwapPss:  8 kB\n";
        let r = parse_rollup(text).unwrap();
        assert_eq!(r.pss, 1024 * 1024);
        assert_eq!(r.private, 500 * 1024);
        assert_eq!(r.anonymous - r.lazy_free, 500 * 1024);
        assert_eq!(parse_rollup(""), None);
    }

    #[test]
    fn reads_our_own_status_repeatedly() {
        let me = Pid(std::process::id());
        let mut f = ProcFile::open(me, "status").unwrap();
        let a = parse_status(f.read().unwrap()).unwrap();
        let b = parse_status(f.read().unwrap()).unwrap();
        assert!(a.rss > 0 && b.rss > 0);
        let mut r = ProcFile::open(me, "smaps_rollup").unwrap();
        assert!(parse_rollup(r.read().unwrap()).unwrap().pss > 0);
    }

    #[test]
    fn finds_a_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let tree = descendants(Pid(std::process::id()));
        assert!(tree.contains(&Pid(child.id())), "{tree:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn tells_kernel_threads_and_start_times() {
        let me = Pid(std::process::id());
        assert!(!is_kernel_thread(me));
        assert!(start_time(me).is_some());
        assert_eq!(start_time(Pid(99_999_999)), None);
        // kthreadd is PID 2 in the initial PID namespace (in another one, PID 2 is whatever runs).
        if std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd") {
            assert!(is_kernel_thread(Pid(2)));
        }
    }

    #[test]
    fn missing_process_is_gone() {
        // PID numbers above pid_max (at most 2^22) never exist.
        let err = ProcFile::open(Pid(99_999_999), "status").unwrap_err();
        assert!(matches!(err, WatchError::ProcessGone { pid: 99_999_999 }));
    }
}
