//! The HTTP push request and reply shapes (https://open.dingtalk.com/document/development/http-callback-overview).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::{CallbackCrypto, ProtocolError};

/// The signed query of a push. DingTalk's helpers disagree on the spelling, so both are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackQuery {
    pub signature: String,
    pub timestamp: String,
    pub nonce: String,
}

impl CallbackQuery {
    /// Builds the query from already-decoded `key=value` pairs.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    ) -> Result<Self, ProtocolError> {
        let (mut msg_signature, mut signature, mut time_stamp, mut timestamp, mut nonce) =
            (None, None, None, None, None);
        for (key, value) in pairs {
            let slot = match key.as_ref() {
                "msg_signature" => &mut msg_signature,
                "signature" => &mut signature,
                "timeStamp" => &mut time_stamp,
                "timestamp" => &mut timestamp,
                "nonce" => &mut nonce,
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        let signature = msg_signature.or(signature).ok_or(ProtocolError::MissingParameter("msg_signature"))?;
        let timestamp = time_stamp.or(timestamp).ok_or(ProtocolError::MissingParameter("timestamp"))?;
        let nonce = nonce.ok_or(ProtocolError::MissingParameter("nonce"))?;
        if signature.len() != 40 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ProtocolError::MalformedParameter("msg_signature"));
        }
        if nonce.is_empty() || nonce.len() > 64 {
            return Err(ProtocolError::MalformedParameter("nonce"));
        }
        Ok(Self { signature, timestamp, nonce })
    }
}

/// A push timestamp, normalised to milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// DingTalk sends milliseconds in every real sample but seconds in one FAQ; thirteen digits cannot be a
    /// plausible seconds value until the year 5138, so the length decides.
    pub fn parse(raw: &str) -> Result<Self, ProtocolError> {
        if raw.is_empty() || raw.len() > 16 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProtocolError::MalformedParameter("timestamp"));
        }
        let value: u64 = raw.parse().map_err(|_| ProtocolError::MalformedParameter("timestamp"))?;
        Ok(Self(if raw.len() >= 12 { value } else { value.saturating_mul(1000) }))
    }

    pub fn millis(self) -> u64 {
        self.0
    }
}

/// The request body `{"encrypt": "…"}`.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    #[serde(borrow)]
    pub encrypt: Cow<'a, str>,
}

impl<'a> Envelope<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, ProtocolError> {
        let envelope: Self = serde_json::from_slice(body).map_err(|_| ProtocolError::MalformedEnvelope)?;
        if envelope.encrypt.is_empty() {
            return Err(ProtocolError::MalformedEnvelope);
        }
        Ok(envelope)
    }
}

/// The body DingTalk requires before it considers a push delivered. Field spellings are DingTalk's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackReply {
    pub msg_signature: String,
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    pub nonce: String,
    pub encrypt: String,
}

impl CallbackReply {
    /// Encrypts `plaintext` (normally `success`) and signs it, reusing the request's timestamp and nonce as
    /// DingTalk's documentation allows.
    pub fn new(crypto: &CallbackCrypto, plaintext: &[u8], timestamp: &str, nonce: &str) -> Self {
        let encrypt = crypto.encrypt(plaintext);
        let msg_signature = crypto.sign(timestamp, nonce, &encrypt);
        Self { msg_signature, time_stamp: timestamp.to_owned(), nonce: nonce.to_owned(), encrypt }
    }

    /// Checks a reply as DingTalk would and returns its decrypted plaintext.
    pub fn open(&self, crypto: &CallbackCrypto) -> Result<Vec<u8>, ProtocolError> {
        crypto.verify(&self.msg_signature, &self.time_stamp, &self.nonce, &self.encrypt)?;
        Ok(crypto.open(&self.encrypt)?)
    }
}
