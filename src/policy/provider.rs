//! Providers (an issuer, its keys and rules), credential extraction and the allow/deny
//! decision for one request. Pure: keys, the engine and `now` are given.

use super::{TokenPolicy, begin, begin_parsed};
use crate::crypto::{Backend, VerifyJob};
use crate::jose::{Algorithm, CompactJws, Reject, parse_compact, payload_issuer};
use crate::keys::KeySet;
use crate::keys::introspect::IntrospectionClient;
use crate::keys::live::{KeyState, LiveSource};
use crate::revocation::RevocationKeys;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Where a provider looks for its credential in a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CredentialSource {
    /// Header name, lowercase (default `authorization`).
    pub header: String,
    /// Auth scheme before the token (default `Bearer`, compared case-insensitively); empty means
    /// the whole header value is the token.
    pub scheme: String,
    /// Cookie name to read the token from, if any.
    pub cookie: Option<String>,
    /// Query parameter to read the token from, if any.
    pub query: Option<String>,
}

impl Default for CredentialSource {
    fn default() -> Self {
        CredentialSource {
            header: "authorization".into(),
            scheme: "Bearer".into(),
            cookie: None,
            query: None,
        }
    }
}

/// Request headers as the decision reads them: by lowercase name, one value per name (a
/// protocol layer that received a name more than once joins the values first, as Envoy does).
/// A trait so each protocol hands over what it decoded without copying it into a map.
pub trait HeaderLookup: Sync {
    /// The value of the header named `lowercase_name`, if the request carried it.
    fn header(&self, lowercase_name: &str) -> Option<&str>;
}

impl HeaderLookup for HashMap<String, String> {
    fn header(&self, lowercase_name: &str) -> Option<&str> {
        self.get(lowercase_name).map(String::as_str)
    }
}

/// The parts of an HTTP request the decision reads.
#[derive(Clone, Copy)]
pub struct RequestView<'a> {
    /// Request headers.
    pub headers: &'a dyn HeaderLookup,
    /// The request path, possibly with a query string.
    pub path: &'a str,
}

impl std::fmt::Debug for RequestView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither headers nor path: either can carry the credential.
        f.debug_struct("RequestView").finish_non_exhaustive()
    }
}

impl CredentialSource {
    /// Finds the token in a request: the header first, then the cookie, then the query.
    pub fn extract<'a>(&self, request: &RequestView<'a>) -> Option<&'a str> {
        if let Some(value) = request.headers.header(&self.header)
            && let Some(token) = strip_scheme(value, &self.scheme)
        {
            return Some(token);
        }
        if let Some(cookie_name) = &self.cookie
            && let Some(token) = request
                .headers
                .header("cookie")
                .and_then(|cookies| find_cookie(cookies, cookie_name))
        {
            return Some(token);
        }
        if let Some(param) = &self.query {
            let query = request.path.split_once('?').map(|(_, q)| q).unwrap_or("");
            return query.split('&').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                (name == param && !value.is_empty()).then_some(value)
            });
        }
        None
    }
}

/// `Bearer <token>` → `<token>`; scheme compared case-insensitively (RFC 7235 §2.1).
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let value = value.trim();
    if scheme.is_empty() {
        return (!value.is_empty()).then_some(value);
    }
    let head = value.get(..scheme.len())?;
    let rest = value.get(scheme.len()..)?;
    if !head.eq_ignore_ascii_case(scheme) || !rest.starts_with([' ', '\t']) {
        return None;
    }
    let token = rest.trim_start_matches([' ', '\t']);
    (!token.is_empty()).then_some(token)
}

fn find_cookie<'a>(cookies: &'a str, name: &str) -> Option<&'a str> {
    cookies.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name && !v.is_empty()).then_some(v.trim_matches('"'))
    })
}

