//! The fields and event types rules may name. The normaliser owns the real catalog; the engine only checks
//! rules against it, so a typo fails at load time instead of silently never matching.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    String,
    Number,
    Bool,
    StringList,
}

impl FieldType {
    /// The type of a field value as an event's field map renders it; `None` for shapes no field takes.
    pub fn of(value: &serde_json::Value) -> Option<Self> {
        use serde_json::Value;
        match value {
            Value::String(_) => Some(Self::String),
            Value::Number(_) => Some(Self::Number),
            Value::Bool(_) => Some(Self::Bool),
            Value::Array(items) if items.iter().all(Value::is_string) => Some(Self::StringList),
            _ => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::String => "text",
            Self::Number => "a number",
            Self::Bool => "true/false",
            Self::StringList => "a list of text",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    fields: HashMap<String, FieldType>,
    event_types: HashSet<String>,
}

impl Catalog {
    pub fn new<'a>(
        fields: impl IntoIterator<Item = (&'a str, FieldType)>,
        event_types: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Self {
            fields: fields.into_iter().map(|(k, t)| (k.to_owned(), t)).collect(),
            event_types: event_types.into_iter().map(str::to_owned).collect(),
        }
    }

    pub fn field(&self, name: &str) -> Option<FieldType> {
        self.fields.get(name).copied()
    }

    pub fn has_field(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    pub fn has_event_type(&self, name: &str) -> bool {
        self.event_types.contains(name)
    }
}
