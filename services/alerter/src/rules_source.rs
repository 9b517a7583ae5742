//! Rule files on disk: loaded as one set, checked against the catalog, and reloaded when they change. A set that
//! fails validation is refused and the one in force stays.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use dingguard_rules::{Catalog, RuleError, RuleSet};

/// The fields and event types rules may use: the normaliser's, including what the alerter's enrichment adds.
pub fn catalog() -> Catalog {
    dingguard_events::rule_catalog()
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read rule path {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{0}")]
    Invalid(#[from] RuleError),
    #[error("no rule files (*.yaml, *.yml) under {0}")]
    Empty(String),
}

/// The rule files named by `paths` (files, or directories whose YAML files are taken in name order).
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SourceError> {
    let mut out = Vec::new();
    for path in paths {
        let read = |e: std::io::Error| SourceError::Read { path: path.display().to_string(), reason: e.to_string() };
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(read)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(SourceError::Empty(path.display().to_string()));
            }
            out.extend(found);
        } else {
            std::fs::metadata(path).map_err(read)?;
            out.push(path.clone());
        }
    }
    Ok(out)
}

pub fn load(paths: &[PathBuf]) -> Result<RuleSet, SourceError> {
    let files = files(paths)?;
    let mut texts = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| SourceError::Read { path: file.display().to_string(), reason: e.to_string() })?;
        texts.push((file.display().to_string(), text));
    }
    let borrowed: Vec<(&str, &str)> = texts.iter().map(|(f, t)| (f.as_str(), t.as_str())).collect();
    Ok(RuleSet::load(&borrowed, &catalog())?)
}

/// One file's path, size and modification time.
pub type Fingerprint = (PathBuf, u64, Option<SystemTime>);

/// What the watcher compares to notice an edit.
pub fn fingerprint(paths: &[PathBuf]) -> Vec<Fingerprint> {
    files(paths)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let (len, modified) = meta.map_or((0, None), |m| (m.len(), m.modified().ok()));
            (p, len, modified)
        })
        .collect()
}

pub fn describe(paths: &[PathBuf]) -> String {
    paths.iter().map(|p: &PathBuf| Path::display(p).to_string()).collect::<Vec<_>>().join(", ")
}
