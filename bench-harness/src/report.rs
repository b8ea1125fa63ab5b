//! The report of a run: every number, the scenario and the machine; rendered as a table for
//! people and written as JSON (`--json FILE`) for plots and comparisons.

use crate::load::{ActionLog, LoadResult, TimelinePoint};
use crate::outcome::Tally;
use crate::scenario::Scenario;
use crate::tokens::CategorySummary;
use crate::tokens_file::TokenFileSummary;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// The report format version (bumped when a field changes meaning).
pub const FORMAT: u32 = 1;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// 99.99th percentile.
    pub p9999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// From a nanosecond histogram.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Percentiles {
            min: ms(h.min()),
            mean: h.mean() / 1e6,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            p9999: ms(h.value_at_quantile(0.9999)),
            max: ms(h.max()),
        }
    }
}

/// One point of the latency percentile curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// The percentile (0..=100).
    pub percentile: f64,
    /// `-log10(1 - percentile/100)`: 1 = 90 %, 2 = 99 %, 3 = 99.9 % (the plot's x axis).
    pub nines: f64,
    /// The latency at that percentile (ms).
    pub latency_ms: f64,
}

/// The percentile curve of a histogram: points every 0.05 nines up to the resolution the
/// sample count supports (log10 of the count), then the maximum.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<CurvePoint> {
    if h.is_empty() {
        return Vec::new();
    }
    let top = (h.len() as f64).log10().max(1.0);
    let steps = (top / 0.05).ceil() as usize;
    let mut out = Vec::with_capacity(steps + 2);
    for i in 0..steps {
        let nines = i as f64 * 0.05;
        let q = 1.0 - 10f64.powf(-nines);
        out.push(CurvePoint {
            percentile: q * 100.0,
            nines,
            latency_ms: h.value_at_quantile(q) as f64 / 1e6,
        });
    }
    out.push(CurvePoint {
        percentile: 100.0,
        nines: top,
        latency_ms: h.max() as f64 / 1e6,
    });
    out
}

/// The machine the run was measured on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs of the machine (not just those this process may use).
    pub logical_cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// OS name.
    pub os: String,
    /// Crypto-relevant CPU flags present (aes, avx2, avx512*, sha_ni, adx, bmi2, ...).
    pub cpu_flags: Vec<String>,
}

/// CPU flags worth recording beside crypto numbers.
const FLAGS_OF_INTEREST: [&str; 12] = [
    "aes",
    "pclmulqdq",
    "avx",
    "avx2",
    "bmi2",
    "adx",
    "sha_ni",
    "avx512f",
    "avx512ifma",
    "avx512vl",
    "vaes",
    "vpclmulqdq",
];

impl Machine {
    /// Reads `/proc/cpuinfo`, the kernel release and `/etc/os-release`.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        let flags = field("flags");
        let present: Vec<&str> = flags.split_whitespace().collect();
        let os = std::fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default();
        Machine {
            cpu_model: field("model name"),
            // Counted from /proc/cpuinfo: the harness may already be pinned to fewer cores.
            logical_cpus: match cpuinfo
                .lines()
                .filter(|l| l.starts_with("processor"))
                .count()
            {
                0 => std::thread::available_parallelism().map_or(0, |n| n.get()),
                n => n,
            },
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            os,
            cpu_flags: FLAGS_OF_INTEREST
                .iter()
                .filter(|f| present.contains(f))
                .map(|f| (*f).to_owned())
                .collect(),
        }
    }
}

/// Where the server came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The gRPC address.
    pub target: String,
    /// Whether the harness spawned it.
    pub spawned: bool,
    /// The command line (when spawned).
    pub command: Option<String>,
    /// `verdict --version` (when known).
    pub version: Option<String>,
    /// Its pid (when known).
    pub pid: Option<u32>,
    /// Its cores (when pinned).
    pub cpus: Option<Vec<usize>>,
    /// Its workers (as logged).
    pub workers: Option<u64>,
    /// Set when it exited during the run, with its status.
    pub exited_during_run: Option<String>,
}

/// The client side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Cores the client threads were pinned to (empty = not pinned).
    pub cpus: Vec<usize>,
    /// Runtime worker threads.
    pub threads: usize,
    /// The harness version.
    pub version: String,
}

