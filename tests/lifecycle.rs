//! The appliance's life as an operator sees it: reload on SIGHUP (good and broken configs),
//! graceful SIGTERM, health and readiness, JSON logs that never carry a token, `check-config`,
//! and the no-config demo with its `authz` command.
//!
//! Only `demo_prints_a_token_that_authz_allows` uses fixed ports (127.0.0.1:9191 and :9901); it
//! is the only test in the whole suite that does, and it fails (never skips) when they are busy.
mod common;

use common::*;
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use prost::Message as _;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tonic::codegen::Bytes;

const ISS: &str = "https://idp.example.com";
const AUD: &str = "api://orders";
const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

fn example_server() -> Server {
    Server::start(EXAMPLE_PROVIDER, &[("jwks.json", &example_jwks())])
}

/// Rewrites the running server's config file (same listeners), for a reload.
fn rewrite_config(server: &Server, edit: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(&server.config).expect("read config");
    let new = edit(text.clone());
    assert_ne!(new, text, "the edit changed nothing");
    std::fs::write(&server.config, new).expect("write config");
}

fn reloads(server: &Server, result: &str) -> f64 {
    server
        .metric_where("verdict_config_reloads_total", &[("result", result)])
        .unwrap_or(0.0)
}

fn wait_reloads(server: &Server, result: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while reloads(server, result) < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        reloads(server, result),
        want,
        "verdict_config_reloads_total{{result=\"{result}\"}}; logs:\n{}",
        server.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sighup_applies_a_good_config_without_dropping_requests() {
    let server = example_server();
    let key = TestKey::example_rsa();
    let orders = key.mint(&claims(ISS, AUD, "alice"));
    let billing = key.mint(&claims(ISS, "api://billing", "alice"));
    let mut client = server.authz().await;
    assert_eq!(
        grpc_code(&check(&mut client, bearer_check(&orders)).await),
        0
    );
    assert_eq!(
        grpc_code(&check(&mut client, bearer_check(&billing)).await),
        16
    );

    // Four clients, each on its own connection, check in a loop (bounded in count and time)
    // while the reload happens; every call must get an answer.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut loops = Vec::new();
    for _ in 0..4 {
        let mut client = server.authz().await;
        let (stop, answered, token) = (Arc::clone(&stop), Arc::clone(&answered), billing.clone());
        loops.push(tokio::spawn(async move {
            let (mut errors, mut denied, mut allowed) = (Vec::new(), 0usize, 0usize);
            let started = Instant::now();
            for _ in 0..50_000 {
                if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(30) {
                    break;
                }
                match tokio::time::timeout(CALL_TIMEOUT, client.check(bearer_check(&token))).await {
                    Ok(Ok(response)) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                        match grpc_code(response.get_ref()) {
                            0 => allowed += 1,
                            _ => denied += 1,
                        }
                    }
                    Ok(Err(status)) => errors.push(status.to_string()),
                    Err(_) => errors.push("timed out".to_owned()),
                }
            }
            (errors, denied, allowed)
        }));
    }
    // Let the loops get going, then reload with a different audience.
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered.load(Ordering::Relaxed) < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rewrite_config(&server, |text| {
        text.replace(
            r#"audiences = ["api://orders"]"#,
            r#"audiences = ["api://billing"]"#,
        )
    });
    let before_reload = answered.load(Ordering::Relaxed);
    tokio::task::block_in_place(|| {
        server.signal("HUP");
        wait_reloads(&server, "ok", 1.0);
    });
    assert_eq!(reloads(&server, "error"), 0.0);
    // Keep the loops running a little past the swap, then stop them.
    let after = answered.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered.load(Ordering::Relaxed) < after + 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut denied, mut allowed) = (0, 0);
    for handle in loops {
        let (errors, d, a) = handle.await.expect("loop task");
        assert!(
            errors.is_empty(),
            "checks failed during the reload: {errors:?}"
        );
        denied += d;
        allowed += a;
    }
    let total = answered.load(Ordering::Relaxed);
    assert!(
        before_reload >= 200 && total > after,
        "the loops did not overlap the reload ({before_reload} before, {total} in all)"
    );
    // The loops saw the old configuration (billing denied) and then the new one (allowed).
    assert!(
        denied > 0 && allowed > 0,
        "denied {denied}, allowed {allowed}: the swap was not observed mid-loop"
    );

    // The new audience is in force; the old one no longer is.
    assert_eq!(
        grpc_code(&check(&mut client, bearer_check(&billing)).await),
        0
    );
    assert_eq!(
        grpc_code(&check(&mut client, bearer_check(&orders)).await),
        16
    );
    assert!(server.logs().contains("configuration reloaded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_refuses_a_broken_config_and_keeps_serving() {
    let server = example_server();
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "alice"));
    let mut client = server.authz().await;
    let good = std::fs::read_to_string(&server.config).expect("config");

    // Not TOML, then valid TOML with a bad value, then a jwks_file that does not exist.
    let broken = [
        ("syntax", "[server\nthis is not toml".to_owned()),
        (
            "bad value",
            good.replace(
                "leeway_s = 30",
                "leeway_s = 30\nrequired_scopes = [\"a b\"]",
            ),
        ),
        (
            "missing jwks",
            good.replace("jwks_file = \"jwks.json\"", "jwks_file = \"nope.json\""),
        ),
    ];
    for (round, (case, text)) in broken.iter().enumerate() {
        std::fs::write(&server.config, text).expect("write config");
        server.signal("HUP");
        wait_reloads(&server, "error", (round + 1) as f64);
        assert_eq!(reloads(&server, "ok"), 0.0, "{case}");
        // The old configuration still serves.
        let response = check(&mut client, bearer_check(&token)).await;
        assert_eq!(grpc_code(&response), 0, "{case}: {response:?}");
    }
    let logs = server.logs();
    assert!(logs.contains("reload refused"), "{logs}");
    assert!(
        logs.contains("providers[0].required_scopes[0]"),
        "the refusal names the bad key:\n{logs}"
    );
    assert!(logs.contains("providers[0].jwks_file"), "{logs}");

    // Repaired, it reloads.
    std::fs::write(&server.config, &good).expect("write config");
    server.signal("HUP");
    wait_reloads(&server, "ok", 1.0);
    let response = check(&mut client, bearer_check(&token)).await;
    assert_eq!(grpc_code(&response), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_completes_in_flight_requests_and_exits_zero() {
    let config = format!(
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndrain_timeout_s = 5\n{EXAMPLE_PROVIDER}"
    );
    let mut server = Server::start(&config, &[("jwks.json", &example_jwks())]);
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "alice"));

    // An idle client connection (as Envoy keeps) must not hold up the exit.
    let mut idle = server.authz().await;
    assert_eq!(grpc_code(&check(&mut idle, bearer_check(&token)).await), 0);

    // A request in flight: headers and half the body sent before the signal, the rest after.
    let send = h2_connect(server.grpc).await;
    let mut ready = send.ready().await.expect("h2 ready");
    let (response, mut stream) = ready
        .send_request(grpc_head(server.grpc, CHECK_PATH, &[]), false)
        .expect("send request head");
    let frame = grpc_frame(&bearer_check(&token).encode_to_vec());
    let (first, rest) = frame.split_at(frame.len() / 2);
    stream
        .send_data(Bytes::copy_from_slice(first), false)
        .expect("first half");
    // Let the server start on the stream before the signal.
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.is_running(),
        "verdict exited with a request in flight; logs:\n{}",
        server.logs()
    );
    stream
        .send_data(Bytes::copy_from_slice(rest), true)
        .expect("the in-flight request can still send its body");
    let answer = tokio::time::timeout(CALL_TIMEOUT, read_raw_answer(response))
        .await
        .expect("in-flight answer timed out")
        .expect("in-flight request answered");
    assert_eq!(answer.grpc_status.as_deref(), Some("0"), "{answer:?}");
    let decoded = CheckResponse::decode(answer.body.get(5..).expect("a framed message"))
        .expect("CheckResponse");
    assert_eq!(grpc_code(&decoded), 0, "the in-flight check was allowed");
    drop(ready);

    // Nothing is in flight any more: the exit follows promptly, well inside the drain timeout.
    let finished = Instant::now();
    let status = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(8)));
    let status = status.unwrap_or_else(|| {
        panic!(
            "verdict did not exit within the drain timeout; logs:\n{}",
            server.logs()
        )
    });
    assert!(status.success(), "exit status {status:?}");
    assert!(
        finished.elapsed() < Duration::from_secs(3),
        "exit took {:?} after the last request finished",
        finished.elapsed()
    );
    drop(stream);
    drop(idle);
    let logs = server.logs();
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(!logs.contains("drain timed out"), "{logs}");
    assert!(logs.contains("\"stopped\""), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_the_drain_timeout_despite_a_silent_connection() {
    // A TCP connection that never sends the HTTP/2 preface is not a request, but the HTTP/2
    // layer (hyper) waits for its handshake; the drain timeout bounds that wait.
    let config = format!(
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndrain_timeout_s = 2\n{EXAMPLE_PROVIDER}"
    );
    let mut server = Server::start(&config, &[("jwks.json", &example_jwks())]);
    let silent = std::net::TcpStream::connect(server.grpc).expect("silent connection");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.open_connections() < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server.open_connections(),
        1.0,
        "the silent connection was not accepted"
    );
    let started = Instant::now();
    server.signal("TERM");
    let status = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(10)))
        .unwrap_or_else(|| panic!("verdict did not exit; logs:\n{}", server.logs()));
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "exit took {:?} with drain_timeout_s = 2",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_only_idle_connections_exits_promptly() {
    let mut server = example_server();
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "alice"));
    let mut idle = server.authz().await;
    assert_eq!(grpc_code(&check(&mut idle, bearer_check(&token)).await), 0);
    let started = Instant::now();
    server.signal("TERM");
    let status = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(15)))
        .unwrap_or_else(|| panic!("verdict did not exit; logs:\n{}", server.logs()));
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an idle keep-alive connection held the exit for {:?}",
        started.elapsed()
    );
    drop(idle);
}

