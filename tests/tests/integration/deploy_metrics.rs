//! `deploy/` checked as an operator's tools would check it, and against the product: the alert rules pass
//! `promtool`, the manifests `kubernetes-validate` against the Kubernetes schemas, the compose file the Compose
//! specification's schema (a broken copy of each fails), and every `dingguard_…` series the rules and the Grafana dashboard query is one a running
//! `dingguard serve` (with the Stream source on) exposes on `/metrics` — a rule or a panel on a metric that was
//! renamed would otherwise stay silent for ever.

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
    let manifests: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("deploy/kubernetes"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    assert!(!manifests.is_empty());
    for manifest in &manifests {
        let (ok, text) = check(&validate, &["--strict"], manifest)?;
        assert!(ok && !text.contains("ERROR"), "{}: {text}", manifest.display());
    }
    let text = std::fs::read_to_string(&manifests[0])?;
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
