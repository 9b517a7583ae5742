//! Field access over a decrypted event payload that may carry the legacy PascalCase spelling, the current
//! lowerCamel one, or both at once. Each accessor takes a [`Field`], the spellings DingTalk uses for it in the
//! order to try, and returns the first usable value, so a payload with both never fails the way a serde `alias`
//! would on a duplicate. The spellings are known here only: [`fields`] names every one the normaliser reads.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A payload that cannot be read as the event its type says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventPayloadError {
    #[error("`{event_type}` payload is not a JSON object: {reason}")]
    NotJsonObject { event_type: String, reason: String },
    /// A known type without a field its meaning depends on; the record belongs in the DLQ, not in a guess.
    #[error("`{event_type}` payload has no usable `{field}`")]
    MissingField { event_type: String, field: &'static str },
}

type NormaliseError = EventPayloadError;

/// A field of an event payload: the spellings DingTalk sends it under, current first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field(&'static [&'static str]);

impl Field {
    /// The current spelling, for error messages.
    #[inline]
    pub fn name(self) -> &'static str {
        self.0[0]
    }

    #[inline]
    pub fn spellings(self) -> &'static [&'static str] {
        self.0
    }

    /// The first usable text of this field in a nested object (a `fileRecords` entry, a `diffInfo` side).
    #[inline]
    pub fn text_in(self, object: &Value) -> Option<String> {
        self.0.iter().find_map(|k| object.get(*k).and_then(scalar))
    }

    /// The first list of this field in a nested object.
    #[inline]
    pub fn list_in(self, object: &Value) -> Option<&Vec<Value>> {
        self.0.iter().find_map(|k| object.get(*k).and_then(Value::as_array))
    }
}

/// A payload's top-level fields. Values stay unparsed text until a field is asked for: the normaliser reads a
/// handful of a payload's fields, and building every value of every event was most of its cost. Its readers are
/// `#[inline]`: the normaliser, in another crate, calls them for every field of every event.
pub struct Payload<'t> {
    event_type: &'t str,
    fields: Fields<'t>,
}

enum Fields<'t> {
    Lazy(Entries<'t>),
    /// Keys with escapes, or a Stream frame whose business fields were lifted out of `data`.
    Parsed(Map<String, Value>),
}

/// A payload object's members in the order sent. Payloads have a dozen keys or so: a scan of them is cheaper
/// than hashing each key into a map, and the last of a repeated key wins, as in a parsed object.
struct Entries<'t>(Vec<(&'t str, &'t RawValue)>);

impl<'t> Entries<'t> {
    #[inline]
    fn get(&self, key: &str) -> Option<&'t RawValue> {
        self.0.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// DingTalk ids are strings but some arrive as bare numbers; render those the way they were written.
#[inline]
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[inline]
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl<'t> Payload<'t> {
    #[inline]
    pub fn parse(event_type: &'t str, bytes: &'t [u8]) -> Result<Self, NormaliseError> {
        // Checking UTF-8 once up front lets the parser skip checking each string it borrows.
        if let Ok(text) = std::str::from_utf8(bytes)
            && let Ok(lazy) = serde_json::from_str::<Entries<'t>>(text)
            && lazy.get("data").is_none()
        {
            return Ok(Self { event_type, fields: Fields::Lazy(lazy) });
        }
        Self::parse_whole(event_type, bytes)
    }

    fn parse_whole(event_type: &'t str, bytes: &[u8]) -> Result<Self, NormaliseError> {
        let not_object = |reason: String| NormaliseError::NotJsonObject { event_type: event_type.to_owned(), reason };
        let mut map = match serde_json::from_slice(bytes) {
            Ok(Value::Object(map)) => map,
            Ok(other) => return Err(not_object(format!("found {}", kind_of(&other)))),
            Err(e) => return Err(not_object(e.to_string())),
        };
        // A Stream frame's business fields travel as a JSON string in `data`; lift them beside the envelope's.
        if let Some(Value::String(data)) = map.get("data")
            && let Ok(Value::Object(inner)) = serde_json::from_str::<Value>(data)
        {
            for (k, v) in inner {
                map.entry(k).or_insert(v);
            }
        }
        Ok(Self { event_type, fields: Fields::Parsed(map) })
    }

    /// The value of one spelling, parsed now if it was left as text.
    #[inline]
    fn value(&self, key: &str) -> Option<std::borrow::Cow<'_, Value>> {
        match &self.fields {
            Fields::Lazy(raw) => {
                raw.get(key).and_then(|r| serde_json::from_str(r.get()).ok()).map(std::borrow::Cow::Owned)
            }
            Fields::Parsed(map) => map.get(key).map(std::borrow::Cow::Borrowed),
        }
    }

