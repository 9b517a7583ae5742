//! Alerts: created from rule matches, repeats folded into the open alert, silences and suppression counted,
//! lifecycle open → acknowledged → resolved with who and when.

use dingguard_model::Severity;
use serde::Serialize;

use crate::db::{Row, Tx, Val};
use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "open" => Ok(Self::Open),
            "acknowledged" => Ok(Self::Acknowledged),
            "resolved" => Ok(Self::Resolved),
            other => Err(StoreError::Corrupt(format!("alert status {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: String,
    pub rule: String,
    #[schema(value_type = String, example = "high")]
    pub severity: Severity,
    pub status: AlertStatus,
    pub dedup_key: Option<String>,
    pub message: String,
    pub pdpa: Vec<String>,
    pub corp_id: Option<String>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub event_count: i64,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at_ms: Option<i64>,
    pub resolved_by: Option<String>,
    pub resolved_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlertEvent {
    pub ce_id: String,
    pub event_type: String,
    pub occurred_at_ms: i64,
    /// The event's named fields, as the rules saw them.
    #[schema(value_type = Object)]
    pub fields: serde_json::Value,
}

/// A rule match about to become (or join) an alert.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// Deterministic from the triggering event and rule, so reprocessing creates nothing new.
    pub id: String,
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub pdpa: Vec<String>,
    pub corp_id: Option<String>,
    pub dedup: Option<(String, i64)>,
    pub event: AlertEvent,
    /// When the event happened.
    pub at_ms: i64,
    /// When the alerter recorded the match: what readers following changes go by.
    pub recorded_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Created(String),
    /// Joined an open alert with the same rule and dedup key; the count it has now.
    Folded {
        id: String,
        count: i64,
    },
    Silenced {
        silence: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Silence {
    pub id: String,
    pub rule: Option<String>,
    pub dedup_key: Option<String>,
    pub creator: String,
    pub reason: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub matched_count: i64,
}

#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    pub severity: Option<Severity>,
    pub rule: Option<String>,
    pub limit: Option<i64>,
}

pub(crate) const ALERT_COLUMNS: &str = "id, rule, severity, status, dedup_key, message, pdpa, corp_id, first_seen_ms, last_seen_ms, \
     event_count, acknowledged_by, acknowledged_at_ms, resolved_by, resolved_at_ms";

pub(crate) fn alert_from(row: &Row) -> Result<Alert, StoreError> {
    Ok(Alert {
        id: row.text(0)?,
        rule: row.text(1)?,
        severity: {
            let name = row.text(2)?;
            Severity::parse(&name).ok_or_else(|| StoreError::Corrupt(format!("alert severity {name:?}")))?
        },
        status: AlertStatus::parse(&row.text(3)?)?,
        dedup_key: row.opt_text(4)?,
        message: row.text(5)?,
        pdpa: serde_json::from_str(&row.text(6)?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        corp_id: row.opt_text(7)?,
        first_seen_ms: row.int(8)?,
        last_seen_ms: row.int(9)?,
        event_count: row.int(10)?,
        acknowledged_by: row.opt_text(11)?,
        acknowledged_at_ms: row.opt_int(12)?,
        resolved_by: row.opt_text(13)?,
        resolved_at_ms: row.opt_int(14)?,
    })
}

pub struct AlertTx<'a> {
    pub(crate) tx: Tx<'a>,
    /// Outbox items queued so far, so items of one transaction keep their order.
    pub(crate) queued: i64,
}

impl<'a> AlertTx<'a> {
    pub(crate) fn new(tx: Tx<'a>) -> Self {
        Self { tx, queued: 0 }
    }

    /// Claims an event for a consumer; false when it was already handled (a redelivery after a crash).
    pub async fn claim_event(&mut self, consumer: &str, ce_id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let n = self
            .tx
            .execute(
                "INSERT INTO processed_events (consumer, ce_id, processed_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (consumer, ce_id) DO NOTHING",
                &[consumer.into(), ce_id.into(), Val::Int(at_ms)],
            )
            .await?;
        Ok(n == 1)
    }

    /// Turns a match into an alert, folds it into the open one, or counts it against a silence.
    pub async fn record(&mut self, alert: &NewAlert) -> Result<Recorded, StoreError> {
        // The same alert again: a sequence's anchor met one more partner (its text now names it too), whichever
        // of its steps arrived last. It was raised, notified and silenced or not when it was first recorded.
        let updated = self
            .tx
            .query(
                "UPDATE alerts SET message = $2, changed_at_ms = $3, \
                 last_seen_ms = CASE WHEN last_seen_ms < $4 THEN $4 ELSE last_seen_ms END WHERE id = $1 \
                 RETURNING event_count",
                &[
                    alert.id.as_str().into(),
                    alert.message.as_str().into(),
                    Val::Int(alert.recorded_at_ms),
                    Val::Int(alert.at_ms),
                ],
            )
            .await?;
        if !updated.is_empty() {
            let added = self.add_event(&alert.id, &alert.event).await?;
            let count = self
                .tx
                .query(
                    "UPDATE alerts SET event_count = event_count + $2 WHERE id = $1 RETURNING event_count",
                    &[alert.id.as_str().into(), Val::Int(added)],
                )
                .await?
                .first()
                .map(|r| r.int(0))
                .transpose()?
                .unwrap_or_default();
            return Ok(Recorded::Folded { id: alert.id.clone(), count });
        }
        let dedup_key = alert.dedup.as_ref().map(|(k, _)| k.clone());
        let silences = self
            .tx
            .query(
                "SELECT id FROM silences WHERE expires_at_ms > $1 AND (rule IS NULL OR rule = $2) \
                 AND (dedup_key IS NULL OR dedup_key = $3) ORDER BY created_at_ms LIMIT 1",
                &[Val::Int(alert.at_ms), alert.rule.as_str().into(), dedup_key.clone().unwrap_or_default().into()],
            )
            .await?;
        if let Some(row) = silences.first() {
            let silence = row.text(0)?;
            self.tx
                .execute(
                    "UPDATE silences SET matched_count = matched_count + 1 WHERE id = $1",
                    &[silence.as_str().into()],
                )
                .await?;
            self.count_suppressed(&alert.rule, "silence", &silence, alert.at_ms).await?;
            return Ok(Recorded::Silenced { silence });
        }
        if let Some(key) = &dedup_key {
            let open = self
                .tx
                .query(
                    "SELECT id FROM alerts WHERE rule = $1 AND dedup_key = $2 AND status <> 'resolved' \
                     AND dedup_until_ms > $3 ORDER BY first_seen_ms DESC LIMIT 1",
                    &[alert.rule.as_str().into(), key.as_str().into(), Val::Int(alert.at_ms)],
                )
                .await?;
            if let Some(row) = open.first() {
                let id = row.text(0)?;
                let count = self
                    .tx
                    .query(
                        "UPDATE alerts SET event_count = event_count + 1, last_seen_ms = $2, changed_at_ms = $3 \
                         WHERE id = $1 RETURNING event_count",
                        &[id.as_str().into(), Val::Int(alert.at_ms), Val::Int(alert.recorded_at_ms)],
                    )
                    .await?
                    .first()
                    .map(|r| r.int(0))
                    .transpose()?
                    .unwrap_or_default();
                self.add_event(&id, &alert.event).await?;
                return Ok(Recorded::Folded { id, count });
            }
        }
        let pdpa = serde_json::to_string(&alert.pdpa).expect("strings serialise");
        let until = alert.dedup.as_ref().map_or(alert.at_ms, |(_, period)| alert.at_ms.saturating_add(*period));
        self.tx
            .execute(
                "INSERT INTO alerts (id, rule, severity, status, dedup_key, message, pdpa, corp_id, first_seen_ms, \
                 last_seen_ms, dedup_until_ms, event_count, changed_at_ms) \
                 VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $8, $9, 1, $10) ON CONFLICT (id) DO NOTHING",
                &[
                    alert.id.as_str().into(),
                    alert.rule.as_str().into(),
                    alert.severity.as_str().into(),
                    dedup_key.into(),
                    alert.message.as_str().into(),
                    pdpa.into(),
                    alert.corp_id.clone().into(),
                    Val::Int(alert.at_ms),
                    Val::Int(until),
                    Val::Int(alert.recorded_at_ms),
                ],
            )
            .await?;
        self.add_event(&alert.id, &alert.event).await?;
        Ok(Recorded::Created(alert.id.clone()))
    }

    /// Adds the event to the alert's list; 1 when it was new there, 0 when the alert already held it.
    async fn add_event(&mut self, alert_id: &str, event: &AlertEvent) -> Result<i64, StoreError> {
        let added = self
            .tx
            .execute(
                "INSERT INTO alert_events (alert_id, ce_id, event_type, occurred_at_ms, fields) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (alert_id, ce_id) DO NOTHING",
                &[
                    alert_id.into(),
                    event.ce_id.as_str().into(),
                    event.event_type.as_str().into(),
                    Val::Int(event.occurred_at_ms),
                    event.fields.to_string().into(),
                ],
            )
            .await?;
        Ok(i64::try_from(added).unwrap_or(0))
    }

    /// Counts a match an exception or silence held back: suppression is visible, never silent.
    pub async fn count_suppressed(&mut self, rule: &str, kind: &str, name: &str, at_ms: i64) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO suppressions (rule, kind, name, count, last_at_ms) VALUES ($1, $2, $3, 1, $4) \
                 ON CONFLICT (rule, kind, name) DO UPDATE SET count = suppressions.count + 1, last_at_ms = $4",
                &[rule.into(), kind.into(), name.into(), Val::Int(at_ms)],
            )
            .await?;
        Ok(())
    }

    pub async fn save_state(&mut self, name: &str, state: &str, at_ms: i64) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO engine_state (name, state, updated_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET state = $2, updated_at_ms = $3",
                &[name.into(), state.into(), Val::Int(at_ms)],
            )
            .await?;
        Ok(())
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await
    }
}

