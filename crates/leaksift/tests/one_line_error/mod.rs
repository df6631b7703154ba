//! The CLI's error contract, shared by the integration tests that check it: exit status 2 and
//! exactly one `leaksift: error:` line on stderr.

/// Asserts exit status 2 and a stderr of exactly one `leaksift: error:` line containing
/// `message`; returns that line.
pub fn assert_one_line_error(out: &std::process::Output, message: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("leaksift: error: ") && stderr.contains(message),
        "expected one error line with {message:?}: {stderr}"
    );
    stderr
}
