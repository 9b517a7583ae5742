//! Configuration: defaults, then the TOML file, then `DINGGUARD_…` environment variables. Secrets may come from
//! `…_FILE` variables or `*_file` keys. Cross-field rules are checked here, once, with messages an operator can act
//! on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use dingguard_dingtalk::{CallbackCrypto, EncodingAesKey, OwnerKey, Token};
use dingguard_eventlog::{Durability, EmbeddedOptions};
use dingguard_model::{AppName, Secret, TopicPrefix, Topics};
use dingguard_receiver::{App, ReceiverSettings};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    /// A second, internal listener for `/metrics` (and `/healthz`, `/readyz`); then `/metrics` leaves the main one.
    pub ops_listen: Option<String>,
    #[serde(default)]
    pub http: HttpSection,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<String>,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub receiver: ReceiverSection,
    #[serde(default)]
    pub dingtalk: DingTalkSection,
    #[serde(default)]
    pub store: alerting::StoreSection,
    #[serde(default)]
    pub alerter: alerting::AlerterSection,
    #[serde(default)]
    pub notify: notify::NotifySection,
    #[serde(default)]
    pub console: console::ConsoleSection,
    #[serde(default)]
    pub approver: approver::ApproverSection,
    #[serde(default)]
    pub sources: sources::SourcesSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub kafka_brokers: Option<String>,
    pub topic_prefix: Option<String>,
    pub partitions: Option<i32>,
    pub replication_factor: Option<i32>,
    pub delivery_timeout_ms: Option<u64>,
    pub durability: Option<String>,
    pub unique_ids: Option<usize>,
    pub min_free_mb: Option<u64>,
    pub instance_id: Option<String>,
    /// `min.insync.replicas` of the topics dingguard creates on Kafka.
    pub min_insync_replicas: Option<i32>,
    /// How long Kafka keeps records of the topics dingguard creates.
    pub retention_hours: Option<u64>,
    /// Create the topics on start-up and refuse to start when one does not match (default true).
    pub ensure_topics: Option<bool>,
    #[serde(default)]
    pub kafka_properties: std::collections::BTreeMap<String, String>,
}

/// What every listener lets one client hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub max_connections: Option<usize>,
    pub header_read_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverSection {
    pub time_window_secs: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub replay_cache_entries: Option<usize>,
    pub readiness_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingTalkSection {
    #[serde(default)]
    pub apps: Vec<AppSection>,
    /// `[dingtalk.api]`: the app dingguard signs in to DingTalk's server API as, for the sources that fetch events.
    #[serde(default)]
    pub api: sources::DingTalkApiSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    pub name: String,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    pub aes_key: Option<Secret>,
    pub aes_key_file: Option<PathBuf>,
    /// The AppKey (console event subscription), CorpId (legacy registration) or SuiteKey (third-party suite).
    pub owner_key: String,
}

/// The receiver's replay cache in front of the embedded log: enough for minutes of callbacks at high rates.
const EMBEDDED_REPLAY_CACHE_ENTRIES: usize = 65_536;

#[derive(Clone)]
pub enum LogBackend {
    Embedded {
        path: PathBuf,
        durability: Durability,
        partitions: i32,
        /// Newest records whose `ce_id`s are held to refuse second copies.
        unique_ids: usize,
        /// Free space under which the log reports itself not ready.
        min_free_bytes: u64,
    },
    Kafka {
        brokers: String,
        partitions: i32,
        replication_factor: i32,
        delivery_timeout: Duration,
        properties: Vec<(String, String)>,
        /// This replica's stable name, for static group membership.
        instance_id: Option<String>,
        min_insync_replicas: Option<i32>,
        retention_hours: Option<u64>,
    },
}

/// By hand, so credentials among the client properties (SASL passwords, JAAS, key passwords) never show.
impl std::fmt::Debug for LogBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded { path, durability, partitions, unique_ids, min_free_bytes } => f
                .debug_struct("Embedded")
                .field("path", path)
                .field("durability", durability)
                .field("partitions", partitions)
                .field("unique_ids", unique_ids)
                .field("min_free_bytes", min_free_bytes)
                .finish(),
            Self::Kafka {
                brokers,
                partitions,
                replication_factor,
                delivery_timeout,
                properties,
                instance_id,
                min_insync_replicas,
                retention_hours,
            } => f
                .debug_struct("Kafka")
                .field("brokers", brokers)
                .field("partitions", partitions)
                .field("replication_factor", replication_factor)
                .field("min_insync_replicas", min_insync_replicas)
                .field("retention_hours", retention_hours)
                .field("delivery_timeout", delivery_timeout)
                .field("properties", &dingguard_model::RedactedProperties(properties))
                .field("instance_id", instance_id)
                .finish(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub ops_listen: Option<SocketAddr>,
    pub http: dingguard_web::HttpLimits,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub backend: LogBackend,
    /// Create the topics on start-up and refuse to start when one does not match.
    pub ensure_topics: bool,
    pub topics: Topics,
    pub receiver: ReceiverSettings,
    pub apps: Vec<App>,
    /// Set when no credentials were configured and demo ones were generated.
    pub demo: Option<DemoCredentials>,
    pub store: dingguard_store::StoreConfig,
    pub alerting: alerting::AlertingConfig,
    pub notify: notify::NotifySection,
    pub console: console::ConsoleConfig,
    pub approver: approver::ApproverConfig,
    pub sources: sources::SourcesConfig,
}

#[derive(Clone)]
pub struct DemoCredentials {
    pub token: String,
    pub aes_key: String,
    pub app_key: String,
    pub file: PathBuf,
}

impl std::fmt::Debug for DemoCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoCredentials")
            .field("app_key", &self.app_key)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// Reads variables through a function so tests can supply their own environment.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

/// An environment given as a map, for settings built in code.
pub struct VarsEnv(pub std::collections::HashMap<String, String>);

impl Env for VarsEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().filter(|v| !v.is_empty())
    }
}

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// `NAME`, else the file `NAME_FILE` names; both set is refused.
fn secret(env: &dyn Env, name: &str) -> Result<Option<Secret>> {
    let file = env.var(&format!("{name}_FILE")).map(PathBuf::from);
    Ok(Secret::from_value_or_file(name, env.var(name).map(Secret::new), file.as_deref())?)
}

