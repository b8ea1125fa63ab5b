//! Reports and plots: the table, the JSON round trip, the comparison table, and SVG plots of
//! one and several runs (through the library and the `plot` subcommand), with no font
//! library involved.

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};
use verdict_load::load::{ActionLog, LoadResult, TimelinePoint, new_histogram};
use verdict_load::outcome::{Outcome, Tally};
use verdict_load::plot::{PlotOptions, render_svg, render_svg_string};
use verdict_load::report::{ClientInfo, Machine, Report, Results, ServerInfo, comparison_table};
use verdict_load::scenario::Scenario;

fn scratch(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let dir =
        std::env::temp_dir().join(format!("verdict-load-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

/// A report whose latencies are `base_us` .. `base_us × 10` µs, with a few denials and one
/// unexpected verdict when `dirty`.
fn report(name: &str, base_us: u64, open: bool, dirty: bool) -> Report {
    let mut latency = new_histogram().expect("histogram");
    let mut service = new_histogram().expect("histogram");
    for i in 0..10_000u64 {
        let v = (base_us + base_us * 9 * i / 10_000) * 1000;
        latency.record(v).expect("record");
        service.record(v / 2).expect("record");
    }
    let mut tally = Tally {
        requests: 10_000,
        ..Tally::default()
    };
    for i in 0..10_000 {
        tally.count(if i % 20 == 0 {
            Outcome::Denied("bad_signature".into())
        } else {
            Outcome::Allowed
        });
    }
    if dirty {
        tally.count(Outcome::Unexpected(
            "valid token denied (grpc 16, http 401)".into(),
        ));
        tally.transport_error("timeout", "no answer within the request timeout");
    }
    let result = LoadResult {
        open_loop: open,
        measured_s: 2.0,
        warmup_requests: 1234,
        tally,
        latency,
        service,
        unsent: 0,
        timeline: vec![TimelinePoint {
            t_s: 1.0,
            requests: 5000,
            rate: 5000.0,
            p50_ms: 0.5,
            p99_ms: 0.9,
            max_ms: 1.0,
            errors: 0,
        }],
        actions: vec![ActionLog {
            kind: "sighup".into(),
            at_s: 1.0,
            ran_at_s: Some(1.001),
            result: "ok".into(),
        }],
        aborted: None,
        client_cpu_s: Some(1.5),
        server_cpu_s: Some(1.9),
        new_pool_wraps: 0,
        tokens_file: None,
    };
    let mut scenario = Scenario {
        name: name.into(),
        ..Scenario::default()
    };
    if open {
        scenario.load.rate = 5000.0;
    }
    Report {
        format: verdict_load::report::FORMAT,
        name: name.into(),
        started_unix: 1_700_000_000,
        scenario,
        pool: Vec::new(),
        server: ServerInfo {
            target: "127.0.0.1:9191".into(),
            spawned: true,
            pid: Some(42),
            cpus: Some(vec![0]),
            workers: Some(1),
            ..ServerInfo::default()
        },
        client: ClientInfo {
            cpus: vec![1],
            threads: 1,
            version: "test".into(),
        },
        machine: Machine::detect(),
        results: Results::from_load(&result, open.then_some(5000.0)),
    }
}

#[test]
fn the_table_holds_every_number() {
    let r = report("alpha-run", 100, false, false);
    assert!(r.clean());
    let table = r.table();
    for needle in [
        "alpha-run",
        "closed loop",
        "5,000 req/s",
        "p50 0.5",
        "p90 ",
        "p99 ",
        "p99.9 ",
        "max ",
        "bad_signature 500",
        "allowed           9,500",
        "unexpected        0",
        "transport errors  0",
        "server cpu        1.90 s  (0.95 cores busy)",
        "client on cpus 1",
        "sighup at 1.0 s: ok",
        "service time",
    ] {
        assert!(table.contains(needle), "{needle:?} missing from:\n{table}");
    }
    let dirty = report("beta-run", 100, true, true);
    assert!(!dirty.clean());
    let table = dirty.table();
    assert!(table.contains("open loop at 5,000 req/s"), "{table}");
    assert!(table.contains("coordinated omission corrected"), "{table}");
    assert!(table.contains("valid token denied"), "{table}");
    assert!(
        table.contains("transport errors  1  (timeout: 1)"),
        "{table}"
    );
    assert!(table.contains("error sample"), "{table}");
}

#[test]
fn json_round_trips_and_compares() {
    let dir = scratch("json");
    let a = report("alpha-run", 100, false, false);
    let b = report("beta-run", 300, true, false);
    let path = dir.join("a.json");
    a.write_json(&path).expect("write");
    let back = Report::read_json(&path).expect("read");
    // Floats may differ in the last bit after a JSON round trip; everything else is equal.
    assert_eq!(back.name, a.name);
    assert_eq!(back.scenario, a.scenario);
    assert_eq!(back.results.tally, a.results.tally);
    assert_eq!(back.results.curve.len(), a.results.curve.len());
    assert!((back.results.latency.p99 - a.results.latency.p99).abs() < 1e-9);
    assert!((back.results.rate - a.results.rate).abs() < 1e-9);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("text")).expect("json");
    for key in ["scenario", "machine", "server", "client", "pool", "results"] {
        assert!(json.get(key).is_some(), "{key}");
    }
    let results = &json["results"];
    for key in [
        "rate",
        "requests",
        "latency",
        "service",
        "curve",
        "tally",
        "server_cpu_s",
        "timeline",
    ] {
        assert!(results.get(key).is_some(), "results.{key}");
    }
    assert!(results["latency"]["p999"].as_f64().is_some());
    assert!(
        json["machine"]["logical_cpus"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    let table = comparison_table(&[a, b]);
    assert!(
        table.contains("alpha-run") && table.contains("beta-run"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 3);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn plots_draw_every_series() {
    let dir = scratch("plot");
    let reports = [
        report("alpha-run", 100, false, false),
        report("beta-run", 300, true, false),
    ];
    let out = dir.join("cmp.svg");
    render_svg(&reports, &PlotOptions::default(), &out).expect("plot");
    let svg = std::fs::read_to_string(&out).expect("svg");
    assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
    assert!(svg.trim_end().ends_with("</svg>"));
    for needle in [
        "alpha-run",
        "beta-run",
        "90%",
        "99%",
        "99.9%",
        "latency (ms)",
        "<polyline",
    ] {
        assert!(svg.contains(needle), "{needle:?} missing from the SVG");
    }
    let curves = svg
        .split("<polyline")
        .skip(1)
        .filter(|element| {
            element
                .split(" points=")
                .nth(1)
                .is_some_and(|p| p.split(' ').count() > 50)
        })
        .count();
    assert_eq!(curves, 2, "one percentile curve per run");

    let log = render_svg_string(
        &reports,
        &PlotOptions {
            log_y: true,
            service_time: true,
            title: "service times".into(),
            ..PlotOptions::default()
        },
    )
    .expect("log plot");
    assert!(log.contains("service time (ms), log scale"));
    assert!(log.contains("service times"));
    assert!(render_svg_string(&[], &PlotOptions::default()).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_plot_subcommand_overlays_json_reports() {
    let dir = scratch("plotcli");
    let a = dir.join("a.json");
    let b = dir.join("b.json");
    report("alpha-run", 100, false, false)
        .write_json(&a)
        .expect("write a");
    report("beta-run", 300, true, false)
        .write_json(&b)
        .expect("write b");
    let out = dir.join("cmp.svg");
    let status = Command::new(env!("CARGO_BIN_EXE_verdict-load"))
        .arg("plot")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run verdict-load plot");
    assert!(status.success());
    let svg = std::fs::read_to_string(&out).expect("svg");
    assert!(svg.contains("alpha-run") && svg.contains("beta-run"));

    let table = Command::new(env!("CARGO_BIN_EXE_verdict-load"))
        .arg("table")
        .arg(&a)
        .arg(&b)
        .output()
        .expect("run verdict-load table");
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("alpha-run") && text.contains("beta-run"),
        "{text}"
    );

    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{}").expect("write");
    let failed = Command::new(env!("CARGO_BIN_EXE_verdict-load"))
        .args(["plot", "--out"])
        .arg(dir.join("x.svg"))
        .arg(&bad)
        .output()
        .expect("run");
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("not a verdict-load report"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_binary_needs_no_font_library() {
    let output = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_verdict-load"))
        .output()
        .expect("run ldd");
    let libs = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "ldd failed: {libs}");
    for lib in ["fontconfig", "freetype"] {
        assert!(!libs.contains(lib), "verdict-load links {lib}:\n{libs}");
    }
}
