#!/usr/bin/env python3
"""Prints the verify benchmarks' medians and ratios as a markdown table.

Reads criterion's results (target/criterion/<group>/<function>[/<param>]/new/estimates.json,
the "median" point estimate, in ns) written by

    cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3

and prints, per algorithm, the medians of aws_lc_raw, verdict_full, verdict_full_map (the full
path plus the claims map) and jsonwebtoken_decode with verdict's throughput relative to each;
then the Ed25519 batch table (per-signature time and speed-up over single aws-lc-rs
verification, for batches signed by one key and by distinct keys); then the parse breakdown;
then the targets. `cargo bench --bench floor` gives the steadier interleaved ratios.

Usage: python3 benches/ratios.py [CRITERION_DIR]   (default: target/criterion, or
$CARGO_TARGET_DIR/criterion). Exit status 1 when a target is missed, 2 when results are missing.
"""

import json
import os
import sys
from pathlib import Path

ALGS = ["RS256", "PS256", "ES256", "ES384", "EdDSA", "HS256"]
BATCH_SIZES = [2, 4, 8, 16, 32, 64, 128]

# (label, kind, subject, target)
TARGETS = [
    ("RS256 verdict_full / aws_lc_raw throughput", "floor", "RS256", 0.95),
    ("ES256 verdict_full / aws_lc_raw throughput", "floor", "ES256", 0.95),
    ("EdDSA verdict_full / aws_lc_raw throughput", "floor", "EdDSA", 0.95),
    ("RS256 verdict_full / jsonwebtoken_decode throughput", "baseline", "RS256", 1.25),
    ("Ed25519 batch-128 (one key) / aws-lc single, per signature", "batch", 128, 3.0),
]


def criterion_dir() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        return Path(target) / "criterion"
    # Relative to the repository root (this file lives in benches/).
    return Path(__file__).resolve().parent.parent / "target" / "criterion"


def median_ns(root: Path, *parts: str):
    path = root.joinpath(*parts, "new", "estimates.json")
    try:
        with path.open() as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def fmt_time(ns) -> str:
    if ns is None:
        return "—"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def fmt_ratio(r) -> str:
    return "—" if r is None else f"{r:.3f}×"


def ratio(slow, fast):
    """Throughput of the second over the first: time(first) / time(second)."""
    if slow is None or fast is None or fast == 0:
        return None
    return slow / fast


def main() -> int:
    root = criterion_dir()
    if not root.is_dir():
        print(f"no criterion results under {root}; run the benchmark first", file=sys.stderr)
        return 2

    floors, baselines = {}, {}
    print("### Per algorithm (median time per token)\n")
    print(
        "| alg | aws_lc_raw | verdict_full | verdict_full_map | jsonwebtoken_decode | "
        "verdict / raw (throughput) | verdict / jsonwebtoken (throughput) | "
        "verdict_full_map / jsonwebtoken |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for alg in ALGS:
        group = f"verify_{alg}"
        raw = median_ns(root, group, "aws_lc_raw")
        full = median_ns(root, group, "verdict_full")
        full_map = median_ns(root, group, "verdict_full_map")
        jwt = median_ns(root, group, "jsonwebtoken_decode")
        if raw is None and full is None and jwt is None:
            continue
        floors[alg] = ratio(raw, full)
        baselines[alg] = ratio(jwt, full)
        print(
            f"| {alg} | {fmt_time(raw)} | {fmt_time(full)} | {fmt_time(full_map)} | "
            f"{fmt_time(jwt)} | {fmt_ratio(floors[alg])} | {fmt_ratio(baselines[alg])} | "
            f"{fmt_ratio(ratio(jwt, full_map))} |"
        )

    print("\n### Ed25519 batch (median time per signature)\n")
    single = median_ns(root, "ed25519_batch", "aws_lc_single")
    print(f"aws-lc-rs single verify: {fmt_time(single)} per signature\n")
    print(
        "| batch size | one key: per signature | one key: speed-up | "
        "distinct keys: per signature | distinct keys: speed-up |"
    )
    print("|---:|---:|---:|---:|---:|")
    speedups, distinct_speedups = {}, {}
    for n in BATCH_SIZES:
        one = median_ns(root, "ed25519_batch", "verify_batch_one_key", str(n))
        many = median_ns(root, "ed25519_batch", "verify_batch", str(n))
        one_per = None if one is None else one / n
        many_per = None if many is None else many / n
        speedups[n] = ratio(single, one_per)
        distinct_speedups[n] = ratio(single, many_per)
        print(
            f"| {n} | {fmt_time(one_per)} | {fmt_ratio(speedups[n])} | "
            f"{fmt_time(many_per)} | {fmt_ratio(distinct_speedups[n])} |"
        )
    for label, table in [("one key", speedups), ("distinct keys", distinct_speedups)]:
        wins = [n for n in BATCH_SIZES if table.get(n) is not None and table[n] > 1.0]
        print(
            f"\nSmallest batch size beating single verification per signature ({label}): "
            + (str(wins[0]) if wins else "none")
        )

    print("\n### Where verdict_full's time goes (RS256 token)\n")
    print("| step | median |")
    print("|---|---:|")
    for name in [
        "parse_compact_RS256",
        "keyset_select",
        "claims_parse_and_check",
        "walk_claims",
        "serde_json_ignored_any_claims",
    ]:
        print(f"| {name} | {fmt_time(median_ns(root, 'parse', name))} |")
    backend = median_ns(root, "verify_RS256", "backend_only")
    print(f"| backend_only (verdict's engine call, RS256) | {fmt_time(backend)} |")
    raw = median_ns(root, "verify_RS256", "aws_lc_raw")
    full = median_ns(root, "verify_RS256", "verdict_full")
    if raw is not None and full is not None:
        print(f"| verdict_full − aws_lc_raw | {fmt_time(full - raw)} |")

    print("\n### Targets\n")
    print("| ratio | measured | target | met |")
    print("|---|---:|---:|:---:|")
    missed = False
    for label, kind, subject, target in TARGETS:
        value = {"floor": floors, "baseline": baselines, "batch": speedups}[kind].get(subject)
        met = value is not None and value >= target
        missed |= not met
        print(
            f"| {label} | {fmt_ratio(value)} | ≥ {target:g}× | "
            f"{'yes' if met else 'NO'} |"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
