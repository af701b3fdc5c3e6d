"""Live metrics end to end (issue 4): the figures drover samples with libproc2,
checked against what the kernel says about the same processes.

Per worker: CPU% of one core (a burner, a paused worker, a tree whose children
burn, a tree of short-lived children), RSS (a worker that touches 200 MB),
processes and threads in the tree, kernel state, start time. Per group: sums
and the busiest worker. The system line. Headless `event=metrics` lines at
`metrics_interval`, and their cadence while someone watches. `ctl status`
and `ctl top`. Memory and CPU limits. Churn: restarts, a reused PID (made on
purpose with /proc/sys/kernel/ns_last_pid when running as root), and a status
poller hammering the socket while the sampler ticks.

On a busy 2-core machine (ctest -j2, other sessions) a burner can get less
than a core: measured here at 18-75 % at times, even under the `nice -n -10`
the burners run with when the tests run as root (nice does not cross cgroups).
So the tests check that drover measures what the kernel accounted: the truth
is read from /proc/PID/stat by the test itself over the same stretch of time
(class Watch), and the issue's 85-100 % is required whenever the kernel gave
the burner that much.

A sleeper's first CPU% may still hold its start (a sanitizer build's
start-up, its forks), so tests that want a sleeper at 0 % wait for a tick it
spent wholly asleep.
"""

import os
import re
import shutil
import signal
import statistics
import tempfile
import time
import unittest

from harness import Drover, program, tw, poll, alive, descendants_of
from ctlutil import Control, cpu_ticks

HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.sysconf("SC_NPROCESSORS_ONLN")
MiB = 1 << 20
REFRESH = 0.5
LOW = 85.0  # the issue: a burner reads 85-100 %
TOLERANCE = 12.0  # drover's figure against the kernel's over the same stretch, in points
BURNING = 5.0  # "clearly burning" next to sleepers' 0.0, even when others load the machine


def high(refresh):
    """The highest honest reading of one busy thread: 100 % plus two clock
    ticks over one sampling interval (utime/stime count in 1/HZ s steps, and
    drover stamps a tick before its /proc scan, not at the process's line),
    plus a hair of timer jitter."""
    return 100.0 + 2 * 100.0 / (HZ * refresh) + 1.0


def niced(cmd):
    """cmd at nice -10 when we may raise priority (root), so that a burner
    gets its core even while other tests load the machine."""
    nice = shutil.which("nice")
    if os.geteuid() == 0 and nice:
        return f"{nice} -n -10 {cmd}"
    return cmd


def burner(**keys):
    keys.setdefault("startsecs", 0)
    return program("burn", niced(tw("burn")), **keys)


def start(test, *sections, name="metrics", **drover):
    drover.setdefault("refresh", REFRESH)
    d = Drover(test, name)
    d.write_config(*sections, drover=drover)
    d.start()
    return d, Control(d)


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * 1024
    return out


def vm_rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def start_ticks(pid):
    """Field 22 of /proc/PID/stat: start time in clock ticks since boot."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rfind(")") + 2:].split()[19])


def boot_wall():
    with open("/proc/uptime") as f:
        return time.time() - float(f.read().split()[0])


def stat_fields(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(")") + 2:].split()


def tree_ticks(pid):
    """utime+stime+cutime+cstime summed over pid and its live descendants:
    drover's tree figure, computed independently."""
    total = 0
    for p in [pid] + descendants_of(pid):
        f = stat_fields(p)
        if f:
            total += sum(int(x) for x in f[11:15])
    return total


def own_ticks(pid):
    return cpu_ticks(pid)


def fits_one_core(cpu, truth, refresh):
    """The issue's test: a burner reads 85-100 %. On a loaded machine the
    kernel may give it less than a core (cgroups share the CPUs between
    sessions, whatever the nice value); then the figure must match what the
    kernel accounted over the same stretch instead."""
    if cpu is None or cpu > high(refresh):
        return False
    if cpu >= LOW:
        return truth is None or abs(cpu - truth) <= TOLERANCE
    return truth is not None and truth < LOW + 5 and abs(cpu - truth) <= TOLERANCE


class Watch:
    """Polls `status` over one connection and pairs every new CPU figure of
    one worker with the kernel's count over the same stretch: a figure that
    differs from the last one means a tick happened since the last poll, so
    drover's interval is (the poll of the previous new figure, this poll),
    give or take one poll period. The test reads the kernel's counters at
    each poll (`ticks_of`: own_ticks or tree_ticks)."""

    def __init__(self, c, name, ticks_of=own_ticks):
        self.c, self.name, self.ticks_of = c, name, ticks_of
        self.conn = c.connect()
        c.test.addCleanup(self.conn.close)
        self.last = None   # (t, pid, ticks, cpu) of the poll with the last new figure
        self.prev_cpu = None
        self.changes = []  # dicts: t, pid, cpu, truth (None without a window)
        self.w = None
        self.t0 = time.monotonic()

    def step(self):
        """One poll; returns the new change (a dict) or None."""
        ws = {x["name"]: x for x in self.conn.request("status")["workers"]}
        now = time.monotonic()
        w = self.w = ws[self.name]
        pid = w["pid"]
        ticks = self.ticks_of(pid) if pid else None
        cpu = w["cpu"]
        change = None
        if cpu is not None and cpu != self.prev_cpu:
            truth = None
            if self.last and self.last[1] == pid and ticks is not None and \
                    self.last[2] is not None and now > self.last[0]:
                truth = (ticks - self.last[2]) / HZ / (now - self.last[0]) * 100.0
            change = {"t": round(now - self.t0, 3), "pid": pid, "cpu": round(cpu, 1),
                      "truth": None if truth is None else round(truth, 1)}
            self.changes.append(change)
            self.last = (now, pid, ticks, cpu)
        self.prev_cpu = cpu
        return change

    def until(self, pred, timeout, what):
        """Poll until pred(change) for a new figure; fail with the figures seen."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ch = self.step()
            if ch and pred(ch):
                return ch
            time.sleep(0.005)
        self.c.test.fail(f"timed out after {timeout}s waiting for {what}; figures of "
                         f"{self.name} (t, pid, cpu, kernel over the same stretch): "
                         f"{[tuple(x.values()) for x in self.changes]}\n" + self.c.d.context())

    def run(self, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            self.step()
            time.sleep(0.005)
        return self.changes


def figures(ws, *names, keys=("pid", "state", "cpu", "cpu_self", "rss", "procs", "kstate")):
    """A compact view of some workers' figures for failure messages."""
    return {n: {k: ws[n].get(k) for k in keys} for n in names or ws if n in ws}


