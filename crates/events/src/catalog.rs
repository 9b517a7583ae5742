/// The field types are the rule engine's own, so the catalog is handed to it as it is.
pub use dingguard_rules::FieldType;

use FieldType::{Bool, Number, String as Text, StringList};

const CATALOG: &[(&str, FieldType)] = &[
    ("event.type", Text),
    ("event.id", Text),
    ("event.raw_type", Text),
    ("corp.id", Text),
    ("time.ms", Number),
    ("time.hour", Number),
    ("time.weekday", Number),
    ("actor.id", Text),
    ("actor.affiliation", Text),
    ("actor.department", Text),
    ("actor.departments", StringList),
    ("actor.roles", StringList),
    ("actor.active", Bool),
    ("actor.left_at_ms", Number),
    ("group.id", Text),
    ("group.title", Text),
    ("group.owner", Text),
    ("group.inferred", Bool),
    ("members.ids", StringList),
    ("members.count", Number),
    ("members.external_ids", StringList),
    ("members.external_count", Number),
    ("members.trusted_external_ids", StringList),
    ("members.trusted_external_count", Number),
    ("contact.id", Text),
    ("contact.name", Text),
    ("contact.company", Text),
    ("user.changed_fields", StringList),
    ("department.change", Text),
    ("department.ids", StringList),
    ("file.id", Text),
    ("file.name", Text),
    ("file.extension", Text),
    ("file.space", Text),
    ("file.action", Number),
    ("file.source", Text),
    ("file.names", StringList),
    ("file.count", Number),
    ("file.request_ids", StringList),
    ("file.conversations", StringList),
    ("request.id", Text),
    ("request.reason", Text),
    ("approval.instance_id", Text),
    ("approval.process_code", Text),
    ("approval.change", Text),
    ("approval.result", Text),
    ("approval.task_id", Text),
    ("approval.remark", Text),
];

/// Every field any event can carry, with its type, so a rule naming an unknown field or comparing a field with
/// the wrong kind of value is refused when it is loaded.
///
/// A field is absent, never null, when an event has no value for it; rules test presence with `exists`.
///
/// | field | type | present on |
/// |---|---|---|
/// | `event.type` | string | every event: the snake_case kind, see [`event_types`] |
/// | `event.id` | string | every event: the `ce_id`, suffixed when a payload yields several events |
/// | `event.raw_type` | string | `other`: the DingTalk (or our) event type that has no meaning here yet |
/// | `corp.id` | string | events whose payload names the organisation |
/// | `time.ms` | number | every event: when it happened, ms since the epoch |
/// | `time.hour` | number | every event: 0–23, Macau time (UTC+8, no daylight saving) |
/// | `time.weekday` | number | every event: 1 Monday … 7 Sunday, Macau time |
/// | `actor.id` | string | events with an actor: who acted, else whom the event is about |
/// | `actor.affiliation` | string | with an actor: `internal`, `trusted_external` or `external` |
/// | `actor.department`, `actor.departments` | string, list | with an actor the directory knows: primary, all |
/// | `actor.roles` | list | with an actor the directory knows: `dpo`, `security`, `admin`, `approver` |
/// | `actor.active` | bool | with an actor the directory knows: false once they have left |
/// | `actor.left_at_ms` | number | with an actor who has left |
/// | `group.id` | string | every group event; `file_downloaded` when the file came from a group |
/// | `group.title` | string | `group_created` (when known), `group_renamed` |
/// | `group.owner` | string | `group_created` (when known), `group_owner_changed` (the new owner) |
/// | `group.inferred` | bool | `group_created`: true when inferred from a first membership event |
/// | `members.ids`, `members.count` | list, number | `group_created`, `members_added`, `members_removed` |
/// | `members.external_ids`, `members.external_count` | list, number | same: members the directory cannot vouch for |
/// | `members.trusted_external_ids`, `…_count` | list, number | same: members from a trusted partner |
/// | `contact.id`, `contact.name`, `contact.company` | string | `external_contact_added` |
/// | `user.changed_fields` | list | `user_changed`: the keys of `diffInfo.curr`/`prev`, never their values |
/// | `department.change`, `department.ids` | string, list | `department_changed` |
/// | `file.id`, `file.name`, `file.extension`, `file.space` | string | `file_downloaded`, `download_requested` |
/// | `file.action`, `file.source` | number, string | `file_downloaded`: audit-log action code, producer |
/// | `file.names`, `file.count`, `file.request_ids`, `file.conversations` | list, number, list, list | `file_sent` |
/// | `request.id`, `request.reason` | string | `download_requested` |
/// | `approval.instance_id`, `.process_code`, `.change`, `.result` | string | both approval kinds |
/// | `approval.task_id`, `approval.remark` | string | `approval_task_changed` |
///
/// `file.extension` is the lower-cased text after the last dot of the file name.
pub fn field_catalog() -> &'static [(&'static str, FieldType)] {
    CATALOG
}

/// Every value of `event.type`, for checking a rule's `when`.
pub fn event_types() -> &'static [&'static str] {
    &[
        "group_created",
        "members_added",
        "members_removed",
        "member_quit",
        "group_disbanded",
        "group_owner_changed",
        "group_renamed",
        "external_contact_added",
        "user_joined",
        "user_left",
        "user_changed",
        "department_changed",
        "file_downloaded",
        "file_sent",
        "download_requested",
        "approval_instance_changed",
        "approval_task_changed",
        "admin_role_granted",
        "other",
    ]
}
