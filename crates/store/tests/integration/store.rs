//! The same behaviour from SQLite files and from the machine's PostgreSQL (a fresh database per test).

use crate::common::fresh_postgres;
use dingguard_store::{
    AlertEvent, AlertFilter, AlertStatus, Channel, FileFact, Grant, NewAlert, Recorded, Silence, Store, StoreError,
    StoredRequest, Written,
};

on_both_stores!(
    matches_create_fold_and_respect_silences,
    lifecycle_moves_forward_only,
    events_are_claimed_once_and_rollback_changes_nothing,
    outbox_and_state_round_trip,
    audit_chain_stays_linear_under_concurrent_writers,
    requests_are_one_per_source_and_updates_are_optimistic,
    file_facts_are_kept_once_each_and_bounded_per_file,
    inboxes_page_in_the_database_and_follow_whom_requests_wait_on,
    alert_moves_and_silences_are_on_the_audit_chain,
    state_written_over_a_stale_copy_is_refused,
    replicas_claim_each_outbox_item_once_until_its_lease_ends,
);

fn new_alert(id: &str, dedup: Option<&str>, at_ms: i64) -> NewAlert {
    NewAlert {
        id: id.into(),
        rule: "external_member_added".into(),
        severity: dingguard_model::Severity::High,
        message: format!("outsider joined ({id})"),
        pdpa: vec!["15".into(), "19".into()],
        corp_id: Some("dingcorp".into()),
        dedup: dedup.map(|k| (k.to_owned(), 600_000)),
        event: AlertEvent {
            ce_id: format!("ce-{id}"),
            event_type: "members_added".into(),
            occurred_at_ms: at_ms,
            fields: serde_json::json!({"group.id": "g1"}),
        },
        at_ms,
        recorded_at_ms: at_ms,
    }
}

async fn matches_create_fold_and_respect_silences(store: Store) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    assert_eq!(tx.record(&new_alert("a1", Some("g1"), 1_000)).await?, Recorded::Created("a1".into()));
    assert_eq!(tx.record(&new_alert("a2", Some("g1"), 2_000)).await?, Recorded::Folded { id: "a1".into(), count: 2 });
    // After the dedup period a new alert opens.
    assert_eq!(tx.record(&new_alert("a3", Some("g1"), 700_000)).await?, Recorded::Created("a3".into()));
    tx.commit().await?;
    let (alert, events, total) = store.alert("a1", 100, 0).await?;
    assert_eq!(total, 2);
    assert_eq!((alert.event_count, alert.last_seen_ms, alert.status), (2, 2_000, AlertStatus::Open));
    assert_eq!(alert.pdpa, ["15", "19"]);
    assert_eq!(events.len(), 2);

    store
        .create_silence(&Silence {
            id: "s1".into(),
            rule: Some("external_member_added".into()),
            dedup_key: Some("g2".into()),
            creator: "user_security_lead".into(),
            reason: "partner onboarding this week".into(),
            created_at_ms: 0,
            expires_at_ms: 1_000_000,
            matched_count: 0,
        })
        .await?;
    let mut tx = store.begin().await?;
    assert_eq!(tx.record(&new_alert("b1", Some("g2"), 5_000)).await?, Recorded::Silenced { silence: "s1".into() });
    assert_eq!(
        tx.record(&new_alert("b2", Some("g2"), 2_000_000)).await?,
        Recorded::Created("b2".into()),
        "expired silence"
    );
    tx.commit().await?;
    assert_eq!(store.silences().await?[0].matched_count, 1);
    assert_eq!(store.suppressions().await?, vec![("external_member_added".into(), "silence".into(), "s1".into(), 1)]);
    let bad = Silence {
        id: "s2".into(),
        rule: None,
        dedup_key: None,
        creator: "x".into(),
        reason: " ".into(),
        created_at_ms: 5,
        expires_at_ms: 6,
        matched_count: 0,
    };
    assert!(matches!(store.create_silence(&bad).await, Err(StoreError::Conflict(_))));
    let high = store
        .alerts(&AlertFilter { severity: Some(dingguard_model::Severity::High), ..AlertFilter::default() })
        .await?;
    assert_eq!(high.len(), 3);
    Ok(())
}

