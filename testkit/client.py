"""A real pyworker subprocess and the one Python protocol client of the tests and the benchmarks (no mocks).

Written from docs/protocol.md; tests/test_protocol_doc.py runs that page's own examples.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgpack

REPO = Path(__file__).resolve().parent.parent
FAULTS = REPO / "tests" / "faults"  # the test-only hooks (sitecustomize.py), on the worker's PYTHONPATH
# The start of the `internal` message of a reply the worker could not encode (pyworker/server.py).
UNENCODABLE = "could not be encoded"


class UnencodableReply(AssertionError):
    """The worker could not encode a reply: a NumPy scalar (or another non-plain value) reached it."""


def fault_env(fault_file: Path) -> dict[str, str]:
    """A worker environment with fault injection (tests/faults/sitecustomize.py) armed by `fault_file`."""
    return {"PYWORKER_TEST_FAULT_FILE": str(fault_file), "PYTHONPATH": str(FAULTS)}


def _with_path(env: dict[str, str], entry: Path) -> dict[str, str]:
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(entry)]
    return {**env, "PYTHONPATH": os.pathsep.join([str(entry), *paths])}


def frame(message: Any) -> bytes:
    body = msgpack.packb(message, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


class WorkerProcess:
    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
        stderr: Any = subprocess.PIPE,
        python: str = sys.executable,
        cwd: Path = REPO,
        strict_types: bool = False,
    ) -> None:
        """`stderr`: PIPE (read it with stderr_text() or drain it: a full pipe blocks the worker) or a file.

        `strict_types` (on for every worker of the tests, tests/workerproc.py): the worker packs each
        frame with msgpack's strict_types (tests/faults/sitecustomize.py), so a NumPy scalar anywhere in
        a reply, float64 included, becomes an `internal` "could not be encoded" reply, and read() raises
        UnencodableReply on it. Re-encoding replies here could not see it: unpacked, every value is plain.
        A test that provokes such a reply on purpose sets `expect_unencodable`.
        """
        full_env = {**os.environ, **(env or {})}
        if strict_types:
            full_env = _with_path({**full_env, "PYWORKER_TEST_STRICT_TYPES": "1"}, FAULTS)
        self.strict_types = strict_types
        self.expect_unencodable = False
        self.proc = subprocess.Popen(
            [python, "-m", "pyworker", *args],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=full_env,
        )
        self._buf = bytearray()
        self._next_id = 1
        self.ready: dict[str, Any] | None = None
        if wait_ready:
            self.ready = self.read(timeout=60)
            assert self.ready.get("op") == "ready", self.ready

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(frame(message))

    def _fill(self, deadline: float) -> bool:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no reply from the worker in time")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            raise TimeoutError("no reply from the worker in time")
        chunk = os.read(fd, 1 << 20)
        self._buf += chunk
        return bool(chunk)

    def read(self, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while len(self._buf) < 4:
            if not self._fill(deadline):
                raise EOFError("worker closed stdout")
        (n,) = struct.unpack_from(">I", self._buf)
        while len(self._buf) < 4 + n:
            if not self._fill(deadline):
                raise EOFError("worker closed stdout mid-frame")
        body = bytes(self._buf[4 : 4 + n])
        del self._buf[: 4 + n]
        message = msgpack.unpackb(body, raw=False, strict_map_key=False)
        self._check_types(message)
        return message

    def _check_types(self, message: Any) -> None:
        if not isinstance(message, dict) or self.expect_unencodable:
            return
        error = message.get("error")
        if isinstance(error, dict) and error.get("code") == "internal" and UNENCODABLE in str(error.get("message")):
            raise UnencodableReply(f"the worker could not encode a reply: {error['message']}")

    def request(self, op: str, timeout: float = 60, **fields: Any) -> dict[str, Any]:
        req_id = self._next_id
        self._next_id += 1
        self.send({"id": req_id, "op": op, **fields})
        reply = self.read(timeout)
        assert reply["id"] == req_id, reply
        return reply

    def remove(self, image: bytes, timeout: float = 60, **options: Any) -> dict[str, Any]:
        return self.request("remove", timeout=timeout, image=image, options=options)

    def stdout_eof(self, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            return False
        return True

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def stderr_text(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def reset_peak(pid: int) -> None:
    """Reset a process's VmHWM to its current RSS (Linux >= 4.0): the next peak read is what came after."""
    with open(f"/proc/{pid}/clear_refs", "w") as fh:
        fh.write("5")
