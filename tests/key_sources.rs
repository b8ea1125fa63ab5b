//! Live key sources against a misbehaving identity provider: the real `verdict` binary fetching
//! its JWKS from a small HTTP/1.1 server written here (on 127.0.0.1, its behaviour switched at
//! run time, every request it sees recorded), and watching a `jwks_file`.
//!
//! Covers: every kind of bad answer (HTTP errors, bodies that are not a usable JWKS, bodies over
//! the cap with and without `Content-Length`, a reset connection, a slow drip past the fetch
//! timeout, a redirect loop, a redirect to plain http off loopback, a 304 nobody asked for)
//! keeps the last good key set serving while `/readyz` names the error, and the source recovers;
//! a JWKS with one bad key loads the others; ETag / If-None-Match and the User-Agent; the
//! `Cache-Control: max-age` bounds; rotation through the JWKS URI; a provider whose first fetch
//! fails is not ready until its IdP answers; a watched `jwks_file` reloads without SIGHUP and
//! survives garbage.

mod common;

use common::{Server, TestKey, bearer_check, check, grpc_code, http_get, parse_series};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const GRPC_OK: i32 = 0;
const GRPC_UNAUTHENTICATED: i32 = 16;
const ISSUER: &str = "https://idp.key-sources.test";
const AUDIENCE: &str = "api://orders";
const PROVIDER: &str = "idp";
/// `max_response_bytes` in the bad-answer tests.
const CAP: usize = 4096;
/// Bound on every wait for a fetch: with `refresh_interval_s = 1` one comes about every second.
const FETCH_WAIT: Duration = Duration::from_secs(8);

// ---- The misbehaving identity provider ----

/// How the test IdP answers the next requests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// 200 with the current JWKS (and its ETag and Cache-Control, when set); 304 without a
    /// body to an `If-None-Match` naming the current ETag.
    Good,
    /// This status with a short text body.
    Status(u16),
    /// 200 with this body and its `Content-Length`.
    Body(Vec<u8>),
    /// 200 with this body, chunked, no `Content-Length`.
    Chunked(Vec<u8>),
    /// Reads the request, then resets the connection without answering.
    Reset,
    /// The status line and headers, then the body one byte every 300 ms.
    Drip,
    /// 302 to the same URL.
    RedirectToSelf,
    /// 302 to this URL.
    RedirectTo(String),
    /// 304 Not Modified, whatever was asked.
    NotModified,
}

impl Mode {
    fn label(&self) -> &'static str {
        match self {
            Mode::Good => "good",
            Mode::Status(_) => "status",
            Mode::Body(_) => "body",
            Mode::Chunked(_) => "chunked",
            Mode::Reset => "reset",
            Mode::Drip => "drip",
            Mode::RedirectToSelf => "redirect_self",
            Mode::RedirectTo(_) => "redirect_to",
            Mode::NotModified => "not_modified",
        }
    }
}

/// One request the test IdP received.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    path: String,
    if_none_match: Option<String>,
    user_agent: Option<String>,
    /// [`Mode::label`] of the mode that answered it.
    answered_by: &'static str,
}

#[derive(Debug)]
struct IdpState {
    mode: Mode,
    jwks: String,
    etag: Option<String>,
    cache_control: Option<String>,
    seen: Vec<Seen>,
    not_modified_sent: usize,
}

