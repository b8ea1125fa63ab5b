#!/usr/bin/env python3
"""Server CPU per check (µs) and checks/s per run label, median over rounds, from verdict-load
JSON reports named LABEL-rN.json (as bench-harness/compare/cache.sh writes them); ratios to the
label given as --base."""
import glob
import json
import os
import re
import statistics
import sys

def main():
    args = sys.argv[1:]
    base = None
    if args and args[0].startswith("--base="):
        base = args.pop(0).split("=", 1)[1]
    directory = args[0] if args else "."
    runs = {}
    for path in glob.glob(os.path.join(directory, "*-r*.json")):
        label = re.sub(r"-r\d+\.json$", "", os.path.basename(path))
        report = json.load(open(path))
        result = report["results"]
        result = result[0] if isinstance(result, list) else result
        if not result.get("requests") or result.get("server_cpu_s") is None:
            continue
        cpu_us = result["server_cpu_s"] / result["requests"] * 1e6
        runs.setdefault(label, []).append((cpu_us, result["rate"], result["server_cores_busy"]))
    base_cpu = statistics.median(c for c, _, _ in runs[base]) if base in runs else None
    print(f"{'label':<18} {'rounds':>6} {'cpu/check µs':>13} {'checks/s':>10} {'srv busy':>9} {'cpu ratio':>10}")
    for label in sorted(runs):
        cpu = statistics.median(c for c, _, _ in runs[label])
        rate = statistics.median(r for _, r, _ in runs[label])
        busy = statistics.median(b for _, _, b in runs[label])
        ratio = f"{cpu / base_cpu:.3f}" if base_cpu else "-"
        print(f"{label:<18} {len(runs[label]):>6} {cpu:>13.2f} {rate:>10.0f} {busy:>9.2f} {ratio:>10}")

main()
