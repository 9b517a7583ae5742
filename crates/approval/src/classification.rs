//! Which files are sensitive (they need dual approval) and which groups hold personal data, from configuration.

use serde::Deserialize;

/// A term in lower case; configured terms usually are already, and then nothing is allocated.
fn folded(term: &str) -> std::borrow::Cow<'_, str> {
    if term.chars().any(char::is_uppercase) { term.to_lowercase().into() } else { term.into() }
}

/// What is known of a file when its sensitivity is judged.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileFacts<'a> {
    pub name: Option<&'a str>,
    pub space: Option<&'a str>,
    pub folder: Option<&'a str>,
    pub labels: &'a [String],
}

/// Sensitivity and personal-data tagging, from configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    /// A file is sensitive when its name or space contains one of these (case-insensitive).
    #[serde(default)]
    pub sensitive_terms: Vec<String>,
    /// DingDrive spaces whose every file is sensitive, by id.
    #[serde(default)]
    pub sensitive_spaces: Vec<String>,
    /// Folder paths (`/HR/Contracts`) whose files, at any depth, are sensitive.
    #[serde(default)]
    pub sensitive_folders: Vec<String>,
    /// File name patterns (`*` and `?`, case-insensitive), e.g. `*.pst` or `payroll-*`.
    #[serde(default)]
    pub sensitive_name_patterns: Vec<String>,
    /// Labels (DingDrive tags, DLP classifications) that make a file sensitive.
    #[serde(default)]
    pub sensitive_labels: Vec<String>,
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
            sensitive_folders: Vec::new(),
            sensitive_name_patterns: Vec::new(),
            sensitive_labels: Vec::new(),
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
        self.is_sensitive(&FileFacts { name, space, ..FileFacts::default() })
    }

    /// Whether a file needs dual approval: by the terms in its name or space, its space, its folder, a name
    /// pattern, or one of its labels.
    pub fn is_sensitive(&self, file: &FileFacts<'_>) -> bool {
        let lower = |t: &str| t.to_lowercase();
        let has_term = |text: Option<&str>| {
            text.map(lower).is_some_and(|t| self.sensitive_terms.iter().any(|term| t.contains(&*folded(term))))
        };
        // The folder itself or anything below it: `/HR/Contracts` covers `/HR/Contracts/2026`, not `/HR/ContractsOld`.
        let in_folder = file.folder.is_some_and(|folder| {
            let folder = lower(folder.trim_end_matches('/'));
            self.sensitive_folders.iter().any(|f| {
                let rest = folder.strip_prefix(&*folded(f.trim_end_matches('/')));
                rest.is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
        });
        let by_pattern = file.name.map(lower).is_some_and(|name| {
            self.sensitive_name_patterns.iter().any(|p| dingguard_model::glob_match(&folded(p), &name))
        });
        let labelled = file.labels.iter().any(|l| self.sensitive_labels.iter().any(|s| s.eq_ignore_ascii_case(l)));
        has_term(file.name)
            || has_term(file.space)
            || file.space.is_some_and(|s| self.sensitive_spaces.iter().any(|x| x == s))
            || in_folder
            || by_pattern
            || labelled
    }

    /// Whether a group with this title holds personal data.
    pub fn title_is_personal(&self, title: &str) -> bool {
        let t = title.to_lowercase();
        self.personal_data_title_terms.iter().any(|term| t.contains(&*folded(term)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_patterns_labels_and_spaces_each_make_a_file_sensitive() {
        let c = Classification {
            sensitive_folders: vec!["/HR/Contracts".into()],
            sensitive_name_patterns: vec!["*.pst".into(), "payroll-*".into()],
            sensitive_labels: vec!["Personal-Data".into()],
            sensitive_spaces: vec!["space_legal".into()],
            ..Classification::default()
        };
        let file = |name: &'static str| FileFacts { name: Some(name), ..FileFacts::default() };
        assert!(c.is_sensitive(&FileFacts { folder: Some("/hr/contracts/2026/"), ..file("a.pdf") }));
        assert!(!c.is_sensitive(&FileFacts { folder: Some("/HR/ContractsOld"), ..file("a.pdf") }));
        assert!(c.is_sensitive(&file("Mailbox.PST")));
        assert!(c.is_sensitive(&file("payroll-2026-01.xlsx")));
        assert!(!c.is_sensitive(&file("my-payroll.xlsx")));
        let labels = vec!["personal-data".to_owned()];
        assert!(c.is_sensitive(&FileFacts { labels: &labels, ..file("x.docx") }));
        assert!(c.is_sensitive(&FileFacts { space: Some("space_legal"), ..file("x.docx") }));
        assert!(!c.is_sensitive(&file("menu.pdf")));
        assert!(Classification::demo().is_sensitive(&file("身份證.zip")));
    }
}
