//! DingTalk's Stream mode frames (https://open.dingtalk.com/document/direction/stream-mode-protocol-access-description):
//! what the server sends down a connection, and the acks a client sends back. Pure parsing and building; the
//! connection itself lives with the sources.
//!
//! An EVENT frame carries the business fields as a JSON string in `data` and the event's identity in its
//! headers (`eventId`, `eventType`, `eventCorpId`, `eventBornTime`). [`Frame::event_json`] folds the two into the
//! JSON an HTTP push of the same event carries, so a copy that arrived both ways is one record.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most bytes a frame may have; DingTalk's events are a few KiB, and the HTTP push takes at most 1 MiB.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Connection registration: `POST /v1.0/gateway/connections/open`.
pub const OPEN_PATH: &str = "/v1.0/gateway/connections/open";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Event,
    Callback,
    System,
}

impl FrameKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Callback => "callback",
            Self::System => "system",
        }
    }
}

/// What a SYSTEM frame asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemTopic {
    /// Answer with the same `opaque`.
    Ping { opaque: String },
    /// The server will close this connection; open a new one.
    Disconnect { reason: String },
    /// A system topic this client does not know; it is answered so it does not pile up.
    Other,
}

/// One downstream frame, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub message_id: String,
    pub topic: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub corp_id: Option<String>,
    pub born_ms: Option<i64>,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("frame is not a Stream frame: {0}")]
    Malformed(String),
    #[error("frame type {0:?} is not EVENT, CALLBACK or SYSTEM")]
    UnknownKind(String),
    #[error("frame has no `messageId` header")]
    NoMessageId,
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    headers: HashMap<String, Value>,
    #[serde(default)]
    data: Option<Value>,
}

fn text(headers: &HashMap<String, Value>, key: &str) -> Option<String> {
    match headers.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Frame {
    pub fn parse(bytes: &[u8]) -> Result<Self, FrameError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(bytes.len()));
        }
        let raw: RawFrame = serde_json::from_slice(bytes).map_err(|e| FrameError::Malformed(e.to_string()))?;
        let kind = match raw.kind.as_str() {
            "EVENT" => FrameKind::Event,
            "CALLBACK" => FrameKind::Callback,
            "SYSTEM" => FrameKind::System,
            other => return Err(FrameError::UnknownKind(other.chars().take(32).collect())),
        };
        let message_id = text(&raw.headers, "messageId").ok_or(FrameError::NoMessageId)?;
        let data = match raw.data {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s,
            // The protocol says a string; an object is taken as the same JSON.
            Some(other) => other.to_string(),
        };
        Ok(Self {
            kind,
            message_id,
            topic: text(&raw.headers, "topic").unwrap_or_default(),
            event_id: text(&raw.headers, "eventId"),
            event_type: text(&raw.headers, "eventType"),
            corp_id: text(&raw.headers, "eventCorpId"),
            born_ms: text(&raw.headers, "eventBornTime").and_then(|t| t.parse().ok()),
            data,
        })
    }

    pub fn system_topic(&self) -> SystemTopic {
        let data: Map<String, Value> = serde_json::from_str(&self.data).unwrap_or_default();
        let field = |key: &str| data.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        match self.topic.as_str() {
            "ping" => SystemTopic::Ping { opaque: field("opaque") },
            "disconnect" => SystemTopic::Disconnect { reason: field("reason") },
            _ => SystemTopic::Other,
        }
    }

    /// The event as an HTTP push carries it: the business fields of `data` at the top level, with `EventType`,
    /// `EventTime`, `CorpId` and `eventId` from the headers where `data` does not state them. Data that is not a
    /// JSON object is kept whole under `data`, so nothing DingTalk sent is dropped.
    pub fn event_json(&self) -> Vec<u8> {
        let mut event: Map<String, Value> = match serde_json::from_str(&self.data) {
            Ok(Value::Object(map)) => map,
            _ => Map::from_iter([("data".to_owned(), Value::String(self.data.clone()))]),
        };
        let mut add = |spellings: &[&str], key: &str, value: Option<Value>| {
            if let Some(value) = value
                && !spellings.iter().any(|k| event.contains_key(*k))
            {
                event.insert(key.to_owned(), value);
            }
        };
        add(&["EventType", "eventType"], "EventType", self.event_type.clone().map(Value::String));
        add(crate::fields::CORP_ID.spellings(), "CorpId", self.corp_id.clone().map(Value::String));
        add(&["EventTime"], "EventTime", self.born_ms.map(Value::from));
        add(&["eventId"], "eventId", self.event_id.clone().map(Value::String));
        serde_json::to_vec(&Value::Object(event)).unwrap_or_default()
    }
}

/// How the client took an EVENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    /// In the log: do not send it again.
    Success,
    /// Not taken now: send it again later.
    Later,
}

#[derive(Serialize)]
struct Ack<'a> {
    code: u16,
    headers: AckHeaders<'a>,
    message: &'a str,
    data: String,
}

#[derive(Serialize)]
struct AckHeaders<'a> {
    #[serde(rename = "messageId")]
    message_id: &'a str,
    #[serde(rename = "contentType")]
    content_type: &'static str,
}

fn ack(message_id: &str, data: Value) -> String {
    let ack = Ack {
        code: 200,
        headers: AckHeaders { message_id, content_type: "application/json" },
        message: "OK",
        data: data.to_string(),
    };
    serde_json::to_string(&ack).unwrap_or_default()
}

/// The ack of an EVENT, with its status spelled as a string (the protocol's form).
pub fn event_ack(message_id: &str, status: EventStatus) -> String {
    let status = match status {
        EventStatus::Success => "SUCCESS",
        EventStatus::Later => "LATER",
    };
    ack(message_id, serde_json::json!({"status": status, "message": ""}))
}

