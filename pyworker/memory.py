"""Resident memory figures, and giving freed heap back to the OS.

Read from /proc on Linux (a few microseconds, no import cost); psutil is the
fallback elsewhere. VmHWM is the kernel's own high-water mark, so a short
spike between two samples is never missed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import sys
import threading
from collections.abc import Iterator
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

        return float(psutil.Process().memory_info().rss) / (1024 * 1024)
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
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 1 << 20  # 1 MiB, between runs: image buffers are their own mmaps, unmapped on free
RUN_MMAP_THRESHOLD = 16 << 20  # lean, during session.run: activations up to 16 MiB come from the heap
FAST_RUN_MMAP_THRESHOLD = 1 << 30  # fast, during session.run: every activation comes from the heap
FAST_IDLE_TRIM_S = 5.0  # fast: the heap a job leaves is kept this long for the next job, then trimmed
MEMORY_MODES = ("lean", "fast")
TRIM_THRESHOLD = 512 << 20  # free() never shrinks the heap by itself; settle() does it once, after the job
ARENA_MAX = 2
SETTLE_SLACK_MB = 4.0  # RSS this far above the last settled figure is worth a malloc_trim
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


def tune_malloc(reexec: bool = True, mode: str = "lean") -> bool:
    """Tune glibc's allocator for a long-lived worker; call once at serve start, before the model loads.

    1. Transparent huge pages for malloc. glibc reads its hugetlb tunable only at process start, so if
       it is missing the process re-executes itself (same pid, same fds, same argv) with
       GLIBC_TUNABLES=glibc.malloc.hugetlb=1 added; nothing has been read from stdin yet. Without it each
       job re-faults ~140k 4 KiB pages; with it a few hundred 2 MiB ones. Set PYWORKER_NO_HUGEPAGES=1 to
       skip this (or set glibc.malloc.hugetlb yourself).
    2. mallopt(M_MMAP_THRESHOLD, 1 MiB) between runs: every block of 1 MiB or more (decoded images,
       resized copies) is its own mmap, unmapped on free, so it never strands heap pages behind a small
       live block. Setting it also stops glibc raising the threshold by itself (up to 32 MiB) after the
       first big free, which is what lets a worker's heap creep up job after job. During session.run,
       activation_heap() lifts it (see there): to 16 MiB in lean mode, above any activation in fast mode.
    3. mallopt(M_TRIM_THRESHOLD, 512 MiB): free() does not hand the top of the heap back in the middle of
       a run (only to fault it in again a few layers later); settle() trims once the job is done.
    4. mallopt(M_ARENA_MAX, 2): onnxruntime's pool threads would otherwise each get a heap of their own.

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
    if mode not in MEMORY_MODES:
        raise ValueError(f"memory mode must be one of {MEMORY_MODES}, not {mode!r}")
    results = [lib.mallopt(opt, value) for opt, value in _TUNED]
    global _tuned, _run_threshold, _keep_heap_s
    _tuned = all(r == 1 for r in results)
    _run_threshold = FAST_RUN_MMAP_THRESHOLD if mode == "fast" else RUN_MMAP_THRESHOLD
    _keep_heap_s = FAST_IDLE_TRIM_S if mode == "fast" and _tuned else None
    return _tuned


_TUNED = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_ARENA_MAX, ARENA_MAX))
_tuned = False  # set by tune_malloc(): only then does activation_heap() touch the allocator
# Both set by tune_malloc() from the memory mode, the one place it is read: a process that never called it
# (an embedding, a test) is lean.
_run_threshold = RUN_MMAP_THRESHOLD
_keep_heap_s: float | None = None  # fast: Settler keeps the heap this long after a job
_pending_trim: threading.Timer | None = None  # fast mode: the idle trim a Settler scheduled


@contextlib.contextmanager
def activation_heap() -> Iterator[None]:
    """Around session.run: blocks under 16 MiB (lean) or all blocks (fast) come from glibc's heap.

    Without an arena (lean mode) onnxruntime mallocs each activation and frees it after its last use.
    As mmaps (1 MiB threshold) every one of them, hundreds per run, is faulted in and zeroed anew; from
    the heap a freed activation is reused by the next one, so a u2netp run takes ~5,000 page faults
    instead of ~33,000 and ~7 % more CPU than onnxruntime's own arena instead of ~25 %. The largest
    blocks (26-52 MB at 320²) stay mmaps: in the heap they leave holes the smaller ones cannot fill, and
    the run's peak rose to ~300 MB (256 MiB threshold) instead of ~240 (docs/memory.md). The heap keeps
    its pages until Settler.settle() trims them after the job; the threshold goes back to 1 MiB after
    the run so image buffers stay mmaps.

    Fast mode puts every block in the heap and Settler keeps it between jobs: a run then reuses the
    pages the previous one faulted in (no page faults, no zeroing: ~15 % less CPU a job, inference at
    onnxruntime's own arena speed) at a ~300-340 MB peak while busy. A run cancels a pending idle trim.
    """
    _cancel_idle_trim()
    lib = _libc() if _tuned else None
    if lib is not None:
        lib.mallopt(_M_MMAP_THRESHOLD, _run_threshold)
    try:
        yield
    finally:
        if lib is not None:
            lib.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def _cancel_idle_trim() -> None:
    global _pending_trim
    timer, _pending_trim = _pending_trim, None
    if timer is not None:
        timer.cancel()


def _schedule_idle_trim(after_s: float) -> None:
    global _pending_trim
    _cancel_idle_trim()
    timer = threading.Timer(after_s, trim)
    timer.daemon = True  # never keeps a stopping worker alive
    _pending_trim = timer
    timer.start()


class Settler:
    """Gives memory back after a job, only when the job left RSS higher than the last settled figure.

    A job that stayed within SETTLE_SLACK_MB costs nothing here. Objects are freed by reference counting
    the moment a job drops them; the collector only finds cycles, and a full gc.collect() costs 5-15 ms
    with numpy, Pillow and onnxruntime loaded, so a job collects the young generations only; a failed job
    (whose traceback may hold frames in a cycle) collects everything.

    In fast mode the trim waits until the worker has been idle for FAST_IDLE_TRIM_S (as jemalloc's
    dirty-page decay does), so back-to-back jobs reuse the heap; it happens at once for a failed job, the
    warm-up, or RSS above `max_rss_mb` (which must not retire a worker for pages it would give back).
    """

    def __init__(self, max_rss_mb: float | None = None) -> None:
        self.settled_mb = rss_mb()
        self.max_rss_mb = max_rss_mb

    def settle(self, force: bool = False) -> float:
        """Trim if RSS rose (or if forced: a failed job, the warm-up); returns RSS in MB afterwards."""
        gc.collect(2 if force else 1)
        now = rss_mb()
        rose = now > self.settled_mb + SETTLE_SLACK_MB
        under_limit = self.max_rss_mb is None or now <= self.max_rss_mb
        if rose and not force and _keep_heap_s is not None and under_limit:
            _schedule_idle_trim(_keep_heap_s)
            return now
        if force or rose:
            _cancel_idle_trim()
            trim()
            now = rss_mb()
            self.settled_mb = now
        return now