async fn lifecycle_moves_forward_only(store: Store) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.record(&new_alert("l1", None, 1)).await?;
    tx.commit().await?;
    let acked = store.transition("l1", AlertStatus::Acknowledged, "user_sec", 10).await?;
    assert_eq!((acked.acknowledged_by.as_deref(), acked.acknowledged_at_ms), (Some("user_sec"), Some(10)));
    assert!(matches!(store.transition("l1", AlertStatus::Acknowledged, "x", 11).await, Err(StoreError::Conflict(_))));
    let resolved = store.transition("l1", AlertStatus::Resolved, "user_sec2", 20).await?;
    assert_eq!((resolved.status, resolved.resolved_by.as_deref()), (AlertStatus::Resolved, Some("user_sec2")));
    assert!(matches!(store.transition("l1", AlertStatus::Open, "x", 30).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.transition("nope", AlertStatus::Resolved, "x", 30).await, Err(StoreError::NotFound(_))));
    let open = store.alerts(&AlertFilter { status: Some(AlertStatus::Open), ..AlertFilter::default() }).await?;
    assert!(open.is_empty());
    Ok(())
}

async fn events_are_claimed_once_and_rollback_changes_nothing(store: Store) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    assert!(tx.claim_event("alerter", "ce1", 1).await?);
    assert!(!tx.claim_event("alerter", "ce1", 2).await?);
    assert!(tx.claim_event("approver", "ce1", 2).await?, "each consumer claims for itself");
    tx.commit().await?;
    {
        let mut tx = store.begin().await?;
        assert!(tx.claim_event("alerter", "ce2", 3).await?);
        tx.record(&new_alert("r1", None, 3)).await?;
        // Dropped without commit: a crash mid-batch.
    }
    let mut tx = store.begin().await?;
    assert!(tx.claim_event("alerter", "ce2", 4).await?, "the rolled-back claim did not stick");
    tx.commit().await?;
    assert!(matches!(store.alert("r1", 10, 0).await, Err(StoreError::NotFound(_))));
    Ok(())
}

