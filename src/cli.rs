//! The `verdict` command line.
#![forbid(unsafe_code)]

use crate::crypto::default_backend;
use crate::jose::{Algorithm, ClaimRules, Limits};
use crate::keys::KeySet;
use crate::policy::{TokenPolicy, verify_token};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// Exit status: the token is valid.
pub const EXIT_VALID: u8 = 0;
/// Exit status: the token is invalid.
pub const EXIT_INVALID: u8 = 1;
/// Exit status: usage or input error.
pub const EXIT_USAGE: u8 = 2;

/// verdict: token and signature verification for API gateways.
#[derive(Debug, Parser)]
#[command(name = "verdict", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the appliance. Without --config, starts an embedded demo (a generated issuer key,
    /// loopback listeners) and prints a sample token and the command that checks it.
    Serve(ServeArgs),
    /// Validate a config file; exits non-zero with a message naming the bad key.
    CheckConfig(CheckConfigArgs),
    /// Send one ext_authz Check to a running verdict, as Envoy would, and print the answer.
    /// Exit 0 allowed, 1 denied, 2 usage or connection error.
    Authz(AuthzArgs),
    /// Inspect the host and print each tuning recommendation beside the current value.
    /// Nothing changes without --apply (root). Exit 0 when nothing needs changing, 1 otherwise.
    Tune(TuneArgs),
    /// Verify one JWT offline against a JWKS file and print the verdict, reason and claims as
    /// JSON. Exit 0 valid, 1 invalid, 2 usage or input error.
    Verify(VerifyArgs),
    /// Work with the decision audit log (`[audit] dir`).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print the CPU features that matter, whether io_uring works, each verification engine
    /// with the algorithms it passed its start-up probe for, and what the backend (`auto`
    /// unless `--config` says otherwise) chooses per algorithm with the measured ops/s (it runs
    /// the same probes and self-benchmark as `serve`).
    Engines(EnginesArgs),
}

/// Arguments of `verdict engines`.
#[derive(Debug, Args)]
pub struct EnginesArgs {
    /// Take `[crypto]` (backend, crypto_mb_library, openssl_*, auto_benchmark) from this
    /// config file; without it, `backend = "auto"` with `--crypto-mb-library`.
    #[arg(long, value_name = "FILE", conflicts_with = "crypto_mb_library")]
    pub config: Option<PathBuf>,
    /// The crypto_mb library to try (default: `libcrypto_mb.so` on the loader's search path).
    #[arg(long, value_name = "PATH")]
    pub crypto_mb_library: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Subcommands of `verdict audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check one audit file's hash chain (JSON, seq, prev links, hashes). Prints `ok: N lines`
    /// and exits 0 when intact; prints `FILE:LINE: why` for the first bad line and exits 1;
    /// exits 2 for usage or read errors. A truncated tail cannot be seen by the chain alone:
    /// compare the last hash printed with one kept elsewhere.
    Verify(AuditVerifyArgs),
}

/// Arguments of `verdict audit verify`.
#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// The audit file (`worker-<n>-<start>-<part>.jsonl`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Arguments of `verdict serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML config file (see README). Omit it for the embedded demo.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format: `text` or `json` (one JSON object per line). Overrides server.log_format.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<crate::telemetry::LogFormat>,
}

/// Arguments of `verdict check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The TOML config file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Do not try to reach the providers' IdPs (by default each remote key source is fetched
    /// once, and one that cannot be reached is a warning, not an error).
    #[arg(long)]
    pub offline: bool,
}

/// Arguments of `verdict authz`.
#[derive(Debug, Args)]
pub struct AuthzArgs {
    /// The verdict gRPC address.
    #[arg(long, default_value = "127.0.0.1:9191", value_name = "HOST:PORT")]
    pub addr: String,
    /// The request path Envoy would report.
    #[arg(long, default_value = "/", value_name = "PATH")]
    pub path: String,
    /// The token, sent as `authorization: Bearer TOKEN`; `-` reads standard input.
    #[arg(value_name = "TOKEN|-")]
    pub token: String,
}

