#!/usr/bin/env python3
"""drover's live metrics under 1000 workers: what sampling costs, side by side with top.

Issue 4's benchmark, in one run (about 2.5 minutes):

  per-process cost   drover with N `sleep 100000` workers at refresh = 0.1 and
                     an `events` client attached (so it samples at refresh,
                     and nothing else asks it for anything): its CPU time
                     (utime+stime of /proc/PID/stat; schedstat on-CPU time as
                     a finer second opinion) over --ticks ticks, minus its
                     idle cost over the same time (the same drover, nobody
                     watching, metrics_interval = 0: no sampling at all),
                     divided by ticks x processes read. drover reads every
                     process of the host per tick (one libproc2 reap), so
                     "processes" is the count of /proc/PID entries.
  top                `top -b -d 0.1 -n TICKS` on the same host at the same
                     time (the same N sleepers alive): top's own CPU time
                     (rusage from wait4) / (TICKS x processes).
  idle, watched      a fresh drover at refresh = 1.0, metrics_interval = 10,
                     a `status` request at t = 0 and t = 20 s (each keeps it
                     sampling at refresh for 30 s): CPU % of one core over
                     --idle s (30).
  idle, unwatched    the same drover before anyone looked (headless, no
                     events client, no status for 30 s): it samples only every
                     metrics_interval and writes the metrics lines; CPU % of
                     one core over --idle s.

Targets (issue 4): per-process cost at most top's; under 2 % of one core with
N workers at refresh = 1.0 while watched. The unwatched figure is reported.
When a target is missed (or with --profile) drover is profiled with
`perf record -g` while it samples at refresh = 0.1, and the hottest symbols
are printed.

    python3 bench/bench_metrics.py --build build

Build a release binary first: cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
&& cmake --build build -j2. Every process the run starts carries a token in
its environment and is killed at the end, on error or Ctrl-C too. The
machine's load is measured during each window; figures taken while something
else kept the CPUs busy are marked NOISY.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.sysconf("SC_NPROCESSORS_ONLN")
TOKEN_VAR = "DROVER_BENCH_TOKEN"

TARGET_IDLE_PCT = 2.0  # % of one core, refresh = 1.0, watched
NOISY_BUSY = 0.25      # other load above this fraction of all CPUs: NOISY


class BenchError(Exception):
    pass


def log(msg):
    print("bench_metrics: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc


def stat_fields(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:].split()


def cpu_of(pid):
    """(utime+stime seconds, schedstat on-CPU seconds of all threads)."""
    f = stat_fields(pid)
    if f is None:
        raise BenchError("process %d is gone" % pid)
    ticks = int(f[11]) + int(f[12])
    ns = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as fh:
                ns += int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        ns = None
    return ticks / CLK_TCK, None if ns is None else ns / 1e9


def syscr(pid):
    """read-like system calls so far (/proc/PID/io), or None."""
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("syscr:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def nprocs():
    return sum(1 for n in os.listdir("/proc") if n.isdigit())


def cpu_times():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle, sum(v[:8])


class Window:
    """CPU of one process and of the whole machine over a stretch of time."""

    def __init__(self, pid):
        self.pid = pid
        self.t0 = time.monotonic()
        self.c0 = cpu_of(pid)
        self.m0 = cpu_times()
        self.r0 = syscr(pid)
        self.counts = [nprocs()]

    def wait(self, secs):
        """Sleep secs, counting the host's processes every 0.25 s (other
        sessions start and stop processes while we measure)."""
        end = time.monotonic() + secs
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.25, left))
            self.counts.append(nprocs())

    def close(self):
        self.secs = time.monotonic() - self.t0
        c1 = cpu_of(self.pid)
        m1 = cpu_times()
        r1 = syscr(self.pid)
        self.cpu = c1[0] - self.c0[0]
        self.sched = None if c1[1] is None or self.c0[1] is None else c1[1] - self.c0[1]
        self.reads = None if r1 is None or self.r0 is None else r1 - self.r0
        self.counts.append(nprocs())
        self.procs = sum(self.counts) / len(self.counts)
        busy = (m1[0] - self.m0[0]) / max(1, m1[1] - self.m0[1])  # fraction of all CPUs
        own = (self.sched if self.sched is not None else self.cpu) / self.secs / NCPU
        self.other_busy = max(0.0, busy - own)
        return self

    def pct(self):
        return self.cpu / self.secs * 100.0

    def sched_pct(self):
        return None if self.sched is None else self.sched / self.secs * 100.0


# ------------------------------------------------------------ drover


CONFIG = """\
; written by bench/bench_metrics.py
[drover]
state_dir = {tmp}/state-{name}
refresh = {refresh}
metrics_interval = {metrics_interval}

