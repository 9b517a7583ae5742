//! `dingguard standin`: the DingTalk stand-in with a demo company, for trying dingguard's sources without a
//! tenant: tokens, Stream mode, the failed-push list, the file audit log and the address book on one port, and
//! a security group's robot and the work-notification API on two more, whose messages it prints as they come. It
//! writes the notification settings to a file and prints the line that points `dingguard serve` at all of it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use dingguard_dingtalk_standin::StandIn;
use dingguard_dingtalk_standin::robot::RobotStandIn;
use dingguard_dingtalk_standin::work::{AGENT_ID, APP_KEY, APP_SECRET, WorkStandIn};
use dingguard_model::{Clock, SystemClock};

const CLIENT_ID: &str = "dingstandindemo";
const CLIENT_SECRET: &str = "standin-demo-secret";

pub async fn run(listen: SocketAddr) -> Result<()> {
    let standin = StandIn::start_on(listen, CLIENT_ID, CLIENT_SECRET)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    standin.load_demo(SystemClock.now_ms());
    let robot = RobotStandIn::start().await.context("cannot start the robot stand-in")?;
    let work = WorkStandIn::start().await;
    let config = std::env::temp_dir().join(format!("dingguard-standin-{}.toml", std::process::id()));
    let text = format!(
        "# Written by `dingguard standin`: where dingguard sends alerts and approvals in the demo.\n\
         [[notify.robots]]\nname = \"security-group\"\naccess_token = \"{}\"\nsecret = \"{}\"\nbase_url = \"{}\"\n\
         min_severity = \"medium\"\n\n[notify.work]\napp_key = \"{APP_KEY}\"\napp_secret = \"{APP_SECRET}\"\n\
         agent_id = {AGENT_ID}\nbase_url = \"{}\"\nrecipients = [\"user_dpo\"]\nmin_severity = \"high\"\n",
        robot.access_token,
        robot.secret,
        robot.base_url(),
        work.url,
    );
    std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    let url = standin.url();
    // The address line last: whoever waits for it has read the lines before.
    println!(
        "Point dingguard at it from another terminal:\n\n  \
         DINGGUARD_CONFIG={} DINGGUARD_SOURCES=stream,failed-push,file-audit \\\n    \
         DINGGUARD_DINGTALK_CLIENT_ID={CLIENT_ID} DINGGUARD_DINGTALK_CLIENT_SECRET={CLIENT_SECRET} \\\n    \
         DINGGUARD_DINGTALK_API_URL={url} DINGGUARD_DINGTALK_OAPI_URL={url} make run\n",
        config.display()
    );
    println!("DingTalk stand-in with a demo company, listening on {url}");
    let mut shown = (0, 0);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            signal = tokio::signal::ctrl_c() => {
                signal.context("waiting for Ctrl-C")?;
                let _ = std::fs::remove_file(&config);
                return Ok(());
            }
            _ = tick.tick() => {}
        }
        // What DingTalk would show people, as it arrives; outside text printed inert (no control characters).
        let messages = robot.messages();
        for message in &messages[shown.0..] {
            println!("[security group robot] {}", printable(&message.title));
        }
        shown.0 = messages.len();
        let sends = work.sends();
        for sent in &sends[shown.1..] {
            println!("[work notification to {}] {}", printable(&sent.userid_list), printable(&sent.text()));
        }
        shown.1 = sends.len();
    }
}

fn printable(text: &str) -> String {
    text.chars().take(200).map(|c| if c.is_control() { ' ' } else { c }).collect()
}
