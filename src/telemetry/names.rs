//! Every metric name verdict exports, in one place.
//!
//! Dashboards, alerts and the outside tests grep for these strings, so a name never changes once
//! released: add a new one instead. Code that records a metric uses these constants (and the label
//! keys and values in [`labels`]) rather than string literals, so a typo cannot silently create a
//! second series.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Counter of answered checks. Labels: [`labels::RESULT`] (`allow`|`deny`), [`labels::REASON`]
/// (a `Reject` code, or `ok` when allowed), [`labels::PROVIDER`], [`labels::ALG`].
pub const CHECKS_TOTAL: &str = "verdict_checks_total";

/// Summary of check latency in seconds, from receiving a check to answering it. Exported by
/// [`super::Telemetry::render`] from the per-worker hdrhistograms, not through the `metrics`
/// facade (whose summaries are windowed and lock on record).
pub const CHECK_DURATION_SECONDS: &str = "verdict_check_duration_seconds";

/// Gauge: the largest check latency seen since start, in seconds (within histogram precision).
pub const CHECK_DURATION_SECONDS_MAX: &str = "verdict_check_duration_seconds_max";

/// Gauge: seconds since the provider's current key set was fetched or loaded. Label:
/// [`labels::PROVIDER`]. Alerts on stale keys (a broken refresh) key off this.
pub const KEYSET_AGE_SECONDS: &str = "verdict_keyset_age_seconds";

/// Gauge: usable keys in the provider's current key set. Label: [`labels::PROVIDER`]. Zero means
/// every token of that provider is rejected with `no_keys`.
pub const KEYSET_KEYS: &str = "verdict_keyset_keys";

/// Counter of key-set fetches (discovery + JWKS, or a watched file's reload). Labels:
/// [`labels::PROVIDER`], [`labels::CAUSE`] (`scheduled`|`kid_miss`), [`labels::RESULT`]
/// (`updated`|`unchanged`|`error`).
pub const KEYSET_FETCHES_TOTAL: &str = "verdict_keyset_fetches_total";

/// Histogram of key-set fetch durations in seconds. Label: [`labels::PROVIDER`].
pub const KEYSET_FETCH_DURATION_SECONDS: &str = "verdict_keyset_fetch_duration_seconds";

/// Gauge: Unix time of the provider's last key-set fetch attempt. Label: [`labels::PROVIDER`].
pub const KEYSET_LAST_FETCH_TIMESTAMP_SECONDS: &str = "verdict_keyset_last_fetch_timestamp_seconds";

/// Gauge: 1 when the provider's last key-set fetch succeeded (a new or unchanged set), else 0.
/// Label: [`labels::PROVIDER`].
pub const KEYSET_LAST_FETCH_SUCCESS: &str = "verdict_keyset_last_fetch_success";

/// Gauge: seconds the provider's key set has been served while its IdP fails (0 when the last
/// fetch succeeded). Label: [`labels::PROVIDER`]. At `max_stale_s` the provider fails closed.
pub const KEYSET_STALE_SECONDS: &str = "verdict_keyset_stale_seconds";

/// Gauge: keys of the provider's last fetched JWKS that were not loaded (bad or unusable
/// JWKs; the good ones around them still load). Label: [`labels::PROVIDER`].
pub const KEYSET_SKIPPED_KEYS: &str = "verdict_keyset_skipped_keys";

/// Counter of checks whose token named a `kid` missing from its provider's key set. Labels:
/// [`labels::PROVIDER`], [`labels::RESULT`]: `refetch` (this check started a refetch and waited
/// for it), `joined` (it waited for a fetch already in flight), `rate_limited` (a refetch ran
/// less than `kid_miss_refetch_interval_s` ago: denied without one), `remembered` (the `kid` is
/// known to be absent from the current key set: denied with a lookup).
pub const KEYSET_KID_MISSES_TOTAL: &str = "verdict_keyset_kid_misses_total";

