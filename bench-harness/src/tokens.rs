//! The harness's own issuer: signing keys (RSA 2048, P-256, Ed25519), the JWKS that matches
//! them, and the pre-signed token pool a run draws from.
//!
//! The pool is signed before the run (in parallel on every core) so that signing is never on
//! the measured path. It holds one category per kind of token in the mix, each with its own
//! sampler; a request draws a category by its fraction, then a token from that category.

use crate::scenario::{Alg, Credential, Distribution, TokenMix};
use anyhow::{Context, anyhow};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The issuer (`iss`) of the harness's tokens and of the provider it configures.
pub const ISSUER: &str = "https://load.verdict.test";
/// The audience (`aud`) of the harness's tokens.
pub const AUDIENCE: &str = "api://load";
/// The provider name in the generated config.
pub const PROVIDER: &str = "load";
/// The `scope` claim of every token.
pub const SCOPE: &str = "load:read load:write";

/// One issuer's signing keys: one per algorithm, each with its `kid`.
pub struct SigningKeys {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    ed: Ed25519KeyPair,
    kid_prefix: String,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("kid_prefix", &self.kid_prefix)
            .finish_non_exhaustive()
    }
}

const KEY_FILES: [(&str, Alg); 3] = [
    ("rs256.pk8", Alg::RS256),
    ("es256.pk8", Alg::ES256),
    ("eddsa.pk8", Alg::EdDSA),
];

