//! `dingguard simulate`: scenarios and load, signed and encrypted with the receiver's credentials.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Args;
use dingguard_dingtalk::{CallbackCrypto, EncodingAesKey, OwnerKey, Token};
use dingguard_simulator::load::{self, LoadPlan, Progress, Target};
use dingguard_simulator::{Scenario, ScenarioContext, Signer, load_event};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct SimulateArgs {
    /// The receiver's callback URL, e.g. http://127.0.0.1:8080/dingtalk/callback
    #[arg(long, required_unless_present = "list")]
    url: Option<String>,
    /// Scenario to play; see --list.
    #[arg(long, required_unless_present_any = ["list", "load"])]
    scenario: Option<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Load mode: distinct membership events as fast as --rate allows (or as fast as possible).
    #[arg(long, conflicts_with = "scenario")]
    load: bool,
    /// Requests per second in load mode; omit (or --max) to go as fast as replies allow.
    #[arg(long, conflicts_with = "max")]
    rate: Option<u32>,
    /// Send as fast as replies allow.
    #[arg(long)]
    max: bool,
    /// Parallel connections in load mode.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds to run in load mode.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Distinct events to build up front in load mode; when the run needs more they repeat (as replays).
    #[arg(long, default_value_t = 100_000)]
    distinct: usize,
    /// CorpId the events claim to come from.
    #[arg(long, default_value = "dingdemocorp0000")]
    corp_id: String,
    /// DingTalk signing token (same as the receiver's).
    #[arg(long, env = "DINGGUARD_DINGTALK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// DingTalk EncodingAESKey (same as the receiver's).
    #[arg(long, env = "DINGGUARD_DINGTALK_AES_KEY", hide_env_values = true)]
    aes_key: Option<String>,
    /// AppKey the plaintext ends with (same as the receiver's).
    #[arg(long, env = "DINGGUARD_DINGTALK_APP_KEY")]
    app_key: Option<String>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn signer(args: &SimulateArgs) -> Result<Signer> {
    let (Some(token), Some(aes), Some(app_key)) = (&args.token, &args.aes_key, &args.app_key) else {
        bail!(
            "credentials missing: set DINGGUARD_DINGTALK_TOKEN, DINGGUARD_DINGTALK_AES_KEY and DINGGUARD_DINGTALK_APP_KEY \
             to the receiver's values (`dingguard serve` prints them when it generates demo ones)"
        );
    };
    Ok(Signer::new(CallbackCrypto::new(
        Token::parse(token).context("DINGGUARD_DINGTALK_TOKEN")?,
        EncodingAesKey::parse(aes).context("DINGGUARD_DINGTALK_AES_KEY")?,
        OwnerKey::parse(app_key).context("DINGGUARD_DINGTALK_APP_KEY")?,
    )))
}

pub async fn run(args: SimulateArgs) -> Result<()> {
    if args.list {
        for s in Scenario::ALL {
            println!("{:<18} {}", s.name(), s.description());
        }
        return Ok(());
    }
    let target = Target::parse(args.url.as_deref().unwrap_or_default())?;
    let signer = signer(&args)?;
    if args.load {
        return run_load(&args, target, signer).await;
    }
    let scenario = Scenario::parse(args.scenario.as_deref().unwrap_or_default())?;
    let now = now_ms();
    let callbacks: Vec<_> = scenario
        .events(&ScenarioContext::new(&args.corp_id, now))
        .iter()
        .map(|e| signer.sign(e, u64::try_from(now).unwrap_or(0)))
        .collect();
    let total = callbacks.len();
    let report = load::send_all(target, callbacks.clone(), signer).await;
    for c in &callbacks {
        let ok = c.event_id.as_ref().is_none_or(|id| report.succeeded_ids.contains(id));
        println!(
            "{} {} {}",
            if ok && report.non_success == 0 { "accepted" } else { "NOT ACCEPTED" },
            c.event_type.as_deref().unwrap_or("?"),
            c.event_id.as_deref().unwrap_or("-")
        );
    }
    if report.non_success > 0 {
        bail!("{} of {total} callbacks got no success reply", report.non_success);
    }
    println!("scenario {}: {total} callback(s) accepted", scenario.name());
    Ok(())
}

async fn run_load(args: &SimulateArgs, target: Target, signer: Signer) -> Result<()> {
    let duration = Duration::from_secs(args.duration.max(1));
    let needed =
        args.rate.map_or(args.distinct, |r| usize::try_from(u64::from(r) * duration.as_secs()).unwrap_or(usize::MAX));
    let distinct = args.distinct.max(1).min(needed.max(1));
    eprintln!("building {distinct} distinct signed callbacks...");
    let now = now_ms();
    let mut callbacks: Vec<_> = (0..distinct as u64)
        .map(|seq| signer.sign(&load_event(&args.corp_id, now, seq), u64::try_from(now).unwrap_or(0)))
        .collect();
    // Beyond the distinct set the run repeats callbacks, which the receiver must answer as replays.
    let total = if args.rate.is_some() { needed } else { distinct.max(needed) };
    let base = callbacks.clone();
    while callbacks.len() < total {
        let room = total - callbacks.len();
        callbacks.extend(base.iter().take(room).cloned());
    }
    let plan = LoadPlan {
        concurrency: args.concurrency.max(1),
        rate: if args.max { None } else { args.rate },
        duration: Some(duration),
        verify_replies: true,
    };
    let progress = Arc::new(Progress::default());
    let bar = ProgressBar::new(callbacks.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {per_sec} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let ticker = {
        let (bar, progress) = (bar.clone(), progress.clone());
        tokio::spawn(async move {
            loop {
                bar.set_position(progress.sent.load(Ordering::Relaxed));
                bar.set_message(format!("non-success {}", progress.failed.load(Ordering::Relaxed)));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let report = load::run(target, Arc::new(callbacks), signer, plan, progress).await;
    ticker.abort();
    bar.finish_and_clear();
    println!("{}", report.summary());
    Ok(())
}
