"""`drover map`: the one-shot pool over stdin/stdout, against the real binary.
Its output with --ordered equals the worker command run directly; without
it, the same lines in some order; crashed workers are restarted and their
tasks retried, and the exit code says whether tasks ended dead; --json;
stdin is read only as fast as the pool works (back-pressure); a pool whose
command cannot run ends at once with exit 2.

Environment: DROVER_BIN, DROVER_TASKWORKER (examples/square.c)."""

import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import DROVER_BIN, poll

TASKWORKER = os.environ.get("DROVER_TASKWORKER", "")
MAWK_PROG = "{print $1*$1; fflush()}"


class Map(unittest.TestCase):

    def setUp(self):
        for name, path in (("DROVER_BIN", DROVER_BIN), ("DROVER_TASKWORKER", TASKWORKER)):
            if not path or not os.access(path, os.X_OK):
                self.fail(f"{name}={path!r} is not an executable; set it to the built binary")
        self.dir = tempfile.mkdtemp(prefix="drover-it-map-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.procs = []
        self.addCleanup(self.kill_procs)

    def kill_procs(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, lines):
        path = self.path(name)
        with open(path, "w") as f:
            f.write("".join(f"{x}\n" for x in lines))
        return path

    def map(self, args, stdin_path=None, input_bytes=None, timeout=120):
        """Run `drover map ARGS` with stdin from a regular file or from a
        pipe; returns (rc, stdout bytes, stderr text)."""
        cmd = [DROVER_BIN, "map", *args]
        if stdin_path is not None:
            with open(stdin_path, "rb") as f:
                p = subprocess.run(cmd, stdin=f, capture_output=True, timeout=timeout,
                                   cwd=self.dir)
        else:
            p = subprocess.run(cmd, input=input_bytes, capture_output=True, timeout=timeout,
                               cwd=self.dir)
        err = p.stderr.decode(errors="replace")
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            self.assertNotIn(mark, err, "sanitizer report from drover map")
        return p.returncode, p.stdout, err

    def test_ordered_equals_mawk(self):
        """`drover map --ordered` through 2 mawk workers gives, byte for
        byte, what mawk gives run directly, for 1e5 mixed lines (numbers,
        negatives, decimals, words, blanks, spaces, UTF-8), from a regular
        file and from a pipe."""
        rnd = random.Random(5)
        pool = ["", "  ", "abc", "-7", "3.5", "1e3", "12 34", "\u00e9t\u00e9", "0x10", "+4",
                "  9  ", "\t2"]
        lines = [str(rnd.randint(-10**6, 10**6)) if rnd.random() < 0.9 else rnd.choice(pool)
                 for _ in range(100_000)]
        src = self.write("in.txt", lines)
        direct = subprocess.run(["mawk", "{print $1*$1}", src], capture_output=True,
                                check=True, timeout=60).stdout
        self.assertEqual(direct.count(b"\n"), len(lines))
        args = ["-j", "2", "--ordered", "--", "mawk", "-W", "interactive", MAWK_PROG]
        rc, out, err = self.map(args, stdin_path=src)
        self.assertEqual(rc, 0, err[-2000:])
        self.assertEqual(out.count(b"\n"), len(lines), "one result per line, blanks too")
        self.assertTrue(out == direct, "map --ordered (file) differs from mawk")
        with open(src, "rb") as f:
            data = f.read()
        rc, out, err = self.map(args, input_bytes=data)
        self.assertEqual(rc, 0, err[-2000:])
        self.assertTrue(out == direct, "map --ordered (pipe) differs from mawk")

    def test_unordered_same_lines(self):
        """Without --ordered: every result once, in some order, with the C
        example worker (1e5 tasks)."""
        n = 100_000
        src = self.write("in.txt", range(1, n + 1))
        rc, out, err = self.map(["-j", "2", "--", TASKWORKER], stdin_path=src)
        self.assertEqual(rc, 0, err[-2000:])
        got = sorted(int(x) for x in out.split())
        self.assertEqual(got, [k * k for k in range(1, n + 1)])

    def test_crashes_retried_dead_exit_1(self):
        """A worker that dies on every 50th task: it is restarted, the tasks
        behind the poison one are retried, the poison ones end dead after
        --retries (reported on stderr), the rest come out in order, and the
        exit code is 1."""
        n = 1000
        rc, out, err = self.map(["-j", "2", "--ordered", "--retries", "1", "--", TASKWORKER,
                                 "--crash-every", "50"], input_bytes=
                                "".join(f"{k}\n" for k in range(1, n + 1)).encode())
        self.assertEqual(rc, 1, err[-2000:])
        want = [k * k for k in range(1, n + 1) if k % 50]
        self.assertEqual([int(x) for x in out.split()], want)
        failed = sorted(int(line.split()[3]) for line in err.splitlines()
                        if line.startswith("drover map: task ") and " failed: " in line)
        self.assertEqual(failed, list(range(50, n + 1, 50)), err[-2000:])
        self.assertRegex(err, r"task 50 failed: worker map_0\d died: exit:3")

    def test_all_good_exit_0_and_retry_recovers(self):
        """Crashes that a retry cures (the worker dies after every 300
        answers, so a task it held is retried elsewhere) cost nothing: every
        result, exit 0."""
        n = 3000
        rc, out, err = self.map(["-j", "2", "--ordered", "--", TASKWORKER, "--exit-after",
                                 "300"], input_bytes="".join(f"{k}\n" for k in
                                                            range(1, n + 1)).encode())
        self.assertEqual(rc, 0, err[-2000:])
        self.assertEqual([int(x) for x in out.split()], [k * k for k in range(1, n + 1)])
        self.assertNotIn("failed", err)

    def test_json(self):
        """--json: tasks are JSON values, answers come back in any order (the
        worker reverses each burst) and --ordered puts them back in input
        order; an error answer makes the task dead (exit 1)."""
        n = 2000
        data = "".join(f"{k}\n" for k in range(1, n + 1)).encode()
        rc, out, err = self.map(["-j", "2", "--json", "--ordered", "--", TASKWORKER, "--json",
                                 "--reverse"], input_bytes=data)
        self.assertEqual(rc, 0, err[-2000:])
        self.assertEqual([int(x) for x in out.split()], [k * k for k in range(1, n + 1)])
        rc, out, err = self.map(["-j", "2", "--json", "--ordered", "--retries", "0", "--",
                                 TASKWORKER, "--json", "--error-every", "100"],
                                input_bytes=data)
        self.assertEqual(rc, 1)
        self.assertEqual([int(x) for x in out.split()],
                         [k * k for k in range(1, n + 1) if k % 100])
        self.assertEqual(err.count("drover map: task "), n // 100)
        # a line that is not JSON is refused (stderr, exit 1), the rest run
        rc, out, err = self.map(["-j", "1", "--json", "--", TASKWORKER, "--json"],
                                input_bytes=b"2\n{oops\n3\n")
        self.assertEqual(rc, 1)
        self.assertEqual(sorted(int(x) for x in out.split()), [4, 9])
        self.assertIn("stdin line 2", err)

    def test_command_cannot_run_exit_2(self):
        """A command that cannot be executed: map says so and exits 2 at once
        instead of waiting for tasks that can never run."""
        t0 = time.monotonic()
        rc, out, err = self.map(["-j", "2", "--", "/nonexistent/worker"], input_bytes=b"1\n2\n",
                                timeout=30)
        self.assertEqual(rc, 2, err[-2000:])
        self.assertIn("cannot run", err)
        self.assertEqual(out, b"")
        self.assertLess(time.monotonic() - t0, 10)

    def test_stdin_back_pressure(self):
        """stdin is read only as fast as the pool works: with a slow worker,
        a writer that has 1e6 lines to give is held back by the pipe, and
        drover map holds a bounded window of tasks, not the whole input."""
        p = subprocess.Popen([DROVER_BIN, "map", "-j", "1", "--", TASKWORKER, "--sleep-ms",
                              "20"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, cwd=self.dir)
        self.procs.append(p)
        written = [0]
        line = b"%07d\n"

        def feed():
            try:
                for k in range(1_000_000):
                    p.stdin.write(line % k)
                    written[0] += 8
                p.stdin.close()
            except (BrokenPipeError, ValueError, OSError):
                pass
        threading.Thread(target=feed, daemon=True).start()
        got = []

        def read():
            for out in p.stdout:
                got.append(out)
        threading.Thread(target=read, daemon=True).start()
        self.assertTrue(poll(lambda: len(got) >= 20, 20), "results are coming")
        # once results flow, the writer is stuck: drover read a window
        # (4096 tasks at least, one 64 KiB read over it) plus what the pipes
        # hold, far from the 8 MB on offer
        stalled = written[0]
        self.assertLess(stalled, 1_000_000, f"{stalled} bytes of stdin consumed")
        self.assertGreater(stalled, 4096 * 8 / 2, "map reads ahead of the results")
        p.terminate()  # a clean stop: drover map removes its temporary directory
        p.wait(15)
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:
                pass

    def peak_rss_mb(self, n, from_file=False):
        """VmHWM of `drover map -j 2 -- taskworker` over n tasks from a pipe
        (or a regular file, which cannot be polled and is read in chunks),
        sampled until it exits (the last samples see the high-water mark)."""
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                     "quarantine_size_mb=1"]))
        data = "".join(f"{k}\n" for k in range(1, n + 1)).encode()
        stdin = subprocess.PIPE
        if from_file:
            path = os.path.join(self.dir, f"tasks-{n}.txt")
            with open(path, "wb") as f:
                f.write(data)
            stdin = open(path, "rb")
            self.addCleanup(stdin.close)
        p = subprocess.Popen([DROVER_BIN, "map", "-j", "2", "--", TASKWORKER],
                             stdin=stdin, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, cwd=self.dir, env=env)
        self.procs.append(p)
        if not from_file:
            threading.Thread(target=lambda: (p.stdin.write(data), p.stdin.close()),
                             daemon=True).start()
        peak = 0
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline:
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]) // 1024)
            except OSError:
                pass
            time.sleep(0.02)
        self.assertEqual(p.wait(10), 0)
        return peak

    def test_memory_does_not_grow_with_the_input(self):
        """A stream needs a window of tasks, not the whole input: map's store
        forgets finished tasks, so 5x the tasks take about the same peak
        RSS (it once grew by ~200 bytes per task: 1e7 tasks, ~2 GB)."""
        for from_file in (False, True):
            with self.subTest(stdin="file" if from_file else "pipe"):
                small = self.peak_rss_mb(100_000, from_file)
                big = self.peak_rss_mb(500_000, from_file)
                self.assertLess(big - small, 20,
                                f"peak RSS {small} MB for 1e5 tasks, {big} MB for 5e5")


if __name__ == "__main__":
    unittest.main()
