//! The forward-auth HTTP listener against the real binary, over raw HTTP/1.1 (and one h2c
//! request): the same decisions as ext_authz, for each gateway's header family, with caps that
//! answer 431 and leave the listener serving.

mod common;

use common::{
    EXAMPLE_PROVIDER, Server, TestKey, admin_call, bearer_check, check, claims, example_jwks,
    grpc_code, now,
};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const ISS: &str = "https://idp.example.com";
const AUD: &str = "api://orders";
const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// One answer read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Header names lower-cased, in order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 client connection.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect forward auth");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        Conn {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    /// Sends `method target` with `headers` and reads the answer.
    fn call(&mut self, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: verdict\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.writer.write_all(head.as_bytes()).expect("write");
        self.read_answer(method == "HEAD")
    }

    fn read_answer(&mut self, head_only: bool) -> Answer {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header line");
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header field");
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().expect("content-length"));
        let mut body = vec![0; if head_only { 0 } else { length }];
        self.reader.read_exact(&mut body).expect("body");
        Answer {
            status,
            headers,
            body,
        }
    }

    /// True when the server has closed the connection (EOF within the read timeout).
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok()
    }
}

fn config() -> String {
    let provider = EXAMPLE_PROVIDER.replace(
        "leeway_s = 30\n",
        "leeway_s = 30\nrequired_scopes = [\"orders:read\"]\ntoken_query = \"access_token\"\n",
    );
    format!(
        r#"[server]
grpc_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
forward_auth_listen = "127.0.0.1:0"
workers = 2

[admin]
token_file = "admin.token"

{provider}
[[providers]]
name = "sealed"
issuer = "https://sealed.example.com"
jwks_file = "enc.jwks.json"
algorithms = ["RS256"]
token_query = "access_token"
"#
    )
}

fn start() -> (Server, SocketAddr) {
    let enc_only = String::from_utf8(example_jwks())
        .expect("utf-8")
        .replace("\"use\": \"sig\"", "\"use\": \"enc\"");
    let server = Server::start(
        &config(),
        &[
            ("jwks.json", &example_jwks()),
            ("enc.jwks.json", enc_only.as_bytes()),
            ("admin.token", format!("{ADMIN_TOKEN}\n").as_bytes()),
        ],
    );
    let addr = server
        .forward_auth
        .unwrap_or_else(|| panic!("no forward_auth address logged:\n{}", server.logs()));
    (server, addr)
}

fn token(sub: &str) -> String {
    TestKey::example_rsa().mint(&claims(ISS, AUD, sub))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn assert_allowed(answer: &Answer, sub: &str, case: &str) {
    assert_eq!(answer.status, 200, "{case}: {answer:?}");
    assert_eq!(
        answer.header("x-verdict-sub"),
        Some(sub),
        "{case}: {answer:?}"
    );
    assert!(answer.body.is_empty(), "{case}: {answer:?}");
    assert!(answer.header("www-authenticate").is_none(), "{case}");
}

fn assert_invalid(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 401, "{case}: {answer:?}");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer realm="verdict", error="invalid_token""#),
        "{case}: {answer:?}"
    );
    assert!(answer.header("x-verdict-sub").is_none(), "{case}");
}

