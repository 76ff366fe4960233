//! A progress line on stderr for long explorations: only when enabled, only on a terminal,
//! only after the first second. Library use stays silent by default; piped output stays clean.
//! Progress reads the wall clock, but only to decide when to print: nothing it does feeds back
//! into which schedules are explored.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub(crate) struct Progress {
    on: bool,
    start: Instant,
    last_print: Option<Instant>,
    printed: bool,
}

impl Progress {
    pub fn new(enabled: bool, start: Instant) -> Self {
        Progress {
            on: enabled && std::io::stderr().is_terminal(),
            start,
            last_print: None,
            printed: false,
        }
    }

    /// Called after each execution; cheap unless a line is due.
    pub fn tick(&mut self, executions: u64, failures: usize, now: Instant) {
        if !self.on {
            return;
        }
        let elapsed = now.duration_since(self.start);
        if elapsed < Duration::from_secs(1) {
            return;
        }
        if let Some(t) = self.last_print {
            if now.duration_since(t) < Duration::from_millis(250) {
                return;
            }
        }
        self.last_print = Some(now);
        self.printed = true;
        let rate = executions as f64 / elapsed.as_secs_f64();
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r\x1b[2K{executions} executions  {rate:.0}/s  {failures} failures  {:.0}s",
            elapsed.as_secs_f64()
        );
        let _ = e.flush();
    }

    /// Clears the line if one was printed.
    pub fn finish(&mut self) {
        if self.printed {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
        }
    }
}
