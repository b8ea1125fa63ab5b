"""The load: wrk against Envoy (a closed loop at --connections, then one request in flight),
verdict-load against verdict alone, and the choice of one round's figures per row."""

import json
import os
import re
import resource

from common import CLK_TCK, HERE, ROOT, cpu_times, die, loadavg, log, run_tracked


def run_wrk(args, servers, token_file, start, seconds, connections, log_path):
    threads = min(args.threads, connections)
    cmd = args.prio + ["taskset", "-c", servers.cpus["client"], "wrk", "-t", str(threads), "-c",
                       str(connections), "-d", f"{seconds}s", "--timeout", "5s", "--latency",
                       "-s", os.path.join(HERE, "bearer.lua"),
                       f"http://127.0.0.1:{servers.port}/", "--", token_file, str(start),
                       str(threads)]
    done = run_tracked(cmd, seconds + 120)
    with open(log_path, "w") as f:
        f.write(" ".join(cmd) + "\n" + done.stdout + done.stderr)
    if done.returncode != 0:
        die(f"wrk exited with {done.returncode}; see {log_path}\n{done.stderr}")
    m = re.search(r"^WRKJSON (\{.*\})$", done.stdout, re.M)
    if not m:
        die(f"no WRKJSON line from wrk; see {log_path}")
    return json.loads(m.group(1))


def window(args, servers, mix, token_file, offset, seconds, connections, log_path):
    """One measured wrk run: wrk's totals and latency, the servers' CPU time (utime + stime of
    /proc/PID/stat before and after), every CPU's busy share, and the counters it moved."""
    servers.alive()
    (counters0, _), use0, cpus0, load0 = servers.counters(), servers.usage(), cpu_times(), loadavg()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = run_wrk(args, servers, token_file, offset, seconds, connections, log_path)
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    use1, cpus1, load1 = servers.usage(), cpu_times(), loadavg()
    servers.alive()
    counters1, gauges = servers.counters()
    secs = res["duration_us"] / 1e6
    out = {
        "connections": connections,
        "rps": res["requests"] / secs,
        "wrk": res,
        "cpu_s": {k: (use1[k]["user"] + use1[k]["sys"] - use0[k]["user"] - use0[k]["sys"])
                  / CLK_TCK for k in use1},
        "sys_s": {k: (use1[k]["sys"] - use0[k]["sys"]) / CLK_TCK for k in use1},
        "ctxsw": {k: {"voluntary": use1[k]["vcsw"] - use0[k]["vcsw"],
                      "involuntary": use1[k]["ivcsw"] - use0[k]["ivcsw"]} for k in use1},
        "client_cpu_s": (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime),
        "cpu_busy": {c: (cpus1[c][0] - cpus0[c][0]) / max(1, cpus1[c][1] - cpus0[c][1])
                     for c in cpus1},
        "counters": {k: v - counters0.get(k, 0) for k, v in counters1.items()
                     if v - counters0.get(k, 0)},
        "gauges": gauges,
        "load": f"{load0} → {load1}",
    }
    tag = f"{servers.config}/{servers.placement}/{mix} c{connections}"
    non2xx = res["status_errors"]
    log(f"{tag}: {out['rps']:.0f} req/s, p50 {res['p50_us']} µs, p99 {res['p99_us']} µs, "
        f"non-2xx {non2xx}, cpu {out['cpu_s']} (sys {out['sys_s']}), wrk cpu "
        f"{out['client_cpu_s']:.2f} s, counters {out['counters']} {gauges}")
    expected_non2xx = res["requests"] if mix == "none" else 0
    if args.strict and (non2xx != expected_non2xx or res["connect_errors"] or res["read_errors"]
                        or res["write_errors"] or res["timeouts"]):
        die(f"{tag}: {non2xx} non-2xx responses (expected {expected_non2xx}) and socket errors "
            f"{res}; see {servers.work}")
    return out


