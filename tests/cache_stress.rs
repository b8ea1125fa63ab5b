//! Stress: checker threads deciding tokens through the answer caches while a controller thread
//! rotates keys in and out, revokes and un-revokes tokens and subjects, and moves the clock,
//! every answer compared with a simple oracle.
//!
//! The checkers and the controller share a test-only `RwLock`: a check runs under the read
//! lock, a change under the write lock, so each check sees one state and the oracle can say
//! exactly what it must answer (allowed, or denied with which reason). The caches, the
//! single-flight, the revocation set and the providers snapshot are the real ones, shared by
//! every checker thread, each on its own current-thread runtime as a worker is. Never a hit
//! for a token that is not valid now (forged, rotated out, revoked, expired), and never a
//! false denial.
// A check holds the world's read lock across its await on purpose: that is what makes the
// oracle exact. Each checker runs on its own current-thread runtime, so nothing else waits.
#![allow(clippy::await_holding_lock)]

use arc_swap::ArcSwap;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use verdict::config::CacheConfig;
use verdict::crypto::{AwsLcBackend, Backend};
use verdict::jose::{Algorithm, ClaimRules, Limits, Reject};
use verdict::keys::KeySet;
use verdict::keys::live::KeyState;
use verdict::policy::{CredentialSource, Decision, Provider, Providers, RequestView, TokenPolicy};
use verdict::revocation::{NewRevocation, RevocationStore, Selector};
use verdict::rpc::ServiceState;
use verdict::rpc::answers::Answers;

const ISSUER: &str = "https://idp.stress.test";
const PROVIDER: &str = "stress";
const START: u64 = 1_900_000_000;
const TOKENS: usize = 240;
const SUBJECTS: usize = 12;
const CHECKERS: usize = 3;
const RUN_FOR: Duration = Duration::from_secs(4);

static CLOCK: AtomicU64 = AtomicU64::new(START);

fn clock() -> u64 {
    CLOCK.load(Ordering::SeqCst)
}

/// xorshift64*: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn b64(bytes: &[u8]) -> String {
    verdict::jose::b64::encode(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forgery {
    Genuine,
    /// The signature bytes changed.
    Tampered,
    /// Signed by a key nobody published, under a published `kid`.
    WrongKey,
}

struct Token {
    text: String,
    kid: usize,
    jti: String,
    sub: String,
    exp: u64,
    forgery: Forgery,
}

/// What the world is now, as the controller made it.
#[derive(Debug, Default)]
struct World {
    published: [bool; 2],
    revoked_jti: HashMap<String, String>,
    revoked_sub: HashMap<String, String>,
}

impl World {
    /// What verdict must answer for `token` now.
    fn expect(&self, token: &Token, now: u64) -> Result<(), Reject> {
        if !self.published[token.kid] {
            return Err(Reject::UnknownKey);
        }
        if token.forgery != Forgery::Genuine {
            return Err(Reject::BadSignature);
        }
        if now >= token.exp {
            return Err(Reject::Expired);
        }
        if self.revoked_jti.contains_key(&token.jti) || self.revoked_sub.contains_key(&token.sub) {
            return Err(Reject::Revoked);
        }
        Ok(())
    }
}

fn jwk(kid: &str, key: &Ed25519KeyPair) -> String {
    format!(
        r#"{{"kty":"OKP","crv":"Ed25519","kid":"{kid}","alg":"EdDSA","x":"{}"}}"#,
        b64(key.public_key().as_ref())
    )
}

fn key_set(keys: &[(String, bool)], backend: &dyn Backend) -> KeySet {
    let published: Vec<&str> = keys
        .iter()
        .filter(|(_, on)| *on)
        .map(|(jwk, _)| jwk.as_str())
        .collect();
    let jwks = format!(r#"{{"keys":[{}]}}"#, published.join(","));
    if published.is_empty() {
        return KeySet::default();
    }
    KeySet::from_jwks(jwks.as_bytes(), &[Algorithm::EdDSA], backend).expect("jwks")
}

fn mint(key: &Ed25519KeyPair, kid: &str, claims: &serde_json::Value) -> String {
    let header = b64(format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"JWT"}}"#).as_bytes());
    let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(signature.as_ref()))
}

