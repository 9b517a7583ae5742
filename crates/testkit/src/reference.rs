//! DingTalk's callback algorithm written out again from DingTalk's callback documentation (https://open.dingtalk.com/document/development/http-callback-overview) with the cipher crates directly, so
//! the receiver is checked against something other than its own protocol crate.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use sha1::{Digest, Sha1};

pub struct ReferenceApp {
    pub token: String,
    pub aes_key: String,
    pub owner: String,
    key: [u8; 32],
}

fn alnum(n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n).map(|_| A[rng.gen_range(0..A.len())] as char).collect()
}

impl ReferenceApp {
    /// Fresh credentials in the developer console's formats.
    pub fn fresh() -> Self {
        let aes_key = alnum(43);
        Self::new(&alnum(20), &aes_key, &format!("ding{}", alnum(16).to_lowercase()))
    }

    pub fn new(token: &str, aes_key: &str, owner: &str) -> Self {
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        let key: [u8; 32] =
            engine.decode(format!("{aes_key}=")).expect("43 base64 chars").try_into().expect("32 bytes");
        Self { token: token.into(), aes_key: aes_key.into(), owner: owner.into(), key }
    }

    pub fn sign(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        let mut parts = [self.token.as_str(), timestamp, nonce, encrypt];
        parts.sort();
        hex::encode(Sha1::digest(parts.concat().as_bytes()))
    }

    pub fn encrypt(&self, message: &[u8]) -> String {
        let mut plain = alnum(16).into_bytes();
        plain.extend_from_slice(&(message.len() as u32).to_be_bytes());
        plain.extend_from_slice(message);
        plain.extend_from_slice(self.owner.as_bytes());
        let pad = 32 - plain.len() % 32;
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        let len = plain.len();
        cbc::Encryptor::<aes::Aes256>::new(&self.key.into(), self.key[..16].into())
            .encrypt_padded_mut::<NoPadding>(&mut plain, len)
            .expect("whole blocks");
        STANDARD.encode(plain)
    }

    pub fn decrypt(&self, encrypt: &str) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut buf = STANDARD.decode(encrypt).ok()?;
        let n = cbc::Decryptor::<aes::Aes256>::new(&self.key.into(), self.key[..16].into())
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .ok()?
            .len();
        buf.truncate(n);
        let pad = *buf.last()? as usize;
        buf.truncate(buf.len().checked_sub(pad)?);
        let len = u32::from_be_bytes(buf.get(16..20)?.try_into().ok()?) as usize;
        Some((buf.get(20..20 + len)?.to_vec(), buf.get(20 + len..)?.to_vec()))
    }

    /// A complete push: query string and body, as DingTalk sends it.
    pub fn push(&self, message: &[u8], timestamp_ms: i64) -> (String, Vec<u8>) {
        let timestamp = timestamp_ms.to_string();
        let nonce = alnum(8);
        let encrypt = self.encrypt(message);
        let signature = self.sign(&timestamp, &nonce, &encrypt);
        let body = serde_json::to_vec(&serde_json::json!({ "encrypt": encrypt })).expect("json");
        (format!("msg_signature={signature}&timeStamp={timestamp}&nonce={nonce}"), body)
    }

    /// True when the reply is what DingTalk accepts: 4 string fields, valid signature, plaintext `success`.
    pub fn reply_is_success(&self, body: &[u8]) -> bool {
        let Ok(reply) = serde_json::from_slice::<serde_json::Value>(body) else { return false };
        let field = |name: &str| reply.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(sig), Some(ts), Some(nonce), Some(enc)) =
            (field("msg_signature"), field("timeStamp"), field("nonce"), field("encrypt"))
        else {
            return false;
        };
        sig == self.sign(&ts, &nonce, &enc)
            && self.decrypt(&enc).is_some_and(|(msg, owner)| msg == b"success" && owner == self.owner.as_bytes())
    }
}
