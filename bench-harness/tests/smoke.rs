//! Smoke runs: every standard scenario in `bench-harness/scenarios/`, briefly, against a real
//! `verdict serve` that the harness spawns, must complete with zero transport errors and zero
//! unexpected verdicts. Also the other load shapes (verify-batch, open loop), every token kind
//! end to end, a SIGHUP action, and a scenario with an unknown action kind.
//!
//! The verdict binary is the newest of `target/{release,debug}/verdict`; when neither exists
//! it is built here with `cargo build -p verdict --bin verdict` (never skipped).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use verdict_load::scenario::Scenario;

/// Longest a single smoke run may take (signing, start-up, 1.3 s of load, shutdown).
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace().join(dir)
            }
        }
        None => workspace().join("target"),
    }
}

/// The newest built verdict binary, building a debug one if there is none.
fn verdict_bin() -> PathBuf {
    let newest = |dir: &Path| {
        ["release", "debug"]
            .iter()
            .map(|profile| dir.join(profile).join("verdict"))
            .filter(|p| p.is_file())
            .max_by_key(|p| {
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .unwrap_or(UNIX_EPOCH)
            })
    };
    if let Some(bin) = newest(&target_dir()) {
        return bin;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "verdict", "--bin", "verdict"])
        .current_dir(workspace())
        .status()
        .expect("run cargo build for the verdict binary");
    assert!(status.success(), "cargo build --bin verdict failed");
    newest(&target_dir()).expect("verdict binary after cargo build")
}

fn scratch(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "verdict-load-smoke-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    report: Option<Value>,
}

/// Runs `verdict-load run SCENARIO --spawn ...` briefly, bounded by [`RUN_LIMIT`].
fn smoke_run(scenario: &Path, extra: &[&str], dir: &Path) -> Outcome {
    let json = dir.join(format!(
        "{}.json",
        scenario
            .file_stem()
            .map_or("run".into(), |s| s.to_string_lossy().into_owned())
    ));
    let _ = std::fs::remove_file(&json);
    let mut command = Command::new(env!("CARGO_BIN_EXE_verdict-load"));
    command
        .arg("run")
        .arg(scenario)
        .arg("--spawn")
        .arg("--verdict-bin")
        .arg(verdict_bin())
        .args([
            "--warmup",
            "300ms",
            "--duration",
            "1s",
            "-c",
            "1",
            "-m",
            "4",
        ])
        .args(["--deadline", "30s", "--quiet", "--json"])
        .arg(&json)
        .args(extra);
    complete(command, &json, &scenario.display().to_string())
}

