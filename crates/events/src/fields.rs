//! The flat, dotted view of an event that rules are written against. See [`crate::field_catalog`].

use dingguard_directory::Affiliation;
use serde_json::{Map, Value};
use time::{OffsetDateTime, UtcOffset, macros::offset};

use crate::{Actor, CanonicalEvent, EventKind, Member};

/// Macau keeps UTC+8 all year, so a fixed offset is exact.
const MACAU: UtcOffset = offset!(+8);

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn text(&mut self, key: &str, value: &str) {
        self.0.insert(key.to_owned(), Value::from(value));
    }
    fn opt(&mut self, key: &str, value: Option<&String>) {
        if let Some(value) = value {
            self.text(key, value);
        }
    }
    fn number(&mut self, key: &str, value: i64) {
        self.0.insert(key.to_owned(), Value::from(value));
    }
    fn flag(&mut self, key: &str, value: bool) {
        self.0.insert(key.to_owned(), Value::Bool(value));
    }
    fn list<'a>(&mut self, key: &str, values: impl IntoIterator<Item = &'a str>) {
        self.0.insert(key.to_owned(), values.into_iter().map(Value::from).collect());
    }

    fn actor(&mut self, actor: &Actor) {
        self.text("actor.id", &actor.id);
        self.text("actor.affiliation", actor.affiliation.as_str());
        let Some(active) = actor.active else { return };
        self.flag("actor.active", active);
        self.opt("actor.department", actor.departments.first());
        self.list("actor.departments", actor.departments.iter().map(String::as_str));
        self.list("actor.roles", actor.roles.iter().map(|r| r.as_str()));
        if let Some(at) = actor.left_at_ms {
            self.number("actor.left_at_ms", at);
        }
    }

    fn members(&mut self, members: &[Member]) {
        let with = |a: Affiliation| members.iter().filter(move |m| m.affiliation == a).map(|m| m.id.as_str());
        self.list("members.ids", members.iter().map(|m| m.id.as_str()));
        self.number("members.count", members.len() as i64);
        self.list("members.external_ids", with(Affiliation::External));
        self.number("members.external_count", with(Affiliation::External).count() as i64);
        self.list("members.trusted_external_ids", with(Affiliation::TrustedExternal));
        self.number("members.trusted_external_count", with(Affiliation::TrustedExternal).count() as i64);
    }

    fn file(&mut self, id: &str, name: Option<&String>, space: Option<&String>) {
        self.text("file.id", id);
        self.opt("file.name", name);
        self.opt("file.space", space);
        let extension = name.and_then(|n| n.rsplit_once('.')).map(|(_, ext)| ext.to_lowercase());
        self.opt("file.extension", extension.filter(|e| !e.is_empty() && !e.contains(['/', '\\'])).as_ref());
    }

    fn approval(&mut self, instance: &str, process: Option<&String>, change: Option<&String>, result: Option<&String>) {
        self.text("approval.instance_id", instance);
        self.opt("approval.process_code", process);
        self.opt("approval.change", change);
        self.opt("approval.result", result);
    }

    fn time(&mut self, ms: i64) {
        self.number("time.ms", ms);
        let local = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map(|t| t.to_offset(MACAU));
        if let Ok(local) = local {
            self.number("time.hour", i64::from(local.hour()));
            self.number("time.weekday", i64::from(local.weekday().number_from_monday()));
        }
    }
}

/// The keys of a `diffInfo`'s `curr` and `prev`: what changed, without copying personal data into rule input.
fn changed_fields(diff: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = ["curr", "prev"]
        .iter()
        .filter_map(|side| diff.get(side).and_then(Value::as_object))
        .flat_map(|side| side.keys().map(String::as_str))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

impl CanonicalEvent {
    /// The event as rules see it: dotted keys, absent rather than null when unknown. Every key is in
    /// [`crate::field_catalog`] with the type it has here.
    pub fn fields(&self) -> Map<String, Value> {
        let mut f = Fields::default();
        f.text("event.type", self.kind.name());
        f.text("event.id", &self.id);
        f.opt("corp.id", self.corp_id.as_ref());
        f.time(self.occurred_at_ms);
        if let Some(actor) = &self.actor {
            f.actor(actor);
        }
        match &self.kind {
            EventKind::GroupCreated { chat_id, title, owner, members, inferred } => {
                f.text("group.id", chat_id);
                f.opt("group.title", title.as_ref());
                f.opt("group.owner", owner.as_ref());
                f.flag("group.inferred", *inferred);
                f.members(members);
            }
            EventKind::MembersAdded { chat_id, members, .. } | EventKind::MembersRemoved { chat_id, members, .. } => {
                f.text("group.id", chat_id);
                f.members(members);
            }
            EventKind::MemberQuit { chat_id, .. } | EventKind::GroupDisbanded { chat_id, .. } => {
                f.text("group.id", chat_id);
            }
            EventKind::GroupOwnerChanged { chat_id, new_owner } => {
                f.text("group.id", chat_id);
                f.text("group.owner", new_owner);
            }
            EventKind::GroupRenamed { chat_id, title, .. } => {
                f.text("group.id", chat_id);
                f.text("group.title", title);
            }
            EventKind::ExternalContactAdded { contact_id, name, company, .. } => {
                f.text("contact.id", contact_id);
                f.opt("contact.name", name.as_ref());
                f.opt("contact.company", company.as_ref());
            }
            EventKind::UserChanged { diff, .. } => f.list("user.changed_fields", changed_fields(diff)),
            EventKind::DepartmentChanged { change, dept_ids } => {
                f.text("department.change", change.as_str());
                f.list("department.ids", dept_ids.iter().map(String::as_str));
            }
            EventKind::FileDownloaded { chat_id, file_id, file_name, space_id, action_code, source, .. } => {
                f.file(file_id, file_name.as_ref(), space_id.as_ref());
                f.opt("group.id", chat_id.as_ref());
                if let Some(action) = action_code {
                    f.number("file.action", *action);
                }
                f.opt("file.source", source.as_ref());
            }
            EventKind::FileSent { records } => {
                f.list("file.names", records.iter().filter_map(|r| r.file_name.as_deref()));
                f.number("file.count", records.len() as i64);
                f.list("file.request_ids", records.iter().filter_map(|r| r.request_id.as_deref()));
                f.list("file.conversations", records.iter().filter_map(|r| r.conversation.as_deref()));
            }
            EventKind::DownloadRequested { request_id, file_id, file_name, space_id, reason, .. } => {
                f.text("request.id", request_id);
                f.opt("request.reason", reason.as_ref());
                f.file(file_id, file_name.as_ref(), space_id.as_ref());
            }
            EventKind::ApprovalInstanceChanged { instance_id, process_code, change_type, result, .. } => {
                f.approval(instance_id, process_code.as_ref(), change_type.as_ref(), result.as_ref());
            }
            EventKind::ApprovalTaskChanged {
                instance_id, process_code, task_id, change_type, result, remark, ..
            } => {
                f.approval(instance_id, process_code.as_ref(), change_type.as_ref(), result.as_ref());
                f.opt("approval.task_id", task_id.as_ref());
                f.opt("approval.remark", remark.as_ref());
            }
            EventKind::Other { event_type } => f.text("event.raw_type", event_type),
            EventKind::UserJoined { .. } | EventKind::UserLeft { .. } | EventKind::AdminRoleGranted { .. } => {}
        }
        f.0
    }
}
