"""The figures the pyworker issue asks for, each from its own FRESH worker (default options unless said):

- idle RSS after the ready frame;
- peak RSS (VmHWM) for a 12 MP (4000x3000) JPEG and for a 4096x4096 PNG;
- RSS drift over 200 jobs (RSS after job 200 minus RSS after job 1);
- crop on and off (issue 4): the same photo at default options, with `crop: "face"` and with the ID preset
  passport-35x45: peak RSS and latency of each, on its own fresh worker.
"""

from __future__ import annotations

import time
from typing import Any

from .common import median, peak_rss_mb
from .inputs import Input
from .systems.pyworker_proto import Worker

PRESET = "passport-35x45"
CROP_MODES: list[tuple[str, dict[str, Any]]] = [
    ("off", {}),
    ("crop face", {"crop": "face"}),
    (f"preset {PRESET}", {"preset": PRESET}),
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
        ms, reply = c.remove(inp.path.read_bytes(), options or {})
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
            _, reply = c.remove(data[j % len(data)], {})
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
    """Each crop mode on its own fresh worker: one first job (face crop loads OpenCV then), `runs` timed ones.

    peak_rss_mb is the worker's VmHWM after them all, so it includes OpenCV's cost when the mode loads it.
    """
    data = inp.path.read_bytes()
    modes = []
    for mode, options in CROP_MODES:
        c = _fresh(threads)
        try:
            first_ms, first = c.remove(data, options)
            lat = [c.remove(data, options)[0] for _ in range(runs)]
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
                }
            )
        except RuntimeError as exc:
            modes.append({"mode": mode, "options": options, "error": str(exc)})
        finally:
            c.close()
    return {"input": inp.name, "modes": modes}
