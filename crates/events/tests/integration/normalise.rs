use crate::common::{RECEIVED_MS, directory, events, one};
use dingguard_events::{Affiliation, DeptChange, EventKind, Member, NormaliseError, normalise};

fn member(id: &str, affiliation: Affiliation) -> Member {
    Member { id: id.to_owned(), affiliation }
}

#[test]
fn legacy_pascal_case_members_added() {
    let event = one("chat_add_member_legacy");
    assert_eq!(event.corp_id.as_deref(), Some("dinge8a56572f80bxxxx"));
    assert_eq!(event.occurred_at_ms, 1_608_027_106_990);
    let EventKind::MembersAdded { chat_id, operator, members, .. } = event.kind else { panic!("{event:?}") };
    assert_eq!(chat_id, "chat676e50a07xxxx");
    assert_eq!(operator.as_deref(), Some("10203029011219896"));
    // user456 is unknown to the directory, so they are an outsider.
    assert_eq!(members, [member("user456", Affiliation::External)]);
}

#[test]
fn current_lower_camel_members_added() {
    let event = one("chat_add_member");
    assert_eq!(event.id, "ce-chat_add_member");
    assert_eq!(event.occurred_at_ms, 1_663_143_335_567, "EventTime is preferred, as the receiver does");
    let EventKind::MembersAdded { chat_id, members, .. } = event.kind else { panic!() };
    assert_eq!(chat_id, "chat28367b03e4b4ca4b5074e1dbfb5d6088");
    assert_eq!(members.len(), 1);
}

#[test]
fn both_spellings_at_once_prefer_the_current_one() {
    let event = one("chat_add_member_both_spellings");
    assert_eq!(event.occurred_at_ms, 1_772_420_400_000, "string timeStamp");
    let actor = event.actor.as_ref().unwrap();
    assert_eq!((actor.id.as_str(), actor.affiliation), ("user_hr_manager", Affiliation::Internal));
    let EventKind::MembersAdded { chat_id, members, .. } = event.kind else { panic!() };
    assert_eq!(chat_id, "chat_hr_onboarding");
    assert_eq!(
        members,
        [
            member("user_hr_clerk", Affiliation::Internal),
            member("ext_recruiter_lam", Affiliation::External),
            member("ext_audit_cheong", Affiliation::TrustedExternal),
        ],
        "deduplicated, in order"
    );
}

#[test]
fn group_events() {
    assert!(matches!(one("chat_remove_member").kind, EventKind::MembersRemoved { ref members, .. }
        if members[0].affiliation == Affiliation::External));
    let quit = one("chat_quit");
    assert_eq!(quit.kind, EventKind::MemberQuit { chat_id: "chat_sales_q2".into(), user: "user_sales_rep".into() });
    assert_eq!(quit.actor.unwrap().id, "user_sales_rep");
    assert!(matches!(one("chat_disband").kind, EventKind::GroupDisbanded { ref operator, .. }
        if operator.as_deref() == Some("user_sales_lead")));
    // chat_update_owner carries only the openConversationId.
    assert_eq!(
        one("chat_update_owner").kind,
        EventKind::GroupOwnerChanged { chat_id: "cidSalesQ2".into(), new_owner: "user_sales_rep".into() }
    );
    assert!(
        matches!(one("chat_update_title").kind, EventKind::GroupRenamed { ref title, .. } if title == "客戶資料 2026")
    );
}

#[test]
fn our_chat_create() {
    let event = one("chat_create");
    let EventKind::GroupCreated { chat_id, title, owner, members, inferred, .. } = event.kind else { panic!() };
    assert_eq!(chat_id, "chat_hr_onboarding");
    assert_eq!(title.as_deref(), Some("HR onboarding files"));
    assert_eq!(owner.as_deref(), Some("user_hr_manager"));
    assert!(!inferred);
    assert_eq!(members[2], member("ext_recruiter_lam", Affiliation::External));
}

#[test]
fn external_contact() {
    let event = one("contact_add_org");
    assert_eq!(event.actor.as_ref().unwrap().id, "user_sales_lead");
    assert_eq!(
        event.kind,
        EventKind::ExternalContactAdded {
            contact_id: "ext_partner_wong".into(),
            name: Some("Wong Ka Lok".into()),
            company: Some("Wong & Partners Logistics".into()),
            follower: Some("user_sales_lead".into()),
        }
    );
}

