//! The security team's console: a live alert list, alert detail with the triggering events, acknowledge /
//! resolve / silence actions, and the same as a JSON API under `/api/v1`.
//!
//! Pages are rendered on the server; the only script is a small static file that applies the live feed
//! (server-sent events) to the open list. State (sessions, tokens, failed sign-ins) lives in the store, so
//! several console replicas and an alerter in another process share one database.

mod actions;
mod api;
mod approvals;
mod auth;
mod detail;
mod error;
mod feed;
mod html;
mod login;
mod messages;
mod metrics;
mod pages;
mod throttle;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use argon2::PasswordHash;
use axum::Router;
use dingguard_approver::Approver;
use dingguard_directory::Directory;
use dingguard_model::Clock;
use dingguard_notify::Notifier;
use dingguard_store::Store;
use dingguard_store::console::TokenKind;
use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use auth::hash_password;
pub use error::ConsoleError;
pub use throttle::LoginThrottle;

#[derive(Clone)]
pub struct ConsoleSettings {
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Adds `Secure` to the session cookie; on whenever the console is served over HTTPS.
    pub secure_cookies: bool,
    /// Where people reach the console, e.g. `https://dingguard.example.mo`; sign-in links are built on it
    /// (relative links when empty).
    pub public_url: String,
    pub sign_in_link_ttl: Duration,
    /// How failed sign-ins slow further attempts down.
    pub login_throttle: LoginThrottle,
    /// Proxies in front of the console whose `X-Forwarded-For` names the client; any other peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Window for sign-in links asked for by DingTalk: at most `max_link_requests` per user id within it.
    pub failed_login_window: Duration,
    /// How often the live feed asks the store for changed alerts.
    pub poll_interval: Duration,
    /// Sends sign-in links by DingTalk work notification to people who ask for one on the sign-in page.
    pub messenger: Option<Arc<dyn Notifier>>,
    /// Sign-in links asked for per user id within `failed_login_window`.
    pub max_link_requests: i64,
    /// The approval pages (inbox, request, decisions, decision links) when this process routes approvals.
    pub approvals: Option<Approver>,
    /// How often an open live feed checks that its session and its person's membership still hold.
    pub stream_recheck: Duration,
}

impl std::fmt::Debug for ConsoleSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSettings")
            .field("session_ttl", &self.session_ttl)
            .field("secure_cookies", &self.secure_cookies)
            .field("public_url", &self.public_url)
            .field("messenger", &self.messenger.as_ref().map(|m| m.name().to_owned()))
            .field("approvals", &self.approvals.is_some())
            .finish_non_exhaustive()
    }
}

impl ConsoleSettings {
    pub fn new(public_url: impl Into<String>) -> Self {
        let public_url: String = public_url.into();
        Self {
            session_ttl: Duration::from_secs(8 * 3600),
            secure_cookies: public_url.starts_with("https://"),
            public_url,
            sign_in_link_ttl: Duration::from_secs(10 * 60),
            login_throttle: LoginThrottle::default(),
            trusted_proxies: Vec::new(),
            failed_login_window: Duration::from_secs(15 * 60),
            poll_interval: Duration::from_millis(300),
            messenger: None,
            max_link_requests: 3,
            approvals: None,
            stream_recheck: Duration::from_secs(2),
        }
    }
}

pub(crate) struct Shared {
    store: Store,
    directory: RwLock<Arc<Directory>>,
    /// User id → argon2 PHC string, checked to parse at start-up.
    passwords: HashMap<String, String>,
    /// Verified when the user has no password, so a missing account costs the same time as a wrong password.
    dummy_hash: String,
    /// Password checks running at once; each takes tens of MiB.
    hashing: tokio::sync::Semaphore,
    settings: ConsoleSettings,
    clock: Arc<dyn Clock>,
    metrics: metrics::ConsoleMetrics,
    feed: broadcast::Sender<Arc<str>>,
    /// Cancelled when the live feed stops, which ends every open event stream so the server can shut down.
    feed_stopped: CancellationToken,
    /// Sign-in links asked for on the sign-in page, handled after the answer went out (see `messages`).
    link_requests: tokio::sync::mpsc::Sender<messages::LinkRequest>,
    link_queue: parking_lot::Mutex<Option<tokio::sync::mpsc::Receiver<messages::LinkRequest>>>,
}

impl Shared {
    /// The directory as it is now: the approver's, kept current from address-book events, when this console
    /// serves approvals; else the one it was given (and any replacement since).
    pub(crate) fn directory(&self) -> Arc<Directory> {
        match &self.settings.approvals {
            Some(approver) => approver.directory(),
            None => self.directory.read().clone(),
        }
    }
}

