//! Hostile or broken input on the gRPC port never takes the appliance down: after each abuse the
//! process is still running and a good check still succeeds. Every loop is bounded in count and
//! every wait in time.
mod common;

use common::*;
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use prost::Message as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";
const ISS: &str = "https://idp.example.com";
const AUD: &str = "api://orders";

fn example_server() -> Server {
    Server::start(EXAMPLE_PROVIDER, &[("jwks.json", &example_jwks())])
}

fn good_token() -> String {
    TestKey::example_rsa().mint(&claims(ISS, AUD, "alice"))
}

/// The process is alive and a good check on a brand-new connection is allowed.
async fn assert_still_serving(server: &mut Server, after: &str) {
    assert!(
        server.is_running(),
        "verdict exited after {after}; logs:\n{}",
        server.logs()
    );
    let mut client = server.authz().await;
    let response = check(&mut client, bearer_check(&good_token())).await;
    assert_eq!(grpc_code(&response), 0, "after {after}: {response:?}");
}

/// A good check over a raw HTTP/2 connection, decoded by hand.
async fn raw_good_check(
    send: &mut h2::client::SendRequest<tonic::codegen::Bytes>,
    server: &Server,
) -> CheckResponse {
    let body = grpc_frame(&bearer_check(&good_token()).encode_to_vec());
    let answer = raw_unary(send, server.grpc, CHECK_PATH, &[], body)
        .await
        .expect("raw good check");
    assert_eq!(answer.http_status, 200, "{answer:?}");
    assert_eq!(answer.grpc_status.as_deref(), Some("0"), "{answer:?}");
    let message = answer.body.get(5..).expect("a framed message");
    CheckResponse::decode(message).expect("CheckResponse")
}

#[tokio::test]
async fn malformed_protobuf_bodies_get_an_error_not_a_crash() {
    let mut server = example_server();
    let mut send = h2_connect(server.grpc).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Field 15 with the invalid wire type 7, then junk.
        (
            "invalid wire type",
            grpc_frame(&[0x7f, 0xff, 0xff, 0xff, 0x01]),
        ),
        // Field 1 (attributes) claims 100 bytes, has 2.
        (
            "truncated submessage",
            grpc_frame(&[0x0a, 0x64, 0x01, 0x02]),
        ),
        // A varint that never ends.
        (
            "endless varint",
            grpc_frame(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ]),
        ),
        // The frame header promises more than is sent, then the stream ends.
        ("short frame", {
            let mut f = grpc_frame(&[0u8; 64]);
            f.truncate(20);
            f
        }),
        // Not even a complete frame header.
        ("three bytes", vec![0, 0, 0]),
        // The compressed flag without any grpc-encoding.
        ("compressed flag", {
            let mut f = grpc_frame(&bearer_check("x").encode_to_vec());
            f[0] = 1;
            f
        }),
        // A frame claiming 4 GiB.
        (
            "huge length prefix",
            vec![0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        ),
        // Plain text instead of a frame.
        ("text body", b"hello, this is not protobuf at all".to_vec()),
    ];
    for (case, body) in cases {
        match raw_unary(&mut send, server.grpc, CHECK_PATH, &[], body).await {
            Ok(answer) => {
                // An answer must be a gRPC error, never an allow.
                assert_ne!(
                    answer.grpc_status.as_deref(),
                    Some("0"),
                    "{case}: a malformed body was answered OK: {answer:?}"
                );
                assert!(answer.grpc_status.is_some(), "{case}: {answer:?}");
            }
            Err(error) => {
                // A stream reset is an acceptable refusal; a connection error makes us
                // reconnect below.
                eprintln!("{case}: refused with {error}");
                send = h2_connect(server.grpc).await;
            }
        }
        // The same connection (or its replacement) still answers a good check.
        let good = raw_good_check(&mut send, &server).await;
        assert_eq!(grpc_code(&good), 0, "{case}");
        assert_still_serving(&mut server, case).await;
    }
}

