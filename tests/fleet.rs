//! A fleet of three real verdict instances sharing revocations through a real `redis-server`
//! (loopback, free port, no persistence): propagation time, DELETE, kill -9 and restart,
//! Redis down while revocations are accepted, Redis restarted empty, and the same token
//! revoked on two instances at once. The 10-minute soak is `#[ignore]`d (see README).

mod common;

use common::redis::Redis;
use common::{
    EXAMPLE_PROVIDER, Scratch, Server, TestKey, admin_call, bearer_check, check, claims,
    example_jwks, grpc_code,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const TOKEN: &str = "fleet-admin-token-0123456789";
const STREAM: &str = "verdict:test";
const GRPC_OK: i32 = 0;
const GRPC_UNAUTHENTICATED: i32 = 16;
/// How long a change may take to reach another instance when Redis is up (generous: the
/// measured figure is printed by `propagation_p50_p99_and_delete`).
const REACH: Duration = Duration::from_secs(10);

/// The ACL user's password in `acl_user_and_password_from_a_file`.
const REDIS_PASSWORD: &str = "fleet-s3cret-7d1f";

/// One fleet at a time: the timings are this fleet's, not a neighbour test's.
/// (An async mutex: it is held across the tests' awaits, and a failed test does not poison it.)
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Redis, a directory for the instances' logs and state (kept across their restarts), and the
/// instances.
struct Fleet {
    redis: Redis,
    dir: Scratch,
    extra: String,
}

impl Fleet {
    fn new(extra: &str) -> Fleet {
        Fleet::on(Redis::start(), extra)
    }

    fn on(redis: Redis, extra: &str) -> Fleet {
        Fleet {
            redis,
            dir: Scratch::new("fleet"),
            extra: extra.to_owned(),
        }
    }

    /// Starts instance `name` (its log and state survive a restart under the same name) and
    /// waits until `/readyz` says it has caught up.
    fn member(&self, name: &str) -> Server {
        let server = self.member_unready(name);
        server.wait_readyz(200, Duration::from_secs(20));
        server
    }

    fn member_unready(&self, name: &str) -> Server {
        let log = self.dir.0.join(format!("{name}.log"));
        let config = format!(
            "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 1\n\n\
             [admin]\ntoken_file = \"admin.token\"\n\n\
             [revocation]\nlog_file = \"{}\"\n\n\
             [fleet]\nredis_url = \"{}\"\nstream = \"{STREAM}\"\ninstance_id = \"{name}\"\n{}\n{EXAMPLE_PROVIDER}",
            log.display(),
            self.redis.url(),
            self.extra,
        );
        let jwks = example_jwks();
        Server::start(
            &config,
            &[
                ("jwks.json", jwks.as_slice()),
                ("admin.token", format!("{TOKEN}\n").as_bytes()),
                ("redis.password", format!("{REDIS_PASSWORD}\n").as_bytes()),
            ],
        )
    }

    fn three(&self) -> Vec<Server> {
        ["a", "b", "c"].iter().map(|n| self.member(n)).collect()
    }
}

fn token(jti: &str) -> String {
    let mut claims = claims("https://idp.example.com", "api://orders", "alice");
    claims["jti"] = json!(jti);
    TestKey::example_rsa().mint(&claims)
}

/// `POST /v1/revocations` of `jti`: the stored entry (asserts the 201).
fn revoke(server: &Server, jti: &str) -> Value {
    let body = json!({"provider": "corp", "jti": jti}).to_string();
    let (status, text) = admin_call(
        server.admin,
        "POST",
        "/v1/revocations",
        Some(TOKEN),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 201, "POST {jti}: {text}");
    serde_json::from_str(&text).expect("json entry")
}

fn unrevoke(server: &Server, id: &str) {
    let (status, text) = admin_call(
        server.admin,
        "DELETE",
        &format!("/v1/revocations/{id}"),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 204, "DELETE {id}: {text}");
}

fn listed(server: &Server) -> Vec<Value> {
    let (status, text) = admin_call(server.admin, "GET", "/v1/revocations", Some(TOKEN), None);
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    body["revocations"].as_array().cloned().unwrap_or_default()
}

async fn clients(servers: &[Server]) -> Vec<AuthorizationClient<Channel>> {
    let mut clients = Vec::new();
    for server in servers {
        clients.push(server.authz().await);
    }
    clients
}

async fn code(client: &mut AuthorizationClient<Channel>, token: &str) -> i32 {
    grpc_code(&check(client, bearer_check(token)).await)
}

/// Checks `token` until it gets `want`; how long that took (`None`: not within `limit`).
async fn until(
    client: &mut AuthorizationClient<Channel>,
    token: &str,
    want: i32,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if code(client, token).await == want {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn metric(server: &Server, name: &str) -> f64 {
    server.metric_sum(name)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0),
    )
}

/// A revocation accepted by one instance is enforced by the other two (cached allows
/// included); p50/p99 over 100 revocations × 2 receivers. Then DELETE on an instance that is
/// not the origin re-admits the token everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation_p50_p99_and_delete() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::new("");
    let servers = fleet.three();
    let mut clients = clients(&servers).await;
    const REVOCATIONS: usize = 100;
    let mut samples = Vec::new();
    let mut entries = Vec::new();
    for i in 0..REVOCATIONS {
        let jti = format!("p-{i}");
        let token = token(&jti);
        for client in &mut clients {
            assert_eq!(
                code(client, &token).await,
                GRPC_OK,
                "{jti} allowed (and cached) first"
            );
        }
        let origin = i % 3;
        let entry = revoke(&servers[origin], &jti);
        let acknowledged = Instant::now();
        assert_eq!(
            code(&mut clients[origin], &token).await,
            GRPC_UNAUTHENTICATED,
            "{jti} denied at once by its origin"
        );
        for (other, client) in clients.iter_mut().enumerate() {
            if other == origin {
                continue;
            }
            let reached = until(client, &token, GRPC_UNAUTHENTICATED, REACH).await;
            assert!(reached.is_some(), "{jti} never reached instance {other}");
            samples.push(acknowledged.elapsed());
        }
        entries.push((token, entry["id"].as_str().expect("id").to_owned(), origin));
    }
    let (p50, p99, max) = summary(samples.clone());
    println!(
        "fleet propagation, 201 on one instance → denied on another, {} samples ({REVOCATIONS} revocations x 2): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    assert!(
        p99 <= Duration::from_millis(50),
        "p99 propagation {p99:?} is over the 50 ms target"
    );
    for server in &servers {
        assert_eq!(
            listed(server).len(),
            REVOCATIONS,
            "every instance holds all"
        );
    }

    // DELETE propagates the same way, from an instance that did not accept the entry.
    let mut removal = Vec::new();
    for (token, id, origin) in entries.iter().take(20) {
        let deleter = (origin + 1) % 3;
        unrevoke(&servers[deleter], id);
        let removed = Instant::now();
        for client in &mut clients {
            let back = until(client, token, GRPC_OK, REACH).await;
            assert!(
                back.is_some(),
                "removal of {id} did not reach every instance"
            );
        }
        removal.push(removed.elapsed());
    }
    let (p50, p99, _) = summary(removal);
    println!(
        "fleet removal, 204 on one instance → allowed on all three, 20 removals: p50 {:.2} ms, p99 {:.2} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    for server in &servers {
        assert_eq!(listed(server).len(), REVOCATIONS - 20);
    }
    // Own entries are never applied back: the origin counted none of its own as applied.
    for server in &servers {
        assert!(metric(server, "verdict_fleet_applied_total") >= (2 * REVOCATIONS / 3) as f64);
        assert_eq!(metric(server, "verdict_fleet_gaps_total"), 0.0);
    }
}

