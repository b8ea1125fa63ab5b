//! `[crypto]` end to end: the real binary chooses its engines at start, logs one line naming
//! the engine of every algorithm, exports `verdict_engine_selected`, and answers checks on the
//! chosen engine; a library or OpenSSL provider that cannot be loaded leaves everything on
//! aws-lc-rs, and a provider that lacks an algorithm leaves that algorithm there.
#![allow(clippy::expect_used, reason = "test code: a panic is how a test fails")]

mod common;
mod engines;
mod venv;

use common::*;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use std::time::Duration;

/// Starts verdict with `crypto` as its `[crypto]` table and checks one good and one forged
/// RS256 token. Returns the server for further looks at its logs and metrics.
async fn serve_and_check(crypto: &str) -> Server {
    let config = format!("[crypto]\n{crypto}\n{EXAMPLE_PROVIDER}");
    let server = Server::start(&config, &[("jwks.json", &example_jwks())]);
    assert!(
        server.wait_for_log("signature engines", Duration::from_secs(10)),
        "no engine line in the log:\n{}",
        server.logs()
    );
    let token =
        TestKey::example_rsa().mint(&claims("https://idp.example.com", "api://orders", "alice"));
    let mut forged = token.clone().into_bytes();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    let mut client = AuthorizationClient::connect(server.grpc_url())
        .await
        .expect("connect");
    let ok = client
        .check(bearer_check(&token))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(ok.status.expect("status").code, 0, "{}", server.logs());
    let denied = client
        .check(bearer_check(&forged))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(denied.status.expect("status").code, 16);
    server
}

fn selected(server: &Server, alg: &str, engine: &str) -> Option<f64> {
    server.metric(&format!(
        "verdict_engine_selected{{alg=\"{alg}\",engine=\"{engine}\"}}"
    ))
}

#[tokio::test]
async fn crypto_mb_backend_serves_rsa_and_says_so() {
    let library = engines::crypto_mb_library();
    let runs = engines::crypto_mb().is_some();
    let server = serve_and_check(&format!(
        "backend = \"crypto-mb\"\ncrypto_mb_library = \"{}\"",
        library.display()
    ))
    .await;
    let logs = server.logs();
    let rs256 = if runs { "crypto-mb" } else { "aws-lc-rs" };
    assert!(logs.contains(&format!("RS256={rs256}")), "{logs}");
    assert!(logs.contains("HS256=aws-lc-rs"), "{logs}");
    assert_eq!(selected(&server, "RS256", rs256), Some(1.0), "{logs}");
    assert_eq!(selected(&server, "HS256", "aws-lc-rs"), Some(1.0));
    if runs {
        assert!(
            logs.contains("RS256=crypto-mb(RSA-2048 e=65537: every batch"),
            "{logs}"
        );
        assert_eq!(selected(&server, "ES256", "crypto-mb"), Some(1.0));
        assert_eq!(selected(&server, "EdDSA", "crypto-mb"), Some(1.0));
    } else {
        eprintln!("crypto_mb could not run here: the server fell back, as it must");
    }
}

#[tokio::test]
async fn auto_measures_and_names_the_batch_sizes() {
    let library = engines::crypto_mb_library();
    let runs = engines::crypto_mb().is_some();
    let server = serve_and_check(&format!(
        "backend = \"auto\"\ncrypto_mb_library = \"{}\"",
        library.display()
    ))
    .await;
    let logs = server.logs();
    assert!(
        logs.contains("backend=auto") || logs.contains("\"backend\":\"auto\""),
        "{logs}"
    );
    if runs {
        // Whatever the measurement says, each RSA/EC/Ed25519 choice is one of the two, and
        // a crypto-mb choice names its batch sizes.
        for alg in ["RS256", "ES256", "EdDSA"] {
            let mb = selected(&server, alg, "crypto-mb");
            let aws = selected(&server, alg, "aws-lc-rs");
            assert!(mb == Some(1.0) || aws == Some(1.0), "{alg}: {logs}");
        }
    }
}

#[tokio::test]
async fn auto_without_the_self_benchmark_takes_batches_of_three() {
    let library = engines::crypto_mb_library();
    let runs = engines::crypto_mb().is_some();
    let server = serve_and_check(&format!(
        "backend = \"auto\"\nauto_benchmark = false\ncrypto_mb_library = \"{}\"",
        library.display()
    ))
    .await;
    let logs = server.logs();
    if runs {
        assert!(logs.contains("auto_benchmark = false"), "{logs}");
        assert!(logs.contains("RSA-2048 e=65537: batches of 3+"), "{logs}");
        for alg in ["RS256", "ES256", "EdDSA"] {
            assert_eq!(
                selected(&server, alg, "crypto-mb"),
                Some(1.0),
                "{alg}: {logs}"
            );
        }
    }
}

