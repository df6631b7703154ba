//! Starting leaksift with the signals a test sends it at their default action.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes `command` start with SIGINT, SIGQUIT, SIGTERM and SIGHUP at their default action. A
/// test harness started as a background job or under `nohup` passes them on ignored, and
/// leaksift keeps a signal it inherited ignored (as any program does), so a signal the test
/// sends it would do nothing.
pub fn with_default_signals(command: &mut Command) -> &mut Command {
    // SAFETY: signal is async-signal-safe; it runs in the child before exec.
    unsafe {
        command.pre_exec(|| {
            for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(signal, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    command
}