#[tokio::test]
async fn decides_as_ext_authz_does() {
    let (server, addr) = start();
    let alice = token("alice");
    let mut conn = Conn::open(addr);

    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&alice))]);
    assert_allowed(&answer, "alice", "bearer");
    assert_eq!(
        answer.header("x-verdict-scope"),
        Some("orders:read orders:write")
    );
    assert_eq!(answer.header("content-length"), Some("0"));

    // Every method, on one keep-alive connection; HEAD carries the same headers.
    for method in ["HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let answer = conn.call(method, "/x", &[("Authorization", &bearer(&alice))]);
        assert_allowed(&answer, "alice", method);
    }

    // Missing, bad and expired tokens: 401 with the challenge ext_authz gives.
    let answer = conn.call("GET", "/auth", &[]);
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer realm="verdict""#)
    );
    let answer = conn.call(
        "GET",
        "/auth",
        &[("Authorization", &bearer(&common::tamper_signature(&alice)))],
    );
    assert_invalid(&answer, "bad signature");
    let answer = conn.call("GET", "/auth", &[("Authorization", "Bearer not-a-jwt")]);
    assert_invalid(&answer, "garbage token");
    let now = now();
    let expired = TestKey::example_rsa().mint(&json!({
        "iss": ISS, "aud": AUD, "sub": "alice", "scope": "orders:read",
        "iat": now - 7200, "exp": now - 3600,
    }));
    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&expired))]);
    assert_invalid(&answer, "expired");

    // A valid token without the required scope: 403.
    let reader = TestKey::example_rsa().mint(&json!({
        "iss": ISS, "aud": AUD, "sub": "bob", "scope": "orders:write",
        "iat": now, "exp": now + 600,
    }));
    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&reader))]);
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer realm="verdict", error="insufficient_scope""#)
    );

    // A provider without usable keys cannot decide: 503, not 401.
    let sealed = TestKey::example_rsa().mint(&claims("https://sealed.example.com", AUD, "eve"));
    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&sealed))]);
    assert_eq!(answer.status, 503, "{answer:?}\n{}", server.metrics_text());

    // Still the same connection, still allowing.
    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&alice))]);
    assert_allowed(&answer, "alice", "after the denials");

    // Recorded as ext_authz checks are.
    let count = |result: &str, reason: &str| {
        server
            .metric_where(
                "verdict_checks_total",
                &[("result", result), ("reason", reason)],
            )
            .unwrap_or(0.0)
    };
    assert_eq!(count("allow", "ok"), 8.0, "{}", server.metrics_text());
    assert_eq!(count("deny", "expired"), 1.0);
    assert_eq!(count("deny", "insufficient_scope"), 1.0);
    assert_eq!(count("deny", "no_keys"), 1.0);

    // ext_authz on the gRPC listener is served by the same workers alongside.
    let mut client = server.authz().await;
    assert_eq!(
        grpc_code(&check(&mut client, bearer_check(&alice)).await),
        0
    );
}

#[tokio::test]
async fn reads_the_original_uri_from_one_header_family() {
    let (_server, addr) = start();
    let carol = token("carol");
    let query = format!("/orders?page=2&access_token={carol}&x=1");
    let mut conn = Conn::open(addr);
    // Traefik and Caddy.
    let answer = conn.call(
        "GET",
        "/",
        &[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "orders.example.com"),
            ("X-Forwarded-Uri", &query),
        ],
    );
    assert_allowed(&answer, "carol", "X-Forwarded-Uri");
    // nginx.
    let answer = conn.call(
        "GET",
        "/_verdict",
        &[("X-Original-Method", "GET"), ("X-Original-URI", &query)],
    );
    assert_allowed(&answer, "carol", "X-Original-URI");
    let url = format!("https://orders.example.com{query}");
    let answer = conn.call("GET", "/_verdict", &[("X-Original-URL", &url)]);
    assert_allowed(&answer, "carol", "X-Original-URL");
    // Envoy http_service: the original path on the request line.
    let answer = conn.call("GET", &query, &[]);
    assert_allowed(&answer, "carol", "request line");

    // All or nothing: X-Forwarded-Uri wins, and a token in another family is not read.
    let answer = conn.call(
        "GET",
        &query,
        &[("X-Forwarded-Uri", "/orders"), ("X-Original-URI", &query)],
    );
    assert_eq!(answer.status, 401, "{answer:?}");
}

#[tokio::test]
async fn claim_headers_are_always_present_and_never_another_value() {
    let (_server, addr) = start();
    let now = now();
    let nul = TestKey::example_rsa().mint(&json!({
        "iss": ISS, "aud": AUD, "sub": "ad\u{0000}min", "scope": "orders:read",
        "iat": now, "exp": now + 600,
    }));
    let mut conn = Conn::open(addr);
    let answer = conn.call(
        "GET",
        "/auth",
        &[("Authorization", &bearer(&nul)), ("X-Verdict-Sub", "admin")],
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let subs: Vec<_> = answer
        .headers
        .iter()
        .filter(|(n, _)| n == "x-verdict-sub")
        .collect();
    assert_eq!(subs.len(), 1, "{answer:?}");
    assert_eq!(subs[0].1, "", "{answer:?}");
    assert_eq!(answer.header("x-verdict-scope"), Some("orders:read"));

    // Every control character: the header is there and empty, never the claim with it dropped
    // (and never a second, forged header). Other Unicode goes out as its UTF-8 bytes.
    for (case, sub, want) in [
        ("DEL", "ad\u{007f}min", ""),
        ("TAB", "ad\tmin", ""),
        ("CR", "ad\rmin", ""),
        ("LF", "ad\nX-Forged: 1", ""),
        ("C1", "ad\u{0085}min", ""),
        ("non-ASCII", "ädmïn", "ädmïn"),
    ] {
        let token = TestKey::example_rsa().mint(&json!({
            "iss": ISS, "aud": AUD, "sub": sub, "scope": "orders:read",
            "iat": now, "exp": now + 600,
        }));
        let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&token))]);
        assert_eq!(answer.status, 200, "{case}: {answer:?}");
        assert_eq!(
            answer.header("x-verdict-sub"),
            Some(want),
            "{case}: {answer:?}"
        );
        assert!(answer.header("x-forged").is_none(), "{case}: {answer:?}");
    }

    // An absent claim: the header is there, empty.
    let no_sub = TestKey::example_rsa().mint(&json!({
        "iss": ISS, "aud": AUD, "scope": "orders:read", "iat": now, "exp": now + 600,
    }));
    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&no_sub))]);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("x-verdict-sub"), Some(""), "{answer:?}");
}

