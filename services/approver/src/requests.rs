//! Opening a request: one per source (a callback's `ce_id`, an idempotency key), approvers resolved from the
//! directory and frozen onto it, a file that is not sensitive granted at once.

use dingguard_approval::{FileFacts, Request, SlotRole};
use dingguard_directory::Directory;
use dingguard_store::StoredRequest;
use serde_json::{Value, json};

use crate::error::ApproverError;
use crate::notices::{self, Ask, Notices};
use crate::view::{FileRef, Stored, view};
use crate::{Shared, events, parse};

fn random_id() -> String {
    dingguard_model::token::token_hash(&dingguard_model::token::random_token())[..20].to_owned()
}

/// Who holds `role` for `requester` now: DPOs, heads of the requester's departments, or the named people who are
/// still members.
pub(crate) fn holders(d: &Directory, role: &SlotRole, requester: &str) -> Vec<String> {
    match role {
        SlotRole::Dpo => d.dpos().iter().map(|u| u.as_str().to_owned()).collect(),
        SlotRole::DeptHead => d.department_heads_of(requester).iter().map(|u| u.as_str().to_owned()).collect(),
        SlotRole::AnyOf(list) => list.iter().filter(|u| d.is_member(u)).cloned().collect(),
    }
}

/// The members who stand in for `holders`, holders themselves left out.
pub(crate) fn deputies_of(d: &Directory, holders: &[String]) -> Vec<String> {
    holders
        .iter()
        .filter_map(|u| d.deputy_of(u).map(|x| x.as_str().to_owned()))
        .filter(|u| !holders.contains(u) && d.is_member(u))
        .collect()
}

/// The frozen approvers of each slot and their deputies, from the directory as it is now.
fn resolve(shared: &Shared, requester: &str) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let d = shared.directory();
    let mut eligible = Vec::new();
    let mut deputies = Vec::new();
    for slot in &shared.settings.policy.slots {
        let people = holders(&d, &slot.role, requester);
        deputies.push(deputies_of(&d, &people));
        eligible.push(people);
    }
    (eligible, deputies)
}

/// Opens a request, or returns the one already opened for `source`: one request per source however often it
/// arrives. True when it was created now.
pub(crate) async fn open_request(
    shared: &Shared,
    caller: &str,
    requester: &str,
    file: FileRef,
    reason: String,
    source: Option<String>,
) -> Result<(bool, Value), ApproverError> {
    if !shared.directory().is_member(requester) {
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
    if file.labels.len() > 50 || file.folder.as_ref().is_some_and(|f| f.len() > 1024) {
        return Err(ApproverError::Invalid("file.folder must be at most 1024 bytes and file.labels at most 50".into()));
    }
    let facts = FileFacts {
        name: Some(&file.name),
        space: file.space.as_deref(),
        folder: file.folder.as_deref(),
        labels: &file.labels,
    };
    let sensitive = shared.settings.classification.is_sensitive(&facts);
    let (request, status, granted_until) = if sensitive {
        let (eligible, deputies) = resolve(shared, requester);
        let request = match Request::new(&id, requester, &shared.settings.policy, &eligible, &deputies, now) {
            Ok(r) => r,
            Err(error) => {
                // Flagged at once rather than left to expire: on the audit chain, on the approvals topic for
                // whoever watches it, and to the requester, each saying why it cannot go on.
                let details = json!({"requester": requester, "file": file, "error": error.to_string()});
                let stored = Stored { file, reason, sensitive, request: None, granted_until_ms: None };
                let mut tx = shared.store.begin().await?;
                tx.append_audit(caller, "unroutable", &id, details.clone(), now).await?;
                events::enqueue(&mut tx, "unroutable", &id, 1, details, now).await?;
                let notices = Notices { shared, stored: &stored, version: 1, now_ms: now };
                notices.tell_requester(&mut tx, &id, requester, "unroutable").await?;
                tx.commit().await?;
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
    if let Some(request) = &stored.request {
        let to = notices::waiting_on(request);
        let notices = Notices { shared, stored: &stored, version: 1, now_ms: now };
        notices.ask(&mut tx, request, &to, Ask::New).await?;
    }
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
