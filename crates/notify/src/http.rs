//! The shared HTTP client set-up and the `{errcode, errmsg}` reply every DingTalk `oapi` endpoint gives.

use std::sync::Once;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::NotifyError;

/// Connecting should take a fraction of a request's budget; a host that does not accept within this is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Installs rustls' ring provider as the process default. reqwest is built without a provider of its own, so
/// this must run before the first client is built; every notifier constructor calls it, and calling it again,
/// or after another part of the process installed a provider, is harmless.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error only means a provider is installed already, which is all that is needed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .build()
        .map_err(|e| NotifyError::InvalidConfig(format!("HTTP client: {}", e.without_url())))
}

/// `base` plus `path`, checked once at start-up so a typo fails there and not on the first alert.
pub(crate) fn endpoint(base: &str, path: &str) -> Result<Url, NotifyError> {
    parse_url(&format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/')))
}

pub(crate) fn parse_url(raw: &str) -> Result<Url, NotifyError> {
    let url = Url::parse(raw).map_err(|e| NotifyError::InvalidConfig(format!("URL `{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NotifyError::InvalidConfig(format!("URL `{raw}` is not http(s)")));
    }
    Ok(url)
}

/// The common part of a DingTalk `oapi` reply.
#[derive(Debug, Deserialize)]
pub(crate) struct DingReply {
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
}

/// Sends, checks the status and decodes. DingTalk reports its own errors in a 200 body; a non-2xx status comes
/// from a gateway in front of it, or from a webhook receiver, and is judged by the status alone.
pub(crate) async fn send_json<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, NotifyError> {
    let response = request.send().await.map_err(NotifyError::transport)?;
    let status = response.status();
    if !status.is_success() {
        return Err(NotifyError::HttpStatus { status: status.as_u16() });
    }
    let body = response.bytes().await.map_err(NotifyError::transport)?;
    serde_json::from_slice(&body).map_err(|e| NotifyError::MalformedResponse(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_join_without_doubled_slashes() {
        assert_eq!(endpoint("http://127.0.0.1:9/", "/robot/send").unwrap().as_str(), "http://127.0.0.1:9/robot/send");
        assert!(endpoint("ftp://x", "a").is_err());
        assert!(endpoint("not a url", "a").is_err());
        assert_eq!(parse_url("https://h/hook").unwrap().as_str(), "https://h/hook");
    }

    #[test]
    fn clients_build_with_the_ring_provider() {
        client(Duration::from_secs(1)).unwrap();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
