//! `/healthz`, `/readyz` and `/metrics`, shared by every service in the process.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::LogReadiness;

/// `/healthz` says the process serves requests; `/readyz` says it can also do its work: the log accepts writes
/// and, where the process keeps state, the store answers. A load balancer then stops sending pushes DingTalk
/// would only have to retry.
pub fn health_routes(log: LogReadiness, store: Option<LogReadiness>) -> Router {
    Router::new().route("/healthz", get(|| async { (StatusCode::OK, "ok\n") })).route(
        "/readyz",
        get(move || {
            let answer = if !log.is_ready() {
                (StatusCode::SERVICE_UNAVAILABLE, "event log unavailable\n")
            } else if store.as_ref().is_some_and(|s| !s.is_ready()) {
                (StatusCode::SERVICE_UNAVAILABLE, "state store unavailable\n")
            } else {
                (StatusCode::OK, "ready\n")
            };
            async move { answer }
        }),
    )
}

/// `/metrics` in the OpenMetrics text format.
pub fn metrics_route(registry: Arc<Registry>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &registry) {
                    Ok(()) => (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                        body,
                    )
                        .into_response(),
                    Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }
        }),
    )
}

/// Health, readiness and metrics on one router.
pub fn ops_routes(registry: Arc<Registry>, readiness: LogReadiness) -> Router {
    health_routes(readiness, None).merge(metrics_route(registry))
}