/// The measured numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// `"closed"` or `"open"`.
    pub mode: String,
    /// The open-loop target rate (requests/s).
    pub target_rate: Option<f64>,
    /// Measured seconds (end of warm-up to the last measured answer).
    pub measured_s: f64,
    /// Requests answered during the warm-up (excluded).
    pub warmup_requests: u64,
    /// Requests (RPCs) answered in the measurement.
    pub requests: u64,
    /// Requests per second.
    pub rate: f64,
    /// Tokens judged per second (differs from `rate` with verify-batch).
    pub token_rate: f64,
    /// What `latency` measures.
    pub latency_basis: String,
    /// Latency percentiles (ms): from the intended start in open loop, the service time in
    /// closed loop.
    pub latency: Percentiles,
    /// Service time percentiles (ms): from sending to the answer (not corrected).
    pub service: Percentiles,
    /// The latency percentile curve.
    pub curve: Vec<CurvePoint>,
    /// The service-time percentile curve.
    pub service_curve: Vec<CurvePoint>,
    /// Answers by kind.
    pub tally: Tally,
    /// Open loop: requests scheduled in the window but never sent (the run ended first).
    pub unsent: u64,
    /// Times the pool of new tokens wrapped around (its tokens were then no longer new).
    pub new_pool_wraps: u64,
    /// Server CPU seconds over the measurement.
    pub server_cpu_s: Option<f64>,
    /// Server CPU seconds per measured second (1.0 = one core busy).
    pub server_cores_busy: Option<f64>,
    /// Client CPU seconds over the measurement.
    pub client_cpu_s: Option<f64>,
    /// Client CPU seconds per measured second.
    pub client_cores_busy: Option<f64>,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
    /// One point per second (including the warm-up, with negative times).
    pub timeline: Vec<TimelinePoint>,
    /// The actions run during the measurement.
    pub actions: Vec<ActionLog>,
    /// With `--tokens-file`: the file, its re-reads, and the requests per token source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_file: Option<TokenFileSummary>,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`FORMAT`].
    pub format: u32,
    /// The series name (scenario name, or `--label`).
    pub name: String,
    /// Unix time the run started.
    pub started_unix: u64,
    /// The scenario as run (after command-line overrides).
    pub scenario: Scenario,
    /// The token pool.
    pub pool: Vec<CategorySummary>,
    /// The server.
    pub server: ServerInfo,
    /// The client.
    pub client: ClientInfo,
    /// The machine.
    pub machine: Machine,
    /// The numbers.
    pub results: Results,
}

impl Results {
    /// From a load result.
    pub fn from_load(r: &LoadResult, target_rate: Option<f64>) -> Results {
        let per_s = |n: u64| {
            if r.measured_s > 0.0 {
                n as f64 / r.measured_s
            } else {
                0.0
            }
        };
        let busy = |cpu: Option<f64>| cpu.filter(|_| r.measured_s > 0.0).map(|c| c / r.measured_s);
        Results {
            mode: if r.open_loop { "open" } else { "closed" }.into(),
            target_rate,
            measured_s: r.measured_s,
            warmup_requests: r.warmup_requests,
            requests: r.tally.requests,
            rate: per_s(r.tally.requests),
            token_rate: per_s(r.tally.tokens),
            latency_basis: if r.open_loop {
                "from each request's intended start (coordinated omission corrected)"
            } else {
                "service time (closed loop: coordinated omission not corrected)"
            }
            .into(),
            latency: Percentiles::of(&r.latency),
            service: Percentiles::of(&r.service),
            curve: percentile_curve(&r.latency),
            service_curve: percentile_curve(&r.service),
            tally: r.tally.clone(),
            unsent: r.unsent,
            new_pool_wraps: r.new_pool_wraps,
            server_cpu_s: r.server_cpu_s,
            server_cores_busy: busy(r.server_cpu_s),
            client_cpu_s: r.client_cpu_s,
            client_cores_busy: busy(r.client_cpu_s),
            aborted: r.aborted.clone(),
            timeline: r.timeline.clone(),
            actions: r.actions.clone(),
            tokens_file: r.tokens_file.clone(),
        }
    }
}

impl Report {
    /// True when the run completed with no transport error, no unexpected verdict, every
    /// action done, and the server still up.
    pub fn clean(&self) -> bool {
        let r = &self.results;
        r.aborted.is_none()
            && r.tally.transport_total() == 0
            && r.tally.unexpected_total() == 0
            && r.requests > 0
            && self.server.exited_during_run.is_none()
            && r.actions.iter().all(|a| a.result == "ok")
    }

