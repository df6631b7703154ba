//! `leaksift record`: runs a command with the LD_PRELOAD allocation tracer and reports where the
//! trace went; exits with the command's exit status (128 + signal when it was killed).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use leaksift_native::untraced::ManagedRuntime;
use leaksift_watch::job::{self, Job, Terminal};

use crate::outcome::Outcome;

/// File name of the tracer library, looked up next to the `leaksift` executable.
const PRELOAD_NAME: &str = "libleaksift_preload.so";

#[derive(Debug, clap::Args)]
#[command(
    after_help = "While the command runs, create the file OUTPUT.scan (e.g. `touch`) or send \
the --scan-signal to request a leak scan of the live process; `leaksift report OUTPUT` shows it.\n\
If the command execs another program (a wrapper script's `exec prog`), that program's trace takes \
OUTPUT over and the earlier image's moves to OUTPUT.<pid>. A shell that forks its command \
(`sh -c 'a; b'`) needs --follow-fork. On a terminal the command is the foreground job: it reads \
the terminal, Ctrl-C and Ctrl-Z reach it as without leaksift. SIGINT, SIGQUIT, SIGTERM, SIGHUP, \
SIGUSR1 and SIGUSR2 sent to leaksift or its process group are passed on to the command, once. \
The exit status is the command's (128 + signal if killed); \
a killed command leaves its trace up to the last 100 ms flush, marked truncated."
)]
pub struct Args {
    /// Trace file to write (default: leaksift.<program>.lks in the current directory, the
    /// program's name cut to fit the file name limit; replaced). Its file name must leave room
    /// for OUTPUT.scan (at most 250 bytes on most file systems).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also trace mmap/munmap (as allocations of kind mmap; the leak scan treats them as roots).
    #[arg(long)]
    pub mmap: bool,
    /// Trace forked children and other programs the command starts, each to OUTPUT.<pid>.
    /// Without it, children are untraced. Children made without glibc's fork (`_Fork`,
    /// `syscall(SYS_fork)`, a raw `clone`) are never traced.
    #[arg(long)]
    pub follow_fork: bool,
    /// Signal (name like USR2 or number) that requests a leak scan while the command runs.
    /// No handler is installed unless given.
    #[arg(long, value_name = "SIGNAL", value_parser = parse_signal)]
    pub scan_signal: Option<i32>,
    /// The command to trace and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

fn parse_signal(text: &str) -> Result<i32, String> {
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(format!("signal {n} out of range"))
        };
    }
    let name = text.trim_start_matches("SIG").to_ascii_uppercase();
    let number = match name.as_str() {
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "HUP" => libc::SIGHUP,
        "WINCH" => libc::SIGWINCH,
        "PWR" => libc::SIGPWR,
        _ => {
            return Err(format!(
                "unsupported signal {text:?} (use USR1, USR2, HUP, WINCH, PWR or a number)"
            ));
        }
    };
    Ok(number)
}

/// The tracer library: `$LEAKSIFT_PRELOAD`, or next to this executable (or its parent directory,
/// for test binaries in `target/*/deps`).
fn find_preload() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("LEAKSIFT_PRELOAD") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("LEAKSIFT_PRELOAD={} is not a file", path.display());
        }
        return Ok(std::fs::canonicalize(&path).unwrap_or(path));
    }
    let exe = std::env::current_exe().context("cannot locate the leaksift executable")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    [dir.join(PRELOAD_NAME), dir.join("..").join(PRELOAD_NAME)]
        .into_iter()
        .find(|p| p.is_file())
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .with_context(|| {
            format!(
                "cannot find {PRELOAD_NAME} next to {}: build it with `cargo build -p leaksift-preload` \
                 or set LEAKSIFT_PRELOAD",
                exe.display()
            )
        })
}

/// The control file's suffix: touching `OUTPUT.scan` requests a leak scan.
const SCAN_SUFFIX: &str = ".scan";
/// Bytes the longest companion of a trace adds to its file name: `.<pid>.<n>` for the trace of
/// an image before an exec or of a process started under `--follow-fork` (a pid of up to 7
/// digits, Linux's largest `pid_max` being 4194304, and `n` up to 99); [`SCAN_SUFFIX`] is
/// shorter.
const COMPANION_SUFFIX_MAX: usize = ".4194304.99".len();

