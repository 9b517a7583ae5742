//! Which files are sensitive (they need dual approval) and which groups hold personal data, from configuration.

use serde::Deserialize;

/// Sensitivity and personal-data tagging, from configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    /// A file is sensitive when its name or space contains one of these (case-insensitive).
    #[serde(default)]
    pub sensitive_terms: Vec<String>,
    #[serde(default)]
    pub sensitive_spaces: Vec<String>,
    /// Groups known to hold personal data, by id.
    #[serde(default)]
    pub personal_data_groups: Vec<String>,
    /// Groups whose title contains one of these (case-insensitive) hold personal data.
    #[serde(default)]
    pub personal_data_title_terms: Vec<String>,
}

impl Classification {
    /// The demo's tagging: what `make run` ships.
    pub fn demo() -> Self {
        Self {
            sensitive_terms: vec!["confidential".into(), "hr".into(), "身份證".into()],
            sensitive_spaces: Vec::new(),
            personal_data_groups: Vec::new(),
            personal_data_title_terms: vec![
                "hr".into(),
                "customer".into(),
                "客戶".into(),
                "payroll".into(),
                "身份證".into(),
            ],
        }
    }

    pub fn file_is_sensitive(&self, name: Option<&str>, space: Option<&str>) -> bool {
        let hit = |text: Option<&str>| {
            text.map(str::to_lowercase)
                .is_some_and(|t| self.sensitive_terms.iter().any(|term| t.contains(&term.to_lowercase())))
        };
        hit(name) || hit(space) || space.is_some_and(|s| self.sensitive_spaces.iter().any(|x| x == s))
    }

    /// Whether a group with this title holds personal data.
    pub fn title_is_personal(&self, title: &str) -> bool {
        let t = title.to_lowercase();
        self.personal_data_title_terms.iter().any(|term| t.contains(&term.to_lowercase()))
    }
}
