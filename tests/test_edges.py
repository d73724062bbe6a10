"""Clean edges of ID photos (pipeline/edges.py) on drawn pictures: no backdrop colour in the hair, no strangers."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pyworker.pipeline import edges

SIZE = (413, 531)
PERSON, BACKDROP, NEW_BG = (90, 50, 20), (240, 220, 0), (240, 240, 240)


def _scene() -> tuple[Image.Image, Image.Image]:
    """A brown head whose soft edge (a wide blur: hair) is mixed with a yellow backdrop, and a hand at the edge."""
    mask = Image.new("L", SIZE, 0)
    draw = ImageDraw.Draw(mask)
    draw.ellipse((110, 60, 300, 330), fill=255)
    draw.rectangle((90, 300, 320, 531), fill=255)  # shoulders to the bottom edge
    draw.ellipse((-30, 420, 40, 500), fill=255)  # a stranger's hand at the left edge, not touching the person
    mask = mask.filter(ImageFilter.GaussianBlur(6))
    a = np.asarray(mask, np.float32)[..., None] / 255
    rgb = a * np.array(PERSON, np.float32) + (1 - a) * np.array(BACKDROP, np.float32)
    return Image.fromarray((rgb + 0.5).astype(np.uint8)), mask


def _on(rgb: Image.Image, mask: Image.Image) -> np.ndarray:
    out = Image.new("RGB", SIZE, NEW_BG)
    out.paste(rgb, (0, 0), mask)
    return np.asarray(out, np.float32)


def test_foreground_takes_the_backdrop_colour_out_of_the_soft_edge() -> None:
    rgb, mask = _scene()
    a = np.asarray(mask, np.float32)[..., None] / 255
    truth = a * np.array(PERSON, np.float32) + (1 - a) * np.array(NEW_BG, np.float32)  # the person on the new bg
    soft = (np.asarray(mask) > 10) & (np.asarray(mask) < 245)
    before = np.abs(_on(rgb, mask) - truth)[soft].mean()
    after = np.abs(_on(edges.foreground(rgb, mask), mask) - truth)[soft].mean()
    assert before > 10, before  # the drawn halo is there: yellow mixed into the edge
    assert after < before / 3, (before, after)
    # Solid pixels keep their colour exactly.
    solid = np.asarray(mask) == 255
    assert np.array_equal(np.asarray(edges.foreground(rgb, mask))[solid], np.asarray(rgb)[solid])


def test_foreground_of_a_large_output_works_on_a_smaller_copy() -> None:
    rgb, mask = _scene()
    big = (SIZE[0] * 2, SIZE[1] * 2)  # 0.88 MP: above FUSION_MAX_PIXELS
    rgb, mask = rgb.resize(big, Image.Resampling.BILINEAR), mask.resize(big, Image.Resampling.BILINEAR)
    out = np.asarray(edges.foreground(rgb, mask), np.float32)
    soft = (np.asarray(mask) > 10) & (np.asarray(mask) < 245)
    # Yellow is red+green without blue: the blue deficit against the person's hue shrinks.
    drift_before = np.abs(np.asarray(rgb, np.float32)[soft] - PERSON).mean()
    assert np.abs(out[soft] - PERSON).mean() < drift_before / 2


def test_main_person_drops_what_is_not_connected_and_keeps_soft_edges() -> None:
    _, mask = _scene()
    kept = np.asarray(edges.main_person(mask, (205, 180)))
    m = np.asarray(mask)
    assert m[460, 5] > 200 and kept[460, 5] == 0  # the hand is gone
    person = np.zeros(SIZE[::-1], bool)
    person[:, 60:360] = True
    assert np.array_equal(kept[person], m[person])  # the person, soft edge included, untouched


def test_main_person_without_a_seed_on_the_mask_keeps_everything() -> None:
    _, mask = _scene()
    assert edges.main_person(mask, None) is mask
    assert np.array_equal(np.asarray(edges.main_person(mask, (400, 20))), np.asarray(mask))  # seed on background
