//! Signature and AES-256-CBC envelope (https://open.dingtalk.com/document/development/http-callback-overview).

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::Rng;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// DingTalk pads to 32 bytes, not to the AES block size; its own ciphertexts carry pad values above 16.
const PAD_BLOCK: usize = 32;
const RANDOM_PREFIX: usize = 16;
const LENGTH_FIELD: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the signing token must be 1 to 128 visible ASCII characters")]
    Token,
    #[error("the EncodingAESKey must be exactly 43 characters of [A-Za-z0-9]")]
    AesKey,
    #[error("the owner key (AppKey, CorpId or SuiteKey) must not be empty")]
    OwnerKey,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("signature does not match")]
    SignatureMismatch,
    #[error("ciphertext is not valid base64")]
    Base64,
    #[error("ciphertext length {0} is not a positive multiple of the AES block size")]
    CiphertextLength(usize),
    #[error("padding is invalid")]
    Padding,
    #[error("plaintext is too short to hold the random prefix and length field")]
    Truncated,
    #[error("length field {declared} exceeds the {available} bytes that follow it")]
    LengthOverflow { declared: u32, available: usize },
    #[error("owner key in the message does not match this app")]
    OwnerMismatch,
}

/// The app's signing token ("签名 token").
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn parse(raw: &str) -> Result<Self, CredentialError> {
        let ok = !raw.is_empty() && raw.len() <= 128 && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok { Ok(Self(raw.to_owned())) } else { Err(CredentialError::Token) }
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The 43-character EncodingAESKey, decoded once into the 32-byte AES key.
#[derive(Clone)]
pub struct EncodingAesKey([u8; 32]);

impl EncodingAesKey {
    pub fn parse(raw: &str) -> Result<Self, CredentialError> {
        if raw.len() != 43 || !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CredentialError::AesKey);
        }
        // 43 base64 characters carry 258 bits; the trailing 2 bits may be non-zero in keys the console issues,
        // so decode leniently instead of with the canonical-only standard engine.
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let bytes = engine.decode(raw).map_err(|_| CredentialError::AesKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CredentialError::AesKey)?;
        Ok(Self(key))
    }

    /// A fresh random key in the console's format, for demo credentials and tests.
    pub fn generate() -> String {
        random_alnum(43)
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }
}

impl std::fmt::Debug for EncodingAesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncodingAesKey(<redacted>)")
    }
}

/// The id DingTalk appends to every plaintext: the AppKey, CorpId or SuiteKey the callback belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerKey(String);

impl OwnerKey {
    pub fn parse(raw: &str) -> Result<Self, CredentialError> {
        if raw.trim().is_empty() { Err(CredentialError::OwnerKey) } else { Ok(Self(raw.to_owned())) }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A decrypted message and the owner key that trailed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    pub message: Vec<u8>,
    pub owner: Vec<u8>,
}

/// `hex(SHA1(sorted([token, timestamp, nonce, encrypt]).concat()))`.
pub fn signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    let mut parts = [token, timestamp, nonce, encrypt];
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// One app's callback credentials.
#[derive(Debug, Clone)]
pub struct CallbackCrypto {
    token: Token,
    key: EncodingAesKey,
    owner: OwnerKey,
}

impl CallbackCrypto {
    pub fn new(token: Token, key: EncodingAesKey, owner: OwnerKey) -> Self {
        Self { token, key, owner }
    }

    pub fn owner(&self) -> &OwnerKey {
        &self.owner
    }

    pub fn sign(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        signature(self.token.expose(), timestamp, nonce, encrypt)
    }

    /// Constant-time comparison, so response timing says nothing about how much of a forged signature matched.
    pub fn verify(&self, given: &str, timestamp: &str, nonce: &str, encrypt: &str) -> Result<(), CryptoError> {
        let expected = self.sign(timestamp, nonce, encrypt);
        let given = given.to_ascii_lowercase();
        if expected.as_bytes().ct_eq(given.as_bytes()).into() { Ok(()) } else { Err(CryptoError::SignatureMismatch) }
    }

    /// Decrypts without judging the owner key; see [`Self::open`] for the checked path.
    pub fn decrypt(&self, encrypt: &str) -> Result<Decrypted, CryptoError> {
        let mut buf = STANDARD.decode(encrypt.as_bytes()).map_err(|_| CryptoError::Base64)?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(CryptoError::CiphertextLength(buf.len()));
        }
        let plain_len = Aes256CbcDec::new(&self.key.0.into(), &self.key.iv().into())
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError::Padding)?
            .len();
        buf.truncate(plain_len);
        let pad = usize::from(*buf.last().ok_or(CryptoError::Padding)?);
        if pad == 0
            || pad > PAD_BLOCK
            || pad > buf.len()
            || !buf[buf.len() - pad..].iter().all(|&b| usize::from(b) == pad)
        {
            return Err(CryptoError::Padding);
        }
        buf.truncate(buf.len() - pad);
        if buf.len() < RANDOM_PREFIX + LENGTH_FIELD {
            return Err(CryptoError::Truncated);
        }
        let declared =
            u32::from_be_bytes(buf[RANDOM_PREFIX..RANDOM_PREFIX + LENGTH_FIELD].try_into().expect("4 bytes"));
        let body = &buf[RANDOM_PREFIX + LENGTH_FIELD..];
        let len = usize::try_from(declared).unwrap_or(usize::MAX);
        if len > body.len() {
            return Err(CryptoError::LengthOverflow { declared, available: body.len() });
        }
        Ok(Decrypted { message: body[..len].to_vec(), owner: body[len..].to_vec() })
    }

    /// Decrypts and requires the trailing owner key to be this app's, byte for byte.
    pub fn open(&self, encrypt: &str) -> Result<Vec<u8>, CryptoError> {
        let decrypted = self.decrypt(encrypt)?;
        if decrypted.owner.as_slice().ct_eq(self.owner.0.as_bytes()).into() {
            Ok(decrypted.message)
        } else {
            Err(CryptoError::OwnerMismatch)
        }
    }

    /// Encrypts with a fresh random prefix, padded to 32 bytes as DingTalk's reference implementation does.
    pub fn encrypt(&self, message: &[u8]) -> String {
        let prefix = random_alnum(RANDOM_PREFIX);
        self.encrypt_with_prefix(prefix.as_bytes().try_into().expect("16 bytes"), message)
    }

    pub fn encrypt_with_prefix(&self, prefix: &[u8; RANDOM_PREFIX], message: &[u8]) -> String {
        let owner = self.owner.0.as_bytes();
        let unpadded = RANDOM_PREFIX + LENGTH_FIELD + message.len() + owner.len();
        let pad = PAD_BLOCK - unpadded % PAD_BLOCK;
        let mut buf = Vec::with_capacity(unpadded + pad);
        buf.extend_from_slice(prefix);
        buf.extend_from_slice(&u32::try_from(message.len()).expect("message under 4 GiB").to_be_bytes());
        buf.extend_from_slice(message);
        buf.extend_from_slice(owner);
        buf.resize(unpadded + pad, u8::try_from(pad).expect("pad fits a byte"));
        let len = buf.len();
        Aes256CbcEnc::new(&self.key.0.into(), &self.key.iv().into())
            .encrypt_padded_mut::<NoPadding>(&mut buf, len)
            .expect("buffer is a whole number of blocks");
        STANDARD.encode(buf)
    }
}

/// Random letters and digits, as DingTalk uses for nonces and plaintext prefixes.
pub fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}

#[cfg(test)]
mod tests;
