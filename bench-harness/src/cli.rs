//! The `verdict-load` command line: `run`, `prepare`, `plot`, `table`.

use crate::load::{self, LoadPlan};
use crate::plot::{PlotOptions, render_svg};
use crate::report::{ClientInfo, Machine, Report, Results, ServerInfo, comparison_table};
use crate::scenario::{Alg, Credential, Distribution, Dur, RpcKind, Scenario, parse_duration};
use crate::setup::{ServerSettings, WorkDir};
use crate::spawn::{SpawnOptions, Spawned, default_verdict_bin, parse_cpu_list, verdict_version};
use crate::tokens::{PoolSource, TokenPool};
use crate::tokens_file::TokenFile;
use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand};
use rand::SeedableRng;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Exit status: the run completed but with transport errors, unexpected verdicts, a failed
/// action, an early stop or a server that died.
pub const EXIT_DIRTY: u8 = 2;
/// Exit status: the run could not be set up.
pub const EXIT_FAILED: u8 = 1;

/// Load generator for verdict: ext_authz Check or verdict.v1 VerifyBatch over gRPC, closed or
/// open loop, with token mixes signed by its own keys or tokens read from a file.
#[derive(Debug, Parser)]
#[command(name = "verdict-load", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario against a running verdict (--target) or one it starts (--spawn).
    Run(RunArgs),
    /// Write keys, JWKS, verdict config and revocation list into a work directory (and
    /// optionally a token sequence), for --target runs and other load tools.
    Prepare(PrepareArgs),
    /// Draw the latency percentile curves of one or more JSON reports into one SVG.
    Plot(PlotArgs),
    /// Print one comparison row per JSON report.
    Table(TableArgs),
}

/// Values that override the scenario file.
#[derive(Debug, Clone, Default, Args)]
pub struct Overrides {
    /// RPC: check (ext_authz v3) or verify-batch (verdict.v1).
    #[arg(long, value_parser = parse_rpc)]
    pub rpc: Option<RpcKind>,
    /// Tokens per VerifyBatch call.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// HTTP/2 connections.
    #[arg(short = 'c', long)]
    pub connections: Option<usize>,
    /// Concurrent streams per connection.
    #[arg(short = 'm', long)]
    pub streams: Option<usize>,
    /// Open loop at this many requests/s in total (0 = closed loop).
    #[arg(short = 'r', long)]
    pub rate: Option<f64>,
    /// Warm-up, excluded from the results (e.g. 2s).
    #[arg(long, value_parser = parse_dur)]
    pub warmup: Option<Dur>,
    /// Measured duration (e.g. 10s).
    #[arg(short = 'd', long, value_parser = parse_dur)]
    pub duration: Option<Dur>,
    /// Measure this many requests instead of a duration.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Per-request timeout.
    #[arg(long, value_parser = parse_dur)]
    pub timeout: Option<Dur>,
    /// Hard stop, from the start of the load.
    #[arg(long, value_parser = parse_dur)]
    pub deadline: Option<Dur>,
    /// Algorithm weights, replacing the scenario's: RS256=6,ES256=3,EdDSA=1 (repeatable).
    #[arg(long = "alg", value_delimiter = ',')]
    pub algorithms: Vec<String>,
    /// Credential: bearer, or none (the cheapest deny path).
    #[arg(long, value_parser = parse_credential)]
    pub credential: Option<Credential>,
    /// Distinct valid (repeated) tokens.
    #[arg(long)]
    pub distinct: Option<usize>,
    /// uniform, zipf or sequential.
    #[arg(long, value_parser = parse_distribution)]
    pub distribution: Option<Distribution>,
    /// Zipf exponent s.
    #[arg(long)]
    pub zipf_exponent: Option<f64>,
    /// Fraction of requests with never-seen-before valid tokens.
    #[arg(long)]
    pub new: Option<f64>,
    /// Tokens pre-signed for --new.
    #[arg(long)]
    pub new_pool: Option<usize>,
    /// Fraction with a bad signature.
    #[arg(long)]
    pub invalid: Option<f64>,
    /// Fraction of expired tokens.
    #[arg(long)]
    pub expired: Option<f64>,
    /// Fraction signed under a kid the JWKS lacks.
    #[arg(long)]
    pub unknown_kid: Option<f64>,
    /// Fraction of revoked tokens (jti in revoked.jti; not enforced by verdict yet).
    #[arg(long)]
    pub revoked: Option<f64>,
    /// Lifetime of the valid tokens.
    #[arg(long, value_parser = parse_dur)]
    pub lifetime: Option<Dur>,
    /// Seed of token assignment and sampling.
    #[arg(long)]
    pub seed: Option<u64>,
}

