use crate::common::{RECEIVED_MS, directory, payload};
use dingguard_events::{CanonicalEvent, EventKind, GroupTracker, InMemoryGroupTracker, normalise_with_tracker};

fn run(tracker: &mut InMemoryGroupTracker, event_type: &str, ce_id: &str, body: &[u8]) -> Vec<CanonicalEvent> {
    normalise_with_tracker(event_type, ce_id, body, &directory(), RECEIVED_MS, tracker).unwrap()
}

fn inferred(events: &[CanonicalEvent]) -> usize {
    events.iter().filter(|e| matches!(e.kind, EventKind::GroupCreated { inferred: true, .. })).count()
}

#[test]
fn first_membership_event_infers_creation_once() {
    let mut tracker = InMemoryGroupTracker::default();
    let body = payload("chat_add_member_both_spellings");
    let first = run(&mut tracker, "chat_add_member", "e1", &body);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].id, "e1:group_created");
    let EventKind::GroupCreated { chat_id, members, owner, .. } = &first[0].kind else { panic!() };
    assert_eq!(chat_id, "chat_hr_onboarding");
    assert_eq!(members.len(), 3, "the added members are all that is known");
    assert_eq!(*owner, None);
    assert_eq!(first[0].actor.as_ref().unwrap().id, "user_hr_manager");
    assert!(matches!(first[1].kind, EventKind::MembersAdded { .. }));

    let again = run(&mut tracker, "chat_add_member", "e2", &body);
    assert_eq!(inferred(&again), 0);
}

#[test]
fn removal_and_quit_also_count_as_first_sight() {
    let mut tracker = InMemoryGroupTracker::default();
    let removed = run(&mut tracker, "chat_remove_member", "r1", &payload("chat_remove_member"));
    assert_eq!(inferred(&removed), 1);
    let EventKind::GroupCreated { members, .. } = &removed[0].kind else { panic!() };
    assert!(members.is_empty());
    // Same group (chat_sales_q2): no second inference.
    assert_eq!(inferred(&run(&mut tracker, "chat_quit", "q1", &payload("chat_quit"))), 0);
}

#[test]
fn chat_create_suppresses_inference() {
    let mut tracker = InMemoryGroupTracker::default();
    let created = run(&mut tracker, "chat_create", "c1", &payload("chat_create"));
    assert_eq!(created.len(), 1);
    let added = run(&mut tracker, "chat_add_member", "a1", &payload("chat_add_member_both_spellings"));
    assert_eq!(inferred(&added), 0);
}

#[test]
fn other_group_events_do_not_infer() {
    let mut tracker = InMemoryGroupTracker::default();
    assert_eq!(run(&mut tracker, "chat_update_title", "t1", &payload("chat_update_title")).len(), 1);
    assert_eq!(run(&mut tracker, "chat_disband", "d1", &payload("chat_disband")).len(), 1);
}

#[test]
fn groups_are_tracked_per_corp() {
    let mut tracker = InMemoryGroupTracker::default();
    assert!(tracker.first_seen("corp_a", "chat1"));
    assert!(!tracker.first_seen("corp_a", "chat1"));
    assert!(tracker.first_seen("corp_b", "chat1"));
}