#[tokio::test]
async fn a_missing_library_leaves_everything_on_aws_lc() {
    let server = serve_and_check(
        "backend = \"crypto-mb\"\ncrypto_mb_library = \"/nonexistent/libcrypto_mb.so\"",
    )
    .await;
    let logs = server.logs();
    assert!(
        logs.contains("cannot load crypto_mb from /nonexistent/"),
        "{logs}"
    );
    assert!(logs.contains("RS256=aws-lc-rs"), "{logs}");
    assert_eq!(selected(&server, "RS256", "aws-lc-rs"), Some(1.0));
    assert_eq!(selected(&server, "EdDSA", "aws-lc-rs"), Some(1.0));
}

/// `verdict engines --json` with the server's own config file.
fn engines_json(server: &Server) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["engines", "--json", "--config"])
        .arg(&server.config)
        .output()
        .expect("run verdict engines");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("engines --json prints JSON")
}

fn chosen(report: &serde_json::Value, alg: &str) -> String {
    report["auto"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["alg"] == alg))
        .and_then(|c| c["engine"].as_str())
        .unwrap_or_else(|| panic!("{alg} missing from {report}"))
        .to_owned()
}

#[tokio::test]
async fn openssl_backend_serves_rsa_and_says_so() {
    let server = serve_and_check("backend = \"openssl\"\nopenssl_provider = \"default\"").await;
    let logs = server.logs();
    assert!(logs.contains("RS256=openssl(provider default)"), "{logs}");
    assert!(logs.contains("HS256=aws-lc-rs"), "{logs}");
    for alg in ["RS256", "PS256", "ES256", "ES512", "EdDSA"] {
        assert_eq!(
            selected(&server, alg, "openssl"),
            Some(1.0),
            "{alg}: {logs}"
        );
    }
    assert_eq!(selected(&server, "HS256", "aws-lc-rs"), Some(1.0));
    let report = engines_json(&server);
    assert_eq!(report["backend"], "openssl", "{report}");
    assert_eq!(
        report["engines"]["openssl"]["status"]["loaded"], true,
        "{report}"
    );
    for alg in ["RS256", "RS512", "PS384", "ES256", "ES256K", "EdDSA"] {
        assert_eq!(chosen(&report, alg), "openssl", "{report}");
    }
    assert_eq!(chosen(&report, "HS256"), "aws-lc-rs");
    let probes = report["engines"]["openssl"]["algorithms"]
        .as_array()
        .expect("probes");
    assert_eq!(probes.len(), 11, "{report}");
    assert!(
        probes
            .iter()
            .all(|p| p["probe"] == "passed (provider default)"),
        "{report}"
    );
}

#[tokio::test]
async fn a_missing_openssl_provider_leaves_everything_on_aws_lc() {
    let server =
        serve_and_check("backend = \"openssl\"\nopenssl_provider = \"no-such-provider\"").await;
    let logs = server.logs();
    assert!(
        logs.contains("cannot load the OpenSSL provider") && logs.contains("no-such-provider"),
        "{logs}"
    );
    assert!(logs.contains("RS256=aws-lc-rs"), "{logs}");
    assert_eq!(selected(&server, "RS256", "aws-lc-rs"), Some(1.0));
    let report = engines_json(&server);
    let status = &report["engines"]["openssl"]["status"];
    assert_eq!(status["loaded"], false, "{report}");
    assert!(
        status["error"]
            .as_str()
            .is_some_and(|e| e.contains("no-such-provider")),
        "{report}"
    );
    assert_eq!(chosen(&report, "RS256"), "aws-lc-rs");
}

/// A provider that loads but lacks the signature algorithms (Debian's `legacy`): each
/// algorithm stays on aws-lc-rs with a warning saying why, and `verdict engines` shows each
/// failed probe.
#[tokio::test]
async fn a_provider_without_the_signatures_leaves_them_on_aws_lc() {
    let server = serve_and_check("backend = \"openssl\"\nopenssl_provider = \"legacy\"").await;
    let logs = server.logs();
    assert!(
        logs.contains("openssl RS256 stays on aws-lc-rs: the legacy provider has no RS256"),
        "{logs}"
    );
    assert!(logs.contains("RS256=aws-lc-rs"), "{logs}");
    assert_eq!(selected(&server, "RS256", "aws-lc-rs"), Some(1.0), "{logs}");
    assert_eq!(selected(&server, "EdDSA", "aws-lc-rs"), Some(1.0), "{logs}");
    let report = engines_json(&server);
    assert_eq!(
        report["engines"]["openssl"]["status"]["loaded"], true,
        "{report}"
    );
    let probes = report["engines"]["openssl"]["algorithms"]
        .as_array()
        .expect("probes");
    assert_eq!(probes.len(), 11, "{report}");
    assert!(
        probes.iter().all(|p| p["probe"]
            .as_str()
            .is_some_and(|why| why.contains("the legacy provider has no"))),
        "{report}"
    );
    assert_eq!(chosen(&report, "ES256"), "aws-lc-rs");
}
