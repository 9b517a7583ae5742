//! DingTalk's HTTP push protocol, as DingTalk's own crypto helpers implement it.
//!
//! Pure functions and types only: no I/O. The receiver builds a [`CallbackCrypto`] per configured app at start-up,
//! then for every request parses a [`CallbackQuery`] and an [`Envelope`], verifies, decrypts and answers with a
//! [`CallbackReply`].

pub mod address_book;
pub mod audit_log;
mod callback;
mod crypto;
pub mod event;
pub mod failed;
mod payload;
mod record;
pub mod stream;

pub use callback::{CallbackQuery, CallbackReply, Envelope, Timestamp};
pub use crypto::{
    CallbackCrypto, CredentialError, CryptoError, Decrypted, EncodingAesKey, OwnerKey, Token, random_alnum, signature,
};
pub use event::{EventPayloadError, Field, Payload, fields};
pub use payload::{EventHeader, PayloadError};
pub use record::{callback_ce_id, callback_record, digest_id};

/// Every error a callback can fail with before it reaches the event log.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("query parameter `{0}` is missing")]
    MissingParameter(&'static str),
    #[error("query parameter `{0}` is malformed")]
    MalformedParameter(&'static str),
    #[error("body is not a JSON object with a string field `encrypt`")]
    MalformedEnvelope,
}
