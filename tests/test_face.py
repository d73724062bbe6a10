"""pipeline/face.py's geometry: the landmarks follow the image through a scale and a turn (no detector)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

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
