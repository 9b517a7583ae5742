//! `/api/v1/download-requests`: create, read, decide; and the deadline pass.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use dingguard_approval::{Decision, Request, SlotRole, Status, Timer, Transition};
use dingguard_directory::Role;
use dingguard_store::StoredRequest;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApproverError;
use crate::view::{FileRef, Stored, status_name, view};
use crate::{Shared, events};

pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/download-requests", post(create))
        .route("/api/v1/download-requests/{id}", get(read))
        .route("/api/v1/download-requests/{id}/decisions", post(decide))
        .with_state(shared)
}

async fn caller(shared: &Shared, headers: &HeaderMap) -> Result<String, ApproverError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApproverError::Unauthenticated)?;
    let hash = dingguard_model::token::token_hash(token);
    let now = shared.clock.now_ms();
    let user = shared
        .store
        .console_token_user(&hash, dingguard_store::console::TokenKind::Api, now)
        .await?
        .ok_or(ApproverError::Unauthenticated)?;
    if !shared.directory.is_member(&user) {
        return Err(ApproverError::Forbidden(format!("{user} is not an active member of the directory")));
    }
    Ok(user)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    file: FileRef,
    reason: String,
    requester: Option<String>,
}

fn random_id() -> String {
    dingguard_model::token::token_hash(&dingguard_model::token::random_token())[..20].to_owned()
}

/// The frozen approvers of each slot and their deputies, from the directory as it is now.
fn resolve(shared: &Shared, requester: &str) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let d = &shared.directory;
    let mut eligible = Vec::new();
    let mut deputies = Vec::new();
    for slot in &shared.settings.policy.slots {
        let people: Vec<String> = match &slot.role {
            SlotRole::Dpo => d.dpos().iter().map(|u| u.as_str().to_owned()).collect(),
            SlotRole::DeptHead => d.department_heads_of(requester).iter().map(|u| u.as_str().to_owned()).collect(),
            SlotRole::AnyOf(list) => list.iter().filter(|u| d.is_member(u)).cloned().collect(),
        };
        let stand_ins: Vec<String> = people
            .iter()
            .filter_map(|u| d.deputy_of(u).map(|x| x.as_str().to_owned()))
            .filter(|u| !people.contains(u) && d.is_member(u))
            .collect();
        eligible.push(people);
        deputies.push(stand_ins);
    }
    (eligible, deputies)
}

async fn create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApproverError> {
    let caller = caller(&shared, &headers).await?;
    let requester = body.requester.clone().unwrap_or_else(|| caller.clone());
    if requester != caller && !shared.directory.has_role(&caller, Role::Admin) {
        return Err(ApproverError::Forbidden(
            "only a gateway (admin) token may request on someone else's behalf".into(),
        ));
    }
    let source = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (created, view) = open_request(&shared, &caller, &requester, body.file, body.reason, source).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(view)))
}

/// Opens a request, or returns the one already opened for `source` (a callback's ce_id, an idempotency key):
/// one request per source however often it arrives. True when it was created now.
pub(crate) async fn open_request(
    shared: &Shared,
    caller: &str,
    requester: &str,
    file: FileRef,
    reason: String,
    source: Option<String>,
) -> Result<(bool, Value), ApproverError> {
    if !shared.directory.is_member(requester) {
        return Err(ApproverError::Invalid(format!("requester {requester} is not an active member of the directory")));
    }
    for (what, value, max) in [("file.id", &file.id, 256), ("file.name", &file.name, 512), ("reason", &reason, 2000)] {
        if value.trim().is_empty() || value.len() > max {
            return Err(ApproverError::Invalid(format!("{what} must be 1 to {max} bytes")));
        }
    }
    if let Some(existing) = match &source {
        Some(key) => shared.store.request_by_source(key).await?,
        None => None,
    } {
        let stored: Stored = parse(&existing)?;
        return Ok((false, view(&existing, &stored)));
    }
    let now = shared.clock.now_ms();
    let id = format!("dlr_{}", random_id());
    let sensitive = shared.settings.classification.file_is_sensitive(Some(&file.name), file.space.as_deref());
    let (request, status, granted_until) = if sensitive {
        let (eligible, deputies) = resolve(shared, requester);
        let request = match Request::new(&id, requester, &shared.settings.policy, &eligible, &deputies, now) {
            Ok(r) => r,
            Err(error) => {
                // Flagged at once rather than left to expire: the audit shows who asked and why it cannot go on.
                shared
                    .store
                    .append_audit(
                        caller,
                        "unroutable",
                        &id,
                        json!({"requester": requester, "error": error.to_string()}),
                        now,
                    )
                    .await?;
                return Err(error.into());
            }
        };
        (Some(request), "pending", None)
    } else {
        (None, "granted", Some(now + shared.settings.grant_ttl_ms))
    };
    let stored = Stored { file, reason, sensitive, request, granted_until_ms: granted_until };
    let row = StoredRequest {
        id: id.clone(),
        source_id: source.unwrap_or_else(|| id.clone()),
        requester: requester.to_owned(),
        status: status.into(),
        file_id: stored.file.id.clone(),
        file_name: stored.file.name.clone(),
        state: serde_json::to_string(&stored).expect("state serialises"),
        version: 1,
        created_ms: now,
        updated_ms: now,
        next_deadline_ms: stored.request.as_ref().and_then(Request::next_deadline),
    };
    let mut tx = shared.store.begin().await?;
    if !tx.insert_request(&row).await? {
        return Err(ApproverError::Concurrent);
    }
    let details = json!({"requester": requester, "file": stored.file, "reason": stored.reason, "sensitive": sensitive,
        "slots": stored.request.as_ref().map(|r| &r.slots)});
    tx.append_audit(caller, "requested", &id, details.clone(), now).await?;
    events::enqueue(&mut tx, "requested", &id, 1, details, now).await?;
    if let Some(until) = granted_until {
        tx.insert_grant(&id, requester, &stored.file.id, now, until).await?;
        let grant = json!({"user": requester, "file": stored.file, "expires_at_ms": until, "why": "not sensitive"});
        tx.append_audit("dingguard", "granted", &id, grant.clone(), now).await?;
        events::enqueue(&mut tx, "granted", &id, 1, grant, now).await?;
    }
    tx.commit().await?;
    tracing::info!(request = %id, %requester, sensitive, "download request created");
    Ok((true, view(&row, &stored)))
}

