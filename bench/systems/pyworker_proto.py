"""(2) pyworker's protocol driven from Python: length-prefixed msgpack frames over pipes, no Node in the path.

The client is testkit's (the tests' too). The worker's stderr goes to a log file, never to an undrained
pipe: a full stderr pipe would block the worker.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from testkit.client import WorkerProcess

from ..common import OUT, PYTHON, Batch, Run, peak_rss_mb, run_batch
from ..inputs import Input
from . import System


class Worker(WorkerProcess):
    """One `python -m pyworker` process, its stderr in bench/out/LOG_NAME.log; one request at a time."""

    def __init__(self, threads: int, extra_args: list[str] | None = None, log_name: str = "pyworker") -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        self._log = open(OUT / f"{log_name}.log", "ab")  # noqa: SIM115 - closed in close()
        super().__init__("--threads", str(threads), *(extra_args or []), stderr=self._log, python=PYTHON)
        self.last_stats: dict[str, Any] = {}

    def timed_remove(self, data: bytes, options: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """(client-side milliseconds from the first byte sent to the reply decoded, reply)."""
        t0 = time.perf_counter()
        reply = self.request("remove", timeout=600, image=data, options=options)
        ms = (time.perf_counter() - t0) * 1000
        if not reply.get("ok"):
            raise RuntimeError(f"pyworker failed: {reply.get('error')}")
        self.last_stats = reply["stats"]
        return ms, reply

    def close(self) -> None:
        super().close()
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
        ms, reply = self.clients[0].timed_remove(self.data[inp.name], self.options)
        meta = reply["meta"]
        return Run(ms, {"timings_ms": meta["timings_ms"], "out_size": [meta["width"], meta["height"]]})

    def batch(self, inputs: list[Input], concurrency: int) -> Batch:
        def job(client: Worker, inp: Input) -> float:
            return client.timed_remove(self.data[inp.name], self.options)[0]

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
