//! The dual-approval domain, pure: a request for a sensitive file has role-typed slots (by default the DPO and
//! the requester's department head) that must all be filled by approvals. Deny wins, the requester never
//! approves, one person fills at most one slot, and an approver must still be eligible when deciding. Time only
//! enters as arguments, so expiry, reminders and escalation are tested with any clock.

mod classification;
mod policy;
mod request;

pub use classification::{Classification, FileFacts};
pub use policy::{Policy, SlotRole, SlotSpec};
pub use request::{Decision, DecisionRecord, Request, Slot, Status, Timer, Transition};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("the request is {0:?}; decisions are only taken while it is pending")]
    NotPending(Status),
    #[error("the request expired at {expired_at_ms} ms")]
    Expired { expired_at_ms: i64 },
    #[error("a requester cannot approve their own request")]
    OwnRequest,
    #[error("{user} already decided slot {slot}; one person fills at most one slot")]
    AlreadyInAnotherSlot { user: String, slot: usize },
    #[error("{user} is not an eligible approver for any open slot")]
    NotEligible { user: String },
    #[error("slot {slot} ({role}) has no eligible approver")]
    NoEligibleApprover { slot: usize, role: String },
    #[error("the policy must have at least one slot, each needing at least one approval")]
    EmptyPolicy,
    #[error("{user} already decided this request")]
    AlreadyDecided { user: String },
}
