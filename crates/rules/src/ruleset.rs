//! Rule files: YAML lists of `list`, `macro` and `rule` items, validated as a whole. A file that fails is refused
//! with its name, the line of the item at fault and the reason.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::catalog::Catalog;
use crate::cond::{Cond, Scope, compile};
use crate::duration::parse_ms;
use crate::expr::{self, Value};
use crate::fields::Slot;
use crate::template::Template;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

pub use dingguard_model::Severity;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    list: Option<String>,
    items: Option<Vec<serde_json::Value>>,
    #[serde(rename = "macro")]
    macro_name: Option<String>,
    rule: Option<String>,
    description: Option<String>,
    #[serde(default)]
    when: Vec<String>,
    condition: Option<String>,
    #[serde(default)]
    exceptions: Vec<RawException>,
    severity: Option<Severity>,
    #[serde(default)]
    pdpa: Vec<String>,
    output: Option<String>,
    dedup: Option<RawDedup>,
    threshold: Option<RawThreshold>,
    sequence: Option<RawSequence>,
    #[serde(default)]
    tests: Vec<RawTest>,
    #[serde(default = "enabled")]
    enabled: bool,
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    name: String,
    owner: Option<String>,
    expires: Option<String>,
    condition: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDedup {
    key: String,
    period: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    count: u32,
    window: String,
    key: String,
    distinct: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSequence {
    first: String,
    then: String,
    key: String,
    within: String,
    /// `first` (the default) or `then`: which step each alert is about.
    alert_per: Option<String>,
}

/// Which step of a sequence an alert is about. `First`: one alert per first step, naming every second step that
/// followed it within the window (an outsider joins; every download after). `Then`: one alert per second step,
/// naming every first step before it (someone leaves; every sensitive file they downloaded before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertPer {
    First,
    Then,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    pub name: String,
    /// Each event is its field map; an optional `at` (`+5m`, or `-2h` for one that arrives late) sets its time
    /// from the previous one's.
    pub events: Vec<Map<String, Json>>,
    pub expect: Expectation,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Expectation {
    Count(u32),
    Word(String),
}

#[derive(Debug, Clone)]
pub struct Exception {
    pub name: String,
    pub owner: String,
    pub expires_ms: i64,
    pub cond: Cond,
}

#[derive(Debug, Clone)]
pub struct Dedup {
    pub key: Template,
    pub period_ms: i64,
}

#[derive(Debug, Clone)]
pub enum Aggregation {
    Single,
    Threshold {
        count: u32,
        window_ms: i64,
        key: Template,
        distinct: Option<Slot>,
    },
    /// `first_saves` and `then_saves`: the fields of each step the rule's text and dedup key name, which a step
    /// keeps so that a match found when the other step arrives, whichever came first, renders the same text.
    Sequence {
        first: Cond,
        then: Cond,
        key: Template,
        within_ms: i64,
        first_saves: Vec<Slot>,
        then_saves: Vec<Slot>,
        alert_per: AlertPer,
    },
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub description: String,
    pub file: String,
    pub line: usize,
    pub when: Vec<String>,
    pub cond: Option<Cond>,
    pub exceptions: Vec<Exception>,
    pub severity: Severity,
    pub pdpa: Vec<String>,
    pub output: Template,
    pub dedup: Option<Dedup>,
    pub aggregation: Aggregation,
    pub tests: Vec<RawTest>,
}

/// A validated set of rules, ready to evaluate, with the catalog they were compiled against.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub catalog: Arc<Catalog>,
}

/// The line on which `- key: name` stands, for messages about items that parsed but do not validate.
fn line_of(text: &str, key: &str, name: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start().trim_start_matches('-').trim_start();
            l.strip_prefix(key)
                .and_then(|r| r.trim_start().strip_prefix(':'))
                .is_some_and(|r| r.trim().trim_matches(['"', '\'']) == name)
        })
        .map_or(1, |i| i + 1)
}

fn pdpa_article_ok(a: &str) -> bool {
    let (num, rest) = a.split_at(a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len()));
    !num.is_empty() && (rest.is_empty() || (rest.starts_with('(') && rest.ends_with(')') && rest.len() > 2))
}

