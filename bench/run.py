"""Benchmark: pyworker against the alternatives, on the same photos, in the same run, on the same machine.

    .venv/bin/python bench/run.py          # the full run (make bench): bench/results.json, bench/results.png,
                                           # docs/benchmarks.md
    .venv/bin/python bench/run.py --smoke  # one photo through (1) pool of 1, (2) and (6), pyworker's idle RSS;
                                           # < 60 s; writes bench/out/smoke/; part of make test

Either exits 1 when a figure cannot be right (not a number, zero, a worker answer that is not full size, a
throughput that disagrees with its own latencies...). Targets are reported, never asserted.

Systems: (1) pyworker through node-shim, (2) pyworker's protocol from Python, (3) a fresh Python process per
photo calling rembg.remove, (4) rembg in one process, (5) `rembg s` over loopback, (6) the floor: bare
onnxruntime session.run on the preprocessed tensor. All use u2netp and the same threads; pyworker is asked
for max_size 0 so that every system returns a full-size PNG (row (2') shows its default, 800 px).

Concurrency 1 runs on one instance of each system; concurrency N (--pool) on fresh instances, so that every
system's peak RSS at N covers the same photos (the throughput mix).

Systems run interleaved (for each photo, each round visits every system, in a rotated order), so a burst of
noise on this shared machine lands on all of them; figures are medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import int8_speed, memfigures, report
from bench.common import OUT, Run, cores, median, percentile
from bench.inputs import Input, all_inputs, sample_inputs
from bench.systems import System
from bench.systems.inprocess import InProcess
from bench.systems.node_shim import NodeShim
from bench.systems.pyworker_proto import PyworkerProtocol
from bench.systems.rembg_server import RembgServer
from bench.systems.spawn import SpawnPerRequest

FULL_SIZE = 0  # pyworker max_size 0: the input's size, as rembg returns
SMOKE_PHOTO = "astronaut.jpg"
REFERENCE_PHOTO = "gen-800.jpg"  # the reference job: 800x800 JPEG -> 800 px PNG


def runs_for(inp: Input, spawn: bool = False) -> int:
    """Timed runs per photo after the warm-up: fewer for the slow ones so `make bench` stays under 15 minutes."""
    if spawn:
        return 2 if inp.megapixels < 2 else 1
    if inp.name in ("gen-1mp.jpg", REFERENCE_PHOTO):
        return 5  # the photos the summary table, the picture and the floor targets use
    return 3


class Row:
    """One line of the table: its system at concurrency 1 and a FRESH instance at concurrency N."""

    def __init__(self, key: str, label: str, single: System, multi: System | None, note: str = "") -> None:
        self.key, self.label, self.note = key, label, note
        self.single, self.multi = single, multi
        self.runs: dict[str, list[Run]] = {}
        self.throughput: dict[str, dict[str, Any]] = {}
        self.peak: dict[str, dict[str, float]] = {}

    def result(self, inputs: list[Input]) -> dict[str, Any]:
        lat = {}
        for inp in inputs:
            runs = self.runs.get(inp.name, [])
            if not runs:
                continue
            ms = [r.ms for r in runs]
            cell: dict[str, Any] = {
                "median_ms": round(median(ms), 1),
                "p95_ms": round(percentile(ms, 95), 1),
                "n": len(ms),
                "samples_ms": [round(v, 1) for v in ms],
            }
            tim = [r.extra["timings_ms"] for r in runs if "timings_ms" in r.extra]
            if tim:
                cell["worker_ms"] = {k: round(median([t[k] for t in tim]), 1) for k in tim[0]}
                # Per run, not per median: medians of separate steps need not add up to the median total.
                steps = ("decode", "infer", "post", "encode")
                cell["worker_steps_over_total"] = round(max(sum(t[k] for k in steps) / t["total"] for t in tim), 3)
                cell["out_size"] = runs[0].extra.get("out_size")
            lat[inp.name] = cell
        return {
            "label": self.label,
            "note": self.note,
            "latency": lat,
            "throughput": self.throughput,
            "peak_rss_mb": {
                c: {"total": round(sum(parts.values()), 1), "parts": parts} for c, parts in self.peak.items()
            },
        }


FAST = ["--memory-mode", "fast"]
# Between two timed requests: onnxruntime's default thread pool (the floor's, rembg's) spins ~40 ms of CPU after
# each run, and in a rotated order the same system always follows it; a pause lets every request start on an
# idle machine.
QUIET_GAP_S = 0.1
MODES = ("lean", "fast", "floor")


def build_rows(threads: int, pool: int, smoke: bool) -> list[Row]:
    full_js, full_py = {"maxSize": FULL_SIZE}, {"max_size": FULL_SIZE}
    per = max(1, threads // pool)
    n1 = NodeShim("node1", "node-shim pool of 1", 1, threads, full_js)
    p1 = PyworkerProtocol("proto1", "protocol, 1 worker", 1, threads, full_py)
    floor = InProcess("floor", "onnxruntime floor", "floor", threads)
    if smoke:
        return [
            Row("1", "(1) pyworker via node-shim", n1, None, f"pool of 1 ({threads} threads)"),
            Row("2", "(2) pyworker protocol from Python", p1, None, f"1 worker ({threads} threads)"),
            Row("6", "(6) floor: bare onnxruntime session.run", floor, None, "default SessionOptions"),
        ]
    return [
        Row(
            "1",
            "(1) pyworker via node-shim",
            n1,
            NodeShim("node2", f"node-shim pool of {pool}", pool, per, full_js),
            f"pool of 1 ({threads} threads); pool of {pool} ({per} each)",
        ),
        Row(
            "2",
            "(2) pyworker protocol from Python",
            p1,
            PyworkerProtocol("proto2", f"protocol, {pool} workers", pool, per, full_py),
            f"1 worker ({threads} threads); {pool} workers ({per} each)",
        ),
        Row(
            "2'",
            "(2') pyworker protocol, default options",
            PyworkerProtocol("proto_default", "protocol, default options", 1, threads, {}),
            None,
            "max_size 800: output ≤ 800 px, not full size; concurrency 1 only",
        ),
        Row(
            "2f",
            "(2f) pyworker protocol, --memory-mode fast",
            PyworkerProtocol("proto_fast", "protocol, fast mode", 1, threads, full_py, FAST),
            PyworkerProtocol("proto_fast2", f"protocol, fast mode, {pool} workers", pool, per, full_py, FAST),
            "as (2), the worker keeping its heap between jobs (docs/memory.md#fast-mode); peak while busy",
        ),
        Row(
            "2i",
            "(2i) pyworker protocol, model u2netp-int8",
            PyworkerProtocol("proto_int8", "protocol, u2netp-int8", 1, threads, {**full_py, "model": "u2netp-int8"}),
            None,
            "as (2), the INT8 file derived at set-up (docs/models.md); concurrency 1 only",
        ),
        Row(
            "3",
            "(3) spawn per request (python -c rembg.remove)",
            SpawnPerRequest("spawn1", "spawn per request", threads),
            SpawnPerRequest("spawn2", "spawn per request", threads),
            f"a new process per photo, {threads} threads each; c={pool}: {pool} processes at once",
        ),
        Row(
            "4",
            "(4) rembg in one process",
            InProcess("rembg1", "rembg in one process", "rembg", threads),
            InProcess("rembg2", "rembg in one process", "rembg", threads, lanes=pool),
            f"new_session once ({threads} threads); c={pool}: {pool} request threads share it",
        ),
        Row(
            "5",
            "(5) rembg s (HTTP, loopback)",
            RembgServer("rembg_s1", "rembg s", threads),
            RembgServer("rembg_s2", "rembg s", threads),
            f"--no-ui, {threads} threads; c={pool}: {pool} keep-alive connections",
        ),
        Row(
            "6",
            "(6) floor: bare onnxruntime session.run",
            floor,
            InProcess("floor2", "onnxruntime floor", "floor", per, lanes=pool),
            f"default SessionOptions, {threads} threads; c={pool}: {pool} sessions of {per}; no decode/encode",
        ),
    ]


def log(msg: str, t0: float) -> None:
    load = os.getloadavg()[0]
    print(f"[{time.perf_counter() - t0:6.0f}s load {load:4.1f}] {msg}", flush=True)


def _stop(systems: list[System]) -> None:
    for s in systems:
        try:
            s.stop()
        except Exception as exc:  # keep stopping the others
            print(f"stop {s.key}: {exc!r}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="one photo, systems (1) pool of 1, (2), (6); quick checks")
    ap.add_argument(
        "--threads", type=int, default=cores(), help="onnxruntime threads at concurrency 1 (default: cores)"
    )
    ap.add_argument("--pool", type=int, default=2, help="pool size / concurrency for the second throughput figure")
    ap.add_argument("--drift-jobs", type=int, default=200)
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write results.json, results.png and benchmarks.md here instead of bench/ and docs/ "
        "(default for --smoke: bench/out/smoke/)",
    )
    ap.add_argument("--inputs", help="comma-separated photo names: a partial run, for debugging the bench")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    load_start = os.getloadavg()
    out_dir = a.out or (OUT / "smoke" if a.smoke else None)

    inputs = [i for i in sample_inputs() if i.name == SMOKE_PHOTO] if a.smoke else all_inputs()
    if a.inputs:
        inputs = [i for i in inputs if i.name in a.inputs.split(",")]
    everyday = [i for i in inputs if i.megapixels < 5]  # throughput mix: samples + 1 MP + 4 MP
    log(f"{len(inputs)} inputs: " + ", ".join(i.label for i in inputs), t0)
    rows = build_rows(a.threads, a.pool, a.smoke)
    runs_done: dict[str, int] = {}

    # ---- concurrency 1: latency per photo, then throughput, then the peak RSS of everything served.
    singles = [r.single for r in rows]
    try:
        for s in singles:
            s.start(inputs)
        log("systems up: " + ", ".join(r.key for r in rows), t0)
        # Warm-up: untimed requests per system (the first photo; the 1 MP one too in a full run).
        warm = [inputs[0], *[i for i in inputs[1:] if i.name == "gen-1mp.jpg"]]
        for r in rows:
            for inp in warm:
                if not isinstance(r.single, SpawnPerRequest) or inp is warm[0]:
                    r.single.run(inp)
        log("warm-up done", t0)

        for inp in inputs:  # interleaved: each round visits every system for this photo, in a rotated order
            n = 2 if a.smoke else runs_for(inp)
            runs_done[inp.name] = n
            for k in range(n):
                for r in rows[k % len(rows) :] + rows[: k % len(rows)]:
                    if isinstance(r.single, SpawnPerRequest) and k >= runs_for(inp, spawn=True):
                        continue
                    time.sleep(QUIET_GAP_S)
                    r.runs.setdefault(inp.name, []).append(r.single.run(inp))
            log(
                f"latency {inp.label}: "
                + ", ".join(f"{r.key}={median([x.ms for x in r.runs[inp.name]]):.0f}ms" for r in rows),
                t0,
            )

        mix = everyday * (2 if a.smoke else 1)  # smoke: one photo, twice
        _throughput(rows, 1, mix, everyday, rounds=1 if a.smoke else 2, t0=t0)
        for r in rows:
            r.peak["c1"] = r.single.peak_rss()
        log("peak RSS at c=1: " + ", ".join(f"{r.key}={sum(r.peak['c1'].values()):.0f}MB" for r in rows), t0)
    finally:
        _stop(singles)

    # ---- concurrency N: fresh instances (so every peak covers the same photos: the mix), throughput, peak RSS.
    multis = [r for r in rows if r.multi is not None]
    if multis:
        try:
            for r in multis:
                assert r.multi is not None
                r.multi.start(inputs)
                if not isinstance(r.multi, SpawnPerRequest):
                    r.multi.batch([inputs[0]] * a.pool, a.pool)  # untimed: warms every worker / lane
            log(f"systems up at c={a.pool}", t0)
            _throughput(multis, a.pool, mix, everyday, rounds=2, t0=t0, multi=True)
            for r in multis:
                r.peak[f"c{a.pool}"] = r.multi.peak_rss()  # type: ignore[union-attr]
            log(
                f"peak RSS at c={a.pool}: "
                + ", ".join(f"{r.key}={sum(r.peak[f'c{a.pool}'].values()):.0f}MB" for r in multis),
                t0,
            )
        finally:
            _stop([r.multi for r in multis if r.multi is not None])

    figures = _memory_figures(inputs, a.threads, a.drift_jobs, t0, smoke=a.smoke)

    results = {
        "meta": report.machine_meta(),
        "started_utc": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "command": ".venv/bin/python bench/run.py --smoke"
        if a.smoke
        else "make bench  (.venv/bin/python bench/run.py)",
        "smoke": a.smoke,
        "threads": a.threads,
        "pool": a.pool,
        "model": "u2netp",
        "output_size": "full size for every system (pyworker max_size 0), except row (2')",
        "inputs": [
            {
                "name": i.name,
                "width": i.width,
                "height": i.height,
                "bytes": i.size_bytes,
                "runs": runs_done.get(i.name, 0),
                "spawn_runs": 0 if a.smoke else runs_for(i, spawn=True),
            }
            for i in inputs
        ],
        "throughput_mix": [i.name for i in everyday],
        "throughput_jobs": len(mix),
        "systems": {r.key: r.result(inputs) for r in rows},
        "pyworker_memory": figures,
    }
    results["targets"] = report.targets(results)
    report.write_all(results, out_dir)
    print(report.table(results))
    print(report.targets_text(results))
    problems = sanity(results)
    for p in problems:
        print(f"ABSURD FIGURE: {p}", file=sys.stderr)
    log(("smoke " if a.smoke else "") + ("FAILED" if problems else "done"), t0)
    return 1 if problems else 0


def _throughput(
    rows: list[Row], conc: int, mix: list[Input], everyday: list[Input], rounds: int, t0: float, multi: bool = False
) -> None:
    """images/s over the mix with `conc` requests in flight; median of `rounds` (the second in reverse order)."""
    key = f"c{conc}"
    samples: dict[str, list[float]] = {}
    busy: dict[str, list[float]] = {}  # per round: sum of latencies ÷ wall (≤ 1 one at a time, ~conc when full)
    lat: dict[str, list[float]] = {}
    for rnd in range(rounds):
        for r in rows if rnd % 2 == 0 else rows[::-1]:
            system = r.multi if multi else r.single
            assert system is not None
            spawn = isinstance(system, SpawnPerRequest)
            if spawn and rnd > 0:
                continue  # a few seconds a photo: the mix once
            b = system.batch(everyday if spawn else mix, conc)
            samples.setdefault(r.key, []).append(round(b.images_per_s, 3))
            busy.setdefault(r.key, []).append(round(sum(b.lat_ms) / 1000 / b.wall_s, 3))
            lat.setdefault(r.key, []).extend(b.lat_ms)
    for r in rows:
        s = samples[r.key]
        jobs = len(lat[r.key]) // len(s)
        r.throughput[key] = {
            "images_per_s": round(median(s), 3),
            "rounds": s,
            "jobs_per_round": jobs,
            "latency_under_load_median_ms": round(median(lat[r.key]), 1),
            "busy": busy[r.key],
        }
    log(f"throughput c={conc}: " + ", ".join(f"{r.key}={r.throughput[key]['images_per_s']:.2f}/s" for r in rows), t0)


def _memory_figures(inputs: list[Input], threads: int, drift_jobs: int, t0: float, smoke: bool) -> dict[str, Any]:
    """The pyworker issue's figures, each on a fresh worker at default options (see bench/memfigures.py)."""
    f: dict[str, Any] = {"idle": memfigures.idle_rss(threads)}
    if smoke:
        log(f"pyworker idle {f['idle']['rss_mb']} MB", t0)
        return f
    by = {i.name: i for i in inputs}
    for key, name in (("peak_12mp_jpeg", "gen-12mp.jpg"), ("peak_4096_png", "gen-4096.png")):
        if name in by:
            f[key] = memfigures.peak_for(by[name], threads)
    log(
        f"pyworker idle {f['idle']['rss_mb']} MB (peak while loading {f['idle']['peak_rss_mb']} MB), "
        + ", ".join(f"{k} {f[k]['peak_rss_mb']} MB" for k in ("peak_12mp_jpeg", "peak_4096_png") if k in f),
        t0,
    )
    f["crop"] = [memfigures.crop_on_off(by[n], threads, runs=3) for n in (SMOKE_PHOTO, "gen-12mp.jpg") if n in by]
    log(
        "crop on/off: "
        + "; ".join(
            f"{c['input']}: "
            + ", ".join(f"{m['mode']}={m.get('peak_rss_mb')}MB/{m.get('median_ms')}ms" for m in c["modes"])
            for c in f["crop"]
        ),
        t0,
    )
    if REFERENCE_PHOTO in by:
        f["encode"] = memfigures.encode_figures(by[REFERENCE_PHOTO], threads)
        e = f["encode"]
        log(f"encode {REFERENCE_PHOTO}: png {e['png']['encode_ms']} ms, webp {e['webp']['encode_ms']} ms", t0)
    everyday = [i for i in inputs if i.megapixels < 5]
    f["pool_scaling"] = memfigures.pool_scaling(everyday)
    log(f"pool of 2x1 thread vs 1x1: {f['pool_scaling']['ratio']}x", t0)
    if REFERENCE_PHOTO in by:
        f["cpu_per_job"] = cj = memfigures.cpu_per_job(by[REFERENCE_PHOTO], threads)
        each = (f"{k} {cj[k]['cpu_ms']} ms ({cj[k]['sys_ms']} sys, {cj[k]['faults']} faults)" for k in cj if k in MODES)
        log("CPU a job, " + ", ".join(each), t0)
    if REFERENCE_PHOTO in by:  # issue 20: each model's run at default flags and in INT8 against its FP32 floor
        f["models"] = ms = int8_speed.model_speed(by[REFERENCE_PHOTO], threads)
        log(
            "run ÷ FP32 floor: "
            + "; ".join(
                f"{n} default ({v['default_precision']}) {v['ratio_default']}x, int8 {v['ratio_int8']}x"
                if "error" not in v
                else f"{n}: {v['error']}"
                for n, v in ms.items()
            ),
            t0,
        )
        if "gen-12mp.jpg" in by:
            f["peak_12mp_jpeg_int8"] = memfigures.peak_for(by["gen-12mp.jpg"], threads, {"model": "u2netp-int8"})
            log(f"u2netp-int8 12 MP peak {f['peak_12mp_jpeg_int8']['peak_rss_mb']} MB", t0)
    f["drift"] = memfigures.drift([i for i in inputs if i.megapixels < 5], drift_jobs, threads)
    log(f"drift over {drift_jobs} jobs: {f['drift']['drift_mb']:+.1f} MB", t0)
    return f


