//! Reading and deciding requests as a person: through the JSON API (bearer tokens) or the approval pages
//! (sessions). Every decision is authorised against the slots frozen onto the request.

use dingguard_approval::{ApprovalError, Decision, SlotRole, Status, Transition};
use dingguard_directory::{Directory, Role};
use dingguard_store::StoredRequest;
use serde_json::json;

use crate::error::ApproverError;
use crate::notices::{Notices, waiting_on};
use crate::requests::{deputies_of, holders};
use crate::view::{RequestView, Stored, view};
use crate::{Shared, events, parse};

pub(crate) async fn load(shared: &Shared, id: &str) -> Result<(StoredRequest, Stored), ApproverError> {
    let row = shared.store.request(id).await?.ok_or_else(|| ApproverError::NotFound(id.into()))?;
    let stored = parse(&row)?;
    Ok((row, stored))
}

fn involved(row: &StoredRequest, stored: &Stored, user: &str) -> bool {
    row.requester == user
        || stored.request.iter().flat_map(|r| &r.slots).any(|s| s.eligible.iter().chain(&s.deputies).any(|u| u == user))
}

/// Whether `user` may still fill a slot of `role` for `requester`, by the directory as it is now: a holder of the
/// role or a holder's deputy, as when the request was made. The frozen lists say who was asked; this says who
/// still holds the role, so a head who moved or left cannot decide.
fn eligible_now(directory: &Directory, role: &str, requester: &str, user: &str) -> bool {
    // Named people: the frozen list is the policy, membership the only live check.
    let Some(role) = SlotRole::of_label(role) else { return directory.is_member(user) };
    let people = holders(directory, &role, requester);
    directory.is_member(user)
        && (people.iter().any(|u| u == user) || deputies_of(directory, &people).iter().any(|u| u == user))
}

/// The approvers `user` stands in for now.
async fn principals_of(shared: &Shared, user: &str) -> Result<Vec<String>, ApproverError> {
    let now = shared.clock.now_ms();
    Ok(shared.store.delegations_in_force(Some(user), now).await?.into_iter().map(|d| d.principal).collect())
}

/// The request as `user` may see it: its requester, its approvers and deputies, and the DPO, security and admin
/// roles. Anyone else is told it does not exist, so strangers learn nothing about who asked for what.
pub(crate) async fn read_as(shared: &Shared, user: &str, id: &str) -> Result<RequestView, ApproverError> {
    let (row, stored) = load(shared, id).await?;
    let oversight = [Role::Dpo, Role::Security, Role::Admin].into_iter().any(|r| shared.directory().has_role(user, r));
    let standing_in =
        principals_of(shared, user).await?.iter().any(|p| involved(&row, &stored, p) && *p != row.requester);
    if !involved(&row, &stored, user) && !oversight && !standing_in {
        return Err(ApproverError::NotFound(id.into()));
    }
    Ok(view(&row, &stored))
}

/// Whether `request` waits on `user`'s decision, in their own right or for an approver they stand in for.
fn awaits(row: &StoredRequest, stored: &Stored, user: &str, principals: &[String], now_ms: i64) -> bool {
    let Some(request) = &stored.request else { return false };
    let mine = |u: &String| u == user || (principals.contains(u) && row.requester != user);
    request.status == Status::Pending && request.expires_ms > now_ms && waiting_on(request).iter().any(mine)
}

/// One page of the requests waiting on someone's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxPage {
    pub requests: Vec<RequestView>,
    /// Requests waiting in all, over every page.
    pub total: i64,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
}

/// Page `page` (from 1) of the pending requests waiting on `user`'s decision, oldest first. The query pages in
/// the database, so however many other requests are open, a person's own stay in view.
pub(crate) async fn inbox(shared: &Shared, user: &str, page: i64, per_page: i64) -> Result<InboxPage, ApproverError> {
    let now = shared.clock.now_ms();
    let principals = principals_of(shared, user).await?;
    let (page, per_page) = (page.max(1), per_page.clamp(1, 200));
    let (rows, total) = shared.store.inbox(user, &principals, now, per_page, (page - 1) * per_page).await?;
    let mut requests = Vec::with_capacity(rows.len());
    for row in rows {
        let stored = parse(&row)?;
        // The index says who is asked; the frozen request is the authority (a decision may have just landed).
        if awaits(&row, &stored, user, &principals, now) {
            requests.push(view(&row, &stored));
        }
    }
    Ok(InboxPage { requests, total, page, per_page })
}

/// Whether request `id` waits on `user`'s decision.
pub(crate) async fn awaits_decision(shared: &Shared, user: &str, id: &str) -> Result<bool, ApproverError> {
    let (row, stored) = load(shared, id).await?;
    let principals = principals_of(shared, user).await?;
    Ok(awaits(&row, &stored, user, &principals, shared.clock.now_ms()))
}