/// The longest file name the file system holding `dir` takes (`NAME_MAX`: 255 bytes on Linux's
/// file systems, assumed when it cannot be asked).
fn name_max(dir: &Path) -> usize {
    rustix::fs::statvfs(dir)
        .ok()
        .and_then(|fs| usize::try_from(fs.f_namemax).ok())
        .filter(|&n| n > 0)
        .unwrap_or(255)
}

/// `leaksift.<program>.lks` in the current directory, the program's name cut (at a character
/// boundary) so that the name and its companions ([`COMPANION_SUFFIX_MAX`]) fit the file
/// system's name limit: a legal program name of up to 255 bytes made the control file's name,
/// or the trace's own, too long.
fn default_output(command: &OsString) -> PathBuf {
    let program = Path::new(command)
        .file_name()
        .map_or_else(|| "program".into(), |n| n.to_string_lossy().into_owned());
    let room = name_max(Path::new("."))
        .saturating_sub("leaksift.".len() + ".lks".len() + COMPANION_SUFFIX_MAX);
    let mut end = program.len().min(room);
    while !program.is_char_boundary(end) {
        end -= 1;
    }
    PathBuf::from(format!("leaksift.{}.lks", &program[..end]))
}

/// Refuses an output whose control file (`OUTPUT.scan`) could not exist, before anything runs,
/// and warns when the traces of other images or processes (`OUTPUT.<pid>[.<n>]`) might not.
fn check_name_length(output: &Path) -> anyhow::Result<()> {
    let Some(name) = output.file_name() else {
        return Ok(());
    };
    let length = name.len();
    let max = name_max(output.parent().unwrap_or(Path::new(".")));
    if length + SCAN_SUFFIX.len() > max {
        bail!(
            "-o {}: its file name is {length} bytes long, so the control file beside it, \
             OUTPUT{SCAN_SUFFIX} (touched to request a leak scan), would exceed the file \
             system's {max}-byte limit on file names: use a file name of at most {} bytes",
            shown(output),
            max.saturating_sub(SCAN_SUFFIX.len())
        );
    }
    if length + COMPANION_SUFFIX_MAX > max {
        leaksift_report::stderr_line!(
            "leaksift: note: the file name of {} ({length} bytes) leaves no room, within the \
             file system's {max}-byte limit, for OUTPUT.<pid>[.<n>]: if the command execs \
             another program, or starts one under --follow-fork, that one goes untraced (a \
             name of at most {} bytes avoids it)",
            shown(output),
            max.saturating_sub(COMPANION_SUFFIX_MAX)
        );
    }
    Ok(())
}

/// Absolute form of `path` (relative to the current directory), so a command that changes
/// directory still writes where the user asked.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(path))
}

/// A line for a CPython command run without `PYTHONMALLOC`: its small objects would come from
/// pymalloc's arenas, which the hooks do not see (the report says so too, after the fact).
fn python_hint(program: &OsString) -> &'static str {
    let python =
        ManagedRuntime::of_module(&program.to_string_lossy()) == Some(ManagedRuntime::Python);
    if python && std::env::var_os("PYTHONMALLOC").is_none() {
        "\nleaksift: note: CPython serves objects of up to 512 bytes from its own arenas, unseen \
         by the tracer: set PYTHONMALLOC=malloc to trace them one by one"
    } else {
        ""
    }
}

