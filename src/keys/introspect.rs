//! The RFC 7662 token introspection client of `type = "introspection"` providers.
//!
//! One call in flight per token (single-flight), results remembered under a keyed digest of the
//! token (HMAC-SHA-256 with a random per-process key, compared in full), so neither the token
//! nor anything an attacker could collide with is kept: active results until
//! `min(exp, now + max_ttl_s)`, inactive ones for `negative_ttl_s`. Calls run on the control
//! runtime (the HTTP client's connections live there), never on a worker's. A circuit breaker
//! stops calling an endpoint that keeps failing: after [`BREAKER_FAILURES`] failures in a row it
//! opens for [`BREAKER_COOLDOWN`], then lets one trial call through.
#![forbid(unsafe_code)]

use super::fetch::HttpFetcher;
use super::live::parse_discovery;
use crate::jose::b64;
use crate::telemetry::names::{self, labels};
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use aws_lc_rs::{hmac, rand};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Consecutive failed calls that open the circuit.
pub const BREAKER_FAILURES: u32 = 5;
/// How long an open circuit refuses calls before one trial.
pub const BREAKER_COOLDOWN: Duration = Duration::from_secs(10);
/// Shards of the result cache and the in-flight table (each behind its own short lock).
const SHARDS: usize = 16;

/// A private key signing RFC 7523 client assertions.
#[derive(Debug)]
pub enum ClientKey {
    /// RSA, signing RS256.
    Rsa(RsaKeyPair),
    /// P-256, signing ES256.
    P256(EcdsaKeyPair),
    /// Ed25519, signing EdDSA.
    Ed25519(Ed25519KeyPair),
}

impl ClientKey {
    /// Reads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) holding an RSA, P-256 or Ed25519 key.
    pub fn from_pem(pem: &[u8]) -> Result<ClientKey, String> {
        let text = std::str::from_utf8(pem).map_err(|_| "not a PEM file (not UTF-8)")?;
        let body = text
            .split("-----BEGIN PRIVATE KEY-----")
            .nth(1)
            .and_then(|rest| rest.split("-----END PRIVATE KEY-----").next())
            .ok_or("not a PKCS#8 PEM (no BEGIN/END PRIVATE KEY block)")?;
        let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, base64)
            .map_err(|e| format!("bad base64 in the PEM: {e}"))?;
        if let Ok(key) = RsaKeyPair::from_pkcs8(&der) {
            return Ok(ClientKey::Rsa(key));
        }
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        {
            return Ok(ClientKey::P256(key));
        }
        if let Ok(key) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
            return Ok(ClientKey::Ed25519(key));
        }
        Err("the PKCS#8 key is not RSA, P-256 or Ed25519".into())
    }

    /// The JWS algorithm this key signs with.
    pub fn alg(&self) -> &'static str {
        match self {
            ClientKey::Rsa(_) => "RS256",
            ClientKey::P256(_) => "ES256",
            ClientKey::Ed25519(_) => "EdDSA",
        }
    }

    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, String> {
        let rng = rand::SystemRandom::new();
        match self {
            ClientKey::Rsa(key) => {
                let mut out = vec![0; key.public_modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, &rng, input, &mut out)
                    .map_err(|_| "RSA signing failed")?;
                Ok(out)
            }
            ClientKey::P256(key) => key
                .sign(&rng, input)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "ECDSA signing failed".into()),
            ClientKey::Ed25519(key) => Ok(key.sign(input).as_ref().to_vec()),
        }
    }

    /// The public half as a JWK (what the operator registers at the IdP).
    pub fn public_jwk(&self) -> String {
        match self {
            ClientKey::Rsa(key) => {
                let public = key.public_key();
                format!(
                    r#"{{"kty":"RSA","alg":"RS256","use":"sig","n":"{}","e":"{}"}}"#,
                    b64::encode(public.modulus().big_endian_without_leading_zero()),
                    b64::encode(public.exponent().big_endian_without_leading_zero())
                )
            }
            ClientKey::P256(key) => {
                let point = key.public_key().as_ref();
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(point.len().saturating_sub(1) / 2);
                format!(
                    r#"{{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","x":"{}","y":"{}"}}"#,
                    b64::encode(x),
                    b64::encode(y)
                )
            }
            ClientKey::Ed25519(key) => format!(
                r#"{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","x":"{}"}}"#,
                b64::encode(key.public_key().as_ref())
            ),
        }
    }
}