impl SigningKeys {
    /// Fresh keys whose kids are `PREFIX-rs256`, `PREFIX-es256`, `PREFIX-eddsa`.
    pub fn generate(kid_prefix: &str) -> anyhow::Result<SigningKeys> {
        Ok(SigningKeys {
            rsa: RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| anyhow!("RSA 2048 key generation failed"))?,
            ec: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| anyhow!("P-256 key generation failed"))?,
            ed: Ed25519KeyPair::generate().map_err(|_| anyhow!("Ed25519 key generation failed"))?,
            kid_prefix: kid_prefix.to_owned(),
        })
    }

    /// The keys stored in `dir` (PKCS#8 DER: `rs256.pk8`, `es256.pk8`, `eddsa.pk8`, kid
    /// prefix `load`), generating and storing them first if the directory holds none.
    pub fn load_or_generate(dir: &Path) -> anyhow::Result<SigningKeys> {
        let present = KEY_FILES
            .iter()
            .filter(|(file, _)| dir.join(file).exists())
            .count();
        if present == KEY_FILES.len() {
            return Self::load(dir);
        }
        if present > 0 {
            return Err(anyhow!(
                "{}: holds some but not all of rs256.pk8, es256.pk8, eddsa.pk8; remove it or complete it",
                dir.display()
            ));
        }
        let keys = Self::generate("load")?;
        keys.store(dir)?;
        Ok(keys)
    }

    fn load(dir: &Path) -> anyhow::Result<SigningKeys> {
        let read = |file: &str| {
            let path = dir.join(file);
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        };
        Ok(SigningKeys {
            rsa: RsaKeyPair::from_pkcs8(&read("rs256.pk8")?)
                .map_err(|e| anyhow!("{}/rs256.pk8: {e}", dir.display()))?,
            ec: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &read("es256.pk8")?)
                .map_err(|e| anyhow!("{}/es256.pk8: {e}", dir.display()))?,
            ed: Ed25519KeyPair::from_pkcs8(&read("eddsa.pk8")?)
                .map_err(|e| anyhow!("{}/eddsa.pk8: {e}", dir.display()))?,
            kid_prefix: "load".into(),
        })
    }

    /// Writes the private keys as PKCS#8 DER into `dir`.
    pub fn store(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let rsa = self
            .rsa
            .as_der()
            .map_err(|_| anyhow!("cannot encode the RSA key"))?;
        let ec = self
            .ec
            .to_pkcs8v1()
            .map_err(|_| anyhow!("cannot encode the P-256 key"))?;
        let ed = self
            .ed
            .to_pkcs8()
            .map_err(|_| anyhow!("cannot encode the Ed25519 key"))?;
        for (file, der) in [
            ("rs256.pk8", rsa.as_ref()),
            ("es256.pk8", ec.as_ref()),
            ("eddsa.pk8", ed.as_ref()),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, der).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// The `kid` of the key for `alg`.
    pub fn kid(&self, alg: Alg) -> String {
        format!("{}-{}", self.kid_prefix, alg.name().to_ascii_lowercase())
    }

    /// The public JWKS holding the three keys.
    pub fn jwks(&self) -> Value {
        let rsa = self.rsa.public_key();
        let ec_point = self.ec.public_key().as_ref();
        // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
        let (x, y) = ec_point
            .get(1..33)
            .zip(ec_point.get(33..65))
            .unwrap_or((&[], &[]));
        json!({"keys": [
            {
                "kty": "RSA", "kid": self.kid(Alg::RS256), "use": "sig", "alg": "RS256",
                "n": b64(rsa.modulus().big_endian_without_leading_zero()),
                "e": b64(rsa.exponent().big_endian_without_leading_zero()),
            },
            {
                "kty": "EC", "crv": "P-256", "kid": self.kid(Alg::ES256), "use": "sig",
                "alg": "ES256", "x": b64(x), "y": b64(y),
            },
            {
                "kty": "OKP", "crv": "Ed25519", "kid": self.kid(Alg::EdDSA), "use": "sig",
                "alg": "EdDSA", "x": b64(self.ed.public_key().as_ref()),
            },
        ]})
    }

    /// Signs `claims` into a compact JWT with header `{alg, kid, typ: JWT}`.
    pub fn sign_jwt(&self, alg: Alg, kid: &str, claims: &Value) -> anyhow::Result<String> {
        let header = json!({"alg": alg.name(), "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match alg {
            Alg::RS256 => {
                let mut sig = vec![0; self.rsa.public_modulus_len()];
                self.rsa
                    .sign(
                        &RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        input.as_bytes(),
                        &mut sig,
                    )
                    .map_err(|_| anyhow!("RS256 signing failed"))?;
                sig
            }
            Alg::ES256 => self
                .ec
                .sign(&SystemRandom::new(), input.as_bytes())
                .map_err(|_| anyhow!("ES256 signing failed"))?
                .as_ref()
                .to_vec(),
            Alg::EdDSA => self.ed.sign(input.as_bytes()).as_ref().to_vec(),
        };
        Ok(format!("{input}.{}", b64(&signature)))
    }
}

fn b64(bytes: &[u8]) -> String {
    verdict::jose::b64::encode(bytes)
}

/// What kind of credential a request carries.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A valid token from the repeated pool.
    Valid,
    /// A valid token never sent before in this run (until the new pool wraps around).
    New,
    /// A token whose signature was tampered with.
    BadSignature,
    /// A token whose `exp` is an hour in the past.
    Expired,
    /// A token signed by a key whose `kid` the JWKS does not hold.
    UnknownKid,
    /// A valid token whose `jti` is listed in the revocation file.
    Revoked,
    /// No credential at all.
    NoCredential,
}

