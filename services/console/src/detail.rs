//! One alert: what happened, what it may implicate, who handled it, the events behind it, and the actions.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use dingguard_store::{Alert, AlertEvent, AlertStatus};

use crate::actions::display_name;
use crate::auth::{PageViewer, Viewer};
use crate::error::PageError;
use crate::html::{self, esc};
use crate::{Shared, pages};

/// Rules name articles they *may* implicate; whether the law was breached is for people to judge.
pub(crate) fn pdpa_note(articles: &[String]) -> String {
    if articles.is_empty() {
        return "The rule names no article of Macau's Personal Data Protection Act (Law 8/2005).".into();
    }
    let named: Vec<String> = articles
        .iter()
        .map(|a| if a.chars().next().is_some_and(|c| c.is_ascii_digit()) { format!("Art. {a}") } else { a.clone() })
        .collect();
    format!(
        "This alert may implicate {} of Macau's Personal Data Protection Act (Law 8/2005). It is a signal to \
         review, not a finding that the law was breached.",
        named.join(", ")
    )
}

fn handled(shared: &Shared, by: Option<&str>, at: Option<i64>) -> String {
    match (by, at) {
        (Some(by), Some(at)) => format!("by {} at {} (Macau)", esc(&display_name(shared, by)), html::time(at)),
        _ => "—".into(),
    }
}

fn actions(viewer: &Viewer, alert: &Alert) -> String {
    let button = |action: &str, label: &str| {
        format!(
            r#"<form class="inline" method="post" action="/alerts/{}/{action}">{}
<button type="submit" name="action" value="{action}">{label}</button></form>"#,
            esc(&alert.id),
            html::csrf_field(viewer)
        )
    };
    match alert.status {
        AlertStatus::Open => format!("{} {}", button("acknowledge", "Acknowledge"), button("resolve", "Resolve")),
        AlertStatus::Acknowledged => button("resolve", "Resolve"),
        AlertStatus::Resolved => "<p>This alert is resolved.</p>".into(),
    }
}

fn field_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn event_block(event: &AlertEvent) -> String {
    let fields = match &event.fields {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&field_value(v))))
            .collect::<Vec<_>>()
            .join("\n"),
        other => format!(r#"<tr><td colspan="2">{}</td></tr>"#, esc(&other.to_string())),
    };
    format!(
        r#"<article class="event" data-ce-id="{ce_id}">
<h3>{kind} · {at} (Macau)</h3>
<p class="muted">Event id {ce_id}</p>
<table class="fields"><tbody>
{fields}
</tbody></table>
</article>"#,
        ce_id = esc(&event.ce_id),
        kind = esc(&event.event_type),
        at = html::time(event.occurred_at_ms),
    )
}

pub(crate) async fn show(
    State(shared): State<Arc<Shared>>,
    PageViewer(viewer): PageViewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (alert, events) = shared.store.alert(&id).await?;
    let events_html = if events.is_empty() {
        "<p>No events are recorded for this alert.</p>".to_owned()
    } else {
        events.iter().map(event_block).collect::<Vec<_>>().join("\n")
    };
    let body = format!(
        r#"<p><a href="/alerts">← All alerts</a></p>
<h1>{message}</h1>
<dl class="facts" id="alert" data-alert-id="{id}" data-status="{status}">
<dt>Severity</dt><dd><span class="sev sev-{severity}">{severity}</span></dd>
<dt>Rule</dt><dd>{rule}</dd>
<dt>Status</dt><dd class="status">{status}</dd>
<dt>Matches</dt><dd>{count}</dd>
<dt>First seen</dt><dd>{first} (Macau)</dd>
<dt>Last seen</dt><dd>{last} (Macau)</dd>
<dt>Dedup key</dt><dd>{key}</dd>
<dt>Acknowledged</dt><dd class="acknowledged">{acked}</dd>
<dt>Resolved</dt><dd class="resolved">{resolved}</dd>
</dl>
<section class="pdpa"><h2>Macau PDPA</h2><p>{pdpa}</p></section>
<section class="actions"><h2>Actions</h2>
{actions}
</section>
<section><h2>Silence</h2>
<p>Hold back new alerts of this rule, or only those with this dedup key, for a while. Matches are still counted.</p>
{silence}
</section>
<section><h2>Triggering events ({n})</h2>
{events_html}
</section>"#,
        message = esc(&alert.message),
        id = esc(&alert.id),
        status = alert.status.as_str(),
        severity = esc(&alert.severity),
        rule = esc(&alert.rule),
        count = alert.event_count,
        first = html::time(alert.first_seen_ms),
        last = html::time(alert.last_seen_ms),
        key = esc(alert.dedup_key.as_deref().unwrap_or("—")),
        acked = handled(&shared, alert.acknowledged_by.as_deref(), alert.acknowledged_at_ms),
        resolved = handled(&shared, alert.resolved_by.as_deref(), alert.resolved_at_ms),
        pdpa = esc(&pdpa_note(&alert.pdpa)),
        actions = actions(&viewer, &alert),
        silence = pages::silence_form(&viewer, &alert.rule, alert.dedup_key.as_deref().unwrap_or_default()),
        n = events.len(),
    );
    Ok(html::page(&alert.message, Some(&viewer), &body).into_response())
}

#[cfg(test)]
mod tests {
    use super::pdpa_note;

    #[test]
    fn articles_are_worded_as_may_implicate() {
        let note = pdpa_note(&["15".into(), "16".into()]);
        assert!(note.contains("may implicate Art. 15, Art. 16"), "{note}");
        assert!(!note.contains("violat"), "{note}");
    }
}
