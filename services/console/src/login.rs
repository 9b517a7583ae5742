//! Signing in (password or single-use link) and out.

use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use dingguard_store::console::TokenKind;
use serde::Deserialize;

use crate::auth::{self, Via, member_access, start_session, token_hash};
use crate::error::{ConsoleError, PageError};
use crate::html;
use crate::throttle::{self, Attempt, DEVICE_COOKIE};
use crate::{Peer, Shared};
use maud::html;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/link/{token}", get(link_page).post(redeem_link))
        .route("/login/dingtalk", post(crate::messages::send_sign_in_link))
        .route("/logout", post(logout))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginForm {
    user_id: String,
    password: String,
    next: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NextQuery {
    next: String,
}

/// A page of this site to return to after signing in; anything else (another host, `//evil`, `/\evil`) is
/// dropped, so a crafted sign-in URL cannot send anyone elsewhere.
pub(crate) fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 512
        && !next.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    ok.then_some(next)
}

pub(crate) fn login_form(shared: &Shared, message: Option<&str>, user_id: &str, next: &str) -> maud::Markup {
    let next = local_path(next).unwrap_or_default();
    let body = html! {
        h1 { "Sign in to dingguard" }
        p { "Sign in with your DingTalk user id: the security team for alerts, everyone for download approvals." }
        @if let Some(m) = message { p.error role="alert" { (m) } }
        form.login method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            label { "User id " input name="user_id" value=(user_id) autocomplete="username" required autofocus; }
            label { "Password " input name="password" type="password" autocomplete="current-password" required; }
            button type="submit" { "Sign in" }
        }
        @if shared.settings.messenger.is_some() {
            h2 { "No password?" }
            form.login-link method="post" action="/login/dingtalk" {
                input type="hidden" name="next" value=(next);
                label { "User id " input name="user_id" autocomplete="username" required; }
                button type="submit" { "Send me a sign-in link in DingTalk" }
            }
        }
    };
    html::page("Sign in", None, body)
}

async fn login_page(State(shared): State<Arc<Shared>>, query: Result<Query<NextQuery>, QueryRejection>) -> Response {
    let next = query.map(|Query(q)| q.next).unwrap_or_default();
    login_form(&shared, None, "", &next).into_response()
}

async fn login(
    State(shared): State<Arc<Shared>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        let page = login_form(&shared, Some("Send the sign-in form."), "", "");
        return html::with_status(StatusCode::UNPROCESSABLE_ENTITY, page);
    };
    let user_id = form.user_id.trim();
    let client = throttle::client_address(&shared, &headers, peer);
    match attempt(&shared, user_id, form.password, client, auth::cookie(&headers, DEVICE_COOKIE)).await {
        Ok((session, device)) => {
            let mut response = signed_in(&shared, user_id, session, &form.next);
            if let Ok(value) = axum::http::HeaderValue::from_str(&device) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(error) => {
            if error.status().is_server_error() {
                return PageError(error).into_response();
            }
            let retry_after = error.retry_after_secs();
            let page = login_form(&shared, Some(&error.public_message()), user_id, &form.next);
            let mut response = html::with_status(error.status(), page);
            if let Some(secs) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
            }
            response
        }
    }
}

/// Back to the page that asked for the sign-in, else to the person's home: alerts for the security team,
/// the approval inbox for everyone else.
pub(crate) fn signed_in(shared: &Shared, user_id: &str, cookie: String, next: &str) -> Response {
    let home = if member_access(shared, user_id).is_ok_and(|a| a.alerts) { "/alerts" } else { "/approvals" };
    let location = local_path(next).unwrap_or(home).to_owned();
    (StatusCode::SEE_OTHER, [(header::LOCATION, location), (header::SET_COOKIE, cookie)]).into_response()
}

