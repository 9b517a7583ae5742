//! The approval pages: an inbox of requests waiting on the signed-in person, a request's page with who else must
//! decide and by when, the approve / reject form, and the decision links sent by DingTalk work notification.
//! Every decision goes through the approver, which checks it against the slots frozen onto the request.

use std::sync::Arc;

use axum::Form;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dingguard_approver::Approver;
use serde_json::Value;

use crate::Shared;
use crate::auth::{self, MemberViewer, Viewer, form_csrf};
use crate::error::{ConsoleError, PageError};
use crate::html::{self, esc};
use crate::login::encode_query;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/approvals", get(inbox))
        .route("/approvals/open/{token}", get(open_link))
        .route("/approvals/{id}", get(show))
        .route("/approvals/{id}/decision", post(decide))
}

fn approver(shared: &Shared) -> Result<&Approver, ConsoleError> {
    shared.settings.approvals.as_ref().ok_or_else(|| ConsoleError::NotFound("The approval pages".into()))
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn people(shared: &Shared, ids: &Value) -> String {
    let names: Vec<String> = ids
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|id| esc(&crate::actions::display_name(shared, id)))
        .collect();
    if names.is_empty() { "—".into() } else { names.join("; ") }
}

fn when(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_i64).map_or_else(|| "—".into(), html::time)
}

/// Requests on one page of the inbox.
const PER_PAGE: i64 = 50;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PageQuery {
    page: Option<i64>,
}