/// Why the dynamic loader will not preload the tracer into `program` (resolved through `PATH`
/// as `execvp` does), if it can tell before the run: a statically linked ELF has no loader at
/// all, and the loader ignores `LD_PRELOAD` for a program that is setuid or setgid to someone
/// else (secure-execution mode). Scripts and programs it cannot read are left to the run
/// itself (the check after it still catches them).
fn cannot_be_preloaded(program: &OsString) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let path = resolve_in_path(program)?;
    let metadata = std::fs::metadata(&path).ok()?;
    // SAFETY: getters of the process's credentials, no arguments.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mode = metadata.mode();
    if (mode & 0o4000 != 0 && metadata.uid() != euid)
        || (mode & 0o2000 != 0 && metadata.gid() != egid)
    {
        return Some(format!(
            "{} is setuid or setgid: the dynamic loader ignores LD_PRELOAD for it, so it cannot be traced",
            shown(&path)
        ));
    }
    let mut header = [0u8; 64];
    let mut file = std::fs::File::open(&path).ok()?;
    std::io::Read::read_exact(&mut file, &mut header).ok()?;
    if let Some(architecture) = foreign_architecture(&header) {
        return Some(format!(
            "{} is built for {architecture}: the tracer is an x86-64 library, which its \
             dynamic loader would refuse to preload, so it cannot be traced",
            shown(&path)
        ));
    }
    if program_interpreter(&header, &mut file)?.is_none() && !is_the_dynamic_loader(&path) {
        return Some(format!(
            "{} is statically linked: no dynamic loader runs in it to preload the tracer, so it cannot be traced",
            shown(&path)
        ));
    }
    None
}

/// Whether `program` links gcc's AddressSanitizer runtime (`libasan.so`, whose name is in the
/// dynamic string table near the start of the file: the first 16 MiB are searched). That
/// runtime replaces malloc and aborts when a preloaded library comes before it. (Checked with
/// gcc 12: `-fsanitize=leak` and `-fsanitize=thread` builds are traced normally.) Only asked
/// after a run that started no tracer, so reading the file costs nothing otherwise.
fn links_address_sanitizer(program: &OsString) -> bool {
    use std::io::Read;
    const RUNTIME: &[u8] = b"libasan.so";
    let mut head = Vec::new();
    let read = resolve_in_path(program)
        .and_then(|path| std::fs::File::open(path).ok())
        .is_some_and(|file| file.take(16 << 20).read_to_end(&mut head).is_ok());
    read && head.windows(RUNTIME.len()).any(|window| window == RUNTIME)
}

/// Whether the file system holding `file` has less than 64 KiB left for unprivileged writers:
/// the likely reason a trace stopped short of its program's exit (the tracer stops at the first
/// failed write; its last chunks are what would not fit).
fn file_system_is_full(file: &Path) -> bool {
    rustix::fs::statvfs(file).is_ok_and(|fs| fs.f_bavail.saturating_mul(fs.f_frsize) < 64 << 10)
}

