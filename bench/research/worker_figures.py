#!/usr/bin/env python3
"""The issue's memory figures, measured on REAL workers (`python -m pyworker`), one fresh worker per figure.

For each mode given (a label, extra CLI flags, extra environment):
  idle     RSS after the ready frame (and again 0.5 s later, from a `stats` request)
  12mp     VmHWM of a fresh worker after one remove of bench/out/gen-12mp.jpg (default options, max_size 800)
  4096     VmHWM of a fresh worker after one remove of bench/out/gen-4096.png
  drift    RSS after job N minus RSS after job 1, N small jobs (samples/astronaut.jpg, 512x512) on one worker
  latency  client-seen ms per small job (samples/astronaut.jpg) PAIRED with a bare onnxruntime session.run
           (DEFAULT SessionOptions, same threads, 1x3x320x320) in a separate process, alternated job by job;
           ratio = median(client ms) / median(bare run ms) over the same window.

Usage (repo root):
  .venv/bin/python bench/research/worker_figures.py                  # lean and fast
  .venv/bin/python bench/research/worker_figures.py --modes lean --jobs 200 --runs 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ort_settings import CONFIGS, Proc, prepare  # noqa: E402

from tests.workerproc import WorkerProcess  # noqa: E402

BIG_JPEG = REPO / "bench/out/gen-12mp.jpg"
BIG_PNG = REPO / "bench/out/gen-4096.png"
SMALL = REPO / "samples/astronaut.jpg"

MODES = {
    "lean": ([], {}),
    "lean-nohugepages": ([], {"PYWORKER_NO_HUGEPAGES": "1"}),
    "fast": (["--memory-mode", "fast"], {}),
}


def _hwm(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _worker(mode: str, threads: int) -> WorkerProcess:
    flags, env = MODES[mode]
    return WorkerProcess("serve", "--threads", str(threads), *flags, env=env)


def idle(mode: str, threads: int) -> tuple[float, float]:
    w = _worker(mode, threads)
    try:
        ready = float(w.ready["rss_mb"])  # type: ignore[index]
        time.sleep(0.5)
        return ready, w.request("stats")["stats"]["rss_mb"]
    finally:
        w.close()


def peak(mode: str, threads: int, path: Path) -> tuple[float, float]:
    w = _worker(mode, threads)
    try:
        t0 = time.perf_counter()
        reply = w.remove(path.read_bytes(), timeout=120)
        ms = (time.perf_counter() - t0) * 1000
        assert reply["ok"], reply
        return _hwm(w.pid), ms
    finally:
        w.close()


def drift(mode: str, threads: int, jobs: int) -> list[float]:
    w = _worker(mode, threads)
    data = SMALL.read_bytes()
    try:
        series = []
        for _ in range(jobs):
            reply = w.remove(data)
            assert reply["ok"], reply
            series.append(reply["stats"]["rss_mb"])
        return series
    finally:
        w.close()


def latency(mode: str, threads: int, runs: int, warmup: int = 3) -> tuple[float, float]:
    floor = Proc(dict(CONFIGS["default"], intra=threads))
    w = _worker(mode, threads)
    data = SMALL.read_bytes()
    client, bare = [], []
    try:
        for i in range(warmup + runs):
            order = (0, 1) if i % 2 else (1, 0)
            for who in order:
                if who == 0:
                    t0 = time.perf_counter()
                    reply = w.remove(data)
                    c = (time.perf_counter() - t0) * 1000
                    assert reply["ok"], reply
                else:
                    b = floor.cmd("run")["ms"]
            if i >= warmup:
                client.append(c)
                bare.append(b)
    finally:
        w.close()
        floor.end()
    return statistics.median(client), statistics.median(bare)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="lean,fast")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=200, help="jobs for the drift figure")
    ap.add_argument("--runs", type=int, default=20, help="paired jobs for the latency figure")
    ap.add_argument("--skip", default="", help="comma-separated figures to skip: idle,peak,drift,latency")
    a = ap.parse_args()
    skip = set(a.skip.split(","))
    prepare(quant=False)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at start; threads {a.threads}")
    for mode in a.modes.split(","):
        out = [mode]
        if "idle" not in skip:
            r, s = idle(mode, a.threads)
            out.append(f"idle {r:.0f}/{s:.0f} MiB")
        if "peak" not in skip:
            h1, ms1 = peak(mode, a.threads, BIG_JPEG)
            h2, ms2 = peak(mode, a.threads, BIG_PNG)
            out.append(f"peak 12mp {h1:.0f} MiB ({ms1:.0f} ms)  4096png {h2:.0f} MiB ({ms2:.0f} ms)")
        if "drift" not in skip:
            s = drift(mode, a.threads, a.jobs)
            out.append(f"drift job1 {s[0]:.1f} job{len(s)} {s[-1]:.1f} ({s[-1] - s[0]:+.1f}) max {max(s):.1f}")
        if "latency" not in skip:
            c, b = latency(mode, a.threads, a.runs)
            out.append(f"client {c:.0f} ms / bare default run {b:.0f} ms = {c / b:.2f}x")
        print(" | ".join(out), f"| load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
