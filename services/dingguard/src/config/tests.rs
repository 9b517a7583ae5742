use std::collections::HashMap;

use super::*;

struct MapEnv(HashMap<&'static str, String>);

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

fn env(pairs: &[(&'static str, &str)]) -> MapEnv {
    MapEnv(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
}

const AES: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";

#[test]
fn env_credentials_make_the_default_app_and_kafka_is_chosen_by_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&[
        ("DINGGUARD_DATA_DIR", dir.path().to_str().unwrap()),
        ("DINGGUARD_DINGTALK_TOKEN", "tok"),
        ("DINGGUARD_DINGTALK_AES_KEY", AES),
        ("DINGGUARD_DINGTALK_APP_KEY", "dingabc"),
        ("DINGGUARD_KAFKA_BROKERS", "127.0.0.1:9092"),
        ("DINGGUARD_TOPIC_PREFIX", "acme"),
    ]);
    let config = Config::build(FileConfig::default(), &e, true).unwrap();
    assert_eq!(config.apps.len(), 1);
    assert_eq!(config.apps[0].name.as_str(), "default");
    assert!(config.demo.is_none());
    assert!(matches!(config.backend, LogBackend::Kafka { .. }));
    assert_eq!(config.receiver.replay_cache_entries, 1_000_000, "on Kafka the cache is the only replay check");
    assert_eq!(config.topics.events, "acme.events");
    assert!(!format!("{config:?}").contains("tok\""), "secrets leak into Debug");
}

#[test]
fn the_embedded_log_remembers_as_many_ids_as_asked_and_kafka_refuses_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let config = Config::build(
        FileConfig::default(),
        &env(&[("DINGGUARD_DATA_DIR", d), ("DINGGUARD_LOG_UNIQUE_IDS", "5000")]),
        true,
    )
    .unwrap();
    assert!(matches!(config.backend, LogBackend::Embedded { unique_ids: 5000, .. }));
    assert_eq!(config.receiver.replay_cache_entries, EMBEDDED_REPLAY_CACHE_ENTRIES);
    let mut file = FileConfig::default();
    file.log.unique_ids = Some(10);
    let err = Config::build(file, &env(&[("DINGGUARD_DATA_DIR", d), ("DINGGUARD_KAFKA_BROKERS", "k:9092")]), true)
        .unwrap_err();
    assert!(format!("{err:#}").contains("embedded log only"), "{err:#}");
}

#[test]
fn no_credentials_generate_stable_demo_ones() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(&[("DINGGUARD_DATA_DIR", dir.path().to_str().unwrap())]);
    let first = Config::build(FileConfig::default(), &e, true).unwrap().demo.unwrap();
    let second = Config::build(FileConfig::default(), &e, true).unwrap().demo.unwrap();
    assert_eq!(first.aes_key, second.aes_key);
    let config = Config::build(FileConfig::default(), &e, true).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains(&first.aes_key) && !debug.contains(&first.token), "demo secrets leak into Debug");
    assert!(EncodingAesKey::parse(&first.aes_key).is_ok());
}

#[test]
fn incomplete_credentials_name_what_is_missing() {
    let e = env(&[("DINGGUARD_DINGTALK_TOKEN", "tok")]);
    let err = Config::build(FileConfig::default(), &e, true).unwrap_err().to_string();
    assert!(err.contains("DINGGUARD_DINGTALK_AES_KEY") && err.contains("DINGGUARD_DINGTALK_APP_KEY"), "{err}");
}