/// Counter of RFC 7662 introspection calls. Labels: [`labels::PROVIDER`], [`labels::RESULT`]
/// (`ok`|`error`|`circuit_open`: refused without a call while the endpoint's circuit is open).
pub const INTROSPECTION_CALLS_TOTAL: &str = "verdict_introspection_calls_total";

/// Histogram of introspection call durations in seconds. Label: [`labels::PROVIDER`].
pub const INTROSPECTION_DURATION_SECONDS: &str = "verdict_introspection_duration_seconds";

/// Counter of introspection cache lookups. Labels: [`labels::PROVIDER`], [`labels::RESULT`]
/// (`hit`|`miss`).
pub const INTROSPECTION_CACHE_LOOKUPS_TOTAL: &str = "verdict_introspection_cache_lookups_total";

/// Counter of answer-cache lookups. Labels: [`labels::CACHE`] (`verified`|`negative`),
/// [`labels::RESULT`] (`hit`|`miss`). A check that misses the verified cache then looks in the
/// negative one.
pub const CACHE_LOOKUPS_TOTAL: &str = "verdict_cache_lookups_total";

/// Gauge: entries held by an answer cache (expired ones count until replaced). Label:
/// [`labels::CACHE`].
pub const CACHE_ENTRIES: &str = "verdict_cache_entries";

/// Counter of still-valid entries an answer cache pushed out for newer ones. Label:
/// [`labels::CACHE`]. A steady rise means `max_entries` is smaller than the working set.
pub const CACHE_EVICTIONS_TOTAL: &str = "verdict_cache_evictions_total";

/// Counter: checks that waited for another check of the same credential to be decided (the
/// answer caches' single-flight), instead of deciding it again.
pub const CACHE_FLIGHT_WAITS_TOTAL: &str = "verdict_cache_flight_waits_total";

/// Counter: claim headers left out (and removed upstream) because the claim's value cannot
/// stand in a header unchanged. Labels: [`labels::PROVIDER`], [`labels::HEADER`].
pub const CLAIM_HEADERS_REFUSED_TOTAL: &str = "verdict_claim_headers_refused_total";

/// Gauge: live revocations. Label: [`labels::KIND`] (`jti`|`sub`|`sid`|`kid`|`issued_before`).
pub const REVOCATIONS: &str = "verdict_revocations";

/// Counter: revocations accepted (new entries). Label: [`labels::KIND`].
pub const REVOCATIONS_TOTAL: &str = "verdict_revocations_total";

/// Histogram: seconds each revocation-log append waited for its fsync.
pub const REVOCATION_LOG_FSYNC_SECONDS: &str = "verdict_revocation_log_fsync_seconds";

/// Gauge: 1 while the provider's introspection circuit is open (calls refused), else 0.
/// Label: [`labels::PROVIDER`].
pub const INTROSPECTION_CIRCUIT_OPEN: &str = "verdict_introspection_circuit_open";

/// Gauge set to 1 per worker, naming the I/O runtime it runs. Labels: [`labels::WORKER`],
/// [`labels::KIND`] (`io_uring`|`tokio`). Tells an operator which path a host actually took.
pub const WORKER_RUNTIME: &str = "verdict_worker_runtime";

/// Gauge: open gRPC connections on a worker. Label: [`labels::WORKER`]. Shows connection
/// imbalance between cores.
pub const WORKER_CONNECTIONS: &str = "verdict_worker_connections";

/// Counter of connections accepted by a worker. Label: [`labels::WORKER`].
pub const CONNECTIONS_ACCEPTED_TOTAL: &str = "verdict_connections_accepted_total";

/// Counter of configuration reloads. Label: [`labels::RESULT`] (`ok`|`error`).
pub const CONFIG_RELOADS_TOTAL: &str = "verdict_config_reloads_total";

