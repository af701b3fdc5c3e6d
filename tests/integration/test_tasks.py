"""Task queues end to end, against the real binary: tasks submitted to a
running drover, worked by pools over their pipes (`tasks = lines | json`),
the results file, the control commands (tasks, task, cancel, retry, wait),
task_source, and the task contract of shared/RELIABILITY.md: a crash re-runs
only what was in flight, a result is recorded once, the head of the line
takes the blame, poison tasks end dead after task_retries, and nothing is
lost when drover itself is killed -9 (sqlite store).

A subset runs against both stores (SqliteStore*, MemoryStore*): the memory
store keeps the same semantics without durability.

Environment: DROVER_BIN, DROVER_TESTWORKER (see harness.py) and
DROVER_TASKWORKER (examples/square.c: lines/json squares with
--crash-every, --hang-every, --error-every, --garbage-every, --reverse,
--sleep-ms)."""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import unittest

from harness import DROVER_BIN, Drover, alive, poll, program
from ctlutil import Control

TASKWORKER = os.environ.get("DROVER_TASKWORKER", "")
# mawk buffers its input when stdin is not a terminal unless -W interactive:
# without it a pipelined pool deadlocks (drover waits for results, mawk for
# more input). printf %.0f: mawk's print turns squares over 2^31 into
# 2.14749e+09; %% is a literal % in drover's config.
MAWK = "mawk -W interactive '{printf \"%%.0f\\n\", $1*$1; fflush()}'"


def taskworker(*args):
    return " ".join([TASKWORKER] + [str(a) for a in args])


def pool(name, command, n=2, **keys):
    """A task pool section: restarts at once (backoff_max = 0) and never
    goes FATAL, so crash tests measure the queue, not the crash-loop
    brakes."""
    keys.setdefault("tasks", "lines")
    keys.setdefault("startsecs", 0)
    keys.setdefault("autorestart", True)
    keys.setdefault("backoff_max", 0)
    keys.setdefault("fatal_after", 0)
    keys.setdefault("stopwaitsecs", 5)
    keys.setdefault("stdout_logfile", "NONE")
    return program(name, command, numprocs=n, **keys)