/// Uses up a decision link for `user` and names the request it opens.
pub(crate) async fn open_link(shared: &Shared, user: &str, token: &str) -> Result<String, ApproverError> {
    let hash = dingguard_model::token::token_hash(token);
    let now = shared.clock.now_ms();
    match shared.store.redeem_decision_link(&hash, user, now).await? {
        Some(id) => {
            shared.store.append_audit(user, "opened decision link", &id, json!({}), now).await?;
            Ok(id)
        }
        None => {
            tracing::info!(user, "decision link refused: unknown, used, expired or someone else's");
            Err(ApproverError::LinkInvalid)
        }
    }
}

/// One person's decision, written with the request's new state, its audit entries, its events and the
/// notifications it calls for in one transaction that names the version it read: of two replicas deciding at
/// once, one wins and the other changes nothing.
pub(crate) async fn decide(
    shared: &Shared,
    caller: &str,
    id: &str,
    decision: &str,
    comment: &str,
    via: &str,
) -> Result<RequestView, ApproverError> {
    let decision_kind = match decision {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        other => return Err(ApproverError::Invalid(format!("decision {other:?} must be approve or reject"))),
    };
    if comment.len() > 2000 {
        return Err(ApproverError::Invalid("comment must be at most 2000 bytes".into()));
    }
    let (row, mut stored) = load(shared, id).await?;
    let Some(request) = stored.request.as_mut() else {
        return Err(ApproverError::Approval(ApprovalError::NotPending(Status::Granted)));
    };
    let now = shared.clock.now_ms();
    let directory = shared.directory();
    let roles: Vec<String> = request.slots.iter().map(|s| s.role.clone()).collect();
    let requester = request.requester.clone();
    let still_eligible =
        |user: &str, slot: usize| roles.get(slot).is_some_and(|role| eligible_now(&directory, role, &requester, user));
    let waiting = waiting_on(request);
    let transition = match request.decide(caller, decision_kind, comment, now, &still_eligible) {
        // Not an approver of this request in their own right: perhaps in place of one who is away.
        Err(ApprovalError::NotEligible { user }) => {
            let principals = principals_of(shared, caller).await?;
            let Some(principal) = principals.iter().find(|p| waiting.contains(p)) else {
                return Err(ApprovalError::NotEligible { user }.into());
            };
            request.decide_for(principal, caller, decision_kind, comment, now, &still_eligible)?
        }
        other => other?,
    };
    if let Some(last) = request.decisions.last_mut() {
        last.via = Some(via.to_owned());
    }
    let status = request.status;
    let next_deadline = request.next_deadline();
    let on_behalf_of = request.decisions.last().and_then(|d| d.on_behalf_of.clone());
    let still_waiting = if request.status == Status::Pending { waiting_on(request) } else { Vec::new() };
    let (created, expires) = (request.created_ms, request.expires_ms);
    let version = row.version + 1;
    if transition == Transition::Granted {
        stored.granted_until_ms = Some(now + shared.settings.grant_ttl_ms);
    }
    let mut tx = shared.store.begin().await?;
    let state = serde_json::to_string(&stored).expect("state serialises");
    if !tx.update_request(id, status, &state, next_deadline, row.version, now).await? {
        return Err(ApproverError::Concurrent);
    }
    tx.set_waiting(id, &row.requester, created, expires, &still_waiting).await?;
    let details = json!({"decision": decision, "comment": comment, "transition": format!("{transition:?}"),
        "on_behalf_of": on_behalf_of, "via": via});
    let action = if decision_kind == Decision::Approve { "approved" } else { "rejected" };
    tx.append_audit(caller, action, id, details, now).await?;
    let decided = json!({"by": caller, "on_behalf_of": on_behalf_of, "decision": decision});
    events::enqueue(&mut tx, "decided", id, version, decided, now).await?;
    let outcome = match transition {
        Transition::Granted => {
            let until = stored.granted_until_ms.unwrap_or(now);
            let (grant, facts) = crate::requests::grant_of(id, &row.requester, &stored, now, until);
            tx.insert_grant(&grant).await?;
            let grant = json!({"user": row.requester, "file": stored.file, "facts": facts, "expires_at_ms": until});
            tx.append_audit("dingguard", "granted", id, grant.clone(), now).await?;
            events::enqueue(&mut tx, "granted", id, version, grant, now).await?;
            Some("granted")
        }
        Transition::Rejected { .. } => {
            tx.append_audit("dingguard", "closed as rejected", id, json!({"by": caller}), now).await?;
            events::enqueue(&mut tx, "rejected", id, version, json!({"by": caller}), now).await?;
            Some("rejected")
        }
        Transition::Approved { .. } => None,
    };
    if let Some(outcome) = outcome {
        let notices = Notices { shared, stored: &stored, version, now_ms: now };
        notices.tell_requester(&mut tx, id, &row.requester, outcome).await?;
    }
    tx.commit().await?;
    if let Some(outcome) = crate::metrics::Outcome::of(status) {
        shared.metrics.closed(outcome, created, now);
    }
    tracing::info!(request = %id, by = caller, decision, %status, "decision recorded");
    let row = shared.store.request(id).await?.ok_or_else(|| ApproverError::NotFound(id.into()))?;
    Ok(view(&row, &stored))
}
