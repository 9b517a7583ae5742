//! The metrics `deploy/` names exist: every `dingguard_…` series the Prometheus alert rules and the Grafana
//! dashboard query is one a running `dingguard serve` (with the Stream source on) exposes on `/metrics`. A rule
//! or a panel on a metric that was renamed would otherwise stay silent for ever.

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
