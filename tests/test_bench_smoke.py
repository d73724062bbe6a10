"""A smoke run of bench/run.py, so that `make test` proves the benchmark still works (`make bench` is the full run)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from .workerproc import REPO


def _positive(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


@pytest.mark.slow
def test_bench_smoke_runs_and_writes_sane_results(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,  # < 60 s alone; generous for a busy 2-core machine
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ABSURD FIGURE" not in done.stderr

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["smoke"] is True and results["model"] == "u2netp"
    [photo] = results["inputs"]
    assert photo["name"] == "astronaut.jpg" and photo["runs"] >= 2
    assert set(results["systems"]) == {"1", "2", "6"}
    for key, system in results["systems"].items():
        cell = system["latency"]["astronaut.jpg"]
        assert cell["n"] == photo["runs"] and len(cell["samples_ms"]) == cell["n"], key
        assert 0 < cell["median_ms"] <= cell["p95_ms"] <= max(cell["samples_ms"]) + 0.1, key
        assert _positive(system["throughput"]["c1"]["images_per_s"]), key
        peak = system["peak_rss_mb"]["c1"]
        assert peak["parts"] and all(_positive(v) for v in peak["parts"].values()), key
        assert peak["total"] == pytest.approx(sum(peak["parts"].values()), abs=0.2), key
    # (1) counts the Node process and its worker; both pyworker rows return the input's size (max_size 0)
    assert set(results["systems"]["1"]["peak_rss_mb"]["c1"]["parts"]) == {"node", "worker1"}
    for key in ("1", "2"):
        cell = results["systems"][key]["latency"]["astronaut.jpg"]
        assert cell["out_size"] == [photo["width"], photo["height"]]
        assert set(cell["worker_ms"]) == {"decode", "infer", "run", "post", "encode", "total"}
    idle = results["pyworker_memory"]["idle"]
    assert 10 < idle["rss_mb"] <= idle["peak_rss_mb"]
    assert any(t["what"].startswith("idle RSS") for t in results["targets"])

    # the report is generated from the same figures: table with ratios, targets, the picture
    md = (tmp_path / "benchmarks.md").read_text()
    for text in ("# Benchmarks", "## Summary", "## Targets", "(1) pyworker via node-shim", "results.png", "×"):
        assert text in md, text
    png = (tmp_path / "results.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    assert "(r×)" in done.stdout
