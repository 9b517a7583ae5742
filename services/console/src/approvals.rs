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
use dingguard_approver::{Approver, RequestView};
use maud::{Markup, html};

use crate::Shared;
use crate::auth::{self, MemberViewer, Viewer, form_csrf};
use crate::error::{ConsoleError, PageError};
use crate::html;
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

/// People by name, `; `-separated; a dash for nobody.
fn people(shared: &Shared, ids: &[String]) -> String {
    let names: Vec<String> = ids.iter().map(|id| crate::actions::display_name(shared, id)).collect();
    if names.is_empty() { "—".into() } else { names.join("; ") }
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "—".into(), html::time)
}

/// Requests on one page of the inbox.
const PER_PAGE: i64 = 50;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PageQuery {
    page: Option<i64>,
}

fn pager(page: i64, total: i64) -> Markup {
    let pages = (total + PER_PAGE - 1) / PER_PAGE;
    html! {
        @if pages > 1 {
            nav.pager {
                @if page > 1 { a rel="prev" href={ "/approvals?page=" (page - 1) } { "Newer" } " " }
                "page " (page) " of " (pages)
                @if page < pages { " " a rel="next" href={ "/approvals?page=" (page + 1) } { "Older" } }
            }
        }
    }
}

async fn inbox(
    State(shared): State<Arc<Shared>>,
    MemberViewer(viewer): MemberViewer,
    query: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let page = query.ok().and_then(|q| q.0.page).unwrap_or(1).clamp(1, 100_000);
    let found = approver(&shared)?.inbox(&viewer.user_id, page, PER_PAGE).await.map_err(ConsoleError::from)?;
    let body = html! {
        h1 { "Approvals" }
        @if found.total == 0 {
            p id="inbox-empty" { "Nothing waits for your decision." }
        } @else {
            p { (found.total) " request(s) wait for your decision." }
            table id="inbox" {
                thead { tr { th { "File" } th { "Requester" } th { "Reason" } th { "Decide by" } } }
                tbody {
                    @for r in &found.requests {
                        tr data-request-id=(r.id) {
                            td { a href={ "/approvals/" (r.id) } { (r.file.name) } }
                            td { (crate::actions::display_name(&shared, &r.requester)) }
                            td { (r.reason) }
                            td { (when(r.expires_at_ms)) }
                        }
                    }
                }
            }
            (pager(found.page, found.total))
        }
    };
    Ok(html::page("Approvals", Some(&viewer), body).into_response())
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

fn slots_table(shared: &Shared, request: &RequestView) -> Markup {
    html! {
        table id="slots" {
            thead { tr {
                th { "Slot" } th { "Who may decide" } th { "Deputies (escalated)" } th { "Approved by" } th { "State" }
            } }
            tbody {
                @for s in &request.slots {
                    tr data-slot=(s.role) {
                        td { (s.role) }
                        td { (people(shared, &s.eligible)) }
                        td { @if s.escalated { (people(shared, &s.deputies)) } @else { "—" } }
                        td { (people(shared, &s.approvals)) }
                        td.slot-state { (s.decision.as_str()) }
                    }
                }
            }
        }
    }
}

fn decisions_list(shared: &Shared, request: &RequestView) -> Markup {
    html! {
        @if request.decisions.is_empty() {
            p { "No decisions yet." }
        } @else {
            ul id="decisions" {
                @for d in &request.decisions {
                    li {
                        (html::time(d.at_ms)) " — " (crate::actions::display_name(shared, &d.user)) " "
                        (d.decision.as_str())
                        @if !d.comment.is_empty() { ": “" (d.comment) "”" }
                    }
                }
            }
        }
    }
}

fn decision_form(viewer: &Viewer, id: &str) -> Markup {
    html! {
        form id="decide" method="post" action={ "/approvals/" (id) "/decision" } {
            (html::csrf_field(viewer))
            label { "Comment " textarea name="comment" maxlength="2000" rows="3" {} }
            button type="submit" name="decision" value="approve" { "Approve" }
            " "
            button.danger type="submit" name="decision" value="reject" { "Reject" }
        }
    }
}

async fn show(
    State(shared): State<Arc<Shared>>,
    MemberViewer(viewer): MemberViewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let approvals = approver(&shared)?;
    let request = approvals.request_as(&viewer.user_id, &id).await.map_err(ConsoleError::from)?;
    let can_decide = approvals.awaits_decision(&viewer.user_id, &id).await.map_err(ConsoleError::from)?;
    let requester = crate::actions::display_name(&shared, &request.requester);
    let status = request.status.as_str();
    let body = html! {
        h1 { "Download request" }
        p { "Status: " strong id="status" data-status=(status) { (status) } }
        @if let (Some(until), "granted") = (request.granted_until_ms, status) {
            p id="grant" { "Granted: " (requester) " may download this file until " (html::time(until)) " (Macau time)." }
        }
        dl {
            dt { "File" } dd { (request.file.name) @if let Some(space) = &request.file.space { " in " (space) } }
            dt { "Requester" } dd { (requester) }
            dt { "Reason" } dd { (request.reason) }
            dt { "Asked" } dd { (html::time(request.created_at_ms)) }
            dt { "Decide by" } dd { (when(request.expires_at_ms)) }
        }
        h2 { "Who must decide" }
        (slots_table(&shared, &request))
        h2 { "Decisions" }
        (decisions_list(&shared, &request))
        @if can_decide { (decision_form(&viewer, &id)) }
    };
    Ok(html::page("Download request", Some(&viewer), body).into_response())
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
