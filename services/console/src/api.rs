//! `/api/v1`: the alerts and silences as JSON, for scripts and other tools. Same rules as the pages: a session
//! cookie plus `X-CSRF-Token` on posts, or a bearer API token. The API document is generated from these handlers
//! (`utoipa`) and served by the process at `/api/v1/openapi.json`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router};
use dingguard_store::{Alert, AlertEvent, AlertStatus, Silence};
use dingguard_web::{ApiErrors, ApiJson, ErrorBody};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::actions::{self, FilterQuery, SilenceInput, invalid_query};
use crate::auth::{ApiViewer, header_csrf};
use crate::detail::pdpa_note;
use crate::{ConsoleError, Shared};

/// The API routes and their document, from the same registrations: a route cannot be served undocumented.
pub(crate) fn routes() -> (Router<Arc<Shared>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(acknowledge))
        .routes(routes!(resolve))
        .routes(routes!(silences, create_silence))
        .routes(routes!(sign_in_link))
        .split_for_parts()
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AlertList {
    alerts: Vec<Alert>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AlertDetail {
    alert: Alert,
    /// The first 100 events the alert folded.
    events: Vec<AlertEvent>,
    /// How many events the alert folded in all.
    events_total: i64,
    /// The articles of Macau's Personal Data Protection Act the rule names, in words.
    pdpa_note: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AlertBody {
    alert: Alert,
}

/// What a silence held back: alerts of `rule` for the `kind` `name` (a person, a group), `count` times.
#[derive(Serialize, ToSchema)]
pub(crate) struct Suppression {
    rule: String,
    kind: String,
    name: String,
    count: i64,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SilenceList {
    silences: Vec<Silence>,
    suppressions: Vec<Suppression>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SilenceCreated {
    silence: Silence,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SignInLinkSent {
    sent_to: String,
    message: String,
}

/// Alerts, newest first, filtered by severity, rule and status.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(FilterQuery),
    responses((status = 200, description = "The alerts", body = AlertList), ApiErrors),
    security(("bearer" = []), ("session" = [])))]
async fn list(
    State(shared): State<Arc<Shared>>,
    ApiViewer(_viewer): ApiViewer,
    query: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Json<AlertList>, ConsoleError> {
    let query = query.map(|Query(q)| q).map_err(|_| invalid_query())?;
    let alerts = shared.store.alerts(&query.to_filter()?).await?;
    Ok(Json(AlertList { alerts }))
}

/// One alert with its first events and what the law says.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", params(("id" = String, Path, description = "The alert id")),
    responses((status = 200, description = "The alert", body = AlertDetail), (status = 404, description = "No such alert", body = ErrorBody), ApiErrors),
    security(("bearer" = []), ("session" = [])))]
async fn show(
    State(shared): State<Arc<Shared>>,
    ApiViewer(_viewer): ApiViewer,
    Path(id): Path<String>,
) -> Result<Json<AlertDetail>, ConsoleError> {
    // The first events; an alert that folded more says how many it has.
    let (alert, events, events_total) = shared.store.alert(&id, 100, 0).await?;
    let pdpa_note = pdpa_note(&alert.pdpa);
    Ok(Json(AlertDetail { alert, events, events_total, pdpa_note }))
}

/// Marks an open alert as being looked at, by the caller.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", params(("id" = String, Path, description = "The alert id"), ("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token; needed with the session cookie, not with a bearer token")),
    responses((status = 200, description = "The alert acknowledged", body = AlertBody), (status = 404, description = "No such alert", body = ErrorBody), (status = 409, description = "The alert cannot move to this status", body = ErrorBody), ApiErrors),
    security(("bearer" = []), ("session" = [])))]
async fn acknowledge(
    state: State<Arc<Shared>>,
    viewer: ApiViewer,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Json<AlertBody>, ConsoleError> {
    move_to(state, viewer, headers, id, AlertStatus::Acknowledged).await
}

/// Closes an alert, by the caller.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", params(("id" = String, Path, description = "The alert id"), ("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token; needed with the session cookie, not with a bearer token")),
    responses((status = 200, description = "The alert resolved", body = AlertBody), (status = 404, description = "No such alert", body = ErrorBody), (status = 409, description = "The alert cannot move to this status", body = ErrorBody), ApiErrors),
    security(("bearer" = []), ("session" = [])))]
async fn resolve(
    state: State<Arc<Shared>>,
    viewer: ApiViewer,
    headers: HeaderMap,
    id: Path<String>,
) -> Result<Json<AlertBody>, ConsoleError> {
    move_to(state, viewer, headers, id, AlertStatus::Resolved).await
}

async fn move_to(
    State(shared): State<Arc<Shared>>,
    ApiViewer(viewer): ApiViewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    to: AlertStatus,
) -> Result<Json<AlertBody>, ConsoleError> {
    viewer.check_csrf(header_csrf(&headers))?;
    let alert = actions::move_alert(&shared, &viewer, &id, to).await?;
    Ok(Json(AlertBody { alert }))
}

/// The silences in force and what each one held back.
#[utoipa::path(get, path = "/api/v1/silences", tag = "silences",
    responses((status = 200, description = "The silences", body = SilenceList), ApiErrors),
    security(("bearer" = []), ("session" = [])))]
async fn silences(
    State(shared): State<Arc<Shared>>,
    ApiViewer(_viewer): ApiViewer,
) -> Result<Json<SilenceList>, ConsoleError> {
    let silences = shared.store.silences().await?;
    let suppressions = shared
        .store
        .suppressions()
        .await?
        .into_iter()
        .map(|(rule, kind, name, count)| Suppression { rule, kind, name, count })
        .collect();
    Ok(Json(SilenceList { silences, suppressions }))
}

/// Silences a rule (or one of its keys) for a number of hours, with a reason, on the audit chain.
#[utoipa::path(post, path = "/api/v1/silences", tag = "silences", params(("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token; needed with the session cookie, not with a bearer token")), request_body = SilenceInput,
    responses((status = 201, description = "The silence created", body = SilenceCreated), ApiErrors),
    security(("bearer" = []), ("session" = [])))]
async fn create_silence(
    State(shared): State<Arc<Shared>>,
    ApiViewer(viewer): ApiViewer,
    headers: HeaderMap,
    ApiJson(input): ApiJson<SilenceInput>,
) -> Result<(StatusCode, Json<SilenceCreated>), ConsoleError> {
    viewer.check_csrf(header_csrf(&headers))?;
    let silence = actions::create_silence(&shared, &viewer, input).await?;
    Ok((StatusCode::CREATED, Json(SilenceCreated { silence })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignInLinkRequest {
    user_id: String,
}

/// Admins can have a sign-in link sent to a member without a password. It goes to that member by DingTalk work
/// notification and never back to the admin, so no one can sign in as someone else; and no admin may have one
/// sent to anyone who holds a role or decides approvals, who sign in themselves. On the audit chain either way.
#[utoipa::path(post, path = "/api/v1/sign-in-links", tag = "sign-in links", params(("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token; needed with the session cookie, not with a bearer token")), request_body = SignInLinkRequest,
    responses((status = 202, description = "The link is on its way to the member", body = SignInLinkSent), ApiErrors),
    security(("bearer" = []), ("session" = [])))]
async fn sign_in_link(
    State(shared): State<Arc<Shared>>,
    ApiViewer(viewer): ApiViewer,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SignInLinkRequest>,
) -> Result<(StatusCode, Json<SignInLinkSent>), ConsoleError> {
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
    Ok((StatusCode::ACCEPTED, Json(SignInLinkSent { sent_to: user_id.to_owned(), message: message.to_owned() })))
}
