//! From a DingTalk (or our own integrations') payload to canonical events.

use dingguard_directory::Directory;
use serde_json::Value;

use crate::{Actor, CanonicalEvent, DeptChange, EventKind, FileRecord, Member};
use dingguard_dingtalk::{Field, Payload, fields};

pub use dingguard_dingtalk::EventPayloadError as NormaliseError;

pub(crate) const USERS: Field = fields::USER_ID;
/// DingTalk's cross-organisation ids, sent beside (or instead of) `userId`.
pub(crate) const UNIONS: Field = fields::UNION_ID;

pub(crate) struct Ctx<'a> {
    ce_id: &'a str,
    corp_id: Option<String>,
    occurred_at_ms: i64,
    time_from_receipt: bool,
    directory: &'a Directory,
}

impl Ctx<'_> {
    pub(crate) fn event(&self, actor: Option<&str>, kind: EventKind) -> CanonicalEvent {
        self.event_with_id(self.ce_id.to_owned(), actor, kind)
    }

    fn event_with_id(&self, id: String, actor: Option<&str>, kind: EventKind) -> CanonicalEvent {
        CanonicalEvent {
            id,
            corp_id: self.corp_id.clone(),
            occurred_at_ms: self.occurred_at_ms,
            time_from_receipt: self.time_from_receipt,
            group_alias: None,
            actor: actor.map(|a| Actor::resolve(a, self.directory, self.occurred_at_ms)),
            kind,
        }
    }

    /// The people a payload names by `userId` and by `unionId`. DingTalk sends the two lists in step, so a
    /// `unionId` counts only beyond the `userId`s (an outsider may come with a `unionId` alone). A `unionId` the
    /// directory knows becomes its person's `userId`; one it does not is kept as it is — an id the directory cannot
    /// vouch for, so an outsider, and never a reason to refuse the event.
    pub(crate) fn people(&self, p: &Payload<'_>, users: Field, unions: Field) -> Vec<String> {
        let by_user = p.id_list(users);
        let by_union = p.id_list(unions).into_iter().skip(by_user.len()).map(|u| self.person(u));
        dingguard_dingtalk::event::distinct(by_user.into_iter().chain(by_union))
    }

    /// One person named by `userId` (from `users`), else by `unionId` (from `unions`).
    pub(crate) fn one_person(&self, p: &Payload<'_>, users: Field, unions: Field) -> Option<String> {
        p.id(users).or_else(|| p.id(unions).map(|u| self.person(u)))
    }

    /// The `userId` of the person a `unionId` names, where the directory knows it.
    fn person(&self, union: String) -> String {
        self.directory.resolve_id(&union).map_or(union, ToString::to_string)
    }

    pub(crate) fn members(&self, ids: Vec<String>) -> Vec<Member> {
        let at = self.occurred_at_ms;
        ids.into_iter().map(|id| Member { affiliation: self.directory.classify_at(&id, None, at), id }).collect()
    }

    /// One event per user of a batch, each about (and acted by) that user.
    fn per_user(&self, users: Vec<(String, EventKind)>) -> Vec<CanonicalEvent> {
        let single = users.len() == 1;
        users
            .into_iter()
            .map(|(user, kind)| {
                let id = if single { self.ce_id.to_owned() } else { format!("{}:{user}", self.ce_id) };
                self.event_with_id(id, Some(&user), kind)
            })
            .collect()
    }
}

