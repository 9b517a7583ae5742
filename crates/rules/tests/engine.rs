use std::collections::HashMap;
use std::sync::Arc;

use dingguard_rules::{Catalog, Engine, FieldType, Fields, RuleSet, run_inline_tests};
use serde_json::{Value, json};

fn catalog() -> Catalog {
    Catalog::new(
        [
            ("event.type", FieldType::String),
            ("event.id", FieldType::String),
            ("actor.id", FieldType::String),
            ("group.id", FieldType::String),
            ("group.title", FieldType::String),
            ("file.id", FieldType::String),
            ("file.name", FieldType::String),
            ("members.external_ids", FieldType::StringList),
            ("members.external_count", FieldType::Number),
        ],
        ["members_added", "file_downloaded", "group_created", "user_left"],
    )
}

fn load(text: &str) -> RuleSet {
    RuleSet::load(&[("rules.yaml", text)], &catalog()).unwrap_or_else(|e| panic!("{e}"))
}

fn fields(v: Value) -> Fields<'static> {
    catalog().fields_from_json(v.as_object().unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

const PACK: &str = r#"
- list: trusted_groups
  items: [chat_partner_portal]
- macro: external_joined
  condition: members.external_count > 0
- rule: external_member_added
  description: Someone outside the company joined a group.
  when: [members_added]
  condition: external_joined and not group.id in (trusted_groups)
  exceptions:
    - name: audit engagement
      owner: user_security_lead
      expires: 2026-03-31
      condition: members.external_ids contains ext_auditor_kpmg
  severity: high
  pdpa: ["15", "19"]
  output: "{members.external_ids} added to {group.title} by {actor.id}; may implicate PDPA art. 15"
  dedup: { key: "{group.id}", period: 10m }
  tests:
    - name: outsider joins
      events: [{ event.type: members_added, members.external_count: 1, members.external_ids: [ext_wong], group.id: g1 }]
      expect: match
    - name: trusted group is fine
      events: [{ event.type: members_added, members.external_count: 1, group.id: chat_partner_portal }]
      expect: no_match
- rule: bulk_download
  description: One person downloads many different files quickly.
  when: [file_downloaded]
  severity: medium
  pdpa: ["15"]
  output: "{actor.id} downloaded {count} files"
  threshold: { count: 3, window: 10m, key: "{actor.id}", distinct: file.id }
  tests:
    - name: three files
      events:
        - { event.type: file_downloaded, actor.id: u1, file.id: a }
        - { event.type: file_downloaded, actor.id: u1, file.id: a }
        - { event.type: file_downloaded, actor.id: u1, file.id: b }
        - { event.type: file_downloaded, actor.id: u1, file.id: c }
      expect: 1
    - name: spread over an hour
      events:
        - { event.type: file_downloaded, actor.id: u1, file.id: a }
        - { at: "+20m", event.type: file_downloaded, actor.id: u1, file.id: b }
        - { at: "+20m", event.type: file_downloaded, actor.id: u1, file.id: c }
      expect: 0
- rule: external_then_download
  description: An outsider joins a group, then files are downloaded from it.
  when: [members_added, file_downloaded]
  severity: critical
  pdpa: ["15", "16"]
  output: "download from {group.id} after an outsider joined"
  sequence:
    first: event.type = members_added and members.external_count > 0
    then: event.type = file_downloaded
    key: "{group.id}"
    within: 1h
  tests:
    - name: in order
      events:
        - { event.type: members_added, members.external_count: 1, group.id: g7 }
        - { at: "+30m", event.type: file_downloaded, group.id: g7 }
      expect: 1
    - name: too late
      events:
        - { event.type: members_added, members.external_count: 1, group.id: g7 }
        - { at: "+2h", event.type: file_downloaded, group.id: g7 }
      expect: no_match
"#;

#[test]
fn the_inline_tests_of_a_good_pack_pass() {
    let set = load(PACK);
    let report = run_inline_tests(&set);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.passed, 6);
}

#[test]
fn a_broken_inline_test_is_named() {
    let broken = PACK.replace("      expect: 1\n    - name: spread", "      expect: 2\n    - name: spread");
    let report = run_inline_tests(&load(&broken));
    assert_eq!(report.failures.len(), 1);
    let failure = &report.failures[0];
    assert_eq!((failure.rule.as_str(), failure.test.as_str()), ("bulk_download", "three files"));
    assert!(failure.to_string().contains("expected 2 alert(s), got 1"), "{failure}");
}

