"""Is the mask right? Against a drawn ground truth, and against rembg itself (the oracle)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from .images import ASTRONAUT, decode, encode, iou, subject_scene
from .workerproc import REPO, WorkerProcess


@pytest.mark.parametrize("seed", [0, 1])
def test_mask_matches_the_drawn_subject(worker: WorkerProcess, seed: int) -> None:
    scene, truth = subject_scene((600, 800), seed=seed)
    reply = worker.remove(encode(scene, "JPEG", quality=90), only_mask=True, max_size=0)
    mask = np.asarray(decode(reply["image"])) > 127
    assert mask.shape == truth.shape
    assert iou(mask, truth) >= 0.9


@pytest.fixture(scope="module")
def rembg_u2netp():
    # rembg is the oracle only: the worker never imports it.
    rembg = pytest.importorskip("rembg", reason="rembg is in requirements.txt; the oracle needs it")
    return rembg, rembg.new_session("u2netp")


@pytest.mark.parametrize(
    "name",
    ["astronaut.jpg", "camera.jpg", "scene"],
)
def test_alpha_agrees_with_rembg_at_the_original_size(worker: WorkerProcess, rembg_u2netp, name: str) -> None:
    rembg, session = rembg_u2netp
    data = encode(subject_scene((500, 700))[0], "JPEG") if name == "scene" else (REPO / "samples" / name).read_bytes()
    theirs = Image.open(io.BytesIO(rembg.remove(data, session=session))).getchannel("A")
    ours = decode(worker.remove(data, max_size=0)["image"]).getchannel("A")
    assert ours.size == theirs.size
    a, b = np.asarray(ours) > 127, np.asarray(theirs) > 127
    assert iou(a, b) >= 0.98, iou(a, b)
    # Not just the same silhouette: the soft alpha values agree too.
    assert np.abs(np.asarray(ours, np.int16) - np.asarray(theirs, np.int16)).mean() < 3


def test_exif_rotated_photo_is_upright(worker: WorkerProcess) -> None:
    photo = Image.open(ASTRONAUT)
    rotated = photo.transpose(Image.Transpose.ROTATE_90)  # what a phone stores, sideways...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with the tag that says "turn 90° clockwise to view"
    stored = encode(rotated, "JPEG", exif=exif, quality=92)
    assert ImageOps.exif_transpose(decode(stored)).size == photo.size  # Pillow agrees on the tag
    reply = worker.remove(stored, max_size=0, only_mask=True)
    upright = decode(worker.remove(ASTRONAUT.read_bytes(), max_size=0, only_mask=True)["image"])
    restored = decode(reply["image"])
    assert restored.size == upright.size
    assert iou(np.asarray(restored) > 127, np.asarray(upright) > 127) > 0.95
