//! Progress lines on stderr for phases that can take more than a second.
//!
//! On a terminal a phase redraws one line in place; otherwise (CI logs, tests) each phase prints
//! one line when it finishes, so logs stay short. Engines report progress through a callback;
//! only the CLI creates a [`Progress`].

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// `text` on one line of a terminal: control characters escaped, line breaks and tabs written
/// `\n`, `\t` (a file name may hold any of them).
fn one_line_shown(text: &str) -> String {
    crate::escape::one_line(&crate::escape::terminal(text)).into_owned()
}

/// A stderr progress reporter for one command run.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    interactive: bool,
    phase: Option<(String, Instant)>,
}

impl Progress {
    /// A reporter writing to stderr; `quiet` silences it entirely.
    pub fn stderr(quiet: bool) -> Self {
        Progress {
            enabled: !quiet,
            interactive: std::io::stderr().is_terminal(),
            phase: None,
        }
    }

    /// Starts a named phase, finishing the previous one. The name may hold a file name: it is
    /// shown on one line with control characters escaped ([`one_line_shown`]).
    pub fn phase(&mut self, name: &str) {
        self.finish();
        let name = one_line_shown(name);
        if self.enabled && self.interactive {
            crate::stderr_print!("\r\x1b[2K{name}…");
            let _ = std::io::stderr().flush();
        }
        self.phase = Some((name, Instant::now()));
    }

    /// Updates the current line (terminals only), e.g. with a percentage or a live figure.
    pub fn update(&mut self, detail: &str) {
        if !(self.enabled && self.interactive) {
            return;
        }
        if let Some((name, _)) = &self.phase {
            crate::stderr_print!("\r\x1b[2K{name}… {}", one_line_shown(detail));
            let _ = std::io::stderr().flush();
        }
    }

    /// Prints a standalone status line (both on terminals and in logs).
    pub fn line(&mut self, text: &str) {
        if !self.enabled {
            return;
        }
        if self.interactive {
            crate::stderr_print!("\r\x1b[2K");
        }
        crate::stderr_line!("{}", crate::escape::terminal(text));
    }

    /// Finishes the current phase, printing its duration.
    pub fn finish(&mut self) {
        if let Some((name, started)) = self.phase.take()
            && self.enabled
        {
            let took = crate::units::duration(started.elapsed().as_secs_f64());
            if self.interactive {
                crate::stderr_line!("\r\x1b[2K{name}: {took}");
            } else {
                crate::stderr_line!("{name}: {took}");
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
