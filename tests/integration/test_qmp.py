"""QMP over the real socket: every command and event vireo serves, and
hostile input that must leave the VM running."""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from tests.integration.qmp import QMP
from tests.integration.vireotest import (Vm, free_port, guest, machine_args, requires_kvm,
                                         vireo_binary)


def counter_vm(extra=(), smp=1, **kw):
    return Vm(machine_args(guest("counter.mb.elf"), smp=smp, extra=extra), qmp=True, **kw)


def counts(vm):
    return [int(n) for n in re.findall(r"^count (\d+) ", vm.output(), re.M)]


@requires_kvm
class Protocol(unittest.TestCase):
    def test_greeting_and_negotiation(self):
        with counter_vm() as vm, vm.qmp(negotiate=False) as q:
            g = q.greeting["QMP"]
            self.assertEqual(g["version"]["qemu"]["major"], 7)
            self.assertIn("capabilities", g)
            r = q.cmd("query-status")
            self.assertEqual(r["error"]["class"], "CommandNotFound")
            self.assertEqual(q.cmd("qmp_capabilities"), {"return": {}})
            r = q.cmd("qmp_capabilities")
            self.assertEqual(r["error"]["class"], "CommandNotFound")
            self.assertTrue(q.ok("query-status")["running"])

    def test_id_is_echoed(self):
        with counter_vm() as vm, vm.qmp() as q:
            for id in ["abc", 7, {"a": [1, 2]}]:
                self.assertEqual(q.cmd("query-status", id=id)["id"], id)
            self.assertEqual(q.cmd("no-such-command", id=9)["id"], 9)

    def test_commands_and_schema(self):
        wanted = {"qmp_capabilities", "query-version", "query-status", "query-name",
                  "query-uuid", "query-kvm", "query-commands", "query-qmp-schema",
                  "query-cpus-fast", "stop", "cont", "system_reset", "system_powerdown",
                  "quit", "query-block", "query-blockstats", "human-monitor-command"}
        with counter_vm() as vm, vm.qmp() as q:
            names = {c["name"] for c in q.ok("query-commands")}
            self.assertLessEqual(wanted, names)
            schema = q.ok("query-qmp-schema")
            by_name = {e["name"]: e for e in schema}
            self.assertEqual(len(by_name), len(schema), "schema names are unique")
            for name in names:
                e = by_name[name]
                self.assertEqual(e["meta-type"], "command")
                args = by_name[e["arg-type"]]
                self.assertEqual(args["meta-type"], "object")
                for m in args["members"]:
                    self.assertEqual(by_name[m["type"]]["meta-type"], "builtin")
                self.assertIn(e["ret-type"], by_name)
            hmp_args = by_name[by_name["human-monitor-command"]["arg-type"]]["members"]
            self.assertIn({"name": "command-line", "type": "str"}, hmp_args)
            for ev in ["STOP", "RESUME", "SHUTDOWN", "RESET", "POWERDOWN", "BLOCK_IO_ERROR"]:
                self.assertEqual(by_name[ev]["meta-type"], "event")

    def test_queries(self):
        uuid = "5e8e9a2c-0d3a-4b1c-9f00-1234567890ab"
        with counter_vm(extra=["-name", "guest-one,debug-threads=on", "-uuid", uuid],
                        smp=2) as vm, vm.qmp() as q:
            vm.wait_for("count 1 ")
            self.assertEqual(q.ok("query-version")["qemu"]["minor"], 2)
            self.assertEqual(q.ok("query-status"),
                             {"running": True, "singlestep": False, "status": "running"})
            self.assertEqual(q.ok("query-name"), {"name": "guest-one"})
            self.assertEqual(q.ok("query-uuid"), {"UUID": uuid})
            self.assertEqual(q.ok("query-kvm"), {"enabled": True, "present": True})
            cpus = q.ok("query-cpus-fast")
            self.assertEqual([c["cpu-index"] for c in cpus], [0, 1])
            for c in cpus:
                with open("/proc/%d/task/%d/comm" % (vm.pid, c["thread-id"])) as f:
                    self.assertEqual(f.read().strip(), "CPU %d/KVM" % c["cpu-index"])

    def test_human_monitor_command(self):
        with counter_vm() as vm, vm.qmp() as q:
            vm.wait_for("count 1 ")
            self.assertEqual(q.hmp("info status"), "VM status: running\r\n")
            mtree = q.hmp("info mtree")
            self.assertIn("pc.ram", mtree)
            self.assertRegex(mtree, r"00000000000003f8-00000000000003ff .*: com1|uart|serial")
            self.assertIn("pci", mtree)
            regs = q.hmp("info registers")
            self.assertRegex(regs, r"RIP=[0-9a-f]{16}")
            self.assertIn("unknown command", q.hmp("frobnicate now"))
            q.ok("stop")
            self.assertEqual(q.hmp("info status"), "VM status: paused\r\n")


