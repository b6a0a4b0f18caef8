"""tests/run.py itself: what a test file leaves running is killed.

Each case runs the runner on a folder holding one module, test_leaver.py,
which starts a process in a session of its own (as vireotest starts
vireo), writes its pid down and then hangs.  The runner must kill that
process when the module times out and when the runner itself is ended by
SIGTERM.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "tests", "run.py")

LEAVER = '''
import os, subprocess, time, unittest

class Leaver(unittest.TestCase):
    def test_leave(self):
        p = subprocess.Popen(["sleep", "600"], start_new_session=True)
        with open(os.environ["LEAVER_PID"] + ".tmp", "w") as f:
            f.write(str(p.pid))
        os.rename(os.environ["LEAVER_PID"] + ".tmp", os.environ["LEAVER_PID"])
        time.sleep(600)
'''


def alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class RunnerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vireo-runner-")
        with open(os.path.join(self.dir, "test_leaver.py"), "w") as f:
            f.write(LEAVER)
        self.pidfile = os.path.join(self.dir, "leaver.pid")
        self.leftover = None

    def tearDown(self):
        if self.leftover and alive(self.leftover):
            os.kill(self.leftover, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_runner(self, *args):
        env = dict(os.environ, LEAVER_PID=self.pidfile)
        return subprocess.Popen([sys.executable, RUNNER, "--dir", self.dir, "-k", "test_leaver"]
                                + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env)

    def leaver_pid(self):
        deadline = time.monotonic() + 60
        while not os.path.exists(self.pidfile):
            self.assertLess(time.monotonic(), deadline, "the module never started its process")
            time.sleep(0.05)
        with open(self.pidfile) as f:
            self.leftover = int(f.read())
        return self.leftover

    def test_timeout_kills_what_the_module_left(self):
        # Long enough for the module to start its process on a busy host.
        runner = self.start_runner("--timeout", "8")
        out, _ = runner.communicate(timeout=120)
        pid = self.leaver_pid()
        self.assertIn("TIMEOUT", out)
        self.assertIn("killed 1 process(es) left by test_leaver.py: %d sleep" % pid, out)
        self.assertEqual(out.splitlines()[-1], "0 passed, 1 failed, 0 skipped")
        self.assertFalse(alive(pid), "the module's process outlived the runner")

    def test_sigterm_kills_what_the_module_left(self):
        runner = self.start_runner()
        pid = self.leaver_pid()
        runner.send_signal(signal.SIGTERM)
        out, _ = runner.communicate(timeout=60)
        self.assertEqual(runner.returncode, 128 + signal.SIGTERM, out)
        self.assertIn("killed 1 process(es) left by the run: %d sleep" % pid, out)
        self.assertFalse(alive(pid), "the module's process outlived the runner")


if __name__ == "__main__":
    unittest.main()
