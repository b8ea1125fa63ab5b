//! Live key sources: a provider's `jwks_uri`, `discovery_uri` or watched `jwks_file`, kept
//! current by one task per provider on the control runtime.
//!
//! The task owns the provider's [`KeyState`] and hands every new one to a `publish` callback,
//! which swaps it into the providers snapshot the cores read: the request path never waits on a
//! fetch and never takes a lock. The one exception is a token whose `kid` is unknown: its check
//! may wait, at most `kid_miss_wait_ms`, for a refetch ([`LiveSource::on_unknown_kid`]); at most
//! one such refetch runs per `kid_miss_refetch_interval_s` (one in flight at a time, claimed
//! without a lock), and `kid`s a refetch did not bring are remembered, so a flood of forged
//! `kid`s costs the IdP one fetch and each repeated forgery a lookup.
#![forbid(unsafe_code)]

use super::KeySet;
use super::fetch::{FetchError, Fetched, HttpFetcher, url_allowed};
use super::schedule::{AbsentKids, KidMissGate, RefreshRules};
use crate::crypto::Backend;
use crate::jose::Algorithm;
use crate::telemetry::names::{self, labels};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Notify, watch};

/// What a provider's key source serves right now: published whole, never mutated.
#[derive(Debug, Clone)]
pub struct KeyState {
    /// The usable keys (empty: the provider fails closed with `no_keys`).
    pub keys: Arc<KeySet>,
    /// Bumped whenever `keys` changes, so anything derived from a key set (remembered absent
    /// `kid`s, cached answers) can tell it is out of date.
    pub generation: u64,
    /// Unix seconds when these keys were last loaded or confirmed by their source.
    pub loaded_at: Option<u64>,
    /// The last fetch's failure, while it keeps failing (`/readyz` and logs show it).
    pub last_error: Option<String>,
}

impl KeyState {
    /// A state with `keys` loaded at `now`.
    pub fn loaded(keys: Arc<KeySet>, now: u64) -> KeyState {
        KeyState {
            keys,
            generation: 1,
            loaded_at: Some(now),
            last_error: None,
        }
    }

    /// No keys yet, and why.
    pub fn failed(error: impl Into<String>) -> KeyState {
        KeyState {
            keys: Arc::new(KeySet::default()),
            generation: 0,
            loaded_at: None,
            last_error: Some(error.into()),
        }
    }

    /// Seconds the keys have been served while their source fails (0 when it does not).
    pub fn stale_s(&self, now: u64) -> u64 {
        match (&self.last_error, self.loaded_at) {
            (Some(_), Some(at)) if !self.keys.is_empty() => now.saturating_sub(at),
            _ => 0,
        }
    }
}

/// Where a live source reads its keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A JWKS URL.
    Jwks(String),
    /// An OpenID Connect discovery (or RFC 8414 metadata) URL naming the JWKS URL.
    Discovery(String),
    /// A local JWKS file, reloaded when it changes.
    File(PathBuf),
}

/// Everything a live source needs to know about its provider.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The provider's name (logs, metrics).
    pub provider: String,
    /// The configured issuer: a discovery document naming another is refused.
    pub issuer: String,
    /// Where the keys come from.
    pub location: Location,
    /// The provider's allowed algorithms (keys are prepared for these only).
    pub algorithms: Vec<Algorithm>,
    /// Refresh timing.
    pub rules: RefreshRules,
}

/// How often a watched `jwks_file` is checked for a change (a `stat`, nothing more).
pub const FILE_POLL: Duration = Duration::from_secs(1);

/// What the request path shares with a provider's source task.
#[derive(Debug)]
pub struct LiveSource {
    provider: String,
    rules: RefreshRules,
    gate: KidMissGate,
    absent: AbsentKids,
    wake: Notify,
    in_flight: AtomicBool,
    /// Counts finished fetches; a waiter sees it change once the fetch it waited for is done
    /// and its outcome is published.
    done: watch::Sender<u64>,
    /// The generation of the key set last published (after it is in the providers snapshot).
    published: AtomicU64,
    epoch: Instant,
}

