"""Helpers for the control-plane tests: talk to a drover (started with
harness.Drover) over its unix socket and through `drover ctl`.

    c = Control(d)                      # d: a started harness.Drover
    c.ok("scale", "w", 10)              # one request, must succeed
    c.wait_workers(lambda ws: ..., 10)  # poll `status` with a deadline
    with c.connect() as conn:           # one connection, many requests
        conn.send(b"garbage\\n"); conn.reply()
    p = c.ctl("status")                 # `drover ctl -c CONFIG status`

Everything waits with a deadline and polls; nothing sleeps to synchronise.
"""

import json
import os
import select
import socket
import subprocess
import time

from harness import DROVER_BIN, WAIT, poll


class Conn:
    """One client connection: raw bytes out, reply lines in."""

    def __init__(self, path, timeout=WAIT):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        # a unix socket whose listen backlog is full fails a non-blocking
        # connect with EAGAIN at once: retry until the deadline
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.sock.close()
                    raise TimeoutError(f"connect {path}: backlog full for {timeout}s")
                select.select([], [], [], 0.002)
            except OSError:
                self.sock.close()
                raise
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_request(self, cmd, target=None, arg=None, **extra):
        req = {"cmd": cmd}
        if target is not None:
            req["target"] = target
        if arg is not None:
            req["arg"] = arg
        req.update(extra)
        self.send(json.dumps(req) + "\n")

    def readline(self, timeout=WAIT):
        """The next line (bytes, without its newline); None at EOF. Raises
        TimeoutError if no full line comes within timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply line within {timeout}s (have {self.buf[:200]!r})")
            p = select.poll()
            p.register(self.sock, select.POLLIN)
            if not p.poll(left * 1000):
                continue
            try:
                chunk = self.sock.recv(1 << 16)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.eof = True
                if not self.buf:
                    return None
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def reply(self, timeout=WAIT):
        """The next reply, parsed. Fails loudly on EOF or non-JSON."""
        line = self.readline(timeout)
        if line is None:
            raise EOFError("drover closed the connection instead of replying")
        return json.loads(line)

    def request(self, cmd, target=None, arg=None, timeout=WAIT, **extra):
        self.send_request(cmd, target, arg, **extra)
        return self.reply(timeout)

    def at_eof(self, timeout=5):
        """True if the peer closes within timeout (lines before EOF are dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.readline(max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                return False
            if line is None:
                return True
        return False


class Control:
    """The control plane of one harness.Drover."""

    def __init__(self, d, sock=None):
        self.d = d
        self.test = d.test
        self.sock = sock or os.path.join(d.state_dir, "drover.sock")

    # -- socket --

    def connect(self, timeout=WAIT):
        return Conn(self.sock, timeout)

    def request(self, cmd, target=None, arg=None, timeout=WAIT, **extra):
        """One request on a fresh connection; the parsed reply."""
        with self.connect(timeout) as conn:
            return conn.request(cmd, target, arg, timeout, **extra)

    def ok(self, cmd, target=None, arg=None, **extra):
        r = self.request(cmd, target, arg, **extra)
        self.test.assertIs(r.get("ok"), True,
                           f"{cmd} {target or ''} {'' if arg is None else arg}: {r}\n"
                           + self.d.context())
        return r

    def fails(self, cmd, target=None, arg=None, contains=None, **extra):
        r = self.request(cmd, target, arg, **extra)
        self.test.assertIs(r.get("ok"), False, f"{cmd} {target} {arg} should fail: {r}")
        self.test.assertIsInstance(r.get("error"), str, f"error is a string: {r}")
        if contains:
            self.test.assertIn(contains, r["error"], f"error text of {cmd} {target} {arg}")
        return r

    def status(self, target=None):
        return self.ok("status", target)

    def workers(self, target=None):
        """name -> worker dict, from `status`."""
        return {w["name"]: w for w in self.status(target)["workers"]}

    def wait_workers(self, pred, timeout=WAIT, what="a worker condition"):
        """Poll `status` until pred(workers by name) is true; returns them."""
        seen = {}

        def check():
            nonlocal seen
            seen = self.workers()
            return pred(seen)
        if not poll(check, timeout, interval=0.02):
            table = "\n".join(f"  {n}: {w['state']} pid={w['pid']}" for n, w in seen.items())
            self.test.fail(f"timed out after {timeout}s waiting for {what}; status:\n{table}\n"
                           + self.d.context())
        return seen

    def wait_running(self, names, timeout=WAIT, exact=True):
        """Wait until every worker in names is RUNNING (and, with exact, no
        other worker has a process or is listed as RUNNING)."""
        names = set(names)

        def pred(ws):
            running = {n for n, w in ws.items() if w["state"] == "RUNNING"}
            if not names <= running:
                return False
            if exact:
                live = {n for n, w in ws.items() if w["pid"] is not None}
                return running == names and live == names
            return True
        ws = self.wait_workers(pred, timeout, f"RUNNING = {sorted(names)}"
                               + (" exactly" if exact else ""))
        # The status comes over the socket, the events over drover's stdout
        # through a reader thread, which may lag behind under load. Wait for
        # the RUNNING events too, so that a mark() taken next comes after them
        # and everything logged before them.
        for n in sorted(names):
            pid = str(ws[n]["pid"])
            self.d.wait_event(lambda e: e.get("event") == "state" and e.get("worker") == n
                              and e.get("to") == "RUNNING" and str(e.get("pid")) == pid,
                              timeout, what=f"the event of {n} (pid {pid}) -> RUNNING")
        return ws

    def pids(self, names=None):
        ws = self.workers()
        return {n: w["pid"] for n, w in ws.items() if names is None or n in names}

    # -- drover ctl --

    def ctl(self, *args, json_out=False, timeout=15, config=True, input=None):
        """`drover ctl [-c CONFIG] [--json] ARGS`; the CompletedProcess (text)."""
        cmd = [DROVER_BIN, "ctl"]
        if config:
            cmd += ["-c", self.d.config_path]
        if json_out:
            cmd.append("--json")
        cmd += [str(a) for a in args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=self.d.env(), cwd=self.d.dir, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def ctl_ok(self, *args, json_out=False):
        p = self.ctl(*args, json_out=json_out)
        self.test.assertEqual(p.returncode, 0,
                              f"drover ctl {' '.join(map(str, args))} failed:\n"
                              f"stdout: {p.stdout}\nstderr: {p.stderr}\n" + self.d.context())
        self.test.assertEqual(p.stderr, "", f"drover ctl {args}: nothing on stderr on success")
        return p

    def ctl_fails(self, *args, contains=None):
        """A failing `drover ctl`: non-zero exit, the error on stderr, nothing
        on stdout. Returns the CompletedProcess."""
        p = self.ctl(*args)
        self.test.assertNotEqual(p.returncode, 0,
                                 f"drover ctl {args} should fail; stdout: {p.stdout}")
        self.test.assertEqual(p.stdout, "", f"drover ctl {args}: stdout must be empty on error")
        self.test.assertRegex(p.stderr, r"^drover( ctl)?: ",
                              f"drover ctl {args}: the error on stderr")
        if contains:
            self.test.assertIn(contains, p.stderr, f"drover ctl {args}: stderr")
        return p


# ---- processes ----

def cpu_ticks(pid):
    """utime + stime of pid in clock ticks, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(")") + 2:].split()[0]


NOBODY_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps({"connect": "failed", "errno": e.errno, "error": str(e)}))
    sys.exit(0)
try:
    s.sendall(b'{"cmd":"status"}\n')
except OSError as e:
    pass
data = b""
while True:
    try:
        chunk = s.recv(65536)
    except OSError as e:
        break
    if not chunk:
        break
    data += chunk
print(json.dumps({"connect": "ok", "reply": data.decode(errors="replace")}))
"""


def run_as_nobody(sock_path, env, timeout=15):
    """Run a tiny python client as nobody:nogroup against sock_path.
    Returns the dict it prints: connect=failed with errno, or connect=ok with
    everything drover sent before closing."""
    py = subprocess.run(["sh", "-c", "command -v python3"], capture_output=True,
                        text=True).stdout.strip() or "python3"
    cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", py, "-c",
           NOBODY_CLIENT, sock_path]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                       cwd="/")
    if p.returncode != 0:
        raise RuntimeError(f"client as nobody failed ({p.returncode}): {p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def ignores(pid, sig):
    """True if pid has set sig to SIG_IGN (from /proc/PID/status SigIgn)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigIgn:"):
                    return bool(int(line.split()[1], 16) & (1 << (int(sig) - 1)))
    except OSError:
        pass
    return False
