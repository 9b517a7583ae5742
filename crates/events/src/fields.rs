//! The flat, dotted view of an event that rules are written against. See [`crate::field_catalog`].

use std::borrow::Cow;

use dingguard_directory::Affiliation;
use dingguard_rules::{FieldValue, Fields};
use serde_json::{Map, Value};
use time::{OffsetDateTime, UtcOffset, macros::offset};

use crate::catalog::{Field, field_catalog};
use crate::{Actor, CanonicalEvent, EventKind, MAX_MEMBERS, Member};

/// Macau keeps UTC+8 all year, so a fixed offset is exact.
const MACAU: UtcOffset = offset!(+8);

/// Fills an event's record; text is borrowed from the event, never copied.
struct Writer<'a>(Fields<'a>);

impl<'a> Writer<'a> {
    fn text(&mut self, field: Field, value: &'a str) {
        self.0.set(field.slot(), FieldValue::Text(Cow::Borrowed(value)));
    }
    fn opt(&mut self, field: Field, value: Option<&'a String>) {
        if let Some(value) = value {
            self.text(field, value);
        }
    }
    fn number(&mut self, field: Field, value: i64) {
        self.0.set(field.slot(), FieldValue::Number(value));
    }
    fn flag(&mut self, field: Field, value: bool) {
        self.0.set(field.slot(), FieldValue::Bool(value));
    }
    fn list(&mut self, field: Field, values: impl IntoIterator<Item = &'a str>) {
        self.0.set(field.slot(), FieldValue::List(values.into_iter().map(Cow::Borrowed).collect()));
    }

    fn actor(&mut self, actor: &'a Actor) {
        self.text(Field::ActorId, &actor.id);
        self.text(Field::ActorAffiliation, actor.affiliation.as_str());
        let Some(active) = actor.active else { return };
        self.flag(Field::ActorActive, active);
        self.opt(Field::ActorDepartment, actor.departments.first());
        self.list(Field::ActorDepartments, actor.departments.iter().map(String::as_str));
        self.list(Field::ActorRoles, actor.roles.iter().map(|r| r.as_str()));
        if let Some(at) = actor.left_at_ms {
            self.number(Field::ActorLeftAtMs, at);
        }
        self.flag(Field::ActorListedAsLeft, actor.listed_as_left);
    }

    /// Counts over every member; id lists of at most [`MAX_MEMBERS`] each.
    fn members(&mut self, members: &'a [Member]) {
        let with = |a: Affiliation| members.iter().filter(move |m| m.affiliation == a).map(|m| m.id.as_str());
        let capped = |ids: &mut dyn Iterator<Item = &'a str>| ids.take(MAX_MEMBERS).collect::<Vec<_>>();
        self.list(Field::MembersIds, capped(&mut members.iter().map(|m| m.id.as_str())));
        self.number(Field::MembersCount, members.len() as i64);
        if members.len() > MAX_MEMBERS {
            self.number(Field::MembersOmitted, (members.len() - MAX_MEMBERS) as i64);
        }
        self.list(Field::MembersExternalIds, capped(&mut with(Affiliation::External)));
        self.number(Field::MembersExternalCount, with(Affiliation::External).count() as i64);
        self.list(Field::MembersTrustedExternalIds, capped(&mut with(Affiliation::TrustedExternal)));
        self.number(Field::MembersTrustedExternalCount, with(Affiliation::TrustedExternal).count() as i64);
    }

    fn file(&mut self, id: &'a str, name: Option<&'a String>, space: Option<&'a String>) {
        self.text(Field::FileId, id);
        self.opt(Field::FileName, name);
        self.opt(Field::FileSpace, space);
        let extension = name.and_then(|n| n.rsplit_once('.')).map(|(_, ext)| ext);
        if let Some(ext) = extension.filter(|e| !e.is_empty() && !e.contains(['/', '\\'])) {
            // Most extensions are already lower case: borrow those.
            let ext =
                if ext.chars().any(char::is_uppercase) { Cow::Owned(ext.to_lowercase()) } else { Cow::Borrowed(ext) };
            self.0.set(Field::FileExtension.slot(), FieldValue::Text(ext));
        }
    }

    fn approval(
        &mut self,
        instance: &'a str,
        process: Option<&'a String>,
        change: Option<&'a String>,
        result: Option<&'a String>,
    ) {
        self.text(Field::ApprovalInstanceId, instance);
        self.opt(Field::ApprovalProcessCode, process);
        self.opt(Field::ApprovalChange, change);
        self.opt(Field::ApprovalResult, result);
    }

    fn time(&mut self, ms: i64) {
        self.number(Field::TimeMs, ms);
        let local = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map(|t| t.to_offset(MACAU));
        if let Ok(local) = local {
            self.number(Field::TimeHour, i64::from(local.hour()));
            self.number(Field::TimeWeekday, i64::from(local.weekday().number_from_monday()));
        }
    }
}

