//! Evaluation: every event against the rules that look at its type, with the sliding windows of threshold and
//! sequence rules kept in a state that can be saved and restored across restarts, window by window.
//!
//! Windows go by the events' own times, and events arrive late and out of order (DingTalk's failed-push list, a
//! polled audit log, a consumer catching up). A late event joins a threshold's window in its place and counts in
//! every window it would have counted in had it been read on time. A sequence keeps both kinds of step it has
//! seen, so it completes when
//! the two *happened* in order within the window, whichever was read first, and the match is the same either
//! way: its identity is the first step's event, and its text is rendered from what each step saved of itself.
//!
//! So that a late event finds the ones it would have been counted with, windows keep what happened up to
//! [`LATENESS_MS`] behind a key's newest event (at most [`THRESHOLD_EVENTS_BEHIND`] events of a threshold), not
//! only what its window still covers: a burst polled hours late from the audit log, for a person who has done
//! something since, is counted as the burst it was.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::fields::{Fields, Slot, write_field};
use crate::ruleset::{Aggregation, AlertPer, Rule, RuleSet, Severity};
use crate::template::{Builtins, value_text};

/// Window and rule lookups run for every event: a fast keyed hasher instead of SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// Steps one sequence window keeps of each kind (a few more in between trims): beyond it the oldest go. Bounds
/// what one key can hold.
pub const SEQUENCE_STEPS_KEPT: usize = 256;

/// How far behind a key's newest event (or, for idle keys, the newest event of all) windows keep what happened,
/// so events that arrive this late are still judged with the ones they happened beside.
pub const LATENESS_MS: i64 = 24 * 3_600_000;

/// Events a threshold window keeps behind the part its length covers, for late events: bounds one key's state.
pub const THRESHOLD_EVENTS_BEHIND: usize = 1024;

/// A distinct-counting window's live part: where it starts in the window's events, and how often each value is
/// in it.
#[derive(Debug, Clone, Default)]
struct Live {
    from: usize,
    counts: HashMap<String, u32>,
}

impl Live {
    fn build(events: &VecDeque<(i64, Option<String>)>, edge: i64) -> Self {
        let from = events.partition_point(|(t, _)| *t <= edge);
        let mut counts = HashMap::default();
        for v in events.range(from..).filter_map(|(_, v)| v.clone()) {
            *counts.entry(v).or_insert(0) += 1;
        }
        Self { from, counts }
    }
}

/// Drops the events of a window that are older than [`LATENESS_MS`] behind its live part (which starts at index
/// `live_from`, after `edge`), and the oldest of those behind it beyond [`THRESHOLD_EVENTS_BEHIND`]; never one of
/// the live part. Says how many went.
fn trim_behind(events: &mut VecDeque<(i64, Option<String>)>, edge: i64, live_from: usize) -> usize {
    let over = live_from.saturating_sub(THRESHOLD_EVENTS_BEHIND);
    let mut gone = 0;
    while gone < live_from && (gone < over || events.front().is_some_and(|(t, _)| *t <= edge - LATENESS_MS)) {
        events.pop_front();
        gone += 1;
    }
    gone
}

/// One step of a sequence, as much of it as the rule's text needs later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub at_ms: i64,
    pub event_id: String,
    /// The text of each field the rule's output and dedup key name, by slot, as the step's event had it.
    pub values: Vec<(usize, String)>,
}

impl Step {
    fn value(&self, slot: Slot) -> Option<&str> {
        self.values.iter().find(|(s, _)| *s == slot.index()).map(|(_, v)| v.as_str())
    }
}

/// The steps of one sequence key, each list in the order the steps happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceWindow {
    pub firsts: Vec<Step>,
    pub thens: Vec<Step>,
}

/// A window as saved: a threshold's events, or a sequence's steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SavedWindow {
    Threshold(VecDeque<(i64, Option<String>)>),
    Sequence(SequenceWindow),
}

