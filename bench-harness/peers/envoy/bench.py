#!/usr/bin/env python3
"""The Envoy peer benchmark: Envoy jwt_authn vs Envoy + verdict (ext_authz over gRPC and over
HTTP, claims in dynamic metadata on and off, Envoy and verdict sharing one CPU or on their own)
vs verdict alone.

Started by run.sh (which installs wrk, the venv with Envoy and builds verdict first); standard
library only. `run.sh --help` lists the options. For every configuration it starts the servers
pinned to their placement, proves they really verify (no token, bad signature, wrong audience
and expired tokens are refused, a valid token gets 200 and its `sub` reaches the upstream
request, a client's copy of the claim header does not), then for each token mix runs a warm-up,
a measured closed loop at --connections and a measured run with one request in flight, and
records wrk's totals and latency, the servers' CPU time, per-CPU busy time and the counters.
The results replace the section between `<!-- peers:envoy begin -->` and
`<!-- peers:envoy end -->` of BENCHMARKS.md (--output).

Modules: common.py (processes, /proc), machine.py (machine description, tokens), servers.py
(configurations and their checks), load.py (wrk, verdict-load, the choice of rounds),
report.py (the section).
"""

import argparse
import json
import os
import shutil
import signal
import sys

from common import ROOT, die, log, on_signal, parse_cpus, set_autogroup_nice, sh, stop_all
from load import measure_http, measure_verdict_direct, pick_rows
from machine import ensure_tokens, machine
from report import MIXES, report
from servers import CONFIGS, EXT, baseline_checks, label, placements, sanity_checks, Servers

# What --rerender restores from results.json (everything the report reads from args).
SAVED_ARGS = ["argv", "duration", "warmup", "latency_duration", "rounds", "connections",
              "threads", "server_cpus", "client_cpus", "envoy_cpus", "verdict_cpus",
              "split_client_cpus", "placements", "config_list", "nice", "jwt_cache_size",
              "encode_raw_headers", "only_authorization", "max_concurrent_streams", "work_dir",
              "autogroup"]

QUICK = {"duration": 2, "warmup": 1, "latency_duration": 2, "rounds": 1, "distinct": 1000,
         "configs": ",".join(["baseline", *EXT]), "mixes": "repeated,none",
         "output": os.path.join(ROOT, "target", "peers-envoy", "quick.md")}
FULL = {"duration": 10, "warmup": 3, "latency_duration": 5, "rounds": 3, "distinct": 200_000,
        "configs": ",".join(CONFIGS), "mixes": "repeated,distinct,none",
        "output": os.path.join(ROOT, "BENCHMARKS.md")}


