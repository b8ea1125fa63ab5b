//! OpenSSL 3: RSA (PKCS#1 v1.5 and PSS), ECDSA (P-256, P-384, P-521, secp256k1) and Ed25519
//! verification through EVP, so that an OpenSSL provider (such as Intel's `qatprovider` for
//! QAT) or a legacy ENGINE (such as `qatengine`) can run them.
//!
//! What it loads (`[crypto]`, see [`OpensslOptions`]):
//!
//! - its own library context (`OSSL_LIB_CTX_new`), never OpenSSL's default one, so nothing else
//!   in the process changes what verdict runs;
//! - `openssl_conf`: an operator's OpenSSL config file, loaded into that context
//!   (`OSSL_LIB_CTX_load_config`): the providers it activates and its default properties;
//! - `openssl_provider`: a provider by name (`OSSL_PROVIDER_try_load`; without a config file the
//!   built-in `default` provider stays available for what the named one lacks, such as key
//!   decoding). Every operation is then fetched with the property query `?provider=<name>`
//!   (prefer that provider), and an algorithm whose signature operation the named provider
//!   does not serve stays on aws-lc-rs;
//! - `openssl_engine`: a legacy ENGINE by id (`ENGINE_by_id`, `ENGINE_init`,
//!   `ENGINE_set_default` for RSA and EC); RSA and ECDSA keys are then made as legacy keys, on
//!   which OpenSSL runs the engine's methods. Algorithms the engine does not implement go to the
//!   provider path above.
//!
//! A provider, engine or config file that cannot be loaded is an [`OpensslError`]: the caller
//! keeps aws-lc-rs for everything and says why. Once loaded, each algorithm must pass a
//! known-answer probe, valid and invalid, through OpenSSL itself before it is used (see
//! `probe`); HMAC, and any algorithm that fails, stays on aws-lc-rs.
//!
//! Every prepared key keeps its aws-lc-rs form too (aws-lc-rs validates the key first, so the
//! keys accepted are the same). Inputs OpenSSL would judge by other rules are settled before it
//! sees them: an RSA signature must be exactly as long as the modulus; an ECDSA signature must
//! be JOSE's fixed-width `r || s`, re-encoded as canonical DER here. An OpenSSL failure that is
//! not a verdict on the signature is answered by aws-lc-rs (and counted), so every answer equals
//! what [`AwsLcBackend`] gives.

mod ffi;
mod keys;
mod probe;
#[cfg(test)]
mod tests;

pub(crate) use keys::OsslKey;
pub use probe::OpensslCalibration;

use super::{AwsLcBackend, Backend, BatchClass, PrepareError, PreparedKey, VerifyJob};
use crate::jose::{Algorithm, KeyMaterial, Reject};
use crate::telemetry::names;
use ::openssl::lib_ctx::LibCtx;
use ::openssl::provider::Provider;
use keys::{Answer, Route};
use std::ffi::CString;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// What to load (`[crypto] openssl_provider`, `openssl_engine`, `openssl_conf`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpensslOptions {
    /// A provider to load by name (`qatprovider`, `default`, `legacy`); `None`: the providers
    /// `conf` activates, else OpenSSL's built-in `default`.
    pub provider: Option<String>,
    /// A legacy ENGINE to load by id (`qatengine`).
    pub engine: Option<String>,
    /// An OpenSSL config file to load into verdict's library context.
    pub conf: Option<PathBuf>,
}

impl OpensslOptions {
    /// Whether anything OpenSSL-specific is configured (for `auto`: only then is OpenSSL tried).
    pub fn configured(&self) -> bool {
        self.provider.is_some() || self.engine.is_some() || self.conf.is_some()
    }
}

/// Why the OpenSSL engine cannot be used. The caller falls back to aws-lc-rs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpensslError {
    /// `OSSL_LIB_CTX_new` failed.
    #[error("cannot create an OpenSSL library context: {0}")]
    Context(String),
    /// `openssl_conf` could not be loaded.
    #[error("cannot load the OpenSSL config file {file}: {reason}")]
    Config {
        /// The file.
        file: String,
        /// OpenSSL's reason.
        reason: String,
    },
    /// `openssl_provider` could not be loaded.
    #[error("cannot load the OpenSSL provider {name:?} into verdict's library context: {reason}")]
    Provider {
        /// The provider's name.
        name: String,
        /// OpenSSL's reason.
        reason: String,
    },
    /// `openssl_engine` could not be loaded or initialised.
    #[error("cannot load the OpenSSL engine {id:?}: {reason}")]
    Engine {
        /// The engine's id.
        id: String,
        /// OpenSSL's reason.
        reason: String,
    },
}

