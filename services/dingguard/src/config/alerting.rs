//! Settings of the alerter and the state store: where rules, the directory and the database are.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use dingguard_alerter::Classification;
use dingguard_directory::Directory;
use dingguard_store::StoreConfig;
use serde::Deserialize;

use super::{Env, parse_env};

/// The shipped rule pack, used when no rules are configured and none are in `./rules`.
pub const DEFAULT_PACK: &str = include_str!("../../../../rules/pdpa-macau.yaml");

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub database_url: Option<String>,
    pub max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlerterSection {
    pub rules: Option<Vec<PathBuf>>,
    pub directory: Option<PathBuf>,
    pub classification: Option<Classification>,
    /// Events judged per store transaction.
    pub batch: Option<usize>,
}

#[derive(Debug)]
pub struct AlertingConfig {
    /// Configured rule files or directories; `None` means `./rules` if present, else the shipped pack.
    pub rule_paths: Option<Vec<PathBuf>>,
    pub directory: Directory,
    pub directory_source: String,
    pub classification: Classification,
    pub batch: usize,
}

pub fn store(section: StoreSection, env: &dyn Env, data_dir: &Path) -> Result<StoreConfig> {
    let url = env.var("DINGGUARD_DATABASE_URL").or(section.database_url).filter(|u| !u.trim().is_empty());
    let max_connections =
        parse_env::<usize>(env, "DINGGUARD_DATABASE_MAX_CONNECTIONS")?.or(section.max_connections).unwrap_or(8);
    Ok(match url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            StoreConfig::Postgres { url: dingguard_model::Secret::new(url), max_connections }
        }
        Some(url) if url.starts_with("sqlite:") => {
            StoreConfig::Sqlite(PathBuf::from(url.trim_start_matches("sqlite:")))
        }
        Some(url) => bail!("database URL {url:?} must start with postgres:// (or sqlite: for a file)"),
        None => StoreConfig::Sqlite(data_dir.join("state.db")),
    })
}

pub fn alerting(section: AlerterSection, env: &dyn Env) -> Result<AlertingConfig> {
    let rule_paths = match env.var("DINGGUARD_RULES") {
        Some(list) => Some(list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(PathBuf::from).collect()),
        None => section.rules,
    };
    let directory_path = env.var("DINGGUARD_DIRECTORY").map(PathBuf::from).or(section.directory);
    let (directory, directory_source) = match directory_path {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read directory file {}", path.display()))?;
            let directory =
                Directory::from_yaml(&text).with_context(|| format!("directory file {} is invalid", path.display()))?;
            (directory, path.display().to_string())
        }
        None => {
            (Directory::from_yaml(dingguard_directory::DEMO_YAML).context("demo directory")?, "demo directory".into())
        }
    };
    let batch = parse_env::<usize>(env, "DINGGUARD_ALERTER_BATCH")?.or(section.batch).unwrap_or(200);
    if !(1..=10_000).contains(&batch) {
        bail!("alerter batch {batch} must be between 1 and 10000");
    }
    Ok(AlertingConfig {
        batch,
        rule_paths,
        directory,
        directory_source,
        classification: section.classification.unwrap_or_else(Classification::demo),
    })
}

impl AlertingConfig {
    /// The rule paths in force, writing the shipped pack under `data_dir` when nothing else is configured, so it
    /// can be read, edited and hot-reloaded like any rule file.
    pub fn resolve_rules(&self, data_dir: &Path) -> Result<Vec<PathBuf>> {
        if let Some(paths) = &self.rule_paths {
            return Ok(paths.clone());
        }
        let local = PathBuf::from("rules");
        if local.is_dir() {
            return Ok(vec![local]);
        }
        let dir = data_dir.join("rules");
        let file = dir.join("pdpa-macau.yaml");
        if !file.exists() {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            std::fs::write(&file, DEFAULT_PACK).with_context(|| format!("cannot write {}", file.display()))?;
        }
        Ok(vec![dir])
    }
}
