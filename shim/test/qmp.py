#!/usr/bin/env python3
"""Minimal QMP driver for shim/test/smoke.sh (no third-party modules). Every wait is bounded.

  qmp.py wait-line FILE TEXT TIMEOUT          wait until FILE contains TEXT; print seconds
  qmp.py save SOCK STATEFILE TIMEOUT           stop, migrate to exec:cat > STATEFILE, quit
  qmp.py resume SOCK DBG TIMEOUT               wait for inmigrate to end, cont, inject-nmi,
                                               then print when each SEVSHIM line appears
  qmp.py quit SOCK                             quit (ignore errors)
"""
import json
import os
import socket
import sys
import time


class QMP:
    def __init__(self, path, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.settimeout(timeout)
                self.s.connect(path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rwb")
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("QMP connection closed")
            msg = json.loads(line)
            if "event" in msg:
                continue
            return msg

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.f.write((json.dumps(req) + "\n").encode())
        self.f.flush()
        msg = self._read()
        if "error" in msg:
            raise RuntimeError(f"{name}: {msg['error']}")
        return msg.get("return")


def wait_line(path, text, timeout, t0=None):
    t0 = t0 if t0 is not None else time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with open(path, "rb") as f:
                if text.encode() in f.read():
                    return time.monotonic() - t0
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    return None


def main():
    op = sys.argv[1]
    if op == "wait-line":
        t = wait_line(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        if t is None:
            print(f"timeout waiting for {sys.argv[3]!r} in {sys.argv[2]}", file=sys.stderr)
            sys.exit(1)
        print(f"{t:.3f}")
    elif op == "save":
        q = QMP(sys.argv[2], float(sys.argv[4]))
        t0 = time.monotonic()
        q.cmd("stop")
        q.cmd("migrate", uri=f"exec:cat > {sys.argv[3]}")
        while True:
            st = q.cmd("query-migrate").get("status")
            if st == "completed":
                break
            if st in ("failed", "cancelled") or time.monotonic() - t0 > float(sys.argv[4]):
                print(f"migration status {st}", file=sys.stderr)
                sys.exit(1)
            time.sleep(0.05)
        print(f"migrate {time.monotonic() - t0:.3f}s, {os.path.getsize(sys.argv[3])} bytes")
        try:
            q.cmd("quit")
        except (RuntimeError, OSError):
            pass
    elif op == "resume":
        timeout = float(sys.argv[4])
        q = QMP(sys.argv[2], timeout)
        t0 = time.monotonic()
        while q.cmd("query-status").get("status") == "inmigrate":
            if time.monotonic() - t0 > timeout:
                print("still inmigrate", file=sys.stderr)
                sys.exit(1)
            time.sleep(0.02)
        t_load = time.monotonic() - t0
        q.cmd("cont")
        q.cmd("inject-nmi")
        t1 = time.monotonic()
        print(f"incoming loaded {t_load:.3f}s after QMP connect; cont + inject-nmi sent")
        last = 0.0
        for marker in ("SEVSHIM WAKE", "SEVSHIM LOADED", "SEVSHIM VERIFIED", "SEVSHIM FLASHED",
                       "SEVSHIM HANDOFF"):
            # a refusal ends the sequence early
            t = None
            while time.monotonic() - t1 < timeout:
                with open(sys.argv[3], "rb") as f:
                    data = f.read()
                if marker.encode() in data:
                    t = time.monotonic() - t1
                    break
                if b"SEVSHIM HALT" in data:
                    break
                time.sleep(0.01)
            if t is None:
                break
            print(f"  {marker:<17} +{t:.3f}s (step {t - last:.3f}s)")
            last = t
    elif op == "quit":
        try:
            QMP(sys.argv[2], 5).cmd("quit")
        except Exception:  # noqa: BLE001 - best effort
            pass
    else:
        sys.exit(f"unknown op {op}")


if __name__ == "__main__":
    main()
