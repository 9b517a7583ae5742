//! `dingguard audit verify|export`: the auditors' view of the chain.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use dingguard_store::Store;

use dingguard::config::{Config, ProcessEnv};

async fn open(config_file: Option<&Path>) -> Result<Store> {
    let config = Config::load(config_file, &ProcessEnv, false)?;
    if let dingguard_store::StoreConfig::Sqlite(path) = &config.store
        && !path.exists()
    {
        bail!("no state database at {}; set DINGGUARD_DATA_DIR or DINGGUARD_DATABASE_URL", path.display());
    }
    Store::open(&config.store).await.context("cannot open the state store")
}

/// Checks every link; names the first entry that does not fit.
pub async fn verify(config_file: Option<&Path>) -> Result<()> {
    let entries = open(config_file).await?.audit_entries().await?;
    match dingguard_audit::verify(&entries) {
        Ok(count) => {
            let last = entries.last().map_or(dingguard_audit::GENESIS, |e| e.hash.as_str());
            println!("audit chain intact: {count} entries, last hash {last}");
            Ok(())
        }
        Err(error) => bail!("audit chain broken at entry {}: {error}", error.seq()),
    }
}

/// Every entry as a JSON line, with its hashes, for auditors to keep and re-check independently.
pub async fn export(config_file: Option<&Path>) -> Result<()> {
    let entries = open(config_file).await?.audit_entries().await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for entry in &entries {
        serde_json::to_writer(&mut out, entry)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