@requires_kvm
class BlockQueries(unittest.TestCase):
    def test_block_and_blockstats(self):
        tmp = tempfile.mkdtemp(prefix="vireo-qblk-")
        img = os.path.join(tmp, "disk.raw")
        with open(img, "wb") as f:
            f.truncate(4 << 20)
        extra = ["-drive", "file=%s,format=raw,if=none,id=disk0" % img,
                 "-device", "virtio-blk-pci,drive=disk0"]
        with Vm(machine_args(guest("virtioblk.mb.elf"), append="sectors=64 wait",
                             extra=extra), qmp=True) as vm, vm.qmp() as q:
            vm.wait_for("wrote and read back 64 sectors")
            blocks = q.ok("query-block")
            self.assertEqual(len(blocks), 1)
            self.assertEqual(blocks[0]["device"], "disk0")
            self.assertEqual(blocks[0]["inserted"]["file"], img)
            self.assertEqual(blocks[0]["inserted"]["drv"], "raw")
            self.assertFalse(blocks[0]["inserted"]["ro"])
            self.assertEqual(blocks[0]["inserted"]["image-size"], 4 << 20)
            stats = q.ok("query-blockstats")
            s = stats[0]["stats"]
            self.assertEqual(stats[0]["device"], "disk0")
            self.assertEqual(s["wr_bytes"], 64 * 512)
            self.assertEqual(s["wr_operations"], 1)
            self.assertEqual(s["rd_bytes"], 64 * 512)
            self.assertEqual(s["rd_operations"], 1)
            self.assertEqual(s["flush_operations"], 1)
            for k in ["wr_total_time_ns", "rd_total_time_ns"]:
                self.assertGreater(s[k], 0, k)
            text = q.hmp("info blockstats")
            self.assertRegex(text, r"disk0: rd_bytes=32768 wr_bytes=32768 rd_operations=1 "
                                   r"wr_operations=1 flush_operations=1")
        os.unlink(img)
        os.rmdir(tmp)


