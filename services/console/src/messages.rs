//! Sign-in links sent by DingTalk work notification. On the sign-in page anyone may ask for one for any user
//! id, so the answer is the same whatever the id, and it goes out before anything about the id is looked up: the
//! request joins a bounded queue, and a worker checks the id, applies the per-id limit and sends the link after.
//! Neither the words nor the timing of the answer tell a stranger who works here.
//!
//! Admins can have a link sent to a member through the API; it goes to that member only, never back to the
//! admin, and never to anyone who decides approvals or holds a role (they sign in themselves).

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::response::{IntoResponse, Response};
use dingguard_notify::{Markdown, Notification, RetryPolicy, deliver_with_retry};
use dingguard_store::console::TokenKind;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{ConsoleError, PageError};
use crate::html;
use crate::login::{encode_query, local_path, login_form};
use crate::{Shared, actions, ms};

/// Requests waiting for the worker; beyond it a request is dropped (and counted), the answer unchanged.
pub(crate) const QUEUE: usize = 256;

/// One sign-in link to send.
#[derive(Debug)]
pub(crate) struct LinkRequest {
    pub user_id: String,
    pub next: Option<String>,
    /// Who asked: `sign-in page`, or the admin who had it sent.
    pub actor: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LinkForm {
    user_id: String,
    next: String,
}

pub(crate) async fn send_sign_in_link(
    State(shared): State<Arc<Shared>>,
    form: Result<Form<LinkForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(form)) = form else {
        return Ok(login_form(&shared, Some("Send the form with your user id."), "", "").into_response());
    };
    let user_id = form.user_id.trim().to_owned();
    if shared.settings.messenger.is_none() {
        let page = login_form(&shared, Some("Sign-in links by DingTalk are not set up here."), &user_id, &form.next);
        return Ok(html::with_status(axum::http::StatusCode::NOT_FOUND, page));
    }
    if user_id.is_empty() || user_id.len() > 64 {
        return Ok(login_form(&shared, Some("Enter your user id."), "", &form.next).into_response());
    }
    let next = local_path(&form.next).map(str::to_owned);
    queue(&shared, LinkRequest { user_id: user_id.clone(), next, actor: "sign-in page".into() });
    let minutes = shared.settings.sign_in_link_ttl.as_secs() / 60;
    let body = maud::html! {
        h1 { "Check DingTalk" }
        p id="link-sent" {
            "If " strong { (user_id) } " may sign in, a sign-in link is on its way to them as a DingTalk work              notification. It works once, for " (minutes) " minutes."
        }
        p { a href="/login" { "Back to sign-in" } }
    };
    Ok(html::page("Check DingTalk", None, body).into_response())
}

/// Hands a request to the worker without waiting on it.
pub(crate) fn queue(shared: &Shared, request: LinkRequest) -> bool {
    match shared.link_requests.try_send(request) {
        Ok(()) => true,
        Err(_) => {
            shared.metrics.login("link_dropped");
            tracing::warn!("sign-in link request dropped: the queue is full");
            false
        }
    }
}

/// Works through the queued requests until `shutdown`.
pub(crate) async fn run(shared: Arc<Shared>, mut queue: mpsc::Receiver<LinkRequest>, shutdown: CancellationToken) {
    loop {
        let request = tokio::select! {
            () = shutdown.cancelled() => return,
            next = queue.recv() => match next {
                Some(request) => request,
                None => return,
            },
        };
        if let Err(error) = send(&shared, request).await {
            tracing::error!(error = %error, "sign-in link could not be prepared");
        }
    }
}

async fn send(shared: &Shared, request: LinkRequest) -> Result<(), ConsoleError> {
    let Some(messenger) = shared.settings.messenger.clone() else { return Ok(()) };
    let LinkRequest { user_id, next, actor } = request;
    let now = shared.clock.now_ms();
    let since = now - ms(shared.settings.failed_login_window);
    let asked = shared.store.console_tokens_issued(&user_id, TokenKind::SignInLink, since).await?;
    if asked >= shared.settings.max_link_requests {
        shared.metrics.login("link_rate_limited");
        tracing::warn!(user = %user_id, asked, "sign-in link by DingTalk refused: asked too often");
        return Ok(());
    }
    if crate::auth::member_access(shared, &user_id).is_err() {
        return Ok(());
    }
    let (mut url, expires_at_ms) = actions::sign_in_link(shared, &actor, &user_id).await?;
    if let Some(next) = next {
        url = format!("{url}?next={}", encode_query(&next));
    }
    let note = Notification {
        id: format!("signin-{}", &dingguard_model::token::token_hash(&url)[..16]),
        title: "Sign in to dingguard".into(),
        severity: "sign-in".into(),
        markdown: Markdown::new()
            .raw("You asked to sign in to dingguard. The link works once, until ")
            .text(&html::time(expires_at_ms))
            .raw(" (Macau time). If you did not ask for it, ignore this message."),
        link: Some(url),
        recipients: vec![user_id.clone()],
    };
    shared.metrics.login("link_sent");
    // Delivery retries for a while; the queue moves on meanwhile.
    tokio::spawn(async move {
        match deliver_with_retry(messenger.as_ref(), &note, &RetryPolicy::default()).await {
            Ok(_) => tracing::info!(user = %user_id, "sign-in link sent by DingTalk"),
            Err(error) => tracing::error!(%error, user = %user_id, "sign-in link could not be sent"),
        }
    });
    Ok(())
}
