//! Shared support for integration tests: start the real `verdict` binary with a config on
//! ephemeral loopback ports, talk to its admin listener, mint tokens with test keys.
#![allow(dead_code)]

pub mod load;
pub mod redis;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, RsaKeyPair};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch directory under the system temp dir (removed on drop).
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// Creates it.
    pub fn new(tag: &str) -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "verdict-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    /// Writes a file in it and returns its path.
    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `verdict serve`.
pub struct Server {
    child: Child,
    /// The gRPC listener (ext_authz, verdict.v1, health, reflection).
    pub grpc: SocketAddr,
    /// The admin HTTP listener.
    pub admin: SocketAddr,
    /// The forward-auth HTTP listener, when `server.forward_auth_listen` is set.
    pub forward_auth: Option<SocketAddr>,
    logs: Arc<Mutex<String>>,
    /// The scratch dir holding the config (kept alive with the server).
    pub scratch: Scratch,
    /// The config file path (rewrite it and send SIGHUP to reload).
    pub config: PathBuf,
}

impl Server {
    /// Starts verdict with `config_toml` (listen addresses are forced to ephemeral loopback
    /// ports unless the config sets `[server]` itself) and waits until it serves.
    /// `files` are written next to the config first.
    pub fn start(config_toml: &str, files: &[(&str, &[u8])]) -> Server {
        Self::start_with_args(config_toml, files, &[])
    }

    /// [`Server::start`] with extra `serve` arguments.
    pub fn start_with_args(config_toml: &str, files: &[(&str, &[u8])], args: &[&str]) -> Server {
        Self::start_with_env(config_toml, files, args, &[])
    }

