#!/usr/bin/env python3
"""The control plane, drover against supervisord, in one run.

  status   latency of a full status with --workers (1000) workers:
           - drover over its socket from Python (a new connection per request,
             and one connection for all), --socket-runs (200) requests;
           - `drover ctl status` as a process (process start included),
             --ctl-runs (50) runs;
           - supervisord's XML-RPC getAllProcessInfo from Python over its
             unix socket (a new connection per request), --rpc-runs (50);
           - `supervisorctl status` as a process, --sv-runs (30) runs.
  scale    from 0 to --scale (500) workers until every one is RUNNING:
           - drover: `drover ctl scale g 500`;
           - drover: edit numprocs = 500 in the config, `drover ctl reload`
             (the same operation as supervisord's);
           - supervisord: edit numprocs = 500, `supervisorctl update`.
           Timed from just before the command (and the config edit) starts
           until the supervisor's own status API reports all 500 RUNNING.
           Both are polled the same way: /proc (cheap, does not load the
           supervisor) until 500 children have exec'd `sleep`, then the status
           API every 10 ms until all are RUNNING. Then back to 0 (not timed),
           --repeat (3) times; the median is reported.

Every worker is `sleep 100000`, startsecs = 0, no log files. The supervisors
run one at a time (never side by side) so they do not compete for CPU.

Needs: Linux, python3 (stdlib only), a release build of drover, and
supervisord (Debian package `supervisor`):
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build
    python3 bench/bench_control.py --build build
Everything runs in a temporary directory and is killed at exit, even on error
or Ctrl-C.
"""

import argparse
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import xmlrpc.client

TOKEN_VAR = "DROVER_BENCH_CONTROL_TOKEN"