/// One configured issuer with its keys and rules.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The provider's configured name (metrics label).
    pub name: String,
    /// Algorithms, claim rules and caps.
    pub policy: TokenPolicy,
    /// The current key set snapshot.
    pub keys: Arc<KeySet>,
    /// Bumped whenever `keys` changes (see [`KeyState::generation`]).
    pub keys_generation: u64,
    /// When the key set was loaded or last confirmed by its source (Unix seconds); `None`
    /// before the first good one.
    pub keys_loaded_at: Option<u64>,
    /// The key source's last failure, while it keeps failing.
    pub keys_error: Option<String>,
    /// The live source refetching this provider's keys (remote and watched-file sources); the
    /// request path asks it for a refetch when a token's `kid` is unknown.
    pub live: Option<Arc<LiveSource>>,
    /// The RFC 7662 client of a `type = "introspection"` provider (it has no keys).
    pub introspection: Option<Arc<IntrospectionClient>>,
    /// Claim name → request header name added upstream on allow.
    pub claims_to_headers: Vec<(String, String)>,
    /// Claims the answer carries as metadata (`["*"]` = all; empty = no metadata).
    pub claims_to_metadata: Vec<String>,
    /// Scopes that must all be granted (`scope` string or `scp` array), else 403.
    pub required_scopes: Vec<String>,
    /// Where the credential is found.
    pub source: CredentialSource,
}

impl Provider {
    /// This provider serving `state`'s keys.
    pub fn with_key_state(&self, state: KeyState) -> Provider {
        Provider {
            keys: state.keys,
            keys_generation: state.generation,
            keys_loaded_at: state.loaded_at,
            keys_error: state.last_error,
            ..self.clone()
        }
    }

    /// The provider's key state (for carrying keys over a reload).
    pub fn key_state(&self) -> KeyState {
        KeyState {
            keys: Arc::clone(&self.keys),
            generation: self.keys_generation,
            loaded_at: self.keys_loaded_at,
            last_error: self.keys_error.clone(),
        }
    }
}

/// An immutable set of providers, selected by `iss` with one hash lookup.
#[derive(Debug, Default)]
pub struct Providers {
    list: Vec<Provider>,
    /// JWT providers by issuer.
    by_issuer: HashMap<String, usize>,
    /// The JWT provider, when there is exactly one (its tokens need no `iss` lookup).
    only_jwt: Option<usize>,
    sources: Vec<CredentialSource>,
    /// Unique per configuration (a reload gets a new one); key refreshes keep it.
    config_id: u64,
    /// Unique per published snapshot (every reload and every key-set change).
    snapshot_id: u64,
}

