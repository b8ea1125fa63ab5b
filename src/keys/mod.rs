//! Key sets per issuer, as immutable snapshots.
//!
//! A [`KeySet`] is built once from a JWKS (parsed by `jose`, prepared by a crypto backend) and
//! never mutated; a refresh builds a new one and swaps it in. Selection by `kid` and algorithm
//! is a hash lookup. [`live`] keeps remote (`jwks_uri`, `discovery_uri`) and watched-file key
//! sets current, [`fetch`] is their bounded HTTP client and [`schedule`] the sans-IO timing
//! rules, rate limit and forged-`kid` memory.
#![forbid(unsafe_code)]

pub mod fetch;
pub mod introspect;
pub mod live;
pub mod schedule;

use crate::crypto::{Backend, PrepareError, PreparedKey};
use crate::jose::{Algorithm, Header, Jwk, JwkError, Reject, parse_jwks};
use std::collections::HashMap;

/// One JWK with a prepared key for each algorithm it may verify.
#[derive(Debug)]
pub struct KeyEntry {
    /// The key id, if the JWK had one.
    pub kid: Option<String>,
    /// Prepared keys, one per usable algorithm (usually one).
    pub prepared: Vec<PreparedKey>,
    /// A digest of the `kid` and public material: equal across refetches while the key stays
    /// published, so answers cached under it can tell whether it left.
    pub fingerprint: u64,
}

impl KeyEntry {
    fn for_algorithm(&self, alg: Algorithm) -> Option<&PreparedKey> {
        self.prepared.iter().find(|key| key.algorithm() == alg)
    }
}

/// A key that was not loaded, and why (for logs and `check-config`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// The JWK itself is unusable.
    #[error(transparent)]
    Jwk(#[from] JwkError),
    /// The crypto engine refused the key.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// None of the provider's allowed algorithms fits the key.
    #[error("no allowed algorithm fits this key")]
    NoAllowedAlgorithm,
}

/// A skipped key: its position in the JWKS, its `kid`, the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Index in the JWKS `keys` array.
    pub index: usize,
    /// The key's `kid`, if any.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Why a whole key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    /// The document is not a JWKS.
    #[error("not a JWKS: {0}")]
    NotJwks(JwkError),
    /// Symmetric and asymmetric keys in one set: a published set must never hold secrets, and
    /// mixing them invites algorithm confusion.
    #[error("the key set mixes symmetric (oct) and asymmetric keys")]
    MixedSymmetry,
}

/// Sets of up to this many keys (most JWKS hold one to four) find a `kid` by comparing it with
/// each key's, which is cheaper than hashing it; larger sets use the index.
const SCAN_BELOW: usize = 8;

/// An immutable, prepared key set.
#[derive(Debug, Default)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
    by_kid: HashMap<String, Vec<usize>>,
    skipped: Vec<SkippedKey>,
}

impl KeySet {
    /// Parses a JWKS and prepares every usable key for the `allowed` algorithms.
    pub fn from_jwks(
        jwks: &[u8],
        allowed: &[Algorithm],
        backend: &dyn Backend,
    ) -> Result<KeySet, KeySetError> {
        let parsed = parse_jwks(jwks).map_err(KeySetError::NotJwks)?;
        let mut skipped: Vec<SkippedKey> = parsed
            .skipped
            .into_iter()
            .map(|(index, kid, reason)| SkippedKey {
                index,
                kid,
                reason: reason.into(),
            })
            .collect();
        let has_symmetric = parsed.keys.iter().any(|k| k.material.is_symmetric());
        let has_asymmetric = parsed.keys.iter().any(|k| !k.material.is_symmetric());
        if has_symmetric && has_asymmetric {
            return Err(KeySetError::MixedSymmetry);
        }
        // `parsed.keys` holds only the JWKs `parse_jwks` accepted, so their position in it is not
        // their position in the JWKS `keys` array once an earlier key was skipped there. The k-th
        // accepted key sits at the k-th array position the parser did not skip; report that one.
        let mut positions = {
            let parser_skipped: Vec<usize> = skipped.iter().map(|s| s.index).collect();
            (0..).filter(move |index| !parser_skipped.contains(index))
        };
        let mut set = KeySet::default();
        for jwk in parsed.keys {
            let index = positions.next().unwrap_or(usize::MAX);
            match prepare_entry(&jwk, allowed, backend) {
                Ok(entry) => set.push(entry),
                Err(reason) => skipped.push(SkippedKey {
                    index,
                    kid: jwk.kid,
                    reason,
                }),
            }
        }
        skipped.sort_by_key(|s| s.index);
        set.skipped = skipped;
        Ok(set)
    }

