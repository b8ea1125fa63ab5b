#!/usr/bin/env python3
"""The Envoy peer benchmark: Envoy jwt_authn vs Envoy + verdict (ext_authz) vs verdict alone.

Started by run.sh (which installs wrk, the venv with Envoy and builds verdict first); standard
library only. `run.sh --help` lists the options. For every configuration it starts the servers
pinned to the server CPU budget, proves they really verify (no token, bad signature, wrong
audience and expired tokens are refused, a valid token gets 200 and its `sub` reaches the
upstream request), then for each token mix runs a warm-up and a measured wrk run pinned to the
client CPUs, and records wrk's totals and latency, the servers' CPU time, per-CPU busy time and
the verification counters (Envoy stats, verdict /metrics). The results replace the section
between `<!-- peers:envoy begin -->` and `<!-- peers:envoy end -->` of BENCHMARKS.md.
"""

import argparse
import datetime
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
BEGIN = "<!-- peers:envoy begin -->"
END = "<!-- peers:envoy end -->"
KID = "example-2026"
SIGNING_KEY = os.path.join(ROOT, "tests", "data", "keys", "example-rs256.pk8")
JWKS = os.path.join(ROOT, "tests", "data", "example", "jwks.json")
CLK_TCK = os.sysconf("SC_CLK_TCK")

CONFIGS = {
    "baseline": "Envoy, no auth filter (floor)",
    "jwt_authn": "Envoy jwt_authn (no cache)",
    "jwt_authn_cache": "Envoy jwt_authn + jwt_cache_config",
    "ext_authz": "Envoy ext_authz → verdict",
    "verdict": "verdict Check direct (verdict-load)",
}
MIXES = {
    "any": "any (token not checked)",
    "repeated": "repeated (1 token)",
    "distinct": "distinct",
    "none": "no token (deny path, all 401)",
}

# What --rerender restores from results.json (everything the report reads from args).
SAVED_ARGS = ["argv", "duration", "warmup", "rounds", "connections", "threads", "server_cpus",
              "client_cpus", "envoy_cpus", "verdict_cpus", "server_cpu_list", "client_cpu_list",
              "envoy_cpu_list", "verdict_cpu_list", "nice", "jwt_cache_size",
              "encode_raw_headers", "only_authorization", "work_dir"]

STARTED = []  # Popen objects this script started; stopped by pid in stop_all()


def log(msg):
    print(f"[peers/envoy] {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"FAILED: {msg}")
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# processes


def stop(proc, grace=5.0):
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


def stop_all():
    while STARTED:
        stop(STARTED.pop())


def on_signal(signum, _frame):
    log(f"signal {signum}: stopping everything this run started")
    stop_all()
    sys.exit(128 + signum)


def start(name, cmd, log_path, env=None):
    logf = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env)
    logf.close()
    proc.bench_name = name
    proc.bench_log = log_path
    STARTED.append(proc)
    return proc


def run_tracked(cmd, timeout):
    """Runs a bounded client (wrk, verdict-load) to completion, stoppable by stop_all()."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    STARTED.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        out, err = proc.communicate()
        err += f"\n[peers/envoy] killed after {timeout} s"
    finally:
        if proc in STARTED:
            STARTED.remove(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, headers=None, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def wait_until(what, proc, probe, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            die(f"{what} exited with {proc.returncode} before it was ready; log: {proc.bench_log}\n"
                + tail(proc.bench_log))
        try:
            if probe():
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    die(f"{what} not ready after {timeout} s; log: {proc.bench_log}\n" + tail(proc.bench_log))


def tail(path, n=30):
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def proc_usage(pid):
    """(utime, stime) in clock ticks and (voluntary, involuntary) context switches of a whole
    process (all threads, summed over /proc/PID/task since the process totals omit switches)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    vol = invol = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol += int(line.split()[1])
        except OSError:
            pass
    # fields 14 and 15 of proc(5), counted after "pid (comm)"
    return {"user": int(fields[11]), "sys": int(fields[12]), "vcsw": vol, "ivcsw": invol}


