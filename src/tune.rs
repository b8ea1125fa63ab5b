//! `verdict tune`: inspects the host and prints each tuning recommendation beside the current
//! value. Nothing changes without `--apply` (which needs root).
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;

/// How a current value compares to the recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Already as recommended.
    Ok,
    /// Differs; `--apply` (or the operator) should change it.
    Change,
    /// Cannot be read here (not present on this host or this kernel); nothing to do.
    Unavailable,
    /// Informational only.
    Info,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Change => "change",
            Status::Unavailable => "n/a",
            Status::Info => "info",
        })
    }
}

/// One host setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Short name (sysctl key or description).
    pub name: String,
    /// What the host has now.
    pub current: String,
    /// What verdict recommends.
    pub recommended: String,
    /// Comparison.
    pub status: Status,
    /// Why it matters.
    pub why: &'static str,
    /// The file `--apply` writes, with the value, when applicable.
    pub apply: Vec<(PathBuf, String)>,
}

/// Where the host's files live (a fake root in tests).
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    /// The real host.
    pub fn real() -> Host {
        Host { root: "/".into() }
    }

    /// A host whose `/proc` and `/sys` live under `root` (for tests).
    pub fn at(root: impl Into<PathBuf>) -> Host {
        Host { root: root.into() }
    }

    fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    fn read(&self, absolute: &str) -> Option<String> {
        std::fs::read_to_string(self.path(absolute))
            .ok()
            .map(|s| s.trim().to_owned())
    }
}

/// A sysctl whose value should be at least `min`.
fn sysctl_at_least(host: &Host, key: &str, min: u64, why: &'static str) -> Check {
    let file = format!("/proc/sys/{}", key.replace('.', "/"));
    let current = host.read(&file);
    let status = match current.as_deref().and_then(|v| v.parse::<u64>().ok()) {
        Some(v) if v >= min => Status::Ok,
        Some(_) => Status::Change,
        None => Status::Unavailable,
    };
    Check {
        name: key.to_owned(),
        current: current.unwrap_or_else(|| "-".into()),
        recommended: format!(">= {min}"),
        status,
        why,
        apply: vec![(host.path(&file), min.to_string())],
    }
}

