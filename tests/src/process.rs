//! The built `dingguard` binary as a child process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// `DINGGUARD_BIN`, else the `dingguard` next to the running test's own target directory.
pub fn dingguard_bin() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("DINGGUARD_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>/dingguard
    let profile_dir = exe.parent().and_then(|p| p.parent()).context("test binary has no target directory")?;
    let bin = profile_dir.join("dingguard");
    if !bin.exists() {
        bail!("{} is missing; build it first (make test does: cargo build -p dingguard)", bin.display());
    }
    Ok(bin)
}

fn command(args: &[&str], envs: &[(&str, String)]) -> Result<Command> {
    let mut cmd = Command::new(dingguard_bin()?);
    cmd.args(args).env("DINGGUARD_LOG_FORMAT", "json").env("RUST_LOG", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Ok(cmd)
}

/// The environment of a deployment kept in `data_dir`, with these DingTalk credentials (token, EncodingAESKey,
/// AppKey) and the repository's rule pack.
pub fn deployment_env(data_dir: &std::path::Path, [token, aes_key, app_key]: [&str; 3]) -> Vec<(&'static str, String)> {
    vec![
        ("DINGGUARD_DATA_DIR", data_dir.display().to_string()),
        ("DINGGUARD_DINGTALK_TOKEN", token.to_owned()),
        ("DINGGUARD_DINGTALK_AES_KEY", aes_key.to_owned()),
        ("DINGGUARD_DINGTALK_APP_KEY", app_key.to_owned()),
        ("DINGGUARD_RULES", crate::workspace_root().join("rules").display().to_string()),
    ]
}

/// Runs a command to completion: (exit success, stdout, stderr).
pub async fn run(args: &[&str], envs: &[(&str, String)]) -> Result<(bool, String, String)> {
    let output = tokio::time::timeout(Duration::from_secs(120), command(args, envs)?.output())
        .await
        .context("dingguard command timed out")??;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// Every record of `topic` as `dingguard log dump` prints it: `partition`, `offset`, `key`, `headers`, `value`.
pub async fn dump(topic: &str, envs: &[(&str, String)]) -> Result<Vec<serde_json::Value>> {
    let (ok, out, err) = run(&["log", "dump", "--topic", topic], envs).await?;
    anyhow::ensure!(ok, "log dump of {topic} failed: {err}");
    out.lines().map(|line| Ok(serde_json::from_str(line)?)).collect()
}

/// Dumps `topic` until `done` holds for its records or `timeout` passes; the last records either way.
pub async fn dump_until(
    topic: &str,
    envs: &[(&str, String)],
    timeout: Duration,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Result<Vec<serde_json::Value>> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let records = dump(topic, envs).await?;
        if done(&records) || std::time::Instant::now() > deadline {
            return Ok(records);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A dumped record's value parsed as JSON (`null` when it is not JSON).
pub fn value_json(record: &serde_json::Value) -> serde_json::Value {
    record["value"].as_str().and_then(|v| serde_json::from_str(v).ok()).unwrap_or_default()
}

/// A dumped record's `ce_type` header.
pub fn ce_type(record: &serde_json::Value) -> &str {
    record["headers"]["ce_type"].as_str().unwrap_or_default()
}

/// A long-running service (`serve`, `receiver`).
pub struct Service {
    child: Child,
    pub addr: SocketAddr,
    /// What the service printed before it was ready: the listen line and any demo-credential notice.
    pub banner: String,
    /// What it printed after.
    later: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Service {
    /// Starts the service on port 0 and waits for its "listening on" line.
    pub async fn start(args: &[&str], envs: &[(&str, String)]) -> Result<Self> {
        Self::start_logging(args, envs, None).await
    }

    /// Like [`Self::start`], with the service's log lines written to `log_file`.
    pub async fn start_logging(
        args: &[&str],
        envs: &[(&str, String)],
        log_file: Option<&std::path::Path>,
    ) -> Result<Self> {
        let mut envs = envs.to_vec();
        if !envs.iter().any(|(k, _)| *k == "DINGGUARD_LISTEN") {
            envs.push(("DINGGUARD_LISTEN", "127.0.0.1:0".into()));
        }
        let stderr = match log_file {
            Some(path) => Stdio::from(std::fs::File::create(path)?),
            None => Stdio::inherit(),
        };
        let mut child = command(args, &envs)?.stdout(Stdio::piped()).stderr(stderr).spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = String::new();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                banner.push_str(&line);
                banner.push('\n');
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr: SocketAddr = rest.split_whitespace().next().context("address")?.parse()?;
                    return Ok::<_, anyhow::Error>(addr);
                }
            }
            bail!("dingguard exited before listening")
        })
        .await
        .context("dingguard did not start within 30 s")??;
        // Keep draining stdout so the child never blocks on a full pipe.
        let later = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = later.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut kept = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                // Bounded: a chatty service does not grow the test's memory.
                if kept.len() < 1 << 20 {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
        });
        Ok(Self { child, addr, banner, later })
    }

    /// Waits until the service prints a line containing `needle` after it started.
    pub async fn wait_for_output(&self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.later.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(needle) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the service did not print {needle:?} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// What it printed after it started (the first MiB).
    pub fn output(&self) -> String {
        self.later.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// SIGKILL: no shutdown hooks, no flushing.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits for the process to exit by itself, for at most `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        Ok(tokio::time::timeout(timeout, self.child.wait()).await.context("the process is still running")??)
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().context("already exited")?;
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
        Ok(tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await??)
    }
}

impl Drop for Service {
    /// Kills and reaps the child before the test returns (rather than tokio's kill-on-drop, which does not wait): it
    /// writes to the test's stderr, and a child still dying after the test ended makes the runner report a leak.
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
