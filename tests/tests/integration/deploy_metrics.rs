//! `deploy/` checked as an operator's tools would check it, and against the product: the alert rules pass
//! `promtool`, the manifests `kubernetes-validate` against the Kubernetes schemas, the compose file the Compose
//! specification's schema, Prometheus' configuration `promtool check config`, Grafana's provisioning files a schema
//! of what Grafana reads (a broken copy of each fails); every dashboard panel has a query; every `DINGGUARD_…`
//! variable the files set is one dingguard reads, and the shipped TOML settings load; and every `dingguard_…` series
//! the rules and the Grafana dashboard query is one a running `dingguard serve` (with the Stream source on) exposes
//! on `/metrics` — a rule or a panel on a metric that was renamed would otherwise stay silent for ever.

use std::collections::BTreeSet;

use anyhow::Result;
use dingguard_dingtalk_standin::StandIn;
use dingguard_tests::process::{Service, deployment_env};

/// The metric names a text mentions, without the suffixes a query adds to a family's name.
fn names(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("dingguard_") {
        let tail = &rest[at..];
        let end =
            tail.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
        found.insert(base(&tail[..end]).to_owned());
        rest = &tail[end..];
    }
    found
}

fn base(name: &str) -> &str {
    ["_total", "_bucket", "_count", "_sum", "_created"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_and_the_dashboard_name_is_exposed() -> Result<()> {
    let root = dingguard_tests::workspace_root();
    let rules = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yaml"))?;
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/dingguard.json"))?;
    let named: BTreeSet<String> = names(&rules).union(&names(&dashboard)).cloned().collect();
    assert!(named.len() >= 10, "the rules and dashboard name too few metrics to be checked: {named:?}");

    let standin = StandIn::start("dingmetricsapp", "metrics-secret").await?;
    let dir = tempfile::tempdir()?;
    let mut envs = deployment_env(dir.path(), ["metricstoken", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingm"]);
    envs.extend([
        ("DINGGUARD_SOURCES", "stream".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_ID", "dingmetricsapp".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_SECRET", "metrics-secret".to_owned()),
        ("DINGGUARD_DINGTALK_API_URL", standin.url()),
    ]);
    let service = Service::start(&["serve"], &envs).await?;
    let text = reqwest::get(service.url("/metrics")).await?.text().await?;
    // Every family is declared by its `# TYPE` line, samples or not.
    let exposed: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| base(n).to_owned())
        .collect();
    let missing: Vec<&String> = named.iter().filter(|n| !exposed.contains(*n)).collect();
    assert!(missing.is_empty(), "deploy/ names metrics no service exposes: {missing:?}");
    Ok(())
}

/// A tool `scripts/install-test-deps.sh` installs: `.tools/bin/<name>`, else on the `PATH`. Missing is an error,
/// never a skip.
fn tool(name: &str) -> Result<std::path::PathBuf> {
    let local = dingguard_tests::workspace_root().join(".tools/bin").join(name);
    if local.exists() {
        return Ok(local);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join(name).exists() {
            return Ok(dir.join(name));
        }
    }
    anyhow::bail!("{name} not found; run `make test` (it installs it) or scripts/install-test-deps.sh")
}

fn check(tool_path: &std::path::Path, args: &[&str], file: &std::path::Path) -> Result<(bool, String)> {
    let out = std::process::Command::new(tool_path).args(args).arg(file).output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// The alert rules pass `promtool check rules`, the manifests `kubernetes-validate --strict` against the Kubernetes
/// schemas and the compose file the Compose specification's schema; a deliberately broken copy of each fails, so a
/// broken file cannot slip through.
#[test]
fn the_rules_manifests_and_compose_file_pass_the_operators_tools_and_a_broken_copy_does_not() -> Result<()> {
    let root = dingguard_tests::workspace_root();
    let promtool = tool("promtool")?;
    let rules = root.join("deploy/prometheus/alerts.yaml");
    let (ok, text) = check(&promtool, &["check", "rules"], &rules)?;
    assert!(ok && text.contains("SUCCESS"), "{text}");
    let dir = tempfile::tempdir()?;
    let broken = dir.path().join("alerts.yaml");
    let original = std::fs::read_to_string(&rules)?;
    std::fs::write(
        &broken,
        original.replacen("expr: dingguard_log_ready == 0", "expr: sum by (instance (dingguard_log_ready)", 1),
    )?;
    let (ok, text) = check(&promtool, &["check", "rules"], &broken)?;
    assert!(!ok, "promtool accepted a rule that does not parse: {text}");

    let validate = tool("kubernetes-validate")?;
    let mut manifests: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("deploy/kubernetes"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 6, "a manifest per service and the shared settings: {manifests:?}");
    for manifest in &manifests {
        let (ok, text) = check(&validate, &["--strict"], manifest)?;
        assert!(ok && !text.contains("ERROR"), "{}: {text}", manifest.display());
    }
    // Broken where a workload is: the settings and Secrets have no containers to misspell.
    let workload = manifests
        .iter()
        .find(|m| std::fs::read_to_string(m).is_ok_and(|t| t.contains("containers:")))
        .expect("a manifest with a workload");
    let text = std::fs::read_to_string(workload)?;
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, text.replacen("containers:", "containerz:", 1))?;
    let (ok, text) = check(&validate, &["--strict"], &broken)?;
    assert!(!ok || text.contains("ERROR"), "kubernetes-validate accepted a manifest with an unknown field: {text}");

    let schema = tool("check-jsonschema")?;
    let compose = root.join("deploy/compose.yaml");
    let (ok, text) = check(&schema, &["--builtin-schema", "vendor.compose-spec"], &compose)?;
    assert!(ok, "{text}");
    let broken = dir.path().join("compose.yaml");
    std::fs::write(&broken, std::fs::read_to_string(&compose)?.replacen("image:", "imagez:", 1))?;
    let (ok, text) = check(&schema, &["--builtin-schema", "vendor.compose-spec"], &broken)?;
    assert!(!ok, "the Compose schema accepted a service with an unknown key: {text}");
    Ok(())
}

/// Prometheus' configuration passes `promtool check config` (which also checks the rule files it names, from where
/// the configuration is), Grafana's provisioning files have the shape Grafana reads, and every panel of the
/// dashboard queries the provisioned data source; a broken copy of each check's input fails.
#[test]
fn prometheus_and_grafana_are_provisioned_with_the_rules_and_the_dashboard() -> Result<()> {
    let root = dingguard_tests::workspace_root();
    let promtool = tool("promtool")?;
    let config = root.join("deploy/prometheus/prometheus.yml");
    let (ok, text) = check(&promtool, &["check", "config"], &config)?;
    assert!(ok && text.contains("SUCCESS") && text.contains("alerts.yaml"), "{text}");
    let dir = tempfile::tempdir()?;
    // The same layout, so that the rule file it names is found and only the misspelt key fails.
    std::fs::copy(root.join("deploy/prometheus/alerts.yaml"), dir.path().join("alerts.yaml"))?;
    let broken = dir.path().join("prometheus.yml");
    std::fs::write(&broken, std::fs::read_to_string(&config)?.replacen("scrape_configs:", "scrape_configz:", 1))?;
    let (ok, text) = check(&promtool, &["check", "config"], &broken)?;
    assert!(!ok, "promtool accepted a configuration with an unknown key: {text}");

    // What Grafana's provisioning reads of these files (apiVersion 1). Grafana ignores keys it does not know, so
    // without this a misspelt key would be a setting silently not applied.
    let datasources = serde_json::json!({
        "type": "object", "additionalProperties": false, "required": ["apiVersion", "datasources"],
        "properties": {
            "apiVersion": {"const": 1},
            "datasources": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": false, "required": ["name", "uid", "type", "url"],
                "properties": {
                    "name": {"type": "string"}, "uid": {"type": "string"}, "type": {"const": "prometheus"},
                    "access": {"enum": ["proxy", "direct"]}, "url": {"type": "string", "pattern": "^https?://"},
                    "isDefault": {"type": "boolean"}, "editable": {"type": "boolean"}, "jsonData": {"type": "object"}
                }
            }}
        }
    });
    let dashboards = serde_json::json!({
        "type": "object", "additionalProperties": false, "required": ["apiVersion", "providers"],
        "properties": {
            "apiVersion": {"const": 1},
            "providers": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": false, "required": ["name", "type", "options"],
                "properties": {
                    "name": {"type": "string"}, "folder": {"type": "string"}, "type": {"const": "file"},
                    "disableDeletion": {"type": "boolean"}, "allowUiUpdates": {"type": "boolean"},
                    "updateIntervalSeconds": {"type": "integer"},
                    "options": {"type": "object", "additionalProperties": false, "required": ["path"], "properties": {
                        "path": {"type": "string"}, "foldersFromFilesStructure": {"type": "boolean"}
                    }}
                }
            }}
        }
    });
    let schema = tool("check-jsonschema")?;
    let provisioning = root.join("deploy/grafana/provisioning");
    for (kind, shape) in [("datasources", datasources), ("dashboards", dashboards)] {
        let schema_file = dir.path().join(format!("{kind}.schema.json"));
        std::fs::write(&schema_file, serde_json::to_vec(&shape)?)?;
        let schema_arg = schema_file.to_str().expect("a UTF-8 temporary path");
        let files: Vec<std::path::PathBuf> = std::fs::read_dir(provisioning.join(kind))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        assert!(!files.is_empty(), "no {kind} provisioning file");
        for file in &files {
            let (ok, text) = check(&schema, &["--schemafile", schema_arg], file)?;
            assert!(ok, "{}: {text}", file.display());
            let broken = dir.path().join(format!("broken-{kind}.yaml"));
            std::fs::write(&broken, std::fs::read_to_string(file)?.replacen("type:", "typ:", 1))?;
            let (ok, text) = check(&schema, &["--schemafile", schema_arg], &broken)?;
            assert!(!ok, "the {kind} schema accepted a misspelt key: {text}");
        }
    }
    let datasource = std::fs::read_to_string(provisioning.join("datasources/prometheus.yaml"))?;
    let provider = std::fs::read_to_string(provisioning.join("dashboards/dingguard.yaml"))?;
    let compose = std::fs::read_to_string(root.join("deploy/compose.yaml"))?;
    assert!(
        provider.contains("path: /etc/grafana/dashboards")
            && compose.contains("./grafana/dingguard.json:/etc/grafana/dashboards/dingguard.json"),
        "the dashboard provider must read where the compose file mounts the dashboard"
    );

    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("deploy/grafana/dingguard.json"))?)?;
    assert!(dashboard["uid"].is_string() && dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let variable = dashboard["templating"]["list"]
        .as_array()
        .and_then(|l| l.iter().find(|v| v["name"] == "datasource" && v["type"] == "datasource"))
        .expect("a datasource variable");
    let default_uid = variable["current"]["value"].as_str().expect("a default data source");
    assert!(datasource.contains(&format!("uid: {default_uid}")), "the default data source is not the provisioned one");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queried = 0;
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("untitled");
        assert!(panel["gridPos"]["w"].as_u64().is_some() && panel["gridPos"]["h"].as_u64().is_some(), "{title}");
        assert!(ids.insert(panel["id"].as_u64().expect("a panel id")), "{title}: a second panel with its id");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}: not on the dashboard's data source");
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty()).expect("a panel with queries");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(expr.contains("dingguard_"), "{title}: a query on none of dingguard's metrics: {expr:?}");
        }
        queried += 1;
    }
    assert!(queried >= 10, "only {queried} panels query anything");
    Ok(())
}