[program:sleeper]
command = {command}
numprocs = {n}
process_name = %(program_name)s_%(process_num)04d
startsecs = 0
autorestart = true
stdout_logfile = NONE
stderr_logfile = NONE
"""


class Drover:
    def __init__(self, name, binary, tmp, env, n, command, refresh, metrics_interval):
        self.name = name
        self.tmp = tmp
        self.n = n
        self.conf = os.path.join(tmp, name + ".ini")
        self.sock = os.path.join(tmp, "state-" + name, "drover.sock")
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(tmp=tmp, name=name, refresh=refresh,
                                  metrics_interval=metrics_interval, command=command, n=n))
        self.stderr = open(os.path.join(tmp, name + ".stderr"), "wb")
        self.running = 0
        self.metrics_lines = 0
        self.lines = 0
        self.tail = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen([binary, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env,
                                     cwd=tmp, start_new_session=True)
        self.pid = self.proc.pid
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with open(os.path.join(self.tmp, self.name + ".stdout"), "wb") as out:
            for line in iter(self.proc.stdout.readline, b""):
                out.write(line)
                with self.lock:
                    self.lines += 1
                    if b"event=state" in line and b"to=RUNNING" in line:
                        self.running += 1
                    elif b"event=metrics" in line:
                        self.metrics_lines += 1
                    self.tail = (self.tail + [line.decode("utf-8", "replace").rstrip()])[-10:]

    def wait_running(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise BenchError("drover %s exited (%s):\n%s" % (self.name, self.proc.returncode,
                                                                 "\n".join(self.tail)))
            with self.lock:
                if self.running >= self.n:
                    return
            time.sleep(0.05)
        raise BenchError("drover %s: %d of %d workers RUNNING after %ds:\n%s"
                         % (self.name, self.running, self.n, timeout, "\n".join(self.tail)))

    def request(self, cmd):
        """One request on a fresh connection; (reply dict, seconds)."""
        t0 = time.monotonic()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.sock)
        s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        s.close()
        return json.loads(buf.split(b"\n", 1)[0]), time.monotonic() - t0

    def subscribe(self):
        """An `events` client that keeps drover sampling at refresh; returns
        a function that detaches it."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        s.sendall(b'{"cmd":"events"}\n')
        stop = threading.Event()

        def drain():
            s.settimeout(0.2)
            while not stop.is_set():
                try:
                    if not s.recv(1 << 16):
                        return
                except socket.timeout:
                    pass
                except OSError:
                    return
        t = threading.Thread(target=drain, daemon=True)
        t.start()

        def detach():
            stop.set()
            t.join(2)
            s.close()
        return detach

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.reader.join(5)
        self.stderr.close()


def sweep_token(token):
    needle = ("%s=%s" % (TOKEN_VAR, token)).encode()
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                if needle in f.read().split(b"\0"):
                    os.kill(int(name), signal.SIGKILL)
        except OSError:
            pass