/// Every check, in the order the README explains them. `worker_cpus` are the cores verdict's
/// workers are pinned to (IRQs should avoid them); empty = not checked.
pub fn inspect(host: &Host, worker_cpus: &[usize]) -> Vec<Check> {
    let mut checks = vec![
        sysctl_at_least(
            host,
            "net.core.somaxconn",
            4096,
            "accept backlog: bursts of new gateway connections are not dropped",
        ),
        sysctl_at_least(
            host,
            "net.ipv4.tcp_max_syn_backlog",
            4096,
            "half-open connection backlog during connection storms",
        ),
        sysctl_at_least(
            host,
            "net.core.netdev_max_backlog",
            16384,
            "packets queued per core before the stack drops them",
        ),
    ];

    let range_file = "/proc/sys/net/ipv4/ip_local_port_range";
    let range = host.read(range_file);
    let span = range.as_deref().and_then(|r| {
        let mut it = r.split_whitespace().filter_map(|v| v.parse::<u64>().ok());
        Some(
            it.nth(1)?
                .saturating_sub(r.split_whitespace().next()?.parse().ok()?),
        )
    });
    checks.push(Check {
        name: "net.ipv4.ip_local_port_range".into(),
        current: range
            .clone()
            .unwrap_or_else(|| "-".into())
            .replace('\t', " "),
        recommended: "1024 65535".into(),
        status: match span {
            Some(s) if s >= 60000 => Status::Ok,
            Some(_) => Status::Change,
            None => Status::Unavailable,
        },
        why: "ephemeral ports for the load harness and for outbound JWKS fetches",
        apply: vec![(host.path(range_file), "1024 65535".into())],
    });

    let nofile = host.read("/proc/self/limits").and_then(|limits| {
        limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
    });
    checks.push(Check {
        name: "RLIMIT_NOFILE (soft)".into(),
        current: nofile.clone().unwrap_or_else(|| "-".into()),
        recommended: ">= 65536 (LimitNOFILE in the systemd unit)".into(),
        status: match nofile
            .as_deref()
            .map(|v| v == "unlimited" || v.parse::<u64>().is_ok_and(|n| n >= 65536))
        {
            Some(true) => Status::Ok,
            Some(false) => Status::Change,
            None => Status::Unavailable,
        },
        why: "one descriptor per gateway connection plus listeners and files",
        apply: Vec::new(),
    });

    let governors: Vec<(PathBuf, String)> = cpu_dirs(host)
        .into_iter()
        .filter_map(|dir| {
            let file = dir.join("cpufreq/scaling_governor");
            std::fs::read_to_string(&file)
                .ok()
                .map(|g| (file, g.trim().to_owned()))
        })
        .collect();
    checks.push(Check {
        name: "cpu frequency governor".into(),
        current: summarize(governors.iter().map(|(_, g)| g.as_str())),
        recommended: "performance".into(),
        status: if governors.is_empty() {
            Status::Unavailable
        } else if governors.iter().all(|(_, g)| g == "performance") {
            Status::Ok
        } else {
            Status::Change
        },
        why: "frequency ramp-up adds latency to the first requests of every burst",
        apply: governors
            .into_iter()
            .map(|(file, _)| (file, "performance".into()))
            .collect(),
    });

    let thp_file = "/sys/kernel/mm/transparent_hugepage/enabled";
    let thp = host.read(thp_file);
    let thp_mode = thp.as_deref().and_then(|t| {
        t.split_whitespace()
            .find(|w| w.starts_with('['))
            .map(|w| w.trim_matches(['[', ']']).to_owned())
    });
    checks.push(Check {
        name: "transparent huge pages".into(),
        current: thp_mode.clone().unwrap_or_else(|| "-".into()),
        recommended: "madvise".into(),
        status: match thp_mode.as_deref() {
            Some("madvise") | Some("never") => Status::Ok,
            Some(_) => Status::Change,
            None => Status::Unavailable,
        },
        why: "`always` lets khugepaged compaction stall worker threads at random",
        apply: vec![(host.path(thp_file), "madvise".into())],
    });

    let io_uring = host.read("/proc/sys/kernel/io_uring_disabled");
    checks.push(Check {
        name: "kernel.io_uring_disabled".into(),
        current: io_uring.clone().unwrap_or_else(|| "-".into()),
        recommended: "0".into(),
        status: match io_uring.as_deref() {
            Some("0") => Status::Ok,
            Some(_) => Status::Change,
            None => Status::Unavailable,
        },
        why: "workers use io_uring for the files they write; otherwise they fall back to tokio",
        apply: vec![(host.path("/proc/sys/kernel/io_uring_disabled"), "0".into())],
    });

    let flags = host.read("/proc/cpuinfo").unwrap_or_default();
    let ifma = flags.split_whitespace().any(|f| f == "avx512ifma");
    checks.push(Check {
        name: "AVX-512 IFMA".into(),
        current: if ifma { "present" } else { "absent" }.into(),
        recommended: "present for the fastest Ed25519 batches".into(),
        status: Status::Info,
        why: "ed25519-dalek's IFMA backend is compiled in and chosen at run time",
        apply: Vec::new(),
    });

    if !worker_cpus.is_empty() {
        checks.push(irq_check(host, worker_cpus));
    }
    checks
}

fn cpu_dirs(host: &Host) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(host.path("/sys/devices/system/cpu"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("cpu") && n[3..].parse::<u32>().is_ok())
                })
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn summarize<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut distinct: Vec<&str> = Vec::new();
    for v in values {
        if !distinct.contains(&v) {
            distinct.push(v);
        }
    }
    if distinct.is_empty() {
        "-".into()
    } else {
        distinct.join(",")
    }
}