#[test]
fn single_rules_render_output_and_dedup_and_honour_exceptions_until_expiry() {
    let mut engine = Engine::new(Arc::new(load(PACK)));
    let event = fields(
        json!({"event.type": "members_added", "members.external_count": 1, "members.external_ids": ["ext_wong"],
        "group.id": "g1", "group.title": "HR files", "actor.id": "u9"}),
    );
    let out = engine.evaluate(&event, 0);
    assert_eq!(out.matches.len(), 1);
    let m = &out.matches[0];
    assert_eq!(m.message, "ext_wong added to HR files by u9; may implicate PDPA art. 15");
    assert_eq!(m.dedup, Some(("g1".into(), 600_000)));
    assert_eq!(m.pdpa, ["15", "19"]);

    let auditor = fields(json!({"event.type": "members_added", "members.external_count": 1,
        "members.external_ids": ["ext_auditor_kpmg"], "group.id": "g2"}));
    let before_expiry = 1_767_600_000_000; // 2026-01-05
    let out = engine.evaluate(&auditor, before_expiry);
    assert!(out.matches.is_empty());
    assert_eq!(out.suppressed[0].exception, "audit engagement");
    assert_eq!(out.suppressed[0].owner, "user_security_lead");
    let after_expiry = 1_775_000_000_000; // 2026-04
    assert_eq!(engine.evaluate(&auditor, after_expiry).matches.len(), 1, "an expired exception no longer applies");
}

#[test]
fn threshold_fires_for_exactly_the_keys_over_it() {
    let text = r#"
- rule: many_downloads
  description: many downloads by one user
  when: [file_downloaded]
  severity: medium
  output: "{actor.id}"
  threshold: { count: 15, window: 1h, key: "{actor.id}" }
"#;
    let mut engine = Engine::new(Arc::new(load(text)));
    // 10,000 events over 1,000 users: user k gets (k % 20) + 1 events, interleaved.
    let mut per_user: HashMap<String, u32> = HashMap::new();
    let mut schedule = Vec::new();
    for k in 0..1000u32 {
        for _ in 0..(k % 20) + 1 {
            schedule.push(format!("user{k}"));
        }
    }
    schedule.truncate(10_000);
    let mut rng_state = 0x2545_f491_4f6c_dd1du64;
    for i in (1..schedule.len()).rev() {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        schedule.swap(i, (rng_state % (i as u64 + 1)) as usize);
    }
    let mut fired: Vec<String> = Vec::new();
    for (i, user) in schedule.iter().enumerate() {
        *per_user.entry(user.clone()).or_default() += 1;
        let out = engine.evaluate(&fields(json!({"event.type": "file_downloaded", "actor.id": user})), i as i64 * 100);
        fired.extend(out.matches.into_iter().map(|m| m.key.unwrap()));
    }
    let mut expected: Vec<String> = per_user.iter().filter(|(_, n)| **n >= 15).map(|(u, _)| u.clone()).collect();
    expected.sort();
    fired.sort();
    assert_eq!(schedule.len(), 10_000);
    assert_eq!(fired, expected, "exactly the users with 15 or more downloads fire, once each");
}

#[test]
fn window_state_survives_a_restart_and_a_reload() {
    let set = Arc::new(load(PACK));
    let mut engine = Engine::new(set.clone());
    let dl = |file: &str| fields(json!({"event.type": "file_downloaded", "actor.id": "u1", "file.id": file}));
    engine.evaluate(&dl("a"), 0);
    engine.evaluate(&dl("b"), 1_000);
    let saved = serde_json::to_string(engine.state()).unwrap();
    let mut restarted = Engine::with_state(set, serde_json::from_str(&saved).unwrap());
    assert_eq!(restarted.evaluate(&dl("c"), 2_000).matches.len(), 1, "the third file fires after the restart");
    restarted.evaluate(&dl("d"), 3_000);
    restarted.replace_rules(Arc::new(load(PACK)));
    assert!(!restarted.state().is_empty(), "a reload keeps windows of rules that remain");
}

