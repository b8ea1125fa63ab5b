//! Proves the OpenID provider fixture (`tests/common/oidc.rs` driving npm `oidc-provider` on
//! loopback): discovery, RS256/ES256 JWT access tokens whose kids are in the JWKS, opaque tokens
//! that introspect and revoke, key rotation and retirement, the request log, restarts on the
//! same port, the JWKS failure modes, and the RFC 7523 `private_key_jwt` client that introspects
//! the secret client's tokens.

#[path = "common/oidc.rs"]
mod oidc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oidc::{
    CLIENT_ID, CLIENT_SECRET, JwksMode, OidcProvider, PKJWT_CLIENT_ID, RESOURCE_ES256,
    RESOURCE_OPAQUE, RESOURCE_RS256, base64url_encode, jwks_kids, jwt_claims, jwt_header,
};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// A `private_key_jwt` client key: it signs RFC 7523 client assertions.
enum ClientKey {
    Es256 { kid: String, pair: EcdsaKeyPair },
    Rs256 { kid: String, pair: RsaKeyPair },
}

impl ClientKey {
    fn es256(kid: &str) -> ClientKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key");
        ClientKey::Es256 {
            kid: kid.to_owned(),
            pair,
        }
    }

    fn rs256(kid: &str) -> ClientKey {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key");
        ClientKey::Rs256 {
            kid: kid.to_owned(),
            pair,
        }
    }

    /// The public JWK.
    fn public_jwk(&self) -> Value {
        match self {
            ClientKey::Es256 { kid, pair } => {
                // The uncompressed point 0x04 || x || y.
                let point = pair.public_key().as_ref();
                assert_eq!(point.len(), 65, "an uncompressed P-256 point");
                assert_eq!(point[0], 0x04);
                json!({
                    "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                    "x": base64url_encode(&point[1..33]),
                    "y": base64url_encode(&point[33..]),
                })
            }
            ClientKey::Rs256 { kid, pair } => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                    "n": base64url_encode(public.modulus().big_endian_without_leading_zero()),
                    "e": base64url_encode(public.exponent().big_endian_without_leading_zero()),
                })
            }
        }
    }

    /// A client assertion for `client_id` with audience `aud`: {alg, kid} over {iss, sub, aud,
    /// jti (random), iat, exp (now + 60 s)}, the signature base64url without padding (ES256:
    /// the fixed-size r || s).
    fn assertion(&self, client_id: &str, aud: &str) -> String {
        let rng = SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti).expect("random jti");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let (alg, kid) = match self {
            ClientKey::Es256 { kid, .. } => ("ES256", kid),
            ClientKey::Rs256 { kid, .. } => ("RS256", kid),
        };
        let header = json!({ "alg": alg, "kid": kid });
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": aud, "jti": base64url_encode(&jti),
            "iat": now, "exp": now + 60,
        });
        let signing_input = format!(
            "{}.{}",
            base64url_encode(header.to_string().as_bytes()),
            base64url_encode(claims.to_string().as_bytes())
        );
        let signature = match self {
            ClientKey::Es256 { pair, .. } => {
                let signature = pair
                    .sign(&rng, signing_input.as_bytes())
                    .expect("ES256 signature");
                assert_eq!(signature.as_ref().len(), 64, "fixed-size r || s");
                signature.as_ref().to_vec()
            }
            ClientKey::Rs256 { pair, .. } => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &rng,
                    signing_input.as_bytes(),
                    &mut signature,
                )
                .expect("RS256 signature");
                signature
            }
        };
        format!("{signing_input}.{}", base64url_encode(&signature))
    }
}

/// Asserts that the provider refused a client assertion: 401 invalid_client.
fn assert_invalid_client(response: &oidc::Response, what: &str) {
    assert_eq!(response.status, 401, "{what}: {}", response.body);
    assert_eq!(response.json()["error"], "invalid_client", "{what}");
}

