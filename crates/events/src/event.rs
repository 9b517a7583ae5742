use dingguard_directory::{Affiliation, Directory, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Members of one event that rules see by id. An event may name far more (DingTalk's limit is a group's size, a
/// gateway's the body limit): every member is classified and counted, but the id lists rules read and alerts
/// store hold the first this many, and `members.omitted` says how many more there were.
pub const MAX_MEMBERS: usize = 10_000;

/// One compliance-relevant fact, whatever transport or spelling it arrived in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanonicalEvent {
    /// The record's `ce_id`; when one payload yields several events, each after the first carries a suffix
    /// (`<ce_id>:<user>` for a split batch, `<ce_id>:group_created` for an inferred creation) so idempotent
    /// consumers keep them apart while a redelivery maps to the same ids.
    pub id: String,
    /// The subscribing organisation (`CorpId`), not necessarily the organisation of every person named.
    pub corp_id: Option<String>,
    pub occurred_at_ms: i64,
    /// True when the payload stated no believable time of its own (none, before 2000, or more than a day after it
    /// arrived) and `occurred_at_ms` is when it was received instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub time_from_receipt: bool,
    /// The group's other id when the payload named it both ways (`chatId` and `openConversationId`): a consumer
    /// that tracks groups learns the pair, so one group is one group for every rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_alias: Option<String>,
    /// The person the event is chiefly about: who acted where DingTalk says, else its subject (the joiner, the
    /// leaver, the new admin). Resolved against the directory as it stood when the event happened (before the
    /// event's own change), and frozen here so a replay judges the event the same way.
    pub actor: Option<Actor>,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub affiliation: Affiliation,
    /// Empty when the directory does not know the actor; the first is the primary department.
    pub departments: Vec<String>,
    pub roles: Vec<Role>,
    /// `None` when the directory does not know the actor, so "has left" and "never was here" stay distinct.
    pub active: Option<bool>,
    pub left_at_ms: Option<i64>,
    /// The directory file itself records them as gone by then (as opposed to an address-book event saying so).
    #[serde(default)]
    pub listed_as_left: bool,
}

impl Actor {
    /// Who `id` was at `at_ms`, by the directory's history: someone who left after then is judged as the member
    /// they still were.
    pub fn resolve(id: &str, directory: &Directory, at_ms: i64) -> Self {
        let user = directory.user_at(id, at_ms);
        let user = user.as_ref();
        Self {
            id: id.to_owned(),
            // The event's CorpId is the subscriber's own, so it says nothing about this person's organisation.
            affiliation: directory.classify_at(id, None, at_ms),
            departments: user.map(|u| u.departments.iter().map(ToString::to_string).collect()).unwrap_or_default(),
            roles: user.map(|u| u.roles.iter().copied().collect()).unwrap_or_default(),
            active: user.map(|u| u.active),
            left_at_ms: user.and_then(|u| u.left_at_ms),
            listed_as_left: directory.listed_as_left_at(id, at_ms),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub affiliation: Affiliation,
}

/// One file of an `org_file_send_check` (DLP) detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub user: Option<String>,
    pub file_name: Option<String>,
    /// DingTalk's DLP id (`dlpId…`).
    pub request_id: Option<String>,
    /// The `openCid` of the conversation the file went to.
    pub conversation: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeptChange {
    Created,
    Modified,
    Removed,
}

impl DeptChange {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Modified => "modified",
            Self::Removed => "removed",
        }
    }
}

/// How a file went towards someone other than by download, as the file audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileMove {
    /// Action 5: a link anyone outside the company can open.
    ExternalLink,
    /// Action 8: copied or forwarded.
    Copy,
    /// Action 9: handed over when its owner resigned.
    Handover,
    /// Action 12: a document exported.
    Export,
}