async fn outbox_and_state_round_trip(store: Store) -> Result<(), StoreError> {
    let robot = Channel::Notifier("robot".into());
    // A notifier named like an internal channel still has a channel of its own.
    let approvals = Channel::Notifier("approvals".into());
    let mut tx = store.begin().await?;
    tx.enqueue("o1", &robot, &serde_json::json!({"alert": "a1"}), 100).await?;
    tx.enqueue("o1", &robot, &serde_json::json!({"alert": "dup"}), 100).await?;
    tx.enqueue("o2", &Channel::Notifier("webhook".into()), &serde_json::json!({}), 100).await?;
    tx.enqueue("o3", &Channel::ApprovalNotices, &serde_json::json!({"note": 1}), 100).await?;
    tx.save_state("alerter", r#"{"thresholds":{}}"#, 100).await?;
    tx.commit().await?;
    let due = store.due(&robot, 100, 10).await?;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].message::<serde_json::Value>(), Some(serde_json::json!({"alert": "a1"})));
    assert!(store.due(&approvals, 100, 10).await?.is_empty(), "the approver's notices are not a notifier's");
    assert_eq!(store.due(&Channel::ApprovalNotices, 100, 10).await?.len(), 1);
    store.failed("o1", "503 from robot", 500).await?;
    assert!(store.due(&robot, 200, 10).await?.is_empty(), "not due before its retry time");
    assert_eq!(store.due(&robot, 500, 10).await?[0].attempts, 1);
    store.delivered("o1", 600).await?;
    assert!(store.due(&robot, 10_000, 10).await?.is_empty());
    assert_eq!(store.load_state("alerter").await?.as_deref(), Some(r#"{"thresholds":{}}"#));
    assert_eq!(store.load_state("other").await?, None);
    let internal = [Channel::AlertsTopic, Channel::DeadLetters, Channel::ApprovalsTopic, Channel::ApprovalNotices];
    for name in ["alerts-topic", "dlq", "approvals-topic", "approval-notices", "approvals", ""] {
        let notifier = Channel::Notifier(name.into()).name();
        assert!(internal.iter().all(|c| c.name() != notifier), "notifier {name:?} shares an internal channel");
    }
    Ok(())
}

async fn audit_chain_stays_linear_under_concurrent_writers(store: Store) -> Result<(), StoreError> {
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let store = store.clone();
        writers.spawn(async move {
            for i in 0..10 {
                store.append_audit(&format!("writer{w}"), "decided", "req1", serde_json::json!({"i": i}), i).await?;
            }
            Ok::<_, StoreError>(())
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer task")?;
    }
    let entries = store.audit_entries().await?;
    assert_eq!(entries.len(), 40);
    assert_eq!(dingguard_audit::verify(&entries), Ok(40), "one chain, no fork");
    Ok(())
}

async fn requests_are_one_per_source_and_updates_are_optimistic(store: Store) -> Result<(), StoreError> {
    let request = dingguard_store::StoredRequest {
        id: "dlr_1".into(),
        source_id: "ce-1".into(),
        requester: "user_hr_clerk".into(),
        status: dingguard_model::RequestStatus::Pending,
        file_id: "f1".into(),
        file_name: "身份證-scans.zip".into(),
        state: "{}".into(),
        version: 1,
        created_ms: 0,
        updated_ms: 0,
        next_deadline_ms: Some(200),
    };
    let mut tx = store.begin().await?;
    assert!(tx.insert_request(&request).await?);
    let again = dingguard_store::StoredRequest { id: "dlr_2".into(), ..request.clone() };
    assert!(!tx.insert_request(&again).await?, "one request per source");
    tx.commit().await?;
    assert_eq!(store.request_by_source("ce-1").await?.map(|r| r.id), Some("dlr_1".into()));

    // Two replicas read version 1; only the first write lands.
    let mut tx = store.begin().await?;
    assert!(
        tx.update_request("dlr_1", dingguard_model::RequestStatus::Pending, r#"{"step":1}"#, Some(300), 1, 10).await?
    );
    assert!(
        !tx.update_request("dlr_1", dingguard_model::RequestStatus::Granted, r#"{"step":"stale"}"#, None, 1, 11)
            .await?
    );
    tx.commit().await?;
    let stored = store.request("dlr_1").await?.expect("stored");
    assert_eq!((stored.version, stored.state.as_str(), stored.status.as_str()), (2, r#"{"step":1}"#, "pending"));

    assert!(store.due_requests(250, 10).await?.is_empty());
    assert_eq!(store.due_requests(300, 10).await?.len(), 1);

    let facts = vec![FileFact { name: Some("身份證-scans.zip".into()), space: Some("space_hr".into()) }];
    let grant = Grant {
        request_id: "dlr_1".into(),
        user_id: "user_hr_clerk".into(),
        file_id: "f1".into(),
        granted_at_ms: 20,
        expires_at_ms: 1_000,
        facts: facts.clone(),
    };
    let mut tx = store.begin().await?;
    tx.insert_grant(&grant).await?;
    tx.commit().await?;
    assert!(store.has_grant("user_hr_clerk", "f1", 999).await?);
    assert!(!store.has_grant("user_hr_clerk", "f1", 1_000).await?, "grants expire");
    assert!(!store.has_grant("user_sales_rep", "f1", 500).await?, "grants are personal");
    assert_eq!(store.grants_after(999).await?, vec![grant.clone()], "the facts it was decided on come back");
    assert!(store.grants_after(1_000).await?.is_empty(), "an event after expiry falls under none");
    Ok(())
}

async fn file_facts_are_kept_once_each_and_bounded_per_file(store: Store) -> Result<(), StoreError> {
    let fact = |name: &str, space: Option<&str>| FileFact { name: Some(name.into()), space: space.map(str::to_owned) };
    let mut tx = store.begin().await?;
    tx.record_file_fact("f1", &fact("salaries.xlsx", Some("space_hr")), "download", 10).await?;
    tx.record_file_fact("f1", &fact("salaries.xlsx", Some("space_hr")), "download", 20).await?;
    tx.record_file_fact("f1", &FileFact { name: Some("renamed.xlsx".into()), space: None }, "download", 30).await?;
    for i in 0..100 {
        tx.record_file_fact("f2", &fact(&format!("name-{i}"), None), "download", i).await?;
    }
    tx.commit().await?;
    let known = store.file_facts("f1").await?;
    assert_eq!(
        known,
        vec![fact("salaries.xlsx", Some("space_hr")), FileFact { name: Some("renamed.xlsx".into()), space: None }]
    );
    assert_eq!(
        store.file_facts("f2").await?.len(),
        32,
        "an outsider naming a file cannot grow its facts without bound"
    );
    assert!(store.file_facts("unknown").await?.is_empty());
    Ok(())
}

fn pending(id: &str, requester: &str, created: i64) -> StoredRequest {
    StoredRequest {
        id: id.into(),
        source_id: format!("api:{requester}:{id}"),
        requester: requester.into(),
        status: dingguard_model::RequestStatus::Pending,
        file_id: "f1".into(),
        file_name: "x.xlsx".into(),
        state: "{}".into(),
        version: 1,
        created_ms: created,
        updated_ms: created,
        next_deadline_ms: Some(created + 1_000),
    }
}

async fn inboxes_page_in_the_database_and_follow_whom_requests_wait_on(store: Store) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    // A flood from one requester waiting on the DPO, and one real request waiting on the DPO and the head.
    for i in 0..120 {
        let id = format!("dlr_flood{i:03}");
        tx.insert_request(&pending(&id, "user_flooder", 1_000 + i)).await?;
        tx.set_waiting(&id, "user_flooder", 1_000 + i, 100_000, &["user_dpo".to_owned()]).await?;
    }
    tx.insert_request(&pending("dlr_real", "user_hr_clerk", 5_000)).await?;
    tx.set_waiting("dlr_real", "user_hr_clerk", 5_000, 100_000, &["user_dpo".into(), "user_hr_manager".into()]).await?;
    tx.commit().await?;
    let (page, total) = store.inbox("user_dpo", &[], 10_000, 50, 0).await?;
    assert_eq!((page.len(), total), (50, 121));
    let (last, _) = store.inbox("user_dpo", &[], 10_000, 50, 100).await?;
    assert_eq!(last.last().map(|r| r.id.as_str()), Some("dlr_real"), "the real request is on the last page, not lost");
    let (head, total) = store.inbox("user_hr_manager", &[], 10_000, 50, 0).await?;
    assert_eq!((head.len(), total), (1, 1));
    // A delegate sees the principal's requests, except their own.
    let (standing_in, _) = store.inbox("user_hr_clerk", &["user_hr_manager".to_owned()], 10_000, 50, 0).await?;
    assert!(standing_in.is_empty(), "nobody decides their own request as a delegate");
    let (standing_in, _) = store.inbox("user_gm", &["user_hr_manager".to_owned()], 10_000, 50, 0).await?;
    assert_eq!(standing_in.len(), 1);
    assert_eq!(store.inbox("user_dpo", &[], 100_000, 50, 0).await?.1, 0, "expired requests wait on nobody");
    // Deciding clears whom it waits on.
    let mut tx = store.begin().await?;
    tx.set_waiting("dlr_real", "user_hr_clerk", 5_000, 100_000, &[]).await?;
    tx.commit().await?;
    assert_eq!(store.inbox("user_hr_manager", &[], 10_000, 50, 0).await?.1, 0);
    assert_eq!(store.open_requests_of("user_flooder").await?, (120, Some(100_000)));
    assert_eq!(store.requests_made_since("user_flooder", 1_099).await?, (20, Some(1_100)));
    assert_eq!(
        store.pending_without_waiting(10).await?.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["dlr_real"]
    );
    Ok(())
}

async fn alert_moves_and_silences_are_on_the_audit_chain(store: Store) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.record(&new_alert("m1", Some("g9"), 1_000)).await?;
    tx.commit().await?;
    store.transition("m1", AlertStatus::Acknowledged, "user_ops", 2_000).await?;
    let silence = Silence {
        id: "sil_1".into(),
        rule: Some("bulk_download".into()),
        dedup_key: None,
        creator: "user_it_admin".into(),
        reason: "migration".into(),
        created_at_ms: 3_000,
        expires_at_ms: 9_000,
        matched_count: 0,
    };
    store.create_silence(&silence).await?;
    let chain = store.audit_entries().await?;
    let actions: Vec<(&str, &str, &str)> =
        chain.iter().map(|e| (e.actor.as_str(), e.action.as_str(), e.subject.as_str())).collect();
    assert_eq!(actions, [("user_ops", "acknowledged alert", "m1"), ("user_it_admin", "created silence", "sil_1")]);
    assert!(dingguard_audit::verify(&chain).is_ok());
    Ok(())
}

/// Two replicas holding the same window: the second to write over the version both read writes nothing, even
/// when it wrote while the first's transaction was still open.
async fn state_written_over_a_stale_copy_is_refused(store: Store) -> Result<(), StoreError> {
    let put = async |expected: Option<i64>, version: i64| -> Result<Written, StoreError> {
        let mut tx = store.begin().await?;
        let written = tx.put_state_if("alerter", "window", "w1", &format!("v{version}"), 10, expected, version).await?;
        tx.commit().await?;
        Ok(written)
    };
    assert_eq!(put(None, 1).await?, Written::Done);
    assert_eq!(put(None, 2).await?, Written::Stale, "a row another writer created is not created again");
    assert_eq!(put(Some(1), 3).await?, Written::Done);
    assert_eq!(put(Some(1), 4).await?, Written::Stale, "a write over a version that is gone changes nothing");
    let rows = store.load_keyed_state("alerter").await?;
    assert_eq!((rows[0].value.as_str(), rows[0].version), ("v3", 3));

    // A writer waiting on an open transaction over the same version finds it stale once that one commits.
    let mut first = store.begin().await?;
    assert_eq!(first.put_state_if("alerter", "window", "w1", "first", 20, Some(3), 5).await?, Written::Done);
    let second = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = store.begin().await?;
            let written = tx.put_state_if("alerter", "window", "w1", "second", 21, Some(3), 6).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(written)
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    first.commit().await?;
    assert_eq!(second.await.expect("second writer")?, Written::Stale);
    assert_eq!(store.load_keyed_state("alerter").await?[0].value, "first");

    let mut tx = store.begin().await?;
    assert_eq!(tx.delete_state_if("alerter", "window", "w1", Some(3)).await?, Written::Stale);
    assert_eq!(tx.delete_state_if("alerter", "window", "w1", None).await?, Written::Stale, "it exists");
    assert_eq!(tx.delete_state_if("alerter", "window", "w1", Some(5)).await?, Written::Done);
    assert_eq!(tx.delete_state_if("alerter", "window", "w1", None).await?, Written::Done);
    tx.commit().await?;
    assert!(store.load_keyed_state("alerter").await?.is_empty());
    assert!(store.keyed_state_since("alerter", 0).await?.is_empty());
    Ok(())
}

/// Two senders of one channel over one store: each item goes to one of them; an item whose sender died is due
/// again once its lease ends, and one given back is due at once.
async fn replicas_claim_each_outbox_item_once_until_its_lease_ends(store: Store) -> Result<(), StoreError> {
    let robot = Channel::Notifier("robot".into());
    let mut tx = store.begin().await?;
    for i in 0..40 {
        tx.enqueue(&format!("n{i:02}"), &robot, &serde_json::json!({"alert": i}), 100).await?;
    }
    tx.commit().await?;
    let (a, b) = tokio::join!(store.claim_due(&robot, 100, 25, 60_100), store.claim_due(&robot, 100, 25, 60_100));
    let (a, b) = (a?, b?);
    let mut ids: Vec<&str> = a.iter().chain(&b).map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    let taken = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), taken, "an item was claimed by both senders");
    assert_eq!(taken, 40, "every item was claimed by one of them");
    assert!(store.claim_due(&robot, 1_000, 50, 61_000).await?.is_empty(), "all are leased");
    store.delivered(&a[0].id, 1_000).await?;
    store.release(&[b[0].id.clone()], 1_000).await?;
    let again = store.claim_due(&robot, 1_000, 50, 61_000).await?;
    assert_eq!(again.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), [b[0].id.as_str()], "given back: due at once");
    let expired = store.claim_due(&robot, 60_100, 50, 120_100).await?;
    assert_eq!(expired.len(), 38, "the lease of a sender that died ends; a delivered item stays delivered");
    Ok(())
}
