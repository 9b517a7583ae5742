//! `make bench`: the receiver's throughput, latency and peak memory on each event-log back end, measured in one
//! run side by side with a do-nothing axum handler on the same machine (the HTTP ceiling), and printed as ratios.

mod alerter;
mod latency;
mod memory;
mod scaling;
mod stream;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use dingguard_simulator::load::{self, LoadPlan, LoadReport, Progress, Target};
use dingguard_simulator::{SignedCallback, Signer, load_event};
use dingguard_tests::broker::Broker;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

// The same allocator as the dingguard binary, so the ceiling and the receivers differ only in the work done.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOKEN: &str = "benchtoken";
const AES: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";
const APP_KEY: &str = "dingbenchapp";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("null-server") {
        return null_server();
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench())
}

/// The ceiling: an axum handler that reads the body and answers with a reply-sized JSON body, nothing else.
fn null_server() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
        let reply = r#"{"msg_signature":"0000000000000000000000000000000000000000","timeStamp":"1700000000000","nonce":"abcdefgh","encrypt":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
        let app = axum::Router::new().route(
            "/dingtalk/callback",
            axum::routing::post(move |_body: axum::body::Bytes| async move {
                ([(axum::http::header::CONTENT_TYPE, "application/json")], reply)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("null server listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        Ok(())
    })
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
}

pub(crate) async fn start(mut command: Command) -> Result<Server> {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true).spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.split("listening on ").nth(1) {
                return Ok(format!("{}/dingtalk/callback", rest.split_whitespace().next().unwrap_or_default()));
            }
        }
        anyhow::bail!("server exited before listening")
    })
    .await??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Server { child, url })
}

/// Peak resident memory of a process, from the kernel's high-water mark.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn dingguard(args: &[&str], envs: &[(&str, String)]) -> Command {
    // `DINGGUARD_BIN` measures another build (an earlier commit's, say) against the same ceiling and load.
    let exe = std::env::current_exe().expect("own path");
    let bin = std::env::var_os("DINGGUARD_BIN").map_or_else(|| exe.with_file_name("dingguard"), Into::into);
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("DINGGUARD_LISTEN", "127.0.0.1:0")
        .env("DINGGUARD_LOG_FORMAT", "json")
        .env("RUST_LOG", "error")
        .env("DINGGUARD_DINGTALK_TOKEN", TOKEN)
        .env("DINGGUARD_DINGTALK_AES_KEY", AES)
        .env("DINGGUARD_DINGTALK_APP_KEY", APP_KEY);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

struct Row {
    name: &'static str,
    report: LoadReport,
    rss_mib: f64,
    cpu_us_per_callback: f64,
}

/// User plus system CPU time a process has used, in microseconds.
fn cpu_us(pid: u32) -> f64 {
    let ticks_per_s = 100.0; // CLK_TCK on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            Some((after.get(11)?.parse::<f64>().ok()? + after.get(12)?.parse::<f64>().ok()?) / ticks_per_s * 1e6)
        })
        .unwrap_or(f64::NAN)
}

async fn measure(
    name: &'static str,
    server: Server,
    callbacks: &Arc<Vec<SignedCallback>>,
    signer: &Signer,
) -> Result<Row> {
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 128);
    let target = Target::parse(&server.url)?;
    // Warm-up on a separate slice so the measured run only sends callbacks the server has not seen.
    let (warm, main) = callbacks.split_at(callbacks.len() / 10);
    let warm_plan = LoadPlan { concurrency, rate: None, duration: Some(Duration::from_secs(1)), verify_replies: false };
    load::run(target.clone(), Arc::new(warm.to_vec()), signer.clone(), warm_plan, Arc::default()).await;
    let plan =
        LoadPlan { concurrency, rate: None, duration: Some(Duration::from_secs(seconds)), verify_replies: false };
    eprintln!("{name}: {seconds}s at concurrency {concurrency} ...");
    let pid = server.child.id().unwrap_or_default();
    let cpu_before = cpu_us(pid);
    let report = load::run(target, Arc::new(main.to_vec()), signer.clone(), plan, Arc::new(Progress::default())).await;
    let cpu_us_per_callback = (cpu_us(pid) - cpu_before) / report.sent.max(1) as f64;
    let rss_mib = peak_rss_mib(pid);
    if report.sent as usize >= main.len() {
        eprintln!("warning: {name} used up every pre-built callback; raise BENCH_CALLBACKS");
    }
    Ok(Row { name, report, rss_mib, cpu_us_per_callback })
}

