//! A broker that hangs (its process stopped, its sockets open) must not hold a reply past DingTalk's deadline:
//! every append is bounded by the delivery timeout in dingguard's own code, whatever librdkafka's timers do.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use dingguard_simulator::{Signer, random_id};
use dingguard_tests::broker::Broker;
use dingguard_tests::process::Service;
use serde_json::json;

const TOKEN: &str = "hangtoken";
const AES: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";
const APP_KEY: &str = "dinghangapp";
const DELIVERY_TIMEOUT: Duration = Duration::from_millis(1000);
/// What "the timeout plus a few milliseconds" may be on a loaded two-core test machine; DingTalk's own deadline
/// is 1.5 s.
const SLACK: Duration = Duration::from_millis(250);

async fn push(http: &reqwest::Client, service: &Service) -> Result<(u16, Duration)> {
    let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
    let now = dingguard_tests::now_ms();
    let event = json!({"EventType": "chat_add_member", "eventId": random_id("hang"), "EventTime": now,
        "CorpId": "dinghang", "chatId": "chat_hang", "userId": ["ext_hang"]});
    let signed = signer.sign(&event, now as u64);
    let started = Instant::now();
    let reply = http
        .post(format!("{}?{}", service.url("/dingtalk/callback"), signed.query))
        .header("content-type", "application/json")
        .body(signed.body)
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    Ok((reply.status().as_u16(), started.elapsed()))
}

async fn until_accepting(http: &reqwest::Client, service: &Service) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while push(http, service).await?.0 != 200 {
        ensure!(Instant::now() < deadline, "the receiver did not accept within 30 s of the broker running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_broker_never_holds_a_reply_past_the_delivery_timeout() -> Result<()> {
    let broker = Broker::start().await?;
    let dir = tempfile::tempdir()?;
    let envs = vec![
        ("DINGGUARD_DINGTALK_TOKEN", TOKEN.to_owned()),
        ("DINGGUARD_DINGTALK_AES_KEY", AES.to_owned()),
        ("DINGGUARD_DINGTALK_APP_KEY", APP_KEY.to_owned()),
        ("DINGGUARD_DATA_DIR", dir.path().display().to_string()),
        ("DINGGUARD_KAFKA_BROKERS", broker.bootstrap()),
        ("DINGGUARD_KAFKA_DELIVERY_TIMEOUT_MS", DELIVERY_TIMEOUT.as_millis().to_string()),
    ];
    let service = Service::start(&["receiver"], &envs).await?;
    let http = reqwest::Client::new();
    until_accepting(&http, &service).await?;

    let mut slowest = Duration::ZERO;
    for round in 0..3 {
        broker.freeze()?;
        // Callbacks that reach the producer at different points of the hang, so that some land just after
        // whatever periodic timer a client library uses to expire them.
        let waves = (0..3u64).map(|wave| {
            let (http, service) = (&http, &service);
            async move {
                tokio::time::sleep(Duration::from_millis(300 * wave)).await;
                let replies = futures_util::future::join_all((0..3).map(|_| push(http, service))).await;
                replies.into_iter().collect::<Result<Vec<_>>>()
            }
        });
        let replies: Vec<(u16, Duration)> =
            futures_util::future::join_all(waves).await.into_iter().collect::<Result<Vec<_>>>()?.concat();
        for (status, took) in &replies {
            ensure!(*status != 200, "round {round}: a callback was acknowledged while the broker hung");
            slowest = slowest.max(*took);
            ensure!(
                *took <= DELIVERY_TIMEOUT + SLACK,
                "round {round}: a reply took {took:?} with a {DELIVERY_TIMEOUT:?} delivery timeout"
            );
        }
        broker.thaw()?;
        until_accepting(&http, &service).await?;
    }
    eprintln!("slowest reply while the broker hung: {slowest:?}");
    Ok(())
}
