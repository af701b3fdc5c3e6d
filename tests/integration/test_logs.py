"""Worker output: log files (AUTO paths, redirect_stderr, rotation), --tail,
and the JSON event format."""

import json
import os
import unittest

from harness import Drover, program, tw, poll


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def lines_of(n, what):
    return [f"{what} line {i}" for i in range(1, n + 1)]


class Logs(unittest.TestCase):

    def test_stdout_and_stderr_land_in_auto_logs(self):
        d = Drover(self, "autologs")
        d.write_config(program("talker", tw("print", 5), startsecs=0,
                               stdout_logfile="AUTO", stderr_logfile="AUTO"))
        d.start()
        out, err = d.log_path("talker", "stdout"), d.log_path("talker", "stderr")
        want_out = "".join(l + "\n" for l in lines_of(5, "out"))
        want_err = "".join(l + "\n" for l in lines_of(5, "err"))
        poll(lambda: read(out) == want_out and read(err) == want_err, 10)
        self.assertEqual(read(out), want_out, f"{out}\n" + d.context())
        self.assertEqual(read(err), want_err, f"{err}\n" + d.context())
        d.assert_clean_exit(d.stop())

    def test_logs_are_auto_by_default(self):
        d = Drover(self, "defaultlogs")
        d.write_config(program("talker", tw("print", 2), startsecs=0))
        d.start()
        out, err = d.log_path("talker", "stdout"), d.log_path("talker", "stderr")
        poll(lambda: read(out) == "out line 1\nout line 2\n" and
             read(err) == "err line 1\nerr line 2\n", 10)
        self.assertEqual(read(out), "out line 1\nout line 2\n", d.context())
        self.assertEqual(read(err), "err line 1\nerr line 2\n", d.context())
        d.assert_clean_exit(d.stop())

    def test_redirect_stderr_merges_into_stdout_log(self):
        d = Drover(self, "redirect")
        d.write_config(program("talker", tw("print", 5), startsecs=0, redirect_stderr=True))
        d.start()
        out, err = d.log_path("talker", "stdout"), d.log_path("talker", "stderr")
        want = sorted(lines_of(5, "out") + lines_of(5, "err"))
        poll(lambda: sorted((read(out) or "").splitlines()) == want, 10)
        self.assertEqual(sorted((read(out) or "").splitlines()), want,
                         f"{out} must hold stdout and stderr\n" + d.context())
        self.assertFalse(os.path.exists(err) and os.path.getsize(err) > 0,
                         f"{err} must stay empty with redirect_stderr")
        d.assert_clean_exit(d.stop())

    def test_rotation_keeps_backups(self):
        d = Drover(self, "rotate")
        n, size, maxbytes = 80, 64, 1024
        d.write_config(program("dripper", tw("drip", n, 10), startsecs=0,
                               stdout_logfile_maxbytes=maxbytes, stdout_logfile_backups=2))
        d.start()
        live = d.log_path("dripper", "stdout")
        last = f"drip {n:06d} "
        ok = poll(lambda: last in (read(live) or ""), 20)
        self.assertTrue(ok, f"line {n} never reached {live}\n" + d.context())
        files = [live + ".2", live + ".1", live]
        for f in files:
            self.assertTrue(os.path.exists(f), f"{f} missing; logs dir has "
                            f"{sorted(os.listdir(os.path.dirname(live)))}")
        self.assertFalse(os.path.exists(live + ".3"),
                         "stdout_logfile_backups = 2 keeps only .1 and .2")
        kept = []
        for f in files:
            text = read(f)
            self.assertGreater(len(text), 0, f"{f} is empty")
            self.assertLessEqual(len(text), maxbytes, f"{f} is over maxbytes")
            self.assertEqual(len(text) % size, 0, f"{f} holds a cut line")
            kept += [int(l.split()[1]) for l in text.splitlines()]
        # oldest backup to live file: consecutive lines ending with the last
        self.assertEqual(kept, list(range(kept[0], n + 1)),
                         f"lines kept across .2, .1 and the live file: {kept}")
        self.assertGreaterEqual(len(kept), 2 * (maxbytes // size),
                                "two full backups' worth of lines at least")
        d.assert_clean_exit(d.stop())

    def test_tail_echoes_worker_lines_with_name(self):
        d = Drover(self, "tail")
        d.write_config(program("talker", tw("print", 3), startsecs=0))
        d.start("--tail")
        for l in lines_of(3, "out") + lines_of(3, "err"):
            e = d.wait_output("talker", l, 10)
            self.assertEqual(e["_raw"], f"talker | {l}", "the --tail line format")
        d.assert_clean_exit(d.stop())
        bad = [e["_raw"] for e in d.snapshot() if e["event"] == "_unparsed"]
        self.assertEqual(bad, [], "every line is an event or a tail line")

    def test_without_tail_no_output_on_stdout(self):
        d = Drover(self, "notail")
        d.write_config(program("talker", tw("print", 3), startsecs=0))
        d.start()
        out, err = d.log_path("talker", "stdout"), d.log_path("talker", "stderr")
        # both streams read by drover before it stops, or a line it would have
        # wrongly echoed may simply not have come yet (and the test pass)
        self.assertTrue(poll(lambda: (read(out) or "").count("\n") == 3 and
                             (read(err) or "").count("\n") == 3, 10),
                        f"talker's 3+3 lines never reached {out} and {err}\n" + d.context())
        d.assert_clean_exit(d.stop())
        self.assertEqual([e["_raw"] for e in d.snapshot() if e.get("_format") != "logfmt"], [],
                         "without --tail stdout holds only logfmt events")

    def test_json_format_is_one_valid_object_per_line(self):
        d = Drover(self, "json")
        d.write_config(program("talker", tw("print", 2), startsecs=0),
                       program("ghost", "nosuch-drover-command", startsecs=0))
        d.start("--log-format", "json", "--tail")
        d.wait_state("ghost", "FATAL")
        d.wait_output("talker", "err line 2")
        d.wait_output("talker", "out line 2")
        d.assert_clean_exit(d.stop())
        evs = d.snapshot()
        for e in evs:
            try:
                obj = json.loads(e["_raw"])
            except ValueError as exc:
                self.fail(f"not JSON ({exc}): {e['_raw']!r}")
            self.assertIsInstance(obj, dict, e["_raw"])
            for k in ("ts", "level", "event"):
                self.assertIn(k, obj, e["_raw"])
        start = d.events_named("start")[0]
        self.assertEqual(start["pid"], d.pid, "start event pid is a JSON number")
        self.assertEqual(start["config"], d.config_path)
        self.assertEqual(start["state_dir"], d.state_dir)
        self.assertEqual(start["programs"], 2)
        st = d.wait_state("talker", "RUNNING")
        self.assertEqual((st["group"], st["from"]), ("talker", "STARTING"), st["_raw"])
        self.assertIsInstance(st["pid"], int, st["_raw"])
        fatal = d.wait_state("ghost", "FATAL")
        self.assertEqual(fatal["reason"],
                         "cannot exec 'nosuch-drover-command': command not found on PATH")
        outs = [(e["stream"], e["line"]) for e in evs if e["event"] == "output"]
        self.assertEqual(sorted(outs), [("stderr", "err line 1"), ("stderr", "err line 2"),
                                        ("stdout", "out line 1"), ("stdout", "out line 2")])
        ex = [e for e in evs if e["event"] == "exit"]
        self.assertTrue(ex and ex[0]["status"] == "signal:TERM" and ex[0]["expected"] is False,
                        f"exit event in JSON: {[e['_raw'] for e in ex]}")
        self.assertEqual(evs[-1]["event"], "stopped")

    def test_json_stays_valid_for_any_worker_output(self):
        """Quotes, backslashes, control characters and bytes that are not
        UTF-8 in a worker's output: every line must still be JSON, and JSON
        text is UTF-8 (RFC 8259 section 8.1)."""
        d = Drover(self, "jsonbytes")
        script = d.path("w.sh")
        with open(script, "wb") as f:
            f.write(b"#!/bin/sh\n"
                    b"printf 'caf\\351 \"q\" \\\\ tab\\there\\001end\\n'\n"
                    b"exec sleep 100\n")
        os.chmod(script, 0o755)
        d.write_config(program("w", script, startsecs=0))
        d.start("--log-format", "json", "--tail")
        e = d.wait_event(lambda e: e.get("event") == "output" or
                         '"event":"output"' in e.get("_raw", ""), 10, what="the worker's line")
        d.assert_clean_exit(d.stop())
        if "_bad_utf8" in e:
            self.fail(f"drover wrote bytes that are not UTF-8 in a JSON line: {e['_bad_utf8']!r}")
        self.assertEqual(e.get("_format"), "json", f"not JSON: {e['_raw']!r}")
        line = e["line"]
        self.assertTrue(line.startswith("caf") and line.endswith(' "q" \\ tab\there\x01end'),
                        f"line as decoded from JSON: {line!r}")

    def test_json_stays_valid_for_a_long_line_of_control_bytes(self):
        """1000 bytes of \\x01 on one line: escaped, that is 6000 characters
        of JSON; the line must still be one complete object."""
        d = Drover(self, "jsonlong")
        script = d.path("w.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nhead -c 1000 /dev/zero | tr '\\000' '\\001'\necho\n"
                    "exec sleep 100\n")
        os.chmod(script, 0o755)
        d.write_config(program("w", script, startsecs=0))
        d.start("--log-format", "json", "--tail")
        d.wait_state("w", "RUNNING")
        d.wait_event(lambda e: "output" in e.get("_raw", ""), 10, what="the worker's line")
        d.assert_clean_exit(d.stop())
        bad = [e["_raw"] for e in d.snapshot() if e.get("_format") != "json"]
        if bad:
            self.fail(f"{len(bad)} line(s) are not JSON; the first ({len(bad[0])} chars) ends "
                      f"{bad[0][-40:]!r}")
        got = "".join(e["line"] for e in d.snapshot() if e["event"] == "output")
        self.assertEqual(got, "\x01" * 1000, "the worker's bytes, decoded from JSON")

    def test_logfmt_quotes_values_that_need_it(self):
        d = Drover(self, "logfmt")
        d.write_config(program("ghost", "nosuch-drover-command", startsecs=0))
        d.start()
        fatal = d.wait_state("ghost", "FATAL")
        self.assertIn('reason="cannot exec \'nosuch-drover-command\': command not found on PATH"',
                      fatal["_raw"], "values with spaces are quoted")
        self.assertIn(" to=FATAL ", fatal["_raw"] + " ", "plain values are bare")
        self.assertEqual(fatal["level"], "error")
        d.assert_clean_exit(d.stop())


if __name__ == "__main__":
    unittest.main()
