//! Field access over a decrypted payload that may carry the legacy PascalCase spelling, the current lowerCamel one,
//! or both at once. Each accessor takes the spellings to try in order and returns the first usable value, so a
//! payload with both never fails the way a serde `alias` would on a duplicate.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::NormaliseError;

/// A payload's top-level fields. Values stay unparsed text until a field is asked for: the normaliser reads a
/// handful of a payload's fields, and building every value of every event was most of its cost.
pub(crate) struct Payload<'t> {
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
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl<'t> Payload<'t> {
    pub(crate) fn parse(event_type: &'t str, bytes: &'t [u8]) -> Result<Self, NormaliseError> {
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
    fn value(&self, key: &str) -> Option<std::borrow::Cow<'_, Value>> {
        match &self.fields {
            Fields::Lazy(raw) => {
                raw.get(key).and_then(|r| serde_json::from_str(r.get()).ok()).map(std::borrow::Cow::Owned)
            }
            Fields::Parsed(map) => map.get(key).map(std::borrow::Cow::Borrowed),
        }
    }

    fn find<T>(&self, keys: &[&str], convert: impl Fn(&Value) -> Option<T>) -> Option<T> {
        keys.iter().find_map(|k| self.value(k).and_then(|v| convert(&v)))
    }

    /// A string or number.
    pub(crate) fn text(&self, keys: &[&str]) -> Option<String> {
        let Fields::Lazy(raw) = &self.fields else { return self.find(keys, scalar) };
        keys.iter().find_map(|k| {
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
    pub(crate) fn id(&self, keys: &[&str]) -> Option<String> {
        self.find(keys, |v| match v {
            Value::Array(items) => items.iter().find_map(scalar),
            other => scalar(other),
        })
    }

    /// A list of ids, also accepted as a single id. Duplicates are dropped, order kept.
    pub(crate) fn ids(&self, keys: &[&str]) -> Vec<String> {
        distinct(self.id_list(keys))
    }

    /// A list of ids as sent, repeats and all, so that two lists sent in step can be read side by side.
    pub(crate) fn id_list(&self, keys: &[&str]) -> Vec<String> {
        let found = self.find(keys, |v| {
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
    pub(crate) fn millis(&self, keys: &[&str]) -> Option<i64> {
        self.find(keys, |v| integer(v).filter(|ms| *ms > 0))
    }

    /// An integer, sent as a number or a string.
    pub(crate) fn number(&self, keys: &[&str]) -> Option<i64> {
        self.find(keys, integer)
    }

    pub(crate) fn raw(&self, keys: &[&str]) -> Option<Value> {
        keys.iter().find_map(|k| self.value(k).filter(|v| !v.is_null()).map(std::borrow::Cow::into_owned))
    }

    pub(crate) fn missing(&self, field: &'static str) -> NormaliseError {
        NormaliseError::MissingField { event_type: self.event_type.to_owned(), field }
    }

    pub(crate) fn require<T>(&self, value: Option<T>, field: &'static str) -> Result<T, NormaliseError> {
        value.ok_or_else(|| self.missing(field))
    }

    pub(crate) fn require_list(&self, list: Vec<String>, field: &'static str) -> Result<Vec<String>, NormaliseError> {
        self.require((!list.is_empty()).then_some(list), field)
    }
}

/// The ids in their first order, each once. A set beside the list: a `contains` on the list made an event of n
/// members cost n² comparisons.
pub(crate) fn distinct(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter().filter(|id| seen.insert(id.clone())).collect()
}

/// Reads one field of a nested object (a `fileRecords` entry, a `diffInfo`), where DingTalk uses one spelling.
pub(crate) fn nested_text(object: &Value, key: &str) -> Option<String> {
    object.get(key).and_then(scalar)
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
