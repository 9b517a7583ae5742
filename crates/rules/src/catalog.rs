//! The fields and event types rules may name. The normaliser owns the real catalog; the engine only checks
//! rules against it, so a typo fails at load time instead of silently never matching.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value as Json};

use crate::fields::{FieldValue, Fields, Slot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    String,
    Number,
    Bool,
    StringList,
}

impl FieldType {
    pub fn describe(self) -> &'static str {
        match self {
            Self::String => "text",
            Self::Number => "a number",
            Self::Bool => "true/false",
            Self::StringList => "a list of text",
        }
    }
}

/// Field names with their types and slots, and the event types rules may select.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// By slot.
    fields: Vec<(String, FieldType)>,
    slots: HashMap<String, Slot>,
    event_types: HashSet<String>,
}

impl Catalog {
    /// Each field's slot is its position here, so a producer that lists its fields in the same order can fill
    /// a [`Fields`] record without names. A name listed twice keeps its first slot.
    pub fn new<'a>(
        fields: impl IntoIterator<Item = (&'a str, FieldType)>,
        event_types: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let fields: Vec<(String, FieldType)> = fields.into_iter().map(|(k, t)| (k.to_owned(), t)).collect();
        let mut slots = HashMap::with_capacity(fields.len());
        for (i, (name, _)) in fields.iter().enumerate() {
            slots.entry(name.clone()).or_insert(Slot::new(i));
        }
        Self { fields, slots, event_types: event_types.into_iter().map(str::to_owned).collect() }
    }

    pub fn field(&self, name: &str) -> Option<FieldType> {
        self.slot(name).map(|s| self.fields[s.index()].1)
    }

    pub fn slot(&self, name: &str) -> Option<Slot> {
        self.slots.get(name).copied()
    }

    pub fn has_field(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }

    pub fn has_event_type(&self, name: &str) -> bool {
        self.event_types.contains(name)
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The name of the field in `slot`.
    pub fn name(&self, slot: Slot) -> Option<&str> {
        self.fields.get(slot.index()).map(|(n, _)| n.as_str())
    }

    /// A record written by hand (rule tests, samples), each value checked against its field's type.
    pub fn fields_from_json(&self, map: &Map<String, Json>) -> Result<Fields<'static>, String> {
        let mut fields = Fields::with_slots(self.len());
        for (name, value) in map {
            let slot = self.slot(name).ok_or_else(|| format!("unknown field `{name}`"))?;
            let value = FieldValue::from_json(value, self.fields[slot.index()].1)
                .map_err(|why| format!("field `{name}` {why}"))?;
            fields.set(slot, value);
        }
        Ok(fields)
    }
}