    /// `http://HOST:PORT` of the gRPC listener.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs lock").clone()
    }

    /// Sends a signal (e.g. "HUP", "TERM").
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits until the logs contain `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// GET on the admin listener: (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path)
    }

    /// The value of a metric series (exact `name{labels}` text as exported), if present.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.admin_get("/metrics");
        body.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect admin");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    verdict::jose::b64::encode(bytes)
}

/// A signing key for tests, with its public JWK.
pub enum TestKey {
    /// RS256 with the repository's example key (kid `example-2026`).
    Rsa(RsaKeyPair, String),
    /// EdDSA.
    Ed25519(Ed25519KeyPair, String),
}

impl TestKey {
    /// The example RSA key whose public JWKS is tests/data/example/jwks.json.
    pub fn example_rsa() -> TestKey {
        let der = std::fs::read(repo().join("tests/data/keys/example-rs256.pk8")).expect("key");
        TestKey::Rsa(
            RsaKeyPair::from_pkcs8(&der).expect("pkcs8"),
            "example-2026".into(),
        )
    }

    /// A fresh Ed25519 key with the given kid.
    pub fn ed25519(kid: &str) -> TestKey {
        TestKey::Ed25519(Ed25519KeyPair::generate().expect("ed25519"), kid.into())
    }

    /// The public JWKS holding this key.
    pub fn jwks(&self) -> String {
        match self {
            TestKey::Rsa(..) => {
                std::fs::read_to_string(repo().join("tests/data/example/jwks.json"))
                    .expect("example jwks")
            }
            TestKey::Ed25519(key, kid) => format!(
                r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"{kid}","alg":"EdDSA","use":"sig","x":"{}"}}]}}"#,
                b64(key.public_key().as_ref())
            ),
        }
    }

    /// Signs `claims` into a compact JWT.
    pub fn mint(&self, claims: &serde_json::Value) -> String {
        let (alg, kid) = match self {
            TestKey::Rsa(_, kid) => ("RS256", kid),
            TestKey::Ed25519(_, kid) => ("EdDSA", kid),
        };
        let header = serde_json::json!({"alg": alg, "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match self {
            TestKey::Rsa(key, _) => {
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input.as_bytes(),
                    &mut sig,
                )
                .expect("rsa sign");
                sig
            }
            TestKey::Ed25519(key, _) => key.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }
}

/// Standard claims for `issuer`/`audience`, valid for an hour.
pub fn claims(issuer: &str, audience: &str, sub: &str) -> serde_json::Value {
    let now = now();
    serde_json::json!({
        "iss": issuer, "aud": audience, "sub": sub,
        "scope": "orders:read orders:write",
        "iat": now, "exp": now + 3600,
    })
}

/// The example provider config (RS256 example key) with claim headers.
pub const EXAMPLE_PROVIDER: &str = r#"
[[providers]]
name = "corp"
issuer = "https://idp.example.com"
audiences = ["api://orders"]
jwks_file = "jwks.json"
algorithms = ["RS256", "ES256", "EdDSA"]
leeway_s = 30
claims_to_headers = { sub = "x-verdict-sub", scope = "x-verdict-scope" }
"#;

/// The example JWKS file contents.
pub fn example_jwks() -> Vec<u8> {
    std::fs::read(repo().join("tests/data/example/jwks.json")).expect("example jwks")
}

/// Path helper.
pub fn path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

// ---- Added for the ext_authz, robustness, balance, lifecycle and verdict_v1 suites ----

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, attribute_context,
};
use tonic::codegen::Bytes;
use tonic::transport::{Channel, Endpoint};

/// How long any single client call in these tests may take before the test fails.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl Server {
    /// [`Server::start_with_args`] with extra environment variables for the child (e.g.
    /// `RUST_LOG=debug`); the variables given override the defaults.
    pub fn start_with_env(
        config_toml: &str,
        files: &[(&str, &[u8])],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let scratch = Scratch::new("server");
        for (name, contents) in files {
            scratch.write(name, contents);
        }
        let config_text = if config_toml.contains("[server]") {
            config_toml.to_owned()
        } else {
            format!(
                "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n{config_toml}"
            )
        };
        let config = scratch.write("verdict.toml", config_text.as_bytes());
        let mut command = Command::new(env!("CARGO_BIN_EXE_verdict"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--log-format")
            .arg("json")
            .args(args)
            .env("RUST_LOG", "info");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn verdict serve");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("\"verdict serving\"") {
                    let _ = tx.send(line.clone());
                }
                let mut logs = sink.lock().expect("logs lock");
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "verdict did not start; logs:\n{}",
                    logs.lock().expect("logs lock")
                );
            }
        };
        let event: serde_json::Value = serde_json::from_str(&line).expect("json log line");
        let addr = |key: &str| -> SocketAddr {
            event[key]
                .as_str()
                .expect("address field")
                .parse()
                .expect("socket address")
        };
        Server {
            grpc: addr("grpc"),
            admin: addr("admin"),
            forward_auth: event["forward_auth"]
                .as_str()
                .map(|a| a.parse().expect("socket address")),
            child,
            logs,
            scratch,
            config,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The whole `/metrics` exposition.
    pub fn metrics_text(&self) -> String {
        let (status, body) = self.admin_get("/metrics");
        assert_eq!(status, 200, "/metrics answered {status}: {body}");
        body
    }

    /// The value of the first `name` series whose labels include every `(key, value)` in
    /// `labels` (label order and extra labels do not matter).
    pub fn metric_where(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        find_series(&self.metrics_text(), name, labels)
    }

    /// The sum of every `name` series, whatever their labels (0 when there is none).
    pub fn metric_sum(&self, name: &str) -> f64 {
        self.metrics_text()
            .lines()
            .filter_map(parse_series)
            .filter(|(series, _, _)| series == name)
            .map(|(_, _, value)| value)
            .sum()
    }

    /// Polls [`Server::metric_where`] until `accept` holds (bounded by `timeout`); returns the
    /// last value seen either way.
    pub fn wait_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        accept: impl Fn(f64) -> bool,
        timeout: Duration,
    ) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.metric_where(name, labels);
            if value.is_some_and(&accept) || Instant::now() >= deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Polls `/readyz` until it answers `want` (bounded by `timeout`, else the test fails with
    /// the last body and the logs); returns that answer's body.
    pub fn wait_readyz(&self, want: u16, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = http_get(self.admin, "/readyz");
            if status == want {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz stayed {status} (wanted {want}): {body}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An ext_authz client on a connection of its own.
    pub async fn authz(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::new(connect(self.grpc).await)
    }
}

/// One exposition line: the metric name, its labels in order, its value.
pub type Series = (String, Vec<(String, String)>, f64);

/// Parses one exposition line `name{k="v",...} value` into its parts (no escapes in values
/// beyond what verdict emits).
pub fn parse_series(line: &str) -> Option<Series> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let inner = rest.strip_suffix('}')?;
            let mut labels = Vec::new();
            for pair in inner.split("\",").filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once("=\"")?;
                labels.push((key.to_owned(), value.trim_end_matches('"').to_owned()));
            }
            (name.to_owned(), labels)
        }
        None => (series.to_owned(), Vec::new()),
    };
    Some((name, labels, value))
}

/// The first `name` series in `exposition` whose labels include all of `labels`.
pub fn find_series(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (series, have, value) = parse_series(line)?;
        let matches = series == name
            && labels
                .iter()
                .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v));
        matches.then_some(value)
    })
}

/// A fresh gRPC channel to `addr`: its own TCP connection (tonic opens one per `Channel`).
pub async fn connect(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(CALL_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .expect("connect to verdict")
}

/// A CheckRequest as Envoy builds it: `GET path` with `headers` (lower-case names).
pub fn envoy_check(path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    method: "GET".into(),
                    path: path.into(),
                    host: "orders.example.com".into(),
                    scheme: "https".into(),
                    protocol: "HTTP/1.1".into(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// A CheckRequest carrying `authorization: Bearer TOKEN`.
pub fn bearer_check(token: &str) -> CheckRequest {
    envoy_check("/orders", &[("authorization", &format!("Bearer {token}"))])
}

/// One ext_authz Check, bounded in time; panics on a transport error.
pub async fn check(
    client: &mut AuthorizationClient<Channel>,
    request: CheckRequest,
) -> CheckResponse {
    tokio::time::timeout(CALL_TIMEOUT, client.check(request))
        .await
        .expect("check timed out")
        .expect("check transport")
        .into_inner()
}

/// `CheckResponse.status.code`.
pub fn grpc_code(response: &CheckResponse) -> i32 {
    response.status.as_ref().map_or(-1, |s| s.code)
}

impl TestKey {
    /// The key's `kid`.
    pub fn kid(&self) -> &str {
        match self {
            TestKey::Rsa(_, kid) | TestKey::Ed25519(_, kid) => kid,
        }
    }

    /// The JWS signature over `input` (RS256 or EdDSA).
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            TestKey::Rsa(key, _) => {
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input,
                    &mut sig,
                )
                .expect("rsa sign");
                sig
            }
            TestKey::Ed25519(key, _) => key.sign(input).as_ref().to_vec(),
        }
    }

    /// Signs `claims` under an arbitrary JOSE `header` (which may lie about `alg` or `kid`).
    pub fn mint_with_header(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature))
    }

    /// The public JWK (one key, not a set) as JSON text.
    pub fn public_jwk(&self) -> String {
        let jwks: serde_json::Value = serde_json::from_str(&self.jwks()).expect("jwks json");
        jwks["keys"][0].to_string()
    }
}

/// An HS256 JWS over `payload` with `secret`.
pub fn hs256(secret: &[u8], header: &serde_json::Value, payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// An unsecured JWS (`alg: none`, empty signature) carrying `claims`.
pub fn alg_none(claims: &serde_json::Value) -> String {
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

/// Flips one character in the middle of the signature part.
pub fn tamper_signature(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').expect("compact jws");
    let mut sig = sig.as_bytes().to_vec();
    let middle = sig.len() / 2;
    if let Some(c) = sig.get_mut(middle) {
        *c = if *c == b'A' { b'B' } else { b'A' };
    }
    format!("{input}.{}", String::from_utf8(sig).expect("ascii"))
}

/// A raw HTTP/2 client connection (the `h2` crate), for sending what tonic would not.
pub async fn h2_connect(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::time::timeout(CALL_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("tcp connect timed out")
        .expect("tcp connect");
    let (send, connection) = tokio::time::timeout(CALL_TIMEOUT, h2::client::handshake(tcp))
        .await
        .expect("h2 handshake timed out")
        .expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

/// A gRPC length-prefixed message frame (uncompressed).
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(message.len()).expect("len").to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// The HTTP/2 request head of a unary gRPC call to `path`, with `extra` headers.
pub fn grpc_head(
    addr: SocketAddr,
    path: &str,
    extra: &[(String, String)],
) -> tonic::codegen::http::Request<()> {
    let mut builder = tonic::codegen::http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in extra {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(()).expect("request head")
}

/// What a raw gRPC call got back.
#[derive(Debug)]
pub struct RawAnswer {
    /// The HTTP status.
    pub http_status: u16,
    /// `grpc-status` from the headers (trailers-only) or the trailers.
    pub grpc_status: Option<String>,
    /// The response body (gRPC frames).
    pub body: Vec<u8>,
}

/// Reads a whole response from a raw h2 stream.
pub async fn read_raw_answer(response: h2::client::ResponseFuture) -> Result<RawAnswer, h2::Error> {
    let response = response.await?;
    let http_status = response.status().as_u16();
    let mut grpc_status = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body_stream = response.into_body();
    let mut body = Vec::new();
    for _ in 0..10_000 {
        let Some(chunk) = body_stream.data().await else {
            break;
        };
        let chunk = chunk?;
        let _ = body_stream.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    if let Some(trailers) = body_stream.trailers().await?
        && let Some(status) = trailers.get("grpc-status").and_then(|v| v.to_str().ok())
    {
        grpc_status = Some(status.to_owned());
    }
    Ok(RawAnswer {
        http_status,
        grpc_status,
        body,
    })
}

/// One unary gRPC call over raw HTTP/2: `body` is sent as is (callers frame it, or not).
pub async fn raw_unary(
    send: &mut h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
    path: &str,
    extra: &[(String, String)],
    body: Vec<u8>,
) -> Result<RawAnswer, h2::Error> {
    let mut ready = send.clone().ready().await?;
    let (response, mut stream) = ready.send_request(grpc_head(addr, path, extra), false)?;
    stream.send_data(Bytes::from(body), true)?;
    let answer = tokio::time::timeout(CALL_TIMEOUT, read_raw_answer(response))
        .await
        .expect("raw gRPC call timed out");
    *send = ready;
    answer
}

impl Server {
    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// The sum of `verdict_worker_connections` over all workers.
    pub fn open_connections(&self) -> f64 {
        self.metric_sum("verdict_worker_connections")
    }
}

/// A minimal HTTP/1.1 request to the admin listener with an optional bearer token and JSON
/// body: (status, body).
pub fn admin_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect admin");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    if let Some(body) = body {
        // The server may answer (413, 401) and close before reading all of a large body.
        let _ = stream.write_all(body);
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
