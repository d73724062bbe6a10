"""Deliberate misbehaviour of a worker, for the supervisors' fault tests only (not part of pyworker).

Python imports this module at start-up when tests/faults is on PYTHONPATH, which only the fault tests
set (with PYWORKER_TEST_FAULT_FILE). When pyworker.server is imported it wraps its `remove`: at the start
of a job the worker tries to claim the fault file by renaming it (atomic, so exactly one worker of a pool
gets it), reads the fault's name from it and acts it out once: hang, hang-gil, crash, raise, garbage,
close-stdout, stop-reading, slow:MS, unencodable (a NumPy bool in that job's meta). Two faults wait for
another moment: unencodable-stats (a NumPy bool in the next stats read: the next reply of any op, an
urgent pong included), float64-stats (the same with a NumPy float64, which plain msgpack packs: only a
strict worker refuses it) and unencodable-ready (in the `ready` frame). With PYWORKER_TEST_PROTOCOL=N it
announces protocol N in `ready`. The worker that claims a fault writes its pid to PATH.by.

With PYWORKER_TEST_STRICT_TYPES=1 (every worker the tests start: testkit.client, node-shim/test/helpers.js)
the worker packs every frame with msgpack's strict_types: a NumPy scalar in a reply, float64 included (it
packs today only because it subclasses float), fails there, and the worker answers `internal` naming it, which the test
client refuses. Tuples stay allowed: plain Python, packed as arrays.
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
STRICT_ENV = "PYWORKER_TEST_STRICT_TYPES"
# Faults claimed at another moment than the start of a job (see the module's docstring).
LATER = {"unencodable-stats", "float64-stats", "unencodable-ready"}
_out_fd: list[int] = []  # the frames fd of the Server, once one exists


def claim(only: set[str] | None = None) -> str | None:
    """The armed fault, taken (once); `only`: taken only if it is one of these, else those of LATER are left."""
    path = os.environ.get(ENV)
    if not path:
        return None
    try:
        with open(path) as fh:
            armed = fh.read().strip()
    except OSError:
        return None
    if (armed not in only) if only is not None else (armed in LATER):
        return None
    mine = f"{path}.claimed-{os.getpid()}"
    try:
        os.rename(path, mine)
    except OSError:
        return None
    with open(mine) as fh:
        fault = fh.read().strip()
    os.unlink(mine)
    # Who took it, for the tests (helpers.faultFile().claimedBy()): no guessing from the pool's counters.
    with open(f"{path}.by.tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.rename(f"{path}.by.tmp", f"{path}.by")
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

        pause = ctypes.PyDLL(None).pause
        # Says "holding the GIL from now on" to a test that must not ping earlier (PATH.gil).
        path = os.environ[ENV]
        with open(f"{path}.gil", "w"):
            pass
        while True:
            pause()
    if fault == "close-stdout":
        os.close(out_fd)
    # hang, stop-reading, close-stdout: alive, silent, reading nothing, forever.
    while True:
        time.sleep(3600)


def _unencodable() -> Any:
    import numpy

    return numpy.bool_(True)  # what killed pyworker 0.3.0: a NumPy bool in meta.compliance


def _strict_packb() -> None:
    import msgpack

    packb = msgpack.packb

    def tuples_only(obj: Any) -> Any:
        if type(obj) is tuple:
            return list(obj)
        kind = type(obj)
        raise TypeError(f"can not serialize {kind.__module__}.{kind.__qualname__} object (strict_types)")

    def strict(obj: Any, **kwargs: Any) -> bytes:
        return packb(obj, **{**kwargs, "strict_types": True, "default": tuples_only})

    msgpack.packb = strict


def _patch(server: Any) -> None:
    init, remove, stats, ready = server.Server.__init__, server.remove, server.Server.stats, server.Server._ready

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _out_fd[:] = [self.out_fd]

    def faulty_remove(*args: Any, **kwargs: Any) -> Any:
        fault = claim()
        if fault and fault != "unencodable":
            act(fault, _out_fd[0])
        result = remove(*args, **kwargs)
        if fault == "unencodable":
            result.meta["injected"] = _unencodable()
        return result

    def faulty_stats(self: Any) -> Any:
        figures = stats(self)
        fault = claim({"unencodable-stats", "float64-stats"})
        if fault == "unencodable-stats":
            figures["injected"] = _unencodable()
        elif fault == "float64-stats":
            import numpy

            figures["injected"] = numpy.float64(0.5)
        return figures

    def faulty_ready(self: Any) -> Any:
        frame = ready(self)
        if claim({"unencodable-ready"}):
            frame["injected"] = _unencodable()
        return frame

    server.Server.__init__ = __init__
    server.remove = faulty_remove
    if os.environ.get(ENV):
        server.Server.stats = faulty_stats
        server.Server._ready = faulty_ready
    if os.environ.get(PROTOCOL_ENV):
        server.PROTOCOL_VERSION = int(os.environ[PROTOCOL_ENV])
    if os.environ.get(STRICT_ENV):
        _strict_packb()


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


if os.environ.get(ENV) or os.environ.get(PROTOCOL_ENV) or os.environ.get(STRICT_ENV):
    sys.meta_path.insert(0, _AfterImport())