/// What happened to a check whose `kid` was unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KidMiss {
    /// A fetch finished while the check waited: decide again on the new snapshot.
    Refetched,
    /// No fetch (rate-limited, remembered absent, or the wait ran out): deny.
    Deny,
}

impl LiveSource {
    fn new(provider: &str, rules: RefreshRules) -> LiveSource {
        LiveSource {
            provider: provider.to_owned(),
            rules,
            gate: KidMissGate::new(Duration::from_secs(rules.kid_miss_interval_s)),
            absent: AbsentKids::default(),
            wake: Notify::new(),
            in_flight: AtomicBool::new(false),
            done: watch::Sender::new(0),
            published: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// Called by a check whose token names `kid`, missing from key-set `generation`. Waits, at
    /// most `kid_miss_wait_ms`, for a fetch: one already in flight, or one this call starts if
    /// the rate limit allows. Never waits for a `kid` a fetch of this generation did not bring.
    pub async fn on_unknown_kid(&self, kid: &str, generation: u64) -> KidMiss {
        let count = |result: &'static str| {
            metrics::counter!(
                names::KEYSET_KID_MISSES_TOTAL,
                labels::PROVIDER => self.provider.clone(),
                labels::RESULT => result
            )
            .increment(1);
        };
        // A fetch that finished after this check loaded its snapshot may already have brought
        // the key: decide again on the newer set rather than wait for (or be refused) another.
        if self.published.load(Ordering::Acquire) > generation {
            count("newer");
            return KidMiss::Refetched;
        }
        if self.absent.contains(kid, generation) {
            count("remembered");
            return KidMiss::Deny;
        }
        let mut finished = self.done.subscribe();
        if self.in_flight.load(Ordering::Acquire) {
            count("joined");
        } else if self.gate.try_claim(self.now_ms()) {
            count("refetch");
            self.wake.notify_one();
        } else {
            count("rate_limited");
            return KidMiss::Deny;
        }
        match tokio::time::timeout(self.rules.kid_miss_wait, finished.changed()).await {
            Ok(Ok(())) => KidMiss::Refetched,
            _ => KidMiss::Deny,
        }
    }

    /// Called when a check's `kid` is still missing after a refetch: later checks naming it are
    /// denied with a lookup until the key set changes.
    pub fn remember_absent(&self, kid: &str, generation: u64) {
        self.absent.remember(kid, generation);
    }
}

/// Creates a provider's live source: the handle the request path uses, and the task (to spawn
/// on the control runtime) that fetches at once, then on schedule and on unknown `kid`s,
/// calling `publish` with every new state. `initial` is what the provider serves until then
/// (keys carried over from before a reload, a file loaded at start, or nothing).
pub fn start(
    spec: SourceSpec,
    initial: KeyState,
    backend: Arc<dyn Backend>,
    fetcher: HttpFetcher,
    publish: Arc<dyn Fn(KeyState) + Send + Sync>,
) -> (Arc<LiveSource>, impl Future<Output = ()> + Send + 'static) {
    let task = SourceTask::new(spec, initial, backend, fetcher, publish);
    (Arc::clone(&task.live), task.run())
}

/// Fetches a source's key set once, as its task would at start, and returns the number of
/// usable keys (for `verdict check-config`, which warns when an IdP cannot be reached).
pub async fn probe(
    spec: SourceSpec,
    backend: Arc<dyn Backend>,
    fetcher: HttpFetcher,
) -> Result<usize, String> {
    let mut task = SourceTask::new(
        spec,
        KeyState::failed("probe"),
        backend,
        fetcher,
        Arc::new(|_| {}),
    );
    let outcome = match task.spec.location {
        Location::File(_) => task.reload_file(),
        _ => task.fetch(Cause::Scheduled).await,
    }?;
    match outcome {
        Outcome::Updated(keys, _) => Ok(keys.len()),
        Outcome::Unchanged(_) => Ok(task.state.keys.len()),
    }
}

/// Why a fetch ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Scheduled,
    KidMiss,
}

impl Cause {
    fn label(self) -> &'static str {
        match self {
            Cause::Scheduled => labels::SCHEDULED,
            Cause::KidMiss => labels::KID_MISS,
        }
    }
}

