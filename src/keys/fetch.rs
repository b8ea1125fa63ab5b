//! The HTTP client that fetches discovery documents and JWKS from identity providers.
//!
//! reqwest with rustls over aws-lc-rs and the system trust store (no OpenSSL on this path).
//! Every fetch is bounded: a connect timeout, a total timeout (which also ends a server that
//! drips its answer a byte at a time), a response size cap checked while reading, at most
//! [`MAX_REDIRECTS`] redirects, never from `https` to `http`, and `https://` required except to
//! loopback hosts. Proxies from the environment are not used: a gateway host's `HTTP_PROXY` was
//! set for something else, and keys fetched through a surprise proxy are a surprise nobody wants.
#![forbid(unsafe_code)]

use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use std::time::Duration;

/// Redirects followed before a fetch fails.
pub const MAX_REDIRECTS: usize = 3;

/// Default cap on a fetched document.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The User-Agent every fetch sends, so an IdP's operator can see who is calling.
pub const USER_AGENT: &str = concat!("verdict/", env!("CARGO_PKG_VERSION"));

/// Bounds of one fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Time allowed to open the connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time allowed for the whole exchange, body included.
    pub total_timeout: Duration,
    /// Largest accepted body.
    pub max_response_bytes: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            connect_timeout: Duration::from_secs(3),
            total_timeout: Duration::from_secs(10),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL is not one verdict fetches from (scheme, host).
    #[error("refused URL: {0}")]
    Url(String),
    /// The connection could not be opened or broke (refused, reset, TLS failure).
    #[error("connection failed: {0}")]
    Connect(String),
    /// The exchange took longer than allowed.
    #[error("timed out")]
    Timeout,
    /// The server answered with an HTTP error.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is over the size cap.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// Too many redirects, or one to a refused URL.
    #[error("redirect refused: {0}")]
    Redirect(String),
    /// Anything else the client reported.
    #[error("{0}")]
    Other(String),
}

/// A successful exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// `304 Not Modified`: the document sent with the given `ETag` is still current.
    NotModified {
        /// `Cache-Control` of the answer, if any.
        cache_control: Option<String>,
    },
    /// A new document.
    Body {
        /// The body, at most the cap.
        bytes: Vec<u8>,
        /// Its `ETag`, for the next conditional request.
        etag: Option<String>,
        /// Its `Cache-Control`, if any.
        cache_control: Option<String>,
    },
}

/// Whether verdict fetches from `url`: `https://`, or `http://` to a loopback host.
pub fn url_allowed(url: &reqwest::Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "{url}: plain http:// is only allowed to 127.0.0.1, [::1] or localhost"
        )),
        other => Err(format!("{url}: unsupported scheme {other:?}")),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The fetching client; cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    limits: FetchLimits,
}

impl HttpFetcher {
    /// A client with these bounds.
    pub fn new(limits: FetchLimits) -> Result<HttpFetcher, FetchError> {
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            let downgrade = attempt.url().scheme() == "http"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            if downgrade {
                return attempt.error("from https to http");
            }
            match url_allowed(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(reason) => attempt.error(reason),
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.total_timeout)
            .redirect(redirects)
            .no_proxy()
            .build()
            .map_err(|e| FetchError::Other(e.to_string()))?;
        Ok(HttpFetcher { client, limits })
    }

    /// `GET url`, conditional on `etag` when given.
    pub async fn get(&self, url: &str, etag: Option<&str>) -> Result<Fetched, FetchError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| FetchError::Url(format!("{url}: {e}")))?;
        url_allowed(&parsed).map_err(FetchError::Url)?;
        let mut request = self
            .client
            .get(parsed)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = request.send().await.map_err(classify)?;
        self.read(response).await
    }

    /// `POST url` with a form body and extra headers (RFC 7662 introspection).
    pub async fn post_form(
        &self,
        url: &str,
        form: &str,
        headers: &[(&str, &str)],
    ) -> Result<Vec<u8>, FetchError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| FetchError::Url(format!("{url}: {e}")))?;
        url_allowed(&parsed).map_err(FetchError::Url)?;
        let mut request = self
            .client
            .post(parsed)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.map_err(classify)?;
        match self.read(response).await? {
            Fetched::Body { bytes, .. } => Ok(bytes),
            Fetched::NotModified { .. } => Err(FetchError::Status(304)),
        }
    }

    async fn read(&self, mut response: reqwest::Response) -> Result<Fetched, FetchError> {
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let cache_control = header(CACHE_CONTROL);
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified { cache_control });
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let etag = header(ETAG);
        let cap = self.limits.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > cap as u64)
        {
            return Err(FetchError::TooLarge(cap));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if bytes.len() + chunk.len() > cap {
                return Err(FetchError::TooLarge(cap));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body {
            bytes,
            etag,
            cache_control,
        })
    }
}

fn classify(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        FetchError::Timeout
    } else if error.is_redirect() {
        FetchError::Redirect(source_chain(&error))
    } else if error.is_connect() || error.is_request() || error.is_body() {
        FetchError::Connect(source_chain(&error))
    } else {
        FetchError::Other(source_chain(&error))
    }
}

/// The error and its causes on one line (reqwest's own message is often just "error sending
/// request").
fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        for (url, ok) in [
            ("https://idp.example.com/jwks", true),
            ("http://127.0.0.1:8080/jwks", true),
            ("http://127.9.9.9/jwks", true),
            ("http://[::1]/jwks", true),
            ("http://localhost/jwks", true),
            ("http://idp.example.com/jwks", false),
            ("http://10.0.0.1/jwks", false),
            ("ftp://127.0.0.1/jwks", false),
            ("file:///etc/passwd", false),
        ] {
            let parsed = reqwest::Url::parse(url).expect("url");
            assert_eq!(url_allowed(&parsed).is_ok(), ok, "{url}");
        }
    }
}
