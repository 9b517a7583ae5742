//! The directory from DingTalk's address book. A sync walks the departments from the root, pages through each
//! department's people (heads are the people DingTalk marks `leader` there), reads the administrators and the
//! leavers with when they left, and writes what changed since the last sync as events of ours
//! (`directory_user`, `directory_department`) to the log, where the alerter and the approver apply them as of
//! their time, as they apply DingTalk's own address-book events. Between syncs it follows those events: a
//! department or person an event names is read again at once, so a new head is known within a second. A new
//! administrator found by a sync is written as DingTalk's own `org_admin_add`, which the pack alerts on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dingguard_dingtalk::address_book::{
    ADMINS_PATH, Admin, Answer, DEPARTMENT_PATH, DepartmentDetail, LEAVER_IDS_PATH, LEAVERS_PATH, LIST_SUB_PATH,
    Leaver, LeaverIds, MAX_LEAVER_PAGE, MAX_USER_PAGE, ROOT_DEPARTMENT, SubDepartment, SyncedDepartment, SyncedUser,
    USER_LIST_PATH, USER_PATH, UserPage,
};
use dingguard_dingtalk::{digest_id, fields};
use dingguard_dingtalk_api::DingTalkApi;
use dingguard_eventlog::EventLog;
use dingguard_model::{AppName, Clock, Origin};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::SourceError;
use crate::write::{Sink, repeat};

/// The most departments a sync walks: a tree that never ends waits for the operator, not for ever.
pub const MAX_DEPARTMENTS: usize = 20_000;
/// The most people a sync reads.
pub const MAX_USERS: usize = 500_000;
/// The most departments or people one address-book event has read again; DingTalk's name a handful.
pub const MAX_REFRESH_IDS: usize = 20;

#[derive(Debug, Clone)]
pub struct DirectorySettings {
    pub app: AppName,
    pub topic: String,
    pub corp_id: Option<String>,
    pub every: Duration,
    /// The least time between two calls.
    pub min_interval: Duration,
    /// Where the last sync's findings are kept, so a restart writes only what changed.
    pub state: PathBuf,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub calls: usize,
    pub departments: usize,
    pub users: usize,
    pub leavers: usize,
    pub admins: usize,
    /// Records written for what changed.
    pub written: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Snapshot {
    departments: BTreeMap<String, SyncedDepartment>,
    users: BTreeMap<String, SyncedUser>,
    admins: BTreeSet<String>,
}

pub struct DirectorySync {
    api: Arc<DingTalkApi>,
    log: EventLog,
    clock: Arc<dyn Clock>,
    settings: DirectorySettings,
    pace: Mutex<Option<Instant>>,
    turn: Mutex<()>,
}

impl DirectorySync {
    pub fn new(api: Arc<DingTalkApi>, log: EventLog, clock: Arc<dyn Clock>, settings: DirectorySettings) -> Self {
        Self { api, log, clock, settings, pace: Mutex::new(None), turn: Mutex::new(()) }
    }

    /// One call, no sooner than `min_interval` after the last.
    async fn call<T: serde::de::DeserializeOwned>(&self, path: &str, body: Value) -> Result<T, SourceError> {
        {
            let mut last = self.pace.lock().await;
            if let Some(at) = *last {
                tokio::time::sleep_until(at + self.settings.min_interval).await;
            }
            *last = Some(Instant::now());
        }
        Ok(self.api.oapi(Method::POST, path, &[], Some(&body)).await?)
    }

