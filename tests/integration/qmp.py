"""A QMP client for the tests: the real wire protocol over a real socket,
written with Python's standard library only."""
import json
import os
import socket
import time


class QMPError(Exception):
    pass


class QMP:
    def __init__(self, path=None, addr=None, timeout=10, negotiate=True):
        deadline = time.monotonic() + timeout
        # Until vireo listens: its socket file is missing, or it refuses.
        while True:
            try:
                self.sock = self._connect(path, addr)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.greeting = self.recv()
        if negotiate:
            r = self.cmd("qmp_capabilities")
            if r != {"return": {}}:
                raise QMPError("negotiation failed: %r" % r)

    @staticmethod
    def _connect(path, addr):
        """A connected socket; one that failed to connect is closed."""
        if path is None:
            return socket.create_connection(addr)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return sock

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv(self):
        """The next JSON message (replies and events alike)."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def reply(self):
        """The next reply; events that arrive first are kept for event()."""
        while True:
            msg = self.recv()
            if "event" in msg:
                self.events.append(msg)
            else:
                return msg

    def cmd(self, name, args=None, id=None):
        """Send a command; returns the whole reply (with "return" or "error")."""
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        if id is not None:
            req["id"] = id
        self.send_raw(json.dumps(req).encode() + b"\n")
        return self.reply()

    def cmd_fds(self, name, args, fds):
        """Send a command with open file descriptors attached (SCM_RIGHTS on
        the unix socket), as libvirt does for getfd."""
        req = {"execute": name, "arguments": args}
        socket.send_fds(self.sock, [json.dumps(req).encode() + b"\n"], fds)
        return self.reply()

    def ok(self, name, args=None):
        """Send a command that must succeed; returns its "return" value."""
        r = self.cmd(name, args)
        if "return" not in r:
            raise QMPError("%s: %r" % (name, r))
        return r["return"]

    def event(self, name, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPError("no %s event within %ds (got %r)" % (name, timeout, self.events))
            self.sock.settimeout(left)
            try:
                msg = self.recv()
            except socket.timeout:
                continue
            finally:
                self.sock.settimeout(10)
            self.events.append(msg)

    def hmp(self, line):
        return self.ok("human-monitor-command", {"command-line": line})

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
