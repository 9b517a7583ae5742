//! DingTalk's Stream mode: dingguard opens the connections, so a company without a public endpoint still hears
//! its events. Each connection registers with `connections/open` for a one-time ticket, connects its WebSocket,
//! and answers every frame: an EVENT is written to the log as the record its HTTP push would have been and acked
//! `SUCCESS` only then (`LATER` when the log did not take it, so DingTalk sends it again); a `ping` gets its
//! `opaque` back; a robot CALLBACK is acked so it does not pile up. On `disconnect`, a dropped socket or a
//! keepalive that went unanswered, the connection opens again with a fresh ticket, after a wait that grows with
//! each attempt that got nowhere.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dingguard_dingtalk::stream::{
    EventStatus, Frame, FrameKind, MAX_FRAME_BYTES, OPEN_PATH, Opened, SystemTopic, callback_ack, event_ack,
    open_request, ping_ack,
};
use dingguard_dingtalk_api::Backoff;
use dingguard_eventlog::EventLog;
use dingguard_model::{AppName, Clock, Origin, Secret};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

mod metrics;

pub use metrics::StreamMetrics;

#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub app: AppName,
    pub topic: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Base of DingTalk's new APIs, where `connections/open` is.
    pub api_url: String,
    /// Connections held open at once; DingTalk pushes each event to one of them.
    pub connections: usize,
    /// A WebSocket ping after this long without a frame...
    pub keepalive_idle: Duration,
    /// ...and the connection is given up when nothing answers it within this.
    pub keepalive_timeout: Duration,
    /// The longest a write to the log may take before the event is answered `LATER`.
    pub write_timeout: Duration,
    /// Events being written at once on one connection; more frames wait unread.
    pub window: usize,
    /// Waits between attempts that got nowhere.
    pub backoff: Backoff,
}

impl StreamSettings {
    pub fn new(app: AppName, topic: String, client_id: String, client_secret: Secret, api_url: String) -> Self {
        Self {
            app,
            topic,
            client_id,
            client_secret,
            api_url,
            connections: 1,
            keepalive_idle: Duration::from_secs(120),
            keepalive_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(2),
            window: 256,
            backoff: Backoff { attempts: u32::MAX, first: Duration::from_secs(1), max: Duration::from_secs(60) },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("DingTalk refused the client id and secret for Stream mode ({0})")]
    BadCredentials(u16),
    #[error("connections/open answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("connections/open: {0}")]
    Unreachable(String),
    #[error("WebSocket: {0}")]
    Socket(String),
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Disconnect,
    Dropped,
    Keepalive,
    Stopped,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            Self::Disconnect => "disconnect",
            Self::Dropped => "dropped",
            Self::Keepalive => "keepalive",
            Self::Stopped => "stopped",
        }
    }
}

type Write = Pin<Box<dyn Future<Output = (String, EventStatus, Instant, usize)> + Send>>;

/// The longest one frame may take to send: a server that stops reading is a connection lost, not one that hangs.
const SEND_BOUND: Duration = Duration::from_secs(10);
/// Bytes of frames being written at once on one connection, at most; more frames wait unread.
const MAX_IN_FLIGHT_BYTES: usize = 16 * 1024 * 1024;

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// Sends one message within [`SEND_BOUND`]; false when the socket is gone or stuck.
async fn send(sink: &mut Sink, message: Message) -> bool {
    matches!(tokio::time::timeout(SEND_BOUND, sink.send(message)).await, Ok(Ok(())))
}

pub struct StreamConnector {
    settings: StreamSettings,
    log: EventLog,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    metrics: StreamMetrics,
}

impl StreamConnector {
    pub fn new(settings: StreamSettings, log: EventLog, clock: Arc<dyn Clock>, metrics: StreamMetrics) -> Self {
        // wss:// needs a TLS provider chosen once per process; the first to install it wins and all use ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The Go SDK's bound on this call.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        Self { settings, log, clock, http, metrics }
    }

