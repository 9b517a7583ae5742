//! DingTalk pushes no group-creation event, so a group's creation is inferred the first time it is seen.

use std::collections::{HashMap, HashSet};

use dingguard_directory::Directory;

use crate::{CanonicalEvent, EventKind, NormaliseError, normalise};

/// Remembers which groups have been seen, and which ids name the same group. A store-backed implementation makes
/// inference survive restarts.
pub trait GroupTracker {
    /// Marks the group seen and says whether this was the first time.
    fn first_seen(&mut self, corp: &str, chat_id: &str) -> bool;

    /// The `chatId` of the group `id` names, when `id` is one of its other ids (an `openConversationId`).
    fn canonical(&self, id: &str) -> Option<String> {
        let _ = id;
        None
    }

    /// Learns, from an event that carried both, that `other` names the group `chat_id` names.
    fn learn_alias(&mut self, corp: &str, chat_id: &str, other: &str) {
        let _ = (corp, chat_id, other);
    }
}

/// One thing a tracker remembers, as it is saved: a group seen (`seen`, key `<corp>␟<chat>`), or another id of a
/// group (`alias`, key the other id, value the `chatId`).
pub type TrackedRow = (&'static str, String, String);

/// Grows with the number of groups (a few bytes each). Saved row by row ([`InMemoryGroupTracker::take_changed`]),
/// so a consumer does not re-infer every group's creation after a restart.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct InMemoryGroupTracker {
    seen: HashMap<String, HashSet<String>>,
    #[serde(default)]
    aliases: HashMap<String, String>,
    #[serde(skip)]
    changed: Vec<TrackedRow>,
    /// Aliases learned since the last [`InMemoryGroupTracker::take_learned`]: (other id, chatId).
    #[serde(skip)]
    learned: Vec<(String, String)>,
}

impl GroupTracker for InMemoryGroupTracker {
    fn first_seen(&mut self, corp: &str, chat_id: &str) -> bool {
        if self.seen.get(corp).is_some_and(|chats| chats.contains(chat_id)) {
            return false;
        }
        self.changed.push(("seen", format!("{corp}\u{1f}{chat_id}"), String::new()));
        self.seen.entry(corp.to_owned()).or_default().insert(chat_id.to_owned())
    }

    fn canonical(&self, id: &str) -> Option<String> {
        self.aliases.get(id).cloned()
    }

    fn learn_alias(&mut self, corp: &str, chat_id: &str, other: &str) {
        if other == chat_id || self.aliases.get(other).is_some_and(|known| known == chat_id) {
            return;
        }
        self.aliases.insert(other.to_owned(), chat_id.to_owned());
        self.changed.push(("alias", other.to_owned(), chat_id.to_owned()));
        self.learned.push((other.to_owned(), chat_id.to_owned()));
        // A group first seen under its other id is not new when it shows up under its chatId.
        if self.seen.get(corp).is_some_and(|chats| chats.contains(other)) {
            self.first_seen(corp, chat_id);
        }
    }
}

impl InMemoryGroupTracker {
    /// Pairs of ids learned since the last call, (other id, chatId): what was kept under the other id before the
    /// pair was known (rule windows, a title) belongs to the chatId now.
    pub fn take_learned(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.learned)
    }

    /// What changed since the last call, to save.
    pub fn take_changed(&mut self) -> Vec<TrackedRow> {
        std::mem::take(&mut self.changed)
    }

    /// Puts back one saved row; an unknown kind is ignored.
    pub fn restore(&mut self, kind: &str, key: &str, value: &str) {
        match kind {
            "seen" => {
                if let Some((corp, chat)) = key.split_once('\u{1f}') {
                    self.seen.entry(corp.to_owned()).or_default().insert(chat.to_owned());
                }
            }
            "alias" => {
                self.aliases.insert(key.to_owned(), value.to_owned());
            }
            _ => {}
        }
    }

    /// Everything, as rows: for moving a whole saved tracker of the earlier layout into rows.
    pub fn all_rows(&self) -> Vec<TrackedRow> {
        let seen = self
            .seen
            .iter()
            .flat_map(|(corp, chats)| chats.iter().map(move |c| ("seen", format!("{corp}\u{1f}{c}"), String::new())));
        seen.chain(self.aliases.iter().map(|(k, v)| ("alias", k.clone(), v.clone()))).collect()
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
    for mut event in events {
        let corp = event.corp_id.clone().unwrap_or_default();
        // One group, one id: learn the pair where an event names both, then call the group by its chatId.
        if let (Some(other), Some(chat)) = (event.group_alias.clone(), event.kind.chat_id()) {
            tracker.learn_alias(&corp, chat, &other);
        }
        if let Some(chat) = event.kind.chat_id_mut()
            && let Some(canonical) = tracker.canonical(chat)
        {
            *chat = canonical;
        }
        let corp = corp.as_str();
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
        group_alias: None,
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
