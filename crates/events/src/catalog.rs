/// The field types are the rule engine's own, so the catalog is handed to it as it is.
pub use dingguard_rules::FieldType;

use FieldType::{Bool, Number, String as Text, StringList};
use dingguard_rules::Slot;

/// Declares [`Field`] and the catalog together, so a field's slot and its catalog position cannot drift apart.
macro_rules! fields {
    ($($variant:ident = $name:literal : $kind:ident,)*) => {
        /// Every field rules can read; its discriminant is its slot in [`field_catalog`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Field {
            $($variant,)*
        }

        const CATALOG: &[(&str, FieldType)] = &[$(($name, $kind),)*];

        impl Field {
            pub const ALL: &[Field] = &[$(Field::$variant,)*];
        }
    };
}

fields! {
    EventType = "event.type": Text,
    EventId = "event.id": Text,
    EventRawType = "event.raw_type": Text,
    CorpId = "corp.id": Text,
    TimeMs = "time.ms": Number,
    TimeHour = "time.hour": Number,
    TimeWeekday = "time.weekday": Number,
    TimeFromReceipt = "time.from_receipt": Bool,
    ActorId = "actor.id": Text,
    ActorAffiliation = "actor.affiliation": Text,
    ActorDepartment = "actor.department": Text,
    ActorDepartments = "actor.departments": StringList,
    ActorRoles = "actor.roles": StringList,
    ActorActive = "actor.active": Bool,
    ActorLeftAtMs = "actor.left_at_ms": Number,
    ActorListedAsLeft = "actor.listed_as_left": Bool,
    GroupId = "group.id": Text,
    GroupTitle = "group.title": Text,
    GroupOwner = "group.owner": Text,
    GroupInferred = "group.inferred": Bool,
    MembersIds = "members.ids": StringList,
    MembersCount = "members.count": Number,
    MembersOmitted = "members.omitted": Number,
    MembersExternalIds = "members.external_ids": StringList,
    MembersExternalCount = "members.external_count": Number,
    MembersTrustedExternalIds = "members.trusted_external_ids": StringList,
    MembersTrustedExternalCount = "members.trusted_external_count": Number,
    ContactId = "contact.id": Text,
    ContactName = "contact.name": Text,
    ContactCompany = "contact.company": Text,
    UserChangedFields = "user.changed_fields": StringList,
    DepartmentChange = "department.change": Text,
    DepartmentIds = "department.ids": StringList,
    FileId = "file.id": Text,
    FileName = "file.name": Text,
    FileExtension = "file.extension": Text,
    FileSpace = "file.space": Text,
    FileAction = "file.action": Number,
    FileSource = "file.source": Text,
    FileReceiver = "file.receiver": Text,
    FileNames = "file.names": StringList,
    FileCount = "file.count": Number,
    FileSenders = "file.senders": StringList,
    FileRequestIds = "file.request_ids": StringList,
    FileConversations = "file.conversations": StringList,
    RequestId = "request.id": Text,
    RequestReason = "request.reason": Text,
    ApprovalInstanceId = "approval.instance_id": Text,
    ApprovalProcessCode = "approval.process_code": Text,
    ApprovalChange = "approval.change": Text,
    ApprovalResult = "approval.result": Text,
    ApprovalTaskId = "approval.task_id": Text,
    ApprovalRemark = "approval.remark": Text,
    // Set by the consumer's enrichment, never by `CanonicalEvent::fields`: facts one payload cannot know.
    FileSensitive = "file.sensitive": Bool,
    FileGranted = "file.granted": Bool,
    FileGrantMismatch = "file.grant_mismatch": Bool,
    GroupPersonalData = "group.personal_data": Bool,
    EventLate = "event.late": Bool,
}

/// How late an event may be judged and still see everything it would have seen on time: the directory keeps each
/// person's changes this long, the alerter loads grants this far back, and no rule window is longer. Older events
/// are still judged, with `event.late`.
pub const LATE_AFTER_MS: i64 = dingguard_directory::HISTORY_RETENTION_MS;

impl Field {
    pub const fn slot(self) -> Slot {
        Slot::new(self as usize)
    }

