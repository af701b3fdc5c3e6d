"""Drive the real drover binary from unittest.

A Drover object owns one temporary directory, one config and one drover
process. A reader thread parses every line drover writes to stdout into a
dict (logfmt, JSON, or a `NAME | line` echo of --tail) and appends it to
`events` under a Condition, so tests wait for conditions with a deadline
instead of sleeping. Every process a test starts carries DROVER_TEST_MARK=<uuid>
in its environment, so teardown can find and kill whatever is left, even
processes that escaped drover.

Environment: DROVER_BIN (the drover binary), DROVER_TESTWORKER (the built
tests/helpers/testworker.c).
"""

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

DROVER_BIN = os.environ.get("DROVER_BIN", "")
TESTWORKER = os.environ.get("DROVER_TESTWORKER", "")

# The default deadline of every wait for a condition. A wait returns as
# soon as its condition holds, so a long one costs nothing when the test
# passes; it only spares a slow or loaded machine (CI under ASan) a false
# failure. A test that asserts a bound on time passes its own.
WAIT = 30

# Sanitizer findings in drover's stderr fail the test that saw them.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


def require_binaries(test):
    """Skip-proof check: a missing binary is a failure with a reason, not a skip."""
    for name, path in (("DROVER_BIN", DROVER_BIN), ("DROVER_TESTWORKER", TESTWORKER)):
        if not path or not os.access(path, os.X_OK):
            test.fail(f"{name}={path!r} is not an executable; set it to the built binary")


def tw(*args):
    """A testworker command line."""
    return " ".join([TESTWORKER] + [str(a) for a in args])


# ---- line parsing ----

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def parse_logfmt(line):
    """key=value pairs; values may be "quoted" with \\" \\\\ \\n \\r \\t \\uXXXX escapes."""
    out = {}
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        if i >= n:
            break
        eq = line.find("=", i)
        sp = line.find(" ", i)
        if eq < 0 or (0 <= sp < eq):
            # a bare word without a value
            end = n if sp < 0 else sp
            out[line[i:end]] = True
            i = end
            continue
        key = line[i:eq]
        i = eq + 1
        if i < n and line[i] == '"':
            i += 1
            buf = []
            while i < n and line[i] != '"':
                c = line[i]
                if c == "\\" and i + 1 < n:
                    nxt = line[i + 1]
                    if nxt == "u" and i + 5 < n:
                        buf.append(chr(int(line[i + 2:i + 6], 16)))
                        i += 6
                        continue
                    buf.append(_ESCAPES.get(nxt, nxt))
                    i += 2
                    continue
                buf.append(c)
                i += 1
            if i >= n:
                raise ValueError(f"unterminated quoted value for {key!r}")
            i += 1  # closing quote
            out[key] = "".join(buf)
        else:
            end = line.find(" ", i)
            if end < 0:
                end = n
            out[key] = line[i:end]
            i = end
    return out


def parse_ts(ts):
    """2026-11-22T10:00:00.123Z -> seconds since the epoch (float)."""
    dt = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


_TAIL = re.compile(r"^(\S+) \| (.*)$", re.S)


def parse_line(line):
    """One stdout line of drover -> dict. Always has 'event' and '_raw'."""
    ev = None
    try:
        if line.startswith("{"):
            ev = json.loads(line)
            ev["_format"] = "json"
        elif line.startswith("ts="):
            ev = parse_logfmt(line)
            ev["_format"] = "logfmt"
        else:
            m = _TAIL.match(line)
            if m:
                ev = {"event": "output", "worker": m.group(1), "line": m.group(2),
                      "_format": "tail"}
    except ValueError as exc:
        ev = {"event": "_unparsed", "_error": str(exc)}
    if ev is None or not isinstance(ev, dict):
        ev = {"event": "_unparsed", "_error": "not logfmt, JSON or a tail line"}
    ev["_raw"] = line
    ev["_t"] = time.monotonic()
    if isinstance(ev.get("ts"), str):
        try:
            ev["_ts"] = parse_ts(ev["ts"])
        except ValueError:
            pass
    return ev


# ---- /proc helpers ----

