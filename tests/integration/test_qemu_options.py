"""QEMU's options that vireo takes as QEMU spells them: -cpu, -machine,
-rtc, -overcommit, -msg and the ones accepted without effect.  What the
guest's CPUID and RTC show, what happens to guest RAM, and the errors for
what vireo cannot do.

The cpuid guest prints the raw feature words ("cpuid.raw LEAF reg=hex").
Under TCG the words are exactly the translator's; under KVM they are
KVM's supported set as this host's KVM presents it.
"""
import datetime
import fcntl
import os
import re
import resource
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from tests.integration.qmp import QMP
from tests.integration.vireotest import (EXIT_PASS, Vm, guest, machine_args, requires_kvm,
                                         run_vireo, vireo_binary)

X1_NX = 1 << 20			# CPUID.80000001H:EDX
X1_LAHF = 1 << 0		# CPUID.80000001H:ECX
L1_SSE42 = 1 << 20		# CPUID.1:ECX
L1_X2APIC = 1 << 21		# CPUID.1:ECX
X7_INVTSC = 1 << 8		# CPUID.80000007H:EDX


def words(out):
    """{(leaf, reg): value} from the cpuid guest's raw lines."""
    w = {}
    for leaf, regs in re.findall(r"^cpuid\.raw (\w+) (.*)$", out, re.M):
        for reg, val in re.findall(r"(\w+)=([0-9a-f]+)", regs):
            w[(int(leaf, 16), reg)] = int(val, 16)
    return w


def kvm_supported(leaf, reg):
    """A register of KVM_GET_SUPPORTED_CPUID's entry for leaf (subleaf 0)."""
    n = 256
    buf = bytearray(struct.pack("II", n, 0) + bytes(40 * n))
    fd = os.open("/dev/kvm", os.O_RDWR)
    try:
        fcntl.ioctl(fd, 0xc008ae05, buf)	# KVM_GET_SUPPORTED_CPUID
    finally:
        os.close(fd)
    for i in range(struct.unpack_from("I", buf)[0]):
        f, idx, _, *r = struct.unpack_from("7I", buf, 8 + 40 * i)
        if f == leaf and idx == 0:
            return r["abcd".index(reg[1])]
    return 0


class Options(unittest.TestCase):
    def refused(self, *args):
        """vireo's error output for a command line it must refuse."""
        r = run_vireo(list(args) + ["-nographic", "-kernel", guest("cpuid.mb.elf")],
                      timeout=30)
        self.assertEqual(r.status, 1, r)
        return r.stderr


