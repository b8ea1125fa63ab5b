//! Intel crypto_mb: multi-buffer RSA, ECDSA and Ed25519 verification on AVX-512 IFMA, eight
//! signatures per call.
//!
//! The library is loaded at run time (see `ffi`), so verdict builds and runs without it. Loading
//! fails with a [`CryptoMbError`] saying why (no library, a missing runtime dependency, a CPU
//! the library cannot run on), and the caller keeps aws-lc-rs. Once loaded, each family the
//! library serves ([`MbFamily`]) must pass a known-answer probe, valid and invalid, before it is
//! used; the others stay on the embedded aws-lc-rs engine, which also answers every algorithm
//! crypto_mb lacks (HMAC, ES256K, RSA keys of other sizes or exponents).
//!
//! What crypto_mb computes and what verdict checks:
//!
//! - RSA (RS256/384/512, PS256/384/512) with 2048-, 3072- or 4096-bit moduli and e = 65537:
//!   crypto_mb computes `s^65537 mod n` (`mbx_rsa_public_mb8` with the `pub65537` methods);
//!   verdict first checks that the signature is exactly as long as the modulus and below it,
//!   then checks the PKCS#1 v1.5 or PSS encoding of the result itself (`emsa`), with aws-lc-rs
//!   digests. Keys of one size share a call whatever their hash or padding.
//! - ECDSA P-256 (ES256), P-384 (ES384) and P-521 (ES512): verdict hashes, reduces the digest
//!   below the group order (for P-521, left-pads SHA-512 to the order's 66 bytes), splits
//!   JOSE's `r || s` and checks `1 <= r, s < n`; crypto_mb verifies against the affine key
//!   (little-endian limbs computed once, in `prepare`).
//! - Ed25519 (EdDSA): crypto_mb verifies `R || S` over the whole message.
//!
//! Every prepared key also keeps its aws-lc-rs form. A job whose input the fast path does not
//! take as it is (a wrong length, an out-of-range value), and any lane whose status is neither
//! "verified" nor "bad signature", is answered by aws-lc-rs, so every answer equals what
//! [`AwsLcBackend`] gives (the differential tests check this on random cases).
//! A family whose calls keep failing is switched off for a cool-down and then tried again
//! (`health`, [`crate::crypto::cooldown`]).
//!
//! Batches: [`Backend::verify_batch`] groups jobs by family (algorithm and key size), runs each
//! group eight at a time, fills the unused lanes of a partial call with a repeat of a real job
//! (the library converts all eight lanes, so none may be null) and reads each lane's status on
//! its own. [`Backend::verify`] is a batch of one.

mod emsa;
mod ffi;
mod health;
mod probe;

pub use probe::{Calibration, break_even_fill};

use super::{
    AwsLcBackend, Backend, BatchAnswers, BatchClass, PrepareError, PreparedKey, VerifyJob,
};
use crate::jose::{Algorithm, Curve, KeyMaterial, Reject};
use crate::telemetry::names;
use aws_lc_rs::digest;
use ffi::{Library, MbxAlgo};

/// Signatures per library call.
pub const LANES: usize = ffi::LANES;

/// Most signatures in one cross-request batch (eight library calls): enough to fill every lane
/// under load, few enough that a batch's last waiter is not held long behind its first.
pub const MAX_BATCH: usize = 8 * LANES;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// How to load crypto_mb.
#[derive(Debug, Clone, Default)]
pub struct CryptoMbOptions {
    /// `libcrypto_mb.so` by path (`[crypto] crypto_mb_library`); `None`: the loader's search
    /// path.
    pub library: Option<PathBuf>,
    /// Test hook: ask `mbx_is_crypto_mb_applicable` about a CPU with SSE2 only (no AVX-512,
    /// no AVX-IFMA) instead of this one, so the library's own check refuses it. (It reads a
    /// mask of 0 as "this CPU", hence a non-zero mask.)
    pub force_cpu_unable: bool,
}