    /// Writes the JSON report.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
    }

    /// Reads a JSON report.
    pub fn read_json(path: &Path) -> anyhow::Result<Report> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a verdict-load report: {e}", path.display()))
    }

    /// The final table for people.
    pub fn table(&self) -> String {
        let r = &self.results;
        let s = &self.scenario;
        let mut out = String::new();
        let shape = if s.load.rpc == crate::scenario::RpcKind::VerifyBatch {
            format!("verify-batch ×{}", s.load.batch_size)
        } else {
            "check".to_owned()
        };
        let mode = match r.target_rate {
            Some(rate) => format!("open loop at {} req/s", thousands(rate)),
            None => "closed loop".to_owned(),
        };
        let _ = writeln!(
            out,
            "verdict-load: {}  ({shape}, {mode}, {} conn × {} streams)",
            self.name, s.load.connections, s.load.streams
        );
        let server = if self.server.spawned {
            format!(
                "spawned verdict{}{}{}",
                self.server
                    .pid
                    .map(|p| format!(" pid {p}"))
                    .unwrap_or_default(),
                self.server
                    .cpus
                    .as_ref()
                    .map(|c| format!(" on cpus {}", crate::spawn::format_cpu_list(c)))
                    .unwrap_or_default(),
                self.server
                    .workers
                    .map(|w| format!(", {w} worker{}", if w == 1 { "" } else { "s" }))
                    .unwrap_or_default(),
            )
        } else {
            format!("verdict at {}", self.server.target)
        };
        let client = if self.client.cpus.is_empty() {
            format!("client not pinned, {} threads", self.client.threads)
        } else {
            format!(
                "client on cpus {}",
                crate::spawn::format_cpu_list(&self.client.cpus)
            )
        };
        row(&mut out, "server", &format!("{server}; {client}"));
        row(
            &mut out,
            "measured",
            &format!(
                "{:.2} s after {} warm-up ({} warm-up requests excluded)",
                r.measured_s,
                s.load.warmup,
                thousands(r.warmup_requests as f64)
            ),
        );
        let tokens = if r.token_rate != r.rate {
            format!("  = {} tokens/s", thousands(r.token_rate))
        } else {
            String::new()
        };
        row(
            &mut out,
            "throughput",
            &format!(
                "{} req/s  ({} requests){tokens}",
                thousands(r.rate),
                thousands(r.requests as f64)
            ),
        );
        if !self.pool.is_empty() && r.tally.tokens > 0 {
            let parts: Vec<String> = self
                .pool
                .iter()
                .filter(|c| c.distinct > 0)
                .map(|c| {
                    let sends = r.tally.tokens as f64 * c.fraction / c.distinct as f64;
                    format!(
                        "{} {} ({:.0}%, each sent ~{})",
                        c.kind,
                        thousands(c.distinct as f64),
                        c.fraction * 100.0,
                        thousands(sends)
                    )
                })
                .collect();
            if !parts.is_empty() {
                row(&mut out, "token pool", &parts.join("; "));
            }
        }
        if let Some(file) = &r.tokens_file {
            let reread = match file.reload_ms {
                Some(ms) => format!(
                    "re-read every {ms} ms: {} change(s), {} error(s)",
                    file.reloads, file.reload_errors
                ),
                None => "read once".to_owned(),
            };
            row(
                &mut out,
                "tokens file",
                &format!(
                    "{}: {} tokens at the start, {} at the end ({reread})",
                    file.path, file.initial_tokens, file.tokens
                ),
            );
            for source in &file.sources {
                let kid = if source.kid.is_empty() {
                    "(no kid)"
                } else {
                    &source.kid
                };
                let when = if source.added {
                    format!("added at {:.1} s", source.loaded_at_s)
                } else {
                    "at the start".to_owned()
                };
                row(
                    &mut out,
                    "  token source",
                    &format!(
                        "kid {kid} {} ({when}): {} tokens, {} sent, {} allowed",
                        source.alg,
                        source.tokens,
                        thousands(source.requests as f64),
                        thousands(source.allowed as f64)
                    ),
                );
            }
            if let Some(error) = &file.last_reload_error {
                row(&mut out, "  last re-read error", error);
            }
        }
        let l = &r.latency;
        row(
            &mut out,
            "latency",
            &format!(
                "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.p999),
                ms(l.max)
            ),
        );
        row(&mut out, "", &format!("({})", r.latency_basis));
        if r.mode == "open" {
            let v = &r.service;
            row(
                &mut out,
                "service time",
                &format!(
                    "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (send to answer, uncorrected)",
                    ms(v.p50),
                    ms(v.p90),
                    ms(v.p99),
                    ms(v.p999),
                    ms(v.max)
                ),
            );
        }
        let t = &r.tally;
        row(
            &mut out,
            "allowed",
            &format!("{} (expected)", thousands(t.allowed as f64)),
        );
        let denied = if t.denied.is_empty() {
            "0".to_owned()
        } else {
            t.denied
                .iter()
                .map(|(k, v)| format!("{k} {}", thousands(*v as f64)))
                .collect::<Vec<_>>()
                .join(", ")
                + " (expected)"
        };
        row(&mut out, "denied", &denied);
        if t.revoked_not_enforced + t.revoked_enforced > 0 {
            row(
                &mut out,
                "revoked",
                &format!(
                    "{} allowed (revoked, not enforced yet), {} denied",
                    thousands(t.revoked_not_enforced as f64),
                    thousands(t.revoked_enforced as f64)
                ),
            );
        }
        row(&mut out, "unexpected", &breakdown(&t.unexpected));
        row(&mut out, "transport errors", &breakdown(&t.transport));
        if r.unsent > 0 {
            row(
                &mut out,
                "unsent",
                &format!(
                    "{} scheduled requests never sent (the run ended while streams were behind schedule)",
                    thousands(r.unsent as f64)
                ),
            );
        }
        if r.new_pool_wraps > 0 {
            row(
                &mut out,
                "new-token pool",
                &format!(
                    "wrapped {} time(s): raise tokens.new_pool for truly new tokens",
                    r.new_pool_wraps
                ),
            );
        }
        if let Some(cpu) = r.server_cpu_s {
            row(
                &mut out,
                "server cpu",
                &format!(
                    "{cpu:.2} s  ({:.2} cores busy)",
                    r.server_cores_busy.unwrap_or(0.0)
                ),
            );
        }
        if let Some(cpu) = r.client_cpu_s {
            row(
                &mut out,
                "client cpu",
                &format!(
                    "{cpu:.2} s  ({:.2} cores busy)",
                    r.client_cores_busy.unwrap_or(0.0)
                ),
            );
        }
        for a in &r.actions {
            row(
                &mut out,
                "action",
                &format!("{} at {:.1} s: {}", a.kind, a.at_s, a.result),
            );
        }
        if let Some(why) = &r.aborted {
            row(&mut out, "ABORTED", why);
        }
        if let Some(status) = &self.server.exited_during_run {
            row(&mut out, "SERVER EXITED", status);
        }
        for sample in &t.samples {
            row(&mut out, "error sample", sample);
        }
        if let (Some(target), "open") = (r.target_rate, r.mode.as_str())
            && r.rate < 0.95 * target
            && r.aborted.is_none()
        {
            row(
                &mut out,
                "WARNING",
                &format!(
                    "achieved {} req/s, below 95% of the {} req/s asked for: the server or the client could not keep up",
                    thousands(r.rate),
                    thousands(target)
                ),
            );
        }
        out
    }
}

