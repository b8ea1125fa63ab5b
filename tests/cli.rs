//! `verdict verify`: the offline operator command, run as the real binary.

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