/// How the client proves itself to the endpoint.
#[derive(Debug)]
pub enum ClientAuthentication {
    /// `client_secret_basic`: the precomputed `Authorization: Basic …` value.
    Basic(String),
    /// `client_secret_post`: id and secret as form fields.
    Post {
        /// The client id.
        id: String,
        /// The secret.
        secret: String,
    },
    /// `private_key_jwt`: a fresh signed assertion per call.
    PrivateKeyJwt {
        /// The client id (`iss` and `sub` of the assertion).
        id: String,
        /// The signing key.
        key: ClientKey,
    },
}

impl ClientAuthentication {
    /// `client_secret_basic` for `id` and `secret` (both form-urlencoded first, RFC 6749
    /// §2.3.1).
    pub fn basic(id: &str, secret: &str) -> ClientAuthentication {
        let credentials = format!("{}:{}", form_encode(id), form_encode(secret));
        ClientAuthentication::Basic(format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, credentials)
        ))
    }

    /// The form fields and headers authenticating one call to `endpoint` at `now`.
    fn apply(
        &self,
        endpoint: &str,
        now: u64,
        form: &mut String,
    ) -> Result<Vec<(&'static str, String)>, String> {
        match self {
            ClientAuthentication::Basic(header) => Ok(vec![("authorization", header.clone())]),
            ClientAuthentication::Post { id, secret } => {
                form.push_str(&format!(
                    "&client_id={}&client_secret={}",
                    form_encode(id),
                    form_encode(secret)
                ));
                Ok(Vec::new())
            }
            ClientAuthentication::PrivateKeyJwt { id, key } => {
                let mut jti = [0u8; 16];
                rand::SystemRandom::new()
                    .fill(&mut jti)
                    .map_err(|_| "no randomness for the assertion jti")?;
                let header = serde_json::json!({"alg": key.alg(), "typ": "JWT"});
                let claims = serde_json::json!({
                    "iss": id, "sub": id, "aud": endpoint,
                    "jti": b64::encode(&jti), "iat": now, "exp": now + 60,
                });
                let input = format!(
                    "{}.{}",
                    b64::encode(header.to_string().as_bytes()),
                    b64::encode(claims.to_string().as_bytes())
                );
                let signature = key.sign(input.as_bytes())?;
                form.push_str(&format!(
                    "&client_id={}&client_assertion_type={}&client_assertion={input}.{}",
                    form_encode(id),
                    form_encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    b64::encode(&signature)
                ));
                Ok(Vec::new())
            }
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Where the endpoint is.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// `introspection_uri`.
    Fixed(String),
    /// The `introspection_endpoint` of this discovery document (fetched on first use).
    Discovery(String),
}

/// An introspection provider's settings.
#[derive(Debug)]
pub struct IntrospectionSettings {
    /// The provider's name (logs, metrics).
    pub provider: String,
    /// Its issuer (a discovery document must name it).
    pub issuer: String,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Client authentication.
    pub auth: ClientAuthentication,
    /// Results cached at most this long (and never past the token's `exp`).
    pub max_ttl_s: u64,
    /// Inactive results cached this long.
    pub negative_ttl_s: u64,
    /// Most results remembered (0 = none).
    pub max_entries: usize,
    /// Serve an earlier active result while the endpoint cannot answer.
    pub allow_cached: bool,
}

/// What the endpoint said about a token.
#[derive(Debug, Clone, PartialEq)]
pub enum Introspected {
    /// `active: true`, with the response's members (`active` removed).
    Active(Arc<Map<String, Value>>),
    /// `active: false`.
    Inactive,
}

/// The endpoint could not answer (and no usable earlier answer was remembered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("introspection unavailable: {0}")]
pub struct Unavailable(pub String);

#[derive(Debug, Clone)]
struct Entry {
    result: Introspected,
    /// Served from the cache until then.
    fresh_until: u64,
    /// An active result may stand in for an unavailable endpoint until then (its `exp`).
    valid_until: u64,
}

type Flight = watch::Receiver<Option<Result<Introspected, Unavailable>>>;

#[derive(Default)]
struct Shard {
    entries: HashMap<[u8; 32], Entry>,
    in_flight: HashMap<[u8; 32], Flight>,
}

/// The client of one introspection provider; shared by every core.
pub struct IntrospectionClient {
    settings: IntrospectionSettings,
    fetcher: HttpFetcher,
    control: tokio::runtime::Handle,
    digest_key: hmac::Key,
    shards: Vec<Mutex<Shard>>,
    discovered: Mutex<Option<String>>,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the circuit is open (0 = closed).
    open_until_ms: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for IntrospectionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionClient")
            .field("provider", &self.settings.provider)
            .finish_non_exhaustive()
    }
}