fn tamper(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').expect("jws");
    let mut sig = sig.as_bytes().to_vec();
    let middle = sig.len() / 2;
    sig[middle] = if sig[middle] == b'A' { b'B' } else { b'A' };
    format!("{input}.{}", String::from_utf8(sig).expect("ascii"))
}

#[test]
fn cached_answers_always_match_the_oracle_under_rotation_revocation_and_time() {
    let backend = AwsLcBackend::default();
    let signers = [
        Ed25519KeyPair::generate().expect("key"),
        Ed25519KeyPair::generate().expect("key"),
    ];
    let stranger = Ed25519KeyPair::generate().expect("key");
    let kids = ["k0", "k1"];
    let jwks: Vec<String> = signers
        .iter()
        .zip(kids)
        .map(|(key, kid)| jwk(kid, key))
        .collect();

    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let tokens: Vec<Token> = (0..TOKENS)
        .map(|i| {
            let kid = i % 2;
            let sub = format!("user-{}", i % SUBJECTS);
            let jti = format!("jti-{i}");
            // Lifetimes from a few seconds to beyond the run, so expiry happens throughout.
            let exp = START + 2 + rng.below(1500) as u64;
            let claims = serde_json::json!({
                "iss": ISSUER, "sub": sub, "jti": jti, "iat": START - 10, "exp": exp,
            });
            let forgery = match i % 8 {
                5 => Forgery::Tampered,
                6 => Forgery::WrongKey,
                _ => Forgery::Genuine,
            };
            let text = match forgery {
                Forgery::Genuine => mint(&signers[kid], kids[kid], &claims),
                Forgery::Tampered => tamper(&mint(&signers[kid], kids[kid], &claims)),
                Forgery::WrongKey => mint(&stranger, kids[kid], &claims),
            };
            Token {
                text,
                kid,
                jti,
                sub,
                exp,
                forgery,
            }
        })
        .collect();

    let all_on: Vec<(String, bool)> = jwks.iter().map(|j| (j.clone(), true)).collect();
    let provider = Provider {
        name: PROVIDER.into(),
        policy: TokenPolicy {
            algorithms: vec![Algorithm::EdDSA],
            rules: ClaimRules {
                issuer: Some(ISSUER.into()),
                leeway_s: 0,
                ..ClaimRules::default()
            },
            limits: Limits::default(),
        },
        keys: Arc::new(key_set(&all_on, &backend)),
        keys_generation: 1,
        keys_loaded_at: Some(START),
        keys_error: None,
        live: None,
        introspection: None,
        claims_to_headers: vec![("sub".into(), "x-sub".into())],
        claims_to_metadata: Vec::new(),
        required_scopes: Vec::new(),
        source: CredentialSource::default(),
    };
    let providers = Arc::new(ArcSwap::from_pointee(Providers::new(vec![provider])));
    // A cache smaller than the token set, so eviction runs throughout too.
    let cache = CacheConfig {
        max_entries: 64,
        max_ttl_s: 300,
        negative_ttl_s: 10,
    };
    let answers = Answers::new(&cache, 8).expect("answers").map(Arc::new);
    let (store, _) = RevocationStore::open(None, 10_000, START).expect("store");
    let store = Arc::new(store);
    let backend: Arc<dyn Backend> = Arc::new(backend);
    let state = ServiceState {
        providers: Arc::clone(&providers),
        backend: Arc::clone(&backend),
        clock,
        answers,
        revocations: store.published(),
    };

    let world = Arc::new(RwLock::new(World {
        published: [true, true],
        ..World::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(tokens);
    let checked = Arc::new(AtomicU64::new(0));
    let allowed = Arc::new(AtomicU64::new(0));

    let checkers: Vec<_> = (0..CHECKERS)
        .map(|t| {
            let state = state.clone();
            let world = Arc::clone(&world);
            let stop = Arc::clone(&stop);
            let tokens = Arc::clone(&tokens);
            let checked = Arc::clone(&checked);
            let allowed = Arc::clone(&allowed);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                runtime.block_on(async {
                    while !stop.load(Ordering::Relaxed) {
                        // Hot tokens most of the time, so the cache is hit, cold ones too.
                        let index = if rng.below(4) == 0 {
                            rng.below(TOKENS)
                        } else {
                            rng.below(16)
                        };
                        let token = &tokens[index];
                        let headers: HashMap<String, String> =
                            [("authorization".to_owned(), format!("Bearer {}", token.text))]
                                .into_iter()
                                .collect();
                        let view = RequestView {
                            headers: &headers,
                            path: "/",
                        };
                        let world = world.read().expect("world");
                        let now = clock();
                        let decision = state.decide(&view).await;
                        let want = world.expect(token, now);
                        let got = match &decision {
                            Decision::Allow(_) => Ok(()),
                            Decision::Deny(denied, _) => Err(denied.reason),
                        };
                        assert_eq!(
                            got, want,
                            "token {index} ({:?}, kid {}, exp {}) at {now}, world {world:?}",
                            token.forgery, token.kid, token.exp
                        );
                        drop(world);
                        checked.fetch_add(1, Ordering::Relaxed);
                        if got.is_ok() {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            })
        })
        .collect();

    // The controller.
    let mut rng = Rng(0xc0ff_ee00_dead_beef);
    let mut generation = 1;
    let mut published = [true, true];
    let mut changes = [0u32; 4];
    let started = Instant::now();
    while started.elapsed() < RUN_FOR && !checkers.iter().any(|c| c.is_finished()) {
        std::thread::sleep(Duration::from_micros(300));
        let mut world = world.write().expect("world");
        match rng.below(10) {
            // Rotate: a key leaves or comes back (never both gone for long).
            0 | 1 => {
                let which = rng.below(2);
                published[which] = !published[which] || !published[1 - which];
                generation += 1;
                let keys: Vec<(String, bool)> = jwks
                    .iter()
                    .zip(published)
                    .map(|(j, on)| (j.clone(), on))
                    .collect();
                let next = providers
                    .load()
                    .with_key_state(
                        0,
                        KeyState {
                            keys: Arc::new(key_set(&keys, &*backend)),
                            generation,
                            loaded_at: Some(clock()),
                            last_error: None,
                        },
                    )
                    .expect("provider 0");
                providers.store(Arc::new(next));
                world.published = published;
                changes[0] += 1;
            }
            // Revoke or un-revoke a token or a subject.
            2..=5 => {
                let by_sub = rng.below(3) == 0;
                let value = if by_sub {
                    format!("user-{}", rng.below(SUBJECTS))
                } else {
                    format!("jti-{}", rng.below(16.max(TOKENS / 4)))
                };
                let map = if by_sub {
                    &mut world.revoked_sub
                } else {
                    &mut world.revoked_jti
                };
                if let Some(id) = map.remove(&value) {
                    store.remove(&id, clock()).expect("remove");
                    changes[2] += 1;
                } else {
                    let selector = if by_sub {
                        Selector::Sub(value.clone())
                    } else {
                        Selector::Jti(value.clone())
                    };
                    let (entry, _) = store
                        .add(
                            NewRevocation {
                                provider: PROVIDER.into(),
                                selector,
                                reason: None,
                                expires_at: None,
                            },
                            clock(),
                        )
                        .expect("add");
                    map.insert(value, entry.id);
                    changes[1] += 1;
                }
            }
            // Time passes.
            6 => {
                CLOCK.fetch_add(1, Ordering::SeqCst);
                changes[3] += 1;
            }
            _ => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    for checker in checkers {
        if let Err(panic) = checker.join() {
            std::panic::resume_unwind(panic);
        }
    }
    let checked = checked.load(Ordering::Relaxed);
    let allowed = allowed.load(Ordering::Relaxed);
    println!(
        "{checked} checks ({allowed} allowed) against the oracle; {} rotations, {} revocations, {} removals, {} clock ticks",
        changes[0], changes[1], changes[2], changes[3]
    );
    assert!(checked > 1000, "the checkers ran: {checked}");
    assert!(
        allowed > 0 && allowed < checked,
        "both answers were exercised"
    );
    assert!(
        changes.iter().all(|&n| n > 0),
        "every kind of change happened: {changes:?}"
    );
}