/// Verdict's OpenSSL state. Keys hold it (an `Arc`), so it lives as long as the last key.
pub(crate) struct Context {
    /// Dropped first: the ENGINE's references.
    engine: Option<ffi::Engine>,
    /// Dropped before the library context they belong to.
    _providers: Vec<Provider>,
    libctx: LibCtx,
    /// `?provider=<name>` when a provider is named.
    propq: Option<CString>,
    /// The provider a signature operation must come from (`openssl_provider`).
    required_provider: Option<String>,
}

/// The algorithms OpenSSL may serve: [`Algorithm::ALL`] without HMAC (which stays on
/// aws-lc-rs), derived at compile time so a new algorithm cannot be forgotten here.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of range fails the build, not a request"
)]
pub const ALGORITHMS: [Algorithm; 11] = {
    let mut out = [Algorithm::RS256; 11];
    let (mut i, mut n) = (0, 0);
    while i < Algorithm::ALL.len() {
        let alg = Algorithm::ALL[i];
        if !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            out[n] = alg;
            n += 1;
        }
        i += 1;
    }
    assert!(n == out.len(), "every non-HMAC algorithm, exactly");
    out
};

fn index(alg: Algorithm) -> Option<usize> {
    ALGORITHMS.iter().position(|a| *a == alg)
}

/// The OpenSSL engine, with aws-lc-rs for everything it does not serve.
pub struct OpensslBackend {
    context: Arc<Context>,
    fallback: AwsLcBackend,
    /// Per [`ALGORITHMS`] entry: how OpenSSL runs it, when it passed its probe and is in use.
    routes: [Option<Route>; 11],
    /// Per algorithm: what ran the probe (`provider default`, `engine qatengine`), or why it
    /// failed.
    probes: Vec<(Algorithm, Result<String, String>)>,
    /// What was loaded, for logs and `verdict engines`.
    description: String,
}

impl fmt::Debug for OpensslBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpensslBackend")
            .field("loaded", &self.description)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl OpensslBackend {
    /// Creates verdict's library context, loads what `options` names, and probes every
    /// algorithm.
    pub fn load(options: &OpensslOptions) -> Result<OpensslBackend, OpensslError> {
        let libctx = LibCtx::new().map_err(|e| OpensslError::Context(e.to_string()))?;
        let mut loaded = Vec::new();
        if let Some(file) = &options.conf {
            let config_error = |reason: String| OpensslError::Config {
                file: file.display().to_string(),
                reason,
            };
            let path = CString::new(file.as_os_str().as_encoded_bytes())
                .map_err(|_| config_error("the path contains NUL".to_owned()))?;
            ffi::load_config(&libctx, &path).map_err(config_error)?;
            loaded.push(format!("config {}", file.display()));
        }
        let mut providers = Vec::new();
        let mut propq = None;
        if let Some(name) = &options.provider {
            let provider_error = |reason: String| OpensslError::Provider {
                name: name.clone(),
                reason,
            };
            if name.contains('\0') {
                return Err(provider_error("the name contains NUL".to_owned()));
            }
            // Without a config file, keep the built-in fallback (`default`) for what the named
            // provider lacks (key decoders, digests); a config file says itself what it wants.
            let provider = Provider::try_load(Some(&libctx), name, options.conf.is_none())
                .map_err(|e| provider_error(e.to_string()))?;
            providers.push(provider);
            propq = Some(
                CString::new(format!("?provider={name}"))
                    .map_err(|_| provider_error("the name contains NUL".to_owned()))?,
            );
            loaded.push(format!("provider {name} (property query ?provider={name})"));
        }
        let engine = match &options.engine {
            Some(id) => {
                let engine = ffi::Engine::load(id).map_err(|reason| OpensslError::Engine {
                    id: id.clone(),
                    reason,
                })?;
                loaded.push(format!("engine {id}"));
                Some(engine)
            }
            None => None,
        };
        if loaded.is_empty() {
            loaded.push("the built-in default provider".to_owned());
        }
        let context = Arc::new(Context {
            engine,
            _providers: providers,
            libctx,
            propq,
            required_provider: options.provider.clone(),
        });
        let mut backend = OpensslBackend {
            context,
            fallback: AwsLcBackend::default(),
            routes: [None; 11],
            probes: Vec::new(),
            description: format!("OpenSSL {}: {}", version(), loaded.join(", ")),
        };
        backend.probe_all(options.engine.as_deref());
        Ok(backend)
    }

    /// What was loaded (`OpenSSL 3.0.19: provider qatprovider (...)`).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Each algorithm's probe: `Ok(what ran it)` when it is in use, else why not.
    pub fn probes(&self) -> &[(Algorithm, Result<String, String>)] {
        &self.probes
    }

    /// Whether OpenSSL verifies `alg` (it passed its probe and was not switched off).
    pub fn serves(&self, alg: Algorithm) -> bool {
        self.route(alg).is_some()
    }

    /// Leaves `alg` to aws-lc-rs (for `auto`, when OpenSSL measured slower). Keys prepared
    /// afterwards carry no OpenSSL form for it.
    pub fn disable(&mut self, alg: Algorithm) {
        if let Some(slot) = index(alg).and_then(|i| self.routes.get_mut(i)) {
            *slot = None;
        }
    }

    fn route(&self, alg: Algorithm) -> Option<Route> {
        index(alg).and_then(|i| self.routes.get(i).copied().flatten())
    }

    /// The route an algorithm would take: the ENGINE when it implements the key type, else the
    /// provider path.
    fn route_for(&self, alg: Algorithm) -> Route {
        let engine = self.context.engine.as_ref();
        let by_engine = match alg.family() {
            crate::jose::KeyFamily::Rsa => engine.is_some_and(ffi::Engine::has_rsa),
            crate::jose::KeyFamily::Ec(_) => engine.is_some_and(ffi::Engine::has_ec),
            _ => false,
        };
        if by_engine {
            Route::Engine
        } else {
            Route::Provider
        }
    }

    /// Verifies through OpenSSL when the key has an OpenSSL form, else through aws-lc-rs; an
    /// OpenSSL failure is answered by aws-lc-rs and counted.
    fn verify_one(
        &self,
        key: &PreparedKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), Reject> {
        let Some(form) = key.openssl() else {
            return self.fallback.verify(key, message, signature);
        };
        match form.verify(message, signature) {
            Answer::Verified => Ok(()),
            Answer::Bad => Err(Reject::BadSignature),
            Answer::EngineError => {
                metrics::counter!(
                    names::ENGINE_ERRORS_TOTAL,
                    names::labels::ENGINE => "openssl",
                    names::labels::ALG => key.algorithm().name(),
                )
                .increment(1);
                self.fallback.verify(key, message, signature)
            }
        }
    }
}

