//! Proves the OpenID provider fixture (`tests/common/oidc.rs` driving npm `oidc-provider` on
//! loopback): discovery, RS256/ES256 JWT access tokens whose kids are in the JWKS, opaque tokens
//! that introspect and revoke, key rotation and retirement, the request log, restarts on the
//! same port, and the JWKS failure modes.

#[path = "common/oidc.rs"]
mod oidc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oidc::{
    CLIENT_ID, CLIENT_SECRET, JwksMode, OidcProvider, RESOURCE_ES256, RESOURCE_OPAQUE,
    RESOURCE_RS256, jwks_kids, jwt_claims, jwt_header,
};
use serde_json::Value;
use std::time::Duration;

/// Verifies `token`'s signature with the key its kid names in `jwks`, and its iss/aud/exp.
fn verify(token: &str, jwks: &Value, alg: Algorithm, issuer: &str, audience: &str) -> Value {
    let set: JwkSet = serde_json::from_value(jwks.clone()).expect("a JWKS jsonwebtoken reads");
    let kid = jwt_header(token)["kid"].as_str().expect("kid").to_owned();
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} not in {jwks}"));
    let key = DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("token does not verify against the JWKS: {e}"))
        .claims
}

/// The kty of the JWK called `kid`.
fn kty_of(jwks: &Value, kid: &str) -> String {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .and_then(|k| k["kty"].as_str())
        .unwrap_or_else(|| panic!("kid {kid} not in {jwks}"))
        .to_owned()
}

#[test]
fn tokens_introspection_rotation_and_log() {
    let idp = OidcProvider::start();
    let issuer = idp.issuer().to_owned();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");

    // Discovery.
    let discovery = idp.discovery();
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(discovery["jwks_uri"], idp.jwks_uri().as_str());
    assert_eq!(discovery["token_endpoint"], idp.token_endpoint().as_str());
    assert_eq!(
        discovery["introspection_endpoint"],
        idp.introspection_endpoint().as_str()
    );
    assert_eq!(
        discovery["revocation_endpoint"],
        idp.revocation_endpoint().as_str()
    );

    idp.reset_log();
    let jwks = idp.jwks();
    let first_kids = jwks_kids(&jwks);
    assert_eq!(first_kids.len(), 2, "one RSA and one EC key: {jwks}");
    assert_eq!(first_kids, idp.published_kids());

    // RS256 JWT access token.
    let rs = idp.token(RESOURCE_RS256, "read");
    let header = jwt_header(&rs);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    let rs_kid = header["kid"].as_str().expect("kid").to_owned();
    assert_eq!(kty_of(&jwks, &rs_kid), "RSA");
    let claims = verify(&rs, &jwks, Algorithm::RS256, &issuer, RESOURCE_RS256);
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert_eq!(claims["sub"], CLIENT_ID);
    let lifetime = claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat");
    assert_eq!(lifetime, 600);

    // ES256 JWT access token, the client authenticating with client_secret_post this time.
    let response = idp.post_form(
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("resource", RESOURCE_ES256),
            ("scope", "read write"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
        false,
    );
    let es = response.ok_json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let header = jwt_header(&es);
    assert_eq!(header["alg"], "ES256");
    let es_kid = header["kid"].as_str().expect("kid").to_owned();
    assert_eq!(kty_of(&jwks, &es_kid), "EC");
    let claims = verify(&es, &jwks, Algorithm::ES256, &issuer, RESOURCE_ES256);
    assert_eq!(claims["scope"], "read write");

    // A wrong secret and an unknown resource are refused.
    let bad = idp.post_form(
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("resource", RESOURCE_RS256),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
        ],
        false,
    );
    assert_eq!(bad.status, 401, "{}", bad.body);
    let unknown = idp.token_response("api://nope", "read");
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert_eq!(unknown.json()["error"], "invalid_target");

    // Opaque token: introspects active, then revoked.
    let opaque = idp.token(RESOURCE_OPAQUE, "read");
    assert_eq!(opaque.split('.').count(), 1, "not a JWT: {opaque}");
    let active = idp.introspect(&opaque);
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["aud"], RESOURCE_OPAQUE);
    assert_eq!(active["scope"], "read");
    assert_eq!(active["client_id"], CLIENT_ID);
    assert_eq!(active["iss"], issuer.as_str());
    idp.revoke(&opaque);
    assert_eq!(idp.introspect(&opaque)["active"], false);
    let opaque = idp.token(RESOURCE_OPAQUE, "write");

    // Rotation: new kids first, old ones kept; new tokens use the new keys; tokens from before
    // the rotation still verify (JWT) and introspect (opaque).
    let rotation = idp.rotate();
    assert_eq!(rotation.old_kids, first_kids);
    assert_eq!(rotation.new_kids.len(), 2);
    assert!(rotation.new_kids.iter().all(|k| !first_kids.contains(k)));
    let jwks = idp.jwks();
    let published = jwks_kids(&jwks);
    assert_eq!(published, rotation.published_kids);
    assert_eq!(&published[..2], &rotation.new_kids[..]);
    assert_eq!(&published[2..], &first_kids[..]);
    verify(&rs, &jwks, Algorithm::RS256, &issuer, RESOURCE_RS256);
    let rs2 = idp.token(RESOURCE_RS256, "read");
    let es2 = idp.token(RESOURCE_ES256, "read");
    let rs2_kid = jwt_header(&rs2)["kid"].as_str().expect("kid").to_owned();
    let es2_kid = jwt_header(&es2)["kid"].as_str().expect("kid").to_owned();
    assert!(rotation.new_kids.contains(&rs2_kid), "{rs2_kid}");
    assert!(rotation.new_kids.contains(&es2_kid), "{es2_kid}");
    assert_eq!(kty_of(&jwks, &rs2_kid), "RSA");
    assert_eq!(kty_of(&jwks, &es2_kid), "EC");
    assert_eq!(idp.rsa_kid(), rs2_kid);
    assert_eq!(idp.ec_kid(), es2_kid);
    verify(&rs2, &jwks, Algorithm::RS256, &issuer, RESOURCE_RS256);
    verify(&es2, &jwks, Algorithm::ES256, &issuer, RESOURCE_ES256);
    assert_eq!(idp.introspect(&opaque)["active"], true);

    // Retirement: only the newest key of each type stays.
    let kept = idp.retire();
    assert_eq!(kept, rotation.new_kids);
    let jwks = idp.jwks();
    assert_eq!(jwks_kids(&jwks), rotation.new_kids);
    assert!(!jwks_kids(&jwks).contains(&rs_kid));
    verify(&rs2, &jwks, Algorithm::RS256, &issuer, RESOURCE_RS256);
    assert_eq!(idp.introspect(&opaque)["active"], true);

    // The request log counted the three JWKS fetches since the reset (control calls excluded).
    assert_eq!(idp.jwks_requests(), 3);
    let times = idp.jwks_request_times_ms();
    assert_eq!(times.len(), 3);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(idp.requests_to("/token"), 8);
    assert_eq!(idp.requests_to("/token/introspection"), 4);
    idp.reset_log();
    assert_eq!(idp.jwks_requests(), 0);
    assert!(idp.jwks_request_times_ms().is_empty());

    let logs = idp.logs();
    assert!(logs.contains("GET /jwks 200"), "{logs}");
}

