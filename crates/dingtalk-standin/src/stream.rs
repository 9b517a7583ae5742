//! Stream mode, as DingTalk's servers run it: `connections/open` hands out one-time tickets good for 90 s, the
//! WebSocket at the returned endpoint pushes EVENT frames to a connection picked at random, and what is not
//! acked `SUCCESS` is pushed again: at once when its socket drops, after a while when it goes unanswered, later
//! when answered `LATER`. On demand it drops sockets, sends `disconnect`, re-sends acked events as duplicates,
//! pings, and stops reading a socket as a hung server would. It counts all of it, and checks every `SUCCESS`
//! against a caller's predicate (is the event in the log yet?) at the moment the ack arrives.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use crate::{Shared, faulted, now_ms};

pub const OPEN_PATH: &str = "/v1.0/gateway/connections/open";
const CONNECT_PATH: &str = "/connect";
/// How long a ticket may wait before it is used, as DingTalk documents.
const TICKET_LIFETIME: Duration = Duration::from_secs(90);
/// `SUCCESS` ack times kept for [`StreamServer::ack_times`], at most.
const MAX_ACK_TIMES: usize = 1_000_000;

/// How the stand-in's Stream server behaves. The defaults are a well-behaved server.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Drop the socket, without a close, of the connection that was sent every this many frames (counted
    /// over all connections).
    pub drop_every: Option<u64>,
    /// Send `disconnect` on the connection that was sent every this many frames, then push it nothing more.
    pub disconnect_every: Option<u64>,
    /// Push every this many acked events once more, as DingTalk may after a correct ack.
    pub duplicate_every: Option<u64>,
    /// Push again what went unanswered this long.
    pub redeliver_after: Duration,
    /// Push again this long after a `LATER`.
    pub later_after: Duration,
    /// Ping every connection this often.
    pub ping_every: Option<Duration>,
    /// Frames in flight on one connection at most.
    pub window: usize,
    /// How long a connection that was sent `disconnect` is kept open for its last acks.
    pub disconnect_grace: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            drop_every: None,
            disconnect_every: None,
            duplicate_every: None,
            redeliver_after: Duration::from_secs(5),
            later_after: Duration::from_millis(500),
            ping_every: None,
            window: 256,
            disconnect_grace: Duration::from_secs(10),
        }
    }
}

/// What the Stream server saw, for tests to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub tickets_issued: u64,
    /// Upgrades refused for a ticket that was unknown, used already or too old.
    pub tickets_refused: u64,
    pub connections_opened: u64,
    pub live_connections: usize,
    /// Event frames sent, re-pushes and duplicates included.
    pub event_frames_sent: u64,
    /// Distinct events acked `SUCCESS`.
    pub events_acked: usize,
    pub success_acks: u64,
    pub later_acks: u64,
    /// `SUCCESS` acks of events the caller's check did not find (in the log) when the ack arrived.
    pub acked_too_early: Vec<String>,
    pub duplicates_sent: u64,
    pub drops: u64,
    pub disconnects_sent: u64,
    pub pings_sent: u64,
    pub pongs_right: u64,
    pub pongs_wrong: u64,
    pub callbacks_sent: u64,
    pub callback_acks: u64,
    /// Events pushed by the caller and not yet acked `SUCCESS`.
    pub unacked: usize,
    /// Frames sent to each connection, by connection number.
    pub frames_by_connection: Vec<u64>,
}

#[derive(Debug, Clone)]
enum Item {
    Event { ordinal: u64, event_id: String, event_type: String, corp_id: String, born_ms: i64, data: String },
    Callback { data: String },
}

struct Pending {
    item: Item,
    sent: Instant,
    connection: u64,
}

struct Connection {
    tx: mpsc::UnboundedSender<Message>,
    frames: u64,
    draining: bool,
}

type AckCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Default)]
struct Hub {
    options: StreamOptions,
    tickets: HashMap<String, Instant>,
    next_id: u64,
    connections: HashMap<u64, Connection>,
    queue: VecDeque<(Item, Instant)>,
    pending: HashMap<String, Pending>,
    pings: HashMap<String, String>,
    acked: HashSet<String>,
    duplicated: HashSet<String>,
    outstanding: HashSet<String>,
    check: Option<AckCheck>,
    frozen: bool,
    frames_sent: u64,
    ack_times: Vec<Duration>,
    stats: StreamStats,
}

#[derive(Clone)]
pub(crate) struct StreamServer {
    hub: Arc<Mutex<Hub>>,
    wake: Arc<Notify>,
}

impl StreamServer {
    pub(crate) fn new() -> Self {
        let server = Self { hub: Arc::new(Mutex::new(Hub::default())), wake: Arc::new(Notify::new()) };
        let dispatcher = server.clone();
        tokio::spawn(async move { dispatcher.dispatch().await });
        server
    }