/// Arguments of `verdict tune`.
#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Only report (the default).
    #[arg(long, conflicts_with = "apply")]
    pub check: bool,
    /// Write every recommended value that differs (needs root).
    #[arg(long)]
    pub apply: bool,
    /// The cores verdict's workers run on (e.g. `2-7`); IRQs are checked against them.
    #[arg(long, value_name = "CPU_LIST")]
    pub worker_cpus: Option<String>,
}

/// Arguments of `verdict verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The JWKS file holding the issuer's public keys.
    #[arg(long, value_name = "FILE")]
    pub jwks: PathBuf,
    /// Required `iss` (exact match). Not checked when omitted.
    #[arg(long, value_name = "ISSUER")]
    pub issuer: Option<String>,
    /// Accepted audience; repeat for several (any-of). Not checked when omitted.
    #[arg(long = "audience", value_name = "AUD")]
    pub audiences: Vec<String>,
    /// Clock skew tolerated on exp/nbf/iat, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub leeway: u64,
    /// Allowed algorithms, comma-separated (default: every asymmetric algorithm; HMAC only
    /// when named here).
    #[arg(long, value_delimiter = ',', value_name = "ALG,...")]
    pub algorithms: Vec<Algorithm>,
    /// Evaluate time rules at this Unix time instead of the system clock.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<u64>,
    /// The token, or `-` to read it from standard input.
    #[arg(value_name = "TOKEN|-")]
    pub token: String,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Verify(args) => run_verify(&args),
        Command::Serve(args) => crate::server::serve(crate::server::ServeOptions {
            config: args.config,
            log_format: args.log_format,
        }),
        Command::CheckConfig(args) => run_check_config(&args),
        Command::Authz(args) => run_authz(&args),
        Command::Tune(args) => run_tune(&args),
        Command::Audit(AuditCommand::Verify(args)) => run_audit_verify(&args),
        Command::Engines(args) => run_engines(&args),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("verdict: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn read_token(arg: &str) -> Result<String, ExitCode> {
    if arg == "-" {
        let mut input = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut input) {
            return Err(usage_error(&format!(
                "cannot read the token from standard input: {e}"
            )));
        }
        Ok(input.trim().to_owned())
    } else {
        Ok(arg.trim().to_owned())
    }
}

/// The CPU features that decide which engine code can run, from `/proc/cpuinfo`.
const CPU_FEATURES: [(&str, &str); 8] = [
    ("avx2", "avx2"),
    ("avx512f", "avx512f"),
    ("avx512vl", "avx512vl"),
    ("avx512bw", "avx512bw"),
    ("avx512ifma", "avx512ifma"),
    ("avx512vbmi2", "avx512_vbmi2"),
    ("sha_ni", "sha_ni"),
    ("vaes", "vaes"),
];