/// Every file under `dir`, depth first.
fn files_under(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(files_under(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

/// The `DINGGUARD_…` names a text mentions.
fn variables(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("DINGGUARD_") {
        let tail = &rest[at..];
        let end =
            tail.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
        // `DINGGUARD_…` in prose names the family, not a variable.
        if end > "DINGGUARD_".len() {
            found.insert(tail[..end].trim_end_matches('_').to_owned());
        }
        rest = &tail[end..];
    }
    found
}

/// The TOML a ConfigMap carries under `key: |`, its indentation removed.
fn configmap_value(manifest: &str, key: &str) -> Option<String> {
    let mut lines = manifest.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let head = lines.next()?;
    let indent = head.len() - head.trim_start().len() + 2;
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect();
    Some(body.join("\n") + "\n")
}

/// A deployment file that sets a variable dingguard does not read configures nothing and says nothing: every
/// `DINGGUARD_…` name under deploy/ and in the deployment guide is one the configuration reads (a `_FILE` name one
/// whose value may come from a file), and the TOML settings shipped for compose and Kubernetes load with the
/// replication the brokers are set up for.
#[test]
fn the_deployment_files_set_only_settings_dingguard_reads() -> Result<()> {
    let root = dingguard_tests::workspace_root();
    let mut source = String::new();
    for file in files_under(&root.join("services/dingguard/src"))? {
        if file.extension().is_some_and(|x| x == "rs") {
            source.push_str(&std::fs::read_to_string(file)?);
        }
    }
    let mut documents = files_under(&root.join("deploy"))?;
    documents.push(root.join("docs/deployment.md"));
    let mut unknown = Vec::new();
    for document in &documents {
        let Ok(text) = std::fs::read_to_string(document) else { continue };
        for name in variables(&text) {
            let read = source.contains(&format!("\"{name}\""))
                || name.strip_suffix("_FILE").is_some_and(|base| source.contains(&format!("secret(env, \"{base}\")")));
            if !read {
                unknown.push(format!("{}: {name}", document.strip_prefix(&root).unwrap_or(document).display()));
            }
        }
    }
    assert!(unknown.is_empty(), "variables dingguard does not read: {unknown:?}");

    let dir = tempfile::tempdir()?;
    let passwords = dir.path().join("passwords.toml");
    std::fs::write(&passwords, "")?;
    let common = std::fs::read_to_string(root.join("deploy/kubernetes/common.yaml"))?;
    let kubernetes = configmap_value(&common, "dingguard.toml")
        .expect("the ConfigMap's dingguard.toml")
        .replace("/etc/dingguard/console/passwords.toml", passwords.to_str().expect("a UTF-8 temporary path"));
    let shipped = [
        ("deploy/config/dingguard.toml", std::fs::read_to_string(root.join("deploy/config/dingguard.toml"))?),
        ("deploy/kubernetes/common.yaml", kubernetes),
    ];
    for (from, text) in shipped {
        let file = dir.path().join("dingguard.toml");
        std::fs::write(&file, &text)?;
        let env = dingguard::config::VarsEnv(
            [
                ("DINGGUARD_DATA_DIR", dir.path().display().to_string()),
                ("DINGGUARD_KAFKA_BROKERS", "kafka-1:9092,kafka-2:9092,kafka-3:9092".to_owned()),
                ("DINGGUARD_DATABASE_URL", "postgres://dingguard:secret@postgres:5432/dingguard".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        );
        let config = dingguard::config::Config::load(Some(&file), &env, false)
            .map_err(|e| anyhow::anyhow!("{from}: the settings do not load: {e:#}"))?;
        match config.backend {
            dingguard::config::LogBackend::Kafka { replication_factor, min_insync_replicas, .. } => {
                assert_eq!((replication_factor, min_insync_replicas), (3, Some(2)), "{from}");
            }
            other => panic!("{from}: not on Kafka: {other:?}"),
        }
    }
    Ok(())
}
