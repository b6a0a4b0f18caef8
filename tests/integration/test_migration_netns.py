"""Live migration between two network namespaces joined by a veth pair:
the source and the destination see each other only as hosts on a link,
as two cloud hosts would.  Needs root and iproute2; skipped otherwise."""
import os
import shutil
import stat
import subprocess
import tempfile
import unittest
import uuid

from tests.integration import vireotest
from tests.integration.migtest import (check_counter, counter_vm, last_count, wait_count,
                                       wait_migration)
from tests.integration.vireotest import requires_kvm


def ip(*args):
    subprocess.run(["ip"] + list(args), check=True, capture_output=True)


def netns_usable():
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    name = "vireo-probe-%s" % uuid.uuid4().hex[:6]
    try:
        ip("netns", "add", name)
        ip("netns", "del", name)
        return True
    except (subprocess.CalledProcessError, OSError):
        return False


@requires_kvm
@unittest.skipUnless(netns_usable(), "needs root and iproute2 network namespaces")
class NetnsMigration(unittest.TestCase):
    def setUp(self):
        tag = uuid.uuid4().hex[:6]
        self.ns = ["vsrc-" + tag, "vdst-" + tag]
        self.dir = tempfile.mkdtemp(prefix="vireo-netns-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        for n in self.ns:
            ip("netns", "add", n)
            self.addCleanup(ip, "netns", "del", n)
        ip("link", "add", "va-" + tag, "type", "veth", "peer", "name", "vb-" + tag)
        for n, dev, addr in ((self.ns[0], "va-" + tag, "10.231.7.1/24"),
                             (self.ns[1], "vb-" + tag, "10.231.7.2/24")):
            ip("link", "set", dev, "netns", n)
            ip("-n", n, "addr", "add", addr, "dev", dev)
            ip("-n", n, "link", "set", dev, "up")
            ip("-n", n, "link", "set", "lo", "up")
        self.wrappers = [self.wrapper(n) for n in self.ns]

    def wrapper(self, ns):
        """A vireo that runs inside network namespace ns."""
        path = os.path.join(self.dir, "vireo-" + ns)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n" % (ns, vireotest.VIREO))
        os.chmod(path, stat.S_IRWXU)
        return path

    def in_ns(self, index, **kw):
        """counter_vm, started inside namespace index."""
        saved = vireotest.vireo_binary
        vireotest.vireo_binary = lambda: self.wrappers[index]
        try:
            return counter_vm(**kw)
        finally:
            vireotest.vireo_binary = saved

    def test_migrate_over_veth(self):
        uri = "tcp:10.231.7.2:4444"
        with self.in_ns(0) as src, self.in_ns(1, incoming=uri) as dst:
            wait_count(src, 20)
            with src.qmp() as qs, dst.qmp() as qd:
                # The destination is not reachable from the host's own namespace.
                r = qs.cmd("migrate", {"uri": "tcp:10.231.7.9:4444"})
                self.assertIn("error", r)
                self.assertTrue(qs.ok("query-status")["running"])
                qs.ok("migrate", {"uri": uri})
                self.assertEqual(wait_migration(qs)["status"], "completed")
                self.assertEqual(wait_migration(qd)["status"], "completed")
                handed = last_count(src)
                wait_count(dst, handed + 20)
            check_counter(self, src.output() + dst.output(), min_count=handed + 20)


if __name__ == "__main__":
    unittest.main()
