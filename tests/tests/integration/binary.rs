//! The built binary, the way an operator uses it: `serve` with demo credentials, `simulate`, `log dump`.

use anyhow::{Context, Result};
use dingguard_tests::process::{Service, run};

fn credential(banner: &str, name: &str) -> Result<String> {
    let start = banner.find(&format!("{name}=")).with_context(|| format!("{name} not in banner:\n{banner}"))?;
    Ok(banner[start + name.len() + 1..].split_whitespace().next().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_demo_credentials_that_simulate_and_log_dump_use() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = ("DINGGUARD_DATA_DIR", dir.path().to_str().unwrap().to_owned());
    let mut service = Service::start(&["serve"], std::slice::from_ref(&data)).await?;
    assert!(service.banner.contains("simulate --url"), "{}", service.banner);
    let envs = vec![
        data.clone(),
        ("DINGGUARD_DINGTALK_TOKEN", credential(&service.banner, "DINGGUARD_DINGTALK_TOKEN")?),
        ("DINGGUARD_DINGTALK_AES_KEY", credential(&service.banner, "DINGGUARD_DINGTALK_AES_KEY")?),
        ("DINGGUARD_DINGTALK_APP_KEY", credential(&service.banner, "DINGGUARD_DINGTALK_APP_KEY")?),
    ];

    let (ok, list, _) = run(&["simulate", "--list"], &[]).await?;
    assert!(ok);
    let names: Vec<&str> = list.lines().filter_map(|l| l.split_whitespace().next()).collect();
    let receiver_scenarios =
        ["external-member", "group-created", "file-download", "download-request", "address-book", "check-url"];
    let alert_scenarios = [
        "bulk-download",
        "after-hours-download",
        "leaver-download",
        "external-then-download",
        "dlp-file-send",
        "benign-day",
    ];
    for expected in receiver_scenarios.iter().chain(&alert_scenarios) {
        assert!(names.contains(expected), "{expected} missing from --list: {list}");
    }

    let url = service.url("/dingtalk/callback");
    for scenario in &receiver_scenarios {
        let (ok, out, err) = run(&["simulate", "--url", &url, "--scenario", scenario], &envs).await?;
        assert!(ok, "{scenario}: {out}{err}");
    }
    let (ok, _, err) = run(&["simulate", "--url", &url, "--scenario", "no-such-thing"], &envs).await?;
    assert!(!ok && err.contains("unknown scenario"), "{err}");
    let (ok, _, err) =
        run(&["simulate", "--url", &url, "--scenario", "check-url"], std::slice::from_ref(&data)).await?;
    assert!(!ok && err.contains("DINGGUARD_DINGTALK_TOKEN"), "{err}");

    let (ok, dump, err) = run(&["log", "dump"], std::slice::from_ref(&data)).await?;
    assert!(ok, "{err}");
    let records: Vec<serde_json::Value> = dump.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    // external-member 1, group-created 1, file-download 1, download-request 1, address-book 3; check-url none.
    assert_eq!(records.len(), 7, "{dump}");
    for r in &records {
        for field in ["partition", "offset", "key", "headers", "value"] {
            assert!(!r[field].is_null(), "{field} missing in {r}");
        }
        serde_json::from_str::<serde_json::Value>(r["value"].as_str().unwrap()).context("value is the event JSON")?;
    }
    let types: Vec<&str> = records.iter().filter_map(|r| r["headers"]["ce_type"].as_str()).collect();
    for t in [
        "dingtalk.chat_add_member",
        "dingtalk.chat_create",
        "dingtalk.file_download",
        "dingtalk.file_download_request",
        "dingtalk.user_leave_org",
    ] {
        assert!(types.contains(&t), "{t} not in {types:?}");
    }

    let metrics = reqwest::get(service.url("/metrics")).await?.text().await?;
    assert!(
        metrics.contains(r#"dingguard_callbacks_total{app="default",outcome="accepted",reason="none"} 7"#),
        "{metrics}"
    );
    let status = service.terminate().await?;
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    Ok(())
}

#[tokio::test]
async fn bad_configuration_stops_start_up_with_an_actionable_message() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = ("DINGGUARD_DATA_DIR", dir.path().to_str().unwrap().to_owned());
    let (ok, _, err) = run(&["serve"], &[data.clone(), ("DINGGUARD_DINGTALK_TOKEN", "only-this".into())]).await?;
    assert!(!ok);
    assert!(err.contains("DINGGUARD_DINGTALK_AES_KEY") && err.contains("DINGGUARD_DINGTALK_APP_KEY"), "{err}");
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "listen = 5\n")?;
    let (ok, _, err) = run(&["--config", config.to_str().unwrap(), "serve"], std::slice::from_ref(&data)).await?;
    assert!(!ok && err.contains("bad.toml"), "{err}");
    let (ok, _, err) =
        run(&["log", "dump"], &[("DINGGUARD_DATA_DIR", dir.path().join("none").to_str().unwrap().to_owned())]).await?;
    assert!(!ok && err.contains("no embedded event log"), "{err}");
    assert!(!dir.path().join("none").exists(), "a failed dump must not create anything");
    Ok(())
}