/// `program` as `execvp` finds it: a name with a `/` as it is, else the first executable file of
/// that name in `PATH`.
fn resolve_in_path(program: &OsString) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let name = Path::new(program);
    if program.to_string_lossy().contains('/') {
        return Some(name.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What an ELF file (`header`: its first 64 bytes) is built for when that is not x86-64 (the
/// tracer's own architecture), as a name for the user: its loader would refuse the tracer
/// ("wrong ELF class: ELFCLASS64") and run it untraced. `None` for x86-64 and for files that are
/// not ELF.
fn foreign_architecture(header: &[u8; 64]) -> Option<String> {
    const EM_386: u16 = 3;
    const EM_ARM: u16 = 40;
    const EM_X86_64: u16 = 62;
    const EM_AARCH64: u16 = 183;
    const EM_RISCV: u16 = 243;
    if &header[..4] != b"\x7fELF" {
        return None;
    }
    let bits = match header[4] {
        1 => 32,
        2 => 64,
        _ => return Some("an unknown ELF class".to_string()),
    };
    let machine = match header[5] {
        1 => u16::from_le_bytes([header[0x12], header[0x13]]),
        _ => u16::from_be_bytes([header[0x12], header[0x13]]),
    };
    let name = match (machine, bits) {
        (EM_X86_64, 64) => return None,
        (EM_X86_64, _) => "x32".to_string(),
        (EM_386, _) => "32-bit x86".to_string(),
        (EM_ARM, _) => "32-bit ARM".to_string(),
        (EM_AARCH64, _) => "64-bit ARM (aarch64)".to_string(),
        (EM_RISCV, _) => format!("{bits}-bit RISC-V"),
        (other, _) => format!("{bits}-bit (ELF machine {other})"),
    };
    Some(name)
}

/// The `PT_INTERP` path of the 64-bit little-endian ELF file whose first 64 bytes are
/// `header`: `Some(None)` for an ELF without one (statically linked), `None` when the file is
/// not such an ELF or cannot be read.
fn program_interpreter(header: &[u8; 64], file: &mut std::fs::File) -> Option<Option<Vec<u8>>> {
    use std::io::{Read, Seek, SeekFrom};
    const PT_INTERP: u32 = 3;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let phoff = u64::from_le_bytes(header[0x20..0x28].try_into().ok()?);
    let (entry_size, count) = (usize::from(u16_at(0x36)), usize::from(u16_at(0x38)));
    if entry_size < 0x28 || count == 0 {
        return Some(None);
    }
    let mut table = vec![0u8; entry_size.checked_mul(count)?];
    file.seek(SeekFrom::Start(phoff)).ok()?;
    file.read_exact(&mut table).ok()?;
    let Some(entry) = table
        .chunks_exact(entry_size)
        .find(|entry| u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]) == PT_INTERP)
    else {
        return Some(None);
    };
    let u64_at = |at: usize| u64::from_le_bytes(entry[at..at + 8].try_into().unwrap_or_default());
    // p_offset and p_filesz; a path longer than PATH_MAX is no path.
    let (offset, size) = (u64_at(8), u64_at(0x20).min(4096));
    let mut path = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(&mut path).ok()?;
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    path.truncate(end);
    Some(Some(path))
}

/// Whether `path` is the dynamic loader this system's programs name (the one leaksift itself
/// runs under): it has no interpreter of its own, but run as a command
/// (`/lib64/ld-linux-x86-64.so.2 ./prog`) it loads the program and preloads `LD_PRELOAD` into
/// it like any other.
fn is_the_dynamic_loader(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let own_loader = || -> Option<PathBuf> {
        let mut header = [0u8; 64];
        let mut own = std::fs::File::open("/proc/self/exe").ok()?;
        std::io::Read::read_exact(&mut own, &mut header).ok()?;
        let interpreter = program_interpreter(&header, &mut own)??;
        std::fs::canonicalize(OsStr::from_bytes(&interpreter)).ok()
    };
    let loader = own_loader();
    loader.is_some() && std::fs::canonicalize(path).ok() == loader
}

/// The traces beside `output`: `NAME.<pid>` or `NAME.<pid>.<n>`, told by the bytes of their
/// names (decoded lossily, `trace\xfe.lks.12` passed for a companion of `trace\xff.lks`).
fn sibling_traces(output: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (output.parent(), output.file_name()) else {
        return Vec::new();
    };
    // In numeric order: a process's images in the order they ran.
    let order = |file_name: &OsStr| -> Option<(u64, u64)> {
        let suffix = file_name
            .as_bytes()
            .strip_prefix(name.as_bytes())?
            .strip_prefix(b".")?;
        let mut parts = std::str::from_utf8(suffix).ok()?.split('.');
        let number = |part: &str| {
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u64>().ok())
                .flatten()
        };
        let pid = number(parts.next()?)?;
        let n = parts.next().map_or(Some(0), |n| number(n).map(|n| n + 1))?;
        Some((pid, n))
    };
    let mut found: Vec<((u64, u64), PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| Some((order(&entry.file_name())?, entry.path())))
        .collect();
    found.sort();
    found.into_iter().map(|(_, path)| path).collect()
}

/// One line about a trace beside the main one: an image the traced process ran before it
/// exec'd the next (the same pid: a wrapper script or `env`), or a process it started
/// (`--follow-fork`), with that image's command line from the trace header.
fn describe_sibling(path: &Path, traced_pid: u32) -> String {
    let header = std::fs::File::open(path)
        .ok()
        .and_then(|file| leaksift_trace::TraceReader::new(std::io::BufReader::new(file)).ok())
        .map(|reader| reader.header().clone());
    match header {
        Some(header) if header.pid == traced_pid => format!(
            "before an exec, pid {} ran `{}`: its trace is {}",
            header.pid,
            leaksift_report::escape::shell_words(&header.command),
            shown(path)
        ),
        Some(header) => format!(
            "process {} (`{}`), started by the traced one, wrote {}",
            header.pid,
            leaksift_report::escape::shell_words(&header.command),
            shown(path)
        ),
        None => format!("another traced process wrote {}", shown(path)),
    }
}

