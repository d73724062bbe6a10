"""The two memory modes, through real workers: lean gives the heap back after every job; fast keeps it
while jobs keep coming (no page faults to re-pay), gives it back once idle, and never lets a kept heap
retire a worker under --max-rss-mb.

Page faults are counted from /proc/PID/stat (minflt): unlike milliseconds, they do not move with the
machine's load, so they show the mechanism without a timed test. The speed itself is `make bench`'s.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pyworker.memory import FAST_IDLE_TRIM_S

from .workerproc import WorkerProcess

PHOTO = (Path(__file__).resolve().parent.parent / "samples" / "astronaut.jpg").read_bytes()


def _minflt(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[7])


def _faults_per_job(w: WorkerProcess, jobs: int = 3) -> float:
    for _ in range(2):  # the first job loads what the rest reuse
        assert w.remove(PHOTO)["ok"]
    before = _minflt(w.pid)
    for _ in range(jobs):
        assert w.remove(PHOTO)["ok"]
    return (_minflt(w.pid) - before) / jobs


@pytest.fixture
def start(spawn):
    def run(*args: str) -> tuple[WorkerProcess, float]:
        w = spawn("--threads", "1", *args)
        return w, float(w.ready["rss_mb"])

    return run


def test_lean_gives_the_heap_back_after_every_job(start) -> None:
    w, idle = start("--memory-mode", "lean")
    faults = _faults_per_job(w)
    reply = w.remove(PHOTO)
    assert reply["stats"]["rss_mb"] < idle + 30, (reply["stats"], idle)
    assert faults > 1000, faults  # the price: every run faults its activations in again


def test_fast_keeps_the_heap_between_jobs_then_gives_it_back_when_idle(start) -> None:
    w, idle = start("--memory-mode", "fast")
    faults = _faults_per_job(w)
    kept = w.remove(PHOTO)["stats"]["rss_mb"]
    assert faults < 300, faults  # the runs reuse the pages the previous run faulted in
    assert kept > idle + 100, (kept, idle)
    # Given back once idle: wait for that state (a fixed nap of FAST_IDLE_TRIM_S + 2 lost to a loaded machine).
    deadline = time.monotonic() + FAST_IDLE_TRIM_S + 60
    while (after := w.request("stats")["stats"]["rss_mb"]) >= idle + 30 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert after < idle + 30, (after, idle, kept)
    assert w.remove(PHOTO)["ok"]  # and it serves on after the trim


def test_fast_trims_at_once_rather_than_retire_for_a_kept_heap(start) -> None:
    w, _ = start("--memory-mode", "fast", "--max-rss-mb", "200")
    for _ in range(3):
        reply = w.remove(PHOTO)
        assert reply["ok"] and "retiring" not in reply, reply.get("stats")
        assert reply["stats"]["rss_mb"] <= 200