def wait_figures(c, pred, timeout, what):
    """Poll `status` until pred(workers by name); on timeout fail with every
    worker's figures (Control.wait_workers shows only states and pids)."""
    seen = {}

    def check():
        nonlocal seen
        seen = c.workers()
        return pred(seen)
    if not poll(check, timeout, interval=0.05):
        c.test.fail(f"timed out after {timeout}s waiting for {what}; figures:\n"
                    + "\n".join(f"  {n}: {f}" for n, f in figures(seen).items())
                    + "\n" + c.d.context())
    return seen


class WorkerFigures(unittest.TestCase):
    """One worker's figures against the kernel's."""

    def test_burner_reads_one_core_within_three_ticks(self):
        d, c = start(self, burner())
        pid = c.wait_running(["burn"])["burn"]["pid"]
        # that status request started the watch: drover samples at refresh
        # from now on, and the first sample of a process has no CPU% yet
        watch = Watch(c, "burn")
        ch = watch.until(lambda ch: fits_one_core(ch["cpu"], ch["truth"], REFRESH),
                         3 * REFRESH + 0.3, "a burner at one core within 3 ticks")
        self.assertLessEqual(ch["t"], 3 * REFRESH + 0.3)
        w = watch.w
        if ch["cpu"] < LOW:
            print(f"\n  note: busy machine, the burner got {ch['truth']} % of a core by "
                  f"/proc and drover read {ch['cpu']} %", flush=True)
        # one process, no children: the tree is the process
        self.assertAlmostEqual(w["cpu"], w["cpu_self"], delta=0.01, msg=str(w))
        self.assertEqual((w["procs"], w["threads"], w["kstate"], w["pid"]), (1, 1, "R", pid),
                         str(w))

    def test_burner_matches_the_kernel_tick_after_tick(self):
        """Twelve ticks in a row: every figure within TOLERANCE of what the
        kernel accounted to the burner over the same stretch."""
        d, c = start(self, burner())
        c.wait_running(["burn"])
        watch = Watch(c, "burn")
        # ten judged figures; a drover (or this test) descheduled for a while
        # misses a tick now and then, so no count of ticks in fixed time
        watch.until(lambda ch: sum(x["truth"] is not None for x in watch.changes) >= 10,
                    30, "ten new figures, each judged against the kernel")
        changes = watch.changes
        judged = [x for x in changes if x["truth"] is not None]
        bad = [x for x in judged if abs(x["cpu"] - x["truth"]) > TOLERANCE
               or x["cpu"] > high(REFRESH)]
        self.assertFalse(bad, f"figures off the kernel's count: {bad}; all: {changes}")

    def test_alloc_200mb_reads_rss(self):
        d, c = start(self, program("mem", tw("alloc", 200), startsecs=0))
        ws = wait_figures(c, lambda ws: (ws["mem"]["rss"] or 0) >= 200 * MiB and
                          ws["mem"]["cpu"] is not None, 3 * REFRESH + 2,
                          "mem's rss >= 200 MiB, sampled twice")
        w = ws["mem"]
        self.assertGreaterEqual(w["rss_self"], 200 * MiB, str(w))
        self.assertEqual(w["rss"], w["rss_self"], "one process: tree rss = own rss")
        self.assertEqual(w["procs"], 1)
        kernel = vm_rss(w["pid"])  # the kernel's VmRSS of the same process
        self.assertIsNotNone(kernel)
        self.assertLess(abs(w["rss"] - kernel), 0.05 * kernel,
                        f"drover rss {w['rss']} vs VmRSS {kernel}")
        total = c.status()["system"]["mem_total"]
        self.assertAlmostEqual(w["mem_pct"], w["rss"] * 100.0 / total, delta=0.05, msg=str(w))
        # the tick that saw 200 MiB may still hold the time spent touching
        # them (on a loaded machine, seen: 19.8%); the tick after its first
        # whole tick asleep must read exactly 0
        wait_figures(c, lambda ws: ws["mem"]["kstate"] == "S" and ws["mem"]["cpu"] == 0.0,
                     3 * REFRESH + 2, "an allocator that sleeps to read 0 %")

    def test_three_sleeping_children_make_four_procs(self):
        d, c = start(self, program("kids", tw("children", 3), startsecs=0),
                     program("loners", tw("children", 3, "setsid"), startsecs=0))
        # Four sleepers read 0 %, but not always at their first CPU%: that
        # tick may still hold their start (a sanitizer build's start-up, the
        # forks), so wait for a tick wholly asleep.
        ws = wait_figures(c, lambda ws: ws["kids"]["procs"] == 4 and ws["loners"]["procs"] == 4
                          and ws["kids"]["cpu"] == 0.0 and ws["loners"]["cpu"] == 0.0,
                          10, "procs = 4 for kids and loners (own sessions), reading 0 %")
        for name in ("kids", "loners"):
            w = ws[name]
            self.assertEqual(w["procs"], 1 + len(descendants_of(w["pid"])), str(w))
            self.assertEqual(w["threads"], 1, str(w))
            # children share the parent's pages, but each counts its own RSS
            self.assertGreater(w["rss"], w["rss_self"], str(w))

    def test_threads_are_counted_not_listed(self):
        d, c = start(self, program("thr", tw("threads", 4), startsecs=0))
        ws = wait_figures(c, lambda ws: ws["thr"]["threads"] == 5, 3 * REFRESH + 2,
                          "thr shows 5 threads")
        self.assertEqual(ws["thr"]["procs"], 1, "threads are not processes: " + str(ws["thr"]))

    def test_tree_cpu_includes_burning_children(self):
        d, c = start(self, program("tree", niced(tw("burnkids", 1)), startsecs=0))
        c.wait_running(["tree"])
        watch = Watch(c, "tree", tree_ticks)
        watch.until(lambda ch: fits_one_core(ch["cpu"], ch["truth"], REFRESH),
                    3 * REFRESH + 1, "tree cpu of a worker whose child burns one core")
        w = watch.w
        self.assertEqual(w["procs"], 2, str(w))
        self.assertLess(w["cpu_self"], 5.0, "the parent itself sleeps: " + str(w))

    def test_tree_cpu_continuous_under_child_churn(self):
        """A worker forking one 30 ms burner after another (each waited
        for): the children's exits are folded in through cutime, so its tree
        reads what the kernel accounted on every tick, and the figure never
        drops back to null for the same worker process."""
        d, c = start(self, program("churn", niced(tw("churn", 30)), startsecs=0))
        c.wait_running(["churn"])
        watch = Watch(c, "churn", tree_ticks)
        watch.until(lambda ch: True, 3 * REFRESH + 1, "a first cpu figure for churn")
        pid = watch.w["pid"]
        end = time.monotonic() + 10 * REFRESH
        while time.monotonic() < end:
            watch.step()
            self.assertEqual(watch.w["pid"], pid, "churn itself must not restart")
            self.assertIsNotNone(watch.w["cpu"], f"cpu went back to null: {watch.changes}")
            time.sleep(0.005)
        judged = [x for x in watch.changes if x["truth"] is not None]
        self.assertGreaterEqual(len(judged), 6, f"a new figure every tick: {watch.changes}")
        bad = [x for x in judged if abs(x["cpu"] - x["truth"]) > TOLERANCE
               or x["cpu"] > high(REFRESH)]
        self.assertFalse(bad, f"tree cpu of a churning worker off the kernel's count: {bad}; "
                              f"all: {watch.changes}")
        self.assertGreater(statistics.median(x["cpu"] for x in judged), BURNING,
                           "a churning worker keeps a core busy")

    def test_paused_worker_reads_zero(self):
        d, c = start(self, burner())
        c.wait_running(["burn"])
        watch = Watch(c, "burn")
        watch.until(lambda ch: ch["cpu"] >= BURNING, 3 * REFRESH + 1,
                    "burning before the pause")
        c.ok("pause", "burn")
        ws = wait_figures(c, lambda ws: ws["burn"]["state"] == "PAUSED" and
                          ws["burn"]["kstate"] == "T" and ws["burn"]["cpu"] == 0.0,
                          3 * REFRESH + 1, "paused burner reads T and 0 %")
        self.assertEqual(ws["burn"]["cpu_self"], 0.0)
        end = time.monotonic() + 3 * REFRESH  # and stays at 0 over the next ticks
        while time.monotonic() < end:
            w = c.workers()["burn"]
            self.assertEqual((w["kstate"], w["cpu"]), ("T", 0.0), str(w))
            time.sleep(0.1)
        c.ok("resume", "burn")
        watch.until(lambda ch: ch["truth"] is not None and
                    fits_one_core(ch["cpu"], ch["truth"], REFRESH) and watch.w["kstate"] == "R",
                    3 * REFRESH + 1, "resumed burner back at one core")

    def test_start_time_and_kernel_state(self):
        d, c = start(self, program("sl", tw("sleep"), startsecs=0))
        ws = wait_figures(c, lambda ws: ws["sl"]["kstate"] is not None, 3 * REFRESH + 2,
                          "sl sampled")
        w = ws["sl"]
        expect = boot_wall() + start_ticks(w["pid"]) / HZ
        self.assertAlmostEqual(w["start_time"], expect, delta=0.05,
                               msg="start_time = boot + /proc/PID/stat starttime")
        # the first sample may catch the sleeper still starting (R, and CPU
        # in its first CPU%); a sleeper must come to read S and 0 %
        wait_figures(c, lambda ws: ws["sl"]["kstate"] == "S" and ws["sl"]["cpu"] == 0.0, 10,
                     "the sleeper read as S at 0 %")


