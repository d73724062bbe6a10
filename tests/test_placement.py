"""pipeline/placement.py: a frame that keeps the body inside the photo over one that has every range right,
and the report saying which photo would do (compliance._explain_trade)."""

from __future__ import annotations

from PIL import Image, ImageDraw

from pyworker.pipeline import placement
from pyworker.pipeline.compliance import TRADED_NOTE, _check, _explain_trade
from pyworker.pipeline.presets import PRESETS

US = PRESETS["us-2x2"]
# A head with tall hair (an up-do): the crown twice as far above the eyes as the chin below them. With us-2x2's
# ranges the eyes sit in range (<= 43.75 % from the top) with the crown's margin kept only at a small head
# share, in a tall frame reaching well below the chin.
CROWN, EYES, CHIN = 100.0, (500.0, 300.0), 400.0


def _person(photo_height: int) -> Image.Image:
    """The mask of a 1000 px wide photo: head and body, the body running down to its bottom edge."""
    mask = Image.new("L", (1000, photo_height), 0)
    ImageDraw.Draw(mask).rectangle((350, 80, 650, photo_height), fill=255)
    return mask


def _eye_line(box: tuple[int, int, int, int]) -> float:
    return (EYES[1] - box[1]) / (box[3] - box[1])


def test_a_photo_with_room_below_gets_every_range_right() -> None:
    placed = placement.place(CROWN, EYES, CHIN, True, US, placement.cut_map(_person(1200), None))
    assert US.eye_range[0] <= _eye_line(placed.box) <= US.eye_range[1], placed
    assert placed.traded is None and placed.cut == 0.0


def test_a_photo_ending_below_the_chin_keeps_the_body_whole_and_says_the_bottom_is_why() -> None:
    # The photo ends at y 560: every frame with the eye line in range reaches below it (to y 583 at least:
    # 4 % room above the crown, the eyes at 43.75 %), across the body.
    placed = placement.place(CROWN, EYES, CHIN, True, US, placement.cut_map(_person(560), None))
    assert placed.box[3] <= 560 + 2 and placed.cut <= placement.MAX_CUT, placed  # no floating bust
    assert _eye_line(placed.box) > US.eye_range[1], placed
    assert placed.traded == "bottom"


def test_the_report_says_what_photo_would_do_on_the_checks_given_up() -> None:
    checks = [
        _check("eye_line", 0.484, list(US.eye_range), False),
        _check("crown_visible", True, True, True, "room above the crown 4.7 %"),
        _check("roll", 0.1, [-3.0, 3.0], True),
    ]
    _explain_trade(checks, "bottom", crown_in_photo=True)
    assert checks[0]["note"] == TRADED_NOTE["bottom"]
    assert checks[1]["note"] == "room above the crown 4.7 %" and "note" not in checks[2]
    cut = [_check("crown_visible", False, True, False, "the photo cuts the top of the head")]
    _explain_trade(cut, "sides", crown_in_photo=False)  # the photo's top, not its sides, is why
    assert cut[0]["note"] == "the photo cuts the top of the head"
