"""Worker life cycle: restarts, start retries, the crash-rate limit, commands
that cannot be run."""

import os
import signal
import unittest

from harness import Drover, program, tw, alive

# Slack on a delay measured between two of drover's own timestamps. A timer
# cannot fire early, so early slack is only for the millisecond stamps; it
# fires late when drover is not scheduled (a busy CI machine froze it for
# over 0.4 s), so late slack is wider, yet under a second: a wait a whole
# second too long (or a restart "at once" that waited a second) still fails.
EARLY, LATE = 0.1, 0.9


def is_state(worker, to=None):
    return lambda e: (e.get("event") == "state" and e.get("worker") == worker
                      and (to is None or e.get("to") == to))


class Lifecycle(unittest.TestCase):

    def test_restart_after_kill9(self):
        d = Drover(self, "kill9")
        d.write_config(program("w", tw("sleep"), startsecs=0.2, autorestart=True))
        d.start()
        first = d.wait_state("w", "RUNNING")
        old = int(first["pid"])
        after = d.mark()
        os.kill(old, signal.SIGKILL)
        ex = d.wait_event(lambda e: e.get("event") == "exit" and e.get("worker") == "w",
                          10, after, what="the exit event of the killed worker")
        self.assertEqual(int(ex["pid"]), old, "exit event names the killed pid\n" + d.context())
        self.assertEqual(ex.get("status"), "signal:KILL", "exit status\n" + d.context())
        self.assertEqual(ex.get("expected"), "false", "a SIGKILL is not expected\n" + d.context())
        again = d.wait_state("w", "RUNNING", 10, after)
        new = int(again["pid"])
        self.assertNotEqual(new, old, "the restarted worker must be a new process\n" + d.context())
        self.assertTrue(alive(new), f"new worker pid {new} is not alive\n" + d.context())
        self.assertFalse(alive(old), f"old worker pid {old} still alive")
        # the first exit in the fatal_after window restarts at once
        starting = d.wait_state("w", "STARTING", 10, after)
        self.assertLess(starting["_ts"] - ex["_ts"], LATE,
                        "first exit after RUNNING must restart at once\n" + d.context())
        d.assert_clean_exit(d.stop())
        d.assert_no_marked_procs()

    def test_crash_before_startsecs_backs_off_1_2_3_then_fatal(self):
        d = Drover(self, "backoff")
        d.write_config(program("crash", tw("exit", 1), startsecs=1, startretries=3,
                               autorestart=True))
        d.start()
        fatal = d.wait_state("crash", "FATAL", 20)
        states = d.states("crash")
        starts = [e for e in states if e.get("to") == "STARTING"]
        backoffs = [e for e in states if e.get("to") == "BACKOFF"]
        seen = "\n".join(e["_raw"] for e in states)
        self.assertEqual(len(starts), 4,
                         f"1 start + startretries=3 retries expected, saw:\n{seen}")
        self.assertEqual(len(backoffs), 3, f"3 BACKOFF transitions expected, saw:\n{seen}")
        self.assertEqual([e.get("to") for e in states],
                         ["STARTING", "BACKOFF"] * 3 + ["STARTING", "FATAL"],
                         f"state sequence\n{seen}")
        # each wait in BACKOFF is 1, 2, 3 s, as supervisord's
        for n, (b, s) in enumerate(zip(backoffs, starts[1:]), start=1):
            gap = s["_ts"] - b["_ts"]
            self.assertTrue(n - EARLY <= gap < n + LATE,
                            f"wait before retry {n}: {gap:.3f}s, expected {n}s\n{seen}")
        self.assertIn("too many start retries too quickly", fatal.get("reason", ""),
                      "FATAL reason\n" + seen)
        self.assertEqual(fatal.get("level"), "error", "FATAL is logged as an error")
        # nothing more happens once FATAL
        d.assert_no_event(is_state("crash"), 1.2, d.mark(), what="state change after FATAL")
        d.assert_clean_exit(d.stop())
        d.assert_no_marked_procs()

    def test_crash_after_running_is_rate_limited_then_fatal(self):
        d = Drover(self, "ratelimit")
        d.write_config(program("flaky", tw("exit", 1, 50), startsecs=0, autorestart=True,
                               fatal_after="4/30s"))
        d.start()
        fatal = d.wait_state("flaky", "FATAL", 20)
        states = d.states("flaky")
        seen = "\n".join(e["_raw"] for e in states)
        exits = d.events_named("exit", worker="flaky")
        self.assertEqual(len(exits), 4, f"fatal_after=4/30s: 4 exits, then FATAL\n{seen}")
        running = [e for e in states if e.get("to") == "RUNNING"]
        self.assertEqual(len(running), 4, f"4 runs expected\n{seen}")
        exited = [e for e in states if e.get("to") == "EXITED"]
        starts = [e for e in states if e.get("to") == "STARTING"]
        self.assertEqual(len(exited), 3, f"3 restarts expected\n{seen}")
        # restart delays: at once, then 1 s, then 2 s
        gaps = [s["_ts"] - x["_ts"] for x, s in zip(exited, starts[1:])]
        for want, gap in zip([0, 1, 2], gaps):
            self.assertTrue(want - EARLY <= gap < want + LATE,
                            f"restart delays {['%.3f' % g for g in gaps]}, "
                            f"expected [0, 1, 2]\n{seen}")
        self.assertIn("exited 4 times within 30s", fatal.get("reason", ""),
                      "FATAL reason\n" + seen)
        d.assert_no_event(is_state("flaky"), 1.2, d.mark(), what="state change after FATAL")
        d.assert_clean_exit(d.stop())

    def test_missing_command_is_fatal_at_once(self):
        d = Drover(self, "nocmd")
        d.write_config(program("ghost", "nosuch-drover-command --flag", startsecs=1,
                               startretries=3))
        d.start()
        fatal = d.wait_state("ghost", "FATAL", 5)
        self.assertIn("cannot exec 'nosuch-drover-command': command not found on PATH",
                      fatal.get("reason", ""), "FATAL reason\n" + d.context())
        d.assert_no_event(is_state("ghost"), 1.5, d.mark(), what="retry of a missing command")
        starts = [e for e in d.states("ghost") if e.get("to") == "STARTING"]
        self.assertEqual(len(starts), 1, "a missing command is not retried\n" + d.context())
        self.assertEqual(d.events_named("exit", worker="ghost"), [],
                         "no process, so no exit event\n" + d.context())
        d.assert_clean_exit(d.stop())

    def test_unrunnable_commands_are_fatal_with_reason(self):
        d = Drover(self, "unrunnable")
        noexec = d.path("not-executable.sh")
        with open(noexec, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(noexec, 0o644)
        d.write_config(
            program("noexec", noexec, startsecs=0),
            program("baddir", tw("sleep"), directory=d.path("no", "such", "dir"), startsecs=0),
            program("nouser", tw("sleep"), user="no-such-user-drover", startsecs=0))
        d.start()
        for worker, words in (("noexec", ["cannot exec", noexec]),
                              ("baddir", ["cannot chdir to", d.path("no", "such", "dir")]),
                              ("nouser", ["no-such-user-drover"])):
            fatal = d.wait_state(worker, "FATAL", 5)
            for w in words:
                self.assertIn(w, fatal.get("reason", ""),
                              f"{worker}: FATAL reason must say why\n" + d.context())
            starts = [e for e in d.states(worker) if e.get("to") == "STARTING"]
            self.assertEqual(len(starts), 1, f"{worker} must not be retried\n" + d.context())
        d.assert_clean_exit(d.stop())

    def test_autorestart_unexpected_honours_exitcodes(self):
        d = Drover(self, "exitcodes")
        d.write_config(
            program("ok", tw("exit", 3, 100), startsecs=0, autorestart="unexpected",
                    exitcodes="0,3"),
            program("bad", tw("exit", 4, 100), startsecs=0, autorestart="unexpected",
                    exitcodes="0,3"))
        d.start()
        ex = d.wait_state("ok", "EXITED", 5)
        self.assertIn("not restarted", ex.get("reason", ""), d.context())
        exits = d.events_named("exit", worker="ok")
        self.assertEqual([e.get("expected") for e in exits], ["true"], d.context())
        # bad restarts: its exit 4 is unexpected
        first = d.wait_event(lambda e: e.get("event") == "exit" and e.get("worker") == "bad",
                             5, what="bad's first exit")
        self.assertEqual(first.get("expected"), "false", d.context())
        d.wait_state("bad", "STARTING", 5, d.snapshot().index(first))
        d.assert_no_event(is_state("ok"), 0.5, d.mark(), what="restart of an expected exit")
        d.assert_clean_exit(d.stop())

    def test_autostart_false_starts_nothing(self):
        d = Drover(self, "noauto")
        d.write_config(program("idle", tw("sleep"), autostart=False),
                       program("busy", tw("sleep"), startsecs=0))
        d.start()
        d.wait_state("busy", "RUNNING")
        d.assert_no_event(is_state("idle"), 0.5, what="a state change of an autostart=false "
                          "program")
        self.assertEqual(len(d.marked_procs()), 1, "only busy runs")
        d.assert_clean_exit(d.stop())

    def test_worker_gets_directory_environment_and_supervisor_vars(self):
        d = Drover(self, "env")
        wd = d.path("work dir")
        os.mkdir(wd)
        script = d.path("show.sh")
        with open(script, "w") as f:
            f.write('#!/bin/sh\necho "cwd=$(pwd)"\necho "FOO=$FOO"\n'
                    'echo "name=$SUPERVISOR_PROCESS_NAME group=$SUPERVISOR_GROUP_NAME '
                    'enabled=$SUPERVISOR_ENABLED"\nexec sleep 100\n')
        os.chmod(script, 0o755)
        d.write_config(program("show", script, numprocs=2, startsecs=0,
                               directory=wd,
                               environment='FOO="a b,c"'))
        d.start("--tail")
        for w in ("show_00", "show_01"):
            d.wait_output(w, f"cwd={wd}")
            d.wait_output(w, "FOO=a b,c")
            d.wait_output(w, f"name={w} group=show enabled=1")
        d.assert_clean_exit(d.stop())


if __name__ == "__main__":
    unittest.main()
