#!/usr/bin/env python3
"""drover against supervisord, side by side, in one run.

Both supervisors get the same INI file: N `sleep 100000` workers, startsecs=0,
autorestart=true, no log files. One run measures, for each of them:

  start-up   time from starting the supervisor until all N workers have
             exec'd `sleep` (children of the supervisor whose comm is
             "sleep"), found by polling /proc; also when its own log said
             the N-th worker was RUNNING
  RSS        VmRSS of the supervisor process once start-up has settled
  idle CPU   utime+stime of the supervisor over an idle window (--idle, 30 s);
             both windows run at the same time
  restart    kill -9 of one worker until its replacement has exec'd `sleep`,
             20 times (a different worker each time), median
  stop       SIGTERM to the supervisor until it has exited and none of the
             workers it ran is left

and the floor: bench/spawn_floor.c posix_spawn()s the same N commands in a
burst, timed from its start by the same /proc polling.

How /proc is polled: /proc/loadavg ends with the last PID the kernel handed
out, so each poll reads that and looks only at the PIDs created since the last
poll (/proc/PID/stat: parent and comm), plus the children seen before they
exec'd. A poll costs microseconds, not a scan of all of /proc, so it can run
every --poll-us (100 us) while a supervisor starts and every
--restart-poll-us (50 us) while it restarts a worker. A full /proc scan backs
this up whenever counting stalls.

Needs: Linux, python3 (stdlib only), a C compiler (cc) for the floor, and
supervisord (Debian package `supervisor`). Run by `make bench`:
    python3 bench/run.py --build build
Everything it starts runs in a temporary directory and is killed on exit,
even on error or Ctrl-C.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
TOKEN_VAR = "DROVER_BENCH_TOKEN"

# Targets from the issue.
TARGET_FLOOR_RATIO = 1.5  # drover start-up / floor
TARGET_STARTUP_SPEEDUP = 10.0  # supervisord start-up / drover start-up
TARGET_RSS_FRACTION = 0.1  # drover RSS / supervisord RSS
TARGET_RESTART_S = 0.005  # median restart latency
TARGET_STOP_S = 0.5


class BenchError(Exception):
    pass


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


now = time.perf_counter


# ---------------------------------------------------------------- /proc


def read_stat(pid):
    """(state, ppid, comm, utime, stime, starttime) of pid, or None if gone."""
    try:
        fd = os.open("/proc/%d/stat" % pid, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 2048)
    except OSError:
        return None
    finally:
        os.close(fd)
    lp = data.find(b"(")
    rp = data.rfind(b")")
    if lp < 0 or rp < 0:
        return None
    f = data[rp + 2 :].split()
    # f[k - 3] is field k of proc(5): 3 state, 4 ppid, 14 utime, 15 stime, 22 starttime
    return (f[0], int(f[1]), data[lp + 1 : rp], int(f[11]), int(f[12]), int(f[19]))


def proc_alive(pid, start):
    """True while pid is the process that started at `start` and is not dead."""
    st = read_stat(pid)
    return st is not None and st[5] == start and st[0] not in (b"Z", b"X")


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_sample(pid):
    """(utime+stime in seconds, on-CPU seconds from schedstat or None)."""
    st = read_stat(pid)
    if st is None:
        raise BenchError("process %d is gone" % pid)
    ticks = st[3] + st[4]
    ns = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                ns += int(f.read().split()[0])
        sched = ns / 1e9
    except (OSError, ValueError, IndexError):
        sched = None
    return ticks / CLK_TCK, sched


def cpu_times():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    total = sum(v[:8])  # guest time is already counted in user
    return total - idle, total


def machine_busy(seconds):
    """Fraction of all CPUs busy over `seconds` (everything, not just us)."""
    b0, t0 = cpu_times()
    time.sleep(seconds)
    b1, t1 = cpu_times()
    return (b1 - b0) / max(1, t1 - t0)


class LastPid:
    def __init__(self):
        self.fd = os.open("/proc/loadavg", os.O_RDONLY)

    def __call__(self):
        return int(os.pread(self.fd, 256, 0).split()[-1])

    def close(self):
        os.close(self.fd)


def pid_max():
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except OSError:
        return 4194304


class ChildTracker:
    """The children of `parent` that have exec'd `comm`, found incrementally.

    running: pid -> starttime of every child seen running `comm`.
    pending: pid -> None for a child seen before its exec, or the time a new
             PID was first not yet visible in /proc (kept for a second).
    """

    def __init__(self, parent, cursor, last_pid, comm=b"sleep"):
        self.parent = parent
        self.cursor = cursor
        self.last_pid = last_pid
        self.comm = comm
        self.pid_max = pid_max()
        self.running = {}
        self.pending = {}

    def _examine(self, pid, t, new):
        st = read_stat(pid)
        if st is None:
            first = self.pending.get(pid, 0)
            if first == 0:
                self.pending[pid] = t  # allocated, not visible yet: look again
            elif first is None or t - first > 1.0:
                del self.pending[pid]  # a child that went away, or not ours
            return
        state, ppid, comm = st[0], st[1], st[2]
        if ppid != self.parent or state in (b"Z", b"X"):
            self.pending.pop(pid, None)
        elif comm == self.comm:
            self.pending.pop(pid, None)
            if pid not in self.running:
                self.running[pid] = st[5]
                new.append(pid)
        else:
            self.pending[pid] = None  # ours, not exec'd yet

    def poll(self, t=None):
        """Look at new PIDs and pending children; return newly exec'd PIDs."""
        t = now() if t is None else t
        new = []
        last = self.last_pid()
        if last != self.cursor:
            if last > self.cursor:
                span = range(self.cursor + 1, last + 1)
                if len(span) > 20000:
                    span = None
            else:  # PIDs wrapped around pid_max
                span = None
            self.cursor = last
            if span is None:
                self.full_scan(t, new)
            else:
                for pid in span:
                    self._examine(pid, t, new)
        for pid in list(self.pending):
            self._examine(pid, t, new)
        return new

    def full_scan(self, t=None, new=None):
        t = now() if t is None else t
        new = [] if new is None else new
        for name in os.listdir("/proc"):
            if name.isdigit():
                pid = int(name)
                if pid not in self.running and pid not in self.pending:
                    self._examine(pid, t, new)
        return new

    def prune(self):
        """Forget running children that have died."""
        for pid, start in list(self.running.items()):
            if not proc_alive(pid, start):
                del self.running[pid]


