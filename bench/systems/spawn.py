"""(3) spawn-per-request: a fresh Python process per photo that imports rembg and calls rembg.remove.

This is what the backends did before pyworker: `python -c ...` per upload. Wall time runs from the spawn to
the exit (interpreter start, `import rembg`, new_session, remove, the PNG read from the child's stdout). Peak
RSS: each child's ru_maxrss from wait4(); with several in flight, the largest sum of the peaks of children
whose lifetimes overlap (an upper bound of what the machine held at once: their peaks may not coincide).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

from ..common import PYTHON, REPO, Batch, Run, run_batch
from ..inputs import Input
from . import System

SCRIPT = (
    "import sys\n"
    "from rembg import new_session, remove\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "sys.stdout.buffer.write(remove(data, session=new_session('u2netp')))\n"
)


class SpawnPerRequest(System):
    def __init__(self, key: str, label: str, threads: int) -> None:
        self.key, self.label = key, label
        self.threads = threads
        self.children: list[tuple[float, float, float]] = []  # (spawned, reaped, ru_maxrss MiB)
        self._lock = threading.Lock()
        self.env = {**os.environ, "OMP_NUM_THREADS": str(threads)}

    def start(self, inputs: list[Input]) -> None:
        pass

    def _spawn(self, inp: Input) -> float:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [PYTHON, "-c", SCRIPT, str(inp.path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self.env,
            cwd=REPO,
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        ms = (time.perf_counter() - t0) * 1000
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        if proc.returncode != 0 or not out.startswith(b"\x89PNG"):
            raise RuntimeError(f"spawn-per-request failed on {inp.name}: exit {proc.returncode}")
        with self._lock:
            self.children.append((t0, time.perf_counter(), usage.ru_maxrss / 1024))  # KiB on Linux
        return ms

    def run(self, inp: Input) -> Run:
        return Run(self._spawn(inp))

    def batch(self, inputs: list[Input], concurrency: int) -> Batch:
        return run_batch(inputs, [self._spawn] * concurrency)

    def peak_rss(self) -> dict[str, float]:
        with self._lock:
            kids = list(self.children)
        if not kids:
            return {}
        best: list[tuple[float, float, float]] = []
        for start, _, _ in kids:  # the set alive at some moment always includes the one that started last
            alive = [k for k in kids if k[0] <= start < k[1]]
            if sum(k[2] for k in alive) > sum(k[2] for k in best):
                best = alive
        return {f"child{i + 1}": round(k[2], 1) for i, k in enumerate(sorted(best, key=lambda k: -k[2]))}

    def stop(self) -> None:
        pass
