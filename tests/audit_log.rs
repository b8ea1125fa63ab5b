//! The decision audit log against the real binary: `[audit] dir` set, allowed and denied
//! checks sent, a clean SIGTERM, then `verdict audit verify` on every file (intact: exit 0 and
//! one line per check), on a tampered copy and on a copy with a line deleted (exit 1 naming
//! the line); rotation by `max_file_bytes`; the usage errors; a directory verdict cannot
//! create fails the start.
mod common;

use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const ISS: &str = "https://idp.example.com";
const AUD: &str = "api://orders";
const UNAUTHENTICATED: i32 = 16;

fn audit_config(extra: &str) -> String {
    format!(
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\n\
         [audit]\ndir = \"audit\"\n{extra}\n{EXAMPLE_PROVIDER}"
    )
}

fn verify(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["audit", "verify"])
        .arg(file)
        .output()
        .expect("run verdict audit verify")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn audit_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the audit dir exists")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    files
}

/// The first 8 bytes of SHA-256 of `token`, in hex.
fn digest_prefix(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    hex::encode(&digest.as_ref()[..8])
}

/// Stops the server with SIGTERM and asserts it exits cleanly.
fn stop(server: &mut Server) {
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("verdict did not exit; logs:\n{}", server.logs()));
    assert!(status.success(), "{status:?}; logs:\n{}", server.logs());
}