/// kill -9 one instance, revoke 20 tokens on the others, restart it: by the time its
/// `/readyz` answers 200 it denies all 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_instance_denies_everything_before_it_is_ready() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::new("");
    let mut servers = fleet.three();
    let tokens: Vec<String> = (0..20).map(|i| token(&format!("k-{i}"))).collect();
    let mut victim = servers.pop().expect("c");
    victim.signal("KILL");
    assert!(victim.wait_exit(Duration::from_secs(5)).is_some());
    drop(victim);
    for (i, _) in tokens.iter().enumerate() {
        revoke(&servers[i % 2], &format!("k-{i}"));
    }
    let restarted = fleet.member_unready("c");
    // Poll /readyz; the first 200 is when it claims to be complete.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = restarted.admin_get("/readyz");
        if status == 200 {
            break;
        }
        assert!(body.contains("fleet"), "/readyz names the fleet: {body}");
        assert!(Instant::now() < deadline, "never ready: {body}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut client = restarted.authz().await;
    for (i, token) in tokens.iter().enumerate() {
        assert_eq!(
            code(&mut client, token).await,
            GRPC_UNAUTHENTICATED,
            "k-{i} allowed by the restarted instance after it said it was ready"
        );
    }
    assert!(
        restarted
            .logs()
            .contains("fleet: caught up with the stream")
    );
}