/// Runs a `verdict-load` command to completion, bounded by [`RUN_LIMIT`], and reads the JSON
/// report it wrote at `json` (if any).
fn complete(mut command: Command, json: &Path, what: &str) -> Outcome {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn verdict-load");
    let reader = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("verdict-load run {what} did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let report = std::fs::read_to_string(json)
        .ok()
        .map(|text| serde_json::from_str(&text).expect("the JSON report parses"));
    Outcome {
        code: status.code(),
        stdout,
        stderr,
        report,
    }
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn sum(v: &Value) -> u64 {
    v.as_object()
        .map_or(0, |m| m.values().map(count).sum::<u64>())
}

/// Asserts a clean run and returns the report's tally.
fn assert_clean(name: &str, outcome: &Outcome) -> Value {
    let context = format!(
        "{name}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        outcome.code, outcome.stdout, outcome.stderr
    );
    assert_eq!(outcome.code, Some(0), "{context}");
    let report = outcome.report.as_ref().expect("a JSON report");
    let results = &report["results"];
    let tally = results["tally"].clone();
    assert!(
        count(&results["requests"]) > 0,
        "no request answered: {context}"
    );
    assert_eq!(sum(&tally["unexpected"]), 0, "{context}");
    assert_eq!(sum(&tally["transport"]), 0, "{context}");
    assert!(results["aborted"].is_null(), "{context}");
    assert!(
        results["server_cpu_s"].as_f64().is_some(),
        "server CPU accounted: {context}"
    );
    assert!(outcome.stdout.contains("throughput"), "{context}");
    tally
}

/// The standard scenarios, with their pools cut down so a debug build signs them at once.
#[test]
fn every_standard_scenario_completes_cleanly() {
    let dir = scratch("standard");
    let scenarios_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&scenarios_dir)
        .expect("scenarios dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
        .collect();
    for expected in [
        "eddsa-distinct",
        "es256-distinct",
        "noop-baseline",
        "realistic-mix",
        "rs256-distinct",
        "rs256-repeated",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing");
    }
    for file in &files {
        let scenario = Scenario::load(file).expect("scenario parses");
        scenario.validate().expect("scenario is valid");
        let distinct = scenario.tokens.distinct.min(20).to_string();
        let mut extra = vec!["--distinct", distinct.as_str(), "--new-pool", "20"];
        if scenario.name == "realistic-mix" {
            // A request count, so that even a slow machine sends enough for the 5% kinds.
            extra.extend(["--requests", "400"]);
        }
        let outcome = smoke_run(file, &extra, &dir);
        let tally = assert_clean(&scenario.name, &outcome);
        let tokens = count(&tally["tokens"]);
        match scenario.name.as_str() {
            "noop-baseline" => {
                assert_eq!(count(&tally["denied"]["missing_credential"]), tokens);
            }
            "realistic-mix" => {
                assert!(count(&tally["allowed"]) > 0, "{tally}");
                assert!(count(&tally["denied"]["bad_signature"]) > 0, "{tally}");
            }
            _ => assert_eq!(count(&tally["allowed"]), tokens, "{tally}"),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Every token kind against the real server, over ext_authz and verify-batch, plus open loop
/// and a SIGHUP during the run.
#[test]
fn every_token_kind_and_load_shape_against_verdict() {
    let dir = scratch("kinds");
    let mix = r#"
name = "every-kind"
[tokens]
algorithms = { RS256 = 1, ES256 = 1, EdDSA = 1 }
distinct = 12
new = 0.1
new_pool = 12
invalid = 0.1
expired = 0.1
unknown_kid = 0.1
revoked = 0.1
"#;
    let plain = dir.join("kinds.toml");
    std::fs::write(&plain, mix).expect("write scenario");
    // The same mix with a SIGHUP 0.3 s into the measurement (run in open loop, whose length
    // does not depend on the machine's speed).
    let with_action = dir.join("kinds-sighup.toml");
    std::fs::write(
        &with_action,
        format!("{mix}\n[[actions]]\nat_s = 0.3\nkind = \"sighup\"\n"),
    )
    .expect("write scenario");

    // Request counts rather than durations: 10% of 200 leaves no kind out, however slow the
    // machine.
    for (scenario, extra) in [
        (&plain, vec!["--requests", "200"]),
        (
            &plain,
            vec![
                "--requests",
                "100",
                "--rpc",
                "verify-batch",
                "--batch-size",
                "8",
            ],
        ),
        (&with_action, vec!["--requests", "200", "--rate", "150"]),
    ] {
        let name = format!("every-kind {extra:?}");
        let outcome = smoke_run(scenario, &extra, &dir);
        let tally = assert_clean(&name, &outcome);
        for reason in ["bad_signature", "expired", "unknown_key"] {
            assert!(count(&tally["denied"][reason]) > 0, "{name}: {tally}");
        }
        assert!(count(&tally["allowed"]) > 0, "{name}: {tally}");
        assert!(
            count(&tally["revoked_not_enforced"]) + count(&tally["revoked_enforced"]) > 0,
            "{name}: {tally}"
        );
        let report = outcome.report.as_ref().expect("report");
        if extra.contains(&"--rate") {
            assert_eq!(report["results"]["mode"], "open");
            let rate = report["results"]["rate"].as_f64().expect("rate");
            assert!((120.0..180.0).contains(&rate), "{name}: {rate} req/s");
            let action = &report["results"]["actions"][0];
            assert_eq!(action["kind"], "sighup", "{name}");
            assert_eq!(action["result"], "ok", "{name}: {action}");
        }
        if extra.contains(&"--rpc") {
            let tokens = count(&tally["tokens"]);
            let requests = count(&report["results"]["requests"]);
            assert_eq!(tokens, requests * 8, "{name}");
        }
    }

    // An action kind that does not exist yet is refused before anything starts.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad\"\n[[actions]]\nat_s = 1\nkind = \"rotate_keys\"\n",
    )
    .expect("write");
    let outcome = smoke_run(&bad, &[], &dir);
    assert_eq!(outcome.code, Some(1), "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains("actions[0].kind: unknown action kind `rotate_keys`"),
        "{}",
        outcome.stderr
    );
    assert!(outcome.report.is_none());
    let _ = std::fs::remove_dir_all(dir);
}

/// `--tokens-file` against a verdict started from a `prepare`d work directory (the tokens of
/// `prepare --tokens-out`, which the harness did sign, stand in for an identity provider's):
/// every token allowed and counted by source; a tampered token in the file makes the run
/// dirty; a mix the file cannot honour is refused.
#[test]
fn a_tokens_file_against_a_running_verdict() {
    let dir = scratch("tokens-file");
    let work = dir.join("work");
    let tokens = dir.join("tokens.txt");
    let prepare = Command::new(env!("CARGO_BIN_EXE_verdict-load"))
        .args(["prepare", "--work-dir"])
        .arg(&work)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args([
            "--workers",
            "1",
            "--distinct",
            "6",
            "--alg",
            "RS256=1,ES256=1",
        ])
        .args([
            "--distribution",
            "sequential",
            "--tokens",
            "6",
            "--tokens-out",
        ])
        .arg(&tokens)
        .output()
        .expect("run verdict-load prepare");
    assert!(
        prepare.status.success(),
        "{}",
        String::from_utf8_lossy(&prepare.stderr)
    );
    let mut server = verdict_load::spawn::Spawned::start(&verdict_load::spawn::SpawnOptions {
        bin: verdict_bin(),
        config: work.join("verdict.toml"),
        cpus: None,
        startup_timeout: Duration::from_secs(30),
    })
    .expect("verdict starts");
    let target = server.grpc.to_string();
    let run = |file: &Path, extra: &[&str], name: &str| {
        let json = dir.join(format!("{name}.json"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_verdict-load"));
        command
            .args(["run", "--target", &target, "--tokens-file"])
            .arg(file)
            .args(["--warmup", "0s", "--requests", "120", "-c", "1", "-m", "4"])
            .args(["--deadline", "30s", "--quiet", "--json"])
            .arg(&json)
            .args(extra);
        complete(command, &json, name)
    };

    // Clean: every token allowed, both algorithms counted as sources, re-read or not.
    for (name, extra) in [
        ("once", vec![]),
        ("reread", vec!["--tokens-reload-ms", "20"]),
        ("batch", vec!["--rpc", "verify-batch", "--batch-size", "4"]),
    ] {
        let outcome = run(&tokens, &extra, name);
        let context = format!("{name}: {}\n{}", outcome.stdout, outcome.stderr);
        assert_eq!(outcome.code, Some(0), "{context}");
        assert!(outcome.stdout.contains("token source"), "{context}");
        let report = outcome.report.as_ref().expect("report");
        let results = &report["results"];
        let tally = &results["tally"];
        assert_eq!(
            count(&tally["allowed"]),
            count(&tally["tokens"]),
            "{context}"
        );
        assert_eq!(sum(&tally["unexpected"]) + sum(&tally["transport"]), 0);
        let file = &results["tokens_file"];
        assert_eq!(count(&file["initial_tokens"]), 6, "{context}");
        assert_eq!(count(&file["tokens"]), 6, "{context}");
        let sources = file["sources"].as_array().expect("sources");
        let algs: Vec<&str> = sources.iter().filter_map(|s| s["alg"].as_str()).collect();
        assert_eq!(algs.len(), 2, "{context}");
        assert!(
            algs.contains(&"RS256") && algs.contains(&"ES256"),
            "{context}"
        );
        let sent: u64 = sources.iter().map(|s| count(&s["requests"])).sum();
        assert_eq!(sent, count(&tally["tokens"]), "{context}");
        assert!(
            sources
                .iter()
                .all(|s| s["allowed"] == s["requests"] && s["added"] == false),
            "{context}"
        );
        assert_eq!(
            file["reload_ms"].as_u64(),
            extra.contains(&"--tokens-reload-ms").then_some(20),
            "{context}"
        );
    }

    // A tampered token is denied: an unexpected verdict, exit status 2.
    let text = std::fs::read_to_string(&tokens).expect("tokens");
    let first = text.lines().next().expect("a token");
    let tampered = dir.join("tampered.txt");
    std::fs::write(
        &tampered,
        format!(
            "{text}\n{}\n",
            verdict_load::tokens::tamper_signature(first)
        ),
    )
    .expect("write");
    let outcome = run(&tampered, &[], "tampered");
    assert_eq!(outcome.code, Some(2), "{}", outcome.stderr);
    let report = outcome.report.as_ref().expect("report");
    assert!(
        sum(&report["results"]["tally"]["unexpected"]) > 0,
        "{report}"
    );

    // The file's tokens are all expected valid: a mix with other kinds is refused.
    let outcome = run(&tokens, &["--invalid", "0.1"], "refused");
    assert_eq!(outcome.code, Some(1), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("invalid"), "{}", outcome.stderr);

    server.stop(Duration::from_secs(10)).expect("verdict stops");
    let _ = std::fs::remove_dir_all(dir);
}
