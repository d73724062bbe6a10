"""Where the frame goes around a measured head (docs/id-photos.md#how-the-frame-is-found, step 6).

A frame is a height H, a top y0 and a left x0 (its width is H x the aspect).
The head gives crown, eye line and chin; the preset gives ranges. Among frames
whose head share lies in the preset's range and whose horizontal off-centre is
at most MAX_OFF_CENTRE, the one chosen is nearest the middle of the head and
eye-line ranges, keeps the top margin above a visible crown (never cut), and
does not reach past the photo where the person is: a frame beyond the photo's
bottom edge shows the body cut by a straight line over flat background (a
"floating bust"). When no frame in range avoids that, the frame nearest the
middle is kept and `cut` says how much of the person the photo's edges cut
inside it (the report fails `photo_edges`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from .presets import Preset

Box = tuple[int, int, int, int]

# ISO/IEC 19794-5 (full frontal): the face's centre within 45-55 % of the width.
MAX_OFF_CENTRE = 0.05
# Mask level that counts as the person where the photo's edge crosses it.
SOLID = 128
# A frame may cross the person at the photo's edge over this share of its width (a
# strand of hair, a rounding pixel); more is a cut body.
MAX_CUT = 0.02
# The edge map is searched on a copy whose longest side is at most this.
SEARCH_SIDE = 400
# Candidates per dimension: head share, top, off-centre.
STEPS = (25, 25, 9)
# Kept clear of the ends of the ranges (share of each range), so that a measurement on the
# output that differs by a little from the one the frame was placed on still lands inside.
RANGE_SLACK = 0.1
# Weight of the off-centre against the head share and eye line.
CENTRE_WEIGHT = 0.3
# Penalties that rank after every frame that satisfies the rule: an eye line out of range,
# then a cut crown (never cut while anything else is possible).
EYE_OUT, CROWN_CUT = 100.0, 1000.0


@dataclass(frozen=True)
class Placement:
    box: Box
    cut: float  # the person cut by the photo's edges inside the frame, share of the frame width
    cut_below_chin: bool  # where: below the chin (the shoulders) or beside / above the head


def cut_map(mask: Image.Image, valid: Image.Image | None) -> tuple[np.ndarray, float]:
    """Pixels on the photo's edge (or a straightened photo's rotated edge) where the person is, and their scale.

    Returns the map at a copy whose longest side is at most SEARCH_SIDE, and that copy's scale.
    """
    k = min(1.0, SEARCH_SIDE / max(mask.size))
    size = (max(2, round(mask.width * k)), max(2, round(mask.height * k)))
    person = np.asarray(mask.resize(size, Image.Resampling.BOX)) >= SOLID
    inside = np.ones_like(person) if valid is None else np.asarray(valid.resize(size, Image.Resampling.BOX)) >= 250
    # The photo's edge: the last pixels inside it (beyond the image's own border counts as outside).
    eroded = np.asarray(Image.fromarray(inside.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(3))) > 0
    eroded[0, :] = eroded[-1, :] = False
    eroded[:, 0] = eroded[:, -1] = False
    return person & inside & ~eroded, k


def place(
    crown: float,
    eyes: tuple[float, float],
    chin: float,
    crown_visible: bool,
    framing: Preset,
    edges: np.ndarray,
    k: float,
) -> Placement:
    """The frame for a head (working pixels) under `framing`; `edges`, `k` from cut_map."""
    ex, ey = eyes
    height = chin - crown
    h_lo, h_hi = framing.head_range
    e_lo, e_hi = framing.eye_range
    slack_h, slack_e = RANGE_SLACK * (h_hi - h_lo), RANGE_SLACK * (e_hi - e_lo)
    shares = np.linspace(h_lo + slack_h, h_hi - slack_h, STEPS[0])
    heights = height / shares  # (S,)
    # Tops: the eye line over its range, and lower still, to keep the crown's margin when nothing else does.
    eye_pos = np.linspace(e_lo + slack_e, e_hi - slack_e, STEPS[1])
    tops = ey - eye_pos[None, :] * heights[:, None]  # (S, T)
    if crown_visible:
        kept = crown - (framing.top_margin + slack_e / 2) * heights
        tops = np.concatenate([tops, kept[:, None]], axis=1)
    offs = np.linspace(-MAX_OFF_CENTRE, MAX_OFF_CENTRE, STEPS[2])
    hh = heights[:, None, None]
    y0 = tops[:, :, None]
    width = hh * framing.aspect
    x0 = ex - width / 2 + offs * width
    x0, y0, hh, width = np.broadcast_arrays(x0, y0, hh, width)  # every candidate, (S, T, O)
    share = height / hh
    eye = (ey - y0) / hh
    cost = ((share - framing.head) / (h_hi - h_lo)) ** 2 + ((eye - framing.eye_line) / (e_hi - e_lo)) ** 2
    cost = cost + CENTRE_WEIGHT * (offs[None, None, :] / MAX_OFF_CENTRE) ** 2
    cost = cost + EYE_OUT * ((eye < e_lo) | (eye > e_hi))
    if crown_visible:
        cost = cost + CROWN_CUT * ((crown - y0) / hh < framing.top_margin - 1e-6)
    cut = _cut(edges, k, x0, y0, x0 + width, y0 + hh)  # pixels of the small copy
    limit = MAX_CUT * width * k
    best = np.unravel_index(int(np.argmin(cost)), cost.shape)
    ok = cut <= limit
    if ok.any():
        best = np.unravel_index(int(np.argmin(np.where(ok, cost, np.inf))), cost.shape)
    box = (
        round(float(x0[best])),
        round(float(y0[best])),
        round(float(x0[best] + width[best])),
        round(float(y0[best] + hh[best])),
    )
    below = _cut(edges, k, *(np.array([float(v)]) for v in (box[0], max(chin, box[1]), box[2], box[3])))
    return Placement(box, float(cut[best] / max(1e-6, width[best] * k)), bool(below[0] > limit[best]))


def _cut(edges: np.ndarray, k: float, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """Edge pixels strictly inside each box (a 1 px border left out: the frame's own edge on the photo's is fine)."""
    h, w = edges.shape
    table = np.zeros((h + 1, w + 1), np.int32)
    table[1:, 1:] = edges.astype(np.int32).cumsum(0).cumsum(1)

    def at(v: np.ndarray, hi: int) -> np.ndarray:
        return np.clip(np.round(v * k).astype(np.int64), 0, hi)

    a, b = at(x0, w - 1) + 1, at(y0, h - 1) + 1
    c, d = at(x1, w) - 1, at(y1, h) - 1
    c, d = np.maximum(c, a), np.maximum(d, b)
    return (table[d, c] - table[b, c] - table[d, a] + table[b, a]).astype(np.float64)