def measure_http(args, servers, mix, meta, offset):
    """One row: a warm-up and a measured run at --connections (throughput, CPU per call, CPU
    busy), then a measured run with one connection (one request in flight: latency). A distinct
    pool continues across all three, so every measured request carries an unseen token."""
    token_file = {"any": os.path.join(meta["dir"], "repeated.tok"),
                  "none": "none"}.get(mix) or os.path.join(meta["dir"], f"{mix}.tok")
    pool = meta["distinct"]
    sent = 0

    def advance(res, connections):
        # wrk counts completed requests; up to one per connection was sent but not answered when
        # it stopped, and used a token too.
        nonlocal offset, sent
        sent += res["requests"] + connections
        if mix == "distinct":
            offset = (offset + res["requests"] + connections) % pool

    warm = run_wrk(args, servers, token_file, offset, args.warmup, args.connections,
                   os.path.join(servers.work, f"wrk-{mix}-warmup.txt"))
    advance(warm, args.connections)
    tput = window(args, servers, mix, token_file, offset, args.duration, args.connections,
                  os.path.join(servers.work, f"wrk-{mix}-c{args.connections}.txt"))
    advance(tput["wrk"], args.connections)
    lat = None
    if args.latency_duration > 0:
        lat = window(args, servers, mix, token_file, offset, args.latency_duration, 1,
                     os.path.join(servers.work, f"wrk-{mix}-c1.txt"))
        advance(lat["wrk"], 1)
    row = {"config": servers.config, "placement": servers.placement, "cpus": servers.cpus,
           "mix": mix, "tput": tput, "lat": lat,
           "wrapped": mix == "distinct" and sent > pool}
    return row, offset