#[tokio::test]
async fn healthz_and_readyz_report_a_ready_provider() {
    let server = example_server();
    let (status, body) = server.admin_get("/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = server.admin_get("/readyz");
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).expect("readyz JSON");
    assert_eq!(ready["ready"], true, "{ready}");
    let providers = ready["providers"].as_array().expect("providers");
    assert_eq!(providers.len(), 1, "{ready}");
    assert_eq!(providers[0]["name"], "corp");
    assert_eq!(providers[0]["ready"], true);
    assert_eq!(providers[0]["keys"], 1);
}

#[tokio::test]
async fn readyz_is_503_while_a_provider_has_no_usable_key() {
    let enc_only = String::from_utf8(example_jwks())
        .expect("utf-8")
        .replace("\"use\": \"sig\"", "\"use\": \"enc\"");
    assert!(
        enc_only.contains("\"enc\""),
        "the example JWKS changed shape"
    );
    let config = format!(
        r#"{EXAMPLE_PROVIDER}
[[providers]]
name = "sealed"
issuer = "https://sealed.example.com"
jwks_file = "enc.jwks.json"
algorithms = ["RS256"]
"#
    );
    let server = Server::start(
        &config,
        &[
            ("jwks.json", &example_jwks()),
            ("enc.jwks.json", enc_only.as_bytes()),
        ],
    );
    let (status, body) = server.admin_get("/readyz");
    assert_eq!(status, 503, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).expect("readyz JSON");
    assert_eq!(ready["ready"], false);
    let providers = ready["providers"].as_array().expect("providers");
    let by_name = |name: &str| {
        providers
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed in {ready}"))
            .clone()
    };
    assert_eq!(by_name("corp")["ready"], true);
    assert_eq!(by_name("sealed")["ready"], false);
    assert_eq!(by_name("sealed")["keys"], 0);
    let (status, _) = server.admin_get("/healthz");
    assert_eq!(status, 200, "liveness is not readiness");

    // Its tokens are denied for want of keys; the other provider is unaffected.
    let key = TestKey::example_rsa();
    let mut client = server.authz().await;
    let sealed = key.mint(&claims("https://sealed.example.com", AUD, "alice"));
    let response = check(&mut client, bearer_check(&sealed)).await;
    assert_eq!(grpc_code(&response), 16, "{response:?}");
    assert_eq!(
        server.metric_where(
            "verdict_checks_total",
            &[
                ("result", "deny"),
                ("reason", "no_keys"),
                ("provider", "sealed")
            ]
        ),
        Some(1.0),
        "{}",
        server.metrics_text()
    );
    let corp = key.mint(&claims(ISS, AUD, "alice"));
    assert_eq!(grpc_code(&check(&mut client, bearer_check(&corp)).await), 0);
    // The key-set gauge (published every second) says the same.
    let keys = |provider: &str, want: f64| {
        server.wait_metric(
            "verdict_keyset_keys",
            &[("provider", provider)],
            |v| v == want,
            Duration::from_secs(5),
        )
    };
    assert_eq!(keys("sealed", 0.0), Some(0.0));
    assert_eq!(keys("corp", 1.0), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_parse_and_never_contain_a_token() {
    use verdict::rpc::proto::VerifyRequest;
    use verdict::rpc::proto::verifier_client::VerifierClient;
    // Trace level: everything any layer (verdict, tonic, hyper, h2) can log.
    let server = Server::start_with_env(
        EXAMPLE_PROVIDER,
        &[("jwks.json", &example_jwks())],
        &[],
        &[("RUST_LOG", "trace")],
    );
    let key = TestKey::example_rsa();
    let now = now();
    let tokens = vec![
        key.mint(&claims(ISS, AUD, "alice")),
        key.mint(
            &json!({"iss": ISS, "aud": AUD, "sub": "x", "iat": now - 7200, "exp": now - 3600}),
        ),
        key.mint(&claims(ISS, "api://elsewhere", "alice")),
        tamper_signature(&key.mint(&claims(ISS, AUD, "alice"))),
        alg_none(&claims(ISS, AUD, "alice")),
        format!("{}.not-base64!", key.mint(&claims(ISS, AUD, "alice"))),
        format!("eyJ{}", "A".repeat(20_000)),
    ];
    let mut client = server.authz().await;
    let mut verifier = VerifierClient::new(connect(server.grpc).await);
    for token in &tokens {
        let _ = check(&mut client, bearer_check(token)).await;
        let _ = verifier
            .verify(VerifyRequest {
                token: token.clone(),
                provider: String::new(),
            })
            .await
            .expect("verify");
    }
    // A reload and a refused reload log too.
    server.signal("HUP");
    wait_reloads(&server, "ok", 1.0);
    std::fs::write(&server.config, "[server\nnot toml").expect("write config");
    server.signal("HUP");
    wait_reloads(&server, "error", 1.0);

    let logs = server.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{logs}");
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(event.is_object(), "{line}");
        assert!(event.get("level").is_some(), "no level: {line}");
        assert!(event.get("timestamp").is_some(), "no timestamp: {line}");
    }
    for token in &tokens {
        for part in token.split('.').filter(|p| p.len() >= 16) {
            assert!(
                !logs.contains(part),
                "a log line contains part of a token ({part}):\n{logs}"
            );
        }
    }
}

fn check_config(file: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_verdict"))
        .arg("check-config")
        // The reference names IdPs on the internet; tests only talk to loopback.
        .arg("--offline")
        .arg(file)
        .output()
        .expect("run verdict check-config")
}

#[test]
fn check_config_accepts_the_reference_and_names_the_bad_key() {
    let full = repo().join("tests/data/config/full.toml");
    let out = check_config(&full);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{out:?}"
    );

    let reference = std::fs::read_to_string(&full).expect("full.toml");
    let scratch = Scratch::new("check-config");
    scratch.write("jwks.json", &example_jwks());
    for (case, text, key) in [
        (
            "value out of range",
            reference.replace("workers = 4", "workers = 5000"),
            "server.workers",
        ),
        (
            "unknown key",
            reference.replace("workers = 4", "wrokers = 4"),
            "server.wrokers",
        ),
        (
            "bad algorithm",
            reference.replace(
                "algorithms = [\"RS256\", \"ES256\", \"EdDSA\"]",
                "algorithms = [\"RS256\", \"XS999\"]",
            ),
            "providers[0].algorithms[1]",
        ),
        (
            "missing required key",
            "[[providers]]\nname = \"a\"\njwks_file = \"jwks.json\"\n".to_owned(),
            "providers[0].issuer",
        ),
    ] {
        assert!(
            case == "missing required key" || text != reference,
            "{case}: full.toml changed shape"
        );
        let file = scratch.write("broken.toml", text.as_bytes());
        let out = check_config(&file);
        assert!(!out.status.success(), "{case}: accepted: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(key),
            "{case}: {stderr:?} does not name {key}"
        );
    }
    let out = check_config(&scratch.0.join("does-not-exist.toml"));
    assert!(!out.status.success());
}

