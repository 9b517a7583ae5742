//! What is stored for a request and what callers see of it.

use dingguard_approval::{Request, Status};
use dingguard_store::{FileFact, StoredRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileRef {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub space: Option<String>,
    /// The folder path in its space, e.g. `/HR/Contracts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// Tags and DLP classifications.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// The `state` column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub file: FileRef,
    pub reason: String,
    pub sensitive: bool,
    /// Absent for a file that needed no approval.
    pub request: Option<Request>,
    pub granted_until_ms: Option<i64>,
    /// What dingguard itself had seen of the file when the request was judged; its sensitivity and the grant
    /// went by these as well as by the description.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_facts: Vec<FileFact>,
}

impl Stored {
    /// The file facts a grant of this request is decided on: the description and everything known besides.
    pub(crate) fn grant_facts(&self) -> Vec<FileFact> {
        let described = FileFact { name: Some(self.file.name.clone()), space: self.file.space.clone() };
        let mut facts = vec![described];
        for known in &self.known_facts {
            if !facts.contains(known) {
                facts.push(known.clone());
            }
        }
        facts
    }
}

pub(crate) fn status_name(status: Status) -> &'static str {
    match status {
        Status::Pending => "pending",
        Status::Granted => "granted",
        Status::Rejected => "rejected",
        Status::Expired => "expired",
    }
}

pub(crate) fn view(row: &StoredRequest, stored: &Stored) -> Value {
    let slots: Vec<Value> = stored
        .request
        .iter()
        .flat_map(|r| &r.slots)
        .map(|s| {
            let decision = if s.approvals.len() as u32 >= s.needed { "approved" } else { "pending" };
            json!({ "role": s.role, "needed": s.needed, "eligible": s.eligible, "deputies": s.deputies,
                    "escalated": s.escalated, "approvals": s.approvals, "decision": decision })
        })
        .collect();
    json!({
        "id": row.id,
        "status": row.status,
        "requester": row.requester,
        "file": stored.file,
        "reason": stored.reason,
        "sensitive": stored.sensitive,
        "created_at_ms": row.created_ms,
        "expires_at_ms": stored.request.as_ref().map(|r| r.expires_ms),
        "granted_until_ms": stored.granted_until_ms,
        "slots": slots,
        "decisions": stored.request.as_ref().map(|r| r.decisions.clone()).unwrap_or_default(),
    })
}