/// Window contents, keyed by rule and grouping key. Saved and restored window by window: a consumer writes only
/// the windows a batch changed ([`WindowState::take_changed`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WindowState {
    /// Each threshold window's events in the order they happened.
    thresholds: HashMap<String, VecDeque<(i64, Option<String>)>>,
    sequences: HashMap<String, SequenceWindow>,
    /// For windows that count distinct values: how often each value is in the live part of the window, kept in
    /// step with it so a count never rescans the window. Derived from `thresholds`; rebuilt on first use after a
    /// restart or a late event.
    #[serde(skip)]
    distinct: HashMap<String, Live>,
    /// Windows changed since the last [`WindowState::take_changed`].
    #[serde(skip)]
    changed: HashSet<String>,
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

    /// Windows held, for bounds and metrics.
    pub fn len(&self) -> usize {
        self.thresholds.len() + self.sequences.len()
    }

    /// The windows changed since the last call: each with its contents to save, or `None` when it is gone.
    pub fn take_changed(&mut self) -> Vec<(String, Option<SavedWindow>)> {
        let ids: Vec<String> = self.changed.drain().collect();
        ids.into_iter()
            .map(|id| {
                let saved = match (self.thresholds.get(&id), self.sequences.get(&id)) {
                    (Some(window), _) => Some(SavedWindow::Threshold(window.clone())),
                    (None, Some(window)) => Some(SavedWindow::Sequence(window.clone())),
                    (None, None) => None,
                };
                (id, saved)
            })
            .collect()
    }

    /// Puts back one saved window, in place of any held under its id.
    pub fn restore(&mut self, id: String, window: SavedWindow) {
        self.distinct.remove(&id);
        match window {
            SavedWindow::Threshold(events) => {
                self.thresholds.insert(id, events);
            }
            SavedWindow::Sequence(steps) => {
                self.sequences.insert(id, steps);
            }
        }
    }

    /// Marks every window changed, so the next [`WindowState::take_changed`] saves them all.
    pub fn mark_all_changed(&mut self) {
        self.changed.extend(self.thresholds.keys().cloned());
        self.changed.extend(self.sequences.keys().cloned());
    }

    /// Adds an event (with its distinct value, if the rule counts one) that happened at `at_ms` to window `id`,
    /// trims what is too old to count even for a late event, and says how many events, or distinct values, the
    /// busiest window holding the new one has.
    fn observe(&mut self, id: &str, at_ms: i64, window_ms: i64, value: Option<String>) -> usize {
        self.changed.insert(id.to_owned());
        let window = match self.thresholds.get_mut(id) {
            Some(window) => window,
            None => self.thresholds.entry(id.to_owned()).or_default(),
        };
        let in_order = window.back().is_none_or(|(t, _)| *t <= at_ms);
        if !in_order {
            // Late: into its place. Read in time order, this event would have been counted by the windows ending
            // at it and at every event up to a window after it; the most any of them holds is what it makes.
            // The running distinct counts follow the window's end, so they are rebuilt when next needed.
            let at = window.partition_point(|(t, _)| *t <= at_ms);
            window.insert(at, (at_ms, value.clone()));
            self.distinct.remove(id);
            let most = busiest_window(window, at, window_ms, value.is_some());
            let edge = window.back().map_or(at_ms, |(t, _)| *t) - window_ms;
            let live_from = window.partition_point(|(t, _)| *t <= edge);
            trim_behind(window, edge, live_from);
            return most;
        }
        let edge = at_ms - window_ms;
        let Some(value) = value else {
            window.push_back((at_ms, None));
            let live_from = window.partition_point(|(t, _)| *t <= edge);
            let gone = trim_behind(window, edge, live_from);
            return window.len() - (live_from - gone);
        };
        let live = match self.distinct.get_mut(id) {
            Some(live) => {
                *live.counts.entry(value.clone()).or_insert(0) += 1;
                window.push_back((at_ms, Some(value)));
                live
            }
            None => {
                window.push_back((at_ms, Some(value)));
                self.distinct.entry(id.to_owned()).or_insert_with(|| Live::build(window, edge))
            }
        };
        while window.get(live.from).is_some_and(|(t, _)| *t <= edge) {
            if let Some(gone) = &window[live.from].1
                && let Some(n) = live.counts.get_mut(gone)
            {
                *n -= 1;
                if *n == 0 {
                    live.counts.remove(gone);
                }
            }
            live.from += 1;
        }
        live.from -= trim_behind(window, edge, live.from);
        live.counts.len()
    }

    fn forget(&mut self, id: &str) {
        self.thresholds.remove(id);
        self.distinct.remove(id);
        self.changed.insert(id.to_owned());
    }
}

