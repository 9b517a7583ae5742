//! How the code is put together, checked: the services are built in one place only, the composition root, which
//! `dingguard`, the test kits and the bench all call.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source tree").flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() && name != "target" && !name.starts_with('.') {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn services_are_built_only_by_the_composition_root() {
    let root = dingguard_tests::workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "services", "tests", "tools"] {
        rust_files(&root.join(dir), &mut files);
    }
    let composition_root = root.join("services/dingguard/src/app.rs");
    let constructors = ["Receiver::new(", "Alerter::new(", "Approver::new(", "Console::new("];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source file");
        for constructor in constructors {
            if text.contains(constructor)
                && *file != composition_root
                && !file.ends_with("tests/tests/integration/layout.rs")
            {
                found.push(format!("{} builds {constructor}", file.strip_prefix(&root).unwrap_or(file).display()));
            }
        }
    }
    assert!(found.is_empty(), "services built outside services/dingguard/src/app.rs: {found:#?}");
    let root_text = std::fs::read_to_string(&composition_root).expect("the composition root");
    for constructor in constructors {
        assert!(root_text.contains(constructor), "the composition root no longer builds {constructor}");
    }
}

/// The API document is generated from the routers the services register through `utoipa_axum`: an `/api/` route
/// added with a plain `.route(` would be served undocumented, so there must be none. (The console test
/// `the_openapi_document_describes_every_endpoint` calls every documented operation.)
#[test]
fn every_api_route_is_registered_with_its_document() {
    let root = dingguard_tests::workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "services"] {
        rust_files(&root.join(dir), &mut files);
    }
    let document_route = root.join("services/dingguard/src/api_doc.rs");
    let mut found = Vec::new();
    let mut documented = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source file");
        let compact: String = text.split_whitespace().collect();
        if compact.contains(".route(\"/api/") && *file != document_route {
            found.push(file.strip_prefix(&root).unwrap_or(file).display().to_string());
        }
        documented += text.matches("#[utoipa::path(").count();
    }
    assert!(found.is_empty(), "undocumented /api/ routes registered in {found:#?}");
    assert!(documented >= 12, "only {documented} documented handlers found");
}

/// DingTalk's payload spellings are known in the DingTalk crate only: the normaliser reads fields through
/// `dingguard_dingtalk::fields`, never through lists of its own. (Payloads written as test data are DingTalk's
/// side and may spell them.)
#[test]
fn dingtalk_spellings_live_in_the_dingtalk_crate() {
    let root = dingguard_tests::workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "services"] {
        rust_files(&root.join(dir), &mut files);
    }
    // The simulator and the stand-in play DingTalk's side: writing payloads as DingTalk spells them is their job.
    let (dingtalk, simulator) = (root.join("crates/dingtalk"), root.join("crates/simulator"));
    let standin = root.join("crates/dingtalk-standin");
    let mut found = Vec::new();
    // Test files write payloads as DingTalk sends them: that is their data, not a reader of it.
    let is_test = |f: &std::path::Path| f.components().any(|c| c.as_os_str() == "tests");
    let theirs = |f: &std::path::Path| f.starts_with(&dingtalk) || f.starts_with(&simulator) || f.starts_with(&standin);
    for file in files.iter().filter(|f| !theirs(f) && !is_test(f)) {
        let text = std::fs::read_to_string(file).expect("readable source file");
        for (n, line) in text.lines().enumerate() {
            let spelled = ["\"ChatId\"", "\"EventTime\"", "\"UserId\"", "\"CorpId\"", "\"FileId\"", "\"StaffId\""]
                .iter()
                .any(|s| line.contains(s));
            let is_test_data = line.contains("json!") || line.contains("r#\"") || line.contains("\"EventType\"");
            if (spelled && !is_test_data) || line.contains("Field(&[") {
                found.push(format!(
                    "{}:{}: {}",
                    file.strip_prefix(&root).unwrap_or(file).display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    let text = std::fs::read_to_string(root.join("crates/events/src/normalise.rs")).unwrap();
    assert!(!text.contains("&[\""), "the normaliser spells fields itself");
    assert!(found.is_empty(), "DingTalk spellings outside crates/dingtalk: {found:#?}");
}

/// The test kit depends on no dingguard crate but the DingTalk stand-in, itself a leaf, and the crates below the
/// services test with it alone: their tests build without the services.
#[test]
fn the_test_kit_is_a_leaf_and_pure_crates_test_without_the_services() {
    let root = dingguard_tests::workspace_root();
    let manifest = |path: &str| std::fs::read_to_string(root.join(path)).expect("a manifest");
    let ours = |text: &str| -> Vec<String> {
        text.lines().map(str::trim_start).filter(|l| l.starts_with("dingguard")).map(str::to_owned).collect()
    };
    let kit = ours(&manifest("crates/testkit/Cargo.toml"));
    assert_eq!(kit, ["dingguard-dingtalk-standin.workspace = true"], "the test kit depends on dingguard crates");
    let standin = ours(&manifest("crates/dingtalk-standin/Cargo.toml"));
    assert!(standin.is_empty(), "the DingTalk stand-in depends on dingguard crates: {standin:?}");
    for crate_dir in ["crates/store", "crates/notify"] {
        let text = manifest(&format!("{crate_dir}/Cargo.toml"));
        for service in [
            "dingguard-tests",
            "dingguard-receiver",
            "dingguard-alerter",
            "dingguard-approver",
            "dingguard-console",
            "dingguard ",
            "dingguard.workspace",
        ] {
            assert!(!text.contains(service), "{crate_dir} depends on {service}");
        }
    }
}
