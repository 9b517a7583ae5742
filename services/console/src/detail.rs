//! One alert: what happened, what it may implicate, who handled it, the events behind it, and the actions.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
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

/// Triggering events on one page of an alert.
pub(crate) const EVENTS_PER_PAGE: i64 = 20;
/// Items of a list field shown at once; the rest are a page further.
const ITEMS_PER_PAGE: usize = 100;

/// `?page=` for the events, `?items=` for the items of their list fields (member ids, file names).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct DetailQuery {
    page: Option<i64>,
    items: Option<usize>,
}

/// One field's value as text; a list shows page `items` of its entries and says how many there are.
fn field_value(id: &str, value: &serde_json::Value, page: i64, items: usize) -> String {
    match value {
        serde_json::Value::String(s) => esc(s),
        serde_json::Value::Array(list) => {
            let start = (items - 1).saturating_mul(ITEMS_PER_PAGE);
            let shown: Vec<String> = list
                .iter()
                .skip(start)
                .take(ITEMS_PER_PAGE)
                .map(|v| esc(v.as_str().map_or_else(|| v.to_string(), str::to_owned).as_str()))
                .collect();
            if list.len() <= ITEMS_PER_PAGE {
                return shown.join(", ");
            }
            let last = (start + shown.len()).min(list.len());
            let mut out =
                format!(r#"{}<br><span class="muted">{}–{last} of {}"#, shown.join(", "), start + 1, list.len());
            let link = |n: usize, label: &str| {
                format!(r#" <a href="/alerts/{}?page={page}&amp;items={n}">{label}</a>"#, esc(id))
            };
            if items > 1 {
                out.push_str(&link(items - 1, "previous"));
            }
            if last < list.len() {
                out.push_str(&link(items + 1, "next"));
            }
            out.push_str("</span>");
            out
        }
        other => esc(&other.to_string()),
    }
}

fn event_block(alert_id: &str, event: &AlertEvent, page: i64, items: usize) -> String {
    let fields = match &event.fields {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), field_value(alert_id, v, page, items)))
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

fn events_pager(id: &str, page: i64, total: i64) -> String {
    let pages = (total + EVENTS_PER_PAGE - 1) / EVENTS_PER_PAGE;
    if pages <= 1 {
        return String::new();
    }
    let link = |n: i64, label: &str| format!(r#"<a href="/alerts/{}?page={n}">{label}</a>"#, esc(id));
    let prev = if page > 1 { link(page - 1, "earlier events") } else { String::new() };
    let next = if page < pages { link(page + 1, "later events") } else { String::new() };
    format!(r#"<nav class="pager">{prev} page {page} of {pages} {next}</nav>"#)
}

pub(crate) async fn show(
    State(shared): State<Arc<Shared>>,
    PageViewer(viewer): PageViewer,
    Path(id): Path<String>,
    query: Result<Query<DetailQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let items = query.items.unwrap_or(1).clamp(1, 1_000_000);
    let (alert, events, total) = shared.store.alert(&id, EVENTS_PER_PAGE, (page - 1) * EVENTS_PER_PAGE).await?;
    let events_html = if events.is_empty() {
        "<p>No events are recorded for this alert.</p>".to_owned()
    } else {
        let blocks = events.iter().map(|e| event_block(&alert.id, e, page, items)).collect::<Vec<_>>().join("\n");
        format!("{blocks}\n{}", events_pager(&alert.id, page, total))
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
        n = total,
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
