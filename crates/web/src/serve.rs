//! The accept loop behind every listener. axum's own `serve` has no connection cap and no header timeout, so a
//! client that opens connections and trickles bytes could hold the process's sockets and memory for as long as
//! it liked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// What one listener lets a client hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Open connections at once; beyond it a new connection is answered 503 and closed.
    pub max_connections: usize,
    /// How long a connection may take to send a complete request head: a new one, and an idle keep-alive one
    /// waiting for its next request (hyper restarts this timer after every response).
    pub header_read_timeout: Duration,
    /// How long one request may take, body included; then it is answered 408.
    pub request_timeout: Duration,
    /// How long shutdown waits for in-flight requests before it drops their connections.
    pub drain_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

/// `dingguard_http_connections{listener}` and `dingguard_http_connections_refused_total{listener}`.
#[derive(Debug, Clone, Default)]
pub struct HttpMetrics {
    open: Family<ListenerLabel, Gauge>,
    refused: Family<ListenerLabel, Counter>,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let r = registry.sub_registry_with_prefix("dingguard_http");
        r.register("connections", "Open HTTP connections by listener", metrics.open.clone());
        r.register(
            "connections_refused",
            "Connections answered 503 and closed because the listener was at its connection limit",
            metrics.refused.clone(),
        );
        metrics
    }

    /// The metrics of one listener; its name is one of ours (`main`, `ops`), never a caller's.
    pub fn listener(&self, name: &'static str) -> ListenerMetrics {
        let label = ListenerLabel { listener: name };
        ListenerMetrics {
            open: self.open.get_or_create(&label).clone(),
            refused: self.refused.get_or_create(&label).clone(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListenerMetrics {
    open: Gauge,
    refused: Counter,
}

const AT_CAPACITY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 1\r\nconnection: close\r\n\r\n";

/// Serves `app` on `listener` until `shutdown`, then stops accepting, lets in-flight requests finish (within
/// [`HttpLimits::drain_timeout`]) and returns. Handlers can read the peer with `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    metrics: ListenerMetrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = app.layer(tower_http::catch_panic::CatchPanicLayer::custom(answer_panic)).layer(
        tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout),
    );
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.refused.inc();
            refuse(stream, peer, limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let open = metrics.open.clone();
        open.inc();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            open.dec();
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(timeout = ?limits.drain_timeout, "connections still busy after the drain timeout are dropped");
    }
    Ok(())
}

/// A handler that panicked is answered like any internal error, counted and logged; the connection and the
/// process carry on.
fn answer_panic(payload: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    dingguard_telemetry::panicked("http", payload.as_ref());
    crate::JsonError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// A full listener answers at once rather than leaving the client to time out; the write is best effort.
fn refuse(stream: TcpStream, peer: SocketAddr, limit: usize) {
    let _ = stream.try_write(AT_CAPACITY);
    tracing::debug!(%peer, limit, "connection refused: the listener is at its connection limit");
}

/// Out of file descriptors or a connection reset before it was accepted: neither ends the listener, but the
/// first must not spin.
async fn accept_failed(error: &std::io::Error) {
    let out_of_descriptors = matches!(error.raw_os_error(), Some(23 | 24));
    if out_of_descriptors {
        tracing::error!(%error, "cannot accept connections: out of file descriptors");
        tokio::time::sleep(Duration::from_millis(100)).await;
    } else {
        tracing::debug!(%error, "accept failed");
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::get;

    use super::*;

    async fn boom() -> &'static str {
        panic!("hostile input")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_and_the_server_goes_on() {
        let app = Router::new().route("/boom", get(boom)).route("/ok", get(|| async { "fine" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server =
            tokio::spawn(serve(listener, app, HttpLimits::default(), ListenerMetrics::default(), stop.clone()));
        let before = dingguard_telemetry::panic_count("http");
        let boom = reqwest::get(format!("http://{addr}/boom")).await.unwrap();
        assert_eq!(boom.status(), 500);
        assert_eq!(boom.text().await.unwrap(), r#"{"error":"internal error"}"#, "nothing of the panic leaks");
        assert_eq!(dingguard_telemetry::panic_count("http"), before + 1);
        assert_eq!(reqwest::get(format!("http://{addr}/ok")).await.unwrap().text().await.unwrap(), "fine");
        stop.cancel();
        server.await.unwrap().unwrap();
    }
}
