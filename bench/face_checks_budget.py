"""What the face checks (pyworker/pipeline/face_quality.py) add to a 12 MP preset job: time and memory.

    .venv/bin/python bench/face_checks_budget.py [--runs 15]

The job's own path up to the checks: the 4000 x 3000 JPEG of bench/inputs.py decoded as a passport-35x45 job
decodes it (2000 x 1500, DCT scaling), faces detected (face.detect: each face comes with its mesh, which
plan.look pays for; the checks read it), then `assess` for passport-35x45 (all ten checks) on the source photo
and the chosen face, as framing.frame calls it. Time: median of --runs calls, on one thread (the checks are
NumPy and Pillow on a ~270 x 300 px crop, and MediaPipe Iris on a 64 x 64 crop of each eye). Memory: tracemalloc's
peak during one call (NumPy's and Pillow's buffers are traced; onnxruntime's are not) and the process's VmHWM
before and after the calls. The first call loads the eye model once per worker: its load time and the resident
memory it adds are printed apart (a worker pays them once, as it does for the face mesh).
Targets (issue 25): <= 40 ms, <= 20 MB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import inputs
from pyworker.limits import Limits
from pyworker.pipeline import face as face_detector
from pyworker.pipeline import face_quality
from pyworker.pipeline.decode import load_scaled, open_image

TARGET_MS, TARGET_MB = 40.0, 20.0
PRESET = "passport-35x45"
WORKING_SIDE = 2000  # a passport-35x45 job's decode side (presets.working_side: 3 x 531, capped at 2000)


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    src = next(i for i in inputs.generated_inputs(["gen-12mp.jpg"]))
    data = src.path.read_bytes()
    rgb = load_scaled(open_image(data, Limits()), WORKING_SIDE).rgb
    faces = face_detector.detect(rgb)
    face = max(faces, key=lambda f: f.height)
    rss_before = rss_mb()
    t = time.perf_counter()
    face_quality.assess(rgb, face, PRESET)  # warm: imports, first allocations, the eye model loaded
    first_ms = (time.perf_counter() - t) * 1000
    rss_loaded = rss_mb()
    hwm_before = vm_hwm_mb()
    ms = []
    for _ in range(args.runs):
        t = time.perf_counter()
        face_quality.assess(rgb, face, PRESET)
        ms.append((time.perf_counter() - t) * 1000)
    hwm_after = vm_hwm_mb()
    tracemalloc.start()
    face_quality.assess(rgb, face, PRESET)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    load = os.getloadavg()
    print(f"checks {', '.join(face_quality.names(PRESET))}")
    print(f"input {src.label}, working {rgb.width}x{rgb.height}, face {face.eye_distance:.0f} px between the eyes")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"time   median {statistics.median(ms):6.1f} ms  (max {max(ms):.1f})   target <= {TARGET_MS:.0f} ms")
    print(f"memory peak    {peak / 2**20:6.1f} MB  (tracemalloc)             target <= {TARGET_MB:.0f} MB")
    print(f"VmHWM  {hwm_before:.1f} -> {hwm_after:.1f} MB over {args.runs} calls (+{hwm_after - hwm_before:.1f})")
    print(f"first call (loads the eye model once a worker): {first_ms:.1f} ms, RSS +{rss_loaded - rss_before:.1f} MB")


if __name__ == "__main__":
    main()