/// Standard descriptors (0–2) that were closed when leaksift started: Rust's runtime opens
/// `/dev/null` read-write in their place before `main`, so the command would find them open
/// (its writes to a closed stdout would succeed, its first `open` would not return 0–2). A
/// redirection to `/dev/null` by a shell is read-only or write-only, never read-write.
fn standard_descriptors_closed_at_start() -> Vec<i32> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let dev_null = std::fs::metadata("/dev/null").ok();
    (0..3)
        .filter(|&fd| {
            // SAFETY: F_GETFL on a descriptor number only reads its flags.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            if flags < 0 || flags & libc::O_ACCMODE != libc::O_RDWR {
                return false;
            }
            let path = format!("/proc/self/fd/{fd}");
            let target = std::fs::metadata(path).ok();
            matches!((&target, &dev_null), (Some(t), Some(n)) if t.file_type().is_char_device() && t.rdev() == n.rdev())
        })
        .collect()
}

/// Signals passed on to the command when they reach `leaksift`. The command leads a process
/// group of its own, so a signal sent to leaksift's group (`kill -- -PGID`, `timeout`, Ctrl-C when
/// the command does not hold the terminal) reaches only leaksift, and one sent to leaksift's pid
/// (`docker stop`, `kill PID`) as well: passed on, each reaches the command exactly once, as it
/// would have reached the command run in leaksift's place. Signals sent to the command's own
/// group (Ctrl-C while it holds the terminal, `kill -- -<its pid>`) reach it directly, never
/// leaksift.
const FORWARDED_SIGNALS: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// The command's pid once started (0 before; -1 when it could not start).
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);
/// Forwarded signals that arrived before the command started (bit per signal number).
static FORWARD_PENDING: AtomicU64 = AtomicU64::new(0);

extern "C" fn forward_signal(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, sender) = unsafe { ((*info).si_code, (*info).si_pid()) };
    let child = FORWARD_TO.load(Ordering::Acquire);
    // Not the command's own signals to its parent. Nor one the terminal sent while the command's
    // group was its foreground group (a hangup, with leaksift the session leader): the command
    // got it directly.
    let sent_by_process = matches!(code, libc::SI_USER | libc::SI_QUEUE);
    if (child > 0 && sent_by_process && sender == child)
        || (!sent_by_process && leaksift_watch::job::command_has_terminal())
    {
        return;
    }
    if child > 0 {
        // SAFETY: kill is async-signal-safe; the pid is our own child's.
        unsafe { libc::kill(child, signal) };
    } else if child == 0 {
        FORWARD_PENDING.fetch_or(1 << signal, Ordering::AcqRel);
    }
}

