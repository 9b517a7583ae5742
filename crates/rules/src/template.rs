//! `{field}` templates for alert text and grouping keys.

use std::fmt::Write as _;

use crate::catalog::Catalog;
use crate::fields::{Fields, Slot, write_field};

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Field(Slot),
    /// One of [`BUILTINS`], supplied by the engine.
    Builtin(&'static str),
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
            let piece = match (BUILTINS.iter().find(|b| **b == name), catalog.slot(name)) {
                (Some(builtin), _) => Piece::Builtin(builtin),
                (None, Some(slot)) => Piece::Field(slot),
                (None, None) => return Err(format!("template {src:?} names unknown field `{name}`")),
            };
            pieces.push(piece);
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self { pieces })
    }

    /// Renders with the event's fields and, where a template names them, the built-ins of a match. A missing
    /// field renders as `?`.
    pub fn render(&self, fields: &Fields<'_>, builtins: Option<&Builtins<'_>>) -> String {
        let mut out = String::with_capacity(self.pieces.len() * 16);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(slot) => write_field(fields.get(*slot), &mut out),
                Piece::Builtin(name) => match builtins {
                    Some(b) => b.write(name, &mut out),
                    None => out.push('?'),
                },
            }
        }
        out
    }
}

/// What a match adds to its templates: `{rule}`, `{severity}`, `{count}`.
pub struct Builtins<'a> {
    pub rule: &'a str,
    pub severity: &'a str,
    pub count: u64,
}

impl Builtins<'_> {
    fn write(&self, name: &str, out: &mut String) {
        match name {
            "rule" => out.push_str(self.rule),
            "severity" => out.push_str(self.severity),
            _ => {
                let _ = write!(out, "{}", self.count);
            }
        }
    }
}
