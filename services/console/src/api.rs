//! `/api/v1`: the alerts and silences as JSON, for scripts and other tools. Same rules as the pages: a session
//! cookie plus `X-CSRF-Token` on posts, or a bearer API token. Described in `assets/openapi.json`.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dingguard_store::AlertStatus;
use serde::Deserialize;
use serde_json::json;

use crate::actions::{self, FilterQuery, SilenceInput};
use crate::auth::{ApiViewer, header_csrf};
use crate::detail::pdpa_note;
use crate::{ConsoleError, Shared};

const OPENAPI: &str = include_str!("../assets/openapi.json");

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/alerts", get(list))
        .route("/api/v1/alerts/{id}", get(show))
        .route("/api/v1/alerts/{id}/acknowledge", post(acknowledge))
        .route("/api/v1/alerts/{id}/resolve", post(resolve))
        .route("/api/v1/silences", get(silences).post(create_silence))
        .route("/api/v1/sign-in-links", post(sign_in_link))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

fn invalid_body(rejection: JsonRejection) -> ConsoleError {
    ConsoleError::Invalid(format!("The body must be a JSON object as documented: {}", rejection.body_text()))
}

async fn list(
    State(shared): State<Arc<Shared>>,
    ApiViewer(_): ApiViewer,
    query: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Response, ConsoleError> {
    let query = query.map(|Query(q)| q).map_err(|e| ConsoleError::Invalid(e.body_text()))?;
    let alerts = shared.store.alerts(&query.to_filter()?).await?;
    Ok(Json(json!({ "alerts": alerts })).into_response())
}

async fn show(
    State(shared): State<Arc<Shared>>,
    ApiViewer(_): ApiViewer,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let (alert, events) = shared.store.alert(&id).await?;
    let note = pdpa_note(&alert.pdpa);
    Ok(Json(json!({ "alert": alert, "events": events, "pdpa_note": note })).into_response())
}

async fn acknowledge(
    state: State<Arc<Shared>>,
    viewer: ApiViewer,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Response, ConsoleError> {
    move_to(state, viewer, headers, id, AlertStatus::Acknowledged).await
}

async fn resolve(
    state: State<Arc<Shared>>,
    viewer: ApiViewer,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Response, ConsoleError> {
    move_to(state, viewer, headers, id, AlertStatus::Resolved).await
}

async fn move_to(
    State(shared): State<Arc<Shared>>,
    ApiViewer(viewer): ApiViewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    to: AlertStatus,
) -> Result<Response, ConsoleError> {
    viewer.check_csrf(header_csrf(&headers))?;
    let alert = actions::move_alert(&shared, &viewer, &id, to).await?;
    Ok(Json(json!({ "alert": alert })).into_response())
}

async fn silences(State(shared): State<Arc<Shared>>, ApiViewer(_): ApiViewer) -> Result<Response, ConsoleError> {
    let silences = shared.store.silences().await?;
    let suppressions: Vec<_> = shared
        .store
        .suppressions()
        .await?
        .into_iter()
        .map(|(rule, kind, name, count)| json!({ "rule": rule, "kind": kind, "name": name, "count": count }))
        .collect();
    Ok(Json(json!({ "silences": silences, "suppressions": suppressions })).into_response())
}

async fn create_silence(
    State(shared): State<Arc<Shared>>,
    ApiViewer(viewer): ApiViewer,
    headers: HeaderMap,
    body: Result<Json<SilenceInput>, JsonRejection>,
) -> Result<Response, ConsoleError> {
    viewer.check_csrf(header_csrf(&headers))?;
    let Json(input) = body.map_err(invalid_body)?;
    let silence = actions::create_silence(&shared, &viewer, input).await?;
    Ok((StatusCode::CREATED, Json(json!({ "silence": silence }))).into_response())
}

#[derive(Debug, Deserialize)]
struct SignInLinkRequest {
    user_id: String,
}

/// Admins hand out sign-in links, e.g. to send by DingTalk message to someone without a password.
async fn sign_in_link(
    State(shared): State<Arc<Shared>>,
    ApiViewer(viewer): ApiViewer,
    headers: HeaderMap,
    body: Result<Json<SignInLinkRequest>, JsonRejection>,
) -> Result<Response, ConsoleError> {
    viewer.check_csrf(header_csrf(&headers))?;
    if !viewer.admin {
        return Err(ConsoleError::Forbidden("Issuing sign-in links needs the admin role".into()));
    }
    let Json(request) = body.map_err(invalid_body)?;
    let user_id = request.user_id.trim();
    // Whether the person the link is for may use the console is a fact about the request, not about the caller.
    crate::auth::member_access(&shared, user_id).map_err(|e| ConsoleError::Invalid(e.public_message()))?;
    let (url, expires_at_ms) = actions::sign_in_link(&shared, user_id).await?;
    tracing::info!(user = user_id, by = %viewer.user_id, "sign-in link issued through the API");
    Ok((StatusCode::CREATED, Json(json!({ "url": url, "expires_at_ms": expires_at_ms }))).into_response())
}
