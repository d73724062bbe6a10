"""Resident memory figures, and giving freed heap back to the OS.

Read from /proc on Linux (a few microseconds, no import cost); psutil is the
fallback elsewhere. VmHWM is the kernel's own high-water mark, so a short
spike between two samples is never missed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

_MB = 1024.0


def _status_kb(field: str) -> float | None:
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(field.encode()):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float:
    kb = _status_kb("VmRSS:")
    if kb is None:
        import psutil

        return psutil.Process().memory_info().rss / (1024 * 1024)
    return round(kb / _MB, 1)


def peak_rss_mb() -> float:
    kb = _status_kb("VmHWM:")
    if kb is None:
        return rss_mb()
    return round(kb / _MB, 1)


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


def trim() -> None:
    """Return free glibc heap pages to the OS; without it RSS only ever grows."""
    lib = _libc()
    if lib is not None:
        lib.malloc_trim(0)