/// A fetch that worked.
enum Outcome {
    /// A new key set.
    Updated(Arc<KeySet>, Option<String>),
    /// The current one is confirmed (304, the same document, an unchanged file).
    Unchanged(Option<String>),
}

struct SourceTask {
    live: Arc<LiveSource>,
    state: KeyState,
    spec: SourceSpec,
    backend: Arc<dyn Backend>,
    fetcher: HttpFetcher,
    publish: Arc<dyn Fn(KeyState) + Send + Sync>,
    jwks_etag: Option<String>,
    /// Digest of the last JWKS body loaded, so a server without ETags resending the same
    /// document does not count as a new key set.
    jwks_digest: Option<u64>,
    discovery_etag: Option<String>,
    discovered_jwks: Option<String>,
    /// (length, modification time) of the watched file when last loaded.
    file_stamp: Option<(u64, Option<SystemTime>)>,
    failures: u32,
    /// The failure last logged, so a failing IdP logs once per change, not once per attempt.
    logged_error: Option<String>,
}

/// The wall clock in Unix seconds (key ages and the stale bound are wall-clock facts).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SourceTask {
    fn new(
        spec: SourceSpec,
        state: KeyState,
        backend: Arc<dyn Backend>,
        fetcher: HttpFetcher,
        publish: Arc<dyn Fn(KeyState) + Send + Sync>,
    ) -> SourceTask {
        SourceTask {
            live: Arc::new(LiveSource::new(&spec.provider, spec.rules)),
            state,
            spec,
            backend,
            fetcher,
            publish,
            jwks_etag: None,
            jwks_digest: None,
            discovery_etag: None,
            discovered_jwks: None,
            file_stamp: None,
            failures: 0,
            logged_error: None,
        }
    }

    async fn run(mut self) {
        let is_file = matches!(self.spec.location, Location::File(_));
        if let Location::File(path) = &self.spec.location {
            // The file was loaded when the providers were built: watch from its current stamp.
            self.file_stamp = file_stamp(path);
        }
        let mut next = if is_file {
            tokio::time::Instant::now() + FILE_POLL
        } else {
            tokio::time::Instant::now()
        };
        loop {
            let stale_in = self.stale_in();
            let cause = tokio::select! {
                () = tokio::time::sleep_until(next) => Some(Cause::Scheduled),
                () = self.live.wake.notified() => Some(Cause::KidMiss),
                () = sleep_or_never(stale_in) => None,
            };
            let Some(cause) = cause else {
                self.fail_closed_if_stale();
                continue;
            };
            self.live.in_flight.store(true, Ordering::Release);
            let started = Instant::now();
            let outcome = if is_file {
                self.reload_file()
            } else {
                self.fetch(cause).await
            };
            let now = unix_now();
            metrics::histogram!(
                names::KEYSET_FETCH_DURATION_SECONDS,
                labels::PROVIDER => self.spec.provider.clone()
            )
            .record(started.elapsed().as_secs_f64());
            metrics::gauge!(
                names::KEYSET_LAST_FETCH_TIMESTAMP_SECONDS,
                labels::PROVIDER => self.spec.provider.clone()
            )
            .set(now as f64);
            let draw = random_draw();
            let (result, wait) = match outcome {
                Ok(outcome) => {
                    self.failures = 0;
                    let (result, cache_control) = match outcome {
                        Outcome::Updated(keys, cache_control) => {
                            self.state = KeyState {
                                keys,
                                generation: self.state.generation + 1,
                                loaded_at: Some(now),
                                last_error: None,
                            };
                            (labels::UPDATED, cache_control)
                        }
                        Outcome::Unchanged(cache_control) => {
                            self.state.loaded_at = Some(now);
                            self.state.last_error = None;
                            (labels::UNCHANGED, cache_control)
                        }
                    };
                    if let Some(previous) = self.logged_error.take() {
                        tracing::info!(
                            provider = %self.spec.provider,
                            previous_error = %previous,
                            keys = self.state.keys.len(),
                            "key source recovered"
                        );
                    }
                    (self.publish.as_ref())(self.state.clone());
                    let wait = if is_file {
                        FILE_POLL
                    } else {
                        self.spec
                            .rules
                            .after_success(cache_control.as_deref(), draw)
                    };
                    (result, wait)
                }
                Err(error) => {
                    self.failures = self.failures.saturating_add(1);
                    if self.logged_error.as_deref() != Some(error.as_str()) {
                        tracing::warn!(
                            provider = %self.spec.provider,
                            %error,
                            serving_keys = self.state.keys.len(),
                            "key source failed; the last good key set keeps serving until max_stale_s"
                        );
                        self.logged_error = Some(error.clone());
                    }
                    // Once failed closed, say so in every later error too (`/readyz` shows it).
                    let expired = self.state.keys.is_empty()
                        && self
                            .state
                            .loaded_at
                            .is_some_and(|at| now >= self.spec.rules.stale_deadline(at));
                    self.state.last_error = Some(if expired {
                        format!(
                            "{error}; failing closed: no good key set for more than max_stale_s ({} s)",
                            self.spec.rules.max_stale_s
                        )
                    } else {
                        error
                    });
                    (self.publish.as_ref())(self.state.clone());
                    let wait = if is_file {
                        FILE_POLL
                    } else {
                        self.spec.rules.after_failure(self.failures, draw)
                    };
                    (labels::ERROR, wait)
                }
            };
            metrics::gauge!(
                names::KEYSET_LAST_FETCH_SUCCESS,
                labels::PROVIDER => self.spec.provider.clone()
            )
            .set(if result == labels::ERROR { 0.0 } else { 1.0 });
            metrics::counter!(
                names::KEYSET_FETCHES_TOTAL,
                labels::PROVIDER => self.spec.provider.clone(),
                labels::CAUSE => cause.label(),
                labels::RESULT => result
            )
            .increment(1);
            self.live
                .published
                .fetch_max(self.state.generation, Ordering::AcqRel);
            self.live.in_flight.store(false, Ordering::Release);
            self.live.done.send_modify(|n| *n = n.wrapping_add(1));
            next = tokio::time::Instant::now() + wait;
        }
    }

    /// Time until the served key set passes `max_stale_s`, while the source fails.
    fn stale_in(&self) -> Option<Duration> {
        if matches!(self.spec.location, Location::File(_)) || self.state.keys.is_empty() {
            return None;
        }
        self.state.last_error.as_ref()?;
        let deadline = self.spec.rules.stale_deadline(self.state.loaded_at?);
        Some(Duration::from_secs(deadline.saturating_sub(unix_now())))
    }

    fn fail_closed_if_stale(&mut self) {
        let Some(loaded_at) = self.state.loaded_at else {
            return;
        };
        let now = unix_now();
        if now < self.spec.rules.stale_deadline(loaded_at) || self.state.keys.is_empty() {
            return;
        }
        let error = format!(
            "key set not confirmed for {} s (max_stale_s {}); failing closed; last error: {}",
            now.saturating_sub(loaded_at),
            self.spec.rules.max_stale_s,
            self.state.last_error.as_deref().unwrap_or("-")
        );
        tracing::error!(provider = %self.spec.provider, %error, "key set expired");
        self.state = KeyState {
            keys: Arc::new(KeySet::default()),
            generation: self.state.generation + 1,
            loaded_at: self.state.loaded_at,
            last_error: Some(error),
        };
        (self.publish.as_ref())(self.state.clone());
    }

    async fn fetch(&mut self, cause: Cause) -> Result<Outcome, String> {
        let jwks_uri = match &self.spec.location {
            Location::Jwks(uri) => uri.clone(),
            Location::Discovery(uri) => match (&self.discovered_jwks, cause) {
                // An unknown kid refetches the keys only; the document is refreshed on schedule.
                (Some(known), Cause::KidMiss) => known.clone(),
                _ => {
                    let uri = uri.clone();
                    self.discover(&uri).await?
                }
            },
            Location::File(_) => return Err("not a remote source".into()),
        };
        // Conditional only while keys serve: after failing closed (or with none loaded yet) a
        // 304 would confirm an empty set, and the provider would never recover.
        let etag = self
            .jwks_etag
            .clone()
            .filter(|_| !self.state.keys.is_empty());
        let fetched = self
            .fetcher
            .get(&jwks_uri, etag.as_deref())
            .await
            .map_err(|e| describe("jwks", &jwks_uri, &e))?;
        match fetched {
            Fetched::NotModified { cache_control } if etag.is_some() => {
                Ok(Outcome::Unchanged(cache_control))
            }
            Fetched::NotModified { .. } => Err(format!(
                "jwks {jwks_uri}: 304 Not Modified to an unconditional request"
            )),
            Fetched::Body {
                bytes,
                etag,
                cache_control,
            } => {
                let digest = digest(&bytes);
                if self.jwks_digest == Some(digest) && !self.state.keys.is_empty() {
                    self.jwks_etag = etag;
                    return Ok(Outcome::Unchanged(cache_control));
                }
                let keys = self
                    .build(&bytes)
                    .map_err(|e| format!("jwks {jwks_uri}: {e}"))?;
                self.jwks_etag = etag;
                self.jwks_digest = Some(digest);
                Ok(Outcome::Updated(keys, cache_control))
            }
        }
    }

    /// Fetches the discovery document (conditionally) and returns its `jwks_uri`.
    async fn discover(&mut self, uri: &str) -> Result<String, String> {
        let etag = self
            .discovered_jwks
            .as_ref()
            .and(self.discovery_etag.clone());
        let fetched = self
            .fetcher
            .get(uri, etag.as_deref())
            .await
            .map_err(|e| describe("discovery", uri, &e))?;
        match fetched {
            Fetched::NotModified { .. } => self.discovered_jwks.clone().ok_or_else(|| {
                format!("discovery {uri}: 304 Not Modified to an unconditional request")
            }),
            Fetched::Body { bytes, etag, .. } => {
                let document = parse_discovery(&bytes, &self.spec.issuer)
                    .map_err(|e| format!("discovery {uri}: {e}"))?;
                self.discovery_etag = etag;
                self.discovered_jwks = Some(document.jwks_uri.clone());
                Ok(document.jwks_uri)
            }
        }
    }

    fn reload_file(&mut self) -> Result<Outcome, String> {
        let Location::File(path) = &self.spec.location else {
            return Err("not a file source".into());
        };
        let stamp = file_stamp(path);
        if stamp.is_some() && stamp == self.file_stamp {
            return Ok(Outcome::Unchanged(None));
        }
        let bytes =
            std::fs::read(path).map_err(|e| format!("jwks_file {}: {e}", path.display()))?;
        let keys = self
            .build(&bytes)
            .map_err(|e| format!("jwks_file {}: {e}", path.display()))?;
        self.file_stamp = stamp;
        tracing::info!(provider = %self.spec.provider, file = %path.display(), keys = keys.len(), "jwks_file changed; key set reloaded");
        Ok(Outcome::Updated(keys, None))
    }

    fn build(&self, jwks: &[u8]) -> Result<Arc<KeySet>, String> {
        load_key_set(
            &self.spec.provider,
            jwks,
            &self.spec.algorithms,
            &*self.backend,
        )
    }
}

