//! `verdict verify`: the offline operator command, run as the real binary.

mod engines;
mod venv;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/example")
        .join(name)
}

fn example_token() -> String {
    std::fs::read_to_string(data("token.jwt"))
        .expect("example token")
        .trim()
        .to_owned()
}

fn verify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_verdict"))
        .arg("verify")
        .arg("--jwks")
        .arg(data("jwks.json"))
        .args(args)
        .output()
        .expect("run verdict")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

#[test]
fn valid_token_prints_claims_and_exits_0() {
    let token = example_token();
    let out = verify(&[
        "--issuer",
        "https://idp.example.com",
        "--audience",
        "api://orders",
        &token,
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json(&out);
    assert_eq!(report["verdict"], "valid");
    assert_eq!(report["reason"], serde_json::Value::Null);
    assert_eq!(report["alg"], "RS256");
    assert_eq!(report["kid"], "example-2026");
    assert_eq!(report["claims"]["sub"], "alice");
}

#[test]
fn invalid_tokens_exit_1_with_reason_code() {
    let token = example_token();
    let out = verify(&["--audience", "api://billing", &token]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["reason"], "wrong_audience");

    let out = verify(&["--now", "4102444900", &token]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["reason"], "expired");

    // Flip one character of the signature.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let out = verify(&[&tampered]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["reason"], "bad_signature");

    let out = verify(&["--algorithms", "ES256", &token]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no usable key is an input error"
    );
}

#[test]
fn reads_token_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["verify", "--jwks"])
        .arg(data("jwks.json"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{}", example_token()).expect("write token");
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["verdict"], "valid");
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["verify", "--jwks", "/nonexistent/jwks.json", "x.y.z"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/jwks.json"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["verify", "x.y.z"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing --jwks is a usage error"
    );

    let out = verify(&["--algorithms", "XS256", "x.y.z"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_lists_subcommands() {
    let out = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("verify"));
}

fn engines_json(library: &std::path::Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["engines", "--json", "--crypto-mb-library"])
        .arg(library)
        .output()
        .expect("run verdict");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    json(&out)
}

/// `verdict engines --json`: CPU features, crypto_mb's probes and measurements, auto's choice.
#[test]
fn engines_reports_cpu_probes_and_auto_choice() {
    let report = engines_json(std::path::Path::new("/nonexistent/libcrypto_mb.so"));
    assert!(
        report["cpu"]["features"]["avx512ifma"].is_boolean(),
        "{report}"
    );
    // io_uring: a yes or no, and why not.
    let io_uring = &report["io_uring"];
    assert!(
        io_uring["works"] == true || io_uring["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{report}"
    );
    assert_eq!(report["engines"]["crypto-mb"]["status"]["loaded"], false);
    assert!(
        report["engines"]["crypto-mb"]["status"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("/nonexistent/")),
        "{report}"
    );
    let auto = report["auto"].as_array().expect("auto choices");
    assert_eq!(auto.len(), 14);
    assert!(auto.iter().all(|a| a["engine"] == "aws-lc-rs"), "{report}");

    let runs = engines::crypto_mb().is_some();
    let report = engines_json(&engines::crypto_mb_library());
    assert_eq!(
        report["engines"]["crypto-mb"]["status"]["loaded"], runs,
        "{report}"
    );
    if runs {
        let families = report["engines"]["crypto-mb"]["families"]
            .as_array()
            .expect("families");
        assert_eq!(families.len(), 7, "{report}");
        for family in families {
            assert_eq!(family["probe"], "passed", "{family}");
            assert!(family["aws_lc_ops_per_s"].as_f64().is_some_and(|v| v > 0.0));
            assert!(
                family["crypto_mb_batch8_ops_per_s"]
                    .as_f64()
                    .is_some_and(|v| v > 0.0)
            );
        }
        let hs256 = auto_engine(&report, "HS256");
        assert_eq!(hs256, "aws-lc-rs");
        assert!(["crypto-mb", "aws-lc-rs"].contains(&auto_engine(&report, "RS256").as_str()));
    }
}

fn auto_engine(report: &serde_json::Value, alg: &str) -> String {
    report["auto"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["alg"] == alg))
        .and_then(|c| c["engine"].as_str())
        .expect("alg in auto")
        .to_owned()
}
