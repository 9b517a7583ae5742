//! `spawn_app`: the receiver in-process on port 0 with a real event log, and a typed client for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use dingguard_dingtalk::{CallbackCrypto, EncodingAesKey, OwnerKey, Token};
use dingguard_eventlog::{EmbeddedLog, EmbeddedOptions, EventLog, KafkaLog, KafkaOptions, LoggedRecord};
use dingguard_model::{AppName, ManualClock, TopicPrefix, Topics};
use dingguard_receiver::{App, ReceiverSettings};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::now_ms;
use crate::reference::ReferenceApp;

#[derive(Debug, Clone)]
pub enum Backend {
    Embedded,
    Kafka { bootstrap: String },
}

pub struct TestOptions {
    pub backend: Backend,
    pub settings: ReceiverSettings,
    /// Extra named apps besides `default`.
    pub named_apps: Vec<&'static str>,
}

impl TestOptions {
    pub fn new(backend: Backend) -> Self {
        let settings =
            ReceiverSettings { readiness_interval: Duration::from_millis(200), ..ReceiverSettings::default() };
        Self { backend, settings, named_apps: Vec::new() }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// Credentials of the `default` app, held by the independent implementation.
    pub app: ReferenceApp,
    pub named: Vec<(&'static str, ReferenceApp)>,
    pub log: EventLog,
    pub topics: Topics,
    pub clock: ManualClock,
    http: reqwest::Client,
    shutdown: CancellationToken,
    _dir: TempDir,
}

fn to_app(name: &str, reference: &ReferenceApp) -> App {
    App {
        name: AppName::parse(name).expect("valid test app name"),
        crypto: CallbackCrypto::new(
            Token::parse(&reference.token).expect("token"),
            EncodingAesKey::parse(&reference.aes_key).expect("aes key"),
            OwnerKey::parse(&reference.owner).expect("owner"),
        ),
    }
}

pub fn open_log(backend: &Backend, dir: &std::path::Path) -> Result<EventLog> {
    Ok(match backend {
        Backend::Embedded => {
            EventLog::Embedded(EmbeddedLog::open(dir.join("eventlog.db"), EmbeddedOptions::default())?)
        }
        Backend::Kafka { bootstrap } => {
            let mut options = KafkaOptions::new(bootstrap.clone());
            options.partitions = 3;
            // librdkafka's own debug contexts (e.g. "eos,broker") when a Kafka test needs investigating.
            if let Ok(debug) = std::env::var("DINGGUARD_TEST_KAFKA_DEBUG") {
                options.properties.push(("debug".into(), debug));
            }
            // A member that vanished holds up its group's next join until these expire; keep them short.
            options.consumer_properties =
                [("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500"), ("max.poll.interval.ms", "6000")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
            EventLog::Kafka(KafkaLog::connect(options)?)
        }
    })
}

/// The receiver as `dingguard receiver` runs it, built by the composition root, with the test's log, clock, apps
/// and receiver settings.
pub async fn spawn_app(options: TestOptions) -> Result<TestApp> {
    let dir = tempfile::tempdir()?;
    let log = open_log(&options.backend, dir.path())?;
    let mut config = dingguard::config::Config::for_data_dir(dir.path())?;
    config.topics = Topics::new(&TopicPrefix::default());
    let topics = config.topics.clone();
    log.ensure_topics(&topics.all()).await?;
    let app = ReferenceApp::fresh();
    let named: Vec<_> = options.named_apps.iter().map(|n| (*n, ReferenceApp::fresh())).collect();
    let mut apps = vec![to_app(AppName::DEFAULT, &app)];
    apps.extend(named.iter().map(|(n, r)| to_app(n, r)));
    config.apps = apps;
    config.receiver = options.settings;
    let clock = ManualClock::new(now_ms());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let parts = dingguard::app::Parts { clock: Some(Arc::new(clock.clone())), log: Some(log.clone()), store: None };
    let built = dingguard::app::build(&config, dingguard::app::Mode::Receiver, listener, None, parts).await?;
    let (addr, shutdown) = (built.addr, built.shutdown.clone());
    tokio::spawn(built.run());
    let test_app = TestApp { addr, app, named, log, topics, clock, http: reqwest::Client::new(), shutdown, _dir: dir };
    test_app.wait_ready().await?;
    Ok(test_app)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn wait_ready(&self) -> Result<()> {
        for _ in 0..200 {
            if self.get("/readyz").await?.0 == 200 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("receiver never became ready")
    }

    pub async fn post(&self, path: &str, query: &str, body: Vec<u8>) -> Result<Reply> {
        let response = self
            .http
            .post(format!("{}?{query}", self.url(path)))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        Ok(Reply { status: response.status().as_u16(), body: response.bytes().await?.to_vec() })
    }

    /// A push of `message` from the default app, signed now.
    pub async fn push(&self, message: &[u8]) -> Result<Reply> {
        let (query, body) = self.app.push(message, now_ms());
        self.post("/dingtalk/callback", &query, body).await
    }

    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        let response = self.http.get(self.url(path)).send().await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    pub async fn events(&self) -> Result<Vec<LoggedRecord>> {
        Ok(self.log.read_all(&self.topics.events).await?)
    }

    /// Sum of the samples whose line starts with `selector`, e.g. `dingguard_callbacks_total{app="default",outcome="rejected",reason="bad_signature"}`.
    pub async fn metric(&self, selector: &str) -> Result<f64> {
        let (_, text) = self.get("/metrics").await?;
        Ok(metric_in(&text, selector))
    }
}

pub fn metric_in(text: &str, selector: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(selector)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}
