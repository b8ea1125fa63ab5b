//! Scenario files (TOML): the load shape, the token mix and timed actions.
//!
//! Every table denies unknown keys so a typo is an error naming the key. Command-line flags
//! override the values read from a file (see `cli.rs`); [`Scenario::validate`] runs after the
//! overrides and names the offending key on error.
//!
//! ```toml
//! name = "realistic-mix"
//! description = "90% repeated tokens, 5% never seen before, 5% bad signatures"
//!
//! [load]
//! rpc = "check"            # "check" (ext_authz v3) or "verify-batch" (verdict.v1)
//! batch_size = 16          # tokens per VerifyBatch call
//! connections = 4          # HTTP/2 connections
//! streams = 16             # concurrent requests per connection
//! rate = 0                 # total requests/s; 0 = closed loop (maximum throughput)
//! warmup = "2s"            # excluded from the results
//! duration = "10s"         # measured time (ignored when `requests` > 0)
//! requests = 0             # measured requests instead of a duration
//! timeout = "5s"           # per request
//!
//! [tokens]
//! credential = "bearer"    # "none" = no credential at all (the cheapest deny path)
//! algorithms = { RS256 = 60, ES256 = 30, EdDSA = 10 }
//! distinct = 1000          # distinct valid tokens that repeat
//! distribution = "zipf"    # "uniform", "zipf" or "sequential" over each pool
//! zipf_exponent = 1.0
//! new = 0.05               # fraction of requests carrying a token never sent before
//! new_pool = 20000
//! invalid = 0.05           # bad signature
//! expired = 0.0
//! unknown_kid = 0.0
//! revoked = 0.0            # jti listed in revoked.jti (not enforced by verdict yet)
//! lifetime = "1h"
//! seed = 1
//!
//! [[actions]]
//! at_s = 5                 # seconds after the measurement starts
//! kind = "sighup"
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// The action kinds a scenario may schedule today.
pub const ACTION_KINDS: [&str; 1] = ["sighup"];

/// Largest accepted `tokens.distinct` / `tokens.new_pool` (the pool is held in memory).
pub const MAX_POOL: usize = 1_000_000;

/// A duration written as `"10s"`, `"250ms"`, `"1.5m"`, `"2h"` or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// From whole seconds.
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
}

/// Parses `"10s"`, `"250ms"`, `"100us"`, `"1.5m"`, `"2h"`, `"3"` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 10s, 250ms, 1.5m)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (ns, us, ms, s, m, h)"
            ));
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        "0s".into()
    } else if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(u64),
            Float(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(text) => parse_duration(&text)
                .map(Dur)
                .map_err(serde::de::Error::custom),
            Raw::Int(secs) => Ok(Dur(Duration::from_secs(secs))),
            Raw::Float(secs) => parse_duration(&secs.to_string())
                .map(Dur)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Which RPC carries the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RpcKind {
    /// `envoy.service.auth.v3.Authorization/Check`, one token per call, as Envoy sends it.
    #[default]
    Check,
    /// `verdict.v1.Verifier/VerifyBatch`, `batch_size` tokens per call.
    VerifyBatch,
}

impl RpcKind {
    /// The scenario spelling.
    pub fn name(self) -> &'static str {
        match self {
            RpcKind::Check => "check",
            RpcKind::VerifyBatch => "verify-batch",
        }
    }
}

/// `[load]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadSection {
    /// `rpc`: `"check"` (default) or `"verify-batch"`.
    pub rpc: RpcKind,
    /// `batch_size` (default 16): tokens per VerifyBatch call (1..=1024).
    pub batch_size: usize,
    /// `connections` (default 4): HTTP/2 connections to the server.
    pub connections: usize,
    /// `streams` (default 16): concurrent requests per connection.
    pub streams: usize,
    /// `rate` (default 0): total requests (RPCs) per second in open loop; 0 = closed loop.
    pub rate: f64,
    /// `warmup` (default 2s): load sent before the measurement, excluded from the results.
    pub warmup: Dur,
    /// `duration` (default 10s): the measured time (unused when `requests` > 0).
    pub duration: Dur,
    /// `requests` (default 0): measure this many requests instead of a duration.
    pub requests: u64,
    /// `timeout` (default 5s): per-request timeout; a timed-out request is a transport error.
    pub timeout: Dur,
    /// `deadline` (default: warm-up + duration + timeout + 10 s, or 10 min with `requests`):
    /// the hard stop; whatever is still in flight then is abandoned and the run is marked aborted.
    pub deadline: Option<Dur>,
}

