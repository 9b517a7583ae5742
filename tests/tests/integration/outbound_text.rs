//! Every message dingguard sends into DingTalk, with hostile text in every field an outsider controls: the group
//! robot's and the work notification's alerts, the approval card, its reminder and escalation, each outcome the
//! requester hears of, and the sign-in link. What the stand-ins receive is parsed as markdown; none of it may
//! hold a link, an image, a heading, emphasis, code, a quote, a list, a table or HTML that came from outside.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use dingguard_approver::RequestLimits;
use dingguard_directory::{DEMO_YAML, Directory};
use dingguard_model::{Clock, ManualClock, SystemClock};
use dingguard_store::{Store, StoreConfig};
use dingguard_tests::approvals::{DPO, HEAD, REQUESTER, spawn_approvals_with};
use dingguard_tests::deployment::{Deployment, rules_of};
use dingguard_tests::hostile::{COMPACT, MARKDOWN, assert_inert};
use dingguard_tests::standin::RobotStandIn;
use dingguard_tests::work_standin::{AGENT_ID, APP_KEY, APP_SECRET, WorkStandIn};
use serde_json::json;

/// The demo directory with hostile display names for the people the messages name.
fn hostile_directory() -> Result<Directory> {
    let mut yaml = DEMO_YAML.to_owned();
    for name in ["Lam Weng Ian (林詠欣)", "Ho Ka Wai (何嘉慧)", "Chan Mei Ling (陳美玲)", "Ana Rodrigues (羅安娜)"]
    {
        let quoted = serde_json::to_string(&format!("{MARKDOWN} {name}"))?;
        yaml = yaml.replace(&format!("name: {name}\n"), &format!("name: {quoted}\n"));
    }
    Ok(Directory::from_yaml(&yaml)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_cards_reminders_escalations_outcomes_and_sign_in_links_keep_outside_text_inert() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig::Sqlite(dir.path().join("state.db"))).await?;
    let clock = ManualClock::new(SystemClock.now_ms());
    let work = Arc::new(WorkStandIn::start().await);
    let limits = RequestLimits { max_open_per_requester: 100, max_per_hour: 100 };
    let app = spawn_approvals_with(store, clock.clone(), work.clone(), limits, hostile_directory()?).await?;
    let token = app.token(REQUESTER).await?;
    let start = clock.now_ms();
    let request = |file: &str| {
        json!({"file": {"id": file, "name": format!("confidential {MARKDOWN}"), "space": COMPACT},
            "reason": MARKDOWN})
    };
    let mut ids = Vec::new();
    for file in ["f-granted", "f-rejected", "f-expires"] {
        let (status, created) =
            app.call(&token, reqwest::Method::POST, "/api/v1/download-requests", Some(request(file))).await?;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap_or_default().to_owned());
    }
    // Nobody can head the general manager's department: the request cannot be routed, and the requester hears why.
    let gm = app.token("user_gm").await?;
    let (status, _) = app.call(&gm, reqwest::Method::POST, "/api/v1/download-requests", Some(request("f-gm"))).await?;
    assert_eq!(status, 422);
    app.decide(DPO, &ids[0], "approve").await?;
    app.decide(HEAD, &ids[0], "approve").await?;
    app.decide(DPO, &ids[1], "reject").await?;
    // Reminders, then escalation to the deputies, then expiry of the request nobody decided.
    for minutes in [20 * 60, 22 * 60, 25 * 60] {
        clock.set(start + minutes * 60_000);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let link = reqwest::Client::new().post(app.url("/login/dingtalk")).form(&[("user_id", REQUESTER)]).send().await?;
    assert_eq!(link.status(), 200);

    let kinds = [
        ("Approval needed", DPO),
        ("Reminder: approval needed", HEAD),
        ("Escalated to you", "user_hr_officer"),
        ("Download request granted", REQUESTER),
        ("Download request rejected", REQUESTER),
        ("Download request expired", REQUESTER),
        ("Download request unroutable", "user_gm"),
        ("Sign in to dingguard", REQUESTER),
    ];
    app.until("every kind of message", || {
        let sent = work.sends();
        kinds.iter().all(|(title, to)| {
            sent.iter().any(|s| s.userid_list.split(',').any(|u| u == *to) && s.msg.to_string().contains(title))
        })
    })
    .await?;
    for sent in work.sends() {
        let card_title = sent.msg["action_card"]["title"].as_str().or(sent.msg["markdown"]["title"].as_str());
        assert_inert("a work notification's title", card_title.unwrap_or_default());
        assert_inert("a work notification", &sent.text());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_to_the_security_group_and_by_work_notification_keep_outside_text_inert() -> Result<()> {
    let robot = RobotStandIn::start().await?;
    let work = WorkStandIn::start().await;
    let config = tempfile::NamedTempFile::new()?;
    std::fs::write(
        config.path(),
        format!(
            "[notify]\nconsole_url = \"http://console.example\"\n[[notify.robots]]\nname = \"security-group\"\n\
             access_token = \"{}\"\nsecret = \"{}\"\nbase_url = \"{}\"\nmin_severity = \"medium\"\n\
             [notify.work]\napp_key = \"{APP_KEY}\"\napp_secret = \"{APP_SECRET}\"\nagent_id = {AGENT_ID}\n\
             base_url = \"{}\"\nrecipients = [\"user_ops\"]\nmin_severity = \"medium\"\n",
            robot.access_token,
            robot.secret,
            robot.base_url(),
            work.url
        ),
    )?;
    let d = Deployment::start(&[("DINGGUARD_CONFIG", config.path().display().to_string())]).await?;
    let now = dingguard_tests::now_ms();
    let corp = "dingdemo";
    // A group titled to phish the security team, an outsider with an id to match, a download named the same way.
    let events = [
        json!({"EventType": "chat_create", "eventId": "c1", "EventTime": now, "CorpId": corp, "chatId": "chat_h",
            "title": MARKDOWN, "owner": "user_sales_lead", "userId": ["user_sales_lead"]}),
        json!({"EventType": "chat_add_member", "eventId": "c2", "EventTime": now + 1, "CorpId": corp,
            "chatId": "chat_h", "operator": "user_sales_lead", "userId": [COMPACT]}),
        json!({"EventType": "file_download", "eventId": "c3", "EventTime": now + 2, "CorpId": corp,
            "userId": "user_sales_rep", "chatId": "chat_h", "fileId": "f-h", "fileName": MARKDOWN,
            "spaceId": "space_hr", "action": 2}),
    ];
    d.push(&events).await?;
    let alerts = d
        .alerts_until(|a| {
            let rules = rules_of(a);
            rules.contains(&"external_member_in_personal_data_group")
                && rules.contains(&"external_member_then_download")
        })
        .await?;
    assert!(rules_of(&alerts).contains(&"sensitive_download_without_grant"), "{alerts:?}");
    dingguard_tests::eventually("robot messages", Duration::from_secs(10), || robot.messages().len() >= 3).await?;
    dingguard_tests::eventually("work notifications", Duration::from_secs(10), || work.sends().len() >= 3).await?;
    for message in robot.messages() {
        assert_inert("the robot message's title", &message.title);
        assert_inert("a robot message", &message.text);
    }
    for sent in work.sends() {
        assert_inert("an alert by work notification", &sent.text());
    }
    Ok(())
}
