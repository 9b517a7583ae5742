//! One type for every credential dingguard holds: DingTalk's signing token and AES key, robot tokens and
//! secrets, AppSecrets, webhook keys, database URLs, broker passwords. Its `Debug` and `Display` never show the
//! value, so a secret cannot reach a log line, an error message or a `{:?}` of the settings by accident.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The value, for the one place that must use it (signing, connecting).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret given either inline or as a file (`…_file` keys, `…_FILE` variables): exactly one of the two. A
    /// file's trailing line break is not part of the secret.
    pub fn from_value_or_file(
        what: &str,
        inline: Option<Secret>,
        file: Option<&Path>,
    ) -> Result<Option<Secret>, SecretError> {
        match (inline, file) {
            (Some(_), Some(_)) => Err(SecretError(format!("{what}: set the value or its file, not both"))),
            (Some(value), None) => Ok(Some(value)),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| SecretError(format!("{what}: cannot read {}: {e}", path.display())))?;
                Ok(Some(Self(text.trim_end_matches(['\r', '\n']).to_owned())))
            }
            (None, None) => Ok(None),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret could not be read; names the setting, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(String);

/// Whether a client property (librdkafka's, say) holds a credential by its name: passwords, secrets, keys, tokens
/// and JAAS configurations. Such values are shown as `<redacted>` wherever properties are printed.
pub fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "jaas", "token", ".key", "credential"].iter().any(|part| key.contains(part))
        && !key.ends_with(".location")
}

/// Properties as `Debug` shows them: credential values redacted.
pub struct RedactedProperties<'a>(pub &'a [(String, String)]);

impl fmt::Debug for RedactedProperties<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_map();
        for (k, v) in self.0 {
            if is_secret_property(k) {
                list.entry(k, &"<redacted>");
            } else {
                list.entry(k, v);
            }
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows() {
        let s = Secret::new("SECsupersecret");
        assert_eq!(format!("{s:?} {s} {:?}", Some(&s)), "Secret(<redacted>) <redacted> Some(Secret(<redacted>))");
        assert_eq!(s.expose(), "SECsupersecret");
    }

    #[test]
    fn value_or_file_but_not_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "from-file\n").unwrap();
        let read = Secret::from_value_or_file("x", None, Some(&path)).unwrap().unwrap();
        assert_eq!(read.expose(), "from-file");
        let both = Secret::from_value_or_file("robot secret", Some(Secret::new("v")), Some(&path)).unwrap_err();
        assert!(both.to_string().contains("robot secret") && !both.to_string().contains("from-file"));
        assert!(Secret::from_value_or_file("x", None, None).unwrap().is_none());
    }

    #[test]
    fn credential_properties_are_redacted_by_name() {
        let props = vec![
            ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
            ("sasl.password".to_owned(), "hunter2".to_owned()),
            ("sasl.jaas.config".to_owned(), "user=\"a\" password=\"b\"".to_owned()),
            ("ssl.key.password".to_owned(), "k".to_owned()),
            ("ssl.ca.location".to_owned(), "/etc/ca.pem".to_owned()),
        ];
        let shown = format!("{:?}", RedactedProperties(&props));
        assert!(shown.contains("SASL_SSL") && shown.contains("/etc/ca.pem"), "{shown}");
        assert!(!shown.contains("hunter2") && !shown.contains("password=") && !shown.contains("\"k\""), "{shown}");
    }
}
