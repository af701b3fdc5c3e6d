"""The console, driven in tmux against the real binary.

Each test gets its own tmux server (`tmux -L <unique name>`), a temporary
directory with a config of `sleep` workers, and a drover in a 120x40 pane.
Keys go in with send-keys; the screen comes back with capture-pane; every
wait polls for a condition with a deadline, never a bare sleep. Every
process a test starts carries DROVER_TEST_MARK=<uuid> in its environment,
so teardown finds and kills whatever is left.

Environment: DROVER_BIN (the built drover, a sanitizer build under ctest).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import uuid

DROVER_BIN = os.environ.get("DROVER_BIN", "")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")
DEADLINE = 20.0  # seconds; a sanitizer build starting a pool is slow

CONFIG = """\
[drover]
state_dir = {state}

[program:pool]
command = sleep 100000
numprocs = 3
startsecs = 0

[program:solo]
command = sleep 100000
startsecs = 0
"""


def poll(what, predicate, timeout=DEADLINE, interval=0.05, last=lambda: ""):
    """predicate() until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{last()}")
        time.sleep(interval)


def marked_pids(mark):
    """Processes whose environment carries DROVER_TEST_MARK=mark."""
    needle = f"DROVER_TEST_MARK={mark}".encode()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(name))
        except OSError:
            pass
    return pids


