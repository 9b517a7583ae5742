//! Who is asking: sessions (cookie), API tokens (bearer), passwords, CSRF, and the headers every console
//! response carries. Secrets are random 256-bit values; the store only ever sees their SHA-256.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, PasswordHash};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dingguard_directory::Role;
use dingguard_store::console::ConsoleSession;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::Shared;
use crate::error::{ConsoleError, PageError};

pub(crate) const SESSION_COOKIE: &str = "dg_session";
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

pub(crate) use dingguard_model::token::{random_token, token_hash};

pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub(crate) fn dummy_hash() -> Result<String, ConsoleError> {
    hash_password("no account has this password")
}

/// An argon2id PHC string for the console's password table.
pub fn hash_password(password: &str) -> Result<String, ConsoleError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| ConsoleError::Internal(e.to_string()))?;
    let hash = Argon2::default().hash_password(password.as_bytes(), &salt);
    hash.map(|h| h.to_string()).map_err(|e| ConsoleError::Internal(e.to_string()))
}

/// Argon2 is deliberately slow and memory-hungry: run it off the async workers, a few at a time, so a burst of
/// sign-ins cannot exhaust memory.
pub(crate) async fn verify_password(shared: &Shared, phc: String, password: String) -> bool {
    let Ok(_slot) = shared.hashing.acquire().await else { return false };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// A signed-in console user, re-checked against the directory on every request, so leaving the company or
/// losing the role ends access at once.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub user_id: String,
    pub name: String,
    pub admin: bool,
    /// Security or admin: may see and act on alerts. Every current member may sign in for approvals.
    pub alerts: bool,
    /// The session's CSRF token; `None` for a bearer token, which no other site can make a browser send.
    pub csrf: Option<String>,
    /// How this person got in: `password`, `sign_in_link` or `api_token`. Decisions record it.
    pub via: String,
    /// The hash of the session id, so a long-lived response (the live feed) can check the session still exists.
    pub session_hash: Option<String>,
}

impl Viewer {
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ConsoleError> {
        match (&self.csrf, presented) {
            (None, _) => Ok(()),
            (Some(expected), Some(presented)) if ct_eq(expected, presented) => Ok(()),
            _ => Err(ConsoleError::Csrf),
        }
    }
}

pub(crate) struct Access {
    pub name: String,
    pub admin: bool,
    pub alerts: bool,
}

/// Current members may sign in: everyone may have a request to decide or to follow. Alerts are for the security
/// and admin roles; the extractors below enforce that.
pub(crate) fn member_access(shared: &Shared, user_id: &str) -> Result<Access, ConsoleError> {
    let directory = shared.directory();
    let Some(user) = directory.user(user_id).filter(|u| u.active) else {
        return Err(ConsoleError::Forbidden(format!("{user_id} is not a current member of the directory")));
    };
    let admin = directory.has_role(user_id, Role::Admin);
    let alerts = admin || directory.has_role(user_id, Role::Security);
    Ok(Access { name: user.name.clone(), admin, alerts })
}

/// Members with the security or admin role: the alert pages and the alerts API.
pub(crate) fn console_access(shared: &Shared, user_id: &str) -> Result<Access, ConsoleError> {
    let access = member_access(shared, user_id)?;
    if !access.alerts {
        return Err(ConsoleError::no_console_role(user_id));
    }
    Ok(access)
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

pub(crate) fn session_id(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE).filter(|v| !v.is_empty())
}

pub(crate) fn session_cookie(shared: &Shared, id: &str) -> String {
    let max_age = shared.settings.session_ttl.as_secs();
    let secure = if shared.settings.secure_cookies { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}")
}

pub(crate) fn clear_cookie(shared: &Shared) -> String {
    let secure = if shared.settings.secure_cookies { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
}

/// How a session was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Password,
    SignInLink,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SignInLink => "sign_in_link",
        }
    }
}