/// A JWKS server on 127.0.0.1 with its own thread and runtime, so the tests' blocking waits
/// never stall it. Stopped (its connections dropped) on drop.
struct Idp {
    addr: SocketAddr,
    state: Arc<Mutex<IdpState>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Idp {
    /// Serves `jwks` (mode [`Mode::Good`], no ETag, no Cache-Control).
    fn start(jwks: String) -> Idp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind test IdP");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(IdpState {
            mode: Mode::Good,
            jwks,
            etag: None,
            cache_control: None,
            seen: Vec::new(),
            not_modified_sent: 0,
        }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("test IdP runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        tokio::spawn(serve(stream, Arc::clone(&shared), addr));
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime cancels the connections still open (drips).
        });
        Idp {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn jwks_uri(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, IdpState> {
        self.state.lock().expect("IdP state")
    }

    fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    fn set_jwks(&self, jwks: String, etag: Option<&str>) {
        let mut state = self.lock();
        state.jwks = jwks;
        state.etag = etag.map(str::to_owned);
    }

    fn set_cache_control(&self, value: &str) {
        self.lock().cache_control = Some(value.to_owned());
    }

    fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Requests answered by the mode labelled `label`.
    fn answered_by(&self, label: &str) -> usize {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.answered_by == label)
            .count()
    }

    fn not_modified_sent(&self) -> usize {
        self.lock().not_modified_sent
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads a request head (bounded in size and time); `None` if the client gave up.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            if head.len() > 16 * 1024 {
                return None;
            }
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()??;
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        304 => "Not Modified",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Whatever",
    }
}

/// Writes a whole answer with `Content-Length` (none for 304) and closes.
async fn respond(stream: &mut TcpStream, status: u16, extra: &str, body: &[u8]) {
    let length = if status == 304 {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\n{length}{extra}Connection: close\r\n\r\n",
        reason(status)
    );
    if stream.write_all(head.as_bytes()).await.is_ok() && !body.is_empty() {
        let _ = stream.write_all(body).await;
    }
    let _ = stream.shutdown().await;
}

/// Answers one connection as the current mode says.
async fn serve(mut stream: TcpStream, state: Arc<Mutex<IdpState>>, addr: SocketAddr) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("")
        .to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let if_none_match = header("if-none-match");
    let (mode, jwks, etag, cache_control) = {
        let mut state = state.lock().expect("IdP state");
        let mode = state.mode.clone();
        state.seen.push(Seen {
            at: Instant::now(),
            path: path.clone(),
            if_none_match: if_none_match.clone(),
            user_agent: header("user-agent"),
            answered_by: mode.label(),
        });
        (
            mode,
            state.jwks.clone(),
            state.etag.clone(),
            state.cache_control.clone(),
        )
    };
    match mode {
        Mode::Good => {
            let mut extra = String::new();
            if let Some(value) = &cache_control {
                extra.push_str(&format!("Cache-Control: {value}\r\n"));
            }
            if let Some(tag) = &etag {
                extra.push_str(&format!("ETag: {tag}\r\n"));
            }
            if etag.is_some() && if_none_match == etag {
                respond(&mut stream, 304, &extra, b"").await;
                state.lock().expect("IdP state").not_modified_sent += 1;
            } else {
                respond(&mut stream, 200, &extra, jwks.as_bytes()).await;
            }
        }
        Mode::Status(status) => {
            respond(&mut stream, status, "", b"{\"error\":\"nope\"}").await;
        }
        Mode::Body(body) => respond(&mut stream, 200, "", &body).await,
        Mode::Chunked(body) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for chunk in body.chunks(4096) {
                let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                frame.extend_from_slice(chunk);
                frame.extend_from_slice(b"\r\n");
                if stream.write_all(&frame).await.is_err() {
                    return;
                }
            }
            let _ = stream.write_all(b"0\r\n\r\n").await;
            let _ = stream.shutdown().await;
        }
        Mode::Reset => {
            // SO_LINGER 0: the close sends a RST, not a FIN.
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Mode::Drip => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                jwks.len()
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            // Bounded: 40 bytes (12 s) at most, far less than the body, far more than the
            // client's timeout.
            for byte in jwks.bytes().take(40) {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if stream.write_all(&[byte]).await.is_err() {
                    return;
                }
            }
        }
        Mode::RedirectToSelf => {
            let location = format!("Location: http://{addr}{path}\r\n");
            respond(&mut stream, 302, &location, b"").await;
        }
        Mode::RedirectTo(url) => {
            respond(&mut stream, 302, &format!("Location: {url}\r\n"), b"").await;
        }
        Mode::NotModified => respond(&mut stream, 304, "", b"").await,
    }
}

// ---- verdict side ----

