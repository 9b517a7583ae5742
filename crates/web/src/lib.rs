//! HTTP serving that every dingguard listener shares, so each one has the same limits and the same answers:
//! a connection cap, header-read (and idle) and request timeouts ([`serve`]), one header policy for every
//! response ([`HeaderPolicyLayer`]), and JSON bodies whose errors never echo what the caller sent ([`ApiJson`]).

mod headers;
mod json;
mod serve;

pub use headers::{CSP, HeaderPolicy, HeaderPolicyLayer};
pub use json::{ApiErrors, ApiJson, ErrorBody, JsonError};
pub use serve::{HttpLimits, HttpMetrics, ListenerMetrics, serve};
