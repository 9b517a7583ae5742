//! Sign-in links sent by DingTalk work notification to people who ask for one on the sign-in page. The answer
//! is the same whether or not the user id exists, and the message goes out after the answer, so neither the words
//! nor the timing tell a stranger who works here.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::response::{IntoResponse, Response};
use dingguard_notify::{Notification, RetryPolicy, deliver_with_retry};
use dingguard_store::console::TokenKind;
use serde::Deserialize;

use crate::error::PageError;
use crate::html::{self, esc};
use crate::login::{encode_query, local_path, login_form};
use crate::{Shared, actions, ms};

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
    let Some(messenger) = shared.settings.messenger.clone() else {
        let page = login_form(&shared, Some("Sign-in links by DingTalk are not set up here."), &user_id, &form.next);
        return Ok(html::with_status(axum::http::StatusCode::NOT_FOUND, page));
    };
    if user_id.is_empty() || user_id.len() > 64 {
        return Ok(login_form(&shared, Some("Enter your user id."), "", &form.next).into_response());
    }
    let now = shared.clock.now_ms();
    let since = now - ms(shared.settings.failed_login_window);
    let asked = shared.store.console_tokens_issued(&user_id, TokenKind::SignInLink, since).await?;
    if asked >= shared.settings.max_link_requests {
        shared.metrics.login("link_rate_limited");
        tracing::warn!(user = %user_id, asked, "sign-in link by DingTalk refused: asked too often");
    } else if crate::auth::member_access(&shared, &user_id).is_ok() {
        let (mut url, expires_at_ms) = actions::sign_in_link(&shared, &user_id).await?;
        if let Some(next) = local_path(&form.next) {
            url = format!("{url}?next={}", encode_query(next));
        }
        let note = Notification {
            id: format!("signin-{}", &dingguard_model::token::token_hash(&url)[..16]),
            title: "Sign in to dingguard".into(),
            severity: "sign-in".into(),
            markdown: format!(
                "You asked to sign in to dingguard. The link works once, until {} (Macau time). \
                 If you did not ask for it, ignore this message.",
                html::time(expires_at_ms)
            ),
            link: Some(url),
            recipients: vec![user_id.clone()],
        };
        let metrics_user = user_id.clone();
        tokio::spawn(async move {
            match deliver_with_retry(messenger.as_ref(), &note, &RetryPolicy::default()).await {
                Ok(_) => tracing::info!(user = %metrics_user, "sign-in link sent by DingTalk"),
                Err(error) => tracing::error!(%error, user = %metrics_user, "sign-in link could not be sent"),
            }
        });
        shared.metrics.login("link_sent");
    }
    let body = format!(
        r#"<h1>Check DingTalk</h1>
<p id="link-sent">If <strong>{}</strong> may sign in, a sign-in link is on its way to them as a DingTalk work
notification. It works once, for {} minutes.</p>
<p><a href="/login">Back to sign-in</a></p>"#,
        esc(&user_id),
        shared.settings.sign_in_link_ttl.as_secs() / 60
    );
    Ok(html::page("Check DingTalk", None, &body).into_response())
}