#[test]
fn bad_files_are_refused_with_file_line_and_reason() {
    let cases = [
        (
            "- rule: r\n  description: d\n  when: [members_added]\n  severity: high\n  output: o\n  condition: no.field = 1\n",
            1,
            "unknown field `no.field`",
        ),
        (
            "- list: l\n  items: [a]\n\n- rule: r2\n  description: d\n  when: [nope]\n  condition: group.id = x\n  severity: high\n  output: o\n",
            4,
            "unknown event type",
        ),
        (
            "- rule: r\n  description: d\n  when: [members_added]\n  condition: group.id = x\n  severity: urgent\n  output: o\n",
            5,
            "unknown variant",
        ),
        (
            "- rule: r\n  description: This violates art. 15\n  when: [members_added]\n  condition: group.id = x\n  severity: high\n  output: o\n",
            1,
            "may implicate",
        ),
        (
            "- rule: r\n  description: d\n  when: [members_added]\n  condition: group.id = x\n  severity: high\n  output: o\n  exceptions:\n    - name: e\n      condition: group.id = y\n",
            1,
            "needs an `owner`",
        ),
        (
            "- rule: r\n  description: d\n  when: [members_added]\n  condition: group.id = x\n  severity: high\n  output: \"{nope}\"\n",
            1,
            "unknown field `nope`",
        ),
        ("- rule: r\n  descripton: typo\n", 2, "unknown field `descripton`"),
        (
            "- rule: r\n  description: d\n  when: [members_added]\n  condition: group.id = x\n  severity: high\n  output: o\n  tests:\n    - name: t\n      events: [{ group.idd: x }]\n      expect: match\n",
            1,
            "unknown field `group.idd`",
        ),
        (
            "- rule: r\n  description: d\n  when: [members_added]\n  condition: group.id = x\n  severity: high\n  output: o\n  tests:\n    - name: t\n      events: [{ members.external_count: many }]\n      expect: match\n",
            1,
            "test `t`: field `members.external_count` is a number, not \"many\"",
        ),
        (
            "- rule: r\n  description: d\n  when: [members_added]\n  condition: group.id = x and\n  severity: high\n  output: o\n",
            1,
            "ends too early",
        ),
    ];
    for (text, line, needle) in cases {
        let err = RuleSet::load(&[("pack/broken.yaml", text)], &catalog()).unwrap_err();
        assert_eq!(err.file, "pack/broken.yaml");
        assert_eq!(err.line, line, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn distinct_counts_follow_the_window_as_events_enter_and_leave_it() {
    let text = r#"
- rule: many_files
  description: many different files by one user
  when: [file_downloaded]
  severity: medium
  output: "{actor.id}"
  threshold: { count: 4, window: 10m, key: "{actor.id}", distinct: file.id }
"#;
    let set = Arc::new(load(text));
    let mut engine = Engine::new(set.clone());
    // The same rule worked out the slow way: every window kept whole and recounted.
    let mut model: HashMap<String, std::collections::VecDeque<(i64, String)>> = HashMap::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let (mut at, mut fired, window) = (0i64, 0, 600_000i64);
    for i in 0..5_000 {
        at += next(90_000) as i64;
        let (user, file) = (format!("u{}", next(5)), format!("f{}", next(6)));
        if i == 2_500 {
            // A restart half-way: the distinct counts are rebuilt from the saved windows.
            let saved = serde_json::to_string(engine.state()).unwrap();
            engine = Engine::with_state(set.clone(), serde_json::from_str(&saved).unwrap());
        }
        let out =
            engine.evaluate(&fields(json!({"event.type": "file_downloaded", "actor.id": user, "file.id": file})), at);
        let w = model.entry(user.clone()).or_default();
        w.push_back((at, file));
        while w.front().is_some_and(|(t, _)| *t <= at - window) {
            w.pop_front();
        }
        let distinct: std::collections::HashSet<&String> = w.iter().map(|(_, f)| f).collect();
        let expected = distinct.len() >= 4;
        if expected {
            model.remove(&user);
            fired += 1;
        }
        assert_eq!(out.matches.len() == 1, expected, "event {i} of {user}");
    }
    assert!(fired > 50, "the rule fired {fired} times: the test must exercise it");
}

#[test]
fn alert_text_caps_long_lists_and_values_while_keys_keep_them_whole() {
    let rules = Arc::new(load(
        r#"
- rule: outsiders
  description: Outsiders joined.
  when: [members_added]
  condition: members.external_count > 0
  severity: high
  output: "{members.external_ids} joined {group.title}"
  dedup: { key: "{members.external_ids}", period: 1h }
"#,
    ));
    let ids: Vec<String> = (0..20_000).map(|i| format!("ext_{i:05}")).collect();
    let title = "客".repeat(1000);
    let event = fields(json!({"event.type": "members_added", "members.external_count": 20_000,
        "members.external_ids": ids, "group.title": title}));
    let outcome = Engine::new(rules).evaluate(&event, 0);
    let m = &outcome.matches[0];
    assert!(m.message.starts_with("ext_00000, ext_00001,"), "{}", m.message);
    assert!(m.message.contains("ext_00009 and 19990 more joined "), "{}", m.message);
    assert!(!m.message.contains("ext_00010"));
    assert!(m.message.len() <= 2048 + 3 && m.message.ends_with('…'), "{}", m.message.len());
    let (key, _) = m.dedup.clone().unwrap();
    assert!(key.contains("ext_19999"), "keys are never cut: two long lists must not share a key");
}

const SEQUENCE: &str = r#"
- rule: outsider_then_download
  description: An outsider joins a group, then a file is downloaded from it.
  when: [members_added, file_downloaded]
  severity: critical
  output: "{file.name} downloaded by {actor.id} from {group.id} after {first.members.external_ids} joined (added by {first.actor.id})"
  dedup: { key: "{group.id}/{first.actor.id}", period: 1h }
  sequence:
    first: event.type = members_added and members.external_count > 0
    then: event.type = file_downloaded
    key: "{group.id}"
    within: 1h
"#;

fn joined(id: &str) -> Fields<'static> {
    fields(json!({"event.type": "members_added", "event.id": id, "group.id": "g1", "actor.id": "u_lead",
        "members.external_count": 1, "members.external_ids": ["ext_wong"]}))
}

fn downloaded(id: &str) -> Fields<'static> {
    fields(json!({"event.type": "file_downloaded", "event.id": id, "group.id": "g1", "actor.id": "u_rep",
        "file.name": "customers.xlsx"}))
}

#[test]
fn a_sequence_completes_when_its_steps_happened_in_order_whichever_was_read_first() {
    let rules = Arc::new(load(SEQUENCE));
    let t0 = 1_772_420_400_000;
    let on_time = {
        let mut engine = Engine::new(rules.clone());
        assert!(engine.evaluate(&joined("j1"), t0).matches.is_empty());
        engine.evaluate(&downloaded("d1"), t0 + 20 * 60_000).matches
    };
    let late = {
        let mut engine = Engine::new(rules.clone());
        assert!(engine.evaluate(&downloaded("d1"), t0 + 20 * 60_000).matches.is_empty());
        engine.evaluate(&joined("j1"), t0).matches
    };
    assert_eq!(on_time.len(), 1);
    assert_eq!(on_time, late, "the same match, text and identity, either way");
    let m = &on_time[0];
    assert_eq!(m.message, "customers.xlsx downloaded by u_rep from g1 after ext_wong joined (added by u_lead)");
    assert_eq!((m.identity.as_str(), m.event_ids.clone()), ("j1", vec!["j1".to_owned(), "d1".to_owned()]));
    assert_eq!(m.dedup.as_ref().map(|d| d.0.as_str()), Some("g1/u_lead"));

    // The wrong order, however read, is no sequence; nor is a second download after the first completed it.
    for (first, second) in [(true, false), (false, true)] {
        let mut engine = Engine::new(rules.clone());
        let events = [(downloaded("d0"), t0 - 60_000), (joined("j2"), t0)];
        let order = if first { [0, 1] } else { [1, 0] };
        let fired: usize = order.iter().map(|&i| engine.evaluate(&events[i].0, events[i].1).matches.len()).sum();
        assert_eq!(fired, 0, "a download before the outsider joined");
        assert_eq!(second, !first);
    }
    // A second download after the same join is the same alert, brought up to date: one identity, both events.
    let mut engine = Engine::new(rules);
    engine.evaluate(&joined("j3"), t0);
    assert_eq!(engine.evaluate(&downloaded("d3"), t0 + 1).matches.len(), 1);
    let again = engine.evaluate(&downloaded("d4"), t0 + 2).matches;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].identity.as_str(), again[0].count), ("j3", 3));
    assert_eq!(again[0].event_ids, ["j3", "d3", "d4"]);
}