class BenchError(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(xs):
    return {"n": len(xs), "median": statistics.median(xs), "p99": pct(xs, 99),
            "mean": statistics.fmean(xs), "min": min(xs), "max": max(xs)}


# ---------------------------------------------------------------- processes


def marked_pids(token):
    me = os.getpid()
    out = []
    needle = f"{TOKEN_VAR}={token}".encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    out.append(int(name))
        except OSError:
            pass
    return out


def kill_marked(token, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = marked_pids(token)
        if not pids:
            return True
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    return not marked_pids(token)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class ExecCounter:
    """Counts children of a supervisor that have exec'd `sleep`, reading
    /proc/PID/comm only for children not seen exec'd yet."""

    def __init__(self, parent):
        self.parent = parent
        self.done = set()

    def count(self):
        kids = children(self.parent)
        live = set(kids)
        self.done &= live
        for k in kids:
            if k in self.done:
                continue
            try:
                with open(f"/proc/{k}/comm") as f:
                    if f.read().strip() == "sleep":
                        self.done.add(k)
            except OSError:
                pass
        return len(self.done), len(kids)


def wait_for(pred, timeout, interval, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- drover


def drover_request(path, req, timeout=60):
    """One request on a new connection; the reply bytes (one line)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(req)
        buf = bytearray()
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                raise BenchError("drover closed the connection")
            buf += chunk
        return bytes(buf)
    finally:
        s.close()


class Persistent:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(60)
        self.s.connect(path)
        self.buf = bytearray()

    def request(self, req):
        self.s.sendall(req)
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise BenchError("drover closed the connection")
            self.buf += chunk

    def close(self):
        self.s.close()


class Drover:
    def __init__(self, binary, tmp, env, numprocs):
        self.binary = binary
        self.dir = os.path.join(tmp, "drover")
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "drover.ini")
        self.sock = os.path.join(self.dir, "state", "drover.sock")
        self.env = env
        self.write(numprocs)
        self.out = open(os.path.join(self.dir, "events.log"), "wb")
        self.proc = subprocess.Popen([binary, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.dir, start_new_session=True)
        wait_for(lambda: self.alive_check() and os.path.exists(self.sock), 30, 0.01,
                 "drover's socket")

    def alive_check(self):
        if self.proc.poll() is not None:
            raise BenchError(f"drover exited with {self.proc.returncode}; see {self.out.name}")
        return True

    def write(self, numprocs):
        with open(self.conf + ".tmp", "w") as f:
            f.write(f"""[drover]
state_dir = {self.dir}/state

[program:g]
command = sleep 100000
numprocs = {numprocs}
process_name = %(program_name)s_%(process_num)04d
startsecs = 0
autorestart = true
stdout_logfile = NONE
stderr_logfile = NONE
""")
        os.rename(self.conf + ".tmp", self.conf)

    def status(self):
        return json.loads(drover_request(self.sock, b'{"cmd":"status"}\n'))

    def running(self):
        st = self.status()
        return sum(1 for w in st["workers"] if w["state"] == "RUNNING"), len(st["workers"])

    def ctl(self, *args):
        r = subprocess.run([self.binary, "ctl", "-c", self.conf, *args], capture_output=True,
                           text=True, env=self.env, timeout=120)
        if r.returncode != 0:
            raise BenchError(f"drover ctl {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.out.close()


# ---------------------------------------------------------------- supervisord


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class UnixTransport(xmlrpc.client.Transport):
    """A new connection per call, as supervisorctl makes."""

    def __init__(self, path):
        super().__init__()
        self.unix_path = path

    def make_connection(self, host):
        return UnixHTTPConnection(self.unix_path)


class Supervisord:
    def __init__(self, binary, ctl, tmp, env, numprocs):
        self.binary, self.ctl_bin = binary, ctl
        self.dir = os.path.join(tmp, "supervisord")
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "supervisord.conf")
        self.sock = os.path.join(self.dir, "supervisor.sock")
        self.env = env
        self.write(numprocs)
        self.out = open(os.path.join(self.dir, "stdout.log"), "wb")
        self.proc = subprocess.Popen([binary, "-n", "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.dir, start_new_session=True)
        self.rpc = xmlrpc.client.ServerProxy("http://localhost",
                                             transport=UnixTransport(self.sock))

        def up():
            if self.proc.poll() is not None:
                raise BenchError(f"supervisord exited with {self.proc.returncode}; "
                                 f"see {self.dir}")
            try:
                return self.rpc.supervisor.getState()["statename"] == "RUNNING"
            except OSError:
                return False
        wait_for(up, 60, 0.05, "supervisord's socket")

    def write(self, numprocs):
        with open(self.conf + ".tmp", "w") as f:
            f.write(f"""[supervisord]
nodaemon=true
logfile={self.dir}/supervisord.log
pidfile={self.dir}/supervisord.pid
childlogdir={self.dir}
minfds=8192
{'user=root' if os.getuid() == 0 else ''}

[unix_http_server]
file={self.sock}
chmod=0700

[supervisorctl]
serverurl=unix://{self.sock}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:g]
command=sleep 100000
numprocs={numprocs}
process_name=%(program_name)s_%(process_num)04d
startsecs=0
autorestart=true
stdout_logfile=NONE
stderr_logfile=NONE
""")
        os.rename(self.conf + ".tmp", self.conf)

    def running(self):
        info = self.rpc.supervisor.getAllProcessInfo()
        return sum(1 for p in info if p["statename"] == "RUNNING"), len(info)

    def ctl(self, *args, check=True):
        r = subprocess.run([self.ctl_bin, "-c", self.conf, *args], capture_output=True,
                           text=True, env=self.env, timeout=300)
        # `status` exits 3 when some process is not RUNNING; that is not an error here
        if check and r.returncode not in (0, 3):
            raise BenchError(f"supervisorctl {' '.join(args)}: {r.returncode} "
                             f"{r.stdout.strip()} {r.stderr.strip()}")
        return r.stdout

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.out.close()


# ---------------------------------------------------------------- measures


def time_runs(fn, n, warm=3):
    for _ in range(warm):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return summary(out)


def wait_all_running(sup, n, timeout=300):
    """/proc until n children have exec'd sleep, then the status API every
    10 ms until n are RUNNING. Returns when that was seen."""
    counter = ExecCounter(sup.proc.pid)
    wait_for(lambda: counter.count()[0] >= n, timeout, 0.001, f"{n} workers exec'd")
    wait_for(lambda: sup.running()[0] >= n, timeout, 0.01, f"{n} workers RUNNING")
    return time.perf_counter()


def wait_none(sup, timeout=300):
    wait_for(lambda: not children(sup.proc.pid), timeout, 0.005, "every worker gone")
    wait_for(lambda: sup.running()[1] == 0, timeout, 0.02, "no process listed")


def bench_drover_status(args, tmp, env):
    log(f"drover: starting {args.workers} workers")
    d = Drover(args.drover, tmp, env, args.workers)
    try:
        wait_all_running(d, args.workers)
        size = len(drover_request(d.sock, b'{"cmd":"status"}\n'))
        log(f"drover: status reply is {size} bytes; {args.socket_runs} socket requests")
        req = b'{"cmd":"status"}\n'
        r = {"reply_bytes": size}
        r["socket_new_conn"] = time_runs(lambda: drover_request(d.sock, req), args.socket_runs)
        p = Persistent(d.sock)
        r["socket_one_conn"] = time_runs(lambda: p.request(req), args.socket_runs)
        p.close()
        log(f"drover: {args.ctl_runs} runs of drover ctl status")
        r["ctl_process"] = time_runs(lambda: d.ctl("status"), args.ctl_runs)
        r["rss_kb"] = rss_kb(d.proc.pid)
        return r
    finally:
        d.stop()


def bench_sv_status(args, tmp, env):
    log(f"supervisord: starting {args.workers} workers")
    s = Supervisord(args.supervisord, args.supervisorctl, tmp, env, args.workers)
    try:
        t0 = time.perf_counter()
        wait_all_running(s, args.workers, timeout=600)
        log(f"supervisord: {args.workers} RUNNING after {time.perf_counter() - t0:.1f}s; "
            f"{args.rpc_runs} XML-RPC requests")
        r = {"reply_bytes": len(xmlrpc.client.dumps((s.rpc.supervisor.getAllProcessInfo(),),
                                                    methodresponse=True))}
        r["rpc_new_conn"] = time_runs(lambda: s.rpc.supervisor.getAllProcessInfo(),
                                      args.rpc_runs, warm=2)
        log(f"supervisord: {args.sv_runs} runs of supervisorctl status")
        r["ctl_process"] = time_runs(lambda: s.ctl("status"), args.sv_runs, warm=1)
        r["rss_kb"] = rss_kb(s.proc.pid)
        return r
    finally:
        s.stop()


def bench_drover_scale(args, tmp, env):
    d = Drover(args.drover, tmp, env, 0)
    n = args.scale
    out = {"scale": [], "reload": [], "scale_cmd": [], "reload_cmd": []}
    try:
        for i in range(args.repeat):
            log(f"drover: scale g 0 -> {n} ({i + 1}/{args.repeat})")
            t0 = time.perf_counter()
            d.ctl("scale", "g", str(n))
            out["scale_cmd"].append(time.perf_counter() - t0)
            out["scale"].append(wait_all_running(d, n) - t0)
            d.ctl("scale", "g", "0")
            wait_none(d)
        for i in range(args.repeat):
            log(f"drover: numprocs 0 -> {n} + reload ({i + 1}/{args.repeat})")
            t0 = time.perf_counter()
            d.write(n)
            d.ctl("reload")
            out["reload_cmd"].append(time.perf_counter() - t0)
            out["reload"].append(wait_all_running(d, n) - t0)
            d.write(0)
            d.ctl("reload")
            wait_none(d)
        return {k: summary(v) for k, v in out.items()}
    finally:
        d.stop()


def bench_sv_scale(args, tmp, env):
    s = Supervisord(args.supervisord, args.supervisorctl, tmp, env, 0)
    n = args.scale
    out = {"update": [], "update_cmd": []}
    try:
        for i in range(args.repeat):
            log(f"supervisord: numprocs 0 -> {n} + supervisorctl update ({i + 1}/{args.repeat})")
            t0 = time.perf_counter()
            s.write(n)
            s.ctl("update")
            out["update_cmd"].append(time.perf_counter() - t0)
            out["update"].append(wait_all_running(s, n, timeout=600) - t0)
            s.write(0)
            s.ctl("update")
            wait_none(s)
        return {k: summary(v) for k, v in out.items()}
    finally:
        s.stop()


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# ---------------------------------------------------------------- report


def fmt_s(x):
    if x is None:
        return "-"
    if x < 1e-3:
        return f"{x * 1e6:.0f} us"
    if x < 1:
        return f"{x * 1e3:.2f} ms"
    return f"{x:.3f} s"


def ratio(sv, dr):
    if sv is None or dr is None or dr <= 0:
        return "-"
    return f"{sv / dr:.1f}x"


def report(args, R):
    D, S = R["drover"], R.get("supervisord")
    rows = []

    def row(metric, dname, dval, sname, sval):
        rows.append((metric, f"{fmt_s(dval)}  ({dname})" if dval is not None else "-",
                     f"{fmt_s(sval)}  ({sname})" if sval is not None else "-", ratio(sval, dval)))

    g = lambda d, *ks: _get(d, ks)
    W, N = args.workers, args.scale
    row(f"status, {W} workers, API, median", "socket, new conn", g(D, "status", "socket_new_conn",
        "median"), "XML-RPC", g(S, "status", "rpc_new_conn", "median"))
    row(f"status, {W} workers, API, p99", "socket, new conn", g(D, "status", "socket_new_conn",
        "p99"), "XML-RPC", g(S, "status", "rpc_new_conn", "p99"))
    row(f"status, {W} workers, API, median", "socket, one conn", g(D, "status", "socket_one_conn",
        "median"), "XML-RPC", g(S, "status", "rpc_new_conn", "median"))
    row(f"status, {W} workers, CLI, median", "drover ctl status", g(D, "status", "ctl_process",
        "median"), "supervisorctl status", g(S, "status", "ctl_process", "median"))
    row(f"status, {W} workers, CLI, p99", "drover ctl status", g(D, "status", "ctl_process",
        "p99"), "supervisorctl status", g(S, "status", "ctl_process", "p99"))
    row(f"0 -> {N} all RUNNING, median", "ctl scale", g(D, "scale", "scale", "median"),
        "edit + update", g(S, "scale", "update", "median"))
    row(f"0 -> {N} all RUNNING, median", "edit + ctl reload", g(D, "scale", "reload", "median"),
        "edit + update", g(S, "scale", "update", "median"))
    row(f"0 -> {N}: the command returns, median", "ctl scale", g(D, "scale", "scale_cmd",
        "median"), "supervisorctl update", g(S, "scale", "update_cmd", "median"))

    head = ("metric", "drover", "supervisord", "ratio sv/drover")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(4)]
    line = lambda r: "  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip()
    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    extra = [
        "",
        f"status reply: drover {g(D, 'status', 'reply_bytes')} bytes of JSON, supervisord "
        f"{g(S, 'status', 'reply_bytes')} bytes of XML; runs: socket {args.socket_runs}, "
        f"drover ctl {args.ctl_runs}, XML-RPC {args.rpc_runs}, supervisorctl {args.sv_runs}; "
        f"scale: median of {args.repeat}",
        f"RSS with {W} workers: drover {g(D, 'status', 'rss_kb')} kB, supervisord "
        f"{g(S, 'status', 'rss_kb')} kB",
        "all RUNNING = the supervisor's own status API says so (polled every 10 ms once "
        "/proc shows every worker exec'd)",
        "ratio = supervisord / drover (higher = drover faster)",
    ]
    return "\n".join(out + extra)


def _get(d, ks):
    for k in ks:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


# ---------------------------------------------------------------- main


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        log(f"warning: RLIMIT_NOFILE hard limit {hard} < {want}")
        want = hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="drover's build directory (release)")
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--scale", type=int, default=500)
    ap.add_argument("--socket-runs", type=int, default=200)
    ap.add_argument("--ctl-runs", type=int, default=50)
    ap.add_argument("--rpc-runs", type=int, default=50)
    ap.add_argument("--sv-runs", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--supervisord", default=shutil.which("supervisord") or "/usr/bin/supervisord")
    ap.add_argument("--supervisorctl",
                    default=shutil.which("supervisorctl") or "/usr/bin/supervisorctl")
    ap.add_argument("--no-supervisord", action="store_true", help="measure drover only")
    ap.add_argument("--json", help="also write the raw results to this file")
    args = ap.parse_args()
    args.drover = os.path.abspath(os.path.join(args.build, "drover"))
    if not os.access(args.drover, os.X_OK):
        raise BenchError(f"no drover at {args.drover}: build it first (see --help)")
    if not args.no_supervisord:
        for b in (args.supervisord, args.supervisorctl):
            if not os.access(b, os.X_OK):
                raise BenchError(f"no {b} (apt-get install supervisor)")
    raise_nofile(16384)

    token = uuid.uuid4().hex
    env = dict(os.environ)
    env[TOKEN_VAR] = token
    tmp = tempfile.mkdtemp(prefix="drover-bench-control-")
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    R = {"host": {"kernel": platform.release(), "cpus": os.cpu_count(),
                  "python": platform.python_version()},
         "drover": {}, "args": {k: v for k, v in vars(args).items()}}
    try:
        R["drover"]["status"] = bench_drover_status(args, tmp, env)
        kill_marked(token)
        R["drover"]["scale"] = bench_drover_scale(args, tmp, env)
        kill_marked(token)
        if not args.no_supervisord:
            R["supervisord"] = {}
            R["supervisord"]["version"] = subprocess.run(
                [args.supervisord, "--version"], capture_output=True, text=True).stdout.strip()
            R["supervisord"]["status"] = bench_sv_status(args, tmp, env)
            kill_marked(token)
            R["supervisord"]["scale"] = bench_sv_scale(args, tmp, env)
    finally:
        left = marked_pids(token)
        if not kill_marked(token):
            log(f"warning: could not kill {marked_pids(token)}")
        elif left:
            log(f"killed {len(left)} leftover processes")
        shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)

    print(f"drover control plane vs supervisord "
          f"({R.get('supervisord', {}).get('version') and 'supervisord ' + R['supervisord']['version'] or 'drover only'}"
          f"; {R['host']['cpus']} CPUs, Linux {R['host']['kernel']})")
    print(report(args, R))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(R, f, indent=2)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench_control: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench_control: interrupted", file=sys.stderr)
        sys.exit(130)
