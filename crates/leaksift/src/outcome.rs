//! What a command concluded, and the process exit code that conveys it.

use std::process::ExitCode;

/// The result of a command that ran to completion. Input and usage errors are `Err` values instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to report (exit 0).
    Clean,
    /// A leak was found or a budget exceeded, and the user asked for that to fail (exit 1).
    LeakFound,
    /// A traced or watched child exited with this status, which we pass on.
    ChildExit(u8),
}

impl Outcome {
    /// Exit code for usage or input errors (clap uses the same for bad flags).
    pub const INPUT_ERROR_CODE: u8 = 2;

    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::LeakFound => ExitCode::from(1),
            Outcome::ChildExit(code) => ExitCode::from(code),
        }
    }
}