    pub(crate) fn routes(&self, tenant: Shared, base_ws: String) -> Router {
        let state = Endpoint { server: self.clone(), tenant, base_ws };
        Router::new()
            .route(OPEN_PATH, axum::routing::post(open))
            .route(CONNECT_PATH, axum::routing::get(connect))
            .with_state(state)
    }

    pub(crate) fn set_options(&self, options: StreamOptions) {
        self.hub.lock().options = options;
        self.wake.notify_one();
    }

    pub(crate) fn set_check(&self, check: AckCheck) {
        self.hub.lock().check = Some(check);
    }

    pub(crate) fn freeze(&self, frozen: bool) {
        self.hub.lock().frozen = frozen;
        self.wake.notify_one();
    }

    /// Queues events, each given in the JSON an HTTP push would carry; the headers of its frames are taken from
    /// it and the rest goes in `data`.
    pub(crate) fn push(&self, events: impl IntoIterator<Item = Value>) {
        let now = Instant::now();
        let mut hub = self.hub.lock();
        for event in events {
            let Value::Object(mut map) = event else { continue };
            let mut take = |keys: &[&str]| keys.iter().find_map(|k| map.remove(*k));
            let event_id = take(&["eventId"]).and_then(|v| v.as_str().map(str::to_owned));
            let event_type = take(&["EventType", "eventType"]).and_then(|v| v.as_str().map(str::to_owned));
            let corp_id = take(&["CorpId"]).and_then(|v| v.as_str().map(str::to_owned));
            let born_ms = take(&["EventTime"]).and_then(|v| v.as_i64());
            hub.next_id += 1;
            let ordinal = hub.next_id;
            let event_id = event_id.unwrap_or_else(|| format!("standin-event-{ordinal}"));
            hub.outstanding.insert(event_id.clone());
            let item = Item::Event {
                ordinal,
                event_id,
                event_type: event_type.unwrap_or_default(),
                corp_id: corp_id.unwrap_or_default(),
                born_ms: born_ms.unwrap_or_default(),
                data: Value::Object(map).to_string(),
            };
            hub.queue.push_back((item, now));
        }
        drop(hub);
        self.wake.notify_one();
    }

    pub(crate) fn push_callback(&self, data: Value) {
        self.hub.lock().queue.push_back((Item::Callback { data: data.to_string() }, Instant::now()));
        self.wake.notify_one();
    }

    pub(crate) fn stats(&self) -> StreamStats {
        let hub = self.hub.lock();
        let mut stats = hub.stats.clone();
        stats.live_connections = hub.connections.len();
        stats.events_acked = hub.acked.len();
        stats.unacked = hub.outstanding.len();
        stats
    }

    /// The time from sending each acked frame to its `SUCCESS`, in ack order; cleared by the read.
    pub(crate) fn take_ack_times(&self) -> Vec<Duration> {
        std::mem::take(&mut self.hub.lock().ack_times)
    }

    async fn dispatch(self) {
        let mut last_ping = Instant::now();
        loop {
            let _ = tokio::time::timeout(Duration::from_millis(20), self.wake.notified()).await;
            let mut hub = self.hub.lock();
            let now = Instant::now();
            hub.redeliver_overdue(now);
            if let Some(every) = hub.options.ping_every
                && now.duration_since(last_ping) >= every
            {
                last_ping = now;
                hub.ping_all();
            }
            if !hub.frozen {
                hub.send_due(now);
            }
        }
    }
}

