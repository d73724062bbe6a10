"""A short run of bench/soak.py, so that `make test` proves the soak still works (`make soak` runs 2,000 jobs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .workerproc import REPO

JOBS, EVERY = 12, 4


@pytest.mark.slow
def test_soak_smoke_run_passes_and_reports_flat_memory(tmp_path) -> None:
    json_out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "bench/soak.py", "--jobs", str(JOBS), "--every", str(EVERY), "--json-out", str(json_out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,  # ~15 s alone; generous for a busy 2-core machine
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])  # the last line is the JSON summary
    assert summary == json.loads(json_out.read_text())
    assert summary["ok"] is True and summary["failures"] == []
    assert summary["jobs_requested"] == summary["jobs_answered"] == JOBS
    assert sum(summary["outcomes"].values()) == JOBS
    assert "internal" not in summary["outcomes"]
    assert summary["outcomes"].get("ok", 0) >= JOBS // 2
    assert [s["job"] for s in summary["samples"]] == list(range(EVERY, JOBS + 1, EVERY))
    assert all(0 < s["rss_mb"] <= s["peak_rss_mb"] for s in summary["samples"])
    assert summary["peak_rss_mb"] == max(s["peak_rss_mb"] for s in summary["samples"])
    assert (summary["drift_from_job"], summary["drift_to_job"]) == (EVERY, JOBS)
    first, last = summary["samples"][0]["rss_mb"], summary["samples"][-1]["rss_mb"]
    assert summary["drift_mb"] == pytest.approx(last - first, abs=0.11)
    assert summary["drift_mb"] <= 30
    assert summary["log_events"].get("job_crashed", 0) == 0
    assert len(summary["loadavg_start"]) == len(summary["loadavg_end"]) == 3
    # the human-readable part: one RSS line per sample, then the drift line
    assert sum(line.startswith("job ") for line in lines) == JOBS // EVERY
    assert any(line.startswith("drift ") for line in lines)
