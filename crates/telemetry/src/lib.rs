//! Logging set-up (JSON lines in production, readable text in a terminal, filtered by `RUST_LOG`), and the count
//! of panics that every task reports into.
//!
//! Logging never takes the process down: a log line that cannot be written (stderr on a full disk, a closed
//! pipe) is dropped. tracing's own fallback for a failed write is an `eprintln!`, which panics when stderr itself
//! fails, and a panic there would kill whichever task was logging.

use std::io::{self, Write};
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// Stderr, where a write that fails is a write that succeeded.
#[derive(Debug, Clone, Copy, Default)]
pub struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LossyStderr {
    type Writer = LossyStderr;

    fn make_writer(&'a self) -> Self::Writer {
        LossyStderr
    }
}

/// Installs the global subscriber once; later calls are ignored so tests may call it freely.
pub fn init(format: Format) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(LossyStderr).log_internal_errors(false);
    let _ = match format {
        Format::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        Format::Text => builder.compact().try_init(),
    };
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabel {
    task: &'static str,
}

fn panics() -> &'static Family<TaskLabel, Counter> {
    static PANICS: OnceLock<Family<TaskLabel, Counter>> = OnceLock::new();
    PANICS.get_or_init(Family::default)
}

/// Registers `dingguard_panics_total{task}` (one series per task name, all of them ours).
pub fn register_panics(registry: &mut Registry) {
    registry.register("dingguard_panics", "Panics caught in a task, by task; each is also logged", panics().clone());
}

/// Counts and logs a panic a task caught, with what it said.
pub fn panicked(task: &'static str, payload: &(dyn std::any::Any + Send)) {
    panics().get_or_create(&TaskLabel { task }).inc();
    tracing::error!(task, panic = %panic_message(payload), "a task panicked; the panic was caught");
}

/// What a panic said, when it said it as text.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".to_owned())
}

/// How many panics `task` has caught so far.
pub fn panic_count(task: &'static str) -> u64 {
    panics().get_or_create(&TaskLabel { task }).get()
}