/// A record with names, as stored next to an alert and shown to people.
pub fn fields_to_json(fields: &Fields<'_>) -> Map<String, Value> {
    fields.iter().map(|(slot, value)| (field_catalog()[slot.index()].0.to_owned(), value.to_json())).collect()
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
    /// The event as rules see it, in the slots of [`crate::rule_catalog`]: absent rather than null when unknown,
    /// each value of its catalog type. Text borrows from the event.
    pub fn fields(&self) -> Fields<'_> {
        let mut f = Writer(Fields::with_slots(Field::ALL.len()));
        f.text(Field::EventType, self.kind.name());
        f.text(Field::EventId, &self.id);
        f.opt(Field::CorpId, self.corp_id.as_ref());
        f.time(self.occurred_at_ms);
        if self.time_from_receipt {
            f.flag(Field::TimeFromReceipt, true);
        }
        if let Some(actor) = &self.actor {
            f.actor(actor);
        }
        match &self.kind {
            EventKind::GroupCreated { chat_id, title, owner, members, inferred } => {
                f.text(Field::GroupId, chat_id);
                f.opt(Field::GroupTitle, title.as_ref());
                f.opt(Field::GroupOwner, owner.as_ref());
                f.flag(Field::GroupInferred, *inferred);
                f.members(members);
            }
            EventKind::MembersAdded { chat_id, members, .. } | EventKind::MembersRemoved { chat_id, members, .. } => {
                f.text(Field::GroupId, chat_id);
                f.members(members);
            }
            EventKind::MemberQuit { chat_id, .. } | EventKind::GroupDisbanded { chat_id, .. } => {
                f.text(Field::GroupId, chat_id);
            }
            EventKind::GroupOwnerChanged { chat_id, new_owner } => {
                f.text(Field::GroupId, chat_id);
                f.text(Field::GroupOwner, new_owner);
            }
            EventKind::GroupRenamed { chat_id, title, .. } => {
                f.text(Field::GroupId, chat_id);
                f.text(Field::GroupTitle, title);
            }
            EventKind::ExternalContactAdded { contact_id, name, company, .. } => {
                f.text(Field::ContactId, contact_id);
                f.opt(Field::ContactName, name.as_ref());
                f.opt(Field::ContactCompany, company.as_ref());
            }
            EventKind::UserChanged { diff, .. } => f.list(Field::UserChangedFields, changed_fields(diff)),
            EventKind::DepartmentChanged { change, dept_ids } => {
                f.text(Field::DepartmentChange, change.as_str());
                f.list(Field::DepartmentIds, dept_ids.iter().map(String::as_str));
            }
            EventKind::FileDownloaded { chat_id, file_id, file_name, space_id, action_code, source, .. } => {
                f.file(file_id, file_name.as_ref(), space_id.as_ref());
                f.opt(Field::GroupId, chat_id.as_ref());
                if let Some(action) = action_code {
                    f.number(Field::FileAction, *action);
                }
                f.opt(Field::FileSource, source.as_ref());
            }
            EventKind::FileMoved { file_id, file_name, space_id, receiver, action_code, source, .. } => {
                f.file(file_id, file_name.as_ref(), space_id.as_ref());
                f.opt(Field::FileReceiver, receiver.as_ref());
                if let Some(action) = action_code {
                    f.number(Field::FileAction, *action);
                }
                f.opt(Field::FileSource, source.as_ref());
            }
            EventKind::FileSent { records } => {
                f.list(Field::FileNames, records.iter().filter_map(|r| r.file_name.as_deref()));
                f.number(Field::FileCount, records.len() as i64);
                let mut seen = std::collections::HashSet::new();
                f.list(
                    Field::FileSenders,
                    records.iter().filter_map(|r| r.user.as_deref()).filter(|u| seen.insert(*u)),
                );
                f.list(Field::FileRequestIds, records.iter().filter_map(|r| r.request_id.as_deref()));
                f.list(Field::FileConversations, records.iter().filter_map(|r| r.conversation.as_deref()));
            }
            EventKind::DownloadRequested { request_id, file_id, file_name, space_id, reason, .. } => {
                f.text(Field::RequestId, request_id);
                f.opt(Field::RequestReason, reason.as_ref());
                f.file(file_id, file_name.as_ref(), space_id.as_ref());
            }
            EventKind::ApprovalInstanceChanged { instance_id, process_code, change_type, result, .. } => {
                f.approval(instance_id, process_code.as_ref(), change_type.as_ref(), result.as_ref());
            }
            EventKind::ApprovalTaskChanged {
                instance_id, process_code, task_id, change_type, result, remark, ..
            } => {
                f.approval(instance_id, process_code.as_ref(), change_type.as_ref(), result.as_ref());
                f.opt(Field::ApprovalTaskId, task_id.as_ref());
                f.opt(Field::ApprovalRemark, remark.as_ref());
            }
            EventKind::Other { event_type } => f.text(Field::EventRawType, event_type),
            EventKind::DepartmentSynced { dept_id, .. } => f.list(Field::DepartmentIds, [dept_id.as_str()]),
            EventKind::UserJoined { .. }
            | EventKind::UserLeft { .. }
            | EventKind::AdminRoleGranted { .. }
            | EventKind::UserSynced { .. } => {}
        }
        f.0
    }
}