impl Default for LoadSection {
    fn default() -> Self {
        LoadSection {
            rpc: RpcKind::Check,
            batch_size: 16,
            connections: 4,
            streams: 16,
            rate: 0.0,
            warmup: Dur::secs(2),
            duration: Dur::secs(10),
            requests: 0,
            timeout: Dur::secs(5),
            deadline: None,
        }
    }
}

impl LoadSection {
    /// The hard deadline from the start of the run.
    pub fn hard_deadline(&self) -> Duration {
        match self.deadline {
            Some(d) => d.0,
            None if self.requests > 0 => self.warmup.0 + Duration::from_secs(600),
            None => self.warmup.0 + self.duration.0 + self.timeout.0 + Duration::from_secs(10),
        }
    }

    /// True in open loop (a fixed rate).
    pub fn open_loop(&self) -> bool {
        self.rate > 0.0
    }
}

/// Where the credential goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Credential {
    /// `authorization: Bearer <token>` (default).
    #[default]
    Bearer,
    /// No credential at all: the server's cheapest deny path (the framework ceiling).
    None,
}

/// How tokens are drawn from a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Every token equally likely (default).
    #[default]
    Uniform,
    /// Zipf over the pool: the token of rank k is drawn with weight 1/k^s.
    Zipf,
    /// Round-robin through the pool: a token repeats only after all others were sent.
    Sequential,
}

