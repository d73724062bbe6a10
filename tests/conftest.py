from __future__ import annotations

from collections.abc import Iterator

import pytest

from .workerproc import WorkerProcess


@pytest.fixture(scope="module")
def worker() -> Iterator[WorkerProcess]:
    """One worker shared by a module's tests: they also prove it keeps serving after errors."""
    proc = WorkerProcess("--threads", "2")
    yield proc
    proc.close()


@pytest.fixture
def spawn() -> Iterator:
    """Start dedicated workers (for lifecycle tests); all are reaped afterwards."""
    started: list[WorkerProcess] = []

    def start(*args: str, **kw) -> WorkerProcess:
        proc = WorkerProcess(*args, **kw)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.close()