/// Why crypto_mb cannot be used. The caller falls back to aws-lc-rs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoMbError {
    /// The library (or a runtime dependency, or a required symbol) could not be loaded.
    #[error("cannot load crypto_mb from {library}: {reason}")]
    Load {
        /// The path or name tried.
        library: String,
        /// The loader's or our reason.
        reason: String,
    },
    /// `mbx_is_crypto_mb_applicable` says this CPU cannot run the library.
    #[error(
        "crypto_mb ({library}) cannot run on this CPU: mbx_is_crypto_mb_applicable refused CPU \
         features {features:#x} (it needs AVX-512 F/DQ/BW/IFMA/VBMI2 or AVX-IFMA)"
    )]
    CpuUnable {
        /// The library's path.
        library: String,
        /// The feature mask the library was asked about.
        features: u64,
    },
}

/// `mbcpCPUID_SSE2` (cpu_features.h): a CPU the library cannot run on.
const FEATURES_SSE2_ONLY: u64 = 0x4;

/// How many [`MbFamily`] values there are.
const FAMILIES: usize = 7;

/// What one crypto_mb call batches together: an algorithm family and key size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MbFamily {
    /// RSA with a 2048-bit modulus, e = 65537 (any RS*/PS* hash).
    Rsa2048,
    /// RSA-3072, e = 65537.
    Rsa3072,
    /// RSA-4096, e = 65537.
    Rsa4096,
    /// ECDSA P-256 (ES256).
    P256,
    /// ECDSA P-384 (ES384).
    P384,
    /// ECDSA P-521 (ES512).
    P521,
    /// Ed25519 (EdDSA).
    Ed25519,
}

impl MbFamily {
    /// Every family, in order.
    pub const ALL: [MbFamily; FAMILIES] = [
        MbFamily::Rsa2048,
        MbFamily::Rsa3072,
        MbFamily::Rsa4096,
        MbFamily::P256,
        MbFamily::P384,
        MbFamily::P521,
        MbFamily::Ed25519,
    ];

    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            MbFamily::Rsa2048 => "RSA-2048",
            MbFamily::Rsa3072 => "RSA-3072",
            MbFamily::Rsa4096 => "RSA-4096",
            MbFamily::P256 => "P-256",
            MbFamily::P384 => "P-384",
            MbFamily::P521 => "P-521",
            MbFamily::Ed25519 => "Ed25519",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The RSA modulus size, for the RSA families.
    pub fn rsa_bits(self) -> Option<u32> {
        match self {
            MbFamily::Rsa2048 => Some(2048),
            MbFamily::Rsa3072 => Some(3072),
            MbFamily::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    fn algo(self) -> MbxAlgo {
        match self {
            MbFamily::Rsa2048 => MbxAlgo::Rsa2k,
            MbFamily::Rsa3072 => MbxAlgo::Rsa3k,
            MbFamily::Rsa4096 => MbxAlgo::Rsa4k,
            MbFamily::P256 => MbxAlgo::EcNistP256,
            MbFamily::P384 => MbxAlgo::EcNistP384,
            MbFamily::P521 => MbxAlgo::EcNistP521,
            MbFamily::Ed25519 => MbxAlgo::Ed25519,
        }
    }

    /// The families that can serve `alg` (RSA algorithms: every size).
    pub fn for_algorithm(alg: Algorithm) -> &'static [MbFamily] {
        match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => &[MbFamily::Rsa2048, MbFamily::Rsa3072, MbFamily::Rsa4096],
            Algorithm::ES256 => &[MbFamily::P256],
            Algorithm::ES384 => &[MbFamily::P384],
            Algorithm::ES512 => &[MbFamily::P521],
            Algorithm::EdDSA => &[MbFamily::Ed25519],
            _ => &[],
        }
    }
}

impl fmt::Display for MbFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key in the forms crypto_mb takes, computed once in `prepare`.
pub(crate) enum MbKey {
    Rsa(Box<RsaKey>),
    Ec(Box<EcKey>),
    Ed25519([u8; 32]),
}

pub(crate) struct RsaKey {
    family: MbFamily,
    bits: u32,
    /// Big-endian modulus, exactly `bits / 8` bytes (for the `signature < n` check).
    n_be: Vec<u8>,
    /// Little-endian 64-bit limbs, `bits / 64` of them (what the library reads).
    n_limbs: Vec<u64>,
    scheme: emsa::Scheme,
}

pub(crate) struct EcKey {
    family: MbFamily,
    coordinate_len: usize,
    x: Vec<u64>,
    y: Vec<u64>,
    hash: &'static digest::Algorithm,
    order: &'static [u8],
}