def parse_args():
    ap = argparse.ArgumentParser(
        prog="run.sh",
        description="Envoy jwt_authn vs Envoy + verdict (ext_authz gRPC / HTTP) vs verdict alone, "
                    "on pinned CPUs; writes its section of BENCHMARKS.md.")
    ap.add_argument("--quick", action="store_true",
                    help="about 2 minutes: 1 round of 1 s warm-up + 2 s + 2 s windows, the floor "
                    "and the ext_authz configurations only, mixes repeated and none, 1000 "
                    "distinct tokens, written to WORK_DIR/quick.md (each can still be overridden)")
    ap.add_argument("--duration", type=int, help="measured seconds at --connections per row "
                    "(10; quick 2)")
    ap.add_argument("--latency-duration", type=int,
                    help="measured seconds with one request in flight per row, after the "
                    "throughput run (5; quick 2; 0 = skip)")
    ap.add_argument("--warmup", type=int, help="warm-up seconds before each row (3; quick 1)")
    ap.add_argument("--rounds", type=int,
                    help="measure every row this many times, in rounds over all configurations "
                    "(fresh processes each round); a row reports its median round (3; quick 1)")
    ap.add_argument("--rerender", action="store_true",
                    help="measure nothing: rewrite the section from the last run's "
                    "WORK_DIR/results.json (after changing the report format)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    ap.add_argument("--threads", type=int, default=0,
                    help="wrk threads (default: one per client CPU)")
    ap.add_argument("--server-cpus", default="0",
                    help="CPUs of the server side: Envoy and verdict in the shared placement, "
                    "Envoy alone (floor, jwt_authn), verdict-load's verdict (0)")
    ap.add_argument("--client-cpus", default="1", help="CPUs of wrk and verdict-load's client (1)")
    ap.add_argument("--envoy-cpus", default=None,
                    help="Envoy's CPUs in the split placement (default: --server-cpus)")
    ap.add_argument("--verdict-cpus", default=None,
                    help="verdict's CPUs in the split placement (default: --client-cpus: on a "
                    "2-CPU machine, the other one)")
    ap.add_argument("--split-client-cpus", default=None,
                    help="wrk's CPUs in the split placement (default: --client-cpus)")
    ap.add_argument("--placements", default="shared,split",
                    help="where the ext_authz configurations run: shared (Envoy and verdict on "
                    "--server-cpus), split (each on its own CPUs) (both)")
    ap.add_argument("--nice", type=int, default=-10 if os.geteuid() == 0 else 0,
                    help="run Envoy, verdict, wrk and verdict-load at this nice value, so that "
                    "other work on a shared machine takes less of their CPUs; where the kernel "
                    "schedules by autogroup (sched_autogroup_enabled), each in a session of its "
                    "own whose autogroup gets this nice value (default: -10 as root, else 0; 0 = "
                    "unchanged)")
    ap.add_argument("--distinct", type=int, help="distinct tokens (200000; quick 1000)")
    ap.add_argument("--remint", action="store_true", help="mint the tokens again")
    ap.add_argument("--jwt-cache-size", type=int, default=10_000)
    ap.add_argument("--max-concurrent-streams", type=int, default=8,
                    help="the ext_authz_mcs configuration's cluster "
                    "http2_protocol_options.max_concurrent_streams (8)")
    ap.add_argument("--encode-raw-headers", action="store_true",
                    help="ext_authz encode_raw_headers: true (default false)")
    ap.add_argument("--only-authorization", action="store_true",
                    help="ext_authz gRPC allowed_headers: only `authorization` goes into the "
                    "CheckRequest (default: all request headers, Envoy's default)")
    ap.add_argument("--configs", help=f"comma-separated subset of {','.join(CONFIGS)} (all; "
                    "quick: baseline and the ext_authz ones)")
    ap.add_argument("--mixes", help="comma-separated subset of repeated,distinct,none (all; quick "
                    "repeated,none; `none` is skipped for jwt_authn_cache, where it equals "
                    "jwt_authn's)")
    ap.add_argument("--no-strict", dest="strict", action="store_false",
                    help="record runs with non-2xx or socket errors instead of failing")
    ap.add_argument("--output", help="file whose section is rewritten (BENCHMARKS.md; quick "
                    "WORK_DIR/quick.md)")
    ap.add_argument("--work-dir", default=os.path.join(ROOT, "target", "peers-envoy"))
    ap.add_argument("--envoy", default=os.path.join(ROOT, ".venv", "bin", "envoy"))
    ap.add_argument("--verdict", default=os.path.join(ROOT, "target", "release", "verdict"))
    ap.add_argument("--verdict-load", default=os.path.join(ROOT, "target", "release",
                                                           "verdict-load"))
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    for k, v in (QUICK if args.quick else FULL).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.prio = ["nice", "-n", str(args.nice)] if args.nice else []
    args.envoy_cpus = args.envoy_cpus or args.server_cpus
    args.verdict_cpus = args.verdict_cpus or args.client_cpus
    args.split_client_cpus = args.split_client_cpus or args.client_cpus
    args.threads = args.threads or len(parse_cpus(args.client_cpus))
    args.placements = [p for p in args.placements.split(",") if p]
    args.config_list = [c for c in args.configs.split(",") if c]
    return args


