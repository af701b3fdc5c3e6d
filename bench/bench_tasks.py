#!/usr/bin/env python3
"""Task throughput: drover's pools against the usual ways of running a
trivial task (square an integer) on 2 workers, side by side, in one run.

    python3 bench/bench_tasks.py --build build

Rows (tasks/s, higher is better):

  drover map, C worker     drover map -j 2 -- square      (examples/square.c,
                           compiled here; it flushes when its input runs dry)
  drover map, mawk         drover map -j 2 -- mawk -W interactive '{print $1*$1; fflush()}'
  drover map, python3 -u   drover map -j 2 -- python3 -u examples/worker.py
  Pool chunksize=1         multiprocessing.Pool(2).imap_unordered(sq, range(N), 1)
  Pool chunksize=1000      the same with chunksize=1000
  xargs -P 2               xargs -P 2 -n 1 sh -c 'echo $(($1*$1))' sh    (a process per task)
  parallel -j 2            GNU parallel -j 2 'echo $(({}*{}))'             (a process per task)
  ceiling                  bench/pipe_ceiling.c: the same lines pipelined over
                           pipes to 2 copies of square, results read back,
                           nothing else (the best this design can do)
  supervisor, memory       a running drover (store = memory, 2 square workers,
                           default prefetch): `drover submit -f` of the N
                           tasks until `drover ctl wait` returns
  supervisor, sqlite       the same with store = sqlite (durable, group commit,
                           store_sync = full)

Each row is timed from starting the command to its exit (for Pool: from
creating the pool to the last result; for the supervisor: from starting
submit to wait returning, drover already running, a fresh state_dir each
run); fast rows and the supervisor rows take the best of --repeat runs (this
2-core VM's speed wanders by a third from one run to the next). The ceiling
and drover map with the C worker, whose ratio is a target, run in turn, the
best of at least 5 each, so that a slow stretch does not fall on one only.
Every run's output is checked: one result per task, and the sum of the
results where they are exact integers. Then the targets of the
issue, pass/fail:

  drover map (C) >= Pool chunksize=1000
  drover map (C) >= 50% of the ceiling
  drover map (C) >= 50 x Pool chunksize=1
  supervisor with the sqlite store >= 200k tasks/s

Needs: Linux, python3, cc, mawk, GNU parallel (Debian package `parallel`;
installed with apt-get when missing and allowed, and the output says so).
--quick divides the task counts by 10. --json PATH writes the figures.
--check exits 1 when a target is missed.
"""

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

TARGETS = [
    # (label, row, compared with, factor)
    ("drover map (C) >= Pool chunksize=1000", "map_c", "pool_1000", 1.0),
    ("drover map (C) >= 50% of the ceiling", "map_c", "ceiling", 0.5),
    ("drover map (C) >= 50x Pool chunksize=1", "map_c", "pool_1", 50.0),
    ("supervisor sqlite >= 200k tasks/s", "sup_sqlite", None, 200_000),
]


def sq(x):
    return x * x


