"""The command line: `remove IN OUT` for ops debugging, and --help for every flag."""

from __future__ import annotations

import subprocess
import sys

from .images import ASTRONAUT, decode
from .workerproc import REPO


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pyworker", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_remove_one_file(tmp_path) -> None:
    out = tmp_path / "astronaut.jpg"
    done = run("remove", str(ASTRONAUT), str(out), "--max-size", "256", "--bg-color", "#ffffff", "--threads", "1")
    assert done.returncode == 0, done.stderr
    img = decode(out.read_bytes())
    assert img.format == "JPEG" and img.size == (256, 256)  # format follows the extension
    assert "256x256 image/jpeg" in done.stdout


def test_remove_reports_bad_input_with_its_code(tmp_path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    done = run("remove", str(bad), str(tmp_path / "out.png"), "--threads", "1")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: invalid_image:")


def test_help_documents_every_serve_flag() -> None:
    text = run("serve", "--help").stdout
    for flag in ("--model", "--threads", "--memory-mode", "--max-models", "--max-input-mb", "--max-side",
                 "--min-side", "--max-frame-mb", "--max-rss-mb", "--log-level", "--no-warmup"):  # fmt: skip
        assert flag in text, flag
    assert "remove" in run("--help").stdout and "fetch" in run("models", "--help").stdout