/// Redis stopped: revocations are still accepted (201) and enforced by their instance at
/// once, queued durably; once Redis is back (empty) they reach the other two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_made_while_redis_is_down_arrive_when_it_returns() {
    let _serial = SERIAL.lock().await;
    let mut fleet = Fleet::new("");
    let servers = fleet.three();
    let mut clients = clients(&servers).await;
    fleet.redis.stop();
    let down = servers[0].wait_metric("verdict_fleet_connected", &[], |v| v == 0.0, REACH);
    assert_eq!(down, Some(0.0), "instance a noticed Redis is gone");
    let tokens: Vec<String> = (0..10).map(|i| token(&format!("d-{i}"))).collect();
    for (i, token) in tokens.iter().enumerate() {
        let started = Instant::now();
        revoke(&servers[0], &format!("d-{i}"));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the admin API does not wait for Redis"
        );
        assert_eq!(code(&mut clients[0], token).await, GRPC_UNAUTHENTICATED);
    }
    assert!(metric(&servers[0], "verdict_fleet_publish_queue") >= 10.0);
    for client in clients.iter_mut().skip(1) {
        assert_eq!(code(client, &tokens[9]).await, GRPC_OK, "not there yet");
    }
    fleet.redis.start_again();
    for (i, token) in tokens.iter().enumerate() {
        for client in clients.iter_mut().skip(1) {
            assert!(
                until(client, token, GRPC_UNAUTHENTICATED, Duration::from_secs(20))
                    .await
                    .is_some(),
                "d-{i} did not arrive after Redis returned"
            );
        }
    }
    let drained = servers[0].wait_metric("verdict_fleet_publish_queue", &[], |v| v == 0.0, REACH);
    assert_eq!(drained, Some(0.0));
    assert!(metric(&servers[0], "verdict_fleet_publish_failures_total") >= 1.0);
}

/// Redis restarted empty: every instance notices (a gap, counted), nothing already
/// propagated is lost anywhere, a new instance started afterwards learns everything (the
/// instances published their live entries again), and new revocations propagate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut fleet = Fleet::new("");
    let servers = fleet.three();
    let mut clients = clients(&servers).await;
    let mut tokens: Vec<String> = Vec::new();
    for i in 0..9 {
        let jti = format!("r-{i}");
        revoke(&servers[i % 3], &jti);
        tokens.push(token(&jti));
    }
    for token in &tokens {
        for client in &mut clients {
            assert!(
                until(client, token, GRPC_UNAUTHENTICATED, REACH)
                    .await
                    .is_some()
            );
        }
    }
    fleet.redis.restart_empty();
    for server in &servers {
        let gaps = server.wait_metric(
            "verdict_fleet_gaps_total",
            &[("cause", "reset")],
            |v| v >= 1.0,
            Duration::from_secs(20),
        );
        assert!(
            gaps.is_some_and(|v| v >= 1.0),
            "the reset was noticed:\n{}",
            server.logs()
        );
    }
    for token in &tokens {
        for client in &mut clients {
            assert_eq!(code(client, token).await, GRPC_UNAUTHENTICATED, "kept");
        }
    }
    let jti = "r-new";
    revoke(&servers[1], jti);
    tokens.push(token(jti));
    for client in &mut clients {
        assert!(
            until(client, &tokens[9], GRPC_UNAUTHENTICATED, REACH)
                .await
                .is_some()
        );
    }
    // A newcomer reads only the new stream: all ten are there.
    let newcomer = fleet.member("d");
    let mut client = newcomer.authz().await;
    for (i, token) in tokens.iter().enumerate() {
        assert_eq!(
            code(&mut client, token).await,
            GRPC_UNAUTHENTICATED,
            "r-{i} on the newcomer"
        );
    }
    assert!(fleet.redis.xlen(STREAM) >= 10);
}

