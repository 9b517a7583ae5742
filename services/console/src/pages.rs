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
use crate::html::{self, esc};
use crate::{Shared, detail, feed};

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

fn options(values: &[&str], selected: &str) -> String {
    let mut out = String::from(r#"<option value="">all</option>"#);
    for v in values {
        let mark = if *v == selected { " selected" } else { "" };
        out.push_str(&format!(r#"<option value="{v}"{mark}>{v}</option>"#));
    }
    out
}

/// One row of the list; `console.js` builds the same markup for rows that arrive live.
pub(crate) fn alert_row(alert: &Alert) -> String {
    format!(
        r#"<tr data-alert-id="{id}" data-status="{status}"><td><span class="sev sev-{sev}">{sev}</span></td>
<td>{rule}</td><td>{status}</td><td class="num">{count}</td><td>{last}</td>
<td><a href="/alerts/{id}">{message}</a></td></tr>"#,
        id = esc(&alert.id),
        status = alert.status.as_str(),
        sev = esc(&alert.severity),
        rule = esc(&alert.rule),
        count = alert.event_count,
        last = html::time(alert.last_seen_ms),
        message = esc(&alert.message),
    )
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
    let rows = if alerts.is_empty() {
        r#"<tr class="empty"><td colspan="6">No alerts match.</td></tr>"#.to_owned()
    } else {
        alerts.iter().map(alert_row).collect::<Vec<_>>().join("\n")
    };
    let body = format!(
        r#"<h1>Alerts</h1>
<form class="filters" method="get" action="/alerts">
<label>Severity <select name="severity">{severities}</select></label>
<label>Rule <input name="rule" value="{rule}" placeholder="any rule"></label>
<label>Status <select name="status">{statuses}</select></label>
<button type="submit">Filter</button> <a href="/alerts">Clear</a>
</form>
<p class="live" id="live" data-live="connecting">Live updates: connecting…</p>
<p class="suppressed">{total} matches suppressed so far ({silenced} by silences, {excepted} by rule exceptions).
<a href="/silences">Silences and suppressions</a></p>
<table id="alerts" data-severity="{severity}" data-rule="{rule}" data-status="{status}">
<thead><tr><th>Severity</th><th>Rule</th><th>Status</th><th>Count</th><th>Last seen (Macau)</th>
<th>Message</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<script src="/assets/console.js" defer></script>"#,
        severities = options(&SEVERITIES, query.severity.trim()),
        statuses = options(&STATUSES, query.status.trim()),
        severity = esc(query.severity.trim()),
        rule = esc(query.rule.trim()),
        status = esc(query.status.trim()),
        total = silenced + excepted,
    );
    Ok(html::page("Alerts", Some(&viewer), &body).into_response())
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
pub(crate) fn silence_form(viewer: &Viewer, rule: &str, dedup_key: &str) -> String {
    format!(
        r#"<form class="silence" method="post" action="/silences">{csrf}
<label>Rule <input name="rule" value="{rule}" required></label>
<label>Dedup key (optional) <input name="dedup_key" value="{key}"></label>
<label>Reason
<textarea name="reason" required maxlength="1000" placeholder="Why these alerts may wait"></textarea></label>
<label>Expires in hours <input name="expires_in_hours" type="number" min="1" max="{max}" required></label>
<button type="submit">Create silence</button>
</form>"#,
        csrf = html::csrf_field(viewer),
        rule = esc(rule),
        key = esc(dedup_key),
        max = actions::MAX_SILENCE_HOURS,
    )
}

async fn silences(State(shared): State<Arc<Shared>>, PageViewer(viewer): PageViewer) -> Result<Response, PageError> {
    let now = shared.clock.now_ms();
    let silences = shared.store.silences().await?;
    let mut rows: Vec<String> = silences
        .iter()
        .map(|s| {
            let state = if s.expires_at_ms > now { "active" } else { "expired" };
            format!(
                r#"<tr data-silence-id="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>
<td>{}</td><td>{}</td><td class="num">{}</td><td>{state}</td></tr>"#,
                esc(&s.id),
                esc(s.rule.as_deref().unwrap_or("every rule")),
                esc(s.dedup_key.as_deref().unwrap_or("any")),
                esc(&s.reason),
                esc(&actions::display_name(&shared, &s.creator)),
                html::time(s.created_at_ms),
                html::time(s.expires_at_ms),
                s.matched_count,
            )
        })
        .collect();
    if rows.is_empty() {
        rows.push(r#"<tr class="empty"><td colspan="8">No silences.</td></tr>"#.into());
    }
    let mut counts: Vec<String> = shared
        .store
        .suppressions()
        .await?
        .iter()
        .map(|(rule, kind, name, count)| {
            format!(
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="num">{count}</td></tr>"#,
                esc(rule),
                esc(kind),
                esc(name)
            )
        })
        .collect();
    if counts.is_empty() {
        counts.push(r#"<tr class="empty"><td colspan="4">Nothing suppressed yet.</td></tr>"#.into());
    }
    let body = format!(
        r#"<h1>Silences</h1>
<p>A silence holds back new alerts of a rule (and, if given, one dedup key) until it expires.
Every match it holds back is counted.</p>
<table id="silences"><thead><tr><th>Rule</th><th>Dedup key</th><th>Reason</th><th>Created by</th>
<th>Created (Macau)</th><th>Expires (Macau)</th><th>Matched</th><th>State</th></tr></thead>
<tbody>
{}
</tbody></table>
<h2>Suppressed matches</h2>
<p>Matches held back by rule exceptions or silences, by rule.</p>
<table id="suppressions"><thead><tr><th>Rule</th><th>Kind</th><th>Exception or silence</th><th>Count</th></tr></thead>
<tbody>
{}
</tbody></table>
<h2>New silence</h2>
{}"#,
        rows.join("\n"),
        counts.join("\n"),
        silence_form(&viewer, "", "")
    );
    Ok(html::page("Silences", Some(&viewer), &body).into_response())
}