def cpu_times():
    """Per-CPU (busy, total) jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+)\s+(.*)", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                idle = v[3] + (v[4] if len(v) > 4 else 0)
                total = sum(v[:8])
                out[int(m.group(1))] = (total - idle, total)
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def parse_cpus(spec):
    cpus = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-")
            cpus.extend(range(int(lo), int(hi) + 1))
        elif part:
            cpus.append(int(part))
    if not cpus:
        die(f"empty CPU list {spec!r}")
    return sorted(set(cpus))


# ---------------------------------------------------------------------------------------------
# machine description


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except OSError:
        return ""


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


def render(template, out_path, values):
    with open(os.path.join(HERE, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        die(f"{template}: unreplaced {left}")
    with open(out_path, "w") as f:
        f.write(text)
    return out_path


def verdict_toml(path, grpc_port, admin_port, workers):
    with open(path, "w") as f:
        f.write(f"""# Rendered by bench-harness/peers/envoy/bench.py: the same rules as Envoy's jwt_authn provider.
[server]
grpc_listen = "127.0.0.1:{grpc_port}"
admin_listen = "127.0.0.1:{admin_port}"
workers = {workers}

[[providers]]
name = "corp"
issuer = "https://idp.example.com"
audiences = ["api://orders"]
jwks_file = "jwks.json"
algorithms = ["RS256"]
leeway_s = 30
claims_to_headers = {{ sub = "x-verdict-sub" }}
""")
    return path


# ---------------------------------------------------------------------------------------------
# servers


class Servers:
    """One configuration's processes: Envoy, plus verdict for ext_authz."""

    def __init__(self, args, config, work):
        self.args, self.config, self.work = args, config, work
        self.envoy = self.verdict = None
        self.port = self.admin = self.verdict_admin = self.verdict_grpc = None

    def start(self):
        a = self.args
        if self.config == "ext_authz":
            self.verdict_grpc, self.verdict_admin = free_port(), free_port()
            toml = verdict_toml(os.path.join(self.work, "verdict.toml"), self.verdict_grpc,
                                self.verdict_admin, len(a.verdict_cpu_list))
            shutil.copy(JWKS, os.path.join(self.work, "jwks.json"))
            check = subprocess.run([a.verdict, "check-config", toml], capture_output=True, text=True)
            if check.returncode != 0:
                die(f"verdict check-config {toml}: {check.stdout}{check.stderr}")
            self.verdict = start("verdict", a.prio + ["taskset", "-c", a.verdict_cpus, a.verdict, "serve",
                                             "--config", toml],
                                 os.path.join(self.work, "verdict.log"))
            wait_until("verdict", self.verdict,
                       lambda: http_get(self.verdict_admin, "/readyz")[0] == 200)
        self.port, self.admin = free_port(), free_port()
        values = {"LISTEN_PORT": self.port, "ADMIN_PORT": self.admin}
        if self.config == "baseline":
            template = "envoy-baseline.yaml"
        elif self.config == "ext_authz":
            values.update(VERDICT_PORT=self.verdict_grpc,
                          ENCODE_RAW_HEADERS="true" if a.encode_raw_headers else "false",
                          ALLOWED_HEADERS=("allowed_headers: { patterns: [ { exact: authorization "
                                           "} ] }" if a.only_authorization else ""))
            template = "envoy-ext_authz.yaml"
        else:
            cache = (f"jwt_cache_config: {{ jwt_cache_size: {a.jwt_cache_size} }}"
                     if self.config == "jwt_authn_cache" else "")
            values.update(JWKS_FILE=JWKS, JWT_CACHE_CONFIG=cache)
            template = "envoy-jwt_authn.yaml"
        yaml = render(template, os.path.join(self.work, "envoy.yaml"), values)
        self.envoy = start("envoy", a.prio + ["taskset", "-c", a.envoy_cpus, a.envoy, "-c", yaml,
                                     "--concurrency", str(len(a.envoy_cpu_list)),
                                     "--disable-hot-restart", "--log-level", "warn"],
                           os.path.join(self.work, "envoy.log"))
        wait_until("envoy", self.envoy, lambda: http_get(self.admin, "/ready")[0] == 200)
        want = (200,) if self.config == "baseline" else (401, 403)
        wait_until("envoy listener", self.envoy, lambda: http_get(self.port, "/")[0] in want)

    def procs(self):
        return [p for p in (self.envoy, self.verdict) if p is not None]

    def alive(self):
        for p in self.procs():
            if p.poll() is not None:
                die(f"{p.bench_name} died (exit {p.returncode}); log {p.bench_log}\n"
                    + tail(p.bench_log))

    def usage(self):
        return {p.bench_name: proc_usage(p.pid) for p in self.procs()}

    def counters(self):
        """Verification counters: Envoy's filter stats, verdict's checks by result."""
        out = {}
        if self.envoy is not None:
            _, _, body = http_get(self.admin, "/stats?filter=jwt_authn|ext_authz")
            for line in body.decode().splitlines():
                name, _, value = line.partition(": ")
                if value.strip().isdigit() and ("ingress." in name):
                    short = name.split("ingress.", 1)[1]
                    out[f"envoy.{short}"] = int(value)
        if self.verdict is not None:
            _, _, body = http_get(self.verdict_admin, "/metrics")
            for line in body.decode().splitlines():
                m = re.match(r'verdict_checks_total\{(.*)\}\s+(\d+)', line)
                if m:
                    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
                    key = f"verdict.{labels.get('result')}.{labels.get('reason')}"
                    out[key] = out.get(key, 0) + int(m.group(2))
        return out

    def stop(self):
        for p in (self.envoy, self.verdict):
            if p is not None:
                stop(p)
                if p in STARTED:
                    STARTED.remove(p)


