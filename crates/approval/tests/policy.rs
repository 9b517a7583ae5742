use dingguard_approval::{ApprovalError, Decision, Policy, Request, SlotRole, SlotSpec, Status, Timer, Transition};
use proptest::prelude::*;

const HOUR: i64 = 3_600_000;

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn yes(_: &str, _: usize) -> bool {
    true
}

/// DPO slot: dpo1, dpo2; department-head slot: head; deputies: dpo_deputy, head_deputy.
fn standard(now: i64) -> Request {
    Request::new(
        "req1",
        "clerk",
        &Policy::default(),
        &[ids(&["dpo1", "dpo2"]), ids(&["head"])],
        &[ids(&["dpo_deputy"]), ids(&["head_deputy"])],
        now,
    )
    .unwrap()
}

#[test]
fn both_slots_must_approve_and_order_does_not_matter() {
    let mut r = standard(0);
    assert_eq!(r.decide("dpo1", Decision::Approve, "ok", 10, &yes).unwrap(), Transition::Approved { slot: 0 });
    assert_eq!(r.status, Status::Pending, "one approval is not enough");
    assert_eq!(r.decide("head", Decision::Approve, "fine", 20, &yes).unwrap(), Transition::Granted);
    assert_eq!(r.status, Status::Granted);
    assert!(matches!(
        r.decide("dpo2", Decision::Approve, "", 30, &yes),
        Err(ApprovalError::NotPending(Status::Granted))
    ));
}

#[test]
fn any_rejection_rejects() {
    let mut r = standard(0);
    r.decide("dpo1", Decision::Approve, "", 1, &yes).unwrap();
    assert_eq!(
        r.decide("head", Decision::Reject, "no business need", 2, &yes).unwrap(),
        Transition::Rejected { slot: 1 }
    );
    assert_eq!(r.status, Status::Rejected);
}

#[test]
fn separation_of_duties() {
    // The requester is also a DPO: never eligible for their own request.
    let mut r =
        Request::new("r", "dpo1", &Policy::default(), &[ids(&["dpo1", "dpo2"]), ids(&["head"])], &[], 0).unwrap();
    assert_eq!(r.decide("dpo1", Decision::Approve, "", 1, &yes), Err(ApprovalError::OwnRequest));
    // One person in both slots fills only one.
    let mut r =
        Request::new("r", "clerk", &Policy::default(), &[ids(&["boss", "dpo2"]), ids(&["boss"])], &[], 0).unwrap();
    assert_eq!(
        r.decide("boss", Decision::Approve, "", 1, &yes).unwrap(),
        Transition::Approved { slot: 1 },
        "the slot only they can fill"
    );
    assert!(matches!(
        r.decide("boss", Decision::Approve, "", 2, &yes),
        Err(ApprovalError::AlreadyInAnotherSlot { .. })
    ));
    assert_eq!(
        r.decide("stranger", Decision::Approve, "", 3, &yes),
        Err(ApprovalError::NotEligible { user: "stranger".into() })
    );
    // Eligibility is checked again at decision time.
    let moved = |user: &str, _: usize| user != "dpo2";
    assert_eq!(
        r.decide("dpo2", Decision::Approve, "", 4, &moved),
        Err(ApprovalError::NotEligible { user: "dpo2".into() })
    );
    assert_eq!(r.status, Status::Pending);
    assert_eq!(r.decide("dpo2", Decision::Approve, "", 5, &yes).unwrap(), Transition::Granted);
}

#[test]
fn a_slot_nobody_can_fill_is_refused_at_once() {
    let err = Request::new("r", "head", &Policy::default(), &[ids(&["dpo1"]), ids(&["head"])], &[], 0).unwrap_err();
    assert_eq!(err, ApprovalError::NoEligibleApprover { slot: 1, role: "dept_head".into() });
    let two_dpos = Policy { slots: vec![SlotSpec { role: SlotRole::Dpo, approvals: 2 }], ..Policy::default() };
    assert!(Request::new("r", "x", &two_dpos, &[ids(&["dpo1"])], &[], 0).is_err());
}

#[test]
fn reminders_escalation_and_expiry_follow_the_clock() {
    let mut r = standard(0);
    r.decide("dpo1", Decision::Approve, "", 1, &yes).unwrap();
    assert!(r.tick(19 * HOUR).is_empty());
    assert_eq!(r.next_deadline(), Some(20 * HOUR));
    assert_eq!(r.tick(20 * HOUR), vec![Timer::Reminder { slots: vec![1] }]);
    assert!(r.tick(20 * HOUR + 1).is_empty(), "each reminder once");
    assert_eq!(r.tick(22 * HOUR), vec![Timer::Escalated { slot: 1, deputies: ids(&["head_deputy"]) }]);
    assert_eq!(r.tick(23 * HOUR), vec![Timer::Reminder { slots: vec![1] }]);
    // The deputy may now decide.
    let mut escalated = r.clone();
    assert_eq!(
        escalated.decide("head_deputy", Decision::Approve, "", 23 * HOUR + 5, &yes).unwrap(),
        Transition::Granted
    );
    // Without a decision the request expires; a late decision is refused and changes nothing.
    assert!(matches!(r.decide("head", Decision::Approve, "", 24 * HOUR, &yes), Err(ApprovalError::Expired { .. })));
    assert_eq!(r.status, Status::Pending);
    assert_eq!(r.tick(24 * HOUR), vec![Timer::Expired]);
    assert_eq!(r.status, Status::Expired);
    assert_eq!(r.next_deadline(), None);
}