impl Hub {
    fn message_id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("standin_{kind}_{}", self.next_id)
    }

    fn redeliver_overdue(&mut self, now: Instant) {
        let after = self.options.redeliver_after;
        let overdue: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.sent) >= after)
            .map(|(id, _)| id.clone())
            .collect();
        for id in overdue {
            if let Some(pending) = self.pending.remove(&id) {
                self.queue.push_back((pending.item, now));
            }
        }
    }

    fn ping_all(&mut self) {
        let ids: Vec<u64> = self.connections.keys().copied().collect();
        for connection in ids {
            let message_id = self.message_id("ping");
            let opaque = format!("opaque-{message_id}");
            let frame = json!({"specVersion": "1.0", "type": "SYSTEM",
                "headers": {"topic": "ping", "messageId": message_id, "contentType": "application/json",
                    "time": now_ms().to_string()},
                "data": json!({"opaque": opaque}).to_string()});
            if let Some(c) = self.connections.get(&connection) {
                let _ = c.tx.send(Message::Text(frame.to_string().into()));
                self.pings.insert(message_id, opaque);
                self.stats.pings_sent += 1;
            }
        }
    }

    /// Sends what is due, each frame to a live connection picked at random among those with room in their
    /// window.
    fn send_due(&mut self, now: Instant) {
        let window = self.options.window;
        let mut in_flight: HashMap<u64, usize> = HashMap::new();
        for p in self.pending.values() {
            *in_flight.entry(p.connection).or_default() += 1;
        }
        for _ in 0..10_000 {
            let Some(position) = self.queue.iter().position(|(_, due)| *due <= now) else { return };
            let open: Vec<u64> = self
                .connections
                .iter()
                .filter(|(id, c)| !c.draining && in_flight.get(id).copied().unwrap_or(0) < window)
                .map(|(id, _)| *id)
                .collect();
            if open.is_empty() {
                return;
            }
            let connection = open[rand::Rng::gen_range(&mut rand::thread_rng(), 0..open.len())];
            let (item, _) = self.queue.remove(position).expect("a position found above");
            self.send(connection, item, now);
            *in_flight.entry(connection).or_default() += 1;
        }
    }

    fn send(&mut self, connection: u64, item: Item, now: Instant) {
        let message_id = self.message_id("msg");
        let frame = match &item {
            Item::Event { event_id, event_type, corp_id, born_ms, data, .. } => {
                self.stats.event_frames_sent += 1;
                json!({"specVersion": "1.0", "type": "EVENT",
                    "headers": {"topic": "*", "messageId": message_id, "contentType": "application/json",
                        "time": now_ms().to_string(), "eventType": event_type, "eventId": event_id,
                        "eventCorpId": corp_id, "eventBornTime": born_ms.to_string(),
                        "eventUnifiedAppId": "standin-app"},
                    "data": data})
            }
            Item::Callback { data } => {
                self.stats.callbacks_sent += 1;
                json!({"specVersion": "1.0", "type": "CALLBACK",
                    "headers": {"topic": "/v1.0/im/bot/messages/get", "messageId": message_id,
                        "contentType": "application/json", "time": now_ms().to_string()},
                    "data": data})
            }
        };
        let Some(c) = self.connections.get_mut(&connection) else {
            self.queue.push_front((item, now));
            return;
        };
        let _ = c.tx.send(Message::Text(frame.to_string().into()));
        c.frames += 1;
        self.frames_sent += 1;
        let frames = self.frames_sent;
        let slot = usize::try_from(connection).unwrap_or(usize::MAX);
        if let Some(count) = self.stats.frames_by_connection.get_mut(slot) {
            *count += 1;
        }
        self.pending.insert(message_id, Pending { item, sent: now, connection });
        if self.options.drop_every.is_some_and(|n| frames.is_multiple_of(n)) {
            self.drop_connection(connection, now);
        } else if self.options.disconnect_every.is_some_and(|n| frames.is_multiple_of(n)) {
            self.disconnect(connection);
        }
    }

    fn drop_connection(&mut self, connection: u64, now: Instant) {
        if self.connections.remove(&connection).is_some() {
            self.stats.drops += 1;
        }
        self.requeue_of(connection, now);
    }

    fn disconnect(&mut self, connection: u64) {
        let message_id = self.message_id("sys");
        let Some(c) = self.connections.get_mut(&connection) else { return };
        let frame = json!({"specVersion": "1.0", "type": "SYSTEM",
            "headers": {"topic": "disconnect", "messageId": message_id, "contentType": "application/json",
                "time": now_ms().to_string()},
            "data": json!({"reason": "persistent connection is timeout"}).to_string()});
        let _ = c.tx.send(Message::Text(frame.to_string().into()));
        c.draining = true;
        self.stats.disconnects_sent += 1;
        let grace = self.options.disconnect_grace;
        let tx = c.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = tx.send(Message::Close(None));
        });
    }

    fn requeue_of(&mut self, connection: u64, now: Instant) {
        let lost: Vec<String> =
            self.pending.iter().filter(|(_, p)| p.connection == connection).map(|(id, _)| id.clone()).collect();
        for id in lost {
            if let Some(pending) = self.pending.remove(&id) {
                self.queue.push_back((pending.item, now));
            }
        }
    }

    fn ack(&mut self, text: &str) {
        let Some(ack) = parse_ack(text) else { return };
        if let Some(opaque) = self.pings.remove(&ack.message_id) {
            if ack.data.get("opaque").and_then(Value::as_str) == Some(opaque.as_str()) {
                self.stats.pongs_right += 1;
            } else {
                self.stats.pongs_wrong += 1;
            }
            return;
        }
        let Some(pending) = self.pending.remove(&ack.message_id) else { return };
        let now = Instant::now();
        match pending.item {
            Item::Callback { .. } => self.stats.callback_acks += 1,
            Item::Event { ordinal, ref event_id, .. } => {
                if ack.code == 200 && ack.data.get("status").and_then(Value::as_str) == Some("SUCCESS") {
                    self.stats.success_acks += 1;
                    if self.ack_times.len() < MAX_ACK_TIMES {
                        self.ack_times.push(now.duration_since(pending.sent));
                    }
                    if let Some(check) = &self.check
                        && !check(event_id)
                    {
                        self.stats.acked_too_early.push(event_id.clone());
                    }
                    self.outstanding.remove(event_id);
                    self.acked.insert(event_id.clone());
                    let duplicate = self.options.duplicate_every.is_some_and(|n| ordinal.is_multiple_of(n));
                    if duplicate && self.duplicated.insert(event_id.clone()) {
                        self.stats.duplicates_sent += 1;
                        self.queue.push_back((pending.item, now));
                    }
                } else {
                    self.stats.later_acks += 1;
                    let later = self.options.later_after;
                    self.queue.push_back((pending.item, now + later));
                }
            }
        }
    }
}

