//! The browser's pages: the live alert list, the alert detail (see `detail`), silences, and the form posts
//! behind their buttons. Every post checks the session's CSRF token before it touches anything.

use std::sync::Arc;

use axum::Form;
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dingguard_store::{Alert, AlertStatus};

use crate::actions::{self, FilterQuery, SEVERITIES, STATUSES, SilenceInput, invalid_query};
use crate::auth::{PageViewer, Viewer, form_csrf};
use crate::error::{ConsoleError, PageError};
use crate::html;
use crate::{Shared, detail, feed};
use maud::{Markup, html};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(|| async { html::see_other("/alerts") }))
        .route("/alerts", get(list))
        .route("/alerts/stream", get(feed::stream))
        .route("/alerts/{id}", get(detail::show))
        .route("/alerts/{id}/acknowledge", post(acknowledge))
        .route("/alerts/{id}/resolve", post(resolve))
        .route("/silences", get(silences).post(create_silence))
        .route(
            "/assets/console.js",
            get(|| asset("text/javascript; charset=utf-8", include_str!("../assets/console.js"))),
        )
        .route("/assets/console.css", get(|| asset("text/css; charset=utf-8", include_str!("../assets/console.css"))))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

type Fields = Vec<(String, String)>;

/// The fields of a posted form, once its CSRF token is shown to belong to the viewer's session.
fn checked(viewer: &Viewer, form: Result<Form<Fields>, FormRejection>) -> Result<Fields, ConsoleError> {
    let fields = form.map(|Form(f)| f).unwrap_or_default();
    viewer.check_csrf(form_csrf(&fields))?;
    Ok(fields)
}

fn field(fields: &Fields, name: &str) -> Option<String> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn options(values: &[&str], selected: &str) -> Markup {
    html! {
        option value="" { "all" }
        @for v in values {
            option value=(v) selected[*v == selected] { (v) }
        }
    }
}

/// One row of the list; `console.js` builds the same markup for rows that arrive live.
pub(crate) fn alert_row(alert: &Alert) -> Markup {
    html! {
        tr data-alert-id=(alert.id) data-status=(alert.status.as_str()) {
            td { span class={ "sev sev-" (alert.severity) } { (alert.severity) } }
            td { (alert.rule) }
            td { (alert.status.as_str()) }
            td.num { (alert.event_count) }
            td { (html::time(alert.last_seen_ms)) }
            td { a href={ "/alerts/" (alert.id) } { (alert.message) } }
        }
    }
}

async fn list(
    State(shared): State<Arc<Shared>>,
    PageViewer(viewer): PageViewer,
    query: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let query = query.map(|Query(q)| q).map_err(|_| invalid_query())?;
    let alerts = shared.store.alerts(&query.to_filter()?).await?;
    let suppressions = shared.store.suppressions().await?;
    let by_kind = |kind: &str| suppressions.iter().filter(|s| s.1 == kind).map(|s| s.3).sum::<i64>();
    let (silenced, excepted) = (by_kind("silence"), by_kind("exception"));
    let (severity, rule, status) = (query.severity.trim(), query.rule.trim(), query.status.trim());
    let body = html! {
        h1 { "Alerts" }
        form.filters method="get" action="/alerts" {
            label { "Severity " select name="severity" { (options(&SEVERITIES, severity)) } }
            label { "Rule " input name="rule" value=(rule) placeholder="any rule"; }
            label { "Status " select name="status" { (options(&STATUSES, status)) } }
            button type="submit" { "Filter" } " " a href="/alerts" { "Clear" }
        }
        p.live id="live" data-live="connecting" { "Live updates: connecting…" }
        p.suppressed {
            (silenced + excepted) " matches suppressed so far (" (silenced) " by silences, " (excepted)
            " by rule exceptions). "
            a href="/silences" { "Silences and suppressions" }
        }
        table id="alerts" data-severity=(severity) data-rule=(rule) data-status=(status) {
            thead { tr {
                th { "Severity" } th { "Rule" } th { "Status" } th { "Count" } th { "Last seen (Macau)" }
                th { "Message" }
            } }
            tbody {
                @if alerts.is_empty() {
                    tr.empty { td colspan="6" { "No alerts match." } }
                }
                @for alert in &alerts { (alert_row(alert)) }
            }
        }
        script src="/assets/console.js" defer {}
    };
    Ok(html::page("Alerts", Some(&viewer), body).into_response())
}

async fn acknowledge(
    state: State<Arc<Shared>>,
    viewer: PageViewer,
    id: Path<String>,
    form: Result<Form<Fields>, FormRejection>,
) -> Result<Response, PageError> {
    move_to(state, viewer, id, form, AlertStatus::Acknowledged).await
}

