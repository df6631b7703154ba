//! What an exec hook is about to run, for the trace's exec call record: the program's file
//! (absolute where it can be told), its arguments, and whether the environment passed to it
//! still preloads the tracer. `leaksift record` names the program and says why when no trace of
//! it appears; `report` words the end of the trace from it.
//!
//! Built by the exec hooks with the re-entry guard held (it allocates), only in the traced
//! process itself (not in a `vfork` child), before the flush: slow path only.

use core::ffi::{CStr, c_char, c_int, c_void};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use leaksift_trace::model::ExecCall;

/// The strings of a null-terminated C array (`argv`, `envp`); none for a null array.
///
/// # Safety
/// `array` is null or a null-terminated array of NUL-terminated strings, as exec takes.
unsafe fn c_strings(array: *const *const c_char) -> Vec<&'static [u8]> {
    let mut strings = Vec::new();
    if array.is_null() {
        return strings;
    }
    for i in 0.. {
        // SAFETY: per the contract, every element up to the terminating null is readable.
        let item = unsafe { *array.add(i) };
        if item.is_null() {
            break;
        }
        // SAFETY: a NUL-terminated string (the caller's, alive across the exec call).
        strings.push(unsafe { CStr::from_ptr(item) }.to_bytes());
    }
    strings
}

/// The file this library was loaded from (as `LD_PRELOAD` named it). `dladdr`, unlike `dlsym`
/// and `dlopen`, leaves the thread's `dlerror` state alone (see `runtime::resolve_symbols`).
fn own_library() -> Option<PathBuf> {
    // SAFETY: dladdr fills `info` for an address inside a loaded object (this function).
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        let here = own_library as fn() -> Option<PathBuf> as *const c_void;
        if libc::dladdr(here, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        Some(PathBuf::from(OsStr::from_bytes(
            CStr::from_ptr(info.dli_fname).to_bytes(),
        )))
    }
}

/// Whether `environment` preloads this library and names a trace (`LEAKSIFT_OUTPUT`): without
/// both, the new program cannot be traced.
fn keeps_tracer(environment: &[&[u8]]) -> bool {
    let value = |name: &[u8]| {
        environment
            .iter()
            .rev()
            .find_map(|entry| entry.strip_prefix(name)?.strip_prefix(b"="))
    };
    let names_output = value(b"LEAKSIFT_OUTPUT").is_some_and(|v| !v.is_empty());
    let library = own_library();
    let preloads = value(b"LD_PRELOAD").is_some_and(|list| {
        list.split(|&b| b == b' ' || b == b':').any(|entry| {
            let entry = Path::new(OsStr::from_bytes(entry));
            library.as_deref().is_some_and(|own| {
                entry == own
                    || (!entry.as_os_str().is_empty() && entry.file_name() == own.file_name())
            })
        })
    });
    names_output && preloads
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `path` made absolute against the process's current directory (unchanged if it cannot be).
fn absolute(path: &[u8]) -> String {
    let path = Path::new(OsStr::from_bytes(path));
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    lossy(absolute.as_os_str().as_bytes())
}

/// The file a descriptor is open on (`/proc/self/fd/N`'s target), empty if unknown.
fn descriptor_file(fd: c_int) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| lossy(p.as_os_str().as_bytes()))
        .unwrap_or_default()
}

/// Bytes of arguments kept in the record (the kernel takes up to a quarter of the stack limit:
/// megabytes); the rest are summed up in a last argument `[N more arguments]`.
const ARGUMENT_BYTES_KEPT: usize = 64 << 10;

/// # Safety
/// `argv` and `envp` as exec takes them (null or null-terminated arrays of C strings).
unsafe fn call(
    program: String,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> ExecCall {
    // SAFETY: per the contract.
    let (args, environment) = unsafe { (c_strings(argv), c_strings(envp)) };
    let mut kept = Vec::new();
    let mut bytes = 0;
    for (i, arg) in args.iter().enumerate() {
        bytes += arg.len();
        if bytes > ARGUMENT_BYTES_KEPT {
            kept.push(format!("[{} more arguments]", args.len() - i));
            break;
        }
        kept.push(lossy(arg));
    }
    ExecCall {
        program,
        args: kept,
        keeps_tracer: keeps_tracer(&environment),
    }
}

/// `execve(path, argv, envp)` and the calls built on it.
///
/// # Safety
/// The exec call's own arguments (`path` a C string or null).
pub unsafe fn of_path(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> ExecCall {
    let program = if path.is_null() {
        String::new()
    } else {
        // SAFETY: per the contract.
        absolute(unsafe { CStr::from_ptr(path) }.to_bytes())
    };
    // SAFETY: per the contract.
    unsafe { call(program, argv, envp) }
}

/// `execvpe(file, argv, envp)`: a name without `/` is searched in `PATH` (glibc's default when
/// unset) as `execvpe` searches it: the first executable file of that name.
///
/// # Safety
/// The exec call's own arguments.
pub unsafe fn of_search(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> ExecCall {
    // SAFETY: per the contract.
    let name = (!file.is_null()).then(|| unsafe { CStr::from_ptr(file) }.to_bytes());
    let program = match name {
        None => String::new(),
        Some(name) if name.contains(&b'/') || name.is_empty() => absolute(name),
        Some(name) => {
            let search = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
            std::env::split_paths(&search)
                .map(|dir| dir.join(OsStr::from_bytes(name)))
                .find(|candidate| {
                    let Ok(path) = std::ffi::CString::new(candidate.as_os_str().as_bytes()) else {
                        return false;
                    };
                    // SAFETY: access with a NUL-terminated path.
                    let executable = unsafe { libc::access(path.as_ptr(), libc::X_OK) == 0 };
                    executable && candidate.is_file()
                })
                .map_or_else(
                    || lossy(name),
                    |found| absolute(found.as_os_str().as_bytes()),
                )
        }
    };
    // SAFETY: per the contract.
    unsafe { call(program, argv, envp) }
}

/// `fexecve(fd, argv, envp)`.
///
/// # Safety
/// The exec call's own arguments.
pub unsafe fn of_descriptor(
    fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> ExecCall {
    // SAFETY: per the contract.
    unsafe { call(descriptor_file(fd), argv, envp) }
}

/// `execveat(dirfd, path, argv, envp, flags)`.
///
/// # Safety
/// The exec call's own arguments.
pub unsafe fn of_directory_entry(
    dirfd: c_int,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    flags: c_int,
) -> ExecCall {
    // SAFETY: per the contract.
    let path = (!path.is_null()).then(|| unsafe { CStr::from_ptr(path) }.to_bytes());
    let program = match path {
        Some(p) if p.is_empty() && flags & libc::AT_EMPTY_PATH != 0 => descriptor_file(dirfd),
        Some(p) if p.starts_with(b"/") => lossy(p),
        Some(p) if dirfd == libc::AT_FDCWD => absolute(p),
        Some(p) => {
            let dir = descriptor_file(dirfd);
            if dir.is_empty() {
                lossy(p)
            } else {
                format!("{dir}/{}", lossy(p))
            }
        }
        None => String::new(),
    };
    // SAFETY: per the contract.
    unsafe { call(program, argv, envp) }
}

#[cfg(test)]
mod tests {
    use super::keeps_tracer;

    #[test]
    fn an_environment_without_the_preload_or_the_output_drops_the_tracer() {
        // The test harness is not the preloaded library: no LD_PRELOAD names it.
        assert!(!keeps_tracer(&[]));
        assert!(!keeps_tracer(&[
            b"LEAKSIFT_OUTPUT=/t.lks",
            b"LD_PRELOAD=/x/libother.so"
        ]));
    }
}
