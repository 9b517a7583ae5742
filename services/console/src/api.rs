//! `/api/v1`: the alerts and silences as JSON, for scripts and other tools. Same rules as the pages: a session
//! cookie plus `X-CSRF-Token` on posts, or a bearer API token. Described in `assets/openapi.json`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dingguard_store::AlertStatus;
use dingguard_web::ApiJson;
use serde::Deserialize;
use serde_json::json;

use crate::actions::{self, FilterQuery, SilenceInput, invalid_query};
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

async fn list(
    State(shared): State<Arc<Shared>>,
    ApiViewer(_): ApiViewer,
    query: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Response, ConsoleError> {
    let query = query.map(|Query(q)| q).map_err(|_| invalid_query())?;
    let alerts = shared.store.alerts(&query.to_filter()?).await?;
    Ok(Json(json!({ "alerts": alerts })).into_response())
}

async fn show(
    State(shared): State<Arc<Shared>>,
    ApiViewer(_): ApiViewer,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    // The first events; an alert that folded more says how many it has.
    let (alert, events, total) = shared.store.alert(&id, 100, 0).await?;
    let note = pdpa_note(&alert.pdpa);
    Ok(Json(json!({ "alert": alert, "events": events, "events_total": total, "pdpa_note": note })).into_response())
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
    ApiJson(input): ApiJson<SilenceInput>,
) -> Result<Response, ConsoleError> {
    viewer.check_csrf(header_csrf(&headers))?;
    let silence = actions::create_silence(&shared, &viewer, input).await?;
    Ok((StatusCode::CREATED, Json(json!({ "silence": silence }))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInLinkRequest {
    user_id: String,
}

/// Admins can have a sign-in link sent to a member without a password. It goes to that member by DingTalk work
/// notification and never back to the admin, so no one can sign in as someone else; and no admin may have one
/// sent to anyone who holds a role or decides approvals, who sign in themselves. On the audit chain either way.
async fn sign_in_link(
    State(shared): State<Arc<Shared>>,
    ApiViewer(viewer): ApiViewer,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SignInLinkRequest>,
) -> Result<Response, ConsoleError> {
    viewer.check_csrf(header_csrf(&headers))?;
    if !viewer.admin {
        return Err(ConsoleError::Forbidden("Having sign-in links sent needs the admin role".into()));
    }
    let user_id = request.user_id.trim();
    if shared.settings.messenger.is_none() {
        return Err(ConsoleError::Invalid(
            "Sign-in links go out by DingTalk work notification, which is not set up here ([notify.work])".into(),
        ));
    }
    // Whether the person the link is for may use the console is a fact about the request, not about the caller.
    crate::auth::member_access(&shared, user_id).map_err(|e| ConsoleError::Invalid(e.public_message()))?;
    let now = shared.clock.now_ms();
    if shared.directory().holds_responsibility(user_id) {
        let details = json!({"refused": "the user holds a role or decides approvals"});
        shared.store.append_audit(&viewer.user_id, "refused sign-in link", user_id, details, now).await?;
        tracing::warn!(user = user_id, by = %viewer.user_id, "sign-in link for a responsible user refused");
        return Err(ConsoleError::Forbidden(format!(
            "{user_id} holds a role, heads or deputises a department, or stands in for someone: they sign in \
             themselves (password, or a link they ask for on the sign-in page), never through a link an admin has sent"
        )));
    }
    let request =
        crate::messages::LinkRequest { user_id: user_id.to_owned(), next: None, actor: viewer.user_id.clone() };
    if !crate::messages::queue(&shared, request) {
        return Err(ConsoleError::Store(dingguard_store::StoreError::Unavailable("sign-in link queue full".into())));
    }
    tracing::info!(user = user_id, by = %viewer.user_id, "sign-in link to be sent by DingTalk");
    let message = "A single-use sign-in link goes to them by DingTalk work notification";
    Ok((StatusCode::ACCEPTED, Json(json!({ "sent_to": user_id, "message": message }))).into_response())
}