async fn resolve(
    state: State<Arc<Shared>>,
    viewer: PageViewer,
    id: Path<String>,
    form: Result<Form<Fields>, FormRejection>,
) -> Result<Response, PageError> {
    move_to(state, viewer, id, form, AlertStatus::Resolved).await
}

async fn move_to(
    State(shared): State<Arc<Shared>>,
    PageViewer(viewer): PageViewer,
    Path(id): Path<String>,
    form: Result<Form<Fields>, FormRejection>,
    to: AlertStatus,
) -> Result<Response, PageError> {
    checked(&viewer, form)?;
    let alert = actions::move_alert(&shared, &viewer, &id, to).await?;
    Ok(html::see_other(&format!("/alerts/{}", alert.id)))
}

async fn create_silence(
    State(shared): State<Arc<Shared>>,
    PageViewer(viewer): PageViewer,
    form: Result<Form<Fields>, FormRejection>,
) -> Result<Response, PageError> {
    let fields = checked(&viewer, form)?;
    let hours = match field(&fields, "expires_in_hours").map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()) {
        None => None,
        Some(h) => Some(
            h.parse::<i64>()
                .map_err(|_| ConsoleError::Invalid("The expiry must be a whole number of hours, e.g. 24".into()))?,
        ),
    };
    let input = SilenceInput {
        rule: field(&fields, "rule"),
        dedup_key: field(&fields, "dedup_key"),
        reason: field(&fields, "reason"),
        expires_in_hours: hours,
    };
    actions::create_silence(&shared, &viewer, input).await?;
    Ok(html::see_other("/silences"))
}

/// The form that silences a rule (and optionally one dedup key); rule and key are filled in from an alert.
pub(crate) fn silence_form(viewer: &Viewer, rule: &str, dedup_key: &str) -> Markup {
    html! {
        form.silence method="post" action="/silences" {
            (html::csrf_field(viewer))
            label { "Rule " input name="rule" value=(rule) required; }
            label { "Dedup key (optional) " input name="dedup_key" value=(dedup_key); }
            label { "Reason"
                textarea name="reason" required maxlength="1000" placeholder="Why these alerts may wait" {} }
            label { "Expires in hours "
                input name="expires_in_hours" type="number" min="1" max=(actions::MAX_SILENCE_HOURS) required; }
            button type="submit" { "Create silence" }
        }
    }
}

async fn silences(State(shared): State<Arc<Shared>>, PageViewer(viewer): PageViewer) -> Result<Response, PageError> {
    let now = shared.clock.now_ms();
    let silences = shared.store.silences().await?;
    let suppressions = shared.store.suppressions().await?;
    let body = html! {
        h1 { "Silences" }
        p { "A silence holds back new alerts of a rule (and, if given, one dedup key) until it expires.              Every match it holds back is counted." }
        table id="silences" {
            thead { tr {
                th { "Rule" } th { "Dedup key" } th { "Reason" } th { "Created by" } th { "Created (Macau)" }
                th { "Expires (Macau)" } th { "Matched" } th { "State" }
            } }
            tbody {
                @if silences.is_empty() { tr.empty { td colspan="8" { "No silences." } } }
                @for s in &silences {
                    tr data-silence-id=(s.id) {
                        td { (s.rule.as_deref().unwrap_or("every rule")) }
                        td { (s.dedup_key.as_deref().unwrap_or("any")) }
                        td { (s.reason) }
                        td { (actions::display_name(&shared, &s.creator)) }
                        td { (html::time(s.created_at_ms)) }
                        td { (html::time(s.expires_at_ms)) }
                        td.num { (s.matched_count) }
                        td { @if s.expires_at_ms > now { "active" } @else { "expired" } }
                    }
                }
            }
        }
        h2 { "Suppressed matches" }
        p { "Matches held back by rule exceptions or silences, by rule." }
        table id="suppressions" {
            thead { tr { th { "Rule" } th { "Kind" } th { "Exception or silence" } th { "Count" } } }
            tbody {
                @if suppressions.is_empty() { tr.empty { td colspan="4" { "Nothing suppressed yet." } } }
                @for (rule, kind, name, count) in &suppressions {
                    tr { td { (rule) } td { (kind) } td { (name) } td.num { (count) } }
                }
            }
        }
        h2 { "New silence" }
        (silence_form(&viewer, "", ""))
    };
    Ok(html::page("Silences", Some(&viewer), body).into_response())
}
