//! A real Kafka-protocol broker (Tansu) per test, started from the binary `scripts/install-test-deps.sh` installs.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use crate::{free_port, workspace_root};

pub struct Broker {
    child: Option<Child>,
    port: u16,
}

/// The broker binary: `DINGGUARD_TANSU`, else `.tools/bin/tansu`. Missing is an error, never a skip.
pub fn tansu_path() -> Result<PathBuf> {
    let path = std::env::var_os("DINGGUARD_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools/bin/tansu"));
    if !path.exists() {
        bail!(
            "Kafka-protocol broker not found at {}; run `make test` (it installs it) or scripts/install-test-deps.sh",
            path.display()
        );
    }
    Ok(path)
}

impl Broker {
    pub async fn start() -> Result<Self> {
        let mut broker = Self { child: None, port: free_port() };
        broker.launch().await?;
        Ok(broker)
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) -> Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu_path()?)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting tansu")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            if Instant::now() > deadline {
                bail!("broker did not listen on port {} within 20 s", self.port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops the broker's process without closing its sockets (SIGSTOP): connections stay open and requests go
    /// unanswered, as with a hung broker.
    pub fn freeze(&self) -> Result<()> {
        self.signal("-STOP")
    }

    /// Lets a frozen broker run again (SIGCONT).
    pub fn thaw(&self) -> Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.child.as_ref().and_then(Child::id).context("the broker is not running")?;
        let status = std::process::Command::new("kill").args([signal, &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
    }

    /// Kills the broker outright, as a crash would.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port, with empty storage.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await;
        self.launch().await
    }
}
