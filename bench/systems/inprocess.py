"""(4) rembg in one process and (6) the onnxruntime floor: both run in bench/child.py, a process of their own."""

from __future__ import annotations

import os

from ..common import BENCH, PYTHON, REPO, Batch, Run
from ..inputs import Input
from . import System
from .jsonlines import JsonLinesChild


class InProcess(System):
    def __init__(self, key: str, label: str, mode: str, threads: int, lanes: int = 1) -> None:
        """rembg: one session of `threads` shared by `lanes` request threads; floor: `lanes` sessions."""
        self.key, self.label, self.mode = key, label, mode
        self.threads, self.lanes = threads, lanes
        self.child: JsonLinesChild | None = None

    def start(self, inputs: list[Input]) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads)}
        self.child = JsonLinesChild(
            [PYTHON, str(BENCH / "child.py"), self.mode, str(self.threads), str(self.lanes)],
            self.key,
            env=env,
            cwd=REPO,
        )
        self.child.call(op="load", files={i.name: str(i.path) for i in inputs})

    def run(self, inp: Input) -> Run:
        assert self.child is not None
        return Run(self.child.call(op="run", name=inp.name)["ms"])

    def batch(self, inputs: list[Input], concurrency: int) -> Batch:
        assert self.child is not None
        r = self.child.call(op="batch", names=[i.name for i in inputs], concurrency=concurrency)
        return Batch(len(inputs), concurrency, r["wall_s"], r["lat_ms"])

    def peak_rss(self) -> dict[str, float]:
        assert self.child is not None
        return {"process": self.child.call(op="peak")["peak_rss_mb"]}

    def stop(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None
