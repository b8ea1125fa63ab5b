"""The configurations of the Envoy peer benchmark: which processes each starts, where they are
pinned, and the checks that prove each really verifies before it is measured."""

import os
import re
import shutil
import subprocess

from common import HERE, JWKS, die, free_port, http_get, proc_usage, start, stop, tail, \
    wait_until, STARTED

CONFIGS = {
    "baseline": "Envoy, no auth filter (floor)",
    "jwt_authn": "Envoy jwt_authn (no cache)",
    "jwt_authn_cache": "Envoy jwt_authn + jwt_cache_config",
    "ext_authz": "Envoy ext_authz gRPC → verdict, metadata off",
    "ext_authz_meta": "Envoy ext_authz gRPC → verdict, metadata on (all claims)",
    "ext_authz_http": "Envoy ext_authz http_service → verdict forward auth",
    "ext_authz_mcs": "Envoy ext_authz gRPC → verdict, metadata off, cluster "
                     "max_concurrent_streams",
    "verdict": "verdict Check direct (verdict-load)",
}
# The configurations where Envoy calls verdict: they run in every placement (--placements);
# the others run once, with their server side on --server-cpus.
EXT = ("ext_authz", "ext_authz_meta", "ext_authz_http", "ext_authz_mcs")


def label(config, args):
    if config == "ext_authz_mcs":
        return f"{CONFIGS[config]} {args.max_concurrent_streams}"
    return CONFIGS[config]


def placements(args):
    """{name: {envoy, verdict, client}} CPU lists (taskset syntax) of each placement."""
    return {
        "shared": {"envoy": args.server_cpus, "verdict": args.server_cpus,
                   "client": args.client_cpus},
        "split": {"envoy": args.envoy_cpus, "verdict": args.verdict_cpus,
                  "client": args.split_client_cpus},
    }


def placement_label(config, name, cpus):
    if config == "verdict":
        return f"verdict cpu{cpus['verdict']}, client cpu{cpus['client']}"
    if config not in EXT:
        return f"Envoy cpu{cpus['envoy']}, wrk cpu{cpus['client']}"
    if name == "shared":
        return f"shared: Envoy+verdict cpu{cpus['envoy']}, wrk cpu{cpus['client']}"
    return (f"split: Envoy cpu{cpus['envoy']}, verdict cpu{cpus['verdict']}, wrk "
            f"cpu{cpus['client']}")


