"""(2) pyworker's protocol driven from Python: length-prefixed msgpack frames over pipes, no Node in the path.

The client is written here from docs/protocol.md alone (as any client in another language would be). The
worker's stderr goes to a log file, never to an undrained pipe: a full stderr pipe would block the worker.
"""

from __future__ import annotations

import functools
import struct
import subprocess
import time
from typing import Any

import msgpack

from ..common import OUT, PYTHON, REPO, Batch, Run, peak_rss_mb, run_batch
from ..inputs import Input
from . import System


class Worker:
    """One `python -m pyworker` process and a blocking client: one request in flight at a time."""

    def __init__(self, threads: int, extra_args: list[str] | None = None, log_name: str = "pyworker") -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        self._log = open(OUT / f"{log_name}.log", "ab")  # noqa: SIM115 - closed in close()
        argv = [PYTHON, "-m", "pyworker", "--threads", str(threads), *(extra_args or [])]
        self.proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log)
        self._id = 0
        self.ready = self._read()
        if self.ready.get("op") != "ready":
            self.close()
            raise RuntimeError(f"pyworker did not start: {self.ready}")
        self.last_stats: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        head = self.proc.stdout.read(4)
        if len(head) < 4:
            raise RuntimeError(f"pyworker closed stdout (exit {self.proc.poll()}); see {self._log.name}")
        (n,) = struct.unpack(">I", head)
        body = self.proc.stdout.read(n)
        if len(body) < n:
            raise RuntimeError(f"pyworker closed stdout mid-frame; see {self._log.name}")
        return msgpack.unpackb(body, raw=False)

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self._id += 1
        body = msgpack.packb({"id": self._id, "op": op, **fields}, use_bin_type=True)
        self.proc.stdin.write(struct.pack(">I", len(body)) + body)
        self.proc.stdin.flush()
        reply = self._read()
        if reply.get("id") != self._id:
            raise RuntimeError(f"reply out of order: {reply.get('id')} for {self._id}")
        return reply

    def remove(self, data: bytes, options: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """(client-side milliseconds from the first byte sent to the reply decoded, reply)."""
        t0 = time.perf_counter()
        reply = self.request("remove", image=data, options=options)
        ms = (time.perf_counter() - t0) * 1000
        if not reply.get("ok"):
            raise RuntimeError(f"pyworker failed: {reply.get('error')}")
        self.last_stats = reply["stats"]
        return ms, reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]  # EOF: the worker exits 0
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


class PyworkerProtocol(System):
    def __init__(
        self,
        key: str,
        label: str,
        workers: int,
        threads: int,
        options: dict[str, Any],
        extra_args: list[str] | None = None,
    ) -> None:
        self.key, self.label = key, label
        self.workers = workers
        self.threads = threads
        self.options = options
        self.extra_args = extra_args or []
        self.clients: list[Worker] = []
        self.data: dict[str, bytes] = {}

    def start(self, inputs: list[Input]) -> None:
        self.data = {i.name: i.path.read_bytes() for i in inputs}
        self.clients = [Worker(self.threads, self.extra_args, log_name=self.key) for _ in range(self.workers)]

    def run(self, inp: Input) -> Run:
        ms, reply = self.clients[0].remove(self.data[inp.name], self.options)
        meta = reply["meta"]
        return Run(ms, {"timings_ms": meta["timings_ms"], "out_size": [meta["width"], meta["height"]]})

    def batch(self, inputs: list[Input], concurrency: int) -> Batch:
        def job(client: Worker, inp: Input) -> float:
            return client.remove(self.data[inp.name], self.options)[0]

        return run_batch(inputs, [functools.partial(job, c) for c in self.clients[:concurrency]])

    def peak_rss(self) -> dict[str, float]:
        out = {}
        for i, c in enumerate(self.clients):
            mb = peak_rss_mb(c.pid) or float(c.last_stats.get("peak_rss_mb", "nan"))
            out[f"worker{i + 1}"] = mb
        return out

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.clients = []