def raise_nofile(want):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        log("warning: RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
        want = hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# ------------------------------------------------------------ phases


def phase_idle(binary, tmp, env, args, command):
    """Drover at refresh 1.0: unwatched first (nobody has looked yet), then
    watched (status at t = 0 and t = 20 s)."""
    d = Drover("idle", binary, tmp, env, args.workers, command, 1.0, 10)
    try:
        d.wait_running(60 + args.workers * 0.05)
        time.sleep(args.settle)
        with d.lock:
            m0 = d.metrics_lines
        log("unwatched window: %.0f s, nobody looking, metrics_interval = 10" % args.idle)
        w_un = Window(d.pid)
        w_un.wait(args.idle)
        w_un.close()
        with d.lock:
            w_un.metrics_batches = (d.metrics_lines - m0) / (args.workers + 1)
        log("watched window: %.0f s at refresh = 1.0, status at t = 0 and t = 20 s" % args.idle)
        w_w = Window(d.pid)
        status_times = []
        end = w_w.t0 + args.idle
        next_status = w_w.t0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if now >= next_status:
                reply, took = d.request("status")
                if not isinstance(reply.get("workers"), list) or \
                        len(reply["workers"]) != args.workers:
                    raise BenchError("status reply without %d workers" % args.workers)
                status_times.append(took)
                next_status += 20.0
            w_w.wait(min(0.25, max(0.0, min(end, next_status) - time.monotonic())))
        w_w.close()
        w_w.status_times = status_times
        return w_un, w_w
    finally:
        d.stop()


def phase_ticks(binary, tmp, env, args, command):
    """Drover at refresh 0.1: idle cost with no sampling at all, then TICKS
    ticks with an events client attached; then top over the same processes,
    and perf if asked."""
    d = Drover("ticks", binary, tmp, env, args.workers, command, 0.1, 0)
    try:
        d.wait_running(60 + args.workers * 0.05)
        time.sleep(args.settle)
        secs = args.ticks * 0.1
        log("idle baseline: %.0f s, metrics_interval = 0 and nobody watching: no sampling" % secs)
        w_idle = Window(d.pid)
        w_idle.wait(secs)
        w_idle.close()
        log("sampling window: %d ticks at refresh = 0.1 with an events client attached"
            % args.ticks)
        detach = d.subscribe()
        time.sleep(0.35)
        w_s = Window(d.pid)
        w_s.wait(secs)
        w_s.close()
        perf = None
        if args.profile:
            base = w_idle.cpu / w_idle.secs * w_s.secs
            perf = profile(d.pid, tmp, args.profile_secs,
                           (w_s.cpu - base) / (w_s.secs / 0.1) * 1e3)
        detach()
        time.sleep(0.5)
        log("top -b -d 0.1 -n %d over the same processes" % args.ticks)
        top = run_top(args.ticks, tmp)
        return w_idle, w_s, top, perf
    finally:
        d.stop()


def run_top(frames, tmp):
    topbin = shutil.which("top")
    if not topbin:
        return None
    out = open(os.path.join(tmp, "top.out"), "wb")
    p0 = nprocs()
    busy0 = cpu_times()
    t0 = time.monotonic()
    p = subprocess.Popen([topbin, "-b", "-d", "0.1", "-n", str(frames)], stdout=out,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, COLUMNS="200"))
    counts = [p0]
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.25)
        counts.append(nprocs())
    secs = time.monotonic() - t0
    out.close()
    busy1 = cpu_times()
    cpu = ru.ru_utime + ru.ru_stime
    busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    counts.append(nprocs())
    return {"cpu": cpu, "secs": secs, "procs": sum(counts) / len(counts), "frames": frames,
            "status": status, "other_busy": max(0.0, busy - cpu / secs / NCPU)}


PERF_BUCKETS = (  # (label, symbol whose time with callees is the bucket)
    ("read() of /proc/PID/stat (the kernel formats it)", "read"),
    ("open() of /proc/PID/stat", "__GI___libc_open"),
    ("stat() of /proc/PID (libproc2: the owner)", "__GI___fstatat64"),
    ("close()", "__close"),
    ("getdents64 of /proc", "__GI___getdents64"),
    ("sscanf of the stat line (libproc2)", "__isoc99_sscanf"),
)
DROVER_SYMBOLS = ("tick", "update_worker", "cpu_track_update", "sampler_read",
                  "proc_table_index", "proc_table_find", "proc_tree_sum", "check_limits",
                  "read_system", "monitor_schedule", "emit_metrics")


