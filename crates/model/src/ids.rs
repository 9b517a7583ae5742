use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("app name `{0}` must be 1–64 characters of a-z, 0-9, `-` or `_`")]
    AppName(String),
    #[error("topic prefix `{0}` must be 1–100 characters of a-z, A-Z, 0-9, `.`, `-` or `_`")]
    TopicPrefix(String),
    #[error("{what} id {id:?} must be 1–256 characters without control characters")]
    Invalid { what: &'static str, id: String },
}

fn is_path_segment(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The name of a configured DingTalk app; it is also the URL path segment of its callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppName(String);

impl AppName {
    pub const DEFAULT: &'static str = "default";

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if is_path_segment(raw) { Ok(Self(raw.to_owned())) } else { Err(IdError::AppName(raw.to_owned())) }
    }
    pub fn default_app() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn valid_id(raw: &str) -> bool {
    (1..=256).contains(&raw.len()) && !raw.chars().any(char::is_control)
}

/// Every id type: text of 1 to 256 characters without control characters, checked once when parsed (or
/// deserialised), then typed everywhere. An id dingguard makes itself names its prefix here, and only here.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $what:literal $(, prefix = $prefix:literal)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                if valid_id(raw) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(IdError::Invalid { what: $what, id: raw.to_owned() })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            $(
            /// What every id of this kind that dingguard makes starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new id of this kind: the prefix and `unique` (random bytes or a digest, as hex).
            pub fn with_suffix(unique: &str) -> Self {
                Self(format!("{}{unique}", Self::PREFIX))
            }
            )?
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(raw: String) -> Result<Self, IdError> {
                if valid_id(&raw) { Ok(Self(raw)) } else { Err(IdError::Invalid { what: $what, id: raw }) }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        // Lets maps keyed by the id be queried with the `&str` an event carries.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// The CloudEvents id of a record: DingTalk's `eventId`, else its `BizId`, else a SHA-256 of the event itself.
    /// Every consumer deduplicates on it.
    CeId,
    "event"
);
text_id!(
    /// A DingTalk organisation (`ding…`).
    CorpId,
    "organisation"
);
text_id!(
    /// A DingTalk `userId` (the org-scoped staff id, not the `unionId`).
    UserId,
    "user"
);
text_id!(
    /// A department id. DingTalk's are numbers; the file may use readable names, so both are kept as text.
    DeptId,
    "department"
);
text_id!(
    /// An alert: a digest of its rule and the event that made it, so replays find the same alert.
    AlertId,
    "alert",
    prefix = "alr_"
);
text_id!(
    /// A download request.
    RequestId,
    "request",
    prefix = "dlr_"
);
text_id!(
    /// A silence of a rule in the console.
    SilenceId,
    "silence",
    prefix = "sil_"
);

/// The configurable prefix of every topic name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPrefix(String);

impl TopicPrefix {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = (1..=100).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if ok { Ok(Self(raw.to_owned())) } else { Err(IdError::TopicPrefix(raw.to_owned())) }
    }
}

impl Default for TopicPrefix {
    fn default() -> Self {
        Self("dingguard".to_owned())
    }
}

/// The topic names, derived once from the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub events: String,
    pub alerts: String,
    pub approvals: String,
    pub dlq: String,
}

impl Topics {
    pub fn new(prefix: &TopicPrefix) -> Self {
        let p = &prefix.0;
        Self {
            events: format!("{p}.events"),
            alerts: format!("{p}.alerts"),
            approvals: format!("{p}.approvals"),
            dlq: format!("{p}.dlq"),
        }
    }

    pub fn all(&self) -> [&str; 4] {
        [&self.events, &self.alerts, &self.approvals, &self.dlq]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_path_segments() {
        assert!(AppName::parse("hr-app_2").is_ok());
        for bad in ["", "Upper", "a/b", "a b", &"x".repeat(65)] {
            assert!(AppName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topics_follow_the_prefix() {
        let topics = Topics::new(&TopicPrefix::parse("acme.dg").unwrap());
        assert_eq!(topics.events, "acme.dg.events");
        assert_eq!(topics.dlq, "acme.dg.dlq");
        assert!(TopicPrefix::parse("bad prefix").is_err());
        assert!(CeId::parse("a\nb").is_err());
    }
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn ids_are_checked_once_and_made_with_their_prefix() {
        assert_eq!(AlertId::with_suffix("ab12").as_str(), "alr_ab12");
        assert_eq!(RequestId::with_suffix("1").as_str(), "dlr_1");
        assert_eq!(SilenceId::with_suffix("x").as_str(), "sil_x");
        assert!(UserId::parse("user_ops").is_ok());
        for bad in ["", "a\nb", &"x".repeat(257)] {
            assert!(matches!(UserId::parse(bad), Err(IdError::Invalid { what: "user", .. })), "{bad:?}");
            assert!(serde_json::from_value::<UserId>(serde_json::json!(bad)).is_err(), "{bad:?}");
        }
        let id: DeptId = serde_json::from_value(serde_json::json!("sales")).unwrap();
        assert_eq!(serde_json::to_value(&id).unwrap(), serde_json::json!("sales"));
        assert!(IdError::Invalid { what: "user", id: "a\u{1b}[31m".into() }.to_string().contains("\\u{1b}"));
    }
}