/// Installs the forwarding handler for [`FORWARDED_SIGNALS`] (before the command starts, so that
/// none is lost: they are held until [`forward_signals_to`]), except those leaksift inherited
/// ignored: the command inherits the ignoring as it would without leaksift.
fn forward_signals() {
    for signal in FORWARDED_SIGNALS {
        if leaksift_watch::job::ignored(signal) {
            continue;
        }
        // SAFETY: installs an async-signal-safe handler (atomics and kill) in our own process;
        // exec resets it to the default in the command.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward_signal as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Starts forwarding to `child` (`None`: it did not start), passing on what arrived meanwhile.
fn forward_signals_to(child: Option<u32>) {
    let pid = child.and_then(|p| i32::try_from(p).ok()).unwrap_or(-1);
    FORWARD_TO.store(pid, Ordering::Release);
    let pending = FORWARD_PENDING.swap(0, Ordering::AcqRel);
    for signal in FORWARDED_SIGNALS {
        if pid > 0 && pending & (1 << signal) != 0 {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if let Some(reason) = cannot_be_preloaded(&args.command[0]) {
        bail!("{reason}");
    }
    let preload = find_preload()?;
    let output = absolute(
        &args
            .output
            .clone()
            .unwrap_or_else(|| default_output(&args.command[0])),
    )?;
    // `record -o ./server -- ./server` would delete the program before running it.
    let program = resolve_in_path(&args.command[0]);
    super::distinct_files::refuse_overlaps(
        &[("the traced program", program.as_deref())],
        &[("-o", Some(&output))],
    )?;
    check_name_length(&output)?;
    let mut control = output.clone().into_os_string();
    control.push(SCAN_SUFFIX);
    let control = PathBuf::from(control);
    for stale in std::iter::once(output.clone())
        .chain(std::iter::once(control.clone()))
        .chain(sibling_traces(&output))
    {
        // Only a previous run's files are replaced: a device, FIFO, directory or symlink at the
        // path is refused, not deleted (`-o /dev/full` run as root deleted the device node).
        if let Ok(metadata) = std::fs::symlink_metadata(&stale)
            && !metadata.is_file()
        {
            bail!(
                "{} exists and is not a regular file: not replacing it with a trace",
                stale.display()
            );
        }
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot replace {}", stale.display())),
        }
    }
    // The tracer creates OUTPUT inside the program: a path it cannot create would only show
    // after the program ran untraced, looking like a program that cannot be preloaded.
    std::fs::File::create(&output)
        .and_then(|_| std::fs::remove_file(&output))
        .with_context(|| format!("cannot create the trace {}", output.display()))?;
    let mut ld_preload = preload.as_os_str().to_os_string();
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        ld_preload.push(" ");
        ld_preload.push(existing);
    }
    let mut command = Command::new(&args.command[0]);
    command
        .args(&args.command[1..])
        .env("LD_PRELOAD", ld_preload)
        .env("LEAKSIFT_OUTPUT", &output)
        .env("LEAKSIFT_CONTROL", &control)
        .env("LEAKSIFT_MMAP", if args.mmap { "1" } else { "0" })
        .env(
            "LEAKSIFT_FOLLOW_FORK",
            if args.follow_fork { "1" } else { "0" },
        )
        .env_remove("LEAKSIFT_SCAN_SIGNAL");
    if let Some(signal) = args.scan_signal {
        command.env("LEAKSIFT_SCAN_SIGNAL", signal.to_string());
    }
    let closed = standard_descriptors_closed_at_start();
    if !closed.is_empty() {
        // SAFETY: the closure only calls close(2), which is async-signal-safe, in the child
        // between fork and exec.
        unsafe {
            command.pre_exec(move || {
                for &fd in &closed {
                    libc::close(fd);
                }
                Ok(())
            });
        }
    }
    // A process group of its own (see FORWARDED_SIGNALS), the terminal's foreground job when
    // leaksift has the terminal; ended (SIGTERM) if leaksift is killed.
    command.process_group(0);
    leaksift_watch::child::end_with_parent(&mut command);
    let terminal = Terminal::foreground();
    if let Some(terminal) = &terminal {
        terminal.hand_to(&mut command);
    }
    forward_signals();
    let spawned = command.spawn();
    forward_signals_to(spawned.as_ref().ok().map(std::process::Child::id));
    if let (Err(_), Some(terminal)) = (&spawned, &terminal) {
        terminal.take_back_from_failed_spawn();
    }
    let mut child =
        spawned.with_context(|| format!("cannot run {}", Path::new(&args.command[0]).display()))?;
    let mut job = terminal.and_then(|t| Job::new(t, child.id()));
    // The command may hold the terminal already.
    job::eprintln_from_background(&format!(
        "leaksift: recording pid {} to {}\nleaksift: create {} to request a leak scan{}",
        child.id(),
        shown(&output),
        shown(&control),
        python_hint(&args.command[0])
    ));
    let watch = TraceWatch::start(&output);
    let status = match job.as_mut() {
        Some(job) => job.wait(&mut child),
        None => child.wait(),
    }
    .context("waiting for the traced command")?;
    let trace_appeared = watch.finish();
    let _ = std::fs::remove_file(&control);
    let trace_exists = output.exists();
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) if !trace_exists && !trace_appeared => {
            // Before the tracer's constructor (a library's constructor crashed): no trace, and
            // the status is still the command's, not an error of record's.
            leaksift_report::stderr_line!(
                "leaksift: the command was killed by signal {signal} before the tracer started \
                 (in a library's constructor, say): there is no trace"
            );
            return Ok(Outcome::ChildExit(128u8.wrapping_add(signal as u8)));
        }
        (None, Some(signal)) => {
            leaksift_report::stderr_line!(
                "leaksift: the command was killed by signal {signal}; the trace ends at its last flush"
            );
            128u8.wrapping_add(signal as u8)
        }
        _ => 1,
    };
    let Ok(size) = std::fs::metadata(&output).map(|m| m.len()) else {
        if trace_appeared {
            // The program ran traced: its status stays record's.
            leaksift_report::stderr_line!(
                "leaksift: error: the trace {} was removed or renamed while the command ran \
                 (a temporary-file cleaner, another process): there is nothing to report",
                shown(&output)
            );
            return Ok(Outcome::ChildExit(code));
        }
        let why = if links_address_sanitizer(&args.command[0]) {
            "it is built with AddressSanitizer (libasan.so), whose runtime replaces malloc itself \
             and refuses to run unless it is the first library loaded; use its own leak report \
             instead"
                .to_string()
        } else if std::env::var_os("LEAKSIFT_PRELOAD").is_some() {
            format!(
                "LEAKSIFT_PRELOAD={} is not leaksift's tracer library, or the program is \
                 statically linked or setuid and cannot be traced",
                preload.display()
            )
        } else {
            "statically linked or setuid programs cannot be traced".to_string()
        };
        bail!(
            "{} did not start the tracer, no trace at {} ({why})",
            Path::new(&args.command[0]).display(),
            output.display()
        );
    };
    leaksift_report::stderr_line!(
        "leaksift: trace written to {} ({}); analyse it with `leaksift report {}`",
        shown(&output),
        leaksift_report::units::bytes(size as f64),
        shown(&output)
    );
    if status.code().is_some() && size == 0 && file_system_is_full(&output) {
        leaksift_report::stderr_line!(
            "leaksift: the file system holding {} is full: the tracer could not write anything, \
             so there is nothing to report",
            shown(&output)
        );
    } else if status.code().is_some() && file_system_is_full(&output) {
        leaksift_report::stderr_line!(
            "leaksift: the file system holding {} is full: the tracer stopped when a write \
             failed, so the trace ends early (the report says TRUNCATED and covers what was \
             written)",
            shown(&output)
        );
    } else if status.code().is_some() && trace_has_end(&output) == Some(false) {
        leaksift_report::stderr_line!(
            "leaksift: note: the program exited with code {code}, but its trace {} ends before \
             that: the tracer stopped early (it could not start its writer thread, as under a \
             thread limit, a write to the trace was refused, as by a seccomp filter, or the \
             system refused the tracer memory); the report says TRUNCATED and covers what was \
             written",
            shown(&output)
        );
    }
    let siblings = sibling_traces(&output);
    for other in &siblings {
        leaksift_report::stderr_line!("leaksift: {}", describe_sibling(other, child.id()));
    }
    for note in untraced_execs(&output, &siblings) {
        leaksift_report::stderr_line!("leaksift: note: {note}");
    }
    Ok(Outcome::ChildExit(code))
}

