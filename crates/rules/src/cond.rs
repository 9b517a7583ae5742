//! Conditions compiled against the catalog: list and macro names resolved, operators checked against field
//! types, regexes and globs built once.

use std::collections::HashMap;

use crate::catalog::{Catalog, FieldType};
use crate::expr::{Expr, Item, Op, Operand, Value};
use crate::fields::{FieldValue, Fields, Slot};

#[derive(Debug, Clone)]
pub enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Test { slot: Slot, test: Test },
}

#[derive(Debug, Clone)]
pub enum Test {
    Exists,
    EqText(String),
    NeText(String),
    EqNumber(f64),
    NeNumber(f64),
    EqBool(bool),
    NeBool(bool),
    Order(Op, f64),
    InText(Vec<String>),
    InNumber(Vec<f64>),
    Contains(String),
    IContains(String),
    StartsWith(String),
    EndsWith(String),
    Glob(String),
    Regex(regex_lite::Regex),
}

/// Names a condition may refer to.
pub struct Scope<'a> {
    pub catalog: &'a Catalog,
    pub lists: &'a HashMap<String, Vec<Value>>,
    /// Macros already compiled (a macro may use the macros defined before it).
    pub macros: &'a HashMap<String, Cond>,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
    }
}

pub fn compile(expr: &Expr, scope: &Scope<'_>) -> Result<Cond, String> {
    Ok(match expr {
        Expr::And(a, b) => Cond::And(Box::new(compile(a, scope)?), Box::new(compile(b, scope)?)),
        Expr::Or(a, b) => Cond::Or(Box::new(compile(a, scope)?), Box::new(compile(b, scope)?)),
        Expr::Not(a) => Cond::Not(Box::new(compile(a, scope)?)),
        Expr::Name(name) => scope
            .macros
            .get(name)
            .cloned()
            .ok_or_else(|| format!("`{name}` is neither a macro defined above nor a comparison"))?,
        Expr::Compare { field, op, operand } => {
            let (Some(slot), Some(kind)) = (scope.catalog.slot(field), scope.catalog.field(field)) else {
                return Err(format!("unknown field `{field}`"));
            };
            Cond::Test { slot, test: test(field, kind, *op, operand, scope)? }
        }
    })
}