def alive(pid):
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Console(unittest.TestCase):
    cols, rows = 120, 40

    def setUp(self):
        if not DROVER_BIN or not os.access(DROVER_BIN, os.X_OK):
            self.fail(f"DROVER_BIN={DROVER_BIN!r} is not an executable; set it to the built drover")
        if not shutil.which("tmux"):
            self.fail("tmux is not installed")
        self.mark = uuid.uuid4().hex
        self.sock = f"drover-tui-{self.mark[:12]}"
        self.dir = tempfile.mkdtemp(prefix="drover-tui-")
        self.config = os.path.join(self.dir, "supervisor.ini")
        with open(self.config, "w") as f:
            f.write(CONFIG.format(state=os.path.join(self.dir, "state")))
        self.stderr = os.path.join(self.dir, "stderr")
        self.headless = None
        self.addCleanup(self.cleanup)

    def cleanup(self):
        socket = self.tmux("display-message", "-p", "#{socket_path}", check=False).strip()
        self.tmux("kill-server", check=False)
        if socket.endswith(self.sock):
            try:
                os.unlink(socket)  # kill-server leaves the socket file behind
            except OSError:
                pass
        if self.headless and self.headless.poll() is None:
            self.headless.kill()
            self.headless.wait()
        for pid in marked_pids(self.mark):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        problems = []
        for path in (self.stderr, os.path.join(self.dir, "headless.err")):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text = f.read()
                if any(m in text for m in SANITIZER_MARKS):
                    problems.append(f"{path}:\n{text}")
        shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            self.fail("sanitizer findings:\n" + "\n".join(problems))

    # ---- tmux ----

    def tmux(self, *args, check=True):
        r = subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", *args],
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def env(self, **extra):
        env = {"DROVER_TEST_MARK": self.mark, "LC_ALL": "C.UTF-8", "TERM": "screen",
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", ""),
               "UBSAN_OPTIONS": os.environ.get("UBSAN_OPTIONS", "")}
        env.update(extra)
        return " ".join(f"{k}='{v}'" for k, v in env.items())

    def open(self, *args, **env):
        """Run drover ARGS in a fresh pane; the pane stays after it exits."""
        argv = " ".join(f"'{a}'" for a in (DROVER_BIN, *args))
        self.status_file = os.path.join(self.dir, "status")
        command = (f"env {self.env(**env)} {argv} 2>>'{self.stderr}'; "
                   f"echo $? > '{self.status_file}.new'; mv '{self.status_file}.new' "
                   f"'{self.status_file}'")
        self.tmux("new-session", "-d", "-x", str(self.cols), "-y", str(self.rows),
                  "sh", "-c", command, ";", "set-option", "-w", "remain-on-exit", "on",
                  ";", "set-option", "status", "off")  # the pane gets every row

    def screen(self, escapes=False):
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []))

    def history(self):
        """The screen and what scrolled off it (the last lines a program
        prints after leaving curses land at the bottom and scroll)."""
        return self.tmux("capture-pane", "-p", "-S", "-")

    def keys(self, *keys):
        self.tmux("send-keys", *keys)

    def type(self, text):
        self.tmux("send-keys", "-l", text)

    def wait_history(self, what, *texts, timeout=DEADLINE):
        """Poll the history until it holds every text. The exit status file
        can be written before tmux has read drover's last bytes from the
        pty: tmux reads its panes when it is scheduled, not when the
        program writes."""
        return poll(what, lambda: all(t in self.history() for t in texts), timeout,
                    last=lambda: "history:\n" + self.history())

    def wait_screen(self, what, predicate, timeout=DEADLINE):
        def check():
            return predicate(self.screen())
        return poll(what, check, timeout, last=lambda: "screen:\n" + self.screen())

    def exit_status(self):
        """None while drover runs in the pane, then its exit status (the
        shell around it writes it to a file: tmux's own pane_dead_status is
        sometimes left empty)."""
        try:
            with open(self.status_file) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    # ---- drover ----

    def ctl(self, *args):
        r = subprocess.run([DROVER_BIN, "ctl", "-c", self.config, "--json", *args],
                           capture_output=True, text=True, env={**os.environ,
                                                                  "DROVER_TEST_MARK": self.mark})
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def workers(self):
        status = self.ctl("status")
        return {w["name"]: w for w in status["workers"]} if status else {}

    def wait_running(self, names):
        def ready():
            ws = self.workers()
            return ws if all(ws.get(n, {}).get("state") == "RUNNING" for n in names) else None
        return poll(f"{names} RUNNING", ready, last=lambda: json.dumps(self.workers(), indent=1))

    @staticmethod
    def row(screen, name, group=False):
        """The table row of a worker (or of a group: its first column is a
        fold mark), split into words, or None. Only below the column titles:
        the header's group summaries start with the group's name too."""
        lines = screen.splitlines()
        start = next((i for i, l in enumerate(lines) if l.split()[:2] == ["NAME", "PID"]), None)
        if start is None:
            return None
        for line in lines[start + 1:]:
            words = line[1:].split()
            if words and words[0] == name and (line[:1] in "\u25be\u25b8+-") == group:
                return words
        return None

    def start_console(self):
        self.open("-c", self.config)
        ws = self.wait_running(["pool_00", "pool_01", "pool_02", "solo"])
        # the table shows every worker with the PID that drover reports
        self.wait_screen("every worker with its PID", lambda s: all(
            (self.row(s, n) or [None, None])[1] == str(w["pid"]) for n, w in ws.items()))
        return ws

    def select(self, name):
        """Put the cursor on a row with the console's own search (F3): the
        keys that follow act on it, as drover reads keys in order."""
        self.keys("F3")
        self.type(name)
        self.wait_screen(f"the search for {name}", lambda s: f"Search: {name}" in s)
        self.keys("Enter")

    # ---- the tests ----

    def test_table_shows_configured_workers_with_pids(self):
        self.start_console()
        # start_console saw the rows; the footer below them may come in a
        # later write of the same frame, so it is waited for, not assumed
        self.wait_screen("the column titles and the footer", lambda s: "F10Quit" in s and all(
            c in s for c in ("NAME", "PID", "STATE", "CPU%", "MEM", "UPTIME")))

    def test_grow_adds_a_row(self):
        self.start_console()
        self.select("pool_01")
        self.keys("+")
        self.wait_screen("the scale result in the status line",
                         lambda s: "pool: 3 \u2192 4 workers" in s)
        ws = self.wait_running(["pool_03"])
        self.wait_screen("pool_03 with its PID",
                         lambda s: (self.row(s, "pool_03") or [None, None])[1]
                         == str(ws["pool_03"]["pid"]))
        self.keys("F7")  # and shrink back
        self.wait_screen("the row gone", lambda s: self.row(s, "pool_03") is None)

    def test_pause_and_resume(self):
        self.start_console()
        self.select("pool_01")
        self.keys("p")
        self.wait_screen("pool_01 PAUSED", lambda s: (self.row(s, "pool_01") or [])[2:3]
                         == ["PAUSED"])
        self.assertEqual(self.workers()["pool_01"]["state"], "PAUSED")
        self.keys("p")
        self.wait_screen("pool_01 RUNNING again",
                         lambda s: (self.row(s, "pool_01") or [])[2:3] == ["RUNNING"])
        self.assertEqual(self.workers()["pool_01"]["state"], "RUNNING")

    def test_terminate(self):
        ws = self.start_console()
        self.select("pool_02")
        self.keys("t")
        self.wait_screen("pool_02 STOPPED", lambda s: (self.row(s, "pool_02") or [])[2:3]
                         == ["STOPPED"])
        self.assertEqual(self.workers()["pool_02"]["state"], "STOPPED")
        poll("the old process gone", lambda: not alive(ws["pool_02"]["pid"]))
        self.keys("s")
        self.wait_running(["pool_02"])

    def test_group_action_asks_first(self):
        self.start_console()
        self.keys("Home")  # the pool's group row
        self.wait_screen("the group row", lambda s: self.row(s, "pool", group=True) is not None)
        self.keys("t")
        self.wait_screen("the confirmation", lambda s: "Stop all 3 workers of pool?" in s)
        self.keys("Escape")
        self.wait_screen("cancelled", lambda s: "cancelled" in s)
        self.assertEqual(self.workers()["pool_00"]["state"], "RUNNING")

    def test_filter(self):
        self.start_console()
        self.keys("/")
        self.type("sol")
        self.wait_screen("only solo", lambda s: self.row(s, "solo") is not None
                         and self.row(s, "pool_00") is None and "Filter: sol" in s)
        self.keys("Enter")
        self.wait_screen("the filter kept", lambda s: "filter 'sol'" in s
                         and self.row(s, "pool_00") is None)
        self.keys("Escape")
        self.wait_screen("everything back", lambda s: self.row(s, "pool_00") is not None)

    def test_resize_to_80x24_keeps_the_layout(self):
        ws = self.start_console()
        self.tmux("resize-window", "-x", "80", "-y", "24")
        self.assertEqual(self.tmux("list-panes", "-F", "#{pane_width}x#{pane_height}").strip(),
                         "80x24")

        def laid_out(s):
            lines = s.splitlines()
            header = next((l for l in lines if l.lstrip().startswith("NAME")), "")
            return (len(lines) == 24 and all(len(l) <= 80 for l in lines)
                    and all(c in header for c in ("PID", "STATE", "CPU%", "MEM", "UPTIME"))
                    and all((self.row(s, n) or [None, None])[1] == str(w["pid"])
                            for n, w in ws.items())
                    and "F10Quit" in s)
        self.wait_screen("the 80x24 layout", laid_out)
        self.tmux("resize-window", "-x", "30", "-y", "10")
        self.wait_screen("too small", lambda s: "terminal too small" in s)
        self.tmux("resize-window", "-x", "120", "-y", "40")
        self.wait_screen("back", lambda s: "F10Quit" in s and self.row(s, "solo"))

    def test_help_and_theme(self):
        self.start_console()
        self.keys("F1")
        self.wait_screen("the help", lambda s: "every key" in s and "pause (SIGSTOP)" in s)
        self.keys("Escape")
        self.wait_screen("the help closed", lambda s: "every key" not in s)
        self.keys("T")
        self.wait_screen("the next theme", lambda s: re.search(r"theme (?!default)\S+", s))

    def test_no_color_draws_attributes_only(self):
        self.open("-c", self.config, NO_COLOR="1")
        self.wait_running(["solo"])
        self.wait_screen("the table", lambda s: self.row(s, "solo") is not None)
        screen = self.screen(escapes=True)
        colours = re.findall(r"\x1b\[[0-9;]*(?:3[0-7]|4[0-7]|38;5;\d+|48;5;\d+)m", screen)
        self.assertEqual(colours, [], "colour escapes with NO_COLOR")
        # the selection (and the column titles) in reverse video
        self.assertRegex(screen, r"\x1b\[(?:[0-9]+;)*7m")

    def test_dumb_terminal_gets_one_line(self):
        self.open("-c", self.config, TERM="dumb")
        poll("drover to exit", lambda: self.exit_status() is not None, last=self.screen)
        self.assertEqual(self.exit_status(), 2)
        with open(self.stderr) as f:
            err = f.read()
        self.assertIn("drover ctl top", err)
        self.assertIn("--headless", err)
        self.assertEqual(marked_pids(self.mark), [])

    def test_attach_shows_the_same_workers(self):
        with open(os.path.join(self.dir, "headless.err"), "w") as err:
            self.headless = subprocess.Popen(
                [DROVER_BIN, "-c", self.config, "--headless"], stdout=subprocess.DEVNULL,
                stderr=err, env={**os.environ, "DROVER_TEST_MARK": self.mark})
        ws = self.wait_running(["pool_00", "pool_01", "pool_02", "solo"])
        self.open("attach", "-c", self.config)
        self.wait_screen("the attached console", lambda s: "(attached)" in s and all(
            (self.row(s, n) or [None, None])[1:3] == [str(w["pid"]), w["state"]]
            for n, w in ws.items()))
        self.select("pool_02")
        self.keys("p")  # the same keys work over the socket
        poll("pool_02 PAUSED", lambda: self.workers()["pool_02"]["state"] == "PAUSED")
        self.keys("q")
        poll("attach to leave", lambda: self.exit_status() is not None, last=self.screen)
        self.assertEqual(self.exit_status(), 0)
        self.wait_history("attach's goodbye", "drover keeps running")
        self.assertIsNone(self.headless.poll())
        self.assertEqual(set(self.workers()), set(ws))
        self.ctl("shutdown")
        self.assertEqual(self.headless.wait(timeout=DEADLINE), 0)

    def test_quit_leaves_no_process(self):
        ws = self.start_console()
        drover_pid = self.ctl("status")["pid"]
        self.keys("q")
        self.wait_screen("the quit confirmation", lambda s: "Quit drover?" in s)
        self.keys("Enter")
        poll("drover to exit", lambda: self.exit_status() is not None, last=self.screen)
        self.assertEqual(self.exit_status(), 0)
        self.wait_history("drover's last lines", "drover: stopping 4 workers (console:quit)",
                          "drover: stopped")
        self.assertFalse(alive(drover_pid))
        for name, w in ws.items():
            self.assertFalse(alive(w["pid"]), f"{name} ({w['pid']}) is still alive")
        self.assertEqual([p for p in marked_pids(self.mark) if alive(p)], [])


if __name__ == "__main__":
    unittest.main()
