"""What each hostile input of issue 11 costs one fresh worker: wall and CPU time, peak RSS above idle.

    .venv/bin/python bench/attacks.py                      # this checkout
    .venv/bin/python bench/attacks.py --repo /tmp/old-main # another checkout (its pyworker), same inputs

One fresh worker per attack (`--threads 2`, default flags); its VmHWM is reset just before the job
(/proc/PID/clear_refs), so the peak is the job's own, not the start-up's. CPU is the worker's
utime + stime (all its threads, /proc/PID/stat) across the request: far less sensitive to the
machine's load than wall time. While a job runs, an urgent ping is sent every 100 ms; the row gives
the slowest pong (what a supervisor's pingTimeoutMs must allow). Prints one row per attack;
docs/reliability.md's table quotes these rows. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import hostile  # noqa: E402
from tests.images import encode, subject_scene  # noqa: E402
from tests.workerproc import WorkerProcess  # noqa: E402


def attacks() -> list[tuple[str, dict]]:
    small_photo = encode(subject_scene((240, 200), seed=2)[0], "JPEG", quality=80)
    return [
        ("baseline: 4096 px JPEG, defaults", {"image": hostile.photo_jpeg()}),
        ("baseline: 4096 px JPEG, max_size 0, png", {"image": hostile.photo_jpeg(), "options": {"max_size": 0}}),
        ("scan bomb: 20,000 scans, 4096 px", {"image": hostile.scan_bomb(4096, 20000)}),
        ("trim + padding 4096, small photo", {"image": small_photo, "options": {"trim": True, "padding": 4096}}),
        (
            "trim + padding 4096, 4096 px, max_size 0",
            {"image": hostile.photo_jpeg(), "options": {"trim": True, "padding": 4096, "max_size": 0}},
        ),
        ("refine, 4096 px, defaults", {"image": hostile.photo_jpeg(), "options": {"refine": True}}),
        ("refine, 4096 px, max_size 0", {"image": hostile.photo_jpeg(), "options": {"refine": True, "max_size": 0}}),
        (
            "webp out, 4096 px, max_size 0",
            {"image": hostile.photo_jpeg(), "options": {"format": "webp", "max_size": 0}},
        ),
        ("1 KB WEBP, 4096 px canvas", {"image": hostile.webp_blank_canvas()}),
        ("msgpack bomb: 4M empty arrays in a ping", {"raw": hostile.msgpack_object_bomb(4_000_000)}),
        ("largest accepted WEBP: 4000x3000 photo", {"image": _photo(4000, 3000, "WEBP")}),
        ("12 MP HEIC photo (4000x3000)", {"image": _photo(4000, 3000, "HEIF")}),
        # Issue 22 (round 2): headers that lie about the frame, and the dearest HEIC (made only when run: seconds each).
        (
            "AVIF: ispe 2000x2000 over a 16384x16384 frame",
            {"image": lambda: hostile.avif_lying_ispe((16384, 16384), (2000, 2000))},
        ),
        (
            "AVIF: ispe 2000x2000 over 16384x16384, max_size 0",
            {"image": lambda: hostile.avif_lying_ispe((16384, 16384), (2000, 2000)), "options": {"max_size": 0}},
        ),
        ("HEIC 10-bit 4:4:4 RGBA, 4096 px", {"image": lambda: hostile.heic_deep(4096)}),
        ("HEIC 10-bit 4:4:4 RGBA, 3500 px (largest accepted)", {"image": lambda: hostile.heic_deep(3500)}),
    ]


def _photo(w: int, h: int, fmt: str) -> bytes:
    img, _ = subject_scene((w, h), seed=12)
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    return encode(img, fmt, quality=80)


def reset_peak(pid: int) -> None:
    """Reset the worker's VmHWM to its current RSS (Linux >= 4.0), so the peak read next is the job's own."""
    with open(f"/proc/{pid}/clear_refs", "w") as fh:
        fh.write("5")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process so far, in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def remove_while_pinging(w: WorkerProcess, req: dict, timeout: float) -> tuple[dict, float | None]:
    """The remove reply, and the slowest answer to an urgent ping sent every 100 ms meanwhile
    (None: the worker is too old to answer them during a job, or the job ended before the first)."""
    w.send({"id": 1, "op": "remove", "image": req["image"], "options": req.get("options") or {}})
    deadline = time.monotonic() + timeout
    reply, slowest, n = None, None, 1
    while reply is None:
        time.sleep(0.1)
        n += 1
        sent = time.perf_counter()
        w.send({"id": n, "op": "ping", "urgent": True})
        while True:
            got = w.read(max(0.1, deadline - time.monotonic()))
            if got["id"] == n:
                took = time.perf_counter() - sent
                slowest = took if slowest is None or took > slowest else slowest
                break
            reply = got  # the job's reply (an old worker answers the ping after it, in order)
            if reply is not None and got["id"] == 1 and time.perf_counter() - sent > 0.05:
                w.read(timeout)  # its pong, late: not a figure of this worker's pings
                slowest = None
                break
    return reply, slowest


def run(repo: Path, name: str, req: dict, timeout: float) -> str:
    if callable(req.get("image")):
        req = {**req, "image": req["image"]()}
    w = WorkerProcess("--threads", "2", cwd=repo)
    try:
        idle = w.request("stats")["stats"]["rss_mb"]
        reset_peak(w.pid)
        cpu0 = cpu_seconds(w.pid)
        started = time.perf_counter()
        slowest = None
        if "raw" in req:
            w.send_raw(req["raw"])
            reply = w.read(timeout)
        else:
            reply, slowest = remove_while_pinging(w, req, timeout)
        secs = time.perf_counter() - started
        cpu = cpu_seconds(w.pid) - cpu0
        peak = reply["stats"]["peak_rss_mb"] if "stats" in reply else w.request("stats")["stats"]["peak_rss_mb"]
        if reply.get("ok"):
            meta = reply.get("meta") or {}
            outcome = f"ok {meta.get('width')}x{meta.get('height')}" if meta else "ok"
        else:
            outcome = reply["error"]["code"]
        pong = f"pong <= {slowest * 1000:5.0f} ms" if slowest is not None else "pong      -   "
        return f"{name:<45} {secs:7.2f} s  cpu {cpu:6.2f} s  peak +{peak - idle:6.0f} MB  {pong}  {outcome}"
    except Exception as exc:  # a dead worker is a figure too
        return f"{name:<45} failed: {type(exc).__name__}: {str(exc)[:80]} (exit {w.proc.poll()})"
    finally:
        w.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose pyworker to run")
    parser.add_argument("--only", default="", help="run attacks whose name contains this")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--repeat", type=int, default=1, help="run each attack this many times (a fresh worker each)")
    args = parser.parse_args()
    print(f"pyworker from {args.repo}; load average {os.getloadavg()}")
    for name, req in attacks():
        if args.only in name:
            for _ in range(args.repeat):
                print(run(args.repo, name, req, args.timeout), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