/// The same token revoked on two instances at the same moment: both answer 201, and it stays
/// revoked everywhere, also after one of the two entries is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_token_revoked_on_two_instances_at_once_stays_revoked() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::new("");
    let servers = fleet.three();
    let mut clients = clients(&servers).await;
    let token = token("both");
    for client in &mut clients {
        assert_eq!(code(client, &token).await, GRPC_OK);
    }
    let barrier = std::sync::Barrier::new(2);
    let (first, second) = std::thread::scope(|scope| {
        let a = scope.spawn(|| {
            barrier.wait();
            revoke(&servers[0], "both")
        });
        let b = scope.spawn(|| {
            barrier.wait();
            revoke(&servers[1], "both")
        });
        (a.join().expect("a"), b.join().expect("b"))
    });
    for client in &mut clients {
        assert!(
            until(client, &token, GRPC_UNAUTHENTICATED, REACH)
                .await
                .is_some()
        );
    }
    // Both entries reach the third instance (two acceptances, either keeps it revoked).
    let deadline = Instant::now() + REACH;
    while listed(&servers[2]).len() < 2 {
        assert!(Instant::now() < deadline, "both entries reach c");
        std::thread::sleep(Duration::from_millis(20));
    }
    unrevoke(&servers[0], first["id"].as_str().expect("id"));
    let deadline = Instant::now() + REACH;
    while listed(&servers[2]).len() != 1 {
        assert!(Instant::now() < deadline, "the removal reaches c");
        std::thread::sleep(Duration::from_millis(20));
    }
    for client in &mut clients {
        assert_eq!(
            code(client, &token).await,
            GRPC_UNAUTHENTICATED,
            "still revoked"
        );
    }
    assert_eq!(
        listed(&servers[2])[0]["id"],
        second["id"],
        "the other instance's entry is the one left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_user_and_password_from_a_file() {
    // Redis with the default user off: only `verdict` with its password may connect. The
    // password comes from a file and must never reach a log line.
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::on(
        Redis::start_with_acl("verdict", REDIS_PASSWORD),
        "username = \"verdict\"\npassword_file = \"redis.password\"",
    );
    let a = fleet.member("a");
    let b = [fleet.member("b")];
    let mut clients = clients(&b).await;
    let token = token("acl");
    assert_eq!(code(&mut clients[0], &token).await, GRPC_OK);
    revoke(&a, "acl");
    assert!(
        until(&mut clients[0], &token, GRPC_UNAUTHENTICATED, REACH)
            .await
            .is_some(),
        "a revocation crosses an authenticated Redis"
    );
    assert_eq!(metric(&a, "verdict_fleet_connected"), 1.0);
    // A wrong user is refused by Redis: that instance never reports ready, and says why.
    let wrong = Fleet::on(
        Redis::start_with_acl("verdict", REDIS_PASSWORD),
        "username = \"mallory\"\npassword_file = \"redis.password\"",
    );
    let refused = wrong.member_unready("x");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(refused.admin_get("/readyz").0, 503, "{}", refused.logs());
    assert_eq!(metric(&refused, "verdict_fleet_connected"), 0.0);
    for server in [&a, &refused] {
        assert!(
            !server.logs().contains(REDIS_PASSWORD),
            "the password reached a log:\n{}",
            server.logs()
        );
    }
}