# ------------------------------------------------------------ processes


class Supervised:
    """One supervisor (or the floor) under test: its process, its output."""

    def __init__(self, name, argv, env, workdir, running_marks=None):
        self.name = name
        self.argv = argv
        self.env = env
        self.workdir = workdir
        self.running_marks = running_marks or []
        self.proc = None
        self.tracker = None
        self.t0 = None
        self.lines = deque(maxlen=40)
        self.running_times = []
        self.nlines = 0
        self.stdout_path = os.path.join(workdir, name + ".stdout")
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        self.reader = None
        self.error = None
        self.results = {}

    def start(self, last_pid):
        cursor = last_pid()
        self._stderr = open(self.stderr_path, "wb")
        self.t0 = now()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=self.env,
            cwd=self.workdir,
            start_new_session=True,
        )
        self.tracker = ChildTracker(self.proc.pid, cursor, last_pid)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with open(self.stdout_path, "wb") as out:
            for line in iter(self.proc.stdout.readline, b""):
                t = now()
                out.write(line)
                self.nlines += 1
                self.lines.append(line.decode("utf-8", "replace").rstrip("\n"))
                if self.running_marks and all(m in line for m in self.running_marks):
                    self.running_times.append(t)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n=12):
        out = ["  stdout: " + line for line in list(self.lines)[-n:]]
        try:
            with open(self.stderr_path, "rb") as f:
                err = f.read().decode("utf-8", "replace").splitlines()
            out += ["  stderr: " + line for line in err[-n:]]
        except OSError:
            pass
        return "\n".join(out)

    def died(self):
        return BenchError(
            "%s exited early (status %s)\n%s" % (self.name, self.proc.returncode, self.tail())
        )

    def kill(self):
        if self.alive():
            try:
                self.proc.kill()
            except OSError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.tracker is not None:
            for pid, start in list(self.tracker.running.items()):
                if proc_alive(pid, start):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass


def sweep_token(token):
    """SIGKILL every process whose environment carries this run's token."""
    needle = ("%s=%s" % (TOKEN_VAR, token)).encode()
    me = os.getpid()
    killed = 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                if needle in f.read():
                    os.kill(int(name), signal.SIGKILL)
                    killed += 1
        except OSError:
            pass
    return killed