impl FileMove {
    /// Our event type (the payload's `EventType`) of each.
    pub fn of_event_type(event_type: &str) -> Option<Self> {
        Some(match event_type {
            "file_share_link" => Self::ExternalLink,
            "file_copy" => Self::Copy,
            "file_handover" => Self::Handover,
            "file_export" => Self::Export,
            _ => return None,
        })
    }

    /// `event.type` of each.
    pub fn name(self) -> &'static str {
        match self {
            Self::ExternalLink => "file_shared_externally",
            Self::Copy => "file_copied",
            Self::Handover => "file_handed_over",
            Self::Export => "file_exported",
        }
    }
}

/// What happened. Chat ids are DingTalk's `chatId`, else the `openConversationId` when that is all an event has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// From our `chat_create`, or `inferred` the first time a membership event names an unseen group, since
    /// DingTalk has no creation event. An inferred creation knows only the members that event added.
    GroupCreated {
        chat_id: String,
        title: Option<String>,
        owner: Option<String>,
        members: Vec<Member>,
        inferred: bool,
    },
    MembersAdded {
        chat_id: String,
        operator: Option<String>,
        members: Vec<Member>,
    },
    MembersRemoved {
        chat_id: String,
        operator: Option<String>,
        members: Vec<Member>,
    },
    MemberQuit {
        chat_id: String,
        user: String,
    },
    GroupDisbanded {
        chat_id: String,
        operator: Option<String>,
    },
    GroupOwnerChanged {
        chat_id: String,
        new_owner: String,
    },
    GroupRenamed {
        chat_id: String,
        title: String,
        operator: Option<String>,
    },
    /// `follower` is the employee who owns the relationship.
    ExternalContactAdded {
        contact_id: String,
        name: Option<String>,
        company: Option<String>,
        follower: Option<String>,
    },
    /// Address-book batches are split, one event per user, so rules can key on the person.
    UserJoined {
        user: String,
    },
    UserLeft {
        user: String,
    },
    /// `diff` is DingTalk's `diffInfo` as sent (`{userid, prev, curr}`), or null when it sent none.
    UserChanged {
        user: String,
        diff: Value,
    },
    /// DingTalk sends only ids; names and parents come from a directory sync.
    DepartmentChanged {
        change: DeptChange,
        dept_ids: Vec<String>,
    },
    /// Our `file_download`. `action_code` is the file audit log's action: 2 download, 32 knowledge-base download.
    FileDownloaded {
        user: String,
        /// The group the file was shared in, when the producer knows it (`chatId`).
        chat_id: Option<String>,
        file_id: String,
        file_name: Option<String>,
        space_id: Option<String>,
        action_code: Option<i64>,
        source: Option<String>,
    },
    /// Our `file_share_link`, `file_copy`, `file_handover` and `file_export`: a file moved towards someone other
    /// than by download. `receiver` is whom the audit log names as receiving it, when it does.
    FileMoved {
        how: FileMove,
        user: String,
        file_id: String,
        file_name: Option<String>,
        space_id: Option<String>,
        receiver: Option<String>,
        action_code: Option<i64>,
        source: Option<String>,
    },
    /// Our `directory_user`: a person as a sync of DingTalk's address book found them.
    UserSynced {
        user: String,
        name: Option<String>,
        departments: Vec<String>,
        manager: Option<String>,
        /// When they left, for someone DingTalk lists as having left.
        left_at_ms: Option<i64>,
        org_admin: bool,
    },
    /// Our `directory_department`: a department, with its head, as a sync found it.
    DepartmentSynced {
        dept_id: String,
        name: Option<String>,
        parent: Option<String>,
        head: Option<String>,
        /// Gone from the address book.
        #[serde(default)]
        removed: bool,
    },
    /// DingTalk's `org_file_send_check`: its DLP saw files being sent (Exclusive DingTalk only).
    FileSent {
        records: Vec<FileRecord>,
    },
    /// Our `file_download_request`: someone asks for a sensitive file, which starts a dual approval.
    DownloadRequested {
        request_id: String,
        user: String,
        file_id: String,
        file_name: Option<String>,
        space_id: Option<String>,
        reason: Option<String>,
    },
    /// `change_type` is `start`, `finish`, `terminate` or `delete`; `result` is `agree` or `refuse`.
    ApprovalInstanceChanged {
        instance_id: String,
        process_code: Option<String>,
        originator: Option<String>,
        change_type: Option<String>,
        result: Option<String>,
    },
    /// `change_type` is `start`, `finish` or `cancel`; `result` is `agree`, `refuse` or `redirect`.
    ApprovalTaskChanged {
        instance_id: String,
        process_code: Option<String>,
        task_id: Option<String>,
        approver: Option<String>,
        change_type: Option<String>,
        result: Option<String>,
        remark: Option<String>,
    },
    /// One event per user of an `org_admin_add` batch.
    AdminRoleGranted {
        user: String,
    },
    /// Any type without a meaning here yet; stored and visible, never an error.
    Other {
        event_type: String,
    },
}