pub(crate) fn parse_env<T: std::str::FromStr>(env: &dyn Env, name: &str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    env.var(name).map(|v| v.parse::<T>().map_err(|e| anyhow::anyhow!("{name}={v:?} is invalid: {e}"))).transpose()
}

impl Config {
    /// `generate_demo`: when no credentials are configured, create demo ones (services) or leave the app list
    /// empty (tools that only read the log).
    pub fn load(file: Option<&Path>, env: &dyn Env, generate_demo: bool) -> Result<Self> {
        let parsed: FileConfig = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read configuration file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("configuration file {} is invalid", path.display()))?
            }
            None => FileConfig::default(),
        };
        Self::build(parsed, env, generate_demo)
    }

    /// Settings for a deployment kept in `data_dir` with nothing else configured and no demo credentials: what the
    /// test kits and the bench start from before they set the parts they need.
    pub fn for_data_dir(data_dir: &Path) -> Result<Self> {
        let env = VarsEnv([("DINGGUARD_DATA_DIR".to_owned(), data_dir.display().to_string())].into());
        Self::build(FileConfig::default(), &env, false)
    }

    pub fn build(file: FileConfig, env: &dyn Env, generate_demo: bool) -> Result<Self> {
        let listen_raw = env.var("DINGGUARD_LISTEN").or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_raw
            .parse()
            .with_context(|| format!("listen address {listen_raw:?} is not HOST:PORT with a numeric IP"))?;
        let ops_listen = match env.var("DINGGUARD_OPS_LISTEN").or(file.ops_listen) {
            Some(raw) => Some(
                raw.parse::<SocketAddr>()
                    .with_context(|| format!("ops listen address {raw:?} is not HOST:PORT with a numeric IP"))?,
            ),
            None => None,
        };
        if ops_listen.is_some_and(|ops| ops.port() != 0 && ops == listen) {
            bail!("DINGGUARD_OPS_LISTEN must differ from DINGGUARD_LISTEN: it is the internal listener for /metrics");
        }
        let http = http_limits(&file.http, env)?;
        let data_dir =
            env.var("DINGGUARD_DATA_DIR").map(PathBuf::from).or(file.data_dir).unwrap_or_else(|| "data".into());
        let log_format = match env.var("DINGGUARD_LOG_FORMAT").or(file.log_format).as_deref() {
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            None | Some("auto") => {
                if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                    LogFormat::Text
                } else {
                    LogFormat::Json
                }
            }
            Some(other) => bail!("log format {other:?} must be json, text or auto"),
        };

        let prefix_raw =
            env.var("DINGGUARD_TOPIC_PREFIX").or(file.log.topic_prefix).unwrap_or_else(|| "dingguard".into());
        let topics = Topics::new(&TopicPrefix::parse(&prefix_raw)?);
        let partitions = parse_env::<i32>(env, "DINGGUARD_LOG_PARTITIONS")?.or(file.log.partitions);
        if partitions.is_some_and(|p| !(1..=1000).contains(&p)) {
            bail!("log partitions must be between 1 and 1000");
        }
        let brokers = env.var("DINGGUARD_KAFKA_BROKERS").or(file.log.kafka_brokers).filter(|b| !b.trim().is_empty());
        let ensure_topics = file.log.ensure_topics.unwrap_or(true);
        let backend = match brokers {
            Some(brokers) => {
                let delivery_ms = parse_env::<u64>(env, "DINGGUARD_KAFKA_DELIVERY_TIMEOUT_MS")?
                    .or(file.log.delivery_timeout_ms)
                    .unwrap_or(1000);
                if !(100..=1400).contains(&delivery_ms) {
                    bail!(
                        "kafka delivery timeout {delivery_ms} ms must be between 100 and 1400 ms, so the reply still \
                         beats DingTalk's 1.5 s deadline"
                    );
                }
                if file.log.durability.is_some() {
                    bail!("log.durability applies to the embedded log only; Kafka always writes with acks=all");
                }
                if file.log.unique_ids.is_some() {
                    bail!("log.unique_ids applies to the embedded log only; on Kafka consumers drop copies by ce_id");
                }
                if file.log.min_free_mb.is_some() {
                    bail!("log.min_free_mb applies to the embedded log only; the brokers watch their own disks");
                }
                let instance_id = env.var("DINGGUARD_INSTANCE_ID").or(file.log.instance_id.clone());
                if let Some(id) = &instance_id
                    && (id.is_empty()
                        || id.len() > 100
                        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
                {
                    bail!(
                        "instance id {id:?} must be 1 to 100 letters, digits, '.', '_' or '-' (e.g. the pod name of \
                         a StatefulSet), and differ between replicas"
                    );
                }
                if file.log.kafka_properties.contains_key("group.instance.id") {
                    bail!("set the replica's name with DINGGUARD_INSTANCE_ID (log.instance_id), not group.instance.id");
                }
                let replication_factor = file.log.replication_factor.unwrap_or(1);
                if !(1..=16).contains(&replication_factor) {
                    bail!("log.replication_factor {replication_factor} must be between 1 and 16");
                }
                if let Some(isr) = file.log.min_insync_replicas
                    && !(1..=replication_factor).contains(&isr)
                {
                    bail!(
                        "log.min_insync_replicas {isr} must be between 1 and log.replication_factor \
                         ({replication_factor}): more would refuse every write"
                    );
                }
                if file.log.retention_hours.is_some_and(|h| h == 0 || h > 24 * 3650) {
                    bail!("log.retention_hours must be between 1 and ten years");
                }
                LogBackend::Kafka {
                    brokers,
                    partitions: partitions.unwrap_or(6),
                    replication_factor,
                    min_insync_replicas: file.log.min_insync_replicas,
                    retention_hours: file.log.retention_hours,
                    delivery_timeout: Duration::from_millis(delivery_ms),
                    properties: file.log.kafka_properties.into_iter().collect(),
                    instance_id,
                }
            }
            None => {
                if file.log.instance_id.is_some() {
                    bail!(
                        "log.instance_id names a replica in a Kafka consumer group; it needs DINGGUARD_KAFKA_BROKERS"
                    );
                }
                if !file.log.kafka_properties.is_empty()
                    || file.log.replication_factor.is_some()
                    || file.log.min_insync_replicas.is_some()
                    || file.log.retention_hours.is_some()
                {
                    bail!(
                        "log.kafka_properties, log.replication_factor, log.min_insync_replicas and \
                         log.retention_hours need DINGGUARD_KAFKA_BROKERS (or log.kafka_brokers)"
                    );
                }
                let durability = match env.var("DINGGUARD_LOG_DURABILITY").or(file.log.durability).as_deref() {
                    None | Some("full") => Durability::Full,
                    Some("normal") => Durability::Normal,
                    Some(other) => bail!("log durability {other:?} must be full or normal"),
                };
                let unique_ids = parse_env::<usize>(env, "DINGGUARD_LOG_UNIQUE_IDS")?
                    .or(file.log.unique_ids)
                    .unwrap_or(EmbeddedOptions::default().unique_ids);
                if unique_ids == 0 {
                    bail!("log unique_ids must be at least 1: it is how many recent ce_ids the embedded log remembers");
                }
                let min_free_mb = parse_env::<u64>(env, "DINGGUARD_LOG_MIN_FREE_MB")?.or(file.log.min_free_mb);
                LogBackend::Embedded {
                    path: data_dir.join("eventlog.db"),
                    durability,
                    partitions: partitions.unwrap_or(4),
                    unique_ids,
                    min_free_bytes: min_free_mb
                        .map_or(EmbeddedOptions::default().min_free_bytes, |mb| mb.saturating_mul(1024 * 1024)),
                }
            }
        };

        let defaults = ReceiverSettings::default();
        let window = parse_env::<u64>(env, "DINGGUARD_TIME_WINDOW_SECS")?.or(file.receiver.time_window_secs);
        let receiver = ReceiverSettings {
            time_window: window.map_or(defaults.time_window, Duration::from_secs),
            max_body_bytes: parse_env(env, "DINGGUARD_MAX_BODY_BYTES")?
                .or(file.receiver.max_body_bytes)
                .unwrap_or(defaults.max_body_bytes),
            replay_cache_entries: file.receiver.replay_cache_entries.unwrap_or(match backend {
                // The embedded log refuses copies itself, so the receiver's cache only saves it the work of
                // recent replays and concurrent copies; on Kafka it is the only check and covers the window.
                LogBackend::Embedded { .. } => EMBEDDED_REPLAY_CACHE_ENTRIES,
                LogBackend::Kafka { .. } => defaults.replay_cache_entries,
            }),
            readiness_interval: parse_env::<u64>(env, "DINGGUARD_READINESS_INTERVAL_MS")?
                .or(file.receiver.readiness_interval_ms)
                .map_or(defaults.readiness_interval, Duration::from_millis),
        };
        if receiver.time_window < Duration::from_secs(1) {
            bail!("the callback time window must be at least 1 second");
        }
        if !(1024..=64 * 1024 * 1024).contains(&receiver.max_body_bytes) {
            bail!("max body bytes must be between 1 KiB and 64 MiB");
        }

        let mut apps = Vec::new();
        for section in file.dingtalk.apps {
            apps.push(app_from_section(section)?);
        }
        let (env_token, env_aes, env_app_key) = (
            secret(env, "DINGGUARD_DINGTALK_TOKEN")?,
            secret(env, "DINGGUARD_DINGTALK_AES_KEY")?,
            env.var("DINGGUARD_DINGTALK_APP_KEY"),
        );
        let mut demo = None;
        match (env_token, env_aes, env_app_key) {
            (Some(token), Some(aes), Some(app_key)) => {
                apps.retain(|a| a.name.as_str() != AppName::DEFAULT);
                apps.push(build_app(AppName::default_app(), token.expose(), aes.expose(), &app_key)?);
            }
            (None, None, None) => {
                if apps.is_empty() && generate_demo {
                    let creds = demo_credentials(&data_dir)?;
                    apps.push(build_app(AppName::default_app(), &creds.token, &creds.aes_key, &creds.app_key)?);
                    demo = Some(creds);
                }
            }
            (token, aes, key) => {
                let missing: Vec<&str> = [
                    (token.is_none(), "DINGGUARD_DINGTALK_TOKEN"),
                    (aes.is_none(), "DINGGUARD_DINGTALK_AES_KEY"),
                    (key.is_none(), "DINGGUARD_DINGTALK_APP_KEY"),
                ]
                .into_iter()
                .filter_map(|(missing, name)| missing.then_some(name))
                .collect();
                bail!("DingTalk credentials are incomplete: {} not set; set all three or none", missing.join(", "));
            }
        }
        let mut names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        names.sort_unstable();
        if let Some(dup) = names.windows(2).find(|w| w[0] == w[1]) {
            bail!("two DingTalk apps are named {:?}; app names must be unique", dup[0]);
        }
        let store = alerting::store(file.store, env, &data_dir)?;
        let alerting = alerting::alerting(file.alerter, env)?;
        let mut notify = file.notify;
        notify.read_secret_files()?;
        Ok(Self {
            listen,
            ops_listen,
            http,
            data_dir,
            log_format,
            backend,
            ensure_topics,
            topics,
            receiver,
            apps,
            demo,
            store,
            alerting,
            notify,
            console: console::console(file.console, env)?,
            approver: approver::approver(file.approver, env)?,
            sources: sources::sources(file.dingtalk.api, file.sources, env)?,
        })
    }
}

