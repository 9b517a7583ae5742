//! A small tmpfs to fill, for the tests of a full disk. Mounting needs root; the tests that use it say why they
//! skip anywhere else.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

pub struct Tmpfs {
    dir: tempfile::TempDir,
}

/// Why a full-disk test cannot run here, if it cannot.
pub fn cannot_mount() -> Option<String> {
    let uid = std::process::Command::new("id").arg("-u").output().ok()?;
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
    (uid != "0").then(|| format!("mounting a tmpfs needs root and this runs as uid {uid}"))
}

impl Tmpfs {
    /// A fresh tmpfs of `mib` MiB on a new directory, unmounted when dropped.
    pub fn mount(mib: u32) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .context("running mount")?;
        ensure!(status.success(), "mount -t tmpfs failed on {}", dir.path().display());
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system refuses; its path, to delete to free the space again.
    pub fn fill(&self) -> Result<PathBuf> {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path)?;
        let chunk = vec![0u8; 256 * 1024];
        loop {
            if let Err(error) = file.write_all(&chunk).and_then(|()| file.sync_data()) {
                ensure!(error.raw_os_error() == Some(libc_enospc()), "filling failed otherwise: {error}");
                break;
            }
        }
        // The last partial chunk may have left a few blocks: take them too.
        for _ in 0..64 {
            if file.write_all(&[0u8; 512]).and_then(|()| file.sync_data()).is_err() {
                break;
            }
        }
        Ok(path)
    }
}

/// ENOSPC on Linux.
const fn libc_enospc() -> i32 {
    28
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so a file still open in a dying child does not keep the mount behind.
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}