impl EventKind {
    /// The snake_case name rules select on (`when`) and that `event.type` carries.
    pub fn name(&self) -> &'static str {
        match self {
            Self::GroupCreated { .. } => "group_created",
            Self::MembersAdded { .. } => "members_added",
            Self::MembersRemoved { .. } => "members_removed",
            Self::MemberQuit { .. } => "member_quit",
            Self::GroupDisbanded { .. } => "group_disbanded",
            Self::GroupOwnerChanged { .. } => "group_owner_changed",
            Self::GroupRenamed { .. } => "group_renamed",
            Self::ExternalContactAdded { .. } => "external_contact_added",
            Self::UserJoined { .. } => "user_joined",
            Self::UserLeft { .. } => "user_left",
            Self::UserChanged { .. } => "user_changed",
            Self::DepartmentChanged { .. } => "department_changed",
            Self::FileDownloaded { .. } => "file_downloaded",
            Self::FileMoved { how, .. } => how.name(),
            Self::UserSynced { .. } => "user_synced",
            Self::DepartmentSynced { .. } => "department_synced",
            Self::FileSent { .. } => "file_sent",
            Self::DownloadRequested { .. } => "download_requested",
            Self::ApprovalInstanceChanged { .. } => "approval_instance_changed",
            Self::ApprovalTaskChanged { .. } => "approval_task_changed",
            Self::AdminRoleGranted { .. } => "admin_role_granted",
            Self::Other { .. } => "other",
        }
    }

    /// The group a membership event is about, for creation inference.
    /// The group the event is about, by the id it was named with.
    pub fn chat_id(&self) -> Option<&str> {
        match self {
            Self::GroupCreated { chat_id, .. }
            | Self::MembersAdded { chat_id, .. }
            | Self::MembersRemoved { chat_id, .. }
            | Self::MemberQuit { chat_id, .. }
            | Self::GroupDisbanded { chat_id, .. }
            | Self::GroupOwnerChanged { chat_id, .. }
            | Self::GroupRenamed { chat_id, .. } => Some(chat_id),
            Self::FileDownloaded { chat_id, .. } => chat_id.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn chat_id_mut(&mut self) -> Option<&mut String> {
        match self {
            Self::GroupCreated { chat_id, .. }
            | Self::MembersAdded { chat_id, .. }
            | Self::MembersRemoved { chat_id, .. }
            | Self::MemberQuit { chat_id, .. }
            | Self::GroupDisbanded { chat_id, .. }
            | Self::GroupOwnerChanged { chat_id, .. }
            | Self::GroupRenamed { chat_id, .. } => Some(chat_id),
            Self::FileDownloaded { chat_id, .. } => chat_id.as_mut(),
            _ => None,
        }
    }

    pub(crate) fn membership_chat(&self) -> Option<&str> {
        match self {
            Self::MembersAdded { chat_id, .. }
            | Self::MembersRemoved { chat_id, .. }
            | Self::MemberQuit { chat_id, .. } => Some(chat_id),
            _ => None,
        }
    }
}