/// Kills the demo child on drop (a failing assertion must not leave it holding the ports).
struct DemoChild(Child);

impl Drop for DemoChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn demo_prints_a_token_that_authz_allows() {
    // The demo's ports are fixed; fail loudly (never skip) when something else holds them.
    for port in [9191, 9901] {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            panic!(
                "the demo test needs 127.0.0.1:{port} free (verdict serve without a config \
                 binds 127.0.0.1:9191 and 127.0.0.1:9901), but binding it failed: {e}"
            );
        }
    }
    let home = Scratch::new("demo-home");
    let mut child = DemoChild(
        Command::new(env!("CARGO_BIN_EXE_verdict"))
            .arg("serve")
            .env("HOME", &home.0)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn verdict serve (demo)"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let stderr = child.0.stderr.take().expect("stderr");
    let errors = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = Arc::clone(&errors);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut errors = sink.lock().expect("lock");
            errors.push_str(&line);
            errors.push('\n');
        }
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut command: Option<String> = None;
    while command.is_none() && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if line.contains(" authz ") {
                    command = Some(line.clone());
                }
                banner.push(line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.0.try_wait() {
                    panic!(
                        "the demo exited ({status}) before printing its banner; stderr:\n{}",
                        errors.lock().expect("lock")
                    );
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let command = command.unwrap_or_else(|| {
        panic!(
            "no authz command in the demo banner:\n{}\nstderr:\n{}",
            banner.join("\n"),
            errors.lock().expect("lock")
        )
    });
    let banner_text = banner.join("\n");
    assert!(banner_text.contains("Sample token"), "{banner_text}");

    // `... authz --addr 127.0.0.1:9191 TOKEN`
    let words: Vec<&str> = command.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "--addr")
        .expect("--addr in the authz command");
    let addr = *words.get(at + 1).expect("address");
    let token = *words.last().expect("token");
    assert_eq!(addr, "127.0.0.1:9191", "{command}");
    assert_eq!(token.split('.').count(), 3, "not a compact JWT: {token}");
    assert!(
        banner.iter().any(|l| l.trim() == token),
        "the sample token is printed on its own line:\n{banner_text}"
    );

    let authz = |token: &str| {
        Command::new(env!("CARGO_BIN_EXE_verdict"))
            .args(["authz", "--addr", addr, token])
            .output()
            .expect("run verdict authz")
    };
    let out = authz(token);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("authz prints JSON");
    assert_eq!(report["verdict"], "allowed", "{stdout}");
    assert_eq!(report["grpc_code"], 0);
    assert_eq!(report["headers"]["x-verdict-sub"], "demo-user", "{stdout}");

    let out = authz(&tamper_signature(token));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("denied"));

    // The demo's admin listener is up too.
    let (status, _) = http_get("127.0.0.1:9901".parse().expect("address"), "/readyz");
    assert_eq!(status, 200);

    // It stops cleanly on SIGTERM.
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut exit = None;
    while exit.is_none() && Instant::now() < deadline {
        exit = child.0.try_wait().expect("try_wait");
        std::thread::sleep(Duration::from_millis(20));
    }
    let exit = exit.expect("the demo did not exit on SIGTERM");
    assert!(exit.success(), "{exit:?}");
    assert!(
        !errors.lock().expect("lock").contains(token),
        "the demo logged its token"
    );
}