def sum_squares(n):
    return n * (n + 1) * (2 * n + 1) // 6


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="drover-bench-tasks-")
        self.drover = os.path.abspath(args.drover or os.path.join(args.build, "drover"))
        self.rows = {}
        self.notes = []
        self.inputs = {}
        self.procs = []

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def count(self, n):
        return max(100, n // 10) if self.args.quick else n

    def input(self, n):
        if n not in self.inputs:
            p = self.path(f"tasks-{n}.txt")
            with open(p, "w") as f:
                f.write("".join(f"{k}\n" for k in range(1, n + 1)))
            self.inputs[n] = p
        return self.inputs[n]

    # -- setup --

    def compile(self):
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            sys.exit("bench_tasks: needs a C compiler (cc)")
        self.square = self.path("square")
        self.ceiling = self.path("pipe_ceiling")
        for src, out in ((os.path.join(ROOT, "examples", "square.c"), self.square),
                         (os.path.join(HERE, "pipe_ceiling.c"), self.ceiling)):
            subprocess.run([cc, "-O2", "-o", out, src], check=True)

    def need_parallel(self):
        if shutil.which("parallel"):
            out = subprocess.run(["parallel", "--version"], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL).stdout
            if "GNU parallel" in out:
                return True
        if self.args.no_install or not shutil.which("apt-get") or os.geteuid() != 0:
            self.notes.append("GNU parallel missing (Debian package `parallel`): row skipped")
            return False
        print("installing GNU parallel: apt-get install -y parallel", flush=True)
        p = subprocess.run(["apt-get", "install", "-y", "parallel"], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True)
            p = subprocess.run(["apt-get", "install", "-y", "parallel"], capture_output=True,
                               text=True, stdin=subprocess.DEVNULL)
        ok = p.returncode == 0 and shutil.which("parallel")
        self.notes.append("GNU parallel was installed for this run (apt-get install parallel)"
                          if ok else "GNU parallel could not be installed: row skipped")
        return bool(ok)

    # -- running --

    def run_cmd(self, cmd, n, exact=True, stdin_path=None, env=None):
        """Run cmd with the n tasks on stdin (a regular file), output to a
        file; returns seconds, after checking the output."""
        out_path = self.path("out.txt")
        with open(stdin_path or self.input(n), "rb") as fin, open(out_path, "wb") as fout:
            t0 = time.perf_counter()
            p = subprocess.run(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE,
                               env=env, cwd=self.tmp)
            dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{cmd[:4]}... exited {p.returncode}: "
                               f"{p.stderr.decode(errors='replace')[-500:]}")
        self.check_output(out_path, n, exact)
        return dt

    def check_output(self, path, n, exact):
        lines = 0
        total = 0
        with open(path, "rb") as f:
            for line in f:
                lines += 1
                if exact:
                    total += int(line)
        if lines != n:
            raise RuntimeError(f"{lines} results for {n} tasks")
        if exact and total != sum_squares(n):
            raise RuntimeError("wrong results (sum of squares differs)")

    def best(self, fn, repeat):
        times = [fn() for _ in range(repeat)]
        return min(times)

    def record(self, key, label, n, seconds, note=""):
        self.rows[key] = {"label": label, "tasks": n, "seconds": seconds,
                          "rate": n / seconds, "note": note}
        print(f"  {label:<26} {n:>9} tasks  {seconds:8.3f} s  {n / seconds:>12,.0f} /s",
              flush=True)

    def case(self, key, label, n, fn, repeat=1, note=""):
        try:
            self.record(key, label, n, self.best(fn, repeat), note)
        except Exception as e:  # a failed row is reported, the run goes on
            self.rows[key] = {"label": label, "tasks": n, "error": str(e)}
            print(f"  {label:<26} FAILED: {e}", flush=True)

    def interleaved(self, cases, repeat):
        """Rows whose ratio is a target, run in turn (a, b, a, b, ...) and
        each the best of its runs: this VM's speed drifts by a third over
        seconds, and a slow stretch must not fall on one of them only."""
        times = {key: [] for key, _, _, _ in cases}
        errors = {}
        for _ in range(repeat):
            for key, _, _, fn in cases:
                if key in errors:
                    continue
                try:
                    times[key].append(fn())
                except Exception as e:  # reported below, the run goes on
                    errors[key] = str(e)
        for key, label, n, _ in cases:
            if key in errors:
                self.rows[key] = {"label": label, "tasks": n, "error": errors[key]}
                print(f"  {label:<26} FAILED: {errors[key]}", flush=True)
            else:
                self.record(key, label, n, min(times[key]))

    def map_cmd(self, *worker):
        return [self.drover, "map", "-j", "2", "--", *worker]

    def pool(self, n, chunksize):
        ctx = multiprocessing.get_context("fork")
        t0 = time.perf_counter()
        total = 0
        count = 0
        with ctx.Pool(2) as p:
            for r in p.imap_unordered(sq, range(1, n + 1), chunksize=chunksize):
                total += r
                count += 1
        dt = time.perf_counter() - t0
        if count != n or total != sum_squares(n):
            raise RuntimeError("Pool gave wrong results")
        return dt

    def supervisor(self, store, n):
        # a fresh state_dir per run: a store that kept the last run's tasks
        # would count them as done again
        self.sup_runs = getattr(self, "sup_runs", 0) + 1
        d = self.path(f"sup-{store}-{self.sup_runs}")
        os.makedirs(d)
        cfg = os.path.join(d, "supervisor.ini")
        with open(cfg, "w") as f:
            f.write(f"[drover]\nstore = {store}\nstore_sync = full\nmetrics_interval = 0\n"
                    f"[program:sq]\ncommand = {self.square}\nnumprocs = 2\nstartsecs = 0\n"
                    "tasks = lines\nstdout_logfile = NONE\nstderr_logfile = NONE\n")
        p = subprocess.Popen([self.drover, "-c", cfg], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d,
                             start_new_session=True)
        self.procs.append(p)
        ctl = [self.drover, "ctl", "-c", cfg, "--json"]
        try:
            deadline = time.monotonic() + 20
            while True:
                s = subprocess.run(ctl + ["status"], capture_output=True, text=True)
                if s.returncode == 0:
                    ws = json.loads(s.stdout.splitlines()[0])["workers"]
                    if len(ws) == 2 and all(w["state"] == "RUNNING" for w in ws):
                        break
                if time.monotonic() > deadline or p.poll() is not None:
                    raise RuntimeError("drover did not come up")
                time.sleep(0.05)
            t0 = time.perf_counter()
            sub = subprocess.run([self.drover, "submit", "-c", cfg, "-q", "sq", "-f",
                                  self.input(n)], capture_output=True, text=True)
            if sub.returncode != 0 or int(sub.stdout.strip()) != n:
                raise RuntimeError(f"submit: {sub.stderr.strip()}")
            w = subprocess.run(ctl + ["wait", "sq"], capture_output=True, text=True)
            dt = time.perf_counter() - t0
            reply = json.loads(w.stdout.splitlines()[0])
            if w.returncode != 0 or reply.get("done") != n:
                raise RuntimeError(f"wait: {w.stdout.strip()} {w.stderr.strip()}")
            return dt
        finally:
            subprocess.run([self.drover, "ctl", "-c", cfg, "shutdown"], capture_output=True)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            if not self.args.keep:
                shutil.rmtree(d, ignore_errors=True)

    # -- the run --

    def run(self):
        a = self.args
        self.compile()
        have_parallel = self.need_parallel()
        big = self.count(a.n)
        r = a.repeat
        print(f"drover task throughput: 2 workers, square an integer; "
              f"{platform.node()}, {os.cpu_count()} CPUs, {platform.release()}")
        print(f"  drover: {self.drover}")
        self.interleaved([
            ("ceiling", "ceiling (pipe_ceiling.c)", big,
             lambda: self.run_cmd([self.ceiling, "2", self.input(big), "--", self.square],
                                  big)),
            ("map_c", "drover map, C worker", big,
             lambda: self.run_cmd(self.map_cmd(self.square), big)),
        ], max(r, 5))
        self.case("map_mawk", "drover map, mawk", big,
                  lambda: self.run_cmd(self.map_cmd("mawk", "-W", "interactive",
                                                    "{print $1*$1; fflush()}"), big,
                                       exact=False), 1,
                  "mawk prints squares over 2^31 as 2.1e+09: count checked")
        n_py = self.count(a.n // 2)
        self.case("map_py", "drover map, python3 -u", n_py,
                  lambda: self.run_cmd(self.map_cmd("python3", "-u",
                                                    os.path.join(ROOT, "examples", "worker.py")),
                                       n_py), 1)
        self.case("pool_1000", "Pool chunksize=1000", big, lambda: self.pool(big, 1000), r)
        n_p1 = self.count(a.n // 10)
        self.case("pool_1", "Pool chunksize=1", n_p1, lambda: self.pool(n_p1, 1), 1)
        n_x = self.count(a.n // 500)
        self.case("xargs", "xargs -P 2", n_x,
                  lambda: self.run_cmd(["xargs", "-P", "2", "-n", "1", "sh", "-c",
                                        "echo $(($1*$1))", "sh"], n_x), 1)
        if have_parallel:
            n_par = self.count(a.n // 2000)
            self.case("parallel", "GNU parallel -j 2", n_par,
                      lambda: self.run_cmd(["parallel", "--will-cite", "-j", "2",
                                            "echo $(({}*{}))"], n_par), 1)
        self.case("sup_memory", "supervisor, memory store", big,
                  lambda: self.supervisor("memory", big), r)
        n_sql = self.count(a.n_sqlite)
        self.case("sup_sqlite", "supervisor, sqlite store", n_sql,
                  lambda: self.supervisor("sqlite", n_sql), r)
        return self.report()

    def report(self):
        rows = self.rows
        ref = rows.get("pool_1000", {}).get("rate")
        ceil = rows.get("ceiling", {}).get("rate")
        print()
        print(f"{'':<28}{'tasks':>10}{'seconds':>10}{'tasks/s':>13}"
              f"{'vs Pool1000':>13}{'vs ceiling':>12}")
        for key, row in rows.items():
            if "error" in row:
                print(f"{row['label']:<28}{row['tasks']:>10}  FAILED: {row['error']}")
                continue
            vs_pool = f"{row['rate'] / ref:.2f}x" if ref else "-"
            vs_ceil = f"{100 * row['rate'] / ceil:.1f}%" if ceil else "-"
            print(f"{row['label']:<28}{row['tasks']:>10}{row['seconds']:>10.3f}"
                  f"{row['rate']:>13,.0f}{vs_pool:>13}{vs_ceil:>12}")
        for key, row in rows.items():
            if row.get("note"):
                print(f"  note: {row['label']}: {row['note']}")
        for note in self.notes:
            print(f"  note: {note}")
        print()
        results = []
        for label, key, other, factor in TARGETS:
            mine = rows.get(key, {}).get("rate")
            if other is None:
                want = factor
            else:
                base = rows.get(other, {}).get("rate")
                want = base * factor if base else None
            if mine is None or want is None:
                status, detail = "n/a", "a row is missing"
            else:
                status = "PASS" if mine >= want else "FAIL"
                detail = f"{mine:,.0f}/s vs {want:,.0f}/s needed ({mine / want:.2f}x)"
            results.append({"target": label, "status": status, "detail": detail})
            print(f"  {status:<5} {label}: {detail}")
        if self.args.json:
            with open(self.args.json, "w") as f:
                json.dump({"rows": rows, "targets": results, "notes": self.notes}, f,
                          indent=2)
        return 0 if all(r["status"] == "PASS" for r in results) else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="build directory with drover")
    ap.add_argument("--drover", help="the drover binary (default BUILD/drover)")
    ap.add_argument("--n", type=int, default=1_000_000, help="tasks for the fast rows")
    ap.add_argument("--n-sqlite", type=int, default=300_000,
                    help="tasks for the sqlite supervisor row")
    ap.add_argument("--repeat", type=int, default=3, help="runs of a fast row (best kept)")
    ap.add_argument("--quick", action="store_true", help="a tenth of the tasks")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--no-install", action="store_true",
                    help="do not apt-get install GNU parallel when it is missing")
    args = ap.parse_args()
    b = Bench(args)
    try:
        rc = b.run()
    finally:
        b.close()
    return rc if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
