"""The figures the pyworker issue asks for, each from its own FRESH worker (default options unless said):

- idle RSS after the ready frame;
- peak RSS (VmHWM) for a 12 MP (4000x3000) JPEG and for a 4096x4096 PNG;
- RSS drift over 200 jobs (RSS after job 200 minus RSS after job 1);
- crop on and off (issue 4): the same photo at default options, with `crop: "face"` and with the ID preset
  passport-35x45: peak RSS and latency of each, on its own fresh worker;
- encode time and size of an 800x800 result as PNG and WEBP, and the PNG size before fpng;
- pool scaling: a pool of two 1-thread workers against one 1-thread worker;
- CPU a job (user, system, page faults) of a lean worker, a fast one and the floor's bare session.run:
  where the time beyond the floor goes (issue 12).
"""

from __future__ import annotations

import time
from typing import Any

from .common import cpu_counters, median, peak_rss_mb
from .inputs import Input
from .systems.pyworker_proto import Worker

PRESET = "passport-35x45"
CROP_MODES: list[tuple[str, dict[str, Any]]] = [
    ("off", {}),
    ("crop face", {"crop": "face"}),
    # One row per ID preset (issue 9): YuNet detector, straightening, modnet matting, compliance report.
    *((f"preset {name}", {"preset": name}) for name in ("passport-35x45", "us-2x2", "avatar")),
]


def _fresh(threads: int) -> Worker:
    return Worker(threads, log_name="memfigures")


def idle_rss(threads: int) -> dict[str, Any]:
    c = _fresh(threads)
    try:
        ready_rss = float(c.ready.get("rss_mb", "nan"))
        time.sleep(0.5)
        stats = c.request("stats")["stats"]
        return {"ready_frame_rss_mb": ready_rss, "rss_mb": stats["rss_mb"], "peak_rss_mb": stats["peak_rss_mb"]}
    finally:
        c.close()