const PER_LEAVE: &str = r#"
- rule: leaver
  description: left after downloads
  when: [file_downloaded, user_left]
  severity: high
  output: "{actor.id} left after downloading {first.file.name}"
  sequence:
    first: event.type = file_downloaded
    then: event.type = user_left
    key: "{actor.id}"
    within: 14d
    alert_per: then
"#;

fn download_of(id: &str, file: &str) -> Fields<'static> {
    fields(json!({"event.type": "file_downloaded", "event.id": id, "actor.id": "u_rep", "file.name": file}))
}

fn left(id: &str) -> Fields<'static> {
    fields(json!({"event.type": "user_left", "event.id": id, "actor.id": "u_rep"}))
}

#[test]
fn one_alert_per_departure_names_every_file_before_it_in_any_arrival_order() {
    let rules = Arc::new(load(PER_LEAVE));
    let day = 86_400_000;
    let t0 = 1_772_420_400_000;
    let history: Vec<(Fields<'static>, i64)> = vec![
        (download_of("d1", "a.xlsx"), t0),
        (download_of("d2", "b.xlsx"), t0 + day),
        (download_of("d3", "a.xlsx"), t0 + 2 * day),
        (left("l1"), t0 + 3 * day),
        (download_of("d4", "after.xlsx"), t0 + 4 * day),
    ];
    // Every arrival order of the five events ends with the same alert text and identity.
    let orders: Vec<Vec<usize>> =
        vec![vec![0, 1, 2, 3, 4], vec![3, 0, 1, 2, 4], vec![4, 3, 2, 1, 0], vec![2, 3, 0, 4, 1]];
    let mut finals = Vec::new();
    for order in orders {
        let mut engine = Engine::new(rules.clone());
        let mut last = None;
        for i in order {
            for m in engine.evaluate(&history[i].0, history[i].1).matches {
                assert_eq!(m.identity, "l1", "one alert, about the departure");
                last = Some(m);
            }
        }
        let last = last.expect("the departure after downloads raised its alert");
        finals.push((last.message.clone(), last.event_ids.clone()));
    }
    assert!(finals.windows(2).all(|w| w[0] == w[1]), "{finals:#?}");
    assert_eq!(finals[0].0, "u_rep left after downloading a.xlsx, b.xlsx", "each file once, none after leaving");
    assert_eq!(finals[0].1, ["d1", "d2", "d3", "l1"]);
}

