"""One PNG to judge a run at a glance: per photo, original | cut-out | ID crop | its compliance report.

Pairs SAMPLES/NAME.(jpg|jpeg|png|webp|bmp) with RESULTS/NAME.png (the cut-out),
RESULTS/NAME.id.png (the ID crop) and RESULTS/NAME.id.json (the ID job's meta,
whose `compliance` report becomes a list of ✔/✘ lines, then the model that
made the mask). A missing result
leaves a labelled, hatched cell rather than dropping the row, so a failure is
seen, not hidden. Demo code (Pillow only), run by `make demo`:

    python -m demo.contact_sheet --samples out/photos --results out --out out/contact-sheet.png
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

CELL = 256  # each image is fitted into a CELL x CELL square
REPORT_COLUMN = 250  # the report's lines (text) run in two columns: 19 checks do not fit one row's height
REPORT_WIDTH = 2 * REPORT_COLUMN
PAD = 16  # between cells and around the sheet
HEADER = 40  # column titles
CAPTION = 24  # a row's name, above its cells
CHECKER = 12  # side of a checkerboard square
COLUMNS = ("original", "cut-out", "ID crop", "compliance")
SAMPLE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
PASS_INK = (20, 140, 50)
FAIL_INK = (200, 30, 30)
CHECK_LIGHT, CHECK_DARK = (255, 255, 255), (204, 204, 204)
MISSING = (250, 228, 228)
FRAME = (160, 160, 160)
LINE = 22  # report line height

# Short labels for the report's checks (pyworker/pipeline/compliance.py names them).
LABELS = {
    "head_height": "head",
    "eye_line": "eye line",
    "roll": "roll",
    "crown_visible": "crown",
    "faces": "faces",
    "face_in_subject": "face in subject",
    "upscale": "upscale",
    "background": "background",
}


@dataclass(frozen=True)
class Row:
    name: str
    original: Path
    cutout: Path | None
    id_crop: Path | None
    id_meta: Path | None


def find_rows(samples: Path, results: Path) -> list[Row]:
    """One row per sample photo, sorted by name."""
    rows = []
    for path in sorted(samples.iterdir()):
        if path.suffix.lower() not in SAMPLE_EXTS or not path.is_file():
            continue
        found = [results / f"{path.stem}{suffix}" for suffix in (".png", ".id.png", ".id.json")]
        cut, idc, meta = (p if p.is_file() else None for p in found)
        rows.append(Row(path.stem, path, cut, idc, meta))
    return rows


def _column_x(column: int) -> int:
    return PAD + column * (CELL + PAD)


def sheet_size(n_rows: int) -> tuple[int, int]:
    width = _column_x(len(COLUMNS) - 1) + REPORT_WIDTH + PAD
    return width, HEADER + n_rows * (CAPTION + CELL + PAD) + PAD // 2


def cell_origin(row: int, column: int) -> tuple[int, int]:
    """Top-left corner of a cell's square (the report cell is REPORT_WIDTH wide)."""
    return _column_x(column), HEADER + row * (CAPTION + CELL + PAD) + CAPTION


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


def mark(draw: ImageDraw.ImageDraw, x: int, y: int, passed: bool, size: int = 12) -> None:
    """A ✔ or a ✘ drawn as lines, so no font with those glyphs is needed."""
    if passed:
        draw.line([(x, y + size * 0.55), (x + size * 0.38, y + size), (x + size, y)], fill=PASS_INK, width=3)
    else:
        draw.line([(x, y), (x + size, y + size)], fill=FAIL_INK, width=3)
        draw.line([(x, y + size), (x + size, y)], fill=FAIL_INK, width=3)


