//! `{field}` templates for alert text and grouping keys.

use std::fmt::Write as _;

use crate::catalog::Catalog;
use crate::fields::{FieldValue, Fields, Slot, write_field};

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Field(Slot),
    /// `{first.<field>}`: a field of a sequence's first step, where the event at hand is its second.
    First(Slot),
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
            let first = name.strip_prefix("first.").and_then(|field| catalog.slot(field));
            let piece = match (BUILTINS.iter().find(|b| **b == name), catalog.slot(name), first) {
                (Some(builtin), _, _) => Piece::Builtin(builtin),
                (None, Some(slot), _) => Piece::Field(slot),
                (None, None, Some(slot)) => Piece::First(slot),
                (None, None, None) => return Err(format!("template {src:?} names unknown field `{name}`")),
            };
            pieces.push(piece);
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self { pieces })
    }

    /// Whether the template names a sequence's first step (`{first.…}`).
    pub fn names_first_step(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::First(_)))
    }

    /// The slots the template reads: `(true, slot)` for `{first.…}`, `(false, slot)` for the event's own.
    pub fn slots(&self) -> impl Iterator<Item = (bool, Slot)> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Field(slot) => Some((false, *slot)),
            Piece::First(slot) => Some((true, *slot)),
            _ => None,
        })
    }

    /// Renders from two steps' saved values (see [`value_text`]): the second step's for `{field}`, the first's for
    /// `{first.field}`. A value a step did not save renders as `?`.
    pub fn render_steps<'v>(
        &self,
        first: &dyn Fn(Slot) -> Option<&'v str>,
        then: &dyn Fn(Slot) -> Option<&'v str>,
        builtins: Option<&Builtins<'_>>,
    ) -> String {
        let mut out = String::with_capacity(self.pieces.len() * 16);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(slot) => out.push_str(then(*slot).unwrap_or("?")),
                Piece::First(slot) => out.push_str(first(*slot).unwrap_or("?")),
                Piece::Builtin(name) => match builtins {
                    Some(b) => b.write(name, &mut out),
                    None => out.push('?'),
                },
            }
        }
        cap_text(out)
    }

    /// Renders a key (dedup, threshold, sequence) with the event's fields and, where a template names them, the
    /// built-ins of a match: every value in full, so two different keys never render alike. A missing field
    /// renders as `?`.
    pub fn render(&self, fields: &Fields<'_>, builtins: Option<&Builtins<'_>>) -> String {
        let mut out = String::with_capacity(self.pieces.len() * 16);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(slot) => write_field(fields.get(*slot), &mut out),
                Piece::First(_) => out.push('?'),
                Piece::Builtin(name) => match builtins {
                    Some(b) => b.write(name, &mut out),
                    None => out.push('?'),
                },
            }
        }
        out
    }

    /// Renders a window's grouping key, or `None` when a field it is made of is missing or empty: an event that
    /// does not say whose (or which group's) it is cannot be counted with anyone's, and grouping every such event
    /// under `?` would make one window that everything without the field crowds into.
    pub fn render_key(&self, fields: &Fields<'_>) -> Option<String> {
        let present = self.pieces.iter().all(|piece| match piece {
            Piece::Field(slot) => fields.get(*slot).is_some_and(|v| v.as_str() != Some("")),
            _ => true,
        });
        present.then(|| self.render(fields, None))
    }

    /// Renders alert text: like [`render`](Self::render), but a list shows its first [`LIST_IN_TEXT`] items and
    /// "and N more", a text value its first [`VALUE_IN_TEXT`] bytes, and the whole at most [`TEXT_MAX`] bytes.
    /// Twenty thousand outsiders in one event must not make a message of megabytes; the full values stay in the
    /// alert's stored fields.
    pub fn render_text(&self, fields: &Fields<'_>, builtins: Option<&Builtins<'_>>) -> String {
        let mut out = String::with_capacity(self.pieces.len() * 16);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(slot) => out.push_str(&value_text(fields.get(*slot))),
                Piece::First(_) => out.push('?'),
                Piece::Builtin(name) => match builtins {
                    Some(b) => b.write(name, &mut out),
                    None => out.push('?'),
                },
            }
        }
        cap_text(out)
    }
}

fn cap_text(out: String) -> String {
    if out.len() <= TEXT_MAX {
        return out;
    }
    let mut cut = String::with_capacity(TEXT_MAX + 3);
    push_capped(&out, TEXT_MAX, &mut cut);
    cut
}

/// A field's value as alert text shows it: a list's first [`LIST_IN_TEXT`] items and "and N more", a text value's
/// first [`VALUE_IN_TEXT`] bytes, `?` when absent. What a sequence step saves for its rule's text.
pub fn value_text(value: Option<&FieldValue<'_>>) -> String {
    let mut out = String::new();
    match value {
        Some(FieldValue::List(items)) => write_capped_list(items, &mut out),
        Some(FieldValue::Text(text)) => push_capped(text, VALUE_IN_TEXT, &mut out),
        other => write_field(other, &mut out),
    }
    out
}

/// Items of a list shown in alert text.
pub const LIST_IN_TEXT: usize = 10;
/// Bytes of one text value shown in alert text.
pub const VALUE_IN_TEXT: usize = 256;
/// Bytes of a whole alert text.
pub const TEXT_MAX: usize = 2048;

fn push_capped(text: &str, max: usize, out: &mut String) {
    if text.len() <= max {
        out.push_str(text);
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.push_str(&text[..end]);
    out.push('…');
}

fn write_capped_list(items: &[std::borrow::Cow<'_, str>], out: &mut String) {
    for (i, item) in items.iter().take(LIST_IN_TEXT).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_capped(item, VALUE_IN_TEXT, out);
    }
    if items.len() > LIST_IN_TEXT {
        let _ = write!(out, " and {} more", items.len() - LIST_IN_TEXT);
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
