//! Every way a call to DingTalk can fail, typed so a caller (and an operator reading the log) knows what to do.

/// A failed DingTalk call. Messages name the API and what DingTalk said; never a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The app's client id or secret was refused: fix the configuration.
    #[error("DingTalk refused the app's client id or secret ({api}): {message}")]
    BadCredentials { api: &'static str, message: String },
    /// The app may not call this API: grant it the permission in the DingTalk developer console.
    #[error("the DingTalk app lacks the permission {} to call {api}: {message}", scopes_text(.scopes))]
    MissingPermission { api: String, scopes: Vec<String>, message: String },
    /// DingTalk kept answering "too many calls" (or "busy") through every retry.
    #[error("DingTalk throttled {api} through {attempts} attempts")]
    Throttled { api: String, attempts: u32 },
    /// No answer within the bound, through every retry.
    #[error("DingTalk did not answer {api} within {timeout_ms} ms, {attempts} attempts")]
    Timeout { api: String, timeout_ms: u64, attempts: u32 },
    /// The connection failed through every retry.
    #[error("cannot reach DingTalk for {api}: {reason}")]
    Unreachable { api: String, reason: String },
    /// A refusal a retry cannot mend.
    #[error("DingTalk refused {api}: HTTP {status}, {code}: {message}")]
    Refused { api: String, status: u16, code: String, message: String },
    /// An answer that is not what the API documents.
    #[error("DingTalk's answer to {api} is not what it documents: {what}")]
    Malformed { api: String, what: String },
    #[error("DingTalk client configuration: {0}")]
    Config(String),
}

fn scopes_text(scopes: &[String]) -> String {
    if scopes.is_empty() { "it needs".to_owned() } else { scopes.join(", ") }
}

impl ApiError {
    /// Whether a later call may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Timeout { .. } | Self::Unreachable { .. })
    }
}