/// Parses a CPU list such as `0-3,8`.
pub fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

fn format_cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// IRQs whose affinity includes a worker core.
fn irq_check(host: &Host, worker_cpus: &[usize]) -> Check {
    let online = host
        .read("/sys/devices/system/cpu/online")
        .and_then(|l| parse_cpu_list(&l))
        .unwrap_or_default();
    let housekeeping: Vec<usize> = online
        .iter()
        .copied()
        .filter(|c| !worker_cpus.contains(c))
        .collect();
    let mut on_workers = Vec::new();
    let mut apply = Vec::new();
    if let Ok(entries) = std::fs::read_dir(host.path("/proc/irq")) {
        for entry in entries.filter_map(Result::ok) {
            let file = entry.path().join("smp_affinity_list");
            let Some(cpus) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|l| parse_cpu_list(l.trim()))
            else {
                continue;
            };
            if cpus.iter().any(|c| worker_cpus.contains(c)) {
                on_workers.push(entry.file_name().to_string_lossy().into_owned());
                if !housekeeping.is_empty() {
                    apply.push((file, format_cpu_list(&housekeeping)));
                }
            }
        }
    }
    on_workers.sort_by_key(|n| n.parse::<u32>().unwrap_or(u32::MAX));
    Check {
        name: "IRQ affinity".into(),
        current: if on_workers.is_empty() {
            "no IRQ on worker cores".into()
        } else {
            format!("IRQs {} may run on worker cores", on_workers.join(","))
        },
        recommended: if housekeeping.is_empty() {
            "leave a core for IRQs and housekeeping".into()
        } else {
            format!("IRQs on cores {}", format_cpu_list(&housekeeping))
        },
        status: if on_workers.is_empty() {
            Status::Ok
        } else {
            Status::Change
        },
        why: "an interrupt on a worker core preempts request processing (tail latency)",
        apply,
    }
}

/// Renders the checks as a table.
pub fn render(checks: &[Check]) -> String {
    let width =
        |f: &dyn Fn(&Check) -> usize, min: usize| checks.iter().map(f).max().unwrap_or(0).max(min);
    let w_name = width(&|c| c.name.len(), 4);
    let w_cur = width(&|c| c.current.len(), 7);
    let w_rec = width(&|c| c.recommended.len(), 11);
    let mut out = format!(
        "{:<w_name$}  {:<w_cur$}  {:<w_rec$}  status  why\n",
        "knob", "current", "recommended"
    );
    for c in checks {
        out.push_str(&format!(
            "{:<w_name$}  {:<w_cur$}  {:<w_rec$}  {:<6}  {}\n",
            c.name,
            c.current,
            c.recommended,
            c.status.to_string(),
            c.why
        ));
    }
    out
}

