//! `dingguard standin`: the DingTalk stand-in with a demo company, for trying dingguard's sources without a
//! tenant. It prints the settings that point `dingguard serve` at it.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use dingguard_dingtalk_standin::StandIn;
use dingguard_model::{Clock, SystemClock};

const CLIENT_ID: &str = "dingstandindemo";
const CLIENT_SECRET: &str = "standin-demo-secret";

pub async fn run(listen: SocketAddr) -> Result<()> {
    let standin = StandIn::start_on(listen, CLIENT_ID, CLIENT_SECRET)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    standin.load_demo(SystemClock.now_ms());
    let url = standin.url();
    // The address line last: whoever waits for it has read the lines before.
    println!(
        "Point dingguard at it from another terminal:\n\n  \
         DINGGUARD_SOURCES=stream,failed-push,file-audit DINGGUARD_DINGTALK_CLIENT_ID={CLIENT_ID} \\\n    \
         DINGGUARD_DINGTALK_CLIENT_SECRET={CLIENT_SECRET} DINGGUARD_DINGTALK_API_URL={url} \\\n    \
         DINGGUARD_DINGTALK_OAPI_URL={url} make run\n"
    );
    println!("DingTalk stand-in with a demo company, listening on {url}");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}