def sanity_checks(servers, tokens, meta):
    """Prove the configuration verifies before measuring it; returns {check: status}."""
    port = servers.port
    results = {}
    expect = {
        "no token": ({}, (401,)),
        "bad signature": ({"Authorization": f"Bearer {tokens['bad_sig']}"}, (401,)),
        # jwt_authn answers 403 for an audience mismatch; verdict 401 (invalid_token).
        "wrong aud": ({"Authorization": f"Bearer {tokens['wrong_aud']}"}, (401, 403)),
        "expired": ({"Authorization": f"Bearer {tokens['expired']}"}, (401,)),
    }
    for name, (headers, ok) in expect.items():
        status, _, _ = http_get(port, "/", headers)
        if status not in ok:
            die(f"{servers.config}: {name} got {status}, expected one of {ok}")
        results[name] = str(status)
    for name, tok in (("valid (repeated)", tokens["repeated"]),
                      ("valid (distinct #1)", tokens["distinct_first"])):
        status, headers, _ = http_get(port, "/", {"Authorization": f"Bearer {tok}"})
        sub = headers.get("x-seen-sub", "")
        if status != 200 or not sub.startswith("user-"):
            die(f"{servers.config}: {name} got {status} with x-seen-sub {sub!r}, expected 200 and "
                "the token's sub")
        results[name] = f"{status}, sub → {sub}"
    return results


def baseline_checks(servers, tokens):
    """The floor has no auth filter: everything gets 200, and no claim header appears."""
    results = {}
    for name, headers in (("no token", {}),
                          ("bad signature", {"Authorization": f"Bearer {tokens['bad_sig']}"}),
                          ("valid (repeated)", {"Authorization": f"Bearer {tokens['repeated']}"})):
        status, got, _ = http_get(servers.port, "/", headers)
        if status != 200 or got.get("x-seen-sub"):
            die(f"baseline: {name} got {status} x-seen-sub {got.get('x-seen-sub')!r}")
        results[name] = f"{status} (not checked)"
    return results


# ---------------------------------------------------------------------------------------------
# load


def run_wrk(args, servers, token_file, start, seconds, log_path):
    cmd = args.prio + ["taskset", "-c", args.client_cpus, "wrk", "-t", str(args.threads), "-c",
           str(args.connections), "-d", f"{seconds}s", "--timeout", "5s", "--latency", "-s",
           os.path.join(HERE, "bearer.lua"), f"http://127.0.0.1:{servers.port}/", "--",
           token_file, str(start), str(args.threads)]
    done = run_tracked(cmd, seconds + 120)
    with open(log_path, "w") as f:
        f.write(" ".join(cmd) + "\n" + done.stdout + done.stderr)
    if done.returncode != 0:
        die(f"wrk exited with {done.returncode}; see {log_path}\n{done.stderr}")
    m = re.search(r"^WRKJSON (\{.*\})$", done.stdout, re.M)
    if not m:
        die(f"no WRKJSON line from wrk; see {log_path}")
    return json.loads(m.group(1))