class Churn(unittest.TestCase):
    """Figures that must not mix two processes or two ticks."""

    def test_figures_sane_while_status_is_polled_hard(self):
        """A client polling `status` back to back for 8 s while the sampler
        ticks: every figure matches the kernel's count over the same stretch.
        (Before the fix in monitor_schedule, a status request that arrived
        when the tick was due sampled at once, and the timer then ticked
        again in the same loop turn: CPU% over a few milliseconds, read as
        0 %, 40-70 % or 120-200 % for a burner.)"""
        d, c = start(self, burner())
        c.wait_running(["burn"])
        changes = Watch(c, "burn").run(8)
        judged = [x for x in changes if x["truth"] is not None]
        # 16 ticks in 8 s; a descheduled drover may miss some
        self.assertGreaterEqual(len(judged), 8, "the sampler ticked: " + str(changes))
        bad = [x for x in judged if abs(x["cpu"] - x["truth"]) > TOLERANCE
               or x["cpu"] > high(REFRESH)]
        self.assertFalse(bad, f"{len(bad)} of {len(judged)} figures off the kernel's count: "
                              f"{bad[:12]}")

    def test_first_sample_after_restart_is_null(self):
        """After `restart`, the new process has no CPU% until it was sampled
        twice, and the status never shows the old process's figures under
        the new pid. Fails today: worker->metrics stays valid from the last
        tick of the old process until the next tick, and snapshot_build
        shows it with the new pid (cpu ~100, the old start_time, kstate R)."""
        d, c = start(self, burner())
        c.wait_running(["burn"])
        old = wait_figures(c, lambda ws: (ws["burn"]["cpu"] or 0) >= BURNING,
                           3 * REFRESH + 1, "burning")["burn"]
        restarted_at = time.time()
        c.ok("restart", "burn")
        rows = []
        with c.connect() as conn:
            end = time.monotonic() + 4 * REFRESH
            while time.monotonic() < end:
                w = {x["name"]: x for x in conn.request("status")["workers"]}["burn"]
                if w["pid"] not in (None, old["pid"]) and w["kstate"] is not None:
                    rows.append(w)
                time.sleep(0.005)
        self.assertTrue(rows, "the new process was sampled")
        w = rows[0]
        self.assertIsNone(w["cpu"], "the first figures of the new process carry no CPU%: "
                                    f"{figures({'burn': w})}, old pid {old['pid']}")
        self.assertGreaterEqual(w["start_time"], restarted_at - 0.05,
                                "start_time is the new process's, not the old one's")
        self.assertTrue(any((x["cpu"] or 0) >= BURNING for x in rows),
                        "the new burner reads its own CPU later")

    def test_restart_loop_keeps_figures_sane(self):
        """A burner that exits after 150 ms and is restarted at once, polled
        for 4 s: new pids all the time, figures always in range."""
        d, c = start(self, program("flap", niced(tw("exit", 0, 150)), startsecs=0,
                                   autorestart=True, backoff_max=0, fatal_after=0),
                     refresh=0.2)
        seen = with_pages = 0
        end = time.monotonic() + 4
        while time.monotonic() < end:
            w = c.workers()["flap"]
            if w["kstate"] is not None:
                seen += 1
                if w["cpu"] is not None:
                    self.assertTrue(0.0 <= w["cpu"] <= 100.0 * NCPU, str(w))
                    self.assertTrue(0.0 <= w["cpu_self"] <= 100.0 * NCPU, str(w))
                # A process has no pages while inside its execve (the new
                # image not yet faulted in), after exit_mm (a sanitizer
                # build's teardown of its shadow takes long), or as a zombie.
                # It runs (R) or waits uninterruptibly (D) then; it does not
                # sleep in its 150 ms nap. The figures are the last tick's, and
                # a worker that lives less than `refresh` is sampled once, so
                # an execve caught at 4 ms reads rss 0 for its whole life
                # (CI: rss 0 at 0.16 s of uptime).
                if w["rss"] == 0:
                    self.assertIn(w["kstate"], ("R", "D", "Z"), str(w))
                else:
                    with_pages += 1
                # 2 when the sample caught a sanitizer build's exit-time leak
                # checker (a tracer child; kstate t)
                self.assertIn(w["procs"], (1, 2), str(w))
            time.sleep(0.01)
        self.assertGreater(seen, 5, "the flapping worker was sampled")
        self.assertGreater(with_pages, 0, "some samples read the worker's pages")
        self.assertGreaterEqual(len(d.pids_of("flap")), 10, "the worker restarted often")
        self.assertTrue(alive(d.pid), "drover is still there")

    @unittest.skipUnless(os.geteuid() == 0 and os.access("/proc/sys/kernel/ns_last_pid",
                                                          os.W_OK),
                         "needs root to steer PID allocation with ns_last_pid")
    def test_reused_pid_is_a_new_process(self):
        """The same PID, another process: a sleeper is stopped, the kernel is
        steered into giving the next spawn the same PID, and the worker now
        burns. Its first figure must be null (the start time differs), not
        the burner's ticks measured against the sleeper's last sample."""
        d, c = start(self, program("flip", tw("burnfile", "HOT"), startsecs=0))
        c.wait_running(["flip"])
        pid = wait_figures(c, lambda ws: ws["flip"]["cpu"] == 0.0, 3 * REFRESH + 2,
                           "the sleeper sampled twice")["flip"]["pid"]
        open(d.path("HOT"), "w").close()
        for attempt in range(10):
            c.ok("stop", "flip")
            wait_figures(c, lambda ws: ws["flip"]["pid"] is None, 5, "flip stopped")
            # a tick without the process, then the same pid for a new one
            time.sleep(2 * REFRESH)
            c.workers()
            with c.connect() as conn:
                with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                    f.write(str(pid - 1))
                reply = conn.request("start", "flip")
            self.assertIs(reply.get("ok"), True, str(reply))
            ws = wait_figures(c, lambda ws: ws["flip"]["pid"] is not None, 5, "flip started")
            if ws["flip"]["pid"] == pid:
                break
        else:
            self.skipTest("another process took the PID every time (busy machine)")
        rows = []
        with c.connect() as conn:
            end = time.monotonic() + 4 * REFRESH
            while time.monotonic() < end:
                w = {x["name"]: x for x in conn.request("status")["workers"]}["flip"]
                if w["kstate"] is not None:
                    rows.append((w["cpu"], w["kstate"], w["start_time"]))
                time.sleep(0.01)
        self.assertTrue(rows, "the new process was sampled")
        self.assertIsNone(rows[0][0], f"first figure of a reused pid must be null: {rows[:5]}")
        self.assertTrue(any((r[0] or 0) >= BURNING for r in rows),
                        f"the new process (a burner) reads its own CPU later: {rows[-5:]}")


