"""Soak test: many remove jobs through ONE real worker, over the protocol; its memory must stay flat.

    .venv/bin/python bench/soak.py                       # 2,000 jobs, RSS every 100 (make soak)
    .venv/bin/python bench/soak.py --jobs 12 --every 4   # a smoke run (~15 s)

The worker is started as `python -m pyworker --threads T` and driven one
request at a time, as a supervisor would. The job mix is seeded and
deterministic: the photos in samples/, generated 1-4 MP JPEGs, some odd but
valid files (CMYK, 16-bit, palette + transparency, WEBP) and some bad inputs
(empty, random bytes, truncated, GIF, 1x1, a decompression bomb header), under
varied options. Every reply is checked (right id, expected success or expected
error code, never `internal`), each job has a timeout, and the worker must be
the same process at the end.

Prints the worker's RSS every --every jobs, then the drift (RSS at the last
sample minus RSS at the first, i.e. job 2000 minus job 100 by default) and the
peak (the worker's VmHWM) and the load average, then one line of JSON. Exits 1 when a reply is
wrong or missing, the worker died or hung, or the drift exceeds --max-drift-mb.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from testkit.client import WorkerProcess  # noqa: E402
from testkit.images import png_chunk, subject_scene  # noqa: E402

# (kind, weight, options) for valid inputs; the options a real upload form would send.
OPTION_MIX: list[tuple[dict[str, Any], int]] = [
    ({}, 30),
    ({"format": "webp"}, 10),
    ({"format": "jpeg", "bg_color": "#ffffff"}, 10),
    ({"only_mask": True}, 8),
    ({"trim": True, "padding": 8}, 8),
    ({"refine": True}, 8),
    ({"bg_color": [20, 120, 220], "max_size": 400}, 8),
    ({"max_size": 0}, 3),  # full-size result: the heaviest encode
]


def _jpeg(img: Image.Image, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _save(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _load(avg: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in avg)


def _photo(size: tuple[int, int], seed: int) -> bytes:
    """A subject on a backdrop with photo-like texture, so the JPEG has a realistic size."""
    img, _ = subject_scene(size, seed=seed)
    rng = np.random.default_rng(seed)
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-12, 13, size=(size[1], size[0], 1), dtype=np.int16)
    return _jpeg(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), quality=88)


def build_inputs(seed: int) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]], list[tuple[str, bytes, str]]]:
    """(photos, odd valid files, bad files with their expected error code)."""
    photos = [(p.name, p.read_bytes()) for p in sorted((REPO / "samples").glob("*.jpg"))]
    sizes = [(1152, 864), (864, 1152), (1600, 1200), (1200, 1600), (2000, 1500), (1500, 2000), (2304, 1728)]
    sizes.append((1728, 2304))
    photos += [(f"gen-{w}x{h}", _photo((w, h), seed + i)) for i, (w, h) in enumerate(sizes)]

    scene, _ = subject_scene((640, 800), seed=seed)
    gray16 = Image.fromarray(np.asarray(scene.convert("L"), dtype=np.uint16) * 257)
    palette = scene.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    odd = [
        ("cmyk.jpg", _jpeg(scene.convert("CMYK"))),
        ("gray16.png", _save(gray16, "PNG")),
        ("palette-trns.png", _save(palette, "PNG", transparency=0)),
        ("lossless.webp", _save(scene.convert("RGBA"), "WEBP", lossless=True)),
        ("photo.bmp", _save(scene, "BMP")),
    ]

    good_jpeg = photos[0][1]
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    rng = random.Random(seed)
    bad = [
        ("empty", b"", "invalid_image"),
        ("random", rng.randbytes(5000), "invalid_image"),
        ("jpeg-magic-random", b"\xff\xd8\xff\xe0" + rng.randbytes(5000), "invalid_image"),
        ("truncated.jpg", good_jpeg[: len(good_jpeg) // 2], "invalid_image"),
        ("anim.gif", _save(scene, "GIF", save_all=True, append_images=[scene.rotate(90)]), "unsupported_format"),
        ("1x1.png", _save(Image.new("RGB", (1, 1)), "PNG"), "image_too_small"),
        ("bomb.png", bomb + png_chunk(b"IEND", b""), "image_too_large"),
        ("vector.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "unsupported_format"),
    ]
    return photos, odd, bad


class Drain(threading.Thread):
    """Reads the worker's stderr continuously (a full pipe would block it) and counts log events."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.events: Counter[str] = Counter()
        self.tail: list[str] = []

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            self.tail = [*self.tail[-30:], line]
            try:
                self.events[json.loads(line).get("event", "?")] += 1
            except ValueError:
                self.events["non_json_line"] += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2000, help="remove jobs to run (default: 2000)")
    ap.add_argument("--every", type=int, default=100, help="sample RSS every N jobs (default: 100)")
    ap.add_argument("--threads", type=int, default=2, help="worker --threads (default: 2)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--timeout", type=float, default=120, help="seconds one job may take before it counts as hung")
    ap.add_argument("--max-drift-mb", type=float, default=30, help="fail above this drift (default: 30)")
    ap.add_argument("--json-out", type=Path, help="also write the JSON summary to this file")
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.every < 1:
        ap.error("--jobs and --every must be >= 1")

    photos, odd, bad = build_inputs(args.seed)
    rng = random.Random(args.seed)
    options, weights = zip(*OPTION_MIX, strict=True)

    started = time.monotonic()
    worker = WorkerProcess("--threads", str(args.threads))
    drain = Drain(worker.proc.stderr)
    drain.start()
    assert worker.ready is not None
    pid, ready_rss = worker.pid, worker.ready["rss_mb"]
    load_start = os.getloadavg()
    print(
        f"worker pid {pid} ready, rss {ready_rss} MB; {args.jobs} jobs, sampling every {args.every}; "
        f"load average {_load(load_start)}",
        flush=True,
    )

    samples: list[dict[str, Any]] = []
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    job_ms: list[float] = []
    try:
        for job in range(1, args.jobs + 1):
            roll = rng.random()
            if roll < 0.12:
                name, data, expect = rng.choice(bad)
                opts: dict[str, Any] = {}
            else:
                name, data = rng.choice(odd) if roll < 0.20 else rng.choice(photos)
                expect = "ok"
                opts = rng.choices(options, weights)[0]
            t0 = time.perf_counter()
            try:
                reply = worker.remove(data, timeout=args.timeout, **opts)
            except (TimeoutError, EOFError, BrokenPipeError, AssertionError) as exc:
                failures.append(f"job {job} ({name}): no valid reply: {type(exc).__name__}: {exc}")
                break
            job_ms.append((time.perf_counter() - t0) * 1000)
            got = "ok" if reply["ok"] else reply["error"]["code"]
            outcomes[got] += 1
            if got != expect:
                failures.append(f"job {job} ({name}, {opts}): expected {expect}, got {got}: {reply.get('error')}")
            if job % args.every == 0 or job == args.jobs:
                stats = reply["stats"]
                samples.append({"job": job, "rss_mb": stats["rss_mb"], "peak_rss_mb": stats["peak_rss_mb"]})
                recent = job_ms[-args.every :]
                print(
                    f"job {job:5d}  rss {stats['rss_mb']:7.1f} MB  peak {stats['peak_rss_mb']:7.1f} MB  "
                    f"mean {sum(recent) / len(recent):6.0f} ms/job",
                    flush=True,
                )
        # After a missing reply the stream is out of step: a stats request would only add a confusing error.
        stream_ok = not any("no valid reply" in f for f in failures)
        final = None
        if stream_ok and worker.proc.poll() is None:
            try:
                final = worker.request("stats", timeout=30)["stats"]
            except (TimeoutError, EOFError, BrokenPipeError, AssertionError) as exc:
                failures.append(f"no reply to the final stats request: {type(exc).__name__}: {exc}")
        if stream_ok and (final is None or final["pid"] != pid):
            failures.append(f"the worker is gone or was replaced (exit code {worker.proc.poll()})")
    finally:
        if worker.proc.poll() is None:
            worker.proc.stdin.close()  # type: ignore[union-attr]  # EOF: the worker exits 0
            try:
                worker.proc.wait(timeout=30)
            except Exception:
                worker.proc.kill()
        drain.join(timeout=10)
        worker.close()
    exit_code = worker.proc.returncode
    if exit_code != 0:
        failures.append(f"worker exit code {exit_code} after closing stdin (expected 0)")
    if drain.events.get("job_crashed"):
        failures.append(f"{drain.events['job_crashed']} job_crashed log lines")

    first, last = (samples[0], samples[-1]) if samples else ({}, {})
    drift = round(last.get("rss_mb", 0) - first.get("rss_mb", 0), 1)
    peak = max((s["peak_rss_mb"] for s in samples), default=0.0)
    if len(samples) >= 2 and drift > args.max_drift_mb:
        failures.append(f"RSS drift {drift} MB (job {first['job']} -> {last['job']}) exceeds {args.max_drift_mb} MB")
    summary = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["bench/soak.py", *(sys.argv[1:] if argv is None else argv)]),
        "jobs_requested": args.jobs,
        "jobs_answered": sum(outcomes.values()),
        "threads": args.threads,
        "worker_pid": pid,
        "ready_rss_mb": ready_rss,
        "samples": samples,
        "drift_mb": drift,
        "drift_from_job": first.get("job"),
        "drift_to_job": last.get("job"),
        "peak_rss_mb": peak,
        "outcomes": dict(sorted(outcomes.items())),
        "mean_job_ms": round(sum(job_ms) / len(job_ms), 1) if job_ms else None,
        "wall_s": round(time.monotonic() - started, 1),
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "log_events": dict(sorted(drain.events.items())),
        "failures": failures,
        "ok": not failures,
    }
    print(
        f"drift {drift:+.1f} MB (rss at job {first.get('job')} -> job {last.get('job')}), peak {peak:.1f} MB, "
        f"{summary['jobs_answered']}/{args.jobs} answered in {summary['wall_s']} s, outcomes {summary['outcomes']}; "
        f"load average {_load(os.getloadavg())}"
    )
    for failure in failures:
        print("FAIL", failure)
    if failures:
        print("last worker log lines:", *drain.tail[-10:], sep="\n  ")
    print(json.dumps(summary))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
