"""Synthetic ID-photo cases derived in code from samples/astronaut.jpg (public domain).

Real portraits with a free licence are scarce, so the demo and the tests make
the hard cases from the one portrait we may ship: a head rolled by ±10°, the
crown cut off by the photo's top, two people side by side at different sizes,
a copy so small that any ID crop of it must be upscaled, and a 4x copy large
enough to pass every check.

    python -m demo.variants OUT_DIR   # copies samples/ there and adds OUT_DIR/astronaut-*.png
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
ASTRONAUT = REPO / "samples" / "astronaut.jpg"

# The astronaut photo's backdrop is dark blue-grey at its top corners; rotated
# corners are filled with it so they read as background, not as a new object.
FILL = (38, 38, 48)
# Rows cut from the top for "cut-top": the crown is at y≈16, the eyes at y≈101,
# so 40 rows take the top of the hair away and leave the face whole.
CUT_TOP_ROWS = 40
# Side of the small copy: the head (≈148 px of 512) becomes ≈43 px, which a
# 531 px passport frame (head 70 %) must upscale about 8.6x.
SMALL_SIDE = 150
# "large": the one variant that should pass every check (the 512 px sample is too small for a print).
LARGE_SCALE = 4
# The second person's size relative to the first in "two-people".
SECOND_PERSON_SCALE = 0.6


def astronaut() -> Image.Image:
    return Image.open(ASTRONAUT).convert("RGB")


def rotated(degrees: float) -> Image.Image:
    """Counter-clockwise by `degrees` (PIL's sense), canvas grown so nothing is lost."""
    return astronaut().rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=FILL)


def cut_top() -> Image.Image:
    img = astronaut()
    return img.crop((0, CUT_TOP_ROWS, img.width, img.height))


def two_people() -> Image.Image:
    """The astronaut (left, full size) beside a 0.6x copy (right, standing on the same floor line)."""
    big = astronaut()
    small = big.resize(
        (round(big.width * SECOND_PERSON_SCALE), round(big.height * SECOND_PERSON_SCALE)), Image.Resampling.LANCZOS
    )
    canvas = Image.new("RGB", (big.width + small.width, big.height), FILL)
    canvas.paste(big, (0, 0))
    canvas.paste(small, (big.width, big.height - small.height))
    return canvas


def small() -> Image.Image:
    return astronaut().resize((SMALL_SIDE, SMALL_SIDE), Image.Resampling.LANCZOS)


def large() -> Image.Image:
    """4x (2048 px): a stand-in for a camera photo, enough pixels for a passport frame without upscaling."""
    return astronaut().resize((512 * LARGE_SCALE,) * 2, Image.Resampling.LANCZOS)


VARIANTS: dict[str, Callable[[], Image.Image]] = {
    "astronaut-rot+10": lambda: rotated(10),
    "astronaut-rot-10": lambda: rotated(-10),
    "astronaut-cut-top": cut_top,
    "astronaut-two-people": two_people,
    "astronaut-small": small,
    "astronaut-large": large,
}
# Saved as JPEG (a 2048 px PNG of a photo is ~8 MB); the others as PNG.
JPEG_VARIANTS = ("astronaut-large",)


def filename(name: str) -> str:
    return f"{name}.jpg" if name in JPEG_VARIANTS else f"{name}.png"


def write(out_dir: Path, samples: Path | None = REPO / "samples") -> list[Path]:
    """The variants as PNGs in out_dir, after a copy of every photo in `samples` (None: none)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for photo in sorted(samples.glob("*.jpg")) if samples is not None else []:
        copy = out_dir / photo.name
        shutil.copyfile(photo, copy)
        paths.append(copy)
    for name, make in VARIANTS.items():
        path = out_dir / filename(name)
        if name in JPEG_VARIANTS:
            make().save(path, "JPEG", quality=92)
        else:
            make().save(path, "PNG")
        paths.append(path)
    return paths


if __name__ == "__main__":
    written = write(Path(sys.argv[1] if len(sys.argv) > 1 else "out/photos"))
    print(f"{len(written)} photos in {written[0].parent}")