fn parse(row: &StoredRequest) -> Result<Stored, ApproverError> {
    serde_json::from_str(&row.state)
        .map_err(|e| ApproverError::Store(dingguard_store::StoreError::Corrupt(format!("request {}: {e}", row.id))))
}

async fn load(shared: &Shared, id: &str) -> Result<(StoredRequest, Stored), ApproverError> {
    let row = shared.store.request(id).await?.ok_or_else(|| ApproverError::NotFound(id.into()))?;
    let stored = parse(&row)?;
    Ok((row, stored))
}

async fn read(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApproverError> {
    let caller = caller(&shared, &headers).await?;
    let (row, stored) = load(&shared, &id).await?;
    let involved = row.requester == caller
        || stored
            .request
            .iter()
            .flat_map(|r| &r.slots)
            .any(|s| s.eligible.contains(&caller) || s.deputies.contains(&caller));
    let oversight = [Role::Dpo, Role::Security, Role::Admin].into_iter().any(|r| shared.directory.has_role(&caller, r));
    if !involved && !oversight {
        // Same answer as a missing request: strangers learn nothing about who asked for what.
        return Err(ApproverError::NotFound(id));
    }
    Ok(Json(view(&row, &stored)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: String,
    #[serde(default)]
    comment: String,
}

async fn decide(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<DecisionBody>,
) -> Result<Json<Value>, ApproverError> {
    let caller = caller(&shared, &headers).await?;
    let decision = match body.decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        other => return Err(ApproverError::Invalid(format!("decision {other:?} must be approve or reject"))),
    };
    if body.comment.len() > 2000 {
        return Err(ApproverError::Invalid("comment must be at most 2000 bytes".into()));
    }
    let (row, mut stored) = load(&shared, &id).await?;
    let Some(request) = stored.request.as_mut() else {
        return Err(ApproverError::Approval(dingguard_approval::ApprovalError::NotPending(Status::Granted)));
    };
    let now = shared.clock.now_ms();
    let directory = &shared.directory;
    let transition = request.decide(&caller, decision, &body.comment, now, &|user, _slot| directory.is_member(user))?;
    let status = status_name(request.status);
    let next_deadline = request.next_deadline();
    let version = row.version + 1;
    if transition == Transition::Granted {
        stored.granted_until_ms = Some(now + shared.settings.grant_ttl_ms);
    }
    let mut tx = shared.store.begin().await?;
    let state = serde_json::to_string(&stored).expect("state serialises");
    if !tx.update_request(&id, status, &state, next_deadline, row.version, now).await? {
        return Err(ApproverError::Concurrent);
    }
    let details = json!({"decision": body.decision, "comment": body.comment, "transition": format!("{transition:?}")});
    let action = if decision == Decision::Approve { "approved" } else { "rejected" };
    tx.append_audit(&caller, action, &id, details.clone(), now).await?;
    events::enqueue(&mut tx, "decided", &id, version, json!({"by": caller, "decision": body.decision}), now).await?;
    match transition {
        Transition::Granted => {
            let until = stored.granted_until_ms.unwrap_or(now);
            tx.insert_grant(&id, &row.requester, &row.file_id, now, until).await?;
            let grant = json!({"user": row.requester, "file": stored.file, "expires_at_ms": until});
            tx.append_audit("dingguard", "granted", &id, grant.clone(), now).await?;
            events::enqueue(&mut tx, "granted", &id, version, grant, now).await?;
        }
        Transition::Rejected { .. } => {
            tx.append_audit("dingguard", "closed as rejected", &id, json!({"by": caller}), now).await?;
            events::enqueue(&mut tx, "rejected", &id, version, json!({"by": caller}), now).await?;
        }
        Transition::Approved { .. } => {}
    }
    tx.commit().await?;
    let row = shared.store.request(&id).await?.ok_or_else(|| ApproverError::NotFound(id.clone()))?;
    Ok(Json(view(&row, &stored)))
}

/// Expiry, reminders and escalation for every request whose next deadline has passed.
pub(crate) async fn apply_deadlines(shared: &Shared) -> Result<(), ApproverError> {
    let now = shared.clock.now_ms();
    for row in shared.store.due_requests(now, 100).await? {
        let mut stored = parse(&row)?;
        let Some(request) = stored.request.as_mut() else { continue };
        let timers = request.tick(now);
        let status = status_name(request.status);
        let next_deadline = request.next_deadline();
        let mut tx = shared.store.begin().await?;
        let state = serde_json::to_string(&stored).expect("state serialises");
        if !tx.update_request(&row.id, status, &state, next_deadline, row.version, now).await? {
            continue;
        }
        for timer in timers {
            let (action, details) = match &timer {
                Timer::Expired => ("expired", json!({})),
                Timer::Reminder { slots } => ("reminded", json!({"slots": slots})),
                Timer::Escalated { slot, deputies } => ("escalated", json!({"slot": slot, "deputies": deputies})),
            };
            tx.append_audit("dingguard", action, &row.id, details.clone(), now).await?;
            events::enqueue(&mut tx, action, &row.id, row.version + 1, details, now).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}