/// The most events (or distinct values) any window holds that ends at the event at `from` or at a later one
/// less than a window after it: one sweep, so a late event costs what its window holds, not its square.
fn busiest_window(events: &VecDeque<(i64, Option<String>)>, from: usize, window_ms: i64, distinct: bool) -> usize {
    let start = events[from].0;
    let mut left = events.partition_point(|(t, _)| *t <= start - window_ms);
    let mut values: HashMap<&str, u32> = HashMap::default();
    for (_, v) in events.range(left..from) {
        if let Some(v) = v {
            *values.entry(v).or_insert(0) += 1;
        }
    }
    let mut most = 0;
    for right in from..events.len() {
        let (end, value) = &events[right];
        if *end - start >= window_ms {
            break;
        }
        if let Some(v) = value {
            *values.entry(v).or_insert(0) += 1;
        }
        while events[left].0 <= *end - window_ms {
            if let Some(v) = &events[left].1
                && let Some(n) = values.get_mut(v.as_str())
            {
                *n -= 1;
                if *n == 0 {
                    values.remove(v.as_str());
                }
            }
            left += 1;
        }
        most = most.max(if distinct { values.len() } else { right + 1 - left });
    }
    most
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
    /// The event the match is about, for its identity: the event at hand, or a sequence's first step.
    pub identity: String,
    /// The events that make the match, in the order they happened: one, or a sequence's two steps.
    pub event_ids: Vec<String>,
    /// When the match's events happened: the event at hand, or a sequence's second step.
    pub at_ms: i64,
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
    /// Where the catalog keeps `event.type`, which selects the rules, and `event.id`, which names a step.
    event_type: Option<Slot>,
    event_id: Option<Slot>,
    state: WindowState,
    evaluated: u64,
    /// The latest event time seen: windows are pruned behind it, never behind a late event's time.
    newest_ms: i64,
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

/// A step of the event at hand: its time, id, and the text of the fields the rule will need of it.
fn step(fields: &Fields<'_>, event_id: &str, at_ms: i64, saves: &[Slot]) -> Step {
    let values = saves.iter().map(|slot| (slot.index(), value_text(fields.get(*slot)))).collect();
    Step { at_ms, event_id: event_id.to_owned(), values }
}

/// Keeps a list of steps in the order they happened, and bounded. The same event read again right away (it is
/// claimed once per consumer, so that is all a replay can do) is not added twice.
fn insert_step(steps: &mut Vec<Step>, step: Step) {
    let at = steps.partition_point(|s| s.at_ms <= step.at_ms);
    if at > 0 && steps[at - 1].at_ms == step.at_ms && steps[at - 1].event_id == step.event_id {
        return;
    }
    steps.insert(at, step);
    // The oldest go a few at a time, so a full window does not shift all its steps on every event.
    if steps.len() > SEQUENCE_STEPS_KEPT + SEQUENCE_STEPS_SLACK {
        steps.drain(..steps.len() - SEQUENCE_STEPS_KEPT);
    }
}

/// Steps a window may hold beyond [`SEQUENCE_STEPS_KEPT`] before the oldest are dropped together.
const SEQUENCE_STEPS_SLACK: usize = 32;

impl Engine {
    pub fn new(rules: Arc<RuleSet>) -> Self {
        Self::with_state(rules, WindowState::default())
    }

    pub fn with_state(rules: Arc<RuleSet>, state: WindowState) -> Self {
        Self {
            by_type: index(&rules),
            event_type: rules.catalog.slot("event.type"),
            event_id: rules.catalog.slot("event.id"),
            rules,
            state,
            evaluated: 0,
            newest_ms: i64::MIN,
        }
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    pub fn state(&self) -> &WindowState {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut WindowState {
        &mut self.state
    }

    /// Swaps in a new rule set; windows of rules that still exist carry on, the rest are dropped.
    pub fn replace_rules(&mut self, rules: Arc<RuleSet>) {
        let names: HashSet<&str> = rules.rules.iter().map(|r| r.name.as_str()).collect();
        let keep = |k: &String| k.split_once('\u{1f}').is_some_and(|(rule, _)| names.contains(rule));
        let state = &mut self.state;
        let gone: Vec<String> =
            state.thresholds.keys().chain(state.sequences.keys()).filter(|k| !keep(k)).cloned().collect();
        state.thresholds.retain(|k, _| keep(k));
        state.sequences.retain(|k, _| keep(k));
        state.changed.extend(gone);
        // A rule's distinct field may have changed with the new rules: recount from the windows.
        state.distinct.clear();
        self.by_type = index(&rules);
        self.event_type = rules.catalog.slot("event.type");
        self.event_id = rules.catalog.slot("event.id");
        self.rules = rules;
    }

    /// Evaluates one event (its fields in the rules' catalog) that happened at `at_ms`.
    pub fn evaluate(&mut self, fields: &Fields<'_>, at_ms: i64) -> Outcome {
        let mut outcome = Outcome::default();
        let Some(event_type) = self.event_type.and_then(|slot| fields.text(slot)) else { return outcome };
        // An event without an id (a hand-written test event) still needs one to tell its steps apart.
        let event_id = match self.event_id.and_then(|slot| fields.text(slot)) {
            Some(id) => id.to_owned(),
            None => format!("#{}", self.evaluated),
        };
        self.newest_ms = self.newest_ms.max(at_ms);
        let rules = self.rules.clone();
        let by_type = self.by_type.clone();
        let positions = by_type.get(event_type).map_or(&[][..], Vec::as_slice);
        for rule in positions.iter().map(|&i| &rules.rules[i]) {
            if rule.cond.as_ref().is_some_and(|c| !c.eval(fields)) {
                continue;
            }
            match &rule.aggregation {
                Aggregation::Single => {
                    if let Some(s) = excepted(rule, fields, at_ms) {
                        outcome.suppressed.push(s);
                        continue;
                    }
                    outcome.matches.push(render(rule, fields, None, 1, &event_id, at_ms));
                }
                Aggregation::Threshold { count, window_ms, key, distinct } => {
                    if let Some(s) = excepted(rule, fields, at_ms) {
                        outcome.suppressed.push(s);
                        continue;
                    }
                    let Some(key) = key.render_key(fields) else { continue };
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
                        outcome.matches.push(render(rule, fields, Some(key), seen, &event_id, at_ms));
                    }
                }
                Aggregation::Sequence { first, then, key, within_ms, first_saves, then_saves, alert_per } => {
                    let (closes, opens) = (then.eval(fields), first.eval(fields));
                    // Most events of the rule's types are neither step: no key to render, no window to touch.
                    if !closes && !opens {
                        continue;
                    }
                    let Some(key) = key.render_key(fields) else { continue };
                    let id = window_id(&rule.name, &key);
                    let window = self.state.sequences.entry(id.clone()).or_default();
                    let as_then = closes.then(|| step(fields, &event_id, at_ms, then_saves));
                    let as_first = opens.then(|| step(fields, &event_id, at_ms, first_saves));
                    if let Some(step) = &as_then {
                        insert_step(&mut window.thens, step.clone());
                    }
                    if let Some(step) = &as_first {
                        insert_step(&mut window.firsts, step.clone());
                    }
                    self.state.changed.insert(id);
                    let found = anchored(window, *alert_per, as_first.as_ref(), as_then.as_ref(), *within_ms);
                    for (anchor, partners) in found {
                        if let Some(s) = excepted(rule, fields, at_ms) {
                            outcome.suppressed.push(s);
                            continue;
                        }
                        outcome.matches.push(render_sequence(rule, &key, *alert_per, &anchor, &partners));
                    }
                }
            }
        }
        self.evaluated += 1;
        if self.evaluated.is_multiple_of(4096) {
            self.prune(self.newest_ms);
        }
        outcome
    }

    /// Learns that grouping key `from` names what key `to` names (a group seen first by its other id): every window
    /// kept under `from` joins the one under `to`, in time order, so events read under either id count together.
    /// Only keys that are the id alone can be joined this way; a composite key keeps its windows apart.
    pub fn merge_key(&mut self, from: &str, to: &str) {
        if from == to {
            return;
        }
        let state = &mut self.state;
        for rule in &self.rules.rules {
            let (old, new) = (window_id(&rule.name, from), window_id(&rule.name, to));
            if let Some(moved) = state.sequences.remove(&old) {
                let into = state.sequences.entry(new.clone()).or_default();
                for step in moved.firsts {
                    insert_step(&mut into.firsts, step);
                }
                for step in moved.thens {
                    insert_step(&mut into.thens, step);
                }
                state.changed.insert(old.clone());
                state.changed.insert(new.clone());
            }
            if let Some(moved) = state.thresholds.remove(&old) {
                let into = state.thresholds.entry(new.clone()).or_default();
                into.extend(moved);
                into.make_contiguous().sort_by_key(|(t, _)| *t);
                state.distinct.remove(&old);
                state.distinct.remove(&new);
                state.changed.insert(old);
                state.changed.insert(new);
            }
        }
    }

    /// Drops what can no longer count: threshold events and sequence steps a window's length and [`LATENESS_MS`]
    /// behind `now_ms`, and windows left empty, so idle keys do not accumulate.
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
        let state = &mut self.state;
        let mut gone = Vec::new();
        state.thresholds.retain(|k, w| {
            let keep = horizon(k).is_some_and(|h| w.back().is_some_and(|(t, _)| *t > now_ms - h - LATENESS_MS));
            if !keep {
                gone.push(k.clone());
            }
            keep
        });
        for (k, window) in &mut state.sequences {
            let Some(h) = horizon(k) else { continue };
            let before = window.firsts.len() + window.thens.len();
            window.firsts.retain(|s| s.at_ms >= now_ms - h - LATENESS_MS);
            window.thens.retain(|s| s.at_ms >= now_ms - h - LATENESS_MS);
            if window.firsts.len() + window.thens.len() != before {
                state.changed.insert(k.clone());
            }
        }
        state.sequences.retain(|k, w| {
            let keep = horizon(k).is_some() && !(w.firsts.is_empty() && w.thens.is_empty());
            if !keep {
                gone.push(k.clone());
            }
            keep
        });
        state.changed.extend(gone);
        let thresholds = &state.thresholds;
        state.distinct.retain(|k, _| thresholds.contains_key(k));
    }
}

fn excepted(rule: &Rule, fields: &Fields<'_>, at_ms: i64) -> Option<Suppressed> {
    rule.exceptions.iter().find(|e| e.expires_ms > at_ms && e.cond.eval(fields)).map(|e| Suppressed {
        rule: rule.name.clone(),
        exception: e.name.clone(),
        owner: e.owner.clone(),
    })
}

fn render(rule: &Rule, fields: &Fields<'_>, key: Option<String>, count: u64, event_id: &str, at_ms: i64) -> Match {
    let builtins = Builtins { rule: &rule.name, severity: rule.severity.as_str(), count };
    Match {
        rule: rule.name.clone(),
        severity: rule.severity,
        pdpa: rule.pdpa.clone(),
        message: rule.output.render_text(fields, Some(&builtins)),
        key,
        dedup: rule.dedup.as_ref().map(|d| (d.key.render(fields, Some(&builtins)), d.period_ms)),
        count,
        identity: event_id.to_owned(),
        event_ids: vec![event_id.to_owned()],
        at_ms,
    }
}

/// Already-raised sequence alerts one event may bring up to date; new ones are never held back.
pub const SEQUENCE_UPDATES_PER_EVENT: usize = 16;

/// The alerts of a sequence window that the event `event_id` touches: each anchor (a first step, or a second
/// step under `alert_per: then`) with every step of the other kind it pairs with. A pair is a first step that
/// happened no later than its second and within the window, whichever of them was read first — so the same
/// history gives the same anchors and partners in every arrival order.
fn anchored(
    window: &SequenceWindow,
    per: AlertPer,
    this_first: Option<&Step>,
    this_then: Option<&Step>,
    within: i64,
) -> Vec<(Step, Vec<Step>)> {
    let pairs = |f: &Step, t: &Step| f.event_id != t.event_id && f.at_ms <= t.at_ms && t.at_ms - f.at_ms <= within;
    // The anchor kind and the partner kind, and this event as each (if it is).
    let (anchors, others, this_anchor, this_other, anchor_first) = match per {
        AlertPer::First => (&window.firsts, &window.thens, this_first, this_then, true),
        AlertPer::Then => (&window.thens, &window.firsts, this_then, this_first, false),
    };
    if others.is_empty() {
        return Vec::new();
    }
    let pair = |anchor: &Step, other: &Step| if anchor_first { pairs(anchor, other) } else { pairs(other, anchor) };
    // Steps of one kind are in time order: those within the window of `step` are one slice of them.
    let near = |steps: &'_ [Step], step: &Step| -> std::ops::Range<usize> {
        let from = steps.partition_point(|s| s.at_ms < step.at_ms.saturating_sub(within));
        let to = steps.partition_point(|s| s.at_ms <= step.at_ms.saturating_add(within));
        from..to.max(from)
    };
    let partners_of = |anchor: &Step| -> Vec<Step> {
        others[near(others, anchor)].iter().filter(|o| pair(anchor, o)).cloned().collect()
    };
    let (mut new, mut updated) = (Vec::new(), Vec::new());
    if let Some(anchor) = this_anchor {
        let partners = partners_of(anchor);
        if !partners.is_empty() {
            new.push((anchor.clone(), partners));
        }
    }
    if let Some(other) = this_other {
        for anchor in anchors[near(anchors, other)].iter().filter(|a| pair(a, other)) {
            if this_anchor.is_some_and(|a| a.event_id == anchor.event_id) {
                continue;
            }
            let partners = partners_of(anchor);
            // An anchor this event alone completes is a new alert; one that had partners already is an update.
            if partners.len() == 1 {
                new.push((anchor.clone(), partners));
            } else {
                updated.push((anchor.clone(), partners));
            }
        }
    }
    updated.truncate(SEQUENCE_UPDATES_PER_EVENT);
    new.extend(updated);
    new
}