/// Source of [`Providers`] ids: unique within the process.
static NEXT_PROVIDERS_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_providers_id() -> u64 {
    NEXT_PROVIDERS_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Providers {
    /// Builds the set; issuers must be unique (config validation guarantees it).
    pub fn new(list: Vec<Provider>) -> Providers {
        let id = next_providers_id();
        Self::build(list, id, id)
    }

    fn build(list: Vec<Provider>, config_id: u64, snapshot_id: u64) -> Providers {
        let mut by_issuer = HashMap::with_capacity(list.len());
        let mut sources: Vec<CredentialSource> = Vec::new();
        let mut jwt = Vec::new();
        for (index, provider) in list.iter().enumerate() {
            if provider.introspection.is_none() {
                jwt.push(index);
                if let Some(issuer) = &provider.policy.rules.issuer {
                    by_issuer.insert(issuer.clone(), index);
                }
            }
            if !sources.contains(&provider.source) {
                sources.push(provider.source.clone());
            }
        }
        Providers {
            list,
            by_issuer,
            only_jwt: match jwt.as_slice() {
                [only] => Some(*only),
                _ => None,
            },
            sources,
            config_id,
            snapshot_id,
        }
    }

    /// Unique per configuration: cached answers of another configuration are not served.
    pub fn config_id(&self) -> u64 {
        self.config_id
    }

    /// Unique per published snapshot: answers that depend on every key set (a bad signature,
    /// an unknown issuer) are only served from the snapshot that made them.
    pub fn snapshot_id(&self) -> u64 {
        self.snapshot_id
    }

    /// The providers, in configuration order.
    pub fn list(&self) -> &[Provider] {
        &self.list
    }

    /// The provider for an issuer.
    pub fn by_issuer(&self, issuer: &str) -> Option<&Provider> {
        self.by_issuer
            .get(issuer)
            .and_then(|index| self.list.get(*index))
    }

    /// The provider with this configured name.
    pub fn by_name(&self, name: &str) -> Option<&Provider> {
        self.list.iter().find(|p| p.name == name)
    }

    /// The same providers with the one at `index` serving `state` (a key source's new
    /// snapshot); `None` when there is no such provider.
    pub fn with_key_state(&self, index: usize, state: KeyState) -> Option<Providers> {
        let mut list = self.list.clone();
        let slot = list.get_mut(index)?;
        *slot = slot.with_key_state(state);
        Some(Self::build(list, self.config_id, next_providers_id()))
    }

    /// The request's credential and the source it came from, in the providers' source order.
    fn credential<'a>(&self, request: &RequestView<'a>) -> Option<(&'a str, &CredentialSource)> {
        self.sources
            .iter()
            .find_map(|source| source.extract(request).map(|t| (t, source)))
    }

    /// The request's credential and its source's position (which decides the providers that
    /// judge it, so caches key answers by both).
    pub fn credential_at<'a>(&self, request: &RequestView<'a>) -> Option<(&'a str, u32)> {
        self.sources.iter().enumerate().find_map(|(index, source)| {
            source
                .extract(request)
                .map(|t| (t, u32::try_from(index).unwrap_or(u32::MAX)))
        })
    }

    /// For a request denied with `unknown_key` by `provider`: that provider and the `kid` its
    /// token named (empty when it named none), so the caller can ask for a refetch.
    pub fn unknown_kid<'p>(
        &'p self,
        decision: &Decision,
        request: &RequestView<'_>,
    ) -> Option<(&'p Provider, String)> {
        let Decision::Deny(denied, Some(name)) = decision else {
            return None;
        };
        if denied.reason != Reject::UnknownKey {
            return None;
        }
        let provider = self.by_name(name)?;
        let (token, _) = self.credential(request)?;
        Some((provider, token_kid(token).unwrap_or_default()))
    }
}

/// The `kid` of a compact JWS's header, if it parses and names one.
pub fn token_kid(token: &str) -> Option<String> {
    token_header(token)?.kid.map(|kid| kid.to_string())
}

/// A compact JWS's header, parsed again off the hot path (a failure, or an answer being cached).
pub(super) fn token_header(token: &str) -> Option<crate::jose::Header> {
    let header_b64 = token.split('.').next()?;
    let header = crate::jose::b64::decode(header_b64.as_bytes())?;
    crate::jose::jws::parse_header(&header).ok()
}

/// An allowed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    /// The provider that verified the token.
    pub provider: String,
    /// The token's algorithm (`None` for an introspected token).
    pub alg: Option<Algorithm>,
    /// Headers to set upstream (claims rendered).
    pub headers: Vec<(String, String)>,
    /// Configured claim headers this request did not get (to be removed upstream so a client
    /// cannot supply them itself).
    pub headers_to_remove: Vec<String>,
    /// The verified claims.
    pub claims: Map<String, Value>,
    /// `exp`, when present (bounds caching).
    pub expires_at: Option<u64>,
    /// The claims the provider puts into the answer's metadata; `None` = no metadata.
    pub metadata: Option<Map<String, Value>>,
    /// What the token can be revoked by, hashed once here so every later check (cached
    /// answers included) is a few hash probes.
    pub revocable: RevocationKeys,
    /// The protocol layer's encoded answer for this token, made on first use and then written
    /// as stored by every request that gets this `Allowed` (cache hits included), so headers
    /// are rendered and encoded once per token, not once per request.
    pub encoded_answer: std::sync::OnceLock<bytes::Bytes>,
}