def peak_for(inp: Input, threads: int, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One job on a fresh worker: that job's peak is the worker's VmHWM."""
    c = _fresh(threads)
    try:
        ms, reply = c.timed_remove(inp.path.read_bytes(), options or {})
        return {
            "input": inp.name,
            "peak_rss_mb": reply["stats"]["peak_rss_mb"],
            "vmhwm_mb": peak_rss_mb(c.pid),
            "rss_after_mb": reply["stats"]["rss_mb"],
            "ms": round(ms, 1),
            "out_size": [reply["meta"]["width"], reply["meta"]["height"]],
        }
    finally:
        c.close()


def drift(inputs: list[Input], jobs: int, threads: int) -> dict[str, Any]:
    """`jobs` default-option jobs cycling through `inputs` on one worker: RSS after the last minus after the first."""
    c = _fresh(threads)
    data = [i.path.read_bytes() for i in inputs]
    rss: list[float] = []
    t0 = time.perf_counter()
    try:
        for j in range(jobs):
            _, reply = c.timed_remove(data[j % len(data)], {})
            rss.append(reply["stats"]["rss_mb"])
        return {
            "jobs": jobs,
            "inputs": [i.name for i in inputs],
            "rss_after_first_mb": rss[0],
            "rss_after_last_mb": rss[-1],
            "drift_mb": round(rss[-1] - rss[0], 1),
            "rss_max_mb": max(rss),
            "peak_rss_mb": reply["stats"]["peak_rss_mb"],
            "wall_s": round(time.perf_counter() - t0, 1),
        }
    finally:
        c.close()


def crop_on_off(inp: Input, threads: int, runs: int) -> dict[str, Any]:
    """Each crop mode on its own fresh worker: one first job (a face crop loads the detector and modnet then),
    `runs` timed ones.

    peak_rss_mb is the worker's VmHWM after them all, so it includes the detector's and modnet's cost.
    """
    data = inp.path.read_bytes()
    modes = []
    for mode, options in CROP_MODES:
        c = _fresh(threads)
        try:
            first_ms, first = c.timed_remove(data, options)
            lat = [c.timed_remove(data, options)[0] for _ in range(runs)]
            meta = first["meta"]
            modes.append(
                {
                    "mode": mode,
                    "options": options,
                    "first_job_ms": round(first_ms, 1),
                    "median_ms": round(median(lat), 1),
                    "runs": runs,
                    "peak_rss_mb": peak_rss_mb(c.pid) or c.last_stats["peak_rss_mb"],
                    "rss_after_mb": c.last_stats["rss_mb"],
                    "out_size": [meta["width"], meta["height"]],
                    "crop_mode": meta.get("crop_mode"),
                    "model": meta.get("model"),
                }
            )
        except RuntimeError as exc:
            modes.append({"mode": mode, "options": options, "error": str(exc)})
        finally:
            c.close()
    return {"input": inp.name, "modes": modes}


def encode_figures(inp: Input, threads: int, runs: int = 5) -> dict[str, Any]:
    """The worker's own encode time (meta.timings_ms.encode) and size for PNG and WEBP at default options
    (800 px), on a fresh worker; plus the PNG size the encoder before fpng made of the same result
    (Pillow, zlib level 1, the photo's colours kept under transparent pixels), rebuilt here from the
    worker's own mask (`only_mask`), so "within 15 % of today's size" is checked on every run."""
    import io

    from PIL import Image

    data = inp.path.read_bytes()
    c = _fresh(threads)
    out: dict[str, Any] = {"input": inp.name, "runs": runs}
    try:
        for fmt in ("png", "webp"):
            c.timed_remove(data, {"format": fmt})  # warm-up
            replies = [c.timed_remove(data, {"format": fmt})[1] for _ in range(runs)]
            out[fmt] = {
                "encode_ms": round(median([r["meta"]["timings_ms"]["encode"] for r in replies]), 1),
                "bytes": len(replies[-1]["image"]),
                "size": [replies[-1]["meta"]["width"], replies[-1]["meta"]["height"]],
            }
        _, mask_reply = c.timed_remove(data, {"only_mask": True})
    finally:
        c.close()
    mask = Image.open(io.BytesIO(mask_reply["image"])).convert("L")
    with Image.open(inp.path) as photo:
        rgba = photo.convert("RGB").resize(mask.size, Image.Resampling.LANCZOS).convert("RGBA")
    rgba.putalpha(mask)
    buf = io.BytesIO()
    rgba.save(buf, "PNG", compress_level=1)
    out["png_before_bytes"] = buf.tell()
    return out


def pool_scaling(inputs: list[Input], rounds: int = 2) -> dict[str, Any]:
    """images/s over `inputs` (default options) for one worker of 1 thread at concurrency 1 and a pool of two
    workers of 1 thread at concurrency 2, alternated round by round so load drift lands on both."""
    from .systems.pyworker_proto import PyworkerProtocol

    one = PyworkerProtocol("scale_1x1", "1 worker x 1 thread", 1, 1, {})
    two = PyworkerProtocol("scale_2x1", "2 workers x 1 thread", 2, 1, {})
    rates: dict[str, list[float]] = {"1x1": [], "2x1": []}
    try:
        for system in (one, two):
            system.start(inputs)
            system.batch(inputs[:1] * system.workers, system.workers)  # warms every worker
        for rnd in range(rounds):
            for key, system in (("1x1", one), ("2x1", two)) if rnd % 2 == 0 else (("2x1", two), ("1x1", one)):
                rates[key].append(round(system.batch(inputs * 2, system.workers).images_per_s, 3))
    finally:
        one.stop()
        two.stop()
    a, b = median(rates["1x1"]), median(rates["2x1"])
    return {"inputs": [i.name for i in inputs], "rounds": rates, "one": a, "two": b, "ratio": round(b / a, 2)}


def cpu_per_job(inp: Input, threads: int, jobs: int = 12) -> dict[str, Any]:
    """CPU a job of `inp` at default options, from /proc/PID/stat around `jobs` jobs after two warm-ups: a lean
    worker (the default), a fast one (`--memory-mode fast`) and the floor (onnxruntime's defaults, session.run
    alone). System time and page faults are what lean pays to give its activations back after every job; unlike
    milliseconds they hardly move with the machine's load."""
    from .systems.inprocess import InProcess

    out: dict[str, Any] = {"input": inp.name, "jobs": jobs}
    data = inp.path.read_bytes()
    for mode in ("lean", "fast"):
        c = Worker(threads, ["--memory-mode", mode], log_name=f"cpu_{mode}")
        try:
            for _ in range(2):
                c.timed_remove(data, {})
            before = cpu_counters(c.pid)
            runs = [c.timed_remove(data, {})[1]["meta"]["timings_ms"]["run"] for _ in range(jobs)]
            out[mode] = _per_job(before, cpu_counters(c.pid), jobs)
            out[mode].update(run_ms=round(median(runs), 1), rss_after_mb=c.last_stats["rss_mb"])
            out[mode]["peak_rss_mb"] = peak_rss_mb(c.pid) or c.last_stats["peak_rss_mb"]
        finally:
            c.close()
    floor = InProcess("cpu_floor", "onnxruntime floor", "floor", threads)
    try:
        floor.start([inp])
        pid = floor.child.proc.pid  # type: ignore[union-attr]
        for _ in range(2):
            floor.run(inp)
        before = cpu_counters(pid)
        runs = [floor.run(inp).ms for _ in range(jobs)]
        out["floor"] = _per_job(before, cpu_counters(pid), jobs)
        out["floor"].update(run_ms=round(median(runs), 1), peak_rss_mb=peak_rss_mb(pid))
    finally:
        floor.stop()
    return out


def _per_job(before: tuple[float, float, int], after: tuple[float, float, int], jobs: int) -> dict[str, float]:
    user, sys_, faults = ((a - b) / jobs for a, b in zip(after, before, strict=True))
    return {
        "cpu_ms": round(user + sys_, 1),
        "user_ms": round(user, 1),
        "sys_ms": round(sys_, 1),
        "faults": round(faults),
    }
