"""Reload end to end: only what changed in the config changes in the running
supervisor. Through the socket, `drover ctl reload` and SIGHUP."""

import os
import signal
import unittest

from harness import Drover, program, tw, alive, poll
from ctlutil import Control, ignores


def sleeper(name, n=1, *extra, **keys):
    keys.setdefault("startsecs", 0)
    keys.setdefault("stopasgroup", True)
    return program(name, tw("sleep", *extra), numprocs=n, **keys)


def names(prefix, rng):
    return {f"{prefix}_{i:02d}" for i in rng}


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


class Reload(unittest.TestCase):

    def start(self, *sections, name="reload"):
        d = Drover(self, name)
        d.write_config(*sections)
        d.start()
        return d, Control(d)

    def reply_lists(self, r):
        return {k: sorted(r[k]) for k in ("added", "removed", "changed", "scaled", "unchanged")}

    def test_one_changed_program_restarts_only_its_workers(self):
        d, c = self.start(sleeper("a", 2), sleeper("b", 2), sleeper("solo"))
        before = c.wait_running(names("a", range(2)) | names("b", range(2)) | {"solo"})
        d.write_config(sleeper("a", 2), sleeper("b", 2, "v2"), sleeper("solo"))
        p = c.ctl_ok("reload")
        self.assertEqual(p.stdout, "reloaded: 0 added, 0 removed, 1 changed, 0 scaled, "
                                   "2 unchanged\n")
        after = c.wait_workers(
            lambda ws: all(ws[n]["state"] == "RUNNING" and ws[n]["pid"] not in
                           (None, before[n]["pid"]) for n in names("b", range(2))),
            15, "b_00 and b_01 restarted")
        for n in names("a", range(2)) | {"solo"}:
            self.assertEqual(after[n]["pid"], before[n]["pid"], f"{n} kept its process")
            self.assertEqual(after[n]["restarts"], 0, n)
            self.assertTrue(alive(before[n]["pid"]))
        for n in names("b", range(2)):
            self.assertFalse(alive(before[n]["pid"]), f"old {n} is gone")
            self.assertEqual(cmdline(after[n]["pid"])[1:3], [b"sleep", b"v2"],
                             f"{n} runs the new command")
        ev = d.events_named("reload")[-1]
        self.assertIn("1 changed", ev["message"])
        self.assertEqual(sorted(int(p) for p in d.marked_procs()),
                         sorted(w["pid"] for w in after.values()), "no extra processes")
        d.assert_clean_exit(d.stop())
        d.assert_no_marked_procs()

    def test_only_numprocs_changed_scales_in_place(self):
        d, c = self.start(sleeper("a", 2), sleeper("b", 1))
        before = c.wait_running(names("a", range(2)) | {"b"})
        d.write_config(sleeper("a", 4), sleeper("b", 1))
        r = c.ok("reload")
        self.assertEqual(self.reply_lists(r), {"added": [], "removed": [], "changed": [],
                                               "scaled": ["a"], "unchanged": ["b"]})
        self.assertEqual(r["errors"], [])
        ws = c.wait_running(names("a", range(4)) | {"b"}, 10)
        for n in names("a", range(2)) | {"b"}:
            self.assertEqual(ws[n]["pid"], before[n]["pid"], f"{n} kept its process")
        # and down again: the highest numbers go, the rest stay
        d.write_config(sleeper("a", 2), sleeper("b", 1))
        r = c.ok("reload")
        self.assertEqual(r["scaled"], ["a"])
        ws2 = c.wait_workers(lambda ws: set(ws) == names("a", range(2)) | {"b"}, 10,
                             "a_02, a_03 gone")
        for n in names("a", range(2)) | {"b"}:
            self.assertEqual(ws2[n]["pid"], before[n]["pid"], f"{n} kept its process")
        for n in ("a_02", "a_03"):
            self.assertTrue(poll(lambda: not alive(ws[n]["pid"]), 5), f"{n}'s process gone")
        g = [g for g in c.status()["groups"] if g["name"] == "a"][0]
        self.assertEqual((g["wanted"], g["actual"]), (2, 2))
        d.assert_clean_exit(d.stop())

    def test_adding_and_removing_programs(self):
        d, c = self.start(sleeper("a", 2), sleeper("b", 2), sleeper("gone"))
        before = c.wait_running(names("a", range(2)) | names("b", range(2)) | {"gone"})
        d.write_config(sleeper("a", 2), sleeper("c", 3), sleeper("manual", autostart=False))
        r = c.ok("reload")
        self.assertEqual(self.reply_lists(r),
                         {"added": ["c", "manual"], "removed": ["b", "gone"], "changed": [],
                          "scaled": [], "unchanged": ["a"]})
        want = names("a", range(2)) | names("c", range(3))
        ws = c.wait_workers(lambda ws: set(ws) == want | {"manual"} and
                            all(ws[n]["state"] == "RUNNING" for n in want), 15,
                            "b and gone removed, c running, manual listed")
        self.assertEqual(ws["manual"]["state"], "STOPPED", "autostart=false is not started")
        for n in names("a", range(2)):
            self.assertEqual(ws[n]["pid"], before[n]["pid"], f"{n} kept its process")
        for n in names("b", range(2)) | {"gone"}:
            self.assertTrue(poll(lambda: not alive(before[n]["pid"]), 5), f"{n} stopped")
        st = c.status()
        self.assertEqual(sorted(g["name"] for g in st["groups"]), ["a", "c", "manual"])
        c.fails("stop", "b", contains="no such group or worker 'b'")
        c.ok("start", "manual")
        c.wait_running(want | {"manual"}, 10)
        # a removed program may come back
        d.write_config(sleeper("a", 2), sleeper("c", 3), sleeper("manual", autostart=False),
                       sleeper("b", 2))
        r = c.ok("reload")
        self.assertEqual(r["added"], ["b"])
        c.wait_running(want | {"manual"} | names("b", range(2)), 10)
        d.assert_clean_exit(d.stop())
        d.assert_no_marked_procs()

    def test_readding_a_program_that_is_still_stopping(self):
        """Remove a program whose workers take a while to stop, then add it
        back at once: the new pool runs, the old processes still end."""
        slow = dict(startsecs=0, stopwaitsecs=2, stopasgroup=True)
        d, c = self.start(sleeper("a"), program("b", tw("ignore-term"), numprocs=2, **slow))
        before = c.wait_running({"a"} | names("b", range(2)))
        self.assertTrue(poll(lambda: all(ignores(w["pid"], signal.SIGTERM)
                                         for w in before.values() if w["name"] != "a"), 5))
        d.write_config(sleeper("a"))
        self.assertEqual(c.ok("reload")["removed"], ["b"])
        c.wait_workers(lambda ws: set(ws) == {"a"}, 5, "b no longer addressable")
        d.write_config(sleeper("a"), program("b", tw("ignore-term"), numprocs=2, **slow))
        self.assertEqual(c.ok("reload")["added"], ["b"])
        ws = c.wait_workers(
            lambda ws: set(ws) == {"a"} | names("b", range(2)) and
            all(w["state"] == "RUNNING" and w["pid"] != before[n]["pid"]
                for n, w in ws.items() if n != "a"), 10, "a new b pool RUNNING")
        for n in names("b", range(2)):
            self.assertTrue(poll(lambda: not alive(before[n]["pid"]), 6),
                            f"the old {n} is killed after stopwaitsecs")
        self.assertEqual(c.workers()["a"]["pid"], before["a"]["pid"])
        r = c.ok("stop", "b")
        self.assertEqual(sorted(r["workers"]), sorted(names("b", range(2))),
                         "the target is the new pool only")
        d.assert_clean_exit(d.stop())
        d.assert_no_marked_procs()

    def test_a_broken_config_changes_nothing(self):
        d, c = self.start(sleeper("a", 2), sleeper("b"))
        before = c.wait_running(names("a", range(2)) | {"b"})
        with open(d.config_path) as f:
            good = f.read()
        d.write_config(sleeper("a", 5), sleeper("c"),
                       program("b", tw("sleep"), numprocs="lots", startsecs=0))
        mark = d.mark()
        r = c.request("reload")
        self.assertIs(r["ok"], False, r)
        self.assertTrue(r["error"].startswith("reload refused, nothing changed: "), r["error"])
        self.assertTrue(r["errors"], "the config errors are listed")
        self.assertTrue(any("numprocs" in e and d.config_path in e for e in r["errors"]),
                        f"errors name the key and file: {r['errors']}")
        ev = d.wait_event(lambda e: e.get("event") == "reload", 5, mark, "reload event")
        self.assertEqual(ev["level"], "error")
        self.assertIn("nothing changed", ev["error"])
        # through drover ctl: non-zero, the error and the list on stderr
        p = c.ctl("reload")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertRegex(p.stderr, r"^drover( ctl)?: reload refused, nothing changed")
        self.assertIn("numprocs", p.stderr)
        # nothing changed: same workers, same processes, nothing added
        ws = c.workers()
        self.assertEqual({n: (w["state"], w["pid"]) for n, w in ws.items()},
                         {n: ("RUNNING", w["pid"]) for n, w in before.items()})
        self.assertEqual([e for e in d.snapshot()[mark:]
                          if e.get("event") in ("state", "scale", "exit")], [],
                         "no worker changed state")
        # unreadable and missing configs are refused too
        for breakage in ("[program:x\ncommand = x\n", None):
            with self.subTest(breakage=breakage):
                if breakage is None:
                    os.unlink(d.config_path)
                else:
                    with open(d.config_path, "w") as f:
                        f.write(breakage)
                r = c.request("reload")
                self.assertIs(r["ok"], False, r)
                self.assertIn("nothing changed", r["error"])
        # SIGHUP with a broken config: the same
        mark = d.mark()
        d.signal(signal.SIGHUP)
        ev = d.wait_event(lambda e: e.get("event") == "reload", 5, mark, "reload after HUP")
        self.assertEqual(ev["level"], "error")
        self.assertEqual({n: w["pid"] for n, w in c.workers().items()},
                         {n: w["pid"] for n, w in before.items()})
        # fixed: the next reload applies
        with open(d.config_path, "w") as f:
            f.write(good.replace("numprocs = 2", "numprocs = 3"))
        r = c.ok("reload")
        self.assertEqual(r["scaled"], ["a"])
        c.wait_running(names("a", range(3)) | {"b"}, 10)
        d.assert_clean_exit(d.stop())

    def test_sighup_is_reload(self):
        d, c = self.start(sleeper("a", 2), sleeper("b"))
        before = c.wait_running(names("a", range(2)) | {"b"})
        d.write_config(sleeper("a", 3), sleeper("b", 1, "v2"), sleeper("new"))
        mark = d.mark()
        d.signal(signal.SIGHUP)
        ev = d.wait_event(lambda e: e.get("event") == "reload", 5, mark, "reload after SIGHUP")
        self.assertEqual(ev["message"],
                         "reloaded: 1 added, 0 removed, 1 changed, 1 scaled, 0 unchanged")
        ws = c.wait_workers(
            lambda ws: set(ws) == names("a", range(3)) | {"b", "new"} and
            all(w["state"] == "RUNNING" for w in ws.values()) and
            ws["b"]["pid"] != before["b"]["pid"], 10, "after SIGHUP")
        for n in names("a", range(2)):
            self.assertEqual(ws[n]["pid"], before[n]["pid"])
        self.assertIsNone(d.proc.poll(), "SIGHUP does not stop drover")
        d.assert_clean_exit(d.stop())

    def test_changed_program_with_new_numprocs(self):
        d, c = self.start(sleeper("a", 3), sleeper("keep"))
        before = c.wait_running(names("a", range(3)) | {"keep"})
        d.write_config(sleeper("a", 2, "v2"), sleeper("keep"))
        r = c.ok("reload")
        self.assertEqual((r["changed"], r["scaled"]), (["a"], []))
        ws = c.wait_workers(
            lambda ws: set(ws) == names("a", range(2)) | {"keep"} and
            all(w["state"] == "RUNNING" and w["pid"] != before[n]["pid"]
                for n, w in ws.items() if n != "keep"), 10, "a: 2 new workers")
        for n in names("a", range(2)):
            self.assertEqual(cmdline(ws[n]["pid"])[1:3], [b"sleep", b"v2"])
        self.assertEqual(ws["keep"]["pid"], before["keep"]["pid"])
        for n in names("a", range(3)):
            self.assertTrue(poll(lambda: not alive(before[n]["pid"]), 5))
        d.assert_clean_exit(d.stop())
        d.assert_no_marked_procs()

    def test_many_reloads_in_a_row(self):
        d, c = self.start(sleeper("a", 2))
        before = c.wait_running(names("a", range(2)))
        with c.connect() as conn:
            for i in range(200):
                n = 2 + i % 3
                d.write_config(sleeper("a", n))
                r = conn.request("reload")
                self.assertIs(r["ok"], True, r)
        d.write_config(sleeper("a", 2))
        c.ok("reload")
        ws = c.wait_running(names("a", range(2)), 15)
        for n in names("a", range(2)):
            self.assertEqual(ws[n]["pid"], before[n]["pid"])
        d.assert_clean_exit(d.stop())
        d.assert_no_marked_procs()


if __name__ == "__main__":
    unittest.main()