def perf_table(perf, data, children):
    rep = subprocess.run([perf, "report", "-i", data, "--stdio",
                          "--children" if children else "--no-children", "--sort", "sym",
                          "-g", "none", "--percent-limit", "0"], capture_output=True, text=True)
    out = {}
    for line in rep.stdout.splitlines():
        parts = line.split()
        if not parts or line.startswith("#") or not parts[0].endswith("%"):
            continue
        try:
            pct = float(parts[0].rstrip("%"))
            # --children: "children% self% [x] sym"; --no-children: "self% [x] sym"
            sym = parts[3] if children else parts[2]
        except (ValueError, IndexError):
            continue
        out.setdefault(sym, pct)
    return out


def profile(pid, tmp, secs, ms_per_tick=None):
    """perf record -g on pid for secs: where a tick's time goes."""
    perf = shutil.which("perf")
    if not perf:
        return "perf not installed"
    data = os.path.join(tmp, "perf.data")
    log("perf record -g -p %d for %.0f s" % (pid, secs))
    r = subprocess.run([perf, "record", "-g", "-o", data, "-p", str(pid), "--", "sleep",
                        str(secs)], capture_output=True, text=True)
    if r.returncode != 0:
        return "perf record failed: " + r.stderr.strip()[-300:]
    children = perf_table(perf, data, True)
    selfs = perf_table(perf, data, False)
    out = ["  where a tick's time goes (%% of drover's samples; %s):" %
           ("ms per tick from the measured cost" if ms_per_tick else "with callees")]

    def row(label, pct):
        ms = "" if ms_per_tick is None or pct is None else "  %5.2f ms" % (pct / 100 * ms_per_tick)
        out.append("    %-52s %6s%s" % (label, "-" if pct is None else "%.1f %%" % pct, ms))
    for label, sym in PERF_BUCKETS:
        row(label, children.get(sym))
    row("drover's own code (self: %s)" % ", ".join(
        s for s in DROVER_SYMBOLS if s in selfs) or "-",
        sum(selfs.get(s, 0.0) for s in DROVER_SYMBOLS))
    kernel = subprocess.run([perf, "report", "-i", data, "--stdio", "--no-children", "--sort",
                             "dso", "-g", "none"], capture_output=True, text=True)
    lines = [l.strip() for l in kernel.stdout.splitlines()
             if l.strip() and not l.startswith("#")]
    out.append("  self time by object: " + "; ".join(" ".join(l.split()) for l in lines[:4]))
    hot = sorted(selfs.items(), key=lambda kv: -kv[1])[:10]
    out.append("  hottest symbols (self): " + "; ".join("%s %.1f %%" % (k, v) for k, v in hot))
    return "\n".join(out)


# ------------------------------------------------------------ report


def verdict(ok):
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def noisy(w):
    return " NOISY" if w.other_busy > NOISY_BUSY else ""