/// A provider reading `jwks_uri` from the test IdP, refreshed every second, with `extra` keys.
fn uri_config(idp: &Idp, extra: &str) -> String {
    format!(
        r#"
[[providers]]
name = "{PROVIDER}"
issuer = "{ISSUER}"
jwks_uri = "{uri}"
audiences = ["{AUDIENCE}"]
algorithms = ["EdDSA"]
refresh_interval_s = 1
{extra}
"#,
        uri = idp.jwks_uri(),
    )
}

/// A token of `key` that no earlier check has seen (its own `sub`), so its answer can only
/// come from the key set serving now.
fn fresh(key: &TestKey) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    key.mint(&common::claims(ISSUER, AUDIENCE, &format!("user-{n}")))
}

/// The gRPC code of one ext_authz check of `token`.
async fn code_of(server: &Server, token: &str) -> i32 {
    let mut client = server.authz().await;
    grpc_code(&check(&mut client, bearer_check(token)).await)
}

/// The sum of every `name` series whose labels include `labels` (0 when there is none).
fn metric_total(server: &Server, name: &str, labels: &[(&str, &str)]) -> f64 {
    server
        .metrics_text()
        .lines()
        .filter_map(parse_series)
        .filter(|(series, have, _)| {
            series == name
                && labels
                    .iter()
                    .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
        })
        .map(|(_, _, value)| value)
        .sum()
}

/// `verdict_keyset_fetches_total` of the provider with this result, all causes.
fn fetches(server: &Server, result: &str) -> f64 {
    metric_total(
        server,
        "verdict_keyset_fetches_total",
        &[("provider", PROVIDER), ("result", result)],
    )
}

fn last_success(server: &Server) -> Option<f64> {
    server.metric_where(
        "verdict_keyset_last_fetch_success",
        &[("provider", PROVIDER)],
    )
}

/// Polls `done` every 25 ms until it holds or `timeout` passes; whether it held.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `/readyz`: its status, the provider's entry, the whole body.
fn readyz(server: &Server) -> (u16, serde_json::Value, String) {
    let (status, body) = http_get(server.admin, "/readyz");
    let json: serde_json::Value = serde_json::from_str(&body).expect("readyz JSON");
    let entry = json["providers"]
        .as_array()
        .expect("providers array")
        .iter()
        .find(|p| p["name"] == PROVIDER)
        .unwrap_or_else(|| panic!("/readyz does not list {PROVIDER}: {body}"))
        .clone();
    (status, entry, body)
}

/// An Ed25519 JWK (one key) as JSON text.
fn jwk(key: &TestKey) -> serde_json::Value {
    serde_json::from_str(&key.public_jwk()).expect("jwk")
}

/// A JWKS of these JWKs.
fn jwks_of(keys: &[serde_json::Value]) -> String {
    serde_json::json!({ "keys": keys }).to_string()
}

// ---- 1. Bad answers keep the last good key set serving ----

struct BadAnswer {
    name: &'static str,
    mode: Mode,
    /// What `/readyz`'s error for the provider must say.
    error: &'static [&'static str],
}

/// A 64 KiB document that would be a good JWKS (the serving key, padded) but for its size.
fn oversized(key: &TestKey) -> Vec<u8> {
    let padding = "x".repeat(64 * 1024);
    let body = serde_json::json!({ "keys": [jwk(key)], "padding": padding }).to_string();
    assert!(body.len() > 64 * 1024);
    body.into_bytes()
}