@requires_kvm
class Lifecycle(unittest.TestCase):
    def test_stop_cont_counter(self):
        with counter_vm() as vm, vm.qmp() as q:
            vm.wait_for("count 5 ")
            self.assertEqual(q.ok("stop"), {})
            q.event("STOP")
            self.assertEqual(q.ok("query-status")["status"], "paused")
            time.sleep(0.3)
            frozen = counts(vm)
            time.sleep(0.5)
            self.assertEqual(counts(vm), frozen, "a paused guest does not count")
            q.ok("cont")
            q.event("RESUME")
            vm.wait_for("count %d " % (frozen[-1] + 3))
            c = counts(vm)
            self.assertEqual(c, list(range(1, len(c) + 1)), "no gap, no repeat")

    def test_start_paused(self):
        with counter_vm(extra=["-S"]) as vm, vm.qmp() as q:
            self.assertEqual(q.ok("query-status"),
                             {"running": False, "singlestep": False, "status": "prelaunch"})
            time.sleep(0.5)
            self.assertNotIn("counter ready", vm.output())
            q.ok("cont")
            q.event("RESUME")
            vm.wait_for("count 2 ")
            self.assertEqual(q.ok("query-status")["status"], "running")

    def test_system_reset(self):
        with counter_vm() as vm, vm.qmp() as q:
            vm.wait_for("count 3 ")
            q.ok("system_reset")
            e = q.event("RESET")
            self.assertEqual(e["data"], {"guest": False, "reason": "host-qmp-system-reset"})
            self.assertIn("timestamp", e)
            deadline = time.time() + 10
            while vm.output().count("counter ready") < 2:
                self.assertLess(time.time(), deadline, vm.output())
                time.sleep(0.05)

    def test_system_powerdown_event(self):
        # This guest has no ACPI driver: the event and the SCI are all there is.
        with counter_vm() as vm, vm.qmp() as q:
            q.ok("system_powerdown")
            q.event("POWERDOWN")
            self.assertTrue(q.ok("query-status")["running"])

    def test_quit(self):
        # A virtio-blk disk too: its teardown walks the machine's listeners
        # after the monitor's are gone (a use-after-free under ASan once).
        img = tempfile.NamedTemporaryFile(suffix=".raw")
        img.truncate(1 << 20)
        with counter_vm(extra=["-drive", "file=%s,format=raw,if=virtio" % img.name]) as vm, \
             vm.qmp() as q:
            vm.wait_for("count 1 ")
            self.assertEqual(q.cmd("quit"), {"return": {}})
            e = q.event("SHUTDOWN")
            self.assertEqual(e["data"], {"guest": False, "reason": "host-qmp-quit"})
            self.assertEqual(vm.wait(), 0)

    def test_sigterm_exits_zero(self):
        with counter_vm() as vm, vm.qmp() as q:
            vm.wait_for("count 1 ")
            os.kill(vm.pid, signal.SIGTERM)
            e = q.event("SHUTDOWN")
            self.assertEqual(e["data"], {"guest": False, "reason": "host-signal"})
            self.assertEqual(vm.wait(), 0)

    def test_guest_exit_reported(self):
        # The guest leaves through isa-debug-exit: SHUTDOWN reaches the client first.
        # It starts paused (-S), so that it cannot leave before the client connects.
        with Vm(machine_args(guest("counter.mb.elf"), append="steps=3", extra=["-S"]),
                qmp=True) as vm:
            q = vm.qmp()
            q.ok("cont")
            self.assertEqual(vm.wait(), 33)
            e = q.event("SHUTDOWN")
            self.assertTrue(e["data"]["guest"])
            q.close()

    def test_several_monitors(self):
        tmp = tempfile.mkdtemp(prefix="vireo-mon-")
        p2 = os.path.join(tmp, "mon2.sock")
        port = free_port()
        extra = ["-chardev", "socket,id=mon2,path=%s,server=on,wait=off" % p2,
                 "-mon", "chardev=mon2,mode=control",
                 "-qmp", "tcp:127.0.0.1:%d,server=on,wait=off" % port]
        with counter_vm(extra=extra) as vm:
            # TCP first, while vireo may not listen yet: the client retries
            # a refused connection as it waits for a missing socket file.
            clients = [QMP(addr=("127.0.0.1", port)), vm.qmp(), QMP(p2)]
            clients[2].ok("stop")
            for q in clients:
                q.event("STOP")
            clients[0].cmd("quit")
            for q in clients:
                q.event("SHUTDOWN")
                q.close()
            self.assertEqual(vm.wait(), 0)
        self.assertFalse(os.path.exists(p2), "the socket file is removed at exit")
        os.rmdir(tmp)

    def test_pidfile_and_daemonize(self):
        tmp = tempfile.mkdtemp(prefix="vireo-daemon-")
        pidfile = os.path.join(tmp, "vireo.pid")
        qmp_path = os.path.join(tmp, "qmp.sock")
        args = machine_args(guest("counter.mb.elf")) + [
            "-serial", "file:" + os.path.join(tmp, "serial"), "-daemonize",
            "-pidfile", pidfile, "-qmp", "unix:%s,server=on,wait=off" % qmp_path]
        p = subprocess.run([vireo_binary()] + args, capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        pid = int(open(pidfile).read())
        self.assertTrue(os.path.exists("/proc/%d" % pid))
        with QMP(qmp_path) as q:
            self.assertTrue(q.ok("query-status")["running"])
            q.cmd("quit")
        for _ in range(200):
            if not os.path.exists("/proc/%d" % pid) or \
               open("/proc/%d/stat" % pid).read().split()[2] == "Z":
                break
            time.sleep(0.05)
        self.assertFalse(os.path.exists(pidfile), "the pidfile is removed at exit")
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)

    def test_pidfile_held_by_another(self):
        with counter_vm(extra=[]) as vm:
            pidfile = os.path.join(vm.tmpdir, "pid")
            with Vm(machine_args(guest("counter.mb.elf"), extra=["-pidfile", pidfile])) as a:
                for _ in range(100):
                    if os.path.exists(pidfile):
                        break
                    time.sleep(0.05)
                with Vm(machine_args(guest("counter.mb.elf"),
                                     extra=["-pidfile", pidfile])) as b:
                    self.assertEqual(b.wait(), 1)
                    self.assertIn(pidfile, b.stderr())
                self.assertIsNone(a.proc.poll())


