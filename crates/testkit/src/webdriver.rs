//! Just enough of the W3C WebDriver protocol to drive the console in a real headless Chromium through
//! chromedriver: open a page, find elements, type, click, read text, run a line of script.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key WebDriver uses for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    http: reqwest::Client,
    port: u16,
    session: String,
    _driver: tokio::process::Child,
    _profile: TempDir,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session with a throwaway profile. A missing
    /// browser is an error, never a reason to skip: the pages must be tested in a real one.
    pub async fn launch() -> Result<Self> {
        for path in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(path).exists() {
                bail!(
                    "{path} is missing: the console page test needs a real headless Chromium and chromedriver. \
                     Install them with scripts/install-test-deps.sh (apt-get install chromium chromium-driver)."
                );
            }
        }
        let port = free_port()?;
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {CHROMEDRIVER}"))?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let status = http.get(format!("{base}/status")).send().await;
            if let Ok(response) = status
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == true
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready on port {port} within 15 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir()?;
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        } } });
        let reply: Value = http.post(format!("{base}/session")).json(&capabilities).send().await?.json().await?;
        let session = reply["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("Chromium did not start: {}", reply["value"]))?
            .to_owned();
        Ok(Self { http, port, session, _driver: driver, _profile: profile })
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("http://127.0.0.1:{}/session/{}{path}", self.port, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply: Value = request.send().await?.json().await?;
        if let Some(error) = reply["value"]["error"].as_str() {
            bail!("{error}: {}", reply["value"]["message"].as_str().unwrap_or_default());
        }
        Ok(reply["value"].clone())
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await.map(drop)
    }

    pub async fn url(&self) -> Result<String> {
        Ok(self.command(reqwest::Method::GET, "/url", None).await?.as_str().unwrap_or_default().to_owned())
    }

    /// The element matching a CSS selector, if there is one now.
    pub async fn try_find(&self, css: &str) -> Result<Option<String>> {
        let body = json!({ "using": "css selector", "value": css });
        match self.command(reqwest::Method::POST, "/element", Some(body)).await {
            Ok(found) => Ok(found[ELEMENT].as_str().map(str::to_owned)),
            Err(error) if error.to_string().starts_with("no such element") => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub async fn find(&self, css: &str) -> Result<String> {
        self.try_find(css).await?.ok_or_else(|| anyhow!("no element matches {css}"))
    }

    /// Polls the page (never reloading it) until an element matches.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.try_find(css).await? {
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!("no element matched {css} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn type_into(&self, element: &str, text: &str) -> Result<()> {
        let path = format!("/element/{element}/value");
        self.command(reqwest::Method::POST, &path, Some(json!({ "text": text }))).await.map(drop)
    }

    pub async fn click(&self, element: &str) -> Result<()> {
        self.command(reqwest::Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await.map(drop)
    }

    pub async fn text(&self, element: &str) -> Result<String> {
        let text = self.command(reqwest::Method::GET, &format!("/element/{element}/text"), None).await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    pub async fn execute(&self, script: &str) -> Result<Value> {
        self.command(reqwest::Method::POST, "/execute/sync", Some(json!({ "script": script, "args": [] }))).await
    }
}

/// Ends the session so chromedriver closes Chromium before it is itself killed; plain blocking HTTP, since
/// drop cannot wait on the runtime.
impl Drop for Browser {
    fn drop(&mut self) {
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session, self.port
        );
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = stream.write_all(request.as_bytes());
            // chromedriver answers once Chromium has quit; the first bytes of the reply are enough.
            let _ = stream.read(&mut [0u8; 512]);
        }
    }
}