/// A denied request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    /// Why.
    pub reason: Reject,
    /// The algorithm, when the header was readable.
    pub alg: Option<Algorithm>,
}

/// The answer for one request; the provider name is reported for allow and deny alike.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Let the request through (shared: a cached answer is handed out without a copy).
    Allow(Arc<Allowed>),
    /// Refuse it; the `Option<String>` is the provider, when one was selected.
    Deny(Denied, Option<String>),
}

/// A token that passed every check, with the provider that judged it.
#[derive(Debug, Clone)]
pub struct Judged<'p> {
    /// The provider.
    pub provider: &'p Provider,
    /// The token's algorithm.
    pub alg: Algorithm,
    /// The verified claims.
    pub claims: crate::jose::Claims,
    /// The header's `kid`, when it had one.
    pub kid: Option<Arc<str>>,
}

/// Why a token failed, with what was known when it failed.
#[derive(Debug, Clone, Copy)]
pub struct Failed<'p> {
    /// The reason.
    pub reason: Reject,
    /// The provider, when one was selected.
    pub provider: Option<&'p Provider>,
    /// The algorithm, when the header was readable.
    pub alg: Option<Algorithm>,
}

/// How a token's provider is chosen.
#[derive(Debug, Clone, Copy)]
pub enum Selector<'a> {
    /// By the token's `iss`, among providers reading credentials from this source.
    Issuer(Option<&'a CredentialSource>),
    /// By configured name.
    Name(&'a str),
}

impl Providers {
    /// The provider for `token`, and the token already parsed when routing by `iss` had to
    /// parse it within that provider's limits (so its payload is decoded once).
    fn select<'t>(
        &self,
        token: &'t str,
        selector: Selector<'_>,
    ) -> Result<(&Provider, Option<CompactJws<'t>>), Reject> {
        match selector {
            Selector::Name(name) => self
                .list
                .iter()
                .find(|p| p.name == name)
                .map(|p| (p, None))
                .ok_or(Reject::WrongIssuer),
            Selector::Issuer(source) => {
                if let Some(only) = self.only_jwt.and_then(|index| self.list.get(index))
                    && source.is_none_or(|s| *s == only.source)
                {
                    return Ok((only, None));
                }
                let limits = self
                    .list
                    .first()
                    .map(|p| p.policy.limits)
                    .unwrap_or_default();
                let jws = parse_compact(token.as_bytes(), &limits)?;
                let provider = {
                    let issuer = payload_issuer(jws.payload())?.ok_or(Reject::WrongIssuer)?;
                    match self.by_issuer(&issuer) {
                        Some(p) if source.is_none_or(|s| *s == p.source) => p,
                        _ => return Err(Reject::WrongIssuer),
                    }
                };
                // Parsed within the first provider's caps; a provider with other caps parses
                // again within its own.
                let parsed = (provider.policy.limits == limits).then_some(jws);
                Ok((provider, parsed))
            }
        }
    }
}

/// Parses (unless routing already did), checks the algorithm and picks the key.
fn begin_selected<'t, 'p>(
    token: &'t str,
    provider: &'p Provider,
    parsed: Option<CompactJws<'t>>,
) -> Result<super::Pending<'t, 'p>, Reject> {
    match parsed {
        Some(jws) => begin_parsed(jws, &provider.policy, &provider.keys),
        None => begin(token.as_bytes(), &provider.policy, &provider.keys),
    }
}