# ----------------------------------------------------------- measurements


def wait_execd(sup, n, timeout, poll_s):
    """Seconds from sup's start until n children have exec'd; and the first."""
    tr = sup.tracker
    t_first = None
    last_progress = now()
    while True:
        new = tr.poll()
        t = now()
        if new and t_first is None:
            t_first = t
        if new:
            last_progress = t
        if len(tr.running) >= n:
            return t - sup.t0, t_first - sup.t0
        if not sup.alive():
            raise sup.died()
        if t - sup.t0 > timeout:
            raise BenchError(
                "%s: only %d of %d workers exec'd after %.0f s\n%s"
                % (sup.name, len(tr.running), n, timeout, sup.tail())
            )
        if t - last_progress > 0.25:
            tr.full_scan()
            last_progress = t
        time.sleep(poll_s)


def wait_running_logged(sup, n, timeout):
    """Seconds from sup's start until its own log reported n workers RUNNING."""
    deadline = now() + timeout
    while len(sup.running_times) < n:
        if not sup.alive():
            raise sup.died()
        if now() > deadline:
            return None
        time.sleep(0.005)
    return sup.running_times[n - 1] - sup.t0


def measure_floor(floor_bin, sleep_argv, n, env, workdir, last_pid, runs, poll_s, timeout):
    samples = []
    for i in range(runs):
        sup = Supervised("floor%d" % i, [floor_bin, str(n)] + sleep_argv, env, workdir)
        try:
            sup.start(last_pid)
            t_all, t_first = wait_execd(sup, n, timeout, poll_s)
            deadline = now() + 10
            while not any(l.startswith("spawned=") for l in sup.lines):
                if now() > deadline or not sup.alive():
                    raise BenchError("spawn_floor printed no result\n" + sup.tail())
                time.sleep(0.001)
            line = [l for l in sup.lines if l.startswith("spawned=")][0]
            kv = dict(p.split("=", 1) for p in line.split())
            if int(kv["spawned"]) != n:
                raise BenchError("spawn_floor: " + line + "\n" + sup.tail())
            samples.append(
                {"execd_s": t_all, "first_execd_s": t_first,
                 "spawn_loop_s": int(kv["elapsed_ns"]) / 1e9}
            )
            sup.proc.send_signal(signal.SIGTERM)
            sup.proc.wait(timeout=30)
        finally:
            sup.kill()
    med = statistics.median(s["execd_s"] for s in samples)
    loop = statistics.median(s["spawn_loop_s"] for s in samples)
    return {"execd_s": med, "spawn_loop_s": loop, "per_process_ms": loop / n * 1e3,
            "runs": samples}


def measure_start(sup, n, poll_s, timeout, last_pid):
    log("starting %s with %d workers" % (sup.name, n))
    sup.start(last_pid)
    t_all, t_first = wait_execd(sup, n, timeout, poll_s)
    sup.results["startup_execd_s"] = t_all
    sup.results["startup_first_execd_s"] = t_first
    t_run = wait_running_logged(sup, n, timeout=min(timeout, 10.0 + 5 * t_all))
    sup.results["startup_running_logged_s"] = t_run
    log(
        "%s: %d exec'd after %.3f s (first at %.3f s), %s RUNNING in its log after %s"
        % (sup.name, n, t_all, t_first, len(sup.running_times),
           "-" if t_run is None else "%.3f s" % t_run)
    )


def measure_restarts(sup, count, poll_s, timeout, gap_s):
    tr = sup.tracker
    tr.prune()
    victims = sorted(tr.running)
    if len(victims) < count:
        raise BenchError("%s: only %d workers to kill" % (sup.name, len(victims)))
    step = len(victims) // count
    victims = [victims[i * step] for i in range(count)]
    lat = []
    failures = 0
    in_a_row = 0
    for victim in victims:
        if in_a_row >= 3:
            break
        if not sup.alive():
            raise sup.died()
        start = tr.running.get(victim)
        if start is None or not proc_alive(victim, start):
            failures += 1
            continue
        tr.pending.clear()
        tr.cursor = tr.last_pid()
        t0 = now()
        os.kill(victim, signal.SIGKILL)
        del tr.running[victim]
        while True:
            new = tr.poll()
            t = now()
            if new:
                lat.append(t - t0)
                in_a_row = 0
                break
            if t - t0 > timeout:
                failures += 1
                in_a_row += 1
                log("%s: no replacement for pid %d after %.0f s" % (sup.name, victim, timeout))
                break
            if poll_s:
                time.sleep(poll_s)
        time.sleep(gap_s)
    if not lat:
        raise BenchError("%s: no worker was restarted\n%s" % (sup.name, sup.tail()))
    s = sorted(lat)
    sup.results["restart"] = {
        "median_s": statistics.median(s),
        "min_s": s[0],
        "p90_s": s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))],
        "max_s": s[-1],
        "failures": failures,
        "samples_s": lat,
    }
    log(
        "%s: restart median %.3f ms (min %.3f, max %.3f, %d failed)"
        % (sup.name, statistics.median(s) * 1e3, s[0] * 1e3, s[-1] * 1e3, failures)
    )


