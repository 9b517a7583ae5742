//! `{field}` templates for alert text and grouping keys.

use serde_json::{Map, Value};

use crate::catalog::Catalog;

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Field(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Placeholders every template may use besides event fields.
pub const BUILTINS: [&str; 3] = ["rule", "severity", "count"];

impl Template {
    pub fn parse(src: &str, catalog: &Catalog) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = src;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or_else(|| format!("`{{` without `}}` in template {src:?}"))? + open;
            let name = rest[open + 1..close].trim();
            if !BUILTINS.contains(&name) && !catalog.has_field(name) {
                return Err(format!("template {src:?} names unknown field `{name}`"));
            }
            pieces.push(Piece::Field(name.to_owned()));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self { pieces })
    }

    /// Renders with the event's fields; `extra` supplies the built-ins. A missing field renders as `?`.
    pub fn render(&self, fields: &Map<String, Value>, extra: &[(&str, String)]) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(name) => match extra.iter().find(|(k, _)| k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&display(fields.get(name))),
                },
            }
        }
        out
    }
}

pub fn display(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "?".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items.iter().map(|v| display(Some(v))).collect::<Vec<_>>().join(", "),
        Some(other) => other.to_string(),
    }
}