#[tokio::test]
async fn a_revoked_token_is_refused() {
    let (server, addr) = start();
    let now = now();
    let revocable = TestKey::example_rsa().mint(&json!({
        "iss": ISS, "aud": AUD, "sub": "alice", "scope": "orders:read", "jti": "t-1",
        "iat": now, "exp": now + 600,
    }));
    let mut conn = Conn::open(addr);
    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&revocable))]);
    assert_allowed(&answer, "alice", "before the revocation");
    let body = json!({"provider": "corp", "jti": "t-1"}).to_string();
    let (status, text) = admin_call(
        server.admin,
        "POST",
        "/v1/revocations",
        Some(ADMIN_TOKEN),
        Some(body.as_bytes()),
    );
    assert!((200..300).contains(&status), "{status}: {text}");
    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&revocable))]);
    assert_invalid(&answer, "revoked");
}

#[tokio::test]
async fn over_the_caps_is_431_and_the_listener_keeps_serving() {
    let (_server, addr) = start();
    let alice = token("alice");

    let many: Vec<(String, String)> = (0..200)
        .map(|i| (format!("x-h{i}"), "v".to_owned()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut conn = Conn::open(addr);
    let answer = conn.call("GET", "/auth", &many);
    assert_eq!(answer.status, 431, "{answer:?}");
    assert!(conn.closed(), "the connection is closed after 431");

    let big = "a".repeat(20 * 1024);
    let mut conn = Conn::open(addr);
    let answer = conn.call("GET", "/auth", &[("X-Big", &big)]);
    assert_eq!(answer.status, 431, "{answer:?}");
    assert!(conn.closed(), "the connection is closed after 431");

    let mut conn = Conn::open(addr);
    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&alice))]);
    assert_allowed(&answer, "alice", "after the 431s");

    // Garbage: refused and closed; a new connection is served.
    let mut junk = TcpStream::connect(addr).expect("connect");
    junk.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    junk.write_all(b"\x00\x01\x02GARBAGE \xff\xfe\r\n\r\n")
        .expect("write");
    let mut rest = Vec::new();
    let _ = junk.read_to_end(&mut rest);
    assert!(
        rest.is_empty() || rest.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    let mut conn = Conn::open(addr);
    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&alice))]);
    assert_allowed(&answer, "alice", "after garbage");
}

#[tokio::test]
async fn a_slow_header_block_is_cut_off_but_an_idle_connection_is_kept() {
    let (_server, addr) = start();
    let alice = token("alice");
    // Idle between requests for longer than the header read timeout (10 s): still served.
    let mut idle = Conn::open(addr);
    let answer = idle.call("GET", "/auth", &[("Authorization", &bearer(&alice))]);
    assert_allowed(&answer, "alice", "first");
    // A request whose body arrives after its head (Envoy's `with_request_body`): answered, and
    // the body bytes start no header timer.
    let head = format!(
        "POST /auth HTTP/1.1\r\nHost: v\r\nAuthorization: {}\r\nContent-Length: 5\r\n\r\n",
        bearer(&alice)
    );
    idle.writer.write_all(head.as_bytes()).expect("write head");
    std::thread::sleep(Duration::from_millis(200));
    idle.writer.write_all(b"hello").expect("write body");
    let answer = idle.read_answer(false);
    assert_allowed(&answer, "alice", "with a late body");
    // A client that starts a header block and never finishes it.
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    slow.write_all(b"GET /auth HTTP/1.1\r\nHost: v\r\n")
        .expect("write");
    std::thread::sleep(Duration::from_secs(12));
    let mut rest = Vec::new();
    let started = std::time::Instant::now();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the slow client was not cut off"
    );
    let answer = idle.call("GET", "/auth", &[("Authorization", &bearer(&alice))]);
    assert_allowed(&answer, "alice", "after 12 s idle");
}

