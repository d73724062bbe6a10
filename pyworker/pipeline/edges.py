"""Clean edges for ID photos: only the main person in the mask, and the hair's own colour on the new background.

Two steps on the cropped output (docs/id-photos.md#edges), both at the output's
size (413x531 for a passport: a few ms):

- `main_person`: the mask keeps only what is connected to the chosen face
  (a neighbour's shoulder, a stranger's hand at the edge, ghost hair floating
  beside the head are separate components and go);
- `foreground`: in a soft edge (hair) a pixel is a mix of the person and the
  old backdrop; pasting it as it is onto a new background keeps the old
  backdrop's colour as a halo. Blur-fusion foreground estimation (Forte and
  Pitié, "Approximate Fast Foreground Colour Estimation", ICIP 2021) estimates
  the person's own colour there from local means of the foreground and the
  background: two passes of box blurs, no solver.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

# Connectivity is judged on alpha >= this (half opacity): a faint haze between two
# people must not join them.
SOLID = 128
# Components are found on a copy whose longest side is at most this (geodesic growth in
# steps of 2 px there; a component is a blob of the subject, not a hair).
COMPONENT_SIDE = 160
# Soft edges of the kept component reach this far beyond its solid part (share of the
# output's longest side): hair ends at low alpha stay, a separate blob further away goes.
SOFT_REACH = 0.03
# Blur-fusion radii (the paper's: 90 then 6 px at about 1 MP), scaled with the image's side.
FUSION_RADII = (90, 6)
FUSION_SIDE = 1024  # the radii above are for this longest side
COARSE = 4  # the first pass runs this many times smaller
# The estimate runs on at most this many pixels; a larger output takes the estimated
# colour upsampled, only in its soft edge.
FUSION_MAX_PIXELS = 300_000


def main_person(mask: Image.Image, seed: tuple[float, float] | None) -> Image.Image:
    """`mask` with only the component connected to `seed` (the face's eye midpoint, output pixels) kept.

    No seed, or a seed outside the solid mask: `mask` unchanged (nothing to say which component is the person).
    """
    if seed is None:
        return mask
    k = min(1.0, COMPONENT_SIDE / max(mask.size))
    size = (max(1, round(mask.width * k)), max(1, round(mask.height * k)))
    solid = np.asarray(mask.resize(size, Image.Resampling.BOX)) >= SOLID
    sx, sy = min(size[0] - 1, max(0, int(seed[0] * k))), min(size[1] - 1, max(0, int(seed[1] * k)))
    if not solid[sy, sx]:
        # The eyes can sit on a thin spot of the small mask: start from the nearest solid pixel within a few px.
        ys, xs = np.nonzero(solid[max(0, sy - 4) : sy + 5, max(0, sx - 4) : sx + 5])
        if ys.size == 0:
            return mask
        sy, sx = max(0, sy - 4) + int(ys[0]), max(0, sx - 4) + int(xs[0])
    region = np.zeros_like(solid)
    region[sy, sx] = True
    solid_img = Image.fromarray(solid.astype(np.uint8) * 255)
    grown = Image.fromarray(region.astype(np.uint8) * 255)
    for _ in range(size[0] + size[1]):  # geodesic growth inside the solid mask until it stops
        nxt = Image.fromarray(np.minimum(np.asarray(grown.filter(ImageFilter.MaxFilter(5))), np.asarray(solid_img)))
        if nxt.tobytes() == grown.tobytes():
            break
        grown = nxt
    if np.array_equal(np.asarray(grown) > 0, solid):
        return mask  # one component: nothing to drop
    reach = max(2, round(SOFT_REACH * max(mask.size) * k))  # in the small copy's pixels
    keep = grown.filter(ImageFilter.MaxFilter(2 * reach + 1)).resize(mask.size, Image.Resampling.BILINEAR)
    keep = keep.point(lambda v: 255 if v > 0 else 0)
    return Image.fromarray(np.minimum(np.asarray(mask), np.asarray(keep)))


def _box_blur(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges clamped, on an (h, w[, c]) float32 array (summed-area table)."""
    if r <= 0:
        return a
    h, w = a.shape[:2]
    pad = [(r + 1, r), (r + 1, r)] + [(0, 0)] * (a.ndim - 2)
    s = np.pad(a, pad, mode="edge").cumsum(0, dtype=np.float32).cumsum(1, dtype=np.float32)
    n = 2 * r + 1
    mean: np.ndarray = (s[n:, n:] - s[:-n, n:] - s[n:, :-n] + s[:-n, :-n])[:h, :w] / (n * n)
    return mean


def _fusion(
    image: np.ndarray, f: np.ndarray, b: np.ndarray, alpha: np.ndarray, r: int
) -> tuple[np.ndarray, np.ndarray]:
    a = alpha[..., None]
    blurred_a = _box_blur(alpha, r)[..., None]
    blurred_f = _box_blur(f * a, r) / (blurred_a + 1e-5)
    blurred_b = _box_blur(b * (1 - a), r) / ((1 - blurred_a) + 1e-5)
    fg = blurred_f + a * (image - a * blurred_f - (1 - a) * blurred_b)
    return np.clip(fg, 0, 1), blurred_b


def _estimate(rgb: Image.Image, mask: Image.Image) -> Image.Image:
    scale = max(rgb.size) / FUSION_SIDE
    r1, r2 = (max(1, round(r * scale)) for r in FUSION_RADII)
    # The first pass's means span ~90 px: it runs on a copy COARSE times smaller, its two
    # estimates scaled back (a third of the time of the whole estimate at full size).
    size = (max(1, rgb.width // COARSE), max(1, rgb.height // COARSE))
    small = np.asarray(rgb.resize(size, Image.Resampling.BOX), dtype=np.float32) / 255
    small_alpha = np.asarray(mask.resize(size, Image.Resampling.BOX), dtype=np.float32) / 255
    fg, bg = _fusion(small, small, small, small_alpha, max(1, r1 // COARSE))
    fg, bg = (_upscale(x, rgb.size) for x in (fg, bg))
    image = np.asarray(rgb, dtype=np.float32) / 255
    fg, _ = _fusion(image, fg, bg, np.asarray(mask, dtype=np.float32) / 255, r2)
    return Image.fromarray((fg * 255 + 0.5).astype(np.uint8))


def _upscale(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    img = Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8))
    return np.asarray(img.resize(size, Image.Resampling.BILINEAR), dtype=np.float32) / 255


def foreground(rgb: Image.Image, mask: Image.Image) -> Image.Image:
    """`rgb` with the person's own colour estimated where the mask is soft (0 < alpha < 255); elsewhere as it is."""
    soft = mask.point(lambda v: 255 if 0 < v < 255 else 0)
    if soft.getbbox() is None:
        return rgb
    if rgb.width * rgb.height <= FUSION_MAX_PIXELS:
        estimated = _estimate(rgb, mask)
    else:  # the estimate on a copy of at most FUSION_MAX_PIXELS, its colour taken in the soft edge only
        k = (FUSION_MAX_PIXELS / (rgb.width * rgb.height)) ** 0.5
        small = (max(1, round(rgb.width * k)), max(1, round(rgb.height * k)))
        estimated = _estimate(rgb.resize(small, Image.Resampling.BOX), mask.resize(small, Image.Resampling.BOX))
        estimated = estimated.resize(rgb.size, Image.Resampling.BILINEAR)
    out = rgb.copy()
    out.paste(estimated, (0, 0), soft)
    return out