/// Writes every recommended value that differs. Returns the files written and the errors.
pub fn apply(checks: &[Check]) -> (Vec<PathBuf>, Vec<String>) {
    let mut written = Vec::new();
    let mut errors = Vec::new();
    for check in checks.iter().filter(|c| c.status == Status::Change) {
        if check.apply.is_empty() {
            errors.push(format!(
                "{}: cannot be applied at run time; see tuning/README.md",
                check.name
            ));
        }
        for (file, value) in &check.apply {
            match std::fs::write(file, value) {
                Ok(()) => written.push(file.clone()),
                Err(e) => errors.push(format!("{}: {}: {e}", check.name, file.display())),
            }
        }
    }
    (written, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_host() -> (tempdir::Dir, Host) {
        let dir = tempdir::Dir::new();
        let w = |rel: &str, text: &str| {
            let p = dir.0.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        w("proc/sys/net/core/somaxconn", "128\n");
        w("proc/sys/net/ipv4/tcp_max_syn_backlog", "8192\n");
        w("proc/sys/net/core/netdev_max_backlog", "1000\n");
        w("proc/sys/net/ipv4/ip_local_port_range", "32768\t60999\n");
        w("proc/sys/kernel/io_uring_disabled", "0\n");
        w(
            "proc/self/limits",
            "Max open files            1024                4096                files\n",
        );
        w(
            "sys/kernel/mm/transparent_hugepage/enabled",
            "[always] madvise never\n",
        );
        w("sys/devices/system/cpu/online", "0-3\n");
        w(
            "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
            "powersave\n",
        );
        w(
            "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
            "performance\n",
        );
        w("proc/irq/30/smp_affinity_list", "0-3\n");
        w("proc/irq/31/smp_affinity_list", "0\n");
        w("proc/cpuinfo", "flags : avx2 avx512f avx512ifma\n");
        let host = Host::at(&dir.0);
        (dir, host)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let p = std::env::temp_dir().join(format!(
                    "verdict-tune-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).expect("mkdir");
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks
            .iter()
            .find(|c| c.name == name)
            .expect("check present")
    }

    #[test]
    fn reports_each_knob_against_its_recommendation() {
        let (_dir, host) = fake_host();
        let checks = inspect(&host, &[2, 3]);
        assert_eq!(find(&checks, "net.core.somaxconn").status, Status::Change);
        assert_eq!(find(&checks, "net.core.somaxconn").current, "128");
        assert_eq!(
            find(&checks, "net.ipv4.tcp_max_syn_backlog").status,
            Status::Ok
        );
        assert_eq!(
            find(&checks, "net.ipv4.ip_local_port_range").status,
            Status::Change
        );
        assert_eq!(find(&checks, "RLIMIT_NOFILE (soft)").current, "1024");
        assert_eq!(
            find(&checks, "cpu frequency governor").status,
            Status::Change
        );
        assert_eq!(
            find(&checks, "cpu frequency governor").current,
            "powersave,performance"
        );
        assert_eq!(find(&checks, "transparent huge pages").current, "always");
        assert_eq!(find(&checks, "kernel.io_uring_disabled").status, Status::Ok);
        assert_eq!(find(&checks, "AVX-512 IFMA").current, "present");
        let irq = find(&checks, "IRQ affinity");
        assert_eq!(irq.status, Status::Change);
        assert_eq!(irq.current, "IRQs 30 may run on worker cores");
        assert_eq!(irq.recommended, "IRQs on cores 0,1");
        let table = render(&checks);
        assert!(table.contains("net.core.somaxconn") && table.contains(">= 4096"));
    }

    #[test]
    fn apply_writes_only_what_differs() {
        let (dir, host) = fake_host();
        let checks = inspect(&host, &[2, 3]);
        let (written, errors) = apply(&checks);
        let read = |rel: &str| std::fs::read_to_string(dir.0.join(rel)).expect("read");
        assert_eq!(read("proc/sys/net/core/somaxconn"), "4096");
        assert_eq!(read("proc/sys/net/ipv4/tcp_max_syn_backlog").trim(), "8192");
        assert_eq!(
            read("sys/kernel/mm/transparent_hugepage/enabled"),
            "madvise"
        );
        assert_eq!(read("proc/irq/30/smp_affinity_list"), "0,1");
        assert_eq!(read("proc/irq/31/smp_affinity_list").trim(), "0");
        assert!(written.len() >= 5);
        assert!(
            errors.iter().any(|e| e.contains("RLIMIT_NOFILE")),
            "{errors:?}"
        );
        let after = inspect(&host, &[2, 3]);
        assert_eq!(find(&after, "net.core.somaxconn").status, Status::Ok);
        assert_eq!(find(&after, "IRQ affinity").status, Status::Ok);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpu_list("3"), Some(vec![3]));
        assert_eq!(parse_cpu_list("2-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }
}
