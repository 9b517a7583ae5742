//! The few fields of a decrypted event that routing needs; the event itself is stored untouched.
//!
//! DingTalk sends two spellings (legacy PascalCase, current lowerCamel) and sometimes both in one payload, so each
//! spelling is a separate field and the current one wins.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("decrypted message is not a JSON object: {0}")]
    NotJsonObject(String),
}

/// What the receiver reads from a decrypted event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// `EventType`; `None` when the sender omitted it — the event is still stored.
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub biz_id: Option<String>,
    pub corp_id: Option<String>,
    /// When the payload says the event happened, as stated (milliseconds, or seconds in some payloads): the
    /// first spelling that holds a positive number. Whether to believe it is `dingguard_model::event_time`'s call.
    pub event_time_ms: Option<i64>,
    pub chat_id: Option<String>,
    pub user_id: Option<String>,
    /// The `Random` of the legacy suite URL checks, which the reply must echo instead of `success`.
    pub random: Option<String>,
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "EventType", borrow)]
    event_type_pascal: Option<Cow<'a, str>>,
    #[serde(rename = "eventType", borrow)]
    event_type_camel: Option<Cow<'a, str>>,
    #[serde(rename = "eventId", borrow)]
    event_id: Option<Loose<'a>>,
    #[serde(rename = "EventId", borrow)]
    event_id_pascal: Option<Loose<'a>>,
    #[serde(rename = "BizId", borrow)]
    biz_id: Option<Loose<'a>>,
    #[serde(rename = "bizId", borrow)]
    biz_id_camel: Option<Loose<'a>>,
    #[serde(rename = "CorpId", borrow)]
    corp_id_pascal: Option<Cow<'a, str>>,
    #[serde(rename = "corpId", borrow)]
    corp_id_camel: Option<Cow<'a, str>>,
    #[serde(rename = "EventTime")]
    event_time: Option<Millis>,
    #[serde(rename = "TimeStamp")]
    time_stamp_pascal: Option<Millis>,
    #[serde(rename = "timeStamp")]
    time_stamp_camel: Option<Millis>,
    #[serde(rename = "ChatId", borrow)]
    chat_id_pascal: Option<Cow<'a, str>>,
    #[serde(rename = "chatId", borrow)]
    chat_id_camel: Option<Cow<'a, str>>,
    #[serde(rename = "OpenConversationId", borrow)]
    open_conversation_pascal: Option<Cow<'a, str>>,
    #[serde(rename = "openConversationId", borrow)]
    open_conversation_camel: Option<Cow<'a, str>>,
    #[serde(rename = "UserId", borrow)]
    user_id_pascal: Option<Loose<'a>>,
    #[serde(rename = "userId", borrow)]
    user_id_camel: Option<Loose<'a>>,
    #[serde(rename = "staffId", borrow)]
    staff_id: Option<Loose<'a>>,
    #[serde(rename = "Operator", borrow)]
    operator_pascal: Option<Loose<'a>>,
    #[serde(rename = "operator", borrow)]
    operator_camel: Option<Loose<'a>>,
    #[serde(rename = "Random", borrow)]
    random: Option<Cow<'a, str>>,
}

/// An id field read leniently, in the same pass as the rest of the event: a string, or the first non-empty string
/// of an array (nested or not); numbers are rendered as DingTalk ids sometimes arrive unquoted; anything else is
/// absent rather than an error.
struct Loose<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose((!v.is_empty()).then_some(Cow::Borrowed(v))))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose((!v.is_empty()).then(|| Cow::Owned(v.to_owned()))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Loose(Some(Cow::Owned(v.to_string()))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Loose(Some(Cow::Owned(v.to_string()))))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Loose(serde_json::Number::from_f64(v).map(|n| Cow::Owned(n.to_string()))))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut first = None;
        while let Some(item) = seq.next_element::<Loose<'de>>()? {
            if first.is_none() {
                first = item.0;
            }
        }
        Ok(Loose(first))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose(None))
    }
}