fn parse_dur(s: &str) -> Result<Dur, String> {
    parse_duration(s).map(Dur)
}

fn parse_rpc(s: &str) -> Result<RpcKind, String> {
    match s {
        "check" => Ok(RpcKind::Check),
        "verify-batch" | "batch" => Ok(RpcKind::VerifyBatch),
        _ => Err(format!("`{s}`: expected check or verify-batch")),
    }
}

fn parse_credential(s: &str) -> Result<Credential, String> {
    match s {
        "bearer" => Ok(Credential::Bearer),
        "none" => Ok(Credential::None),
        _ => Err(format!("`{s}`: expected bearer or none")),
    }
}

fn parse_distribution(s: &str) -> Result<Distribution, String> {
    match s {
        "uniform" => Ok(Distribution::Uniform),
        "zipf" => Ok(Distribution::Zipf),
        "sequential" => Ok(Distribution::Sequential),
        _ => Err(format!("`{s}`: expected uniform, zipf or sequential")),
    }
}

impl Overrides {
    /// Applies the flags given to `scenario`.
    pub fn apply(&self, s: &mut Scenario) -> anyhow::Result<()> {
        let l = &mut s.load;
        set(&mut l.rpc, self.rpc);
        set(&mut l.batch_size, self.batch_size);
        set(&mut l.connections, self.connections);
        set(&mut l.streams, self.streams);
        set(&mut l.rate, self.rate);
        set(&mut l.warmup, self.warmup);
        set(&mut l.duration, self.duration);
        set(&mut l.requests, self.requests);
        set(&mut l.timeout, self.timeout);
        if self.deadline.is_some() {
            l.deadline = self.deadline;
        }
        if self.duration.is_some() && self.requests.is_none() {
            // A duration on the command line wins over a request count in the file.
            l.requests = 0;
        }
        let t = &mut s.tokens;
        if !self.algorithms.is_empty() {
            t.algorithms.clear();
            for item in &self.algorithms {
                let (name, weight) = match item.split_once('=') {
                    Some((name, weight)) => (
                        name.trim(),
                        weight
                            .trim()
                            .parse::<f64>()
                            .map_err(|_| anyhow!("--alg {item}: the weight is not a number"))?,
                    ),
                    None => (item.trim(), 1.0),
                };
                let alg = Alg::parse(name)
                    .ok_or_else(|| anyhow!("--alg {item}: expected RS256, ES256 or EdDSA"))?;
                t.algorithms.insert(alg.name().to_owned(), weight);
            }
        }
        set(&mut t.credential, self.credential);
        set(&mut t.distinct, self.distinct);
        set(&mut t.distribution, self.distribution);
        set(&mut t.zipf_exponent, self.zipf_exponent);
        set(&mut t.new, self.new);
        set(&mut t.new_pool, self.new_pool);
        set(&mut t.invalid, self.invalid);
        set(&mut t.expired, self.expired);
        set(&mut t.unknown_kid, self.unknown_kid);
        set(&mut t.revoked, self.revoked);
        set(&mut t.lifetime, self.lifetime);
        set(&mut t.seed, self.seed);
        Ok(())
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// `verdict-load run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (TOML); without one the defaults apply.
    pub scenario: Option<PathBuf>,
    /// A running verdict's gRPC address (it must trust WORK_DIR/jwks.json, see `prepare`, or
    /// the issuer of --tokens-file's tokens).
    #[arg(long, conflicts_with = "spawn")]
    pub target: Option<SocketAddr>,
    /// Send these tokens (one compact JWT per line, blank lines ignored; e.g. from a real
    /// identity provider) round-robin instead of signing any, each expected to be allowed.
    /// Needs --target; no --work-dir.
    #[arg(long, requires = "target", conflicts_with_all = ["spawn", "work_dir"])]
    pub tokens_file: Option<PathBuf>,
    /// Re-read --tokens-file every N ms during the run: tokens appended to it join the
    /// rotation [default: read once, at the start].
    #[arg(long, requires = "tokens_file", value_parser = clap::value_parser!(u64).range(1..))]
    pub tokens_reload_ms: Option<u64>,
    /// Start verdict with the generated config, and stop it afterwards.
    #[arg(long)]
    pub spawn: bool,
    /// The verdict binary for --spawn [default: `verdict` beside this binary, else on PATH].
    #[arg(long)]
    pub verdict_bin: Option<PathBuf>,
    /// Cores to pin the spawned server to (taskset list: 0, 0-1, 0,2); its workers = their count.
    #[arg(long, value_parser = parse_cpus)]
    pub server_cpus: Option<CpuList>,
    /// Cores to pin the client's threads to [default with --server-cpus: the other cores].
    #[arg(long, value_parser = parse_cpus)]
    pub client_cpus: Option<CpuList>,
    /// Client runtime threads [default: one per client core].
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// A TOML file appended to the generated verdict config for --spawn (more tables, e.g.
    /// `[cache]` or `[audit]`, to compare configurations under one scenario).
    #[arg(long, requires = "spawn")]
    pub server_toml: Option<PathBuf>,
    /// The pid of a --target server: enables its CPU accounting and sighup actions.
    #[arg(long, requires = "target")]
    pub server_pid: Option<u32>,
    /// Work directory for keys, JWKS and config [default: a temporary one, removed after
    /// a --spawn run]. Required with --target unless the credential is none.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Sign the token pool afresh even if WORK_DIR/pools/ holds one for this mix (the cache
    /// is used only with --spawn and an explicit --work-dir).
    #[arg(long)]
    pub no_pool_cache: bool,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the latency percentile curve into this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Series name in reports and plots [default: the scenario name].
    #[arg(long)]
    pub label: Option<String>,
    /// No live progress line.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Scenario overrides.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// A CPU list flag (`0`, `0-1`, `0,2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

fn parse_cpus(s: &str) -> Result<CpuList, String> {
    parse_cpu_list(s).map(CpuList).map_err(|e| e.to_string())
}

/// `verdict-load prepare`.
#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The scenario file (TOML).
    pub scenario: Option<PathBuf>,
    /// The work directory to write (keys are kept if present).
    #[arg(long)]
    pub work_dir: PathBuf,
    /// `grpc_listen` of the generated config.
    #[arg(long, default_value = "127.0.0.1:9191")]
    pub listen: SocketAddr,
    /// `admin_listen` of the generated config.
    #[arg(long, default_value = "127.0.0.1:9901")]
    pub admin_listen: SocketAddr,
    /// `workers` of the generated config (0 = one per CPU).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Sign the token pool afresh even if WORK_DIR/pools/ holds one for this mix.
    #[arg(long)]
    pub no_pool_cache: bool,
    /// Also write this many tokens, drawn as a run would, one per line.
    #[arg(long, requires = "tokens_out")]
    pub tokens: Option<usize>,
    /// The token file for --tokens.
    #[arg(long, requires = "tokens")]
    pub tokens_out: Option<PathBuf>,
    /// Scenario overrides.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// `verdict-load plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// JSON reports (from `run --json`).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// The SVG to write.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// The title.
    #[arg(long)]
    pub title: Option<String>,
    /// Logarithmic latency axis.
    #[arg(long)]
    pub log_y: bool,
    /// Plot service times (send to answer) instead of the reported latency.
    #[arg(long)]
    pub service_time: bool,
}

/// `verdict-load table`.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// JSON reports.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Prepare(args) => prepare(args).map(|()| ExitCode::SUCCESS),
        Command::Plot(args) => plot(args).map(|()| ExitCode::SUCCESS),
        Command::Table(args) => table(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("verdict-load: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Loads the scenario, applies the flags and validates.
pub fn load_scenario(
    path: Option<&Path>,
    overrides: &Overrides,
) -> anyhow::Result<(Scenario, Vec<crate::scenario::Action>)> {
    let mut scenario = match path {
        Some(path) => Scenario::load(path)?,
        None => Scenario::default(),
    };
    overrides.apply(&mut scenario)?;
    let actions = scenario.validate().map_err(|e| match path {
        Some(p) => anyhow!("{}: {e}", p.display()),
        None => anyhow!("{e}"),
    })?;
    Ok((scenario, actions))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signs the scenario's pool (or reads it from `WORK_DIR/pools/` when `cache_validity_s`
/// is given: the seconds its valid tokens must still be valid).
fn build_pool(
    scenario: &Scenario,
    work: &WorkDir,
    cache_validity_s: Option<u64>,
) -> anyhow::Result<(crate::tokens::SigningKeys, TokenPool)> {
    let keys = work.keys()?;
    let started = Instant::now();
    let (pool, source) = match cache_validity_s {
        Some(validity) => TokenPool::build_cached(
            &scenario.tokens,
            &keys,
            unix_now(),
            &work.dir.join("pools"),
            validity,
        )?,
        None => (
            TokenPool::build(&scenario.tokens, &keys, unix_now())?,
            PoolSource::Signed,
        ),
    };
    if !pool.is_empty() {
        let how = match source {
            PoolSource::Signed => "signed",
            PoolSource::Cached => "read from the pool cache",
        };
        eprintln!(
            "verdict-load: {how} {} tokens in {:.1} s",
            pool.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok((keys, pool))
}

/// A scratch work directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (scenario, actions) = load_scenario(args.scenario.as_deref(), &args.overrides)?;
    let server_cpus: Option<Vec<usize>> = args.server_cpus.clone().map(|c| c.0);
    let arg_client_cpus: Option<Vec<usize>> = args.client_cpus.clone().map(|c| c.0);
    if !args.spawn && args.target.is_none() {
        return Err(anyhow!(
            "say where verdict is: --target ADDR (a running server) or --spawn (start one)"
        ));
    }
    if !actions.is_empty() && !args.spawn && args.server_pid.is_none() {
        return Err(anyhow!(
            "the scenario has actions (e.g. sighup): they need --spawn or --server-pid"
        ));
    }
    let tokens_file = match &args.tokens_file {
        Some(path) => {
            check_file_mix(&scenario)?;
            let file = TokenFile::open(
                path,
                scenario.load.rpc,
                args.tokens_reload_ms.map(Duration::from_millis),
            )?;
            eprintln!(
                "verdict-load: read {} tokens from {}",
                file.len(),
                path.display()
            );
            Some(Arc::new(file))
        }
        None => None,
    };
    // Tokens from a file are not the harness's: nothing to sign, nothing to trust locally.
    let needs_keys = scenario.tokens.credential == Credential::Bearer && tokens_file.is_none();
    let mut _temp = None;
    let work = match &args.work_dir {
        Some(dir) => WorkDir::at(dir),
        None if args.spawn || !needs_keys => {
            let dir = std::env::temp_dir().join(format!("verdict-load-{}", std::process::id()));
            _temp = Some(TempDir(dir.clone()));
            WorkDir::at(&dir)
        }
        None => {
            return Err(anyhow!(
                "--target needs --work-dir DIR holding the keys the server trusts: run `verdict-load prepare --work-dir DIR` and start verdict with DIR/verdict.toml"
            ));
        }
    };
    if args.target.is_some() && needs_keys && !work.has_keys() {
        return Err(anyhow!(
            "{} holds no keys: run `verdict-load prepare --work-dir {}` first and start verdict with its verdict.toml",
            work.dir.display(),
            work.dir.display()
        ));
    }
    // A fresh server has seen none of the cached tokens; a running one may have: --target
    // always signs anew so that "new" tokens are new.
    let cache = (args.spawn && args.work_dir.is_some() && !args.no_pool_cache)
        .then(|| scenario.load.hard_deadline().as_secs() + 300);
    let (keys, pool) = match tokens_file {
        Some(_) => (None, TokenPool::empty()),
        None => {
            let (keys, pool) = build_pool(&scenario, &work, cache)?;
            (Some(keys), pool)
        }
    };
    let pool = Arc::new(pool);

    let all_cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let client_cpus = match (&arg_client_cpus, &server_cpus) {
        (Some(cpus), _) => cpus.clone(),
        (None, Some(server)) if args.spawn => all_cpus
            .iter()
            .copied()
            .filter(|c| !server.contains(c))
            .collect(),
        _ => Vec::new(),
    };
    if let (Some(server), false) = (&server_cpus, client_cpus.is_empty())
        && client_cpus.iter().any(|c| server.contains(c))
    {
        eprintln!("verdict-load: warning: client and server cpus overlap");
    }
    for cpu in client_cpus.iter().chain(server_cpus.iter().flatten()) {
        if !all_cpus.is_empty() && !all_cpus.contains(cpu) {
            return Err(anyhow!(
                "cpu {cpu} is not available to this process (available: {})",
                crate::spawn::format_cpu_list(&all_cpus)
            ));
        }
    }

    let mut server_info = ServerInfo::default();
    let mut spawned = None;
    let target = if args.spawn {
        let bin = match &args.verdict_bin {
            Some(bin) => bin.clone(),
            None => default_verdict_bin().ok_or_else(|| {
                anyhow!("no verdict binary beside verdict-load or on PATH: pass --verdict-bin")
            })?,
        };
        let extra_toml = match &args.server_toml {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading --server-toml {}", path.display()))?,
            None => String::new(),
        };
        let settings = ServerSettings {
            workers: server_cpus.as_ref().map_or(0, Vec::len),
            extra_toml,
            ..ServerSettings::default()
        };
        let keys = keys
            .as_ref()
            .ok_or_else(|| anyhow!("--spawn signs its own tokens: it cannot take --tokens-file"))?;
        work.write(keys, &pool, &settings, &scenario.name)?;
        let server = Spawned::start(&SpawnOptions {
            bin: bin.clone(),
            config: work.config.clone(),
            cpus: server_cpus.clone(),
            startup_timeout: Duration::from_secs(30),
        })?;
        server_info = ServerInfo {
            target: server.grpc.to_string(),
            spawned: true,
            command: Some(server.command.clone()),
            version: verdict_version(&bin),
            pid: Some(server.pid),
            cpus: server_cpus.clone(),
            workers: server.workers,
            exited_during_run: None,
        };
        let grpc = server.grpc;
        spawned = Some(server);
        grpc
    } else {
        let target = args
            .target
            .ok_or_else(|| anyhow!("--target or --spawn is required"))?;
        server_info.target = target.to_string();
        server_info.pid = args.server_pid;
        target
    };

    // The thread that drives the runtime stays on the client cores too.
    if let Some(&first) = client_cpus.first() {
        core_affinity::set_for_current(core_affinity::CoreId { id: first });
    }
    let mut plan = LoadPlan::from_scenario(&scenario);
    plan.client_cpus = client_cpus.clone();
    plan.worker_threads = args
        .client_threads
        .unwrap_or(if client_cpus.is_empty() {
            plan.worker_threads
        } else {
            client_cpus.len()
        })
        .max(1);
    plan.progress = !args.quiet;
    plan.tokens_file = tokens_file;
    if let Some(label) = &args.label {
        plan.label = label.clone();
    }
    let started_unix = unix_now();
    let server_pid = spawned.as_ref().map(|s| s.pid).or(args.server_pid);
    let result = load::run(&plan, target, Arc::clone(&pool), &actions, server_pid);
    if let Some(server) = spawned.as_mut() {
        if !server.is_running() {
            server_info.exited_during_run = Some(format!(
                "verdict exited during the run; its last log lines:\n{}",
                server.recent_logs()
            ));
        } else if let Err(e) = server.stop(Duration::from_secs(10)) {
            eprintln!("verdict-load: stopping verdict: {e}");
        }
    }
    let result = result?;
    let report = Report {
        format: crate::report::FORMAT,
        name: args.label.clone().unwrap_or_else(|| scenario.name.clone()),
        started_unix,
        pool: pool.summary(),
        scenario,
        server: server_info,
        client: ClientInfo {
            cpus: client_cpus,
            threads: plan.worker_threads,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        machine: Machine::detect(),
        results: Results::from_load(&result, plan.rate),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{}", report.table());
    if let Some(path) = &args.json {
        report.write_json(path)?;
        let _ = writeln!(stdout, "  {:<17} {}", "json", path.display());
    }
    if let Some(path) = &args.plot {
        render_svg(
            std::slice::from_ref(&report),
            &PlotOptions {
                title: format!("{}: latency by percentile", report.name),
                ..PlotOptions::default()
            },
            path,
        )?;
        let _ = writeln!(stdout, "  {:<17} {}", "plot", path.display());
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DIRTY)
    })
}

/// With --tokens-file every request carries one of the file's tokens: a scenario asking for
/// other kinds of tokens (or none) would be silently ignored, so it is refused.
fn check_file_mix(scenario: &Scenario) -> anyhow::Result<()> {
    let t = &scenario.tokens;
    if t.credential != Credential::Bearer {
        return Err(anyhow!(
            "--tokens-file sends the file's tokens as bearer tokens: credential = none does not apply"
        ));
    }
    for (name, fraction) in [
        ("new", t.new),
        ("invalid", t.invalid),
        ("expired", t.expired),
        ("unknown_kid", t.unknown_kid),
        ("revoked", t.revoked),
    ] {
        if fraction > 0.0 {
            return Err(anyhow!(
                "--tokens-file sends only the file's tokens, all expected valid: the mix's {name} = {fraction} does not apply (set it to 0)"
            ));
        }
    }
    Ok(())
}

fn prepare(args: PrepareArgs) -> anyhow::Result<()> {
    let (scenario, _) = load_scenario(args.scenario.as_deref(), &args.overrides)?;
    let work = WorkDir::at(&args.work_dir);
    let cache = (!args.no_pool_cache).then_some(900);
    let (keys, pool) = build_pool(&scenario, &work, cache)?;
    let settings = ServerSettings {
        grpc_listen: args.listen,
        admin_listen: args.admin_listen,
        workers: args.workers,
        extra_toml: String::new(),
    };
    work.write(&keys, &pool, &settings, &scenario.name)?;
    if let (Some(count), Some(path)) = (args.tokens, &args.tokens_out) {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(scenario.tokens.seed);
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for _ in 0..count {
            writeln!(out, "{}", pool.pick(&mut rng).token)?;
        }
        out.flush()?;
        println!(
            "tokens:  {} ({count} lines, in request order)",
            path.display()
        );
    }
    println!("keys:    {}", work.keys_dir().display());
    println!("jwks:    {}", work.jwks.display());
    println!("config:  {}", work.config.display());
    println!("revoked: {}", work.revoked.display());
    println!();
    println!(
        "start verdict:  verdict serve --config {}",
        work.config.display()
    );
    println!(
        "then load it:   verdict-load run {} --target {} --work-dir {}",
        args.scenario
            .as_deref()
            .map_or("".into(), |p| p.display().to_string()),
        args.listen,
        work.dir.display()
    );
    Ok(())
}

fn read_reports(paths: &[PathBuf]) -> anyhow::Result<Vec<Report>> {
    paths.iter().map(|p| Report::read_json(p)).collect()
}

fn plot(args: PlotArgs) -> anyhow::Result<()> {
    let reports = read_reports(&args.reports)?;
    let options = PlotOptions {
        title: args
            .title
            .unwrap_or_else(|| "verdict latency by percentile".into()),
        log_y: args.log_y,
        service_time: args.service_time,
        ..PlotOptions::default()
    };
    render_svg(&reports, &options, &args.out)?;
    println!("{}", args.out.display());
    Ok(())
}

fn table(args: TableArgs) -> anyhow::Result<()> {
    let reports = read_reports(&args.reports)?;
    print!("{}", comparison_table(&reports));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "verdict-load",
            "run",
            "s.toml",
            "--spawn",
            "--server-cpus",
            "0",
            "--client-cpus",
            "1-2",
            "--duration",
            "3s",
            "--alg",
            "RS256=2,EdDSA",
        ])
        .expect("parses");
        let Command::Run(run) = cli.command else {
            panic!("not run");
        };
        assert_eq!(run.server_cpus, Some(CpuList(vec![0])));
        assert_eq!(run.client_cpus, Some(CpuList(vec![1, 2])));
        let mut s = Scenario::default();
        s.load.requests = 100;
        run.overrides.apply(&mut s).expect("applies");
        assert_eq!(s.load.duration, Dur::secs(3));
        assert_eq!(
            s.load.requests, 0,
            "a duration flag wins over a request count"
        );
        assert_eq!(s.tokens.algorithms.get("RS256"), Some(&2.0));
        assert_eq!(s.tokens.algorithms.get("EdDSA"), Some(&1.0));
        assert!(
            Cli::try_parse_from(["verdict-load", "run", "--target", "127.0.0.1:1", "--spawn"])
                .is_err()
        );
    }

    #[test]
    fn tokens_file_flags() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["verdict-load", "run"].iter().chain(args).copied()).map(|cli| {
                match cli.command {
                    Command::Run(run) => (run.tokens_file, run.tokens_reload_ms),
                    _ => panic!("not run"),
                }
            })
        };
        let target = ["--target", "127.0.0.1:1"];
        let with = |extra: &[&'static str]| [&target[..], extra].concat();
        assert_eq!(
            parse(&with(&[
                "--tokens-file",
                "t.txt",
                "--tokens-reload-ms",
                "200"
            ]))
            .expect("parses"),
            (Some(PathBuf::from("t.txt")), Some(200))
        );
        assert!(
            parse(&["--tokens-file", "t.txt"]).is_err(),
            "needs --target"
        );
        assert!(parse(&["--spawn", "--tokens-file", "t.txt"]).is_err());
        assert!(parse(&with(&["--tokens-file", "t", "--work-dir", "w"])).is_err());
        assert!(parse(&with(&["--tokens-reload-ms", "200"])).is_err());
        assert!(parse(&with(&["--tokens-file", "t", "--tokens-reload-ms", "0"])).is_err());
        let mut s = Scenario::default();
        assert!(check_file_mix(&s).is_ok());
        s.tokens.invalid = 0.1;
        assert!(check_file_mix(&s).is_err());
    }
}