class Groups(unittest.TestCase):

    def test_group_sums_and_busiest(self):
        d, c = start(self, program("mix", niced(tw("burnif", "%(process_num)d", 1)),
                                   numprocs=3, startsecs=0),
                     program("kids", tw("children", 2), startsecs=0))
        names = ["mix_00", "mix_01", "mix_02", "kids"]
        c.wait_running(names)
        # the sleepers' first CPU% may hold their start: wait for 0 %
        wait_figures(c, lambda ws: all(ws[n]["cpu"] is not None for n in names) and
                       ws["mix_01"]["cpu"] >= BURNING and ws["kids"]["procs"] == 3 and
                       all(ws[n]["cpu"] == 0.0 for n in ("mix_00", "mix_02", "kids")),
                       10, "every worker sampled twice, mix_01 burning, the others at 0 %")
        st = c.status()
        ws = {w["name"]: w for w in st["workers"]}
        groups = {g["name"]: g for g in st["groups"]}
        for gname, members in (("mix", names[:3]), ("kids", ["kids"])):
            g = groups[gname]
            self.assertAlmostEqual(g["cpu"], sum(ws[n]["cpu"] for n in members), delta=1e-6,
                                   msg=f"{gname} cpu = sum of its workers'")
            self.assertEqual(g["rss"], sum(ws[n]["rss"] for n in members),
                             f"{gname} rss = sum of its workers' tree rss")
            self.assertEqual(g["actual"], len(members))
        self.assertEqual(groups["mix"]["busiest"], "mix_01")
        self.assertEqual(ws["mix_00"]["cpu"], 0.0)
        self.assertEqual(ws["mix_02"]["cpu"], 0.0)
        # an idle group has no busiest worker
        self.assertIsNone(groups["kids"]["busiest"], str(groups["kids"]))

    def test_system_line(self):
        d, c = start(self, burner())
        c.wait_running(["burn"])
        wait_figures(c, lambda ws: (ws["burn"]["cpu"] or 0) >= BURNING, 3 * REFRESH + 1,
                     "burning")
        sys_ = c.status()["system"]
        self.assertIsInstance(sys_, dict)
        self.assertEqual(sys_["ncpu"], NCPU)
        load = sys_["load"]
        self.assertEqual(len(load), 3)
        with open("/proc/loadavg") as f:
            real = [float(x) for x in f.read().split()[:3]]
        for got, want in zip(load, real):
            self.assertAlmostEqual(got, want, delta=max(0.5, want * 0.3), msg=f"{load} {real}")
        mi = meminfo()
        self.assertEqual(sys_["mem_total"], mi["MemTotal"])
        used = mi["MemTotal"] - mi["MemAvailable"]
        self.assertAlmostEqual(sys_["mem_used"], used, delta=0.02 * mi["MemTotal"])
        # busy % of all CPUs: one burning core of NCPU is at least 100/NCPU
        self.assertGreaterEqual(sys_["cpu"], 0.85 * 100.0 / NCPU, str(sys_))
        self.assertLessEqual(sys_["cpu"], 100.0, str(sys_))


    def test_system_cpu_before_two_reads_is_null(self):
        """Right after start (a status before the second tick), the system
        line has no CPU figure yet: it must be null, like a worker's cpu,
        not -1.0 (which `ctl top` prints as "cpu -1.0%"). Fails today:
        sampler.cpu is -1 until the second read and snapshot_to_json writes
        it as is. (refresh = 60: the status does not make drover sample.)"""
        d, c = start(self, program("sl", tw("sleep"), startsecs=0), refresh=60)
        sys_ = c.status()["system"]
        self.assertIsInstance(sys_, dict)
        self.assertTrue(sys_["cpu"] is None or 0.0 <= sys_["cpu"] <= 100.0, str(sys_))