    pub fn name(self) -> &'static str {
        CATALOG[self as usize].0
    }

    pub fn kind(self) -> FieldType {
        CATALOG[self as usize].1
    }
}

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
/// | `time.from_receipt` | bool | events whose payload stated no believable time (none, before 2000, more than a day ahead): `time.*` is when dingguard received them |
/// | `actor.id` | string | events with an actor: who acted, else whom the event is about |
/// | `actor.affiliation` | string | with an actor: `internal`, `trusted_external` or `external` |
/// | `actor.department`, `actor.departments` | string, list | with an actor the directory knows: primary, all |
/// | `actor.roles` | list | with an actor the directory knows: `dpo`, `security`, `admin`, `approver` |
/// | `actor.active` | bool | with an actor the directory knows: false once they have left |
/// | `actor.left_at_ms` | number | with an actor who has left |
/// | `actor.listed_as_left` | bool | with an actor the directory knows: the directory file itself records them as gone by the event's time |
/// | `group.id` | string | every group event; `file_downloaded` when the file came from a group |
/// | `group.title` | string | `group_created` (when known), `group_renamed` |
/// | `group.owner` | string | `group_created` (when known), `group_owner_changed` (the new owner) |
/// | `group.inferred` | bool | `group_created`: true when inferred from a first membership event |
/// | `members.ids`, `members.count` | list, number | `group_created`, `members_added`, `members_removed`: the ids (at most 10,000 a list) and how many the event named in all |
/// | `members.omitted` | number | same, when the event named more than 10,000: how many the id lists leave out |
/// | `members.external_ids`, `members.external_count` | list, number | same: members the directory cannot vouch for |
/// | `members.trusted_external_ids`, `…_count` | list, number | same: members from a trusted partner |
/// | `contact.id`, `contact.name`, `contact.company` | string | `external_contact_added` |
/// | `user.changed_fields` | list | `user_changed`: the keys of `diffInfo.curr`/`prev`, never their values |
/// | `department.change`, `department.ids` | string, list | `department_changed`; `department.ids` also `department_synced` |
/// | `file.id`, `file.name`, `file.extension`, `file.space` | string | `file_downloaded`, the four file moves, `download_requested` |
/// | `file.action`, `file.source` | number, string | `file_downloaded` and the file moves: audit-log action code, producer |
/// | `file.receiver` | string | the file moves, when the audit log names who received the file |
/// | `file.names`, `file.count`, `file.request_ids`, `file.conversations` | list, number, list, list | `file_sent` |
/// | `file.senders` | list | `file_sent`: everyone the detection's records name as sending, each once |
/// | `request.id`, `request.reason` | string | `download_requested` |
/// | `approval.instance_id`, `.process_code`, `.change`, `.result` | string | both approval kinds |
/// | `approval.task_id`, `approval.remark` | string | `approval_task_changed` |
/// | `file.sensitive`, `file.granted` | bool | events with a file, added by the alerter: the classification says the file is sensitive; an approval grant in force when the event happened covers this download (same user, file id, and the name and space the grant was decided on) |
/// | `file.grant_mismatch` | bool | events with a file, added by the alerter: a grant for this user and file id was in force, but the event names the file differently (name or space) from the facts the grant was decided on |
/// | `group.personal_data` | bool | events with a group, added by the alerter: the group is classified as holding personal data |
/// | `event.late` | bool | added by the alerter to an event judged more than [`LATE_AFTER_MS`] after it happened: the history it is judged against (directory changes, grants, windows) may no longer reach back that far |
///
/// `file.extension` is the lower-cased text after the last dot of the file name.
pub fn field_catalog() -> &'static [(&'static str, FieldType)] {
    CATALOG
}

/// The catalog rules are compiled against; its slots are [`Field`]'s.
pub fn rule_catalog() -> dingguard_rules::Catalog {
    dingguard_rules::Catalog::new(CATALOG.iter().copied(), event_types().iter().copied())
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
        "file_shared_externally",
        "file_copied",
        "file_handed_over",
        "file_exported",
        "file_sent",
        "download_requested",
        "approval_instance_changed",
        "approval_task_changed",
        "admin_role_granted",
        "user_synced",
        "department_synced",
        "other",
    ]
}