#[derive(Debug, Clone)]
enum Step {
    Decide { user: usize, approve: bool, at: i64 },
    Tick { at: i64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..8, any::<bool>(), 0i64..30 * HOUR).prop_map(|(user, approve, at)| Step::Decide { user, approve, at }),
        1 => (0i64..30 * HOUR).prop_map(|at| Step::Tick { at }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Whatever people do, in whatever order: a granted request has every slot filled by distinct eligible people
    /// other than the requester and no rejection; a rejected one has a rejection; a finished one never changes.
    #[test]
    fn invariants_hold_under_any_decisions(
        requester in 0usize..8,
        slot_members in proptest::collection::vec(proptest::collection::vec(0usize..8, 1..4), 1..4),
        needed in proptest::collection::vec(1u32..3, 1..4),
        steps in proptest::collection::vec(step(), 0..25),
    ) {
        let user = |i: usize| format!("u{i}");
        let slots: Vec<SlotSpec> = slot_members.iter().zip(needed.iter().cycle())
            .map(|(_, n)| SlotSpec { role: SlotRole::Dpo, approvals: *n }).collect();
        let eligible: Vec<Vec<String>> = slot_members.iter().map(|m| m.iter().map(|i| user(*i)).collect()).collect();
        let policy = Policy { slots, ..Policy::default() };
        let Ok(mut r) = Request::new("p", user(requester), &policy, &eligible, &[], 0) else { return Ok(()) };
        let mut finished: Option<Request> = None;
        for s in steps {
            let before = r.clone();
            match s {
                Step::Decide { user: u, approve, at } => {
                    let d = if approve { Decision::Approve } else { Decision::Reject };
                    if r.decide(&user(u), d, "", at, &yes).is_err() {
                        prop_assert_eq!(&r, &before, "a refused decision changed the request");
                    }
                }
                Step::Tick { at } => { r.tick(at); }
            }
            if let Some(f) = &finished {
                prop_assert_eq!(&r.status, &f.status, "a finished request changed status");
                prop_assert_eq!(&r.decisions, &f.decisions);
            } else if r.status != Status::Pending {
                finished = Some(r.clone());
            }
            let approvers: Vec<&String> = r.slots.iter().flat_map(|s| &s.approvals).collect();
            let mut distinct = approvers.clone();
            distinct.sort();
            distinct.dedup();
            prop_assert_eq!(distinct.len(), approvers.len(), "someone filled two slots");
            prop_assert!(!approvers.contains(&&user(requester)), "the requester approved");
            for (i, s) in r.slots.iter().enumerate() {
                prop_assert!(s.approvals.len() as u32 <= s.needed);
                for a in &s.approvals {
                    prop_assert!(eligible[i].contains(a), "{} approved slot {} without being eligible", a, i);
                }
            }
            let rejected = r.decisions.iter().any(|d| d.decision == Decision::Reject);
            match r.status {
                Status::Granted => {
                    prop_assert!(!rejected);
                    prop_assert!(r.slots.iter().all(|s| s.approvals.len() as u32 == s.needed));
                }
                Status::Rejected => prop_assert!(rejected),
                Status::Pending => prop_assert!(!rejected),
                Status::Expired => prop_assert!(!rejected && r.slots.iter().any(|s| (s.approvals.len() as u32) < s.needed)),
            }
        }
    }
}

#[test]
fn a_delegate_decides_in_the_away_approvers_place_and_both_count_as_decided() {
    let mut r = standard(0);
    let t = r.decide_for("head", "stand_in", Decision::Approve, "for the head", 5, &yes).unwrap();
    assert_eq!(t, Transition::Approved { slot: 1 });
    let record = r.decisions.last().unwrap();
    assert_eq!((record.user.as_str(), record.on_behalf_of.as_deref()), ("stand_in", Some("head")));
    assert!(matches!(
        r.decide("head", Decision::Approve, "", 6, &yes),
        Err(ApprovalError::AlreadyInAnotherSlot { .. })
    ));
    assert!(matches!(
        r.decide_for("head", "stand_in", Decision::Approve, "", 7, &yes),
        Err(ApprovalError::AlreadyInAnotherSlot { .. })
    ));
    assert_eq!(r.decide("dpo1", Decision::Approve, "", 8, &yes).unwrap(), Transition::Granted);
}

#[test]
fn the_requester_is_never_a_delegate_and_a_delegate_fills_one_slot_only() {
    let mut r = standard(0);
    let before = r.clone();
    assert_eq!(r.decide_for("head", "clerk", Decision::Approve, "", 1, &yes), Err(ApprovalError::OwnRequest));
    assert_eq!(r, before, "a refusal changes nothing");
    // dpo1 stands in for the head, and then cannot also fill the DPO slot.
    r.decide_for("head", "dpo1", Decision::Approve, "", 2, &yes).unwrap();
    assert!(matches!(
        r.decide("dpo1", Decision::Approve, "", 3, &yes),
        Err(ApprovalError::AlreadyInAnotherSlot { .. })
    ));
    assert_eq!(r.status, Status::Pending);
    // A delegate of someone who may not decide gets nowhere.
    let mut other = standard(0);
    assert!(matches!(
        other.decide_for("stranger", "stand_in", Decision::Approve, "", 1, &yes),
        Err(ApprovalError::NotEligible { .. })
    ));
}

#[test]
fn directory_roles_are_read_back_from_their_slot_labels() {
    for role in [SlotRole::Dpo, SlotRole::DeptHead] {
        assert_eq!(SlotRole::of_label(&role.label()), Some(role));
    }
    assert_eq!(SlotRole::of_label(&SlotRole::AnyOf(vec!["dpo".into()]).label()), None);
}
