//! Builds the providers snapshot of a configuration and the live key sources that keep it
//! current: one task per `jwks_uri`, `discovery_uri` or `jwks_file` provider, on the control
//! runtime, publishing each new key state into the shared snapshot.
#![forbid(unsafe_code)]

use crate::config::{
    ClientAuth, ClientCredential, Config, KeySource, ProviderConfig, ProviderType, Unavailable,
    read_client_secret,
};
use crate::crypto::Backend;
use crate::keys::KeySet;
use crate::keys::fetch::{FetchLimits, HttpFetcher};
use crate::keys::introspect::{
    ClientAuthentication, ClientKey, Endpoint, IntrospectionClient, IntrospectionSettings,
};
use crate::keys::live::{self, KeyState, Location, SourceSpec};
use crate::keys::schedule::RefreshRules;
use crate::policy::{CredentialSource, Provider, Providers};
use arc_swap::ArcSwap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A source task, to spawn on the control runtime.
pub type SourceTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The snapshot the cores read and the configuration generation allowed to write into it:
/// tasks of a configuration that a reload replaced may still run once before they are
/// aborted, and must not publish into the new providers.
#[derive(Clone)]
pub struct Snapshot {
    /// The providers the cores read.
    pub providers: Arc<ArcSwap<Providers>>,
    /// The configuration generation whose tasks may publish.
    pub epoch: Arc<AtomicU64>,
}

/// Builds the providers of `config` and their source tasks. A provider whose key source and
/// algorithms are the same as in `previous` keeps serving its keys while its source refetches
/// (a reload never makes a healthy remote provider fail closed); a local file is read again; a
/// remote source with no keys yet fails closed (`no_keys`) until its first good fetch.
pub fn build(
    config: &Config,
    backend: &Arc<dyn Backend>,
    snapshot: &Snapshot,
    control: &tokio::runtime::Handle,
    previous: Option<(&Config, &Providers)>,
    now: u64,
) -> (Providers, Vec<SourceTask>) {
    let epoch = snapshot.epoch.fetch_add(1, Ordering::AcqRel) + 1;
    let mut tasks = Vec::new();
    let list = config
        .providers
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let carried = previous.and_then(|(old_config, old_providers)| {
                let old = old_config.providers.iter().find(|o| o.name == p.name)?;
                let same = old.key_source() == p.key_source() && old.algorithms == p.algorithms;
                let provider = old_providers.by_name(&p.name)?;
                (same && p.key_source().is_remote()).then(|| provider.key_state())
            });
            if p.r#type == ProviderType::Introspection {
                let mut provider = provider_from_config(p, config);
                match introspection_client(p, config, control) {
                    Ok(client) => provider.introspection = Some(Arc::new(client)),
                    Err(error) => {
                        tracing::error!(provider = %p.name, %error, "no introspection client; denying its tokens");
                        provider.keys_error = Some(error);
                    }
                }
                return provider;
            }
            let initial = carried.unwrap_or_else(|| initial_state(p, &**backend, now));
            let mut provider = provider_from_config(p, config).with_key_state(initial.clone());
            if let Some(spec) = source_spec(p) {
                match HttpFetcher::new(fetch_limits(p)) {
                    Ok(fetcher) => {
                        let (source, task) = live::start(
                            spec,
                            initial,
                            Arc::clone(backend),
                            fetcher,
                            publisher(snapshot.clone(), epoch, index),
                        );
                        provider.live = Some(source);
                        tasks.push(Box::pin(task) as SourceTask);
                    }
                    Err(error) => {
                        tracing::error!(provider = %p.name, %error, "cannot build the HTTP client; keys will not refresh");
                    }
                }
            }
            provider
        })
        .collect();
    (Providers::new(list), tasks)
}

/// The callback a source task calls with each new key state: it swaps provider `index`'s keys
/// into the shared snapshot, unless a reload has replaced that configuration since.
fn publisher(snapshot: Snapshot, epoch: u64, index: usize) -> Arc<dyn Fn(KeyState) + Send + Sync> {
    Arc::new(move |state: KeyState| {
        if snapshot.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        snapshot.providers.rcu(|current| {
            current
                .with_key_state(index, state.clone())
                .map(Arc::new)
                .unwrap_or_else(|| Arc::clone(current))
        });
    })
}

/// Tries to fetch every remote provider's keys (or, for an introspection provider found by
/// discovery, its discovery document) once; returns a warning per provider that failed.
pub fn probe_remote(config: &Config, backend: &Arc<dyn Backend>) -> Vec<String> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return vec!["cannot build a runtime to reach the IdPs".into()];
    };
    let mut warnings = Vec::new();
    for (index, p) in config.providers.iter().enumerate() {
        let at = format!("providers[{index}] ({})", p.name);
        let fetcher = match HttpFetcher::new(fetch_limits(p)) {
            Ok(fetcher) => fetcher,
            Err(e) => {
                warnings.push(format!("{at}: {e}"));
                continue;
            }
        };
        let result = if p.r#type == ProviderType::Introspection {
            let Some(uri) = p.discovery_uri.clone() else {
                continue;
            };
            runtime
                .block_on(crate::keys::introspect::discover_endpoint(
                    &fetcher, &uri, &p.issuer,
                ))
                .map(|_| 0)
        } else if p.key_source().is_remote()
            && let Some(spec) = source_spec(p)
        {
            runtime.block_on(live::probe(spec, Arc::clone(backend), fetcher))
        } else {
            continue;
        };
        if let Err(error) = result {
            warnings.push(format!(
                "{at}: cannot be reached now ({error}); `verdict serve` keeps retrying and fails closed until it can"
            ));
        }
    }
    warnings
}