/// Looks for the trace every 50 ms while the command runs, so that a trace missing at the end
/// can be told apart: never written (the tracer did not start), or removed or renamed meanwhile.
struct TraceWatch {
    appeared: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl TraceWatch {
    fn start(trace: &Path) -> TraceWatch {
        let appeared = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (trace, appeared, stop) = (trace.to_path_buf(), appeared.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Acquire) {
                    if trace.exists() {
                        appeared.store(true, Ordering::Release);
                        return;
                    }
                    std::thread::park_timeout(Duration::from_millis(50));
                }
            }
        });
        TraceWatch {
            appeared,
            stop,
            thread,
        }
    }

    /// Whether the trace was seen (stops the watch).
    fn finish(self) -> bool {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
        self.appeared.load(Ordering::Acquire)
    }
}

/// Traces read back after a normal exit to see that they end with it are decoded up to this
/// many events: a trace that stopped early because the tracer could not go on (no writer thread,
/// writes refused) holds few or none, while reading a busy program's whole trace would cost more
/// than its recording (its chunks are one zstd stream: 20 M events in 85 KiB took 0.5 s; 200,000
/// of them 23 ms, these 20,000 about 6 ms: the first chunk is decompressed whole).
const END_CHECKED_EVENTS: usize = 20_000;