/// A sequence's alert, rendered from what its steps saved: the anchor's own values, and the values of all its
/// partners (distinct, in the order they happened, a long list cut with "and N more"). The same steps render the
/// same text whichever was read last.
fn render_sequence(rule: &Rule, key: &str, per: AlertPer, anchor: &Step, partners: &[Step]) -> Match {
    let count = 1 + partners.len() as u64;
    let builtins = Builtins { rule: &rule.name, severity: rule.severity.as_str(), count };
    let joined = |slot: Slot| -> Option<String> {
        let mut values: Vec<&str> = Vec::new();
        for v in partners.iter().filter_map(|p| p.value(slot)) {
            if !values.contains(&v) {
                values.push(v);
            }
        }
        (!values.is_empty()).then(|| join_capped(&values))
    };
    let slots: Vec<Slot> =
        rule.output.slots().chain(rule.dedup.iter().flat_map(|d| d.key.slots())).map(|(_, s)| s).collect();
    let partner_text: Vec<(Slot, String)> = slots.iter().filter_map(|s| Some((*s, joined(*s)?))).collect();
    let of_partners = |slot: Slot| partner_text.iter().find(|(s, _)| *s == slot).map(|(_, v)| v.as_str());
    let of_anchor = |slot: Slot| anchor.value(slot);
    let render = |template: &crate::template::Template| match per {
        AlertPer::First => template.render_steps(&of_anchor, &of_partners, Some(&builtins)),
        AlertPer::Then => template.render_steps(&of_partners, &of_anchor, Some(&builtins)),
    };
    let mut event_ids: Vec<(i64, String)> =
        std::iter::once(anchor).chain(partners).map(|s| (s.at_ms, s.event_id.clone())).collect();
    event_ids.sort();
    let at_ms = event_ids.last().map_or(anchor.at_ms, |(at, _)| *at);
    Match {
        rule: rule.name.clone(),
        severity: rule.severity,
        pdpa: rule.pdpa.clone(),
        message: render(&rule.output),
        key: Some(key.to_owned()),
        dedup: rule.dedup.as_ref().map(|d| (render(&d.key), d.period_ms)),
        count,
        identity: anchor.event_id.clone(),
        event_ids: event_ids.into_iter().map(|(_, id)| id).collect(),
        at_ms,
    }
}

/// Values already cut to size one by one (see [`value_text`]), shown as a list is: the first
/// [`LIST_IN_TEXT`](crate::template::LIST_IN_TEXT) and "and N more".
fn join_capped(values: &[&str]) -> String {
    let limit = crate::template::LIST_IN_TEXT;
    let mut out = values.iter().take(limit).copied().collect::<Vec<_>>().join(", ");
    if values.len() > limit {
        out.push_str(&format!(" and {} more", values.len() - limit));
    }
    out
}
