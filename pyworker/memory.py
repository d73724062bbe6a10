"""Resident memory figures, and giving freed heap back to the OS.

Read from /proc on Linux (a few microseconds, no import cost); psutil is the
fallback elsewhere. VmHWM is the kernel's own high-water mark, so a short
spike between two samples is never missed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
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


# glibc mallopt() parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 1 << 20  # 1 MiB
ARENA_MAX = 2
HUGETLB_TUNABLE = "glibc.malloc.hugetlb=1"  # glibc >= 2.35: madvise(MADV_HUGEPAGE) on malloc's mmaps and heap
NO_HUGEPAGES_ENV = "PYWORKER_NO_HUGEPAGES"


def _glibc_version(lib: ctypes.CDLL) -> tuple[int, int] | None:
    try:
        fn = lib.gnu_get_libc_version
    except AttributeError:
        return None
    fn.restype = ctypes.c_char_p
    try:
        major, minor = fn().decode().split(".")[:2]
        return int(major), int(minor)
    except (ValueError, UnicodeDecodeError):
        return None


def _thp_available() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as fh:
            return "[never]" not in fh.read()
    except OSError:
        return False


def hugepage_env() -> dict[str, str] | None:
    """The environment to re-exec with so glibc backs big blocks with huge pages, or None if not needed/possible."""
    lib = _libc()
    version = _glibc_version(lib) if lib is not None else None
    if version is None or version < (2, 35) or not _thp_available():
        return None
    if os.environ.get(NO_HUGEPAGES_ENV):
        return None
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in tunables:
        return None  # already set (by us before the exec, or by the caller: theirs wins)
    return {"GLIBC_TUNABLES": f"{tunables}:{HUGETLB_TUNABLE}" if tunables else HUGETLB_TUNABLE}


def _started_as_pyworker() -> bool:
    """Only a process started as `python -m pyworker` re-executes itself, never one that imported us."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return bool(getattr(sys, "orig_argv", None)) and getattr(spec, "name", "") in ("pyworker", "pyworker.__main__")


def tune_malloc(reexec: bool = True) -> bool:
    """Tune glibc's allocator for a long-lived worker; call once at serve start, before the model loads.

    1. Transparent huge pages for malloc. glibc reads its hugetlb tunable only at process start, so if
       it is missing the process re-executes itself (same pid, same fds, same argv) with
       GLIBC_TUNABLES=glibc.malloc.hugetlb=1 added; nothing has been read from stdin yet. Without it each
       job re-faults ~140k 4 KiB pages; with it a few hundred 2 MiB ones. Set PYWORKER_NO_HUGEPAGES=1 to
       skip this (or set glibc.malloc.hugetlb yourself).
    2. mallopt(M_MMAP_THRESHOLD, 1 MiB): every block of 1 MiB or more (decoded images, resized copies,
       onnxruntime activations) is its own mmap, unmapped on free, so it never strands heap pages behind a
       small live block. Setting it also stops glibc raising the threshold by itself (up to 32 MiB) after
       the first big free, which is what lets a worker's heap creep up job after job.
    3. mallopt(M_ARENA_MAX, 2): onnxruntime's pool threads would otherwise each get a heap of their own.

    Returns False, and does nothing, where the C library is not glibc (musl, macOS, Windows).
    """
    lib = _libc()
    if lib is None or _glibc_version(lib) is None:
        return False
    env = hugepage_env() if reexec else None
    if env is not None and _started_as_pyworker():
        os.environ.update(env)
        sys.stdout.flush()
        sys.stderr.flush()
        with contextlib.suppress(OSError):  # if the exec fails, carry on without huge pages
            os.execv(sys.executable, sys.orig_argv)
    ok = lib.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return lib.mallopt(_M_ARENA_MAX, ARENA_MAX) == 1 and ok
