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
inside it (the report fails `photo_edges`). When the frames that avoid it all
miss the eye range or the crown's room, the best of them is kept and `traded`
says which edge the better frames would cross (the report's note says what
photo to take).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

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
# Room kept above the crown beyond the preset's margin, share of the frame: the output's own
# measurement may put the crown a few pixels higher than the working image's did.
CROWN_SLACK = 0.01
# Penalties that rank after every frame that satisfies the rule: less than CROWN_SLACK beyond
# the margin, an eye line out of range, then a cut crown (never cut while anything else is possible).
CROWN_TIGHT, EYE_OUT, CROWN_CUT = 10.0, 100.0, 1000.0


@dataclass(frozen=True)
class Placement:
    box: Box
    cut: float  # the person cut by the photo's edges inside the frame, share of the frame width
    cut_bottom: bool  # the photo's bottom edge cuts the person (else its sides do): which photo to ask for
    # The eye line is out of range, or the crown cut or too tight, only because every frame that has it right
    # crosses the photo's edge where the person is: "bottom" or "sides" (which photo would do), else None.
    traded: str | None = None


def cut_map(mask: Image.Image, valid: Image.Image | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Pixels on the photo's edge (or a straightened photo's rotated edge) where the person is: the bottom
    edge's and the sides', at a copy whose longest side is at most SEARCH_SIDE, and that copy's scale.
    """
    k = min(1.0, SEARCH_SIDE / max(mask.size))
    size = (max(2, round(mask.width * k)), max(2, round(mask.height * k)))
    person = np.asarray(mask.resize(size, Image.Resampling.BOX)) >= SOLID
    inside = np.ones_like(person) if valid is None else np.asarray(valid.resize(size, Image.Resampling.BOX)) >= 250
    # The last pixels inside the photo, by the side they face (beyond the image's border is outside).
    out = np.pad(~inside, 1, constant_values=True)
    bottom = inside & out[2:, 1:-1]
    sides = inside & (out[1:-1, :-2] | out[1:-1, 2:]) & ~bottom
    return person & bottom, person & sides, k


def place(
    crown: float,
    eyes: tuple[float, float],
    chin: float,
    crown_visible: bool,
    framing: Preset,
    edges: tuple[np.ndarray, np.ndarray, float],
) -> Placement:
    """The frame for a head (working pixels) under `framing`; `edges` from cut_map."""
    bottom_edge, side_edge, k = edges
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
        kept = crown - (framing.top_margin + CROWN_SLACK) * heights
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
        room = (crown - y0) / hh
        cost = cost + CROWN_CUT * (room < framing.top_margin - 1e-6)
        cost = cost + CROWN_TIGHT * (room < framing.top_margin + CROWN_SLACK - 1e-6)
    # Counted from the eye line down: a photo that cuts the hair above is the crown check's (crown_visible).
    box_args = (x0, np.maximum(y0, ey), x0 + width, y0 + hh)
    bottom = _cut(bottom_edge, k, *box_args)  # pixels of the small copy
    cut = bottom + _cut(side_edge, k, *box_args)
    limit = MAX_CUT * width * k
    best = ideal = np.unravel_index(int(np.argmin(cost)), cost.shape)
    ok = cut <= limit
    traded = None
    if ok.any():
        best = np.unravel_index(int(np.argmin(np.where(ok, cost, np.inf))), cost.shape)
        if cost[best] >= CROWN_TIGHT > cost[ideal]:
            traded = "bottom" if bottom[ideal] > limit[ideal] else "sides"
    box = (
        round(float(x0[best])),
        round(float(y0[best])),
        round(float(x0[best] + width[best])),
        round(float(y0[best] + hh[best])),
    )
    cut_share = float(cut[best] / max(1e-6, width[best] * k))
    return Placement(box, cut_share, bool(bottom[best] > limit[best]), traded)


def _cut(edges: np.ndarray, k: float, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """Edge pixels strictly inside each box (a 1 px border left out: the frame's own edge on the photo's is fine)."""
    h, w = edges.shape
    table = np.zeros((h + 1, w + 1), np.int32)
    table[1:, 1:] = edges.astype(np.int32).cumsum(0).cumsum(1)

    def at(v: np.ndarray, shift: int, hi: int) -> np.ndarray:
        return np.clip(np.round(v * k).astype(np.int64) + shift, 0, hi)

    # Interior rows/columns [a, c) x [b, d): the box's own edge is left out where it lies on the photo; where
    # the box reaches beyond the photo, the photo's last row/column is inside it and counts.
    a, b = at(x0, 1, w), at(y0, 1, h)
    c, d = at(x1, -1, w), at(y1, -1, h)
    c, d = np.maximum(c, a), np.maximum(d, b)
    inside: np.ndarray = (table[d, c] - table[b, c] - table[d, a] + table[b, a]).astype(np.float64)
    return inside
