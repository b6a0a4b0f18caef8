"""CPUID as a KVM guest sees it: the -smp topology (one socket of N cores,
or the sockets, cores and threads given) in leaves 1, 4 and 0xB,
the hypervisor bit and KVM's signature."""
import re
import unittest

from tests.integration.vireotest import EXIT_PASS, guest, machine_args, requires_kvm, run_vireo


@requires_kvm
class Cpuid(unittest.TestCase):
    def cpuid(self, smp):
        r = run_vireo(machine_args(guest("cpuid.mb.elf"), smp=smp) + ["-serial", "stdio"],
                      timeout=30)
        self.assertEqual(r.status, EXIT_PASS, r)
        return r.stdout

    def test_topology_follows_smp(self):
        for smp, pow2 in [(1, 1), (3, 4), (4, 4), (8, 8)]:
            out = self.cpuid(smp)
            m = re.search(r"cpuid.1 apic_id=(\d+) logical=(\d+) htt=(\d) hypervisor=(\d)", out)
            self.assertEqual((m[1], m[2], m[4]), ("0", str(pow2), "1"), out)
            if smp > 1:		# with one vCPU KVM's own HTT bit stands, as in QEMU
                self.assertEqual(m[3], "1", out)
            self.assertIn("cpuid.4 cores=%d" % pow2, out)
            self.assertIn("cpuid.b level=0 type=1 count=1 shift=0", out)
            self.assertIn("cpuid.b level=1 type=2 count=%d shift=%d" %
                          (smp, (pow2 - 1).bit_length()), out)

    def test_sockets_cores_threads(self):
        out = self.cpuid("8,sockets=2,cores=2,threads=2")
        self.assertIn("cpuid.1 apic_id=0 logical=4 htt=1", out)
        self.assertIn("cpuid.4 cores=2", out)
        self.assertIn("cpuid.b level=0 type=1 count=2 shift=1", out)
        self.assertIn("cpuid.b level=1 type=2 count=4 shift=2", out)

    def test_hypervisor_signature(self):
        self.assertIn("cpuid.hv signature=KVMKVMKVM", self.cpuid(1))


if __name__ == "__main__":
    unittest.main()