    /// A key set holding one JWK (for `verdict.v1` VerifyJws and tests).
    pub fn from_jwk(
        jwk: &Jwk,
        allowed: &[Algorithm],
        backend: &dyn Backend,
    ) -> Result<KeySet, SkipReason> {
        let mut set = KeySet::default();
        set.push(prepare_entry(jwk, allowed, backend)?);
        Ok(set)
    }

    fn push(&mut self, entry: KeyEntry) {
        if let Some(kid) = &entry.kid {
            self.by_kid
                .entry(kid.clone())
                .or_default()
                .push(self.entries.len());
        }
        self.entries.push(entry);
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is usable: every token will be refused (fail closed).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys that were not loaded, and why.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The usable keys.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    /// The fingerprint of the entry holding `key` (compared by address: `key` came from this
    /// set's [`KeySet::select`]).
    pub fn fingerprint_of(&self, key: &PreparedKey) -> Option<u64> {
        self.entries
            .iter()
            .find(|entry| entry.prepared.iter().any(|p| std::ptr::eq(p, key)))
            .map(|entry| entry.fingerprint)
    }

    /// Whether a key with this fingerprint is still in the set.
    pub fn has_fingerprint(&self, fingerprint: u64) -> bool {
        self.entries.iter().any(|e| e.fingerprint == fingerprint)
    }

    /// Picks the key for a token header. The algorithm must already be on the allow-list; the
    /// key must have been prepared for exactly that algorithm, so the header can never make a
    /// key verify under another scheme.
    pub fn select<'a>(&'a self, header: &Header) -> Result<&'a PreparedKey, Reject> {
        if self.entries.is_empty() {
            return Err(Reject::NoKeys);
        }
        let mut found: Option<&PreparedKey> = None;
        let mut kid_known = false;
        let mut consider = |key: Option<&'a PreparedKey>| -> Result<(), Reject> {
            if let Some(key) = key
                && found.replace(key).is_some()
            {
                return Err(Reject::AmbiguousKey);
            }
            Ok(())
        };
        match &header.kid {
            Some(kid) => {
                let kid: &str = kid;
                let mut check = |entry: Option<&'a KeyEntry>| {
                    kid_known = true;
                    consider(entry.and_then(|e| e.for_algorithm(header.alg)))
                };
                if self.entries.len() <= SCAN_BELOW {
                    for entry in &self.entries {
                        if entry.kid.as_deref() == Some(kid) {
                            check(Some(entry))?;
                        }
                    }
                } else {
                    for index in self.by_kid.get(kid).map(Vec::as_slice).unwrap_or(&[]) {
                        check(self.entries.get(*index))?;
                    }
                }
            }
            None => {
                for entry in &self.entries {
                    consider(entry.for_algorithm(header.alg))?;
                }
            }
        }
        match found {
            Some(key) => Ok(key),
            None if kid_known => Err(Reject::AlgorithmNotAllowed),
            None => Err(Reject::UnknownKey),
        }
    }
}