impl IntrospectionClient {
    /// A client whose calls run on `control`.
    pub fn new(
        settings: IntrospectionSettings,
        fetcher: HttpFetcher,
        control: tokio::runtime::Handle,
    ) -> Result<IntrospectionClient, String> {
        let digest_key = hmac::Key::generate(hmac::HMAC_SHA256, &rand::SystemRandom::new())
            .map_err(|_| "no randomness for the cache key")?;
        Ok(IntrospectionClient {
            settings,
            fetcher,
            control,
            digest_key,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            discovered: Mutex::new(None),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    fn digest(&self, token: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.digest_key, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn shard(&self, digest: &[u8; 32]) -> Option<std::sync::MutexGuard<'_, Shard>> {
        let shard = self.shards.get(usize::from(digest[0]) % SHARDS)?;
        Some(
            shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the circuit is open now (calls refused).
    pub fn breaker_open(&self) -> bool {
        self.now_ms() < self.open_until_ms.load(Ordering::Acquire)
    }

    /// Introspects `token` at `now`: a fresh remembered result, the answer of a call already in
    /// flight for it, or a new call.
    pub async fn introspect(&self, token: &str, now: u64) -> Result<Introspected, Unavailable> {
        let digest = self.digest(token);
        let mut stale = None;
        let flight = {
            let Some(mut shard) = self.shard(&digest) else {
                return Err(Unavailable("no cache shard".into()));
            };
            if let Some(entry) = shard.entries.get(&digest) {
                if now < entry.fresh_until {
                    self.count_lookup(true);
                    return Ok(entry.result.clone());
                }
                stale = Some(entry.clone());
            }
            self.count_lookup(false);
            match shard.in_flight.get(&digest) {
                Some(flight) => Err(flight.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    shard.in_flight.insert(digest, rx);
                    Ok(tx)
                }
            }
        };
        let result = match flight {
            Err(mut waiting) => {
                let answered = waiting.wait_for(Option::is_some).await;
                match answered.ok().and_then(|a| a.clone()) {
                    Some(result) => result,
                    None => Err(Unavailable("the call it waited for was dropped".into())),
                }
            }
            Ok(sender) => {
                // Whatever happens to this call (its request cancelled included), the next
                // caller for this token must not wait on a flight nobody is flying.
                let _landing = Landing {
                    client: self,
                    digest,
                };
                let result = self.call(token, now).await;
                if let Some(mut shard) = self.shard(&digest)
                    && let Ok(answer) = &result
                {
                    self.remember(&mut shard, digest, answer.clone(), now);
                }
                let _ = sender.send(Some(result.clone()));
                result
            }
        };
        match result {
            Err(error) if self.settings.allow_cached => match stale {
                Some(Entry {
                    result: active @ Introspected::Active(_),
                    valid_until,
                    ..
                }) if now < valid_until => Ok(active),
                _ => Err(error),
            },
            other => other,
        }
    }

    fn count_lookup(&self, hit: bool) {
        metrics::counter!(
            names::INTROSPECTION_CACHE_LOOKUPS_TOTAL,
            labels::PROVIDER => self.settings.provider.clone(),
            labels::RESULT => if hit { "hit" } else { "miss" }
        )
        .increment(1);
    }

    fn remember(&self, shard: &mut Shard, digest: [u8; 32], result: Introspected, now: u64) {
        let per_shard = self.settings.max_entries.div_ceil(SHARDS);
        if per_shard == 0 {
            return;
        }
        let entry = match &result {
            Introspected::Active(claims) => {
                let exp = claims
                    .get("exp")
                    .and_then(Value::as_u64)
                    .unwrap_or(u64::MAX);
                Entry {
                    fresh_until: exp.min(now.saturating_add(self.settings.max_ttl_s)),
                    valid_until: exp,
                    result,
                }
            }
            Introspected::Inactive => Entry {
                fresh_until: now.saturating_add(self.settings.negative_ttl_s),
                valid_until: 0,
                result,
            },
        };
        if shard.entries.len() >= per_shard {
            shard
                .entries
                .retain(|_, e| now < e.fresh_until.max(e.valid_until));
            if shard.entries.len() >= per_shard
                && let Some(victim) = shard.entries.keys().next().copied()
            {
                shard.entries.remove(&victim);
            }
        }
        shard.entries.insert(digest, entry);
    }

    /// One call through the breaker, run on the control runtime.
    async fn call(&self, token: &str, now: u64) -> Result<Introspected, Unavailable> {
        let open_until = self.open_until_ms.load(Ordering::Acquire);
        let now_ms = self.now_ms();
        if open_until != 0 {
            let trial = now_ms >= open_until
                && self
                    .open_until_ms
                    .compare_exchange(
                        open_until,
                        now_ms + cooldown_ms(),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok();
            if !trial {
                self.count_call("circuit_open");
                return Err(Unavailable("circuit open after repeated failures".into()));
            }
        }
        let endpoint = self.endpoint().await?;
        let mut form = format!("token={}&token_type_hint=access_token", form_encode(token));
        let headers = self
            .settings
            .auth
            .apply(&endpoint, now, &mut form)
            .map_err(Unavailable)?;
        let fetcher = self.fetcher.clone();
        let target = endpoint.clone();
        let started = Instant::now();
        let answer = self
            .control
            .spawn(async move {
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                fetcher.post_form(&target, &form, &headers).await
            })
            .await
            .map_err(|e| Unavailable(format!("the call's task failed: {e}")))
            .and_then(|r| r.map_err(|e| Unavailable(format!("{endpoint}: {e}"))))
            .and_then(|body| {
                parse_response(&body).map_err(|e| Unavailable(format!("{endpoint}: {e}")))
            });
        metrics::histogram!(
            names::INTROSPECTION_DURATION_SECONDS,
            labels::PROVIDER => self.settings.provider.clone()
        )
        .record(started.elapsed().as_secs_f64());
        match &answer {
            Ok(_) => {
                self.failures.store(0, Ordering::Release);
                if self.open_until_ms.swap(0, Ordering::AcqRel) != 0 {
                    tracing::info!(provider = %self.settings.provider, "introspection endpoint answers again; circuit closed");
                }
                self.count_call("ok");
            }
            Err(error) => {
                let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                self.count_call("error");
                if failures >= BREAKER_FAILURES {
                    let was = self
                        .open_until_ms
                        .swap(self.now_ms() + cooldown_ms(), Ordering::AcqRel);
                    if was == 0 {
                        tracing::warn!(provider = %self.settings.provider, %error, failures, "introspection endpoint failing; circuit open");
                    }
                } else if failures == 1 {
                    tracing::warn!(provider = %self.settings.provider, %error, "introspection call failed");
                }
            }
        }
        answer
    }

    fn count_call(&self, result: &'static str) {
        metrics::counter!(
            names::INTROSPECTION_CALLS_TOTAL,
            labels::PROVIDER => self.settings.provider.clone(),
            labels::RESULT => result
        )
        .increment(1);
    }

    async fn endpoint(&self) -> Result<String, Unavailable> {
        let uri = match &self.settings.endpoint {
            Endpoint::Fixed(uri) => return Ok(uri.clone()),
            Endpoint::Discovery(uri) => uri.clone(),
        };
        if let Some(known) = self
            .discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            return Ok(known);
        }
        let fetcher = self.fetcher.clone();
        let issuer = self.settings.issuer.clone();
        let found = self
            .control
            .spawn(async move { discover_endpoint(&fetcher, &uri, &issuer).await })
            .await
            .map_err(|e| Unavailable(format!("the discovery task failed: {e}")))?
            .map_err(Unavailable)?;
        *self
            .discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(found.clone());
        Ok(found)
    }
}

/// Removes a token's in-flight entry when its call ends or is dropped.
struct Landing<'c> {
    client: &'c IntrospectionClient,
    digest: [u8; 32],
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        if let Some(mut shard) = self.client.shard(&self.digest) {
            shard.in_flight.remove(&self.digest);
        }
    }
}

/// The `introspection_endpoint` named by the discovery document at `uri`, which must speak for
/// `issuer`.
pub async fn discover_endpoint(
    fetcher: &HttpFetcher,
    uri: &str,
    issuer: &str,
) -> Result<String, String> {
    let fetched = fetcher
        .get(uri, None)
        .await
        .map_err(|e| format!("discovery {uri}: {e}"))?;
    let super::fetch::Fetched::Body { bytes, .. } = fetched else {
        return Err(format!("discovery {uri}: unexpected 304"));
    };
    let document = parse_discovery(&bytes, issuer).map_err(|e| format!("discovery {uri}: {e}"))?;
    document
        .introspection_endpoint
        .ok_or_else(|| format!("discovery {uri}: no introspection_endpoint"))
}

fn cooldown_ms() -> u64 {
    u64::try_from(BREAKER_COOLDOWN.as_millis()).unwrap_or(u64::MAX)
}

/// Parses an introspection response: a JSON object whose `active` is a boolean (required by
/// RFC 7662 §2.2; anything else is an error, never a guess).
pub fn parse_response(body: &[u8]) -> Result<Introspected, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut members) = value else {
        return Err("not a JSON object".into());
    };
    match members.remove("active") {
        Some(Value::Bool(true)) => Ok(Introspected::Active(Arc::new(members))),
        Some(Value::Bool(false)) => Ok(Introspected::Inactive),
        Some(_) => Err("active is not a boolean".into()),
        None => Err("no active member".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_need_a_boolean_active() {
        assert_eq!(
            parse_response(br#"{"active":false}"#),
            Ok(Introspected::Inactive)
        );
        match parse_response(br#"{"active":true,"sub":"alice","scope":"read"}"#) {
            Ok(Introspected::Active(claims)) => {
                assert_eq!(claims["sub"], "alice");
                assert!(claims.get("active").is_none());
            }
            other => panic!("{other:?}"),
        }
        for body in [
            &br#"{"active":"true"}"#[..],
            br#"{"sub":"x"}"#,
            b"[]",
            b"nope",
        ] {
            assert!(parse_response(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn form_encoding_and_basic_credentials() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        match ClientAuthentication::basic("my client", "p@ss:word") {
            ClientAuthentication::Basic(header) => {
                let encoded = header.strip_prefix("Basic ").expect("scheme");
                let decoded =
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
                        .expect("base64");
                assert_eq!(decoded, b"my+client:p%40ss%3Aword");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn client_keys_from_pkcs8_pem() {
        let der = Ed25519KeyPair::generate_pkcs8(&rand::SystemRandom::new()).expect("key");
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der.as_ref())
        );
        let key = ClientKey::from_pem(pem.as_bytes()).expect("ed25519 pem");
        assert_eq!(key.alg(), "EdDSA");
        assert!(key.public_jwk().contains("Ed25519"));
        let der = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rand::SystemRandom::new(),
        )
        .expect("p256");
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der.as_ref())
        );
        let key = ClientKey::from_pem(pem.as_bytes()).expect("p256 pem");
        assert_eq!(key.alg(), "ES256");
        assert_eq!(key.sign(b"x").expect("sign").len(), 64);
        assert!(
            ClientKey::from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_err()
        );
        assert!(ClientKey::from_pem(b"hello").is_err());
    }
}