class Cpu(Options):
    def cpuid(self, accel, *extra):
        r = run_vireo(machine_args(guest("cpuid.mb.elf"), accel=accel, extra=extra) +
                      ["-serial", "stdio"], timeout=60)
        self.assertEqual(r.status, EXIT_PASS, r)
        return r.stdout


    def test_tcg_features_off(self):
        base = words(self.cpuid("tcg"))
        self.assertTrue(base[(1, "ecx")] & L1_SSE42, base)
        self.assertTrue(base[(0x80000001, "edx")] & X1_NX, base)
        off = words(self.cpuid("tcg", "-cpu", "max,-sse4.2,nx=off"))
        self.assertEqual(off[(1, "ecx")], base[(1, "ecx")] & ~L1_SSE42)
        self.assertEqual(off[(0x80000001, "edx")], base[(0x80000001, "edx")] & ~X1_NX)
        # Turned off, then on again: the last word wins, as in QEMU.
        again = words(self.cpuid("tcg", "-cpu", "max,-sse4.2,+sse4.2"))
        self.assertEqual(again[(1, "ecx")], base[(1, "ecx")])

    def test_tcg_topology(self):
        out = self.cpuid("tcg", "-smp", "8,sockets=2,cores=2,threads=2")
        self.assertIn("cpuid.1 apic_id=0 logical=4 htt=1", out)
        self.assertIn("cpuid.b level=0 type=1 count=2 shift=1", out)
        self.assertIn("cpuid.b level=1 type=2 count=4 shift=2", out)
        out = self.cpuid("tcg", "-smp", "3")	# one socket of 3 cores
        self.assertIn("cpuid.1 apic_id=0 logical=4 htt=1", out)
        self.assertIn("cpuid.b level=1 type=2 count=3 shift=2", out)
        self.assertIn("must be powers of two", self.refused("-smp", "6,sockets=2,cores=3"))
        self.assertIn("does not hot-plug vCPUs", self.refused("-smp", "4,maxcpus=8"))
        self.assertIn("is not 4 vCPUs", self.refused("-smp", "4,sockets=3"))
        self.assertIn("must be at least 1", self.refused("-smp", "4,threads=0"))

    def test_tcg_refusals(self):
        self.assertIn("-cpu host needs KVM", self.refused("-accel", "tcg", "-cpu", "host"))
        err = self.refused("-accel", "tcg", "-cpu", "max,+svm,+sse2,+avx512f")
        self.assertIn("the translator (TCG) cannot offer the guest: svm, avx512f", err)
        self.assertIn("unknown CPU model 'Skylake-Server'",
                      self.refused("-cpu", "Skylake-Server"))
        self.assertIn("unknown feature or property 'avx9'", self.refused("-cpu", "max,+avx9"))
        self.assertIn("avx2=maybe: expected on or off", self.refused("-cpu", "max,avx2=maybe"))

    @requires_kvm
    def test_kvm_features(self):
        base = words(self.cpuid("kvm"))
        # QEMU's migratable=on (the default) hides the invariant TSC.
        self.assertFalse(base[(0x80000007, "edx")] & X7_INVTSC, base)
        kept = words(self.cpuid("kvm", "-cpu", "host,migratable=off"))
        self.assertEqual(kept[(0x80000007, "edx")] & X7_INVTSC,
                         kvm_supported(0x80000007, "edx") & X7_INVTSC)
        off = words(self.cpuid("kvm", "-cpu", "host,-nx,lahf_lm=off,-x2apic"))
        self.assertEqual(off[(0x80000001, "edx")], base[(0x80000001, "edx")] & ~X1_NX)
        self.assertEqual(off[(0x80000001, "ecx")], base[(0x80000001, "ecx")] & ~X1_LAHF)
        self.assertEqual(off[(1, "ecx")], base[(1, "ecx")] & ~L1_X2APIC)
        self.assertIn("cpuid.hv signature=KVMKVMKVM", self.cpuid("kvm", "-cpu", "max"))
        self.assertIn("cpuid.hv signature=\n", self.cpuid("kvm", "-cpu", "host,kvm=off"))

    @requires_kvm
    def test_kvm_cpu_definitions(self):
        with Vm(["-S", "-accel", "kvm", "-kernel", guest("hello.mb.elf")], qmp=True) as vm, \
                vm.qmp() as q:
            self.assertEqual(sorted(d["name"] for d in q.ok("query-cpu-definitions")),
                             ["host", "max"])

    @requires_kvm
    def test_kvm_requires(self):
        have = kvm_supported(0x80000001, "edx")
        if have & X1_NX:
            self.cpuid("kvm", "-cpu", "host,+nx,enforce")
        # SVM and VMX at once: no host's KVM offers both.
        err = self.refused("-accel", "kvm", "-cpu", "host,+svm,+vmx")
        self.assertRegex(err, r"KVM on this host cannot offer the guest: (svm|vmx)")