#[test]
fn bad_values_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for (pairs, needle) in [
        (vec![("DINGGUARD_LISTEN", "nowhere")], "listen address"),
        (vec![("DINGGUARD_KAFKA_BROKERS", "k:9092"), ("DINGGUARD_KAFKA_DELIVERY_TIMEOUT_MS", "5000")], "1.5 s"),
        (vec![("DINGGUARD_TOPIC_PREFIX", "bad prefix")], "topic prefix"),
        (vec![("DINGGUARD_MAX_BODY_BYTES", "ten")], "DINGGUARD_MAX_BODY_BYTES"),
        (vec![("DINGGUARD_LOG_UNIQUE_IDS", "0")], "at least 1"),
        (vec![("DINGGUARD_LOG_UNIQUE_IDS", "many")], "DINGGUARD_LOG_UNIQUE_IDS"),
        (vec![("DINGGUARD_OPS_LISTEN", "internal")], "ops listen address"),
        (vec![("DINGGUARD_LISTEN", "127.0.0.1:9100"), ("DINGGUARD_OPS_LISTEN", "127.0.0.1:9100")], "must differ"),
        (vec![("DINGGUARD_HTTP_MAX_CONNECTIONS", "0")], "max_connections"),
        (vec![("DINGGUARD_HTTP_HEADER_TIMEOUT_MS", "5")], "header_read_timeout_ms"),
        (vec![("DINGGUARD_HTTP_REQUEST_TIMEOUT_MS", "100")], "request_timeout_ms"),
        (vec![("DINGGUARD_APPROVER_MAX_OPEN_PER_REQUESTER", "0")], "max_open_requests_per_requester"),
        (
            vec![
                ("DINGGUARD_APPROVER_MAX_OPEN_PER_REQUESTER", "50"),
                ("DINGGUARD_APPROVER_MAX_REQUESTS_PER_HOUR", "5"),
            ],
            "below max_open",
        ),
        (vec![("DINGGUARD_TRUSTED_PROXIES", "10.0.0.1, proxy.local")], "not an IP address"),
        (
            vec![
                ("DINGGUARD_DINGTALK_TOKEN", "t"),
                ("DINGGUARD_DINGTALK_AES_KEY", "short"),
                ("DINGGUARD_DINGTALK_APP_KEY", "k"),
            ],
            "EncodingAESKey",
        ),
    ] {
        let mut all = pairs.clone();
        all.push(("DINGGUARD_DATA_DIR", d));
        let err = format!("{:#}", Config::build(FileConfig::default(), &env(&all), true).unwrap_err());
        assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    }
}

#[test]
fn toml_apps_and_secret_files_load() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "filetoken\n").unwrap();
    let text = format!(
        r#"
listen = "127.0.0.1:9000"
[[dingtalk.apps]]
name = "hr"
token_file = {:?}
aes_key = "{AES}"
owner_key = "dinghr"
[[dingtalk.apps]]
name = "sales"
token = "t2"
aes_key = "{AES}"
owner_key = "dingsales"
"#,
        token_file
    );
    let file: FileConfig = toml::from_str(&text).unwrap();
    let config = Config::build(file, &env(&[("DINGGUARD_DATA_DIR", dir.path().to_str().unwrap())]), true).unwrap();
    assert_eq!(config.apps.len(), 2);
    assert_eq!(config.listen.port(), 9000);
    assert_eq!(config.ops_listen, None);
    assert_eq!(config.http, dingguard_web::HttpLimits::default());
    assert!(config.demo.is_none());
    assert!(toml::from_str::<FileConfig>("unknown_key = 1").is_err());
}

#[test]
fn limits_and_the_internal_listener_come_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
ops_listen = "127.0.0.1:9464"
[http]
max_connections = 64
header_read_timeout_ms = 2000
[approver]
max_open_requests_per_requester = 3
max_requests_per_hour = 12
[console]
trusted_proxies = ["10.0.0.5"]
"#;
    let file: FileConfig = toml::from_str(text).unwrap();
    let e = env(&[("DINGGUARD_DATA_DIR", dir.path().to_str().unwrap()), ("DINGGUARD_HTTP_REQUEST_TIMEOUT_MS", "5000")]);
    let config = Config::build(file, &e, true).unwrap();
    assert_eq!(config.ops_listen, Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(config.http.max_connections, 64);
    assert_eq!(config.http.header_read_timeout, Duration::from_secs(2));
    assert_eq!(config.http.request_timeout, Duration::from_secs(5), "the environment wins");
    assert_eq!(
        config.approver.limits,
        dingguard_approver::RequestLimits { max_open_per_requester: 3, max_per_hour: 12 }
    );
    assert_eq!(config.console.trusted_proxies, vec!["10.0.0.5".parse::<std::net::IpAddr>().unwrap()]);
}

