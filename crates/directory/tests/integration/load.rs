use dingguard_directory::{DEMO_YAML, Directory, DirectoryError, Role};

fn refused(yaml: &str) -> DirectoryError {
    Directory::from_yaml(yaml).expect_err("the file should be refused")
}

#[test]
fn demo_directory_loads() {
    let dir = Directory::from_yaml(DEMO_YAML).unwrap();
    assert!(dir.users().count() >= 12);
    for id in ["user_sales_lead", "user_hr_manager", "user_hr_clerk", "user_ops", "user_it_admin", "user_dpo"] {
        assert!(dir.is_member(id), "{id}");
    }
    for outsider in ["ext_partner_wong", "ext_recruiter_lam"] {
        assert!(dir.user(outsider).is_none(), "{outsider} must not be in the directory");
    }
    assert_eq!(dir.dpos(), vec![dingguard_directory::UserId::parse("user_dpo").unwrap()]);
    assert!(dir.has_role("user_dpo", Role::Dpo));
    assert_eq!(dir.trusted_partners().len(), 1);
}

#[test]
fn numeric_department_ids_are_accepted() {
    let dir = Directory::from_yaml(
        "departments: [{id: 1, name: Root}, {id: 42, name: HR, parent: 1, head: u1}]\n\
         users: [{id: u1, name: One, departments: [42]}]",
    )
    .unwrap();
    assert_eq!(dir.department("42").unwrap().parent.as_ref().unwrap().as_str(), "1");
}

#[test]
fn each_error_names_the_offending_id() {
    let cases = [
        ("users: [{id: u1, name: A, departments: [dept_x]}]", "dept_x"),
        ("departments: [{id: d1, name: D, head: ghost}]", "ghost"),
        ("departments: [{id: d1, name: D, deputy_head: ghost2}]", "ghost2"),
        ("departments: [{id: d1, name: D, parent: nowhere}]", "nowhere"),
        ("users: [{id: twin, name: A}, {id: twin, name: B}]", "twin"),
        ("departments: [{id: same, name: A}, {id: same, name: B}]", "same"),
        ("users: [{id: u1, name: A, deputy: nobody}]", "nobody"),
        ("users: [{id: u1, name: A, manager: boss}]", "boss"),
        ("users: [{id: u1, name: A, deputy: u1}]", "u1"),
        ("users: [{id: u1, name: A, roles: [king]}]", "king"),
        ("dpos: [phantom]", "phantom"),
        ("departments: [{id: a, name: A, parent: b}, {id: b, name: B, parent: a}]", "`a`"),
        ("trusted_partners: [{name: Everyone, user_id_prefixes: ['']}]", "Everyone"),
    ];
    for (yaml, id) in cases {
        let message = refused(yaml).to_string();
        assert!(message.contains(id), "{yaml} -> {message}");
    }
}

#[test]
fn error_variants_are_specific() {
    assert_eq!(
        refused("users: [{id: u1, name: A, departments: [d9]}]"),
        DirectoryError::UnknownDepartment { user: "u1".into(), department: "d9".into() }
    );
    assert_eq!(refused("users: [{id: x, name: A}, {id: x, name: B}]"), DirectoryError::DuplicateUser("x".into()));
    assert_eq!(
        refused("users: [{id: a, name: A, union_id: u1}, {id: b, name: B, union_id: u1}]"),
        DirectoryError::DuplicateUnionId { union_id: "u1".into(), users: ["a".into(), "b".into()] }
    );
    assert!(matches!(refused("users: [{id: u1, name: A, colour: red}]"), DirectoryError::Yaml(_)));
    assert!(matches!(refused("users: [{id: '', name: A}]"), DirectoryError::InvalidId { what: "user", .. }));
}

#[test]
fn a_union_id_names_its_person_and_nobody_else() {
    let dir = Directory::from_yaml("users: [{id: a, name: A, union_id: uA}, {id: b, name: B}]").unwrap();
    assert_eq!(dir.resolve_id("uA").map(ToString::to_string).as_deref(), Some("a"));
    assert_eq!(dir.resolve_id("a").map(ToString::to_string).as_deref(), Some("a"));
    assert_eq!(dir.resolve_id("b").map(ToString::to_string).as_deref(), Some("b"));
    assert!(dir.resolve_id("uB").is_none(), "an id the directory cannot vouch for");
}

#[test]
fn dpo_role_and_list_agree() {
    let dir = Directory::from_yaml("users: [{id: a, name: A, roles: [dpo]}, {id: b, name: B}]\ndpos: [b]").unwrap();
    let dpos: Vec<_> = dir.dpos().iter().map(ToString::to_string).collect();
    assert_eq!(dpos, ["b", "a"]);
    assert!(dir.has_role("b", Role::Dpo));
}

#[test]
fn departed_users_default_to_inactive() {
    let dir = Directory::from_yaml("users: [{id: gone, name: G, left_at_ms: 1700000000000}]").unwrap();
    let user = dir.user("gone").unwrap();
    assert!(!user.active);
    assert!(!dir.is_member("gone"));
}
