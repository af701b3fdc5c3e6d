"""Robustness: thousands of exits through the single reaper without zombies
or fd leaks; what a worker inherits (signal mask, dispositions, fds)."""

import os
import signal
import time
import unittest

from ctlutil import Control
from harness import Drover, program, tw, poll, children_of, zombies_of, fd_list


def new_fds_by_kind(baseline, now):
    """The fds in now that baseline does not have, counted by kind
    (pipe, anon_inode, socket, or the path)."""
    extra = {}
    for fd, t in now.items():
        if baseline.get(fd) != t:
            kind = t.split(":[")[0] if ":[" in t else t
            extra[kind] = extra.get(kind, 0) + 1
    return extra


class Robustness(unittest.TestCase):

    def test_10000_orphan_exits_leave_no_zombie_and_no_fd_growth(self):
        """4 workers make 2,500 orphans each: every one is reparented to
        drover (the subreaper), gets a pidfd in the orphan table, exits, and is
        reaped by drover's one reaper."""
        d = Drover(self, "orphans")
        go = d.path("go")
        d.write_config(program("maker", tw("orphans", 2500, go), numprocs=4, startsecs=0))
        d.start("--tail")
        workers = [f"maker_{i:02d}" for i in range(4)]
        pids = sorted(int(d.wait_state(w, "RUNNING")["pid"]) for w in workers)
        ok = poll(lambda: sorted(children_of(d.pid)) == pids, 5)
        self.assertTrue(ok, f"drover's children {children_of(d.pid)} != workers {pids}")
        baseline = fd_list(d.pid)
        t0 = time.monotonic()
        open(go, "w").close()

        made = 0
        for w in workers:
            e = d.wait_output(w, "orphans made", 120)
            made += int(e["line"].split()[-1])
        self.assertEqual(made, 10000, "orphans the workers made")

        def settled():
            return (not zombies_of(d.pid) and sorted(children_of(d.pid)) == pids
                    and len(fd_list(d.pid)) == len(baseline))
        ok = poll(settled, 30, interval=0.05)
        took = time.monotonic() - t0
        if not ok:
            now = fd_list(d.pid)
            extra = new_fds_by_kind(baseline, now)
            self.fail(f"after 10,000 orphan exits ({took:.1f}s): "
                      f"zombies={len(zombies_of(d.pid))} "
                      f"children={len(children_of(d.pid))} (workers {pids}) "
                      f"fds={len(now)} baseline={len(baseline)} new fds by kind={extra}\n"
                      + d.context())
        self.assertEqual(sorted(d.pid_of(w) for w in workers), pids,
                         "no worker was restarted\n" + d.context())
        self.assertEqual(d.events_named("exit"), [], "no worker exited\n" + d.context())
        self.assertEqual([e["_raw"] for e in d.snapshot() if e.get("level") == "error"], [],
                         "no error events")
        print(f"\n  10,000 orphans reaped in {took:.1f}s; drover saw "
              f"{len(d.events_named('orphan'))} alive", flush=True)
        d.assert_clean_exit(d.stop())
        d.assert_no_marked_procs()

    def test_thousands_of_worker_restarts_leak_nothing(self):
        """/bin/true restarted as fast as drover can (fatal_after = 0 turns
        the limit off, backoff_max = 0 removes the delay): every spawned pid
        gets its exit event, and drover's fds are the same, with the pool
        stopped, after 3000 restarts as after the first few."""
        d = Drover(self, "restarts")
        c = Control(d)
        d.write_config(program("blink", "/bin/true", numprocs=4, startsecs=0,
                               autorestart=True, fatal_after=0, backoff_max=0))
        d.start()
        workers = [f"blink_{i:02d}" for i in range(4)]

        def stopped_fds():
            """Stop the pool; drover's fds once it is stopped and settled."""
            c.ctl_ok("stop", "blink")
            fds = {}

            def settled():
                nonlocal fds
                last = [d.states(w)[-1].get("to") for w in workers]
                prev, fds = fds, fd_list(d.pid)
                # the ctl client gone: drover reads its EOF when it gets to
                # it, maybe after two of our reads; its only socket left is
                # the listening one. And the same fds twice in a row.
                sockets = sum(1 for t in fds.values() if t.startswith("socket:"))
                return (last == ["STOPPED"] * 4 and not children_of(d.pid)
                        and sockets == 1 and fds == prev)
            self.assertTrue(poll(settled, 15, interval=0.05),
                            f"the pool did not stop and settle\n{d.context()}")
            return fds

        self.assertTrue(poll(lambda: len(d.events_named("exit")) >= 100, 30),
                        "the first 100 exits\n" + d.context())
        baseline = stopped_fds()
        c.ctl_ok("start", "blink")
        # 3000 exits, or as many as 90 s allow: ~15 s here, but on one
        # loaded core 2887 came in 90 s. A leak of one fd per restart shows
        # after 1000 as well as after 3000; fewer than 1000 in 90 s (11 a
        # second) is drover stuck, not a slow machine.
        target, least = 3000, 1000
        samples = []

        def enough():
            samples.append(len(fd_list(d.pid)))
            return len(d.events_named("exit")) >= target
        t0 = time.monotonic()
        poll(enough, 90, interval=0.05)
        took = time.monotonic() - t0
        done = len(d.events_named("exit"))
        self.assertGreaterEqual(done, least, f"only {done} exits in {took:.0f}s\n"
                                + d.context())
        # a live worker holds a pidfd and its pipes; a spawn briefly a few more
        self.assertLessEqual(max(samples), len(baseline) + 4 * 8,
                             f"drover's fds while workers restarted: {samples[::20]}")
        after = stopped_fds()
        if len(after) != len(baseline):
            self.fail(f"{len(after)} fds after {done} restarts, {len(baseline)} after "
                      f"the first 100; new by kind: {new_fds_by_kind(baseline, after)}")
        self.assertEqual([e for e in d.events_named("state") if e.get("to") == "FATAL"], [],
                         "fatal_after = 0 disables the limit\n" + d.context())
        d.assert_clean_exit(d.stop())
        spawned = set()
        for e in d.events_named("state"):
            if e.get("to") == "STARTING" and "pid" in e:
                spawned.add(int(e["pid"]))
        exited = {int(e["pid"]) for e in d.events_named("exit")}
        self.assertEqual(spawned - exited, set(),
                         "every spawned worker must be reaped and reported")
        print(f"\n  {len(exited)} worker exits in {took:.1f}s", flush=True)
        d.assert_no_marked_procs()

    def test_workers_get_empty_mask_default_dispositions_and_fds_0_2(self):
        d = Drover(self, "inherit")
        report = d.path("report.txt")
        leak_r, leak_w = os.pipe()  # inheritable: drover gets them, workers must not
        self.addCleanup(os.close, leak_r)
        self.addCleanup(os.close, leak_w)
        d.write_config(program("rep", tw("report", report), startsecs=0))
        # drover starts with signals ignored and blocked, as under nohup or a
        # careless parent: none of it may reach the worker
        d.start(ignore=(signal.SIGHUP, signal.SIGUSR1, signal.SIGQUIT, signal.SIGPIPE),
                block=(signal.SIGUSR2, signal.SIGALRM), pass_fds=(leak_r, leak_w))
        d.wait_state("rep", "RUNNING")

        def lines():
            try:
                with open(report) as f:
                    text = f.read()
            except OSError:
                return None
            return text if text.endswith("\n") and "fds:" in text else None
        text = poll(lines, 10)
        self.assertTrue(text, "the worker wrote no report\n" + d.context())
        got = {}
        for line in text.splitlines():
            k, _, v = line.partition(":")
            got[k] = v.strip()
        self.assertEqual(got.get("SigBlk"), "0" * 16, f"worker's signal mask\n{text}")
        self.assertEqual(got.get("SigIgn"), "0" * 16, f"worker's ignored signals\n{text}")
        self.assertEqual(got.get("fds"), "0 1 2", f"worker's open fds\n{text}")
        d.assert_clean_exit(d.stop())


if __name__ == "__main__":
    unittest.main()
