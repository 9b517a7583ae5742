//! `dingguard users list|token`: the directory's people, and bearer tokens for scripts and checks.

use std::path::Path;

use anyhow::{Context, Result, bail};
use dingguard_store::Store;

use dingguard::config::{Config, ProcessEnv};

pub fn list(config_file: Option<&Path>) -> Result<()> {
    let config = Config::load(config_file, &ProcessEnv, false)?;
    let mut ids: Vec<&str> = config.alerting.directory.users().filter(|u| u.active).map(|u| u.id.as_str()).collect();
    ids.sort_unstable();
    for id in ids {
        println!("{id}");
    }
    Ok(())
}

pub async fn token(config_file: Option<&Path>, user_id: &str) -> Result<()> {
    let config = Config::load(config_file, &ProcessEnv, false)?;
    if !config.alerting.directory.is_member(user_id) {
        bail!("{user_id} is not an active user of the directory ({})", config.alerting.directory_source);
    }
    let store = Store::open(&config.store).await.context("cannot open the state store")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let now = i64::try_from(now)?;
    let token = dingguard_approver::Approver::issue_token(&store, user_id, now).await?;
    // Whoever runs this on the host can act as the user through the API: the chain says who and when.
    let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let details = serde_json::json!({"tool": "dingguard users token"});
    store.append_audit(&format!("operator:{operator}"), "issued API token", user_id, details, now).await?;
    println!("{token}");
    Ok(())
}