/// Builds `provider`'s key set from a JWKS, logging and counting the keys it skipped. One that
/// is not a JWKS or holds no usable key is an error: it never replaces the set serving.
pub fn load_key_set(
    provider: &str,
    jwks: &[u8],
    algorithms: &[Algorithm],
    backend: &dyn Backend,
) -> Result<Arc<KeySet>, String> {
    let keys = KeySet::from_jwks(jwks, algorithms, backend).map_err(|e| e.to_string())?;
    metrics::gauge!(names::KEYSET_SKIPPED_KEYS, labels::PROVIDER => provider.to_owned())
        .set(keys.skipped().len() as f64);
    for skipped in keys.skipped() {
        tracing::warn!(
            provider,
            index = skipped.index,
            kid = skipped.kid.as_deref().unwrap_or("-"),
            reason = %skipped.reason,
            "key skipped"
        );
    }
    if keys.is_empty() {
        return Err("the key set has no key usable with the allowed algorithms".into());
    }
    Ok(Arc::new(keys))
}

fn describe(what: &str, uri: &str, error: &FetchError) -> String {
    format!("{what} {uri}: {error}")
}

async fn sleep_or_never(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// A uniform draw in `[0, 1)` for refresh jitter (not security-relevant).
fn random_draw() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn file_stamp(path: &std::path::Path) -> Option<(u64, Option<SystemTime>)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()))
}