def measure_verdict_direct(args, meta, mixes, work):
    """(c) verdict's Check throughput without Envoy, through verdict-load (bench-harness/src).

    verdict-load spawns verdict itself, pinned to the verdict CPUs (`--server-cpus`), with the
    client on the client CPUs, and signs its own RS256 tokens with its own key (same algorithm,
    key size and mix, not byte-identical tokens): `repeated` = one token, `distinct` = as many
    distinct tokens as this run's pool sent in sequence, `none` = no credential. Its load mirrors
    what Envoy's ext_authz client offers verdict: one HTTP/2 connection carrying up to
    --connections concurrent Check streams, closed loop.

    TODO(peer comparison, part c): verdict-load was written concurrently with this script; the
    flags and JSON fields used here are those of its `run` command when this was written
    (`--alg --distinct --distribution --credential -c -m --warmup -d --timeout --json`,
    results.{rate,requests,latency.p50/p99/p999 (ms),tally,server_cpu_s,client_cpu_s}). If it
    fails, the rows say so (with its error) instead of a number; fix the invocation here.
    """
    exe = args.verdict_load
    out = {}
    if not os.access(exe, os.X_OK):
        return {m: {"config": "verdict", "placement": "direct", "mix": m,
                    "missing": "TODO: not measured (verdict-load not built)"} for m in mixes}
    for mix in mixes:
        json_path = os.path.join(work, f"verdict-load-{mix}.json")
        log_path = os.path.join(work, f"verdict-load-{mix}.txt")
        cmd = args.prio + [exe, "run", "--spawn", "--verdict-bin", args.verdict,
                           "--server-cpus", args.server_cpus, "--client-cpus", args.client_cpus,
                           "--alg", "RS256", "-c", "1", "-m", str(args.connections),
                           "--warmup", f"{args.warmup}s", "-d", f"{args.duration}s",
                           "--timeout", "5s", "--json", json_path, "--quiet"]
        if mix == "repeated":
            cmd += ["--distinct", "1"]
        elif mix == "distinct":
            cmd += ["--distinct", str(meta["distinct"]), "--distribution", "sequential"]
        else:
            cmd += ["--credential", "none"]
        if os.path.exists(json_path):
            os.remove(json_path)
        log(f"verdict-load ({mix}): {' '.join(cmd)}")
        done = run_tracked(cmd, args.warmup + args.duration + 900)
        output, rc = done.stdout + done.stderr, done.returncode
        with open(log_path, "w") as f:
            f.write(" ".join(cmd) + "\n" + output)
        if rc != 0 or not os.path.exists(json_path):
            why = next((l for l in output.splitlines() if "verdict-load:" in l or "panicked" in l),
                       output.strip().splitlines()[-1] if output.strip() else f"exit {rc}")
            log(f"verdict-load ({mix}) failed (exit {rc}): {why}")
            short = "panic" if "panicked" in why else why.replace("verdict-load:", "").strip()[:80]
            out[mix] = {"config": "verdict", "placement": "direct", "mix": mix,
                        "missing": f"not measured — TODO (c): verdict-load failed (exit {rc}, "
                                   f"{short}; see `{os.path.relpath(log_path, ROOT)}`)"}
            continue
        with open(json_path) as f:
            rep = json.load(f)
        r = rep["results"]
        t = r.get("tally", {})
        denied = sum(t.get("denied", {}).values())
        unexpected = sum(t.get("unexpected", {}).values())
        transport = sum(t.get("transport", {}).values())
        lat = r["latency"]
        ms = lambda v: int(round(v * 1000))  # noqa: E731  ms -> µs
        requests = r["requests"]
        res = {
            "connections": args.connections,
            "rps": r["rate"],
            "wrk": {"requests": requests, "duration_us": int(r["measured_s"] * 1e6),
                    "p50_us": ms(lat["p50"]), "p90_us": ms(lat["p90"]), "p99_us": ms(lat["p99"]),
                    "p999_us": ms(lat["p999"]), "max_us": ms(lat["max"]),
                    "status_errors": denied + unexpected, "connect_errors": 0,
                    "read_errors": transport, "write_errors": 0, "timeouts": 0},
            "cpu_s": {"verdict": r["server_cpu_s"]} if r.get("server_cpu_s") is not None else {},
            "client_cpu_s": r.get("client_cpu_s"),
            "cpu_busy": {},
            "counters": {"verdict-load.allowed": t.get("allowed", 0),
                         **{f"verdict-load.denied.{k}": v for k, v in t.get("denied", {}).items()},
                         **{f"verdict-load.unexpected.{k}": v
                            for k, v in t.get("unexpected", {}).items()},
                         **{f"verdict-load.transport.{k}": v
                            for k, v in t.get("transport", {}).items()}},
            "gauges": {},
            "load": loadavg(),
        }
        log(f"verdict-{mix}: {res['rps']:.0f} checks/s, p50 {res['wrk']['p50_us']} µs, p99 "
            f"{res['wrk']['p99_us']} µs, server cpu {res['cpu_s']}, tally {res['counters']}")
        out[mix] = {"config": "verdict", "placement": "direct",
                    "cpus": {"verdict": args.server_cpus, "client": args.client_cpus},
                    "mix": mix, "tput": res, "lat": None, "wrapped": False}
    return out


def median_of(runs, key):
    """The run whose `key` is the median (the lower one of an even count)."""
    ranked = sorted(runs, key=key)
    return ranked[(len(ranked) - 1) // 2]


def pick_rows(rounds):
    """One row per (configuration, placement, mix) over the rounds: the throughput figures
    (req/s, CPU per call, CPU busy) all from the round with the median req/s, the one-in-flight
    figures all from the round with the median p50, so each half of a row is one coherent
    measurement; plus every round's req/s. Rows no round measured keep their `missing` note."""
    out = []
    for i, first in enumerate(rounds[0]):
        runs = [rnd[i] for rnd in rounds]
        ok = [r for r in runs if not r.get("missing")]
        if not ok:
            out.append(first)
            continue
        row = dict(median_of(ok, lambda r: r["tput"]["rps"]))
        with_lat = [r for r in ok if r.get("lat")]
        if with_lat:
            row["lat"] = median_of(with_lat, lambda r: r["lat"]["wrk"]["p50_us"])["lat"]
        row["rps_rounds"] = [r["tput"]["rps"] for r in ok]
        row["p50_rounds"] = [r["lat"]["wrk"]["p50_us"] for r in with_lat]
        row["rounds_failed"] = len(runs) - len(ok)
        out.append(row)
    return out