fn prepare_entry(
    jwk: &Jwk,
    allowed: &[Algorithm],
    backend: &dyn Backend,
) -> Result<KeyEntry, SkipReason> {
    let mut prepared = Vec::new();
    for alg in jwk.usable_algorithms(allowed) {
        prepared.push(backend.prepare(&jwk.material, alg)?);
    }
    if prepared.is_empty() {
        return Err(SkipReason::NoAllowedAlgorithm);
    }
    Ok(KeyEntry {
        kid: jwk.kid.clone(),
        prepared,
        fingerprint: fingerprint(jwk),
    })
}

/// SHA-256 over the `kid` and the key material (each part length-prefixed), first 8 bytes.
fn fingerprint(jwk: &Jwk) -> u64 {
    use crate::jose::KeyMaterial;
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut part = |tag: u8, bytes: &[u8]| {
        context.update(&[tag]);
        context.update(&(bytes.len() as u64).to_le_bytes());
        context.update(bytes);
    };
    part(0, jwk.kid.as_deref().unwrap_or("").as_bytes());
    match &jwk.material {
        KeyMaterial::Rsa { n, e } => {
            part(1, n);
            part(2, e);
        }
        KeyMaterial::Ec { curve, x, y } => {
            part(3, format!("{curve:?}").as_bytes());
            part(4, x);
            part(5, y);
        }
        KeyMaterial::Ed25519 { x } => part(6, x),
        KeyMaterial::Oct { k } => part(7, k),
    }
    let digest = context.finish();
    let mut first = [0u8; 8];
    for (out, byte) in first.iter_mut().zip(digest.as_ref()) {
        *out = *byte;
    }
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::AwsLcBackend;
    use crate::jose::b64;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

    fn header(alg: Algorithm, kid: Option<&str>) -> Header {
        Header {
            alg,
            kid: kid.map(Into::into),
            typ: None,
        }
    }

    /// `count` Ed25519 keys `k0`… plus two keys sharing the kid `dup`: the same answers whether
    /// the set is small enough to be scanned or large enough to use the index.
    #[test]
    fn selection_is_the_same_scanned_or_indexed() {
        for count in [2, SCAN_BELOW + 4] {
            let kids: Vec<String> = (0..count)
                .map(|n| format!("k{n}"))
                .chain(["dup".to_owned(), "dup".to_owned()])
                .collect();
            let keys: Vec<String> = kids
                .iter()
                .map(|kid| {
                    let pair = Ed25519KeyPair::generate().expect("key");
                    let x = b64::encode(pair.public_key().as_ref());
                    format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"{kid}"}}"#)
                })
                .collect();
            let jwks = format!(r#"{{"keys":[{}]}}"#, keys.join(","));
            let set = KeySet::from_jwks(
                jwks.as_bytes(),
                &[Algorithm::EdDSA],
                &AwsLcBackend::default(),
            )
            .expect("JWKS loads");
            assert_eq!(set.len(), count + 2);
            assert_eq!(count + 2 <= SCAN_BELOW, count == 2);
            for n in 0..count {
                let kid = format!("k{n}");
                let chosen = set
                    .select(&header(Algorithm::EdDSA, Some(&kid)))
                    .expect("selects");
                let expected = set.entries()[n].prepared.first().expect("prepared");
                assert!(std::ptr::eq(chosen, expected), "{kid} of {count}");
                assert_eq!(
                    set.select(&header(Algorithm::ES256, Some(&kid))).err(),
                    Some(Reject::AlgorithmNotAllowed)
                );
            }
            assert_eq!(
                set.select(&header(Algorithm::EdDSA, Some("dup"))).err(),
                Some(Reject::AmbiguousKey)
            );
            assert_eq!(
                set.select(&header(Algorithm::EdDSA, Some("nope"))).err(),
                Some(Reject::UnknownKey)
            );
            assert_eq!(
                set.select(&header(Algorithm::EdDSA, None)).err(),
                Some(Reject::AmbiguousKey)
            );
        }
    }
}
