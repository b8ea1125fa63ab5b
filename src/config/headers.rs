//! The HTTP names a provider configures: `claims_to_headers` and the credential sources
//! (`token_header`, `token_scheme`, `token_cookie`, `token_query`).
#![forbid(unsafe_code)]

use super::error::{Invalid, invalid};
use super::provider::ProviderConfig;
use std::collections::{BTreeMap, HashMap};

/// Header names a provider may not set from claims: hop-by-hop headers (RFC 9110 §7.6.1 and
/// their legacy forms), framing (`content-length`), and the two headers the gateway routes and
/// authenticates on.
const RESERVED_HEADERS: [&str; 12] = [
    "authorization",
    "host",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// An HTTP field-name token (RFC 9110 §5.6.2).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_header_name(name: &str) -> Result<(), String> {
    if name.starts_with(':') {
        return Err(format!("{name:?} is a pseudo-header"));
    }
    if !is_token(name) {
        return Err(format!("{name:?} is not a valid HTTP header name"));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "{name:?} must be lowercase (HTTP/2 header names are)"
        ));
    }
    if RESERVED_HEADERS.contains(&name) {
        return Err(format!(
            "{name:?} is reserved (hop-by-hop, framing, authorization or host)"
        ));
    }
    Ok(())
}

pub(super) fn check_claims_to_headers(
    map: &BTreeMap<String, String>,
    at: &str,
) -> Result<(), Invalid> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (claim, header) in map {
        if claim.is_empty() {
            return Err(invalid(
                format!("{at}.claims_to_headers"),
                "a claim name is empty",
            ));
        }
        let key = format!("{at}.claims_to_headers.{claim}");
        check_header_name(header).map_err(|reason| invalid(&key, reason))?;
        if let Some(other) = seen.insert(header, claim) {
            return Err(invalid(
                key,
                format!("header {header:?} is also set from claim {other:?}"),
            ));
        }
    }
    Ok(())
}

pub(super) fn check_credential_sources(provider: &ProviderConfig, at: &str) -> Result<(), Invalid> {
    let header = &provider.token_header;
    if header.starts_with(':') || !is_token(header) {
        return Err(invalid(
            format!("{at}.token_header"),
            format!("{header:?} is not a valid HTTP header name"),
        ));
    }
    let scheme = &provider.token_scheme;
    if !scheme.is_empty() && !is_token(scheme) {
        return Err(invalid(
            format!("{at}.token_scheme"),
            format!("{scheme:?} is not an auth scheme (one token, no spaces; \"\" = raw value)"),
        ));
    }
    if let Some(cookie) = &provider.token_cookie
        && !is_token(cookie)
    {
        return Err(invalid(
            format!("{at}.token_cookie"),
            format!("{cookie:?} is not a valid cookie name"),
        ));
    }
    if let Some(param) = &provider.token_query
        && (param.is_empty()
            || !param
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)))
    {
        return Err(invalid(
            format!("{at}.token_query"),
            format!("{param:?} is not a query parameter name ([A-Za-z0-9-._~]+)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{PROVIDER, provider, provider_with, rejects};

    #[test]
    fn provider_claims_to_headers() {
        assert!(provider(PROVIDER).claims_to_headers.is_empty());
        let p = provider(&provider_with(
            "claims_to_headers = { sub = \"x-verdict-sub\", \"https://example.com/tenant\" = \"x-tenant\" }",
        ));
        assert_eq!(
            p.claims_to_headers.get("sub").map(String::as_str),
            Some("x-verdict-sub")
        );
        assert_eq!(
            p.claims_to_headers
                .get("https://example.com/tenant")
                .map(String::as_str),
            Some("x-tenant")
        );
        for bad in [
            "X-Verdict-Sub",
            "authorization",
            "host",
            "connection",
            "transfer-encoding",
            "te",
            "upgrade",
            "keep-alive",
            "content-length",
            ":path",
            "x bad",
            "",
        ] {
            let text = provider_with(&format!("claims_to_headers = {{ sub = \"{bad}\" }}"));
            rejects(&text, "providers[0].claims_to_headers.sub");
        }
        let e = rejects(
            &provider_with("claims_to_headers = { sub = \"x-a\", email = \"x-a\" }"),
            "providers[0].claims_to_headers.sub",
        );
        assert!(e.reason.contains("email"), "{e}");
        rejects(
            &provider_with("claims_to_headers = { \"\" = \"x-a\" }"),
            "providers[0].claims_to_headers",
        );
    }

    #[test]
    fn provider_token_header_and_scheme() {
        let p = provider(PROVIDER);
        assert_eq!(p.token_header, "authorization");
        assert_eq!(p.token_scheme, "Bearer");
        let p = provider(&provider_with(
            "token_header = \"X-Auth-Token\"\ntoken_scheme = \"\"",
        ));
        assert_eq!(
            p.token_header, "x-auth-token",
            "header names are lower-cased"
        );
        assert_eq!(p.token_scheme, "", "empty scheme = the raw header value");
        assert_eq!(
            provider(&provider_with("token_scheme = \"DPoP\"")).token_scheme,
            "DPoP"
        );
        rejects(
            &provider_with("token_header = \"x auth\""),
            "providers[0].token_header",
        );
        rejects(
            &provider_with("token_header = \":authority\""),
            "providers[0].token_header",
        );
        rejects(
            &provider_with("token_header = \"\""),
            "providers[0].token_header",
        );
        rejects(
            &provider_with("token_scheme = \"Bearer x\""),
            "providers[0].token_scheme",
        );
    }

    #[test]
    fn provider_token_cookie_and_query() {
        let p = provider(PROVIDER);
        assert_eq!(
            (p.token_cookie.clone(), p.token_query.clone()),
            (None, None)
        );
        let p = provider(&provider_with(
            "token_cookie = \"__Host-session\"\ntoken_query = \"access_token\"",
        ));
        assert_eq!(p.token_cookie.as_deref(), Some("__Host-session"));
        assert_eq!(p.token_query.as_deref(), Some("access_token"));
        rejects(
            &provider_with("token_cookie = \"a;b\""),
            "providers[0].token_cookie",
        );
        rejects(
            &provider_with("token_cookie = \"\""),
            "providers[0].token_cookie",
        );
        rejects(
            &provider_with("token_query = \"a&b\""),
            "providers[0].token_query",
        );
        rejects(
            &provider_with("token_query = \"\""),
            "providers[0].token_query",
        );
    }
}
