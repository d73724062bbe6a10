"""Deliberate misbehaviour, for the supervisors' fault tests only.

Off unless PYWORKER_TEST_FAULT_FILE is set. At the start of a remove job the
worker tries to claim that file by renaming it (atomic, so exactly one worker
of a pool gets it), reads the fault's name from it and acts it out once.
"""

from __future__ import annotations

import os
import time

ENV = "PYWORKER_TEST_FAULT_FILE"
FAULTS = ("hang", "crash", "raise", "garbage", "close-stdout", "stop-reading", "slow:MS")


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


def act(fault: str, out_fd: int) -> bool:
    """Perform the fault. Returns True when the job should then be served normally."""
    if fault.startswith("slow:"):
        time.sleep(int(fault.split(":", 1)[1]) / 1000)
        return True
    if fault == "crash":
        os._exit(1)
    if fault == "raise":
        raise RuntimeError("injected fault: an unexpected exception inside a job")
    if fault == "garbage":
        # What a stray print() from a library would do to the stream.
        os.write(out_fd, b"Warning: something printed to stdout\n")
        return False
    if fault == "close-stdout":
        os.close(out_fd)
    # hang, stop-reading, close-stdout: alive, silent, reading nothing, forever.
    while True:
        time.sleep(3600)
