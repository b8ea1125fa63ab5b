//! `--spawn`: start `verdict serve` with the generated config, pinned to chosen cores, read the
//! addresses it bound from its "verdict serving" JSON log line, account its CPU time from
//! `/proc/<pid>/stat`, signal it, and stop it.

use anyhow::{Context, anyhow};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many of the server's last log lines are kept for error messages.
const LOG_TAIL: usize = 200;

/// Parses a CPU list: `0`, `0,2`, `1-3`, `0-1,4`.
pub fn parse_cpu_list(text: &str) -> anyhow::Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part, part),
        };
        let lo: usize = lo
            .parse()
            .map_err(|_| anyhow!("`{text}`: `{part}` is not a CPU number or range"))?;
        let hi: usize = hi
            .parse()
            .map_err(|_| anyhow!("`{text}`: `{part}` is not a CPU number or range"))?;
        if lo > hi || hi >= 4096 {
            return Err(anyhow!("`{text}`: bad CPU range `{part}`"));
        }
        for cpu in lo..=hi {
            if !cpus.contains(&cpu) {
                cpus.push(cpu);
            }
        }
    }
    if cpus.is_empty() {
        return Err(anyhow!("`{text}`: empty CPU list"));
    }
    Ok(cpus)
}

/// Formats a CPU list for `taskset -c`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The verdict binary to spawn when `--verdict-bin` is not given: `verdict` next to this
/// executable (e.g. `target/release/verdict` beside `target/release/verdict-load`), else
/// `verdict` on `PATH`.
pub fn default_verdict_bin() -> Option<PathBuf> {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let sibling = dir.join("verdict");
        if sibling.is_file() {
            return Some(sibling);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("verdict"))
        .find(|candidate| candidate.is_file())
}

/// Clock ticks per second for `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 if unknown).
pub fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds of a process (all its threads) from `/proc/<pid>/stat`.
pub fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_seconds_from_stat(&stat, clock_ticks())
}

/// User + system CPU seconds of this process.
pub fn self_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_seconds_from_stat(&stat, clock_ticks())
}

/// Parses utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line.
pub fn cpu_seconds_from_stat(stat: &str, ticks: f64) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// Sends a signal (`HUP`, `TERM`, ...) to a process with `kill`.
pub fn send_signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .context("running kill")?;
    if status.success() {
        Ok(())
    } else {
        Err(anyhow!("kill -{name} {pid} failed ({status})"))
    }
}

/// What to spawn.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// The verdict binary.
    pub bin: PathBuf,
    /// The config file.
    pub config: PathBuf,
    /// Cores to pin it to with `taskset -c`; `None` = not pinned.
    pub cpus: Option<Vec<usize>>,
    /// How long to wait for the "verdict serving" line.
    pub startup_timeout: Duration,
}

/// A running `verdict serve` started by the harness (killed when dropped).
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    /// Its process id (taskset execs verdict, so this is verdict's).
    pub pid: u32,
    /// The gRPC address it bound.
    pub grpc: SocketAddr,
    /// The admin address it bound.
    pub admin: SocketAddr,
    /// Its worker count, as logged.
    pub workers: Option<u64>,
    /// The command line.
    pub command: String,
    logs: Arc<Mutex<VecDeque<String>>>,
}