/// Judges many tokens at once: headers parsed and keys chosen for all, then every signature
/// checked in one [`Backend::verify_batch`] call, then claims and scopes. `results[i]` answers
/// `tokens[i]`.
pub fn judge_batch<'p>(
    tokens: &[(&str, Selector<'_>)],
    providers: &'p Providers,
    backend: &dyn Backend,
    now: u64,
) -> Vec<Result<Judged<'p>, Failed<'p>>> {
    let mut results: Vec<Result<Judged<'p>, Failed<'p>>> = Vec::with_capacity(tokens.len());
    let mut pending = Vec::with_capacity(tokens.len());
    for (index, (token, selector)) in tokens.iter().enumerate() {
        let failed = |reason, provider| Failed {
            reason,
            provider,
            alg: None,
        };
        let (provider, parsed) = match providers.select(token, *selector) {
            Ok(selected) => selected,
            Err(reason) => {
                results.push(Err(failed(reason, None)));
                continue;
            }
        };
        match begin_selected(token, provider, parsed) {
            Ok(p) => {
                // Placeholder until the batch answers; overwritten below.
                results.push(Err(failed(Reject::BadSignature, Some(provider))));
                pending.push((index, provider, p));
            }
            Err(reason) => results.push(Err(Failed {
                alg: readable_alg(token, reason),
                ..failed(reason, Some(provider))
            })),
        }
    }
    let jobs: Vec<_> = pending.iter().map(|(_, _, p)| p.job()).collect();
    let mut signatures = Vec::with_capacity(jobs.len());
    backend.verify_batch(&jobs, &mut signatures);
    drop(jobs);
    for ((index, provider, pending), signature) in pending.into_iter().zip(signatures) {
        if let Some(slot) = results.get_mut(index) {
            *slot = conclude(provider, pending, signature, now);
        }
    }
    results
}

/// The header's algorithm for failures that happen after the header parsed (key selection and
/// allow-list), so metrics and `verdict.v1` report it. Only runs on those error paths.
fn readable_alg(token: &str, reason: Reject) -> Option<Algorithm> {
    match reason {
        Reject::UnknownKey
        | Reject::AmbiguousKey
        | Reject::AlgorithmNotAllowed
        | Reject::NoKeys => token_header(token).map(|h| h.alg),
        _ => None,
    }
}

/// Selects the provider, parses the token within its limits and picks the key: everything
/// before the signature check.
fn prepare<'t, 'p>(
    token: &'t str,
    selector: Selector<'_>,
    providers: &'p Providers,
) -> Result<(&'p Provider, super::Pending<'t, 'p>), Failed<'p>> {
    let (provider, parsed) = providers.select(token, selector).map_err(|reason| Failed {
        reason,
        provider: None,
        alg: None,
    })?;
    let pending = begin_selected(token, provider, parsed).map_err(|reason| Failed {
        reason,
        provider: Some(provider),
        alg: readable_alg(token, reason),
    })?;
    Ok((provider, pending))
}

/// The second half shared by [`judge_begin`] and [`judge_batch`]: given the signature result, check
/// the claims and the provider's required scopes.
fn conclude<'p>(
    provider: &'p Provider,
    pending: super::Pending<'_, '_>,
    signature: Result<(), Reject>,
    now: u64,
) -> Result<Judged<'p>, Failed<'p>> {
    let alg = pending.header().alg;
    let failed = |reason| Failed {
        reason,
        provider: Some(provider),
        alg: Some(alg),
    };
    let verified = pending
        .finish(signature, &provider.policy.rules, now)
        .map_err(failed)?;
    if !has_scopes(verified.claims.members(), &provider.required_scopes) {
        return Err(failed(Reject::InsufficientScope));
    }
    Ok(Judged {
        provider,
        alg,
        claims: verified.claims,
        kid: verified.header.kid,
    })
}

/// A decision either already made (no credential, unknown issuer, malformed token, unknown key,
/// …) or waiting for its signature check.
#[derive(Debug)]
pub enum Deciding<'t, 'p> {
    /// Decided without checking a signature.
    Done(Decision),
    /// The signature is next; the caller checks it however it likes (alone, or batched with
    /// other requests' signatures) and hands the result to [`PendingDecision::finish`].
    Signature(PendingDecision<'t, 'p>),
    /// Not JWT-shaped, and an introspection provider reads this credential: the caller asks
    /// its endpoint and hands the answer to [`super::PendingIntrospection::finish`].
    Introspect(super::PendingIntrospection<'t, 'p>),
}

/// A request whose token parsed and whose key was chosen.
#[derive(Debug)]
pub struct PendingDecision<'t, 'p> {
    judgment: PendingJudgment<'t, 'p>,
}

impl PendingDecision<'_, '_> {
    /// The signature check to run.
    pub fn job(&self) -> VerifyJob<'_> {
        self.judgment.job()
    }

    /// Given the signature's result, checks the claims and scopes at `now` and renders the
    /// answer.
    pub fn finish(self, signature: Result<(), Reject>, now: u64) -> Decision {
        decision(self.judgment.finish(signature, now))
    }
}

