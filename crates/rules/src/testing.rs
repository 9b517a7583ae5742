//! Runs the `tests` written inside rules: each test feeds its events, in the order listed, to an engine holding
//! only that rule, and compares the number of alerts with what the test expects. An event's `at` moves the clock
//! from the previous event's time (`+20m`), or back (`-3d`) for an event that arrives after later ones.

use std::sync::Arc;

use serde_json::Value;

use crate::duration::parse_ms;
use crate::engine::Engine;
use crate::ruleset::{Expectation, RuleSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFailure {
    pub rule: String,
    pub file: String,
    pub line: usize,
    pub test: String,
    pub reason: String,
}

impl std::fmt::Display for TestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: rule `{}`, test `{}`: {}", self.file, self.line, self.rule, self.test, self.reason)
    }
}

#[derive(Debug, Default)]
pub struct TestReport {
    pub passed: usize,
    pub failures: Vec<TestFailure>,
}

/// Monday 2026-01-05 10:00 in Macau: tests start inside office hours unless they move the clock.
pub const TEST_EPOCH_MS: i64 = 1_767_578_400_000;

pub fn run_inline_tests(set: &RuleSet) -> TestReport {
    let mut report = TestReport::default();
    for rule in &set.rules {
        for test in &rule.tests {
            let fail = |reason: String| TestFailure {
                rule: rule.name.clone(),
                file: rule.file.clone(),
                line: rule.line,
                test: test.name.clone(),
                reason,
            };
            let mut engine = Engine::new(Arc::new(RuleSet { rules: vec![rule.clone()], catalog: set.catalog.clone() }));
            let mut at = TEST_EPOCH_MS;
            // Alerts, not matches: a sequence's later steps bring its alert up to date rather than raise another.
            let mut fired = std::collections::HashSet::new();
            let mut bad_step = None;
            for (i, event) in test.events.iter().enumerate() {
                let mut fields = event.clone();
                // Events are fed in the order listed; `at` may move the clock back, as a late event does.
                match fields.remove("at") {
                    Some(Value::String(offset)) => {
                        let (sign, amount) = match offset.strip_prefix('-') {
                            Some(rest) => (-1, rest),
                            None => (1, offset.trim_start_matches('+')),
                        };
                        match parse_ms(amount) {
                            Ok(ms) => at += sign * ms,
                            Err(e) => {
                                bad_step = Some(format!("event {}: {e}", i + 1));
                                break;
                            }
                        }
                    }
                    Some(other) => {
                        bad_step = Some(format!(
                            "event {}: `at` must be an offset like \"+5m\" or \"-2h\", not {other}",
                            i + 1
                        ));
                        break;
                    }
                    None => at += 1_000,
                }
                let fields = match set.catalog.fields_from_json(&fields) {
                    Ok(fields) => fields,
                    Err(why) => {
                        bad_step = Some(format!("event {}: {why}", i + 1));
                        break;
                    }
                };
                fired.extend(engine.evaluate(&fields, at).matches.into_iter().map(|m| m.identity));
            }
            let fired = u32::try_from(fired.len()).unwrap_or(u32::MAX);
            if let Some(reason) = bad_step {
                report.failures.push(fail(reason));
                continue;
            }
            let ok = match &test.expect {
                Expectation::Count(n) => fired == *n,
                Expectation::Word(w) if w == "match" => fired >= 1,
                Expectation::Word(_) => fired == 0,
            };
            if ok {
                report.passed += 1;
            } else {
                let wanted = match &test.expect {
                    Expectation::Count(n) => format!("{n} alert(s)"),
                    Expectation::Word(w) if w == "match" => "at least one alert".into(),
                    Expectation::Word(_) => "no alert".into(),
                };
                report.failures.push(fail(format!("expected {wanted}, got {fired}")));
            }
        }
    }
    report
}
