//! `dingguard log dump`: every record of a topic as JSON lines, like a Kafka console consumer.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Result, bail};
use serde::Serialize;

use dingguard::app::open_log;
use dingguard::config::{Config, LogBackend, ProcessEnv};

#[derive(Serialize)]
struct Line<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    key: Option<&'a str>,
    headers: BTreeMap<&'a str, &'a str>,
    /// The record's bytes as text, exactly as stored.
    value: std::borrow::Cow<'a, str>,
}

pub async fn run(config_file: Option<&Path>, topic: Option<String>) -> Result<()> {
    let config = Config::load(config_file, &ProcessEnv, false)?;
    if let LogBackend::Embedded { path, .. } = &config.backend
        && !path.exists()
    {
        bail!("no embedded event log at {}; start `dingguard serve` first or set DINGGUARD_DATA_DIR", path.display());
    }
    let log = open_log(&config.backend)?;
    let topic = topic.unwrap_or_else(|| config.topics.events.clone());
    let records = log.read_all(&topic).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for r in &records {
        let line = Line {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
            key: r.key.as_deref(),
            headers: r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            value: String::from_utf8_lossy(&r.value),
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
