//! The address book, as DingTalk's legacy address-book API serves it: departments under the root (1) with their
//! heads, people by department in pages of at most 100, administrators, and people who left with the day they
//! left. Every endpoint is a `POST` with `access_token` in the query and a JSON body, answered
//! `{"errcode":0,"result":…}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Fault, Shared, faulted, known, legacy_fault};

#[derive(Debug, Clone, Default)]
pub(crate) struct Book {
    departments: BTreeMap<i64, Dept>,
    users: BTreeMap<String, Person>,
    admins: Vec<(String, i64)>,
    leavers: Vec<(String, i64)>,
}

#[derive(Debug, Clone)]
struct Dept {
    name: String,
    parent: Option<i64>,
    heads: Vec<String>,
}

#[derive(Debug, Clone)]
struct Person {
    name: String,
    departments: Vec<i64>,
    manager: Option<String>,
}

/// What [`crate::StandIn::generate_company`] made, for a test to check a sync against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    pub departments: usize,
    pub users: usize,
    /// Department id → its head.
    pub heads: BTreeMap<i64, String>,
}

impl Book {
    pub(crate) fn add_department(&mut self, id: i64, name: &str, parent: Option<i64>) {
        self.departments.insert(id, Dept { name: name.to_owned(), parent, heads: Vec::new() });
    }

    pub(crate) fn set_heads(&mut self, id: i64, heads: &[&str]) {
        if let Some(dept) = self.departments.get_mut(&id) {
            dept.heads = heads.iter().map(|h| (*h).to_owned()).collect();
        }
    }

    pub(crate) fn add_user(&mut self, id: &str, name: &str, departments: &[i64], manager: Option<&str>) {
        let person =
            Person { name: name.to_owned(), departments: departments.to_vec(), manager: manager.map(str::to_owned) };
        self.users.insert(id.to_owned(), person);
    }

    pub(crate) fn set_admins(&mut self, admins: &[(&str, i64)]) {
        self.admins = admins.iter().map(|(id, level)| ((*id).to_owned(), *level)).collect();
    }

    /// The person leaves the address book and joins the leavers' list, as DingTalk moves them.
    pub(crate) fn leave(&mut self, id: &str, at_ms: i64) {
        self.users.remove(id);
        for dept in self.departments.values_mut() {
            dept.heads.retain(|h| h != id);
        }
        self.leavers.push((id.to_owned(), at_ms));
    }

    /// `departments` departments in a tree under the root, `users` people spread over them, each department
    /// headed by its first person and each person managed by their department's head.
    pub(crate) fn generate(&mut self, departments: usize, users: usize) -> Company {
        self.add_department(1, "Company", None);
        let mut heads = BTreeMap::new();
        for n in 0..departments {
            let id = 100 + n as i64;
            // The first ten under the root, the rest under one of those before them: a tree three or four deep.
            let parent = if n < 10 { 1 } else { 100 + (n as i64 - 10) / 3 };
            self.add_department(id, &format!("Department {n:03}"), Some(parent));
        }
        for n in 0..users {
            let dept = 100 + (n % departments.max(1)) as i64;
            let id = format!("user{n:05}");
            let head = heads.entry(dept).or_insert_with(|| id.clone()).clone();
            let manager = (head != id).then_some(head.as_str());
            self.add_user(&id, &format!("Person {n}"), &[dept], manager);
            if head == id {
                self.set_heads(dept, &[id.as_str()]);
            }
        }
        Company { departments: departments + 1, users, heads }
    }
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    access_token: Option<String>,
}

/// The fault or refusal due before an answer, if any.
async fn gate(tenant: &Shared, path: &str, token: Option<&str>) -> Option<Response> {
    if let Some(response) = faulted(tenant, path, true).await {
        return Some(response);
    }
    if !known(tenant, token) {
        return legacy_fault(&Fault::RejectToken);
    }
    None
}

fn ok(result: Value) -> Response {
    Json(json!({"errcode": 0, "errmsg": "ok", "result": result})).into_response()
}

fn refuse(code: i64, message: &str) -> Response {
    Json(json!({"errcode": code, "errmsg": message})).into_response()
}

