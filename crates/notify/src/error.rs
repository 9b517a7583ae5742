use std::fmt;

/// Why a DingTalk group robot refused a message (https://open.dingtalk.com/document/development/custom-robots-send-group-messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RobotFailure {
    /// 310000: keyword, timestamp, signature or IP allowlist check failed.
    SecurityCheck,
    /// 400101: the access token is wrong.
    BadToken,
    /// 400102: the robot was switched off.
    Disabled,
    /// 400013: the group no longer exists.
    GroupDissolved,
    /// 400105: the message type is not supported.
    UnsupportedType,
    /// 430101–430104: DingTalk's content filter blocked the text.
    ContentBlocked,
    /// 410100: over 20 messages a minute; DingTalk holds the robot for 10 minutes.
    Throttled,
    /// -1: DingTalk is busy.
    Busy,
    Other,
}

impl RobotFailure {
    pub fn from_code(code: i64) -> Self {
        match code {
            310000 => Self::SecurityCheck,
            400101 => Self::BadToken,
            400102 => Self::Disabled,
            400013 => Self::GroupDissolved,
            400105 => Self::UnsupportedType,
            430101..=430104 => Self::ContentBlocked,
            410100 => Self::Throttled,
            -1 => Self::Busy,
            _ => Self::Other,
        }
    }
}

impl fmt::Display for RobotFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SecurityCheck => "keyword, timestamp, signature or IP check failed",
            Self::BadToken => "access token is wrong",
            Self::Disabled => "robot is disabled",
            Self::GroupDissolved => "group was dissolved",
            Self::UnsupportedType => "message type is not supported",
            Self::ContentBlocked => "content was blocked",
            Self::Throttled => "robot is throttled",
            Self::Busy => "DingTalk is busy",
            Self::Other => "unrecognised error",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Never built from an error that still carries its URL: robot and token URLs hold secrets.
    #[error("request failed: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("far end answered HTTP {status}")]
    HttpStatus { status: u16 },
    #[error("far end answered something unreadable: {0}")]
    MalformedResponse(String),
    #[error("robot refused the message: {failure} (errcode {code}: {errmsg})")]
    Robot { failure: RobotFailure, code: i64, errmsg: String },
    #[error("DingTalk {api} failed (errcode {errcode}: {errmsg})")]
    DingTalk { api: &'static str, errcode: i64, errmsg: String },
    #[error("notification is invalid: {0}")]
    InvalidNotification(&'static str),
    #[error("configuration is invalid: {0}")]
    InvalidConfig(String),
    #[error("webhook header `{0}` is missing")]
    MissingHeader(&'static str),
    #[error("webhook header `{0}` is malformed")]
    MalformedHeader(&'static str),
    #[error("webhook timestamp {timestamp} is more than {tolerance_secs} s from now ({now})")]
    TimestampOutOfTolerance { timestamp: i64, now: i64, tolerance_secs: i64 },
    #[error("no webhook signature matches")]
    SignatureMismatch,
}

/// Legacy `oapi` codes that mean "try again later": system busy, and the two timeout codes (DingTalk server error codes).
const DINGTALK_TRANSIENT: [i64; 3] = [-1, 15, 88];

impl NotifyError {
    pub(crate) fn transport(error: reqwest::Error) -> Self {
        Self::Transport(error.without_url())
    }

    /// Whether the same request can succeed later: timeouts, 5xx, throttling. A refusal that depends on the
    /// request or the configuration (bad token, blocked content, 4xx) fails again however often it is sent.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(e) => !e.is_builder(),
            Self::HttpStatus { status } => *status >= 500 || *status == 408 || *status == 429,
            Self::Robot { failure, .. } => matches!(failure, RobotFailure::Throttled | RobotFailure::Busy),
            Self::DingTalk { errcode, .. } => DINGTALK_TRANSIENT.contains(errcode),
            Self::MalformedResponse(_)
            | Self::InvalidNotification(_)
            | Self::InvalidConfig(_)
            | Self::MissingHeader(_)
            | Self::MalformedHeader(_)
            | Self::TimestampOutOfTolerance { .. }
            | Self::SignatureMismatch => false,
        }
    }

    pub(crate) fn is_robot_throttled(&self) -> bool {
        matches!(self, Self::Robot { failure: RobotFailure::Throttled, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn robot(code: i64) -> NotifyError {
        NotifyError::Robot { failure: RobotFailure::from_code(code), code, errmsg: String::new() }
    }

    #[test]
    fn only_transient_refusals_are_retried() {
        assert!(robot(410100).is_retryable());
        assert!(robot(-1).is_retryable());
        for code in [310000, 400101, 400102, 400013, 400105, 430101, 430104, 123] {
            assert!(!robot(code).is_retryable(), "{code}");
        }
        assert_eq!(RobotFailure::from_code(430103), RobotFailure::ContentBlocked);
        assert!(NotifyError::HttpStatus { status: 503 }.is_retryable());
        assert!(NotifyError::HttpStatus { status: 429 }.is_retryable());
        assert!(!NotifyError::HttpStatus { status: 400 }.is_retryable());
        assert!(!NotifyError::HttpStatus { status: 404 }.is_retryable());
        let work = |errcode| NotifyError::DingTalk { api: "asyncsend_v2", errcode, errmsg: String::new() };
        assert!(work(-1).is_retryable());
        assert!(!work(40014).is_retryable());
    }
}
