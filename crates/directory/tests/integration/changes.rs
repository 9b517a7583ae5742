use dingguard_directory::{DEMO_YAML, DepartmentDiff, DeptId, Directory, DirectoryChange, Role, UserDiff, UserId};

fn demo() -> Directory {
    Directory::from_yaml(DEMO_YAML).unwrap()
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn dept(id: &str) -> DeptId {
    DeptId::parse(id).unwrap()
}

#[test]
fn a_joiner_becomes_a_member() {
    let mut dir = demo();
    dir.apply(DirectoryChange::UserJoined { id: user("user_new"), name: Some("Chan Tai Man".into()) });
    assert!(dir.is_member("user_new"));
    assert_eq!(dir.user("user_new").unwrap().name, "Chan Tai Man");
    // A joiner with no name yet is known by id.
    dir.apply(DirectoryChange::UserJoined { id: user("user_anon"), name: None });
    assert_eq!(dir.user("user_anon").unwrap().name, "user_anon");
}

#[test]
fn a_leaver_is_kept_but_inactive() {
    let mut dir = demo();
    dir.apply(DirectoryChange::UserLeft { id: user("user_hr_clerk"), at_ms: 1_760_000_000_000 });
    let clerk = dir.user("user_hr_clerk").unwrap();
    assert!(!clerk.active);
    assert_eq!(clerk.left_at_ms, Some(1_760_000_000_000));
    assert!(!dir.is_member("user_hr_clerk"));
    // Rejoining restores membership and clears the leaving date.
    dir.apply(DirectoryChange::UserJoined { id: user("user_hr_clerk"), name: None });
    assert!(dir.is_member("user_hr_clerk"));
    assert_eq!(dir.user("user_hr_clerk").unwrap().left_at_ms, None);
}

#[test]
fn a_departed_dpo_no_longer_approves() {
    let mut dir = demo();
    dir.apply(DirectoryChange::UserLeft { id: user("user_dpo"), at_ms: 5 });
    assert!(dir.dpos().is_empty());
    assert!(!dir.has_role("user_dpo", Role::Dpo));
}

#[test]
fn a_leaver_unknown_to_the_file_is_recorded() {
    let mut dir = demo();
    dir.apply(DirectoryChange::UserLeft { id: user("user_x"), at_ms: 9 });
    assert_eq!(dir.user("user_x").unwrap().left_at_ms, Some(9));
}

#[test]
fn modifications_apply_name_department_and_manager() {
    let mut dir = demo();
    let diff = UserDiff {
        name: Some("陳大文".into()),
        departments: Some(vec![dept("dept_finance")]),
        manager: Some(user("user_fin_manager")),
        clear_manager: false,
    };
    dir.apply(DirectoryChange::UserModified { id: user("user_hr_clerk"), diff });
    let clerk = dir.user("user_hr_clerk").unwrap();
    assert_eq!(clerk.name, "陳大文");
    assert_eq!(clerk.departments, [dept("dept_finance")]);
    assert_eq!(clerk.manager, Some(user("user_fin_manager")));
    assert_eq!(dir.department_heads_of("user_hr_clerk"), [user("user_fin_manager")]);
}

#[test]
fn a_move_into_an_unknown_department_creates_it() {
    let mut dir = demo();
    let diff = UserDiff { departments: Some(vec![dept("987654")]), ..UserDiff::default() };
    dir.apply(DirectoryChange::UserModified { id: user("user_ops"), diff });
    assert!(dir.department("987654").is_some());
}

#[test]
fn departments_are_created_modified_and_removed() {
    let mut dir = demo();
    let diff =
        DepartmentDiff { name: Some("Data Office".into()), parent: Some(dept("dept_legal")), ..Default::default() };
    dir.apply(DirectoryChange::DepartmentCreated { id: dept("dept_data"), diff });
    assert_eq!(dir.department("dept_data").unwrap().name, "Data Office");

    let diff = DepartmentDiff { head: Some(user("user_dpo")), ..Default::default() };
    dir.apply(DirectoryChange::DepartmentModified { id: dept("dept_data"), diff });
    assert_eq!(dir.department("dept_data").unwrap().head, Some(user("user_dpo")));
    assert_eq!(dir.department("dept_data").unwrap().name, "Data Office", "unchanged fields stay");

    let diff = UserDiff { departments: Some(vec![dept("dept_data")]), ..Default::default() };
    dir.apply(DirectoryChange::UserModified { id: user("user_dpo_deputy"), diff });
    dir.apply(DirectoryChange::DepartmentRemoved { id: dept("dept_legal") });
    assert!(dir.department("dept_legal").is_none());
    assert!(dir.user("user_legal_counsel").unwrap().departments.is_empty());
    // The child moved up to the removed department's parent.
    assert_eq!(dir.department("dept_data").unwrap().parent, Some(dept("dept_mgmt")));
}

#[test]
fn a_parent_change_that_makes_a_cycle_is_ignored() {
    let mut dir = demo();
    let diff = DepartmentDiff { parent: Some(dept("dept_hr")), name: Some("Board".into()), ..Default::default() };
    dir.apply(DirectoryChange::DepartmentModified { id: dept("dept_mgmt"), diff });
    let mgmt = dir.department("dept_mgmt").unwrap();
    assert_eq!(mgmt.parent, None);
    assert_eq!(mgmt.name, "Board");
}
