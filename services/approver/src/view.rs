//! What is stored for a request and what callers see of it.

use dingguard_approval::{DecisionRecord, Request, Status};
use dingguard_store::{FileFact, StoredRequest};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileRef {
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

/// A request as its approvers, its requester and the API see it; the console renders it, the API sends it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    pub id: String,
    #[schema(value_type = String, example = "pending")]
    pub status: Status,
    pub requester: String,
    pub file: FileRef,
    pub reason: String,
    pub sensitive: bool,
    pub created_at_ms: i64,
    /// When it expires undecided; absent for a file that needed no approval.
    pub expires_at_ms: Option<i64>,
    pub granted_until_ms: Option<i64>,
    pub slots: Vec<SlotView>,
    pub decisions: Vec<DecisionRecord>,
}

/// One approval slot of a request (the DPO's, the department head's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SlotView {
    pub role: String,
    pub needed: u32,
    pub eligible: Vec<String>,
    pub deputies: Vec<String>,
    pub escalated: bool,
    pub approvals: Vec<String>,
    pub decision: SlotDecision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlotDecision {
    Approved,
    Pending,
}

impl SlotDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Pending => "pending",
        }
    }
}

pub(crate) fn view(row: &StoredRequest, stored: &Stored) -> RequestView {
    let slots = stored
        .request
        .iter()
        .flat_map(|r| &r.slots)
        .map(|s| SlotView {
            role: s.role.clone(),
            needed: s.needed,
            eligible: s.eligible.clone(),
            deputies: s.deputies.clone(),
            escalated: s.escalated,
            approvals: s.approvals.clone(),
            decision: if s.approvals.len() as u32 >= s.needed { SlotDecision::Approved } else { SlotDecision::Pending },
        })
        .collect();
    RequestView {
        id: row.id.clone(),
        status: row.status,
        requester: row.requester.clone(),
        file: stored.file.clone(),
        reason: stored.reason.clone(),
        sensitive: stored.sensitive,
        created_at_ms: row.created_ms,
        expires_at_ms: stored.request.as_ref().map(|r| r.expires_ms),
        granted_until_ms: stored.granted_until_ms,
        slots,
        decisions: stored.request.as_ref().map(|r| r.decisions.clone()).unwrap_or_default(),
    }
}