class Tasks:
    """One drover with task pools, and the ways to talk to its queues."""

    def __init__(self, test, store="sqlite", name="tasks"):
        if not TASKWORKER or not os.access(TASKWORKER, os.X_OK):
            test.fail(f"DROVER_TASKWORKER={TASKWORKER!r} is not an executable; set it to the "
                      "built examples/square.c (drover-taskworker)")
        self.test = test
        self.store = store
        self.d = Drover(test, name)
        self.c = Control(self.d)

    def path(self, *parts):
        return self.d.path(*parts)

    def configure(self, *sections, **drover_keys):
        keys = {"store": self.store, "metrics_interval": 0}
        keys.update(drover_keys)
        self.d.write_config(*sections, drover=keys)

    def start(self, *sections, **drover_keys):
        if sections:
            self.configure(*sections, **drover_keys)
        self.d.start()
        return self

    # -- getting tasks in --

    def submit(self, group, tasks):
        """Through the socket; the reply (ok checked)."""
        return self.c.ok("submit", group, tasks=list(tasks))

    def submit_file(self, group, path, timeout=120):
        """`drover submit -q GROUP -f PATH`; returns the count it printed."""
        p = subprocess.run([DROVER_BIN, "submit", "-c", self.d.config_path, "-q", group,
                            "-f", path], capture_output=True, text=True, timeout=timeout,
                           env=self.d.env(), cwd=self.d.dir, stdin=subprocess.DEVNULL)
        self.test.assertEqual(p.returncode, 0, f"drover submit -f {path}: {p.stderr}\n"
                              + self.d.context())
        return int(p.stdout.strip())

    def write_lines(self, name, lines):
        path = self.path(name)
        with open(path, "w") as f:
            for line in lines:
                f.write(f"{line}\n")
        return path

    # -- looking at queues --

    def wait(self, group, timeout=60, expect_rc=0):
        """`drover ctl wait GROUP`: blocks until drained. Returns the
        CompletedProcess after checking the exit code."""
        try:
            p = self.c.ctl("wait", group, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.test.fail(f"ctl wait {group} did not return within {timeout}s; "
                           f"counts {self.counts(group)}\n" + self.d.context())
        self.test.assertEqual(p.returncode, expect_rc,
                              f"ctl wait {group}: rc {p.returncode}\nstdout: {p.stdout}\n"
                              f"stderr: {p.stderr}\ncounts {self.counts(group)}\n"
                              + self.d.context())
        return p

    def counts(self, group):
        return self.c.ok("tasks", group)["counts"]

    def tasks(self, group, state=None):
        r = self.c.ok("tasks", group, state) if state else self.c.ok("tasks", group)
        return r["tasks"]

    def task(self, tid):
        return self.c.ok("task", str(tid))["task"]

    def wait_counts(self, group, pred, timeout=30, what="a queue condition"):
        seen = {}

        def check():
            nonlocal seen
            seen = self.counts(group)
            return pred(seen)
        if not poll(check, timeout, interval=0.02):
            self.test.fail(f"timed out after {timeout}s waiting for {what}; counts {seen}\n"
                           + self.d.context())
        return seen

    def db_rows(self, sql, args=()):
        """Read the sqlite store as an operator would (WAL: readers welcome)."""
        db = sqlite3.connect(f"file:{self.d.state_dir}/tasks.db?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()


def read_results(path):
    """The results file: a list of dicts, one per line; every line must be
    a JSON object with id, task and exactly one of result/error."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        raise AssertionError(f"{path}: the last line is torn: {data[-80:]!r}")
    for n, raw in enumerate(data.splitlines(), 1):
        try:
            o = json.loads(raw)
        except ValueError as e:
            raise AssertionError(f"{path}:{n}: not JSON ({e}): {raw[:200]!r}")
        if not isinstance(o, dict) or not isinstance(o.get("id"), int) or "task" not in o \
                or (("result" in o) == ("error" in o)):
            raise AssertionError(f"{path}:{n}: not {{id, task, result|error}}: {raw[:200]!r}")
        out.append(o)
    return out


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def assert_each_once(test, results, n, what="results"):
    """ids 1..n, each exactly once."""
    ids = [r["id"] for r in results]
    seen = set()
    dups = sorted({i for i in ids if i in seen or seen.add(i)})
    test.assertEqual(dups, [], f"{what}: ids written more than once (first 20): {dups[:20]}")
    missing = sorted(set(range(1, n + 1)) - seen)
    test.assertEqual(missing, [], f"{what}: {len(missing)} ids missing (first 20): "
                     f"{missing[:20]}")
    test.assertEqual(len(ids), n, f"{what}: line count")


def assert_squares(test, results, what="results"):
    bad = [r for r in results if "result" not in r or int(r["result"]) != int(r["task"]) ** 2]
    test.assertEqual(bad[:5], [], f"{what}: {len(bad)} wrong or missing results")


# ---------------------------------------------------------------------------
# The suite run against both stores.

class BothStores:
    STORE = None

    def make(self, name="tasks"):
        return Tasks(self, self.STORE, f"{name}-{self.STORE}")

    def test_100k_through_mawk(self):
        """1e5 tasks submitted with `drover submit -f` through 2 mawk workers
        give 1e5 correct results: in the results file (each id once, JSON
        lines with id, task, result) and in the store's counts; the headless
        log's queue event agrees."""
        t = self.make("mawk")
        results = t.path("results.jsonl")
        t.start(pool("sq", MAWK, 2, results=results), metrics_interval=1)
        n = 100_000
        src = t.write_lines("tasks.txt", range(1, n + 1))
        self.assertEqual(t.submit_file("sq", src), n)
        p = t.wait("sq", timeout=120)
        self.assertIn(f"{n} done, 0 dead", p.stdout)
        counts = t.counts("sq")
        self.assertEqual(counts, {"pending": 0, "running": 0, "done": n, "failed": 0,
                                  "dead": 0, "cancelled": 0})
        # results are flushed in the same loop turn as the commit that
        # drained the queue: the file is complete when wait returns
        res = read_results(results)
        assert_each_once(self, res, n)
        assert_squares(self, res)
        self.assertTrue(all(isinstance(r["task"], str) and isinstance(r["result"], str)
                            for r in res[:100]), "lines pools record strings")
        # the store agrees on a sample, through ctl task
        for tid in (1, 4242, n):
            task = t.task(tid)
            self.assertEqual((task["state"], task["task"], int(task["result"]),
                              task["attempts"]), ("done", str(tid), tid * tid, 1), task)
            self.assertIn(task["worker"], ("sq_00", "sq_01"))
        # both workers took part (dispatch goes to the one with fewest in flight)
        workers = {t.task(tid)["worker"] for tid in range(1, n + 1, n // 50)}
        self.assertEqual(workers, {"sq_00", "sq_01"})
        t.d.wait_event(lambda e: e.get("event") == "queue" and e.get("group") == "sq"
                       and str(e.get("done")) == str(n) and str(e.get("pending")) == "0",
                       10, what="a queue event with every task done")

    def test_poison_crash_every_100(self):
        """A worker that crashes on every 100th task (it exits on reading it,
        after writing the results before it): each of those is the head of
        the line when its worker dies, takes one attempt per death and ends
        dead after task_retries retries, with the reason kept; every other
        task ends done and was never charged more than its one attempt (the
        tasks behind the poison one go back free). Results file: one line
        per task, dead ones with their error."""
        t = self.make("poison")
        results = t.path("results.jsonl")
        retries = 2
        t.start(pool("sq", taskworker("--crash-every", 100), 2, task_retries=retries,
                     results=results))
        n = 1000
        t.submit_file("sq", t.write_lines("tasks.txt", range(1, n + 1)))
        p = t.wait("sq", timeout=90, expect_rc=3)
        self.assertIn(f"{n - 10} done, 10 dead", p.stdout)
        dead = t.tasks("sq", "dead")
        self.assertEqual(sorted(int(x["task"]) for x in dead), list(range(100, n + 1, 100)))
        for x in dead:
            self.assertEqual(x["attempts"], retries + 1, x)
            self.assertRegex(x["error"] or "", r"died.*exit:3", x)
        done = t.tasks("sq", "done")  # the first 1000 listed
        self.assertEqual(len(done), n - 10)
        overcharged = [x for x in done if x["attempts"] != 1]
        self.assertEqual(overcharged[:5], [],
                         f"{len(overcharged)} done tasks were charged for another's crash")
        res = read_results(results)
        assert_each_once(self, res, n)
        errs = {r["id"]: r for r in res if "error" in r}
        self.assertEqual(sorted(errs), [x["id"] for x in dead])
        assert_squares(self, [r for r in res if "result" in r])
        # the workers were restarted each time (30 deaths, 0 FATAL)
        exits = t.d.events_named("exit")
        self.assertGreaterEqual(len(exits), 10 * (retries + 1))
        t.c.wait_running(["sq_00", "sq_01"], 10)

    def test_json_protocol(self):
        """tasks = json: answers in any order (the worker answers each burst
        last first), an error answer fails the attempt and the task ends dead
        after task_retries, a line that is not JSON and an answer for an id
        the worker does not hold are protocol errors in the log while the
        worker keeps running. The results file keeps JSON as JSON."""
        t = self.make("json")
        results = t.path("results.jsonl")
        t.start(pool("js", taskworker("--json", "--reverse", "--error-every", 7,
                                      "--garbage-every", 5),
                     2, tasks="json", task_retries=1, results=results))
        pids = {w: t.c.wait_running(["js_00", "js_01"], 10)[w]["pid"]
                for w in ("js_00", "js_01")}
        n = 60
        reply = t.submit("js", [str(k) for k in range(1, n + 1)])
        self.assertEqual(reply["count"], n)
        self.assertEqual(reply["ids"], list(range(1, n + 1)))
        p = t.wait("js", timeout=60, expect_rc=3)
        sevens = list(range(7, n + 1, 7))
        self.assertIn(f"{n - len(sevens)} done, {len(sevens)} dead", p.stdout)
        for x in t.tasks("js", "dead"):
            self.assertIn(int(x["task"]), sevens)
            self.assertEqual(x["attempts"], 2, x)
            self.assertEqual(x["error"], "refused: a multiple of the error step")
        for x in t.tasks("js", "done"):
            self.assertEqual(json.loads(x["result"]), int(x["task"]) ** 2, x)
        res = read_results(results)
        assert_each_once(self, res, n)
        for r in res:
            self.assertIsInstance(r["task"], int, r)  # JSON stays JSON
            if "result" in r:
                self.assertEqual(r["result"], r["task"] ** 2)
        # answers came back out of order, and that was fine
        order = [r["id"] for r in res if "result" in r]
        self.assertNotEqual(order, sorted(order), "the worker answered bursts in reverse")
        # protocol errors: logged, per worker, and the workers kept running
        proto = t.d.events_named("protocol")
        self.assertTrue(any("not JSON" in str(e.get("error")) for e in proto), proto[:3])
        self.assertTrue(any("987654321" in str(e.get("error")) for e in proto), proto[:3])
        self.assertTrue(all(e.get("worker") in ("js_00", "js_01") for e in proto))
        self.assertEqual(t.d.events_named("exit"), [], "no worker exited")
        self.assertEqual({w: x["pid"] for w, x in t.c.workers().items()}, pids)

    def test_ctl_tasks_task_cancel_retry_wait(self):
        """The operator's commands: tasks (counts, --state), task ID, cancel
        (one, a group; not a task that is done), retry (dead -> pending, as
        new), wait (blocks until drained; exit 3 when some ended dead), and
        `drover submit` printing ids."""
        t = self.make("ctl")
        t.start(pool("sq", taskworker("--crash-every", 7), 1, autostart=False,
                     task_retries=0))
        c = t.c
        # nothing runs: tasks stay pending
        p = subprocess.run([DROVER_BIN, "submit", "-c", t.d.config_path, "sq", "1", "2", "3",
                            "7", "5"], capture_output=True, text=True, timeout=15,
                           env=t.d.env(), stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), ["1", "2", "3", "4", "5"])
        self.assertEqual(t.counts("sq")["pending"], 5)
        self.assertEqual([x["id"] for x in t.tasks("sq", "pending")], [1, 2, 3, 4, 5])
        self.assertEqual(t.tasks("sq", "done"), [])
        task = t.task(4)
        self.assertEqual((task["state"], task["task"], task["attempts"], task["worker"],
                          task["result"], task["started"]), ("pending", "7", 0, None, None,
                                                             None))
        out = c.ctl_ok("tasks", "sq", "--state", "pending").stdout
        self.assertRegex(out, r"pending=5")
        self.assertEqual(len([l for l in out.splitlines() if "pending" in l.split()]), 5)
        out = c.ctl_ok("task", "4").stdout
        self.assertRegex(out, r"(?m)^state\s+pending$")
        self.assertRegex(out, r"(?m)^task\s+7$")
        c.ctl_fails("tasks", "sq", "--state", "bogus", contains="unknown state")
        c.ctl_fails("tasks", "nosuch", contains="no such group")
        c.ctl_fails("task", "999", contains="no task 999")
        c.ctl_fails("task", "x1", contains="not a task id")
        c.ctl_fails("wait", "nosuch", contains="no such group")

        # cancel one, then a done task cannot be cancelled
        self.assertEqual(c.ok("cancel", "2")["count"], 1)
        self.assertEqual(t.task(2)["state"], "cancelled")
        self.assertIsNotNone(t.task(2)["finished"])
        c.fails("cancel", "2", contains="not pending")

        # wait blocks while tasks are pending (no worker): a waiter in the
        # background must not return until the worker runs
        waiter = subprocess.Popen([DROVER_BIN, "ctl", "-c", t.d.config_path, "wait", "sq"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=t.d.env(), stdin=subprocess.DEVNULL)
        try:
            self.assertIsNone(poll(lambda: waiter.poll(), 1.0),
                              "ctl wait returned with tasks pending")
            c.ok("start", "sq")
            out, err = waiter.communicate(timeout=30)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
        self.assertEqual(waiter.returncode, 3, f"wait with a dead task: {out} {err}")
        self.assertIn("3 done, 1 dead, 1 cancelled", out)
        dead = t.task(4)
        self.assertEqual((dead["state"], dead["attempts"]), ("dead", 1))
        self.assertRegex(dead["error"], r"died.*exit:3")
        self.assertIsNone(dead["result"])
        self.assertEqual(int(t.task(5)["result"]), 25)
        c.fails("cancel", "5", contains="not pending")
        c.fails("retry", "5", contains="not dead")

        # retry one dead task: pending as new, dies again (task_retries=0)
        self.assertEqual(c.ok("retry", "4")["count"], 1)
        t.wait("sq", expect_rc=3)
        again = t.task(4)
        self.assertEqual((again["state"], again["attempts"]), ("dead", 1), again)
        # retry a whole group (the dead one and the cancelled one)
        self.assertEqual(c.ok("retry", "sq")["count"], 2)
        p = t.wait("sq", expect_rc=3)
        self.assertIn("4 done, 1 dead, 0 cancelled", p.stdout)
        self.assertEqual(int(t.task(2)["result"]), 4)
        # cancel a group: pending ones only
        c.ok("stop", "sq")
        t.submit("sq", ["8", "9"])
        r = c.ok("cancel", "sq")
        self.assertEqual(r["count"], 2)
        p = t.wait("sq", expect_rc=3)
        self.assertIn("2 cancelled", p.stdout)
        counts = t.counts("sq")
        self.assertEqual((counts["done"], counts["dead"], counts["cancelled"]), (4, 1, 2))

    def test_scale_4_to_1_under_load(self):
        """Scaling 4 -> 1 while tasks flow: the leaving workers get no new
        tasks, finish what they hold and stop; nothing is lost, nothing is
        done twice, nobody is charged an extra attempt."""
        t = self.make("scale")
        results = t.path("results.jsonl")
        t.start(pool("sq", taskworker("--sleep-ms", 1), 4, results=results))
        t.c.wait_running([f"sq_0{i}" for i in range(4)], 10)
        half = 1500
        t.submit_file("sq", t.write_lines("a.txt", range(1, half + 1)))
        t.wait_counts("sq", lambda c: c["done"] >= 200, 30, "200 tasks done")
        mark = t.d.mark()
        r = t.c.ok("scale", "sq", 1)
        self.assertEqual((r["from"], r["to"]), (4, 1))
        t.submit_file("sq", t.write_lines("b.txt", range(half + 1, 2 * half + 1)))
        for w in ("sq_01", "sq_02", "sq_03"):
            t.d.wait_event(lambda e, w=w: e.get("event") == "exit" and e.get("worker") == w,
                           30, mark, f"{w} stopped after draining")
        t.wait("sq", timeout=60)
        res = read_results(results)
        assert_each_once(self, res, 2 * half)
        assert_squares(self, res)
        self.assertEqual(t.counts("sq")["done"], 2 * half)
        if self.STORE == "sqlite":
            rows = t.db_rows("SELECT id, attempts FROM tasks WHERE attempts != 1")
            self.assertEqual(rows[:5], [], "tasks charged more than one attempt")
            # the second half went only to the worker that stayed
            rows = t.db_rows("SELECT DISTINCT worker FROM tasks WHERE id > ?", (half,))
            self.assertEqual(rows, [("sq_00",)])
        t.c.wait_workers(lambda ws: sorted(ws) == ["sq_00"] and
                         ws["sq_00"]["state"] == "RUNNING", 10, "sq_00 alone, RUNNING")

    def test_pause_worker(self):
        """A paused worker keeps its tasks and gets no new ones, while the
        other worker goes on with the rest; once resumed, it finishes what it
        held (on itself: nothing was moved or re-run)."""
        t = self.make("pause")
        t.start(pool("sq", taskworker("--sleep-ms", 3), 2, prefetch=8))
        t.c.wait_running(["sq_00", "sq_01"], 10)
        # sq_00 holds tasks as long as the queue is not empty: 1000 x 3 ms
        # over two workers leaves the pause 1.5 s to land
        n = 1000
        t.submit_file("sq", t.write_lines("tasks.txt", range(1, n + 1)))

        def held_by_00():
            return [x for x in t.tasks("sq", "running") if x["worker"] == "sq_00"]
        self.assertTrue(poll(held_by_00, 10), "sq_00 never held a task")
        t.c.ok("pause", "sq_00")
        # the other worker drains the queue; sq_00's tasks wait for it
        counts = t.wait_counts("sq", lambda c: c["pending"] == 0 and c["failed"] == 0 and
                               c["running"] == len(held_by_00()) and c["running"] > 0,
                               30, "everything done but what the paused worker holds")
        held = held_by_00()
        self.assertEqual(counts["done"], n - len(held))
        self.assertLessEqual(len(held), 8, "prefetch bounds what a worker holds")
        self.assertEqual(t.c.workers()["sq_00"]["state"], "PAUSED")
        # more work while paused goes only to sq_01
        t.submit("sq", [str(k) for k in range(n + 1, n + 41)])
        t.wait_counts("sq", lambda c: c["done"] == n + 40 - len(held), 30,
                      "new tasks done by the other worker")
        for tid in range(n + 1, n + 41):
            self.assertEqual(t.task(tid)["worker"], "sq_01")
        still = held_by_00()
        self.assertEqual([x["id"] for x in still], [x["id"] for x in held],
                         "the paused worker's tasks stayed with it")
        t.c.ok("resume", "sq_00")
        t.wait("sq", timeout=30)
        for x in held:
            after = t.task(x["id"])
            self.assertEqual((after["state"], after["worker"], after["attempts"],
                              int(after["result"])), ("done", "sq_00", 1, int(x["task"]) ** 2))


class SqliteStore(BothStores, unittest.TestCase):
    STORE = "sqlite"


class MemoryStore(BothStores, unittest.TestCase):
    STORE = "memory"


# ---------------------------------------------------------------------------
# sqlite only: durability across a drover that dies, and sources fed once.

class Durable(unittest.TestCase):

    def test_kill9_mid_run_resumes_exactly_once(self):
        """kill -9 drover in the middle of 1e5 tasks (sqlite store), start it
        again: the tasks that were running go back to pending (a recover
        event says how many), every task ends done, and the results file has
        ids 1..N exactly once: results of tasks that ran twice are not
        written twice, and results committed but not yet written are added."""
        t = Tasks(self, "sqlite", "kill9")
        results = t.path("results.jsonl")
        ran = t.path("ran.log")  # every task a worker ran, crash or not
        worker = ("mawk -W interactive '{printf \"%%.0f\\n\", $1*$1; fflush(); "
                  f"print $1 >> \"{ran}\"; fflush(\"{ran}\")}}'")
        t.start(pool("sq", worker, 2, results=results))
        n = 100_000
        t.submit_file("sq", t.write_lines("tasks.txt", range(1, n + 1)))
        self.assertTrue(poll(lambda: count_lines(results) >= n // 10, 60),
                        "10% of the results within 60 s\n" + t.d.context())
        old_workers = [w["pid"] for w in t.c.workers().values()]
        t.d.proc.send_signal(signal.SIGKILL)
        t.d.proc.wait(10)
        at_kill = count_lines(results)
        self.assertLess(at_kill, n, "drover was killed after the work was done: nothing tested")
        # workers see EOF on stdin and leave
        self.assertTrue(poll(lambda: not any(alive(p) for p in old_workers), 10),
                        "workers outlived drover")
        running = t.db_rows("SELECT count(*) FROM tasks WHERE state = 'running'")[0][0]
        # start again on the same state_dir
        with t.d.cond:
            t.d.events.clear()
        t.d.start()
        if running:
            ev = t.d.wait_event(lambda e: e.get("event") == "recover", 5,
                                what="the recover event")
            self.assertEqual(int(ev["tasks"]), running)
        t.wait("sq", timeout=120)
        res = read_results(results)
        assert_each_once(self, res, n, "results after kill -9 and restart")
        assert_squares(self, res)
        rows = t.db_rows("SELECT state, count(*) FROM tasks GROUP BY state")
        self.assertEqual(rows, [("done", n)])
        # at least once, and the re-runs are bounded: only tasks the store
        # had as running when drover died ran again (those at the workers,
        # and those answered since the last commit). Running also counts the
        # tasks leased ahead and held back (the reserve): they never ran, so
        # recover gives their attempt back; the others keep the attempt
        # charged before dispatch, and the re-run takes another.
        with open(ran) as f:
            runs = [int(x) for x in f]
        self.assertEqual(set(runs), set(range(1, n + 1)), "every task ran")
        reruns = len(runs) - n
        self.assertLessEqual(reruns, running, "a task that was not running ran twice")
        twice = t.db_rows("SELECT count(*) FROM tasks WHERE attempts = 2")[0][0]
        self.assertLessEqual(twice, running)
        self.assertEqual(t.db_rows("SELECT count(*) FROM tasks WHERE attempts > 2"), [(0,)])
        rc = t.d.stop()
        t.d.assert_clean_exit(rc)

    def test_failed_commit_loses_no_task(self):
        """A commit that fails (here a trigger an operator added refuses the
        result of task 50; a full disk does the same) rolls its batch back:
        the results of its tasks are not written, the tasks whose answers
        were undone go back to the queue, and once the cause is gone every
        task ends done, each once in the results file.

        While the same commit keeps failing, drover rests between tries
        (50 ms, doubling): it neither floods the log nor holds the write
        lock so tightly that the operator cannot drop the trigger."""
        t = Tasks(self, "sqlite", "rollback")
        results = t.path("results.jsonl")
        t.start(pool("sq", taskworker(), 1, results=results))
        db = sqlite3.connect(f"{t.d.state_dir}/tasks.db", timeout=10)
        db.execute("CREATE TRIGGER boom BEFORE UPDATE OF state ON tasks WHEN NEW.id = 50"
                   " AND NEW.state = 'done' BEGIN SELECT RAISE(FAIL, 'boom'); END")
        db.commit()
        n = 100
        t.submit("sq", [str(k) for k in range(1, n + 1)])
        tries = 4
        t.d.wait_event(lambda e: e.get("event") == "store" and
                       len(t.d.events_named("store", error="commit failed")) >= tries, 20,
                       what=f"{tries} failed commits")
        failed = t.d.events_named("store", error="commit failed")
        store_lines = t.d.events_named("store")
        self.assertLessEqual(len(store_lines), 3 * len(failed) + 3,
                             "one failing batch, a few lines: " + repr(store_lines[:10]))
        ts = [e["_ts"] for e in failed[:tries]]
        for i in range(1, tries):
            # ts has millisecond resolution: allow its rounding
            self.assertGreaterEqual(ts[i] - ts[i - 1], 0.05 * 2 ** (i - 1) - 0.002,
                                    f"the rest before try {i + 1}: {ts}")
        db.execute("DROP TRIGGER boom")
        db.commit()
        db.close()
        t.wait("sq", timeout=60)
        self.assertEqual(t.counts("sq")["done"], n)
        res = read_results(results)
        assert_each_once(self, res, n, "results after a failed commit")
        assert_squares(self, res)
        rc = t.d.stop()
        t.d.assert_clean_exit(rc)

    def test_an_operator_holding_the_write_lock_delays_but_loses_nothing(self):
        """Commits fail (a trigger refuses task 50's result); then an
        operator holds the write lock while drover's rest ends, so that
        giving the undone tasks back fails too. drover tries again after
        each rest, keeps supervising meanwhile, and once the lock is
        released every task ends done: none is left running."""
        t = Tasks(self, "sqlite", "oplock")
        t.start(pool("sq", taskworker(), 1, prefetch=4))
        db = sqlite3.connect(f"{t.d.state_dir}/tasks.db", timeout=10, isolation_level=None)
        db.execute("CREATE TRIGGER boom BEFORE UPDATE OF state ON tasks WHEN NEW.id = 50"
                   " AND NEW.state = 'done' BEGIN SELECT RAISE(FAIL, 'boom'); END")
        n = 100
        t.submit("sq", [str(k) for k in range(1, n + 1)])
        t.d.wait_event(lambda e: e.get("event") == "store" and
                       len(t.d.events_named("store", error="commit failed")) >= 2, 20,
                       what="2 failed commits")
        seen = len(t.d.snapshot())
        db.execute("BEGIN IMMEDIATE")
        db.execute("DROP TRIGGER boom")
        try:
            t.d.wait_event(lambda e: e.get("error") == "cannot begin a transaction", 20,
                           after=seen, what="drover's try while the operator holds the lock")
            self.assertEqual(t.c.request("status", "sq")["workers"][0]["state"], "RUNNING",
                             "supervising goes on while the store is locked")
        finally:
            db.execute("COMMIT")
            db.close()
        t.wait("sq", timeout=60)
        self.assertEqual(t.counts("sq")["done"], n)
        self.assertEqual(t.db_rows("SELECT count(*) FROM tasks WHERE state = 'running'"),
                         [(0,)])
        rc = t.d.stop()
        t.d.assert_clean_exit(rc)

    def test_cancel_and_retry_are_answered_once_committed(self):
        """Like a submit, a cancel or a retry is answered only once it is
        committed: an operator who reads tasks.db right after the reply
        sees the change."""
        t = Tasks(self, "sqlite", "operate")
        t.start(pool("idle", taskworker(), 1, autostart=False))
        ids = t.submit("idle", [str(k) for k in range(1, 21)])["ids"]
        for tid in ids:
            r = t.c.ok("cancel", str(tid))
            self.assertEqual(r["count"], 1, r)
            self.assertEqual(t.db_rows("SELECT state FROM tasks WHERE id = ?", (tid,)),
                             [("cancelled",)], f"task {tid} right after its cancel reply")
        for tid in ids[:10]:
            t.c.ok("retry", str(tid))
            self.assertEqual(t.db_rows("SELECT state FROM tasks WHERE id = ?", (tid,)),
                             [("pending",)], f"task {tid} right after its retry reply")
        r = t.c.ok("cancel", "idle")
        self.assertEqual(r["count"], 10, r)
        self.assertEqual(t.db_rows("SELECT state, count(*) FROM tasks GROUP BY state"),
                         [("cancelled", 20)])
        rc = t.d.stop()
        t.d.assert_clean_exit(rc)

    def test_requests_pipelined_behind_a_deferred_reply_are_all_answered(self):
        """A submit's reply waits for the commit; the 90 KiB of requests a
        client pipelines behind it wait in the socket (drover stops reading)
        and are all answered, in order. They used to overflow the 64 KiB
        input buffer and be thrown away as one over-long line."""
        t = Tasks(self, "sqlite", "pipelined")
        t.start(pool("idle", taskworker(), 1, autostart=False))
        n = 3000
        reqs = [{"cmd": "submit", "target": "idle", "tasks": ["7"] * 100}]
        reqs += [{"cmd": "task", "target": "1"}] * n
        with t.c.connect() as conn:
            conn.send(b"".join(json.dumps(r).encode() + b"\n" for r in reqs))
            first = conn.reply()
            self.assertEqual((first["ok"], first["count"]), (True, 100), first)
            for i in range(n):
                r = conn.reply()
                self.assertIs(r.get("ok"), True, f"reply {i + 1}: {r}")
                self.assertEqual(r["task"]["id"], 1, f"reply {i + 1}")
        rc = t.d.stop()
        t.d.assert_clean_exit(rc)

    def test_a_half_closed_client_still_gets_its_deferred_replies(self):
        """`echo REQUEST | socat - UNIX:drover.sock` shuts its side for
        writing once it has sent the request: replies that wait for a commit
        or a drained queue (submit, cancel, retry, wait) must still come,
        before the close."""
        t = Tasks(self, "sqlite", "halfclose")
        t.start(pool("idle", taskworker(), 1, autostart=False))
        tid = t.submit("idle", ["5"])["ids"][0]
        for req, want in (({"cmd": "submit", "target": "idle", "tasks": ["6"]}, "count"),
                          ({"cmd": "cancel", "target": str(tid)}, "count"),
                          ({"cmd": "retry", "target": str(tid)}, "count"),
                          ({"cmd": "cancel", "target": "idle"}, "count"),
                          ({"cmd": "wait", "target": "idle"}, "done")):
            with self.subTest(cmd=req["cmd"]), t.c.connect() as conn:
                conn.send(json.dumps(req) + "\n")
                conn.sock.shutdown(socket.SHUT_WR)
                r = conn.reply()
                self.assertIs(r.get("ok"), True, f"{req}: {r}")
                self.assertIn(want, r)
                self.assertTrue(conn.at_eof(5), "closed after the reply")
        rc = t.d.stop()
        t.d.assert_clean_exit(rc)

    def test_task_source_file_and_command_fed_once(self):
        """task_source = FILE and task_source = !COMMAND feed their queues at
        start; after a restart on the same state_dir (sqlite) they are not
        fed again."""
        t = Tasks(self, "sqlite", "source")
        src = t.write_lines("source.txt", list(range(1, 101)) + ["", "  "])
        ra, rb = t.path("a.jsonl"), t.path("b.jsonl")
        sections = (pool("fromfile", taskworker(), 1, task_source=src, results=ra),
                    pool("fromcmd", taskworker(), 1, task_source="!sleep 0.5; seq 101 250",
                         results=rb))
        t.start(*sections)
        # wait, asked while the source command still feeds the queue, must
        # wait for the source too: drained means every task was worked
        t.wait("fromcmd")
        self.assertEqual(t.counts("fromcmd")["done"], 150,
                         "ctl wait said drained while the task_source command was feeding")
        t.wait("fromfile")
        ev = {e["group"]: e for e in t.d.events_named("source")}
        self.assertEqual(int(ev["fromcmd"]["tasks"]), 150, ev)
        a, b = read_results(ra), read_results(rb)
        # the blank line is not a task; the line of spaces is (a lines task
        # is the line as it is)
        self.assertEqual(sorted(int(r["task"]) for r in a if r["task"].strip()),
                         list(range(1, 101)))
        self.assertEqual(sorted(int(r["task"]) for r in b), list(range(101, 251)))
        self.assertEqual(t.counts("fromcmd")["done"], 150)
        before = (t.counts("fromfile"), t.counts("fromcmd"))
        t.d.assert_clean_exit(t.d.stop())
        with t.d.cond:
            t.d.events.clear()
        t.d.start()
        t.c.wait_running(["fromfile", "fromcmd"], 10)
        t.wait("fromfile")
        t.wait("fromcmd")
        self.assertEqual((t.counts("fromfile"), t.counts("fromcmd")), before)
        self.assertEqual(t.d.events_named("source"), [])
        self.assertEqual((len(read_results(ra)), len(read_results(rb))), (len(a), len(b)))


# ---------------------------------------------------------------------------
# Refusals, timeouts, and the client's memory.

class Edges(unittest.TestCase):

    def test_newline_task_refused(self):
        """A task with a newline cannot be a lines task: refused at submit
        with a clear error, all or nothing (the good tasks of the same
        submit are not queued either)."""
        t = Tasks(self, "memory", "newline")
        t.start(pool("sq", taskworker(), 1))
        r = t.c.fails("submit", "sq", tasks=["1", "2\n3", "4"], contains="newline")
        self.assertIn("task 1", r["error"])
        p = subprocess.run([DROVER_BIN, "submit", "-c", t.d.config_path, "sq", "5", "6\n7"],
                           capture_output=True, text=True, timeout=15, env=t.d.env(),
                           stdin=subprocess.DEVNULL)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("cannot contain a newline", p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertEqual(sum(t.counts("sq").values()), 0, "nothing was queued")
        # json pools refuse what is not JSON
        t2 = Tasks(self, "memory", "badjson")
        t2.start(pool("js", taskworker("--json"), 1, tasks="json"))
        t2.c.fails("submit", "js", tasks=["{\"a\":1}", "{oops"], contains="JSON")
        self.assertEqual(sum(t2.counts("js").values()), 0)
        # from a file, the error names the file and line (not the index in
        # the client's batch), and says what got in before it
        bad = 25_000  # past the first requests, whatever their size
        src = t2.write_lines("bad.txt", [str(k) for k in range(1, bad)] + ["{oops"] +
                             [str(k) for k in range(bad + 1, bad + 100)])
        p = subprocess.run([DROVER_BIN, "submit", "-c", t2.d.config_path, "-q", "js", "-f", src],
                           capture_output=True, text=True, timeout=30, env=t2.d.env(),
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"{src}:{bad}: a task of a json pool must be JSON", p.stderr)
        m = re.search(r"(\d+) tasks before it were accepted", p.stderr)
        self.assertTrue(m, p.stderr)
        self.assertTrue(0 < int(m.group(1)) < bad, p.stderr)
        self.assertEqual(sum(t2.counts("js").values()), int(m.group(1)))

    def test_submit_requests_fit_the_socket(self):
        """drover submit -f packs tasks into requests by count and by size:
        3000 tasks of 100 bytes (300 KB) all get in, though a request line
        may be 64 KiB; a single task too long for any request is refused,
        naming its file and line."""
        t = Tasks(self, "memory", "sizes")
        t.start(pool("sq", taskworker(), 0))
        src = t.write_lines("wide.txt", ["x" * 100 + str(k) for k in range(3000)])
        p = subprocess.run([DROVER_BIN, "submit", "-c", t.d.config_path, "-q", "sq", "-f", src],
                           capture_output=True, text=True, timeout=30, env=t.d.env(),
                           stdin=subprocess.DEVNULL)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "3000"), p.stderr)
        self.assertEqual(t.counts("sq")["pending"], 3000)
        src = t.write_lines("huge.txt", ["first", "y" * 70_000, "third"])
        p = subprocess.run([DROVER_BIN, "submit", "-c", t.d.config_path, "-q", "sq", "-f", src],
                           capture_output=True, text=True, timeout=30, env=t.d.env(),
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"{src}:2: a task of 70000 bytes is longer than a request may carry",
                      p.stderr)
        self.assertEqual(t.counts("sq")["pending"], 3000, "nothing of that file got in")
        # a client that needs no ids (submit -q) asks for none
        r = t.c.ok("submit", "sq", tasks=["a", "b"], ids=False)
        self.assertEqual((r["count"], "ids" in r), (2, False), r)
        r = t.c.ok("submit", "sq", tasks=["c"])
        self.assertEqual(r["ids"], [3003], r)

    def test_task_timeout_restarts_hung_worker(self):
        """task_timeout: a worker that stops answering is restarted and its
        task retried; a task that hangs every time ends dead after
        task_retries; the tasks queued behind it on the hung worker go back
        free and end done."""
        t = Tasks(self, "memory", "timeout")
        results = t.path("results.jsonl")
        # 2 s: a restarted (sanitizer-built) worker must start and answer
        # within the timeout, or a task that did not hang is charged twice
        t.start(pool("sq", taskworker("--hang-every", 10), 2, task_timeout=2, task_retries=1,
                     results=results, stopwaitsecs=2))
        pids = t.c.wait_running(["sq_00", "sq_01"], 10)
        first = {w: x["pid"] for w, x in pids.items()}
        t.submit("sq", [str(k) for k in range(1, 31)])
        p = t.wait("sq", timeout=60, expect_rc=3)
        self.assertIn("27 done, 3 dead", p.stdout)
        for k in (10, 20, 30):
            x = t.task(k)
            self.assertEqual((x["state"], x["attempts"]), ("dead", 2), x)
            self.assertIn("task_timeout", x["error"])
        for x in t.tasks("sq", "done"):
            self.assertEqual(x["attempts"], 1, x)
        res = read_results(results)
        assert_each_once(self, res, 30)
        # hung workers were stopped by drover and started again
        self.assertTrue(any(e.get("worker") in first for e in t.d.events_named("exit")))
        self.assertTrue(any("task_timeout" in str(e.get("error"))
                            for e in t.d.events_named("protocol")))
        now = t.c.wait_running(["sq_00", "sq_01"], 10)
        self.assertNotEqual({w: x["pid"] for w, x in now.items()}, first)

    def test_pause_longer_than_task_timeout(self):
        """A pause is the operator's doing, not a stuck task: a worker paused
        for longer than task_timeout, in the middle of its tasks, is not
        timed out, neither while paused nor once resumed (the timeout counts
        again from the resume); its tasks finish on it with one attempt
        each."""
        t = Tasks(self, "memory", "pausetimeout")
        # The worker answers only once the test creates `go`, so how long
        # its tasks take does not depend on how much CPU a loaded machine
        # gives it (a worker burning 600 ms of CPU per task took over 3 s
        # a task on one busy core, and was timed out after the resume).
        go = t.path("go")
        worker = (f"sh -c 'while read x; do until [ -e {go} ]; do sleep 0.02; done; "
                  "echo $((x*x)); done'")
        timeout = 4
        t.start(pool("sq", worker, 1, task_timeout=timeout))
        t.c.wait_running(["sq"], 10)
        t.submit("sq", ["3", "4"])
        t.wait_counts("sq", lambda c: c["running"] == 2, 10, "both tasks on the worker")
        t.c.ok("pause", "sq")
        paused = time.monotonic()
        # the pause outlasts the timeout by more than a tick (0.5 s)
        t.d.assert_no_event(lambda e: e.get("event") == "protocol",
                            within=max(0, paused + timeout + 0.7 - time.monotonic()),
                            what="a task_timeout while paused")
        mark = t.d.mark()
        t.c.ok("resume", "sq")
        # still no answer for two ticks after the resume: a drover that
        # counted the pause would time the worker out at the first of them
        # (the worker then has timeout - 1 s of slack to answer)
        t.d.assert_no_event(lambda e: e.get("event") in ("protocol", "exit"), within=1.0,
                            after=mark, what="a task_timeout right after the resume")
        with open(go, "w"):
            pass
        t.wait("sq", timeout=20)
        evs = [e["_raw"] for e in t.d.snapshot()[mark:] if e.get("event") in ("protocol", "exit")]
        self.assertEqual(evs, [], "timed out after resume")
        for tid in (1, 2):
            x = t.task(tid)
            self.assertEqual((x["state"], x["attempts"], x["error"], x["worker"]),
                             ("done", 1, None, "sq"), x)
            self.assertEqual(int(x["result"]), int(x["task"]) ** 2, x)

    def test_submit_stdin_streams_1e6_lines_in_bounded_memory(self):
        """`drover submit -f -` streams a million short lines from a pipe
        with back-pressure: every task arrives, and the client's peak RSS
        (VmHWM, read while it still runs, once all its tasks are in) stays
        small; a client that kept every task would need hundreds of MB."""
        t = Tasks(self, "memory", "stream")
        t.start(pool("sq", taskworker(), 2))
        n = 1_000_000
        env = t.d.env()
        # under AddressSanitizer freed memory sits in a 256 MB quarantine,
        # which would count as the client's RSS: keep it small
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                     "quarantine_size_mb=1"]))
        p = subprocess.Popen([DROVER_BIN, "submit", "-c", t.d.config_path, "-q", "sq", "-f", "-"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, cwd=t.d.dir)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        chunk = "".join(f"{k}\n" for k in range(1, 10001)).encode()
        for _ in range(n // 10000):
            p.stdin.write(chunk)
        p.stdin.flush()
        # stdin stays open: once drover holds all n tasks, the client has
        # sent its last batch and waits for more input, alive, with its
        # high-water mark to read (ru_maxrss from wait4 would also count
        # the forked copy of this test process before exec)
        t.wait_counts("sq", lambda c: sum(c.values()) == n, 150, f"{n} tasks in drover")

        def hwm():
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        peak_mb = hwm()
        p.stdin.close()
        p.stdin = None  # communicate() must not flush it
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(int(out.decode().strip()), n)
        self.assertLess(peak_mb, 50, f"drover submit peaked at {peak_mb:.1f} MB for {n} tasks")
        t.wait("sq", timeout=120)
        self.assertEqual(t.counts("sq")["done"], n)

if __name__ == "__main__":
    unittest.main()