/// Waits until `written` lines were counted as written (bounded).
fn wait_written(server: &Server, written: usize) {
    let seen = server.wait_metric(
        "verdict_audit_lines_total",
        &[("result", "written")],
        |v| v >= written as f64,
        Duration::from_secs(10),
    );
    assert_eq!(seen, Some(written as f64), "{}", server.metrics_text());
    assert_eq!(
        server.metric_where("verdict_audit_lines_total", &[("result", "dropped")]),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_is_chained_and_tampering_names_the_line() {
    let mut server = Server::start(&audit_config(""), &[("jwks.json", &example_jwks())]);
    let key = TestKey::example_rsa();
    // Two connections, so both workers are likely to write a file.
    let mut clients = [server.authz().await, server.authz().await];
    const CHECKS: usize = 16;
    let mut allowed_tokens = Vec::new();
    let mut denied_tokens = Vec::new();
    for i in 0..CHECKS {
        let client = &mut clients[i % 2];
        let good = key.mint(&claims(ISS, AUD, &format!("user-{i}")));
        match (i / 2) % 3 {
            0 => {
                let response = check(client, bearer_check(&good)).await;
                assert_eq!(grpc_code(&response), 0, "{response:?}");
                allowed_tokens.push((good, format!("user-{i}")));
            }
            1 => {
                let bad = tamper_signature(&good);
                let response = check(client, bearer_check(&bad)).await;
                assert_eq!(grpc_code(&response), UNAUTHENTICATED);
                denied_tokens.push(bad);
            }
            _ => {
                let response = check(client, envoy_check("/orders", &[])).await;
                assert_eq!(grpc_code(&response), UNAUTHENTICATED);
            }
        }
    }
    drop(clients);
    // SIGTERM right after the last answer: the lines still queued are written on the way out.
    tokio::task::block_in_place(|| stop(&mut server));
    assert!(
        server.logs().contains("audit file closed"),
        "{}",
        server.logs()
    );

    let dir = server.scratch.0.join("audit");
    let files = audit_files(&dir);
    assert_eq!(files.len(), 2, "one file per worker: {files:?}");
    let mut total = 0;
    let mut lines: Vec<Value> = Vec::new();
    let mut texts = Vec::new();
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            name.starts_with("worker-") && name.ends_with("-000000.jsonl"),
            "{name}"
        );
        let out = verify(file);
        let text = std::fs::read_to_string(file).expect("read audit file");
        let count = text.lines().count();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(
            stdout(&out).starts_with(&format!("ok: {count} lines\n")),
            "{out:?}"
        );
        total += count;
        lines.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("json")),
        );
        texts.push(text);
    }
    assert_eq!(total, CHECKS, "one line per check");

    // What the lines say, and what they never carry.
    let everything = texts.concat();
    for (token, sub) in &allowed_tokens {
        assert!(
            !everything.contains(token.as_str()),
            "a raw token was written"
        );
        let line = lines
            .iter()
            .find(|l| l["token_sha256"] == digest_prefix(token))
            .unwrap_or_else(|| panic!("no line for {sub}"));
        assert_eq!(line["decision"], "allow");
        assert_eq!(line["reason"], "ok");
        assert_eq!(line["provider"], "corp");
        assert_eq!(line["sub"], json!(sub));
        assert!(line["latency_us"].as_u64().is_some());
        assert!(line["time"].as_f64().is_some_and(|t| t > 1.7e9));
    }
    for token in &denied_tokens {
        assert!(
            !everything.contains(token.as_str()),
            "a raw token was written"
        );
        let line = lines
            .iter()
            .find(|l| l["token_sha256"] == digest_prefix(token))
            .expect("a line for the bad signature");
        assert_eq!(line["decision"], "deny");
        assert_eq!(line["reason"], "bad_signature");
        assert!(line.get("sub").is_none());
    }
    let missing: Vec<&Value> = lines
        .iter()
        .filter(|l| l["reason"] == "missing_credential")
        .collect();
    assert_eq!(
        missing.len(),
        CHECKS - allowed_tokens.len() - denied_tokens.len()
    );
    assert!(
        missing
            .iter()
            .all(|l| l.get("token_sha256").is_none() && l["decision"] == "deny")
    );

    // Tamper with a copy of the longest file: a "deny" in the middle becomes "allow".
    let (longest, text) = files
        .iter()
        .zip(&texts)
        .max_by_key(|(_, text)| text.lines().count())
        .expect("a file");
    let original: Vec<&str> = text.lines().collect();
    assert!(original.len() >= 4, "{} lines", original.len());
    let middle = original.len() / 2;
    let target = (1..original.len() - 1)
        .filter(|&i| original[i].contains("\"decision\":\"deny\""))
        .min_by_key(|&i| i.abs_diff(middle))
        .expect("a deny line that is neither the first nor the last");
    let mut tampered = original.clone();
    let edited = original[target].replace("\"decision\":\"deny\"", "\"decision\":\"allow\"");
    tampered[target] = &edited;
    let copy = server.scratch.0.join("tampered.jsonl");
    std::fs::write(&copy, format!("{}\n", tampered.join("\n"))).expect("write copy");
    let out = verify(&copy);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let line_number = target + 1;
    assert!(
        stdout(&out).starts_with(&format!("{}:{line_number}: ", copy.display())),
        "expected line {line_number}: {out:?}"
    );
    assert!(stdout(&out).contains("hash"), "{out:?}");

    // Delete a line in the middle: the line that takes its place is the first bad one.
    let mut shortened = original.clone();
    shortened.remove(middle);
    std::fs::write(&copy, format!("{}\n", shortened.join("\n"))).expect("write copy");
    let out = verify(&copy);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout(&out).starts_with(&format!("{}:{}: seq is", copy.display(), middle + 1)),
        "{out:?}"
    );

    // The originals still verify.
    assert_eq!(verify(longest).status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_rotate_by_size_and_each_verifies() {
    let mut server = Server::start(
        &audit_config("max_file_bytes = 4096"),
        &[("jwks.json", &example_jwks())],
    );
    let key = TestKey::example_rsa();
    let mut client = server.authz().await;
    const CHECKS: usize = 40;
    for i in 0..CHECKS {
        let token = key.mint(&claims(ISS, AUD, &format!("rotating-{i}")));
        assert_eq!(
            grpc_code(&check(&mut client, bearer_check(&token)).await),
            0
        );
    }
    drop(client);
    wait_written(&server, CHECKS);
    tokio::task::block_in_place(|| stop(&mut server));

    let files = audit_files(&server.scratch.0.join("audit"));
    let mut total = 0;
    let mut rotated = 0;
    for file in &files {
        let out = verify(file);
        assert_eq!(out.status.code(), Some(0), "{file:?}: {out:?}");
        let count = std::fs::read_to_string(file).expect("read").lines().count();
        assert!(stdout(&out).starts_with(&format!("ok: {count} lines")));
        total += count;
        let name = file.file_name().and_then(|n| n.to_str()).expect("name");
        if !name.ends_with("-000000.jsonl") {
            rotated += 1;
        }
    }
    assert_eq!(total, CHECKS);
    assert!(rotated >= 1, "no rotation: {files:?}");
}

#[test]
fn verify_usage_and_read_errors_exit_2() {
    let scratch = Scratch::new("audit-usage");
    let out = verify(&scratch.0.join("does-not-exist.jsonl"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does-not-exist.jsonl"));
    let out = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["audit", "verify"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let help = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&help.stdout).contains("audit"));
    // A directory is not a file.
    assert_eq!(verify(&scratch.0).status.code(), Some(2));
    // An empty file is an intact, empty chain.
    let empty = scratch.write("empty.jsonl", b"");
    let out = verify(&empty);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "ok: 0 lines\n");
    // Not JSON at all.
    let junk = scratch.write("junk.jsonl", b"{\"seq\":1}\nhello\n");
    let out = verify(&junk);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout(&out).starts_with(&format!("{}:1: ", junk.display())),
        "{out:?}"
    );
}

#[test]
fn an_audit_dir_that_cannot_be_created_fails_the_start() {
    let scratch = Scratch::new("audit-bad-dir");
    scratch.write("jwks.json", &example_jwks());
    // A regular file where the directory should be.
    scratch.write("audit", b"not a directory");
    let config = scratch.write(
        "verdict.toml",
        audit_config("")
            .replace("workers = 2", "workers = 1")
            .as_bytes(),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn verdict serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("verdict served with an unusable audit dir");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("audit.dir"), "{stderr}");
}