def read_stat(pid):
    """(state, ppid) of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    return rest[0], int(rest[1])


def children_of(pid):
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def descendants_of(pid):
    seen, todo = [], [pid]
    while todo:
        for c in children_of(todo.pop()):
            if c not in seen:
                seen.append(c)
                todo.append(c)
    return seen


def has_marker(pid, marker):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return False
    return f"DROVER_TEST_MARK={marker}".encode() in env.split(b"\0")


def procs_with_marker(marker):
    """Live (non-zombie) processes whose environment holds the marker."""
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        st = read_stat(pid)
        if st and st[0] != "Z" and has_marker(pid, marker):
            out.append(pid)
    return out


def alive(pid):
    """True if pid exists and is not a zombie."""
    st = read_stat(pid)
    return st is not None and st[0] != "Z"


def zombies_of(pid):
    """Zombie children of pid: state Z in /proc/*/stat with ppid = pid."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st and st[0] == "Z" and st[1] == pid:
                out.append(int(name))
    return out


def fd_list(pid):
    out = {}
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
    except OSError:
        pass
    return out


def describe(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = "?"
    st = read_stat(pid)
    return f"{pid} [{st[0] if st else 'gone'} ppid={st[1] if st else '?'}] {cmd}"


def poll(pred, timeout, interval=0.01):
    """Call pred until it returns something truthy or the deadline passes.
    Returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ---- config ----

def program(name, command, **keys):
    """A [program:NAME] section. Keys are written in order; True/False as
    true/false. The test marker is added to `environment` by Drover."""
    lines = [f"[program:{name}]", f"command = {command}"]
    for k, v in keys.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"


class Drover:
    """One drover under test. Construct with the TestCase: cleanup is
    registered at once, so nothing leaks even when the test fails."""

    def __init__(self, test, name="drover"):
        require_binaries(test)
        self.test = test
        self.marker = uuid.uuid4().hex
        self.dir = tempfile.mkdtemp(prefix=f"drover-it-{name}-")
        self.config_path = os.path.join(self.dir, "supervisor.ini")
        self.state_dir = os.path.join(self.dir, ".drover")
        self.proc = None
        self.events = []
        self.stderr_lines = []
        self.cond = threading.Condition()
        self.threads = []
        self.returncode = None
        self.others = []  # extra processes a test started (second drover ...)
        test.addCleanup(self.cleanup)

    # -- set-up --

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def log_path(self, worker, stream="stdout"):
        return os.path.join(self.state_dir, "logs", f"{worker}-{stream}.log")

    def write_config(self, *sections, drover=None, raw=None):
        """Write the config: program sections (from program()) get the
        marker in their environment. `drover` is a dict of [drover] keys."""
        text = []
        if drover:
            text.append("[drover]\n" + "".join(f"{k} = {v}\n" for k, v in drover.items()))
        for s in sections:
            text.append(self._mark(s))
        if raw:
            text.append(raw)
        with open(self.config_path, "w") as f:
            f.write("\n".join(text))
        return self.config_path

    def _mark(self, section):
        mark = f'DROVER_TEST_MARK="{self.marker}"'
        lines = section.rstrip("\n").split("\n")
        for i, line in enumerate(lines):
            if re.match(r"\s*environment\s*=", line):
                lines[i] = line.rstrip() + "," + mark
                break
        else:
            lines.append(f"environment = {mark}")
        return "\n".join(lines) + "\n"

    def env(self):
        env = dict(os.environ)
        env["DROVER_TEST_MARK"] = self.marker
        return env

    def start(self, *args, wait_start=True, ignore=(), block=(), pass_fds=()):
        """Start drover -c CONFIG ARGS and (by default) wait for its start
        event. `ignore`/`block`: signals drover starts with ignored/blocked;
        `pass_fds`: fds it inherits (to check that workers do not)."""
        cmd = [DROVER_BIN, "-c", self.config_path, *args]

        def pre():
            for sig in ignore:
                signal.signal(sig, signal.SIG_IGN)
            if block:
                signal.pthread_sigmask(signal.SIG_BLOCK, block)

        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=self.env(), cwd=self.dir,
                                     preexec_fn=pre if (ignore or block) else None,
                                     pass_fds=pass_fds)
        self.pid = self.proc.pid
        for stream, sink in ((self.proc.stdout, self._add_event),
                             (self.proc.stderr, self._add_stderr)):
            t = threading.Thread(target=self._read, args=(stream, sink), daemon=True)
            t.start()
            self.threads.append(t)
        if wait_start:
            self.wait_event(lambda e: e.get("event") == "start", 15,
                            what="drover's start event")
        return self

    def run_other(self, *args, timeout=15, input=None):
        """Run another drover (same binary, same env) to completion; input,
        if given, is its stdin."""
        stdin = {} if input is not None else {"stdin": subprocess.DEVNULL}
        p = subprocess.run([DROVER_BIN, *args], capture_output=True, text=True,
                           env=self.env(), cwd=self.dir, timeout=timeout, input=input,
                           **stdin)
        return p

    def _read(self, stream, sink):
        for raw in iter(stream.readline, b""):
            sink(raw.rstrip(b"\n"))
        stream.close()

    def _add_event(self, raw):
        try:
            line, utf8 = raw.decode("utf-8"), True
        except UnicodeDecodeError:
            line, utf8 = raw.decode("utf-8", errors="replace"), False
        ev = parse_line(line)
        if not utf8:
            ev["_bad_utf8"] = raw
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def _add_stderr(self, raw):
        line = raw.decode("utf-8", errors="replace")
        with self.cond:
            self.stderr_lines.append(line)
            self.cond.notify_all()

    # -- looking at events --

    def snapshot(self):
        with self.cond:
            return list(self.events)

    def mark(self):
        """Index to pass as `after` to wait for events that come later."""
        with self.cond:
            return len(self.events)

    def events_named(self, name, **fields):
        return [e for e in self.snapshot() if e.get("event") == name and
                all(str(e.get(k)) == str(v) for k, v in fields.items())]

    def states(self, worker):
        return [e for e in self.events_named("state", worker=worker)]

    def context(self, n=25):
        """What was seen, for failure messages."""
        evs = self.snapshot()
        with self.cond:
            err = list(self.stderr_lines[-15:])
        rc = self.proc.poll() if self.proc else None
        lines = [f"drover pid={getattr(self, 'pid', None)} returncode={rc}",
                 f"last {min(n, len(evs))} of {len(evs)} events:"]
        lines += ["  " + e["_raw"] for e in evs[-n:]]
        if err:
            lines.append("stderr (tail):")
            lines += ["  " + l for l in err]
        return "\n".join(lines)

    def wait_event(self, pred, timeout=WAIT, after=0, what=None):
        """The first event at index >= after for which pred(event) is true,
        waiting up to timeout seconds; fails the test with what was seen."""
        deadline = time.monotonic() + timeout
        i = after
        with self.cond:
            while True:
                while i < len(self.events):
                    e = self.events[i]
                    i += 1
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if self.proc and self.proc.poll() is not None and \
                        not any(t.is_alive() for t in self.threads[:1]):
                    break  # drover is gone and its output fully read
                self.cond.wait(min(left, 0.05))
        self.test.fail(f"timed out after {timeout}s waiting for {what or 'an event'}\n"
                       + self.context())

    def assert_no_event(self, pred, within, after=0, what=None):
        """Fail if an event matching pred shows up within `within` seconds."""
        deadline = time.monotonic() + within
        i = after
        with self.cond:
            while True:
                while i < len(self.events):
                    e = self.events[i]
                    i += 1
                    if pred(e):
                        self.test.fail(f"unexpected {what or 'event'}: {e['_raw']}\n"
                                       + self.context())
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(min(left, 0.05))

    def wait_state(self, worker, state, timeout=WAIT, after=0):
        return self.wait_event(
            lambda e: e.get("event") == "state" and e.get("worker") == worker
            and e.get("to") == state, timeout, after, what=f"{worker} -> {state}")

    def wait_output(self, worker, text, timeout=WAIT, after=0):
        return self.wait_event(
            lambda e: e.get("event") == "output" and e.get("worker") == worker
            and text in str(e.get("line")), timeout, after,
            what=f"output {text!r} from {worker}")

    def pid_of(self, worker):
        """The pid of worker's current process, from its last state event
        (None when that state has no process)."""
        states = self.states(worker)
        if states and "pid" in states[-1]:
            return int(states[-1]["pid"])
        return None

    def pids_of(self, worker):
        """Every pid worker has had, in order."""
        out = []
        for e in self.states(worker):
            if "pid" in e and int(e["pid"]) not in out:
                out.append(int(e["pid"]))
        return out

    # -- processes --

    def marked_procs(self):
        return [p for p in procs_with_marker(self.marker) if p != self.pid]

    def fd_count(self):
        return len(fd_list(self.pid))

    def assert_no_marked_procs(self, timeout=WAIT, what="after drover exited"):
        left = poll(lambda: not self.marked_procs(), timeout)
        if not left:
            procs = self.marked_procs()
            self.test.fail(f"{len(procs)} process(es) left {what}:\n" +
                           "\n".join("  " + describe(p) for p in procs) + "\n" + self.context())

    # -- stopping --

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=20):
        """Wait for drover to exit and its output to be read; returns the code."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.test.fail(f"drover did not exit within {timeout}s\n" + self.context())
        for t in self.threads:
            t.join(5)
        return self.returncode

    def stop(self, timeout=20):
        """SIGTERM and wait; returns drover's exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def assert_clean_exit(self, rc):
        self.test.assertEqual(rc, 0, "drover's exit code\n" + self.context())
        evs = self.snapshot()
        self.test.assertTrue(evs, "drover wrote nothing")
        self.test.assertEqual(evs[-1].get("event"), "stopped",
                              "the last line drover writes must be `stopped`\n" + self.context())

    def sanitizer_findings(self):
        with self.cond:
            return [l for l in self.stderr_lines if any(m in l for m in SANITIZER_MARKS)]

    def cleanup(self):
        """Kill whatever is left (drover, workers, escaped grandchildren),
        fail on sanitizer findings, remove the temp dir."""
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
            for _ in range(50):
                procs = self.marked_procs()
                if not procs:
                    break
                for p in procs:
                    try:
                        if has_marker(p, self.marker):
                            os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.02)
            for t in self.threads:
                t.join(5)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        found = self.sanitizer_findings()
        if found:
            with self.cond:
                err = "\n".join(self.stderr_lines[-60:])
            raise AssertionError("sanitizer report in drover's stderr:\n" + err)