#[test]
fn a_replica_name_is_checked_and_only_means_something_on_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let kafka = |id: &str| {
        Config::build(
            FileConfig::default(),
            &env(&[("DINGGUARD_DATA_DIR", d), ("DINGGUARD_KAFKA_BROKERS", "k:9092"), ("DINGGUARD_INSTANCE_ID", id)]),
            true,
        )
    };
    let config = kafka("alerter-0").unwrap();
    assert!(
        matches!(&config.backend, LogBackend::Kafka { instance_id: Some(id), .. } if id == "alerter-0"),
        "{:?}",
        config.backend
    );
    for bad in ["", "has space", "a/b", &"x".repeat(101)] {
        let err = kafka(bad).unwrap_err();
        assert!(format!("{err:#}").contains("differ between replicas"), "{bad:?}: {err:#}");
    }
    let mut file = FileConfig::default();
    file.log.instance_id = Some("alerter-0".into());
    let err = Config::build(file, &env(&[("DINGGUARD_DATA_DIR", d)]), true).unwrap_err();
    assert!(format!("{err:#}").contains("needs DINGGUARD_KAFKA_BROKERS"), "{err:#}");
    let mut file = FileConfig::default();
    file.log.kafka_properties.insert("group.instance.id".into(), "x".into());
    let err = Config::build(file, &env(&[("DINGGUARD_DATA_DIR", d), ("DINGGUARD_KAFKA_BROKERS", "k:9092")]), true)
        .unwrap_err();
    assert!(format!("{err:#}").contains("DINGGUARD_INSTANCE_ID"), "{err:#}");
}

#[test]
fn the_free_space_floor_is_set_in_mebibytes_for_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let config = Config::build(
        FileConfig::default(),
        &env(&[("DINGGUARD_DATA_DIR", d), ("DINGGUARD_LOG_MIN_FREE_MB", "64")]),
        true,
    )
    .unwrap();
    assert!(matches!(config.backend, LogBackend::Embedded { min_free_bytes: 67_108_864, .. }), "{:?}", config.backend);
    let mut file = FileConfig::default();
    file.log.min_free_mb = Some(1);
    let err = Config::build(file, &env(&[("DINGGUARD_DATA_DIR", d), ("DINGGUARD_KAFKA_BROKERS", "k:9092")]), true)
        .unwrap_err();
    assert!(format!("{err:#}").contains("embedded log only"), "{err:#}");
}

/// Every secret the configuration knows, each a distinct marker; none may show in `Debug` of the settings.
#[test]
fn no_secret_shows_in_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let app_secret_file = dir.path().join("app_secret");
    std::fs::write(&app_secret_file, "MARKappSecretFromFile\n").unwrap();
    let env_token_file = dir.path().join("token");
    std::fs::write(&env_token_file, "MARKenvTokenFromFile\n").unwrap();
    let webhook = dingguard_notify::WebhookSecret::generate();
    let hr_aes = "MARKhrAesKey000000000000000000000000000000a";
    let env_aes = "MARKenvAesKey00000000000000000000000000000b";
    let text = format!(
        r#"
[log]
kafka_brokers = "127.0.0.1:9092"
kafka_properties = {{ "security.protocol" = "SASL_SSL", "sasl.password" = "MARKsaslPassword", "sasl.jaas.config" = "MARKjaas" }}
[store]
database_url = "postgres://dg:MARKdbPassword@127.0.0.1:5432/dg"
[console]
passwords = {{ user_security_lead = "MARKpasswordHash" }}
[[dingtalk.apps]]
name = "hr"
token = "MARKhrToken"
aes_key = "{hr_aes}"
owner_key = "dinghr"
[[notify.robots]]
name = "soc"
access_token = "MARKrobotAccessToken"
secret = "SECMARKrobotSecret"
[[notify.webhooks]]
name = "siem"
url = "https://siem.example/hook"
secret = "{webhook}"
[notify.work]
app_key = "dingworkapp"
app_secret_file = {app_secret_file:?}
agent_id = 1
"#
    );
    let file: FileConfig = toml::from_str(&text).unwrap();
    let e = env(&[
        ("DINGGUARD_DATA_DIR", dir.path().to_str().unwrap()),
        ("DINGGUARD_DINGTALK_TOKEN_FILE", env_token_file.to_str().unwrap()),
        ("DINGGUARD_DINGTALK_AES_KEY", env_aes),
        ("DINGGUARD_DINGTALK_APP_KEY", "dingabc"),
        ("DINGGUARD_SOURCES", "failed-push"),
        ("DINGGUARD_DINGTALK_CLIENT_ID", "dingclientid"),
        ("DINGGUARD_DINGTALK_CLIENT_SECRET", "MARKclientSecret"),
    ]);
    let config = Config::build(file, &e, true).unwrap();
    let shown = format!("{config:?} {config:#?}");
    let webhook_key = webhook.trim_start_matches("whsec_");
    for secret in [
        "MARKappSecretFromFile",
        "MARKenvTokenFromFile",
        hr_aes,
        env_aes,
        "MARKsaslPassword",
        "MARKjaas",
        "MARKdbPassword",
        "MARKpasswordHash",
        "MARKhrToken",
        "MARKrobotAccessToken",
        "SECMARKrobotSecret",
        webhook_key,
        "MARKclientSecret",
    ] {
        assert!(!shown.contains(secret), "{secret} shows in the settings:\n{shown}");
    }
    assert!(shown.contains("SASL_SSL") && shown.contains("dingworkapp"), "the rest still shows: {shown}");
    assert!(shown.contains("dingclientid"), "the client id shows: {shown}");
    // And they were all read, the file among them.
    let work = config.notify.work.as_ref().unwrap();
    assert_eq!(work.app_secret.as_ref().map(Secret::expose), Some("MARKappSecretFromFile"));
}

