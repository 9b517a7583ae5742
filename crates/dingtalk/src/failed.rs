//! DingTalk's list of pushes that failed (`GET /call_back/get_call_back_failed_result`,
//! https://open.dingtalk.com/document/development/obtain-the-event-list-of-failed-push-messages): after its two
//! retries DingTalk parks an event there, and clears the list as it returns it. Each item names its event type in
//! `call_back_tag` and carries the event under a key of that name: in `callbackData` for most events,
//! `bpmsCallBackData` for approvals, `roleLabelChange` for role changes, as an object or as JSON text.
//! [`event_of`] turns an item back into the event the push would have carried, so a copy that did arrive by push
//! and this one are the same record.

use serde::Deserialize;
use serde_json::{Map, Value};

/// One answer of the failed-push API.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FailedList {
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub failed_list: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailedItemError {
    #[error("a failed-push item without a `call_back_tag`")]
    NoTag,
    #[error("the failed-push item of `{0}` carries no event under its tag")]
    NoData(String),
}

/// Where the event sits inside the item's data, in the order DingTalk documents them.
const DATA_KEYS: [&str; 3] = ["callbackData", "bpmsCallBackData", "roleLabelChange"];

/// The event JSON a push of this item would have carried: the event as DingTalk stored it, with its type, corp
/// and time added only where it does not state them itself.
pub fn event_of(item: &Value) -> Result<Vec<u8>, FailedItemError> {
    let tag =
        item.get("call_back_tag").and_then(Value::as_str).filter(|t| !t.is_empty()).ok_or(FailedItemError::NoTag)?;
    let no_data = || FailedItemError::NoData(tag.chars().take(64).collect());
    let wrapper = item.get(tag).and_then(Value::as_object).ok_or_else(no_data)?;
    let data = DATA_KEYS.iter().find_map(|k| wrapper.get(*k)).ok_or_else(no_data)?;
    let mut event: Map<String, Value> = match data {
        Value::Object(map) => map.clone(),
        Value::String(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(no_data()),
        },
        _ => return Err(no_data()),
    };
    let has = |event: &Map<String, Value>, keys: &[&str]| keys.iter().any(|k| event.contains_key(*k));
    if !has(&event, &["EventType", "eventType"]) {
        event.insert("EventType".into(), Value::String(tag.to_owned()));
    }
    if !has(&event, crate::fields::CORP_ID.spellings())
        && let Some(corp) = wrapper.get("corpid").or_else(|| wrapper.get("corpId")).filter(|c| c.is_string())
    {
        event.insert("CorpId".into(), corp.clone());
    }
    if !has(&event, crate::fields::EVENT_TIME.spellings())
        && let Some(at) = item.get("event_time").filter(|t| t.is_number() || t.is_string())
    {
        event.insert("EventTime".into(), at.clone());
    }
    Ok(serde_json::to_vec(&Value::Object(event)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{EventHeader, callback_ce_id};

    #[test]
    fn an_item_becomes_the_event_its_push_carried_and_the_same_record() {
        let pushed =
            json!({"EventType": "user_leave_org", "TimeStamp": "1764540000000", "UserId": ["u1"], "CorpId": "dingc"});
        let pushed_bytes = serde_json::to_vec(&pushed).unwrap();
        for data in [pushed.clone(), Value::String(pushed.to_string())] {
            let item = json!({"call_back_tag": "user_leave_org", "event_time": 1764540000000i64,
                "user_leave_org": {"corpid": "dingc", "callbackData": data}});
            let bytes = event_of(&item).unwrap();
            let (a, b) = (EventHeader::parse(&bytes).unwrap(), EventHeader::parse(&pushed_bytes).unwrap());
            assert_eq!(callback_ce_id(&a, &bytes), callback_ce_id(&b, &pushed_bytes), "the push's copy is the same");
        }
        let approval = json!({"call_back_tag": "bpms_task_change", "event_time": 5,
            "bpms_task_change": {"corpid": "dingc", "bpmsCallBackData": {"processInstanceId": "p1", "type": "finish"}}});
        let event: Value = serde_json::from_slice(&event_of(&approval).unwrap()).unwrap();
        assert_eq!(
            event,
            json!({"processInstanceId": "p1", "type": "finish", "EventType": "bpms_task_change",
            "CorpId": "dingc", "EventTime": 5})
        );
    }

    #[test]
    fn items_without_an_event_are_refused() {
        assert_eq!(event_of(&json!({})), Err(FailedItemError::NoTag));
        assert!(event_of(&json!({"call_back_tag": "x"})).is_err());
        assert!(event_of(&json!({"call_back_tag": "x", "x": {"callbackData": "not json"}})).is_err());
        assert!(event_of(&json!({"call_back_tag": "x", "x": {"callbackData": [1]}})).is_err());
    }
}
