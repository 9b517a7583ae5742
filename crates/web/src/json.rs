//! JSON request bodies and JSON errors. A body that does not parse is refused with where it went wrong, never
//! with what it said: serde's messages quote the input, and an error page that echoes input is a reflection
//! channel.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// The body of every JSON refusal, as the API document describes it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What is wrong, written by us; never an echo of what was sent.
    pub error: String,
}

/// The refusals every authenticated JSON endpoint can give, for the API document: each handler lists its own
/// other answers beside these.
pub struct ApiErrors;

impl utoipa::IntoResponses for ApiErrors {
    fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>> {
        use utoipa::PartialSchema;
        use utoipa::openapi::content::Content;
        use utoipa::openapi::response::ResponseBuilder;
        [
            ("400", "The body is not valid JSON"),
            ("401", "No bearer token, or one that is unknown, expired or revoked"),
            ("403", "The caller may not do this"),
            ("413", "The body is too large"),
            ("415", "The body is not JSON"),
            ("422", "The input does not have the documented fields, types or values"),
            ("503", "A dependency is unavailable; retry later"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", Content::new(Some(ErrorBody::schema())))
                .build();
            (status.to_owned(), response.into())
        })
        .collect()
    }
}

/// An error answer: `{"error": "…"}` with a message written by us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub status: StatusCode,
    pub message: String,
}

impl JsonError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// Why a body did not parse: the kind of problem and its position, no quoted input.
    pub fn unparsable(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let (status, what) = match error.classify() {
            Category::Syntax | Category::Eof => (StatusCode::BAD_REQUEST, "is not valid JSON"),
            Category::Data => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "does not have the fields and types this endpoint documents (a field is missing, unknown or of the wrong type)",
            ),
            Category::Io => (StatusCode::BAD_REQUEST, "could not be read"),
        };
        Self::new(status, format!("The body {what}, at line {} column {}", error.line(), error.column()))
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.message })).into_response()
    }
}

/// Like axum's `Json` extractor, but refusals are [`JsonError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.len() > 5 && mime[..mime.len() - 5].contains('/') && mime.ends_with("+json"))
        })
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = JsonError;

    async fn from_request(request: Request, state: &S) -> Result<Self, JsonError> {
        if !is_json(&request) {
            return Err(JsonError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Send the body as JSON, with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                JsonError::new(StatusCode::PAYLOAD_TOO_LARGE, "The body is too large")
            } else {
                JsonError::new(StatusCode::BAD_REQUEST, "The body could not be read")
            }
        })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| JsonError::unparsable(&e))
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        count: u32,
    }

    async fn send(content_type: &str, body: &'static str) -> (StatusCode, String) {
        let app = Router::new().route("/", post(|ApiJson(b): ApiJson<Body>| async move { b.count.to_string() }));
        let request = axum::http::Request::post("/")
            .header(header::CONTENT_TYPE, content_type)
            .body(axum::body::Body::from(body))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn refusals_are_json_and_never_quote_the_input() {
        assert_eq!(send("application/json", r#"{"count": 3}"#).await, (StatusCode::OK, "3".into()));
        for (body, status) in [
            (r#"{"count": "<script>x</script>"}"#, StatusCode::UNPROCESSABLE_ENTITY),
            (r#"{"count": 1, "<img src=x>": 2}"#, StatusCode::UNPROCESSABLE_ENTITY),
            (r#"{"count": <svg>"#, StatusCode::BAD_REQUEST),
        ] {
            let (got, text) = send("application/json; charset=utf-8", body).await;
            assert_eq!(got, status, "{body}: {text}");
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let message = json["error"].as_str().unwrap();
            assert!(!message.contains('<') && !message.contains("script"), "{message}");
        }
        assert_eq!(send("text/plain", "{}").await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