/// What the server should answer for a kind of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Allowed.
    Allow,
    /// Denied with this reason code.
    Deny(&'static str),
    /// Revoked: verdict does not enforce revocation yet, so either answer is counted apart.
    Revoked,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::Valid,
        Kind::New,
        Kind::BadSignature,
        Kind::Expired,
        Kind::UnknownKid,
        Kind::Revoked,
        Kind::NoCredential,
    ];

    /// The snake_case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Valid => "valid",
            Kind::New => "new",
            Kind::BadSignature => "bad_signature",
            Kind::Expired => "expired",
            Kind::UnknownKid => "unknown_kid",
            Kind::Revoked => "revoked",
            Kind::NoCredential => "no_credential",
        }
    }

    /// What verdict should answer.
    pub fn expected(self) -> Expected {
        match self {
            Kind::Valid | Kind::New => Expected::Allow,
            Kind::BadSignature => Expected::Deny("bad_signature"),
            Kind::Expired => Expected::Deny("expired"),
            Kind::UnknownKid => Expected::Deny("unknown_key"),
            Kind::Revoked => Expected::Revoked,
            Kind::NoCredential => Expected::Deny("missing_credential"),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One pre-signed token.
#[derive(Debug, Clone)]
pub struct Token {
    /// The compact JWT (empty for [`Kind::NoCredential`]).
    pub text: Arc<str>,
    /// Its algorithm.
    pub alg: Option<Alg>,
    /// Its `jti`.
    pub jti: String,
}

/// Picks tokens from one category's pool.
#[derive(Debug)]
pub enum Sampler {
    /// Uniform over the pool.
    Uniform,
    /// Zipf: the cumulative distribution over ranks (rank k = index k-1).
    Zipf(Vec<f64>),
    /// Round-robin with a shared cursor.
    Sequential(AtomicU64),
}

impl Sampler {
    fn new(distribution: Distribution, len: usize, exponent: f64) -> Sampler {
        match distribution {
            Distribution::Uniform => Sampler::Uniform,
            Distribution::Sequential => Sampler::Sequential(AtomicU64::new(0)),
            Distribution::Zipf => Sampler::Zipf(zipf_cdf(len, exponent)),
        }
    }

    fn index(&self, len: usize, rng: &mut impl Rng) -> usize {
        if len <= 1 {
            return 0;
        }
        match self {
            Sampler::Uniform => rng.random_range(0..len),
            Sampler::Zipf(cdf) => {
                let u: f64 = rng.random();
                cdf.partition_point(|c| *c <= u).min(len - 1)
            }
            Sampler::Sequential(cursor) => {
                let n = cursor.fetch_add(1, Ordering::Relaxed);
                usize::try_from(n % len as u64).unwrap_or(0)
            }
        }
    }
}

/// The cumulative Zipf distribution over `n` ranks with exponent `s` (weight of rank k is
/// 1/k^s), normalised so the last entry is 1.
pub fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut cdf = Vec::with_capacity(n);
    let mut total = 0.0;
    for k in 1..=n {
        total += 1.0 / (k as f64).powf(s);
        cdf.push(total);
    }
    for c in &mut cdf {
        *c /= total;
    }
    if let Some(last) = cdf.last_mut() {
        *last = 1.0;
    }
    cdf
}

/// One kind of token in the mix.
#[derive(Debug)]
pub struct Category {
    /// The kind.
    pub kind: Kind,
    /// The fraction of requests that draw from this category.
    pub fraction: f64,
    /// The pool (empty for [`Kind::NoCredential`]).
    pub tokens: Vec<Token>,
    sampler: Sampler,
}

/// A drawn credential.
#[derive(Debug, Clone, Copy)]
pub struct Pick<'a> {
    /// Its kind.
    pub kind: Kind,
    /// Its category's position in [`TokenPool::categories`].
    pub category: usize,
    /// Its index in the category's pool.
    pub index: usize,
    /// The token (`""` for no credential).
    pub token: &'a str,
}

/// Per-kind numbers of a pool, for reports.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct CategorySummary {
    /// The kind's name.
    pub kind: String,
    /// Its fraction of requests.
    pub fraction: f64,
    /// Distinct tokens of this kind.
    pub distinct: usize,
    /// Tokens per algorithm.
    pub algorithms: std::collections::BTreeMap<String, usize>,
}

/// The whole pre-signed pool.
#[derive(Debug)]
pub struct TokenPool {
    categories: Vec<Category>,
    cumulative: Vec<f64>,
}

/// How many tokens of a non-repeated category: sized so they repeat about as often as the
/// valid ones, at least 1, at most `distinct`.
fn category_size(distinct: usize, fraction: f64, valid_fraction: f64) -> usize {
    if valid_fraction <= fraction || valid_fraction <= 0.0 {
        return distinct;
    }
    let size = (distinct as f64 * fraction / valid_fraction).ceil();
    (size as usize).clamp(1, distinct)
}

