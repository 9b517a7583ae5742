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
    #[error("the request changed while this decision was taken; read it again and retry")]
    Concurrent,
    #[error("state store failed")]
    Store(#[from] StoreError),
}

impl ApproverError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Approval(ApprovalError::OwnRequest | ApprovalError::NotEligible { .. }) => StatusCode::FORBIDDEN,
            Self::Approval(ApprovalError::Expired { .. }) => StatusCode::GONE,
            Self::Approval(ApprovalError::NoEligibleApprover { .. } | ApprovalError::EmptyPolicy) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Approval(_) | Self::Concurrent => StatusCode::CONFLICT,
            Self::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApproverError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Internals stay in the log; callers get the rule they ran into.
        let message = match &self {
            Self::Store(error) => {
                tracing::error!(%error, "approval call failed in the store");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}
