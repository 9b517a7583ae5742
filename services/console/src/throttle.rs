//! Sign-in throttling that guessers cannot turn against the people they guess at.
//!
//! Failed sign-ins slow down what they came from, progressively (each failure past a free allowance doubles the
//! wait before the next attempt, up to a cap), on three counts at once: the user id tried, the client address
//! it came from, and everything together (a global budget, so guesses spread over every id and every address are
//! still slowed). None of them locks anyone out for good, and none applies to a browser that signed that user in
//! before: it carries a device cookie, and its attempts count only against that device. So a stranger who
//! hammers someone's id slows down strangers, not the person at their own desk ("device cookies", OWASP's
//! answer to account lock-out).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::http::HeaderMap;
use dingguard_store::StoreError;
use dingguard_store::console::FailureScope;

use crate::auth::{random_token, token_hash};
use crate::{Shared, ms};

pub(crate) const DEVICE_COOKIE: &str = "dg_device";

/// How much each count allows before it slows attempts down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failures against one user id (from browsers that never signed that user in) before waits begin.
    pub free_per_user: i64,
    /// Failures from one client address, whatever ids it tries.
    pub free_per_client: i64,
    /// Failures from one remembered browser.
    pub free_per_device: i64,
    /// Failures everywhere within `global_window` before every unremembered browser waits.
    pub global_budget: i64,
    pub global_window: Duration,
    /// The first wait; each further failure doubles it.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long a failure is remembered.
    pub window: Duration,
    /// How long a browser is remembered after it signed someone in.
    pub device_ttl: Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            free_per_user: 5,
            free_per_client: 20,
            free_per_device: 10,
            global_budget: 500,
            global_window: Duration::from_secs(60),
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(15 * 60),
            window: Duration::from_secs(60 * 60),
            device_ttl: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// Where an attempt came from.
pub(crate) struct Attempt {
    pub user_id: String,
    pub client: String,
    /// The hash of a device cookie that signed this same user in before.
    pub device: Option<String>,
}

const GLOBAL: &str = "all";

/// The client's address: the peer, or, behind one of the configured proxies, the last address the proxies
/// did not add themselves.
pub(crate) fn client_address(shared: &Shared, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    let Some(peer) = peer.map(|p| p.ip()) else { return "unknown".into() };
    if !shared.settings.trusted_proxies.contains(&peer) {
        return peer.to_string();
    }
    let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    let hops = forwarded.iter().flat_map(|v| v.split(',')).map(str::trim).rev();
    let client =
        hops.filter_map(|hop| hop.parse::<IpAddr>().ok()).find(|ip| !shared.settings.trusted_proxies.contains(ip));
    client.unwrap_or(peer).to_string()
}

impl Attempt {
    /// The device cookie counts only when it signed this very user in before and is still remembered.
    pub(crate) async fn new(
        shared: &Shared,
        user_id: &str,
        client: String,
        cookie: Option<&str>,
    ) -> Result<Self, StoreError> {
        let mut device = None;
        if let Some(token) = cookie.filter(|t| (20..=128).contains(&t.len())) {
            let hash = token_hash(token);
            let owner = shared.store.console_device_user(&hash, shared.clock.now_ms()).await?;
            if owner.as_deref() == Some(user_id) {
                device = Some(hash);
            }
        }
        Ok(Self { user_id: user_id.to_owned(), client, device })
    }

    fn counts(&self) -> Vec<(FailureScope, &str)> {
        match &self.device {
            Some(device) => vec![(FailureScope::Device, device.as_str())],
            None => vec![
                (FailureScope::User, self.user_id.as_str()),
                (FailureScope::Client, self.client.as_str()),
                (FailureScope::Global, GLOBAL),
            ],
        }
    }
}

fn wait_after(failures: i64, free: i64, throttle: &LoginThrottle) -> Option<i64> {
    if failures < free {
        return None;
    }
    let doublings = u32::try_from(failures - free).unwrap_or(u32::MAX).min(30);
    Some(ms(throttle.base_delay).saturating_mul(1 << doublings).min(ms(throttle.max_delay)))
}

/// How long the attempt must wait before it may be checked, in milliseconds; `None` when it may go now.
pub(crate) async fn wait_for(shared: &Shared, attempt: &Attempt) -> Result<Option<i64>, StoreError> {
    let throttle = &shared.settings.login_throttle;
    let now = shared.clock.now_ms();
    let mut longest = None;
    for (scope, subject) in attempt.counts() {
        let (free, window) = match scope {
            FailureScope::User => (throttle.free_per_user, throttle.window),
            FailureScope::Client => (throttle.free_per_client, throttle.window),
            FailureScope::Device => (throttle.free_per_device, throttle.window),
            FailureScope::Global => (throttle.global_budget, throttle.global_window),
        };
        let failures = shared.store.login_failures(scope, subject, now - ms(window)).await?;
        let Some(delay) = wait_after(failures.count, free, throttle) else { continue };
        let wait = failures.latest_at_ms.unwrap_or(now).saturating_add(delay) - now;
        if wait > 0 && longest.is_none_or(|l| wait > l) {
            longest = Some(wait);
        }
    }
    Ok(longest)
}

pub(crate) async fn failed(shared: &Shared, attempt: &Attempt) -> Result<(), StoreError> {
    let now = shared.clock.now_ms();
    let forget = now - ms(shared.settings.login_throttle.window);
    shared.store.record_login_failure(&attempt.counts(), now, forget).await
}

/// After a sign-in: the counts it came through start afresh (never the client's, or one good account would
/// launder an address's guesses), and the browser is remembered for this user. Returns the device cookie.
pub(crate) async fn succeeded(shared: &Shared, attempt: &Attempt) -> Result<String, StoreError> {
    match &attempt.device {
        Some(device) => shared.store.clear_login_failures(FailureScope::Device, device).await?,
        None => shared.store.clear_login_failures(FailureScope::User, &attempt.user_id).await?,
    }
    let token = random_token();
    let now = shared.clock.now_ms();
    let ttl = ms(shared.settings.login_throttle.device_ttl);
    shared.store.create_console_device(&token_hash(&token), &attempt.user_id, now, now.saturating_add(ttl)).await?;
    let secure = if shared.settings.secure_cookies { "; Secure" } else { "" };
    Ok(format!("{DEVICE_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/login; Max-Age={}{secure}", ttl / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_past_the_allowance_and_stop_at_the_cap() {
        let t = LoginThrottle {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            ..Default::default()
        };
        assert_eq!(wait_after(4, 5, &t), None);
        assert_eq!(wait_after(5, 5, &t), Some(2_000));
        assert_eq!(wait_after(7, 5, &t), Some(8_000));
        assert_eq!(wait_after(50, 5, &t), Some(60_000));
        assert_eq!(wait_after(i64::MAX, 0, &t), Some(60_000));
    }
}
