//! Issue-level behaviour of the alerter, through the built binary: scenarios in, alerts out on the alerts topic.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use dingguard_simulator::load::{self, Target};
use dingguard_simulator::{Scenario, ScenarioContext, Signer};
use dingguard_tests::app::metric_in;
use dingguard_tests::process::{Service, deployment_env, dump, dump_until, value_json};
use dingguard_tests::{now_ms, workspace_root};
use serde_json::Value;

const TOKEN: &str = "alertstoken";
const AES: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";
const APP_KEY: &str = "dingalertsapp";

fn signer() -> Signer {
    Signer::from_credentials(TOKEN, AES, APP_KEY).unwrap()
}

struct Deployment {
    service: Service,
    envs: Vec<(&'static str, String)>,
    _dir: tempfile::TempDir,
}

async fn serve(extra: &[(&'static str, String)]) -> Result<Deployment> {
    let dir = tempfile::tempdir()?;
    let mut envs = deployment_env(dir.path(), [TOKEN, AES, APP_KEY]);
    envs.extend_from_slice(extra);
    let service = Service::start(&["serve"], &envs).await?;
    Ok(Deployment { service, envs, _dir: dir })
}

impl Deployment {
    async fn play(&self, scenario: Scenario) -> Result<usize> {
        let now = now_ms();
        let signer = signer();
        let callbacks: Vec<_> = scenario
            .events(&ScenarioContext::new("dingdemocorp0000", now))
            .iter()
            .map(|e| signer.sign(e, now as u64))
            .collect();
        let count = callbacks.len();
        let target = Target::parse(&self.service.url("/dingtalk/callback"))?;
        let report = load::send_all(target, callbacks, signer).await;
        ensure!(report.non_success == 0, "{}: {} callbacks refused", scenario.name(), report.non_success);
        Ok(count)
    }

    async fn alerts(&self) -> Result<Vec<Value>> {
        Ok(dump("dingguard.alerts", &self.envs).await?.iter().map(value_json).collect())
    }

    async fn processed(&self) -> Result<f64> {
        let text = reqwest::get(self.service.url("/metrics")).await?.text().await?;
        Ok(metric_in(&text, r#"dingguard_alerter_events_total{outcome="processed"}"#))
    }

    /// Waits until the alerter has judged `events` events and published what they raised.
    async fn settle(&self, events: f64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.processed().await? < events {
            ensure!(Instant::now() < deadline, "alerter processed {} of {events} events", self.processed().await?);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The relay publishes right after the batch commits.
        tokio::time::sleep(Duration::from_millis(800)).await;
        Ok(())
    }
}

fn rules_of(alerts: &[Value]) -> BTreeSet<String> {
    alerts.iter().filter_map(|a| a["rule"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_raise_their_alerts_and_an_ordinary_day_raises_none() -> Result<()> {
    let d = serve(&[]).await?;
    let mut sent = 0.0;

    sent += d.play(Scenario::BenignDay).await? as f64;
    d.settle(sent).await?;
    let alerts = d.alerts().await?;
    assert!(alerts.is_empty(), "benign day raised {:?}", rules_of(&alerts));

    let expectations: [(Scenario, &[&str]); 6] = [
        (Scenario::ExternalMember, &["external_member_added"]),
        (Scenario::BulkDownload, &["bulk_download"]),
        (Scenario::AfterHoursDownload, &["after_hours_sensitive_download", "sensitive_download_without_grant"]),
        (Scenario::LeaverDownload, &["leaver_downloaded_sensitive_files"]),
        (Scenario::ExternalThenDownload, &["external_member_then_download"]),
        (Scenario::DlpFileSend, &["dlp_file_send_detected"]),
    ];
    for (scenario, expected) in expectations {
        let before = rules_of(&d.alerts().await?);
        sent += d.play(scenario).await? as f64;
        d.settle(sent).await?;
        let alerts = d.alerts().await?;
        let now = rules_of(&alerts);
        for rule in expected {
            assert!(
                now.contains(*rule),
                "{}: expected {rule}, alerts so far {now:?} (before {before:?})",
                scenario.name()
            );
        }
    }
    let alerts = d.alerts().await?;
    let critical = alerts.iter().find(|a| a["rule"] == "external_member_then_download").unwrap();
    assert_eq!(critical["severity"], "critical");
    assert_eq!(critical["pdpa"], serde_json::json!(["15", "16"]));
    for a in &alerts {
        let message = a["message"].as_str().unwrap_or_default();
        assert!(message.contains("may implicate"), "{message}");
        assert!(!message.to_lowercase().contains("violat"), "{message}");
    }
    let ids: BTreeSet<&str> = alerts.iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(ids.len(), alerts.len(), "an alert was published twice");
    Ok(())
}

/// The simulator's scenarios agree with each other: after every one of them has run, an ordinary day still raises
/// nothing — no scenario leaves behind a leaver, a grant or a window that makes ordinary work look suspect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_every_scenario_an_ordinary_day_still_raises_nothing() -> Result<()> {
    let d = serve(&[]).await?;
    let mut sent = 0.0;
    for scenario in Scenario::ALL.into_iter().filter(|s| *s != Scenario::BenignDay) {
        sent += d.play(scenario).await? as f64;
    }
    d.settle(sent - 1.0).await?; // check_url is answered, never stored
    let before: BTreeSet<String> =
        d.alerts().await?.iter().filter_map(|a| a["id"].as_str().map(str::to_owned)).collect();
    ensure!(!before.is_empty(), "the scenarios raised nothing; nothing was tested");
    let folded_before = reqwest::get(d.service.url("/metrics")).await?.text().await?;
    sent += d.play(Scenario::BenignDay).await? as f64;
    d.settle(sent - 1.0).await?;
    let new: Vec<Value> =
        d.alerts().await?.into_iter().filter(|a| a["id"].as_str().is_some_and(|id| !before.contains(id))).collect();
    assert!(new.is_empty(), "benign-day after the other scenarios raised {:?}", rules_of(&new));
    // Nor did it add itself to an alert already open (a fold, or a sequence's later step).
    let text = reqwest::get(d.service.url("/metrics")).await?.text().await?;
    let touched = |text: &str| {
        text.lines()
            .filter(|l| {
                l.starts_with("dingguard_alerts_folded_total") || l.starts_with("dingguard_alerts_raised_total")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    assert_eq!(touched(&text), touched(&folded_before), "benign-day touched an open alert");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_the_security_groups_robot_signed() -> Result<()> {
    let robot = dingguard_tests::standin::RobotStandIn::start().await?;
    let config = tempfile::NamedTempFile::new()?;
    std::fs::write(
        config.path(),
        format!(
            "[notify]\nconsole_url = \"http://console.example\"\n[[notify.robots]]\nname = \"security-group\"\n\
             access_token = \"{}\"\nsecret = \"{}\"\nbase_url = \"{}\"\nmin_severity = \"medium\"\n",
            robot.access_token,
            robot.secret,
            robot.base_url()
        ),
    )?;
    let d = serve(&[("DINGGUARD_CONFIG", config.path().display().to_string())]).await?;
    let sent = d.play(Scenario::ExternalThenDownload).await? as f64;
    d.settle(sent).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while robot.messages().len() < 2 {
        ensure!(Instant::now() < deadline, "robot got {:?}", robot.messages());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let messages = robot.messages();
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert!(texts.iter().any(|t| t.contains("external_member_then_download") && t.contains("CRITICAL")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("external_member_added")), "{texts:?}");
    for m in &messages {
        assert!(m.text.contains("May implicate PDPA"), "{}", m.text);
        assert!(m.text.contains("http://console.example/alerts/alr_") || m.uuid.is_some());
    }
    assert_eq!(robot.refused(), 0, "the stand-in refused a request: bad signature or token");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serious_alerts_reach_named_people_by_work_notification() -> Result<()> {
    use dingguard_tests::work_standin::{AGENT_ID, APP_KEY as WORK_APP, APP_SECRET, WorkStandIn};
    let work = WorkStandIn::start().await;
    let config = tempfile::NamedTempFile::new()?;
    std::fs::write(
        config.path(),
        format!(
            "[console]\npublic_url = \"http://console.example\"\n[notify.work]\napp_key = \"{WORK_APP}\"\n\
             app_secret = \"{APP_SECRET}\"\nagent_id = {AGENT_ID}\nbase_url = \"{}\"\n\
             recipients = [\"user_ops\", \"user_dpo\"]\nmin_severity = \"critical\"\n",
            work.url
        ),
    )?;
    let d = serve(&[("DINGGUARD_CONFIG", config.path().display().to_string())]).await?;
    let sent = d.play(Scenario::ExternalThenDownload).await? as f64;
    d.settle(sent).await?;
    dingguard_tests::eventually("a work notification", Duration::from_secs(10), || !work.sends().is_empty()).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sends = work.sends();
    assert_eq!(sends.len(), 1, "only the critical alert goes to people: {sends:?}");
    let sent = &sends[0];
    assert_eq!((sent.userid_list.as_str(), sent.agent_id), ("user_ops,user_dpo", AGENT_ID));
    assert!(sent.text().contains("external_member_then_download") && sent.text().contains("May implicate PDPA"));
    assert!(sent.link().unwrap_or_default().starts_with("http://console.example/alerts/alr_"), "{:?}", sent.link());
    assert_eq!(work.log.lock().refused_tokens, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_rule_file_is_refused_and_alerts_keep_flowing() -> Result<()> {
    let rules = tempfile::tempdir()?;
    let pack = std::fs::read_to_string(workspace_root().join("rules/pdpa-macau.yaml"))?;
    std::fs::write(rules.path().join("pdpa-macau.yaml"), &pack)?;
    let pack_rules = pack.lines().filter(|l| l.starts_with("- rule:")).count() as f64;
    let logs = tempfile::NamedTempFile::new()?;
    let dir = tempfile::tempdir()?;
    let mut envs = deployment_env(dir.path(), [TOKEN, AES, APP_KEY]);
    envs.retain(|(key, _)| *key != "DINGGUARD_RULES");
    envs.push(("DINGGUARD_RULES", rules.path().display().to_string()));
    let service = Service::start_logging(&["serve"], &envs, Some(logs.path())).await?;
    let d = Deployment { service, envs, _dir: dir };

    // A second file with an unknown field on its line 4: the whole change is refused.
    let broken = "- rule: typo_rule\n  description: a rule with a typo\n  when: [members_added]\n  condition: members.externl_count > 0\n  severity: high\n  output: x\n";
    std::fs::write(rules.path().join("zz-broken.yaml"), broken)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = reqwest::get(d.service.url("/metrics")).await?.text().await?;
        if metric_in(&text, r#"dingguard_rules_reloads_total{outcome="refused"}"#) >= 1.0 {
            assert_eq!(metric_in(&text, "dingguard_rules_loaded "), pack_rules, "the previous rules stay in force");
            break;
        }
        ensure!(Instant::now() < deadline, "the broken file was never noticed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = std::fs::read_to_string(logs.path())?;
    let line = log.lines().find(|l| l.contains("rule change refused")).unwrap_or_default();
    assert!(line.contains("zz-broken.yaml:1") && line.contains("unknown field `members.externl_count`"), "{line}");

    let sent = d.play(Scenario::ExternalMember).await? as f64;
    d.settle(sent).await?;
    assert!(rules_of(&d.alerts().await?).contains("external_member_added"), "alerts stopped after the refused change");

    // Fixing the file brings in the new rule.
    std::fs::write(rules.path().join("zz-broken.yaml"), broken.replace("externl", "external"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = reqwest::get(d.service.url("/metrics")).await?.text().await?;
        if metric_in(&text, "dingguard_rules_loaded ") == pack_rules + 1.0 {
            break;
        }
        ensure!(Instant::now() < deadline, "the fixed file was never loaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_normaliser_cannot_read_is_dead_lettered_not_dropped() -> Result<()> {
    let d = serve(&[]).await?;
    let now = now_ms();
    let signer = signer();
    // Our own file_download type without the fileId it depends on.
    let broken = serde_json::json!({"EventType": "file_download", "eventId": "poison-1", "CorpId": "dingc", "userId": "user_hr_clerk"});
    let target = Target::parse(&d.service.url("/dingtalk/callback"))?;
    let report = load::send_all(target, vec![signer.sign(&broken, now as u64)], signer).await;
    assert_eq!(report.succeeded, 1, "the receiver stores every event; judging it is the alerter's job");
    let parked = dump_until("dingguard.dlq", &d.envs, Duration::from_secs(15), |r| !r.is_empty()).await?;
    let parked = parked.first().context("nothing reached the dead-letter topic")?.clone();
    let headers = &parked["headers"];
    assert_eq!(headers["ce_id"], "poison-1");
    assert_eq!(headers["dlq_origin_topic"], "dingguard.events");
    assert_eq!(headers["dlq_original_type"], "dingtalk.file_download");
    assert!(headers["dlq_error"].as_str().unwrap_or_default().contains("fileId"), "{headers}");
    let value: Value = serde_json::from_str(parked["value"].as_str().unwrap_or_default())?;
    assert_eq!(value, broken, "the original event travels unchanged");
    // Its whole origin: partition, offset, key, the service, when, how often, and the record's own headers.
    for name in ["dlq_origin_partition", "dlq_origin_offset", "dlq_origin_key", "dlq_failed_at"] {
        assert!(!headers[name].as_str().unwrap_or_default().is_empty(), "{name}: {headers}");
    }
    assert_eq!((headers["dlq_service"].as_str(), headers["dlq_attempts"].as_str()), (Some("alerter"), Some("1")));
    let origin: Vec<(String, String)> =
        serde_json::from_str(headers["dlq_origin_headers"].as_str().unwrap_or_default())?;
    assert!(origin.contains(&("ce_id".into(), "poison-1".into())), "{origin:?}");

    // `dlq list` shows it; `dlq redrive` puts it back once, under an id of its own, and what fails again comes
    // back with its count.
    let (ok, out, err) = dingguard_tests::process::run(&["dlq", "list"], &d.envs).await?;
    assert!(ok && out.contains("\"ce_id\":\"poison-1\"") && out.contains("fileId"), "{out}{err}");
    let (ok, out, err) = dingguard_tests::process::run(&["dlq", "redrive"], &d.envs).await?;
    assert!(ok && out.contains("redrove 1 of 1 dead letter(s); 0 replayed before"), "{out}{err}");
    let again = dump_until("dingguard.dlq", &d.envs, Duration::from_secs(15), |r| r.len() >= 2).await?;
    let second = again.iter().find(|r| r["headers"]["ce_id"] == "poison-1~redrive1").context("not back")?;
    assert_eq!(second["headers"]["dlq_attempts"], "2", "{second}");
    let (ok, out, err) = dingguard_tests::process::run(&["dlq", "redrive", "--filter", "poison-1"], &d.envs).await?;
    assert!(ok && out.contains("redrove 1 of 2 dead letter(s); 1 replayed before"), "{out}{err}");
    let events = dump("dingguard.events", &d.envs).await?;
    let copies = |id: &str| events.iter().filter(|r| r["headers"]["ce_id"] == id).count();
    assert_eq!((copies("poison-1"), copies("poison-1~redrive1"), copies("poison-1~redrive1~redrive2")), (1, 1, 1));
    let replayed = events.iter().find(|r| r["headers"]["ce_id"] == "poison-1~redrive1").context("replayed")?;
    assert_eq!(replayed["headers"]["dlq_redriven_from"], "poison-1");
    assert_eq!(replayed["key"], parked["headers"]["dlq_origin_key"], "under its own key");
    let (ok, chain, _) = dingguard_tests::process::run(&["audit", "export"], &d.envs).await?;
    assert!(ok && chain.matches("redrove dead letter").count() == 2, "{chain}");
    Ok(())
}