#[test]
fn address_book_batches_split_per_user() {
    let joined = events("user_add_org");
    assert_eq!(joined.len(), 2);
    assert_eq!(joined[0].id, "ce-user_add_org:user_new_a");
    assert_eq!(joined[1].kind, EventKind::UserJoined { user: "user_new_b".into() });
    assert_eq!(joined[1].occurred_at_ms, 1_772_420_400_000);

    let legacy = one("user_add_org_legacy");
    assert_eq!(legacy.id, "ce-user_add_org_legacy", "a batch of one keeps the ce_id");
    assert_eq!(legacy.occurred_at_ms, 1_608_027_106_990);

    let left = one("user_leave_org");
    assert_eq!(left.kind, EventKind::UserLeft { user: "user_hr_clerk".into() });
    assert_eq!(left.actor.unwrap().active, Some(true), "judged as the directory stood before the event");

    assert_eq!(one("org_admin_add").kind, EventKind::AdminRoleGranted { user: "user_ops".into() });
}

#[test]
fn user_modification_keeps_the_diff() {
    let event = one("user_modify_org");
    let EventKind::UserChanged { user, diff } = event.kind else { panic!() };
    assert_eq!(user, "user_hr_clerk");
    assert_eq!(diff["curr"]["name"], "林詠欣");
}

#[test]
fn departments_carry_numeric_ids_as_text() {
    assert_eq!(
        one("org_dept_create").kind,
        EventKind::DepartmentChanged { change: DeptChange::Created, dept_ids: vec!["561032088".into()] }
    );
}

#[test]
fn files() {
    let sent = one("org_file_send_check");
    assert_eq!(sent.actor.as_ref().unwrap().id, "user_sales_rep", "one sender is the actor");
    let EventKind::FileSent { records } = sent.kind else { panic!() };
    assert_eq!(records[1].file_name.as_deref(), Some("客戶名單.csv"));
    assert_eq!(records[0].request_id.as_deref(), Some("dlpId123"));
    assert_eq!(records[0].conversation.as_deref(), Some("cidSalesQ2"));

    let EventKind::FileDownloaded { user, file_id, action_code, source, .. } = one("file_download").kind else {
        panic!()
    };
    assert_eq!((user.as_str(), file_id.as_str(), action_code), ("user_hr_clerk", "file_7781", Some(2)));
    assert_eq!(source.as_deref(), Some("fileAuditLogs"));

    let EventKind::DownloadRequested { request_id, reason, .. } = one("file_download_request").kind else { panic!() };
    assert_eq!(request_id, "req_5521");
    assert_eq!(reason.as_deref(), Some("annual audit of staff records"));
}

#[test]
fn approvals() {
    let instance = one("bpms_instance_change");
    assert_eq!(instance.actor.as_ref().unwrap().id, "user_hr_clerk");
    assert!(matches!(instance.kind, EventKind::ApprovalInstanceChanged { ref result, ref change_type, .. }
        if result.as_deref() == Some("agree") && change_type.as_deref() == Some("finish")));
    let task = one("bpms_task_change");
    let EventKind::ApprovalTaskChanged { task_id, approver, remark, .. } = task.kind else { panic!() };
    assert_eq!(task_id.as_deref(), Some("811165"));
    assert_eq!(approver.as_deref(), Some("08058646137"));
    assert_eq!(remark.as_deref(), Some("同意"));
}

