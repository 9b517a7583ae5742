//! One request's state machine. Every method either applies a legal change or returns a typed error and changes
//! nothing.

use serde::{Deserialize, Serialize};

use crate::{ApprovalError, Policy};

pub use dingguard_model::RequestStatus as Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub role: String,
    pub needed: u32,
    /// Frozen when the request was made; the requester is never among them.
    pub eligible: Vec<String>,
    /// Join `eligible` once the slot is escalated.
    pub deputies: Vec<String>,
    pub escalated: bool,
    pub approvals: Vec<String>,
}

impl Slot {
    fn open(&self) -> bool {
        (self.approvals.len() as u32) < self.needed
    }

    fn admits(&self, user: &str) -> bool {
        self.eligible.iter().any(|u| u == user) || (self.escalated && self.deputies.iter().any(|u| u == user))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionRecord {
    pub user: String,
    /// The approver `user` stood in for while they were away; that approver's slot membership was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    pub slot: usize,
    pub decision: Decision,
    pub at_ms: i64,
    pub comment: String,
    /// How the person got in to decide (`password`, `sign_in_link`, `api_token`), set by whoever took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    pub requester: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub slots: Vec<Slot>,
    pub status: Status,
    pub decisions: Vec<DecisionRecord>,
    remind_before_ms: Vec<i64>,
    reminders_sent: usize,
    escalate_before_ms: i64,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// One slot took an approval; others still wait.
    Approved {
        slot: usize,
    },
    Granted,
    Rejected {
        slot: usize,
    },
}

/// What the passing of time did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    /// Remind the approvers of these open slots.
    Reminder {
        slots: Vec<usize>,
    },
    /// The slot is now open to its deputies too.
    Escalated {
        slot: usize,
        deputies: Vec<String>,
    },
    Expired,
}

impl Request {
    /// `eligible[i]` and `deputies[i]` are slot `i`'s approvers and deputies as resolved from the directory now.
    /// A slot that nobody but the requester could fill is refused at once rather than left to expire.
    pub fn new(
        id: impl Into<String>,
        requester: impl Into<String>,
        policy: &Policy,
        eligible: &[Vec<String>],
        deputies: &[Vec<String>],
        now_ms: i64,
    ) -> Result<Self, ApprovalError> {
        let requester = requester.into();
        if policy.slots.is_empty() || policy.slots.iter().any(|s| s.approvals == 0) {
            return Err(ApprovalError::EmptyPolicy);
        }
        let mut slots = Vec::new();
        for (i, spec) in policy.slots.iter().enumerate() {
            let without_requester = |list: Option<&Vec<String>>| -> Vec<String> {
                let mut out: Vec<String> = list.into_iter().flatten().filter(|u| **u != requester).cloned().collect();
                out.sort();
                out.dedup();
                out
            };
            let slot = Slot {
                role: spec.role.label(),
                needed: spec.approvals,
                eligible: without_requester(eligible.get(i)),
                deputies: without_requester(deputies.get(i)),
                escalated: false,
                approvals: Vec::new(),
            };
            if (slot.eligible.len() + slot.deputies.len()) < spec.approvals as usize {
                return Err(ApprovalError::NoEligibleApprover { slot: i, role: slot.role });
            }
            slots.push(slot);
        }
        let mut remind = policy.remind_before_ms.clone();
        remind.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Self {
            id: id.into(),
            requester,
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(policy.ttl_ms),
            slots,
            status: Status::Pending,
            decisions: Vec::new(),
            remind_before_ms: remind,
            reminders_sent: 0,
            escalate_before_ms: policy.escalate_before_ms,
        })
    }

    /// Takes one person's decision. `still_eligible(user, slot)` re-checks the directory at decision time (a
    /// department head who has since moved may no longer decide).
    pub fn decide(
        &mut self,
        user: &str,
        decision: Decision,
        comment: &str,
        now_ms: i64,
        still_eligible: &dyn Fn(&str, usize) -> bool,
    ) -> Result<Transition, ApprovalError> {
        self.take(user, None, decision, comment, now_ms, still_eligible)
    }

    /// `delegate` decides in place of `principal`, who is away and delegated to them: the principal's slots are
    /// used, and both count as having decided, so neither can fill another slot. The requester can never be a
    /// delegate for their own request.
    pub fn decide_for(
        &mut self,
        principal: &str,
        delegate: &str,
        decision: Decision,
        comment: &str,
        now_ms: i64,
        still_eligible: &dyn Fn(&str, usize) -> bool,
    ) -> Result<Transition, ApprovalError> {
        if delegate == self.requester {
            return Err(ApprovalError::OwnRequest);
        }
        if delegate == principal {
            return self.decide(delegate, decision, comment, now_ms, still_eligible);
        }
        if let Some(previous) = self.decision_of(delegate) {
            return Err(ApprovalError::AlreadyInAnotherSlot { user: delegate.into(), slot: previous.slot });
        }
        self.take(principal, Some(delegate), decision, comment, now_ms, still_eligible)
    }