def _figure(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    return f"{value:g}" if isinstance(value, float) else str(value)


def report_lines(meta: dict[str, Any]) -> list[tuple[bool, str]]:
    """(passed, text) per check: 'head 0.692 [0.644, 0.756]'; a roll line tells how far the head was turned."""
    report = meta.get("compliance")
    if not report:
        return []
    lines = []
    for check in report["checks"]:
        accepted = check["accepted"]
        if isinstance(accepted, list):
            rng = f" [{_figure(accepted[0])}, {_figure(accepted[1])}]"
        else:
            rng = "" if isinstance(accepted, bool) else f" ({accepted})"
        text = f"{LABELS.get(check['name'], check['name'])} {_figure(check['value'])}{rng}"
        if check["name"] == "roll" and _get(meta, "roll_deg"):
            text += f", turned {_get(meta, 'roll_deg'):+.1f}°"
        lines.append((bool(check["passed"]), text))
    return lines


def _get(meta: dict[str, Any], key: str) -> Any:
    """meta as the worker sends it (snake_case) or as the Node pool hands it on (camelCase, demo.js)."""
    camel = key.split("_")[0] + "".join(w.title() for w in key.split("_")[1:])
    return meta.get(key, meta.get(camel))


def model_line(meta: dict[str, Any]) -> str | None:
    """'mask modnet', or 'mask u2netp, no face: not modnet' when the portrait model was passed over."""
    if not meta.get("model"):
        return None
    fallback = _get(meta, "model_fallback")
    if fallback:
        return f"mask {meta['model']}, no face: not {fallback['from']}"
    return f"mask {meta['model']}"


def _draw_report(draw: ImageDraw.ImageDraw, x: int, y: int, meta_path: Path | None, font, bold) -> None:
    if meta_path is None:
        draw.rectangle((x, y, x + REPORT_WIDTH - 1, y + CELL - 1), fill=MISSING, outline=INK)
        draw.text((x + REPORT_WIDTH // 2, y + CELL // 2), "missing", fill=INK, font=font, anchor="mm")
        return
    meta = json.loads(meta_path.read_text())
    lines = report_lines(meta)
    if not lines:
        draw.text((x, y + 4), "no report", fill=INK, font=font)
        return
    passed = all(ok for ok, _ in lines)
    verdict = f"{meta['compliance']['preset']}: {'PASS' if passed else 'FAIL'}"
    draw.text((x, y + 2), verdict, fill=PASS_INK if passed else FAIL_INK, font=bold)
    per_column = CELL // LINE - 1  # below the verdict; the next lines go on in the second column

    def at(i: int) -> tuple[int, int]:
        return x + (i // per_column) * REPORT_COLUMN, y + 2 + (i % per_column + 1) * LINE

    for i, (ok, text) in enumerate(lines):
        lx, ly = at(i)
        mark(draw, lx + 2, ly + 3, ok)
        draw.text((lx + 22, ly), text, fill=INK, font=font)
    model = model_line(meta)
    if model:  # no mark: which model made the mask is a fact, not a check
        lx, ly = at(len(lines))
        draw.text((lx + 22, ly), model, fill=INK, font=font)


def build(rows: list[Row]) -> Image.Image:
    sheet = Image.new("RGB", sheet_size(len(rows)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    title, caption, small, bold = _font(20), _font(14), _font(13), _font(15)
    for c, label in enumerate(COLUMNS):
        x, _ = cell_origin(0, c)
        width = REPORT_WIDTH if c == 3 else CELL
        draw.text((x + width // 2, HEADER // 2), label, fill=INK, font=title, anchor="mm")
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
        x, y = cell_origin(r, 3)
        _draw_report(draw, x, y, row.id_meta, small, bold)
    return sheet


def write(samples: Path, results: Path, out: Path) -> int:
    """Build the sheet for every sample photo and save it as PNG; returns the number of rows."""
    rows = find_rows(samples, results)
    if not rows:
        raise FileNotFoundError(f"no photos ({', '.join(SAMPLE_EXTS)}) in {samples}")
    out.parent.mkdir(parents=True, exist_ok=True)
    build(rows).save(out, "PNG", optimize=False, compress_level=6)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.contact_sheet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=Path("samples"), help="the input photos (default: samples)")
    parser.add_argument("--results", type=Path, default=Path("out"), help="the worker's results (default: out)")
    parser.add_argument(
        "--out", type=Path, default=Path("out/contact-sheet.png"), help="default: out/contact-sheet.png"
    )
    args = parser.parse_args(argv)
    try:
        rows = write(args.samples, args.results, args.out)
    except (FileNotFoundError, NotADirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: {rows} row(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
