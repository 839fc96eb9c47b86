//! What the code under test logs, captured for assertions: [`capture_logs`] installs the
//! process's `tracing` subscriber writing plain text into a buffer that [`Logs::text`] reads.
//!
//! ```
//! use corelane::testkit::capture_logs;
//!
//! let logs = capture_logs(tracing::Level::WARN);
//! tracing::warn!(core = 3, "not isolated");
//! assert!(logs.text().contains("not isolated"));
//! ```

use std::sync::{Arc, Mutex};

/// Everything the captured subscriber wrote (plain text, one event per line, with the spans
/// around it and their fields).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process's `tracing` subscriber (plain text, no colours, events at `max` and
/// more severe) writing into the [`Logs`] returned.
///
/// # Panics
/// When the process already has a global subscriber: a test binary gets one, so the tests that
/// read logs belong in a binary of their own (or share one capture through a `OnceLock`).
pub fn capture_logs(max: tracing::Level) -> Logs {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(max)
            .finish(),
    )
    .expect("capture_logs installs the only subscriber of this process");
    logs
}
