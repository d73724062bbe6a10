"""The face checks of meta.compliance (eyes, light, exposure, sharpness, colour: docs/id-photos.md#face-checks).

Through a real worker on samples/astronaut.jpg (public domain) at 2x, with defects drawn on it
(testkit/face_defects.py): each drawn defect fails its own check and only the checks it should.
"""

from __future__ import annotations

import pytest
from PIL import Image

from pyworker.pipeline import face_quality
from testkit import face_defects

from .images import ASTRONAUT, encode
from .workerproc import WorkerProcess

K = 2  # the sample at 2x: ~88 px between the eyes, the size of a passport photo's face
# Iris centres measured by hand on samples/astronaut.jpg (as tests/test_idphoto.py), at K x.
RIGHT, LEFT = (202.5 * K, 100.5 * K), (246.5 * K, 102.5 * K)
FACE_CHECKS = list(face_quality.APPEARANCE)


def _photo() -> Image.Image:
    img = Image.open(ASTRONAUT).convert("RGB")
    return img.resize((img.width * K, img.height * K), Image.Resampling.LANCZOS)


def _face_checks(worker: WorkerProcess, img: Image.Image, **options) -> dict[str, dict]:
    reply = worker.remove(encode(img, "JPEG", quality=92), preset="passport-35x45", **options)
    assert reply["ok"] is True, reply.get("error")
    checks = {c["name"]: c for c in reply["meta"]["compliance"]["checks"]}
    assert [n for n in checks if n in FACE_CHECKS] == FACE_CHECKS
    for c in checks.values():  # plain JSON types only (no NumPy scalars leak into meta)
        assert type(c["value"]) in (int, float, bool, type(None)), c
    return checks


def test_a_clean_face_passes_every_face_check(worker: WorkerProcess) -> None:
    checks = _face_checks(worker, _photo())
    for name in FACE_CHECKS:
        assert checks[name]["passed"] is True, checks[name]
        assert "note" not in checks[name]


DEFECTS = {
    # name: (draw, the check that must fail, words its note must carry)
    "dark lenses": (lambda im: face_defects.sunglasses(im, RIGHT, LEFT), "eyes_visible", "sunglasses"),
    "one side in shadow": (lambda im: face_defects.side_shadow(im, RIGHT, LEFT, 0.3), "lighting", "both sides"),
    "out of focus": (lambda im: face_defects.blurred(im, RIGHT, LEFT, 0.04), "sharpness", "blurred"),
    "underexposed": (lambda im: face_defects.gain(im, 0.35), "exposure", "too dark"),
    "overexposed": (lambda im: face_defects.gain(im, 1.6), "exposure", "blown out"),
    "green cast": (lambda im: face_defects.cast(im, (0.75, 1.15, 0.75)), "colour", "green cast"),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_a_drawn_defect_fails_its_check_with_advice(worker: WorkerProcess, defect: str) -> None:
    draw, name, words = DEFECTS[defect]
    checks = _face_checks(worker, draw(_photo()))
    assert checks[name]["passed"] is False, checks[name]
    assert words in checks[name]["note"], checks[name]
    assert checks["faces"]["passed"] is True, checks["faces"]  # the face was found and measured
    # Lenses, shadow and a cast leave the face's detail and light alone.
    if defect in ("dark lenses", "one side in shadow", "green cast", "out of focus"):
        others = {n: c for n, c in checks.items() if n in FACE_CHECKS and n not in (name, "exposure")}
        assert all(c["passed"] for c in others.values()), others


def test_strict_refuses_a_face_with_dark_lenses(worker: WorkerProcess) -> None:
    img = face_defects.sunglasses(_photo(), RIGHT, LEFT)
    reply = worker.remove(encode(img, "JPEG", quality=92), preset="passport-35x45", strict=True)
    assert reply["ok"] is False and reply["error"]["code"] == "not_compliant", reply
    message = reply["error"]["message"]
    assert "eyes_visible" in message and "accepted >= 0.3" in message and "sunglasses" in message, message


def test_without_a_face_the_face_checks_are_unknown_and_fail() -> None:
    checks = face_quality.assess(_photo(), None)
    assert [c["name"] for c in checks] == FACE_CHECKS
    assert all(c["value"] is None and c["passed"] is False and "no face" in c["note"] for c in checks)


def test_a_face_too_small_to_judge_is_unknown_not_passed(worker: WorkerProcess) -> None:
    small = Image.open(ASTRONAUT).convert("RGB").resize((150, 150), Image.Resampling.LANCZOS)  # ~13 px between eyes
    checks = _face_checks(worker, small)
    for name in FACE_CHECKS:
        assert checks[name]["value"] is None and checks[name]["passed"] is False, checks[name]
        assert "too small" in checks[name]["note"], checks[name]