/// Counter of signature batches a core checked across requests (`runtime::batcher`). Label:
/// [`labels::RESULT`]: `engine` (handed to an engine that answers each signature on its own,
/// crypto_mb); for all-or-nothing batches (Ed25519 on dalek) `valid` (every signature verified
/// together), `invalid` (at least one did not: each was checked alone), `paused` (not attempted
/// after a recent failure of the class on the core: checked alone); `single` (only one request
/// was ready: checked alone).
pub const SIGNATURE_BATCHES_TOTAL: &str = "verdict_signature_batches_total";

/// Counter of the signatures in those batches, by the same [`labels::RESULT`]; divided by
/// [`SIGNATURE_BATCHES_TOTAL`] it is the mean batch size.
pub const SIGNATURE_BATCH_SIGNATURES_TOTAL: &str = "verdict_signature_batch_signatures_total";

/// Counter of decision-log lines (`[audit]`). Label: [`labels::RESULT`]: `written` (appended
/// to the worker's file), `dropped` (the worker's queue was full, or the log was shutting
/// down: the check was answered, its line lost), `failed` (lost to a write error).
pub const AUDIT_LINES_TOTAL: &str = "verdict_audit_lines_total";

/// Gauge set to 1, carrying the running version in [`labels::VERSION`]; the usual Prometheus idiom
/// for joining version information onto other series.
pub const BUILD_INFO: &str = "verdict_build_info";

/// Gauge set to 1 for the engine that verifies each algorithm, chosen at start (`[crypto]
/// backend` and the engines' probes). Labels: [`labels::ALG`], [`labels::ENGINE`]
/// (`aws-lc-rs`|`crypto-mb`).
pub const ENGINE_SELECTED: &str = "verdict_engine_selected";

/// Counter of signatures an engine failed to answer (a lane status other than "verified" or
/// "bad signature"), which were then verified by aws-lc-rs. Labels: [`labels::ENGINE`],
/// [`labels::ALG`].
pub const ENGINE_ERRORS_TOTAL: &str = "verdict_engine_errors_total";

/// Gauge, 1 while an engine is switched off for a family after repeated run-time errors (its
/// jobs go to aws-lc-rs for a cool-down, see `crypto::cooldown`), 0 once it is tried again.
/// Labels: [`labels::ENGINE`], [`labels::FAMILY`].
pub const ENGINE_COOLING_DOWN: &str = "verdict_engine_cooling_down";

/// Gauge: 1 while this instance's connections to the fleet's Redis are up, else 0.
pub const FLEET_CONNECTED: &str = "verdict_fleet_connected";

/// Gauge: stream entries other instances published that this one has not applied yet.
pub const FLEET_LAG_ENTRIES: &str = "verdict_fleet_lag_entries";

/// Gauge: age in seconds of the oldest stream entry not applied yet (0 when caught up).
pub const FLEET_LAG_SECONDS: &str = "verdict_fleet_lag_seconds";

/// Gauge: local changes waiting to be published to the stream (kept durably while Redis is
/// unreachable).
pub const FLEET_PUBLISH_QUEUE: &str = "verdict_fleet_publish_queue";

/// Counter of local changes published to the stream. Label: [`labels::CAUSE`]: `change` (a
/// revocation or removal accepted here), `republish` (after a gap), `refresh` (a live entry
/// published again before the stream's retention would drop it).
pub const FLEET_PUBLISHED_TOTAL: &str = "verdict_fleet_published_total";

/// Counter of failed publish attempts (each retried with backoff until it lands).
pub const FLEET_PUBLISH_FAILURES_TOTAL: &str = "verdict_fleet_publish_failures_total";

/// Counter of other instances' changes read from the stream. Label: [`labels::RESULT`]:
/// `applied` (changed the local set), `duplicate` (already known, or expired).
pub const FLEET_APPLIED_TOTAL: &str = "verdict_fleet_applied_total";

/// Gauge: the millisecond part of the last stream id applied (Redis server time).
pub const FLEET_LAST_APPLIED_ID_MS: &str = "verdict_fleet_last_applied_id_ms";

