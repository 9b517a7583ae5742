//! The headers every response carries, pages and API alike: no content sniffing, no framing, no referrer (a
//! sign-in or decision link carries its token in the URL), a script policy that admits only our own files, and
//! no caching unless a handler says otherwise (static assets do).

use std::task::{Context, Poll};

use axum::http::{HeaderValue, Request, Response, header};
use futures_util::TryFutureExt;
use futures_util::future::MapOk;
use tower::{Layer, Service};

/// No inline script or style anywhere, so markup that slipped through escaping still cannot run.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Applies [`HeaderPolicy`] to a router: `router.layer(HeaderPolicyLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderPolicyLayer;

impl<S> Layer<S> for HeaderPolicyLayer {
    type Service = HeaderPolicy<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HeaderPolicy { inner }
    }
}

/// A plain function pointer keeps the future unboxed: this runs for every callback on the hot path.
type Apply<B> = fn(Response<B>) -> Response<B>;

#[derive(Debug, Clone)]
pub struct HeaderPolicy<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HeaderPolicy<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = MapOk<S::Future, Apply<ResBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        self.inner.call(request).map_ok(apply::<ResBody> as Apply<ResBody>)
    }
}

fn apply<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn every_response_carries_the_policy_and_a_handler_may_allow_caching() {
        let app = Router::new()
            .route("/data", get(|| async { "secret" }))
            .route("/asset", get(|| async { ([(header::CACHE_CONTROL, "public, max-age=300")], "css") }))
            .layer(HeaderPolicyLayer);
        let get = |path: &str| Request::get(path).body(axum::body::Body::empty()).unwrap();
        let data = app.clone().oneshot(get("/data")).await.unwrap();
        assert_eq!(data.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(data.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(data.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("frame-ancestors 'none'"));
        let missing = app.clone().oneshot(get("/nowhere")).await.unwrap();
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.headers()[header::REFERRER_POLICY], "no-referrer");
        let asset = app.oneshot(get("/asset")).await.unwrap();
        assert_eq!(asset.headers()[header::CACHE_CONTROL], "public, max-age=300");
    }
}
