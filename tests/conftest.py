from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from .workerproc import WorkerProcess

# Hypothesis' defaults race the wall clock: a 200 ms deadline per example and a "too slow" health check on
# data generation both fail on a loaded machine. Our properties assert results, never speed (a hang is caught
# by CPU time in the test itself), so neither applies here.
settings.register_profile("deterministic", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("deterministic")


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
