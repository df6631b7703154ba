//! C++ names demangled by the system's own demangler (libstdc++'s `__cxa_demangle`), loaded at
//! run time.
//!
//! `__cxa_demangle` is the demangler gdb, valgrind and heaptrack print with (via libiberty or
//! libstdc++), so names read the same as in those tools. The pure-Rust `cpp_demangle` 0.5.1 (the
//! latest) garbles some common libstdc++ names: `std::make_shared<Node>()` comes out as
//! `std::make_shared<Node, >(&&)`, and pack-expanded parameters are dropped. It remains the
//! fallback where libstdc++ cannot be loaded (it is on every Debian system: apt needs it).
//! libstdc++ is opened with `dlopen` rather than linked, so leaksift still starts without it.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::OnceLock;

/// `char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status)`.
type CxaDemangle =
    unsafe extern "C" fn(*const c_char, *mut c_char, *mut usize, *mut c_int) -> *mut c_char;

/// `__cxa_demangle` if libstdc++ could be loaded.
fn cxa_demangle() -> Option<CxaDemangle> {
    static FUNCTION: OnceLock<Option<CxaDemangle>> = OnceLock::new();
    *FUNCTION.get_or_init(|| {
        // SAFETY: the library name is a NUL-terminated literal; loading libstdc++ runs only its
        // own initialisers. The handle is kept open for the life of the process.
        let handle = unsafe { libc::dlopen(c"libstdc++.so.6".as_ptr(), libc::RTLD_NOW) };
        if handle.is_null() {
            return None;
        }
        // SAFETY: `handle` is a live handle and the symbol name a NUL-terminated literal.
        let symbol: *mut c_void = unsafe { libc::dlsym(handle, c"__cxa_demangle".as_ptr()) };
        // SAFETY: libstdc++'s `__cxa_demangle` has the signature of `CxaDemangle` (Itanium C++
        // ABI, section 3.4); a non-null symbol is that function.
        (!symbol.is_null())
            .then(|| unsafe { std::mem::transmute::<*mut c_void, CxaDemangle>(symbol) })
    })
}

/// The demangled form of the Itanium C++ name `mangled`, or `None` when libstdc++ is missing or
/// the name is not a valid mangled name.
pub fn demangle(mangled: &str) -> Option<String> {
    let function = cxa_demangle()?;
    let mangled = CString::new(mangled).ok()?;
    let mut status: c_int = 0;
    // SAFETY: `mangled` is NUL-terminated; with a null buffer and length, `__cxa_demangle`
    // allocates the result with malloc, and reports failures through `status` with a null result.
    let demangled = unsafe {
        function(
            mangled.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut status,
        )
    };
    if demangled.is_null() {
        return None;
    }
    let text = (status == 0).then(|| {
        // SAFETY: a non-null result is a NUL-terminated string that this function owns.
        let demangled = unsafe { CStr::from_ptr(demangled) };
        demangled.to_string_lossy().into_owned()
    });
    // SAFETY: the result was allocated with malloc by `__cxa_demangle` and is freed once.
    unsafe { libc::free(demangled.cast()) };
    text
}