fn http_limits(section: &HttpSection, env: &dyn Env) -> Result<dingguard_web::HttpLimits> {
    let defaults = dingguard_web::HttpLimits::default();
    let max_connections = parse_env::<usize>(env, "DINGGUARD_HTTP_MAX_CONNECTIONS")?
        .or(section.max_connections)
        .unwrap_or(defaults.max_connections);
    let header_ms = parse_env::<u64>(env, "DINGGUARD_HTTP_HEADER_TIMEOUT_MS")?.or(section.header_read_timeout_ms);
    let request_ms = parse_env::<u64>(env, "DINGGUARD_HTTP_REQUEST_TIMEOUT_MS")?.or(section.request_timeout_ms);
    let limits = dingguard_web::HttpLimits {
        max_connections,
        header_read_timeout: header_ms.map_or(defaults.header_read_timeout, Duration::from_millis),
        request_timeout: request_ms.map_or(defaults.request_timeout, Duration::from_millis),
        ..defaults
    };
    if !(1..=1_000_000).contains(&limits.max_connections) {
        bail!("http max_connections must be between 1 and 1000000");
    }
    let second = Duration::from_secs(1);
    if limits.header_read_timeout < second / 10 || limits.header_read_timeout > Duration::from_secs(600) {
        bail!("http header_read_timeout_ms must be between 100 ms and 10 minutes");
    }
    if limits.request_timeout < second || limits.request_timeout > Duration::from_secs(3600) {
        bail!("http request_timeout_ms must be between 1 s and one hour");
    }
    Ok(limits)
}