@requires_kvm
@requires_kvm
class PassedDescriptors(unittest.TestCase):
    """getfd/closefd: descriptors sent with SCM_RIGHTS, kept by name."""

    def fd_count(self, vm):
        return len(os.listdir("/proc/%d/fd" % vm.proc.pid))

    def test_getfd_closefd(self):
        with counter_vm() as vm, vm.qmp() as q:
            before = self.fd_count(vm)
            r, w = os.pipe()
            try:
                self.assertEqual(q.cmd_fds("getfd", {"fdname": "one"}, [r]), {"return": {}})
                self.assertEqual(self.fd_count(vm), before + 1)
                # The same name again replaces (and closes) the first one.
                self.assertEqual(q.cmd_fds("getfd", {"fdname": "one"}, [w]), {"return": {}})
                self.assertEqual(self.fd_count(vm), before + 1)
                q.ok("closefd", {"fdname": "one"})
                self.assertEqual(self.fd_count(vm), before)
                e = q.cmd("closefd", {"fdname": "one"})["error"]
                self.assertIn("File descriptor named 'one' not found", e["desc"])
                # No descriptor attached, or a name that reads as a number.
                e = q.cmd("getfd", {"fdname": "two"})["error"]
                self.assertIn("No file descriptor supplied via SCM_RIGHTS", e["desc"])
                e = q.cmd_fds("getfd", {"fdname": "3x"}, [r])["error"]
                self.assertIn("fdname", e["desc"])
                # A descriptor no command claimed was closed, not kept.
                q.ok("query-status")
                self.assertEqual(self.fd_count(vm), before)
                e = q.cmd("migrate", {"uri": "fd:nosuch"})["error"]
                self.assertIn("no file descriptor named 'nosuch'", e["desc"])
                self.assertTrue(q.ok("query-status")["running"])
            finally:
                os.close(r)
                os.close(w)