fn test(field: &str, kind: FieldType, op: Op, operand: &Operand, scope: &Scope<'_>) -> Result<Test, String> {
    let mismatch = |what: &str| format!("field `{field}` is {}; `{op:?}` needs {what}", kind.describe()).to_lowercase();
    let one = || match operand {
        Operand::One(v) => Ok(v.clone()),
        _ => Err(format!("`{op:?}` on `{field}` needs one value").to_lowercase()),
    };
    let textual = matches!(kind, FieldType::String | FieldType::StringList);
    Ok(match op {
        Op::Exists => Test::Exists,
        Op::Eq | Op::Ne => match (kind, one()?) {
            (FieldType::Number, Value::Number(n)) => {
                if op == Op::Eq {
                    Test::EqNumber(n)
                } else {
                    Test::NeNumber(n)
                }
            }
            (FieldType::Bool, Value::Bool(b)) => {
                if op == Op::Eq {
                    Test::EqBool(b)
                } else {
                    Test::NeBool(b)
                }
            }
            (FieldType::String | FieldType::StringList, v) => {
                if op == Op::Eq {
                    Test::EqText(text_of(&v))
                } else {
                    Test::NeText(text_of(&v))
                }
            }
            (FieldType::Number, _) => return Err(mismatch("a number")),
            (FieldType::Bool, _) => return Err(mismatch("true or false")),
        },
        Op::Lt | Op::Le | Op::Gt | Op::Ge => match (kind, one()?) {
            (FieldType::Number, Value::Number(n)) => Test::Order(op, n),
            _ => return Err(mismatch("a number field and a number")),
        },
        Op::In => {
            let Operand::Set(items) = operand else { return Err("`in` needs a list".into()) };
            let mut values = Vec::new();
            for item in items {
                match item {
                    Item::Literal(v) => values.push(v.clone()),
                    Item::Word(w) => match scope.lists.get(w) {
                        Some(list) => values.extend(list.iter().cloned()),
                        None => values.push(Value::Text(w.clone())),
                    },
                }
            }
            match kind {
                FieldType::Number => Test::InNumber(
                    values
                        .iter()
                        .map(|v| match v {
                            Value::Number(n) => Ok(*n),
                            other => Err(format!("`{field}` is a number but the list holds {other}")),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                FieldType::Bool => return Err(mismatch("text")),
                _ => Test::InText(values.iter().map(text_of).collect()),
            }
        }
        Op::Contains | Op::IContains | Op::StartsWith | Op::EndsWith | Op::Glob | Op::Regex => {
            if !textual {
                return Err(mismatch("text"));
            }
            let v = text_of(&one()?);
            match op {
                Op::Contains => Test::Contains(v),
                Op::IContains => Test::IContains(v.to_lowercase()),
                Op::StartsWith => Test::StartsWith(v),
                Op::EndsWith => Test::EndsWith(v),
                Op::Glob => Test::Glob(v),
                _ => Test::Regex(regex_lite::Regex::new(&v).map_err(|e| format!("regex {v:?} is invalid: {e}"))?),
            }
        }
    })
}

use dingguard_model::glob_match;

fn text_matches(test: &Test, s: &str) -> bool {
    match test {
        Test::EqText(v) => s == v,
        Test::InText(vs) => vs.iter().any(|v| v == s),
        Test::Contains(v) => s.contains(v.as_str()),
        Test::IContains(v) => s.to_lowercase().contains(v.as_str()),
        Test::StartsWith(v) => s.starts_with(v.as_str()),
        Test::EndsWith(v) => s.ends_with(v.as_str()),
        Test::Glob(p) => glob_match(p, s),
        Test::Regex(r) => r.is_match(s),
        _ => false,
    }
}

impl Cond {
    pub fn eval(&self, fields: &Fields<'_>) -> bool {
        match self {
            Self::And(a, b) => a.eval(fields) && b.eval(fields),
            Self::Or(a, b) => a.eval(fields) || b.eval(fields),
            Self::Not(a) => !a.eval(fields),
            Self::Test { slot, test } => {
                let Some(value) = fields.get(*slot) else { return false };
                // Numbers in rules are f64; field numbers (counts, hours, milliseconds) are exact in one.
                let number = |x: &i64| *x as f64;
                match (test, value) {
                    (Test::Exists, _) => true,
                    (Test::NeText(v), FieldValue::Text(s)) => s != v,
                    (Test::NeText(v), FieldValue::List(items)) => !items.iter().any(|i| i == v),
                    (Test::EqNumber(n), FieldValue::Number(x)) => number(x) == *n,
                    (Test::NeNumber(n), FieldValue::Number(x)) => number(x) != *n,
                    (Test::InNumber(ns), FieldValue::Number(x)) => ns.contains(&number(x)),
                    (Test::Order(op, n), FieldValue::Number(x)) => {
                        let x = number(x);
                        match op {
                            Op::Lt => x < *n,
                            Op::Le => x <= *n,
                            Op::Gt => x > *n,
                            _ => x >= *n,
                        }
                    }
                    (Test::EqBool(b), FieldValue::Bool(x)) => x == b,
                    (Test::NeBool(b), FieldValue::Bool(x)) => x != b,
                    (t, FieldValue::Text(s)) => text_matches(t, s),
                    (t, FieldValue::List(items)) => items.iter().any(|s| text_matches(t, s)),
                    _ => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse;

    fn catalog() -> Catalog {
        Catalog::new(
            [
                ("file.name", FieldType::String),
                ("members.external_count", FieldType::Number),
                ("members.ids", FieldType::StringList),
                ("actor.active", FieldType::Bool),
            ],
            ["members_added"],
        )
    }

    fn eval(src: &str, fields: serde_json::Value) -> Result<bool, String> {
        let (catalog, lists, macros) =
            (catalog(), HashMap::from([("hr".to_owned(), vec![Value::Text("u1".into())])]), HashMap::new());
        let cond = compile(&parse(src)?, &Scope { catalog: &catalog, lists: &lists, macros: &macros })?;
        Ok(cond.eval(&catalog.fields_from_json(fields.as_object().unwrap()).unwrap()))
    }

    #[test]
    fn comparisons_follow_field_types() {
        let f = serde_json::json!({"file.name": "HR-身份證.zip", "members.external_count": 2, "members.ids": ["u1", "ext_9"], "actor.active": false});
        assert!(eval("members.external_count > 1", f.clone()).unwrap());
        assert!(eval("file.name icontains \"hr-\" and file.name glob \"*.zip\"", f.clone()).unwrap());
        assert!(eval("file.name regex \"^HR-.+\\\\.zip$\"", f.clone()).unwrap());
        assert!(eval("members.ids in (hr)", f.clone()).unwrap(), "list names expand");
        assert!(eval("members.ids startswith ext_", f.clone()).unwrap());
        assert!(eval("members.ids != nobody", f.clone()).unwrap());
        assert!(eval("actor.active = false and not file.name exists", f.clone()).is_ok_and(|b| !b));
        assert!(!eval("members.external_count = 3", f.clone()).unwrap());
        assert!(
            !eval("members.external_count exists", serde_json::json!({})).unwrap(),
            "a missing field matches nothing"
        );
    }

    #[test]
    fn type_and_name_errors_are_caught_at_compile_time() {
        for (src, needle) in [
            ("members.external_count contains 3", "is a number"),
            ("file.name > 3", "a number"),
            ("no.such.field = 1", "unknown field"),
            ("undefined_macro", "neither a macro"),
            ("file.name regex \"(\"", "regex"),
            ("members.external_count in (a, b)", "is a number"),
        ] {
            let err = eval(src, serde_json::json!({})).unwrap_err();
            assert!(err.contains(needle), "{src}: {err}");
        }
    }
}
