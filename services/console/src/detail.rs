//! One alert: what happened, what it may implicate, who handled it, the events behind it, and the actions.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use dingguard_store::{Alert, AlertEvent, AlertStatus};

use crate::actions::display_name;
use crate::auth::{PageViewer, Viewer};
use crate::error::PageError;
use crate::html;
use crate::{Shared, pages};
use maud::{Markup, html};

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

fn handled(shared: &Shared, by: Option<&str>, at: Option<i64>) -> Markup {
    match (by, at) {
        (Some(by), Some(at)) => html! { "by " (display_name(shared, by)) " at " (html::time(at)) " (Macau)" },
        _ => html! { "—" },
    }
}

fn actions(viewer: &Viewer, alert: &Alert) -> Markup {
    let button = |action: &str, label: &str| {
        html! {
            form.inline method="post" action={ "/alerts/" (alert.id) "/" (action) } {
                (html::csrf_field(viewer))
                button type="submit" name="action" value=(action) { (label) }
            }
        }
    };
    match alert.status {
        AlertStatus::Open => html! { (button("acknowledge", "Acknowledge")) " " (button("resolve", "Resolve")) },
        AlertStatus::Acknowledged => button("resolve", "Resolve"),
        AlertStatus::Resolved => html! { p { "This alert is resolved." } },
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
fn field_value(id: &str, value: &serde_json::Value, page: i64, items: usize) -> Markup {
    match value {
        serde_json::Value::String(s) => html! { (s) },
        serde_json::Value::Array(list) => {
            let start = (items - 1).saturating_mul(ITEMS_PER_PAGE);
            let shown: Vec<String> = list
                .iter()
                .skip(start)
                .take(ITEMS_PER_PAGE)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect();
            let last = (start + shown.len()).min(list.len());
            let link = |n: usize| format!("/alerts/{id}?page={page}&items={n}");
            html! {
                (shown.join(", "))
                @if list.len() > ITEMS_PER_PAGE {
                    br;
                    span.muted {
                        (start + 1) "–" (last) " of " (list.len())
                        @if items > 1 { " " a href=(link(items - 1)) { "previous" } }
                        @if last < list.len() { " " a href=(link(items + 1)) { "next" } }
                    }
                }
            }
        }
        other => html! { (other.to_string()) },
    }
}

fn event_block(alert_id: &str, event: &AlertEvent, page: i64, items: usize) -> Markup {
    html! {
        article.event data-ce-id=(event.ce_id) {
            h3 { (event.event_type) " · " (html::time(event.occurred_at_ms)) " (Macau)" }
            p.muted { "Event id " (event.ce_id) }
            table.fields { tbody {
                @match &event.fields {
                    serde_json::Value::Object(map) => {
                        @for (k, v) in map {
                            tr { th { (k) } td { (field_value(alert_id, v, page, items)) } }
                        }
                    }
                    other => { tr { td colspan="2" { (other.to_string()) } } }
                }
            } }
        }
    }
}

fn events_pager(id: &str, page: i64, total: i64) -> Markup {
    let pages = (total + EVENTS_PER_PAGE - 1) / EVENTS_PER_PAGE;
    let link = |n: i64| format!("/alerts/{id}?page={n}");
    html! {
        @if pages > 1 {
            nav.pager {
                @if page > 1 { a href=(link(page - 1)) { "earlier events" } }
                " page " (page) " of " (pages) " "
                @if page < pages { a href=(link(page + 1)) { "later events" } }
            }
        }
    }
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
    let body = html! {
        p { a href="/alerts" { "← All alerts" } }
        h1 { (alert.message) }
        dl.facts id="alert" data-alert-id=(alert.id) data-status=(alert.status.as_str()) {
            dt { "Severity" } dd { span class={ "sev sev-" (alert.severity) } { (alert.severity) } }
            dt { "Rule" } dd { (alert.rule) }
            dt { "Status" } dd.status { (alert.status.as_str()) }
            dt { "Matches" } dd { (alert.event_count) }
            dt { "First seen" } dd { (html::time(alert.first_seen_ms)) " (Macau)" }
            dt { "Last seen" } dd { (html::time(alert.last_seen_ms)) " (Macau)" }
            dt { "Dedup key" } dd { (alert.dedup_key.as_deref().unwrap_or("—")) }
            dt { "Acknowledged" }
            dd.acknowledged { (handled(&shared, alert.acknowledged_by.as_deref(), alert.acknowledged_at_ms)) }
            dt { "Resolved" } dd.resolved { (handled(&shared, alert.resolved_by.as_deref(), alert.resolved_at_ms)) }
        }
        section.pdpa { h2 { "Macau PDPA" } p { (pdpa_note(&alert.pdpa)) } }
        section.actions { h2 { "Actions" } (actions(&viewer, &alert)) }
        section {
            h2 { "Silence" }
            p { "Hold back new alerts of this rule, or only those with this dedup key, for a while. Matches are                  still counted." }
            (pages::silence_form(&viewer, &alert.rule, alert.dedup_key.as_deref().unwrap_or_default()))
        }
        section {
            h2 { "Triggering events (" (total) ")" }
            @if events.is_empty() {
                p { "No events are recorded for this alert." }
            } @else {
                @for e in &events { (event_block(&alert.id, e, page, items)) }
                (events_pager(&alert.id, page, total))
            }
        }
    };
    Ok(html::page(&alert.message, Some(&viewer), body).into_response())
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