/// The order of the P-256 group, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// The order of the P-384 group, big-endian.
const P384_ORDER: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// The order of the P-521 group, big-endian (66 bytes, the top one 0x01).
const P521_ORDER: [u8; 66] = [
    0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xfa, 0x51, 0x86, 0x87, 0x83, 0xbf, 0x2f, 0x96, 0x6b, 0x7f, 0xcc, 0x01, 0x48, 0xf7, 0x09,
    0xa5, 0xd0, 0x3b, 0xb5, 0xc9, 0xb8, 0x89, 0x9c, 0x47, 0xae, 0xbb, 0x6f, 0xb7, 0x1e, 0x91, 0x38,
    0x64, 0x09,
];

/// The widest EC coordinate (P-521), for the digest buffers.
const MAX_COORDINATE: usize = 66;

/// Big-endian bytes to little-endian 64-bit limbs.
fn be_to_limbs(be: &[u8]) -> Vec<u64> {
    be.rchunks(8)
        .map(|chunk| {
            let mut limb = [0u8; 8];
            if let Some(tail) = limb.get_mut(8 - chunk.len()..) {
                tail.copy_from_slice(chunk);
            }
            u64::from_be_bytes(limb)
        })
        .collect()
}

/// `a < b` for big-endian numbers of the same length.
fn be_less(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a < b
}

/// `a -= b` for big-endian numbers of the same length (the caller knows `a >= b`).
fn be_sub_in_place(a: &mut [u8], b: &[u8]) {
    let mut borrow = 0u16;
    for (x, y) in a.iter_mut().zip(b).rev() {
        let value = u16::from(*x)
            .wrapping_sub(u16::from(*y))
            .wrapping_sub(borrow);
        *x = value as u8;
        borrow = (value >> 15) & 1;
    }
}

/// A scalar in `[1, order)`.
fn in_scalar_range(value: &[u8], order: &[u8]) -> bool {
    value.iter().any(|b| *b != 0) && be_less(value, order)
}

/// The order of the Ed25519 group (`L`), little-endian.
const ED25519_ORDER_LE: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// `S < L` for a little-endian Ed25519 scalar.
fn ed25519_scalar_canonical(s: &[u8]) -> bool {
    s.iter().rev().cmp(ED25519_ORDER_LE.iter().rev()) == std::cmp::Ordering::Less
}

/// One lane's answer from the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LaneAnswer {
    Verified,
    Bad,
    /// A status other than OK or SIGNATURE_ERR, or a call that could not be made.
    EngineError,
}

/// The crypto_mb engine, with aws-lc-rs for everything it does not serve.
pub struct CryptoMbBackend {
    library: Arc<Library>,
    /// What answers every job crypto_mb does not take: aws-lc-rs, or under `auto` an OpenSSL
    /// engine that is faster for some algorithms (see [`CryptoMbBackend::set_fallback`]).
    fallback: Arc<dyn Backend>,
    /// Per [`MbFamily`]: the library has it on this CPU and it passed its probe.
    enabled: [bool; FAMILIES],
    /// Per [`MbFamily`]: the fewest jobs of one family that go to a library call; smaller
    /// groups are verified by aws-lc-rs. 1 (every job) unless [`CryptoMbBackend::calibrate`] or
    /// [`CryptoMbBackend::set_min_batch`] says otherwise.
    min_batch: [usize; FAMILIES],
    /// Per [`MbFamily`]: switched off for a cool-down after repeated engine errors.
    health: [health::Health; FAMILIES],
    /// Unit-test hook: bit `i` set = lane `i` of every call answers as if the library had
    /// failed it (a status other than OK or SIGNATURE_ERR).
    #[cfg(test)]
    fail_lanes: std::sync::atomic::AtomicU8,
    /// Unit-test hook: library calls made so far, and the first one that fails whole (as if it
    /// could not be made): `usize::MAX` = none.
    #[cfg(test)]
    calls: std::sync::atomic::AtomicUsize,
    #[cfg(test)]
    fail_from_call: std::sync::atomic::AtomicUsize,
    probes: Vec<(MbFamily, Result<(), String>)>,
}

