"""(1) pyworker through node-shim: a Node process with createPool({size}) and its worker processes."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..common import BENCH, REPO, Batch, Run, peak_rss_mb
from ..inputs import Input
from . import System
from .jsonlines import JsonLinesChild


class NodeShim(System):
    def __init__(self, key: str, label: str, size: int, threads: int, options: dict[str, Any]) -> None:
        self.key, self.label = key, label
        self.size, self.threads = size, threads
        self.options = options  # camelCase, as a Node caller writes them
        self.child: JsonLinesChild | None = None

    def start(self, inputs: list[Input]) -> None:
        self.child = JsonLinesChild(
            ["node", str(BENCH / "node_client.js"), str(self.size), str(self.threads)],
            self.key,
            cwd=REPO,
            # The pool's interpreter: this one (make setup installs pyworker into .venv); the shim never guesses.
            env={**os.environ, "PYWORKER_PYTHON": sys.executable},
        )
        self.child.call(op="load", files={i.name: str(i.path) for i in inputs})

    def run(self, inp: Input) -> Run:
        assert self.child is not None
        r = self.child.call(op="run", name=inp.name, options=self.options)
        meta = r["meta"]
        return Run(r["ms"], {"timings_ms": meta["timingsMs"], "out_size": [meta["width"], meta["height"]]})

    def batch(self, inputs: list[Input], concurrency: int) -> Batch:
        assert self.child is not None
        r = self.child.call(op="batch", names=[i.name for i in inputs], concurrency=concurrency, options=self.options)
        return Batch(len(inputs), concurrency, r["wallS"], r["latMs"])

    def peak_rss(self) -> dict[str, float]:
        assert self.child is not None
        r = self.child.call(op="peak")
        if r["workersStarted"] != self.size:  # a replaced worker's peak would be missing from the sum
            raise RuntimeError(f"{self.key}: {r['workersStarted']} workers started for a pool of {self.size}")
        out = {"node": round(r["nodeMaxRssMb"], 1)}
        for i, w in enumerate(r["workers"]):
            # VmHWM straight from /proc; the last reply's stats.peak_rss_mb if the worker is gone
            out[f"worker{i + 1}"] = peak_rss_mb(w["pid"]) or w["peakRssMb"]
        return out

    def stop(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None