/// A token whose provider was selected, that parsed, and whose key was chosen: the signature
/// check is next (see [`judge_begin`]).
#[derive(Debug)]
pub struct PendingJudgment<'t, 'p> {
    provider: &'p Provider,
    pending: super::Pending<'t, 'p>,
}

impl<'p> PendingJudgment<'_, 'p> {
    /// The signature check to run.
    pub fn job(&self) -> VerifyJob<'_> {
        self.pending.job()
    }

    /// Given the signature's result, checks the claims and the provider's scopes at `now`.
    pub fn finish(self, signature: Result<(), Reject>, now: u64) -> Result<Judged<'p>, Failed<'p>> {
        conclude(self.provider, self.pending, signature, now)
    }
}

/// Judges one token up to its signature check, so the caller can check the signature however it
/// likes (alone, or batched with other requests') and then call [`PendingJudgment::finish`].
pub fn judge_begin<'t, 'p>(
    token: &'t str,
    selector: Selector<'_>,
    providers: &'p Providers,
) -> Result<PendingJudgment<'t, 'p>, Failed<'p>> {
    let (provider, pending) = prepare(token, selector, providers)?;
    Ok(PendingJudgment { provider, pending })
}

/// Decides one request up to its signature check: extract the credential, select the provider
/// by `iss`, parse the token and pick the key. [`PendingDecision::finish`] then checks the
/// claims and scopes and renders the claim headers.
pub fn decide_begin<'t, 'p>(
    request: &RequestView<'t>,
    providers: &'p Providers,
) -> Deciding<'t, 'p> {
    let Some((token, source)) = providers.credential(request) else {
        return Deciding::Done(Decision::Deny(
            Denied {
                reason: Reject::MissingCredential,
                alg: None,
            },
            None,
        ));
    };
    if !super::introspection::is_jwt_shaped(token)
        && let Some(provider) = providers
            .list
            .iter()
            .find(|p| p.introspection.is_some() && p.source == *source)
    {
        return Deciding::Introspect(super::PendingIntrospection::new(provider, token));
    }
    match prepare(token, Selector::Issuer(Some(source)), providers) {
        Ok((provider, pending)) => Deciding::Signature(PendingDecision {
            judgment: PendingJudgment { provider, pending },
        }),
        Err(failed) => Deciding::Done(decision(Err(failed))),
    }
}

/// The answer for a judged token: claim headers rendered when allowed.
fn decision(judged: Result<Judged<'_>, Failed<'_>>) -> Decision {
    match judged {
        Ok(judged) => {
            let expires_at = judged.claims.expires_at();
            allow(
                judged.provider,
                Some(judged.alg),
                judged.kid.as_deref(),
                judged.claims.into_members(),
                expires_at,
            )
        }
        Err(failed) => Decision::Deny(
            Denied {
                reason: failed.reason,
                alg: failed.alg,
            },
            failed.provider.map(|p| p.name.clone()),
        ),
    }
}