class Headless(unittest.TestCase):
    """event=metrics lines, written while nobody looks."""

    def metrics_batches(self, d, n, timeout, probe=None):
        """The first n batches of metrics events: each a dict with
        'workers' (name -> event) and 'groups' (name -> event); a batch ends
        with the last group line. probe() is called at every poll."""
        ngroups = None

        def batches():
            out, cur = [], {"workers": {}, "groups": {}}
            for e in d.events_named("metrics"):
                if "worker" in e:
                    cur["workers"][e["worker"]] = e
                elif "group" in e:
                    cur["groups"][e["group"]] = e
                    if len(cur["groups"]) == ngroups:
                        cur["t"] = e.get("_ts")
                        out.append(cur)
                        cur = {"workers": {}, "groups": {}}
            return out
        ngroups = self.ngroups

        def enough():
            if probe:
                probe()
            b = batches()
            return len(b) >= n and b
        got = poll(enough, timeout, 0.02)
        if not got:
            self.fail(f"fewer than {n} metrics batches within {timeout}s\n" + d.context(40))
        return got[:n]

    def test_metrics_events_at_interval(self):
        self.ngroups = 3
        d = Drover(self, "metrics")
        d.write_config(burner(), program("kids", tw("children", 2), startsecs=0),
                       program("pool", tw("sleep"), numprocs=2, startsecs=0),
                       drover={"metrics_interval": 1, "refresh": 0.5})
        d.start()
        # no status request, no event stream: nobody looks
        readings = []  # (monotonic, ticks) of the burner, read by the test

        def probe():
            pid = d.pid_of("burn")
            t = cpu_ticks(pid) if pid else None
            if t is not None:
                readings.append((time.monotonic(), t))
        batches = self.metrics_batches(d, 5, 12, probe)

        def ticks_at(t):
            before = [r for r in readings if r[0] <= t]
            after = [r for r in readings if r[0] >= t]
            if not before or not after:
                return None
            (t0, k0), (t1, k1) = before[-1], after[0]
            return k0 if t1 == t0 else k0 + (k1 - k0) * (t - t0) / (t1 - t0)
        names = {"burn": "burn", "kids": "kids", "pool_00": "pool", "pool_01": "pool"}
        for i, b in enumerate(batches):
            self.assertEqual(set(b["workers"]), set(names), f"batch {i}: one line per worker")
            for name, e in b["workers"].items():
                self.assertEqual(int(e["pid"]), d.pid_of(name), e["_raw"])
                self.assertGreater(int(e["rss"]), 0, e["_raw"])
                self.assertEqual(int(e["threads"]), 1, e["_raw"])
                if i >= 1:
                    self.assertIn("cpu", e, f"batch {i}: cpu once sampled twice: " + e["_raw"])
            self.assertEqual(int(b["workers"]["kids"]["procs"]), 3)
            self.assertEqual(int(b["workers"]["burn"]["procs"]), 1)
            for gname, g in b["groups"].items():
                members = [e for n, e in b["workers"].items() if names[n] == gname]
                self.assertEqual(int(g["workers"]), len(members), g["_raw"])
                self.assertEqual(int(g["rss"]), sum(int(e["rss"]) for e in members), g["_raw"])
                self.assertEqual(int(g["procs"]), sum(int(e["procs"]) for e in members))
                self.assertAlmostEqual(float(g["cpu"]),
                                       sum(float(e.get("cpu", 0)) for e in members),
                                       delta=0.1 * len(members) + 1e-9, msg=g["_raw"])
        for b1, b2 in zip(batches[1:], batches[2:]):
            cpu = float(b2["workers"]["burn"]["cpu"])
            t1, t2 = b1["workers"]["burn"]["_t"], b2["workers"]["burn"]["_t"]
            k1, k2 = ticks_at(t1), ticks_at(t2)
            truth = None if k1 is None or k2 is None else (k2 - k1) / HZ / (t2 - t1) * 100
            self.assertTrue(fits_one_core(cpu, truth, 1.0),
                            f"burner in a metrics line: {cpu}, kernel {truth}")
            self.assertEqual(float(b2["workers"]["pool_00"]["cpu"]), 0.0)
        gaps = [round(b2["t"] - b1["t"], 3) for b1, b2 in zip(batches, batches[1:])]
        # drover's own stamps; a tick fires late when drover is not scheduled
        # (seen 1.307 s with drover frozen at random), never early
        self.assertTrue(all(0.8 <= g <= 1.6 for g in gaps),
                        f"metrics batches every metrics_interval = 1 s: gaps {gaps}")

    def test_metrics_interval_kept_while_watched(self):
        """With someone watching, drover samples at `refresh`; when refresh
        is longer than metrics_interval the metrics lines must still come
        every metrics_interval."""
        self.ngroups = 1
        d = Drover(self, "metrics")
        d.write_config(program("sl", tw("sleep"), startsecs=0),
                       drover={"metrics_interval": 1, "refresh": 3})
        d.start()
        c = Control(d)
        with c.connect() as conn:
            r = conn.request("events")
            self.assertIs(r.get("ok"), True, str(r))
            batches = self.metrics_batches(d, 4, 10)
        gaps = [round(b2["t"] - b1["t"], 3) for b1, b2 in zip(batches, batches[1:])]
        self.assertTrue(all(0.8 <= g <= 1.6 for g in gaps),
                        f"metrics every 1 s while an event stream is attached: gaps {gaps}")

    def test_metrics_off(self):
        d = Drover(self, "metrics")
        d.write_config(program("sl", tw("sleep"), startsecs=0),
                       drover={"metrics_interval": 0, "refresh": 0.2})
        d.start()
        d.wait_state("sl", "RUNNING", 5)
        d.assert_no_event(lambda e: e.get("event") == "metrics", 2, what="metrics line")