def measure_stop(sup, poll_s, timeout):
    tr = sup.tracker
    tr.poll()
    tr.full_scan()
    tr.prune()
    remaining = dict(tr.running)
    nworkers = len(remaining)
    t0 = now()
    sup.proc.send_signal(signal.SIGTERM)
    t_exit = None
    while True:
        t = now()
        if t_exit is None and sup.proc.poll() is not None:
            t_exit = t - t0
        for pid, start in list(remaining.items()):
            if not proc_alive(pid, start):
                del remaining[pid]
        t = now()
        if t_exit is not None and not remaining:
            break
        if t - t0 > timeout:
            raise BenchError(
                "%s: after SIGTERM and %.0f s: %s, %d of %d workers left\n%s"
                % (sup.name, timeout, "exited" if t_exit is not None else "still running",
                   len(remaining), nworkers, sup.tail())
            )
        time.sleep(poll_s)
    sup.results["stop_s"] = t - t0
    sup.results["stop_exit_s"] = t_exit
    sup.results["exit_status"] = sup.proc.returncode
    sup.results["stop_workers"] = nworkers
    if sup.reader is not None:
        sup.reader.join(timeout=2)
    sup.results["last_line"] = sup.lines[-1] if sup.lines else None
    log("%s: stopped %d workers in %.3f s (supervisor exited at %.3f s, status %s)"
        % (sup.name, nworkers, t - t0, t_exit, sup.proc.returncode))


# --------------------------------------------------------------- set-up


CONFIG = """\
; written by bench/run.py: the same file is given to drover and to supervisord
[supervisord]
nodaemon=true
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}
minfds={minfds}

[unix_http_server]
file={tmp}/supervisor.sock
chmod=0700

[supervisorctl]
serverurl=unix://{tmp}/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[drover]
state_dir = {tmp}/drover-state
{drover_extra}
[program:sleeper]
command={command}
numprocs={n}
process_name=%(program_name)s_%(process_num)03d
startsecs=0
autorestart=true
stdout_logfile=NONE
stderr_logfile=NONE
"""


def build_floor(tmp):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise BenchError("no C compiler (cc) to build bench/spawn_floor.c")
    out = os.path.join(tmp, "spawn_floor")
    cmd = [cc, "-std=c17", "-O2", "-Wall", "-o", out, os.path.join(HERE, "spawn_floor.c")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError("building spawn_floor failed:\n%s%s" % (r.stdout, r.stderr))
    return out


def raise_nofile(want):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        log("warning: RLIMIT_NOFILE hard limit %d < %d; supervisord may refuse to start"
            % (hard, want))
        want = hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def version_of(argv, env):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10, env=env,
                           stdin=subprocess.DEVNULL, start_new_session=True)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return None


def host_info():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version()}


# --------------------------------------------------------------- report


def fmt_s(v):
    if v is None:
        return "-"
    if v >= 1.0:
        return "%.3f s" % v
    if v >= 0.01:
        return "%.1f ms" % (v * 1e3)
    return "%.2f ms" % (v * 1e3)


def fmt_ratio(a, b):
    """a / b as 'N.Nx'."""
    if a is None or b is None:
        return "-"
    if b == 0:
        return "inf" if a > 0 else "1.0x"
    r = a / b
    return "%.1fx" % r if r >= 10 else "%.2fx" % r