/// Whether the trace at `path` holds an end record (the exit, or an exec); `None` when it is not
/// known (more than [`END_CHECKED_EVENTS`] events, or unreadable).
fn trace_has_end(path: &Path) -> Option<bool> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = leaksift_trace::TraceReader::new(std::io::BufReader::new(file)).ok()?;
    let mut ended = false;
    for _ in 0..END_CHECKED_EVENTS {
        match reader.next_event() {
            Ok(Some(leaksift_trace::model::Event::End { .. })) => ended = true,
            Ok(Some(_)) => {}
            Ok(None) => return Some(ended),
            Err(_) => return None,
        }
    }
    None
}

/// A path in a status line, as a shell reads it back (quoted when it holds spaces, in `$'…'`
/// form when it holds control characters): it pastes back, and nothing raw reaches the
/// terminal.
fn shown(path: &Path) -> String {
    leaksift_report::escape::shell_word(&path.to_string_lossy()).into_owned()
}

/// The pid in the header of the trace at `path`.
fn trace_pid(path: &Path) -> Option<u32> {
    let file = std::fs::File::open(path).ok()?;
    leaksift_trace::TraceReader::new(std::io::BufReader::new(file))
        .ok()
        .map(|reader| reader.header().pid)
}

/// One line for each traced process whose last trace ends with an exec: no trace of the
/// program it exec'd appeared (a traced new image takes the trace over, or under
/// `--follow-fork` writes `OUTPUT.<pid>.<n>` after it), so that program ran untraced; the line
/// names it, from the trace's exec call record, and says why, as far as can be told now. The
/// traces' last chunks only are read ([`leaksift_trace::exec_ending`]).
fn untraced_execs(output: &Path, siblings: &[PathBuf]) -> Vec<String> {
    // Each pid's images in the order they ran: its siblings in numeric order, the main trace
    // last (it is the latest image of its pid).
    let mut last_of_pid: Vec<(u32, &Path)> = Vec::new();
    for path in siblings.iter().map(PathBuf::as_path).chain([output]) {
        let Some(pid) = trace_pid(path) else {
            continue;
        };
        match last_of_pid.iter_mut().find(|(p, _)| *p == pid) {
            Some(slot) => slot.1 = path,
            None => last_of_pid.push((pid, path)),
        }
    }
    last_of_pid
        .into_iter()
        .filter_map(|(pid, path)| {
            let ending = leaksift_trace::exec_ending(path).ok()??;
            Some(untraced_exec_note(pid, path, ending.call.as_ref()))
        })
        .collect()
}

/// The note about pid `pid`, whose trace `path` ends with an exec of `call` that left no trace.
fn untraced_exec_note(
    pid: u32,
    path: &Path,
    call: Option<&leaksift_trace::model::ExecCall>,
) -> String {
    use leaksift_report::escape::{shell_word, shell_words};
    let Some(call) = call else {
        return format!(
            "pid {pid} exec'd another program after its trace {} ended, and that program left \
             no trace: it was not traced",
            shown(path)
        );
    };
    let program = if call.program.is_empty() {
        "another program".to_string()
    } else {
        shell_word(&call.program).into_owned()
    };
    let why = if !call.keeps_tracer {
        "the environment it was given no longer preloads the tracer (LD_PRELOAD or \
         LEAKSIFT_OUTPUT was dropped, as `env -i` or a program that builds its children's \
         environment does)"
            .to_string()
    } else {
        let file = OsString::from(&call.program);
        match cannot_be_preloaded(&file) {
            Some(reason) => reason,
            None if !call.program.is_empty() && links_address_sanitizer(&file) => {
                "it is built with AddressSanitizer (libasan.so), whose runtime refuses to run \
                 unless it is the first library loaded"
                    .to_string()
            }
            None => "the tracer did not start in it (statically linked and setuid programs \
                     cannot be traced; the program may also have been replaced or removed \
                     since)"
                .to_string(),
        }
    };
    format!(
        "pid {pid} exec'd {program} (`{}`), which was not traced, so no trace of it follows \
         {}: {why}",
        shell_words(&call.args),
        shown(path)
    )
}
