//! Every way a console request can fail, and the one place that maps them to HTTP: JSON for the API, a page for
//! the browser. Callers learn what they did wrong; database causes go to the log, never to the caller.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dingguard_store::StoreError;

use crate::html;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("Sign in first")]
    Unauthenticated,
    #[error("Unknown user id or wrong password")]
    BadCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("The request's CSRF token is missing or does not match this session; reload the page and try again")]
    Csrf,
    #[error("Cross-site request refused")]
    CrossSite,
    #[error("Too many failed sign-ins; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: i64 },
    #[error("This sign-in link is invalid, has already been used or has expired; ask for a new one")]
    LinkInvalid,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Approval(#[from] dingguard_approver::ApproverError),
    #[error("console configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ConsoleError {
    /// A user without a role that opens the console.
    pub(crate) fn no_console_role(user_id: &str) -> Self {
        Self::Forbidden(format!(
            "{user_id} has no access to the security console: it is for users with the security or admin role. \
             Approvers decide requests from their approval inbox at /approvals."
        ))
    }

    /// The wait a 429 asks for, for its `Retry-After`.
    pub fn retry_after_secs(&self) -> Option<i64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some((*retry_after_secs).max(1)),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated | Self::BadCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Csrf | Self::CrossSite => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::LinkInvalid => StatusCode::GONE,
            Self::NotFound(_) | Self::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::Store(StoreError::Conflict(_)) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Approval(error) => error.status(),
            Self::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Config(_) | Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the caller is told.
    pub fn public_message(&self) -> String {
        match self {
            Self::Store(StoreError::NotFound(what)) => format!("{what} not found"),
            // The lifecycle's own explanation, e.g. "alert … is resolved and cannot become acknowledged".
            Self::Store(StoreError::Conflict(why)) => why.clone(),
            Self::Store(StoreError::Unavailable(_)) => "The database is unavailable; try again shortly".into(),
            Self::Config(_) | Self::Store(_) | Self::Internal(_) => "Internal error".into(),
            Self::Approval(error) => error.public_message(),
            other => other.to_string(),
        }
    }

    fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "console request failed");
        }
    }
}

/// The JSON API's error body: `{"error": "…"}`.
impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        self.log();
        let mut response = (self.status(), Json(serde_json::json!({ "error": self.public_message() }))).into_response();
        if let Some(secs) = self.retry_after_secs() {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

/// The same errors as a page for the browser.
#[derive(Debug)]
pub(crate) struct PageError(pub ConsoleError);

impl From<ConsoleError> for PageError {
    fn from(error: ConsoleError) -> Self {
        Self(error)
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let error = self.0;
        error.log();
        if matches!(error, ConsoleError::Unauthenticated) {
            return html::see_other("/login");
        }
        let status = error.status();
        let reason = status.canonical_reason().unwrap_or("Error");
        let body = maud::html! {
            h1 { (reason) }
            p.error role="alert" { (error.public_message()) }
            p { a href="/approvals" { "Approvals" } " · " a href="/alerts" { "Alerts" } }
        };
        (status, html::page(reason, None, body)).into_response()
    }
}