impl fmt::Debug for CryptoMbBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoMbBackend")
            .field("library", &self.library.path())
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl CryptoMbBackend {
    /// Loads crypto_mb, asks whether this CPU can run it, and probes every family it offers.
    pub fn load(options: &CryptoMbOptions) -> Result<CryptoMbBackend, CryptoMbError> {
        let library =
            Library::load(options.library.as_deref()).map_err(|e| CryptoMbError::Load {
                library: e.library,
                reason: e.reason,
            })?;
        let features = if options.force_cpu_unable {
            FEATURES_SSE2_ONLY
        } else {
            library.cpu_features()
        };
        if !library.is_applicable(features) {
            return Err(CryptoMbError::CpuUnable {
                library: library.path().to_owned(),
                features,
            });
        }
        let mut available = [false; FAMILIES];
        let mut missing: Vec<(MbFamily, String)> = Vec::new();
        for family in MbFamily::ALL {
            let has_function = match family {
                MbFamily::Rsa2048 | MbFamily::Rsa3072 | MbFamily::Rsa4096 => {
                    library.has_rsa(family.rsa_bits().unwrap_or(0))
                }
                MbFamily::P256 => library.has_ecdsa(32),
                MbFamily::P384 => library.has_ecdsa(48),
                MbFamily::P521 => library.has_ecdsa(66),
                MbFamily::Ed25519 => library.has_ed25519(),
            };
            let on_cpu = library.has_mb8(family.algo()).unwrap_or(true);
            if !has_function {
                missing.push((family, "the library has no such function".to_owned()));
            } else if !on_cpu {
                missing.push((
                    family,
                    "mbx_get_algo_info: no 8-lane code on this CPU".into(),
                ));
            }
            if let Some(slot) = available.get_mut(family.index()) {
                *slot = has_function && on_cpu;
            }
        }
        let mut backend = CryptoMbBackend {
            library: Arc::new(library),
            fallback: Arc::new(AwsLcBackend::default()),
            enabled: available,
            min_batch: [1; FAMILIES],
            health: std::array::from_fn(|_| health::Health::default()),
            #[cfg(test)]
            fail_lanes: std::sync::atomic::AtomicU8::new(0),
            #[cfg(test)]
            calls: std::sync::atomic::AtomicUsize::new(0),
            #[cfg(test)]
            fail_from_call: std::sync::atomic::AtomicUsize::new(usize::MAX),
            probes: Vec::new(),
        };
        let mut probes = Vec::new();
        for family in MbFamily::ALL {
            let result = match missing.iter().find(|(f, _)| *f == family) {
                Some((_, why)) => Err(why.clone()),
                None => backend.probe(family),
            };
            probes.push((family, result));
        }
        for (family, result) in &probes {
            if let Some(slot) = backend.enabled.get_mut(family.index()) {
                *slot = *slot && result.is_ok();
            }
        }
        backend.probes = probes;
        Ok(backend)
    }

    /// Hands every job crypto_mb does not take (other algorithms, groups below a family's
    /// smallest batch, lanes the library failed) to `fallback` instead of aws-lc-rs. Keys must
    /// be prepared after this, so they carry the fallback's form too. Call before
    /// [`CryptoMbBackend::calibrate`], which then measures crypto_mb against it.
    pub fn set_fallback(&mut self, fallback: Arc<dyn Backend>) {
        self.fallback = fallback;
    }

    /// Where the library was loaded from.
    pub fn library_path(&self) -> &str {
        self.library.path()
    }

    /// Each family's probe result: `Ok` when it is in use, else why not.
    pub fn probes(&self) -> &[(MbFamily, Result<(), String>)] {
        &self.probes
    }

    /// Whether crypto_mb serves `family` (present on this CPU and probed good).
    pub fn serves(&self, family: MbFamily) -> bool {
        self.enabled.get(family.index()).copied().unwrap_or(false)
    }

    /// Whether `family` is switched off for a cool-down after repeated engine errors (its jobs
    /// go to aws-lc-rs until it is tried again).
    pub fn cooling_down(&self, family: MbFamily) -> bool {
        self.health
            .get(family.index())
            .is_some_and(health::Health::is_off)
    }

    /// Whether library calls may take `family`'s jobs now (served, and not cooling down).
    fn usable(&self, family: MbFamily) -> bool {
        self.serves(family)
            && self
                .health
                .get(family.index())
                .is_some_and(|health| health.usable(family))
    }

    /// The engine that verifies `alg`: `"crypto-mb"` when a family of it is served (for RSA:
    /// the served key sizes with e = 65537; other keys go to aws-lc-rs), else `"aws-lc-rs"`.
    pub fn engine_for(&self, alg: Algorithm) -> &'static str {
        if MbFamily::for_algorithm(alg)
            .iter()
            .any(|family| self.serves(*family))
        {
            "crypto-mb"
        } else {
            self.fallback.name()
        }
    }

    /// The fewest jobs of `family` that go to one library call (smaller groups: aws-lc-rs).
    pub fn min_batch(&self, family: MbFamily) -> usize {
        self.min_batch.get(family.index()).copied().unwrap_or(1)
    }

    /// Sends groups of fewer than `min_batch` jobs of `family` to aws-lc-rs (1 = every job
    /// to crypto_mb, as after [`CryptoMbBackend::load`]; above 8 = none).
    pub fn set_min_batch(&mut self, family: MbFamily, min_batch: usize) {
        if let Some(slot) = self.min_batch.get_mut(family.index()) {
            *slot = min_batch.clamp(1, LANES + 1);
        }
    }

    /// Stops using crypto_mb for `family` (its keys prepared from now on use aws-lc-rs).
    pub fn disable(&mut self, family: MbFamily) {
        if let Some(slot) = self.enabled.get_mut(family.index()) {
            *slot = false;
        }
    }

    /// The key's crypto_mb form, when a served family takes it.
    fn mb_form(&self, material: &KeyMaterial, alg: Algorithm) -> Option<MbKey> {
        match material {
            KeyMaterial::Rsa { n, e } => {
                let (hash, pss) = match alg {
                    Algorithm::RS256 => (&digest::SHA256, false),
                    Algorithm::RS384 => (&digest::SHA384, false),
                    Algorithm::RS512 => (&digest::SHA512, false),
                    Algorithm::PS256 => (&digest::SHA256, true),
                    Algorithm::PS384 => (&digest::SHA384, true),
                    Algorithm::PS512 => (&digest::SHA512, true),
                    _ => return None,
                };
                if e.as_slice() != [1, 0, 1] || n.first().is_none_or(|top| top & 0x80 == 0) {
                    return None;
                }
                let family = match n.len() * 8 {
                    2048 => MbFamily::Rsa2048,
                    3072 => MbFamily::Rsa3072,
                    4096 => MbFamily::Rsa4096,
                    _ => return None,
                };
                if !self.serves(family) {
                    return None;
                }
                Some(MbKey::Rsa(Box::new(RsaKey {
                    family,
                    bits: family.rsa_bits()?,
                    n_be: n.clone(),
                    n_limbs: be_to_limbs(n),
                    scheme: emsa::Scheme { hash, pss },
                })))
            }
            KeyMaterial::Ec { curve, x, y } => {
                let (family, hash, order): (_, _, &'static [u8]) = match (curve, alg) {
                    (Curve::P256, Algorithm::ES256) => {
                        (MbFamily::P256, &digest::SHA256, &P256_ORDER)
                    }
                    (Curve::P384, Algorithm::ES384) => {
                        (MbFamily::P384, &digest::SHA384, &P384_ORDER)
                    }
                    (Curve::P521, Algorithm::ES512) => {
                        (MbFamily::P521, &digest::SHA512, &P521_ORDER)
                    }
                    _ => return None,
                };
                let coordinate_len = order.len();
                if !self.serves(family) || x.len() != coordinate_len || y.len() != coordinate_len {
                    return None;
                }
                Some(MbKey::Ec(Box::new(EcKey {
                    family,
                    coordinate_len,
                    x: be_to_limbs(x),
                    y: be_to_limbs(y),
                    hash,
                    order,
                })))
            }
            KeyMaterial::Ed25519 { x } => (alg == Algorithm::EdDSA
                && self.serves(MbFamily::Ed25519))
            .then_some(MbKey::Ed25519(*x)),
            KeyMaterial::Oct { .. } => None,
        }
    }

    /// The family whose lane takes `job` as it is, or `None` (aws-lc-rs answers it): no
    /// crypto_mb form, a family switched off, or an input the fast path does not take (wrong
    /// length, out of range), which aws-lc-rs then rejects or accepts by its own rules.
    fn lane_for(&self, job: &VerifyJob<'_>) -> Option<MbFamily> {
        let family = match job.key.mb()? {
            MbKey::Rsa(key) => {
                let fits =
                    job.signature.len() == key.n_be.len() && be_less(job.signature, &key.n_be);
                fits.then_some(key.family)?
            }
            MbKey::Ec(key) => {
                let (r, s) = job.signature.split_at_checked(key.coordinate_len)?;
                let fits = s.len() == key.coordinate_len
                    && in_scalar_range(r, key.order)
                    && in_scalar_range(s, key.order);
                fits.then_some(key.family)?
            }
            MbKey::Ed25519(_) => {
                let fits = job.signature.len() == 64
                    && job
                        .signature
                        .get(32..)
                        .is_some_and(ed25519_scalar_canonical)
                    && u32::try_from(job.message.len()).is_ok();
                fits.then_some(MbFamily::Ed25519)?
            }
        };
        self.usable(family).then_some(family)
    }

    /// Runs up to eight jobs of one family (each already accepted by [`Self::lane_for`]) in
    /// one library call; `answers[i]` answers `jobs[i]`.
    fn run_chunk(&self, family: MbFamily, jobs: &[VerifyJob<'_>], answers: &mut Vec<LaneAnswer>) {
        answers.clear();
        answers.resize(jobs.len(), LaneAnswer::EngineError);
        if jobs.is_empty() || jobs.len() > LANES {
            return;
        }
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering::Relaxed;
            if self.calls.fetch_add(1, Relaxed) >= self.fail_from_call.load(Relaxed) {
                return;
            }
        }
        // Unused lanes repeat the first job; their answers are never read.
        let lane_job = |lane: usize| jobs.get(lane).or(jobs.first());
        let status = match family {
            MbFamily::Rsa2048 | MbFamily::Rsa3072 | MbFamily::Rsa4096 => {
                self.run_rsa(family, jobs, answers);
                return;
            }
            MbFamily::P256 | MbFamily::P384 | MbFamily::P521 => {
                let mut digests = [[0u8; MAX_COORDINATE]; LANES];
                let mut r: [&[u8]; LANES] = [&[]; LANES];
                let mut s: [&[u8]; LANES] = [&[]; LANES];
                let mut x: [&[u64]; LANES] = [&[]; LANES];
                let mut y: [&[u64]; LANES] = [&[]; LANES];
                let mut coordinate_len = 0;
                for (lane, out) in digests.iter_mut().enumerate() {
                    let Some(job) = lane_job(lane) else { return };
                    let Some(MbKey::Ec(key)) = job.key.mb() else {
                        return;
                    };
                    coordinate_len = key.coordinate_len;
                    let hash = digest::digest(key.hash, job.message);
                    let Some(out) = out.get_mut(..coordinate_len) else {
                        return;
                    };
                    // bits2int(H) mod n. P-256/P-384: the hash is as long as the order, and
                    // below 2n. P-521: SHA-512 is shorter than the order, so it is the number
                    // itself, left-padded with zeros (and below n).
                    let Some(pad) = coordinate_len.checked_sub(hash.as_ref().len()) else {
                        return;
                    };
                    let (zeros, tail) = out.split_at_mut(pad);
                    zeros.fill(0);
                    tail.copy_from_slice(hash.as_ref());
                    if !be_less(out, key.order) {
                        be_sub_in_place(out, key.order);
                    }
                    let (sig_r, sig_s) = job
                        .signature
                        .split_at(coordinate_len.min(job.signature.len()));
                    if let (Some(r), Some(s), Some(x), Some(y)) = (
                        r.get_mut(lane),
                        s.get_mut(lane),
                        x.get_mut(lane),
                        y.get_mut(lane),
                    ) {
                        *r = sig_r;
                        *s = sig_s;
                        *x = &key.x;
                        *y = &key.y;
                    }
                }
                let digest_refs: [&[u8]; LANES] = std::array::from_fn(|lane| {
                    digests
                        .get(lane)
                        .and_then(|d| d.get(..coordinate_len))
                        .unwrap_or(&[])
                });
                self.library
                    .ecdsa_verify(coordinate_len, r, s, digest_refs, x, y)
            }
            MbFamily::Ed25519 => {
                let mut r: [&[u8; 32]; LANES] = [&[0; 32]; LANES];
                let mut s: [&[u8; 32]; LANES] = [&[0; 32]; LANES];
                let mut messages: [&[u8]; LANES] = [&[]; LANES];
                let mut keys: [&[u8; 32]; LANES] = [&[0; 32]; LANES];
                for lane in 0..LANES {
                    let Some(job) = lane_job(lane) else { return };
                    let Some(MbKey::Ed25519(key)) = job.key.mb() else {
                        return;
                    };
                    let (Some(sig_r), Some(sig_s)) = (
                        job.signature.get(..32).and_then(|c| c.try_into().ok()),
                        job.signature.get(32..64).and_then(|c| c.try_into().ok()),
                    ) else {
                        return;
                    };
                    if let (Some(r), Some(s), Some(m), Some(k)) = (
                        r.get_mut(lane),
                        s.get_mut(lane),
                        messages.get_mut(lane),
                        keys.get_mut(lane),
                    ) {
                        *r = sig_r;
                        *s = sig_s;
                        *m = job.message;
                        *k = key;
                    }
                }
                self.library.ed25519_verify(r, s, messages, keys)
            }
        };
        let Some(status) = status else { return };
        for (lane, answer) in answers.iter_mut().enumerate() {
            *answer = match self.lane_status(status, lane) {
                ffi::STATUS_OK => LaneAnswer::Verified,
                ffi::STATUS_SIGNATURE_ERR => LaneAnswer::Bad,
                _ => LaneAnswer::EngineError,
            };
        }
    }

    /// Lane `lane`'s status in `status` (with the unit-test failure hook applied).
    fn lane_status(&self, status: u32, lane: usize) -> u32 {
        #[cfg(test)]
        if self.fail_lanes.load(std::sync::atomic::Ordering::Relaxed) & (1 << (lane & 7)) != 0 {
            return ffi::MBX_STATUS_NULL_PARAM_ERR_FOR_TESTS;
        }
        ffi::lane_status(status, lane)
    }

    fn run_rsa(&self, family: MbFamily, jobs: &[VerifyJob<'_>], answers: &mut [LaneAnswer]) {
        let Some(bits) = family.rsa_bits() else {
            return;
        };
        let mut input: [&[u8]; LANES] = [&[]; LANES];
        let mut moduli: [&[u64]; LANES] = [&[]; LANES];
        for lane in 0..LANES {
            let Some(job) = jobs.get(lane).or(jobs.first()) else {
                return;
            };
            let Some(MbKey::Rsa(key)) = job.key.mb() else {
                return;
            };
            if key.bits != bits {
                return;
            }
            if let (Some(i), Some(n)) = (input.get_mut(lane), moduli.get_mut(lane)) {
                *i = job.signature;
                *n = &key.n_limbs;
            }
        }
        let mut out: [Vec<u8>; LANES] = Default::default();
        let Some(status) = self.library.rsa_public(bits, input, moduli, &mut out) else {
            return;
        };
        for (lane, (job, answer)) in jobs.iter().zip(answers.iter_mut()).enumerate() {
            let (Some(MbKey::Rsa(key)), Some(em)) = (job.key.mb(), out.get(lane)) else {
                continue;
            };
            *answer = if self.lane_status(status, lane) != ffi::STATUS_OK {
                LaneAnswer::EngineError
            } else {
                let hash = digest::digest(key.scheme.hash, job.message);
                if emsa::verify(key.scheme, em, bits as usize, hash.as_ref()) {
                    LaneAnswer::Verified
                } else {
                    LaneAnswer::Bad
                }
            };
        }
    }
}

