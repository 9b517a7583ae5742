//! A browser-like client for the console and approval pages: keeps the session and device cookies, reads the
//! CSRF token off pages, follows no redirects by itself.

use anyhow::{Context, Result};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub retry_after: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone)]
pub struct Browser {
    base: String,
    http: reqwest::Client,
    pub session: Option<String>,
    pub device: Option<String>,
    pub csrf: Option<String>,
}

fn cookie_value(set_cookie: &str, name: &str) -> Option<String> {
    let rest = set_cookie.strip_prefix(name)?.strip_prefix('=')?;
    Some(rest.split(';').next().unwrap_or_default().to_owned())
}

impl Browser {
    /// A browser with no cookies, on the server at `base` (`http://host:port`).
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { base: base.into(), http, session: None, device: None, csrf: None }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let cookies: Vec<String> = [("dg_session", &self.session), ("dg_device", &self.device)]
            .into_iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={v}")))
            .collect();
        let request = self.http.request(method, self.url(path));
        if cookies.is_empty() { request } else { request.header("cookie", cookies.join("; ")) }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Result<Page> {
        let response = request.send().await?;
        let headers = response.headers().clone();
        for set in headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            if let Some(session) = cookie_value(set, "dg_session") {
                self.session = (!session.is_empty()).then_some(session);
            }
            if let Some(device) = cookie_value(set, "dg_device") {
                self.device = Some(device);
            }
        }
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (location, retry_after) = (text("location"), text("retry-after"));
        Ok(Page { status: response.status().as_u16(), location, retry_after, headers, body: response.text().await? })
    }

    pub async fn get(&mut self, path: &str) -> Result<Page> {
        let request = self.request(reqwest::Method::GET, path);
        self.send(request).await
    }

    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Result<Page> {
        let request = self.request(reqwest::Method::POST, path).form(form);
        self.send(request).await
    }

    /// A JSON post with this session's CSRF token.
    pub async fn post_json(&mut self, path: &str, body: &Value) -> Result<Page> {
        let mut request = self.request(reqwest::Method::POST, path).json(body);
        if let Some(csrf) = &self.csrf {
            request = request.header("x-csrf-token", csrf);
        }
        self.send(request).await
    }

    /// Signs in with a password; on success reads the session's CSRF token off the person's home page.
    pub async fn sign_in(&mut self, user: &str, password: &str) -> Result<Page> {
        let page = self.post_form("/login", &[("user_id", user), ("password", password)]).await?;
        if page.status == 303 {
            let home = page.location.clone().context("no redirect after signing in")?;
            let landing = self.get(&home).await?;
            self.csrf = csrf_in(&landing.body);
        }
        Ok(page)
    }

    /// Signs out with the session's CSRF token.
    pub async fn sign_out(&mut self) -> Result<Page> {
        let csrf = self.csrf.clone().context("not signed in")?;
        self.post_form("/logout", &[("csrf", csrf.as_str())]).await
    }
}

/// The CSRF token of the first form on a page.
pub fn csrf_in(page: &str) -> Option<String> {
    let start = page.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
    Some(page[start..].split('"').next()?.to_owned())
}