/// Counter of gaps found in the stream. Label: [`labels::CAUSE`]: `trimmed` (entries past
/// this instance's last id were trimmed away), `reset` (Redis lost the stream: its epoch marker
/// changed). Each one re-reads the stream and re-publishes this instance's live entries.
pub const FLEET_GAPS_TOTAL: &str = "verdict_fleet_gaps_total";

/// Histogram of the delay from an entry's publication (its stream id's time) to its
/// application here, in seconds.
pub const FLEET_APPLY_DELAY_SECONDS: &str = "verdict_fleet_apply_delay_seconds";

/// Label keys and the fixed label values, shared by every recording site.
pub mod labels {
    /// Label key: the outcome (`allow`|`deny` on checks, `ok`|`error` on reloads).
    pub const RESULT: &str = "result";
    /// Label key: the `Reject` code of a denied check, or [`OK`] for an allowed one.
    pub const REASON: &str = "reason";
    /// Label key: the provider's configured name.
    pub const PROVIDER: &str = "provider";
    /// Label key: a claim header's name.
    pub const HEADER: &str = "header";
    /// Label key: the JWS algorithm (`RS256`, `ES256`, `EdDSA`, …).
    pub const ALG: &str = "alg";
    /// Label key: the worker (core) index.
    pub const WORKER: &str = "worker";
    /// Label key: the worker's runtime kind; a revocation's selector kind.
    pub const KIND: &str = "kind";
    /// Label key: the crate version on [`super::BUILD_INFO`].
    pub const VERSION: &str = "version";
    /// Label key: why a key set was fetched.
    pub const CAUSE: &str = "cause";
    /// Label key: which answer cache (`verified`|`negative`).
    pub const CACHE: &str = "cache";
    /// Label key: a verification engine (`aws-lc-rs`, `crypto-mb`).
    pub const ENGINE: &str = "engine";
    /// Label key: an engine's algorithm family and key size (`RSA-2048`, `P-256`, `Ed25519`, …).
    pub const FAMILY: &str = "family";
    /// Label key of a summary's quantile (Prometheus convention).
    pub const QUANTILE: &str = "quantile";

    /// `result` value: the check was allowed.
    pub const ALLOW: &str = "allow";
    /// `result` value: the check was denied.
    pub const DENY: &str = "deny";
    /// `reason` value of an allowed check, and `result` value of a successful reload.
    pub const OK: &str = "ok";
    /// `result` value of a failed reload.
    pub const ERROR: &str = "error";
    /// `result` value of a signature batch whose signatures all verified together.
    pub const VALID: &str = "valid";
    /// `result` value of a signature batch with at least one signature that did not verify.
    pub const INVALID: &str = "invalid";
    /// `result` value of a batch handed to an engine that answers each signature on its own
    /// (crypto_mb).
    pub const ENGINE_BATCH: &str = "engine";
    /// `result` value of a signature "batch" of one, checked alone.
    pub const SINGLE: &str = "single";
    /// `result` value of a signature batch not attempted because a recent one failed on the
    /// same core: its signatures were checked alone.
    pub const PAUSED: &str = "paused";
    /// `cause` value: a key-set fetch on the refresh schedule (or the first one).
    pub const SCHEDULED: &str = "scheduled";
    /// `cause` value: a key-set fetch for a token whose `kid` was unknown.
    pub const KID_MISS: &str = "kid_miss";
    /// `result` value: the fetch brought a new key set.
    pub const UPDATED: &str = "updated";
    /// `result` value: the fetch confirmed the current key set (304 or the same document).
    pub const UNCHANGED: &str = "unchanged";
    /// `result` value: an audit line was appended to its file.
    pub const WRITTEN: &str = "written";
    /// `result` value: an audit line was dropped because its worker's queue was full.
    pub const DROPPED: &str = "dropped";
    /// `result` value: an audit line was lost to a write error.
    pub const FAILED: &str = "failed";
    /// `kind` value: the worker runs tokio-uring (io_uring).
    pub const IO_URING: &str = "io_uring";
    /// `kind` value: the worker runs a plain current-thread tokio runtime (epoll).
    pub const TOKIO: &str = "tokio";
    /// `cause` value: a change accepted here, published to the fleet.
    pub const CHANGE: &str = "change";
    /// `cause` value: own live entries published again after a gap.
    pub const REPUBLISH: &str = "republish";
    /// `cause` value: a live entry published again before the stream's retention drops it.
    pub const REFRESH: &str = "refresh";
    /// `cause` value: the stream was trimmed past this instance's last applied id.
    pub const TRIMMED: &str = "trimmed";
    /// `cause` value: Redis lost the stream (its epoch marker changed).
    pub const RESET: &str = "reset";
    /// `result` value: a fleet entry changed the local set.
    pub const APPLIED: &str = "applied";
    /// `result` value: a fleet entry was already known (or expired).
    pub const DUPLICATE: &str = "duplicate";
}