/// Assigns algorithms to `n` tokens by smooth weighted round-robin: exact proportions,
/// interleaved (so the hot ranks of a Zipf pool mix algorithms too).
pub fn assign_algorithms(weights: &[(Alg, f64)], n: usize) -> Vec<Alg> {
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    let mut current = vec![0.0; weights.len()];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut best = 0;
        for (i, (_, w)) in weights.iter().enumerate() {
            if let Some(c) = current.get_mut(i) {
                *c += w;
            }
            if current.get(i) > current.get(best) {
                best = i;
            }
        }
        if let Some(c) = current.get_mut(best) {
            *c -= total;
        }
        if let Some((alg, _)) = weights.get(best) {
            out.push(*alg);
        }
    }
    out
}

/// What one token to sign looks like.
struct Spec {
    kind: Kind,
    alg: Alg,
    index: usize,
}

/// One category to sign: kind, fraction, size, distribution.
type PlanEntry = (Kind, f64, usize, Distribution);

/// The categories a mix needs.
fn plan(mix: &TokenMix) -> anyhow::Result<Vec<PlanEntry>> {
    let valid_fraction = mix.valid_fraction().max(0.0);
    let mut plan: Vec<PlanEntry> = Vec::new();
    if valid_fraction > 1e-12 {
        plan.push((Kind::Valid, valid_fraction, mix.distinct, mix.distribution));
    }
    if mix.new > 0.0 {
        plan.push((Kind::New, mix.new, mix.new_pool, Distribution::Sequential));
    }
    for (kind, fraction) in [
        (Kind::BadSignature, mix.invalid),
        (Kind::Expired, mix.expired),
        (Kind::UnknownKid, mix.unknown_kid),
        (Kind::Revoked, mix.revoked),
    ] {
        if fraction > 0.0 {
            let size = category_size(mix.distinct, fraction, valid_fraction);
            plan.push((kind, fraction, size, mix.distribution));
        }
    }
    if plan.is_empty() {
        return Err(anyhow!("the token mix is empty"));
    }
    Ok(plan)
}

/// Format version of the pool cache files.
const CACHE_FORMAT: u32 = 1;

/// A signed pool stored in a work directory (`pools/<key>.json`).
#[derive(Serialize, serde::Deserialize)]
struct CachedPool {
    format: u32,
    key: String,
    created_unix: u64,
    valid_until: u64,
    categories: Vec<CachedCategory>,
}

#[derive(Serialize, serde::Deserialize)]
struct CachedCategory {
    kind: Kind,
    tokens: Vec<CachedToken>,
}

#[derive(Serialize, serde::Deserialize)]
struct CachedToken {
    text: String,
    alg: Option<Alg>,
    jti: String,
}

/// Where a pool came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolSource {
    /// Signed now.
    Signed,
    /// Read from the work directory's pool cache.
    Cached,
}

impl TokenPool {
    /// A pool with no category (a run whose tokens come from elsewhere, `--tokens-file`).
    pub fn empty() -> TokenPool {
        TokenPool {
            categories: Vec::new(),
            cumulative: Vec::new(),
        }
    }

    /// Signs the pool for `mix` with `keys` at Unix time `now`, on every core.
    pub fn build(mix: &TokenMix, keys: &SigningKeys, now: u64) -> anyhow::Result<TokenPool> {
        if mix.credential == Credential::None {
            return Ok(TokenPool {
                categories: vec![Category {
                    kind: Kind::NoCredential,
                    fraction: 1.0,
                    tokens: Vec::new(),
                    sampler: Sampler::Uniform,
                }],
                cumulative: vec![1.0],
            });
        }
        let plan = plan(mix)?;
        let tokens = sign_plan(mix, &plan, keys, now)?;
        Ok(Self::assemble(mix, plan, tokens))
    }

