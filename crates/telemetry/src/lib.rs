//! Logging set-up: JSON lines in production, readable text in a terminal, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// Installs the global subscriber once; later calls are ignored so tests may call it freely.
pub fn init(format: Format) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        Format::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        Format::Text => builder.compact().try_init(),
    };
}