#[tokio::test]
async fn answers_over_h2c() {
    let (_server, addr) = start();
    let alice = token("alice");
    let mut send = common::h2_connect(addr).await;
    let request = http::Request::builder()
        .method("GET")
        .uri(format!("http://{addr}/orders"))
        .header("authorization", bearer(&alice))
        .body(())
        .expect("request");
    let (response, _) = send.send_request(request, true).expect("send");
    let response = tokio::time::timeout(common::CALL_TIMEOUT, response)
        .await
        .expect("h2 answer timed out")
        .expect("h2 answer");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-verdict-sub")
            .and_then(|v| v.to_str().ok()),
        Some("alice")
    );
    let request = http::Request::builder()
        .method("GET")
        .uri(format!("http://{addr}/orders"))
        .body(())
        .expect("request");
    let mut send = send.ready().await.expect("ready");
    let (response, _) = send.send_request(request, true).expect("send");
    let response = response.await.expect("h2 answer");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn an_h2c_header_list_over_the_cap_is_431() {
    let (_server, addr) = start();
    let alice = token("alice");
    let mut send = common::h2_connect(addr).await;
    let request = http::Request::builder()
        .method("GET")
        .uri(format!("http://{addr}/orders"))
        .header("authorization", bearer(&alice))
        .header("x-big", "a".repeat(20 * 1024))
        .body(())
        .expect("request");
    let (response, _) = send.send_request(request, true).expect("send");
    let response = tokio::time::timeout(common::CALL_TIMEOUT, response)
        .await
        .expect("h2 answer timed out");
    match response {
        Ok(response) => assert_eq!(response.status(), 431),
        Err(error) => panic!("no 431 over h2c: {error}"),
    }
    // A fresh connection is served.
    let mut send = common::h2_connect(addr).await;
    let request = http::Request::builder()
        .method("GET")
        .uri(format!("http://{addr}/orders"))
        .header("authorization", bearer(&alice))
        .body(())
        .expect("request");
    let (response, _) = send.send_request(request, true).expect("send");
    let response = response.await.expect("h2 answer");
    assert_eq!(response.status(), 200);
}

/// Forward-auth checks go to the audit log of the worker that answered them, and a SIGTERM with
/// idle HTTP/1.1 and h2c connections open still stops the server promptly and cleanly.
// Multi-threaded: the h2c client's connection task must keep running (to answer the server's
// GOAWAY ping) while this thread waits for the process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audited_and_stopped_cleanly_with_connections_open() {
    let config = format!(
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         forward_auth_listen = \"127.0.0.1:0\"\nworkers = 2\n\n[audit]\ndir = \"audit\"\n\n\
         {EXAMPLE_PROVIDER}"
    );
    let mut server = Server::start(&config, &[("jwks.json", &example_jwks())]);
    let addr = server.forward_auth.expect("forward_auth address");
    let alice = token("alice");
    let mut conn = Conn::open(addr);
    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&alice))]);
    assert_allowed(&answer, "alice", "audited allow");
    let answer = conn.call("GET", "/auth", &[("Authorization", "Bearer x.y.z")]);
    assert_eq!(answer.status, 401);
    let written = server.wait_metric(
        "verdict_audit_lines_total",
        &[("result", "written")],
        |v| v >= 2.0,
        Duration::from_secs(10),
    );
    assert_eq!(written, Some(2.0), "{}", server.metrics_text());
    let _h2 = common::h2_connect(addr).await;

    let started = std::time::Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("verdict did not exit; logs:\n{}", server.logs()));
    assert!(status.success(), "{status:?}; logs:\n{}", server.logs());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "idle connections held the drain: {:?}",
        started.elapsed()
    );
    assert!(conn.closed(), "the idle HTTP/1.1 connection was closed");

    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, alice.as_bytes());
    let prefix = hex::encode(&digest.as_ref()[..8]);
    let dir = server.scratch.0.join("audit");
    let text: String = std::fs::read_dir(&dir)
        .expect("audit dir")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("read"))
        .collect();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains(&prefix), "{text}");
}