    /// Holds the configured connections open until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let loops = (0..self.settings.connections.max(1)).map(|n| self.hold(n, &shutdown));
        futures_util::future::join_all(loops).await;
    }

    /// One connection, opened again whenever it ends.
    async fn hold(&self, n: usize, shutdown: &CancellationToken) {
        let mut fruitless = 0u32;
        while !shutdown.is_cancelled() {
            let (end, progressed) = match self.open().await {
                Ok(opened) => self.session(n, opened, shutdown).await,
                Err(error) => {
                    tracing::warn!(connection = n, %error, "Stream connection not opened");
                    self.metrics.reconnect("refused");
                    (End::Dropped, false)
                }
            };
            if end == End::Stopped {
                return;
            }
            self.metrics.reconnect(end.as_str());
            // A connection that carried frames is opened again at once (DingTalk asks for that on `disconnect`);
            // one that got nowhere waits longer each time, so a refusing server never sees a tight loop.
            let wait = if progressed {
                fruitless = 0;
                Duration::from_millis(rand_below(250))
            } else {
                fruitless = fruitless.saturating_add(1);
                self.settings.backoff.wait(fruitless - 1)
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn open(&self) -> Result<Opened, StreamError> {
        let url = format!("{}{OPEN_PATH}", self.settings.api_url.trim_end_matches('/'));
        let body = open_request(
            &self.settings.client_id,
            self.settings.client_secret.expose(),
            concat!("dingguard/", env!("CARGO_PKG_VERSION")),
        );
        let answer = self
            .http
            .post(url)
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| StreamError::Unreachable(e.without_url().to_string()))?;
        let status = answer.status().as_u16();
        let bytes = answer.bytes().await.map_err(|e| StreamError::Unreachable(e.without_url().to_string()))?;
        match status {
            200 => serde_json::from_slice(&bytes)
                .map_err(|e| StreamError::Refused { status, body: format!("not an endpoint and ticket: {e}") }),
            400 | 401 | 403 => Err(StreamError::BadCredentials(status)),
            _ => Err(StreamError::Refused {
                status,
                body: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
            }),
        }
    }

    /// Serves one connection until it ends; true alongside when it carried at least one frame.
    async fn session(&self, n: usize, opened: Opened, shutdown: &CancellationToken) -> (End, bool) {
        // The ticket travels in the URL: only over TLS, unless the API itself is plain HTTP (a local stand-in).
        let plain_allowed = self.settings.api_url.starts_with("http://");
        if !(opened.endpoint.starts_with("wss://") || (plain_allowed && opened.endpoint.starts_with("ws://"))) {
            tracing::warn!(connection = n, "connections/open named an endpoint that is not wss://; not connecting");
            return (End::Dropped, false);
        }
        let joiner = if opened.endpoint.contains('?') { '&' } else { '?' };
        let url = format!("{}{joiner}ticket={}", opened.endpoint, encode(&opened.ticket));
        let config =
            WebSocketConfig::default().max_message_size(Some(MAX_FRAME_BYTES)).max_frame_size(Some(MAX_FRAME_BYTES));
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), false);
        let socket = match tokio::time::timeout(Duration::from_secs(10), connect).await {
            Ok(Ok((socket, _))) => socket,
            Ok(Err(error)) => {
                tracing::warn!(connection = n, error = %StreamError::Socket(error.to_string()), "Stream socket not opened");
                return (End::Dropped, false);
            }
            Err(_) => {
                tracing::warn!(connection = n, "Stream socket not opened within 10 s");
                return (End::Dropped, false);
            }
        };
        tracing::info!(connection = n, "Stream connection open");
        let _open = self.metrics.connected();
        let (mut sink, mut frames) = socket.split();
        let mut writes: FuturesUnordered<Write> = FuturesUnordered::new();
        let mut progressed = false;
        let mut leaving = false;
        let idle = self.settings.keepalive_idle;
        let mut quiet_until = Instant::now() + idle;
        let mut pinged = false;
        let mut in_flight_bytes = 0usize;
        let end = loop {
            if leaving && writes.is_empty() {
                break End::Disconnect;
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break End::Stopped,
                Some((message_id, status, started, size)) = writes.next(), if !writes.is_empty() => {
                    in_flight_bytes -= size;
                    if !send(&mut sink, Message::text(event_ack(&message_id, status))).await {
                        break End::Dropped;
                    }
                    self.metrics.acked(started.elapsed());
                }
                incoming = frames.next(),
                    if !leaving && writes.len() < self.settings.window && in_flight_bytes < MAX_IN_FLIGHT_BYTES =>
                {
                    quiet_until = Instant::now() + idle;
                    pinged = false;
                    let text = match incoming {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None => break End::Dropped,
                        Some(Err(error)) => {
                            tracing::info!(connection = n, %error, "Stream socket lost");
                            break End::Dropped;
                        }
                        Some(Ok(_)) => continue,
                    };
                    let frame = match Frame::parse(text.as_bytes()) {
                        Ok(frame) => frame,
                        Err(error) => {
                            tracing::warn!(connection = n, %error, "Stream frame not understood; ignored");
                            self.metrics.frame("unknown", "unreadable");
                            continue;
                        }
                    };
                    // Only a frame understood counts as progress: a server sending garbage then closing is backed
                    // off from like one that refuses.
                    progressed = true;
                    let reply = match frame.kind {
                        FrameKind::Event => {
                            in_flight_bytes += text.len();
                            writes.push(self.write(frame, text.len()));
                            None
                        }
                        FrameKind::Callback => {
                            self.metrics.frame("callback", "acked");
                            Some(callback_ack(&frame.message_id))
                        }
                        FrameKind::System => match frame.system_topic() {
                            SystemTopic::Ping { opaque } => {
                                self.metrics.frame("system", "ping");
                                Some(ping_ack(&frame.message_id, &opaque))
                            }
                            SystemTopic::Disconnect { reason } => {
                                tracing::info!(connection = n, reason = %reason.chars().take(200).collect::<String>(),
                                    "DingTalk asked this connection to go; opening another");
                                self.metrics.frame("system", "disconnect");
                                leaving = true;
                                None
                            }
                            SystemTopic::Other => {
                                self.metrics.frame("system", "other");
                                Some(callback_ack(&frame.message_id))
                            }
                        },
                    };
                    if let Some(reply) = reply
                        && !send(&mut sink, Message::text(reply)).await
                    {
                        break End::Dropped;
                    }
                }
                () = tokio::time::sleep_until(quiet_until) => {
                    if pinged {
                        tracing::warn!(connection = n, "Stream keepalive unanswered; reconnecting");
                        break End::Keepalive;
                    }
                    if !send(&mut sink, Message::Ping(Bytes::new())).await {
                        break End::Dropped;
                    }
                    pinged = true;
                    quiet_until = Instant::now() + self.settings.keepalive_timeout;
                }
            }
        };
        if end == End::Stopped || end == End::Disconnect {
            // Writes under way finish and are acked before the socket closes, so DingTalk need not send them
            // again; a shutdown gives them the write bound and no more.
            let drain = async {
                while let Some((message_id, status, started, _)) = writes.next().await {
                    if !send(&mut sink, Message::text(event_ack(&message_id, status))).await {
                        return;
                    }
                    self.metrics.acked(started.elapsed());
                }
            };
            let _ = tokio::time::timeout(self.settings.write_timeout, drain).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        }
        (end, progressed)
    }

    /// The write of one EVENT, resolving to its ack.
    fn write(&self, frame: Frame, size: usize) -> Write {
        let started = Instant::now();
        let record =
            crate::write::event_record(&self.settings.app, frame.event_json(), self.clock.now_ms(), Origin::Stream);
        let (log, topic, bound, metrics) =
            (self.log.clone(), self.settings.topic.clone(), self.settings.write_timeout, self.metrics.clone());
        let message_id = frame.message_id;
        Box::pin(async move {
            let status = match tokio::time::timeout(bound, log.append(&topic, record)).await {
                Ok(Ok(appended)) => {
                    metrics.frame("event", if appended.duplicate { "duplicate" } else { "written" });
                    EventStatus::Success
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "Stream event not written; answered LATER");
                    metrics.frame("event", "later");
                    EventStatus::Later
                }
                Err(_) => {
                    tracing::warn!(
                        bound_ms = bound.as_millis() as u64,
                        "Stream event not written in time; answered LATER"
                    );
                    metrics.frame("event", "later");
                    EventStatus::Later
                }
            };
            (message_id, status, started, size)
        })
    }
}

fn rand_below(ms: u64) -> u64 {
    rand::Rng::gen_range(&mut rand::thread_rng(), 0..ms.max(1))
}

/// Percent-encodes a ticket for the query string.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
