"""Deliberate misbehaviour of a worker, for the supervisors' fault tests only (not part of pyworker).

Python imports this module at start-up when tests/faults is on PYTHONPATH, which only the fault tests
set (with PYWORKER_TEST_FAULT_FILE). When pyworker.server is imported it wraps its `remove`: at the start
of a job the worker tries to claim the fault file by renaming it (atomic, so exactly one worker of a pool
gets it), reads the fault's name from it and acts it out once: hang, hang-gil, crash, raise, garbage,
close-stdout, stop-reading, slow:MS. With PYWORKER_TEST_PROTOCOL=N it announces protocol N in `ready`.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import time
from typing import Any

ENV = "PYWORKER_TEST_FAULT_FILE"
# The protocol version the worker announces in `ready`, instead of its own: a worker of another release.
PROTOCOL_ENV = "PYWORKER_TEST_PROTOCOL"
_out_fd: list[int] = []  # the frames fd of the Server, once one exists


def claim() -> str | None:
    path = os.environ.get(ENV)
    if not path:
        return None
    mine = f"{path}.claimed-{os.getpid()}"
    try:
        os.rename(path, mine)
    except OSError:
        return None
    with open(mine) as fh:
        fault = fh.read().strip()
    os.unlink(mine)
    return fault


def act(fault: str, out_fd: int) -> None:
    """Perform the fault; returns when the job should then be served as usual."""
    if fault.startswith("slow:"):
        time.sleep(int(fault.split(":", 1)[1]) / 1000)
        return
    if fault == "crash":
        os._exit(1)
    if fault == "raise":
        raise RuntimeError("injected fault: an unexpected exception inside a job")
    if fault == "garbage":
        # What a stray print() from a library would do to the stream (the reply follows it).
        os.write(out_fd, b"Warning: something printed to stdout\n")
        return
    if fault == "hang-gil":
        # A native call that never returns and never lets go of the GIL (PyDLL keeps it held): no Python
        # thread of the process runs again, the stdin reader that answers pings included.
        import ctypes

        while True:
            ctypes.PyDLL(None).pause()
    if fault == "close-stdout":
        os.close(out_fd)
    # hang, stop-reading, close-stdout: alive, silent, reading nothing, forever.
    while True:
        time.sleep(3600)


def _patch(server: Any) -> None:
    init, remove = server.Server.__init__, server.remove

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _out_fd[:] = [self.out_fd]

    def faulty_remove(*args: Any, **kwargs: Any) -> Any:
        fault = claim()
        if fault:
            act(fault, _out_fd[0])
        return remove(*args, **kwargs)

    server.Server.__init__ = __init__
    server.remove = faulty_remove
    if os.environ.get(PROTOCOL_ENV):
        server.PROTOCOL_VERSION = int(os.environ[PROTOCOL_ENV])


class _AfterImport(importlib.abc.MetaPathFinder):
    """Patches pyworker.server right after it is imported."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "pyworker.server":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.loader is not None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


if os.environ.get(ENV) or os.environ.get(PROTOCOL_ENV):
    sys.meta_path.insert(0, _AfterImport())