fn pager(page: i64, total: i64) -> String {
    let pages = (total + PER_PAGE - 1) / PER_PAGE;
    if pages <= 1 {
        return String::new();
    }
    let prev = if page > 1 {
        format!(r#"<a rel="prev" href="/approvals?page={}">Newer</a> "#, page - 1)
    } else {
        String::new()
    };
    let next = if page < pages {
        format!(r#" <a rel="next" href="/approvals?page={}">Older</a>"#, page + 1)
    } else {
        String::new()
    };
    format!(r#"<nav class="pager">{prev}page {page} of {pages}{next}</nav>"#)
}

async fn inbox(
    State(shared): State<Arc<Shared>>,
    MemberViewer(viewer): MemberViewer,
    query: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let page = query.ok().and_then(|q| q.0.page).unwrap_or(1).clamp(1, 100_000);
    let found = approver(&shared)?.inbox(&viewer.user_id, page, PER_PAGE).await.map_err(ConsoleError::from)?;
    let requests = &found.requests;
    let body = if found.total == 0 {
        r#"<h1>Approvals</h1><p id="inbox-empty">Nothing waits for your decision.</p>"#.to_owned()
    } else {
        let rows: String = requests
            .iter()
            .map(|r| {
                let id = esc(text(r, "id"));
                format!(
                    r#"<tr data-request-id="{id}"><td><a href="/approvals/{id}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                    esc(text(&r["file"], "name")),
                    esc(&crate::actions::display_name(&shared, text(r, "requester"))),
                    esc(text(r, "reason")),
                    when(r, "expires_at_ms"),
                )
            })
            .collect();
        format!(
            r#"<h1>Approvals</h1>
<p>{} request(s) wait for your decision.</p>
<table id="inbox"><thead><tr><th>File</th><th>Requester</th><th>Reason</th><th>Decide by</th></tr></thead>
<tbody>{rows}</tbody></table>
{}"#,
            found.total,
            pager(found.page, found.total)
        )
    };
    Ok(html::page("Approvals", Some(&viewer), &body).into_response())
}

/// A decision link from a work notification. Without a session it first goes through sign-in and comes back;
/// with one it is used up (if it is this person's, unused and unexpired) and opens the request. Link previews
/// have no session, so they cannot use it up.
async fn open_link(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, PageError> {
    let viewer = match auth::member_from_session(&shared, &headers).await {
        Ok(viewer) => viewer,
        Err(ConsoleError::Unauthenticated) => {
            let back = format!("/approvals/open/{token}");
            return Ok(html::see_other(&format!("/login?next={}", encode_query(&back))));
        }
        Err(other) => return Err(other.into()),
    };
    let id = approver(&shared)?.open_link(&viewer.user_id, &token).await.map_err(ConsoleError::from)?;
    Ok(html::see_other(&format!("/approvals/{}", encode_query(&id))))
}

fn slots_table(shared: &Shared, request: &Value) -> String {
    let rows: String = request["slots"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let deputies =
                if s["escalated"].as_bool() == Some(true) { people(shared, &s["deputies"]) } else { "—".into() };
            format!(
                r#"<tr data-slot="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="slot-state">{}</td></tr>"#,
                esc(text(s, "role")),
                esc(text(s, "role")),
                people(shared, &s["eligible"]),
                deputies,
                people(shared, &s["approvals"]),
                esc(text(s, "decision")),
            )
        })
        .collect();
    format!(
        r#"<table id="slots"><thead><tr><th>Slot</th><th>Who may decide</th><th>Deputies (escalated)</th><th>Approved by</th><th>State</th></tr></thead>
<tbody>{rows}</tbody></table>"#
    )
}

fn decisions_list(shared: &Shared, request: &Value) -> String {
    let items: String = request["decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "<li>{} — {} {}{}</li>",
                html::time(d["at_ms"].as_i64().unwrap_or_default()),
                esc(&crate::actions::display_name(shared, text(d, "user"))),
                esc(text(d, "decision")),
                if text(d, "comment").is_empty() {
                    String::new()
                } else {
                    format!(": “{}”", esc(text(d, "comment")))
                },
            )
        })
        .collect();
    if items.is_empty() { "<p>No decisions yet.</p>".into() } else { format!(r#"<ul id="decisions">{items}</ul>"#) }
}

fn decision_form(viewer: &Viewer, id: &str) -> String {
    format!(
        r#"<form id="decide" method="post" action="/approvals/{}/decision">
{}
<label>Comment <textarea name="comment" maxlength="2000" rows="3"></textarea></label>
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="reject" class="danger">Reject</button>
</form>"#,
        esc(id),
        html::csrf_field(viewer)
    )
}

async fn show(
    State(shared): State<Arc<Shared>>,
    MemberViewer(viewer): MemberViewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let approvals = approver(&shared)?;
    let request = approvals.request_as(&viewer.user_id, &id).await.map_err(ConsoleError::from)?;
    let status = text(&request, "status");
    let can_decide = approvals.awaits_decision(&viewer.user_id, &id).await.map_err(ConsoleError::from)?;
    let grant = match request.get("granted_until_ms").and_then(Value::as_i64) {
        Some(until) if status == "granted" => format!(
            r#"<p id="grant">Granted: {} may download this file until {} (Macau time).</p>"#,
            esc(&crate::actions::display_name(&shared, text(&request, "requester"))),
            html::time(until)
        ),
        _ => String::new(),
    };
    let file = &request["file"];
    let space = file.get("space").and_then(Value::as_str).map_or_else(String::new, |s| format!(" in {}", esc(s)));
    let body = format!(
        r#"<h1>Download request</h1>
<p>Status: <strong id="status" data-status="{status}">{status}</strong></p>
{grant}
<dl>
<dt>File</dt><dd>{}{space}</dd>
<dt>Requester</dt><dd>{}</dd>
<dt>Reason</dt><dd>{}</dd>
<dt>Asked</dt><dd>{}</dd>
<dt>Decide by</dt><dd>{}</dd>
</dl>
<h2>Who must decide</h2>
{}
<h2>Decisions</h2>
{}
{}"#,
        esc(text(file, "name")),
        esc(&crate::actions::display_name(&shared, text(&request, "requester"))),
        esc(text(&request, "reason")),
        when(&request, "created_at_ms"),
        when(&request, "expires_at_ms"),
        slots_table(&shared, &request),
        decisions_list(&shared, &request),
        if can_decide { decision_form(&viewer, &id) } else { String::new() },
        status = esc(status),
    );
    Ok(html::page("Download request", Some(&viewer), &body).into_response())
}

async fn decide(
    State(shared): State<Arc<Shared>>,
    MemberViewer(viewer): MemberViewer,
    Path(id): Path<String>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, PageError> {
    let fields = form.map(|Form(f)| f).unwrap_or_default();
    viewer.check_csrf(form_csrf(&fields))?;
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default();
    approver(&shared)?
        .decide(&viewer.user_id, &id, field("decision"), field("comment").trim(), &viewer.via)
        .await
        .map_err(ConsoleError::from)?;
    Ok(html::see_other(&format!("/approvals/{}", encode_query(&id))))
}
