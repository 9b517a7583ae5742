//! The small files the sources keep their place in (the audit log's checkpoint, the failed-push spool, the last
//! directory sync): read as JSON, replaced whole or not at all.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::SourceError;

/// The file's value; `None` when there is no file yet. A file that cannot be read is an error that names it,
/// never a silent fresh start.
pub(crate) fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, SourceError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SourceError::Checkpoint(format!("{} is damaged: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SourceError::Checkpoint(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Replaces a small state file whole or not at all: written beside it, synced, renamed over it, the directory
/// synced.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> Result<(), SourceError> {
    let fail = |e: std::io::Error| SourceError::Checkpoint(format!("cannot write {}: {e}", path.display()));
    // Beside the file under its whole name, so two state files in one directory never share a temporary.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(fail)?;
        file.write_all(bytes).map_err(fail)?;
        file.sync_all().map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(fail)?;
    }
    Ok(())
}
