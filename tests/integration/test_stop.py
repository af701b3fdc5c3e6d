"""Stopping: stop escalation, process groups, orphans, SIGTERM and kill -9 of
drover, one drover per state_dir."""

import os
import signal
import time
import unittest

from harness import Drover, program, tw, alive, poll, describe, descendants_of


def wait_children(test, d, worker_pid, n, timeout=10):
    """The n children a `children N` worker forked, from /proc."""
    kids = poll(lambda: (lambda k: k if len(k) >= n else None)(descendants_of(worker_pid)),
                timeout)
    test.assertTrue(kids, f"worker {worker_pid} did not fork {n} children: "
                    f"{descendants_of(worker_pid)}\n" + d.context())
    return kids


def assert_all_gone(test, d, pids, what):
    left = poll(lambda: not [p for p in pids if alive(p)], 10)
    if not left:
        test.fail(f"{what} still alive:\n" +
                  "\n".join("  " + describe(p) for p in pids if alive(p)) + "\n" + d.context())


class Stop(unittest.TestCase):

    def test_sigterm_ignored_is_killed_after_stopwaitsecs(self):
        d = Drover(self, "ignoreterm")
        d.write_config(program("stubborn", tw("ignore-term"), startsecs=0, stopwaitsecs=1))
        d.start()
        pid = int(d.wait_state("stubborn", "RUNNING")["pid"])
        # let the worker install its SIG_IGN before we test it
        ok = poll(lambda: _sig_ignored(pid, signal.SIGTERM), 5)
        self.assertTrue(ok, "testworker ignore-term did not ignore SIGTERM")
        rc = d.stop()
        stopping = [e for e in d.states("stubborn") if e.get("to") == "STOPPING"]
        self.assertTrue(stopping, "no STOPPING state\n" + d.context())
        ex = d.events_named("exit", worker="stubborn")
        self.assertEqual(len(ex), 1, "one exit event\n" + d.context())
        self.assertEqual(ex[0].get("status"), "signal:KILL",
                         "a worker ignoring SIGTERM must die by SIGKILL\n" + d.context())
        waited = ex[0]["_ts"] - stopping[0]["_ts"]
        self.assertAlmostEqual(waited, 1.0, delta=0.4,
                               msg=f"SIGKILL came {waited:.3f}s after the stop, "
                               f"expected stopwaitsecs=1\n" + d.context())
        d.assert_clean_exit(rc)
        self.assertFalse(alive(pid), describe(pid))
        d.assert_no_marked_procs()

    def test_sigstopped_worker_gets_sigcont_and_dies_by_stopsignal(self):
        """A paused (SIGSTOP'd) worker cannot act on SIGTERM until it is
        continued: drover sends SIGCONT after the stop signal, so the worker
        dies of SIGTERM at once instead of waiting for SIGKILL."""
        d = Drover(self, "sigcont")
        d.write_config(program("frozen", tw("sleep"), startsecs=0, stopwaitsecs=5))
        d.start()
        pid = int(d.wait_state("frozen", "RUNNING")["pid"])
        os.kill(pid, signal.SIGSTOP)
        ok = poll(lambda: (_state(pid) or "") in "Tt" and _state(pid) is not None, 5)
        self.assertTrue(ok, f"worker did not stop: {describe(pid)}")
        t0 = time.monotonic()
        rc = d.stop()
        took = time.monotonic() - t0
        d.assert_clean_exit(rc)
        ex = d.events_named("exit", worker="frozen")
        self.assertEqual([e.get("status") for e in ex], ["signal:TERM"],
                         "a stopped worker must get SIGCONT and die of its stopsignal\n"
                         + d.context())
        self.assertLess(took, 3, f"stop took {took:.1f}s (stopwaitsecs=5)")

    def test_stopsignal_is_honoured(self):
        d = Drover(self, "stopsignal")
        d.write_config(program("hup", tw("sleep"), startsecs=0, stopsignal="HUP"),
                       program("int", tw("sleep"), startsecs=0, stopsignal="SIGINT"))
        d.start()
        d.wait_state("hup", "RUNNING")
        d.wait_state("int", "RUNNING")
        d.assert_clean_exit(d.stop())
        for w, sig in (("hup", "signal:HUP"), ("int", "signal:INT")):
            self.assertEqual([e.get("status") for e in d.events_named("exit", worker=w)], [sig],
                             f"{w} must be stopped with its stopsignal\n" + d.context())

    def test_shutdown_during_starting_and_backoff_is_prompt(self):
        d = Drover(self, "shutdown-mid")
        d.write_config(program("slow", tw("sleep"), startsecs=30, stopwaitsecs=5),
                       program("crashy", tw("exit", 1), startsecs=1, startretries=100),
                       program("resting", tw("exit", 0, 50), startsecs=0, autorestart=True,
                               fatal_after="10/60s"))
        d.start()
        d.wait_state("slow", "STARTING")
        d.wait_state("crashy", "BACKOFF")
        # resting: its 2nd exit waits 1 s in EXITED before the restart
        d.wait_event(lambda e: e.get("event") == "state" and e.get("worker") == "resting" and
                     "restart in" in e.get("reason", ""), 10, what="resting waiting to restart")
        t0 = time.monotonic()
        rc = d.stop()
        took = time.monotonic() - t0
        d.assert_clean_exit(rc)
        self.assertLess(took, 3, f"shutdown took {took:.1f}s\n" + d.context())
        # from the shutdown event on, not from our SIGTERM: crashy's and
        # resting's restarts are due about 1 s after the waits above, and a
        # test that is slow to send the signal sees them start before drover
        # knew it was to shut down
        evs = d.snapshot()
        down = [i for i, e in enumerate(evs) if e.get("event") == "shutdown"]
        self.assertEqual(len(down), 1, "one shutdown event\n" + d.context())
        again = [e["_raw"] for e in evs[down[0]:]
                 if e.get("event") == "state" and e.get("to") == "STARTING"]
        self.assertEqual(again, [], "nothing may start while drover shuts down")
        for w in ("slow", "crashy", "resting"):
            self.assertEqual(d.states(w)[-1].get("to"), "STOPPED", f"{w}\n" + d.context())
        d.assert_no_marked_procs()

    def test_stopasgroup_leaves_no_grandchildren(self):
        d = Drover(self, "stopasgroup")
        d.write_config(program("fam", tw("children", 3), startsecs=0, stopasgroup=True,
                               stopwaitsecs=5))
        d.start()
        pid = int(d.wait_state("fam", "RUNNING")["pid"])
        kids = wait_children(self, d, pid, 3)
        rc = d.stop()
        d.assert_clean_exit(rc)
        ex = d.events_named("exit", worker="fam")
        self.assertEqual([e.get("status") for e in ex], ["signal:TERM"],
                         "the stop signal ends the worker\n" + d.context())
        assert_all_gone(self, d, [pid] + kids, "worker or grandchild")
        d.assert_no_marked_procs()

    def test_grandchildren_without_stopasgroup_are_killed(self):
        d = Drover(self, "nogroup")
        d.write_config(program("fam", tw("children", 3), startsecs=0, stopwaitsecs=5))
        d.start()
        pid = int(d.wait_state("fam", "RUNNING")["pid"])
        kids = wait_children(self, d, pid, 3)
        rc = d.stop()
        d.assert_clean_exit(rc)
        assert_all_gone(self, d, [pid] + kids, "worker or grandchild")
        d.assert_no_marked_procs()

    def test_setsid_grandchildren_are_killed_at_shutdown(self):
        d = Drover(self, "setsid")
        d.write_config(program("esc", tw("children", 2, "setsid"), startsecs=0,
                               stopasgroup=True, stopwaitsecs=5))
        d.start()
        pid = int(d.wait_state("esc", "RUNNING")["pid"])
        kids = wait_children(self, d, pid, 2)
        # they really escaped the worker's session (a child is seen as soon
        # as it is forked, its setsid() may come a moment later)
        sids = {}

        def escaped():
            nonlocal sids
            sids = {k: _sid(k) for k in kids}
            return all(s == k for k, s in sids.items())
        self.assertTrue(poll(escaped, 5), f"children did not setsid: {sids}")
        rc = d.stop()
        d.assert_clean_exit(rc)
        assert_all_gone(self, d, [pid] + kids, "worker or setsid grandchild")
        d.assert_no_marked_procs()

    def test_daemonized_orphans_are_killed_at_shutdown(self):
        """A worker that daemonizes (fork, setsid, fork) leaves orphans that
        drover adopts while the worker runs; shutdown kills them at once
        (through the orphan table: they are not in any worker's group)."""
        d = Drover(self, "daemons")
        # drover learns of orphans when it reaps something (a reparented
        # process sends no SIGCHLD); blip's exits make it look. Not one exit
        # at 500 ms: a spawner slower than that to daemonize (a loaded
        # machine; with blip at 1 ms, 2 runs in 3) leaves orphans nobody
        # looks for, so blip exits every 200 ms, restarted at once.
        d.write_config(program("spawner", tw("daemons", 2), startsecs=0, stopwaitsecs=5),
                       program("blip", tw("exit", 0, 200), startsecs=0, autorestart=True,
                               backoff_max=0, fatal_after=0))
        d.start("--tail")
        pid = int(d.wait_state("spawner", "RUNNING")["pid"])
        daemons = []
        for _ in range(2):
            e = d.wait_event(lambda e: e.get("event") == "output" and
                             str(e.get("line")).startswith("daemon ") and
                             int(e["line"].split()[1]) not in daemons,
                             10, what="a daemon's pid")
            daemons.append(int(e["line"].split()[1]))
        for dp in daemons:
            o = d.wait_event(lambda e, dp=dp: e.get("event") == "orphan" and
                             str(e.get("pid")) == str(dp), 5, what=f"orphan event for {dp}")
            self.assertEqual(o.get("worker"), "spawner", "orphan attributed to its worker\n"
                             + o["_raw"])
        self.assertTrue(all(alive(p) for p in daemons),
                        "orphans of a RUNNING worker are left alone")
        t0 = time.monotonic()
        rc = d.stop()
        took = time.monotonic() - t0
        d.assert_clean_exit(rc)
        self.assertEqual(d.events_named("leftover"), [], d.context())
        assert_all_gone(self, d, [pid] + daemons, "worker or daemon")
        self.assertLess(took, 3, f"shutdown took {took:.1f}s: orphans must be killed, "
                        "not waited for\n" + d.context())
        d.assert_no_marked_procs()

    def test_sigterm_stops_everything_and_exits_0(self):
        d = Drover(self, "sigterm")
        d.write_config(program("pool", tw("children", 2), numprocs=3, startsecs=0,
                               stopwaitsecs=5),
                       program("single", tw("sleep"), startsecs=0))
        d.start()
        workers = ["pool_00", "pool_01", "pool_02", "single"]
        pids = [int(d.wait_state(w, "RUNNING")["pid"]) for w in workers]
        for p in pids[:3]:
            wait_children(self, d, p, 2)
        everything = descendants_of(d.pid)
        self.assertGreaterEqual(len(everything), 10, "3x(1+2) + 1 processes under drover")
        rc = d.stop()
        d.assert_clean_exit(rc)
        sd = d.events_named("shutdown")
        self.assertEqual([e.get("reason") for e in sd], ["signal:TERM"], d.context())
        for w in workers:
            self.assertEqual(d.states(w)[-1].get("to"), "STOPPED",
                             f"{w} must end STOPPED\n" + d.context())
        self.assertEqual(d.events_named("leftover"), [], d.context())
        assert_all_gone(self, d, everything, "process started under drover")
        d.assert_no_marked_procs(what="after SIGTERM to drover")

    def test_sigint_also_stops_cleanly(self):
        d = Drover(self, "sigint")
        d.write_config(program("w", tw("sleep"), startsecs=0))
        d.start()
        pid = int(d.wait_state("w", "RUNNING")["pid"])
        d.signal(signal.SIGINT)
        d.assert_clean_exit(d.wait_exit())
        self.assertEqual([e.get("reason") for e in d.events_named("shutdown")], ["signal:INT"])
        self.assertFalse(alive(pid))

    def test_kill9_of_drover_kills_workers(self):
        d = Drover(self, "pdeathsig")
        d.write_config(program("pool", tw("sleep"), numprocs=3, startsecs=0),
                       program("stubborn", tw("ignore-term"), startsecs=0))
        d.start()
        pids = [int(d.wait_state(w, "RUNNING")["pid"])
                for w in ("pool_00", "pool_01", "pool_02", "stubborn")]
        d.signal(signal.SIGKILL)
        rc = d.wait_exit()
        self.assertEqual(rc, -signal.SIGKILL)
        gone = poll(lambda: not [p for p in pids if alive(p)], 5)
        self.assertTrue(gone, "workers outlived kill -9 of drover:\n" +
                        "\n".join("  " + describe(p) for p in pids if alive(p)))
        d.assert_no_marked_procs(what="after kill -9 of drover")

    @unittest.expectedFailure
    def test_kill9_of_drover_kills_grandchildren(self):
        """Known gap, kept as a tripwire: PDEATHSIG kills the workers, but
        their children are reparented to init and live on, so a restarted
        drover runs duplicates beside them (supervisord #168). Closing it
        needs a cgroup per worker (cgroup.kill) or children that watch for
        drover's death. When this starts passing, drop expectedFailure."""
        d = Drover(self, "pdeathsig-gc")
        d.write_config(program("fam", tw("children", 2), startsecs=0))
        d.start()
        pid = int(d.wait_state("fam", "RUNNING")["pid"])
        kids = wait_children(self, d, pid, 2)
        d.signal(signal.SIGKILL)
        d.wait_exit()
        gone = poll(lambda: not [p for p in [pid] + kids if alive(p)], 3)
        self.assertTrue(gone, "processes outlived kill -9 of drover:\n" +
                        "\n".join("  " + describe(p) for p in [pid] + kids if alive(p)))

    def test_second_drover_on_same_state_dir_is_refused(self):
        d = Drover(self, "lock")
        d.write_config(program("w", tw("sleep"), startsecs=0))
        d.start()
        pid = int(d.wait_state("w", "RUNNING")["pid"])
        t0 = time.monotonic()
        other = d.run_other("-c", d.config_path, timeout=15)
        took = time.monotonic() - t0
        self.assertNotEqual(other.returncode, 0,
                            f"second drover must fail\nstdout:{other.stdout}\nstderr:{other.stderr}")
        self.assertLess(took, 5, "second drover must exit at once")
        want = f"another drover (pid {d.pid}) is running on {d.state_dir}"
        self.assertIn(want, other.stderr, "the refusal names the running drover")
        self.assertNotIn("event=state", other.stdout, "second drover must not start workers")
        # the first one is unharmed
        self.assertTrue(alive(pid))
        self.assertEqual(len(d.pids_of("w")), 1, "the first drover's worker kept running\n"
                         + d.context())
        self.assertEqual(len(d.marked_procs()), 1,
                         "only the first drover's worker may exist: " +
                         str([describe(p) for p in d.marked_procs()]))
        d.assert_clean_exit(d.stop())


def _sig_ignored(pid, sig):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigIgn:"):
                    return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    except OSError:
        return False
    return False


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(")") + 2:].split()[0]


def _sid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rfind(")") + 2:].split()[3])


if __name__ == "__main__":
    unittest.main()