#[test]
fn sources_say_what_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let load = |vars: &[(&'static str, &'static str)]| {
        let mut all: Vec<(&str, &str)> = vec![("DINGGUARD_DATA_DIR", data)];
        all.extend(vars.iter().copied());
        Config::build(FileConfig::default(), &env(&all), true)
    };
    let err = load(&[("DINGGUARD_SOURCES", "failed-push")]).unwrap_err().to_string();
    assert!(err.contains("DINGGUARD_DINGTALK_CLIENT_ID") && err.contains("failed-push"), "{err}");
    let err = load(&[("DINGGUARD_SOURCES", "failed-push,rss")]).unwrap_err().to_string();
    assert!(err.contains("unknown source \"rss\"") && err.contains("file-audit"), "{err}");
    let both = load(&[
        ("DINGGUARD_SOURCES", "failed-push, file-audit"),
        ("DINGGUARD_DINGTALK_CLIENT_ID", "dingapp"),
        ("DINGGUARD_DINGTALK_CLIENT_SECRET", "s"),
    ])
    .unwrap();
    let audit = both.sources.file_audit.unwrap();
    assert_eq!((audit.page_size, audit.backfill), (500, std::time::Duration::from_secs(7 * 86_400)));
    let err = load(&[("DINGGUARD_SOURCES", "directory")]).unwrap_err().to_string();
    assert!(err.contains("DINGGUARD_DINGTALK_CLIENT_ID"), "{err}");
    let creds = [("DINGGUARD_DINGTALK_CLIENT_ID", "dingapp"), ("DINGGUARD_DINGTALK_CLIENT_SECRET", "s")];
    let stream =
        load(&[&[("DINGGUARD_SOURCES", "stream"), ("DINGGUARD_STREAM_CONNECTIONS", "3")][..], &creds[..]].concat())
            .unwrap();
    assert_eq!(stream.sources.stream.unwrap().connections, 3);
    let err =
        load(&[&[("DINGGUARD_SOURCES", "stream"), ("DINGGUARD_STREAM_CONNECTIONS", "0")][..], &creds[..]].concat())
            .unwrap_err()
            .to_string();
    assert!(err.contains("DINGGUARD_STREAM_CONNECTIONS"), "{err}");
    let config = load(&[
        ("DINGGUARD_SOURCES", "failed-push"),
        ("DINGGUARD_DINGTALK_CLIENT_ID", "dingapp"),
        ("DINGGUARD_DINGTALK_CLIENT_SECRET", "s"),
        ("DINGGUARD_DINGTALK_OAPI_URL", "http://127.0.0.1:9"),
    ])
    .unwrap();
    let api = config.sources.api.unwrap();
    assert_eq!((api.oapi_url.as_str(), api.api_url.as_str()), ("http://127.0.0.1:9", "https://api.dingtalk.com"));
    assert_eq!(config.sources.failed_push.unwrap().every, std::time::Duration::from_secs(300));
    assert!(load(&[]).unwrap().sources.api.is_none(), "no source, no DingTalk credentials needed");

    let secret_file = dir.path().join("client_secret");
    std::fs::write(&secret_file, "from-file\n").unwrap();
    let text = format!(
        "[dingtalk.api]\nclient_id = \"dingfile\"\nclient_secret_file = {secret_file:?}\n[sources]\nenabled = [\"failed-push\"]\n[sources.failed_push]\nevery_secs = 60\n"
    );
    let config = Config::build(toml::from_str(&text).unwrap(), &env(&[("DINGGUARD_DATA_DIR", data)]), true).unwrap();
    let api = config.sources.api.unwrap();
    assert_eq!((api.client_id.as_str(), api.client_secret.expose()), ("dingfile", "from-file"));
    assert_eq!(config.sources.failed_push.unwrap().every, std::time::Duration::from_secs(60));
}