/// An allow decision with `provider`'s claim headers rendered from `claims`.
pub(super) fn allow(
    provider: &Provider,
    alg: Option<Algorithm>,
    kid: Option<&str>,
    claims: Map<String, Value>,
    expires_at: Option<u64>,
) -> Decision {
    let revocable = revocation_keys(&provider.name, kid, &claims);
    let metadata = match provider.claims_to_metadata.as_slice() {
        [] => None,
        [all] if all == "*" => Some(claims.clone()),
        wanted => Some(
            wanted
                .iter()
                .filter_map(|name| claims.get(name).map(|v| (name.clone(), v.clone())))
                .collect(),
        ),
    };
    let mut headers = Vec::with_capacity(provider.claims_to_headers.len());
    let mut headers_to_remove = Vec::new();
    for (claim, header) in &provider.claims_to_headers {
        match claims.get(claim).map(render_header_value) {
            Some(Rendered::Value(value)) => headers.push((header.clone(), value)),
            None | Some(Rendered::Absent) => headers_to_remove.push(header.clone()),
            Some(Rendered::Refused) => {
                // Never rewritten into another value: a required claim denies, any other is
                // left out (and removed, so the client cannot supply it) and counted.
                if provider.policy.rules.required_claims.contains(claim) {
                    return Decision::Deny(
                        Denied {
                            reason: Reject::UnrenderableClaim,
                            alg,
                        },
                        Some(provider.name.clone()),
                    );
                }
                metrics::counter!(
                    crate::telemetry::names::CLAIM_HEADERS_REFUSED_TOTAL,
                    crate::telemetry::names::labels::PROVIDER => provider.name.clone(),
                    crate::telemetry::names::labels::HEADER => header.clone(),
                )
                .increment(1);
                headers_to_remove.push(header.clone());
            }
        }
    }
    Decision::Allow(Arc::new(Allowed {
        provider: provider.name.clone(),
        alg,
        headers,
        headers_to_remove,
        claims,
        expires_at,
        metadata,
        revocable,
        encoded_answer: std::sync::OnceLock::new(),
    }))
}

/// The hashed `jti`/`sub`/`sid`/`kid`/`iat` a verified token can be revoked by.
pub fn revocation_keys(
    provider: &str,
    kid: Option<&str>,
    claims: &Map<String, Value>,
) -> RevocationKeys {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let iat = claims.get("iat").and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    });
    RevocationKeys::of(provider, text("jti"), text("sub"), text("sid"), kid, iat)
}

/// Whether every required scope is granted by `scope` (space-separated) or `scp` (array).
pub(super) fn has_scopes(claims: &Map<String, Value>, required: &[String]) -> bool {
    if required.is_empty() {
        return true;
    }
    let mut granted: Vec<&str> = Vec::new();
    if let Some(Value::String(scope)) = claims.get("scope") {
        granted.extend(scope.split(' ').filter(|s| !s.is_empty()));
    }
    if let Some(Value::Array(scp)) = claims.get("scp") {
        granted.extend(scp.iter().filter_map(Value::as_str));
    }
    if let Some(Value::String(scp)) = claims.get("scp") {
        granted.extend(scp.split(' ').filter(|s| !s.is_empty()));
    }
    required.iter().all(|want| granted.contains(&want.as_str()))
}

/// Whether `text` starts or ends with a space (what HTTP would strip from a field value).
fn has_edge_space(text: &str) -> bool {
    text.starts_with(' ') || text.ends_with(' ')
}

/// A claim rendered for a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// The header value.
    Value(String),
    /// `null`: no header.
    Absent,
    /// The value cannot stand in a header unchanged.
    Refused,
}