/// A time in milliseconds, as a whole number or a quoted one; anything else is absent. Read as a number, not
/// through [`Loose`]: every event carries its times as numbers, and rendering them as text only to parse them back
/// would cost each callback two allocations.
struct Millis(Option<i64>);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MillisVisitor)
    }
}

struct MillisVisitor;

impl<'de> Visitor<'de> for MillisVisitor {
    type Value = Millis;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Millis(Some(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Millis(i64::try_from(v).ok()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Millis(None))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Millis(v.parse().ok()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Millis(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Millis(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Millis(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Millis(None))
    }
}

/// The first of the spellings that holds an id: one that is present but holds none never hides the others.
fn first_id<const N: usize>(spellings: [Option<Loose<'_>>; N]) -> Option<String> {
    spellings.into_iter().flatten().find_map(|l| l.0).map(Cow::into_owned)
}

fn millis(value: Option<Millis>) -> Option<i64> {
    value.and_then(|m| m.0)
}

/// The first of the spellings that is present and not empty: an empty field never hides the other spelling.
fn first_text<const N: usize>(spellings: [Option<Cow<'_, str>>; N]) -> Option<String> {
    spellings.into_iter().flatten().find(|s| !s.is_empty()).map(Cow::into_owned)
}

impl EventHeader {
    /// Reads the routing fields in one pass, borrowing from `message` until a field is chosen: an event carries
    /// many fields and arrays the receiver never looks at, and this runs for every callback.
    pub fn parse(message: &[u8]) -> Result<Self, PayloadError> {
        let raw: Raw<'_> = serde_json::from_slice(message).map_err(|e| PayloadError::NotJsonObject(e.to_string()))?;
        Ok(Self {
            event_type: first_text([raw.event_type_pascal, raw.event_type_camel]),
            event_id: first_id([raw.event_id, raw.event_id_pascal]),
            biz_id: first_id([raw.biz_id, raw.biz_id_camel]),
            corp_id: first_text([raw.corp_id_pascal, raw.corp_id_camel]),
            event_time_ms: [raw.event_time, raw.time_stamp_camel, raw.time_stamp_pascal]
                .into_iter()
                .find_map(|t| millis(t).filter(|ms| *ms > 0)),
            chat_id: first_text([
                raw.chat_id_camel,
                raw.chat_id_pascal,
                raw.open_conversation_camel,
                raw.open_conversation_pascal,
            ]),
            user_id: first_id([
                raw.user_id_camel,
                raw.user_id_pascal,
                raw.staff_id,
                raw.operator_camel,
                raw.operator_pascal,
            ]),
            random: first_text([raw.random]),
        })
    }

    /// Group events are ordered per group; everything else per user.
    pub fn is_chat_event(&self) -> bool {
        self.event_type.as_deref().is_some_and(|t| t.starts_with("chat_"))
    }
}

#[cfg(test)]
mod tests {
    use crate::fields;

    /// The receiver's header and the normaliser read the same fields: every spelling the normaliser knows for
    /// the event's time, corp and group is one the header reads too, so the two never key or date an event apart.
    #[test]
    fn the_header_reads_every_spelling_the_normaliser_knows() {
        for key in fields::EVENT_TIME.spellings() {
            let header = EventHeader::parse(format!(r#"{{"{key}": 1764540000000}}"#).as_bytes()).unwrap();
            assert_eq!(header.event_time_ms, Some(1_764_540_000_000), "{key}");
        }
        for key in fields::CORP_ID.spellings() {
            let header = EventHeader::parse(format!(r#"{{"{key}": "dingc"}}"#).as_bytes()).unwrap();
            assert_eq!(header.corp_id.as_deref(), Some("dingc"), "{key}");
        }
        for key in fields::CHAT.spellings() {
            let header = EventHeader::parse(format!(r#"{{"{key}": "g1"}}"#).as_bytes()).unwrap();
            assert_eq!(header.chat_id.as_deref(), Some("g1"), "{key}");
        }
        for key in fields::USER_ID.spellings() {
            let header = EventHeader::parse(format!(r#"{{"{key}": ["u1"]}}"#).as_bytes()).unwrap();
            assert_eq!(header.user_id.as_deref(), Some("u1"), "{key}");
        }
    }

    use super::*;

    fn parse(json: &str) -> EventHeader {
        EventHeader::parse(json.as_bytes()).expect("an object")
    }

    #[test]
    fn ids_may_be_strings_numbers_or_arrays() {
        let event = parse(
            r#"{"EventType":"chat_add_member","eventId":123,"bizId":"b\"1","userId":["",["u\u0032"],"u3"],"CorpId":"dingc"}"#,
        );
        assert_eq!(event.event_type.as_deref(), Some("chat_add_member"));
        assert_eq!(event.event_id.as_deref(), Some("123"));
        assert_eq!(event.biz_id.as_deref(), Some("b\"1"), "escaped text is decoded");
        assert_eq!(event.user_id.as_deref(), Some("u2"), "the first non-empty string, arrays nested or not");
        assert_eq!(event.corp_id.as_deref(), Some("dingc"));
    }

    #[test]
    fn the_current_spelling_wins_and_empty_or_null_fields_are_absent() {
        let event = parse(
            r#"{"EventType":"","eventType":"user_add_org","EventId":"old","eventId":"new","chatId":null,
                "ChatId":"g1","UserId":"","staffId":"s1","TimeStamp":"1700000000000","EventTime":null}"#,
        );
        assert_eq!(event.event_type.as_deref(), Some("user_add_org"), "an empty spelling does not hide the other");
        assert_eq!(event.event_id.as_deref(), Some("new"));
        assert_eq!(event.chat_id.as_deref(), Some("g1"));
        assert_eq!(event.user_id.as_deref(), Some("s1"), "falls back past an empty UserId");
        assert_eq!(event.event_time_ms, Some(1_700_000_000_000), "times may be quoted");
        assert_eq!(event.random, None);
    }

    #[test]
    fn a_field_of_the_wrong_kind_or_not_an_object_is_refused() {
        assert!(EventHeader::parse(br#"{"CorpId":7}"#).is_err());
        assert!(EventHeader::parse(b"[1,2]").is_err());
        assert!(EventHeader::parse(b"not json").is_err());
        assert_eq!(parse(r#"{"eventId":{"nested":1},"userId":true}"#).event_id, None);
    }

    #[test]
    fn lenient_fields_skip_what_is_not_an_id_and_keep_reading() {
        let event = parse(r#"{"userId":[{"a":[1]},null,7,"u"],"EventTime":1.5,"timeStamp":"12","BizId":[],"x":[{}]}"#);
        assert_eq!(event.user_id.as_deref(), Some("7"), "objects and nulls in the array are passed over");
        assert_eq!(event.event_time_ms, Some(12), "a fractional time is absent, the next spelling is read");
        assert_eq!(event.biz_id, None);
        let times = parse(r#"{"EventTime":["5"],"timeStamp":18446744073709551615,"TimeStamp":-3}"#);
        assert_eq!(times.event_time_ms, None, "a time in an array, beyond i64, or not positive is absent");
        assert_eq!(parse(r#"{"eventId":18446744073709551615}"#).event_id.as_deref(), Some("18446744073709551615"));
    }

    #[test]
    fn an_id_spelling_that_holds_no_id_does_not_hide_the_other() {
        let event = parse(r#"{"eventId":"","EventId":"e2","BizId":null,"bizId":"b2","userId":{},"staffId":"s"}"#);
        assert_eq!(event.event_id.as_deref(), Some("e2"));
        assert_eq!(event.biz_id.as_deref(), Some("b2"));
        assert_eq!(event.user_id.as_deref(), Some("s"));
    }
}