    #[inline]
    fn find<T>(&self, field: Field, convert: impl Fn(&Value) -> Option<T>) -> Option<T> {
        field.0.iter().find_map(|k| self.value(k).and_then(|v| convert(&v)))
    }

    /// A string or number.
    #[inline]
    pub fn text(&self, field: Field) -> Option<String> {
        let Fields::Lazy(raw) = &self.fields else { return self.find(field, scalar) };
        field.0.iter().find_map(|k| {
            let text = raw.get(k)?.get();
            if text.starts_with('"') {
                // Most fields are strings: read one straight into its `String`, no `Value` in between.
                serde_json::from_str::<String>(text).ok().filter(|s| !s.trim().is_empty())
            } else {
                serde_json::from_str(text).ok().as_ref().and_then(scalar)
            }
        })
    }

    /// One id, also accepted as the first entry of a list, since `userId` is a list in group events and a
    /// string elsewhere.
    #[inline]
    pub fn id(&self, field: Field) -> Option<String> {
        self.find(field, |v| match v {
            Value::Array(items) => items.iter().find_map(scalar),
            other => scalar(other),
        })
    }

    /// A list of ids, also accepted as a single id. Duplicates are dropped, order kept.
    #[inline]
    pub fn ids(&self, field: Field) -> Vec<String> {
        distinct(self.id_list(field))
    }

    /// A list of ids as sent, repeats and all, so that two lists sent in step can be read side by side.
    #[inline]
    pub fn id_list(&self, field: Field) -> Vec<String> {
        let found = self.find(field, |v| {
            let list: Vec<String> = match v {
                Value::Array(items) => items.iter().filter_map(scalar).collect(),
                other => scalar(other).into_iter().collect(),
            };
            (!list.is_empty()).then_some(list)
        });
        found.unwrap_or_default()
    }

    /// Milliseconds, sent as a number or (in address-book events) a string. Zero or less means "not set", so
    /// the next spelling gets its turn.
    #[inline]
    pub fn millis(&self, field: Field) -> Option<i64> {
        self.find(field, |v| integer(v).filter(|ms| *ms > 0))
    }

    /// An integer, sent as a number or a string.
    #[inline]
    pub fn number(&self, field: Field) -> Option<i64> {
        self.find(field, integer)
    }

    #[inline]
    pub fn raw(&self, field: Field) -> Option<Value> {
        field.0.iter().find_map(|k| self.value(k).filter(|v| !v.is_null()).map(std::borrow::Cow::into_owned))
    }

    pub fn missing(&self, field: Field) -> NormaliseError {
        NormaliseError::MissingField { event_type: self.event_type.to_owned(), field: field.name() }
    }

    #[inline]
    pub fn require<T>(&self, value: Option<T>, field: Field) -> Result<T, NormaliseError> {
        value.ok_or_else(|| self.missing(field))
    }

    #[inline]
    pub fn require_list(&self, list: Vec<String>, field: Field) -> Result<Vec<String>, NormaliseError> {
        self.require((!list.is_empty()).then_some(list), field)
    }
}

