//! Replays pre-built callbacks over keep-alive HTTP/1.1 connections and measures the replies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{SignedCallback, Signer};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("URL `{0}` is not of the form http://HOST:PORT/PATH")]
    Url(String),
    #[error("cannot resolve `{0}`")]
    Resolve(String),
}

/// Where to send: host, port and path of an `http://` URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, LoadError> {
        let rest = url.strip_prefix("http://").ok_or_else(|| LoadError::Url(url.to_owned()))?;
        let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
        if authority.is_empty() {
            return Err(LoadError::Url(url.to_owned()));
        }
        let with_port = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&with_port)
            .map_err(|_| LoadError::Resolve(authority.to_owned()))?
            .next()
            .ok_or_else(|| LoadError::Resolve(authority.to_owned()))?;
        Ok(Self { addr, host: authority.to_owned(), path })
    }
}

#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub concurrency: usize,
    /// Requests per second; `None` sends as fast as replies come back.
    pub rate: Option<u32>,
    /// Stop after this long even if callbacks remain.
    pub duration: Option<Duration>,
    /// Check each reply's signature and plaintext, as DingTalk does.
    pub verify_replies: bool,
}

/// Live counters a progress display can read while the run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
}

#[derive(Debug)]
pub struct LoadReport {
    pub sent: u64,
    pub succeeded: u64,
    pub non_success: u64,
    pub elapsed: Duration,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
    /// The event ids whose callbacks got a success reply: what the log must hold afterwards.
    pub succeeded_ids: Vec<String>,
}

impl LoadReport {
    pub fn throughput(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    pub fn percentile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn summary(&self) -> String {
        format!(
            "sent {} in {:.2}s: {:.0} callbacks/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; non-success replies {}",
            self.sent,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            self.percentile_ms(0.5),
            self.percentile_ms(0.9),
            self.percentile_ms(0.99),
            self.latency.max() as f64 / 1000.0,
            self.non_success
        )
    }
}

struct Worker {
    latency: Histogram<u64>,
    succeeded_ids: Vec<String>,
    sent: u64,
    succeeded: u64,
    non_success: u64,
}

async fn connect(target: &Target) -> std::io::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(target.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends every callback once (or until the plan's duration ends) and reports.
pub async fn run(
    target: Target,
    callbacks: Arc<Vec<SignedCallback>>,
    signer: Signer,
    plan: LoadPlan,
    progress: Arc<Progress>,
) -> LoadReport {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = plan.duration.map(|d| started + d);
    let mut handles = Vec::new();
    for _ in 0..plan.concurrency.max(1) {
        let (target, callbacks, signer, plan, progress, next) =
            (target.clone(), callbacks.clone(), signer.clone(), plan.clone(), progress.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            let mut w = Worker {
                latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
                succeeded_ids: Vec::new(),
                sent: 0,
                succeeded: 0,
                non_success: 0,
            };
            let mut sender: Option<SendRequest<Full<Bytes>>> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(callback) = callbacks.get(i) else {
                    break;
                };
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if let Some(rate) = plan.rate {
                    let due = started + Duration::from_secs_f64(i as f64 / f64::from(rate.max(1)));
                    tokio::time::sleep_until(due.into()).await;
                }
                let t0 = Instant::now();
                let ok = send_one(&target, &mut sender, callback, &signer, plan.verify_replies).await;
                let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
                w.latency.saturating_record(micros);
                w.sent += 1;
                progress.sent.fetch_add(1, Ordering::Relaxed);
                if ok {
                    w.succeeded += 1;
                    progress.succeeded.fetch_add(1, Ordering::Relaxed);
                    if let Some(id) = &callback.event_id {
                        w.succeeded_ids.push(id.clone());
                    }
                } else {
                    w.non_success += 1;
                    progress.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            w
        }));
    }
    let mut report = LoadReport {
        sent: 0,
        succeeded: 0,
        non_success: 0,
        elapsed: Duration::ZERO,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
        succeeded_ids: Vec::new(),
    };
    for handle in handles {
        if let Ok(w) = handle.await {
            report.sent += w.sent;
            report.succeeded += w.succeeded;
            report.non_success += w.non_success;
            report.latency.add(&w.latency).expect("same bounds");
            report.succeeded_ids.extend(w.succeeded_ids);
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// Sends `callbacks` one after another, each reply checked as DingTalk checks it: how scenarios are played.
pub async fn send_all(target: Target, callbacks: Vec<SignedCallback>, signer: Signer) -> LoadReport {
    let plan = LoadPlan { concurrency: 1, rate: None, duration: None, verify_replies: true };
    run(target, Arc::new(callbacks), signer, plan, Arc::default()).await
}

/// One request on the worker's connection, reconnecting once if the connection is gone.
async fn send_one(
    target: &Target,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    callback: &SignedCallback,
    signer: &Signer,
    verify: bool,
) -> bool {
    for _attempt in 0..2 {
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            match connect(target).await {
                Ok(s) => *sender = Some(s),
                Err(_) => {
                    *sender = None;
                    return false;
                }
            }
        }
        let s = sender.as_mut().expect("connected");
        if s.ready().await.is_err() {
            *sender = None;
            continue;
        }
        let request = Request::post(format!("{}?{}", target.path, callback.query))
            .header(hyper::header::HOST, &target.host)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(callback.body.clone()))
            .expect("valid request");
        match s.send_request(request).await {
            Ok(response) => {
                let ok_status = response.status().is_success();
                let body = match response.into_body().collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => {
                        *sender = None;
                        return false;
                    }
                };
                return ok_status && (!verify || signer.is_success_reply(&body));
            }
            Err(_) => {
                // The request may or may not have reached the server; never resend it, DingTalk would not either.
                *sender = None;
                return false;
            }
        }
    }
    false
}