def render(template, out_path, values):
    with open(os.path.join(HERE, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    left = re.findall(r"@[A-Z_0-9]+@", text)
    if left:
        die(f"{template}: unreplaced {left}")
    with open(out_path, "w") as f:
        f.write(text)
    return out_path


def verdict_toml(path, grpc_port, admin_port, forward_auth_port, workers, metadata):
    """verdict's config: the same rules as Envoy's jwt_authn provider; `metadata` puts every
    claim into the answer's dynamic_metadata (`claims_to_metadata = ["*"]`, what verdict did
    on every answer before it became opt-in)."""
    fa = f'forward_auth_listen = "127.0.0.1:{forward_auth_port}"\n' if forward_auth_port else ""
    meta = 'claims_to_metadata = ["*"]\n' if metadata else ""
    with open(path, "w") as f:
        f.write(f"""# Rendered by bench-harness/peers/envoy/servers.py: the same rules as Envoy's jwt_authn provider.
[server]
grpc_listen = "127.0.0.1:{grpc_port}"
admin_listen = "127.0.0.1:{admin_port}"
{fa}workers = {workers}

[[providers]]
name = "corp"
issuer = "https://idp.example.com"
audiences = ["api://orders"]
jwks_file = "jwks.json"
algorithms = ["RS256"]
leeway_s = 30
claims_to_headers = {{ sub = "x-verdict-sub" }}
{meta}""")
    return path


class Servers:
    """One configuration's processes in one placement: Envoy, plus verdict when Envoy calls it."""

    def __init__(self, args, config, work, placement, cpus):
        self.args, self.config, self.work = args, config, work
        self.placement, self.cpus = placement, cpus
        self.envoy = self.verdict = None
        self.port = self.admin = self.verdict_admin = self.verdict_grpc = None
        self.verdict_http = None

    def start(self):
        a, cpus = self.args, self.cpus
        if self.config in EXT:
            self.verdict_grpc, self.verdict_admin = free_port(), free_port()
            if self.config == "ext_authz_http":
                self.verdict_http = free_port()
            toml = verdict_toml(os.path.join(self.work, "verdict.toml"), self.verdict_grpc,
                                self.verdict_admin, self.verdict_http,
                                len(a.cpu_list(cpus["verdict"])),
                                self.config == "ext_authz_meta")
            shutil.copy(JWKS, os.path.join(self.work, "jwks.json"))
            check = subprocess.run([a.verdict, "check-config", toml], capture_output=True,
                                   text=True)
            if check.returncode != 0:
                die(f"verdict check-config {toml}: {check.stdout}{check.stderr}")
            self.verdict = start("verdict", a.prio + ["taskset", "-c", cpus["verdict"], a.verdict,
                                                      "serve", "--config", toml],
                                 os.path.join(self.work, "verdict.log"))
            wait_until("verdict", self.verdict,
                       lambda: http_get(self.verdict_admin, "/readyz")[0] == 200)
        self.port, self.admin = free_port(), free_port()
        values = {"LISTEN_PORT": self.port, "ADMIN_PORT": self.admin}
        if self.config == "baseline":
            template = "envoy-baseline.yaml"
        elif self.config == "ext_authz_http":
            values.update(VERDICT_HTTP_PORT=self.verdict_http)
            template = "envoy-ext_authz_http.yaml"
        elif self.config in EXT:
            # Envoy opens another connection to verdict when one carries this many streams.
            h2 = (f"{{ max_concurrent_streams: {a.max_concurrent_streams} }}"
                  if self.config == "ext_authz_mcs" else "{}")
            values.update(VERDICT_PORT=self.verdict_grpc,
                          ENCODE_RAW_HEADERS="true" if a.encode_raw_headers else "false",
                          ALLOWED_HEADERS=("allowed_headers: { patterns: [ { exact: authorization "
                                           "} ] }" if a.only_authorization else ""),
                          HTTP2_OPTIONS=h2)
            template = "envoy-ext_authz.yaml"
        else:
            cache = (f"jwt_cache_config: {{ jwt_cache_size: {a.jwt_cache_size} }}"
                     if self.config == "jwt_authn_cache" else "")
            values.update(JWKS_FILE=JWKS, JWT_CACHE_CONFIG=cache)
            template = "envoy-jwt_authn.yaml"
        yaml = render(template, os.path.join(self.work, "envoy.yaml"), values)
        self.envoy = start("envoy", a.prio + ["taskset", "-c", cpus["envoy"], a.envoy, "-c", yaml,
                                              "--concurrency",
                                              str(len(a.cpu_list(cpus["envoy"]))),
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
        """Verification counters (Envoy's filter stats, verdict's checks by result) and Envoy's
        connections to verdict: ({counter: value}, {gauge: value})."""
        out, gauges = {}, {}
        if self.envoy is not None:
            _, _, body = http_get(self.admin, "/stats?filter=jwt_authn|ext_authz|"
                                              "cluster\\.verdict(_http)?\\.upstream_cx_(total|active)")
            for line in body.decode().splitlines():
                name, _, value = line.partition(": ")
                if not value.strip().isdigit():
                    continue
                if "ingress." in name:
                    out[f"envoy.{name.split('ingress.', 1)[1]}"] = int(value)
                elif name.endswith("upstream_cx_total"):
                    out[f"envoy.{name}"] = int(value)
                elif name.endswith("upstream_cx_active"):
                    gauges[f"envoy.{name}"] = int(value)
        if self.verdict is not None:
            _, _, body = http_get(self.verdict_admin, "/metrics")
            for line in body.decode().splitlines():
                m = re.match(r'verdict_checks_total\{(.*)\}\s+(\d+)', line)
                if m:
                    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
                    key = f"verdict.{labels.get('result')}.{labels.get('reason')}"
                    out[key] = out.get(key, 0) + int(m.group(2))
        return out, gauges

    def stop(self):
        for p in (self.envoy, self.verdict):
            if p is not None:
                stop(p)
                if p in STARTED:
                    STARTED.remove(p)


def sanity_checks(servers, tokens):
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
    # A client-sent copy of the claim header must not reach the upstream as it is.
    status, headers, _ = http_get(port, "/", {"Authorization": f"Bearer {tokens['repeated']}",
                                              "X-Verdict-Sub": "mallory"})
    spoofed = "mallory" in headers.get("x-seen-sub", "")
    if status != 200 or (spoofed and servers.config in EXT):
        die(f"{servers.config}: a spoofed x-verdict-sub got {status} with x-seen-sub "
            f"{headers.get('x-seen-sub')!r}")
    results["spoofed x-verdict-sub"] = (f"{status}, sub → {headers.get('x-seen-sub', '')}"
                                        + (" ⚠ the client's copy passed" if spoofed else ""))
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