    /// [`TokenPool::build`], reusing a pool signed earlier for the same mix and keys when one
    /// is stored in `cache_dir` and its valid tokens stay valid for `min_validity_s` more
    /// seconds; a newly signed pool is stored there. Signing RSA pools is slow (about 1 ms per
    /// token per core): the cache makes repeated runs start at once.
    pub fn build_cached(
        mix: &TokenMix,
        keys: &SigningKeys,
        now: u64,
        cache_dir: &Path,
        min_validity_s: u64,
    ) -> anyhow::Result<(TokenPool, PoolSource)> {
        if mix.credential == Credential::None {
            return Ok((Self::build(mix, keys, now)?, PoolSource::Signed));
        }
        let plan = plan(mix)?;
        let key = cache_key(mix, keys)?;
        let path = cache_dir.join(format!("{key}.json"));
        if let Some(tokens) = read_cache(&path, &key, &plan, now + min_validity_s) {
            return Ok((Self::assemble(mix, plan, tokens), PoolSource::Cached));
        }
        let tokens = sign_plan(mix, &plan, keys, now)?;
        let cached = CachedPool {
            format: CACHE_FORMAT,
            key: key.clone(),
            created_unix: now,
            valid_until: now + mix.lifetime.0.as_secs(),
            categories: plan
                .iter()
                .zip(&tokens)
                .map(|((kind, ..), tokens)| CachedCategory {
                    kind: *kind,
                    tokens: tokens
                        .iter()
                        .map(|t| CachedToken {
                            text: t.text.to_string(),
                            alg: t.alg,
                            jti: t.jti.clone(),
                        })
                        .collect(),
                })
                .collect(),
        };
        std::fs::create_dir_all(cache_dir)
            .with_context(|| format!("creating {}", cache_dir.display()))?;
        let tmp = cache_dir.join(format!("{key}.json.tmp{}", std::process::id()));
        let file =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        serde_json::to_writer(std::io::BufWriter::new(file), &cached)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok((Self::assemble(mix, plan, tokens), PoolSource::Signed))
    }

    fn assemble(mix: &TokenMix, plan: Vec<PlanEntry>, tokens: Vec<Vec<Token>>) -> TokenPool {
        let categories: Vec<Category> = plan
            .into_iter()
            .zip(tokens)
            .map(|((kind, fraction, _, distribution), tokens)| Category {
                kind,
                fraction,
                sampler: Sampler::new(distribution, tokens.len(), mix.zipf_exponent),
                tokens,
            })
            .collect();
        let total: f64 = categories.iter().map(|c| c.fraction).sum();
        let mut acc = 0.0;
        let mut cumulative: Vec<f64> = categories
            .iter()
            .map(|c| {
                acc += c.fraction / total;
                acc
            })
            .collect();
        if let Some(last) = cumulative.last_mut() {
            *last = 1.0;
        }
        TokenPool {
            categories,
            cumulative,
        }
    }

    /// Draws one credential.
    pub fn pick(&self, rng: &mut impl Rng) -> Pick<'_> {
        let u: f64 = rng.random();
        let at = self
            .cumulative
            .partition_point(|c| *c <= u)
            .min(self.categories.len().saturating_sub(1));
        let Some(category) = self.categories.get(at) else {
            return Pick {
                kind: Kind::NoCredential,
                category: 0,
                index: 0,
                token: "",
            };
        };
        let index = category.sampler.index(category.tokens.len(), rng);
        let token = category.tokens.get(index).map_or("", |t| &*t.text);
        Pick {
            kind: category.kind,
            category: at,
            index,
            token,
        }
    }

    /// The categories.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The category of `kind`, if the mix has it.
    pub fn category(&self, kind: Kind) -> Option<&Category> {
        self.categories.iter().find(|c| c.kind == kind)
    }

    /// The `jti`s of the revoked tokens.
    pub fn revoked_jtis(&self) -> Vec<&str> {
        self.category(Kind::Revoked)
            .map(|c| c.tokens.iter().map(|t| t.jti.as_str()).collect())
            .unwrap_or_default()
    }

    /// How many times the `new` pool was used up and restarted so far.
    pub fn new_pool_wraps(&self) -> u64 {
        match self.category(Kind::New) {
            Some(Category {
                sampler: Sampler::Sequential(cursor),
                tokens,
                ..
            }) if !tokens.is_empty() => cursor.load(Ordering::Relaxed) / tokens.len() as u64,
            _ => 0,
        }
    }

    /// Per-kind numbers.
    pub fn summary(&self) -> Vec<CategorySummary> {
        self.categories
            .iter()
            .map(|c| {
                let mut algorithms = std::collections::BTreeMap::new();
                for t in &c.tokens {
                    if let Some(alg) = t.alg {
                        *algorithms.entry(alg.name().to_owned()).or_insert(0) += 1;
                    }
                }
                CategorySummary {
                    kind: c.kind.name().into(),
                    fraction: c.fraction,
                    distinct: c.tokens.len(),
                    algorithms,
                }
            })
            .collect()
    }

    /// Total pre-signed tokens.
    pub fn len(&self) -> usize {
        self.categories.iter().map(|c| c.tokens.len()).sum()
    }

    /// True when the pool holds no token (the no-credential mix).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Signs every category of `plan`, in parallel.