/// The ids in their first order, each once. A set beside the list: a `contains` on the list made an event of n
/// members cost n² comparisons.
#[inline]
pub fn distinct(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter().filter(|id| seen.insert(id.clone())).collect()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Every field the normaliser reads, by the spellings DingTalk sends it under.
pub mod fields {
    use super::Field;

    pub const EVENT_TIME: Field = Field(&["EventTime", "timeStamp", "TimeStamp"]);
    pub const CORP_ID: Field = Field(&["CorpId", "corpId"]);
    pub const USER_ID: Field = Field(&["userId", "UserId"]);
    /// DingTalk's cross-organisation ids, sent beside (or instead of) `userId`.
    pub const UNION_ID: Field = Field(&["unionId", "UnionId", "unionid"]);
    /// `chatId` first: it is what the receiver partitions on, so one group's events share one id here too.
    pub const CHAT: Field = Field(&["chatId", "ChatId", "openConversationId", "OpenConversationId"]);
    pub const CHAT_ID: Field = Field(&["chatId", "ChatId"]);
    pub const OPEN_CONVERSATION_ID: Field = Field(&["openConversationId", "OpenConversationId"]);
    pub const OPERATOR: Field = Field(&["operator", "Operator"]);
    pub const OPERATOR_UNION_ID: Field = Field(&["operatorUnionId", "OperatorUnionId"]);
    pub const OWNER: Field = Field(&["owner", "Owner"]);
    pub const TITLE: Field = Field(&["title", "Title"]);
    pub const DEPT_ID: Field = Field(&["deptId", "DeptId"]);
    pub const FOLLOWER_USER_ID: Field = Field(&["followerUserId", "FollowerUserId"]);
    pub const NAME: Field = Field(&["name", "Name"]);
    pub const COMPANY_NAME: Field = Field(&["companyName", "CompanyName"]);
    pub const FILE_ID: Field = Field(&["fileId", "FileId"]);
    pub const FILE_NAME: Field = Field(&["fileName", "FileName"]);
    pub const SPACE_ID: Field = Field(&["spaceId", "SpaceId"]);
    pub const ACTION: Field = Field(&["action", "Action"]);
    pub const SOURCE: Field = Field(&["source", "Source"]);
    pub const RECEIVER_NAME: Field = Field(&["receiverName", "ReceiverName"]);
    pub const REQUEST_ID: Field = Field(&["requestId", "RequestId"]);
    pub const REASON: Field = Field(&["reason", "Reason"]);
    pub const STAFF_ID: Field = Field(&["staffId", "StaffId"]);
    pub const PROCESS_INSTANCE_ID: Field = Field(&["processInstanceId", "ProcessInstanceId"]);
    pub const PROCESS_CODE: Field = Field(&["processCode", "ProcessCode"]);
    pub const TYPE: Field = Field(&["type", "Type"]);
    pub const RESULT: Field = Field(&["result", "Result"]);
    pub const TASK_ID: Field = Field(&["taskId", "TaskId"]);
    pub const REMARK: Field = Field(&["remark", "Remark"]);
    pub const DIFF_INFO: Field = Field(&["diffInfo", "DiffInfo"]);
    pub const FILE_RECORDS: Field = Field(&["fileRecords", "FileRecords"]);

    /// In a `diffInfo`: whose change it is.
    pub const DIFF_USER_ID: Field = Field(&["userid", "userId"]);
    /// In a `diffInfo` side (`curr`), as DingTalk's user objects spell them.
    pub const USER_NAME: Field = Field(&["name"]);
    pub const USER_MANAGER: Field = Field(&["managerUserid", "managerUserId"]);
    pub const USER_DEPARTMENTS: Field = Field(&["deptIdList", "dept_id_list", "department"]);
    pub const ACTIVE: Field = Field(&["active"]);
    pub const LEFT_AT_MS: Field = Field(&["leftAtMs"]);
    pub const ORG_ADMIN: Field = Field(&["orgAdmin"]);
    pub const PARENT_ID: Field = Field(&["parentId", "parentid"]);
    pub const DEPT_MANAGER: Field = Field(&["deptManagerUserid"]);
    pub const REMOVED: Field = Field(&["removed"]);
    /// In a `fileRecords` entry (DLP detections).
    pub const RECORD_USER_ID: Field = Field(&["userId"]);
    pub const RECORD_FILE_NAME: Field = Field(&["fileName"]);
    pub const RECORD_REQUEST_ID: Field = Field(&["requestId"]);
    pub const RECORD_CONVERSATION: Field = Field(&["openCid"]);
}
