//! What the normaliser cannot know from one payload: whether a file is sensitive, whether a group holds personal
//! data, whether a download was granted. These become extra fields rules can test.

use std::collections::HashMap;

pub use dingguard_approval::Classification;
use dingguard_events::Field;
use dingguard_rules::{FieldValue, Fields};
use dingguard_store::{FileFact, Grant};
use serde::{Deserialize, Serialize};

/// The approval router's grants, by user and file, as the alerter judges downloads by them: in force at the time
/// the download happened, and only for the file as the grant knew it.
#[derive(Debug, Clone, Default)]
pub struct Grants(HashMap<(String, String), Vec<GrantSpan>>);

/// When one grant was in force (from, until) and the file facts it was decided on.
type GrantSpan = (i64, i64, Vec<FileFact>);

/// What the grants say of one download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// A grant in force then, for this user, file id, name and space.
    Granted,
    /// A grant in force then for this user and file id, but decided on another name or space.
    Mismatch,
    None,
}

/// A fact the event states must be one the grant was decided on; a fact the event leaves out constrains nothing.
fn matches(fact: &FileFact, name: Option<&str>, space: Option<&str>) -> bool {
    let same = |stated: Option<&str>, granted: Option<&str>, fold: bool| match stated.map(str::trim) {
        None | Some("") => true,
        Some(s) => {
            granted.map(str::trim).is_some_and(|g| if fold { g.to_lowercase() == s.to_lowercase() } else { g == s })
        }
    };
    same(name, fact.name.as_deref(), true) && same(space, fact.space.as_deref(), false)
}

impl Grants {
    pub fn new(grants: Vec<Grant>) -> Self {
        let mut by_key: HashMap<(String, String), Vec<GrantSpan>> = HashMap::new();
        for g in grants {
            by_key.entry((g.user_id, g.file_id)).or_default().push((g.granted_at_ms, g.expires_at_ms, g.facts));
        }
        Self(by_key)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `user`'s download of `file`, named `name` in `space`, at `at_ms`, was granted.
    pub fn cover(&self, user: &str, file: &str, name: Option<&str>, space: Option<&str>, at_ms: i64) -> Coverage {
        let Some(grants) = self.0.get(&(user.to_owned(), file.to_owned())) else { return Coverage::None };
        let mut in_force = grants.iter().filter(|(from, until, _)| *from <= at_ms && at_ms < *until).peekable();
        if in_force.peek().is_none() {
            return Coverage::None;
        }
        if in_force.any(|(_, _, facts)| facts.iter().any(|f| matches(f, name, space))) {
            Coverage::Granted
        } else {
            Coverage::Mismatch
        }
    }
}

/// Group titles seen so far, so events that only carry a group id can still be judged by title.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupTitles(
    HashMap<String, String>,
    /// Groups whose title changed since the last `take_changed`.
    #[serde(skip)]
    Vec<String>,
);

impl GroupTitles {
    pub fn remember(&mut self, fields: &Fields<'_>) {
        if let (Some(id), Some(title)) = (fields.text(Field::GroupId.slot()), fields.text(Field::GroupTitle.slot()))
            && self.0.get(id).is_none_or(|known| known != title)
        {
            self.0.insert(id.to_owned(), title.to_owned());
            self.1.push(id.to_owned());
        }
    }

    /// Titles changed since the last call, to save.
    pub fn take_changed(&mut self) -> Vec<(String, String)> {
        let ids = std::mem::take(&mut self.1);
        ids.into_iter().filter_map(|id| self.0.get(&id).cloned().map(|title| (id, title))).collect()
    }

    /// A title known under a group's other id is the group's, unless it has one of its own.
    pub fn merge(&mut self, other: &str, chat: &str) {
        if let Some(title) = self.0.get(other).cloned()
            && !self.0.contains_key(chat)
        {
            self.0.insert(chat.to_owned(), title);
            self.1.push(chat.to_owned());
        }
    }

    pub fn restore(&mut self, group: &str, title: &str) {
        self.0.insert(group.to_owned(), title.to_owned());
    }

    /// Marks every title changed, so the next `take_changed` saves them all.
    pub fn mark_all_changed(&mut self) {
        self.1 = self.0.keys().cloned().collect();
    }
}

/// Adds the enriched fields to the record of an event that happened at `at_ms`.
pub fn enrich(
    fields: &mut Fields<'_>,
    classification: &Classification,
    titles: &GroupTitles,
    grants: &Grants,
    at_ms: i64,
) {
    let text = |f: Field| fields.text(f.slot());
    let file_facts = text(Field::FileId).map(|file| {
        let (name, space) = (text(Field::FileName), text(Field::FileSpace));
        let facts = dingguard_approval::FileFacts { name, space, ..dingguard_approval::FileFacts::default() };
        let coverage = if grants.is_empty() {
            Coverage::None
        } else {
            grants.cover(text(Field::ActorId).unwrap_or_default(), file, name, space, at_ms)
        };
        (classification.is_sensitive(&facts), coverage)
    });
    let personal = text(Field::GroupId).map(|group| {
        let title = text(Field::GroupTitle).or_else(|| titles.0.get(group).map(String::as_str));
        classification.personal_data_groups.iter().any(|g| g == group)
            || title.is_some_and(|t| classification.title_is_personal(t))
    });
    if let Some((sensitive, coverage)) = file_facts {
        fields.set(Field::FileSensitive.slot(), FieldValue::Bool(sensitive));
        fields.set(Field::FileGranted.slot(), FieldValue::Bool(coverage == Coverage::Granted));
        fields.set(Field::FileGrantMismatch.slot(), FieldValue::Bool(coverage == Coverage::Mismatch));
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
        enrich(&mut later, &c, &titles, &Grants::default(), 0);
        assert_eq!(later.get(Field::GroupPersonalData.slot()), Some(&FieldValue::Bool(true)));
    }

    fn grant(from: i64, until: i64, name: &str, space: Option<&str>) -> Grant {
        Grant {
            request_id: dingguard_model::RequestId::with_suffix(&from.to_string()).into(),
            user_id: "u1".into(),
            file_id: "f1".into(),
            granted_at_ms: from,
            expires_at_ms: until,
            facts: vec![FileFact { name: Some(name.into()), space: space.map(str::to_owned) }],
        }
    }

    #[test]
    fn a_grant_covers_only_its_time_and_the_file_it_was_decided_on() {
        let grants = Grants::new(vec![grant(100, 200, "Menu.pdf", Some("public"))]);
        let cover = |name, space, at| grants.cover("u1", "f1", name, space, at);
        assert_eq!(cover(Some("menu.pdf"), Some("public"), 150), Coverage::Granted, "names compare without case");
        assert_eq!(cover(None, None, 150), Coverage::Granted, "a download that states nothing else");
        assert_eq!(cover(Some("salaries.xlsx"), Some("public"), 150), Coverage::Mismatch);
        assert_eq!(cover(Some("menu.pdf"), Some("space_hr"), 150), Coverage::Mismatch);
        assert_eq!(cover(Some("menu.pdf"), Some("public"), 99), Coverage::None, "before the grant");
        assert_eq!(cover(Some("menu.pdf"), Some("public"), 200), Coverage::None, "after it expired");
        assert_eq!(grants.cover("u2", "f1", None, None, 150), Coverage::None, "grants are personal");
        let unspaced = Grants::new(vec![grant(100, 200, "menu.pdf", None)]);
        assert_eq!(
            unspaced.cover("u1", "f1", None, Some("space_hr"), 150),
            Coverage::Mismatch,
            "a space the grant never saw"
        );
    }
}