#[test]
fn restart_keeps_port_issuer_keys_and_tokens() {
    let mut idp = OidcProvider::start();
    let issuer = idp.issuer().to_owned();
    let rotation = idp.rotate();
    let rs = idp.token(RESOURCE_RS256, "read");
    let opaque = idp.token(RESOURCE_OPAQUE, "read");

    idp.stop();
    assert!(!idp.is_running());
    assert!(
        idp.request("GET", "/jwks", &[], &[]).is_err(),
        "a stopped provider still answers"
    );

    idp.restart();
    assert!(idp.is_running());
    assert_eq!(idp.issuer(), issuer);
    assert_eq!(idp.discovery()["issuer"], issuer.as_str());
    let jwks = idp.jwks();
    assert_eq!(jwks_kids(&jwks), rotation.published_kids);
    verify(&rs, &jwks, Algorithm::RS256, &issuer, RESOURCE_RS256);
    assert_eq!(idp.introspect(&opaque)["active"], true);
    let rs_after = idp.token(RESOURCE_RS256, "read");
    assert_eq!(
        jwt_header(&rs_after)["kid"].as_str(),
        Some(rotation.new_kids[0].as_str())
    );
    // The log started again with the new process.
    assert_eq!(idp.jwks_requests(), 1);
}

#[test]
fn jwks_failure_modes_and_token_ttl() {
    let idp = OidcProvider::start_with_args(&["--ttl", "120"]);
    let ttl = |token: &str| {
        let claims = jwt_claims(token);
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat")
    };
    assert_eq!(ttl(&idp.token(RESOURCE_RS256, "read")), 120);
    idp.set_token_ttl(5);
    let response = idp.token_response(RESOURCE_ES256, "read").ok_json();
    assert_eq!(response["expires_in"], 5);
    assert_eq!(
        ttl(response["access_token"].as_str().expect("access_token")),
        5
    );

    idp.set_jwks_mode(JwksMode::Error500);
    assert_eq!(idp.get("/jwks").status, 500);

    idp.set_jwks_mode(JwksMode::NotJson);
    let not_json = idp.get("/jwks");
    assert_eq!(not_json.status, 200);
    assert!(serde_json::from_str::<Value>(&not_json.body).is_err());

    idp.set_jwks_mode(JwksMode::Hang);
    let hung = oidc::http_request(
        idp.addr(),
        "GET",
        "/jwks",
        &[],
        &[],
        Duration::from_millis(500),
    );
    assert!(hung.is_err(), "a hanging JWKS answered: {hung:?}");

    idp.set_jwks_behaviour(JwksMode::Normal, 50, Some("max-age=60"));
    let normal = idp.get("/jwks");
    assert_eq!(normal.status, 200);
    assert_eq!(normal.header("cache-control"), Some("max-age=60"));
    assert_eq!(jwks_kids(&normal.json()), idp.published_kids());

    idp.set_jwks_mode(JwksMode::Normal);
    assert_eq!(idp.get("/jwks").header("cache-control"), None);
    assert_eq!(idp.jwks_requests(), 5);
}