#[test]
fn a_long_list_of_partners_is_cut_and_updates_per_event_are_bounded() {
    let rules = Arc::new(load(PER_LEAVE));
    let t0 = 1_772_420_400_000;
    let mut engine = Engine::new(rules.clone());
    for i in 0..25 {
        engine.evaluate(&download_of(&format!("d{i}"), &format!("f{i:02}.xlsx")), t0 + i);
    }
    let m = engine.evaluate(&left("l1"), t0 + 100).matches;
    assert_eq!(m.len(), 1);
    assert!(m[0].message.ends_with("f09.xlsx and 15 more"), "{}", m[0].message);

    // Many departures already matched: a late download touches each of them, but brings at most a bounded
    // number up to date in one go.
    let mut engine = Engine::new(rules);
    engine.evaluate(&download_of("d0", "x.xlsx"), t0);
    for i in 0..40 {
        engine.evaluate(&left(&format!("l{i}")), t0 + 1000 + i);
    }
    let late = engine.evaluate(&download_of("dlate", "y.xlsx"), t0 + 1).matches;
    assert_eq!(late.len(), dingguard_rules::SEQUENCE_UPDATES_PER_EVENT);
}

#[test]
fn first_step_fields_are_only_for_sequences() {
    let single = SEQUENCE.replace(
        "  sequence:\n    first: event.type = members_added and members.external_count > 0\n    then: event.type = file_downloaded\n    key: \"{group.id}\"\n    within: 1h\n",
        "  condition: event.type = file_downloaded\n",
    );
    let err = RuleSet::load(&[("rules.yaml", &single)], &catalog()).unwrap_err();
    assert!(err.message.contains("first step"), "{err}");
}

#[test]
fn a_late_event_counts_in_the_windows_it_happened_in() {
    let rules = Arc::new(load(
        r#"
- rule: bulk
  description: many files
  when: [file_downloaded]
  severity: high
  output: "{actor.id} downloaded {count} files"
  threshold: { count: 3, window: 10m, key: "{actor.id}", distinct: file.id }
"#,
    ));
    let at = |m: i64| 1_772_420_400_000 + m * 60_000;
    let download = |file: &str| fields(json!({"event.type": "file_downloaded", "actor.id": "u1", "file.id": file}));
    let mut engine = Engine::new(rules);
    assert!(engine.evaluate(&download("a"), at(0)).matches.is_empty());
    assert!(engine.evaluate(&download("c"), at(8)).matches.is_empty());
    // Read last, it happened between the two: three distinct files within ten minutes.
    assert_eq!(engine.evaluate(&download("b"), at(3)).matches.len(), 1);
    let mut engine = Engine::new(engine.rules().clone());
    engine.evaluate(&download("a"), at(0));
    engine.evaluate(&download("c"), at(30));
    assert!(engine.evaluate(&download("b"), at(5)).matches.is_empty(), "the late one is twenty-five minutes apart");
}

