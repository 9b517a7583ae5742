//! Opening a request: one per source (a callback's `ce_id`, a caller's idempotency key, an OA instance), within
//! the requester's limits, judged sensitive by what dingguard knows of the file as well as by its description,
//! approvers resolved from the directory and frozen onto it, a file that is not sensitive granted at once.

use dingguard_approval::{FileFacts, Request, SlotRole, Status};
use dingguard_directory::Directory;
use dingguard_store::{FileFact, Grant, StoredRequest};
use serde_json::json;

use crate::error::ApproverError;
use crate::notices::{self, Ask, Notices};
use crate::view::{FileRef, RequestView, Stored, view};
use crate::{Shared, events, parse};

fn random_id() -> String {
    dingguard_model::token::token_hash(&dingguard_model::token::random_token())[..20].to_owned()
}

/// Where a request came from. Each kind has its own namespace, so no caller can take a key that another
/// caller, a callback or an OA instance will use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `Idempotency-Key` of an API call, scoped to the caller who sent it.
    Api { caller: String, key: String },
    /// A `file_download_request` callback, by its `ce_id`.
    Callback(String),
    /// A DingTalk OA approval instance.
    Oa(String),
}

impl Source {
    fn id(&self) -> String {
        match self {
            Self::Api { caller, key } => format!("api:{caller}:{key}"),
            Self::Callback(ce_id) => format!("cb:{ce_id}"),
            Self::Oa(instance) => format!("oa:{instance}"),
        }
    }
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

fn check_input(file: &FileRef, reason: &str) -> Result<(), ApproverError> {
    for (what, value, max) in
        [("file.id", &file.id, 256), ("file.name", &file.name, 512), ("reason", &reason.to_owned(), 2000)]
    {
        if value.trim().is_empty() || value.len() > max {
            return Err(ApproverError::Invalid(format!("{what} must be 1 to {max} bytes")));
        }
    }
    if file.space.as_ref().is_some_and(|s| s.len() > 256) {
        return Err(ApproverError::Invalid("file.space must be at most 256 bytes".into()));
    }
    if file.labels.len() > 50 || file.folder.as_ref().is_some_and(|f| f.len() > 1024) {
        return Err(ApproverError::Invalid("file.folder must be at most 1024 bytes and file.labels at most 50".into()));
    }
    Ok(())
}

/// A retry of the same request may reuse its key; a different request may not, or it would read back someone
/// else's answer.
fn same_request(stored: &Stored, row: &StoredRequest, requester: &str, file: &FileRef, reason: &str) -> bool {
    row.requester == requester && stored.file == *file && stored.reason == reason
}

/// The requester's limits: so many open at once, so many an hour. A flood from one person would otherwise push
/// real requests out of view and send every approver a message per request.
async fn within_limits(shared: &Shared, requester: &str, now: i64) -> Result<(), ApproverError> {
    let limits = &shared.settings.limits;
    let (open, soonest_expiry) = shared.store.open_requests_of(requester).await?;
    if open >= i64::from(limits.max_open_per_requester) {
        let wait = soonest_expiry.map_or(3600, |at| (at - now).div_euclid(1000) + 1);
        return Err(ApproverError::TooMany {
            message: format!(
                "{requester} already has {open} requests waiting for a decision, the most one person may have open; \
                 wait for one to be decided"
            ),
            retry_after_secs: wait.clamp(1, 86_400),
        });
    }
    let window_ms = 3_600_000;
    let (made, first) = shared.store.requests_made_since(requester, now - window_ms).await?;
    if made >= i64::from(limits.max_per_hour) {
        let wait = first.map_or(window_ms, |at| at + window_ms - now).div_euclid(1000) + 1;
        return Err(ApproverError::TooMany {
            message: format!("{requester} made {made} requests in the last hour, the most one person may make"),
            retry_after_secs: wait.clamp(1, 3600),
        });
    }
    Ok(())
}

/// Opens a request, or returns the one already opened for `source`: one request per source however often it
/// arrives. True when it was created now.
pub(crate) async fn open_request(
    shared: &Shared,
    caller: &str,
    requester: &str,
    file: FileRef,
    reason: String,
    source: Option<Source>,
) -> Result<(bool, RequestView), ApproverError> {
    if !shared.directory().is_member(requester) {
        return Err(ApproverError::Invalid(format!("requester {requester} is not an active member of the directory")));
    }
    check_input(&file, &reason)?;
    let source_id = source.as_ref().map(Source::id);
    if let Some(key) = &source_id
        && let Some(existing) = shared.store.request_by_source(key).await?
    {
        let stored: Stored = parse(&existing)?;
        if !same_request(&stored, &existing, requester, &file, &reason) {
            return Err(ApproverError::Invalid(
                "this Idempotency-Key was already used for a different request; use a new key for a new request".into(),
            ));
        }
        return Ok((false, view(&existing, &stored)));
    }
    let now = shared.clock.now_ms();
    within_limits(shared, requester, now).await?;
    let id = dingguard_model::RequestId::with_suffix(&random_id()).to_string();
    // The description is the requester's word; what dingguard saw of the file itself weighs as much.
    let known_facts = shared.store.file_facts(&file.id).await?;
    let classification = &shared.settings.classification;
    let described = FileFacts {
        name: Some(&file.name),
        space: file.space.as_deref(),
        folder: file.folder.as_deref(),
        labels: &file.labels,
    };
    let sensitive = classification.is_sensitive(&described)
        || known_facts.iter().any(|f| {
            classification.is_sensitive(&FileFacts {
                name: f.name.as_deref(),
                space: f.space.as_deref(),
                ..FileFacts::default()
            })
        });
    let (request, status, granted_until) = if sensitive {
        let (eligible, deputies) = resolve(shared, requester);
        let request = match Request::new(&id, requester, &shared.settings.policy, &eligible, &deputies, now) {
            Ok(r) => r,
            Err(error) => {
                // Flagged at once rather than left to expire: on the audit chain, on the approvals topic for
                // whoever watches it, and to the requester, each saying why it cannot go on.
                let details = json!({"requester": requester, "file": file, "error": error.to_string()});
                let stored = Stored { file, reason, sensitive, request: None, granted_until_ms: None, known_facts };
                let mut tx = shared.store.begin().await?;
                tx.append_audit(caller, "unroutable", &id, details.clone(), now).await?;
                events::enqueue(&mut tx, "unroutable", &id, 1, details, now).await?;
                let notices = Notices { shared, stored: &stored, version: 1, now_ms: now };
                notices.tell_requester(&mut tx, &id, requester, "unroutable").await?;
                tx.commit().await?;
                return Err(error.into());
            }
        };
        (Some(request), Status::Pending, None)
    } else {
        (None, Status::Granted, Some(now + shared.settings.grant_ttl_ms))
    };
    let stored = Stored { file, reason, sensitive, request, granted_until_ms: granted_until, known_facts };
    let row = StoredRequest {
        id: id.clone(),
        source_id: source_id.unwrap_or_else(|| id.clone()),
        requester: requester.to_owned(),
        status,
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
    let mut details = json!({"requester": requester, "file": stored.file, "reason": stored.reason,
        "sensitive": sensitive, "known_facts": stored.known_facts, "slots": stored.request.as_ref().map(|r| &r.slots)});
    if caller != requester {
        details["on_behalf_of"] = json!(requester);
    }
    tx.append_audit(caller, "requested", &id, details.clone(), now).await?;
    events::enqueue(&mut tx, "requested", &id, 1, details, now).await?;
    if let Some(request) = &stored.request {
        let to = notices::waiting_on(request);
        tx.set_waiting(&id, requester, now, request.expires_ms, &to).await?;
        let notices = Notices { shared, stored: &stored, version: 1, now_ms: now };
        notices.ask(&mut tx, request, &to, Ask::New).await?;
    }
    if let Some(until) = granted_until {
        let (grant, facts) = grant_of(&id, requester, &stored, now, until);
        tx.insert_grant(&grant).await?;
        let grant = json!({"user": requester, "file": stored.file, "facts": facts, "expires_at_ms": until,
            "why": "not sensitive"});
        tx.append_audit("dingguard", "granted", &id, grant.clone(), now).await?;
        events::enqueue(&mut tx, "granted", &id, 1, grant, now).await?;
    }
    tx.commit().await?;
    tracing::info!(request = %id, %requester, sensitive, "download request created");
    Ok((true, view(&row, &stored)))
}

/// The facts a grant of `stored` covers; see [`Stored::grant_facts`].
pub(crate) fn grant_of(request_id: &str, user: &str, stored: &Stored, now: i64, until: i64) -> (Grant, Vec<FileFact>) {
    let facts = stored.grant_facts();
    let grant = Grant {
        request_id: request_id.to_owned(),
        user_id: user.to_owned(),
        file_id: stored.file.id.clone(),
        granted_at_ms: now,
        expires_at_ms: until,
        facts: facts.clone(),
    };
    (grant, facts)
}