/// The signing algorithms the harness holds keys for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 SHA-256, RSA 2048.
    RS256,
    /// ECDSA P-256 SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    /// All of them.
    pub const ALL: [Alg; 3] = [Alg::RS256, Alg::ES256, Alg::EdDSA];

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// Parses a JOSE name (`Ed25519` is accepted for EdDSA).
    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "RS256" => Some(Alg::RS256),
            "ES256" => Some(Alg::ES256),
            "EdDSA" | "Ed25519" => Some(Alg::EdDSA),
            _ => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[tokens]`: the token mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenMix {
    /// `credential` (default `"bearer"`).
    pub credential: Credential,
    /// `algorithms` (default `{ RS256 = 1 }`): weights per algorithm (RS256, ES256, EdDSA).
    pub algorithms: BTreeMap<String, f64>,
    /// `distinct` (default 1000): distinct valid tokens that repeat.
    pub distinct: usize,
    /// `distribution` (default `"uniform"`) over each pool.
    pub distribution: Distribution,
    /// `zipf_exponent` (default 1.0): the `s` of the Zipf distribution (> 0).
    pub zipf_exponent: f64,
    /// `new` (default 0): fraction of requests carrying a valid token never sent before (each
    /// token of the `new_pool` is sent once; the pool wraps around if the run outlasts it).
    pub new: f64,
    /// `new_pool` (default 10000): tokens pre-signed for `new`.
    pub new_pool: usize,
    /// `invalid` (default 0): fraction with a bad signature.
    pub invalid: f64,
    /// `expired` (default 0): fraction whose `exp` is an hour in the past.
    pub expired: f64,
    /// `unknown_kid` (default 0): fraction signed by a key whose `kid` is not in the JWKS.
    pub unknown_kid: f64,
    /// `revoked` (default 0): fraction whose `jti` is listed in the `revoked.jti` file.
    pub revoked: f64,
    /// `lifetime` (default 1h): `exp - iat` of the valid tokens.
    pub lifetime: Dur,
    /// `seed` (default 1): seeds token assignment and request sampling.
    pub seed: u64,
}

impl Default for TokenMix {
    fn default() -> Self {
        TokenMix {
            credential: Credential::Bearer,
            algorithms: [("RS256".to_owned(), 1.0)].into_iter().collect(),
            distinct: 1000,
            distribution: Distribution::Uniform,
            zipf_exponent: 1.0,
            new: 0.0,
            new_pool: 10_000,
            invalid: 0.0,
            expired: 0.0,
            unknown_kid: 0.0,
            revoked: 0.0,
            lifetime: Dur::secs(3600),
            seed: 1,
        }
    }
}

impl TokenMix {
    /// The algorithm weights, validated: known names, finite non-negative weights, one > 0.
    pub fn algorithm_weights(&self) -> Result<Vec<(Alg, f64)>, ScenarioError> {
        let mut out = Vec::new();
        for (name, weight) in &self.algorithms {
            let alg = Alg::parse(name).ok_or_else(|| {
                ScenarioError::new(
                    format!("tokens.algorithms.{name}"),
                    "unknown algorithm; the harness signs RS256, ES256 and EdDSA",
                )
            })?;
            if !weight.is_finite() || *weight < 0.0 {
                return Err(ScenarioError::new(
                    format!("tokens.algorithms.{name}"),
                    "a weight is a finite number >= 0",
                ));
            }
            if *weight > 0.0 {
                out.push((alg, *weight));
            }
        }
        if out.is_empty() && self.credential == Credential::Bearer {
            return Err(ScenarioError::new(
                "tokens.algorithms",
                "at least one algorithm needs a weight > 0",
            ));
        }
        Ok(out)
    }

    /// The fraction of requests that carry a repeated valid token.
    pub fn valid_fraction(&self) -> f64 {
        1.0 - self.new - self.invalid - self.expired - self.unknown_kid - self.revoked
    }
}

/// `[[actions]]`: something done to the server during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// Seconds after the measurement starts (after the warm-up).
    pub at_s: f64,
    /// What to do: `"sighup"` (reload the config; needs a spawned server or `--server-pid`).
    pub kind: String,
}

/// A validated action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Send SIGHUP to the server (configuration reload).
    Sighup,
}

impl ActionKind {
    /// The scenario spelling.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Sighup => "sighup",
        }
    }
}

/// A validated, scheduled action.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Action {
    /// When, after the measurement starts.
    pub at: Duration,
    /// What.
    pub kind: ActionKind,
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// `name` (required): shown in reports and plot legends.
    pub name: String,
    /// `description` (optional).
    #[serde(default)]
    pub description: String,
    /// `[load]`.
    #[serde(default)]
    pub load: LoadSection,
    /// `[tokens]`.
    #[serde(default)]
    pub tokens: TokenMix,
    /// `[[actions]]`.
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "adhoc".into(),
            description: String::new(),
            load: LoadSection::default(),
            tokens: TokenMix::default(),
            actions: Vec::new(),
        }
    }
}

/// A scenario error naming the key: `KEY: REASON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The dotted key, e.g. `tokens.invalid` or `actions[0].kind`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ScenarioError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ScenarioError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Reads and parses a scenario file (not yet validated: flags may still override it).
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses scenario TOML.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks every value and returns the validated actions, in time order.
    pub fn validate(&self) -> Result<Vec<Action>, ScenarioError> {
        if self.name.trim().is_empty() {
            return Err(ScenarioError::new("name", "must not be empty"));
        }
        let l = &self.load;
        if !(1..=verdict::rpc::verifier::MAX_BATCH).contains(&l.batch_size) {
            return Err(ScenarioError::new(
                "load.batch_size",
                format!("must be 1..={}", verdict::rpc::verifier::MAX_BATCH),
            ));
        }
        if !(1..=1000).contains(&l.connections) {
            return Err(ScenarioError::new("load.connections", "must be 1..=1000"));
        }
        if !(1..=1000).contains(&l.streams) {
            return Err(ScenarioError::new(
                "load.streams",
                "must be 1..=1000 (HTTP/2 servers commonly cap concurrent streams near 100-200)",
            ));
        }
        if !l.rate.is_finite() || l.rate < 0.0 || l.rate > 10_000_000.0 {
            return Err(ScenarioError::new(
                "load.rate",
                "requests per second, 0 (closed loop) to 10,000,000",
            ));
        }
        if l.requests == 0 && l.duration.0.is_zero() {
            return Err(ScenarioError::new(
                "load.duration",
                "must be > 0 (or set load.requests)",
            ));
        }
        if l.timeout.0.is_zero() {
            return Err(ScenarioError::new("load.timeout", "must be > 0"));
        }
        if let Some(deadline) = l.deadline
            && deadline.0 <= l.warmup.0
        {
            return Err(ScenarioError::new(
                "load.deadline",
                "must be longer than the warm-up",
            ));
        }
        let t = &self.tokens;
        t.algorithm_weights()?;
        if t.credential == Credential::Bearer {
            if !(1..=MAX_POOL).contains(&t.distinct) {
                return Err(ScenarioError::new(
                    "tokens.distinct",
                    format!("must be 1..={MAX_POOL}"),
                ));
            }
            for (key, value) in [
                ("tokens.new", t.new),
                ("tokens.invalid", t.invalid),
                ("tokens.expired", t.expired),
                ("tokens.unknown_kid", t.unknown_kid),
                ("tokens.revoked", t.revoked),
            ] {
                if !value.is_finite() || !(0.0..=1.0).contains(&value) {
                    return Err(ScenarioError::new(key, "a fraction in 0..=1"));
                }
            }
            if t.valid_fraction() < -1e-9 {
                return Err(ScenarioError::new(
                    "tokens",
                    "new + invalid + expired + unknown_kid + revoked must not exceed 1",
                ));
            }
            if t.new > 0.0 && !(1..=MAX_POOL).contains(&t.new_pool) {
                return Err(ScenarioError::new(
                    "tokens.new_pool",
                    format!("must be 1..={MAX_POOL} when tokens.new > 0"),
                ));
            }
            if t.distribution == Distribution::Zipf
                && !(t.zipf_exponent.is_finite()
                    && t.zipf_exponent > 0.0
                    && t.zipf_exponent <= 10.0)
            {
                return Err(ScenarioError::new(
                    "tokens.zipf_exponent",
                    "must be in (0, 10]",
                ));
            }
            if t.lifetime.0 < Duration::from_secs(60) {
                return Err(ScenarioError::new(
                    "tokens.lifetime",
                    "must be at least 60s (tokens must outlive the run)",
                ));
            }
        }
        let mut actions = Vec::with_capacity(self.actions.len());
        for (i, spec) in self.actions.iter().enumerate() {
            if !spec.at_s.is_finite() || spec.at_s < 0.0 || spec.at_s > 1e6 {
                return Err(ScenarioError::new(
                    format!("actions[{i}].at_s"),
                    "seconds after the measurement starts, >= 0",
                ));
            }
            let kind = match spec.kind.as_str() {
                "sighup" => ActionKind::Sighup,
                other => {
                    return Err(ScenarioError::new(
                        format!("actions[{i}].kind"),
                        format!(
                            "unknown action kind `{other}`; supported: {} (revocation and key-rotation actions arrive with those features)",
                            ACTION_KINDS.join(", ")
                        ),
                    ));
                }
            };
            actions.push(Action {
                at: Duration::from_secs_f64(spec.at_s),
                kind,
            });
        }
        actions.sort_by_key(|a| a.at);
        Ok(actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        for d in ["10s", "250ms", "100us", "7ns", "0s"] {
            let parsed = parse_duration(d).expect("parses");
            assert_eq!(format_duration(parsed), d);
        }
    }

    #[test]
    fn scenario_defaults_validate() {
        let s = Scenario::parse("name = \"x\"").expect("parses");
        assert_eq!(s.load, LoadSection::default());
        assert_eq!(s.validate(), Ok(Vec::new()));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Scenario::parse("name = \"x\"\n[load]\nconections = 3\n").expect_err("typo");
        assert!(e.contains("conections"), "{e}");
    }

    #[test]
    fn actions_are_validated_and_sorted() {
        let s = Scenario::parse(
            "name = \"x\"\n[[actions]]\nat_s = 5\nkind = \"sighup\"\n[[actions]]\nat_s = 1.5\nkind = \"sighup\"\n",
        )
        .expect("parses");
        let actions = s.validate().expect("valid");
        assert_eq!(actions.len(), 2);
        assert_eq!(
            actions.first().map(|a| a.at),
            Some(Duration::from_millis(1500))
        );

        let s = Scenario::parse("name = \"x\"\n[[actions]]\nat_s = 1\nkind = \"revoke\"\n")
            .expect("parses");
        let e = s.validate().expect_err("unknown kind");
        assert_eq!(e.key, "actions[0].kind");
        assert!(e.reason.contains("unknown action kind `revoke`"), "{e}");
        assert!(e.reason.contains("sighup"), "{e}");
    }

    #[test]
    fn fractions_must_fit() {
        let mut s = Scenario::default();
        s.tokens.invalid = 0.7;
        s.tokens.expired = 0.4;
        assert_eq!(s.validate().expect_err("too much").key, "tokens");
        s.tokens.expired = 0.3;
        assert!(s.validate().is_ok());
        s.tokens.algorithms.insert("HS256".into(), 1.0);
        assert_eq!(
            s.validate().expect_err("unknown alg").key,
            "tokens.algorithms.HS256"
        );
    }
}
