#!/usr/bin/env python3
"""The console's cost with 1000 workers, drawn to a pseudo-terminal.

Two figures, against the targets of issue 6:

  frame       time to build and draw one frame: the `status` request, reading
              it into rows, sorting and filtering, drawing and the one
              doupdate() -- measured inside drover (DROVER_FRAME_LOG) over
              --frames consecutive frames (`drover --frames N`), median.
              Target: under 5 ms.
  idle CPU    drover's utime+stime over --idle seconds with the console open,
              1000 workers idle and [drover] refresh = 1.0, as a share of one
              core. Target: under 2 % of a core. Beside it the same drover
              headless with an events client attached (the sampler then ticks
              at refresh too, so the difference is the console's own share),
              and headless with nobody watching (the sampler at
              metrics_interval).

drover runs in a pty this script creates (120x40 unless told otherwise) and
whose output it reads all the time, as a terminal would. The workers are
`sleep 100000`. Everything runs in a temporary directory and is killed on
exit, even on error or Ctrl-C.

    python3 bench/bench_console.py --build build
"""

import argparse
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

CONFIG = """\
[drover]
state_dir = {state}
refresh = 1.0

[program:idle]
command = sleep 100000
numprocs = {workers}
startsecs = 0
stopasgroup = true
"""


class Drover:
    """drover -c CONFIG ARGS on a pty of its own; the output is drained."""

    def __init__(self, binary, config, args, cols, rows, env=None, console=True):
        self.binary, self.config = binary, config
        env = {**os.environ, "TERM": "xterm-256color", "LC_ALL": "C.UTF-8", **(env or {})}
        if console:
            self.master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            self.proc = subprocess.Popen([binary, "-c", config, *args], stdin=slave,
                                         stdout=slave, stderr=subprocess.PIPE, env=env,
                                         start_new_session=True)
            os.close(slave)
            self.drain = threading.Thread(target=self._drain, daemon=True)
            self.drain.start()
        else:
            self.master = None
            self.proc = subprocess.Popen([binary, "-c", config, "--headless", *args],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, env=env,
                                         start_new_session=True)

    def _drain(self):
        while True:
            try:
                r, _, _ = select.select([self.master], [], [], 0.5)
                if r and not os.read(self.master, 1 << 16):
                    return
            except OSError:
                return  # EIO: the other end is gone

    def type(self, text):
        os.write(self.master, text.encode())

    def status(self):
        r = subprocess.run([self.binary, "ctl", "-c", self.config, "--json", "status"],
                           capture_output=True, text=True)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def wait_running(self, n, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.status()
            if s and sum(w["state"] == "RUNNING" for w in s["workers"]) >= n:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"drover exited: {self.proc.stderr.read().decode()}")
            time.sleep(0.2)
        raise RuntimeError(f"{n} workers not RUNNING after {timeout}s")

    def cpu_ticks(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.master is not None:
            self.drain.join(timeout=5)
            os.close(self.master)


def idle_cpu(d, seconds):
    hz = os.sysconf("SC_CLK_TCK")
    t0, c0 = time.monotonic(), d.cpu_ticks()
    time.sleep(seconds)  # the measurement window itself, not a synchronisation
    t1, c1 = time.monotonic(), d.cpu_ticks()
    return (c1 - c0) / hz / (t1 - t0) * 100.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="build directory holding drover")
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--idle", type=float, default=30.0, help="idle window, seconds")
    ap.add_argument("--cols", type=int, default=120)
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--no-headless", action="store_true",
                    help="skip the headless comparison window")
    args = ap.parse_args()
    binary = os.path.abspath(os.path.join(args.build, "drover"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench_console: {binary} is not built (make build)")

    tmp = tempfile.mkdtemp(prefix="drover-bench-console-")
    running = []
    try:
        config = os.path.join(tmp, "supervisor.ini")
        with open(config, "w") as f:
            f.write(CONFIG.format(state=os.path.join(tmp, "state"), workers=args.workers))
        startup = max(60.0, args.workers / 20)

        # 1. frames: drover draws --frames frames back to back, then shuts down
        log = os.path.join(tmp, "frames.log")
        d = Drover(binary, config, ["--frames", str(args.frames)], args.cols, args.rows,
                   env={"DROVER_FRAME_LOG": log})
        running.append(d)
        d.proc.wait(timeout=startup + 120)
        d.stop()
        with open(log) as f:  # total, status request+read, lines, draw (ms)
            parts = [[float(x) for x in line.split()] for line in f if line.strip()]
        frames = [p[0] for p in parts]
        if len(frames) != args.frames:
            raise RuntimeError(f"{len(frames)} frames logged, wanted {args.frames}")

        # 2. idle: the console open at refresh = 1.0, workers asleep
        d = Drover(binary, config, [], args.cols, args.rows)
        running.append(d)
        d.wait_running(args.workers, startup)
        time.sleep(3)  # let the start-up burst and the status poll above settle
        console_cpu = idle_cpu(d, args.idle)
        d.type("q\r")  # quit, confirmed: drover stops everything and exits
        d.proc.wait(timeout=60)
        d.stop()

        # 3. the same drover headless, with an event stream attached: the
        # sampler then ticks at refresh as it does for the console, so the
        # difference is the console's own share
        headless_cpu = quiet_cpu = None
        if not args.no_headless:
            d = Drover(binary, config, [], args.cols, args.rows, console=False)
            running.append(d)
            d.wait_running(args.workers, startup)
            events = subprocess.Popen([binary, "ctl", "-c", config, "events"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(3)
                headless_cpu = idle_cpu(d, args.idle)
            finally:
                events.kill()
                events.wait()
            # 4. nobody watching: the sampler drops to metrics_interval once
            # the status requests above stop lingering (30 s)
            time.sleep(31)
            quiet_cpu = idle_cpu(d, args.idle)
            d.stop()

        frames.sort()
        median = statistics.median(frames)
        p90 = frames[int(len(frames) * 0.9) - 1]
        rows = [
            ("frame build+draw, median", f"{median:.2f} ms", "< 5 ms",
             "ok" if median < 5 else "MISSED"),
            ("frame p90 / max", f"{p90:.2f} / {frames[-1]:.2f} ms", "", ""),
            ("  of which status request+read", f"{statistics.median(p[1] for p in parts):.2f} ms",
             "", ""),
            ("  of which sort/filter/lines", f"{statistics.median(p[2] for p in parts):.2f} ms",
             "", ""),
            ("  of which draw+doupdate", f"{statistics.median(p[3] for p in parts):.2f} ms", "",
             ""),
            (f"idle CPU, console open ({args.idle:.0f} s)", f"{console_cpu:.2f} %", "< 2 %",
             "ok" if console_cpu < 2 else "MISSED"),
        ]
        if headless_cpu is not None:
            rows.append((f"idle CPU, headless + events client", f"{headless_cpu:.2f} %",
                         "(baseline)", ""))
            rows.append(("  the console's own share", f"{console_cpu - headless_cpu:.2f} %", "",
                         ""))
            rows.append(("idle CPU, headless, unwatched", f"{quiet_cpu:.2f} %",
                         "(sampler at metrics_interval)", ""))
        print(f"\nconsole: {args.workers} workers (sleep), {args.cols}x{args.rows} pty, "
              f"{args.frames} frames, {binary}")
        print(f"{'measure':<34} {'value':>16}  {'target':<12} result")
        for name, value, target, result in rows:
            print(f"{name:<34} {value:>16}  {target:<12} {result}")
        return 0 if median < 5 and console_cpu < 2 else 1
    finally:
        for d in running:
            try:
                d.stop(timeout=30)
            except Exception:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
