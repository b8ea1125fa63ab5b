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
    /// Verify one JWT offline against a JWKS file and print the verdict, reason and claims as
    /// JSON. Exit 0 valid, 1 invalid, 2 usage or input error.
    Verify(VerifyArgs),
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

fn run_verify(args: &VerifyArgs) -> ExitCode {
    let token = if args.token == "-" {
        let mut input = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut input) {
            return usage_error(&format!("cannot read the token from standard input: {e}"));
        }
        input
    } else {
        args.token.clone()
    };
    let token = token.trim();
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
                "kid": verified.header.kid,
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