class HostileInput(unittest.TestCase):
    """Each case gets an error or a closed connection; the VM keeps running
    and the next well-formed command works."""

    def assert_alive(self, vm):
        vm.wait_for("count 1 ")
        with vm.qmp() as q:
            self.assertTrue(q.ok("query-status")["running"])
        n = counts(vm)[-1]
        vm.wait_for("count %d " % (n + 1))

    def error_of(self, q, raw):
        q.send_raw(raw)
        r = q.reply()
        self.assertIn("error", r, raw)
        return r["error"]

    def test_bad_requests(self):
        with counter_vm() as vm, vm.qmp() as q:
            vm.wait_for("count 1 ")
            e = self.error_of(q, b'{"execute": }\n')
            self.assertEqual(e["class"], "GenericError")
            self.assertEqual(self.error_of(q, b"[1, 2, 3]\n")["class"], "GenericError")
            self.assertEqual(self.error_of(q, b"hello there\n")["class"], "GenericError")
            self.assertEqual(self.error_of(q, b'{"arguments": {}}\n')["class"], "GenericError")
            self.assertEqual(self.error_of(q, b'{"execute": 5}\n')["class"], "GenericError")
            self.assertEqual(self.error_of(q, b'{"execute": "stop", "arguments": 3}\n')["class"],
                             "GenericError")
            self.assertEqual(self.error_of(q, b'{"execute": "stop", "bogus": 1}\n')["class"],
                             "GenericError")
            e = q.cmd("no-such-command")["error"]
            self.assertEqual(e["class"], "CommandNotFound")
            e = q.cmd("human-monitor-command", {"command-line": 5})["error"]
            self.assertIn("command-line", e["desc"])
            e = q.cmd("human-monitor-command", {})["error"]
            self.assertIn("missing", e["desc"])
            e = q.cmd("query-status", {"extra": True})["error"]
            self.assertIn("unexpected", e["desc"])
            e = q.cmd("human-monitor-command", {"command-line": "info status",
                                                "cpu-index": "zero"})["error"]
            self.assertIn("cpu-index", e["desc"])
            # Pipelined and fragmented input both work.
            q.send_raw(b'{"execute": "query-status"}{"execute": "query-name"}\n')
            self.assertIn("status", q.reply()["return"])
            self.assertEqual(q.reply()["return"], {})
            for ch in b'{"execute": "query-kvm"}\n':
                q.send_raw(bytes([ch]))
            self.assertTrue(q.reply()["return"]["enabled"])
            self.assert_alive(vm)

    def test_huge_message(self):
        with counter_vm() as vm:
            vm.wait_for("count 1 ")
            q = vm.qmp()
            chunk = b"a" * (1 << 20)
            q.send_raw(b'{"execute": "')
            sent = 0
            try:
                while sent < 100 << 20:
                    q.send_raw(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assertLess(sent, 100 << 20, "vireo read 100 MiB into one message")
            q.close()
            self.assert_alive(vm)

    def test_deep_nesting(self):
        with counter_vm() as vm:
            q = vm.qmp()
            try:
                q.send_raw(b"[" * 100000)
                r = q.reply()
                self.assertIn("error", r)
            except (BrokenPipeError, ConnectionResetError, EOFError):
                pass
            q.close()
            self.assert_alive(vm)

    def test_disconnect_mid_command(self):
        with counter_vm() as vm:
            vm.wait_for("count 1 ")
            for partial in [b'{"execute": "query-st', b'{"execute": "stop"', b"{"]:
                q = vm.qmp()
                q.send_raw(partial)
                q.close()
            self.assert_alive(vm)

    def test_fifty_clients(self):
        with counter_vm() as vm:
            vm.wait_for("count 1 ")
            results = []
            lock = threading.Lock()

            def client():
                with vm.qmp() as q:
                    r = q.ok("query-status")
                    with lock:
                        results.append(r["status"])

            threads = [threading.Thread(target=client) for _ in range(50)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            self.assertEqual(results, ["running"] * 50)
            self.assert_alive(vm)

    def test_client_that_never_reads(self):
        with counter_vm() as vm:
            lazy = vm.qmp()
            lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            with vm.qmp() as q:
                for _ in range(200):
                    q.ok("stop")
                    q.ok("cont")
            self.assert_alive(vm)
            lazy.close()


if __name__ == "__main__":
    unittest.main()
