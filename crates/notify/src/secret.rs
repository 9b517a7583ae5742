use std::fmt;

use base64::{Engine, engine::general_purpose::STANDARD};

use crate::NotifyError;

pub use dingguard_model::Secret;

/// A Standard Webhooks signing key, written `whsec_<base64>`.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    const PREFIX: &'static str = "whsec_";
    /// The spec's lower bound; anything shorter is too weak to stand in for an HMAC-SHA256 key.
    const MIN_BYTES: usize = 24;

    pub fn parse(raw: &str) -> Result<Self, NotifyError> {
        let encoded = raw.strip_prefix(Self::PREFIX).ok_or_else(|| bad("it must start with `whsec_`"))?;
        let key = STANDARD.decode(encoded.trim()).map_err(|_| bad("the part after `whsec_` is not base64"))?;
        if key.len() < Self::MIN_BYTES {
            return Err(bad("the key must be at least 24 bytes"));
        }
        Ok(Self(key))
    }

    /// A fresh random key, for tests and for issuing to a new receiver.
    pub fn generate() -> String {
        let key: [u8; 32] = rand::random();
        format!("{}{}", Self::PREFIX, STANDARD.encode(key))
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.0
    }
}

fn bad(why: &str) -> NotifyError {
    NotifyError::InvalidConfig(format!("webhook secret: {why}"))
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        assert_eq!(format!("{:?}", Secret::new("SECabc")), "Secret(<redacted>)");
        let hook = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        assert_eq!(format!("{hook:?}"), "WebhookSecret(<redacted>)");
    }

    #[test]
    fn webhook_secrets_need_the_prefix_base64_and_length() {
        assert_eq!(WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap().key().len(), 24);
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_c2hvcnQ="] {
            assert!(WebhookSecret::parse(bad).is_err(), "{bad}");
        }
    }
}
