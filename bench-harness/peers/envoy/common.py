"""Shared pieces of the Envoy peer benchmark: paths, logging, the processes it starts (each
stopped by pid), and the /proc readings (CPU time per process, busy time per CPU)."""

import http.client
import os
import re
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

STARTED = []  # Popen objects this script started; stopped by pid in stop_all()
# With the kernel's autogroup scheduling on, `nice` only ranks processes within one session, and
# every other session (each shell of other users of the machine) gets an equal share of the CPUs
# whatever its processes' nice values: so every process this script starts gets a session of
# its own, and that session's autogroup this nice value (set_autogroup_nice; None = unchanged).
AUTOGROUP = {"nice": None}


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
                            env=env, start_new_session=AUTOGROUP["nice"] is not None)
    logf.close()
    autogroup(proc)
    proc.bench_name = name
    proc.bench_log = log_path
    STARTED.append(proc)
    return proc


def set_autogroup_nice(nice):
    """Use `nice` for the autogroups of the processes started from now on, where the kernel
    schedules by autogroup and this process may lower a nice value (root); returns whether."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            enabled = f.read().strip() == "1"
    except OSError:
        enabled = False
    if not enabled or not nice or (nice < 0 and os.geteuid() != 0):
        return False
    AUTOGROUP["nice"] = nice
    return True


def autogroup(proc):
    if AUTOGROUP["nice"] is None:
        return
    try:
        with open(f"/proc/{proc.pid}/autogroup", "w") as f:
            f.write(str(AUTOGROUP["nice"]))
    except OSError as e:
        log(f"warning: cannot set the autogroup nice of pid {proc.pid}: {e}")


def run_tracked(cmd, timeout):
    """Runs a bounded client (wrk, verdict-load) to completion, stoppable by stop_all()."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True,
                            start_new_session=AUTOGROUP["nice"] is not None)
    autogroup(proc)
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


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except OSError:
        return ""

