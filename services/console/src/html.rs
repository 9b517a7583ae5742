//! The page frame and the small helpers every page uses. Everything that came from outside (alert text, event
//! fields, user names) goes through [`esc`].

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use time::macros::{format_description, offset};
use time::{OffsetDateTime, UtcOffset};

use crate::auth::Viewer;

/// The console's audience is in Macau, which keeps one offset all year.
const MACAU: UtcOffset = offset!(+8);

pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds since the epoch as Macau local time, `2026-05-01 20:34:56`.
pub(crate) fn time(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(MACAU);
    at.format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")).unwrap_or_default()
}

/// A hidden form field with the session's CSRF token.
pub(crate) fn csrf_field(viewer: &Viewer) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(viewer.csrf.as_deref().unwrap_or_default()))
}

pub(crate) fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response()
}

pub(crate) fn page(title: &str, viewer: Option<&Viewer>, body: &str) -> Html<String> {
    let who = viewer.map_or_else(String::new, |v| {
        format!(
            r#"<nav>{}<a href="/approvals">Approvals</a></nav>
<span class="who">Signed in as {}, {}</span>
<form class="inline" method="post" action="/logout">{}<button type="submit">Sign out</button></form>"#,
            if v.alerts { r#"<a href="/alerts">Alerts</a> <a href="/silences">Silences</a> "# } else { "" },
            esc(&v.name),
            esc(&v.user_id),
            csrf_field(v)
        )
    });
    // For API calls from a signed-in page, which must send the token as `X-CSRF-Token`.
    let csrf_meta = viewer
        .and_then(|v| v.csrf.as_deref())
        .map_or_else(String::new, |token| format!(r#"<meta name="csrf-token" content="{}">"#, esc(token)));
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
{csrf_meta}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · dingguard</title>
<link rel="stylesheet" href="/assets/console.css">
</head>
<body>
<header><a class="brand" href="/alerts">dingguard</a> {who}</header>
<main>
{body}
</main>
</body>
</html>
"#,
        esc(title)
    ))
}

/// A status code and a page; for forms shown again with a message.
pub(crate) fn with_status(status: StatusCode, page: Html<String>) -> Response {
    (status, page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn times_are_macau_local() {
        assert_eq!(time(0), "1970-01-01 08:00:00");
        assert_eq!(time(1_769_788_800_000), "2026-01-31 00:00:00");
    }
}
