//! Every way an approval call fails, and the one place that maps them to HTTP.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dingguard_approval::ApprovalError;
use dingguard_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApproverError {
    #[error("a valid bearer token is required")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("download request {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error("this approval link is not valid, was already used or has expired; open the request from your inbox")]
    LinkInvalid,
    #[error("the request changed while this decision was taken; read it again and retry")]
    Concurrent,
    #[error("DingTalk could not be reached: {0}")]
    Upstream(String),
    /// A limit on how many requests one person may have open or make; the caller may retry after the wait.
    #[error("{message}")]
    TooMany { message: String, retry_after_secs: i64 },
    #[error("state store failed")]
    Store(#[from] StoreError),
}

impl ApproverError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::LinkInvalid => StatusCode::GONE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Approval(ApprovalError::OwnRequest | ApprovalError::NotEligible { .. }) => StatusCode::FORBIDDEN,
            Self::Approval(ApprovalError::Expired { .. }) => StatusCode::GONE,
            Self::Approval(ApprovalError::NoEligibleApprover { .. } | ApprovalError::EmptyPolicy) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Approval(_) | Self::Concurrent => StatusCode::CONFLICT,
            Self::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Store(StoreError::Unavailable(_)) | Self::Upstream(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the caller is told: the rule they ran into; internals stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Self::Store(error) => {
                tracing::error!(%error, "approval call failed in the store");
                "internal error".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApproverError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(serde_json::json!({ "error": self.public_message() }))).into_response();
        if let Self::TooMany { retry_after_secs, .. } = self {
            let value = axum::http::HeaderValue::from(retry_after_secs.max(1));
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}
