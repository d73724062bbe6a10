"""Capabilities said, not discovered by a 500 (docs/protocol.md#capabilities).

A partial install is made for real, never simulated: the worker runs with Python's site disabled (-S) on a
folder of links to every entry of this venv's site-packages but the part left out (pillow-heif; Pillow's AVIF
module), or with a weights folder holding only the cut-out model.
"""

from __future__ import annotations

import io
import os
import site
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from pyworker.models.store import find_weights

from .test_bad_inputs import heic
from .workerproc import REPO, WorkerProcess


def partial_python(tmp: Path, leave_out: set[str]) -> tuple[str, dict[str, str]]:
    """(a python to run the worker with, its environment): this venv without the site-packages entries named
    in `leave_out` (top-level names, or `PIL/<file prefix>` for a module inside Pillow)."""
    packages = Path(next(p for p in site.getsitepackages() if p.endswith("site-packages")))
    links = tmp / "site-packages"
    links.mkdir()
    for entry in packages.iterdir():
        if entry.name.split("-")[0] in leave_out or entry.name in leave_out:
            continue
        if entry.name == "PIL":
            (links / "PIL").mkdir()
            for member in entry.iterdir():
                if not any(member.name.startswith(x.removeprefix("PIL/")) for x in leave_out if x.startswith("PIL/")):
                    (links / "PIL" / member.name).symlink_to(member)
            continue
        (links / entry.name).symlink_to(entry)
    wrapper = tmp / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    wrapper.chmod(0o755)
    # -S: no site, so no .pth (the editable install): the checkout itself on the path.
    return str(wrapper), {"PYTHONPATH": f"{links}{os.pathsep}{REPO}", "PYWORKER_NO_HUGEPAGES": "1"}


@pytest.fixture
def no_heic_no_avif(tmp_path: Path) -> Iterator[WorkerProcess]:
    python, env = partial_python(tmp_path, {"pillow_heif", "pillow_heif.libs", "PIL/_avif"})
    with open(tmp_path / "worker.log", "w") as log:
        worker = WorkerProcess("--threads", "1", python=python, env=env, stderr=log)
        yield worker
        worker.close()


def test_a_complete_install_lacks_nothing(worker: WorkerProcess) -> None:
    assert worker.ready is not None
    assert worker.ready["capabilities"] == {"cutout": True, "id_photo": True, "heic": True, "avif": True}
    assert worker.ready["missing"] == {}


def test_missing_libraries_are_said_at_start_and_answered_with_their_own_code(
    no_heic_no_avif: WorkerProcess, tmp_path: Path
) -> None:
    worker = no_heic_no_avif
    ready = worker.ready
    assert ready is not None
    assert ready["capabilities"] == {"cutout": True, "id_photo": True, "heic": False, "avif": False}
    assert set(ready["missing"]) == {"heic", "avif"}
    # The exact command for this worker's Python, with our requirement's bounds.
    assert f"run: {sys.executable} -m pip install 'pillow-heif>=" in ready["missing"]["heic"]
    assert "pyworker-cutout" in ready["missing"]["heic"]
    assert f"run: {sys.executable} -m pip install 'pillow>=" in ready["missing"]["avif"]

    photo = Image.new("RGB", (120, 90), (200, 120, 60))
    reply = worker.remove(heic(photo))
    assert reply["ok"] is False and reply["error"]["code"] == "capability_unavailable", reply
    assert "HEIC/HEIF input" in reply["error"]["message"] and "pip install 'pillow-heif>=" in reply["error"]["message"]
    avif = io.BytesIO()
    photo.save(avif, format="AVIF")
    reply = worker.remove(avif.getvalue())
    assert reply["ok"] is False and reply["error"]["code"] == "capability_unavailable", reply
    assert "AVIF input" in reply["error"]["message"]
    # Everything else still works, and the worker keeps serving.
    png = io.BytesIO()
    photo.save(png, format="PNG")
    assert worker.remove(png.getvalue())["ok"] is True
    worker.close()
    log = (tmp_path / "worker.log").read_text()
    assert '"event": "capabilities_missing"' in log and '"level": "warning"' in log, log[-2000:]


def test_missing_weights_of_id_photos_are_said_at_start(tmp_path: Path) -> None:
    home = tmp_path / "u2net"
    home.mkdir()
    cutout = find_weights("u2netp")
    assert cutout is not None
    (home / "u2netp.onnx").symlink_to(cutout)
    worker = WorkerProcess("--threads", "1", env={"U2NET_HOME": str(home)})
    try:
        assert worker.ready is not None
        assert worker.ready["capabilities"]["id_photo"] is False and worker.ready["capabilities"]["cutout"] is True
        said = worker.ready["missing"]["id_photo"]
        assert "modnet" in said and "models install modnet" in said, said
        photo = io.BytesIO()
        Image.new("RGB", (120, 90), (200, 120, 60)).save(photo, format="PNG")
        reply = worker.remove(photo.getvalue(), preset="passport-35x45")
        assert reply["ok"] is False and reply["error"]["code"] == "model_unavailable", reply
        assert "models install" in reply["error"]["message"]
    finally:
        worker.close()