fn number(body: &Value, key: &str) -> Option<i64> {
    match body.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub(crate) async fn list_sub(State(tenant): State<Shared>, Query(q): Query<TokenQuery>, body: Json<Value>) -> Response {
    if let Some(refused) = gate(&tenant, paths::LIST_SUB, q.access_token.as_deref()).await {
        return refused;
    }
    let Some(parent) = number(&body, "dept_id") else { return refuse(40035, "dept_id is required") };
    let tenant = tenant.lock();
    let book = &tenant.contacts;
    if !book.departments.contains_key(&parent) {
        return refuse(60003, "department not found");
    }
    let children: Vec<Value> = book
        .departments
        .iter()
        .filter(|(_, d)| d.parent == Some(parent))
        .map(|(id, d)| json!({"dept_id": id, "name": d.name, "parent_id": parent}))
        .collect();
    ok(Value::Array(children))
}

pub(crate) async fn department(
    State(tenant): State<Shared>,
    Query(q): Query<TokenQuery>,
    body: Json<Value>,
) -> Response {
    if let Some(refused) = gate(&tenant, paths::DEPARTMENT, q.access_token.as_deref()).await {
        return refused;
    }
    let Some(id) = number(&body, "dept_id") else { return refuse(40035, "dept_id is required") };
    let tenant = tenant.lock();
    match tenant.contacts.departments.get(&id) {
        Some(d) => ok(json!({"dept_id": id, "name": d.name, "parent_id": d.parent,
            "dept_manager_userid_list": d.heads})),
        None => refuse(60003, "department not found"),
    }
}

pub(crate) async fn user_list(
    State(tenant): State<Shared>,
    Query(q): Query<TokenQuery>,
    body: Json<Value>,
) -> Response {
    if let Some(refused) = gate(&tenant, paths::USER_LIST, q.access_token.as_deref()).await {
        return refused;
    }
    let Some(dept) = number(&body, "dept_id") else { return refuse(40035, "dept_id is required") };
    let size = number(&body, "size").unwrap_or(0);
    if !(1..=100).contains(&size) {
        return refuse(40035, "size must be between 1 and 100");
    }
    let cursor = usize::try_from(number(&body, "cursor").unwrap_or(0)).unwrap_or(0);
    let tenant = tenant.lock();
    let book = &tenant.contacts;
    let Some(department) = book.departments.get(&dept) else { return refuse(60003, "department not found") };
    let members: Vec<(&String, &Person)> = book.users.iter().filter(|(_, p)| p.departments.contains(&dept)).collect();
    let size = size as usize;
    let page: Vec<Value> = members
        .iter()
        .skip(cursor)
        .take(size)
        .map(|(id, p)| {
            json!({"userid": id, "name": p.name, "dept_id_list": p.departments, "manager_userid": p.manager,
                "leader": department.heads.contains(id)})
        })
        .collect();
    let next = cursor + page.len();
    let has_more = next < members.len();
    ok(json!({"has_more": has_more, "next_cursor": if has_more { Some(next) } else { None }, "list": page}))
}

pub(crate) async fn user(State(tenant): State<Shared>, Query(q): Query<TokenQuery>, body: Json<Value>) -> Response {
    if let Some(refused) = gate(&tenant, paths::USER, q.access_token.as_deref()).await {
        return refused;
    }
    let Some(id) = body.get("userid").and_then(Value::as_str) else { return refuse(40035, "userid is required") };
    let tenant = tenant.lock();
    match tenant.contacts.users.get(id) {
        Some(p) => ok(json!({"userid": id, "name": p.name, "dept_id_list": p.departments,
            "manager_userid": p.manager})),
        None => refuse(60121, "user not found"),
    }
}

pub(crate) async fn admins(State(tenant): State<Shared>, Query(q): Query<TokenQuery>) -> Response {
    if let Some(refused) = gate(&tenant, paths::ADMINS, q.access_token.as_deref()).await {
        return refused;
    }
    let tenant = tenant.lock();
    let list: Vec<Value> =
        tenant.contacts.admins.iter().map(|(id, level)| json!({"userid": id, "sys_level": level})).collect();
    ok(Value::Array(list))
}

pub(crate) async fn leaver_ids(
    State(tenant): State<Shared>,
    Query(q): Query<TokenQuery>,
    body: Json<Value>,
) -> Response {
    if let Some(refused) = gate(&tenant, paths::LEAVER_IDS, q.access_token.as_deref()).await {
        return refused;
    }
    let offset = usize::try_from(number(&body, "offset").unwrap_or(0)).unwrap_or(0);
    let size = number(&body, "size").unwrap_or(0);
    if !(1..=50).contains(&size) {
        return refuse(40035, "size must be between 1 and 50");
    }
    let tenant = tenant.lock();
    let all = &tenant.contacts.leavers;
    let page: Vec<&String> = all.iter().skip(offset).take(size as usize).map(|(id, _)| id).collect();
    let next = offset + page.len();
    ok(json!({"data_list": page, "next_cursor": if next < all.len() { Some(next) } else { None }}))
}

pub(crate) async fn leavers(State(tenant): State<Shared>, Query(q): Query<TokenQuery>, body: Json<Value>) -> Response {
    if let Some(refused) = gate(&tenant, paths::LEAVERS, q.access_token.as_deref()).await {
        return refused;
    }
    // DingTalk takes the ids as one comma-separated string, at most 50.
    let ids: Vec<&str> = body.get("userid_list").and_then(Value::as_str).unwrap_or_default().split(',').collect();
    if ids.len() > 50 {
        return refuse(40035, "at most 50 ids");
    }
    let tenant = tenant.lock();
    let list: Vec<Value> = tenant
        .contacts
        .leavers
        .iter()
        .filter(|(id, _)| ids.contains(&id.as_str()))
        .map(|(id, at)| json!({"userid": id, "last_work_day": at}))
        .collect();
    ok(Value::Array(list))
}

/// The paths DingTalk documents for them.
pub(crate) mod paths {
    pub const LIST_SUB: &str = "/topapi/v2/department/listsub";
    pub const DEPARTMENT: &str = "/topapi/v2/department/get";
    pub const USER_LIST: &str = "/topapi/v2/user/list";
    pub const USER: &str = "/topapi/v2/user/get";
    pub const ADMINS: &str = "/topapi/user/listadmin";
    pub const LEAVER_IDS: &str = "/topapi/smartwork/hrm/employee/querydimission";
    pub const LEAVERS: &str = "/topapi/smartwork/hrm/employee/listdimission";
}
