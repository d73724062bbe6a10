"""The inputs every system gets: the sample photos plus generated 800x800, 1 MP, 4 MP, 12 MP JPEGs and a 4096² PNG.

Generated ones are photo-like: samples/astronaut.jpg upscaled with LANCZOS,
with mild noise on the JPEGs so they compress like camera files (the PNG is
left smooth so it stays under the worker's default 10 MiB input limit). They
are drawn once into bench/out/ and reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .common import OUT, REPO

SAMPLES = REPO / "samples"
# name, size, format; all from samples/astronaut.jpg (a person, with a face, for the ID-photo figures)
GENERATED: list[tuple[str, tuple[int, int], str]] = [
    ("gen-800.jpg", (800, 800), "JPEG"),  # the reference job: an 800x800 JPEG to an 800 px PNG
    ("gen-1mp.jpg", (1152, 864), "JPEG"),
    ("gen-4mp.jpg", (2304, 1728), "JPEG"),
    ("gen-12mp.jpg", (4000, 3000), "JPEG"),
    ("gen-4096.png", (4096, 4096), "PNG"),
]


# Drawn without the noise: an 800 px photo is usually a camera photo already scaled down (and smoothed by
# it), and the 800x800 encode figures are quoted for it; docs/memory.md also gives them for a noisy one.
SMOOTH = {"gen-800.jpg"}


@dataclass(frozen=True)
class Input:
    name: str
    path: Path
    width: int
    height: int
    size_bytes: int

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    @property
    def label(self) -> str:
        return f"{self.name} ({self.width}x{self.height})"


def _draw(path: Path, size: tuple[int, int], fmt: str, seed: int) -> None:
    src = Image.open(SAMPLES / "astronaut.jpg").convert("RGB")
    img = src.resize(size, Image.Resampling.LANCZOS)
    tmp = path.with_suffix(path.suffix + ".part")
    if fmt == "JPEG":
        if path.name not in SMOOTH:
            rng = np.random.default_rng(seed)
            arr = np.asarray(img, dtype=np.int16)
            arr = arr + rng.integers(-6, 7, size=(size[1], size[0], 1), dtype=np.int16)
            img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        img.save(tmp, "JPEG", quality=90)
    else:
        img.save(tmp, "PNG")
    tmp.replace(path)


def _describe(path: Path) -> Input:
    with Image.open(path) as im:
        w, h = im.size
    return Input(path.name, path, w, h, path.stat().st_size)


def sample_inputs() -> list[Input]:
    return [_describe(p) for p in sorted(SAMPLES.glob("*.jpg"))]


def generated_inputs(names: list[str] | None = None) -> list[Input]:
    OUT.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (name, size, fmt) in enumerate(GENERATED):
        if names is not None and name not in names:
            continue
        path = OUT / name
        if not path.exists():
            _draw(path, size, fmt, seed=i)
        out.append(_describe(path))
    return out


def all_inputs() -> list[Input]:
    return sample_inputs() + generated_inputs()
