//! What the alerter does to one event before anything is stored: normalise, remember, enrich, evaluate. The
//! consumer loop and the benchmark share it.

use std::sync::Arc;

use dingguard_directory::Directory;
use dingguard_eventlog::LoggedRecord;
use dingguard_events::{CanonicalEvent, InMemoryGroupTracker, NormaliseError, fields_to_json, normalise_with_tracker};
use dingguard_rules::{Engine, Outcome, RuleSet};
use serde_json::{Map, Value};

use crate::enrich::{Classification, Grants, GroupTitles, enrich};

/// One canonical event with what the rules made of it, and its named fields when an alert needs them.
pub(crate) struct Judged {
    pub event: CanonicalEvent,
    pub fields: Map<String, Value>,
    pub outcome: Outcome,
}

/// The record's DingTalk event type, as the receiver wrote it into `ce_type`.
pub(crate) fn event_type(record: &LoggedRecord) -> &str {
    let stated = record.header("ce_type").and_then(|t| t.strip_prefix("dingtalk.")).unwrap_or("unknown");
    dingguard_events::believed_type(stated, record.header(dingguard_model::header::ORIGIN))
}

/// `received_ms` is when the record's event was received (its `ce_time` serves), for a payload without a time;
/// `now_ms` is when it is judged, to tell a late event.
#[allow(clippy::too_many_arguments)]
pub(crate) fn judge(
    record: &LoggedRecord,
    ce_id: &str,
    received_ms: i64,
    now_ms: i64,
    directory: &mut Directory,
    groups: &mut InMemoryGroupTracker,
    titles: &mut GroupTitles,
    engine: &mut Engine,
    classification: &Classification,
    grants: &Grants,
) -> Result<Vec<Judged>, NormaliseError> {
    let events = normalise_with_tracker(event_type(record), ce_id, &record.value, directory, received_ms, groups)?;
    // A group first seen by its other id: what the rules kept under that id is the group's.
    for (other, chat) in groups.take_learned() {
        engine.merge_key(&other, &chat);
        titles.merge(&other, &chat);
    }
    let mut judged = Vec::with_capacity(events.len());
    for event in events {
        let mut record = event.fields();
        titles.remember(&record);
        enrich(&mut record, classification, titles, grants, event.occurred_at_ms);
        if now_ms.saturating_sub(event.occurred_at_ms) > dingguard_events::LATE_AFTER_MS {
            record.set(dingguard_events::Field::EventLate.slot(), dingguard_rules::FieldValue::Bool(true));
        }
        let outcome = engine.evaluate(&record, event.occurred_at_ms);
        // Named fields are only needed to store next to an alert.
        let fields = if outcome.matches.is_empty() { Map::new() } else { fields_to_json(&record) };
        drop(record);
        // Address-book changes apply after the event is judged, as of when they happened: a leaver's own event
        // still sees them active, and a later event judged afterwards sees them gone only from then on.
        for (change, at) in event.directory_changes_at() {
            directory.apply_at(change, at);
        }
        judged.push(Judged { event, fields, outcome });
    }
    Ok(judged)
}

/// Normalisation, enrichment and rules without the store: what `make bench` compares with a bare consumer.
pub struct Evaluator {
    engine: Engine,
    directory: Directory,
    groups: InMemoryGroupTracker,
    titles: GroupTitles,
    classification: Classification,
    grants: Grants,
}

impl Evaluator {
    pub fn new(rules: RuleSet, directory: Directory, classification: Classification) -> Self {
        Self {
            engine: Engine::new(Arc::new(rules)),
            directory,
            groups: InMemoryGroupTracker::default(),
            titles: GroupTitles::default(),
            classification,
            grants: Grants::default(),
        }
    }

    /// The same evaluator judging downloads against these grants.
    pub fn with_grants(mut self, grants: Grants) -> Self {
        self.grants = grants;
        self
    }

    /// Judges one record; the number of rule matches, or why it could not be read.
    pub fn evaluate(&mut self, record: &LoggedRecord, now_ms: i64) -> Result<usize, NormaliseError> {
        Ok(self.matches(record, now_ms)?.len())
    }

    /// Judges one record; the rule matches it made.
    pub fn matches(
        &mut self,
        record: &LoggedRecord,
        now_ms: i64,
    ) -> Result<Vec<dingguard_rules::Match>, NormaliseError> {
        let ce_id = record.header("ce_id").unwrap_or_default().to_owned();
        let judged = judge(
            record,
            &ce_id,
            record.time_ms().unwrap_or(now_ms),
            now_ms,
            &mut self.directory,
            &mut self.groups,
            &mut self.titles,
            &mut self.engine,
            &self.classification,
            &self.grants,
        )?;
        Ok(judged.into_iter().flat_map(|j| j.outcome.matches).collect())
    }
}
