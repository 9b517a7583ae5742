//! Work notifications to the people a request needs and to its requester, queued in the transaction of the change
//! that calls for them. An approver's message carries a decision link: single use, bound to that approver and
//! that request, alive until the request expires, stored only as its hash.

use dingguard_approval::Request;
use dingguard_notify::{Markdown, Notification};
use dingguard_store::{AlertTx, Channel, StoreError};
use time::macros::{format_description, offset};

use crate::Shared;
use crate::view::Stored;

pub(crate) const CHANNEL: Channel = Channel::ApprovalNotices;

/// Why an approver is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    New,
    Reminder,
    Escalated,
}

/// Milliseconds since the epoch as Macau local time; approvers read it on their phones.
fn macau_time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset!(+8))
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]"))
        .unwrap_or_default()
}

fn name_of(shared: &Shared, user: &str) -> String {
    shared.directory().user(user).map_or_else(|| user.to_owned(), |u| format!("{} ({user})", u.name))
}

fn base_url(shared: &Shared) -> &str {
    shared.settings.public_url.trim_end_matches('/')
}

/// People who still have to act on `request`: undecided approvers of open slots, deputies once escalated.
pub(crate) fn waiting_on(request: &Request) -> Vec<String> {
    let mut people = Vec::new();
    for slot in request.slots.iter().filter(|s| (s.approvals.len() as u32) < s.needed) {
        let deputies = slot.deputies.iter().filter(|_| slot.escalated);
        for user in slot.eligible.iter().chain(deputies) {
            if !request.decisions.iter().any(|d| &d.user == user) && !people.contains(user) {
                people.push(user.clone());
            }
        }
    }
    people
}

/// The messages one change of a request calls for, queued in that change's transaction.
pub(crate) struct Notices<'a> {
    pub shared: &'a Shared,
    pub stored: &'a Stored,
    /// The request's version after the change: message ids are unique per change.
    pub version: i64,
    pub now_ms: i64,
}

impl Notices<'_> {
    /// Queues one message per person in `to`, each with its own decision link. Nothing is queued when no
    /// notifier is configured: the requests wait in the approvers' inboxes.
    pub(crate) async fn ask(
        &self,
        tx: &mut AlertTx<'_>,
        request: &Request,
        to: &[String],
        why: Ask,
    ) -> Result<(), StoreError> {
        let Self { shared, stored, version, now_ms } = *self;
        if shared.settings.notifier.is_none() {
            return Ok(());
        }
        let file = &stored.file;
        let (label, title, opening) = match why {
            Ask::New => ("new", "Approval needed", "Your approval is needed"),
            Ask::Reminder => ("reminder", "Reminder: approval needed", "Still waiting for your decision"),
            Ask::Escalated => {
                ("escalated", "Escalated to you: approval needed", "The usual approver has not decided; you may")
            }
        };
        // Approvers who are away are asked through their delegates as well.
        let mut recipients: Vec<(String, Option<String>)> = to.iter().map(|u| (u.clone(), None)).collect();
        for d in tx.delegations_in_force(None, now_ms).await? {
            let asked = to.contains(&d.principal) && !recipients.iter().any(|(u, _)| *u == d.delegate);
            if asked && d.delegate != request.requester {
                recipients.push((d.delegate, Some(d.principal)));
            }
        }
        for (user, standing_in_for) in &recipients {
            let token = dingguard_model::token::random_token();
            let token_hash = dingguard_model::token::token_hash(&token);
            tx.create_decision_link(&token_hash, user, &request.id, now_ms, request.expires_ms).await?;
            // Names, file, space and reason all come from outside: text, never markup.
            let mut markdown = Markdown::new();
            if let Some(principal) = standing_in_for.as_deref() {
                markdown =
                    markdown.raw("You decide in place of ").text(&name_of(shared, principal)).raw(", who is away.\n\n");
            }
            markdown = markdown
                .raw(opening)
                .raw(".\n\n")
                .bold(&name_of(shared, &request.requester))
                .raw(" asks to download ")
                .bold(&file.name);
            if let Some(space) = &file.space {
                markdown = markdown.raw(" in space ").bold(space);
            }
            let markdown = markdown
                .raw(".\n\nReason: ")
                .text(&stored.reason)
                .raw("\n\nDecide by ")
                .text(&macau_time(request.expires_ms))
                .raw(" (Macau time); the DPO and the department head must both approve.");
            let note = Notification {
                id: format!("{}-v{version}-{label}-{user}", request.id),
                title: format!("{title}: {}", file.name),
                severity: "approval".into(),
                markdown,
                link: Some(format!("{}/approvals/open/{token}", base_url(shared))),
                recipients: vec![user.clone()],
            };
            tx.enqueue(&note.id, &CHANNEL, &note, now_ms).await?;
        }
        Ok(())
    }

    /// Tells the requester how their request ended.
    pub(crate) async fn tell_requester(
        &self,
        tx: &mut AlertTx<'_>,
        request_id: &str,
        requester: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let Self { shared, stored, version, now_ms } = *self;
        if shared.settings.notifier.is_none() {
            return Ok(());
        }
        let markdown = Markdown::new()
            .raw("Your request to download ")
            .bold(&stored.file.name)
            .raw(" was ")
            .bold(outcome)
            .raw(".\n\n");
        let markdown = match (outcome, stored.granted_until_ms) {
            ("granted", Some(until)) => {
                markdown.raw("You may download it until ").text(&macau_time(until)).raw(" (Macau time).")
            }
            ("rejected", _) => markdown.raw("An approver rejected it; the request page shows who and why."),
            ("expired", _) => markdown.raw("Nobody decided in time; ask again if you still need it."),
            ("unroutable", _) => markdown.raw(
                "Nobody in the directory can fill one of its approvals, so it cannot be decided; ask the DPO to \
                 check the directory (department heads, DPOs).",
            ),
            _ => markdown,
        };
        let note = Notification {
            id: format!("{request_id}-v{version}-{outcome}"),
            title: format!("Download request {outcome}: {}", stored.file.name),
            severity: outcome.to_owned(),
            markdown,
            // An unroutable request was never stored: there is no page to open.
            link: (outcome != "unroutable").then(|| format!("{}/approvals/{request_id}", base_url(shared))),
            recipients: vec![requester.to_owned()],
        };
        tx.enqueue(&note.id, &CHANNEL, &note, now_ms).await
    }
}
