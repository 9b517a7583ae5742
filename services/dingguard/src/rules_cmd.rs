//! `dingguard rules test`: validate rule files and run their inline tests, the way a reviewer would before merge.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use dingguard_alerter::rules_source;
use dingguard_rules::run_inline_tests;

use dingguard::config::{Config, ProcessEnv};

pub fn test(config_file: Option<&Path>, paths: Vec<PathBuf>) -> Result<()> {
    let paths = if paths.is_empty() {
        let config = Config::load(config_file, &ProcessEnv, false)?;
        config.alerting.resolve_rules(&config.data_dir)?
    } else {
        paths
    };
    let set = match rules_source::load(&paths) {
        Ok(set) => set,
        Err(error) => bail!("rules refused: {error}"),
    };
    let report = run_inline_tests(&set);
    for failure in &report.failures {
        println!("FAIL {failure}");
    }
    let cases: usize = set.rules.iter().map(|r| r.tests.len()).sum();
    println!(
        "{} rules from {}; {} passed, {} failed",
        set.rules.len(),
        rules_source::describe(&paths),
        report.passed,
        report.failures.len()
    );
    if !report.failures.is_empty() {
        bail!("{} of {cases} rule tests failed", report.failures.len());
    }
    Ok(())
}
