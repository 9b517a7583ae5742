use dingguard_directory::{Affiliation, DEMO_YAML, Directory, Role, UserId};

fn demo() -> Directory {
    Directory::from_yaml(DEMO_YAML).unwrap()
}

fn ids(list: &[UserId]) -> Vec<&str> {
    list.iter().map(UserId::as_str).collect()
}

#[test]
fn classification() {
    let dir = demo();
    assert_eq!(dir.classify("user_hr_clerk", None), Affiliation::Internal);
    assert_eq!(dir.classify("ext_partner_wong", None), Affiliation::External);
    assert_eq!(dir.classify("never_heard_of", Some("dingsomeone")), Affiliation::External);
    assert_eq!(dir.classify("ext_audit_cheong", None), Affiliation::TrustedExternal);
    assert_eq!(dir.classify("anyone", Some("dingpraudit7f3a01")), Affiliation::TrustedExternal);
    // Someone who has left is no longer vouched for.
    assert_eq!(dir.classify("user_sales_former", None), Affiliation::External);
}

#[test]
fn heads_of_a_member_are_their_department_heads() {
    let dir = demo();
    assert_eq!(ids(&dir.department_heads_of("user_hr_clerk")), ["user_hr_manager"]);
    assert_eq!(ids(&dir.department_heads_of("user_dpo")), ["user_legal_counsel"]);
    assert!(dir.department_heads_of("ext_partner_wong").is_empty());
}

#[test]
fn a_head_is_never_their_own_head() {
    let dir = demo();
    assert_eq!(ids(&dir.department_heads_of("user_hr_manager")), ["user_gm"]);
    // The top of the tree has nobody above it.
    assert!(dir.department_heads_of("user_gm").is_empty());
}

#[test]
fn a_departed_head_falls_to_the_deputy_head() {
    let mut dir = demo();
    dir.apply(dingguard_directory::DirectoryChange::UserLeft {
        id: UserId::parse("user_hr_manager").unwrap(),
        at_ms: 1,
    });
    assert_eq!(ids(&dir.department_heads_of("user_hr_clerk")), ["user_hr_officer"]);
    // Without a deputy head the parent department's head steps in.
    dir.apply(dingguard_directory::DirectoryChange::UserLeft {
        id: UserId::parse("user_hr_officer").unwrap(),
        at_ms: 2,
    });
    assert_eq!(ids(&dir.department_heads_of("user_hr_clerk")), ["user_gm"]);
}

#[test]
fn deputies() {
    let dir = demo();
    assert_eq!(dir.deputy_of("user_dpo").unwrap().as_str(), "user_dpo_deputy");
    assert_eq!(dir.deputy_of("user_hr_manager").unwrap().as_str(), "user_hr_officer");
    // No personal deputy, but heads a department that has a deputy head.
    let dir2 = Directory::from_yaml(
        "departments: [{id: d, name: D, head: boss, deputy_head: second}]\n\
         users: [{id: boss, name: B, departments: [d]}, {id: second, name: S, departments: [d]}]",
    )
    .unwrap();
    assert_eq!(dir2.deputy_of("boss").unwrap().as_str(), "second");
    assert_eq!(dir.deputy_of("user_hr_clerk"), None);
    assert_eq!(dir.deputy_of("nobody"), None);
}

#[test]
fn roles() {
    let dir = demo();
    assert!(dir.has_role("user_it_admin", Role::Admin));
    assert!(dir.has_role("user_ops", Role::Security));
    assert!(!dir.has_role("user_hr_clerk", Role::Dpo));
    assert!(!dir.has_role("ext_partner_wong", Role::Security));
}

#[test]
fn ancestors_walk_up() {
    let dir = demo();
    let up: Vec<_> = dir.ancestors("dept_hr").map(|d| d.as_str()).collect();
    assert_eq!(up, ["dept_mgmt"]);
}
