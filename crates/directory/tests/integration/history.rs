//! The directory as it stood at a moment: leavers, moves and joiners judged by when they happened, late changes
//! put in their place, old changes folded, and a person's history saved and restored.

use dingguard_directory::{
    DEMO_YAML, DepartmentState, DeptId, Directory, DirectoryChange, HISTORY_MAX_CHANGES, HISTORY_RETENTION_MS,
    UserDiff, UserId,
};

fn demo() -> Directory {
    Directory::from_yaml(DEMO_YAML).unwrap()
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

const WED: i64 = 1_772_582_400_000;
const FRI: i64 = WED + 2 * 86_400_000;

#[test]
fn a_leaver_was_a_member_until_they_left() {
    let mut dir = demo();
    dir.apply_at(DirectoryChange::UserLeft { id: user("user_hr_clerk"), at_ms: FRI }, FRI);
    assert!(!dir.is_member("user_hr_clerk"), "now they have left");
    assert!(dir.is_member_at("user_hr_clerk", WED), "on Wednesday they had not");
    assert!(!dir.is_member_at("user_hr_clerk", FRI));
    let wednesday = dir.user_at("user_hr_clerk", WED).unwrap();
    assert!(wednesday.active && wednesday.left_at_ms.is_none(), "{wednesday:?}");
    assert_eq!(dir.classify_at("user_hr_clerk", None, WED).as_str(), "internal");
    assert_eq!(dir.classify_at("user_hr_clerk", None, FRI).as_str(), "external");
}

#[test]
fn the_files_own_leave_date_counts_too() {
    let dir = demo();
    // user_sales_former left at 2026-01-31 00:00 Macau time.
    assert!(dir.is_member_at("user_sales_former", 1_769_788_800_000 - 1));
    assert!(!dir.is_member_at("user_sales_former", 1_769_788_800_000));
    assert!(!dir.is_member("user_sales_former"));
}

#[test]
fn a_change_that_arrives_late_is_put_in_its_place() {
    let mut dir = demo();
    let moved = UserDiff { departments: Some(vec![DeptId::parse("dept_finance").unwrap()]), ..UserDiff::default() };
    let renamed = UserDiff { name: Some("Lam W. I.".into()), ..UserDiff::default() };
    dir.apply_at(DirectoryChange::UserModified { id: user("user_hr_clerk"), diff: renamed }, FRI);
    // The move happened on Wednesday but is read after Friday's rename.
    dir.apply_at(DirectoryChange::UserModified { id: user("user_hr_clerk"), diff: moved }, WED);
    let now = dir.user("user_hr_clerk").unwrap();
    assert_eq!((now.name.as_str(), now.departments[0].as_str()), ("Lam W. I.", "dept_finance"), "both apply now");
    let thursday = dir.user_at("user_hr_clerk", WED + 86_400_000).unwrap();
    assert_eq!((thursday.name.as_str(), thursday.departments[0].as_str()), ("Lam Weng Ian (林詠欣)", "dept_finance"));
    let tuesday = dir.user_at("user_hr_clerk", WED - 1).unwrap();
    assert_eq!(tuesday.departments[0].as_str(), "dept_hr");
}

#[test]
fn someone_who_joined_later_was_not_a_member_before() {
    let mut dir = demo();
    dir.apply_at(DirectoryChange::UserJoined { id: user("user_new"), name: Some("New".into()) }, FRI);
    assert!(dir.is_member("user_new"));
    assert!(!dir.is_member_at("user_new", WED), "before joining they were nobody we vouch for");
}

#[test]
fn old_changes_fold_into_the_state_they_left_and_histories_stay_bounded() {
    let mut dir = demo();
    for i in 0..(HISTORY_MAX_CHANGES as i64 * 3) {
        let diff = UserDiff { name: Some(format!("name {i}")), ..UserDiff::default() };
        dir.apply_at(DirectoryChange::UserModified { id: user("user_ops"), diff }, WED + i);
    }
    let history = dir.user_history("user_ops").unwrap();
    assert_eq!(history.changes.len(), HISTORY_MAX_CHANGES);
    assert_eq!(dir.user("user_ops").unwrap().name, format!("name {}", HISTORY_MAX_CHANGES * 3 - 1));
    let later = WED + HISTORY_RETENTION_MS + 10_000;
    dir.apply_at(DirectoryChange::UserLeft { id: user("user_ops"), at_ms: later }, later);
    assert_eq!(dir.user_history("user_ops").unwrap().changes.len(), 1, "changes past the retention are folded");
    assert!(!dir.is_member("user_ops"));
    assert!(dir.is_member_at("user_ops", later - 1), "the folded state still answers for before");
}

#[test]
fn a_saved_history_restores_the_same_person_and_changes_are_reported_once() {
    let mut dir = demo();
    dir.apply_at(DirectoryChange::UserLeft { id: user("user_hr_clerk"), at_ms: FRI }, FRI);
    dir.apply_at(DirectoryChange::DepartmentRemoved { id: DeptId::parse("dept_legal").unwrap() }, FRI);
    let (users, depts) = dir.take_changed();
    assert_eq!(users, vec![user("user_hr_clerk")]);
    assert_eq!(depts.iter().map(DeptId::as_str).collect::<Vec<_>>(), ["dept_legal"]);
    assert_eq!(dir.take_changed(), (vec![], vec![]), "reported once");

    let saved = serde_json::to_string(dir.user_history("user_hr_clerk").unwrap()).unwrap();
    let gone = serde_json::to_string(&dir.department_state("dept_legal")).unwrap();
    let mut restored = demo();
    restored.restore_user(user("user_hr_clerk"), serde_json::from_str(&saved).unwrap());
    restored.restore_department(DeptId::parse("dept_legal").unwrap(), serde_json::from_str(&gone).unwrap());
    assert_eq!(restored.user("user_hr_clerk"), dir.user("user_hr_clerk"));
    assert!(restored.is_member_at("user_hr_clerk", WED) && !restored.is_member("user_hr_clerk"));
    assert!(restored.department("dept_legal").is_none());
    assert_eq!(dir.department_state("dept_hr"), DepartmentState::Present(dir.department("dept_hr").unwrap().clone()));
}
