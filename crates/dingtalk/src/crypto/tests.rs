use proptest::prelude::*;

use super::*;

const V5_CIPHERTEXT: &str = "DwCJ9BMxu4r+VTe9TD+AWc1yfxqs7d2YgepFe4XruMgh1+6pTjCCq4nqAM6StRcafOx5a1OfwmX3ckSBifatlA==";

fn crypto(token: &str, aes_key: &str, owner: &str) -> CallbackCrypto {
    CallbackCrypto::new(
        Token::parse(token).unwrap(),
        EncodingAesKey::parse(aes_key).unwrap(),
        OwnerKey::parse(owner).unwrap(),
    )
}

fn demo() -> CallbackCrypto {
    crypto("tokenxxxx", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingxxxxxx")
}

/// Encrypts an arbitrary padded plaintext with the app's key, bypassing the layout rules.
fn encrypt_raw(c: &CallbackCrypto, mut plain: Vec<u8>) -> String {
    let len = plain.len();
    Aes256CbcEnc::new(&c.key.0.into(), &c.key.iv().into()).encrypt_padded_mut::<NoPadding>(&mut plain, len).unwrap();
    STANDARD.encode(plain)
}

#[test]
fn v1_suite_key_vector_decrypts_to_the_suite_check() {
    let c = crypto("123456", "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij", "suite4xxxxxxxxxxxxxxx");
    let enc = "1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ==";
    assert_eq!(c.sign("1445827045067", "nEXhMP4r", enc), "5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0");
    c.verify("5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0", "1445827045067", "nEXhMP4r", enc).unwrap();
    let message = c.open(enc).unwrap();
    assert_eq!(
        std::str::from_utf8(&message).unwrap(),
        r#"{"EventType":"check_create_suite_url","Random":"LPIdSnlF","TestSuiteKey":"suite4xxxxxxxxxxxxxxx"}"#
    );
}

#[test]
fn signature_differs_when_any_part_changes() {
    let base = signature("t", "1", "n", "e");
    assert_ne!(base, signature("t", "2", "n", "e"));
    assert_ne!(base, signature("u", "1", "n", "e"));
    // The parts are sorted, so their order in the call does not matter.
    assert_eq!(base, signature("e", "n", "1", "t"));
}

#[test]
fn v5_raw_vector_decrypts_but_its_length_field_is_text() {
    // V5 is a raw AES vector: "succ" sits where the length field goes, so a typed overflow error must come back.
    let c = crypto("123456", "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij", "suite4xxxxxxxxxxxxxxx");
    let err = c.decrypt(V5_CIPHERTEXT).unwrap_err();
    assert_eq!(err, CryptoError::LengthOverflow { declared: u32::from_be_bytes(*b"succ"), available: 30 });
}

#[test]
fn encrypted_success_round_trips_with_32_byte_padding() {
    let c = demo();
    let enc = c.encrypt(b"success");
    let raw = STANDARD.decode(&enc).unwrap();
    assert_eq!(raw.len() % 32, 0);
    assert_eq!(c.open(&enc).unwrap(), b"success");
    assert!(!enc.contains('\n'));
}

#[test]
fn owner_mismatch_is_refused() {
    let sender = crypto("tokenxxxx", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingOTHER");
    let enc = sender.encrypt(b"{}");
    assert_eq!(demo().open(&enc).unwrap_err(), CryptoError::OwnerMismatch);
    assert_eq!(sender.open(&enc).unwrap(), b"{}");
}

#[test]
fn malformed_ciphertexts_give_typed_errors() {
    let c = demo();
    assert_eq!(c.decrypt("not base64!").unwrap_err(), CryptoError::Base64);
    assert_eq!(c.decrypt("").unwrap_err(), CryptoError::CiphertextLength(0));
    assert_eq!(c.decrypt(&STANDARD.encode([0u8; 20])).unwrap_err(), CryptoError::CiphertextLength(20));
    // Valid block count but a pad value of zero, then one above 32.
    let mut zero_pad = vec![b'a'; 32];
    zero_pad[31] = 0;
    assert_eq!(c.decrypt(&encrypt_raw(&c, zero_pad)).unwrap_err(), CryptoError::Padding);
    let mut big_pad = vec![33u8; 64];
    big_pad[0] = b'a';
    assert_eq!(c.decrypt(&encrypt_raw(&c, big_pad)).unwrap_err(), CryptoError::Padding);
    // Inconsistent pad bytes.
    let mut mixed = vec![b'a'; 32];
    mixed[31] = 3;
    mixed[30] = 3;
    mixed[29] = 9;
    assert_eq!(c.decrypt(&encrypt_raw(&c, mixed)).unwrap_err(), CryptoError::Padding);
    // Shorter than prefix + length once unpadded.
    let mut short = vec![b'a'; 32];
    short[16..].fill(16);
    assert_eq!(c.decrypt(&encrypt_raw(&c, short)).unwrap_err(), CryptoError::Truncated);
}

#[test]
fn credentials_are_validated_and_redacted() {
    assert_eq!(EncodingAesKey::parse("short").unwrap_err(), CredentialError::AesKey);
    assert_eq!(EncodingAesKey::parse(&"-".repeat(43)).unwrap_err(), CredentialError::AesKey);
    assert!(EncodingAesKey::parse(&EncodingAesKey::generate()).is_ok());
    assert_eq!(Token::parse("").unwrap_err(), CredentialError::Token);
    assert_eq!(Token::parse("has space").unwrap_err(), CredentialError::Token);
    assert_eq!(OwnerKey::parse("  ").unwrap_err(), CredentialError::OwnerKey);
    let debug = format!("{:?}", demo());
    assert!(!debug.contains("tokenxxxx"), "{debug}");
    assert!(debug.contains("dingxxxxxx"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_as_ciphertext_never_panics(input in ".{0,300}") {
        let _ = demo().open(&input);
    }

    #[test]
    fn any_bytes_as_ciphertext_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = demo().open(&STANDARD.encode(&bytes));
    }

    #[test]
    fn any_padded_plaintext_gives_a_message_or_a_typed_error(
        blocks in 1usize..8,
        fill in any::<u8>(),
        length in any::<u32>(),
        pad in any::<u8>(),
    ) {
        let mut plain = vec![fill; blocks * 32];
        plain[16..20].copy_from_slice(&length.to_be_bytes());
        let last = plain.len() - 1;
        plain[last] = pad;
        let c = demo();
        match c.decrypt(&encrypt_raw(&c, plain.clone())) {
            Ok(decrypted) => prop_assert!(decrypted.message.len() + decrypted.owner.len() + 20 <= plain.len()),
            Err(CryptoError::Padding | CryptoError::Truncated | CryptoError::LengthOverflow { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn messages_round_trip(message in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let c = demo();
        let enc = c.encrypt(&message);
        prop_assert_eq!(STANDARD.decode(&enc).unwrap().len() % 32, 0);
        prop_assert_eq!(c.open(&enc).unwrap(), message);
    }

    #[test]
    fn flipping_any_ciphertext_byte_never_panics(index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let c = demo();
        let mut raw = STANDARD.decode(c.encrypt(br#"{"EventType":"chat_add_member"}"#)).unwrap();
        let i = index.index(raw.len());
        raw[i] ^= flip;
        let _ = c.open(&STANDARD.encode(raw));
    }
}