fn sign_plan(
    mix: &TokenMix,
    plan: &[PlanEntry],
    keys: &SigningKeys,
    now: u64,
) -> anyhow::Result<Vec<Vec<Token>>> {
    let weights = mix.algorithm_weights().map_err(|e| anyhow!("{e}"))?;
    let strangers = if mix.unknown_kid > 0.0 {
        Some(SigningKeys::generate("stranger")?)
    } else {
        None
    };
    let specs: Vec<Spec> = plan
        .iter()
        .flat_map(|(kind, _, size, _)| {
            assign_algorithms(&weights, *size)
                .into_iter()
                .enumerate()
                .map(|(index, alg)| Spec {
                    kind: *kind,
                    alg,
                    index,
                })
        })
        .collect();
    let lifetime = mix.lifetime.0.as_secs();
    let run_tag = format!("{:x}", mix.seed);
    let signed = sign_parallel(&specs, |spec| {
        sign_one(keys, strangers.as_ref(), spec, now, lifetime, &run_tag)
    })?;
    let mut signed = signed.into_iter();
    Ok(plan
        .iter()
        .map(|(_, _, size, _)| signed.by_ref().take(*size).collect())
        .collect())
}

/// The cache key of a mix signed with `keys`: SHA-256 over the format, the mix and the JWKS.
fn cache_key(mix: &TokenMix, keys: &SigningKeys) -> anyhow::Result<String> {
    let text = format!(
        "verdict-load pool v{CACHE_FORMAT}\n{}\n{}",
        serde_json::to_string(mix)?,
        keys.jwks()
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    Ok(digest
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The cached tokens at `path`, if they match `plan` and stay valid until `valid_at`.
fn read_cache(
    path: &Path,
    key: &str,
    plan: &[PlanEntry],
    valid_at: u64,
) -> Option<Vec<Vec<Token>>> {
    let file = std::fs::File::open(path).ok()?;
    let cached: CachedPool = serde_json::from_reader(std::io::BufReader::new(file)).ok()?;
    if cached.format != CACHE_FORMAT
        || cached.key != key
        || cached.valid_until < valid_at
        || cached.categories.len() != plan.len()
    {
        return None;
    }
    let fits = plan
        .iter()
        .zip(&cached.categories)
        .all(|((kind, _, size, _), c)| c.kind == *kind && c.tokens.len() == *size);
    fits.then(|| {
        cached
            .categories
            .into_iter()
            .map(|c| {
                c.tokens
                    .into_iter()
                    .map(|t| Token {
                        text: t.text.into(),
                        alg: t.alg,
                        jti: t.jti,
                    })
                    .collect()
            })
            .collect()
    })
}

fn sign_one(
    keys: &SigningKeys,
    strangers: Option<&SigningKeys>,
    spec: &Spec,
    now: u64,
    lifetime: u64,
    run_tag: &str,
) -> anyhow::Result<Token> {
    let jti = format!("{}-{}-{}", spec.kind.name(), run_tag, spec.index);
    let (iat, exp) = match spec.kind {
        Kind::Expired => (now.saturating_sub(7200), now.saturating_sub(3600)),
        _ => (now.saturating_sub(60), now + lifetime),
    };
    let claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": format!("user-{}", spec.index),
        "scope": SCOPE,
        "iat": iat,
        "exp": exp,
        "jti": jti,
    });
    let (signer, kid) = match (spec.kind, strangers) {
        (Kind::UnknownKid, Some(strangers)) => (strangers, strangers.kid(spec.alg)),
        _ => (keys, keys.kid(spec.alg)),
    };
    let mut text = signer.sign_jwt(spec.alg, &kid, &claims)?;
    if spec.kind == Kind::BadSignature {
        text = tamper_signature(&text);
    }
    Ok(Token {
        text: text.into(),
        alg: Some(spec.alg),
        jti,
    })
}

/// Flips one base64url character in the middle of the signature (still canonical base64url,
/// same length: only the signature check can catch it).
pub fn tamper_signature(token: &str) -> String {
    let Some((input, sig)) = token.rsplit_once('.') else {
        return token.to_owned();
    };
    let mut sig = sig.as_bytes().to_vec();
    let middle = sig.len() / 2;
    if let Some(c) = sig.get_mut(middle) {
        *c = if *c == b'A' { b'B' } else { b'A' };
    }
    format!("{input}.{}", String::from_utf8_lossy(&sig))
}

/// Runs `sign` over `specs` on every available core, keeping the order.
fn sign_parallel<F>(specs: &[Spec], sign: F) -> anyhow::Result<Vec<Token>>
where
    F: Fn(&Spec) -> anyhow::Result<Token> + Sync,
{
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(specs.len().max(1));
    let chunk = specs.len().div_ceil(threads).max(1);
    let results: Vec<anyhow::Result<Vec<Token>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = specs
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&sign).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a signing thread panicked")))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(specs.len());
    for part in results {
        out.extend(part?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_interleave_in_exact_proportions() {
        let weights = [(Alg::RS256, 6.0), (Alg::ES256, 3.0), (Alg::EdDSA, 1.0)];
        let algs = assign_algorithms(&weights, 100);
        let count = |a| algs.iter().filter(|x| **x == a).count();
        assert_eq!(
            (count(Alg::RS256), count(Alg::ES256), count(Alg::EdDSA)),
            (60, 30, 10)
        );
        // The first ten (the hottest Zipf ranks) already hold every algorithm.
        let head = algs.get(..10).expect("ten");
        for alg in Alg::ALL {
            assert!(head.contains(&alg), "{alg} missing from {head:?}");
        }
        assert_eq!(assign_algorithms(&[(Alg::EdDSA, 1.0)], 3), [Alg::EdDSA; 3]);
    }

    #[test]
    fn category_sizes() {
        assert_eq!(category_size(1000, 0.05, 0.9), 56);
        assert_eq!(category_size(1, 0.05, 0.9), 1);
        assert_eq!(category_size(1000, 1.0, 0.0), 1000);
        assert_eq!(category_size(1000, 0.5, 0.5), 1000);
    }

    #[test]
    fn zipf_cdf_is_monotonic_and_normalised() {
        let cdf = zipf_cdf(100, 1.0);
        assert_eq!(cdf.len(), 100);
        assert!(cdf.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(cdf.last(), Some(&1.0));
        // Rank 1 carries 1/H(100) ≈ 19.3 % of the mass.
        assert!((cdf[0] - 0.1928).abs() < 0.001, "{}", cdf[0]);
    }

    #[test]
    fn tampering_keeps_the_shape() {
        let t = "aGVhZA.cGF5bG9hZA.c2lnbmF0dXJlQUJD";
        let bad = tamper_signature(t);
        assert_eq!(bad.len(), t.len());
        assert_ne!(bad, t);
        assert!(bad.starts_with("aGVhZA.cGF5bG9hZA."));
    }
}