/// The OpenSSL version string's number (`3.0.19`).
fn version() -> String {
    ::openssl::version::version()
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_owned()
}

impl Backend for OpensslBackend {
    fn name(&self) -> &'static str {
        "openssl"
    }

    fn key_engine(&self, key: &PreparedKey) -> &'static str {
        if key.openssl().is_some() {
            self.name()
        } else {
            self.fallback.name()
        }
    }

    fn prepare(&self, material: &KeyMaterial, alg: Algorithm) -> Result<PreparedKey, PrepareError> {
        // aws-lc-rs validates the key (and keeps its form for the fallback path) first.
        let key = self.fallback.prepare(material, alg)?;
        let Some(route) = self.route(alg) else {
            return Ok(key);
        };
        match OsslKey::new(&self.context, material, alg, route) {
            Ok(form) => Ok(key.with_forms(|forms| forms.openssl = Some(Box::new(form)))),
            Err(why) => {
                // A key aws-lc-rs accepts that OpenSSL will not take: aws-lc-rs verifies it.
                tracing::debug!(%alg, %why, "OpenSSL did not take a key; aws-lc-rs verifies it");
                Ok(key)
            }
        }
    }

    fn verify(&self, key: &PreparedKey, message: &[u8], signature: &[u8]) -> Result<(), Reject> {
        self.verify_one(key, message, signature)
    }

    fn batch_class(&self, key: &PreparedKey) -> Option<BatchClass> {
        // OpenSSL verifies one at a time; keys it does not take batch as aws-lc-rs batches
        // them (Ed25519 on dalek), since they go to it.
        match key.openssl() {
            Some(_) => None,
            None => self.fallback.batch_class(key),
        }
    }

    fn verify_batch(&self, jobs: &[VerifyJob<'_>], results: &mut Vec<Result<(), Reject>>) {
        if jobs.iter().all(|job| job.key.openssl().is_none()) {
            // Nothing for OpenSSL: aws-lc-rs's own batching (Ed25519) applies.
            return self.fallback.verify_batch(jobs, results);
        }
        results.clear();
        results.extend(
            jobs.iter()
                .map(|job| self.verify_one(job.key, job.message, job.signature)),
        );
    }
}