class Limits(unittest.TestCase):

    def test_memory_limit_restarts_and_logs(self):
        d = Drover(self, "limits")
        d.write_config(program("mem", tw("alloc", 200), startsecs=0, memory_limit="100MB"),
                       drover={"refresh": REFRESH})
        d.start()
        # no status request: a configured limit alone keeps the sampler at refresh
        running = d.wait_state("mem", "RUNNING", 5)
        first = int(running["pid"])
        e = d.wait_event(lambda e: e.get("event") == "limit", 3 * REFRESH + 2,
                         what="a limit event")
        self.assertEqual(e.get("worker"), "mem", e["_raw"])
        self.assertEqual(e.get("limit_kind"), "memory", e["_raw"])
        self.assertEqual(int(e["limit"]), 100 * MiB, e["_raw"])
        # the rss of the tick that restarted it: over the limit, and not more
        # than the 200 MB the worker touches (plus its own few). Not 200 MB:
        # the first tick over the limit restarts, and it may land while the
        # pages are still being touched (full suite, seen: rss=117972992).
        self.assertGreater(int(e["rss"]), 100 * MiB, e["_raw"])
        self.assertLess(int(e["rss"]), 250 * MiB, e["_raw"])
        self.assertLess(e["_t"] - running["_t"], 3 * REFRESH + 1,
                        "with limit_grace = 0 the first tick over the limit restarts")
        d.wait_event(lambda e: e.get("event") == "state" and e.get("worker") == "mem" and
                     e.get("to") == "RUNNING" and int(e.get("pid", 0)) != first, 10,
                     what="mem running again with a new pid")
        self.assertFalse(alive(first), "the old process is gone")
        ws = Control(d).workers()
        self.assertGreaterEqual(ws["mem"]["restarts"], 1)

    def test_memory_limit_grace(self):
        d = Drover(self, "limits")
        d.write_config(program("mem", tw("alloc", 200), startsecs=0, memory_limit="100MB",
                               limit_grace=2), drover={"refresh": REFRESH})
        d.start()
        running = d.wait_state("mem", "RUNNING", 5)
        e = d.wait_event(lambda e: e.get("event") == "limit", 2 + 3 * REFRESH + 2,
                         what="a limit event after the grace")
        # drover's own stamps, not when we read the lines: a reader thread
        # late for the RUNNING line would shorten the wait it saw (the
        # stamps are to the millisecond)
        waited = e["_ts"] - running["_ts"]
        self.assertGreaterEqual(waited, 2.0 - 0.01, "not before limit_grace = 2 s")
        self.assertLess(waited, 2.0 + 2 * REFRESH + 1, "soon after limit_grace = 2 s")

    def test_under_the_limits_no_restart(self):
        d = Drover(self, "limits")
        d.write_config(program("sl", tw("alloc", 20), startsecs=0, memory_limit="100MB",
                               cpu_limit="50%"), drover={"refresh": 0.2})
        d.start()
        d.wait_state("sl", "RUNNING", 5)
        d.assert_no_event(lambda e: e.get("event") == "limit", 3, what="limit event")

    def test_limit_added_by_reload_applies(self):
        """metrics_interval = 0 and nobody watching: drover does not sample.
        A reload that adds memory_limit must start the sampler (a limit
        needs ticks at refresh). Fails today: reconfigure does not call
        monitor_schedule, so the timer stays cancelled and the limit is
        enforced only once someone sends `status` (with the default
        metrics_interval = 10 it starts up to 10 s late)."""
        d = Drover(self, "limits")
        d.write_config(program("mem", tw("alloc", 200), startsecs=0),
                       drover={"refresh": REFRESH, "metrics_interval": 0})
        d.start()
        d.wait_state("mem", "RUNNING", 5)
        d.write_config(program("mem", tw("alloc", 200), startsecs=0, memory_limit="100MB"),
                       drover={"refresh": REFRESH, "metrics_interval": 0})
        with Control(d).connect() as conn:  # not `status`: that would start the sampler
            r = conn.request("reload")
        self.assertIs(r.get("ok"), True, str(r))
        d.wait_event(lambda e: e.get("event") == "limit", 3 * REFRESH + 3,
                     what="the limit added by reload enforced")

    def test_cpu_limit_restarts(self):
        d = Drover(self, "limits")
        # 10 %: a burner passes it even on a machine other sessions keep busy
        d.write_config(burner(cpu_limit="10%"), drover={"refresh": REFRESH})
        d.start()
        running = d.wait_state("burn", "RUNNING", 5)
        e = d.wait_event(lambda e: e.get("event") == "limit", 4 * REFRESH + 2,
                         what="a cpu limit event")
        self.assertEqual(e.get("worker"), "burn")
        self.assertEqual(e.get("limit_kind"), "cpu", e["_raw"])
        self.assertEqual(float(e["limit"]), 10.0, e["_raw"])
        self.assertGreater(float(e["cpu"]), 10.0, e["_raw"])
        d.wait_event(lambda e: e.get("event") == "state" and e.get("worker") == "burn" and
                     e.get("to") == "RUNNING" and e.get("pid") != running.get("pid"), 10,
                     what="burn restarted")


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"),
                     "needs root for a mount namespace without /proc")
