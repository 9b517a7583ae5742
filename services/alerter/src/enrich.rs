//! What the normaliser cannot know from one payload: whether a file is sensitive, whether a group holds personal
//! data, whether a download was granted. These become extra fields rules can test.

use std::collections::{HashMap, HashSet};

pub use dingguard_approval::Classification;
use dingguard_events::Field;
use dingguard_rules::{FieldValue, Fields};
use serde::{Deserialize, Serialize};

/// Group titles seen so far, so events that only carry a group id can still be judged by title.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupTitles(HashMap<String, String>);

impl GroupTitles {
    pub fn remember(&mut self, fields: &Fields<'_>) {
        if let (Some(id), Some(title)) = (fields.text(Field::GroupId.slot()), fields.text(Field::GroupTitle.slot()))
            && self.0.get(id).is_none_or(|known| known != title)
        {
            self.0.insert(id.to_owned(), title.to_owned());
        }
    }
}

/// Adds the enriched fields to an event's record.
pub fn enrich(
    fields: &mut Fields<'_>,
    classification: &Classification,
    titles: &GroupTitles,
    grants: &HashSet<String>,
) {
    let text = |f: Field| fields.text(f.slot());
    let file_facts = text(Field::FileId).map(|file| {
        let facts = dingguard_approval::FileFacts {
            name: text(Field::FileName),
            space: text(Field::FileSpace),
            ..dingguard_approval::FileFacts::default()
        };
        let granted = !grants.is_empty() && {
            let actor = text(Field::ActorId).unwrap_or_default();
            grants.contains(&format!("{actor}\u{1f}{file}"))
        };
        (classification.is_sensitive(&facts), granted)
    });
    let personal = text(Field::GroupId).map(|group| {
        let title = text(Field::GroupTitle).or_else(|| titles.0.get(group).map(String::as_str));
        classification.personal_data_groups.iter().any(|g| g == group)
            || title.is_some_and(|t| classification.title_is_personal(t))
    });
    if let Some((sensitive, granted)) = file_facts {
        fields.set(Field::FileSensitive.slot(), FieldValue::Bool(sensitive));
        fields.set(Field::FileGranted.slot(), FieldValue::Bool(granted));
    }
    if let Some(personal) = personal {
        fields.set(Field::GroupPersonalData.slot(), FieldValue::Bool(personal));
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
        let catalog = dingguard_events::rule_catalog();
        let record = |v: serde_json::Value| catalog.fields_from_json(v.as_object().unwrap()).unwrap();
        titles.remember(&record(serde_json::json!({"group.id": "g1", "group.title": "客戶資料"})));
        let mut later = record(serde_json::json!({"group.id": "g1"}));
        enrich(&mut later, &c, &titles, &HashSet::new());
        assert_eq!(later.get(Field::GroupPersonalData.slot()), Some(&FieldValue::Bool(true)));
    }
}