struct ParsedAck {
    code: i64,
    message_id: String,
    data: Value,
}

fn parse_ack(text: &str) -> Option<ParsedAck> {
    let value: Value = serde_json::from_str(text).ok()?;
    let message_id = value.get("headers")?.get("messageId")?.as_str()?.to_owned();
    let data = match value.get("data") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    Some(ParsedAck { code: value.get("code").and_then(Value::as_i64).unwrap_or_default(), message_id, data })
}

#[derive(Clone)]
struct Endpoint {
    server: StreamServer,
    tenant: Shared,
    base_ws: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenBody {
    client_id: String,
    client_secret: String,
}

async fn open(State(endpoint): State<Endpoint>, body: Option<Json<OpenBody>>) -> Response {
    if let Some(response) = faulted(&endpoint.tenant, OPEN_PATH, false).await {
        return response;
    }
    let ok = body.is_some_and(|Json(b)| {
        let t = endpoint.tenant.lock();
        b.client_id == t.client_id && b.client_secret == t.client_secret
    });
    if !ok {
        let refusal =
            json!({"code": "invalidClientIdOrSecret", "message": "无效的clientId或clientSecret", "requestid": "r"});
        return (StatusCode::UNAUTHORIZED, Json(refusal)).into_response();
    }
    let mut hub = endpoint.server.hub.lock();
    hub.stats.tickets_issued += 1;
    let ticket = format!("{:016x}-{}", rand::random::<u64>(), hub.stats.tickets_issued);
    hub.tickets.insert(ticket.clone(), Instant::now());
    Json(json!({"endpoint": format!("{}{CONNECT_PATH}", endpoint.base_ws), "ticket": ticket})).into_response()
}

#[derive(Deserialize)]
struct ConnectQuery {
    ticket: Option<String>,
}

async fn connect(
    State(endpoint): State<Endpoint>,
    Query(q): Query<ConnectQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let server = endpoint.server;
    let id = {
        let mut hub = server.hub.lock();
        // One connection per ticket, within its lifetime: a used or stale ticket is refused.
        let fresh = q.ticket.and_then(|t| hub.tickets.remove(&t)).is_some_and(|at| at.elapsed() < TICKET_LIFETIME);
        if !fresh {
            hub.stats.tickets_refused += 1;
            return (StatusCode::UNAUTHORIZED, "ticket unknown, used or expired").into_response();
        }
        hub.stats.connections_opened += 1;
        hub.stats.connections_opened - 1
    };
    upgrade.max_message_size(1024 * 1024).on_upgrade(move |socket| serve_connection(server, id, socket))
}

async fn serve_connection(server: StreamServer, id: u64, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    {
        let mut hub = server.hub.lock();
        hub.connections.insert(id, Connection { tx, frames: 0, draining: false });
        let slot = usize::try_from(id).unwrap_or(0);
        if hub.stats.frames_by_connection.len() <= slot {
            hub.stats.frames_by_connection.resize(slot + 1, 0);
        }
    }
    server.wake.notify_one();
    loop {
        if server.hub.lock().frozen {
            // A hung server: nothing read, nothing sent, no pong.
            tokio::time::sleep(Duration::from_millis(50)).await;
            if !server.hub.lock().connections.contains_key(&id) {
                break;
            }
            continue;
        }
        tokio::select! {
            out = rx.recv() => match out {
                Some(Message::Close(frame)) => {
                    let _ = socket.send(Message::Close(frame)).await;
                    break;
                }
                Some(message) => {
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
                // Dropped by the server: the socket goes without a close.
                None => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    server.hub.lock().ack(text.as_str());
                    // An ack frees room in the window: push on at once rather than at the next tick.
                    server.wake.notify_one();
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let mut hub = server.hub.lock();
    hub.connections.remove(&id);
    hub.requeue_of(id, Instant::now());
    drop(hub);
    server.wake.notify_one();
}