/// The parts of an OpenID Connect discovery / RFC 8414 document verdict uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// `jwks_uri`.
    pub jwks_uri: String,
    /// `introspection_endpoint`, when published.
    pub introspection_endpoint: Option<String>,
}

/// Parses a discovery document and checks that it speaks for `issuer` (OpenID Connect
/// Discovery §4.3, RFC 8414 §3.3: a document naming another issuer is refused).
pub fn parse_discovery(bytes: &[u8], issuer: &str) -> Result<Discovery, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or("not a discovery document (not a JSON object)")?;
    let text = |name: &str| -> Result<Option<String>, String> {
        match object.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{name} is not a string")),
        }
    };
    let published = text("issuer")?.ok_or("no issuer")?;
    if published != issuer {
        return Err(format!(
            "issuer {published:?} is not the configured issuer {issuer:?}"
        ));
    }
    let jwks_uri = text("jwks_uri")?.ok_or("no jwks_uri")?;
    check_url(&jwks_uri).map_err(|e| format!("jwks_uri: {e}"))?;
    let introspection_endpoint = text("introspection_endpoint")?;
    if let Some(endpoint) = &introspection_endpoint {
        check_url(endpoint).map_err(|e| format!("introspection_endpoint: {e}"))?;
    }
    Ok(Discovery {
        jwks_uri,
        introspection_endpoint,
    })
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    url_allowed(&parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_must_name_the_configured_issuer() {
        let doc = br#"{"issuer":"https://idp.example.com","jwks_uri":"https://idp.example.com/jwks","introspection_endpoint":"https://idp.example.com/introspect"}"#;
        let parsed = parse_discovery(doc, "https://idp.example.com").expect("parses");
        assert_eq!(parsed.jwks_uri, "https://idp.example.com/jwks");
        assert_eq!(
            parsed.introspection_endpoint.as_deref(),
            Some("https://idp.example.com/introspect")
        );
        let err = parse_discovery(doc, "https://idp.example.com/").expect_err("another issuer");
        assert!(err.contains("not the configured issuer"), "{err}");
        for (doc, want) in [
            (&b"[]"[..], "not a discovery document"),
            (b"{", "not JSON"),
            (br#"{"jwks_uri":"https://a/jwks"}"#, "no issuer"),
            (br#"{"issuer":"https://idp.example.com"}"#, "no jwks_uri"),
            (
                br#"{"issuer":"https://idp.example.com","jwks_uri":"http://evil.example.com/jwks"}"#,
                "plain http://",
            ),
            (
                br#"{"issuer":"https://idp.example.com","jwks_uri":7}"#,
                "not a string",
            ),
        ] {
            let err = parse_discovery(doc, "https://idp.example.com").expect_err("refused");
            assert!(err.contains(want), "{err} should say {want}");
        }
    }

    #[test]
    fn stale_seconds_count_only_while_failing_with_keys() {
        let keys = Arc::new(KeySet::default());
        let mut state = KeyState::loaded(keys, 100);
        assert_eq!(state.stale_s(160), 0);
        state.last_error = Some("down".into());
        // An empty set is not "served stale": it already fails closed.
        assert_eq!(state.stale_s(160), 0);
        assert_eq!(KeyState::failed("x").stale_s(160), 0);
        // Keys served while their source fails: stale since they were last confirmed.
        let jwks = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let keys = load_key_set(
            "p",
            jwks,
            &[Algorithm::EdDSA],
            &crate::crypto::AwsLcBackend::default(),
        )
        .expect("one key");
        let mut serving = KeyState::loaded(keys, 100);
        assert_eq!(serving.stale_s(160), 0, "not failing: not stale");
        serving.last_error = Some("down".into());
        assert_eq!(serving.stale_s(160), 60);
    }

    #[test]
    fn random_draws_stay_in_range() {
        for _ in 0..1000 {
            let draw = random_draw();
            assert!((0.0..1.0).contains(&draw));
        }
    }
}