/// The soak (`#[ignore]`d; `FLEET_SOAK_S`, default 600): three instances under `verdict-load`
/// with tokens that are never revoked, revocations arriving at 100/s spread over the three,
/// Redis restarted (empty) twice. Every acknowledged revocation must be enforced by the two
/// other instances (checked as they arrive, within 25 s even across a Redis restart); no
/// instance may deny anything but those checks; resident memory stays flat once the live set
/// is steady (entries expire after 30 s, the stream keeps 60 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the fleet soak: cargo test --test fleet -- --ignored soak --nocapture (FLEET_SOAK_S=60 for a short run)"]
async fn soak() {
    use common::load::{reader, verdict_load_bin, wait_child};
    use std::process::{Command, Stdio};
    let _serial = SERIAL.lock().await;
    let seconds: u64 = std::env::var("FLEET_SOAK_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    const RATE: u64 = 100;
    const EXPIRY_S: u64 = 30;
    const DEADLINE: Duration = Duration::from_secs(25);
    let bin = verdict_load_bin();
    // Answers are cached for 30 s (not the default 300 s), so the cache is at its steady size
    // well before the first half ends and memory growth between the halves means a leak.
    let mut fleet = Fleet::new("retention_s = 60\n\n[cache]\nmax_ttl_s = 30");
    let mut servers = fleet.three();
    let background: Vec<String> = (0..64).map(|i| token(&format!("bg-{i}"))).collect();
    let tokens_path = fleet.dir.0.join("tokens.txt");
    std::fs::write(&tokens_path, background.join("\n") + "\n").expect("tokens file");
    let loads: Vec<_> = servers
        .iter()
        .map(|server| {
            let mut child = Command::new(&bin)
                .arg("run")
                .arg("--target")
                .arg(server.grpc.to_string())
                .arg("--tokens-file")
                .arg(&tokens_path)
                .args(["-c", "1", "-m", "2", "-r", "300", "--warmup", "0s"])
                .arg("--duration")
                .arg(format!("{}s", seconds + 30))
                .args(["--timeout", "5s", "--quiet"])
                .arg("--deadline")
                .arg(format!("{}s", seconds + 60))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn verdict-load");
            let out = reader(child.stdout.take().map(|p| Box::new(p) as _));
            let err = reader(child.stderr.take().map(|p| Box::new(p) as _));
            (child, out, err)
        })
        .collect();
    let clients = clients(&servers).await;
    let started = Instant::now();
    let total = Duration::from_secs(seconds);
    let restarts = [total / 3, total * 2 / 3];
    let mut restarted = 0;
    let mut acknowledged = 0u64;
    // One confirmation task per acknowledged revocation: checks the two other instances,
    // polling with a growing pause (5 ms to 500 ms), until both deny or DEADLINE passes.
    let mut confirmations = Vec::new();
    let mut rss: Vec<(Duration, [u64; 3])> = Vec::new();
    let mut next_sample = Instant::now();
    // Two driver threads per instance, each at RATE/6 per second on its own schedule, so a
    // slow answer (an fsync) does not hold the others up; acknowledged ones go to the checker.
    let (acked_tx, acked) = std::sync::mpsc::channel::<(String, String, usize, Instant)>();
    const DRIVERS: usize = 6;
    let admins: Vec<_> = servers.iter().map(|s| s.admin).collect();
    let drivers: Vec<_> = (0..DRIVERS)
        .map(|driver| {
            let origin = driver % 3;
            let admin = admins[origin];
            let acked_tx = acked_tx.clone();
            std::thread::spawn(move || {
                let every = Duration::from_micros(DRIVERS as u64 * 1_000_000 / RATE);
                let mut sent = 0u64;
                while started.elapsed() < total {
                    let due = started + every * sent as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let jti = format!("s-{driver}-{sent}");
                    let body = json!({"provider": "corp", "jti": jti, "expires_at": common::now() + EXPIRY_S}).to_string();
                    let (status, text) = admin_call(admin, "POST", "/v1/revocations", Some(TOKEN), Some(body.as_bytes()));
                    assert_eq!(status, 201, "{text}");
                    let at = Instant::now();
                    if acked_tx.send((token(&jti), jti, origin, at)).is_err() {
                        break;
                    }
                    sent += 1;
                }
            })
        })
        .collect();
    drop(acked_tx);
    while started.elapsed() < total {
        if restarted < restarts.len() && started.elapsed() >= restarts[restarted] {
            fleet.redis.restart_empty();
            restarted += 1;
            println!("soak: Redis restarted empty at {:?}", started.elapsed());
        }
        while let Ok(acked) = acked.try_recv() {
            acknowledged += 1;
            confirmations.push(tokio::spawn(confirm(clients.clone(), acked, DEADLINE)));
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(5);
            let sample = [0, 1, 2].map(|i| common::redis::rss_of(servers[i].pid()).unwrap_or(0));
            rss.push((started.elapsed(), sample));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for driver in drivers {
        driver.join().expect("revocation driver");
    }
    while let Ok(acked) = acked.try_recv() {
        acknowledged += 1;
        confirmations.push(tokio::spawn(confirm(clients.clone(), acked, DEADLINE)));
    }
    let mut lost = Vec::new();
    let mut checker_denials = [0u64; 3];
    let mut slowest = Duration::ZERO;
    for confirmation in confirmations {
        let (jti, missing, denied, took) = confirmation.await.expect("confirmation task");
        for (count, add) in checker_denials.iter_mut().zip(denied) {
            *count += add;
        }
        if missing.is_empty() {
            slowest = slowest.max(took);
        } else {
            lost.push((jti, missing));
        }
    }
    let mut denials = [0f64; 3];
    let mut allows = [0f64; 3];
    for (i, server) in servers.iter().enumerate() {
        denials[i] = server
            .metrics_text()
            .lines()
            .filter_map(common::parse_series)
            .filter(|(name, labels, _)| {
                name == "verdict_checks_total"
                    && labels.iter().any(|(k, v)| k == "result" && v == "deny")
            })
            .map(|(_, _, v)| v)
            .sum();
        allows[i] = server
            .metric_where("verdict_checks_total", &[("result", "allow")])
            .unwrap_or(0.0);
    }
    let gaps: Vec<f64> = servers
        .iter()
        .map(|s| metric(s, "verdict_fleet_gaps_total"))
        .collect();
    let stream_len = fleet.redis.xlen(STREAM);
    for (mut child, out, err) in loads {
        let _ = child.kill();
        let _ = wait_child(&mut child, Duration::from_secs(10), "verdict-load");
        let _ = (out.join(), err.join());
    }
    let half = rss.len() / 2;
    let mb = |b: u64| b as f64 / 1048576.0;
    let peak = |samples: &[(Duration, [u64; 3])], i: usize| {
        samples.iter().map(|(_, s)| s[i]).max().unwrap_or(0)
    };
    println!(
        "soak {seconds} s: {acknowledged} revocations acknowledged ({RATE}/s), {} lost, slowest confirmation {:.2} s; Redis restarted {restarted}x; gaps seen {gaps:?}; stream length at the end {stream_len}",
        lost.len(),
        slowest.as_secs_f64()
    );
    for i in 0..3 {
        println!(
            "soak instance {i}: {:.0} allowed, {:.0} denied ({} of them the checker's revoked tokens); RSS first half peak {:.1} MiB, second half peak {:.1} MiB, last {:.1} MiB",
            allows[i],
            denials[i],
            checker_denials[i],
            mb(peak(&rss[..half], i)),
            mb(peak(&rss[half..], i)),
            mb(rss.last().map_or(0, |(_, s)| s[i]))
        );
    }
    let exited: Vec<usize> = (0..3).filter(|&i| !servers[i].is_running()).collect();
    if !lost.is_empty() || !exited.is_empty() {
        for (i, server) in servers.iter().enumerate() {
            let logs = server.logs();
            let fleet_lines: Vec<&str> = logs
                .lines()
                .filter(|l| l.contains("fleet") || !l.starts_with('{'))
                .collect();
            let tail = &fleet_lines[fleet_lines.len().saturating_sub(15)..];
            println!("instance {i} fleet log (last lines):\n{}", tail.join("\n"));
        }
    }
    assert!(
        exited.is_empty(),
        "instances {exited:?} exited during the soak"
    );
    assert!(
        lost.is_empty(),
        "lost revocations: {:?}",
        &lost[..lost.len().min(10)]
    );
    for i in 0..3 {
        assert_eq!(
            denials[i], checker_denials[i] as f64,
            "instance {i} denied a token that was never revoked"
        );
        assert!(allows[i] > 0.0, "instance {i} served the load");
        // Flat: the second half's peak is within a quarter (plus 16 MiB of allocator slack)
        // of the first half's, once the live set (30 s of revocations) is steady.
        let (first, second) = (peak(&rss[..half], i), peak(&rss[half..], i));
        assert!(
            second <= first + first / 4 + (16 << 20),
            "instance {i} memory grew: {} → {} MiB",
            mb(first),
            mb(second)
        );
    }
    assert_eq!(restarted, 2);
}

/// One soak revocation `(token, jti, origin, acknowledged at)`: checks the two instances that
/// did not accept it until both deny it (or `deadline` passes). Returns its jti, the instances
/// that never denied it, the denials seen per instance, and how long confirming took.
async fn confirm(
    mut clients: Vec<AuthorizationClient<Channel>>,
    (token, jti, origin, at): (String, String, usize, Instant),
    deadline: Duration,
) -> (String, Vec<usize>, [u64; 3], Duration) {
    let mut missing: Vec<usize> = (0..3).filter(|&i| i != origin).collect();
    let mut denied = [0u64; 3];
    let mut pause = Duration::from_millis(5);
    loop {
        let mut left = Vec::new();
        for i in missing {
            // A failed call counts as not denied (the end of the soak names a dead instance).
            let answer = tokio::time::timeout(
                Duration::from_secs(5),
                clients[i].check(bearer_check(&token)),
            )
            .await;
            match answer {
                Ok(Ok(answer)) if grpc_code(answer.get_ref()) == GRPC_UNAUTHENTICATED => {
                    denied[i] += 1;
                }
                _ => left.push(i),
            }
        }
        missing = left;
        if missing.is_empty() || at.elapsed() > deadline {
            return (jti, missing, denied, at.elapsed());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}
