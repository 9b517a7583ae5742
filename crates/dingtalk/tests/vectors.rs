//! DingTalk's published vectors (in https://open.dingtalk.com/document/development/http-callback-overview), loaded from the fixture copied from them.

use std::borrow::Cow;

use dingguard_dingtalk::{
    CallbackCrypto, CallbackQuery, CallbackReply, EncodingAesKey, Envelope, EventHeader, OwnerKey, ProtocolError,
    Timestamp, Token,
};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/dingtalk-vectors.json")).unwrap()
}

fn crypto_of(v: &Value) -> CallbackCrypto {
    CallbackCrypto::new(
        Token::parse(v["token"].as_str().unwrap()).unwrap(),
        EncodingAesKey::parse(v["encoding_aes_key"].as_str().unwrap()).unwrap(),
        OwnerKey::parse(v["owner_key"].as_str().unwrap()).unwrap(),
    )
}

#[test]
fn all_four_published_vectors_verify_and_decrypt() {
    let fixture = fixture();
    let vectors = fixture["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4);
    for v in vectors {
        let c = crypto_of(v);
        let (ts, nonce, enc) =
            (v["timestamp"].as_str().unwrap(), v["nonce"].as_str().unwrap(), v["encrypt"].as_str().unwrap());
        assert_eq!(c.sign(ts, nonce, enc), v["signature"].as_str().unwrap(), "vector {}", v["token"]);
        c.verify(v["signature"].as_str().unwrap(), ts, nonce, enc).unwrap();
        assert!(c.verify(&"0".repeat(40), ts, nonce, enc).is_err());
        let message = c.open(enc).unwrap();
        assert_eq!(std::str::from_utf8(&message).unwrap(), v["plaintext"].as_str().unwrap());
    }
}

#[test]
fn v3_and_v4_are_replies_that_our_reply_check_accepts() {
    let fixture = fixture();
    for v in &fixture["vectors"].as_array().unwrap()[2..4] {
        let reply = CallbackReply {
            msg_signature: v["signature"].as_str().unwrap().into(),
            time_stamp: v["timestamp"].as_str().unwrap().into(),
            nonce: v["nonce"].as_str().unwrap().into(),
            encrypt: v["encrypt"].as_str().unwrap().into(),
        };
        assert_eq!(reply.open(&crypto_of(v)).unwrap(), b"success");
    }
}

#[test]
fn our_reply_has_dingtalk_field_names() {
    let fixture = fixture();
    let c = crypto_of(&fixture["vectors"][1]);
    let reply = CallbackReply::new(&c, b"success", "1608001896814", "WL4PK6yA");
    let json: Value = serde_json::to_value(&reply).unwrap();
    for field in ["msg_signature", "timeStamp", "nonce", "encrypt"] {
        assert!(json[field].is_string(), "{field} missing in {json}");
    }
    assert_eq!(reply.open(&c).unwrap(), b"success");
}

fn pairs(list: &[(&'static str, &'static str)]) -> Vec<(Cow<'static, str>, Cow<'static, str>)> {
    list.iter().map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v))).collect()
}

#[test]
fn both_query_spellings_are_accepted() {
    let sig = "5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0";
    let a = CallbackQuery::from_pairs(pairs(&[("signature", sig), ("timestamp", "1"), ("nonce", "n")])).unwrap();
    let b = CallbackQuery::from_pairs(pairs(&[("msg_signature", sig), ("timeStamp", "1"), ("nonce", "n")])).unwrap();
    assert_eq!(a, b);
    let missing = CallbackQuery::from_pairs(pairs(&[("timestamp", "1"), ("nonce", "n")])).unwrap_err();
    assert!(matches!(missing, ProtocolError::MissingParameter("msg_signature")));
    let bad = CallbackQuery::from_pairs(pairs(&[("signature", "xyz"), ("timestamp", "1"), ("nonce", "n")]));
    assert!(matches!(bad, Err(ProtocolError::MalformedParameter("msg_signature"))));
}

#[test]
fn timestamps_in_seconds_and_milliseconds_normalise() {
    assert_eq!(Timestamp::parse("1614767836").unwrap().millis(), 1_614_767_836_000);
    assert_eq!(Timestamp::parse("1608001896814").unwrap().millis(), 1_608_001_896_814);
    assert!(Timestamp::parse("16x").is_err());
    assert!(Timestamp::parse("").is_err());
    assert!(Timestamp::parse("99999999999999999999").is_err());
}

#[test]
fn envelopes_must_carry_encrypt() {
    assert_eq!(Envelope::parse(br#"{"encrypt":"a\/b"}"#).unwrap().encrypt, "a/b");
    assert!(Envelope::parse(b"garbage").is_err());
    assert!(Envelope::parse(br#"{"encrypt":""}"#).is_err());
    assert!(Envelope::parse(br#"{"encrypt":5}"#).is_err());
}

#[test]
fn headers_parse_from_both_payload_spellings() {
    let fixture = fixture();
    let samples = &fixture["samples"];
    let legacy = EventHeader::parse(samples["chat_add_member_legacy"].to_string().as_bytes()).unwrap();
    assert_eq!(legacy.event_type.as_deref(), Some("chat_add_member"));
    assert_eq!(legacy.chat_id.as_deref(), Some("chat676e50a07xxxx"));
    assert_eq!(legacy.user_id.as_deref(), Some("user456"));
    assert_eq!(legacy.event_id, None);
    assert!(legacy.is_chat_event());

    let current = EventHeader::parse(samples["chat_add_member"].to_string().as_bytes()).unwrap();
    assert_eq!(current.event_id.as_deref(), Some("c7c7120fxxxx"));
    assert_eq!(current.biz_id.as_deref(), Some("1663xx35567"));
    assert_eq!(current.corp_id.as_deref(), Some("ding9f50xxxx"));
    assert_eq!(current.event_time_ms, Some(1_663_143_335_567));

    let task = EventHeader::parse(samples["bpms_task_change"].to_string().as_bytes()).unwrap();
    assert_eq!(task.user_id.as_deref(), Some("08058646137"));
    assert!(!task.is_chat_event());

    assert!(EventHeader::parse(b"[1,2]").is_err());
    assert!(EventHeader::parse(b"not json").is_err());
    assert_eq!(EventHeader::parse(b"{}").unwrap(), EventHeader::default());
}