/// Loads a good JWKS, then for each case: switches the IdP to it, waits for a failed fetch,
/// checks the good set still serves and `/readyz` names the error, switches back and waits
/// for the source to recover.
async fn bad_answers_keep_the_last_good_set(key: &TestKey, idp: &Idp, cases: &[BadAnswer]) {
    let server = Server::start(
        &uri_config(
            idp,
            &format!("fetch_timeout_ms = 800\nmax_response_bytes = {CAP}"),
        ),
        &[],
    );
    assert!(
        wait_until(FETCH_WAIT, || fetches(&server, "updated") >= 1.0),
        "no first fetch\n{}",
        server.logs()
    );
    assert_eq!(code_of(&server, &fresh(key)).await, GRPC_OK);

    for case in cases {
        let name = case.name;
        let label = case.mode.label();
        let errors = fetches(&server, "error");
        let answered_before = idp.answered_by(label);
        let seen_before = idp.seen().len();
        idp.set_mode(case.mode.clone());
        assert!(
            wait_until(FETCH_WAIT, || fetches(&server, "error") > errors),
            "{name}: no failed fetch within {FETCH_WAIT:?}\n{}",
            server.logs()
        );
        // The redirect loop: the next failing fetch, start to end, costs the IdP exactly one
        // request and three followed redirects (the fetch that just failed may have begun
        // before the switch; the next one starts a second after it).
        if case.mode == Mode::RedirectToSelf {
            let before = idp.answered_by(label);
            let failed = fetches(&server, "error");
            assert!(
                wait_until(FETCH_WAIT, || fetches(&server, "error") > failed),
                "{name}: no second failed fetch"
            );
            assert_eq!(
                idp.answered_by(label) - before,
                4,
                "{name}: one request and three redirects per fetch"
            );
        }
        assert!(
            idp.answered_by(label) > answered_before,
            "{name}: the failed fetch never reached the IdP in this mode"
        );
        let (status, entry, body) = readyz(&server);
        assert_eq!(status, 200, "{name}: the last good set serves: {body}");
        assert_eq!(entry["ready"], true, "{name}: {body}");
        assert_eq!(entry["keys"], 1, "{name}: {body}");
        let error = entry["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: /readyz names no error: {body}"));
        assert!(
            error.contains(&idp.jwks_uri()),
            "{name}: the error names the URL: {error}"
        );
        for want in case.error {
            assert!(
                error.contains(want),
                "{name}: {error:?} should say {want:?}"
            );
        }
        assert_eq!(last_success(&server), Some(0.0), "{name}");
        assert_eq!(
            code_of(&server, &fresh(key)).await,
            GRPC_OK,
            "{name}: a token of the last good set is denied\n{}",
            server.logs()
        );
        assert_eq!(
            fetches(&server, "updated"),
            1.0,
            "{name}: a bad answer replaced the key set"
        );
        if case.mode == Mode::NotModified {
            let unconditional = idp.seen()[seen_before..]
                .iter()
                .filter(|s| s.answered_by == label)
                .all(|s| s.if_none_match.is_none());
            assert!(unconditional, "{name}: verdict sent If-None-Match");
        }

        idp.set_mode(Mode::Good);
        assert!(
            wait_until(FETCH_WAIT, || last_success(&server) == Some(1.0)),
            "{name}: the source did not recover\n{}",
            server.logs()
        );
        let (status, entry, body) = readyz(&server);
        assert_eq!(status, 200, "{name}: {body}");
        assert!(
            entry.get("error").is_none(),
            "{name}: the error outlived the recovery: {body}"
        );
        assert_eq!(entry["keys"], 1, "{name}: {body}");
        assert_eq!(code_of(&server, &fresh(key)).await, GRPC_OK, "{name}");
        // The same document again is "unchanged", not a new key set.
        assert_eq!(fetches(&server, "updated"), 1.0, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_http_answers_keep_the_last_good_set_serving() {
    let key = TestKey::ed25519("good-1");
    let idp = Idp::start(key.jwks());
    let big = oversized(&key);
    let cases = [
        BadAnswer {
            name: "HTTP 500",
            mode: Mode::Status(500),
            error: &["HTTP status 500"],
        },
        BadAnswer {
            name: "HTTP 404",
            mode: Mode::Status(404),
            error: &["HTTP status 404"],
        },
        BadAnswer {
            name: "not JSON",
            mode: Mode::Body(b"<html>maintenance</html>".to_vec()),
            error: &["not a JWKS"],
        },
        BadAnswer {
            name: "JSON, not a JWKS",
            mode: Mode::Body(br#"{"foo":1}"#.to_vec()),
            error: &["not a JWKS", "\"keys\""],
        },
        BadAnswer {
            name: "no usable key",
            mode: Mode::Body(br#"{"keys":[]}"#.to_vec()),
            error: &["no key usable"],
        },
        BadAnswer {
            name: "over the cap, with Content-Length",
            mode: Mode::Body(big.clone()),
            error: &["larger than 4096 bytes"],
        },
        BadAnswer {
            name: "over the cap, chunked",
            mode: Mode::Chunked(big),
            error: &["larger than 4096 bytes"],
        },
        BadAnswer {
            name: "304 to an unconditional request",
            mode: Mode::NotModified,
            error: &["304 Not Modified to an unconditional request"],
        },
    ];
    bad_answers_keep_the_last_good_set(&key, &idp, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_transports_and_redirects_keep_the_last_good_set_serving() {
    let key = TestKey::ed25519("good-1");
    let idp = Idp::start(key.jwks());
    let cases = [
        BadAnswer {
            name: "connection reset",
            mode: Mode::Reset,
            error: &["connection failed"],
        },
        BadAnswer {
            name: "slow drip past fetch_timeout_ms",
            mode: Mode::Drip,
            error: &["timed out"],
        },
        BadAnswer {
            name: "redirect loop",
            mode: Mode::RedirectToSelf,
            error: &["redirect refused", "more than 3 redirects"],
        },
        BadAnswer {
            name: "redirect to plain http off loopback",
            mode: Mode::RedirectTo("http://example.com/".into()),
            error: &["redirect refused", "plain http://"],
        },
    ];
    bad_answers_keep_the_last_good_set(&key, &idp, &cases).await;
}

// ---- 2. One bad key among good ones ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_key_is_skipped_and_counted_the_others_load() {
    let first = TestKey::ed25519("good-a");
    let second = TestKey::ed25519("good-c");
    // An Ed25519 key whose public key is 3 bytes long.
    let broken = serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "kid": "broken", "alg": "EdDSA", "use": "sig", "x": "AAAA"
    });
    let idp = Idp::start(jwks_of(&[jwk(&first), broken, jwk(&second)]));
    let server = Server::start(&uri_config(&idp, ""), &[]);
    assert!(
        wait_until(FETCH_WAIT, || fetches(&server, "updated") >= 1.0),
        "no first fetch\n{}",
        server.logs()
    );
    assert_eq!(code_of(&server, &fresh(&first)).await, GRPC_OK);
    assert_eq!(code_of(&server, &fresh(&second)).await, GRPC_OK);
    assert_eq!(
        server.metric_where("verdict_keyset_skipped_keys", &[("provider", PROVIDER)]),
        Some(1.0),
        "{}",
        server.metrics_text()
    );
    assert_eq!(
        server.wait_metric(
            "verdict_keyset_keys",
            &[("provider", PROVIDER)],
            |n| n == 2.0,
            Duration::from_secs(3)
        ),
        Some(2.0)
    );
    let (status, entry, body) = readyz(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(entry["keys"], 2, "{body}");
    assert!(entry.get("error").is_none(), "{body}");
    assert!(
        server.wait_for_log("\"broken\"", Duration::from_secs(2)),
        "the skipped key's kid is logged\n{}",
        server.logs()
    );
    // A token naming the skipped key is denied.
    let forged = TestKey::ed25519("broken");
    assert_eq!(
        code_of(&server, &fresh(&forged)).await,
        GRPC_UNAUTHENTICATED
    );
}

// ---- 3. ETag, If-None-Match, User-Agent ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_make_refetches_conditional_and_a_304_keeps_the_keys() {
    let key = TestKey::ed25519("etag-1");
    let idp = Idp::start(key.jwks());
    idp.set_jwks(key.jwks(), Some("\"v1\""));
    let server = Server::start(&uri_config(&idp, ""), &[]);
    assert!(
        wait_until(FETCH_WAIT, || fetches(&server, "unchanged") >= 2.0),
        "no two unchanged fetches\n{}",
        server.logs()
    );
    let sent = idp.not_modified_sent();
    let seen = idp.seen();
    assert!(seen.len() >= 3, "{seen:?}");
    assert_eq!(
        seen[0].if_none_match, None,
        "the first fetch is unconditional"
    );
    for s in &seen[1..] {
        assert_eq!(s.if_none_match.as_deref(), Some("\"v1\""), "{s:?}");
    }
    for s in &seen {
        assert_eq!(s.path, "/jwks");
        let agent = s.user_agent.as_deref().unwrap_or("");
        assert!(agent.starts_with("verdict/"), "User-Agent {agent:?}");
    }
    assert!(sent >= 2, "the IdP answered {sent} times 304");
    assert_eq!(fetches(&server, "updated"), 1.0);
    assert_eq!(fetches(&server, "error"), 0.0);
    assert!(fetches(&server, "unchanged") <= idp.not_modified_sent() as f64);
    assert_eq!(code_of(&server, &fresh(&key)).await, GRPC_OK);
    let (status, entry, body) = readyz(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(entry["keys"], 1, "{body}");

    // A new document with a new ETag: fetched whole (the old ETag no longer matches), loaded,
    // and the next request is conditional on the new ETag.
    let next = TestKey::ed25519("etag-2");
    idp.set_jwks(next.jwks(), Some("\"v2\""));
    let mark = idp.seen().len();
    assert!(
        wait_until(FETCH_WAIT, || fetches(&server, "updated") >= 2.0),
        "the new document was not loaded\n{}",
        server.logs()
    );
    assert_eq!(code_of(&server, &fresh(&next)).await, GRPC_OK);
    assert_eq!(
        code_of(&server, &fresh(&key)).await,
        GRPC_UNAUTHENTICATED,
        "the old key left with the old document"
    );
    assert!(
        wait_until(FETCH_WAIT, || idp.seen()[mark..]
            .iter()
            .any(|s| s.if_none_match.as_deref() == Some("\"v2\""))),
        "no request conditional on the new ETag: {:?}",
        &idp.seen()[mark..]
    );
}

// ---- 4. Cache-Control max-age within [min_refresh_s, max_refresh_s] ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_is_honoured_within_its_bounds() {
    let key = TestKey::ed25519("cc-1");
    let idp = Idp::start(key.jwks());
    idp.set_cache_control("public, max-age=100");
    let server = Server::start(
        &uri_config(&idp, "min_refresh_s = 1\nmax_refresh_s = 3"),
        &[],
    );
    assert!(
        wait_until(FETCH_WAIT, || !idp.seen().is_empty()),
        "no first fetch\n{}",
        server.logs()
    );
    let first = idp.seen()[0].at;
    std::thread::sleep((first + Duration::from_secs(7)).saturating_duration_since(Instant::now()));
    let times: Vec<Instant> = idp
        .seen()
        .iter()
        .map(|s| s.at)
        .filter(|at| at.duration_since(first) <= Duration::from_secs(7))
        .collect();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // max-age=100 clamped to max_refresh_s = 3, less at most a tenth of jitter: fetches come
    // every 2.7-3 s, neither every refresh_interval_s (1 s) nor every 100 s.
    assert!(
        (2..=3).contains(&times.len()),
        "{} fetches in 7 s (gaps {gaps:?})",
        times.len()
    );
    for gap in &gaps {
        assert!(
            *gap >= Duration::from_millis(2600) && *gap <= Duration::from_millis(3500),
            "gap {gap:?} (all: {gaps:?})"
        );
    }
    assert_eq!(fetches(&server, "error"), 0.0);
    assert_eq!(code_of(&server, &fresh(&key)).await, GRPC_OK);
}

// ---- 5. Rotation through the JWKS URI ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_jwks_brings_the_new_key_and_drops_the_old_one() {
    let old = TestKey::ed25519("rot-old");
    let new = TestKey::ed25519("rot-new");
    let idp = Idp::start(old.jwks());
    let server = Server::start(&uri_config(&idp, ""), &[]);
    assert!(
        wait_until(FETCH_WAIT, || fetches(&server, "updated") >= 1.0),
        "no first fetch\n{}",
        server.logs()
    );
    let old_token = fresh(&old);
    let new_token = fresh(&new);
    assert_eq!(code_of(&server, &old_token).await, GRPC_OK);

    idp.set_jwks(new.jwks(), None);
    // No check names the new kid before this, so the scheduled refresh brings it.
    assert!(
        wait_until(FETCH_WAIT, || metric_total(
            &server,
            "verdict_keyset_fetches_total",
            &[
                ("provider", PROVIDER),
                ("cause", "scheduled"),
                ("result", "updated")
            ]
        ) >= 2.0),
        "the rotated JWKS was not loaded\n{}",
        server.logs()
    );
    assert_eq!(code_of(&server, &new_token).await, GRPC_OK);
    // The old key is gone from the set: the very token that verified before is denied at once.
    assert_eq!(code_of(&server, &old_token).await, GRPC_UNAUTHENTICATED);
    assert_eq!(code_of(&server, &fresh(&old)).await, GRPC_UNAUTHENTICATED);
    let (status, entry, body) = readyz(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(entry["keys"], 1, "{body}");
    assert_eq!(fetches(&server, "error"), 0.0);
}

// ---- 6. A first fetch that fails ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_whose_idp_never_answered_well_is_not_ready_until_it_does() {
    let key = TestKey::ed25519("late-1");
    let idp = Idp::start(key.jwks());
    idp.set_mode(Mode::Status(500));
    let server = Server::start(&uri_config(&idp, ""), &[]);
    assert!(
        wait_until(FETCH_WAIT, || fetches(&server, "error") >= 1.0),
        "no failed fetch\n{}",
        server.logs()
    );
    let (status, entry, body) = readyz(&server);
    assert_eq!(status, 503, "{body}");
    assert_eq!(entry["ready"], false, "{body}");
    assert_eq!(entry["keys"], 0, "{body}");
    assert!(entry.get("age_s").is_none(), "never loaded: {body}");
    let error = entry["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("HTTP status 500") && error.contains(&idp.jwks_uri()),
        "{body}"
    );
    assert_eq!(last_success(&server), Some(0.0));
    assert_eq!(code_of(&server, &fresh(&key)).await, GRPC_UNAUTHENTICATED);
    assert!(
        server
            .wait_metric(
                "verdict_checks_total",
                &[("provider", PROVIDER), ("reason", "no_keys")],
                |n| n >= 1.0,
                Duration::from_secs(2)
            )
            .is_some_and(|n| n >= 1.0),
        "{}",
        server.metrics_text()
    );

    idp.set_mode(Mode::Good);
    assert!(
        wait_until(FETCH_WAIT, || http_get(server.admin, "/readyz").0 == 200),
        "never became ready\n{}",
        server.logs()
    );
    let (_, entry, body) = readyz(&server);
    assert_eq!(entry["keys"], 1, "{body}");
    assert!(entry.get("error").is_none(), "{body}");
    assert_eq!(code_of(&server, &fresh(&key)).await, GRPC_OK);
    assert_eq!(last_success(&server), Some(1.0));
}

// ---- 7. A watched jwks_file ----

/// Replaces `path` at once (write aside, rename), so the watcher never reads half a file.
fn replace(path: &std::path::Path, contents: &[u8]) {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, contents).expect("write aside");
    std::fs::rename(&aside, path).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_jwks_file_reloads_without_sighup_and_survives_garbage() {
    let first = TestKey::ed25519("file-1");
    let second = TestKey::ed25519("file-2");
    let third = TestKey::ed25519("file-3");
    let config = format!(
        r#"
[[providers]]
name = "{PROVIDER}"
issuer = "{ISSUER}"
jwks_file = "jwks.json"
audiences = ["{AUDIENCE}"]
algorithms = ["EdDSA"]
"#
    );
    let server = Server::start(&config, &[("jwks.json", first.jwks().as_bytes())]);
    let path = server.scratch.0.join("jwks.json");
    assert_eq!(code_of(&server, &fresh(&first)).await, GRPC_OK);
    let first_token = fresh(&first);
    assert_eq!(code_of(&server, &first_token).await, GRPC_OK);

    // A new key set in the file: served within ~3 s, no signal sent.
    replace(&path, second.jwks().as_bytes());
    let replaced = Instant::now();
    let mut served = false;
    for _ in 0..40 {
        if code_of(&server, &fresh(&second)).await == GRPC_OK {
            served = true;
            break;
        }
        if replaced.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served,
        "the new key was not served {:?} after the file changed\n{}",
        replaced.elapsed(),
        server.logs()
    );
    assert!(replaced.elapsed() <= Duration::from_secs(3));
    assert!(
        server
            .logs()
            .contains("jwks_file changed; key set reloaded")
    );
    assert_eq!(code_of(&server, &first_token).await, GRPC_UNAUTHENTICATED);

    // Garbage in the file: the last good set keeps serving and /readyz names the error.
    let errors = fetches(&server, "error");
    std::fs::write(&path, b"{ this is not a JWKS").expect("write garbage");
    assert!(
        wait_until(Duration::from_secs(3), || fetches(&server, "error")
            > errors),
        "the garbage was not noticed\n{}",
        server.logs()
    );
    assert_eq!(code_of(&server, &fresh(&second)).await, GRPC_OK);
    let (status, entry, body) = readyz(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(entry["keys"], 1, "{body}");
    let error = entry["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("jwks_file") && error.contains("not a JWKS"),
        "{body}"
    );

    // A good file again: it is loaded and the error clears.
    replace(&path, third.jwks().as_bytes());
    assert!(
        wait_until(Duration::from_secs(3), || readyz(&server)
            .1
            .get("error")
            .is_none()),
        "the error outlived the repair\n{}",
        server.logs()
    );
    assert_eq!(code_of(&server, &fresh(&third)).await, GRPC_OK);
    assert_eq!(
        code_of(&server, &fresh(&second)).await,
        GRPC_UNAUTHENTICATED
    );
    assert!(!server.logs().contains("SIGHUP"));
}

// ---- Fail closed past max_stale_s, then recover from an IdP that answers 304 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_failed_closed_recovers_from_an_idp_answering_304() {
    let key = TestKey::ed25519("stale-1");
    let idp = Idp::start(key.jwks());
    idp.set_jwks(key.jwks(), Some("\"s1\""));
    let server = Server::start(&uri_config(&idp, "max_stale_s = 2"), &[]);
    assert!(
        wait_until(FETCH_WAIT, || fetches(&server, "unchanged") >= 1.0),
        "no conditional refetch\n{}",
        server.logs()
    );
    assert_eq!(code_of(&server, &fresh(&key)).await, GRPC_OK);

    // The IdP fails past max_stale_s: the provider fails closed.
    idp.set_mode(Mode::Status(500));
    assert!(
        wait_until(FETCH_WAIT, || http_get(server.admin, "/readyz").0 == 503),
        "never failed closed\n{}",
        server.logs()
    );
    let (_, entry, body) = readyz(&server);
    assert_eq!(entry["keys"], 0, "{body}");
    assert!(
        entry["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_stale_s")),
        "{body}"
    );
    assert_eq!(code_of(&server, &fresh(&key)).await, GRPC_UNAUTHENTICATED);

    // The IdP is back with the same document and honours If-None-Match. A verdict holding no
    // keys must not take a 304 for "keep what you have": it asks unconditionally and loads
    // the set again.
    let mark = idp.seen().len();
    idp.set_mode(Mode::Good);
    assert!(
        wait_until(FETCH_WAIT, || http_get(server.admin, "/readyz").0 == 200),
        "never recovered; requests since the IdP came back: {:?}\n{}",
        &idp.seen()[mark..],
        server.logs()
    );
    let since = idp.seen()[mark..].to_vec();
    assert!(
        since.iter().any(|s| s.if_none_match.is_none()),
        "the recovering fetch was conditional: {since:?}"
    );
    let (_, entry, body) = readyz(&server);
    assert_eq!(entry["keys"], 1, "{body}");
    assert!(entry.get("error").is_none(), "{body}");
    assert_eq!(code_of(&server, &fresh(&key)).await, GRPC_OK);
}