/// How a claim becomes a header value, unambiguously and never altered: a string as it is; a
/// number as its JSON text; `true`/`false`; an array of strings joined with `,` (refused if an
/// element is empty or holds a comma, which would make two arrays render alike); any other
/// array or an object as compact JSON; `null` as no header. A value (or an array element) with
/// a leading or trailing space is refused, since HTTP strips it. A value with a control character
/// (Unicode Cc: U+0000–U+001F with TAB, U+007F–U+009F) is refused, never stripped: dropping them could
/// turn one subject into another.
pub fn render_header_value(value: &Value) -> Rendered {
    let text = match value {
        Value::Null => return Rendered::Absent,
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let parts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if parts
                .iter()
                .any(|p| p.is_empty() || p.contains(',') || has_edge_space(p))
            {
                return Rendered::Refused;
            }
            parts.join(",")
        }
        other => other.to_string(),
    };
    // HTTP drops a field value's leading and trailing whitespace, so " admin" would reach the
    // upstream as "admin".
    if text.chars().any(char::is_control) || has_edge_space(&text) {
        return Rendered::Refused;
    }
    Rendered::Value(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn claims_render_unambiguously_or_are_refused() {
        use serde_json::json;
        let value = |s: &str| Rendered::Value(s.to_owned());
        for (claim, want) in [
            (json!("alice"), value("alice")),
            (json!("ünï côdé"), value("ünï côdé")),
            (json!(42), value("42")),
            (json!(-1.5), value("-1.5")),
            (json!(true), value("true")),
            (json!(["a", "b"]), value("a,b")),
            (json!([]), value("")),
            (json!(["a,b"]), Rendered::Refused),
            (json!(["a", ""]), Rendered::Refused),
            (json!([1, "a"]), value(r#"[1,"a"]"#)),
            (json!({"id": "o-1"}), value(r#"{"id":"o-1"}"#)),
            (json!(null), Rendered::Absent),
            (json!("ad\u{0000}min"), Rendered::Refused),
            (json!("ad\tmin"), Rendered::Refused),
            (json!("ad\u{007f}min"), Rendered::Refused),
            (json!("ad\u{0085}min"), Rendered::Refused),
            (json!("a\r\nx-injected: 1"), Rendered::Refused),
            (json!(["a\nb"]), Rendered::Refused),
            (json!({"k": "a\nb"}), value(r#"{"k":"a\nb"}"#)),
            (json!(" admin"), Rendered::Refused),
            (json!("admin "), Rendered::Refused),
            (json!("ad min"), value("ad min")),
            (json!(["a", " b"]), Rendered::Refused),
        ] {
            assert_eq!(render_header_value(&claim), want, "{claim}");
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_strict() {
        let source = CredentialSource::default();
        for (value, want) in [
            ("Bearer abc", Some("abc")),
            ("bearer   abc", Some("abc")),
            ("BEARER\tabc", Some("abc")),
            ("Bearerabc", None),
            ("Basic abc", None),
            ("Bearer ", None),
            ("", None),
        ] {
            let h = headers(&[("authorization", value)]);
            let view = RequestView {
                headers: &h,
                path: "/",
            };
            assert_eq!(source.extract(&view), want, "{value:?}");
        }
    }

    #[test]
    fn cookie_and_query_sources() {
        let source = CredentialSource {
            header: "x-token".into(),
            scheme: String::new(),
            cookie: Some("session".into()),
            query: Some("access_token".into()),
        };
        let h = headers(&[("cookie", "a=1; session=tok.en.x; b=2")]);
        let view = RequestView {
            headers: &h,
            path: "/",
        };
        assert_eq!(source.extract(&view), Some("tok.en.x"));
        let h = headers(&[]);
        let view = RequestView {
            headers: &h,
            path: "/p?x=1&access_token=q.r.s",
        };
        assert_eq!(source.extract(&view), Some("q.r.s"));
        let h = headers(&[("x-token", "raw.tok.en")]);
        let view = RequestView {
            headers: &h,
            path: "/",
        };
        assert_eq!(source.extract(&view), Some("raw.tok.en"));
    }

    #[test]
    fn scopes_are_read_from_scope_and_scp() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"scope":"a b","scp":["c"]}"#).expect("json");
        assert!(has_scopes(&claims, &["a".into(), "c".into()]));
        assert!(!has_scopes(&claims, &["d".into()]));
    }
}