    /// Reads the whole address book and writes what changed since the last sync.
    pub async fn sync(&self, shutdown: &CancellationToken) -> Result<SyncReport, SourceError> {
        // A refresh waits for a sync under way, so what it read after a change is written after what the sync
        // read before it.
        let _turn = self.turn.lock().await;
        let mut report = SyncReport::default();
        let mut found = Snapshot::default();
        // Departments, breadth first from the root, so a parent is written before its children.
        let root: Answer<DepartmentDetail> = self.call(DEPARTMENT_PATH, json!({"dept_id": ROOT_DEPARTMENT})).await?;
        report.calls += 1;
        let mut order = vec![ROOT_DEPARTMENT];
        found.departments.insert(ROOT_DEPARTMENT.to_string(), department_of(&root.result));
        let mut queue = VecDeque::from([ROOT_DEPARTMENT]);
        while let Some(parent) = queue.pop_front() {
            let children: Answer<Vec<SubDepartment>> = self.call(LIST_SUB_PATH, json!({"dept_id": parent})).await?;
            report.calls += 1;
            for child in children.result {
                let id = child.dept_id.to_string();
                if found.departments.contains_key(&id) || found.departments.len() >= MAX_DEPARTMENTS {
                    continue;
                }
                let parent = child.parent_id.unwrap_or(parent).to_string();
                let dept = SyncedDepartment {
                    id: id.clone(),
                    name: child.name,
                    parent: Some(parent),
                    head: None,
                    removed: false,
                };
                found.departments.insert(id, dept);
                order.push(child.dept_id);
                queue.push_back(child.dept_id);
            }
        }
        // People, department by department, in pages.
        for dept in &order {
            let mut cursor = 0i64;
            loop {
                let page: Answer<UserPage> = self
                    .call(USER_LIST_PATH, json!({"dept_id": dept, "cursor": cursor, "size": MAX_USER_PAGE}))
                    .await?;
                report.calls += 1;
                for person in page.result.list {
                    if person.leader
                        && let Some(d) = found.departments.get_mut(&dept.to_string())
                        && d.head.as_ref().is_none_or(|h| person.userid < *h)
                    {
                        d.head = Some(person.userid.clone());
                    }
                    if found.users.len() < MAX_USERS || found.users.contains_key(&person.userid) {
                        found.users.entry(person.userid.clone()).or_insert_with(|| person.into());
                    }
                }
                match page.result.next_cursor {
                    Some(next) if page.result.has_more && next > cursor => cursor = next,
                    _ => break,
                }
            }
        }
        let admins: Answer<Vec<Admin>> = self.call(ADMINS_PATH, json!({})).await?;
        report.calls += 1;
        for admin in admins.result {
            if let Some(user) = found.users.get_mut(&admin.userid) {
                user.org_admin = true;
            }
            found.admins.insert(admin.userid);
        }
        let last = self.load_state()?;
        self.leavers(&mut found, last.as_ref(), &mut report).await?;
        report.departments = found.departments.len();
        report.users = found.users.values().filter(|u| u.left_at_ms.is_none()).count();
        report.admins = found.admins.len();
        report.written = self.write_changes(&order, &found, last.as_ref(), shutdown).await?;
        self.save_state(&found)?;
        Ok(report)
    }

    /// The leavers' list, with when each left; a leaver the sync knew keeps their last facts.
    async fn leavers(
        &self,
        found: &mut Snapshot,
        last: Option<&Snapshot>,
        report: &mut SyncReport,
    ) -> Result<(), SourceError> {
        let mut ids = Vec::new();
        let mut offset = 0i64;
        loop {
            let page: Answer<LeaverIds> =
                self.call(LEAVER_IDS_PATH, json!({"offset": offset, "size": MAX_LEAVER_PAGE})).await?;
            report.calls += 1;
            ids.extend(page.result.data_list);
            match page.result.next_cursor {
                Some(next) if next > offset && ids.len() < MAX_USERS => offset = next,
                _ => break,
            }
        }
        for chunk in ids.chunks(MAX_LEAVER_PAGE) {
            let gone: Answer<Vec<Leaver>> = self.call(LEAVERS_PATH, json!({"userid_list": chunk.join(",")})).await?;
            report.calls += 1;
            for leaver in gone.result {
                let known = last.and_then(|l| l.users.get(&leaver.userid)).cloned();
                let kept = known.as_ref().and_then(|k| k.left_at_ms);
                let mut user = known.unwrap_or_else(|| SyncedUser::known_only_by(&leaver.userid));
                // The last working day is worked: gone from the end of it. Without one, from when a sync first
                // saw them gone, kept from then on.
                let now = self.clock.now_ms();
                let left = leaver.last_work_day.map(|d| d.saturating_add(86_400_000).min(now));
                user.left_at_ms = Some(left.or(kept).unwrap_or(now));
                found.users.entry(leaver.userid).or_insert(user);
                report.leavers += 1;
            }
        }
        Ok(())
    }