def report(args, res):
    w_un, w_w = res["unwatched"], res["watched"]
    w_idle, w_s, top = res["idle"], res["sampling"], res["top"]
    n = args.workers
    ticks = args.ticks
    # cost of sampling: what the sampling window cost above the idle rate
    extra = w_s.cpu - w_idle.cpu / w_idle.secs * w_s.secs
    extra_sched = None
    if w_s.sched is not None and w_idle.sched is not None:
        extra_sched = w_s.sched - w_idle.sched / w_idle.secs * w_s.secs
    ticks_run = w_s.secs / 0.1
    reads_per_tick = w_s.procs + 6  # one stat per process, uptime, loadavg, meminfo, stat...
    ticks_est = None if w_s.reads is None else w_s.reads / reads_per_tick
    per_proc = extra / (ticks_run * w_s.procs)
    per_proc_sched = None if extra_sched is None else extra_sched / (ticks_run * w_s.procs)
    top_per_proc = None if top is None else top["cpu"] / (top["frames"] * top["procs"])
    ok_cost = None if top_per_proc is None else per_proc <= top_per_proc
    ok_idle = w_w.pct() < TARGET_IDLE_PCT

    def us(v):
        return "-" if v is None else "%.1f us" % (v * 1e6)

    def pct(v):
        return "-" if v is None else "%.2f %%" % v

    rows = [("metric", "drover", "top", "target", "result")]
    rows.append(("CPU per process per tick (utime+stime)", us(per_proc), us(top_per_proc),
                 "<= top", verdict(ok_cost) + noisy(w_s)))
    rows.append(("  same, drover on-CPU by schedstat", us(per_proc_sched), "", "", ""))
    rows.append(("  CPU per tick, all %d processes" % round(w_s.procs),
                 "%.1f ms" % (extra / ticks_run * 1e3),
                 "-" if top is None else "%.1f ms" % (top["cpu"] / top["frames"] * 1e3), "", ""))
    rows.append(("  per worker per tick (%d workers)" % n, us(extra / (ticks_run * n)),
                 "-" if top is None else us(top["cpu"] / (top["frames"] * n)), "", ""))
    rows.append(("  ticks: planned / est. from read syscalls", "%d / %s" % (
        round(ticks_run), "-" if ticks_est is None else "%.0f" % ticks_est),
        "-" if top is None else "%d frames in %.1f s" % (top["frames"], top["secs"]), "", ""))
    rows.append(("  idle cost, no sampling (% of a core)", pct(w_idle.pct()), "", "",
                 noisy(w_idle).strip()))
    rows.append(("idle CPU, refresh=1.0, watched (%.0f s, %d processes)" % (
        w_w.secs, round(w_w.procs)), pct(w_w.pct()), "",
                 "< %.0f %%" % TARGET_IDLE_PCT, verdict(ok_idle) + noisy(w_w)))
    rows.append(("  same, on-CPU by schedstat", pct(w_w.sched_pct()), "", "", ""))
    rows.append(("  status replies (%d workers)" % n,
                 ", ".join("%.0f ms" % (t * 1e3) for t in w_w.status_times), "", "", ""))
    rows.append(("idle CPU, unwatched, metrics_interval=10 (%.0f s, %d processes)" % (
        w_un.secs, round(w_un.procs)),
                 pct(w_un.pct()), "", "report", noisy(w_un).strip()))
    rows.append(("  same, on-CPU by schedstat", pct(w_un.sched_pct()), "", "", ""))
    rows.append(("  metrics batches written in the window", "%.1f" % w_un.metrics_batches,
                 "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["", "drover live metrics: %d workers (%s), %d CPUs, ~%d processes on the host, "
             "kernel %s" % (n, res["command"], NCPU, round(w_s.procs), platform.release()),
             "machine busy (others) during the windows: sampling %.0f %%, watched %.0f %%, "
             "unwatched %.0f %%, top %s" % (
                 w_s.other_busy * 100, w_w.other_busy * 100, w_un.other_busy * 100,
                 "-" if top is None else "%.0f %%" % (top["other_busy"] * 100)), ""]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[j]) for j, c in enumerate(r)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    crowded = max(w_s.procs, w_w.procs, w_un.procs)
    if crowded > 1.3 * n:
        lines.append("")
        lines.append("note: the host ran up to %d processes for %d workers; drover reads every "
                     "process of the host each tick (one libproc2 reap), so its cost per tick "
                     "scales with the host's process count, not with its own workers"
                     % (round(crowded), n))
    text = "\n".join(lines) + "\n"
    results = {
        "workers": n, "ticks": ticks, "procs": w_s.procs, "ncpu": NCPU,
        "per_process_tick_s": per_proc, "per_process_tick_sched_s": per_proc_sched,
        "top_per_process_tick_s": top_per_proc,
        "sampling_cpu_s": w_s.cpu, "sampling_secs": w_s.secs, "idle_cpu_s": w_idle.cpu,
        "idle_secs": w_idle.secs, "ticks_est_from_reads": ticks_est,
        "watched_idle_pct": w_w.pct(), "watched_idle_sched_pct": w_w.sched_pct(),
        "unwatched_idle_pct": w_un.pct(), "unwatched_idle_sched_pct": w_un.sched_pct(),
        "unwatched_metrics_batches": w_un.metrics_batches,
        "status_reply_s": w_w.status_times,
        "top": top, "pass_cost": ok_cost, "pass_idle": ok_idle,
        "noisy": {"sampling": w_s.other_busy, "watched": w_w.other_busy,
                  "unwatched": w_un.other_busy},
    }
    return text, results, (ok_cost is not False and ok_idle)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="CMake build dir holding drover")
    ap.add_argument("--drover", help="drover binary (default BUILD/drover)")
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--ticks", type=int, default=100, help="ticks at refresh = 0.1 (100)")
    ap.add_argument("--idle", type=float, default=None, help="idle windows in s (30)")
    ap.add_argument("--settle", type=float, default=3.0, help="wait after start-up (s)")
    ap.add_argument("--quick", action="store_true", help="10 s idle windows, 50 ticks")
    ap.add_argument("--profile", action="store_true",
                    help="perf record drover while it samples (also done when a target fails)")
    ap.add_argument("--profile-secs", type=float, default=5.0)
    ap.add_argument("--json", help="write results here (default BUILD/bench-metrics.json)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    if args.idle is None:
        args.idle = 10.0 if args.quick else 30.0
    if args.quick and args.ticks == 100:
        args.ticks = 50
    if args.idle < 21:
        log("note: with --idle under 21 s the watched window holds one status request")
    binary = os.path.abspath(args.drover or os.path.join(args.build, "drover"))
    if not os.access(binary, os.X_OK):
        raise BenchError("no drover binary at %s (build it first)" % binary)
    sleep_path = shutil.which("sleep")
    if not sleep_path:
        raise BenchError("no `sleep` on PATH")
    command = "%s 100000" % os.path.realpath(sleep_path)
    token = os.urandom(8).hex()
    tmp = tempfile.mkdtemp(prefix="drover-metricsbench-")
    env = dict(os.environ)
    env[TOKEN_VAR] = token
    raise_nofile(max(4096, 4 * args.workers + 256))
    res = {"command": "sleep 100000"}
    try:
        res["unwatched"], res["watched"] = phase_idle(binary, tmp, env, args, command)
        sweep_token(token)
        time.sleep(1)
        res["idle"], res["sampling"], res["top"], perf = phase_ticks(binary, tmp, env, args,
                                                                      command)
        text, results, ok = report(args, res)
        if not ok and not args.profile:
            log("a target was missed: profiling drover while it samples at refresh = 0.1")
            sweep_token(token)
            time.sleep(1)
            args.profile = True
            _, _, _, perf = phase_ticks(binary, tmp, env, args, command)
        print(text, flush=True)
        if perf:
            print("perf (drover sampling %d workers at refresh = 0.1):\n%s\n"
                  % (args.workers, perf))
            results["perf"] = perf
        path = args.json or os.path.join(args.build, "bench-metrics.json")
        try:
            with open(path, "w") as f:
                json.dump(results, f, indent=2)
            log("results in %s" % path)
        except OSError as e:
            log("could not write %s: %s" % (path, e))
        return 1 if args.check and not ok else 0
    finally:
        sweep_token(token)
        if args.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _term(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _term)
    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGHUP, _term)
    try:
        sys.exit(main())
    except BenchError as e:
        log("ERROR: %s" % e)
        sys.exit(1)