#[test]
fn private_key_jwt_client_introspects_the_secret_clients_tokens() {
    let es = ClientKey::es256("pkjwt-es256");
    let rs = ClientKey::rs256("pkjwt-rs256");
    let jwks = json!({ "keys": [es.public_jwk(), rs.public_jwk()] });
    let mut idp = OidcProvider::start_with_pkjwt(&jwks.to_string());
    let issuer = idp.issuer().to_owned();
    let introspection = idp.introspection_endpoint();
    let token_endpoint = idp.token_endpoint();

    // oidc-provider 8 has one client authentication method and one list of algorithms for every
    // endpoint; its discovery document has only the token endpoint's.
    let discovery = idp.discovery();
    let methods = discovery["token_endpoint_auth_methods_supported"]
        .as_array()
        .expect("token_endpoint_auth_methods_supported");
    assert!(methods.contains(&json!("private_key_jwt")), "{discovery}");
    let algs = discovery["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .expect("token_endpoint_auth_signing_alg_values_supported");
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        assert!(algs.contains(&json!(alg)), "{alg} not in {discovery}");
    }
    assert_eq!(
        discovery["introspection_endpoint_auth_methods_supported"],
        Value::Null
    );

    // An opaque token of the secret client, introspected by the private_key_jwt client with an
    // ES256 assertion for the introspection endpoint, then an RS256 one.
    let opaque = idp.token(RESOURCE_OPAQUE, "read");
    let check_active = |body: &Value| {
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["client_id"], CLIENT_ID, "{body}");
        assert_eq!(body["aud"], RESOURCE_OPAQUE, "{body}");
        assert_eq!(body["scope"], "read", "{body}");
        assert_eq!(body["iss"], issuer.as_str(), "{body}");
    };
    let assertion = es.assertion(PKJWT_CLIENT_ID, &introspection);
    check_active(&idp.introspect_with_assertion(&opaque, &assertion).ok_json());
    let rs_assertion = rs.assertion(PKJWT_CLIENT_ID, &introspection);
    assert_eq!(jwt_header(&rs_assertion)["alg"], "RS256");
    check_active(
        &idp.introspect_with_assertion(&opaque, &rs_assertion)
            .ok_json(),
    );

    // The same request spelled out as form fields.
    let response = idp.post_form(
        "/token/introspection",
        &[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            (
                "client_assertion",
                &es.assertion(PKJWT_CLIENT_ID, &introspection),
            ),
            ("client_id", PKJWT_CLIENT_ID),
            ("token", &opaque),
        ],
        false,
    );
    check_active(&response.ok_json());

    // The other audiences oidc-provider accepts: the issuer and the token endpoint.
    for aud in [issuer.as_str(), token_endpoint.as_str()] {
        let response = idp.introspect_with_assertion(&opaque, &es.assertion(PKJWT_CLIENT_ID, aud));
        check_active(&response.ok_json());
    }
    // Any other audience is refused, the issuer with a trailing slash included.
    for aud in [idp.revocation_endpoint(), format!("{issuer}/")] {
        let response = idp.introspect_with_assertion(&opaque, &es.assertion(PKJWT_CLIENT_ID, &aud));
        assert_invalid_client(&response, &format!("aud {aud}"));
    }

    // A key outside the client's JWKS (even under a registered kid) is refused, and so is an
    // assertion used twice.
    let intruder = ClientKey::es256("pkjwt-es256");
    let forged = intruder.assertion(PKJWT_CLIENT_ID, &introspection);
    assert_invalid_client(
        &idp.introspect_with_assertion(&opaque, &forged),
        "signed by another key",
    );
    assert_invalid_client(
        &idp.introspect_with_assertion(&opaque, &assertion),
        "replayed assertion",
    );
    // The 401 bodies are generic; the provider logs why (the last line may still be in the pipe).
    let logs = idp.wait_for_log(
        "client assertion tokens must only be used once",
        std::time::Duration::from_secs(5),
    );
    assert!(
        logs.contains("introspection.error: invalid_client"),
        "{logs}"
    );
    assert!(logs.contains("audience (aud) must equal"), "{logs}");
    assert!(
        logs.contains("client assertion tokens must only be used once"),
        "{logs}"
    );

    // The other way round: a token issued to the private_key_jwt client (assertion for the
    // token endpoint) introspects through the secret client.
    let response = idp
        .token_response_with_assertion(
            RESOURCE_OPAQUE,
            "write",
            &es.assertion(PKJWT_CLIENT_ID, &token_endpoint),
        )
        .ok_json();
    let theirs = response["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let body = idp.introspect(&theirs);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], PKJWT_CLIENT_ID, "{body}");
    assert_eq!(body["scope"], "write", "{body}");

    // A restart registers the client again, from the JWKS file in the scratch directory.
    idp.restart();
    let body = idp
        .introspect_with_assertion(&opaque, &es.assertion(PKJWT_CLIENT_ID, &introspection))
        .ok_json();
    check_active(&body);
    // Without --pkjwt-jwks the client does not exist.
    let plain = OidcProvider::start();
    let response = plain.introspect_with_assertion(
        &plain.token(RESOURCE_OPAQUE, "read"),
        &es.assertion(PKJWT_CLIENT_ID, &plain.introspection_endpoint()),
    );
    assert_invalid_client(&response, "no private_key_jwt client registered");
}