    /// Writes a record for each department and person that differs from the last sync (every one after a first
    /// start), and DingTalk's `org_admin_add` for each administrator the last sync did not list.
    async fn write_changes(
        &self,
        order: &[i64],
        found: &Snapshot,
        last: Option<&Snapshot>,
        shutdown: &CancellationToken,
    ) -> Result<usize, SourceError> {
        let now = self.clock.now_ms();
        let corp = self.settings.corp_id.as_deref();
        let mut written = 0;
        for id in order.iter().map(i64::to_string) {
            let Some(dept) = found.departments.get(&id) else { continue };
            if last.and_then(|l| l.departments.get(&id)) != Some(dept) {
                written += self
                    .write_found(["dept", &id, &format!("{dept:?}")], now, shutdown, |e| dept.event(corp, now, e))
                    .await?;
            }
        }
        // Departments the address book no longer has.
        let gone = last.iter().flat_map(|l| &l.departments).filter(|(id, _)| !found.departments.contains_key(*id));
        for (id, dept) in gone {
            let removed = SyncedDepartment { removed: true, ..dept.clone() };
            written +=
                self.write_found(["dept-removed", id, ""], now, shutdown, |e| removed.event(corp, now, e)).await?;
        }
        for (id, user) in &found.users {
            if last.and_then(|l| l.users.get(id)) != Some(user) {
                written += self
                    .write_found(["user", id, &format!("{user:?}")], now, shutdown, |e| user.event(corp, now, e))
                    .await?;
            }
        }
        if let Some(last) = last {
            for admin in found.admins.difference(&last.admins) {
                let event = |event_id: &str| {
                    let event = json!({"EventType": "org_admin_add", "EventTime": now, "CorpId": corp,
                        "eventId": event_id, "userId": [admin]});
                    serde_json::to_vec(&event).unwrap_or_default()
                };
                written += self.write_found(["admin", admin, ""], now, shutdown, event).await?;
            }
        }
        Ok(written)
    }

    /// Writes one finding, dated `at_ms`, under an id made from what was found and when: a finding written again
    /// (a retried write) is one record. 1 when the log took it as new.
    async fn write_found(
        &self,
        [kind, id, facts]: [&str; 3],
        at_ms: i64,
        shutdown: &CancellationToken,
        event: impl FnOnce(&str) -> Vec<u8>,
    ) -> Result<usize, SourceError> {
        let event_id = digest_id("dir_", &[kind, id, facts, &at_ms.to_string()]);
        let sink = Sink { log: &self.log, topic: &self.settings.topic, app: &self.settings.app };
        Ok(usize::from(sink.write(event(&event_id), at_ms, Origin::Directory, shutdown).await?))
    }

    fn load_state(&self) -> Result<Option<Snapshot>, SourceError> {
        crate::state_file::read(&self.settings.state)
    }

    fn save_state(&self, snapshot: &Snapshot) -> Result<(), SourceError> {
        crate::state_file::replace(&self.settings.state, &serde_json::to_vec(snapshot).unwrap_or_default())
    }