def verdict(ok):
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def report(n, args, floor, d, s, results):
    D, S = d.results, s.results if s else {}
    rows = []

    def row(metric, dv, sv, fmt, target, ok, ratio=None):
        rows.append((metric, fmt(dv), fmt(sv) if s else "-",
                     ratio if ratio is not None else (fmt_ratio(sv, dv) if s else "-"),
                     target, verdict(ok)))

    de, se = D.get("startup_execd_s"), S.get("startup_execd_s")
    row("start-up: all %d exec'd" % n, de, se, fmt_s,
        ">= %gx faster than sv" % TARGET_STARTUP_SPEEDUP,
        None if de is None or se is None else se / de >= TARGET_STARTUP_SPEEDUP)
    fe = floor["execd_s"] if floor else None
    rows.append(("start-up / floor (%s)" % fmt_s(fe),
                 fmt_ratio(de, fe), fmt_ratio(se, fe) if s else "-", "-",
                 "drover <= %gx floor" % TARGET_FLOOR_RATIO,
                 verdict(None if de is None or fe is None else de / fe <= TARGET_FLOOR_RATIO)))
    row("start-up: all %d RUNNING (own log)" % n, D.get("startup_running_logged_s"),
        S.get("startup_running_logged_s"), fmt_s, "-", None)

    dr, sr = D.get("rss_kb"), S.get("rss_kb")
    row("RSS after start-up", dr, sr, lambda v: "-" if v is None else "%.1f MiB" % (v / 1024),
        "<= 1/%g of sv" % (1 / TARGET_RSS_FRACTION),
        None if dr is None or sr is None else dr <= sr * TARGET_RSS_FRACTION)

    di, si = D.get("idle_cpu_s"), S.get("idle_cpu_s")
    idle = args.idle

    def fmt_cpu(v):
        return "-" if v is None else "%.0f ms (%.2f%%)" % (v * 1e3, v / idle * 100)

    row("CPU over %g s idle (utime+stime)" % idle, di, si, fmt_cpu, "<= sv",
        None if di is None or si is None else di <= si)
    row("  same, on-CPU by schedstat", D.get("idle_sched_s"), S.get("idle_sched_s"),
        lambda v: "-" if v is None else "%.1f ms" % (v * 1e3), "-", None)

    drs = D.get("restart", {}).get("median_s")
    srs = S.get("restart", {}).get("median_s")
    row("restart after kill -9 (median of %d)" % args.restarts, drs, srs, fmt_s,
        "< %g ms" % (TARGET_RESTART_S * 1e3),
        None if drs is None else drs < TARGET_RESTART_S)

    dst, sst = D.get("stop_s"), S.get("stop_s")
    row("stop all %d" % n, dst, sst, fmt_s, "< %g s" % TARGET_STOP_S,
        None if dst is None else dst < TARGET_STOP_S)

    head = ("metric", "drover", "supervisord", "ratio sv/drover", "target (drover)", "result")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    lines = []

    def line(cells):
        lines.append(" | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                for i, (c, w) in enumerate(zip(cells, widths))).rstrip())

    line(head)
    lines.append("-+-".join("-" * w for w in widths))
    for r in rows:
        line(r)
    lines.append("")
    lines.append("ratio = supervisord / drover for every row (all are lower-is-better: "
                 "above 1x means drover is better); start-up / floor = value / floor.")
    if floor:
        lines.append(
            "floor: spawn_floor posix_spawn()s %d x `%s` in a burst: all exec'd %s after it "
            "was started (median of %d runs, by /proc polling); the posix_spawn loop alone "
            "took %s = %.3f ms per process (posix_spawn returns after the child's exec: "
            "glibc uses CLONE_VFORK)."
            % (n, " ".join(args.sleep_argv), fmt_s(floor["execd_s"]), len(floor["runs"]),
               fmt_s(floor["spawn_loop_s"]), floor["per_process_ms"]))
    for name, R in (("drover", D), ("supervisord", S if s else None)):
        if R is None:
            continue
        parts = []
        if "startup_first_execd_s" in R:
            first, allx = R["startup_first_execd_s"], R["startup_execd_s"]
            rate = (allx - first) / max(1, n - 1) * 1e3
            parts.append("first worker exec'd at %s, then %.3f ms per worker" %
                         (fmt_s(first), rate))
        if "rss_kb" in R:
            after = R.get("rss_after_idle_kb")
            parts.append("RSS %.1f MiB (anon %.1f, file %.1f; peak %.1f MiB%s)"
                         % (R["rss_kb"] / 1024, (R.get("RssAnon") or 0) / 1024,
                            (R.get("RssFile") or 0) / 1024, (R.get("VmHWM") or 0) / 1024,
                            "" if after is None else
                            "; %.1f MiB after the idle window" % (after / 1024)))
        if "restart" in R:
            rr = R["restart"]
            parts.append("restart min %s / median %s / p90 %s / max %s%s"
                         % (fmt_s(rr["min_s"]), fmt_s(rr["median_s"]), fmt_s(rr["p90_s"]),
                            fmt_s(rr["max_s"]),
                            ", %d failed" % rr["failures"] if rr["failures"] else ""))
        if "stop_s" in R:
            parts.append("on SIGTERM it exited at %s with status %s, last line: %s"
                         % (fmt_s(R["stop_exit_s"]), R["exit_status"], R.get("last_line")))
        if "error" in R:
            parts.append("ERROR: " + R["error"].splitlines()[0])
        lines.append("%s: %s." % (name, "; ".join(parts)))
    h = results["host"]
    busy = results.get("machine_busy_before")
    during = results.get("machine_busy_during_idle")
    lines.append(
        "machine: %s CPUs (%s), Linux %s; all CPUs %s busy in the second before the run, "
        "%s during the idle window (the supervisors' own share included)%s."
        % (h["cpus"], h["cpu_model"], h["kernel"],
           "-" if busy is None else "%.0f%%" % (busy * 100),
           "-" if during is None else "%.1f%%" % (during * 100),
           "; NOISY: something else was running" if (busy or 0) > 0.10 or (during or 0) > 0.10
           else ""))
    return "\n".join(lines)


# ----------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="CMake build dir holding drover")
    ap.add_argument("--drover", help="drover binary (default BUILD/drover)")
    ap.add_argument("--supervisord", default=shutil.which("supervisord") or "/usr/bin/supervisord")
    ap.add_argument("--workers", type=int, default=500)
    ap.add_argument("--idle", type=float, default=None, help="idle window in s (default 30)")
    ap.add_argument("--restarts", type=int, default=None, help="kills per supervisor (20)")
    ap.add_argument("--quick", action="store_true", help="5 s idle window, 10 restarts")
    ap.add_argument("--floor-runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=2.0,
                    help="wait after start-up before RSS and idle CPU (s)")
    ap.add_argument("--poll-us", type=float, default=100, help="start-up/stop poll interval")
    ap.add_argument("--restart-poll-us", type=float, default=50)
    ap.add_argument("--no-supervisord", action="store_true", help="measure drover only")
    ap.add_argument("--drover-option", action="append", default=[], metavar="KEY=VALUE",
                    help="add a line to the config's [drover] section (repeatable), "
                         "e.g. metrics_interval=0")
    ap.add_argument("--json", help="write results here (default BUILD/bench-results.json)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    if args.idle is None:
        args.idle = 5.0 if args.quick else 30.0
    if args.restarts is None:
        args.restarts = 10 if args.quick else 20
    n = args.workers
    if n < 1 or args.restarts < 1 or args.restarts > n:
        ap.error("need 1 <= --restarts <= --workers")
    drover_bin = os.path.abspath(args.drover or os.path.join(args.build, "drover"))
    json_path = args.json or os.path.join(args.build, "bench-results.json")

    sleep_path = shutil.which("sleep")
    if not sleep_path:
        raise BenchError("no `sleep` on PATH")
    args.sleep_argv = [os.path.realpath(sleep_path), "100000"]
    command = "sleep 100000"
    if not os.access(drover_bin, os.X_OK):
        raise BenchError("no drover binary at %s (build it first: make build)" % drover_bin)
    if not args.no_supervisord and not os.access(args.supervisord, os.X_OK):
        raise BenchError("no supervisord at %s (apt-get install supervisor)" % args.supervisord)

    token = os.urandom(8).hex()
    tmp = tempfile.mkdtemp(prefix="drover-bench-")
    env = dict(os.environ)
    env[TOKEN_VAR] = token
    env.pop("SUPERVISOR_ENABLED", None)
    minfds = max(4096, 4 * n + 256)
    raise_nofile(minfds)
    conf = os.path.join(tmp, "bench.ini")
    with open(conf, "w") as f:
        f.write(CONFIG.format(tmp=tmp, minfds=minfds, command=command, n=n,
                              drover_extra="".join("%s\n" % o for o in args.drover_option)))

    last_pid = LastPid()
    sups = []
    floor = None
    poll_s = args.poll_us / 1e6
    start_timeout = 60.0 + n * 0.05
    d = Supervised("drover", [drover_bin, "-c", conf], env, tmp,
                   running_marks=[b"event=state", b"to=RUNNING"])
    s = None if args.no_supervisord else Supervised(
        "supervisord", [args.supervisord, "-n", "-c", conf], env, tmp,
        running_marks=[b"entered RUNNING state"])
    sups = [x for x in (d, s) if x]
    results = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": host_info(),
        "workers": n, "command": command, "idle_s": args.idle, "restarts": args.restarts,
        "drover_options": args.drover_option,
        "drover_version": version_of([drover_bin, "--version"], env),
        "supervisord_version": None if s is None else version_of([args.supervisord, "--version"], env),
    }
    errors = []

    def fail(sup, e):
        msg = str(e)
        sup.error = msg
        sup.results["error"] = msg
        errors.append("%s: %s" % (sup.name, msg))
        log("ERROR: %s: %s" % (sup.name, msg))
        sup.kill()

    def phase(fn, sup, *a):
        if sup.error is None:
            try:
                fn(sup, *a)
            except BenchError as e:
                fail(sup, e)

    try:
        busy = machine_busy(1.0)
        results["machine_busy_before"] = busy
        results["loadavg_before"] = open("/proc/loadavg").read().split()[:3]
        if busy > 0.10:
            log("warning: the machine is %.0f%% busy before we start: figures will be noisy"
                % (busy * 100))
        floor_bin = build_floor(tmp)
        log("floor: %d x posix_spawn, %d runs" % (n, args.floor_runs))
        floor = measure_floor(floor_bin, args.sleep_argv, n, env, tmp, last_pid,
                              args.floor_runs, poll_s, start_timeout)
        log("floor: all exec'd after %s; spawn loop %s (%.3f ms/process)"
            % (fmt_s(floor["execd_s"]), fmt_s(floor["spawn_loop_s"]), floor["per_process_ms"]))
        results["floor"] = floor

        for sup in sups:  # one at a time: the other is not running yet, or idle
            phase(measure_start, sup, n, poll_s, start_timeout, last_pid)

        live = [x for x in sups if x.error is None]
        if live:
            log("settling %g s, then %g s idle for %s at once"
                % (args.settle, args.idle, " and ".join(x.name for x in live)))
            time.sleep(args.settle)
            before = {}
            for sup in live:
                for key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    sup.results[key] = status_kb(sup.proc.pid, key)
                sup.results["rss_kb"] = sup.results["VmRSS"]
                before[sup.name] = cpu_sample(sup.proc.pid)
            m0 = cpu_times()
            time.sleep(args.idle)
            m1 = cpu_times()
            results["machine_busy_during_idle"] = (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
            for sup in live:
                if not sup.alive():
                    fail(sup, sup.died())
                    continue
                (c0, s0), (c1, s1) = before[sup.name], cpu_sample(sup.proc.pid)
                sup.results["idle_cpu_s"] = c1 - c0
                sup.results["idle_sched_s"] = None if s0 is None or s1 is None else s1 - s0
                sup.results["rss_after_idle_kb"] = status_kb(sup.proc.pid, "VmRSS")

        for sup in sups:
            log("restart latency of %s: %d kills" % (sup.name, args.restarts))
            phase(measure_restarts, sup, args.restarts, args.restart_poll_us / 1e6,
                  10.0, 0.1)
        for sup in sups:
            phase(measure_stop, sup, poll_s, 120.0)
    except KeyboardInterrupt:
        log("interrupted")
        errors.append("interrupted")
    finally:
        for sup in sups:
            sup.kill()
        left = sweep_token(token)
        if left:
            log("cleaned up %d leftover processes" % left)
        last_pid.close()
        if args.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    for sup in sups:
        results[sup.name] = sup.results
    text = report(n, args, floor, d, s, results)
    print(text)
    results["table"] = text
    results["errors"] = errors
    try:
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        log("results written to %s" % json_path)
    except OSError as e:
        log("could not write %s: %s" % (json_path, e))
    if errors:
        return 1
    if args.check and "FAIL" in text:
        return 1
    return 0


def _term(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _term)  # even when started in the background
    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGHUP, _term)
    try:
        sys.exit(main())
    except BenchError as e:
        log("ERROR: %s" % e)
        sys.exit(1)