/// Starts a session for a user who just proved who they are; returns the `Set-Cookie` value.
pub(crate) async fn start_session(shared: &Shared, user_id: &str, via: Via) -> Result<String, ConsoleError> {
    let id = random_token();
    let now = shared.clock.now_ms();
    let ttl = i64::try_from(shared.settings.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let session = ConsoleSession {
        user_id: user_id.to_owned(),
        csrf_token: random_token(),
        created_at_ms: now,
        expires_at_ms: now.saturating_add(ttl),
        via: via.as_str().to_owned(),
    };
    shared.store.create_console_session(&token_hash(&id), &session).await?;
    tracing::info!(user = user_id, via = via.as_str(), "console session started");
    Ok(session_cookie(shared, &id))
}

/// The signed-in member behind a request's session cookie, any role.
pub(crate) async fn member_from_session(shared: &Shared, headers: &HeaderMap) -> Result<Viewer, ConsoleError> {
    from_session(shared, headers).await
}

async fn from_session(shared: &Shared, headers: &HeaderMap) -> Result<Viewer, ConsoleError> {
    let id = session_id(headers).ok_or(ConsoleError::Unauthenticated)?;
    let now = shared.clock.now_ms();
    let hash = token_hash(id);
    let session = shared.store.console_session(&hash, now).await?.ok_or(ConsoleError::Unauthenticated)?;
    let access = member_access(shared, &session.user_id)?;
    Ok(Viewer {
        user_id: session.user_id,
        name: access.name,
        admin: access.admin,
        alerts: access.alerts,
        csrf: Some(session.csrf_token),
        via: session.via,
        session_hash: Some(hash),
    })
}

async fn from_bearer(shared: &Shared, value: &HeaderValue) -> Result<Viewer, ConsoleError> {
    let now = shared.clock.now_ms();
    let user = shared.store.bearer_user(value.to_str().ok(), now).await?.ok_or_else(|| {
        tracing::info!("API call with an unknown bearer token");
        ConsoleError::Unauthenticated
    })?;
    let access = member_access(shared, &user)?;
    Ok(Viewer {
        user_id: user,
        name: access.name,
        admin: access.admin,
        alerts: access.alerts,
        csrf: None,
        via: "api_token".to_owned(),
        session_hash: None,
    })
}

fn with_alerts(viewer: Viewer) -> Result<Viewer, ConsoleError> {
    if viewer.alerts { Ok(viewer) } else { Err(ConsoleError::no_console_role(&viewer.user_id)) }
}

/// A visitor of the alert pages: signed in with the session cookie (else sent to the sign-in page) and holding
/// the security or admin role.
pub(crate) struct PageViewer(pub Viewer);

impl FromRequestParts<Arc<Shared>> for PageViewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, PageError> {
        Ok(Self(with_alerts(from_session(shared, &parts.headers).await?)?))
    }
}

/// Any signed-in current member: the approval pages.
pub(crate) struct MemberViewer(pub Viewer);

impl FromRequestParts<Arc<Shared>> for MemberViewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, PageError> {
        Ok(Self(from_session(shared, &parts.headers).await?))
    }
}

/// A caller of the alerts API: a bearer token when one is presented, else the session cookie.
pub(crate) struct ApiViewer(pub Viewer);

impl FromRequestParts<Arc<Shared>> for ApiViewer {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, ConsoleError> {
        let viewer = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => from_bearer(shared, value).await?,
            None => from_session(shared, &parts.headers).await?,
        };
        Ok(Self(with_alerts(viewer)?))
    }
}

/// Refuses state changes a browser reports as coming from another site. The headers every response carries
/// (no caching, no framing, no referrer, the script policy) are `dingguard_web`'s header policy.
pub(crate) async fn guard_requests(request: Request, next: Next) -> Response {
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let cross_site = request.headers().get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site");
    if changes_state && cross_site {
        return if request.uri().path().starts_with("/api/") {
            ConsoleError::CrossSite.into_response()
        } else {
            PageError(ConsoleError::CrossSite).into_response()
        };
    }
    next.run(request).await
}

/// The CSRF token of a form post, whichever field order the browser used.
pub(crate) fn form_csrf(fields: &[(String, String)]) -> Option<&str> {
    fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str())
}

pub(crate) fn header_csrf(headers: &HeaderMap) -> Option<&str> {
    headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok())
}