fn row(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "  {key:<17} {value}");
}

fn breakdown(map: &std::collections::BTreeMap<String, u64>) -> String {
    let total: u64 = map.values().sum();
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}: {}", thousands(*v as f64)))
        .collect();
    format!("{}  ({})", thousands(total as f64), parts.join(", "))
}

/// Milliseconds with three decimals and the unit.
pub fn ms(value: f64) -> String {
    format!("{value:.3} ms")
}

/// A number with thousands separators; one decimal below 100.
pub fn thousands(value: f64) -> String {
    if value.abs() < 100.0 && value.fract() != 0.0 {
        return format!("{value:.1}");
    }
    let whole = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

/// One line per report: name, req/s, percentiles, errors, server CPU.
pub fn comparison_table(reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>6} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>10}",
        "scenario",
        "mode",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "srv cores"
    );
    for r in reports {
        let x = &r.results;
        let l = &x.latency;
        let _ = writeln!(
            out,
            "{:<22} {:>6} {:>12} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8} {:>10}",
            r.name,
            x.mode,
            thousands(x.rate),
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            x.tally.transport_total() + x.tally.unexpected_total(),
            x.server_cores_busy
                .map_or("-".to_owned(), |c| format!("{c:.2}"))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting() {
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(12.5), "12.5");
        assert_eq!(thousands(1000.4), "1,000");
        assert_eq!(ms(0.1234), "0.123 ms");
    }

    #[test]
    fn curve_spans_the_nines() {
        let mut h = crate::load::new_histogram().expect("histogram");
        for v in 1..=10_000u64 {
            h.record(v * 1000).expect("record");
        }
        let curve = percentile_curve(&h);
        let first = curve.first().expect("points");
        let last = curve.last().expect("points");
        assert_eq!(first.nines, 0.0);
        assert!((last.nines - 4.0).abs() < 1e-9);
        assert_eq!(last.percentile, 100.0);
        assert!((last.latency_ms - 10.0).abs() < 0.01, "{}", last.latency_ms);
        assert!(curve.windows(2).all(|w| w[0].latency_ms <= w[1].latency_ms));
        let p99 = curve
            .iter()
            .find(|p| (p.nines - 2.0).abs() < 1e-9)
            .expect("99th percentile point");
        assert!((p99.latency_ms - 9.9).abs() < 0.02, "{}", p99.latency_ms);
    }
}