class Machine(Options):

    def vmflags(self, vm, size):
        """VmFlags of the mapping of guest RAM (the one mapping of that size)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open("/proc/%d/smaps" % vm.pid) as f:
                smaps = f.read()
            for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", smaps):
                m = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", block)
                if m and int(m[2], 16) - int(m[1], 16) == size:
                    return re.search(r"^VmFlags: (.*)$", block, re.M)[1].split()
            time.sleep(0.1)		# still starting
        self.fail("no mapping of %d bytes in vireo" % size)

    def test_machine_options_reach_guest_ram(self):
        """dump-guest-core=off and mem-merge=off are madvise flags on guest RAM."""
        size = 96 << 20
        # -S: the guest stays put while the test reads the process's maps.
        args = ["-S", "-m", "96M", "-kernel", guest("spin.mb.elf")]
        ksm = os.path.isdir("/sys/kernel/mm/ksm")
        with Vm(["-machine", "q35,accel=tcg"] + args) as vm:
            flags = self.vmflags(vm, size)
            self.assertNotIn("dd", flags)
            self.assertEqual("mg" in flags, ksm, flags)
        with Vm(["-machine", "pc-q35-7.2,accel=tcg,dump-guest-core=off,mem-merge=off,"
                 "usb=off,vmport=off,smm=off,graphics=off,kernel-irqchip=on"] + args) as vm:
            flags = self.vmflags(vm, size)
            self.assertIn("dd", flags)
            self.assertNotIn("mg", flags)

    def test_qmp_describes_them(self):
        """query-machines and query-cpu-definitions: what -machine and -cpu take."""
        with Vm(["-S", "-accel", "tcg", "-kernel", guest("hello.mb.elf")], qmp=True) as vm, \
                vm.qmp() as q:
            machines = q.ok("query-machines")
            self.assertEqual([(m["name"], m["is-default"], m["cpu-max"]) for m in machines],
                             [("q35", True, 255)])
            # Under TCG there is no "host" model, as in QEMU.
            self.assertEqual([d["name"] for d in q.ok("query-cpu-definitions")], ["max"])

    def test_machine_refusals(self):
        self.assertIn("unknown machine type 'pc'", self.refused("-M", "pc"))
        self.assertIn("no USB controller", self.refused("-machine", "q35,usb=on"))
        self.assertIn("kernel-irqchip=on", self.refused("-machine", "kernel-irqchip=split"))
        self.assertIn("unknown option 'memory-backend'",
                      self.refused("-machine", "q35,memory-backend=pc.ram"))
        self.assertIn("cannot both be given",
                      self.refused("-machine", "accel=kvm", "-accel", "tcg"))

    def test_help(self):
        r = run_vireo(["-machine", "help"])
        self.assertEqual(r.status, 0, r)
        self.assertIn("q35", r.stdout)
        r = run_vireo(["-cpu", "help"])
        self.assertEqual(r.status, 0, r)
        self.assertIn("sse4.2", r.stdout)
        self.assertIn("migratable", r.stdout)


class Others(Options):
    def rtc(self, *extra, env=None):
        """The guest's RTC reading, and the host's UTC time just before it."""
        before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        r = run_vireo(machine_args(guest("rtcdate.mb.elf"), accel="tcg", extra=extra) +
                      ["-serial", "stdio"], env=env, timeout=60)
        self.assertEqual(r.status, EXIT_PASS, r)
        m = re.search(r"^rtc (\S+ \S+)$", r.stdout, re.M)
        return datetime.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S"), before

    def assertNear(self, got, want):
        self.assertLess(abs((got - want).total_seconds()), 20, (got, want))

    def test_rtc_base(self):
        got, now = self.rtc()
        self.assertNear(got, now)
        got, now = self.rtc("-rtc", "base=utc,clock=host,driftfix=none")
        self.assertNear(got, now)
        got, _ = self.rtc("-rtc", "base=2006-06-17T16:01:21")
        self.assertNear(got, datetime.datetime(2006, 6, 17, 16, 1, 21))
        got, _ = self.rtc("-rtc", "2031-01-02")
        self.assertNear(got, datetime.datetime(2031, 1, 2))
        # localtime: the host's offset from UTC, here the TZ vireo runs in.
        got, now = self.rtc("-rtc", "base=localtime", env={"TZ": "XXX-05:30"})
        self.assertNear(got, now + datetime.timedelta(hours=5, minutes=30))


    def test_refusals(self):
        self.assertIn("clock='vm'", self.refused("-rtc", "base=utc,clock=vm"))
        self.assertIn("driftfix='slew'", self.refused("-rtc", "driftfix=slew"))
        self.assertIn("expected utc, localtime", self.refused("-rtc", "base=yesterday"))
        self.assertIn("more than 100 years", self.refused("-rtc", "base=1800-01-01"))
        self.assertIn("cpu-pm=on", self.refused("-overcommit", "cpu-pm=on"))
        self.assertIn("unknown option 'foo'", self.refused("-boot", "foo=1"))
        self.assertIn("kvm-pit.lost_tick_policy=delay", self.refused("-global", "x.y=1"))
        self.assertIn("-nic user: vireo has no network devices", self.refused("-nic", "user"))
        self.assertIn("type 4 is not supported", self.refused("-smbios", "type=4,serial=x"))
        self.assertIn("type 1 has no field 'colour'", self.refused("-smbios", "type=1,colour=red"))
        self.assertIn("uuid=1234 is not a UUID", self.refused("-smbios", "type=1,uuid=1234"))
        self.assertIn("type= is required", self.refused("-smbios", "serial=x"))
        self.assertIn("from a file are not supported", self.refused("-smbios", "file=/x.bin"))

    def test_msg_timestamp(self):
        err = self.refused("-msg", "timestamp=on", "-m", "1")
        self.assertRegex(err, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z vireo: error: -m 1")
        self.assertRegex(self.refused("-m", "1"), r"^vireo: error: -m 1")

    def test_accepted_without_effect(self):
        r = run_vireo(machine_args(guest("rtcdate.mb.elf"), accel="tcg", extra=[
            "-boot", "order=c,menu=off,strict=on", "-no-user-config", "-no-hpet",
            "-global", "kvm-pit.lost_tick_policy=delay", "-msg", "timestamp=off",
            "-net", "none", "-nic", "none"]) +
            ["-serial", "stdio"], timeout=60)
        self.assertEqual(r.status, EXIT_PASS, r)

    def test_pci_location(self):
        """bus= and addr= as QEMU takes them for Q35: pcie.0, hex slots."""
        disk = os.path.join(self.tmp(), "d.raw")
        with open(disk, "wb") as f:
            f.truncate(1 << 20)
        base = ["-drive", "file=%s,format=raw,if=none,id=d0" % disk]
        for dev in ("virtio-blk-pci,drive=d0,bus=pcie.0,addr=0x10",
                    "virtio-blk-pci,drive=d0,bus=pci.0,addr=10.0",
                    '{"driver": "virtio-scsi-pci", "bus": "pcie.0", "addr": "0x1f"}'):
            r = run_vireo(machine_args(guest("pciscan.mb.elf"), accel="tcg",
                                       extra=base + ["-device", dev]) + ["-serial", "stdio"],
                          timeout=60)
            self.assertEqual(r.status, EXIT_PASS, r)
            # the guest's scan prints bus:slot.function in hex
            self.assertRegex(r.stdout, r"pci 00:%s\.0 vendor=1af4" %
                             ("1f" if "scsi" in dev else "10"), r)
        self.assertIn("the only bus is the root bus, pcie.0",
                      self.refused(*base, "-device", "virtio-blk-pci,drive=d0,bus=pci.1"))
        self.assertIn("only function 0",
                      self.refused(*base, "-device", "virtio-blk-pci,drive=d0,addr=0x5.0x1"))
        self.assertIn("expected SLOT[.FUNCTION] in hex",
                      self.refused(*base, "-device", "virtio-blk-pci,drive=d0,addr=0x20"))
        self.assertIn("expected SLOT[.FUNCTION] in hex",
                      self.refused(*base, "-device", "virtio-scsi-pci,addr=five"))

    def tmp(self):
        d = tempfile.mkdtemp(prefix="vireo-opts-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def test_serial_pty(self):
        """-serial pty: the terminal QMP query-chardev names carries the
        guest's console; the other ports are listed too."""
        out = os.path.join(self.tmp(), "com2.txt")
        # The counter guest prints a line per step, so output flows from
        # whenever vireo notices the client (it drops what comes before).
        with Vm(machine_args(guest("counter.mb.elf"), accel="tcg",
                             extra=["-S", "-serial", "pty", "-serial", "file:" + out]),
                qmp=True) as vm, vm.qmp() as q:
            chardevs = q.ok("query-chardev")
            pty = chardevs[0]["filename"]
            self.assertRegex(pty, r"^pty:/dev/pts/\d+$")
            self.assertEqual(chardevs, [
                {"label": "serial0", "filename": pty, "frontend-open": True},
                {"label": "serial1", "filename": "file:" + out, "frontend-open": True},
                {"label": "serial2", "filename": "stdio", "frontend-open": True}])
            self.assertIn("char device redirected to " + pty[4:], vm.stderr())
            fd = os.open(pty[4:], os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                q.ok("cont")
                got, deadline = b"", time.monotonic() + 60
                while not re.search(rb"count \d+ ", got) and time.monotonic() < deadline:
                    try:
                        got += os.read(fd, 4096)
                    except BlockingIOError:
                        time.sleep(0.05)
                self.assertRegex(got, rb"count \d+ ")
            finally:
                os.close(fd)

    def test_chardev_serial(self):
        """libvirt's spelling of a serial port: -chardev and -device
        isa-serial,chardev=; and QEMU's -serial chardev:ID."""
        for i, how in enumerate((["-device", "isa-serial,chardev=c1,id=serial0,index=0"],
                                 ["-device", '{"driver": "isa-serial", "chardev": "c1"}'],
                                 ["-serial", "chardev:c1"])):
            out = os.path.join(self.tmp(), "com1.txt")
            args = machine_args(guest("hello.mb.elf"), accel="tcg",
                                extra=["-nodefaults", "-chardev", "file,id=c1,path=" + out] + how)
            r = run_vireo(args, timeout=60)
            self.assertEqual(r.status, EXIT_PASS, (how, r))
            with open(out) as f:
                self.assertIn("Hello from vireo guest", f.read(), how)
        pre = ["-chardev", "pty,id=p1"]
        self.assertIn("chardev= must name a -chardev",
                      self.refused(*pre, "-device", "isa-serial,chardev=nope"))
        self.assertIn("COM5 is not there",
                      self.refused(*pre, "-device", "isa-serial,chardev=p1,index=4"))
        self.assertIn("COM1 is taken already",
                      self.refused(*pre, "-serial", "null", "-device", "isa-serial,chardev=p1,index=0"))
        self.assertIn("no -chardev with id 'p2'", self.refused(*pre, "-serial", "chardev:p2"))
        self.assertIn("QMP is served on a socket chardev only",
                      self.refused(*pre, "-mon", "chardev=p1,mode=control"))
        self.assertIn("expected socket", self.refused("-chardev", "spice,id=x"))
        self.assertIn("expected socket", self.refused("-chardev", "file,id=x"))
        self.assertIn("id= is required", self.refused("-chardev", "pty"))

    def test_monitor_on_inherited_socket(self):
        """-chardev socket,fd=N: the listening socket libvirt makes and
        passes down serves QMP."""
        path = os.path.join(self.tmp(), "mon.sock")
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        lsock.listen(1)
        fd = lsock.fileno()
        args = machine_args(guest("hello.mb.elf"), accel="tcg",
                            extra=["-S", "-chardev", "socket,id=mon,fd=%d,server=on,wait=off" % fd,
                                   "-mon", "chardev=mon,mode=control"])
        p = subprocess.Popen([vireo_binary()] + args, pass_fds=[fd], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        lsock.close()		# vireo has its own copy
        try:
            with QMP(path) as q:
                self.assertEqual(q.ok("query-status")["status"], "prelaunch")
                q.ok("quit")
            self.assertEqual(p.wait(30), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        with open(os.path.join(self.tmp(), "f"), "w") as f:
            self.assertIn("fd=%d: not a listening stream socket" % f.fileno(),
                          self.refused_fds([f.fileno()], "-chardev",
                                           "socket,id=m,fd=%d,server=on,wait=off" % f.fileno(),
                                           "-mon", "chardev=m"))
        self.assertIn("fd=99: not an open descriptor",
                      self.refused("-chardev", "socket,id=m,fd=99,server=on,wait=off",
                                   "-mon", "chardev=m"))
        self.assertIn("give path=, host=,port= or fd=",
                      self.refused("-chardev", "socket,id=m,fd=5,path=/x"))

    def refused_fds(self, fds, *args):
        p = subprocess.run([vireo_binary()] + list(args) + ["-kernel", guest("hello.mb.elf")],
                           pass_fds=fds, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        return p.stderr

    def test_json_device(self):
        """-device {...}: libvirt's spelling since QEMU 6."""
        args = machine_args(guest("hello.mb.elf"), accel="tcg")
        i = args.index("isa-debug-exit,iobase=0xf4,iosize=4")
        args[i] = '{"driver": "isa-debug-exit", "iobase": 244, "iosize": 4}'
        r = run_vireo(args + ["-serial", "stdio"], timeout=60)
        self.assertEqual(r.status, EXIT_PASS, r)
        self.assertIn("expects a string, number or boolean",
                      self.refused("-device", '{"driver": "isa-debug-exit", "iobase": [1]}'))
        self.assertIn("not valid JSON", self.refused("-device", '{"driver":'))
        self.assertIn("Parameter 'driver' is missing", self.refused("-device", '{"iobase": 1}'))

    def test_mem_lock(self):
        size = 64 << 20
        ldd = subprocess.run(["ldd", vireo_binary()], capture_output=True, text=True).stdout
        if "libasan" in ldd or "libtsan" in ldd:
            self.skipTest("a sanitizer build: its mlockall() does nothing")
        soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        if os.geteuid() != 0 and soft != resource.RLIM_INFINITY and soft < 2 * size:
            self.skipTest("RLIMIT_MEMLOCK (%d) too small to lock a guest, and not root" % soft)
        with Vm(["-S", "-accel", "tcg", "-m", "64M", "-overcommit", "mem-lock=on",
                 "-kernel", guest("rtcdate.mb.elf")]) as vm:
            deadline = time.monotonic() + 30
            while True:
                with open("/proc/%d/status" % vm.pid) as f:
                    locked = int(re.search(r"^VmLck:\s+(\d+) kB", f.read(), re.M)[1]) << 10
                if locked >= size or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertGreaterEqual(locked, size)
        with Vm(["-S", "-accel", "tcg", "-m", "64M", "-kernel", guest("rtcdate.mb.elf")]) as vm:
            time.sleep(0.5)
            with open("/proc/%d/status" % vm.pid) as f:
                self.assertRegex(f.read(), r"VmLck:\s+0 kB")


if __name__ == "__main__":
    unittest.main()