fn app_from_section(section: AppSection) -> Result<App> {
    let name = AppName::parse(&section.name)?;
    let what = |key: &str| format!("app {name}: {key}");
    let token = Secret::from_value_or_file(&what("token"), section.token, section.token_file.as_deref())?
        .with_context(|| format!("app {name}: set token or token_file"))?;
    let aes = Secret::from_value_or_file(&what("aes_key"), section.aes_key, section.aes_key_file.as_deref())?
        .with_context(|| format!("app {name}: set aes_key or aes_key_file"))?;
    build_app(name, token.expose(), aes.expose(), &section.owner_key)
}

fn build_app(name: AppName, token: &str, aes: &str, owner: &str) -> Result<App> {
    let crypto = CallbackCrypto::new(
        Token::parse(token).with_context(|| format!("app {name}: signing token"))?,
        EncodingAesKey::parse(aes).with_context(|| format!("app {name}: EncodingAESKey"))?,
        OwnerKey::parse(owner).with_context(|| format!("app {name}: owner key"))?,
    );
    Ok(App { name, crypto })
}

#[derive(Deserialize, serde::Serialize)]
struct DemoFile {
    token: String,
    aes_key: String,
    app_key: String,
}

/// Demo credentials, generated once per data directory so restarts and the simulator keep matching.
fn demo_credentials(data_dir: &Path) -> Result<DemoCredentials> {
    let file = data_dir.join("demo-credentials.toml");
    if let Ok(text) = std::fs::read_to_string(&file) {
        let d: DemoFile = toml::from_str(&text).with_context(|| format!("{} is damaged; delete it", file.display()))?;
        return Ok(DemoCredentials { token: d.token, aes_key: d.aes_key, app_key: d.app_key, file });
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let d = DemoFile {
        token: dingguard_simulator::random_id("demo").chars().take(32).collect(),
        aes_key: EncodingAesKey::generate(),
        app_key: format!("dingdemo{}", &dingguard_simulator::random_id("")[..12]),
    };
    let text = format!(
        "# Demo DingTalk credentials generated by `dingguard serve`; configure real ones to replace them.\n\
         token = {:?}\naes_key = {:?}\napp_key = {:?}\n",
        d.token, d.aes_key, d.app_key
    );
    std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(DemoCredentials { token: d.token, aes_key: d.aes_key, app_key: d.app_key, file })
}

pub mod alerting;
pub mod approver;
pub mod console;
pub mod notify;
pub mod sources;

#[cfg(test)]
mod tests;
