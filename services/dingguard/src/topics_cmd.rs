//! `dingguard topics ensure`: creates the topics with the configured partitions, replication,
//! `min.insync.replicas` and retention, and refuses, naming what differs, when an existing one does not match.

use std::path::Path;

use anyhow::{Result, bail};
use dingguard::app::{ensure_topics, open_log};
use dingguard::config::{Config, ProcessEnv};

pub async fn ensure(config_file: Option<&Path>) -> Result<()> {
    let config = Config::load(config_file, &ProcessEnv, false)?;
    let log = open_log(&config.backend)?;
    let Some(shapes) = ensure_topics(&config, &log).await? else {
        bail!("the event log is not reachable ({})", dingguard::app::describe(&config.backend));
    };
    for shape in shapes {
        let replicas = shape.replicas.map_or_else(String::new, |r| format!(", replication {r}"));
        println!("{}: {} partitions{replicas}", shape.topic, shape.partitions);
    }
    Ok(())
}