/// The answer to a `ping`: its `opaque` back.
pub fn ping_ack(message_id: &str, opaque: &str) -> String {
    ack(message_id, serde_json::json!({"opaque": opaque}))
}

/// The ack of a CALLBACK (a robot message): taken, no reply.
pub fn callback_ack(message_id: &str) -> String {
    ack(message_id, serde_json::json!({"response": null}))
}

/// An ack as the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAck {
    pub code: i64,
    pub message_id: String,
    pub data: Value,
}

/// Reads a client's ack (for the stand-in and tests).
pub fn parse_ack(bytes: &[u8]) -> Option<ParsedAck> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let message_id = value.get("headers")?.get("messageId")?.as_str()?.to_owned();
    let data = match value.get("data") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    Some(ParsedAck { code: value.get("code").and_then(Value::as_i64).unwrap_or_default(), message_id, data })
}

/// The body of `connections/open`, with the subscriptions dingguard needs: every event, and robot callbacks so
/// they are acked rather than piled up.
pub fn open_request(client_id: &str, client_secret: &str, ua: &str) -> Value {
    serde_json::json!({
        "clientId": client_id,
        "clientSecret": client_secret,
        "subscriptions": [
            {"type": "EVENT", "topic": "*"},
            {"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"},
        ],
        "ua": ua,
    })
}

/// `connections/open`'s answer: where to connect, with a ticket good for one connection.
#[derive(Debug, Clone, Deserialize)]
pub struct Opened {
    pub endpoint: String,
    pub ticket: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"specVersion":"1.0","type":"EVENT","headers":{"topic":"*","messageId":"m1",
        "contentType":"application/json","time":"1693221579964","eventType":"chat_add_member","eventId":"e1",
        "eventCorpId":"dingc","eventBornTime":"1693221579000"},
        "data":"{\"chatId\":\"g1\",\"userId\":[\"u1\"],\"operator\":\"u0\"}"}"#;

    #[test]
    fn an_event_frame_becomes_the_json_its_push_carries() {
        let frame = Frame::parse(EVENT.as_bytes()).unwrap();
        assert_eq!(frame.kind, FrameKind::Event);
        assert_eq!(frame.message_id, "m1");
        let event: Value = serde_json::from_slice(&frame.event_json()).unwrap();
        assert_eq!(event["EventType"], "chat_add_member");
        assert_eq!(event["CorpId"], "dingc");
        assert_eq!(event["EventTime"], 1_693_221_579_000_i64);
        assert_eq!(event["eventId"], "e1");
        assert_eq!(event["chatId"], "g1");
        let header = crate::EventHeader::parse(&frame.event_json()).unwrap();
        assert_eq!(header.event_id.as_deref(), Some("e1"));
        assert_eq!(header.chat_id.as_deref(), Some("g1"));
    }

    #[test]
    fn what_data_states_wins_and_non_objects_are_kept_whole() {
        let frame = Frame::parse(
            br#"{"type":"EVENT","headers":{"messageId":"m","eventType":"x","eventCorpId":"c"},
                 "data":"{\"corpId\":\"own\",\"EventType\":\"y\"}"}"#,
        )
        .unwrap();
        let event: Value = serde_json::from_slice(&frame.event_json()).unwrap();
        assert_eq!(event["EventType"], "y");
        assert_eq!(event["corpId"], "own");
        assert!(event.get("CorpId").is_none());
        let odd = Frame::parse(br#"{"type":"EVENT","headers":{"messageId":"m","eventId":"e"},"data":"[1,2"}"#).unwrap();
        let event: Value = serde_json::from_slice(&odd.event_json()).unwrap();
        assert_eq!(event["data"], "[1,2");
        assert_eq!(event["eventId"], "e");
    }

    #[test]
    fn system_frames_say_what_they_want() {
        let ping = Frame::parse(
            br#"{"type":"SYSTEM","headers":{"messageId":"p","topic":"ping"},"data":"{\"opaque\":\"o1\"}"}"#,
        )
        .unwrap();
        assert_eq!(ping.system_topic(), SystemTopic::Ping { opaque: "o1".into() });
        let bye = Frame::parse(
            br#"{"type":"SYSTEM","headers":{"messageId":"d","topic":"disconnect"},"data":"{\"reason\":\"timeout\"}"}"#,
        )
        .unwrap();
        assert_eq!(bye.system_topic(), SystemTopic::Disconnect { reason: "timeout".into() });
        let answer = parse_ack(ping_ack("p", "o1").as_bytes()).unwrap();
        assert_eq!((answer.code, answer.message_id.as_str()), (200, "p"));
        assert_eq!(answer.data["opaque"], "o1");
        let later = parse_ack(event_ack("m", EventStatus::Later).as_bytes()).unwrap();
        assert_eq!(later.data["status"], "LATER");
    }

    #[test]
    fn bad_frames_are_refused_with_a_reason() {
        assert!(matches!(Frame::parse(b"nope"), Err(FrameError::Malformed(_))));
        assert_eq!(Frame::parse(br#"{"type":"EVENT","headers":{}}"#), Err(FrameError::NoMessageId));
        assert!(matches!(
            Frame::parse(br#"{"type":"WHAT","headers":{"messageId":"m"}}"#),
            Err(FrameError::UnknownKind(_))
        ));
        let big = vec![b' '; MAX_FRAME_BYTES + 1];
        assert_eq!(Frame::parse(&big), Err(FrameError::TooLarge(MAX_FRAME_BYTES + 1)));
    }
}
