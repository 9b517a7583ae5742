//! The JSON API document, generated from the handlers of the services this process runs: each service's routes
//! and its part of the document come from the same registrations, so what is served is what is documented.

use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder};

pub const PATH: &str = "/api/v1/openapi.json";

const DESCRIPTION: &str = "Violation alerts raised by dingguard from DingTalk activity, their lifecycle (open → \
acknowledged → resolved), silences, and dual-approval download requests. Alerts name the articles of Macau's \
Personal Data Protection Act (Law 8/2005) they may implicate; they are signals to review, not findings.\n\n\
Authenticate with a bearer API token (`Authorization: Bearer …`), or on the alert endpoints with the console's \
session cookie `dg_session`, in which case every POST must also carry the session's CSRF token in `X-CSRF-Token`.";

/// One document for the parts this process serves, with dingguard's title and both ways to authenticate.
pub fn document(parts: impl IntoIterator<Item = OpenApi>) -> OpenApi {
    let mut api = OpenApiBuilder::new()
        .info(
            InfoBuilder::new().title("dingguard API").version(env!("CARGO_PKG_VERSION")).description(Some(DESCRIPTION)),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)))
                .security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("dg_session"))))
                .build(),
        ))
        .build();
    for part in parts {
        api.merge(part);
    }
    api
}

/// `GET /api/v1/openapi.json`, open to anyone: it says how to call the API, nothing about what is in it.
pub fn route(api: OpenApi) -> Router {
    let body = api.to_json().unwrap_or_else(|_| "{}".to_owned());
    Router::new().route(
        PATH,
        get(move || {
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    )
}
