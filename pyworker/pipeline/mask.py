"""Operations on the 8-bit mask: refining its edge and finding the subject's box."""

from __future__ import annotations

from PIL import Image, ImageFilter

# Alpha at or above this counts as subject when measuring its bounding box; lower
# values are the model's faint haze, which would stretch the box to the frame.
SUBJECT_THRESHOLD = 32
# Rank filters cost kernel² per pixel and the kernel grows with the side: side⁴ in all (20 s at
# 4096 px). Above this side the mask is refined at this size, then scaled back: the model's mask
# has no more detail than that (it is predicted at 320 px), and the feather hides the upscale.
REFINE_SIDE = 1024


def refine(mask: Image.Image) -> Image.Image:
    """Binarise, open (drop specks), close (fill pinholes), then feather the edge, at most REFINE_SIDE px.

    The kernel and feather scale with the image so a 400 px and a 4000 px
    result get the same visual edge.
    """
    if max(mask.size) > REFINE_SIDE:
        scale = REFINE_SIDE / max(mask.size)
        small = (max(1, round(mask.width * scale)), max(1, round(mask.height * scale)))
        return _refine(mask.resize(small, Image.Resampling.BOX)).resize(mask.size, Image.Resampling.BILINEAR)
    return _refine(mask)


def _refine(mask: Image.Image) -> Image.Image:
    side = max(mask.size)
    kernel = max(3, (side // 250) | 1)  # MinFilter/MaxFilter need odd sizes
    binary = mask.point(lambda v: 255 if v >= 128 else 0)
    opened = binary.filter(ImageFilter.MinFilter(kernel)).filter(ImageFilter.MaxFilter(kernel))
    closed = opened.filter(ImageFilter.MaxFilter(kernel)).filter(ImageFilter.MinFilter(kernel))
    return closed.filter(ImageFilter.GaussianBlur(max(1.0, kernel / 2)))


def subject_box(mask: Image.Image) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the subject, or None when the mask is empty."""
    return mask.point(lambda v: 255 if v >= SUBJECT_THRESHOLD else 0).getbbox()


def pad_box(box: tuple[int, int, int, int], padding: int) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    return (left - padding, top - padding, right + padding, bottom + padding)