/// Registers the description and unit of every metric with the installed recorder, so the
/// exposition carries `# HELP` lines. Harmless to call more than once (the first description wins)
/// and a no-op when no recorder is installed.
pub fn describe_all() {
    describe_gauge!(
        ENGINE_SELECTED,
        Unit::Count,
        "1 for the engine chosen at start to verify each algorithm (by alg and engine)."
    );
    describe_counter!(
        ENGINE_ERRORS_TOTAL,
        Unit::Count,
        "Signatures an engine failed to answer, re-verified by aws-lc-rs (by engine and alg)."
    );
    describe_gauge!(
        ENGINE_COOLING_DOWN,
        Unit::Count,
        "1 while an engine is switched off for a family after repeated errors (by engine and family)."
    );
    describe_counter!(
        CHECKS_TOTAL,
        Unit::Count,
        "Checks answered, by result, reject reason, provider and algorithm."
    );
    describe_gauge!(
        KEYSET_AGE_SECONDS,
        Unit::Seconds,
        "Seconds since the provider's current key set was loaded or last confirmed by its IdP."
    );
    describe_gauge!(
        KEYSET_KEYS,
        Unit::Count,
        "Usable keys in the provider's current key set."
    );
    describe_counter!(
        KEYSET_FETCHES_TOTAL,
        Unit::Count,
        "Key-set fetches, by provider, cause and result."
    );
    describe_histogram!(
        KEYSET_FETCH_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of key-set fetches, by provider."
    );
    describe_gauge!(
        KEYSET_LAST_FETCH_TIMESTAMP_SECONDS,
        Unit::Seconds,
        "Unix time of the provider's last key-set fetch attempt."
    );
    describe_gauge!(
        KEYSET_LAST_FETCH_SUCCESS,
        "1 when the provider's last key-set fetch succeeded, else 0."
    );
    describe_gauge!(
        KEYSET_STALE_SECONDS,
        Unit::Seconds,
        "Seconds the provider's key set has been served while its IdP fails."
    );
    describe_gauge!(
        KEYSET_SKIPPED_KEYS,
        Unit::Count,
        "Keys of the provider's last JWKS that were not loaded."
    );
    describe_counter!(
        KEYSET_KID_MISSES_TOTAL,
        Unit::Count,
        "Checks whose kid was missing from the provider's key set, by what happened."
    );
    describe_counter!(
        INTROSPECTION_CALLS_TOTAL,
        Unit::Count,
        "RFC 7662 introspection calls, by provider and result."
    );
    describe_histogram!(
        INTROSPECTION_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of introspection calls, by provider."
    );
    describe_counter!(
        INTROSPECTION_CACHE_LOOKUPS_TOTAL,
        Unit::Count,
        "Introspection cache lookups, by provider and result."
    );
    describe_counter!(
        CACHE_LOOKUPS_TOTAL,
        Unit::Count,
        "Answer cache lookups, by cache (verified, negative) and result (hit, miss)."
    );
    describe_gauge!(
        CACHE_ENTRIES,
        Unit::Count,
        "Entries held by the answer cache."
    );
    describe_counter!(
        CACHE_EVICTIONS_TOTAL,
        Unit::Count,
        "Still-valid entries the answer cache pushed out for newer ones."
    );
    describe_counter!(
        CACHE_FLIGHT_WAITS_TOTAL,
        Unit::Count,
        "Checks that waited for a concurrent check of the same credential instead of deciding it again."
    );
    describe_counter!(
        CLAIM_HEADERS_REFUSED_TOTAL,
        Unit::Count,
        "Claim headers left out because the claim's value cannot stand in a header unchanged."
    );
    describe_gauge!(
        REVOCATIONS,
        Unit::Count,
        "Live revocations, by selector kind."
    );
    describe_counter!(
        REVOCATIONS_TOTAL,
        Unit::Count,
        "Revocations accepted, by selector kind."
    );
    describe_histogram!(
        REVOCATION_LOG_FSYNC_SECONDS,
        Unit::Seconds,
        "Time each revocation-log append waited for its fsync."
    );
    describe_gauge!(
        INTROSPECTION_CIRCUIT_OPEN,
        "1 while the provider's introspection circuit is open, else 0."
    );
    describe_gauge!(
        WORKER_RUNTIME,
        "Set to 1 per worker; the kind label names its I/O runtime (io_uring or tokio)."
    );
    describe_gauge!(
        WORKER_CONNECTIONS,
        Unit::Count,
        "Open connections on the worker."
    );
    describe_counter!(
        CONNECTIONS_ACCEPTED_TOTAL,
        Unit::Count,
        "Connections accepted by the worker."
    );
    describe_counter!(
        CONFIG_RELOADS_TOTAL,
        Unit::Count,
        "Configuration reloads, by result."
    );
    describe_counter!(
        SIGNATURE_BATCHES_TOTAL,
        Unit::Count,
        "Signature batches checked across requests on a core, by result."
    );
    describe_counter!(
        SIGNATURE_BATCH_SIGNATURES_TOTAL,
        Unit::Count,
        "Signatures in those batches, by result."
    );
    describe_counter!(
        AUDIT_LINES_TOTAL,
        Unit::Count,
        "Decision-log lines, by result: written, dropped (queue full), failed (write error)."
    );
    describe_gauge!(
        FLEET_CONNECTED,
        "1 while the connections to the fleet's Redis are up, else 0."
    );
    describe_gauge!(
        FLEET_LAG_ENTRIES,
        Unit::Count,
        "Stream entries of other instances not applied here yet."
    );
    describe_gauge!(
        FLEET_LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest stream entry not applied here yet."
    );
    describe_gauge!(
        FLEET_PUBLISH_QUEUE,
        Unit::Count,
        "Local changes waiting to be published to the fleet's stream."
    );
    describe_counter!(
        FLEET_PUBLISHED_TOTAL,
        Unit::Count,
        "Local changes published to the fleet's stream, by cause."
    );
    describe_counter!(
        FLEET_PUBLISH_FAILURES_TOTAL,
        Unit::Count,
        "Failed attempts to publish to the fleet's stream (retried with backoff)."
    );
    describe_counter!(
        FLEET_APPLIED_TOTAL,
        Unit::Count,
        "Other instances' changes read from the stream, by result."
    );
    describe_gauge!(
        FLEET_LAST_APPLIED_ID_MS,
        "Millisecond part of the last stream id applied."
    );
    describe_counter!(
        FLEET_GAPS_TOTAL,
        Unit::Count,
        "Gaps found in the fleet's stream, by cause (trimmed, reset)."
    );
    describe_histogram!(
        FLEET_APPLY_DELAY_SECONDS,
        Unit::Seconds,
        "Delay from a fleet entry's publication to its application here."
    );
    describe_gauge!(
        BUILD_INFO,
        "Set to 1; the version label carries the running verdict version."
    );
}