def sanity(results: dict[str, Any]) -> list[str]:
    """Figures that cannot be right (a broken bench, not a slow machine): non-numbers, zeros, impossible ratios."""
    problems: list[str] = []

    def ok(v: Any, lo: float, hi: float) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo < v < hi

    sizes = {i["name"]: [i["width"], i["height"]] for i in results["inputs"]}
    systems = results["systems"]
    for key, s in systems.items():
        if not s["latency"]:
            problems.append(f"({key}) no latency figures")
        for name, cell in s["latency"].items():
            if not ok(cell["median_ms"], 0.5, 300_000) or not ok(cell["p95_ms"], 0.5, 300_000):
                problems.append(f"({key}) latency on {name}: {cell['median_ms']} / {cell['p95_ms']} ms")
            elif cell["p95_ms"] < cell["median_ms"]:
                problems.append(f"({key}) p95 below the median on {name}")
            w = cell.get("worker_ms")
            if w is not None:
                over = cell.get("worker_steps_over_total", 0)
                if not (0 < w["total"] <= cell["median_ms"] * 1.05 + 1 and over <= 1.05):
                    problems.append(f"({key}) worker timings {w} against client {cell['median_ms']} ms on {name}")
            if key in ("1", "2") and cell.get("out_size") != sizes[name]:
                problems.append(f"({key}) output {cell.get('out_size')} for a {sizes[name]} input: not full size")
        for c, t in s["throughput"].items():
            if not ok(t["images_per_s"], 0, 10_000):
                problems.append(f"({key}) throughput {c}: {t['images_per_s']}")
            elif c == "c1" and not all(0.5 < b <= 1.02 for b in t["busy"]):  # one at a time: latencies fill the wall
                problems.append(f"({key}) throughput {t['images_per_s']}/s disagrees with its latencies: {t['busy']}")
        for c, pk in s["peak_rss_mb"].items():
            if not pk["parts"] or not all(ok(v, 10, 20_000) for v in pk["parts"].values()):
                problems.append(f"({key}) peak RSS {c}: {pk['parts']}")
    one, floor = systems.get("1"), systems.get("6")
    if one and floor:  # the client cannot beat bare inference on the same tensor by much
        for name, cell in one["latency"].items():
            f = floor["latency"].get(name)
            if f and cell["median_ms"] < 0.5 * f["median_ms"]:
                problems.append(f"(1) {cell['median_ms']} ms on {name} is under half the floor's {f['median_ms']} ms")
    mem = results.get("pyworker_memory") or {}
    idle = mem.get("idle") or {}
    if not ok(idle.get("rss_mb"), 10, 5_000):
        problems.append(f"pyworker idle RSS {idle.get('rss_mb')}")
    for key in ("peak_12mp_jpeg", "peak_4096_png"):
        if key in mem and not ok(mem[key]["peak_rss_mb"], idle.get("rss_mb", 0), 20_000):
            problems.append(f"pyworker {key}: {mem[key]['peak_rss_mb']} MB (idle {idle.get('rss_mb')})")
    for name, v in (mem.get("models") or {}).items():
        if "error" not in v and not all(ok(x, 0.5, 300_000) for x in v["run_ms"].values()):
            problems.append(f"{name} run figures {v['run_ms']}")
    if "drift" in mem and not ok(abs(mem["drift"]["drift_mb"]) + 1, 0, 5_000):
        problems.append(f"pyworker drift {mem['drift']['drift_mb']}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