def measure_http(args, servers, mix, meta, offset):
    token_file = {"any": os.path.join(meta["dir"], "repeated.tok"),
                  "none": "none"}.get(mix) or os.path.join(meta["dir"], f"{mix}.tok")
    tag = f"{servers.config}-{mix}"
    warm = run_wrk(args, servers, token_file, offset, args.warmup,
                   os.path.join(servers.work, f"wrk-{mix}-warmup.txt"))
    # wrk counts completed requests; up to one per connection was sent but not answered when it
    # stopped, and used a token too.
    offset = ((offset + warm["requests"] + args.connections) % meta["distinct"]
              if mix == "distinct" else 0)
    servers.alive()
    counters0, use0, cpus0, load0 = servers.counters(), servers.usage(), cpu_times(), loadavg()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = run_wrk(args, servers, token_file, offset, args.duration,
                  os.path.join(servers.work, f"wrk-{mix}.txt"))
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    use1, cpus1, load1 = servers.usage(), cpu_times(), loadavg()
    servers.alive()
    counters1 = servers.counters()
    if mix == "distinct":
        offset = (offset + res["requests"] + args.connections) % meta["distinct"]
    secs = res["duration_us"] / 1e6
    out = {
        "config": servers.config,
        "mix": mix,
        "rps": res["requests"] / secs,
        "wrk": res,
        "cpu_s": {k: (use1[k]["user"] + use1[k]["sys"] - use0[k]["user"] - use0[k]["sys"]) / CLK_TCK
                  for k in use1},
        "sys_s": {k: (use1[k]["sys"] - use0[k]["sys"]) / CLK_TCK for k in use1},
        "ctxsw": {k: {"voluntary": use1[k]["vcsw"] - use0[k]["vcsw"],
                      "involuntary": use1[k]["ivcsw"] - use0[k]["ivcsw"]} for k in use1},
        "client_cpu_s": (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime),
        "cpu_busy": {c: (cpus1[c][0] - cpus0[c][0]) / max(1, cpus1[c][1] - cpus0[c][1])
                     for c in cpus1},
        "counters": {k: v - counters0.get(k, 0) for k, v in counters1.items()
                     if v - counters0.get(k, 0)},
        "load": f"{load0} → {load1}",
        "wrapped": mix == "distinct" and (warm["requests"] + res["requests"]
                                          + 2 * args.connections) > meta["distinct"],
    }
    non2xx = res["status_errors"]
    log(f"{tag}: {out['rps']:.0f} req/s, p50 {res['p50_us']} µs, p99 {res['p99_us']} µs, "
        f"non-2xx {non2xx}, cpu {out['cpu_s']} (sys {out['sys_s']}), wrk cpu "
        f"{out['client_cpu_s']:.2f} s, ctxsw {out['ctxsw']}, counters {out['counters']}")
    expected_non2xx = res["requests"] if mix == "none" else 0
    if args.strict and (non2xx != expected_non2xx or res["connect_errors"] or res["read_errors"]
                        or res["write_errors"] or res["timeouts"]):
        die(f"{tag}: {non2xx} non-2xx responses (expected {expected_non2xx}) and socket errors "
            f"{res}; see {servers.work}")
    return out, offset


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
        return {m: {"config": "verdict", "mix": m,
                    "missing": "TODO: not measured (verdict-load not built)"} for m in mixes}
    for mix in mixes:
        json_path = os.path.join(work, f"verdict-load-{mix}.json")
        log_path = os.path.join(work, f"verdict-load-{mix}.txt")
        cmd = args.prio + [exe, "run", "--spawn", "--verdict-bin", args.verdict,
                           "--server-cpus", args.verdict_cpus, "--client-cpus", args.client_cpus,
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
            out[mix] = {"config": "verdict", "mix": mix,
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
            "config": "verdict",
            "mix": mix,
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
            "load": loadavg(),
            "wrapped": False,
        }
        log(f"verdict-{mix}: {res['rps']:.0f} checks/s, p50 {res['wrk']['p50_us']} µs, p99 "
            f"{res['wrk']['p99_us']} µs, server cpu {res['cpu_s']}, tally {res['counters']}")
        out[mix] = res
    return out


def best_rows(rounds):
    """One row per (configuration, mix): the round with the highest req/s, plus every round's
    req/s; rows no round measured keep their `missing` note. Best, not median: on a shared
    machine other processes can only take throughput away, so the best round is the closest to
    what the pinned budget gives undisturbed."""
    out = []
    for i, first in enumerate(rounds[0]):
        runs = [rnd[i] for rnd in rounds]
        ok = sorted((r for r in runs if not r.get("missing")), key=lambda r: r["rps"])
        if not ok:
            out.append(first)
            continue
        row = dict(ok[-1])
        row["rps_rounds"] = [r["rps"] for r in ok]
        row["rounds_failed"] = len(runs) - len(ok)
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------
# report


def fmt_us(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def report(args, info, meta, checks, results, uptime_after):
    cmd = "bench-harness/peers/envoy/run.sh" + (f" {' '.join(args.argv)}" if args.argv else "")
    envoy_conc = len(args.envoy_cpu_list)
    if args.verdict_cpus == args.envoy_cpus:
        split = (f"Envoy and verdict share CPU(s) {args.envoy_cpus} (Envoy `--concurrency "
                 f"{envoy_conc}`, verdict `workers = {len(args.verdict_cpu_list)}`)")
    else:
        split = (f"Envoy on CPU(s) {args.envoy_cpus} (`--concurrency {envoy_conc}`), verdict on "
                 f"CPU(s) {args.verdict_cpus} (`workers = {len(args.verdict_cpu_list)}`)")
    L = []
    L.append(BEGIN)
    L.append("## Peer comparison: Envoy jwt_authn vs Envoy + verdict (ext_authz)")
    L.append("")
    L.append("Written by `bench-harness/peers/envoy/run.sh`; everything between the `peers:envoy` "
             "markers is regenerated by:")
    L.append("")
    L.append("```sh")
    L.append(cmd)
    L.append("```")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    for k, label in (("date", "run at"), ("commit", "git commit"), ("cpu", "CPU"),
                     ("cores", "cores"), ("flags", "crypto CPU flags"), ("kernel", "kernel"),
                     ("rustc", "rustc"), ("verdict", "verdict"),
                     ("verdict_load", "verdict-load"), ("envoy", "Envoy"),
                     ("wrk", "wrk (Debian)")):
        L.append(f"| {label} | {info[k]} |")
    L.append(f"| load before (`uptime`) | {info['uptime_before']} |")
    L.append(f"| load after (`uptime`) | {uptime_after} |")
    L.append("")
    L.append("Setup:")
    L.append("")
    L.append(f"- CPU budget: server side on CPU(s) {args.server_cpus}, load generator on CPU(s) "
             f"{args.client_cpus} (`taskset`). For Envoy + verdict: {split}. jwt_authn Envoy "
             f"uses the same `--concurrency {envoy_conc}` on CPU(s) {args.envoy_cpus}.")
    L.append(f"- Load: wrk, HTTP/1.1 keep-alive, closed loop, `-t{args.threads} "
             f"-c{args.connections}`, {args.warmup} s warm-up (not recorded) then {args.duration} s "
             f"measured per row, in {args.rounds} round(s) over all configurations (fresh "
             "processes each round); each row shows its best round by req/s (all its other "
             "columns come from that round: other processes on a shared machine can only take "
             "throughput away) and the range over the rounds. Latency is "
             "wrk's (closed loop: from send to response, not corrected for coordinated omission).")
    L.append(f"- Tokens: RS256 (2048-bit key `{KID}`), PyJWT-minted, iss `{meta['issuer']}`, aud "
             f"`{meta['audience']}`, exp = mint time + 1 day. *repeated*: every request carries the "
             f"same token. *distinct*: {meta['distinct']} distinct tokens (own `jti`/`sub`) sent in "
             "turn, one per request, continuing across warm-up and measured run so the measured "
             "run starts on unseen tokens.")
    L.append("- Rules on both sides: issuer, audience, `exp` required, 30 s clock skew, RS256 only, "
             "claim `sub` → request header `x-verdict-sub`. Upstream: Envoy's `direct_response` "
             "200 (echoing `x-verdict-sub` as `x-seen-sub`), so the upstream costs nothing.")
    has_cache = os.path.isdir(os.path.join(ROOT, "src", "cache"))
    L.append(f"- `jwt_cache_config`: `jwt_cache_size: {args.jwt_cache_size}` (smaller than the "
             "distinct pool, which is sent in order, so distinct tokens always miss). "
             + ("verdict has its verified-token cache (`src/cache/`) with its default settings."
                if has_cache else "verdict at this commit has no verified-token cache yet (no "
                "`src/cache/`): every Check verifies the signature, so its repeated and distinct "
                "rows do the same work."))
    L.append(f"- verdict direct (c): `verdict-load run --spawn` (the repository's gRPC load "
             f"generator) starts verdict on CPU(s) {args.verdict_cpus} with the client on CPU(s) "
             f"{args.client_cpus} and sends ext_authz Checks on one HTTP/2 connection with "
             f"{args.connections} concurrent streams (what Envoy's ext_authz client offers verdict "
             "in (b)), with its own RS256 key and the same mixes; its latency is measured from "
             "each request's send (closed loop); *non-2xx* there counts denied checks. Its client "
             "has the client CPU(s) only: where *server CPU share got* stays well below 100% the "
             "client, not verdict, was the limit, and *req/s per server core* is the better "
             "figure of verdict's capacity.")
    L.append("- *no token* rows: no `Authorization` header, every answer a 401 — the cheapest deny "
             "path, i.e. each configuration's cost without any signature work.")
    if args.nice:
        L.append(f"- Envoy, verdict, wrk and verdict-load ran at `nice -n {args.nice}` so that other work on the "
                 "shared machine (builds) takes less of their CPUs.")
    L.append(f"- ext_authz: gRPC (`envoy_grpc`, HTTP/2 cluster), `encode_raw_headers: "
             f"{'true' if args.encode_raw_headers else 'false'}`, `failure_mode_allow: false`, "
             + ("`allowed_headers`: `authorization` only." if args.only_authorization else
                "all request headers sent (no `allowed_headers`)."))
    L.append("")
    L.append(f"| configuration | token mix | req/s (best of {args.rounds}) | req/s range | p50 | "
             "p99 | p99.9 | non-2xx | socket errors | server CPU per request | req/s per server "
             "core | server CPU share got | server / client CPU busy |")
    L.append("|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|")
    server_cpus, client_cpus = args.server_cpu_list, args.client_cpu_list
    for r in results:
        if r.get("missing"):
            L.append(f"| {CONFIGS[r['config']]} | {MIXES[r['mix']]} | {r['missing']} | | | | | | | | | "
                     "| | |")
            continue
        w = r["wrk"]
        sock = w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"]
        per_req = " + ".join(f"{k} {v / w['requests'] * 1e6:.0f} µs"
                             for k, v in sorted(r["cpu_s"].items()))
        total = sum(r["cpu_s"].values()) / w["requests"] * 1e6
        if len(r["cpu_s"]) > 1:
            per_req += f" = {total:.0f} µs"
        # keys are CPU numbers; strings after a JSON round trip (--rerender)
        busy = {int(k): v for k, v in (r.get("cpu_busy") or {}).items()}
        busy_s = " ".join(f"{busy[c] * 100:.0f}%" for c in server_cpus if c in busy)
        busy_c = " ".join(f"{busy[c] * 100:.0f}%" for c in client_cpus if c in busy)
        secs = w["duration_us"] / 1e6
        share = sum(r["cpu_s"].values()) / (secs * len(server_cpus)) if r["cpu_s"] else None
        per_core = f"{1e6 / total:,.0f}" if r["cpu_s"] and total > 0 else ""
        mix = MIXES[r["mix"]] + (" ⚠ pool wrapped" if r.get("wrapped") else "")
        rr = r.get("rps_rounds") or [r["rps"]]
        rng = f"{min(rr):,.0f}–{max(rr):,.0f}" + (f" ({r['rounds_failed']} failed)"
                                                  if r.get("rounds_failed") else "")
        L.append(f"| {CONFIGS[r['config']]} | {mix} | {r['rps']:,.0f} | {rng} | {fmt_us(w['p50_us'])} | "
                 f"{fmt_us(w['p99_us'])} | {fmt_us(w['p999_us'])} | {w['status_errors']} | {sock} | "
                 f"{per_req} | {per_core} | {'' if share is None else f'{share * 100:.0f}%'} | "
                 f"{busy_s} / {busy_c} |" if busy else
                 f"| {CONFIGS[r['config']]} | {mix} | {r['rps']:,.0f} | {rng} | {fmt_us(w['p50_us'])} | "
                 f"{fmt_us(w['p99_us'])} | {fmt_us(w['p999_us'])} | {w['status_errors']} | {sock} | "
                 f"{per_req} | {per_core} | {'' if share is None else f'{share * 100:.0f}%'} | |")
    L.append("")
    L.append("*server CPU per request*: user + system CPU time of the Envoy and verdict processes "
             "during the measured run (`/proc/PID/stat`) divided by completed requests; *req/s per "
             "server core* is its inverse, the throughput one fully used core would give, which "
             "is less sensitive to other load on a shared machine than req/s. *server CPU share "
             "got*: that CPU time over the run's duration × server CPUs (below ~95% the servers "
             "waited, or other processes took the CPU). *CPU busy*: share of the run each pinned "
             "CPU was not idle (`/proc/stat`, whatever ran there).")
    L.append("")
    # ratios
    by = {(r["config"], r["mix"]): r for r in results if not r.get("missing")}

    def per_core(r):
        return r["wrk"]["requests"] / max(1e-9, sum(r["cpu_s"].values()))

    lines = []
    for mix in MIXES:
        ext = by.get(("ext_authz", mix))
        for base in ("jwt_authn", "jwt_authn_cache"):
            b = by.get((base, mix))
            if ext and b:
                lines.append(f"- {MIXES[mix]}: Envoy → verdict serves {ext['rps'] / b['rps']:.2f}× "
                             f"the req/s of {CONFIGS[base]} ({ext['rps']:,.0f} vs {b['rps']:,.0f}); "
                             f"per server core {per_core(ext) / per_core(b):.2f}× "
                             f"({per_core(ext):,.0f} vs {per_core(b):,.0f}).")
    for mix in MIXES:
        ext, direct = by.get(("ext_authz", mix)), by.get(("verdict", mix))
        if ext and direct:
            lines.append(f"- {MIXES[mix]}: verdict alone answers {direct['rps'] / ext['rps']:.1f}× "
                         f"the checks/s it gets through Envoy on the same budget "
                         f"({direct['rps']:,.0f} vs {ext['rps']:,.0f}); per server core "
                         f"{per_core(direct) / per_core(ext):.1f}×.")
    def us(r, name):
        return r["cpu_s"].get(name, 0) / r["wrk"]["requests"] * 1e6

    floor = by.get(("baseline", "any"))
    for mix in ("repeated", "distinct", "none"):
        ext, jwt = by.get(("ext_authz", mix)), by.get(("jwt_authn", mix))
        if floor and ext and jwt:
            f = us(floor, "envoy")
            lines.append(
                f"- {MIXES[mix]}, CPU per request above Envoy's floor ({f:.0f} µs): jwt_authn "
                f"{us(jwt, 'envoy') - f:.0f} µs (its whole check); ext_authz: Envoy "
                f"{us(ext, 'envoy') - f:.0f} µs for the call alone + verdict {us(ext, 'verdict'):.0f}"
                " µs.")
    if lines:
        L.append("Ratios (from the table):")
        L.append("")
        L.extend(lines)
        L.append("")
    L.append("Verification counters during each measured run (Envoy admin `/stats`, verdict "
             "`verdict_checks_total`):")
    L.append("")
    L.append("| configuration | token mix | counters |")
    L.append("|---|---|---|")
    for r in results:
        if r.get("missing"):
            continue
        c = ", ".join(f"`{k}` {v}" for k, v in sorted(r["counters"].items())) or "—"
        L.append(f"| {CONFIGS[r['config']]} | {MIXES[r['mix']]} | {c} |")
    L.append("")
    L.append("Checks made through each configuration before measuring it (HTTP status; a valid "
             "token's `sub` must reach the upstream request):")
    L.append("")
    names = ["no token", "bad signature", "wrong aud", "expired", "valid (repeated)",
             "valid (distinct #1)"]
    L.append("| configuration | " + " | ".join(names) + " |")
    L.append("|---|" + "---|" * len(names))
    for cfg, res in checks.items():
        L.append(f"| {CONFIGS[cfg]} | " + " | ".join(res.get(n, "") for n in names) + " |")
    L.append("")
    L.append(f"Raw wrk output, rendered configs and server logs: `{os.path.relpath(args.work_dir, ROOT)}/runs/`.")
    L.append(END)
    section = "\n".join(L) + "\n"

    path = args.output
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    else:
        text = ("# verdict benchmarks\n\nEvery section below is regenerated by the command it "
                "names; do not edit inside the markers.\n")
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        _, post = rest.split(END, 1)
        text = pre + section.rstrip("\n") + post
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    log(f"wrote {path}")


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(
        prog="run.sh",
        description="Envoy jwt_authn vs Envoy + verdict (ext_authz) vs verdict alone, on one pinned "
                    "CPU budget; writes its section of BENCHMARKS.md.")
    ap.add_argument("--duration", type=int, default=10, help="measured seconds per row (10)")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up seconds before each row (3)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="measure every row this many times, in rounds over all configurations "
                    "(fresh processes each round), and report each row's best round by req/s "
                    "with the range (3)")
    ap.add_argument("--rerender", action="store_true",
                    help="measure nothing: rewrite the BENCHMARKS.md section from the last run's "
                    "WORK_DIR/results.json (after changing this script's report format)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    ap.add_argument("--threads", type=int, default=0,
                    help="wrk threads (default: one per client CPU)")
    ap.add_argument("--server-cpus", default="0", help="CPU list of the server side (0)")
    ap.add_argument("--client-cpus", default="1", help="CPU list of wrk (1)")
    ap.add_argument("--envoy-cpus", default=None, help="Envoy's CPUs (default: --server-cpus)")
    ap.add_argument("--verdict-cpus", default=None,
                    help="verdict's CPUs (default: --server-cpus, shared with Envoy)")
    ap.add_argument("--nice", type=int, default=-10 if os.geteuid() == 0 else 0,
                    help="run Envoy, verdict, wrk and verdict-load at this nice value, so that "
                    "other work on a shared machine takes less of their CPUs (default: -10 as "
                    "root, else 0; 0 = unchanged)")
    ap.add_argument("--distinct", type=int, default=200_000, help="distinct tokens (200000)")
    ap.add_argument("--remint", action="store_true", help="mint the tokens again")
    ap.add_argument("--jwt-cache-size", type=int, default=10_000)
    ap.add_argument("--encode-raw-headers", action="store_true",
                    help="ext_authz encode_raw_headers: true (default false)")
    ap.add_argument("--only-authorization", action="store_true",
                    help="ext_authz allowed_headers: only `authorization` goes into the "
                    "CheckRequest (default: all request headers, Envoy's default)")
    ap.add_argument("--configs", default=",".join(CONFIGS),
                    help=f"comma-separated subset of {','.join(CONFIGS)}")
    ap.add_argument("--mixes", default="repeated,distinct,none",
                    help="comma-separated subset of repeated,distinct,none (default: all; `none` "
                    "is skipped for jwt_authn_cache, where it equals jwt_authn's)")
    ap.add_argument("--no-strict", dest="strict", action="store_false",
                    help="record runs with non-2xx or socket errors instead of failing")
    ap.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--work-dir", default=os.path.join(ROOT, "target", "peers-envoy"))
    ap.add_argument("--envoy", default=os.path.join(ROOT, ".venv", "bin", "envoy"))
    ap.add_argument("--verdict", default=os.path.join(ROOT, "target", "release", "verdict"))
    ap.add_argument("--verdict-load", default=os.path.join(ROOT, "target", "release", "verdict-load"))
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    args.prio = ["nice", "-n", str(args.nice)] if args.nice else []

    args.server_cpu_list = parse_cpus(args.server_cpus)
    args.client_cpu_list = parse_cpus(args.client_cpus)
    args.envoy_cpus = args.envoy_cpus or args.server_cpus
    args.verdict_cpus = args.verdict_cpus or args.server_cpus
    args.envoy_cpu_list = parse_cpus(args.envoy_cpus)
    args.verdict_cpu_list = parse_cpus(args.verdict_cpus)
    for name, lst in (("envoy", args.envoy_cpu_list), ("verdict", args.verdict_cpu_list)):
        if not set(lst) <= set(args.server_cpu_list):
            die(f"--{name}-cpus must lie within --server-cpus")
    if set(args.server_cpu_list) & set(args.client_cpu_list):
        log("warning: server and client CPU lists overlap")
    args.threads = args.threads or len(args.client_cpu_list)
    if args.connections < args.threads:
        die("--connections must be >= --threads")
    configs = [c for c in args.configs.split(",") if c]
    mixes = [m for m in args.mixes.split(",") if m]
    for c in configs:
        if c not in CONFIGS:
            die(f"unknown configuration {c!r}")
    for m in mixes:
        if m not in MIXES or m == "any":
            die(f"unknown mix {m!r}")
    for exe in (args.envoy, args.verdict, shutil.which("wrk"), shutil.which("taskset")):
        if not exe or not os.access(exe, os.X_OK):
            die(f"missing executable {exe} (run.sh installs and builds them)")

    if args.rerender:
        with open(os.path.join(args.work_dir, "results.json")) as f:
            saved = json.load(f)
        for k, v in saved["args"].items():
            if k != "output":
                setattr(args, k, v)
        results = best_rows(saved["rounds"])
        report(args, saved["machine"], saved["meta"], saved["checks"], results,
               saved["uptime_after"])
        return

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
            this = []
            for config in configs:
                offset = 0  # each configuration starts with fresh processes and empty caches
                work = os.path.join(runs, f"round{rnd}", config)
                os.makedirs(work, exist_ok=True)
                if config == "verdict":
                    direct = measure_verdict_direct(args, meta, mixes, work)
                    this.extend(direct[m] for m in mixes)
                    continue
                log(f"{CONFIGS[config]}: starting")
                servers = Servers(args, config, work)
                try:
                    servers.start()
                    checks[config] = (baseline_checks(servers, tokens) if config == "baseline"
                                      else sanity_checks(servers, tokens, meta))
                    log(f"{config}: checks {checks[config]}")
                    for mix in (["any"] if config == "baseline" else
                                [m for m in mixes if m != "none" or config != "jwt_authn_cache"]):
                        r, offset = measure_http(args, servers, mix, meta, offset)
                        this.append(r)
                finally:
                    servers.stop()
            for r in this:
                r["round"] = rnd
            rounds.append(this)
        results = best_rows(rounds)
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