    fn decision_of(&self, user: &str) -> Option<&DecisionRecord> {
        self.decisions.iter().find(|d| d.user == user || d.on_behalf_of.as_deref() == Some(user))
    }

    fn take(
        &mut self,
        user: &str,
        delegate: Option<&str>,
        decision: Decision,
        comment: &str,
        now_ms: i64,
        still_eligible: &dyn Fn(&str, usize) -> bool,
    ) -> Result<Transition, ApprovalError> {
        if self.status != Status::Pending {
            return Err(ApprovalError::NotPending(self.status));
        }
        if now_ms >= self.expires_ms {
            return Err(ApprovalError::Expired { expired_at_ms: self.expires_ms });
        }
        if user == self.requester {
            return Err(ApprovalError::OwnRequest);
        }
        if let Some(previous) = self.decision_of(user) {
            return Err(if previous.decision == Decision::Approve {
                ApprovalError::AlreadyInAnotherSlot { user: user.into(), slot: previous.slot }
            } else {
                ApprovalError::AlreadyDecided { user: user.into() }
            });
        }
        let candidates: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].admits(user) && still_eligible(user, i))
            .filter(|&i| decision == Decision::Reject || self.slots[i].open())
            .collect();
        // Fill the slot with the fewest other people able to fill it, so nobody blocks a slot only they can fill.
        let slot = candidates
            .into_iter()
            .min_by_key(|&i| {
                let s = &self.slots[i];
                s.eligible.iter().chain(&s.deputies).filter(|u| *u != user && !self.has_decided(u)).count()
            })
            .ok_or_else(|| ApprovalError::NotEligible { user: user.into() })?;
        let (recorded, on_behalf_of) = match delegate {
            Some(d) => (d.to_owned(), Some(user.to_owned())),
            None => (user.to_owned(), None),
        };
        self.decisions.push(DecisionRecord {
            user: recorded,
            on_behalf_of,
            slot,
            decision,
            at_ms: now_ms,
            comment: comment.into(),
            via: None,
        });
        Ok(match decision {
            Decision::Reject => {
                self.status = Status::Rejected;
                Transition::Rejected { slot }
            }
            Decision::Approve => {
                self.slots[slot].approvals.push(user.into());
                if self.slots.iter().all(|s| !s.open()) {
                    self.status = Status::Granted;
                    Transition::Granted
                } else {
                    Transition::Approved { slot }
                }
            }
        })
    }

    fn has_decided(&self, user: &str) -> bool {
        self.decision_of(user).is_some()
    }

    /// Applies the passing of time up to `now_ms`: expiry, then reminders and escalation while pending.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Timer> {
        let mut timers = Vec::new();
        if self.status != Status::Pending {
            return timers;
        }
        if now_ms >= self.expires_ms {
            self.status = Status::Expired;
            timers.push(Timer::Expired);
            return timers;
        }
        let open: Vec<usize> = (0..self.slots.len()).filter(|&i| self.slots[i].open()).collect();
        let mut due = false;
        while self.reminders_sent < self.remind_before_ms.len()
            && now_ms >= self.expires_ms - self.remind_before_ms[self.reminders_sent]
        {
            self.reminders_sent += 1;
            due = true;
        }
        if due {
            timers.push(Timer::Reminder { slots: open.clone() });
        }
        if now_ms >= self.expires_ms - self.escalate_before_ms {
            for i in open {
                let slot = &mut self.slots[i];
                if !slot.escalated && !slot.deputies.is_empty() {
                    slot.escalated = true;
                    timers.push(Timer::Escalated { slot: i, deputies: slot.deputies.clone() });
                }
            }
        }
        timers
    }

    /// When `tick` next has something to do, for the scheduler.
    pub fn next_deadline(&self) -> Option<i64> {
        if self.status != Status::Pending {
            return None;
        }
        let mut next = self.expires_ms;
        if let Some(before) = self.remind_before_ms.get(self.reminders_sent) {
            next = next.min(self.expires_ms - before);
        }
        if self.slots.iter().any(|s| s.open() && !s.escalated && !s.deputies.is_empty()) {
            next = next.min(self.expires_ms - self.escalate_before_ms);
        }
        Some(next)
    }
}