fn parse_expiry(src: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(src, &Rfc3339) {
        return Ok(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX));
    }
    let date = time::Date::parse(src, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("expiry {src:?} must be a date (2027-01-31) or an RFC 3339 time"))?;
    // A date means the end of that day in Macau (UTC+8).
    let end = date.next_day().unwrap_or(date).midnight().assume_offset(time::macros::offset!(+8));
    Ok(end.unix_timestamp() * 1000)
}

impl RuleSet {
    /// Loads several files as one set: lists and macros are shared, rule names must be unique across files.
    pub fn load(files: &[(&str, &str)], catalog: &Catalog) -> Result<Self, RuleError> {
        let mut lists: HashMap<String, Vec<Value>> = HashMap::new();
        let mut macros: HashMap<String, Cond> = HashMap::new();
        let mut rules: Vec<Rule> = Vec::new();
        for (file, text) in files {
            let err = |line: usize, message: String| RuleError { file: (*file).to_owned(), line, message };
            let items: Vec<RawItem> = serde_norway::from_str(text).map_err(|e| {
                let line = e.location().map_or(1, |l| l.line());
                err(line, e.to_string())
            })?;
            for item in items {
                match (item.list.clone(), item.macro_name.clone(), item.rule.clone()) {
                    (Some(name), None, None) => {
                        let line = line_of(text, "list", &name);
                        let values = item.items.ok_or_else(|| err(line, format!("list `{name}` needs `items`")))?;
                        let values = values
                            .into_iter()
                            .map(|v| match v {
                                Json::String(s) => Ok(Value::Text(s)),
                                Json::Number(n) => Ok(Value::Number(n.as_f64().unwrap_or_default())),
                                Json::Bool(b) => Ok(Value::Bool(b)),
                                other => Err(err(line, format!("list `{name}` item {other} is not text or a number"))),
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        lists.insert(name, values);
                    }
                    (None, Some(name), None) => {
                        let line = line_of(text, "macro", &name);
                        let src = item
                            .condition
                            .as_deref()
                            .ok_or_else(|| err(line, format!("macro `{name}` needs `condition`")))?;
                        let scope = Scope { catalog, lists: &lists, macros: &macros };
                        let cond = expr::parse(src)
                            .and_then(|e| compile(&e, &scope))
                            .map_err(|m| err(line, format!("macro `{name}`: {m}")))?;
                        macros.insert(name, cond);
                    }
                    (None, None, Some(name)) => {
                        let line = line_of(text, "rule", &name);
                        if rules.iter().any(|r| r.name == name) {
                            return Err(err(line, format!("rule `{name}` is defined twice")));
                        }
                        let scope = Scope { catalog, lists: &lists, macros: &macros };
                        let rule = build_rule(file, line, &name, item, &scope, catalog)
                            .map_err(|m| err(line, format!("rule `{name}`: {m}")))?;
                        if let Some(rule) = rule {
                            rules.push(rule);
                        }
                    }
                    _ => return Err(err(1, "every item must be exactly one of `list`, `macro` or `rule`".into())),
                }
            }
        }
        Ok(Self { rules, catalog: Arc::new(catalog.clone()) })
    }
}

fn condition(src: &str, scope: &Scope<'_>) -> Result<Cond, String> {
    compile(&expr::parse(src)?, scope)
}

fn build_rule(
    file: &str,
    line: usize,
    name: &str,
    item: RawItem,
    scope: &Scope<'_>,
    catalog: &Catalog,
) -> Result<Option<Rule>, String> {
    if !item.enabled {
        return Ok(None);
    }
    let description = item.description.ok_or("needs a `description`")?;
    let severity = item.severity.ok_or("needs a `severity` (info, low, medium, high, critical)")?;
    let output_src = item.output.ok_or("needs an `output` template")?;
    for text in [&description, &output_src] {
        if text.to_lowercase().contains("violat") {
            return Err("alerts say an event \"may implicate\" an article, never that it violates one".into());
        }
    }
    for article in &item.pdpa {
        if !pdpa_article_ok(article) {
            return Err(format!("pdpa article {article:?} must look like \"15\" or \"20(1)\""));
        }
    }
    if item.when.is_empty() {
        return Err("needs `when`: the event types it looks at".into());
    }
    for t in &item.when {
        if !catalog.has_event_type(t) {
            return Err(format!("`when` names unknown event type `{t}`"));
        }
    }
    let cond = item.condition.as_deref().map(|c| condition(c, scope)).transpose()?;
    let mut exceptions = Vec::new();
    for e in item.exceptions {
        let owner = e
            .owner
            .filter(|o| !o.trim().is_empty())
            .ok_or_else(|| format!("exception `{}` needs an `owner`", e.name))?;
        let expires = e.expires.ok_or_else(|| format!("exception `{}` needs an `expires` date", e.name))?;
        let cond = condition(&e.condition, scope).map_err(|m| format!("exception `{}`: {m}", e.name))?;
        exceptions.push(Exception { name: e.name, owner, expires_ms: parse_expiry(&expires)?, cond });
    }
    let dedup = item
        .dedup
        .map(|d| Ok::<_, String>(Dedup { key: Template::parse(&d.key, catalog)?, period_ms: parse_ms(&d.period)? }))
        .transpose()?;
    let aggregation = match (item.threshold, item.sequence) {
        (Some(_), Some(_)) => return Err("a rule is either a threshold or a sequence, not both".into()),
        (Some(t), None) => {
            if t.count < 2 {
                return Err("threshold `count` must be at least 2 (one event is an ordinary rule)".into());
            }
            let distinct = t
                .distinct
                .map(|field| {
                    catalog.slot(&field).ok_or_else(|| format!("threshold `distinct` names unknown field `{field}`"))
                })
                .transpose()?;
            Aggregation::Threshold {
                count: t.count,
                window_ms: parse_ms(&t.window)?,
                key: Template::parse(&t.key, catalog)?,
                distinct,
            }
        }
        (None, Some(s)) => {
            let output = Template::parse(&output_src, catalog)?;
            let mut saves: [Vec<Slot>; 2] = [Vec::new(), Vec::new()];
            for (first, slot) in output.slots().chain(dedup.iter().flat_map(|d| d.key.slots())) {
                let list = &mut saves[usize::from(first)];
                if !list.contains(&slot) {
                    list.push(slot);
                }
            }
            let [then_saves, first_saves] = saves;
            Aggregation::Sequence {
                first: condition(&s.first, scope).map_err(|m| format!("sequence `first`: {m}"))?,
                then: condition(&s.then, scope).map_err(|m| format!("sequence `then`: {m}"))?,
                key: Template::parse(&s.key, catalog)?,
                within_ms: parse_ms(&s.within)?,
                first_saves,
                then_saves,
                alert_per: match s.alert_per.as_deref() {
                    None | Some("first") => AlertPer::First,
                    Some("then") => AlertPer::Then,
                    Some(other) => return Err(format!("sequence `alert_per` is `first` or `then`, not {other:?}")),
                },
            }
        }
        (None, None) => {
            if cond.is_none() {
                return Err("needs a `condition` (or a `threshold` / `sequence`)".into());
            }
            Aggregation::Single
        }
    };
    let output = Template::parse(&output_src, catalog)?;
    let names_first = output.names_first_step() || dedup.as_ref().is_some_and(|d| d.key.names_first_step());
    if names_first && !matches!(aggregation, Aggregation::Sequence { .. }) {
        return Err("`{first.…}` names a sequence's first step; only a sequence rule has one".into());
    }
    for test in &item.tests {
        for event in &test.events {
            let mut fields = event.clone();
            fields.remove("at");
            catalog.fields_from_json(&fields).map_err(|why| format!("test `{}`: {why}", test.name))?;
        }
        if let Expectation::Word(w) = &test.expect
            && w != "match"
            && w != "no_match"
        {
            return Err(format!("test `{}`: expect must be match, no_match or a count", test.name));
        }
    }
    Ok(Some(Rule {
        name: name.to_owned(),
        description,
        file: file.to_owned(),
        line,
        when: item.when,
        cond,
        exceptions,
        severity,
        pdpa: item.pdpa,
        output,
        dedup,
        aggregation,
        tests: item.tests,
    }))
}