/// A burst polled hours late (the audit log catching up) for someone who has done something since: it happened
/// as a burst, so it counts as one, even across the engine's periodic pruning; and what a key keeps for late
/// events is bounded.
#[test]
fn a_burst_read_hours_late_behind_a_newer_event_still_counts() {
    let rules = Arc::new(load(
        r#"
- rule: bulk
  description: many files
  when: [file_downloaded]
  severity: high
  output: "{actor.id} downloaded {count} files"
  threshold: { count: 5, window: 10m, key: "{actor.id}", distinct: file.id }
"#,
    ));
    let at = |m: i64| 1_772_420_400_000 + m * 60_000;
    let download =
        |user: &str, file: &str| fields(json!({"event.type": "file_downloaded", "actor.id": user, "file.id": file}));
    for newer_first in [true, false] {
        let mut engine = Engine::new(rules.clone());
        if newer_first {
            assert!(engine.evaluate(&download("u1", "today"), at(180)).matches.is_empty());
        }
        // Others' events, enough that the engine prunes its windows in between.
        for i in 0..5_000 {
            engine.evaluate(&download(&format!("other{}", i % 7), &format!("o{i}")), at(180) + i);
        }
        let fired: usize =
            (0..5).map(|i| engine.evaluate(&download("u1", &format!("f{i}")), at(i)).matches.len()).sum();
        assert_eq!(fired, 1, "five files in five minutes, three hours ago (newer event first: {newer_first})");
    }

    // One key's state: the window's length, and at most a bounded number of events behind it.
    let mut engine = Engine::new(rules.clone());
    for i in 0..5_000 {
        engine.evaluate(&download("u2", &format!("f{}", i % 3)), at(i));
    }
    engine.state_mut().mark_all_changed();
    let held: usize = engine
        .state_mut()
        .take_changed()
        .into_iter()
        .filter_map(|(_, w)| match w {
            Some(dingguard_rules::SavedWindow::Threshold(events)) => Some(events.len()),
            _ => None,
        })
        .max()
        .unwrap();
    assert!(held <= dingguard_rules::THRESHOLD_EVENTS_BEHIND + 10, "one key holds {held} events");
    assert!(held > dingguard_rules::THRESHOLD_EVENTS_BEHIND / 2, "late events find what is kept: {held}");
}

#[test]
fn windows_are_saved_one_by_one_and_only_when_they_changed() {
    let rules = Arc::new(load(SEQUENCE));
    let mut engine = Engine::new(rules.clone());
    engine.evaluate(&joined("j1"), 1_000);
    let changed = engine.state_mut().take_changed();
    assert_eq!(changed.len(), 1);
    assert!(engine.state_mut().take_changed().is_empty(), "nothing changed since");
    let mut restored = Engine::new(rules);
    for (id, window) in changed {
        restored.state_mut().restore(id, window.unwrap());
    }
    assert_eq!(restored.state(), engine.state());
    assert_eq!(restored.evaluate(&downloaded("d1"), 2_000).matches.len(), 1, "the restored window completes");
}

#[test]
fn windows_kept_under_a_groups_other_id_join_it_once_the_pair_is_known() {
    let rules = Arc::new(load(SEQUENCE));
    let t0 = 1_772_420_400_000;
    let mut engine = Engine::new(rules);
    let download_by_other_id =
        fields(json!({"event.type": "file_downloaded", "event.id": "d1", "group.id": "cid_g1", "actor.id": "u_rep",
            "file.name": "customers.xlsx"}));
    assert!(engine.evaluate(&download_by_other_id, t0 + 60_000).matches.is_empty());
    // Without the pair, a join under the chatId finds nothing to complete.
    let mut apart = Engine::new(Arc::new(load(SEQUENCE)));
    apart.evaluate(&download_by_other_id, t0 + 60_000);
    assert!(apart.evaluate(&joined("j0"), t0).matches.is_empty());
    engine.merge_key("cid_g1", "g1");
    let m = engine.evaluate(&joined("j1"), t0).matches;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].event_ids, ["j1", "d1"]);
}
