//! The shipped Macau PDPA pack validates against the real field catalog and its inline tests pass.

use std::path::PathBuf;

use dingguard_alerter::rules_source;
use dingguard_rules::run_inline_tests;

fn pack() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

#[test]
fn default_pack_loads_and_its_tests_pass() {
    let set = rules_source::load(&[pack()]).unwrap_or_else(|e| panic!("{e}"));
    assert!(set.rules.len() >= 10, "{} rules", set.rules.len());
    for rule in &set.rules {
        assert!(!rule.tests.is_empty(), "rule {} has no tests", rule.name);
        assert!(!rule.pdpa.is_empty(), "rule {} names no article", rule.name);
    }
    let report = run_inline_tests(&set);
    assert!(
        report.failures.is_empty(),
        "{}",
        report.failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    );
    assert!(report.passed >= 20);
}
