//! What the normaliser cannot know from one payload: whether a file is sensitive, whether a group holds personal
//! data, whether a download was granted. These become extra fields rules can test.

use std::collections::{HashMap, HashSet};

pub use dingguard_approval::Classification;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields added to every event's map, with their types, for the rule catalog.
pub const ENRICHED_FIELDS: [(&str, dingguard_rules::FieldType); 3] = [
    ("file.sensitive", dingguard_rules::FieldType::Bool),
    ("file.granted", dingguard_rules::FieldType::Bool),
    ("group.personal_data", dingguard_rules::FieldType::Bool),
];

/// Group titles seen so far, so events that only carry a group id can still be judged by title.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupTitles(HashMap<String, String>);

impl GroupTitles {
    pub fn remember(&mut self, fields: &Map<String, Value>) {
        if let (Some(Value::String(id)), Some(Value::String(title))) =
            (fields.get("group.id"), fields.get("group.title"))
        {
            self.0.insert(id.clone(), title.clone());
        }
    }
}

/// Adds the enriched fields to an event's map.
pub fn enrich(
    fields: &mut Map<String, Value>,
    classification: &Classification,
    titles: &GroupTitles,
    grants: &HashSet<String>,
) {
    let text = |k: &str| fields.get(k).and_then(Value::as_str);
    // Judged on borrowed text first, inserted after: no copies of the event's strings.
    let file_facts = text("file.id").map(|file| {
        let facts = dingguard_approval::FileFacts {
            name: text("file.name"),
            space: text("file.space"),
            ..dingguard_approval::FileFacts::default()
        };
        let actor = text("actor.id").unwrap_or_default();
        let granted = grants.contains(&format!("{actor}\u{1f}{file}"));
        (classification.is_sensitive(&facts), granted)
    });
    let personal = text("group.id").map(|group| {
        let title = text("group.title").or_else(|| titles.0.get(group).map(String::as_str));
        classification.personal_data_groups.iter().any(|g| g == group)
            || title.is_some_and(|t| classification.title_is_personal(t))
    });
    if let Some((sensitive, granted)) = file_facts {
        fields.insert("file.sensitive".into(), Value::Bool(sensitive));
        fields.insert("file.granted".into(), Value::Bool(granted));
    }
    if let Some(personal) = personal {
        fields.insert("group.personal_data".into(), Value::Bool(personal));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_classification_matches_names_and_spaces() {
        let c = Classification::demo();
        assert!(c.file_is_sensitive(Some("Confidential-plan.pdf"), None));
        assert!(c.file_is_sensitive(Some("scan.zip"), Some("space_hr")));
        assert!(c.file_is_sensitive(Some("身份證-scans.zip"), None));
        assert!(!c.file_is_sensitive(Some("menu.pdf"), Some("space_canteen")));
    }

    #[test]
    fn titles_are_remembered_for_later_events() {
        let c = Classification::demo();
        let mut titles = GroupTitles::default();
        let created: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"group.id": "g1", "group.title": "客戶資料"})).unwrap();
        titles.remember(&created);
        let mut later: Map<String, Value> = serde_json::from_value(serde_json::json!({"group.id": "g1"})).unwrap();
        enrich(&mut later, &c, &titles, &HashSet::new());
        assert_eq!(later["group.personal_data"], Value::Bool(true));
    }
}