impl Store {
    pub async fn load_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx.query("SELECT state FROM engine_state WHERE name = $1", &[name.into()]).await?;
        rows.first().map(|r| r.text(0)).transpose()
    }

    /// How many events `consumer` has claimed: how far it has judged, for operators and tests.
    pub async fn processed_count(&self, consumer: &str) -> Result<i64, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx.query("SELECT COUNT(*) FROM processed_events WHERE consumer = $1", &[consumer.into()]).await?;
        tx.commit().await?;
        rows.first().map(|r| r.int(0)).transpose().map(Option::unwrap_or_default)
    }

    pub async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
        let mut tx = self.db.begin().await?;
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE ($1 = '' OR status = $1) AND ($2 = '' OR severity = $2) \
             AND ($3 = '' OR rule = $3) ORDER BY last_seen_ms DESC, id LIMIT $4"
        );
        let rows = tx
            .query(
                &sql,
                &[
                    filter.status.map_or("", AlertStatus::as_str).into(),
                    filter.severity.map_or("", Severity::as_str).into(),
                    filter.rule.clone().unwrap_or_default().into(),
                    Val::Int(filter.limit.unwrap_or(200).clamp(1, 1000)),
                ],
            )
            .await?;
        rows.iter().map(alert_from).collect()
    }

    /// An alert with its triggering events, `limit` of them from `offset` in the order they happened, and how
    /// many it has in all: an alert that folded thousands of events is read a page at a time.
    pub async fn alert(&self, id: &str, limit: i64, offset: i64) -> Result<(Alert, Vec<AlertEvent>, i64), StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx.query(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"), &[id.into()]).await?;
        let alert = alert_from(rows.first().ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?)?;
        let total = tx.query("SELECT COUNT(*) FROM alert_events WHERE alert_id = $1", &[id.into()]).await?;
        let total = total.first().map_or(Ok(0), |r| r.int(0))?;
        let events = tx
            .query(
                "SELECT ce_id, event_type, occurred_at_ms, fields FROM alert_events WHERE alert_id = $1 \
                 ORDER BY occurred_at_ms, ce_id LIMIT $2 OFFSET $3",
                &[id.into(), Val::Int(limit.clamp(1, 1000)), Val::Int(offset.max(0))],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(AlertEvent {
                    ce_id: r.text(0)?,
                    event_type: r.text(1)?,
                    occurred_at_ms: r.int(2)?,
                    fields: serde_json::from_str(&r.text(3)?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((alert, events, total))
    }

    /// Moves an alert along its lifecycle as `by`, on the audit chain in the same transaction; a move the
    /// lifecycle does not allow is a conflict and changes nothing.
    pub async fn transition(&self, id: &str, to: AlertStatus, by: &str, at_ms: i64) -> Result<Alert, StoreError> {
        let mut atx = AlertTx::new(self.db.begin().await?);
        let tx = &mut atx.tx;
        let rows = tx.query("SELECT status FROM alerts WHERE id = $1", &[id.into()]).await?;
        let from =
            AlertStatus::parse(&rows.first().ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?.text(0)?)?;
        let sql = match (from, to) {
            (AlertStatus::Open, AlertStatus::Acknowledged) => {
                "UPDATE alerts SET status = 'acknowledged', acknowledged_by = $2, acknowledged_at_ms = $3, \
                 changed_at_ms = $3 WHERE id = $1"
            }
            (AlertStatus::Open | AlertStatus::Acknowledged, AlertStatus::Resolved) => {
                "UPDATE alerts SET status = 'resolved', resolved_by = $2, resolved_at_ms = $3, changed_at_ms = $3 \
                 WHERE id = $1"
            }
            _ => {
                return Err(StoreError::Conflict(format!(
                    "alert {id} is {} and cannot become {}",
                    from.as_str(),
                    to.as_str()
                )));
            }
        };
        tx.execute(sql, &[id.into(), by.into(), Val::Int(at_ms)]).await?;
        let rows = tx.query(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"), &[id.into()]).await?;
        let alert = alert_from(rows.first().ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?)?;
        let action = format!("{} alert", to.as_str());
        let details = serde_json::json!({"from": from.as_str(), "rule": alert.rule});
        atx.append_audit(by, &action, id, details, at_ms).await?;
        atx.commit().await?;
        Ok(alert)
    }

    pub async fn create_silence(&self, silence: &Silence) -> Result<(), StoreError> {
        if silence.expires_at_ms <= silence.created_at_ms {
            return Err(StoreError::Conflict("a silence must expire after it is created".into()));
        }
        if silence.reason.trim().is_empty() || silence.creator.trim().is_empty() {
            return Err(StoreError::Conflict("a silence needs a creator and a reason".into()));
        }
        let mut atx = AlertTx::new(self.db.begin().await?);
        let tx = &mut atx.tx;
        tx.execute(
            "INSERT INTO silences (id, rule, dedup_key, creator, reason, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                silence.id.as_str().into(),
                silence.rule.clone().into(),
                silence.dedup_key.clone().into(),
                silence.creator.as_str().into(),
                silence.reason.as_str().into(),
                Val::Int(silence.created_at_ms),
                Val::Int(silence.expires_at_ms),
            ],
        )
        .await?;
        let details = serde_json::json!({"rule": silence.rule, "dedup_key": silence.dedup_key, "reason": silence.reason,
            "expires_at_ms": silence.expires_at_ms});
        atx.append_audit(&silence.creator, "created silence", &silence.id, details, silence.created_at_ms).await?;
        atx.commit().await
    }

    pub async fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT id, rule, dedup_key, creator, reason, created_at_ms, expires_at_ms, matched_count FROM silences \
                 ORDER BY created_at_ms DESC",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Silence {
                    id: r.text(0)?,
                    rule: r.opt_text(1)?,
                    dedup_key: r.opt_text(2)?,
                    creator: r.text(3)?,
                    reason: r.text(4)?,
                    created_at_ms: r.int(5)?,
                    expires_at_ms: r.int(6)?,
                    matched_count: r.int(7)?,
                })
            })
            .collect()
    }

    /// (rule, kind, name, count) of every suppression so far.
    pub async fn suppressions(&self) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx.query("SELECT rule, kind, name, count FROM suppressions ORDER BY rule, kind, name", &[]).await?;
        rows.iter().map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.int(3)?))).collect()
    }
}