    /// Reads again, at once, the departments and people an address-book event names, and writes what DingTalk
    /// says of them now, dated when the event happened.
    pub async fn refresh(
        &self,
        event_type: &str,
        event: &Value,
        at_ms: i64,
        shutdown: &CancellationToken,
    ) -> Result<usize, SourceError> {
        let _turn = self.turn.lock().await;
        // What DingTalk says now holds from now at the latest: an event dated ahead does not date it ahead.
        let at_ms = at_ms.min(self.clock.now_ms());
        let corp = self.settings.corp_id.as_deref();
        let mut written = 0;
        let ids = |field: dingguard_dingtalk::Field| -> Vec<String> {
            field.spellings().iter().find_map(|k| event.get(*k)).map_or_else(Vec::new, |v| match v {
                Value::Array(items) => {
                    let mut ids: Vec<String> = items.iter().filter_map(scalar).collect();
                    ids.sort();
                    ids.dedup();
                    ids.truncate(MAX_REFRESH_IDS);
                    ids
                }
                other => scalar(other).into_iter().collect(),
            })
        };
        if event_type.starts_with("org_dept_") && event_type != "org_dept_remove" {
            for id in ids(fields::DEPT_ID) {
                let Ok(dept_id) = id.parse::<i64>() else { continue };
                let detail: Answer<DepartmentDetail> = self.call(DEPARTMENT_PATH, json!({"dept_id": dept_id})).await?;
                let dept = department_of(&detail.result);
                let facts = format!("{dept:?}");
                written += self
                    .write_found(["dept", &dept.id, &facts], at_ms, shutdown, |e| dept.event(corp, at_ms, e))
                    .await?;
            }
        }
        if matches!(event_type, "user_add_org" | "user_modify_org") {
            for id in ids(fields::USER_ID) {
                let person: Answer<dingguard_dingtalk::address_book::AddressBookUser> =
                    self.call(USER_PATH, json!({"userid": id})).await?;
                let user = SyncedUser::from(person.result);
                let facts = format!("{user:?}");
                written += self
                    .write_found(["user", &user.id, &facts], at_ms, shutdown, |e| user.event(corp, at_ms, e))
                    .await?;
            }
        }
        Ok(written)
    }

    /// Follows the address-book events in the log, refreshing what each names.
    async fn follow(&self, shutdown: &CancellationToken) -> Result<(), SourceError> {
        let mut consumer = self.log.consumer("dingguard-directory-source", &[&self.settings.topic]).await?;
        while !shutdown.is_cancelled() {
            let records = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                polled = consumer.poll(256, Duration::from_millis(500)) => polled?,
            };
            for record in &records {
                let Some(kind) = record.header(dingguard_model::header::TYPE).and_then(|t| t.strip_prefix("dingtalk."))
                else {
                    continue;
                };
                let follows = kind.starts_with("org_dept_") || matches!(kind, "user_add_org" | "user_modify_org");
                if !follows {
                    continue;
                }
                let Ok(event) = serde_json::from_slice::<Value>(&record.value) else { continue };
                let at = record.time_ms().unwrap_or_else(|| self.clock.now_ms());
                if let Err(error) = self.refresh(kind, &event, at, shutdown).await {
                    tracing::warn!(%error, event_type = kind, "directory not refreshed after an address-book event");
                }
            }
            consumer.commit(&records).await?;
        }
        Ok(())
    }

    /// A sync at once and every `every`, and the address-book events followed between them, until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let syncs = repeat_sync(self, &shutdown);
        let follow = async {
            while !shutdown.is_cancelled() {
                if let Err(error) = self.follow(&shutdown).await {
                    tracing::warn!(%error, "following address-book events stopped; starting again");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        };
        tokio::join!(syncs, follow);
    }
}

async fn repeat_sync(source: &DirectorySync, shutdown: &CancellationToken) {
    repeat("directory", source.settings.every, shutdown, || async {
        let report = source.sync(shutdown).await?;
        tracing::info!(?report, "directory synced from DingTalk");
        Ok(crate::PollReport {
            calls: report.calls,
            items: report.users,
            written: report.written,
            ..Default::default()
        })
    })
    .await;
}

fn department_of(detail: &DepartmentDetail) -> SyncedDepartment {
    SyncedDepartment {
        id: detail.dept_id.to_string(),
        name: detail.name.clone(),
        parent: detail.parent_id.filter(|p| *p != detail.dept_id).map(|p| p.to_string()),
        // The same choice as a sync's among the people marked `leader`: the least id, so the two agree.
        head: detail.dept_manager_userid_list.iter().min().cloned(),
        removed: false,
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.chars().take(64).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