class NoProc(unittest.TestCase):
    """libproc2 calls _exit(47) when /proc is missing: drover must look
    first, warn, and go on supervising without figures."""

    def test_missing_proc_is_a_warning(self):
        import harness
        wrapdir = tempfile.mkdtemp(prefix="drover-it-noproc-")
        self.addCleanup(shutil.rmtree, wrapdir, True)
        wrapper = os.path.join(wrapdir, "drover-without-proc")
        with open(wrapper, "w") as f:  # same pid all the way: unshare and sh exec
            f.write("#!/bin/sh\nexec unshare -m sh -c 'umount -l /proc && exec \"$0\" \"$@\"' "
                    f"{harness.DROVER_BIN} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        real = harness.DROVER_BIN
        harness.DROVER_BIN = wrapper
        self.addCleanup(setattr, harness, "DROVER_BIN", real)
        d, c = start(self, program("sl", tw("sleep"), startsecs=0), refresh=0.2,
                     metrics_interval=1)
        e = d.wait_event(lambda e: e.get("event") == "metrics" and "error" in e, 5,
                         what="a warning that there are no metrics")
        self.assertEqual(e.get("level"), "warn", e["_raw"])
        self.assertIn("/proc", e["error"])
        pid = int(d.wait_state("sl", "RUNNING", 5)["pid"])
        st = c.status()
        w = st["workers"][0]
        self.assertEqual((w["cpu"], w["rss"], w["kstate"]), (None, None, None), str(w))
        self.assertIsNone(st["system"])
        d.assert_no_event(lambda e: e.get("event") == "metrics", 2.5, after=d.mark(),
                          what="metrics line or repeated warning without /proc")
        os.kill(pid, signal.SIGKILL)  # still supervising
        d.wait_event(lambda e: e.get("event") == "state" and e.get("worker") == "sl" and
                     e.get("to") == "RUNNING" and int(e["pid"]) != pid, 10,
                     what="sl restarted")
        rc = d.stop()
        self.assertEqual(d.snapshot()[-1].get("event"), "stopped", d.context())
        if rc != 0:  # a sanitizer build: the leak checker at exit needs /proc
            self.assertTrue(any("LeakSanitizer has encountered a fatal error" in l
                                for l in d.stderr_lines), f"exit code {rc}\n" + d.context())


class Ctl(unittest.TestCase):
    """`drover ctl status` and `drover ctl top` show the figures."""

    ROW = re.compile(r"^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+:\d\d:\d\d|-)\s+(\d+)")

    def rows(self, text):
        lines = text.splitlines()
        head = [i for i, l in enumerate(lines) if l.startswith("NAME ")]
        self.assertEqual(len(head), 1, text)
        self.assertRegex(lines[head[0]], r"^NAME\s+STATE\s+PID\s+CPU%\s+RSS\s+UPTIME\s+RESTARTS")
        out = []
        for l in lines[head[0] + 1:]:
            m = self.ROW.match(l)
            self.assertTrue(m, f"row {l!r} in\n{text}")
            out.append({"name": m[1], "state": m[2], "pid": m[3], "cpu": m[4], "rss": m[5]})
        return lines[:head[0]], out

    def setUp(self):
        self.d, self.c = start(self, burner(), program("idle", tw("sleep"), numprocs=2,
                                                       startsecs=0),
                               program("mem", tw("alloc", 50), startsecs=0))
        self.names = ["burn", "idle_00", "idle_01", "mem"]
        self.c.wait_running(self.names)
        # the sleepers' first CPU% may hold their start: wait for 0 %
        wait_figures(self.c, lambda ws: all(ws[n]["cpu"] is not None for n in self.names) and
                            ws["burn"]["cpu"] >= BURNING and ws["mem"]["rss"] >= 50 * MiB and
                            ws["idle_00"]["cpu"] == 0.0 and ws["idle_01"]["cpu"] == 0.0,
                            10, "every worker sampled twice, the idle ones at 0 %")

    def test_status_columns(self):
        p = self.c.ctl_ok("status")
        _, rows = self.rows(p.stdout)
        by = {r["name"]: r for r in rows}
        self.assertEqual(set(by), set(self.names))
        self.assertGreaterEqual(float(by["burn"]["cpu"]), BURNING)
        self.assertEqual(by["idle_00"]["cpu"], "0.0")
        self.assertRegex(by["mem"]["rss"], r"^[5-9]\d(\.\d)?M$", "50 MB shown as 5xM")
        for r in rows:
            self.assertRegex(r["rss"], r"^\d+(\.\d)?[KMG]$|^\d+B$", str(r))

    def test_top_once_sorted_by_cpu(self):
        p = self.c.ctl_ok("top", "-n", "1")
        head, rows = self.rows(p.stdout)
        self.assertNotIn("\033", p.stdout, "no screen clearing when stdout is not a tty")
        self.assertRegex(head[0], r"^drover \S+\s+pid \d+\s+load [\d.]+ [\d.]+ [\d.]+\s+"
                                  r"cpu [\d.]+%\s+mem \S+ / \S+$")
        groups = {l.split()[0]: l for l in head[1:] if l.strip()}
        self.assertEqual(set(groups), {"burn", "idle", "mem"}, head)
        self.assertIn("busiest burn", groups["burn"])
        self.assertEqual([r["name"] for r in rows][0], "burn", p.stdout)
        cpus = [float(r["cpu"]) for r in rows]
        self.assertEqual(cpus, sorted(cpus, reverse=True), p.stdout)
        self.assertEqual(len(rows), 4)

    def test_top_frames_and_options(self):
        t0 = time.monotonic()
        p = self.c.ctl_ok("top", "-n", "3", "-d", "0.3")
        took = time.monotonic() - t0
        self.assertEqual(p.stdout.count("\nNAME "), 3, p.stdout)
        self.assertGreaterEqual(took, 0.6, "two pauses of -d 0.3 between three frames")
        for bad in (["-d", "0.01"], ["-d", "61"], ["-x"]):
            q = self.c.ctl("top", *bad)
            self.assertEqual(q.returncode, 2, f"top {bad}: {q.stdout} {q.stderr}")
            self.assertEqual(q.stdout, "")


if __name__ == "__main__":
    unittest.main()
