use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("app name `{0}` must be 1–64 characters of a-z, 0-9, `-` or `_`")]
    AppName(String),
    #[error("topic prefix `{0}` must be 1–100 characters of a-z, A-Z, 0-9, `.`, `-` or `_`")]
    TopicPrefix(String),
    #[error("identifier must be 1–256 characters without control characters")]
    Id,
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

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                if (1..=256).contains(&raw.len()) && !raw.chars().any(char::is_control) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(IdError::Id)
                }
            }
            pub fn as_str(&self) -> &str {
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
    CeId
);
text_id!(
    /// A DingTalk organisation (`ding…`).
    CorpId
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