impl Spawned {
    /// Starts verdict and waits for its "verdict serving" line.
    pub fn start(options: &SpawnOptions) -> anyhow::Result<Spawned> {
        if !options.bin.is_file() {
            return Err(anyhow!(
                "verdict binary {} not found (build it with `cargo build --release --bin verdict` or pass --verdict-bin)",
                options.bin.display()
            ));
        }
        let mut command = match &options.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(format_cpu_list(cpus)).arg(&options.bin);
                c
            }
            None => Command::new(&options.bin),
        };
        command
            .arg("serve")
            .arg("--config")
            .arg(&options.config)
            .arg("--log-format")
            .arg("json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let described = describe(&command);
        let mut child = command.spawn().map_err(|e| {
            if options.cpus.is_some() && e.kind() == std::io::ErrorKind::NotFound {
                anyhow!("cannot run taskset (util-linux) to pin the server: {e}")
            } else {
                anyhow!("cannot start {described}: {e}")
            }
        })?;
        let pid = child.id();
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            return Err(anyhow!("no stderr pipe from verdict"));
        };
        let sink = Arc::clone(&logs);
        std::thread::Builder::new()
            .name("verdict-logs".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("verdict serving") {
                        let _ = tx.send(line.clone());
                    }
                    if let Ok(mut logs) = sink.lock() {
                        if logs.len() >= LOG_TAIL {
                            logs.pop_front();
                        }
                        logs.push_back(line);
                    }
                }
            })
            .context("spawning the log reader")?;
        let started = Instant::now();
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => break line,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    return Err(anyhow!(
                        "verdict exited before serving ({}); its log:\n{}",
                        status.map_or("unknown status".into(), |s| s.to_string()),
                        tail(&logs)
                    ));
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                return Err(anyhow!(
                    "verdict exited before serving ({status}); its log:\n{}",
                    tail(&logs)
                ));
            }
            if started.elapsed() > options.startup_timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Err(anyhow!(
                    "verdict did not log \"verdict serving\" within {:?}; its log:\n{}",
                    options.startup_timeout,
                    tail(&logs)
                ));
            }
        };
        let (grpc, admin, workers) = match parse_serving_line(&line) {
            Ok(parsed) => parsed,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Spawned {
            child,
            pid,
            grpc,
            admin,
            workers,
            command: described,
            logs,
        })
    }

    /// CPU seconds used so far.
    pub fn cpu_seconds(&self) -> Option<f64> {
        proc_cpu_seconds(self.pid)
    }

    /// The last lines it logged.
    pub fn recent_logs(&self) -> String {
        tail(&self.logs)
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub fn stop(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        let _ = send_signal(self.pid, "TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tail(logs: &Mutex<VecDeque<String>>) -> String {
    logs.lock()
        .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

fn describe(command: &Command) -> String {
    let mut parts = vec![command.get_program().to_string_lossy().into_owned()];
    parts.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Reads `grpc`, `admin` and `workers` from the JSON "verdict serving" line (top level or
/// under `fields`).
pub fn parse_serving_line(line: &str) -> anyhow::Result<(SocketAddr, SocketAddr, Option<u64>)> {
    let event: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| anyhow!("the serving line is not JSON ({e}): {line}"))?;
    let field = |key: &str| {
        event
            .get(key)
            .or_else(|| event.get("fields").and_then(|f| f.get(key)))
            .cloned()
    };
    let addr = |key: &str| -> anyhow::Result<SocketAddr> {
        field(key)
            .and_then(|v| v.as_str().map(str::to_owned))
            .ok_or_else(|| anyhow!("the serving line has no `{key}`: {line}"))?
            .parse()
            .map_err(|e| anyhow!("the serving line's `{key}` is not an address ({e}): {line}"))
    };
    let workers = field("workers").and_then(|v| v.as_u64());
    Ok((addr("grpc")?, addr("admin")?, workers))
}

/// The verdict version (`verdict --version`), if it answers.
pub fn verdict_version(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0").expect("ok"), [0]);
        assert_eq!(parse_cpu_list("0,2").expect("ok"), [0, 2]);
        assert_eq!(parse_cpu_list("1-3,5").expect("ok"), [1, 2, 3, 5]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
        assert_eq!(format_cpu_list(&[0, 2]), "0,2");
    }

    #[test]
    fn stat_parsing() {
        let stat =
            "1234 (verdict serve) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 0 0";
        assert_eq!(cpu_seconds_from_stat(stat, 100.0), Some(3.0));
        assert!(self_cpu_seconds().is_some());
    }

    #[test]
    fn serving_line() {
        let line = r#"{"timestamp":"x","level":"INFO","fields":{"message":"verdict serving","grpc":"127.0.0.1:5000","admin":"127.0.0.1:5001","workers":2}}"#;
        let (grpc, admin, workers) = parse_serving_line(line).expect("parses");
        assert_eq!(grpc.port(), 5000);
        assert_eq!(admin.port(), 5001);
        assert_eq!(workers, Some(2));
        let flat = r#"{"message":"verdict serving","grpc":"127.0.0.1:1","admin":"127.0.0.1:2"}"#;
        assert!(parse_serving_line(flat).is_ok());
        assert!(parse_serving_line("not json").is_err());
    }
}
