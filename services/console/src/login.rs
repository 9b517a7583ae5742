//! Signing in (password or single-use link) and out.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use dingguard_store::console::TokenKind;
use serde::Deserialize;

use crate::auth::{self, console_access, start_session, token_hash};
use crate::error::{ConsoleError, PageError};
use crate::html::{self, esc};
use crate::{Shared, ms};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/link/{token}", get(link_page).post(redeem_link))
        .route("/logout", post(logout))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginForm {
    user_id: String,
    password: String,
}

fn login_form(message: Option<&str>, user_id: &str) -> axum::response::Html<String> {
    let message = message.map_or_else(String::new, |m| format!(r#"<p class="error" role="alert">{}</p>"#, esc(m)));
    let body = format!(
        r#"<h1>Security console</h1>
<p>Sign in with your DingTalk user id. The console is for the security team and administrators.</p>
{message}
<form class="login" method="post" action="/login">
<label>User id <input name="user_id" value="{}" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>"#,
        esc(user_id)
    );
    html::page("Sign in", None, &body)
}

async fn login_page() -> Response {
    login_form(None, "").into_response()
}

async fn login(State(shared): State<Arc<Shared>>, form: Result<Form<LoginForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else {
        return html::with_status(StatusCode::UNPROCESSABLE_ENTITY, login_form(Some("Send the sign-in form."), ""));
    };
    let user_id = form.user_id.trim();
    match attempt(&shared, user_id, form.password).await {
        Ok(cookie) => signed_in(cookie),
        Err(error) => {
            if error.status().is_server_error() {
                return PageError(error).into_response();
            }
            html::with_status(error.status(), login_form(Some(&error.public_message()), user_id))
        }
    }
}

fn signed_in(cookie: String) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/alerts".to_owned()), (header::SET_COOKIE, cookie)]).into_response()
}

/// Checks the rate limit first, then the password (against a dummy hash when there is no account, so both
/// cases take the same time and say the same thing), and only then the role: a refusal for lack of a role
/// tells the person something true only once they have proved who they are.
async fn attempt(shared: &Shared, user_id: &str, password: String) -> Result<String, ConsoleError> {
    if user_id.is_empty() || password.is_empty() {
        return Err(ConsoleError::Invalid("Enter your user id and password.".into()));
    }
    let now = shared.clock.now_ms();
    let window = ms(shared.settings.failed_login_window);
    let failures = shared.store.login_failures(user_id, now - window).await?;
    if failures.count >= shared.settings.max_failed_logins {
        shared.metrics.login("rate_limited");
        let until = failures.oldest_at_ms.unwrap_or(now) + window;
        tracing::warn!(user = user_id, failures = failures.count, "console sign-in refused: too many failures");
        return Err(ConsoleError::RateLimited { retry_after_minutes: ((until - now + 59_999) / 60_000).max(1) });
    }
    let member = shared.directory.read().is_member(user_id);
    let stored = shared.passwords.get(user_id).filter(|_| member).cloned();
    let phc = stored.clone().unwrap_or_else(|| shared.dummy_hash.clone());
    let verified = auth::verify_password(shared, phc, password).await && stored.is_some();
    if !verified {
        shared.store.record_login_failure(user_id, now, now - window).await?;
        shared.metrics.login("bad_credentials");
        tracing::info!(user = user_id, "console sign-in failed");
        return Err(ConsoleError::BadCredentials);
    }
    if let Err(error) = console_access(shared, user_id) {
        shared.metrics.login("no_role");
        tracing::info!(user = user_id, "console sign-in refused: no console role");
        return Err(error);
    }
    shared.store.clear_login_failures(user_id).await?;
    shared.metrics.login("ok");
    start_session(shared, user_id).await
}

/// Opening a link only shows a button: link previews and mail scanners fetch URLs, and must not use it up.
async fn link_page(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Result<Response, PageError> {
    let now = shared.clock.now_ms();
    if shared.store.console_token_user(&token_hash(&token), TokenKind::SignInLink, now).await?.is_none() {
        shared.metrics.login("link_invalid");
        return Err(ConsoleError::LinkInvalid.into());
    }
    let body = format!(
        r#"<h1>Security console</h1>
<p>This link signs you in once.</p>
<form method="post" action="/login/link/{}"><button type="submit">Sign in</button></form>"#,
        esc(&token)
    );
    Ok(html::page("Sign in", None, &body).into_response())
}

async fn redeem_link(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Result<Response, PageError> {
    let now = shared.clock.now_ms();
    let Some(user) = shared.store.redeem_console_token(&token_hash(&token), TokenKind::SignInLink, now).await? else {
        shared.metrics.login("link_invalid");
        return Err(ConsoleError::LinkInvalid.into());
    };
    if let Err(error) = console_access(&shared, &user) {
        shared.metrics.login("no_role");
        return Err(error.into());
    }
    shared.metrics.login("ok");
    Ok(signed_in(start_session(&shared, &user).await?))
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
    shared.store.end_console_session(&hash).await?;
    tracing::info!(user = %session.user_id, "console session ended");
    Ok(signed_out().into_response())
}