#[test]
fn unknown_types_are_other_never_errors() {
    assert_eq!(one("storage_dentry_create").kind, EventKind::Other { event_type: "storage_dentry_create".into() });
    assert_eq!(one("check_url").kind, EventKind::Other { event_type: "check_url".into() });
    let event = normalise("brand_new_type", "x", b"{}", &directory(), RECEIVED_MS).unwrap();
    assert_eq!(event[0].occurred_at_ms, RECEIVED_MS, "no time in the payload falls back to reception");
    assert!(event[0].time_from_receipt);
    let zero =
        normalise("x", "x", br#"{"EventTime":0,"timeStamp":"1772420400000"}"#, &directory(), RECEIVED_MS).unwrap();
    assert_eq!(zero[0].occurred_at_ms, 1_772_420_400_000, "a zero EventTime is not a time");
    assert!(!zero[0].time_from_receipt);
}

#[test]
fn times_in_seconds_or_implausible_are_read_as_the_receiver_reads_them() {
    let at = |body: &str| {
        let event = normalise("file_download", "x", body.as_bytes(), &directory(), RECEIVED_MS);
        let event = event.map(|mut e| e.remove(0)).map_err(|e| e.to_string());
        event.map(|e| (e.occurred_at_ms, e.time_from_receipt))
    };
    let body = |time: &str| format!(r#"{{"EventTime":{time},"userId":"u1","fileId":"f1"}}"#);
    assert_eq!(at(&body("1772420400")), Ok((1_772_420_400_000, false)), "ten digits are seconds");
    assert_eq!(at(&body("\"1772420400\"")), Ok((1_772_420_400_000, false)), "quoted seconds too");
    for implausible in ["-380000000000000", "5", "9223372036854775807", "1.5", "\"2026\"", "946684799999"] {
        assert_eq!(at(&body(implausible)), Ok((RECEIVED_MS, true)), "{implausible}");
    }
    assert_eq!(at(&body(&(RECEIVED_MS + 2 * 86_400_000).to_string())), Ok((RECEIVED_MS, true)), "two days ahead");
}

#[test]
fn stream_data_string_is_read() {
    let body = br#"{"data":"{\"chatId\":\"chat_s\",\"operator\":\"user_ops\",\"userId\":[\"ext_x\"]}"}"#;
    let event = normalise("chat_add_member", "s", body, &directory(), RECEIVED_MS).unwrap().remove(0);
    assert!(matches!(event.kind, EventKind::MembersAdded { ref chat_id, .. } if chat_id == "chat_s"));
}

#[test]
fn errors() {
    let dir = directory();
    for bad in [&b"[1,2]"[..], b"\"text\"", b"not json", b""] {
        let err = normalise("chat_add_member", "x", bad, &dir, 0).unwrap_err();
        assert!(matches!(err, NormaliseError::NotJsonObject { .. }), "{err}");
    }
    // Unknown types still need an object: the normaliser never guesses at a broken payload.
    assert!(normalise("whatever", "x", b"42", &dir, 0).is_err());
    let err = normalise("chat_add_member", "x", br#"{"userId":["a"]}"#, &dir, 0).unwrap_err();
    assert_eq!(err, NormaliseError::MissingField { event_type: "chat_add_member".into(), field: "chatId" });
    let err = normalise("file_download", "x", br#"{"userId":"u","fileId":""}"#, &dir, 0).unwrap_err();
    assert!(err.to_string().contains("fileId"), "{err}");
}

fn normalise_json(event: serde_json::Value) -> Result<Vec<dingguard_events::CanonicalEvent>, NormaliseError> {
    let event_type = event["EventType"].as_str().unwrap().to_owned();
    normalise(&event_type, "ce-union", &serde_json::to_vec(&event).unwrap(), &directory(), RECEIVED_MS)
}

#[test]
fn people_named_only_by_union_id_are_resolved_or_counted_as_outsiders() {
    // DingTalk's documented chat_add_member carries unionId beside userId; an outsider may come with a unionId only.
    let events = normalise_json(serde_json::json!({"EventType": "chat_add_member", "timeStamp": 1_772_420_400_000_i64,
        "chatId": "chat_u", "operatorUnionId": "iiUnionSalesLead3x",
        "unionId": ["iiUnionHrClerk8Qf", "3rBUxxxQiEiE", "iiUnionHrClerk8Qf"]}))
    .expect("a unionId-only event is read, not refused");
    let event = &events[0];
    assert_eq!(
        event.actor.as_ref().map(|a| (a.id.as_str(), a.affiliation)),
        Some(("user_sales_lead", Affiliation::Internal))
    );
    let EventKind::MembersAdded { members, .. } = &event.kind else { panic!("{event:?}") };
    assert_eq!(
        members,
        &[member("user_hr_clerk", Affiliation::Internal), member("3rBUxxxQiEiE", Affiliation::External)],
        "a known unionId is its person; an unknown one is an outsider; repeats count once"
    );
}

#[test]
fn union_ids_sent_in_step_with_user_ids_add_nobody_and_extra_ones_add_their_people() {
    let events = normalise_json(serde_json::json!({"EventType": "chat_add_member", "timeStamp": 1_772_420_400_000_i64,
        "chatId": "chat_u", "operator": "user_sales_lead", "userId": ["user_hr_clerk"],
        "unionId": ["iiUnionHrClerk8Qf", "iiUnknownGuest"]}))
    .unwrap();
    let EventKind::MembersAdded { members, .. } = &events[0].kind else { panic!() };
    assert_eq!(
        members,
        &[member("user_hr_clerk", Affiliation::Internal), member("iiUnknownGuest", Affiliation::External)]
    );
}

#[test]
fn a_download_named_by_union_id_is_the_persons() {
    let events = normalise_json(serde_json::json!({"EventType": "file_download", "EventTime": 1_772_420_400_000_i64,
        "unionId": "iiUnionHrClerk8Qf", "fileId": "f1", "fileName": "payroll.xlsx"}))
    .unwrap();
    assert_eq!(events[0].actor.as_ref().map(|a| a.id.as_str()), Some("user_hr_clerk"));
    assert!(matches!(&events[0].kind, EventKind::FileDownloaded { user, .. } if user == "user_hr_clerk"));
    let err = normalise_json(serde_json::json!({"EventType": "chat_add_member", "chatId": "c"})).unwrap_err();
    assert!(matches!(err, NormaliseError::MissingField { field: "userId", .. }), "{err}");
}
