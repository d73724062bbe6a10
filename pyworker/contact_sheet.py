"""One PNG to judge a run at a glance: per photo, original | cut-out on a checkerboard | ID crop.

Pairs SAMPLES/NAME.(jpg|jpeg|png|webp|bmp) with RESULTS/NAME.png (the cut-out)
and RESULTS/NAME.id.png (the ID crop). A missing result leaves a labelled,
hatched cell rather than dropping the row, so a failure is seen, not hidden.
Pillow only: the serving process never imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

CELL = 256  # each image is fitted into a CELL x CELL square
PAD = 16  # between cells and around the sheet
HEADER = 40  # column titles
CAPTION = 24  # a row's name, above its cells
CHECKER = 12  # side of a checkerboard square
COLUMNS = ("original", "cut-out", "ID crop")
SAMPLE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
CHECK_LIGHT, CHECK_DARK = (255, 255, 255), (204, 204, 204)
MISSING = (250, 228, 228)
FRAME = (160, 160, 160)


@dataclass(frozen=True)
class Row:
    name: str
    original: Path
    cutout: Path | None
    id_crop: Path | None


def find_rows(samples: Path, results: Path) -> list[Row]:
    """One row per sample photo, sorted by name."""
    rows = []
    for path in sorted(samples.iterdir()):
        if path.suffix.lower() not in SAMPLE_EXTS or not path.is_file():
            continue
        cut, idc = results / f"{path.stem}.png", results / f"{path.stem}.id.png"
        rows.append(Row(path.stem, path, cut if cut.is_file() else None, idc if idc.is_file() else None))
    return rows


def sheet_size(n_rows: int) -> tuple[int, int]:
    return PAD + len(COLUMNS) * (CELL + PAD), HEADER + n_rows * (CAPTION + CELL + PAD) + PAD // 2


def cell_origin(row: int, column: int) -> tuple[int, int]:
    """Top-left corner of a cell's CELL x CELL square."""
    return PAD + column * (CELL + PAD), HEADER + row * (CAPTION + CELL + PAD) + CAPTION


def checkerboard(size: tuple[int, int], square: int = CHECKER) -> Image.Image:
    board = Image.new("RGB", size, CHECK_LIGHT)
    draw = ImageDraw.Draw(board)
    for y in range(0, size[1], square):
        for x in range((y // square) % 2 * square, size[0], 2 * square):
            draw.rectangle((x, y, x + square - 1, y + square - 1), fill=CHECK_DARK)
    return board


def _thumbnail(path: Path) -> tuple[Image.Image, tuple[int, int]]:
    """The image fitted in a CELL square, and its full size (as stored, before EXIF rotation)."""
    with Image.open(path) as img:
        size = img.size
        img.draft("RGB", (CELL, CELL))  # JPEG: decode at 1/2..1/8 scale, never the full photo
        img = ImageOps.exif_transpose(img)
        img.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
        has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
        return img.convert("RGBA" if has_alpha else "RGB"), size


def _on_checkerboard(img: Image.Image) -> Image.Image:
    if img.mode != "RGBA":
        return img
    board = checkerboard(img.size)
    board.paste(img, (0, 0), img)
    return board


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def build(rows: list[Row]) -> Image.Image:
    sheet = Image.new("RGB", sheet_size(len(rows)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    title, caption = _font(20), _font(14)
    for c, label in enumerate(COLUMNS):
        x, _ = cell_origin(0, c)
        draw.text((x + CELL // 2, HEADER // 2), label, fill=INK, font=title, anchor="mm")
    for r, row in enumerate(rows):
        x0, y0 = cell_origin(r, 0)
        draw.text((x0, y0 - CAPTION // 2), row.original.name, fill=INK, font=caption, anchor="lm")
        for c, path in enumerate((row.original, row.cutout, row.id_crop)):
            x, y = cell_origin(r, c)
            if path is None:
                draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=MISSING, outline=INK)
                draw.text((x + CELL // 2, y + CELL // 2), "missing", fill=INK, font=caption, anchor="mm")
                continue
            thumb, (w, h) = _thumbnail(path)
            thumb = _on_checkerboard(thumb)
            tx, ty = x + (CELL - thumb.width) // 2, y + (CELL - thumb.height) // 2
            sheet.paste(thumb, (tx, ty))
            # A hairline frame: a light ID background would otherwise melt into the sheet.
            draw.rectangle((tx - 1, ty - 1, tx + thumb.width, ty + thumb.height), outline=FRAME)
            draw.text((x + CELL, y - CAPTION // 2), f"{w}x{h}", fill=INK, font=caption, anchor="rm")
    return sheet


def write(samples: Path, results: Path, out: Path) -> int:
    """Build the sheet for every sample photo and save it as PNG; returns the number of rows."""
    rows = find_rows(samples, results)
    if not rows:
        raise FileNotFoundError(f"no photos ({', '.join(SAMPLE_EXTS)}) in {samples}")
    out.parent.mkdir(parents=True, exist_ok=True)
    build(rows).save(out, "PNG", optimize=False, compress_level=6)
    return len(rows)
