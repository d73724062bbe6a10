"""The roll check's rule (pipeline/compliance.py): two estimates that disagree never pass; nothing measured fails."""

from __future__ import annotations

from PIL import Image

from pyworker.pipeline.compliance import MAX_ROLL_DISAGREEMENT, _roll_check
from pyworker.pipeline.framing import Framed
from pyworker.pipeline.presets import PRESETS


def _framed(roll: float) -> Framed:
    img = Image.new("L", (8, 8))
    framed = Framed(img, img, None, (0, 0, 8, 8), "face", (8, 8), PRESETS["passport-35x45"])
    framed.measured_roll, framed.roll_deg, framed.straightened = roll, roll, roll != 0
    return framed


def _out(roll: float, axis: float | None) -> dict:
    return {"eyes": [4, 3], "chin": 7, "crown": 1, "crown_cut": False, "roll": roll, "axis_roll": axis}


def test_level_and_agreeing_passes() -> None:
    check = _roll_check(_framed(5.0), _out(0.4, 0.9))
    assert check["passed"] is True and check["value"] == 0.4 and "straightened by 5.0°" in check["note"]


def test_estimates_that_disagree_fail_and_say_so() -> None:
    check = _roll_check(_framed(0.0), _out(0.2, 0.2 + MAX_ROLL_DISAGREEMENT + 0.3))
    assert check["passed"] is False and "two estimates disagree" in check["note"], check
    assert _roll_check(_framed(0.0), _out(0.2, 0.2 + MAX_ROLL_DISAGREEMENT - 0.3))["passed"] is True


def test_a_roll_not_measured_on_the_output_fails() -> None:
    check = _roll_check(_framed(3.0), None)
    assert check["value"] is None and check["passed"] is False and "not measured" in check["note"]
    one = _roll_check(_framed(0.0), _out(0.1, None))
    assert one["passed"] is False and "one estimate only" in one["note"]


def test_a_roll_beyond_3_degrees_fails() -> None:
    assert _roll_check(_framed(0.0), _out(3.5, 3.4))["passed"] is False