/// Sends `bytes` on a connection of its own, whatever the server does meanwhile, and returns
/// the status it answered, if any (it may reset a connection it stopped reading).
fn hostile(addr: SocketAddr, bytes: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(15)))
        .expect("write timeout");
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

#[tokio::test]
async fn hostile_clients_leave_the_listener_serving() {
    rlimit::increase_nofile_limit(4096).expect("raise the open-file limit");
    let (server, addr) = start();
    let alice = token("alice");
    let good = |case: &str| {
        let mut conn = Conn::open(addr);
        let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&alice))]);
        assert_allowed(&answer, "alice", case);
    };

    let huge = format!(
        "GET /auth HTTP/1.1\r\nHost: v\r\nX-Big: {}\r\n\r\n",
        "v".repeat(1 << 20)
    );
    let status = hostile(addr, huge.as_bytes());
    assert!(
        matches!(status, None | Some(431)),
        "1 MiB header: {status:?}"
    );
    good("after a 1 MiB header");

    let mut many = String::from("GET /auth HTTP/1.1\r\nHost: v\r\n");
    for i in 0..10_000 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let status = hostile(addr, many.as_bytes());
    assert!(
        matches!(status, None | Some(431)),
        "10,000 headers: {status:?}"
    );
    good("after 10,000 headers");

    // A request line that never ends.
    let status = hostile(addr, "G".repeat(64 * 1024).as_bytes());
    assert!(
        matches!(status, None | Some(400) | Some(414) | Some(431)),
        "endless request line: {status:?}"
    );
    good("after an endless request line");

    // 1,000 idle connections: a new one is still served at once.
    let idle: Vec<TcpStream> = (0..1000)
        .map(|i| TcpStream::connect(addr).unwrap_or_else(|e| panic!("idle connection {i}: {e}")))
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server.open_connections() < 1000.0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.open_connections() >= 1000.0,
        "only {} connections accepted",
        server.open_connections()
    );
    let asked = std::time::Instant::now();
    good("beside 1,000 idle connections");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    drop(idle);
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let config = format!(
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         forward_auth_listen = \"127.0.0.1:0\"\nforward_auth_idle_timeout_s = 2\n\n\
         {EXAMPLE_PROVIDER}"
    );
    let server = Server::start(&config, &[("jwks.json", &example_jwks())]);
    let addr = server.forward_auth.expect("forward_auth address");
    let alice = token("alice");
    let mut idle = Conn::open(addr);
    let mut busy = Conn::open(addr);
    let answer = idle.call("GET", "/auth", &[("Authorization", &bearer(&alice))]);
    assert_allowed(&answer, "alice", "idle, first");
    // One request a second keeps a connection open past the idle timeout.
    for second in 0..4 {
        let answer = busy.call("GET", "/auth", &[("Authorization", &bearer(&alice))]);
        assert_allowed(&answer, "alice", &format!("busy, second {second}"));
        std::thread::sleep(Duration::from_secs(1));
    }
    let started = std::time::Instant::now();
    assert!(idle.closed(), "the idle connection was closed");
    assert!(started.elapsed() < Duration::from_secs(5));
    let answer = busy.call("GET", "/auth", &[("Authorization", &bearer(&alice))]);
    assert_allowed(&answer, "alice", "busy, last");
}

/// The header cap grows with `max_token_bytes`: the longest token the server accepts fits.
#[tokio::test]
async fn the_header_cap_makes_room_for_the_longest_accepted_token() {
    let config = format!(
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         forward_auth_listen = \"127.0.0.1:0\"\nmax_token_bytes = 65536\n\
         max_payload_bytes = 65536\n\n{EXAMPLE_PROVIDER}"
    );
    let server = Server::start(&config, &[("jwks.json", &example_jwks())]);
    let addr = server.forward_auth.expect("forward_auth address");
    let mut claims = claims(ISS, AUD, "alice");
    claims["pad"] = json!("p".repeat(30 * 1024));
    let long = TestKey::example_rsa().mint(&claims);
    assert!(long.len() > 40 * 1024, "{}", long.len());
    let mut conn = Conn::open(addr);
    let answer = conn.call("GET", "/auth", &[("Authorization", &bearer(&long))]);
    assert_allowed(&answer, "alice", "a 40 KiB token");
}
