"""The control plane end to end: every command through the socket and through
`drover ctl`, targets, scale, pause, signals, logs, the event stream, socket
and directory modes, peer credentials, and a control socket under abuse
(garbage, huge lines, half requests, clients that never read, hundreds of
clients at once, random bytes) while drover keeps supervising."""

import fcntl
import json
import os
import random
import resource
import select
import signal
import socket
import stat
import subprocess
import termios
import threading
import time
import unittest

from harness import Drover, program, tw, alive, poll, fd_list
from ctlutil import Control, cpu_ticks, proc_state, run_as_nobody, ignores

REQUEST_MAX = 64 * 1024


def sleeper(name, n=1, **keys):
    keys.setdefault("startsecs", 0)
    keys.setdefault("stopasgroup", True)
    return program(name, tw("sleep"), numprocs=n, **keys)


def start(test, *sections, name="ctl", args=(), **kw):
    d = Drover(test, name)
    d.write_config(*sections, **kw)
    d.start(*args)
    return d, Control(d)


def names(prefix, rng):
    return {f"{prefix}_{i:02d}" for i in rng}


def assert_still_supervising(test, c, worker):
    """drover answers and still restarts a worker killed under it."""
    ws = c.wait_running([worker], 10, exact=False)
    old = ws[worker]["pid"]
    os.kill(old, signal.SIGKILL)
    ws = c.wait_workers(lambda ws: ws[worker]["state"] == "RUNNING"
                        and ws[worker]["pid"] not in (None, old), 10,
                        f"{worker} restarted after SIGKILL (still supervising)")
    test.assertTrue(alive(ws[worker]["pid"]))


