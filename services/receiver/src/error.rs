//! Every way a callback can fail, and the one place that maps them to HTTP.
//!
//! DingTalk only needs to know "not accepted" — the reply carries no success body and a short, fixed message, so
//! nothing about keys, storage or internals leaks. The full cause goes to the log and the reason to the metrics.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dingguard_dingtalk::{CryptoError, ProtocolError};
use dingguard_eventlog::LogError;

/// What became of a callback that was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// DingTalk sent something we will never accept.
    Rejected,
    /// We could not take it now; DingTalk retries.
    Failed,
}

impl Refusal {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("no app is configured for this callback path")]
    UnknownApp,
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("request body could not be read: {0}")]
    BodyRead(String),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("timestamp {timestamp_ms} ms is outside the ±{window_ms} ms window around {now_ms} ms")]
    StaleTimestamp { timestamp_ms: u64, now_ms: i64, window_ms: u64 },
    #[error("event log is not ready; callback refused so DingTalk retries")]
    LogNotReady,
    #[error("event log write failed")]
    Log(#[source] LogError),
}

impl CallbackError {
    /// The metric label: stable, low-cardinality.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownApp => "unknown_app",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyRead(_) => "body_read",
            Self::Protocol(ProtocolError::MissingParameter(_)) => "missing_parameter",
            Self::Protocol(ProtocolError::MalformedParameter(_)) => "malformed_parameter",
            Self::Protocol(ProtocolError::MalformedEnvelope) => "malformed_envelope",
            Self::Protocol(ProtocolError::Crypto(CryptoError::SignatureMismatch)) => "bad_signature",
            Self::Protocol(ProtocolError::Crypto(CryptoError::OwnerMismatch)) => "wrong_owner",
            Self::Protocol(ProtocolError::Crypto(_)) => "bad_ciphertext",
            Self::Protocol(ProtocolError::Payload(_)) => "bad_payload",
            Self::StaleTimestamp { .. } => "stale_timestamp",
            Self::LogNotReady => "log_not_ready",
            Self::Log(LogError::Timeout(_)) => "log_timeout",
            Self::Log(_) => "log_error",
        }
    }

    pub fn outcome(&self) -> Refusal {
        match self {
            Self::LogNotReady | Self::Log(_) | Self::BodyRead(_) => Refusal::Failed,
            _ => Refusal::Rejected,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownApp => StatusCode::NOT_FOUND,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead(_) => StatusCode::BAD_REQUEST,
            Self::Protocol(ProtocolError::Crypto(CryptoError::SignatureMismatch | CryptoError::OwnerMismatch)) => {
                StatusCode::UNAUTHORIZED
            }
            Self::StaleTimestamp { .. } => StatusCode::UNAUTHORIZED,
            Self::Protocol(_) => StatusCode::BAD_REQUEST,
            Self::LogNotReady | Self::Log(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn public_message(&self) -> &'static str {
        match self {
            Self::UnknownApp => "unknown callback path",
            Self::BodyTooLarge { .. } => "request body too large",
            Self::BodyRead(_) | Self::Protocol(_) => "malformed callback",
            Self::StaleTimestamp { .. } => "callback refused",
            Self::LogNotReady | Self::Log(_) => "temporarily unavailable",
        }
    }
}

impl IntoResponse for CallbackError {
    fn into_response(self) -> Response {
        (self.status(), Json(serde_json::json!({ "error": self.public_message(), "reason": self.reason() })))
            .into_response()
    }
}
