//! An event as rules read it: one value per catalog slot, with text borrowed from the event where it can be. Rules
//! are compiled to slots, so evaluating a condition is an index, not a lookup by name, and building the record
//! copies no keys.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::Value as Json;

use crate::catalog::FieldType;

/// A field's position in its [`crate::Catalog`], fixed when the catalog is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot(usize);

impl Slot {
    pub const fn new(index: usize) -> Self {
        Self(index)
    }

    pub const fn index(self) -> usize {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Text(Cow<'a, str>),
    Number(i64),
    Bool(bool),
    List(Vec<Cow<'a, str>>),
}

impl FieldValue<'_> {
    pub fn kind(&self) -> FieldType {
        match self {
            Self::Text(_) => FieldType::String,
            Self::Number(_) => FieldType::Number,
            Self::Bool(_) => FieldType::Bool,
            Self::List(_) => FieldType::StringList,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            Self::Text(s) => Json::from(s.as_ref()),
            Self::Number(n) => Json::from(*n),
            Self::Bool(b) => Json::Bool(*b),
            Self::List(items) => items.iter().map(|s| Json::from(s.as_ref())).collect(),
        }
    }

    /// Reads a value written by hand (rule tests, samples) as the field's type, or says why it is not one.
    pub fn from_json(value: &Json, kind: FieldType) -> Result<FieldValue<'static>, String> {
        let mismatch = || format!("is {}, not {value}", kind.describe());
        Ok(match (kind, value) {
            (FieldType::String, Json::String(s)) => FieldValue::Text(Cow::Owned(s.clone())),
            (FieldType::Number, Json::Number(n)) => {
                FieldValue::Number(n.as_i64().ok_or_else(|| format!("is a whole number, not {n}"))?)
            }
            (FieldType::Bool, Json::Bool(b)) => FieldValue::Bool(*b),
            (FieldType::StringList, Json::Array(items)) => FieldValue::List(
                items
                    .iter()
                    .map(|i| i.as_str().map(|s| Cow::Owned(s.to_owned())).ok_or_else(mismatch))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(mismatch()),
        })
    }

    /// Appends the value as alert text and keys show it: lists joined by ", ".
    pub fn write_to(&self, out: &mut String) {
        match self {
            Self::Text(s) => out.push_str(s),
            Self::Number(n) => {
                let _ = write!(out, "{n}");
            }
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(item);
                }
            }
        }
    }
}

/// The value in each slot of a catalog; an absent field is `None`, never a null.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields<'a> {
    slots: Vec<Option<FieldValue<'a>>>,
}

impl<'a> Fields<'a> {
    /// An empty record with room for a catalog of `slots` fields.
    pub fn with_slots(slots: usize) -> Self {
        Self { slots: vec![None; slots] }
    }

    pub fn set(&mut self, slot: Slot, value: FieldValue<'a>) {
        if slot.0 >= self.slots.len() {
            self.slots.resize(slot.0 + 1, None);
        }
        self.slots[slot.0] = Some(value);
    }

    pub fn get(&self, slot: Slot) -> Option<&FieldValue<'a>> {
        self.slots.get(slot.0).and_then(Option::as_ref)
    }

    pub fn text(&self, slot: Slot) -> Option<&str> {
        self.get(slot).and_then(FieldValue::as_str)
    }

    /// Present fields with their slots, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &FieldValue<'a>)> {
        self.slots.iter().enumerate().filter_map(|(i, v)| Some((Slot(i), v.as_ref()?)))
    }
}

/// Renders a field for text: `?` when absent.
pub fn write_field(value: Option<&FieldValue<'_>>, out: &mut String) {
    match value {
        Some(value) => value.write_to(out),
        None => out.push('?'),
    }
}
