use bytes::Bytes;
use dingguard_dingtalk::{
    CallbackCrypto, CallbackReply, CredentialError, EncodingAesKey, OwnerKey, Token, random_alnum,
};

/// One ready-to-send push: the query string and the JSON body, plus the event id it carries.
#[derive(Debug, Clone)]
pub struct SignedCallback {
    pub query: String,
    pub body: Bytes,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
}

/// Signs and encrypts events with one app's credentials, exactly as DingTalk's servers do.
#[derive(Debug, Clone)]
pub struct Signer {
    crypto: CallbackCrypto,
}

impl Signer {
    pub fn new(crypto: CallbackCrypto) -> Self {
        Self { crypto }
    }

    /// From the three values the developer console shows: token, EncodingAESKey and the owner key (AppKey).
    pub fn from_credentials(token: &str, aes_key: &str, owner_key: &str) -> Result<Self, CredentialError> {
        Ok(Self::new(CallbackCrypto::new(
            Token::parse(token)?,
            EncodingAesKey::parse(aes_key)?,
            OwnerKey::parse(owner_key)?,
        )))
    }

    pub fn crypto(&self) -> &CallbackCrypto {
        &self.crypto
    }

    /// Wraps `event` (a JSON document) with the given push timestamp in milliseconds.
    pub fn sign(&self, event: &serde_json::Value, timestamp_ms: u64) -> SignedCallback {
        let plaintext = serde_json::to_vec(event).expect("JSON values serialise");
        let mut signed = self.sign_bytes(&plaintext, timestamp_ms);
        let field =
            |names: &[&str]| names.iter().find_map(|n| event.get(*n).and_then(|v| v.as_str()).map(str::to_owned));
        signed.event_id = field(&["eventId", "BizId"]);
        signed.event_type = field(&["EventType", "eventType"]);
        signed
    }

    /// Wraps raw plaintext bytes; for payloads that are deliberately not JSON.
    pub fn sign_bytes(&self, plaintext: &[u8], timestamp_ms: u64) -> SignedCallback {
        let nonce = random_alnum(16);
        let timestamp = timestamp_ms.to_string();
        let encrypt = self.crypto.encrypt(plaintext);
        let signature = self.crypto.sign(&timestamp, &nonce, &encrypt);
        // DingTalk's documented URL form; the receiver also accepts msg_signature / timeStamp.
        let query = format!("signature={signature}&timestamp={timestamp}&nonce={nonce}");
        let body = Bytes::from(serde_json::to_vec(&serde_json::json!({ "encrypt": encrypt })).expect("JSON"));
        SignedCallback { query, body, event_id: None, event_type: None }
    }

    /// True when `body` is a correctly signed reply whose plaintext is `success`.
    pub fn is_success_reply(&self, body: &[u8]) -> bool {
        serde_json::from_slice::<CallbackReply>(body)
            .ok()
            .and_then(|reply| reply.open(&self.crypto).ok())
            .is_some_and(|plain| plain == b"success")
    }
}
