//! The page frame and the small helpers every page uses. Pages are maud templates: every value spliced in is
//! escaped by construction, so text from outside (alert messages, event fields, names, reasons) can never become
//! markup, and there is no escaping call to forget. Chosen over askama for that: a template is Rust in the handler's
//! own file, checked by the compiler with the handler's types, with no template directory to keep in step.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use time::macros::{format_description, offset};
use time::{OffsetDateTime, UtcOffset};

use crate::auth::Viewer;

/// The console's audience is in Macau, which keeps one offset all year.
const MACAU: UtcOffset = offset!(+8);

/// Milliseconds since the epoch as Macau local time, `2026-05-01 20:34:56`.
pub(crate) fn time(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(MACAU);
    at.format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")).unwrap_or_default()
}

/// A hidden form field with the session's CSRF token.
pub(crate) fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf.as_deref().unwrap_or_default()); }
}

pub(crate) fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response()
}

pub(crate) fn page(title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                // For API calls from a signed-in page, which must send the token as `X-CSRF-Token`.
                @if let Some(token) = viewer.and_then(|v| v.csrf.as_deref()) {
                    meta name="csrf-token" content=(token);
                }
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · dingguard" }
                link rel="stylesheet" href="/assets/console.css";
            }
            body {
                header {
                    a.brand href="/alerts" { "dingguard" }
                    " "
                    @if let Some(v) = viewer {
                        nav {
                            @if v.alerts {
                                a href="/alerts" { "Alerts" } " "
                                a href="/silences" { "Silences" } " "
                            }
                            a href="/approvals" { "Approvals" }
                        }
                        span.who { "Signed in as " (v.name) ", " (v.user_id) }
                        form.inline method="post" action="/logout" {
                            (csrf_field(v))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A status code and a page; for forms shown again with a message.
pub(crate) fn with_status(status: StatusCode, page: Markup) -> Response {
    (status, page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_escaped_wherever_it_goes() {
        let hostile = r#"<script>x</script>" onmouseover="y"#;
        let body = html! { p title=(hostile) { (hostile) } };
        let rendered = page(hostile, None, body).into_string();
        assert!(!rendered.contains("<script>x"), "{rendered}");
        assert!(!rendered.contains(r#"" onmouseover="y"#), "{rendered}");
        assert!(rendered.contains("&lt;script&gt;x&lt;/script&gt;&quot; onmouseover=&quot;y"), "{rendered}");
    }

    #[test]
    fn times_are_macau_local() {
        assert_eq!(time(0), "1970-01-01 08:00:00");
        assert_eq!(time(1_769_788_800_000), "2026-01-31 00:00:00");
    }
}