#[tokio::test]
async fn one_mebibyte_header_values() {
    let mut server = example_server();
    let token = good_token();
    let big = "v".repeat(1 << 20);
    let mut client = server.authz().await;

    // Forwarded by Envoy inside the CheckRequest: an unrelated huge header does not matter.
    let response = check(
        &mut client,
        envoy_check(
            "/orders",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("x-big", &big),
            ],
        ),
    )
    .await;
    assert_eq!(grpc_code(&response), 0, "{response:?}");

    // A 1 MiB credential is refused before any parsing (max_token_bytes), as an invalid token.
    let response = check(
        &mut client,
        envoy_check("/orders", &[("authorization", &format!("Bearer {big}"))]),
    )
    .await;
    assert_eq!(grpc_code(&response), 16, "{response:?}");
    match &response.http_response {
        Some(HttpResponse::DeniedResponse(denied)) => {
            assert_eq!(denied.status.as_ref().map(|s| s.code), Some(401));
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(
        server.metric_where(
            "verdict_checks_total",
            &[("result", "deny"), ("reason", "token_too_large")]
        ),
        Some(1.0)
    );
    // A huge token in a cookie or a query string is capped the same way.
    let cookie_server = Server::start(
        &EXAMPLE_PROVIDER.replace("leeway_s = 30", "token_cookie = \"s\"\ntoken_query = \"t\""),
        &[("jwks.json", &example_jwks())],
    );
    let mut cookie_client = cookie_server.authz().await;
    for request in [
        envoy_check("/", &[("cookie", &format!("s={big}"))]),
        envoy_check(&format!("/?t={big}"), &[]),
    ] {
        let response = check(&mut cookie_client, request).await;
        assert_eq!(grpc_code(&response), 16);
    }
    assert_still_serving(&mut server, "1 MiB CheckRequest headers").await;

    // A 1 MiB HTTP/2 header on the gRPC request itself (far above the header-list limit).
    let mut send = h2_connect(server.grpc).await;
    let body = grpc_frame(&bearer_check(&token).encode_to_vec());
    let extra = vec![("x-big".to_owned(), big.clone())];
    match raw_unary(&mut send, server.grpc, CHECK_PATH, &extra, body).await {
        Ok(answer) => assert_ne!(
            answer.grpc_status.as_deref(),
            Some("0"),
            "a 1 MiB HTTP/2 header list was accepted: {answer:?}"
        ),
        Err(error) => eprintln!("1 MiB HTTP/2 header refused with {error}"),
    }
    assert_still_serving(&mut server, "a 1 MiB HTTP/2 header").await;
}

#[tokio::test]
async fn ten_thousand_headers() {
    let mut server = example_server();
    let token = good_token();
    let bearer = format!("Bearer {token}");
    let names: Vec<String> = (0..10_000).map(|i| format!("x-h-{i}")).collect();
    let mut headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    headers.push(("authorization", &bearer));
    let mut client = server.authz().await;
    let response = check(&mut client, envoy_check("/orders", &headers)).await;
    assert_eq!(grpc_code(&response), 0, "{response:?}");
    // And without a credential among them: still a clean 401.
    let response = check(&mut client, envoy_check("/orders", &headers[..10_000])).await;
    assert_eq!(grpc_code(&response), 16);
    assert_still_serving(&mut server, "10,000 CheckRequest headers").await;

    // 10,000 HTTP/2 headers on the gRPC request itself.
    let mut send = h2_connect(server.grpc).await;
    let body = grpc_frame(&bearer_check(&token).encode_to_vec());
    let extra: Vec<(String, String)> = names.iter().map(|n| (n.clone(), "v".into())).collect();
    match raw_unary(&mut send, server.grpc, CHECK_PATH, &extra, body).await {
        Ok(answer) => eprintln!("10,000 HTTP/2 headers answered: {:?}", answer.grpc_status),
        Err(error) => eprintln!("10,000 HTTP/2 headers refused with {error}"),
    }
    assert_still_serving(&mut server, "10,000 HTTP/2 headers").await;
}

#[tokio::test]
async fn garbage_after_bearer_is_denied() {
    let mut server = example_server();
    let mut client = server.authz().await;
    let long_dots = ".".repeat(5000);
    let long_b64 = format!("eyJ{}", "A".repeat(9000));
    let garbage: Vec<String> = vec![
        "x".into(),
        ".".into(),
        "..".into(),
        "...".into(),
        "a.b".into(),
        "a.b.c".into(),
        "a..c".into(),
        "a.b.c.d.e".into(),
        "a.b.c.d.e.f.g".into(),
        "eyJhbGciOiJub25lIn0".into(),
        "eyJhbGciOiJub25lIn0..".into(),
        "eyJ9.eyJ9.eyJ9".into(),
        "e30.e30.e30".into(),
        "W10.W10.".into(),
        "bnVsbA.bnVsbA.bnVsbA".into(),
        "\u{0}\u{1}\u{2}".into(),
        "☃.☃.☃".into(),
        "tok en with spaces".into(),
        "a.b.c\r\nx-injected: 1".into(),
        "=====.====.===".into(),
        "%2e%2e%2f".into(),
        long_dots,
        long_b64,
        format!(
            "{}.{}.{}",
            "A".repeat(3000),
            "B".repeat(3000),
            "C".repeat(3000)
        ),
    ];
    for (index, junk) in garbage.iter().enumerate() {
        let value = format!("Bearer {junk}");
        let response = check(&mut client, envoy_check("/", &[("authorization", &value)])).await;
        assert_eq!(grpc_code(&response), 16, "case {index}: {response:?}");
        match &response.http_response {
            Some(HttpResponse::DeniedResponse(denied)) => {
                assert_eq!(
                    denied.status.as_ref().map(|s| s.code),
                    Some(401),
                    "case {index}"
                );
            }
            other => panic!("case {index}: expected a denial, got {other:?}"),
        }
    }
    assert!(
        server
            .metric_where("verdict_checks_total", &[("result", "allow")])
            .is_none()
    );
    assert_still_serving(&mut server, "garbage after Bearer").await;
}

/// Writes `bytes` to a new connection on `addr` and reads until the server closes it; panics
/// if the server neither closes nor answers within the bound.
fn send_and_expect_close(addr: std::net::SocketAddr, bytes: &[u8], case: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&addr, CALL_TIMEOUT).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    // The server may close before everything is written; that is fine.
    let _ = stream.write_all(bytes);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // Reset by the server: closed.
            Err(_) => return received,
        }
    }
    panic!(
        "{case}: the gRPC port neither closed nor finished answering within 10 s (got {} bytes)",
        received.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_junk_bytes_on_the_grpc_port_are_closed() {
    let mut server = example_server();
    let grpc = server.grpc;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "HTTP/1.1 GET",
            format!("GET / HTTP/1.1\r\nHost: {grpc}\r\nConnection: keep-alive\r\n\r\n").into_bytes(),
        ),
        (
            "HTTP/1.1 POST to the Check path",
            format!(
                "POST {CHECK_PATH} HTTP/1.1\r\nHost: {grpc}\r\nContent-Type: application/grpc\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0"
            )
            .into_bytes(),
        ),
        ("binary junk", (0..=255u8).cycle().take(8192).collect()),
        (
            "HTTP/2 preface then junk frames",
            [
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".as_slice(),
                &[0xff; 512],
            ]
            .concat(),
        ),
        ("TLS ClientHello", vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
    ];
    for (case, bytes) in cases {
        let received =
            tokio::task::spawn_blocking(move || send_and_expect_close(grpc, &bytes, case))
                .await
                .expect("join");
        assert!(
            !String::from_utf8_lossy(&received).contains("200 OK"),
            "{case}: answered like a success"
        );
        assert_still_serving(&mut server, case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_silent_connections_do_not_block_service() {
    // This test process holds 1,000 sockets too; a default soft limit of 1024 would not do.
    rlimit::increase_nofile_limit(4096).expect("raise the open-file limit");
    let mut server = example_server();
    let grpc = server.grpc;
    let started = Instant::now();
    let silent = tokio::task::spawn_blocking(move || {
        let mut streams = Vec::with_capacity(1000);
        for index in 0..1000 {
            let stream = TcpStream::connect_timeout(&grpc, CALL_TIMEOUT)
                .unwrap_or_else(|e| panic!("silent connection {index}: {e}"));
            streams.push(stream);
        }
        streams
    })
    .await
    .expect("join");
    assert_eq!(silent.len(), 1000);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "opening 1000 connections took {:?}",
        started.elapsed()
    );
    // The server has really accepted them (not left them in the backlog).
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.open_connections() < 1000.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.open_connections() >= 1000.0,
        "only {} connections accepted",
        server.open_connections()
    );

    // While they sit there, a new client is served promptly.
    let asked = Instant::now();
    assert_still_serving(&mut server, "1000 silent connections").await;
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "a good check took {:?} beside 1000 silent connections",
        asked.elapsed()
    );

    // Closing them releases every one (no leaked connection slots).
    drop(silent);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.open_connections() > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        server.open_connections(),
        0.0,
        "connections still counted after the clients closed them"
    );
    assert_still_serving(&mut server, "closing 1000 silent connections").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_wait_in_the_backlog() {
    // `server.max_connections` documents that further connections wait in the listen backlog:
    // they are served once a slot frees, not accepted and dropped.
    let config = format!(
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nmax_connections = 2\n{EXAMPLE_PROVIDER}"
    );
    let mut server = Server::start(&config, &[("jwks.json", &example_jwks())]);
    let token = good_token();
    let mut first = server.authz().await;
    let mut second = server.authz().await;
    assert_eq!(grpc_code(&check(&mut first, bearer_check(&token)).await), 0);
    assert_eq!(
        grpc_code(&check(&mut second, bearer_check(&token)).await),
        0
    );

    // A third client: its TCP handshake completes in the kernel's backlog, but no answer comes
    // while both slots are taken.
    let grpc = server.grpc;
    let third_token = token.clone();
    let third = tokio::spawn(async move {
        let mut client = envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient::new(
            tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
                .expect("endpoint")
                .timeout(Duration::from_secs(20))
                .connect_lazy(),
        );
        let started = Instant::now();
        let answer = client.check(bearer_check(&third_token)).await;
        (
            answer.map(|r| grpc_code(&r.into_inner())),
            started.elapsed(),
            client,
        )
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !third.is_finished(),
        "the third connection was answered (or dropped) while the limit was reached: {:?}",
        third.await.map(|(answer, took, _)| (answer, took))
    );
    assert_eq!(server.open_connections(), 2.0);

    // Freeing a slot lets it through.
    drop(first);
    let (answer, _, _client) = tokio::time::timeout(Duration::from_secs(15), third)
        .await
        .expect("the waiting connection was never served")
        .expect("join");
    assert_eq!(answer.expect("the waiting check failed"), 0);
    assert!(server.open_connections() <= 2.0);
    drop(second);
    assert_still_serving(&mut server, "the connection limit").await;
}

/// A connection that never sends a byte is closed by the server after the first-byte timeout
/// (10 s), so silent clients cannot hold slots forever or delay shutdown.
#[test]
fn a_silent_connection_is_closed_after_the_first_byte_timeout() {
    use std::io::Read;
    let server = Server::start(EXAMPLE_PROVIDER, &[("jwks.json", &example_jwks())]);
    let mut silent = std::net::TcpStream::connect(server.grpc).expect("connect");
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("read timeout");
    let started = std::time::Instant::now();
    // The server speaks first (its HTTP/2 SETTINGS); read until it closes.
    let mut buf = [0u8; 256];
    let mut received = 0usize;
    let closed = loop {
        match silent.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) if received + n < 4096 => received += n,
            Ok(_) => break false,
            Err(e) => {
                break e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut;
            }
        }
    };
    let waited = started.elapsed();
    assert!(closed, "the server did not close the silent connection");
    assert!(
        waited >= std::time::Duration::from_secs(9) && waited < std::time::Duration::from_secs(25),
        "closed after {waited:?}"
    );
}