async fn bench() -> Result<()> {
    if std::env::var("BENCH_ONLY").as_deref() == Ok("latency") {
        let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
        print_latency(&latency::run(signer, dingguard(&["serve"], &[]), 1000, 20).await?);
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("memory") {
        let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
        return memory_figures(&signer, None).await;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("scaling") {
        let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
        let count: usize = env_or("BENCH_CALLBACKS", 600_000);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
        let callbacks: Arc<Vec<SignedCallback>> = Arc::new(
            (0..count as u64).map(|i| signer.sign(&load_event("dingscalecorp", now, i), now as u64)).collect(),
        );
        scaling::print(&scaling::run(callbacks, &signer, env_or("BENCH_SECONDS", 10)).await?);
        scaling::print_alerters(&scaling::alerters(env_or("BENCH_SCALING_EVENTS", 50_000)).await?);
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("stream") {
        stream::print(&stream_figures().await?, None);
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("alerter") {
        let f = alerter::run(env_or("BENCH_ALERTER_EVENTS", 20_000)).await?;
        println!(
            "raw {:.0}/s; normalise+rules {:.0}/s ({:.2}); evaluation alone {:.2} us/event; whole alerter {:.0}/s ({:.2}); {} rules",
            f.raw_per_s,
            f.evaluate_per_s,
            f.evaluate_per_s / f.raw_per_s,
            f.evaluate_us,
            f.alerter_per_s,
            f.alerter_per_s / f.raw_per_s,
            f.rules
        );
        return Ok(());
    }
    let count: usize = env_or("BENCH_CALLBACKS", 1_500_000);
    let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
    eprintln!("pre-building {count} distinct signed callbacks ...");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let callbacks: Arc<Vec<SignedCallback>> =
        Arc::new((0..count as u64).map(|i| signer.sign(&load_event("dingbenchcorp", now, i), now as u64)).collect());

    let mut rows = Vec::new();
    let mut null_command = Command::new(std::env::current_exe()?);
    null_command.arg("null-server");
    let null = start(null_command).await?;
    rows.push(measure("axum do-nothing (ceiling)", null, &callbacks, &signer).await?);

    let dir = tempfile::tempdir()?;
    let embedded = start(dingguard(&["receiver"], &[("DINGGUARD_DATA_DIR", dir.path().display().to_string())])).await?;
    rows.push(measure("receiver, embedded log", embedded, &callbacks, &signer).await?);

    if std::env::var_os("BENCH_SKIP_KAFKA").is_some() {
        for row in &rows {
            println!(
                "{}: {:.0}/s p99 {:.2} ms CPU {:.1} us/cb",
                row.name,
                row.report.throughput(),
                row.report.percentile_ms(0.99),
                row.cpu_us_per_callback
            );
        }
        stream::print(&stream_figures().await?, Some(rows[1].report.throughput()));
        return Ok(());
    }
    let broker = Broker::start().await?;
    let kdir = tempfile::tempdir()?;
    let kafka = start(dingguard(
        &["receiver"],
        &[("DINGGUARD_DATA_DIR", kdir.path().display().to_string()), ("DINGGUARD_KAFKA_BROKERS", broker.bootstrap())],
    ))
    .await?;
    rows.push(measure("receiver, Kafka log (Tansu)", kafka, &callbacks, &signer).await?);

    let ceiling = rows[0].report.throughput();
    println!();
    println!(
        "{:<30} {:>12} {:>9} {:>9} {:>9} {:>10} {:>12} {:>12}",
        "target", "callbacks/s", "x ceiling", "p50 ms", "p99 ms", "RSS MiB", "non-success", "CPU us/cb"
    );
    for row in &rows {
        println!(
            "{:<30} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>10.1} {:>12} {:>12.1}",
            row.name,
            row.report.throughput(),
            row.report.throughput() / ceiling,
            row.report.percentile_ms(0.5),
            row.report.percentile_ms(0.99),
            row.rss_mib,
            row.report.non_success,
            row.cpu_us_per_callback
        );
    }
    println!();
    let check = |ok: bool| if ok { "met" } else { "NOT MET" };
    let (e, k) = (&rows[1], &rows[2]);
    println!(
        "embedded >= 0.50 x ceiling: {:.2} {}",
        e.report.throughput() / ceiling,
        check(e.report.throughput() / ceiling >= 0.5)
    );
    println!(
        "kafka    >= 0.35 x ceiling: {:.2} {}",
        k.report.throughput() / ceiling,
        check(k.report.throughput() / ceiling >= 0.35)
    );
    for row in [e, k] {
        println!(
            "{}: p99 {:.2} ms <= 20 ms {}; RSS {:.1} MiB <= 64 MiB {}",
            row.name,
            row.report.percentile_ms(0.99),
            check(row.report.percentile_ms(0.99) <= 20.0),
            row.rss_mib,
            check(row.rss_mib <= 64.0)
        );
    }
    println!();
    stream::print(&stream_figures().await?, Some(e.report.throughput()));
    println!();
    scaling::print(&scaling::run(callbacks.clone(), &signer, env_or("BENCH_SECONDS", 10)).await?);
    scaling::print_alerters(&scaling::alerters(env_or("BENCH_SCALING_EVENTS", 50_000)).await?);
    let figures = alerter::run(env_or("BENCH_ALERTER_EVENTS", 20_000)).await?;
    let ratio = figures.evaluate_per_s / figures.raw_per_s;
    println!();
    println!(
        "alerter, embedded log, {} events, {} rules: raw consumer {:.0} events/s; consume + normalise + rules {:.0} events/s \
         = {ratio:.2} x raw (target >= 0.50: {}); normalise + rules alone {:.2} us/event against {:.2} us/event of raw \
         consuming; whole alerter with its exactly-once store writes {:.0} events/s = {:.2} x raw",
        figures.events,
        figures.rules,
        figures.raw_per_s,
        figures.evaluate_per_s,
        check(ratio >= 0.5),
        figures.evaluate_us,
        1e6 / figures.raw_per_s,
        figures.alerter_per_s,
        figures.alerter_per_s / figures.raw_per_s
    );
    let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
    print_latency(&latency::run(signer.clone(), dingguard(&["serve"], &[]), 1000, 20).await?);
    memory_figures(&signer, Some(callbacks)).await
}

/// What the README promises of the receiver's memory after this many distinct callbacks, with default settings.
const RECEIVER_RSS_BOUND_MIB: f64 = 160.0;

/// The receiver's memory over a million distinct callbacks, and the alerter's catch-up on an address-book backlog.
async fn memory_figures(signer: &Signer, built: Option<Arc<Vec<SignedCallback>>>) -> Result<()> {
    let count: usize = env_or("BENCH_MEMORY_CALLBACKS", 1_000_000);
    let callbacks = match built.filter(|b| b.len() >= count) {
        Some(built) => Arc::new(built[..count].to_vec()),
        None => {
            eprintln!("pre-building {count} distinct signed callbacks ...");
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
            Arc::new((0..count as u64).map(|i| signer.sign(&load_event("dingmemcorp", now, i), now as u64)).collect())
        }
    };
    if count == 0 {
        return backlog_figures().await;
    }
    let m = memory::receiver(callbacks, signer).await?;
    let check = |ok: bool| if ok { "met" } else { "NOT MET" };
    println!();
    let samples: Vec<String> = m.samples.iter().map(|(n, rss)| format!("{}k {rss:.0}", n / 1000)).collect();
    let last = m.samples.last().map_or(f64::NAN, |s| s.1);
    let first = m.samples.first().map_or(f64::NAN, |s| s.1);
    println!(
        "receiver (embedded) resident MiB after each tenth of {count} distinct callbacks: {}; peak {:.0} MiB          (bound {RECEIVER_RSS_BOUND_MIB:.0} MiB: {}); last/first tenth {:.2}; {} non-success",
        samples.join(", "),
        m.peak_mib,
        check(m.peak_mib <= RECEIVER_RSS_BOUND_MIB),
        last / first,
        m.non_success
    );
    backlog_figures().await
}

async fn backlog_figures() -> Result<()> {
    let check = |ok: bool| if ok { "met" } else { "NOT MET" };
    let b =
        memory::address_book_backlog(env_or("BENCH_BACKLOG_EVENTS", 150_000), env_or("BENCH_BACKLOG_PEOPLE", 1_000))
            .await?;
    let rates: Vec<String> = b.slice_rates.iter().map(|r| format!("{r:.0}")).collect();
    let rss: Vec<String> = b.slice_rss.iter().map(|r| format!("{r:.0}")).collect();
    let steady = b.slice_rates.last().copied().unwrap_or(f64::NAN) / b.slice_rates.first().copied().unwrap_or(f64::NAN);
    println!(
        "alerter catching up on {} address-book events about {} people: events/s per fifth {}; last/first {steady:.2} (steady >= 0.75: {}); \
         resident MiB per fifth {}; peak {:.0} MiB",
        b.events,
        b.people,
        rates.join(", "),
        check(steady >= 0.75),
        rss.join(", "),
        b.peak_mib
    );
    Ok(())
}

async fn stream_figures() -> Result<Vec<stream::StreamFigures>> {
    let events = env_or("BENCH_STREAM_EVENTS", 100_000);
    Ok(vec![stream::run(events, 1).await?, stream::run(events, 3).await?])
}

fn print_latency(f: &latency::LatencyFigures) {
    let met = if f.delivered == f.alerts && f.p99_ms <= 250.0 { "met" } else { "NOT MET" };
    println!(
        "callback to robot, dingguard serve (embedded), {} callbacks/s of ordinary traffic ({} sent, {} non-success): \
         {}/{} alerts delivered, latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (target p99 <= 250 ms: {met})",
        f.rate, f.background_sent, f.background_non_success, f.delivered, f.alerts, f.p50_ms, f.p99_ms, f.max_ms
    );
}
