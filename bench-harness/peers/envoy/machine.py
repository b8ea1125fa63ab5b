"""What the report says about the machine, and the minted token files."""

import datetime
import json
import os
import re
import subprocess
import sys
import time

from common import HERE, KID, ROOT, SIGNING_KEY, log, sh

def machine(args):
    info = {}
    model = ""
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    lscpu = sh(["lscpu"])
    m = re.search(r"^Model name:\s*(.+)$", lscpu, re.M)
    if m:
        model = m.group(1).strip()
    hyp = re.search(r"^Hypervisor vendor:\s*(.+)$", lscpu, re.M)
    info["cpu"] = model + (f" (virtualised, {hyp.group(1).strip()})" if hyp else "")
    info["cores"] = f"{os.cpu_count()} logical CPUs online ({sh(['nproc'])} usable by this process)"
    wanted = ["avx2", "adx", "bmi2", "sha_ni", "aes", "vaes", "vpclmulqdq"]
    have = [f for f in wanted if f in flags] + sorted(f for f in flags if f.startswith("avx512"))
    missing = [f for f in wanted if f not in flags]
    notes = [f"absent: {' '.join(missing)}"] if missing else []
    if not any(f.startswith("avx512") for f in flags):
        notes.append("no avx512*")
    info["flags"] = " ".join(have) + (f" ({'; '.join(notes)})" if notes else "")
    info["kernel"] = sh(["uname", "-srm"])
    info["rustc"] = sh(["rustc", "--version"])
    info["envoy"] = sh([args.envoy, "--version"]).replace("\n", " ").split("version:")[-1].strip()
    info["wrk"] = (sh(["dpkg-query", "-W", "-f=${Version}", "wrk"]) or "?")
    info["verdict"] = sh([args.verdict, "--version"])
    info["verdict_load"] = (sh([args.verdict_load, "--version"])
                            if os.access(args.verdict_load, os.X_OK) else "not built")
    commit = sh(["git", "-C", ROOT, "rev-parse", "HEAD"])
    dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    info["commit"] = commit + (" (working tree has uncommitted changes)" if dirty else "")
    info["uptime_before"] = sh(["uptime"])
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return info


# ---------------------------------------------------------------------------------------------
# tokens and configs


def ensure_tokens(args):
    tdir = os.path.join(args.work_dir, f"tokens-{args.distinct}")
    meta_path = os.path.join(tdir, "meta.json")
    need = True
    if os.path.exists(meta_path) and not args.remint:
        with open(meta_path) as f:
            meta = json.load(f)
        left = meta["exp"] - time.time()
        if meta.get("distinct") == args.distinct and left > 4 * 3600:
            need = False
            log(f"reusing {meta['distinct']} minted tokens in {tdir} (exp in {left / 3600:.1f} h)")
    if need:
        log(f"minting {args.distinct} distinct RS256 tokens (~1 ms of RSA signing each) ...")
        subprocess.run([sys.executable, os.path.join(HERE, "mint_tokens.py"), "--key", SIGNING_KEY,
                        "--kid", KID, "--out-dir", tdir, "--distinct", str(args.distinct)],
                       check=True)
    with open(meta_path) as f:
        meta = json.load(f)
    tokens = {}
    for name in ("repeated", "bad_sig", "wrong_aud", "expired"):
        with open(os.path.join(tdir, f"{name}.tok")) as f:
            tokens[name] = f.read().strip()
    with open(os.path.join(tdir, "distinct.tok")) as f:
        tokens["distinct_first"] = f.readline().strip()
    meta["dir"] = tdir
    return meta, tokens