/// The family of a key's crypto_mb form.
fn key_family(key: &PreparedKey) -> Option<MbFamily> {
    match key.mb()? {
        MbKey::Rsa(rsa) => Some(rsa.family),
        MbKey::Ec(ec) => Some(ec.family),
        MbKey::Ed25519(_) => Some(MbFamily::Ed25519),
    }
}

impl Backend for CryptoMbBackend {
    fn name(&self) -> &'static str {
        "crypto-mb"
    }

    fn key_engine(&self, key: &PreparedKey) -> &'static str {
        if key_family(key).is_some_and(|f| self.serves(f)) {
            self.name()
        } else {
            self.fallback.key_engine(key)
        }
    }

    fn prepare(&self, material: &KeyMaterial, alg: Algorithm) -> Result<PreparedKey, PrepareError> {
        // aws-lc-rs validates the key (and keeps its form for the fallback path) first.
        let key = self.fallback.prepare(material, alg)?;
        let mb = self.mb_form(material, alg);
        // Just made, so not shared yet: the crypto_mb form joins it in place.
        Ok(key.with_forms(|forms| forms.mb = mb))
    }

    fn verify(&self, key: &PreparedKey, message: &[u8], signature: &[u8]) -> Result<(), Reject> {
        if key_family(key).is_none_or(|family| self.min_batch(family) > 1) {
            return self.fallback.verify(key, message, signature);
        }
        let job = VerifyJob {
            key,
            message,
            signature,
        };
        let mut results = Vec::with_capacity(1);
        self.verify_batch(std::slice::from_ref(&job), &mut results);
        results.pop().unwrap_or(Err(Reject::BadSignature))
    }

    fn batch_class(&self, key: &PreparedKey) -> Option<BatchClass> {
        // Only families a library call serves and that are worth batching at all; other keys
        // batch as aws-lc-rs batches them (Ed25519 on dalek), since they go to it.
        match key_family(key) {
            Some(family) if self.serves(family) && self.min_batch(family) <= LANES => {
                Some(BatchClass {
                    id: family.index() as u32,
                    answers: BatchAnswers::PerLane,
                    max: MAX_BATCH,
                })
            }
            _ => self.fallback.batch_class(key),
        }
    }

    fn verify_batch(&self, jobs: &[VerifyJob<'_>], results: &mut Vec<Result<(), Reject>>) {
        results.clear();
        results.resize(jobs.len(), Err(Reject::BadSignature));
        let mut lanes: Vec<(MbFamily, usize)> = Vec::new();
        let mut rest: Vec<usize> = Vec::new();
        for (index, job) in jobs.iter().enumerate() {
            match self.lane_for(job) {
                Some(family) => lanes.push((family, index)),
                None => rest.push(index),
            }
        }
        // Stable: jobs keep their order within a family.
        lanes.sort_by_key(|(family, _)| *family);
        let mut chunk_jobs: Vec<VerifyJob<'_>> = Vec::with_capacity(LANES);
        let mut answers = Vec::with_capacity(LANES);
        for group in lanes.chunk_by(|a, b| a.0 == b.0) {
            let Some((family, _)) = group.first() else {
                continue;
            };
            for chunk in group.chunks(LANES) {
                if chunk.len() < self.min_batch(*family) {
                    // Too few for a library call to beat aws-lc-rs (see `calibrate`).
                    rest.extend(chunk.iter().map(|(_, index)| *index));
                    continue;
                }
                chunk_jobs.clear();
                chunk_jobs.extend(chunk.iter().filter_map(|(_, i)| jobs.get(*i)).copied());
                self.run_chunk(*family, &chunk_jobs, &mut answers);
                if answers.contains(&LaneAnswer::EngineError)
                    && let Some(health) = self.health.get(family.index())
                {
                    health.record_error(*family);
                }
                for ((_, index), answer) in chunk.iter().zip(&answers) {
                    let Some((slot, job)) = results.get_mut(*index).zip(jobs.get(*index)) else {
                        continue;
                    };
                    *slot = match answer {
                        LaneAnswer::Verified => Ok(()),
                        LaneAnswer::Bad => Err(Reject::BadSignature),
                        LaneAnswer::EngineError => {
                            metrics::counter!(
                                names::ENGINE_ERRORS_TOTAL,
                                names::labels::ENGINE => "crypto-mb",
                                names::labels::ALG => job.key.algorithm().name(),
                            )
                            .increment(1);
                            self.fallback.verify(job.key, job.message, job.signature)
                        }
                    };
                }
            }
        }
        if !rest.is_empty() {
            rest.sort_unstable();
            let sub: Vec<VerifyJob<'_>> =
                rest.iter().filter_map(|i| jobs.get(*i)).copied().collect();
            let mut sub_results = Vec::with_capacity(sub.len());
            self.fallback.verify_batch(&sub, &mut sub_results);
            for (index, result) in rest.iter().zip(sub_results) {
                if let Some(slot) = results.get_mut(*index) {
                    *slot = result;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