/// Checks the throttle first, then the password (against a dummy hash when there is no account, so both
/// cases take the same time and say the same thing), and only then current membership: a refusal for that
/// tells the person something true only once they have proved who they are. On success, the session cookie and
/// the device cookie that remembers this browser for this user.
async fn attempt(
    shared: &Shared,
    user_id: &str,
    password: String,
    client: String,
    device_cookie: Option<&str>,
) -> Result<(String, String), ConsoleError> {
    if user_id.is_empty() || password.is_empty() || user_id.len() > 256 || password.len() > 1024 {
        return Err(ConsoleError::Invalid("Enter your user id and password.".into()));
    }
    let attempt = Attempt::new(shared, user_id, client, device_cookie).await?;
    if let Some(wait_ms) = throttle::wait_for(shared, &attempt).await? {
        shared.metrics.login("rate_limited");
        tracing::warn!(user = user_id, client = %attempt.client, wait_ms, "console sign-in held back after failures");
        return Err(ConsoleError::RateLimited { retry_after_secs: (wait_ms + 999) / 1000 });
    }
    let member = shared.directory().is_member(user_id);
    let stored = shared.passwords.get(user_id).filter(|_| member).cloned();
    let phc = stored.clone().unwrap_or_else(|| shared.dummy_hash.clone());
    let verified = auth::verify_password(shared, phc, password).await && stored.is_some();
    if !verified {
        throttle::failed(shared, &attempt).await?;
        shared.metrics.login("bad_credentials");
        tracing::info!(user = user_id, client = %attempt.client, "console sign-in failed");
        return Err(ConsoleError::BadCredentials);
    }
    if let Err(error) = member_access(shared, user_id) {
        shared.metrics.login("no_role");
        tracing::info!(user = user_id, "console sign-in refused: not a current member");
        return Err(error);
    }
    let device = throttle::succeeded(shared, &attempt).await?;
    shared.metrics.login("ok");
    Ok((start_session(shared, user_id, Via::Password).await?, device))
}

/// Opening a link only shows a button: link previews and mail scanners fetch URLs, and must not use it up.
async fn link_page(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let now = shared.clock.now_ms();
    if shared.store.console_token_user(&token_hash(&token), TokenKind::SignInLink, now).await?.is_none() {
        shared.metrics.login("link_invalid");
        return Err(ConsoleError::LinkInvalid.into());
    }
    let next = query.map(|Query(q)| q.next).unwrap_or_default();
    let back = local_path(&next).map_or_else(String::new, |n| format!("?next={}", encode_query(n)));
    let body = html! {
        h1 { "Sign in to dingguard" }
        p { "This link signs you in once." }
        form method="post" action={ "/login/link/" (encode_query(&token)) (back) } {
            button type="submit" { "Sign in" }
        }
    };
    Ok(html::page("Sign in", None, body).into_response())
}

async fn redeem_link(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let now = shared.clock.now_ms();
    let Some(user) = shared.store.redeem_console_token(&token_hash(&token), TokenKind::SignInLink, now).await? else {
        shared.metrics.login("link_invalid");
        return Err(ConsoleError::LinkInvalid.into());
    };
    if let Err(error) = member_access(&shared, &user) {
        shared.metrics.login("no_role");
        return Err(error.into());
    }
    shared.metrics.login("ok");
    let next = query.map(|Query(q)| q.next).unwrap_or_default();
    Ok(signed_in(&shared, &user, start_session(&shared, &user, Via::SignInLink).await?, &next))
}

async fn logout(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, PageError> {
    let signed_out = || {
        (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, "/login".to_owned()), (header::SET_COOKIE, auth::clear_cookie(&shared))],
        )
    };
    let Some(id) = auth::session_id(&headers) else { return Ok(signed_out().into_response()) };
    let hash = token_hash(id);
    let Some(session) = shared.store.console_session(&hash, shared.clock.now_ms()).await? else {
        return Ok(signed_out().into_response());
    };
    let fields = form.map(|Form(f)| f).unwrap_or_default();
    let presented = auth::form_csrf(&fields).ok_or(ConsoleError::Csrf)?;
    if !auth::ct_eq(&session.csrf_token, presented) {
        return Err(ConsoleError::Csrf.into());
    }
    // Open live feeds of this session notice within seconds that it is gone, and close.
    shared.store.end_console_session(&hash).await?;
    tracing::info!(user = %session.user_id, "console session ended");
    Ok(signed_out().into_response())
}

/// Percent-encodes a query value; enough for the paths and tokens this console puts in `next`.
pub(crate) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
