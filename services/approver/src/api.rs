//! `/api/v1/download-requests`: create, read, decide, with per-user bearer tokens.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router};
use dingguard_directory::Role;
use dingguard_store::Delegation;
use dingguard_web::{ApiErrors, ApiJson, ErrorBody};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApproverError;
use crate::requests::Source;
use crate::view::{FileRef, RequestView};
use crate::{Shared, decisions, requests};

/// How a bearer-token caller got in, for the record of their decisions.
const VIA_TOKEN: &str = "api_token";

/// The routes and their API document, from the same registrations: a route cannot be served undocumented.
pub(crate) fn routes(shared: Arc<Shared>) -> (Router, utoipa::openapi::OpenApi) {
    let (router, api) = OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(read))
        .routes(routes!(decide))
        .routes(routes!(delegation, delegate, end_delegation))
        .split_for_parts();
    (router.with_state(shared), api)
}

async fn caller(shared: &Shared, headers: &HeaderMap) -> Result<String, ApproverError> {
    let authorization = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let now = shared.clock.now_ms();
    let user = shared.store.bearer_user(authorization, now).await?.ok_or(ApproverError::Unauthenticated)?;
    if !shared.directory().is_member(&user) {
        return Err(ApproverError::Forbidden(format!("{user} is not an active member of the directory")));
    }
    Ok(user)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    file: FileRef,
    reason: String,
    requester: Option<String>,
}

/// `Idempotency-Key`: a retry of the same call sends the same key and gets the same request back. The key is the
/// caller's own: another caller's identical key names a different request.
fn idempotency_key(headers: &HeaderMap, caller: &str) -> Result<Option<Source>, ApproverError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().ok().map(str::trim).filter(|k| (1..=128).contains(&k.len()));
    let key = key
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| ApproverError::Invalid("Idempotency-Key must be 1 to 128 visible ASCII characters".into()))?;
    Ok(Some(Source::Api { caller: caller.to_owned(), key: key.to_owned() }))
}

/// Asks to download a file. A file dingguard or its classification knows to be sensitive waits for the DPO and
/// the department head; another is granted at once. An `Idempotency-Key` makes a retry return the same request.
#[utoipa::path(post, path = "/api/v1/download-requests", tag = "download requests", request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 128 visible ASCII characters")),
    responses((status = 201, description = "Created", body = RequestView),
        (status = 200, description = "The request this Idempotency-Key made before", body = RequestView),
        (status = 429, description = "Too many requests from this requester", body = ErrorBody), ApiErrors),
    security(("bearer" = [])))]
async fn create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<RequestView>), ApproverError> {
    let caller = caller(&shared, &headers).await?;
    let requester = body.requester.clone().unwrap_or_else(|| caller.clone());
    if requester != caller && !shared.directory().has_role(&caller, Role::Admin) {
        return Err(ApproverError::Forbidden(
            "only a gateway (admin) token may request on someone else's behalf".into(),
        ));
    }
    let source = idempotency_key(&headers, &caller)?;
    let (created, view) = requests::open_request(&shared, &caller, &requester, body.file, body.reason, source).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(view)))
}

/// A request, to its requester, its approvers and admins.
#[utoipa::path(get, path = "/api/v1/download-requests/{id}", tag = "download requests",
    params(("id" = String, Path, description = "The request id")),
    responses((status = 200, description = "The request", body = RequestView),
        (status = 404, description = "No such request", body = ErrorBody), ApiErrors),
    security(("bearer" = [])))]
async fn read(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApproverError> {
    let caller = caller(&shared, &headers).await?;
    Ok(Json(decisions::read_as(&shared, &caller, &id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: String,
    #[serde(default)]
    comment: String,
}

/// The caller's decision on a request waiting for it.
#[utoipa::path(post, path = "/api/v1/download-requests/{id}/decisions", tag = "download requests",
    params(("id" = String, Path, description = "The request id")), request_body = DecisionBody,
    responses((status = 200, description = "The request after the decision", body = RequestView),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Already decided or closed", body = ErrorBody), ApiErrors),
    security(("bearer" = [])))]
async fn decide(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<Json<RequestView>, ApproverError> {
    let caller = caller(&shared, &headers).await?;
    Ok(Json(decisions::decide(&shared, &caller, &id, &body.decision, &body.comment, VIA_TOKEN).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DelegationBody {
    delegate: String,
    #[serde(default)]
    from_ms: Option<i64>,
    until_ms: i64,
}

/// The caller's delegation while away, if any (`null` when none).
#[utoipa::path(get, path = "/api/v1/delegation", tag = "delegation",
    responses((status = 200, description = "The delegation", body = Option<Delegation>), ApiErrors),
    security(("bearer" = [])))]
async fn delegation(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<Option<Delegation>>, ApproverError> {
    let caller = caller(&shared, &headers).await?;
    Ok(Json(shared.store.delegation(&caller).await?))
}

/// Sets the caller's delegation: while it is in force, `delegate` is asked and may decide in the caller's place.
#[utoipa::path(put, path = "/api/v1/delegation", tag = "delegation", request_body = DelegationBody,
    responses((status = 200, description = "The delegation set", body = Delegation), ApiErrors),
    security(("bearer" = [])))]
async fn delegate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DelegationBody>,
) -> Result<Json<Delegation>, ApproverError> {
    let caller = caller(&shared, &headers).await?;
    let now = shared.clock.now_ms();
    let from_ms = body.from_ms.unwrap_or(now);
    let delegate = body.delegate.trim();
    if delegate == caller {
        return Err(ApproverError::Invalid("one cannot delegate to oneself".into()));
    }
    if !shared.directory().is_member(delegate) {
        return Err(ApproverError::Invalid(format!("delegate {delegate} is not an active member of the directory")));
    }
    if body.until_ms <= from_ms.max(now) || body.until_ms - from_ms > 90 * 24 * 3_600_000 {
        return Err(ApproverError::Invalid("until_ms must be in the future and at most 90 days after from_ms".into()));
    }
    let d = Delegation { principal: caller.clone(), delegate: delegate.to_owned(), from_ms, until_ms: body.until_ms };
    let mut tx = shared.store.begin().await?;
    tx.set_delegation(&d, now).await?;
    tx.append_audit(
        &caller,
        "delegated",
        &format!("delegation:{caller}"),
        serde_json::to_value(&d).unwrap_or_default(),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(principal = %caller, delegate, until_ms = body.until_ms, "delegation set");
    Ok(Json(d))
}

/// Ends the caller's delegation.
#[utoipa::path(delete, path = "/api/v1/delegation", tag = "delegation",
    responses((status = 204, description = "Ended"), ApiErrors), security(("bearer" = [])))]
async fn end_delegation(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Result<StatusCode, ApproverError> {
    let caller = caller(&shared, &headers).await?;
    let now = shared.clock.now_ms();
    let mut tx = shared.store.begin().await?;
    if !tx.end_delegation(&caller).await? {
        return Err(ApproverError::Invalid(format!("{caller} has no delegation to end")));
    }
    tx.append_audit(&caller, "delegation ended", &format!("delegation:{caller}"), serde_json::json!({}), now).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
