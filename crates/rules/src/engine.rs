//! Evaluation: every event against the rules that look at its type, with the sliding windows of threshold and
//! sequence rules kept in a state that can be saved and restored across restarts.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::fields::{Fields, Slot, write_field};
use crate::ruleset::{Aggregation, Rule, RuleSet, Severity};
use crate::template::Builtins;

/// Window and rule lookups run for every event: a fast keyed hasher instead of SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// Window contents, keyed by rule and grouping key. Serialisable so a restarted alerter resumes mid-window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WindowState {
    thresholds: HashMap<String, VecDeque<(i64, Option<String>)>>,
    sequences: HashMap<String, i64>,
    /// For windows that count distinct values: how often each value is in the window, kept in step with it so a
    /// count never rescans the window. Derived from `thresholds`; rebuilt on first use after a restart.
    #[serde(skip)]
    distinct: HashMap<String, HashMap<String, u32>>,
}

impl PartialEq for WindowState {
    fn eq(&self, other: &Self) -> bool {
        self.thresholds == other.thresholds && self.sequences == other.sequences
    }
}

impl WindowState {
    pub fn is_empty(&self) -> bool {
        self.thresholds.is_empty() && self.sequences.is_empty()
    }

    /// Adds an event (with its distinct value, if the rule counts one) to window `id`, drops what fell out of
    /// the window, and says how many events, or distinct values, it now holds.
    fn observe(&mut self, id: &str, at_ms: i64, window_ms: i64, value: Option<String>) -> usize {
        let window = match self.thresholds.get_mut(id) {
            Some(window) => window,
            None => self.thresholds.entry(id.to_owned()).or_default(),
        };
        let mut counts = match value {
            Some(_) => Some(match self.distinct.get_mut(id) {
                Some(counts) => counts,
                None => self.distinct.entry(id.to_owned()).or_insert_with(|| {
                    let mut counts = HashMap::default();
                    for v in window.iter().filter_map(|(_, v)| v.clone()) {
                        *counts.entry(v).or_insert(0) += 1;
                    }
                    counts
                }),
            }),
            None => None,
        };
        if let (Some(counts), Some(v)) = (counts.as_deref_mut(), value.as_ref()) {
            *counts.entry(v.clone()).or_insert(0) += 1;
        }
        window.push_back((at_ms, value));
        while window.front().is_some_and(|(t, _)| *t <= at_ms - window_ms) {
            let Some((_, Some(gone))) = window.pop_front() else { continue };
            if let Some(counts) = counts.as_deref_mut()
                && let Some(n) = counts.get_mut(&gone)
            {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&gone);
                }
            }
        }
        match counts {
            Some(counts) => counts.len(),
            None => window.len(),
        }
    }

    fn forget(&mut self, id: &str) {
        self.thresholds.remove(id);
        self.distinct.remove(id);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    pub rule: String,
    pub severity: Severity,
    pub pdpa: Vec<String>,
    pub message: String,
    /// The grouping key of threshold and sequence rules.
    pub key: Option<String>,
    /// The rendered dedup key and its period, for the alert store to fold repeats into the open alert.
    pub dedup: Option<(String, i64)>,
    /// Events behind the match: 1, or the threshold's count.
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppressed {
    pub rule: String,
    pub exception: String,
    pub owner: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outcome {
    pub matches: Vec<Match>,
    pub suppressed: Vec<Suppressed>,
}

pub struct Engine {
    rules: Arc<RuleSet>,
    /// Rule positions by the event types in their `when`, so an event only meets the rules that look at it.
    by_type: Arc<HashMap<String, Vec<usize>>>,
    /// Where the catalog keeps `event.type`, which selects the rules.
    event_type: Option<Slot>,
    state: WindowState,
    evaluated: u64,
}

fn index(rules: &RuleSet) -> Arc<HashMap<String, Vec<usize>>> {
    let mut by_type: HashMap<String, Vec<usize>> = HashMap::default();
    for (i, rule) in rules.rules.iter().enumerate() {
        for t in &rule.when {
            let list = by_type.entry(t.clone()).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    Arc::new(by_type)
}

fn window_id(rule: &str, key: &str) -> String {
    let mut id = String::with_capacity(rule.len() + 1 + key.len());
    id.push_str(rule);
    id.push('\u{1f}');
    id.push_str(key);
    id
}

impl Engine {
    pub fn new(rules: Arc<RuleSet>) -> Self {
        Self::with_state(rules, WindowState::default())
    }

    pub fn with_state(rules: Arc<RuleSet>, state: WindowState) -> Self {
        Self { by_type: index(&rules), event_type: rules.catalog.slot("event.type"), rules, state, evaluated: 0 }
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    pub fn state(&self) -> &WindowState {
        &self.state
    }

    /// Swaps in a new rule set; windows of rules that still exist carry on, the rest are dropped.
    pub fn replace_rules(&mut self, rules: Arc<RuleSet>) {
        let names: HashSet<&str> = rules.rules.iter().map(|r| r.name.as_str()).collect();
        let keep = |k: &String| k.split_once('\u{1f}').is_some_and(|(rule, _)| names.contains(rule));
        self.state.thresholds.retain(|k, _| keep(k));
        self.state.sequences.retain(|k, _| keep(k));
        // A rule's distinct field may have changed with the new rules: recount from the windows.
        self.state.distinct.clear();
        self.by_type = index(&rules);
        self.event_type = rules.catalog.slot("event.type");
        self.rules = rules;
    }

    /// Evaluates one event (its fields in the rules' catalog) that happened at `at_ms`.
    pub fn evaluate(&mut self, fields: &Fields<'_>, at_ms: i64) -> Outcome {
        let mut outcome = Outcome::default();
        let Some(event_type) = self.event_type.and_then(|slot| fields.text(slot)) else { return outcome };
        let rules = self.rules.clone();
        let by_type = self.by_type.clone();
        let positions = by_type.get(event_type).map_or(&[][..], Vec::as_slice);
        for rule in positions.iter().map(|&i| &rules.rules[i]) {
            if rule.cond.as_ref().is_some_and(|c| !c.eval(fields)) {
                continue;
            }
            let fired = match &rule.aggregation {
                Aggregation::Single => Some((None, 1)),
                Aggregation::Threshold { count, window_ms, key, distinct } => {
                    if let Some(s) = excepted(rule, fields, at_ms) {
                        outcome.suppressed.push(s);
                        continue;
                    }
                    let key = key.render(fields, None);
                    let id = window_id(&rule.name, &key);
                    let value = distinct.map(|slot| {
                        let mut value = String::new();
                        write_field(fields.get(slot), &mut value);
                        value
                    });
                    let seen = self.state.observe(&id, at_ms, *window_ms, value) as u64;
                    if seen >= u64::from(*count) {
                        // Start counting afresh: the next alert needs a full new set of events.
                        self.state.forget(&id);
                        Some((Some(key), seen))
                    } else {
                        None
                    }
                }
                Aggregation::Sequence { first, then, key, within_ms } => {
                    let (closes, opens) = (then.eval(fields), first.eval(fields));
                    // Most events of the rule's types are neither step: no key to render, no window to touch.
                    if !closes && !opens {
                        continue;
                    }
                    let key = key.render(fields, None);
                    let id = window_id(&rule.name, &key);
                    let mut fired = None;
                    // `then` first, so one event never completes the sequence it opens.
                    if closes
                        && let Some(started) = self.state.sequences.get(&id).copied()
                        && at_ms - started <= *within_ms
                        && at_ms >= started
                    {
                        self.state.sequences.remove(&id);
                        fired = Some((Some(key.clone()), 2));
                    }
                    if fired.is_none() && opens {
                        self.state.sequences.insert(id, at_ms);
                    }
                    fired
                }
            };
            let Some((key, count)) = fired else { continue };
            if !matches!(rule.aggregation, Aggregation::Threshold { .. })
                && let Some(s) = excepted(rule, fields, at_ms)
            {
                outcome.suppressed.push(s);
                continue;
            }
            outcome.matches.push(render(rule, fields, key, count));
        }
        self.evaluated += 1;
        if self.evaluated.is_multiple_of(4096) {
            self.prune(at_ms);
        }
        outcome
    }

    /// Drops windows that can no longer fire, so idle keys do not accumulate.
    pub fn prune(&mut self, now_ms: i64) {
        // One lookup per window by the rule name before the separator, not a scan of the rules for each.
        let horizons: HashMap<&str, i64> = self
            .rules
            .rules
            .iter()
            .map(|r| {
                let horizon = match &r.aggregation {
                    Aggregation::Threshold { window_ms, .. } => *window_ms,
                    Aggregation::Sequence { within_ms, .. } => *within_ms,
                    Aggregation::Single => 0,
                };
                (r.name.as_str(), horizon)
            })
            .collect();
        let horizon = |k: &str| k.split_once('\u{1f}').and_then(|(rule, _)| horizons.get(rule).copied());
        self.state.thresholds.retain(|k, w| horizon(k).is_some_and(|h| w.back().is_some_and(|(t, _)| *t > now_ms - h)));
        self.state.sequences.retain(|k, started| horizon(k).is_some_and(|h| *started >= now_ms - h));
        let thresholds = &self.state.thresholds;
        self.state.distinct.retain(|k, _| thresholds.contains_key(k));
    }
}

fn excepted(rule: &Rule, fields: &Fields<'_>, at_ms: i64) -> Option<Suppressed> {
    rule.exceptions.iter().find(|e| e.expires_ms > at_ms && e.cond.eval(fields)).map(|e| Suppressed {
        rule: rule.name.clone(),
        exception: e.name.clone(),
        owner: e.owner.clone(),
    })
}

fn render(rule: &Rule, fields: &Fields<'_>, key: Option<String>, count: u64) -> Match {
    let builtins = Builtins { rule: &rule.name, severity: rule.severity.as_str(), count };
    Match {
        rule: rule.name.clone(),
        severity: rule.severity,
        pdpa: rule.pdpa.clone(),
        message: rule.output.render_text(fields, Some(&builtins)),
        key,
        dedup: rule.dedup.as_ref().map(|d| (d.key.render(fields, Some(&builtins)), d.period_ms)),
        count,
    }
}