/// The RFC 7662 client of an introspection provider, its credential read now.
fn introspection_client(
    p: &ProviderConfig,
    config: &Config,
    control: &tokio::runtime::Handle,
) -> Result<IntrospectionClient, String> {
    let id = p.client_id.clone().ok_or("no client_id")?;
    let auth = match p.client_credential().ok_or("no client credential")? {
        ClientCredential::Secret(path) => {
            let secret =
                read_client_secret(&path).map_err(|e| format!("client_secret_file: {e}"))?;
            match p.client_auth_method() {
                ClientAuth::ClientSecretPost => ClientAuthentication::Post { id, secret },
                _ => ClientAuthentication::basic(&id, &secret),
            }
        }
        ClientCredential::Key(path) => {
            let pem = std::fs::read(&path)
                .map_err(|e| format!("client_key_file {}: {e}", path.display()))?;
            let key = ClientKey::from_pem(&pem)
                .map_err(|e| format!("client_key_file {}: {e}", path.display()))?;
            ClientAuthentication::PrivateKeyJwt { id, key }
        }
    };
    let endpoint = match (&p.introspection_uri, &p.discovery_uri) {
        (Some(uri), _) => Endpoint::Fixed(uri.clone()),
        (None, Some(uri)) => Endpoint::Discovery(uri.clone()),
        (None, None) => return Err("no introspection_uri or discovery_uri".into()),
    };
    let settings = IntrospectionSettings {
        provider: p.name.clone(),
        issuer: p.issuer.clone(),
        endpoint,
        auth,
        max_ttl_s: config.cache.max_ttl_s,
        negative_ttl_s: config.cache.negative_ttl_s,
        max_entries: config.cache.max_entries,
        allow_cached: p.introspection_unavailable == Some(Unavailable::AllowCached),
    };
    let fetcher = HttpFetcher::new(fetch_limits(p)).map_err(|e| e.to_string())?;
    IntrospectionClient::new(settings, fetcher, control.clone())
}

/// What a provider's live source needs, or `None` for inline keys (nothing to watch).
fn source_spec(p: &ProviderConfig) -> Option<SourceSpec> {
    let location = match p.key_source() {
        KeySource::Uri(uri) => Location::Jwks(uri),
        KeySource::Discovery(uri) => Location::Discovery(uri),
        KeySource::File(path) => Location::File(path),
        KeySource::Inline(_) => return None,
    };
    Some(SourceSpec {
        provider: p.name.clone(),
        issuer: p.issuer.clone(),
        location,
        algorithms: p.algorithms.clone(),
        rules: refresh_rules(p),
    })
}

/// The provider's refresh timing, from its config keys.
pub fn refresh_rules(p: &ProviderConfig) -> RefreshRules {
    RefreshRules {
        interval_s: p.refresh_interval_s,
        min_refresh_s: p.min_refresh_s,
        max_refresh_s: p.max_refresh_s,
        kid_miss_interval_s: p.kid_miss_refetch_interval_s,
        max_stale_s: p.max_stale_s,
        kid_miss_wait: Duration::from_millis(p.kid_miss_wait_ms),
    }
}

fn fetch_limits(p: &ProviderConfig) -> FetchLimits {
    let total = Duration::from_millis(p.fetch_timeout_ms);
    FetchLimits {
        connect_timeout: total.min(FetchLimits::default().connect_timeout),
        total_timeout: total,
        max_response_bytes: p.max_response_bytes,
    }
}

/// Keys a provider serves before its source task runs: a local file or inline JWKS is loaded
/// now; a remote source has none until its first fetch.
fn initial_state(p: &ProviderConfig, backend: &dyn Backend, now: u64) -> KeyState {
    let jwks = match p.key_source() {
        KeySource::File(path) => match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => return failed(p, format!("jwks_file {}: {e}", path.display())),
        },
        KeySource::Inline(text) => text.into_bytes(),
        source @ (KeySource::Uri(_) | KeySource::Discovery(_)) => {
            return KeyState::failed(format!("{source}: first fetch not finished yet"));
        }
    };
    match live::load_key_set(&p.name, &jwks, &p.algorithms, backend) {
        Ok(keys) => {
            tracing::info!(provider = %p.name, keys = keys.len(), "key set loaded");
            KeyState::loaded(keys, now)
        }
        Err(error) => failed(p, error),
    }
}

fn failed(p: &ProviderConfig, error: String) -> KeyState {
    tracing::error!(provider = %p.name, %error, "no usable key set; denying its tokens");
    KeyState::failed(error)
}

fn provider_from_config(p: &ProviderConfig, config: &Config) -> Provider {
    Provider {
        name: p.name.clone(),
        policy: p.token_policy(&config.server),
        keys: Arc::new(KeySet::default()),
        keys_generation: 0,
        keys_loaded_at: None,
        keys_error: None,
        live: None,
        introspection: None,
        claims_to_headers: p
            .claims_to_headers
            .iter()
            .map(|(claim, header)| (claim.clone(), header.clone()))
            .collect(),
        claims_to_metadata: p.claims_to_metadata.clone(),
        required_scopes: p.required_scopes.clone(),
        source: CredentialSource {
            header: p.token_header.to_ascii_lowercase(),
            scheme: p.token_scheme.clone(),
            cookie: p.token_cookie.clone(),
            query: p.token_query.clone(),
        },
    }
}