def finish_args(args):
    """What the report needs beyond the saved options (also after --rerender)."""
    args.cpu_list = parse_cpus
    args.placement_map = placements(args)


def check_args(args):
    if args.connections < args.threads:
        die("--connections must be >= --threads")
    for p in args.placements:
        if p not in ("shared", "split"):
            die(f"unknown placement {p!r}")
    for c in args.config_list:
        if c not in CONFIGS:
            die(f"unknown configuration {c!r}")
    mixes = [m for m in args.mixes.split(",") if m]
    for m in mixes:
        if m not in MIXES or m == "any":
            die(f"unknown mix {m!r}")
    for exe in (args.envoy, args.verdict, shutil.which("wrk"), shutil.which("taskset")):
        if not exe or not os.access(exe, os.X_OK):
            die(f"missing executable {exe} (run.sh installs and builds them)")
    return mixes


def plan(args):
    """The (configuration, placement) pairs of one round, in report order: Envoy alone, then
    each placement's ext_authz configurations, then verdict alone."""
    out = [(c, "shared") for c in args.config_list if c not in EXT and c != "verdict"]
    for pl in args.placements:
        out += [(c, pl) for c in args.config_list if c in EXT]
    return out + [("verdict", "direct")] * ("verdict" in args.config_list)


def one_round(args, rnd, runs, meta, tokens, mixes, checks):
    this = []
    for config, pl in plan(args):
        work = os.path.join(runs, f"round{rnd}", f"{config}-{pl}")
        os.makedirs(work, exist_ok=True)
        if config == "verdict":
            direct = measure_verdict_direct(args, meta, mixes, work)
            this.extend(direct[m] for m in mixes)
            continue
        offset = 0  # each configuration starts with fresh processes and empty caches
        log(f"{label(config, args)} ({pl}): starting")
        servers = Servers(args, config, work, pl, args.placement_map[pl])
        try:
            servers.start()
            key = f"{label(config, args)} ({pl})" if config in EXT else label(config, args)
            checks[key] = (baseline_checks(servers, tokens) if config == "baseline"
                           else sanity_checks(servers, tokens))
            log(f"{config}: checks {checks[key]}")
            for mix in (["any"] if config == "baseline" else
                        [m for m in mixes if m != "none" or config != "jwt_authn_cache"]):
                row, offset = measure_http(args, servers, mix, meta, offset)
                this.append(row)
        finally:
            servers.stop()
    for r in this:
        r["round"] = rnd
    return this


def main():
    args = parse_args()
    finish_args(args)
    mixes = check_args(args)
    if args.rerender:
        with open(os.path.join(args.work_dir, "results.json")) as f:
            saved = json.load(f)
        for k, v in saved["args"].items():
            setattr(args, k, v)
        finish_args(args)
        report(args, saved["machine"], saved["meta"], saved["checks"],
               pick_rows(saved["rounds"]), saved["uptime_after"])
        return

    args.autogroup = set_autogroup_nice(args.nice)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        info = machine(args)
        meta, tokens = ensure_tokens(args)
        runs = os.path.join(args.work_dir, "runs")
        shutil.rmtree(runs, ignore_errors=True)
        checks, rounds = {}, []
        for rnd in range(1, args.rounds + 1):
            log(f"round {rnd}/{args.rounds}")
            rounds.append(one_round(args, rnd, runs, meta, tokens, mixes, checks))
        results = pick_rows(rounds)
        uptime_after = sh(["uptime"])
        saved = {k: getattr(args, k) for k in SAVED_ARGS}
        with open(os.path.join(args.work_dir, "results.json"), "w") as f:
            json.dump({"args": saved, "machine": info, "meta": meta, "checks": checks,
                       "uptime_after": uptime_after, "rounds": rounds, "results": results}, f,
                      indent=2)
        report(args, info, meta, checks, results, uptime_after)
    finally:
        stop_all()


if __name__ == "__main__":
    main()