/// The client's address as the listener saw it, when it recorded one (`dingguard_web::serve` does).
pub(crate) struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let info = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(Self(info.map(|axum::extract::ConnectInfo(addr)| *addr)))
    }
}

/// A duration as the store's milliseconds.
pub(crate) fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The console. Cheap to clone; every clone serves the same state.
#[derive(Clone)]
pub struct Console {
    shared: Arc<Shared>,
}

impl Console {
    /// Checks the password table (every entry must be an argon2 PHC string) and registers the metrics.
    pub fn new(
        store: Store,
        directory: Directory,
        passwords: HashMap<String, String>,
        settings: ConsoleSettings,
        clock: Arc<dyn Clock>,
        registry: &mut Registry,
    ) -> Result<Self, ConsoleError> {
        for (user, phc) in &passwords {
            let parsed = PasswordHash::new(phc)
                .map_err(|_| ConsoleError::Config(format!("the password hash of {user} is not a PHC string")))?;
            if !parsed.algorithm.as_str().starts_with("argon2") {
                return Err(ConsoleError::Config(format!("the password hash of {user} is not an argon2 hash")));
            }
        }
        for user in passwords.keys().filter(|u| directory.user(u).is_none()) {
            tracing::warn!(user = %user, "a console password is configured for a user the directory does not know");
        }
        let (feed, _) = broadcast::channel(256);
        let (link_requests, link_queue) = tokio::sync::mpsc::channel(messages::QUEUE);
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                directory: RwLock::new(Arc::new(directory)),
                passwords,
                dummy_hash: auth::dummy_hash()?,
                hashing: tokio::sync::Semaphore::new(4),
                settings,
                clock,
                metrics: metrics::ConsoleMetrics::register(registry),
                feed,
                feed_stopped: CancellationToken::new(),
                link_requests,
                link_queue: parking_lot::Mutex::new(Some(link_queue)),
            }),
        })
    }

    /// Pages, the live feed and `/api/v1`. Merge it into the process's router.
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .merge(login::routes())
            .merge(pages::routes())
            .merge(approvals::routes())
            .merge(api::routes().0);
        routes
            .layer(axum::middleware::from_fn(auth::guard_requests))
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
            .with_state(self.shared.clone())
    }

    /// The API document of the `/api/v1` routes [`Console::router`] serves, generated from the same registrations.
    pub fn api_doc(&self) -> utoipa::openapi::OpenApi {
        api::routes().1
    }

    /// Polls the store for alerts created or changed (by an alerter in this or another process, or by another
    /// console replica) and pushes them to every open alert list, and sends the sign-in links people ask for,
    /// until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let queue = self.shared.link_queue.lock().take();
        let links = async {
            match queue {
                Some(queue) => messages::run(self.shared.clone(), queue, shutdown.clone()).await,
                None => tracing::error!("the console's sign-in link queue is already served by another task"),
            }
        };
        tokio::join!(feed::run(self.shared.clone(), shutdown.clone()), links);
    }

    /// A single-use sign-in URL for a console user, valid for `sign_in_link_ttl`, for operator tools that deliver
    /// it themselves; on the audit chain as issued by `actor`. Never offered over HTTP: there, links go only to
    /// their owner, by DingTalk. Only its hash is stored.
    pub async fn issue_sign_in_link(&self, actor: &str, user_id: &str) -> Result<String, ConsoleError> {
        Ok(actions::sign_in_link(&self.shared, actor, user_id).await?.0)
    }

    /// A bearer token for the JSON API, acting as `user_id` for as long as they keep a console role. Only its
    /// hash is stored, so it is shown once.
    pub async fn issue_api_token(&self, user_id: &str) -> Result<String, ConsoleError> {
        let shared = &self.shared;
        auth::console_access(shared, user_id)?;
        let token = format!("dgc_{}", auth::random_token());
        let now = shared.clock.now_ms();
        shared.store.create_console_token(&auth::token_hash(&token), TokenKind::Api, user_id, now, None).await?;
        shared.store.append_audit("operator", "issued API token", user_id, serde_json::json!({}), now).await?;
        tracing::info!(user = user_id, "API token issued");
        Ok(token)
    }

    /// Takes a newer directory (address-book changes): people who left or lost their role lose access at once.
    pub fn replace_directory(&self, directory: Directory) {
        *self.shared.directory.write() = Arc::new(directory);
    }
}