/// Turns one stored payload into the events it means.
///
/// `event_type` is the record's type as the receiver stored it; `received_ms` is when it was received (its
/// record's `ce_time` serves), used only when the payload states no believable time of its own. Times in
/// seconds are read as seconds. Unknown types become [`EventKind::Other`]; only a payload that is not a JSON object,
/// or a known type missing a field its meaning depends on, is an error.
pub fn normalise(
    event_type: &str,
    ce_id: &str,
    payload: &[u8],
    directory: &Directory,
    received_ms: i64,
) -> Result<Vec<CanonicalEvent>, NormaliseError> {
    let p = Payload::parse(event_type, payload)?;
    // Same preference and the same judgement as the receiver's, so the record's `ce_time` and this agree.
    let stated = p.millis(fields::EVENT_TIME);
    let (occurred_at_ms, source) = dingguard_model::event_time(stated, received_ms);
    let ctx = Ctx {
        ce_id,
        corp_id: p.text(fields::CORP_ID),
        occurred_at_ms,
        time_from_receipt: source == dingguard_model::TimeSource::Received,
        directory,
    };
    if let Some(event) = crate::chat::normalise(&ctx, &p, event_type)? {
        return Ok(vec![event]);
    }
    let users = || p.require_list(p.ids(USERS), fields::USER_ID);
    Ok(match event_type {
        "user_add_org" => {
            ctx.per_user(users()?.into_iter().map(|u| (u.clone(), EventKind::UserJoined { user: u })).collect())
        }
        "user_leave_org" => {
            ctx.per_user(users()?.into_iter().map(|u| (u.clone(), EventKind::UserLeft { user: u })).collect())
        }
        "org_admin_add" => {
            ctx.per_user(users()?.into_iter().map(|u| (u.clone(), EventKind::AdminRoleGranted { user: u })).collect())
        }
        "user_modify_org" => ctx.per_user(user_changes(&p)?),
        "org_dept_create" | "org_dept_modify" | "org_dept_remove" => {
            let change = match event_type {
                "org_dept_create" => DeptChange::Created,
                "org_dept_modify" => DeptChange::Modified,
                _ => DeptChange::Removed,
            };
            let dept_ids = p.require_list(p.ids(fields::DEPT_ID), fields::DEPT_ID)?;
            vec![ctx.event(None, EventKind::DepartmentChanged { change, dept_ids })]
        }
        "contact_add_org" => {
            let follower = p.id(fields::FOLLOWER_USER_ID);
            let kind = EventKind::ExternalContactAdded {
                contact_id: p.require(p.id(USERS), fields::USER_ID)?,
                name: p.text(fields::NAME),
                company: p.text(fields::COMPANY_NAME),
                follower: follower.clone(),
            };
            vec![ctx.event(follower.as_deref(), kind)]
        }
        "org_file_send_check" => vec![file_sent(&ctx, &p)?],
        "file_download" => {
            // The file audit log names the actor by `userId`; storage change events by `unionId`.
            let user = p.require(ctx.one_person(&p, USERS, UNIONS), fields::USER_ID)?;
            let kind = EventKind::FileDownloaded {
                user: user.clone(),
                chat_id: p.text(fields::CHAT),
                file_id: p.require(p.text(fields::FILE_ID), fields::FILE_ID)?,
                file_name: p.text(fields::FILE_NAME),
                space_id: p.text(fields::SPACE_ID),
                action_code: p.number(fields::ACTION),
                source: p.text(fields::SOURCE),
            };
            let mut event = ctx.event(Some(&user), kind);
            event.group_alias = crate::chat::group_alias(&p);
            vec![event]
        }
        moved if crate::FileMove::of_event_type(moved).is_some() => {
            let how = crate::FileMove::of_event_type(moved).expect("matched above");
            let user = p.require(ctx.one_person(&p, USERS, UNIONS), fields::USER_ID)?;
            let kind = EventKind::FileMoved {
                how,
                user: user.clone(),
                file_id: p.require(p.text(fields::FILE_ID), fields::FILE_ID)?,
                file_name: p.text(fields::FILE_NAME),
                space_id: p.text(fields::SPACE_ID),
                receiver: p.text(fields::RECEIVER_NAME),
                action_code: p.number(fields::ACTION),
                source: p.text(fields::SOURCE),
            };
            vec![ctx.event(Some(&user), kind)]
        }
        "directory_user" => {
            let user = p.require(p.id(USERS), fields::USER_ID)?;
            let kind = EventKind::UserSynced {
                user: user.clone(),
                name: p.text(fields::USER_NAME),
                departments: p.ids(fields::USER_DEPARTMENTS),
                manager: p.id(fields::USER_MANAGER),
                left_at_ms: p.number(fields::LEFT_AT_MS).filter(|_| p.raw(fields::ACTIVE) == Some(Value::Bool(false))),
                org_admin: p.raw(fields::ORG_ADMIN) == Some(Value::Bool(true)),
            };
            vec![ctx.event(Some(&user), kind)]
        }
        "directory_department" => {
            let kind = EventKind::DepartmentSynced {
                dept_id: p.require(p.id(fields::DEPT_ID), fields::DEPT_ID)?,
                name: p.text(fields::NAME),
                parent: p.id(fields::PARENT_ID),
                head: p.id(fields::DEPT_MANAGER),
                removed: p.raw(fields::REMOVED) == Some(Value::Bool(true)),
            };
            vec![ctx.event(None, kind)]
        }
        "file_download_request" => {
            let user = p.require(p.id(USERS), fields::USER_ID)?;
            let kind = EventKind::DownloadRequested {
                request_id: p.require(p.text(fields::REQUEST_ID), fields::REQUEST_ID)?,
                user: user.clone(),
                file_id: p.require(p.text(fields::FILE_ID), fields::FILE_ID)?,
                file_name: p.text(fields::FILE_NAME),
                space_id: p.text(fields::SPACE_ID),
                reason: p.text(fields::REASON),
            };
            vec![ctx.event(Some(&user), kind)]
        }
        "bpms_instance_change" => {
            let originator = p.text(fields::STAFF_ID);
            let kind = EventKind::ApprovalInstanceChanged {
                instance_id: p.require(p.text(fields::PROCESS_INSTANCE_ID), fields::PROCESS_INSTANCE_ID)?,
                process_code: p.text(fields::PROCESS_CODE),
                originator: originator.clone(),
                change_type: p.text(fields::TYPE),
                result: p.text(fields::RESULT),
            };
            vec![ctx.event(originator.as_deref(), kind)]
        }
        "bpms_task_change" => {
            let approver = p.text(fields::STAFF_ID);
            let kind = EventKind::ApprovalTaskChanged {
                instance_id: p.require(p.text(fields::PROCESS_INSTANCE_ID), fields::PROCESS_INSTANCE_ID)?,
                process_code: p.text(fields::PROCESS_CODE),
                task_id: p.text(fields::TASK_ID),
                approver: approver.clone(),
                change_type: p.text(fields::TYPE),
                result: p.text(fields::RESULT),
                remark: p.text(fields::REMARK),
            };
            vec![ctx.event(approver.as_deref(), kind)]
        }
        other => vec![ctx.event(None, EventKind::Other { event_type: other.to_owned() })],
    })
}