fn run_engines(args: &EnginesArgs) -> ExitCode {
    use crate::crypto::EngineChoice;
    let crypto = match &args.config {
        Some(file) => match crate::config::load(file) {
            Ok(config) => config.crypto,
            Err(error) => return usage_error(&error.to_string()),
        },
        None => crate::config::CryptoConfig {
            crypto_mb_library: args.crypto_mb_library.clone(),
            ..crate::config::CryptoConfig::default()
        },
    };
    let choice = match crypto.backend {
        crate::config::CryptoBackend::Auto => EngineChoice::Auto,
        crate::config::CryptoBackend::AwsLc => EngineChoice::AwsLc,
        crate::config::CryptoBackend::CryptoMb => EngineChoice::CryptoMb,
        crate::config::CryptoBackend::Openssl => EngineChoice::Openssl,
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .map(|rest| rest.split_whitespace().collect())
        .unwrap_or_default();
    let features: Vec<(&str, bool)> = CPU_FEATURES
        .iter()
        .map(|(name, flag)| (*name, flags.contains(flag)))
        .collect();
    let selection = crate::crypto::select(
        choice,
        crypto.crypto_mb_library.as_deref(),
        &crypto.openssl_options(),
        crypto.auto_benchmark,
    );
    let probes: Vec<Value> = selection
        .probes
        .iter()
        .map(|(family, result)| {
            let measured = selection.calibrations.iter().find(|c| c.family == *family);
            json!({
                "family": family.name(),
                "probe": result.as_ref().map_or_else(|why| why.clone(), |()| "passed".to_owned()),
                "aws_lc_ops_per_s": measured.map(|c| c.aws_lc_ops_per_s.round()),
                "crypto_mb_batch8_ops_per_s": measured.map(|c| c.crypto_mb_ops_per_s.round()),
                "min_batch": measured.map(|c| c.min_batch),
            })
        })
        .collect();
    let auto: Vec<Value> = selection
        .per_algorithm
        .iter()
        .map(|a| json!({"alg": a.alg.name(), "engine": a.engine, "detail": a.detail}))
        .collect();
    let crypto_mb = match &selection.crypto_mb {
        Some(Ok(path)) => json!({"loaded": true, "library": path}),
        Some(Err(why)) => json!({"loaded": false, "error": why}),
        None => json!({"loaded": false}),
    };
    let io_uring = crate::runtime::uring_probe::io_uring_works();
    let openssl = match &selection.openssl {
        Some(Ok(what)) => json!({"loaded": true, "what": what}),
        Some(Err(why)) => json!({"loaded": false, "error": why}),
        None => json!({"loaded": false}),
    };
    let openssl_algorithms: Vec<Value> = selection
        .openssl_probes
        .iter()
        .map(|(alg, result)| {
            let measured = selection
                .openssl_calibrations
                .iter()
                .find(|c| c.alg == *alg);
            json!({
                "alg": alg.name(),
                "probe": result.as_ref().map_or_else(|why| why.clone(), |by| format!("passed ({by})")),
                "aws_lc_ops_per_s": measured.map(|c| c.aws_lc_ops_per_s.round()),
                "openssl_ops_per_s": measured.map(|c| c.openssl_ops_per_s.round()),
            })
        })
        .collect();
    if args.json {
        let report = json!({
            "cpu": {"model": model, "features": features.iter().map(|(n, on)| (n.to_string(), Value::Bool(*on))).collect::<serde_json::Map<_, _>>()},
            "io_uring": match &io_uring {
                Ok(()) => json!({"works": true}),
                Err(why) => json!({"works": false, "error": why}),
            },
            "engines": {
                "aws-lc-rs": {"algorithms": Algorithm::ALL.iter().map(|a| a.name()).collect::<Vec<_>>()},
                "crypto-mb": {"status": crypto_mb, "families": probes},
                "openssl": {"status": openssl, "algorithms": openssl_algorithms},
            },
            "backend": crypto.backend.name(),
            "auto": auto,
        });
        println!("{report:#}");
        return ExitCode::from(EXIT_VALID);
    }
    println!("cpu: {model}");
    let shown: Vec<String> = features
        .iter()
        .map(|(name, on)| format!("{name}={}", if *on { "yes" } else { "no" }))
        .collect();
    println!("cpu features: {}", shown.join(" "));
    match &io_uring {
        Ok(()) => println!("io_uring: works"),
        Err(why) => println!("io_uring: unavailable: {why}"),
    }
    println!("engine aws-lc-rs: every algorithm");
    match &selection.crypto_mb {
        Some(Ok(path)) => println!("engine crypto-mb: loaded from {path}"),
        Some(Err(why)) => println!("engine crypto-mb: not available: {why}"),
        None => println!("engine crypto-mb: not tried"),
    }
    for probe in &probes {
        let field = |name: &str| probe.get(name).cloned().unwrap_or(Value::Null);
        let mut line = format!(
            "  {}: {}",
            field("family").as_str().unwrap_or(""),
            field("probe").as_str().unwrap_or("")
        );
        if let (Some(aws), Some(mb), Some(from)) = (
            field("aws_lc_ops_per_s").as_f64(),
            field("crypto_mb_batch8_ops_per_s").as_f64(),
            field("min_batch").as_u64(),
        ) {
            line.push_str(&format!(
                "; aws-lc-rs {aws:.0} ops/s single, crypto_mb {mb:.0} ops/s in calls of 8; \
                 auto uses it from batches of {from}"
            ));
        }
        println!("{line}");
    }
    match &selection.openssl {
        Some(Ok(what)) => println!("engine openssl: {what}"),
        Some(Err(why)) => println!("engine openssl: not available: {why}"),
        None => println!("engine openssl: not tried (no openssl_* key, backend not \"openssl\")"),
    }
    for algorithm in &openssl_algorithms {
        let field = |name: &str| algorithm.get(name).cloned().unwrap_or(Value::Null);
        let mut line = format!(
            "  {}: {}",
            field("alg").as_str().unwrap_or(""),
            field("probe").as_str().unwrap_or("")
        );
        if let (Some(aws), Some(ossl)) = (
            field("aws_lc_ops_per_s").as_f64(),
            field("openssl_ops_per_s").as_f64(),
        ) {
            line.push_str(&format!(
                "; aws-lc-rs {aws:.0} ops/s, openssl {ossl:.0} ops/s single"
            ));
        }
        println!("{line}");
    }
    println!("{}: {}", crypto.backend.name(), selection.summary());
    ExitCode::from(EXIT_VALID)
}

fn run_audit_verify(args: &AuditVerifyArgs) -> ExitCode {
    use crate::telemetry::audit::{VerifyError, hex, verify_chain};
    let file = match std::fs::File::open(&args.file) {
        Ok(file) => file,
        Err(e) => return usage_error(&format!("cannot open {}: {e}", args.file.display())),
    };
    match verify_chain(std::io::BufReader::new(file)) {
        Ok(verified) => {
            println!("ok: {} lines", verified.lines);
            if let Some(last) = verified.last_hash {
                println!("last hash: {}", hex(&last));
            }
            ExitCode::from(EXIT_VALID)
        }
        Err(VerifyError::BadLine { line, why }) => {
            println!("{}:{line}: {why}", args.file.display());
            ExitCode::from(EXIT_INVALID)
        }
        Err(VerifyError::Io(e)) => {
            usage_error(&format!("cannot read {}: {e}", args.file.display()))
        }
    }
}

fn run_tune(args: &TuneArgs) -> ExitCode {
    use crate::tune::{Host, Status, apply, inspect, parse_cpu_list, render};
    let worker_cpus = match args.worker_cpus.as_deref().map(parse_cpu_list) {
        None => Vec::new(),
        Some(Some(cpus)) => cpus,
        Some(None) => return usage_error("--worker-cpus: expected a CPU list such as 2-7 or 1,3"),
    };
    let host = Host::real();
    let checks = inspect(&host, &worker_cpus);
    print!("{}", render(&checks));
    if args.apply {
        let (written, errors) = apply(&checks);
        for file in &written {
            println!("wrote {}", file.display());
        }
        for error in &errors {
            eprintln!("verdict: {error}");
        }
        let after = inspect(&host, &worker_cpus);
        println!();
        print!("{}", render(&after));
        return ExitCode::from(if errors.is_empty() {
            EXIT_VALID
        } else {
            EXIT_INVALID
        });
    }
    let pending = checks.iter().filter(|c| c.status == Status::Change).count();
    if pending > 0 {
        println!();
        println!(
            "{pending} setting(s) differ; see tuning/README.md, or run `verdict tune --apply` as root."
        );
    }
    ExitCode::from(if pending == 0 {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
}

fn run_check_config(args: &CheckConfigArgs) -> ExitCode {
    match crate::config::load(&args.file) {
        Ok(config) => {
            for warning in config.warnings() {
                eprintln!("verdict: warning: {}: {warning}", args.file.display());
            }
            // An IdP that is down now is the IdP's problem, not the file's: a warning.
            let backend: std::sync::Arc<dyn crate::crypto::Backend> =
                std::sync::Arc::new(crate::crypto::default_backend());
            if !args.offline {
                for warning in crate::server::probe_remote(&config, &backend) {
                    eprintln!("verdict: warning: {}: {warning}", args.file.display());
                }
            }
            println!(
                "{}: ok ({} provider{})",
                args.file.display(),
                config.providers.len(),
                if config.providers.len() == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Err(error) => usage_error(&error.to_string()),
    }
}

fn run_authz(args: &AuthzArgs) -> ExitCode {
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    use envoy_types::pb::envoy::service::auth::v3::{
        AttributeContext, CheckRequest, attribute_context,
    };
    let token = match read_token(&args.token) {
        Ok(token) => token,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return usage_error(&format!("cannot start a runtime: {e}")),
    };
    let endpoint = format!("http://{}", args.addr);
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    method: "GET".into(),
                    path: args.path.clone(),
                    headers: [("authorization".to_owned(), format!("Bearer {token}"))]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let answer = runtime.block_on(async {
        let mut client = AuthorizationClient::connect(endpoint.clone()).await?;
        let response = client.check(request).await?;
        Ok::<_, Box<dyn std::error::Error>>(response.into_inner())
    });
    let response = match answer {
        Ok(response) => response,
        Err(e) => return usage_error(&format!("check against {endpoint} failed: {e}")),
    };
    let code = response.status.as_ref().map_or(-1, |s| s.code);
    let (verdict, http_status, headers) = match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => ("allowed", 200, ok.headers.clone()),
        Some(HttpResponse::DeniedResponse(denied)) => (
            "denied",
            denied.status.as_ref().map_or(0, |s| s.code),
            denied.headers.clone(),
        ),
        _ => ("denied", 0, Vec::new()),
    };
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .map(|h| (h.key.clone(), Value::String(h.value.clone())))
        .collect();
    let report = json!({
        "verdict": verdict,
        "grpc_code": code,
        "http_status": http_status,
        "headers": headers,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    ExitCode::from(if code == 0 { EXIT_VALID } else { EXIT_INVALID })
}

fn run_verify(args: &VerifyArgs) -> ExitCode {
    let token = match read_token(&args.token) {
        Ok(token) => token,
        Err(code) => return code,
    };
    let token = token.as_str();
    if token.is_empty() {
        return usage_error("no token given (pass it as an argument or `-` for standard input)");
    }
    let jwks = match std::fs::read(&args.jwks) {
        Ok(bytes) => bytes,
        Err(e) => return usage_error(&format!("cannot read {}: {e}", args.jwks.display())),
    };
    let mut policy = TokenPolicy {
        rules: ClaimRules {
            issuer: args.issuer.clone(),
            audiences: args.audiences.clone(),
            leeway_s: args.leeway,
            ..ClaimRules::default()
        },
        limits: Limits::default(),
        ..TokenPolicy::default()
    };
    if !args.algorithms.is_empty() {
        policy.algorithms = args.algorithms.clone();
    }
    let backend = default_backend();
    let keys = match KeySet::from_jwks(&jwks, &policy.algorithms, &backend) {
        Ok(keys) => keys,
        Err(e) => return usage_error(&format!("{}: {e}", args.jwks.display())),
    };
    for skipped in keys.skipped() {
        eprintln!(
            "verdict: {}: key #{} (kid {:?}) skipped: {}",
            args.jwks.display(),
            skipped.index,
            skipped.kid.as_deref().unwrap_or("-"),
            skipped.reason
        );
    }
    if keys.is_empty() {
        return usage_error(&format!(
            "{}: no usable verification key for algorithms {}",
            args.jwks.display(),
            policy
                .algorithms
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    let now = args.now.unwrap_or_else(unix_now);
    let (report, code) = match verify_token(token.as_bytes(), &policy, &keys, &backend, now) {
        Ok(verified) => (
            json!({
                "verdict": "valid",
                "reason": Value::Null,
                "alg": verified.header.alg.name(),
                "kid": verified.header.kid.as_deref(),
                "claims": Value::Object(verified.claims.into_members()),
            }),
            EXIT_VALID,
        ),
        Err(reason) => (
            json!({ "verdict": "invalid", "reason": reason.code() }),
            EXIT_INVALID,
        ),
    };
    match serde_json::to_string_pretty(&report) {
        Ok(text) => println!("{text}"),
        Err(e) => return usage_error(&format!("cannot render the result: {e}")),
    }
    ExitCode::from(code)
}
