"""`drover check`: a real supervisord config is accepted; a bad one is refused
with file:line messages.

data/supervisord.conf is the verbatim output of `echo_supervisord_conf`
(supervisor 4.2.5, Debian), stored so CI needs no supervisor package."""

import json
import os
import re
import unittest

from harness import Drover

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "data", "supervisord.conf")

PROGRAMS = """
[program:web]
command = /usr/bin/python3 -m http.server 80%(process_num)02d
process_name = %(program_name)s_%(process_num)02d
numprocs = 2
autorestart = unexpected
exitcodes = 0,2
stopsignal = INT
stopasgroup = true
stdout_logfile = AUTO
stdout_logfile_maxbytes = 1MB
stdout_logfile_backups = 3

[program:cron]
command = /bin/sleep 1000
directory = /tmp
environment = A="1",B="two words"
redirect_stderr = true
startsecs = 0
startretries = 5
"""


class Check(unittest.TestCase):

    def test_echo_supervisord_conf_plus_programs_passes(self):
        d = Drover(self, "check")
        with open(FIXTURE) as f:
            text = f.read()
        self.assertIn("[supervisord]", text, "fixture is echo_supervisord_conf's output")
        path = d.path("supervisord.conf")
        with open(path, "w") as f:
            f.write(text + PROGRAMS)
        r = d.run_other("check", "-c", path)
        self.assertEqual(r.returncode, 0,
                         f"drover check refused a supervisord config\nstdout:\n{r.stdout}\n"
                         f"stderr:\n{r.stderr}")
        for worker in ("web_00", "web_01", "cron"):
            self.assertRegex(r.stdout, rf"\b{worker}\b", f"check must print every worker\n"
                             f"{r.stdout}")
        self.assertNotIn("web_02", r.stdout, "numprocs = 2")
        self.assertEqual(d.marked_procs(), [], "check must not start anything")

    def test_the_demo_config_runs_and_its_task_pool_answers(self):
        """The repo's supervisor.ini (what `make run` starts) checks clean,
        and the README's task commands work on it as written."""
        d = Drover(self, "demo")
        with open(os.path.join(HERE, "..", "..", "supervisor.ini")) as f:
            d.write_config(raw=f.read())
        r = d.run_other("check", "-c", d.config_path)
        self.assertEqual((r.returncode, r.stderr), (0, ""), r.stdout)
        d.start()
        tasks = list(range(1, 101)) + [46341, 1000000]  # squares past 2^31 stay exact
        sub = d.run_other("submit", "-c", d.config_path, "-q", "squares", "-f", "-",
                          input="".join(f"{k}\n" for k in tasks))
        self.assertEqual((sub.returncode, sub.stdout.strip()), (0, str(len(tasks))), sub.stderr)
        wait = d.run_other("ctl", "-c", d.config_path, "wait", "squares")
        self.assertEqual(wait.returncode, 0, wait.stdout + wait.stderr)
        with open(os.path.join(d.state_dir, "squares.jsonl")) as f:
            results = [json.loads(line) for line in f]
        self.assertEqual(sorted((int(x["task"]), int(x["result"])) for x in results),
                         [(k, k * k) for k in tasks])
        d.assert_clean_exit(d.stop())
        d.assert_no_marked_procs()

    def test_bad_config_exits_1_with_file_line_messages(self):
        d = Drover(self, "badcheck")
        path = d.path("bad.ini")
        with open(path, "w") as f:
            f.write("[program:w]\n"           # 1
                    "command = /bin/true\n"   # 2
                    "numprocs = abc\n"        # 3
                    "autostart = maybe\n")    # 4
        r = d.run_other("check", "-c", path)
        self.assertEqual(r.returncode, 1, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        self.assertRegex(r.stderr, re.escape(f'{path}:3: numprocs = "abc": expected ') + ".+",
                         "error names file, line, key, value and what was expected")
        self.assertRegex(r.stderr, re.escape(f'{path}:4: autostart = "maybe": expected ') + ".+",
                         "every error is reported, not only the first")

    def test_drover_refuses_to_run_a_bad_config(self):
        d = Drover(self, "badrun")
        d.write_config(raw="[program:w]\ncommand = /bin/sleep 100\nstartsecs = soon\n")
        d.start(wait_start=False)
        rc = d.wait_exit(15)
        self.assertNotEqual(rc, 0, "drover must not run a bad config\n" + d.context())
        err = "\n".join(d.stderr_lines)
        self.assertIn(f'{d.config_path}:3: startsecs = "soon": expected', err)
        self.assertEqual(d.events_named("state"), [], "no worker may start")
        self.assertEqual(d.marked_procs(), [])

    def test_unknown_key_is_a_warning_event(self):
        d = Drover(self, "warn")
        d.write_config(raw="[program:w]\n"
                       "command = /bin/sleep 100\n"
                       "startsecs = 0\n"
                       "no_such_key = 1\n")
        d.start()
        w = d.wait_event(lambda e: e.get("event") == "config", 5, what="a config warning")
        self.assertEqual(w.get("level"), "warn", w["_raw"])
        self.assertIn(f"{d.config_path}:4:", w.get("message", ""), "warning names file:line")
        self.assertIn("no_such_key", w.get("message", ""), w["_raw"])
        d.wait_state("w", "RUNNING")
        d.assert_clean_exit(d.stop())


if __name__ == "__main__":
    unittest.main()