/// `diffInfo` is one object in the documented form; a list is accepted too. Each diff goes to the user it names,
/// and users without one still get an event with a null diff.
fn user_changes(p: &Payload<'_>) -> Result<Vec<(String, EventKind)>, NormaliseError> {
    let raw = p.raw(fields::DIFF_INFO);
    let diffs: Vec<&Value> = match &raw {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    let named = |d: &Value| fields::DIFF_USER_ID.text_in(d);
    let mut out: Vec<(String, Value)> = diffs.iter().filter_map(|d| Some((named(d)?, (*d).clone()))).collect();
    let anonymous = match diffs.as_slice() {
        [only] if named(only).is_none() => (*only).clone(),
        _ => Value::Null,
    };
    let with_diff: std::collections::HashSet<String> = out.iter().map(|(u, _)| u.clone()).collect();
    for user in p.ids(USERS) {
        if !with_diff.contains(&user) {
            out.push((user, anonymous.clone()));
        }
    }
    if out.is_empty() {
        return Err(p.missing(fields::USER_ID));
    }
    Ok(out.into_iter().map(|(user, diff)| (user.clone(), EventKind::UserChanged { user, diff })).collect())
}

fn file_sent(ctx: &Ctx<'_>, p: &Payload<'_>) -> Result<CanonicalEvent, NormaliseError> {
    let records: Vec<FileRecord> = match p.raw(fields::FILE_RECORDS) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| FileRecord {
                user: fields::RECORD_USER_ID.text_in(r),
                file_name: fields::RECORD_FILE_NAME.text_in(r),
                request_id: fields::RECORD_REQUEST_ID.text_in(r),
                conversation: fields::RECORD_CONVERSATION.text_in(r),
            })
            .collect(),
        _ => Vec::new(),
    };
    let records = p.require((!records.is_empty()).then_some(records), fields::FILE_RECORDS)?;
    // One sender is an actor; several senders in one detection leave it to the records.
    let first = records[0].user.clone();
    let actor = first.filter(|f| records.iter().all(|r| r.user.as_ref() == Some(f)));
    Ok(ctx.event(actor.as_deref(), EventKind::FileSent { records }))
}
