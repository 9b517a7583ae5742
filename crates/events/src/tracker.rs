//! DingTalk pushes no group-creation event, so a group's creation is inferred the first time it is seen.

use std::collections::{HashMap, HashSet};

use dingguard_directory::Directory;

use crate::{CanonicalEvent, EventKind, NormaliseError, normalise};

/// Remembers which groups have been seen. A store-backed implementation makes inference survive restarts.
pub trait GroupTracker {
    /// Marks the group seen and says whether this was the first time.
    fn first_seen(&mut self, corp: &str, chat_id: &str) -> bool;
}

/// Grows with the number of groups (a few bytes each). Serialisable, so a consumer can save it with its other
/// state and not re-infer every group's creation after a restart.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct InMemoryGroupTracker {
    seen: HashMap<String, HashSet<String>>,
}

impl GroupTracker for InMemoryGroupTracker {
    fn first_seen(&mut self, corp: &str, chat_id: &str) -> bool {
        if self.seen.get(corp).is_some_and(|chats| chats.contains(chat_id)) {
            return false;
        }
        self.seen.entry(corp.to_owned()).or_default().insert(chat_id.to_owned())
    }
}

/// [`normalise`], plus a `GroupCreated { inferred: true }` ahead of the first membership event (members added or
/// removed, a member quitting) of a group no `chat_create` introduced. The inferred event's id is
/// `<ce_id>:group_created`, so a redelivered record infers the same event rather than a second creation.
pub fn normalise_with_tracker<T: GroupTracker + ?Sized>(
    event_type: &str,
    ce_id: &str,
    payload: &[u8],
    directory: &Directory,
    received_ms: i64,
    tracker: &mut T,
) -> Result<Vec<CanonicalEvent>, NormaliseError> {
    let events = normalise(event_type, ce_id, payload, directory, received_ms)?;
    let mut out = Vec::with_capacity(events.len() + 1);
    for event in events {
        let corp = event.corp_id.as_deref().unwrap_or_default();
        match &event.kind {
            EventKind::GroupCreated { chat_id, .. } => {
                tracker.first_seen(corp, chat_id);
            }
            kind => {
                if let Some(chat_id) = kind.membership_chat()
                    && tracker.first_seen(corp, chat_id)
                {
                    out.push(inferred_creation(&event, chat_id));
                }
            }
        }
        out.push(event);
    }
    Ok(out)
}

fn inferred_creation(event: &CanonicalEvent, chat_id: &str) -> CanonicalEvent {
    // Only an addition says who is in the group; after a removal or a quit the remaining members are unknown.
    let members = match &event.kind {
        EventKind::MembersAdded { members, .. } => members.clone(),
        _ => Vec::new(),
    };
    CanonicalEvent {
        id: format!("{}:group_created", event.id),
        corp_id: event.corp_id.clone(),
        occurred_at_ms: event.occurred_at_ms,
        time_from_receipt: event.time_from_receipt,
        actor: event.actor.clone(),
        kind: EventKind::GroupCreated {
            chat_id: chat_id.to_owned(),
            title: None,
            owner: None,
            members,
            inferred: true,
        },
    }
}
