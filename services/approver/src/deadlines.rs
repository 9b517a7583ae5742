//! Expiry, reminders and escalation for every request whose next deadline has passed, by the approver's clock.

use dingguard_approval::{Status, Timer};
use serde_json::json;

use crate::error::ApproverError;
use crate::notices::{Ask, Notices, waiting_on};
use crate::{Shared, events, parse};

pub(crate) async fn apply(shared: &Shared) -> Result<(), ApproverError> {
    let now = shared.clock.now_ms();
    for row in shared.store.due_requests(now, 100).await? {
        let mut stored = parse(&row)?;
        let Some(request) = stored.request.as_mut() else { continue };
        let timers = request.tick(now);
        let request = request.clone();
        let status = request.status;
        let version = row.version + 1;
        let mut tx = shared.store.begin().await?;
        let state = serde_json::to_string(&stored).expect("state serialises");
        // Another replica got there first: its pass did the same work.
        if !tx.update_request(&row.id, status, &state, request.next_deadline(), row.version, now).await? {
            continue;
        }
        let still_waiting = if request.status == Status::Pending { waiting_on(&request) } else { Vec::new() };
        tx.set_waiting(&row.id, &row.requester, request.created_ms, request.expires_ms, &still_waiting).await?;
        let notices = Notices { shared, stored: &stored, version, now_ms: now };
        for timer in timers {
            let (action, details) = match &timer {
                Timer::Expired => ("expired", json!({})),
                Timer::Reminder { slots } => ("reminded", json!({"slots": slots, "to": waiting_on(&request)})),
                Timer::Escalated { slot, deputies } => ("escalated", json!({"slot": slot, "deputies": deputies})),
            };
            tx.append_audit("dingguard", action, &row.id, details.clone(), now).await?;
            events::enqueue(&mut tx, action, &row.id, version, details, now).await?;
            match &timer {
                Timer::Expired => notices.tell_requester(&mut tx, &row.id, &row.requester, "expired").await?,
                Timer::Reminder { .. } => notices.ask(&mut tx, &request, &waiting_on(&request), Ask::Reminder).await?,
                Timer::Escalated { deputies, .. } => {
                    let to: Vec<String> =
                        deputies.iter().filter(|d| !request.decisions.iter().any(|x| &x.user == *d)).cloned().collect();
                    notices.ask(&mut tx, &request, &to, Ask::Escalated).await?;
                }
            }
        }
        tx.commit().await?;
        if let Some(outcome) = crate::metrics::Outcome::of(status) {
            shared.metrics.closed(outcome, request.created_ms, now);
        }
        tracing::info!(request = %row.id, %status, "deadlines applied");
    }
    Ok(())
}
