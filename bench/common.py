"""Shared helpers of the benchmark: paths, statistics, the memory of processes."""

from __future__ import annotations

import math
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
OUT = BENCH / "out"
VENV_PY = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PY) if VENV_PY.exists() else sys.executable
MODEL = "u2netp"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def median(values: list[float]) -> float:
    return percentile(values, 50)


def percentile(values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), nan for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * pct / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def status_kb(pid: int, field_name: str) -> float | None:
    """A field of /proc/PID/status in KiB (VmHWM: the kernel's high-water mark of RSS)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(field_name.encode() + b":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    kb = status_kb(pid, "VmHWM")
    return None if kb is None else round(kb / 1024, 1)


def cpu_counters(pid: int) -> tuple[float, float, int]:
    """(user ms, system ms, minor page faults) a process has used so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    return int(f[11]) * tick_ms, int(f[12]) * tick_ms, int(f[7])


def tree_peak_rss_mb(pid: int) -> dict[str, float]:
    """VmHWM of a process and of each of its live descendants, by pid."""
    import psutil

    out: dict[str, float] = {}
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return out
    for p in procs:
        mb = peak_rss_mb(p.pid)
        if mb is not None:
            out[str(p.pid)] = mb
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Run:
    """One timed request: wall milliseconds as the client saw them, plus what the system reported."""

    ms: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """A throughput measurement: `jobs` requests with `concurrency` in flight."""

    jobs: int
    concurrency: int
    wall_s: float
    lat_ms: list[float]

    @property
    def images_per_s(self) -> float:
        return self.jobs / self.wall_s if self.wall_s > 0 else math.nan


def run_batch(items: list[Any], lanes: list[Callable[[Any], float]]) -> Batch:
    """Throughput: one thread per lane, each taking the next item and timing it with its own function
    (a connection, a worker, a spawner) until none are left. A lane that fails records the error and stops;
    the first error is raised after all lanes are done."""
    jobs: queue.Queue[Any] = queue.Queue()
    for item in items:
        jobs.put(item)
    lat: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def lane(do: Callable[[Any], float]) -> None:
        while True:
            try:
                item = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                ms = do(item)
            except BaseException as exc:
                errors.append(exc)
                return
            with lock:
                lat.append(ms)

    threads = [threading.Thread(target=lane, args=(do,)) for do in lanes]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return Batch(len(items), len(lanes), wall, lat)