class Commands(unittest.TestCase):
    """Every command of the vocabulary, once through the socket and once
    through `drover ctl --json`, by the same script."""

    def via_socket(self, c):
        def do(cmd, target=None, arg=None):
            return c.request(cmd, target, arg)
        return do

    def via_ctl(self, c):
        def do(cmd, target=None, arg=None):
            args = [cmd] + [a for a in (target, arg) if a is not None]
            p = c.ctl(*args, json_out=True)
            lines = p.stdout.splitlines()
            self.assertTrue(lines, f"drover ctl --json {args}: no reply on stdout; "
                                   f"stderr: {p.stderr}")
            reply = json.loads(lines[0])
            if reply.get("ok") is True:
                self.assertEqual(p.returncode, 0, f"ctl {args} exit code on success")
                self.assertEqual(p.stderr, "", f"ctl {args} stderr on success")
            else:
                self.assertNotEqual(p.returncode, 0, f"ctl {args} exit code on error")
                self.assertIn(reply["error"], p.stderr, f"ctl {args}: error on stderr")
            return reply
        return do

    def every_command(self, d, c, do):
        ok = lambda r, what: self.assertIs(r.get("ok"), True, f"{what}: {r}\n" + d.context())
        # status
        c.wait_running({"w_00", "w_01", "p"}, 10)
        r = do("status")
        ok(r, "status")
        self.assertEqual(r["pid"], d.pid)
        for k in ("version", "config", "state_dir", "uptime", "shutting_down"):
            self.assertIn(k, r, f"status field {k}")
        self.assertEqual({g["name"] for g in r["groups"]}, {"w", "p"})
        self.assertEqual({w["name"] for w in r["workers"]}, {"w_00", "w_01", "p"})
        gw = [g for g in r["groups"] if g["name"] == "w"][0]
        self.assertEqual((gw["wanted"], gw["actual"], gw["states"]), (2, 2, {"RUNNING": 2}))
        r = do("status", "w")
        self.assertEqual({w["name"] for w in r["workers"]}, {"w_00", "w_01"})
        self.assertEqual([g["name"] for g in r["groups"]], ["w"])
        pids = {w["name"]: w["pid"] for w in r["workers"]}

        # start: nothing to start is an error, with the reason
        r = do("start", "w")
        self.assertIs(r["ok"], False)
        self.assertIn("already running", r["error"])

        # stop one worker, then start the group: only that one starts
        r = do("stop", "w_01")
        ok(r, "stop w_01")
        self.assertEqual(r["workers"], ["w_01"])
        c.wait_workers(lambda ws: ws["w_01"]["state"] == "STOPPED", 10, "w_01 STOPPED")
        self.assertTrue(poll(lambda: not alive(pids["w_01"]), 5), "w_01's process is gone")
        r = do("start", "w")
        ok(r, "start w")
        self.assertEqual(r["workers"], ["w_01"])
        self.assertEqual(r["skipped"], [{"worker": "w_00", "state": "RUNNING",
                                         "why": "already running"}])
        ws = c.wait_running({"w_00", "w_01"}, 10, exact=False)
        self.assertEqual(ws["w_00"]["pid"], pids["w_00"], "w_00 untouched by start")
        self.assertNotEqual(ws["w_01"]["pid"], pids["w_01"])

        # restart: a new process
        old = ws["w_00"]["pid"]
        ok(do("restart", "w_00"), "restart w_00")
        ws = c.wait_workers(lambda ws: ws["w_00"]["state"] == "RUNNING"
                            and ws["w_00"]["pid"] not in (None, old), 10, "w_00 restarted")
        self.assertTrue(poll(lambda: not alive(old), 5), "the old w_00 is gone")
        new = ws["w_00"]["pid"]

        # pause / resume
        ok(do("pause", "w_00"), "pause")
        c.wait_workers(lambda ws: ws["w_00"]["state"] == "PAUSED", 5, "w_00 PAUSED")
        self.assertTrue(poll(lambda: proc_state(new) == "T", 5), "w_00 is SIGSTOPped")
        ok(do("resume", "w_00"), "resume")
        c.wait_workers(lambda ws: ws["w_00"]["state"] == "RUNNING", 5, "w_00 RUNNING again")
        self.assertTrue(poll(lambda: proc_state(new) == "S", 5), "w_00 runs (sleeps) again")
        self.assertEqual(c.pids()["w_00"], new, "pause/resume keep the process")

        # kill: a signal without a handler ends the worker with that signal
        after = d.mark()
        ok(do("kill", "w_00", "USR1"), "kill USR1")
        ex = d.wait_event(lambda e: e.get("event") == "exit" and e.get("worker") == "w_00",
                          10, after, "w_00's exit after USR1")
        self.assertEqual(ex.get("status"), "signal:USR1")
        self.assertEqual(int(ex["pid"]), new)
        c.wait_workers(lambda ws: ws["w_00"]["state"] == "RUNNING"
                       and ws["w_00"]["pid"] not in (None, new), 10, "w_00 back after USR1")

        # scale up and back down
        r = do("scale", "w", "3")
        ok(r, "scale w 3")
        self.assertEqual((r["group"], r["from"], r["to"]), ("w", 2, 3))
        c.wait_running({"w_00", "w_01", "w_02", "p"}, 10)
        r = do("scale", "w", "-1")
        self.assertEqual((r["from"], r["to"]), (3, 2))
        c.wait_workers(lambda ws: "w_02" not in ws, 10, "w_02 gone after scale -1")

        # log
        self.assertTrue(poll(lambda: c.request("log", "p", "1").get("lines") ==
                             ["drip 000300 " + "." * 51], 10), "p printed its 300 lines")
        r = do("log", "p", "3")
        ok(r, "log p 3")
        self.assertEqual(r["worker"], "p")
        self.assertEqual([l.split()[1] for l in r["lines"]], ["000298", "000299", "000300"])

        # reopen, reload
        ok(do("reopen"), "reopen")
        r = do("reload")
        ok(r, "reload")
        self.assertEqual(sorted(r["unchanged"]), ["p", "w"])
        self.assertEqual(r["changed"] + r["added"] + r["removed"] + r["scaled"], [])

        # shutdown
        r = do("shutdown")
        ok(r, "shutdown")
        d.assert_clean_exit(d.wait_exit(20))
        self.assertFalse(os.path.exists(c.sock), "the socket is removed at exit")
        d.assert_no_marked_procs()

    def config(self, d):
        d.write_config(sleeper("w", 2), program("p", tw("drip", 300, 0), startsecs=0))

    def test_every_command_through_the_socket(self):
        d = Drover(self, "cmds-sock")
        self.config(d)
        d.start()
        c = Control(d)
        self.every_command(d, c, self.via_socket(c))

    def test_every_command_through_drover_ctl(self):
        d = Drover(self, "cmds-ctl")
        self.config(d)
        d.start()
        c = Control(d)
        self.every_command(d, c, self.via_ctl(c))

    def test_events_through_the_socket(self):
        d, c = start(self, sleeper("w", 1), args=("--log-format", "json"))
        c.wait_running({"w"})
        with c.connect() as conn:
            r = conn.request("events")
            self.assertEqual(r, {"ok": True, "message": "streaming events as JSON lines"})
            c.ok("scale", "w", "1")
            ev = json.loads(conn.readline(10))
            self.assertEqual((ev["event"], ev["group"], ev["from"], ev["to"]),
                             ("scale", "w", 1, 1))
            # a subscribed client's input is ignored, not answered
            conn.send_request("status")
            c.ok("scale", "w", "1")
            self.assertEqual(json.loads(conn.readline(10))["event"], "scale")
        d.stop()

    def ctl_events(self, d):
        p = subprocess.Popen([d.proc.args[0], "ctl", "-c", d.config_path, "events"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=d.env())
        os.set_blocking(p.stdout.fileno(), False)

        def cleanup():
            if p.poll() is None:
                p.kill()
            p.wait(5)
            p.stdout.close()
            p.stderr.close()
        self.addCleanup(cleanup)
        return p

    def read_lines(self, p, buf, timeout):
        """Complete lines ctl printed within timeout (at least one), or []."""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf[0]:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            r, _, _ = select.select([p.stdout], [], [], min(left, 0.1))
            if r:
                chunk = p.stdout.read()
                if chunk:
                    buf[0] += chunk
        *lines, buf[0] = buf[0].split(b"\n")
        return [l.decode() for l in lines]

    def test_events_through_drover_ctl(self):
        d, c = start(self, sleeper("w", 1), args=("--log-format", "json"))
        c.wait_running({"w"})
        p = self.ctl_events(d)
        buf = [b""]
        lines = []
        # until ctl has subscribed, the scale events it causes are not its own
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline:
            c.ok("scale", "w", "1")
            lines = self.read_lines(p, buf, 0.2)
        self.assertTrue(lines, "drover ctl events printed nothing")
        self.assertEqual(lines[0], "streaming events as JSON lines")
        evs = [json.loads(l) for l in lines[1:]]
        if not evs:
            c.ok("scale", "w", "1")  # subscribed now: this one is ours to see
        while not evs:
            got = self.read_lines(p, buf, 10)
            self.assertTrue(got, "no event line from drover ctl events")
            evs = [json.loads(l) for l in got]
        self.assertEqual((evs[0]["event"], evs[0]["group"]), ("scale", "w"))
        # the stream ends, with exit 0, when drover goes away
        c.ok("shutdown")
        d.assert_clean_exit(d.wait_exit(20))
        self.assertEqual(p.wait(10), 0)
        rest = p.stdout.read() or b""
        tail = [json.loads(l) for l in (buf[0] + rest).decode().splitlines() if l]
        self.assertEqual(tail[-1]["event"], "stopped", "the last event reaches ctl")

    def test_ctl_events_confirms_the_subscription_at_once(self):
        """`drover ctl events | consumer`: the confirmation line must come out
        when drover confirms, not when the first event happens to flush it
        (a script cannot know the stream is live otherwise)."""
        d, c = start(self, sleeper("w", 1))
        c.wait_running({"w"})
        p = self.ctl_events(d)
        lines = self.read_lines(p, [b""], 5)
        self.assertEqual(lines, ["streaming events as JSON lines"],
                         "drover ctl events: nothing printed within 5 s of subscribing "
                         "(stdout not flushed after the reply?)")
        d.stop()


class Events(unittest.TestCase):

    def test_events_stream_equals_the_headless_json_log(self):
        d, c = start(self, sleeper("w", 2, startsecs=0.2), args=("--log-format", "json"))
        c.wait_running({"w_00", "w_01"})
        d.wait_state("w_01", "RUNNING")
        with c.connect() as conn:
            self.assertTrue(conn.request("events")["ok"])
            after = d.mark()
            c.ok("scale", "w", "3")
            c.ok("stop", "w_00")
            c.ok("scale", "w", "1")
            d.wait_event(lambda e: e.get("event") == "state" and e.get("worker") == "w_02"
                         and e.get("to") == "STOPPED", 10, after, "w_02 STOPPED")
            d.wait_event(lambda e: e.get("event") == "state" and e.get("worker") == "w_01"
                         and e.get("to") == "STOPPED", 10, after, "w_01 STOPPED")
            head = [e for e in d.snapshot()[after:]]
            for e in head:
                self.assertEqual(e["_format"], "json", e["_raw"])
            stream = []
            while len(stream) < len(head):
                line = conn.readline(10)
                self.assertIsNotNone(line, "stream ended early")
                stream.append(line.decode())
        self.assertGreaterEqual(len(head), 10, "scale + stop + scale make events")
        self.assertEqual(stream, [e["_raw"] for e in head],
                         "the stream is the headless JSON log, line for line")
        kinds = {json.loads(l)["event"] for l in stream}
        self.assertTrue({"scale", "state", "exit"} <= kinds, kinds)
        d.assert_clean_exit(d.stop())


class Ctl(unittest.TestCase):

    def test_status_prints_a_table(self):
        d, c = start(self, sleeper("w", 2), sleeper("solo"))
        c.ok("stop", "w_01")
        c.wait_workers(lambda ws: ws["w_01"]["state"] == "STOPPED" and
                       ws["w_00"]["state"] == "RUNNING" and ws["solo"]["state"] == "RUNNING",
                       10, "w_00, solo RUNNING and w_01 STOPPED")
        pids = c.pids()
        p = c.ctl_ok("status")
        lines = p.stdout.splitlines()
        head = lines[0].split()
        self.assertEqual(head[:3], ["NAME", "STATE", "PID"], p.stdout)
        for col in ("UPTIME", "RESTARTS"):
            self.assertIn(col, head, p.stdout)
        rows = {l.split()[0]: l.split() for l in lines[1:]}
        self.assertEqual(set(rows), {"w_00", "w_01", "solo"}, p.stdout)
        self.assertEqual(rows["w_00"][1:3], ["RUNNING", str(pids["w_00"])])
        self.assertEqual(rows["solo"][1:3], ["RUNNING", str(pids["solo"])])
        self.assertEqual(rows["w_01"][1:3], ["STOPPED", "-"])
        self.assertRegex(lines[1 + [l.split()[0] for l in lines[1:]].index("w_00")],
                         r" \d+:\d\d:\d\d ", "uptime as H:MM:SS")
        # columns line up: every row as wide as the header's NAME column
        starts = {l.index(l.split()[1]) for l in lines}
        self.assertEqual(len(starts), 1, "STATE column aligned:\n" + p.stdout)
        # a target narrows the table
        p = c.ctl_ok("status", "w")
        self.assertEqual([l.split()[0] for l in p.stdout.splitlines()[1:]], ["w_00", "w_01"])
        d.stop()

    def test_json_prints_the_raw_reply(self):
        d, c = start(self, sleeper("w", 2))
        c.wait_running({"w_00", "w_01"})
        p = c.ctl_ok("status", json_out=True)
        self.assertEqual(len(p.stdout.splitlines()), 1, "one raw reply line")
        r = json.loads(p.stdout)
        self.assertIs(r["ok"], True)
        self.assertEqual(r["pid"], d.pid)
        self.assertEqual({w["name"] for w in r["workers"]}, {"w_00", "w_01"})
        p = c.ctl_ok("scale", "w", "3", json_out=True)
        self.assertEqual({k: json.loads(p.stdout)[k] for k in ("ok", "group", "from", "to")},
                         {"ok": True, "group": "w", "from": 2, "to": 3})
        # without --json: the message
        p = c.ctl_ok("scale", "w", "2")
        self.assertEqual(p.stdout, "w: 3 \u2192 2 workers\n")
        # --json on an error: raw reply on stdout, the error on stderr, exit 1
        p = c.ctl("scale", "wrker", "3", json_out=True)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(json.loads(p.stdout), {"ok": False, "error": "no such group 'wrker'"})
        self.assertRegex(p.stderr, r"^drover( ctl)?: no such group 'wrker'\n$")
        d.stop()

    def test_errors_exit_non_zero_with_the_error_on_stderr(self):
        d, c = start(self, sleeper("w", 2))
        c.wait_running({"w_00", "w_01"})
        cases = [
            (("scale", "wrker", "3"), "no such group 'wrker'"),
            (("stop", "wrker"), "no such group or worker 'wrker'"),
            (("stop", "wrker:*"), "no such group 'wrker'"),
            (("stop", "w:nope"), "no worker 'nope' in group 'w'"),
            (("scale", "w", "2000"), "scale: N must be between 0 and 1024"),
            (("scale", "w", "-5"), "scale: N must be between 0 and 1024 (w has 2)"),
            (("scale", "w", "lots"), "scale: 'lots' is not a number"),
            (("kill", "w", "NOTASIG"), "kill: unknown signal 'NOTASIG'"),
            (("kill", "w"), "kill: an argument is required"),
            (("stop",), "stop: a target is required"),
            (("reload", "w"), "reload takes no target"),
            (("log", "w"), "log: 'w' names 2 workers; name one"),
            (("log", "w_00", "500"), "log: N must be between 1 and 200"),
            (("resume", "w_00"), "w_00: not paused (RUNNING)"),
            (("frob",), "unknown command 'frob'"),
        ]
        for args, err in cases:
            with self.subTest(args=args):
                p = c.ctl_fails(*args, contains=err)
                self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
                # the socket says the same
                r = c.request(args[0], *(list(args[1:]) + [None, None])[:2])
                self.assertIs(r["ok"], False)
                self.assertIn(err, r["error"])
        # pause twice: the second is refused with the state
        c.ok("pause", "w_00")
        c.ctl_fails("pause", "w_00", contains="w_00: already paused (PAUSED)")
        # nothing happened to the pool
        ws = c.workers()
        self.assertEqual({n: w["state"] for n, w in ws.items()},
                         {"w_00": "PAUSED", "w_01": "RUNNING"})
        # usage errors: exit 2, usage on stderr
        p = c.ctl()
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: drover ctl", p.stderr)
        d.stop()

    def test_without_a_running_drover_says_so_in_one_line(self):
        d = Drover(self, "nodrover")
        d.write_config(sleeper("w"))
        c = Control(d)
        for args in (("status",), ("stop", "w"), ("shutdown",)):
            with self.subTest(args=args):
                p = c.ctl(*args)
                self.assertNotEqual(p.returncode, 0)
                self.assertEqual(p.stdout, "")
                self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
                self.assertRegex(p.stderr, r"^drover( ctl)?: no drover is running on "
                                           r".*drover\.sock")
        # and with -s pointing at nothing
        p = c.ctl("-s", d.path("nope.sock"), "status", config=False)
        self.assertEqual((p.returncode, p.stdout, len(p.stderr.splitlines())), (1, "", 1))
        self.assertIn("no drover is running on " + d.path("nope.sock"), p.stderr)


class Targets(unittest.TestCase):

    def test_group_name_and_group_star(self):
        d, c = start(self, sleeper("a"), sleeper("b", 2), raw="[group:web]\nprograms = a,b\n")
        c.wait_running({"a", "b_00", "b_01"})
        pids = c.pids()
        # GROUP:NAME, through a [group:x] and through a program
        r = c.ok("stop", "web:b_01")
        self.assertEqual(r["workers"], ["b_01"])
        c.wait_workers(lambda ws: ws["b_01"]["state"] == "STOPPED", 10, "b_01 STOPPED")
        r = c.ok("status", "web:a")
        self.assertEqual([w["name"] for w in r["workers"]], ["a"])
        r = c.ok("status", "b:b_00")
        self.assertEqual([w["name"] for w in r["workers"]], ["b_00"])
        # GROUP:* is every worker of the group
        r = c.ok("status", "web:*")
        self.assertEqual(sorted(w["name"] for w in r["workers"]), ["a", "b_00", "b_01"])
        r = c.ok("start", "web:*")
        self.assertEqual(r["workers"], ["b_01"])
        self.assertEqual(sorted(s["worker"] for s in r["skipped"]), ["a", "b_00"])
        c.wait_running({"a", "b_00", "b_01"})
        # a [group:x] name alone also names its pools
        r = c.ok("restart", "web")
        self.assertEqual(sorted(r["workers"]), ["a", "b_00", "b_01"])
        ws = c.wait_workers(lambda ws: all(w["state"] == "RUNNING" and w["pid"] != pids[n]
                                           and w["pid"] for n, w in ws.items()
                                           if n != "b_01"), 10, "web restarted")
        self.assertEqual(len(ws), 3)
        r = c.ok("stop", "b:*")
        self.assertEqual(sorted(r["workers"]), ["b_00", "b_01"])
        ws = c.wait_workers(lambda ws: ws["b_00"]["state"] == ws["b_01"]["state"] == "STOPPED",
                            10, "b:* STOPPED")
        self.assertEqual(ws["a"]["state"], "RUNNING")
        # through drover ctl too
        p = c.ctl_ok("start", "web:b_00")
        self.assertEqual(p.stdout, "web:b_00: start 1 worker\n")
        p = c.ctl_fails("start", "web:b_00", contains="b_00: already running")
        d.assert_clean_exit(d.stop())


class Scale(unittest.TestCase):

    def test_scale_2_to_10_to_3_leaves_exactly_00_to_02(self):
        d, c = start(self, sleeper("w", 2))
        first = c.wait_running(names("w", range(2)), 10)
        r = c.ok("scale", "w", 10)  # a number is accepted for arg
        self.assertEqual((r["from"], r["to"]), (2, 10))
        ten = c.wait_running(names("w", range(10)), 15)
        for n in names("w", range(2)):
            self.assertEqual(ten[n]["pid"], first[n]["pid"], f"{n} kept its process")
        r = c.ok("scale", "w", "3")
        self.assertEqual((r["from"], r["to"]), (10, 3))
        ws = c.wait_workers(lambda ws: set(ws) == names("w", range(3)), 15,
                            "only w_00..w_02 listed")
        self.assertTrue(all(w["state"] == "RUNNING" for w in ws.values()), ws)
        for n in names("w", range(3)):
            self.assertEqual(ws[n]["pid"], ten[n]["pid"], f"{n} kept its process")
        for n in names("w", range(3, 10)):
            self.assertTrue(poll(lambda: not alive(ten[n]["pid"]), 5), f"{n}'s process gone")
        g = c.status()["groups"][0]
        self.assertEqual((g["wanted"], g["actual"], g["states"]), (3, 3, {"RUNNING": 3}))
        self.assertEqual(sorted(int(p) for p in d.marked_procs()),
                         sorted(w["pid"] for w in ws.values()), "only 3 worker processes")
        scale_events = [(e["from"], e["to"]) for e in d.events_named("scale", group="w")]
        self.assertEqual(scale_events, [("2", "10"), ("10", "3")])
        # relative, and to zero and back
        self.assertEqual(c.ok("scale", "w", "+2")["to"], 5)
        c.wait_running(names("w", range(5)), 10)
        self.assertEqual(c.ok("scale", "w", "0")["to"], 0)
        c.wait_workers(lambda ws: not ws, 10, "no worker at scale 0")
        self.assertEqual(c.ok("scale", "w", "2")["to"], 2)
        c.wait_running(names("w", range(2)), 10)
        d.assert_clean_exit(d.stop())
        d.assert_no_marked_procs()

    def test_scale_up_while_scaling_down_revives_the_stopping_worker(self):
        d, c = start(self, program("w", tw("ignore-term"), numprocs=3, startsecs=0,
                                   stopwaitsecs=2))
        ws = c.wait_running(names("w", range(3)))
        self.assertTrue(poll(lambda: all(ignores(w["pid"], signal.SIGTERM)
                                         for w in ws.values()), 5))
        c.ok("scale", "w", "1")
        c.wait_workers(lambda ws: ws["w_02"]["state"] == "STOPPING", 5, "w_02 STOPPING")
        c.ok("scale", "w", "3")
        ws = c.wait_running(names("w", range(3)), 10)
        self.assertEqual(set(ws), names("w", range(3)))
        d.stop()

    def test_scale_a_single_worker_program_gives_distinct_names(self):
        """numprocs = 1 names the worker after the program; growing the pool
        must still give every worker its own name (or `stop NAME`, `log NAME`
        and the log files cannot tell them apart)."""
        d, c = start(self, sleeper("one"), sleeper("zero", 0))
        c.wait_running({"one"})
        c.ok("scale", "one", "3")
        c.ok("scale", "zero", "2")
        poll(lambda: sum(w["state"] == "RUNNING" for w in c.status()["workers"]) == 5, 10)
        st = c.status()["workers"]
        listed = sorted(w["name"] for w in st)
        self.assertEqual(len(listed), 5, listed)
        self.assertEqual(len(set(listed)), 5, f"worker names must be unique: {listed}")
        d.stop()


class PauseKillLog(unittest.TestCase):

    def test_pause_stops_cpu_time_and_resume_restarts_it(self):
        d, c = start(self, program("burn", tw("burn"), startsecs=0))
        pid = c.wait_running({"burn"})["burn"]["pid"]
        hz = os.sysconf("SC_CLK_TCK")
        t0 = cpu_ticks(pid)
        self.assertTrue(poll(lambda: cpu_ticks(pid) >= t0 + hz // 10, 5),
                        "a burning worker gains CPU time")
        r = c.ok("pause", "burn")
        self.assertEqual(r["workers"], ["burn"])
        c.wait_workers(lambda ws: ws["burn"]["state"] == "PAUSED", 5, "PAUSED")
        self.assertTrue(poll(lambda: proc_state(pid) == "T", 5),
                        f"process state {proc_state(pid)}, expected T (stopped)")
        paused_at = cpu_ticks(pid)
        # an observation window, not a synchronisation: CPU time must not move
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            self.assertEqual(cpu_ticks(pid), paused_at, "CPU time grows while PAUSED")
            time.sleep(0.05)
        self.assertEqual(c.workers()["burn"]["pid"], pid)
        c.ok("resume", "burn")
        c.wait_workers(lambda ws: ws["burn"]["state"] == "RUNNING", 5, "RUNNING")
        self.assertTrue(poll(lambda: cpu_ticks(pid) >= paused_at + hz // 10, 5),
                        "CPU time grows again after resume")
        self.assertEqual(c.workers()["burn"]["pid"], pid, "same process after resume")
        # a paused worker can still be stopped
        c.ok("pause", "burn")
        c.wait_workers(lambda ws: ws["burn"]["state"] == "PAUSED", 5, "PAUSED")
        c.ok("stop", "burn")
        c.wait_workers(lambda ws: ws["burn"]["state"] == "STOPPED", 10, "STOPPED from PAUSED")
        self.assertTrue(poll(lambda: not alive(pid), 5))
        d.assert_clean_exit(d.stop())

    def test_kill_signal_to_a_trap_and_to_no_handler(self):
        d = Drover(self, "kill")
        trap = d.path("trap.sh")
        with open(trap, "w") as f:
            f.write("#!/bin/sh\ntrap 'echo got USR1' USR1\necho ready\n"
                    "while :; do sleep 0.05; done\n")
        os.chmod(trap, 0o755)
        d.write_config(program("trap", trap, startsecs=0, stopasgroup=True),
                       sleeper("plain"))
        d.start()
        c = Control(d)
        ws = c.wait_running({"trap", "plain"})

        def trapped():
            return c.request("log", "trap").get("lines", []).count("got USR1")
        # "ready" comes after the trap is set: a USR1 before it kills the shell
        self.assertTrue(poll(lambda: "ready" in c.request("log", "trap").get("lines", []), 10),
                        f"trap.sh never said ready: {c.request('log', 'trap')}")
        c.ok("kill", "trap", "USR1")
        self.assertTrue(poll(lambda: trapped() == 1, 10),
                        f"the trap ran: {c.request('log', 'trap')}")
        self.assertEqual(c.workers()["trap"]["pid"], ws["trap"]["pid"], "trap survived")
        # numbers and SIG-prefixed names work too; through ctl. One at a time:
        # two USR1s that reach the shell before it runs the trap are one
        # pending signal, and the trap runs once (seen with sh frozen)
        for n, spelling in enumerate(("SIGUSR1", str(int(signal.SIGUSR1))), start=2):
            c.ctl_ok("kill", "trap", spelling)
            self.assertTrue(poll(lambda: trapped() == n, 10),
                            f"kill trap {spelling}: {c.request('log', 'trap')}")
        # no handler: the worker dies of it, the exit says so, it is restarted
        after = d.mark()
        c.ctl_ok("kill", "plain", "USR1")
        ex = d.wait_event(lambda e: e.get("event") == "exit" and e.get("worker") == "plain",
                          10, after, "plain's exit")
        self.assertEqual(ex["status"], "signal:USR1")
        old = int(ex["pid"])
        c.wait_workers(lambda ws: ws["plain"]["state"] == "RUNNING"
                       and ws["plain"]["pid"] not in (None, old), 10, "plain restarted")
        self.assertEqual(c.workers()["plain"]["last_exit"], "signal:USR1")
        # a stopped worker cannot be signalled
        c.ok("stop", "plain")
        c.wait_workers(lambda ws: ws["plain"]["state"] == "STOPPED", 10, "plain STOPPED")
        c.fails("kill", "plain", "TERM", contains="plain: not running (STOPPED)")
        d.assert_clean_exit(d.stop())

    def test_log_worker_n(self):
        d, c = start(self, program("p", tw("drip", 300, 0), startsecs=0), sleeper("quiet"))
        last = "drip 000300 " + "." * 51
        self.assertTrue(poll(lambda: c.request("log", "p", "1").get("lines") == [last], 10),
                        c.request("log", "p", "1"))
        r = c.ok("log", "p")
        self.assertEqual(len(r["lines"]), 50, "50 lines by default")
        self.assertEqual(r["lines"][0].split()[1], "000251")
        r = c.ok("log", "p", 200)
        self.assertEqual([l.split()[1] for l in r["lines"]],
                         [f"{i:06d}" for i in range(101, 301)], "the last 200, oldest first")
        p = c.ctl_ok("log", "p", "2")
        self.assertEqual(p.stdout.splitlines(), ["drip 000299 " + "." * 51, last])
        self.assertEqual(c.ok("log", "quiet")["lines"], [])
        c.fails("log", "p", "0", contains="log: N must be between 1 and 200")
        c.fails("log", "p", "201", contains="log: N must be between 1 and 200")
        c.fails("log", "nobody", contains="no such group or worker 'nobody'")
        d.stop()

    def test_log_keeps_lines_that_are_not_utf8(self):
        """A worker's output is bytes; `log` must not silently drop a line
        because it is not valid UTF-8."""
        d = Drover(self, "log-bytes")
        script = d.path("bytes.sh")
        with open(script, "w") as f:
            f.write('#!/bin/sh\necho first\nprintf "bad \\377\\376 bytes\\n"\necho last\n'
                    'exec sleep 100000\n')
        os.chmod(script, 0o755)
        d.write_config(program("b", script, startsecs=0, stopasgroup=True))
        d.start()
        c = Control(d)
        self.assertTrue(poll(lambda: "last" in c.request("log", "b").get("lines", []), 10),
                        f"the script's last line never came: {c.request('log', 'b')}")
        lines = c.ok("log", "b")["lines"]
        self.assertEqual(len(lines), 3, f"3 lines written, log shows {lines}")
        self.assertEqual((lines[0], lines[2]), ("first", "last"))
        self.assertTrue(lines[1].startswith("bad ") and lines[1].endswith(" bytes"), lines)
        d.stop()


class Lifecycle(unittest.TestCase):

    def test_shutdown_through_ctl_exits_cleanly(self):
        d, c = start(self, sleeper("w", 3), program("stubborn", tw("ignore-term"),
                                                    startsecs=0, stopwaitsecs=1))
        ws = c.wait_running(names("w", range(3)) | {"stubborn"})
        self.assertTrue(poll(lambda: ignores(ws["stubborn"]["pid"], signal.SIGTERM), 5))
        p = c.ctl_ok("shutdown")
        self.assertEqual(p.stdout, "shutting down\n")
        d.assert_clean_exit(d.wait_exit(20))
        for w in ws.values():
            self.assertFalse(alive(w["pid"]), f"{w['name']} is gone")
        self.assertEqual(d.events_named("shutdown")[-1].get("reason"), "command:shutdown")
        self.assertFalse(os.path.exists(c.sock), "socket removed")
        d.assert_no_marked_procs()
        p = c.ctl("status")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no drover is running", p.stderr)

    def test_commands_while_shutting_down(self):
        d, c = start(self, program("stubborn", tw("ignore-term"), startsecs=0,
                                   stopwaitsecs=3))
        pid = c.wait_running({"stubborn"})["stubborn"]["pid"]
        self.assertTrue(poll(lambda: ignores(pid, signal.SIGTERM), 5))
        with c.connect() as conn:
            self.assertTrue(conn.request("shutdown")["ok"])
            r = conn.request("status")
            self.assertIs(r["shutting_down"], True)
            for cmd, arg in (("start", None), ("scale", "2"), ("restart", None)):
                r = conn.request(cmd, "stubborn", arg)
                self.assertEqual(r, {"ok": False, "error": "drover is shutting down"})
            self.assertEqual(conn.request("reload"),
                             {"ok": False, "error": "drover is shutting down"})
            # stop and kill still work: SIGKILL ends the wait early
            self.assertTrue(conn.request("kill", "stubborn", "KILL")["ok"])
        d.assert_clean_exit(d.wait_exit(10))

    def test_stale_socket_after_kill9_is_replaced(self):
        d, c = start(self, sleeper("w"))
        c.wait_running({"w"})
        d.proc.kill()
        d.proc.wait(10)
        self.assertTrue(stat.S_ISSOCK(os.lstat(c.sock).st_mode), "the dead drover's socket stays")
        p = c.ctl("status")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no drover is running", p.stderr)
        d.assert_no_marked_procs(5, "after kill -9 of drover")
        # a new drover on the same state_dir replaces the stale socket
        d2 = Drover(self, "stale2")
        os.rmdir(d2.dir)  # d2 runs in d's directory, on d's state_dir
        d2.dir, d2.config_path, d2.state_dir = d.dir, d.config_path, d.state_dir
        d2.marker = d.marker
        d2.start()
        c2 = Control(d2)
        ws = c2.wait_running({"w"})
        self.assertEqual(c2.status()["pid"], d2.pid)
        self.assertEqual(stat.S_IMODE(os.lstat(c2.sock).st_mode), 0o600)
        d2.assert_clean_exit(d2.stop())
        self.assertFalse(alive(ws["w"]["pid"]))

    def test_something_else_at_the_socket_path_is_refused(self):
        d = Drover(self, "notsock")
        d.write_config(sleeper("w"))
        os.makedirs(d.state_dir, mode=0o700)
        with open(os.path.join(d.state_dir, "drover.sock"), "w") as f:
            f.write("precious\n")
        d.start(wait_start=False)
        rc = d.wait_exit(10)
        self.assertNotEqual(rc, 0)
        with open(os.path.join(d.state_dir, "drover.sock")) as f:
            self.assertEqual(f.read(), "precious\n", "a regular file is not deleted")
        with d.cond:
            err = "\n".join(d.stderr_lines)
        self.assertIn("is not a socket", err)


class Permissions(unittest.TestCase):

    def test_socket_0600_in_a_0700_state_dir(self):
        d, c = start(self, sleeper("w"))
        st = os.lstat(c.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, oct(st.st_mode))
        self.assertEqual(st.st_uid, os.getuid())
        self.assertEqual(stat.S_IMODE(os.stat(d.state_dir).st_mode), 0o700,
                         oct(os.stat(d.state_dir).st_mode))
        d.stop()

    def test_socket_is_0600_whatever_the_umask(self):
        d = Drover(self, "umask")
        d.write_config(sleeper("w"), raw="[supervisord]\numask = 000\n")
        d.start()
        c = Control(d)
        self.assertEqual(stat.S_IMODE(os.lstat(c.sock).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(d.state_dir).st_mode), 0o700)
        d.stop()

    def need_root(self):
        if os.getuid() != 0:
            self.skipTest("running as another user needs root (setpriv); "
                          "this test is not running as root")
        if subprocess.run(["sh", "-c", "command -v setpriv"],
                          capture_output=True).returncode != 0:
            self.skipTest("setpriv is not installed")

    def test_other_uid_cannot_reach_the_socket(self):
        """The file modes alone refuse another user: connect() fails with
        EACCES. That satisfies "a second uid is refused"; the next test proves
        the SO_PEERCRED check behind it."""
        self.need_root()
        d, c = start(self, sleeper("w"))
        c.wait_running({"w"})
        # even with the temp dir open, the 0700 state_dir and 0600 socket refuse nobody
        os.chmod(d.dir, 0o755)
        r = run_as_nobody(c.sock, d.env())
        self.assertEqual(r["connect"], "failed", r)
        self.assertEqual(r["errno"], 13, f"EACCES expected: {r}")
        os.chmod(d.state_dir, 0o711)
        r = run_as_nobody(c.sock, d.env())
        self.assertEqual((r["connect"], r["errno"]), ("failed", 13), f"socket 0600: {r}")
        assert_still_supervising(self, c, "w")
        d.stop()

    def test_so_peercred_refuses_other_uid_with_an_error_and_an_event(self):
        """Open the directory chain and the socket to everyone so nobody can
        connect(): drover itself must refuse by the peer's uid."""
        self.need_root()
        d, c = start(self, sleeper("w"))
        c.wait_running({"w"})
        os.chmod(d.dir, 0o755)
        os.chmod(d.state_dir, 0o755)
        os.chmod(c.sock, 0o666)
        after = d.mark()
        r = run_as_nobody(c.sock, d.env())
        self.assertEqual(r["connect"], "ok", f"nobody can connect with 0666: {r}")
        lines = [l for l in r["reply"].splitlines() if l]
        self.assertEqual(len(lines), 1, f"one error line, then the connection closes: {r}")
        reply = json.loads(lines[0])
        self.assertIs(reply["ok"], False)
        self.assertIn("permission denied", reply["error"])
        self.assertNotIn("workers", reply, "no status for another user")
        nobody = int(subprocess.run(["id", "-u", "nobody"], capture_output=True,
                                    text=True).stdout)
        ev = d.wait_event(lambda e: e.get("event") == "control", 5, after,
                          "event=control for the refused client")
        self.assertEqual(int(ev["uid"]), nobody)
        self.assertEqual(ev.get("level"), "warn")
        self.assertIn("refused", ev.get("message", ""))
        # root and drover's own user still get in
        self.assertTrue(c.status()["ok"])
        assert_still_supervising(self, c, "w")
        d.stop()


class Abuse(unittest.TestCase):
    """A control socket under abuse: errors or a dropped client, never a
    stuck or dead drover."""

    def setUp(self):
        self.d, self.c = start(self, sleeper("w", 2))
        self.c.wait_running({"w_00", "w_01"})

    def alive_and_well(self):
        self.assertIsNone(self.d.proc.poll(), "drover died\n" + self.d.context())
        assert_still_supervising(self, self.c, "w_00")

    def test_garbage_and_invalid_json_get_errors_and_the_connection_stays_usable(self):
        cases = [
            (b"garbage", "invalid JSON at column"),
            (b"{\"cmd\":", "invalid JSON at column"),
            (b"[1,2,3]", "a request is a JSON object with a \"cmd\" string"),
            (b"{}", "a request is a JSON object"),
            (b"{\"cmd\":42}", "a request is a JSON object"),
            (b"\"status\"", "invalid JSON"),
            (b"{\"cmd\":\"frob\"}", "unknown command 'frob'"),
            (b"{\"cmd\":\"status\",\"cmd\":\"stop\"}", "invalid JSON"),
            (b"{\"cmd\":\"scale\",\"target\":\"w\",\"arg\":{\"n\":3}}",
             "\"target\" and \"arg\" must be strings or numbers"),
            (b"{\"cmd\":\"scale\",\"target\":[\"w\"],\"arg\":3}", "must be strings or numbers"),
            (b"{\"cmd\":\"scale\",\"target\":\"w\",\"arg\":1.5}", "must be strings or numbers"),
            (b"{\"cmd\":\"scale\",\"target\":\"w\",\"arg\":99999999999999999999}",
             "invalid JSON"),
            (b"{\"cmd\":\"scale\",\"target\":\"w\",\"arg\":-9223372036854775808}",
             "scale: a change must be between"),
            (b"{\"cmd\":\"sta\\u0000tus\"}", "invalid JSON"),
            (b"\xff\xfe\x00\x01", "invalid JSON"),
            (b"[" * 30000, "invalid JSON"),
            (b"{\"cmd\":\"status\",\"target\":\"" + b"x" * 5000 + b"\"}", "too long"),
        ]
        with self.c.connect() as conn:
            for line, err in cases:
                with self.subTest(line=line[:60]):
                    conn.send(line + b"\n")
                    r = conn.reply()
                    self.assertIs(r["ok"], False, r)
                    self.assertIn(err, r["error"])
            # empty lines are skipped silently; the next request is answered
            conn.send(b"\n\n\r\n")
            r = conn.reply()
            self.assertIs(r["ok"], False, "a bare CR is not JSON")
            r = conn.request("status")
            self.assertIs(r["ok"], True)
        self.alive_and_well()

    def test_pipelined_requests_are_answered_in_order(self):
        with self.c.connect() as conn:
            reqs = [{"cmd": "status", "target": "w_00"}, {"cmd": "nope"},
                    {"cmd": "scale", "target": "w", "arg": 3}, {"cmd": "status"},
                    {"cmd": "scale", "target": "w", "arg": "2"}] * 20
            conn.send(b"".join(json.dumps(r).encode() + b"\n" for r in reqs))
            for i, req in enumerate(reqs):
                r = conn.reply()
                if req["cmd"] == "nope":
                    self.assertIs(r["ok"], False)
                elif req["cmd"] == "scale":
                    self.assertEqual(r["to"], int(req["arg"]), f"reply {i}")
                else:
                    self.assertIn("workers", r, f"reply {i}")
        self.c.wait_running({"w_00", "w_01"}, 10)
        self.alive_and_well()

    def test_oversized_lines_get_one_error_each_and_are_skipped(self):
        with self.c.connect() as conn:
            for size in (REQUEST_MAX + 1, 200 * 1024, 3 * 1024 * 1024):
                with self.subTest(size=size):
                    line = b'{"cmd":"status","target":"' + b"w" * size + b'"}'
                    conn.send(line + b"\n" + b'{"cmd":"status","target":"w_01"}\n')
                    r = conn.reply()
                    self.assertEqual(r, {"ok": False, "error":
                                         f"request longer than {REQUEST_MAX} bytes: ignored"})
                    r = conn.reply()
                    self.assertIs(r["ok"], True, "the request after the long line is answered")
                    self.assertEqual([w["name"] for w in r["workers"]], ["w_01"])
            # a long line that never ends, then the client goes away
            conn.send(b"x" * (1024 * 1024))
            r = conn.reply()
            self.assertIn("request longer than", r["error"])
        self.alive_and_well()

    def test_a_64kib_request_is_accepted(self):
        """protocol.md: "a request line may be at most 64 KiB (longer ones get
        an error)". A line of exactly 65536 bytes is not longer."""
        with self.c.connect() as conn:
            for size in (REQUEST_MAX - 1, REQUEST_MAX):
                with self.subTest(size=size):
                    req = b'{"cmd":"status"}'
                    conn.send(req + b" " * (size - len(req)) + b"\n")
                    r = conn.reply()
                    self.assertIs(r.get("ok"), True,
                                  f"a {size}-byte request line: {str(r)[:200]}")
        self.alive_and_well()

    def test_half_written_requests(self):
        # a request split over many writes is put together
        with self.c.connect() as conn:
            for b in b'{"cmd":"status","target":"w_00"}\n':
                conn.send(bytes([b]))
            self.assertEqual([w["name"] for w in conn.reply()["workers"]], ["w_00"])
        # a client that hangs up half-way through a request: nothing happens
        for i in range(50):
            with self.c.connect() as conn:
                conn.send(b'{"cmd":"scale","target":"w","arg":"9' if i % 2 else b'{"cmd":')
        # one that half-closes after a full request still gets its reply
        with self.c.connect() as conn:
            conn.send(b'{"cmd":"status"}\n{"cmd":"scale","target":"w","arg":"7"')
            conn.sock.shutdown(socket.SHUT_WR)
            self.assertIs(conn.reply()["ok"], True)
            self.assertIsNone(conn.readline(5), "then EOF: the half request is dropped")
        self.assertEqual(self.c.status()["groups"][0]["wanted"], 2, "no half-request ran")
        self.alive_and_well()

    def test_a_client_that_never_reads_is_dropped(self):
        size = len(json.dumps(self.c.status())) + 1
        after = self.d.mark()
        conn = self.c.connect()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.sock.settimeout(10)
        req = b'{"cmd":"status"}\n'
        # far more replies than 4 MiB plus the kernel's buffers
        total = (16 * 1024 * 1024) // size + 1
        dropped = False
        sent = 0
        try:
            while sent < total:
                conn.send(req * 200)
                sent += 200
        except (BrokenPipeError, ConnectionResetError):
            dropped = True
        except socket.timeout:
            self.fail(f"drover stopped reading from the client after {sent} requests "
                      "instead of dropping it\n" + self.d.context())
        ev = self.d.wait_event(lambda e: e.get("event") == "control", 10, after,
                               "event=control for the dropped client")
        self.assertIn("does not read", ev["message"])
        if not dropped:  # all sent before the drop: the connection still ends
            self.assertTrue(conn.at_eof(10), "the dropped client's connection is closed")
        conn.close()
        self.alive_and_well()

    def test_a_client_that_hangs_up_both_ways_with_replies_unread_is_closed(self):
        """A client asks for 3 MiB of replies, reads none and, once drover
        can write no more of them, shuts its socket both ways (the fd kept
        open): nothing can reach it now, so drover closes its end. It used
        to keep the client to flush to, spinning a full core on the HUP."""
        sockets = self._sockets
        size = len(json.dumps(self.c.status())) + 1
        self.assertTrue(poll(lambda: sockets() == 1, 5), "only the listening socket")
        conn = self.c.connect()
        conn.sock.setblocking(False)
        req = b'{"cmd":"status"}\n' * ((3 << 20) // size)
        sent = 0
        while sent < len(req):
            try:
                sent += conn.sock.send(req[sent:])
            except BlockingIOError:
                select.select([], [conn.sock], [], 1)

        def queued(op):
            buf = fcntl.ioctl(conn.sock.fileno(), op, b"\0\0\0\0")
            return int.from_bytes(buf, "little")
        self.assertTrue(poll(lambda: queued(termios.TIOCOUTQ) == 0, 10),
                        "drover read every request")
        # drover is blocked on a full socket: what waits for us stops growing
        seen = []

        def blocked():
            seen.append(queued(termios.FIONREAD))
            return seen[-1] > 0 and seen[-3:] == [seen[-1]] * 3
        self.assertTrue(poll(blocked, 10, interval=0.05), f"replies fill the socket: {seen}")
        conn.sock.shutdown(socket.SHUT_RDWR)
        self.assertTrue(poll(lambda: sockets() == 1, 5),
                        f"drover still holds the hung-up client ({sockets()} sockets)\n"
                        + self.d.context())
        conn.close()
        self.alive_and_well()

    def test_an_event_subscriber_that_never_reads_is_dropped(self):
        after = self.d.mark()
        sub = self.c.connect()
        sub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sub.send(b'{"cmd":"events"}\n')
        other = self.c.connect()
        other.send(b'{"cmd":"events"}\n')
        self.assertTrue(other.reply()["ok"])
        # the reading subscriber reads as events come, in its own thread
        got_events = []
        def read_other():
            while True:
                line = other.readline(30)
                if line is None:
                    return
                e = json.loads(line)
                got_events.append(e["event"])
                if e["event"] == "control":
                    return
        reader = threading.Thread(target=read_other, daemon=True)
        reader.start()
        # "scale w 2" when w has 2 changes nothing but still makes a scale event
        # (~110 bytes): enough of them overflow the 4 MiB backlog
        with self.c.connect() as conn:
            batch = b'{"cmd":"scale","target":"w","arg":"2"}\n' * 500
            try:
                for _ in range(100):
                    conn.send(batch)
                    for _ in range(500):
                        conn.reply()
                    if self.d.events_named("control"):
                        break
            except (EOFError, OSError) as exc:
                self.d.wait_exit(10)
                self.fail(f"drover died while dropping a subscriber that does not read "
                          f"({exc!r})\n" + self.d.context())
        ev = self.d.wait_event(lambda e: e.get("event") == "control", 10, after,
                               "event=control for the dropped subscriber")
        self.assertIn("does not read", ev["message"])
        # the reading subscriber got every event in order, including that one
        reader.join(30)
        self.assertEqual(got_events[-1:], ["control"], "the reader was dropped too")
        self.assertEqual(set(got_events[:-1]), {"scale"})
        self.assertGreater(len(got_events), 10000)
        other.close()
        sub.close()
        self.alive_and_well()

    def test_300_concurrent_clients_each_get_status(self):
        conns = [self.c.connect() for _ in range(300)]
        try:
            for conn in conns:
                conn.send(b'{"cmd":"status"}\n')
            for i, conn in enumerate(conns):
                r = conn.reply(15)
                self.assertIs(r["ok"], True, f"client {i}: {r}")
                self.assertEqual(len(r["workers"]), 2)
        finally:
            for conn in conns:
                conn.close()
        # and 300 threads connecting and asking at the same moment
        errors, replies = [], []
        go = threading.Event()

        def client():
            try:
                go.wait(10)
                with self.c.connect() as conn:
                    replies.append(conn.request("status", timeout=20)["ok"])
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))
        threads = [threading.Thread(target=client) for _ in range(300)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(replies, [True] * 300)
        self.alive_and_well()

    def test_more_than_1024_clients_are_told_too_many(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 1200:
            self.skipTest(f"RLIMIT_NOFILE hard limit {hard} < 1200")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        # the clients of setUp's checks gone (drover may not have read
        # their EOF yet): the 1024 below are all there is
        self.assertTrue(poll(lambda: self._sockets() == 1, 5), "only the listening socket")
        conns = []
        try:
            for _ in range(1024):
                conns.append(self.c.connect())
            # every one of them is a served client
            conns[-1].send(b'{"cmd":"status","target":"w_00"}\n')
            self.assertIs(conns[-1].reply()["ok"], True)
            extra = self.c.connect()
            self.assertEqual(extra.reply(), {"ok": False, "error": "too many clients"})
            self.assertTrue(extra.at_eof(5))
            extra.close()
            conns.pop().close()
            # a slot frees once a client leaves
            self.assertTrue(poll(lambda: self._one_status_ok(), 5), "a freed slot is reused")
        finally:
            for conn in conns:
                conn.close()
        self.alive_and_well()

    def _sockets(self):
        """drover's sockets: the listening one and one per client."""
        return sum(1 for t in fd_list(self.d.pid).values() if t.startswith("socket:"))

    def _one_status_ok(self):
        # the server may take the new connection before it sees the freed
        # one's EOF: then this one is told "too many clients" and closed,
        # perhaps before our request is sent. The poll asks again.
        try:
            r = self.c.request("status")
        except (BrokenPipeError, ConnectionResetError, EOFError):
            return False
        if r == {"ok": False, "error": "too many clients"}:
            return False
        self.assertIs(r.get("ok"), True, r)
        return True

    def test_random_bytes_leave_drover_running_and_answering(self):
        rng = random.Random(20261124)
        pieces = [b"{", b"}", b"[", b"]", b'"cmd"', b":", b",", b'"status"', b'"scale"',
                  b'"target"', b'"arg"', b'"w"', b"\\", b"\\u", b"\x00", b"\xff", b"\n",
                  b"9" * 30, b"-", b"null", b"true", b" "]

        def noise(n):
            if rng.random() < 0.5:
                return bytes(rng.getrandbits(8) for _ in range(n))
            return b"".join(rng.choice(pieces) for _ in range(n // 3 + 1))

        for i in range(120):
            conn = self.c.connect()
            try:
                mode = i % 4
                size = rng.choice([1, 10, 100, 4000, 70000, 300000])
                conn.send(noise(size))
                if mode == 0:
                    conn.close()  # hang up mid-stream
                    continue
                if mode == 1:
                    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    conn.close()  # reset
                    continue
                conn.send(b"\n" + b'{"cmd":"status","target":"w_00"}\n')
                if mode == 2:
                    conn.sock.shutdown(socket.SHUT_WR)
                # every line drover sends back is a JSON reply, the last ours
                last = None
                while True:
                    line = conn.readline(10)
                    if line is None:
                        break
                    last = json.loads(line)
                    self.assertIn("ok", last)
                    if last.get("ok") is True and "workers" in last:
                        break
                self.assertIsNotNone(last, f"round {i}: no reply")
                self.assertEqual([w["name"] for w in last["workers"]], ["w_00"], f"round {i}")
            finally:
                conn.close()
        self.alive_and_well()

    def test_a_flood_does_not_stop_supervising(self):
        stop = threading.Event()
        errors = []

        def flood():
            try:
                while not stop.is_set():
                    with self.c.connect() as conn:
                        conn.send((b"garbage " * 1000 + b"\n") * 50 +
                                  b'{"cmd":"status"}\n' * 50)
                        conn.sock.shutdown(socket.SHUT_WR)
                        while conn.readline(10) is not None:
                            pass
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))
        threads = [threading.Thread(target=flood) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for _ in range(3):
                assert_still_supervising(self, self.c, "w_01")
        finally:
            stop.set()
            for t in threads:
                t.join(20)
        self.assertEqual(errors, [])
        self.alive_and_well()


if __name__ == "__main__":
    unittest.main()
