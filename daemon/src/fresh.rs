//! One run on a fresh private daemon, rerun on another fresh daemon at a coarser clock scale while
//! the virtual clock mapping does not hold. `pushrace diff` and the differential test both need
//! exactly this loop; it lives here once.

use std::time::Duration;

use crate::backend::DaemonBackend;
use crate::launcher::Daemon;

/// The scales tried, as multiples of the first: a run whose mapping broke (the calls between two
/// `clock.advance`s took longer than half a virtual hour of real time) is rerun at 4×, then 16×.
pub const RERUN_FACTORS: [u32; 3] = [1, 4, 16];

/// The last attempt of [`run_on_fresh_daemon`].
#[derive(Debug)]
pub struct FreshRun<T> {
    /// What the body answered.
    pub value: T,
    /// The real time per virtual hour the attempt ran at.
    pub scale: Duration,
    /// Empty unless the mapping broke at every scale: then `value` must not be trusted.
    pub violations: Vec<String>,
}

/// Runs `body` on a backend over a fresh private daemon at `base` real time per virtual hour; while
/// the clock mapping reports violations, tells `on_rerun` (scale, violations) and starts over on a
/// new daemon at the next of [`RERUN_FACTORS`]. A fresh daemon each time because GC and the blob
/// backend are global to a daemon: a rerun must not see what the broken attempt left.
///
/// `body` is synchronous (it drives the backend with `rt.block_on`) so that it can borrow the
/// backend without an async closure. Every daemon is stopped before the next starts (or dropped,
/// which also stops it, when `body` fails or panics).
pub fn run_on_fresh_daemon<T>(
    rt: &tokio::runtime::Runtime,
    base: Duration,
    mut body: impl FnMut(&mut DaemonBackend<'_>) -> Result<T, String>,
    mut on_rerun: impl FnMut(Duration, &[String]),
) -> Result<FreshRun<T>, String> {
    let mut last = None;
    for k in RERUN_FACTORS {
        let scale = base * k;
        let daemon = Daemon::start().map_err(|e| format!("cannot start containerd: {e}"))?;
        let client = rt
            .block_on(daemon.client())
            .map_err(|e| format!("cannot connect to the private containerd: {e}"))?;
        let mut backend = DaemonBackend::new(&client, scale);
        let value = body(&mut backend)?;
        let violations = backend.clock.violations().to_vec();
        drop(client);
        daemon
            .stop()
            .map_err(|e| format!("stopping the private containerd: {e}"))?;
        let run = FreshRun {
            value,
            scale,
            violations,
        };
        if run.violations.is_empty() {
            return Ok(run);
        }
        on_rerun(scale, &run.violations);
        last = Some(run);
    }
    Ok(last.expect("RERUN_FACTORS is not empty"))
}
