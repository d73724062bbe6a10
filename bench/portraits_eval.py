"""ID photos over ../shared/portraits: one row per photo with every compliance check, and a contact sheet.

Run by hand, never by `make test`: the portraits' licences are unclear, so
none of them (nor any output made from them) goes into the repository. The
outputs go to bench/out/portraits/ (gitignored):

    .venv/bin/python -m bench.portraits_eval [--portraits DIR] [--preset passport-35x45|...|face] [--out DIR]

For each photo: NAME.id.png (the worker's output), NAME.id.json (its meta),
NAME.png (the output with what the report measured drawn on it: eye line,
chin, crown as horizontal lines, the preset's accepted bands on the left edge),
then results.tsv (one row per photo: every check's value and verdict, the
output's path) and contact-sheet.png (demo/contact_sheet.py's layout: original,
annotated output, output, report).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from demo import contact_sheet
from pyworker.cli import _config, build_parser
from pyworker.errors import WorkerError
from pyworker.pipeline import remove
from pyworker.pipeline.options import parse_options
from pyworker.pipeline.presets import PRESETS
from pyworker.server import Server

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PORTRAITS = REPO.parent.parent / "shared" / "portraits"  # /work/shared/portraits beside /work/wt/<name>
EXTS = (".jpg", ".jpeg", ".png", ".webp")
FACE = "face"  # --preset face: `crop: "face"` without a preset (transparent output, 3:4)
# Lines drawn on the annotated output: eye line, chin, crown (as the report measured them), accepted bands.
EYE_INK, CHIN_INK, CROWN_INK, BAND_INK = (0, 160, 255), (255, 60, 60), (40, 200, 40), (255, 200, 0)


def _annotate(out: Image.Image, meta: dict[str, Any]) -> Image.Image:
    """The output with what the report measured on it (eye line, chin, crown) and the preset's accepted ranges."""
    img = out.convert("RGB")
    draw = ImageDraw.Draw(img)
    w, h = img.size
    report = meta.get("compliance") or {}
    checks = {c["name"]: c for c in report.get("checks", [])}
    measured = report.get("measured") or {}
    eyes = measured.get("eyes")
    for y, ink in (
        (eyes[1] if eyes else None, EYE_INK),
        (measured.get("chin"), CHIN_INK),
        (measured.get("crown"), CROWN_INK),
    ):
        if isinstance(y, (int, float)):
            draw.line((0, y, w, y), fill=ink, width=1)
    for name, x in (("eye_line", 2), ("head_height", 8)):
        acc = checks.get(name, {}).get("accepted")
        if isinstance(acc, list):
            lo, hi = acc
            if name == "eye_line":
                draw.line((x, lo * h, x, hi * h), fill=BAND_INK, width=3)
            else:  # the chin's accepted band when the crown is where it was measured
                crown = measured.get("crown")
                if isinstance(crown, (int, float)):
                    draw.line((x, crown + lo * h, x, crown + hi * h), fill=BAND_INK, width=3)
    return img


def run(portraits: Path, preset: str, out: Path) -> list[dict[str, Any]]:
    args = build_parser().parse_args(["remove", "in", "out"])
    config = _config(args)
    server = Server(config)
    opts = parse_options({"crop": "face"} if preset == FACE else {"preset": preset}, server.limits)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in sorted(p for p in portraits.iterdir() if p.suffix.lower() in EXTS):
        row: dict[str, Any] = {"photo": path.name}
        start = time.perf_counter()
        try:
            result = remove(path.read_bytes(), opts, server.models, config.limits, config.model)
        except WorkerError as err:
            row.update(error=f"{err.code}: {err.message}")
            rows.append(row)
            print(f"{path.name}: {row['error']}", flush=True)
            continue
        row["ms"] = round((time.perf_counter() - start) * 1000)
        target = out / f"{path.stem}.id.png"
        target.write_bytes(result.image)
        (out / f"{path.stem}.id.json").write_text(json.dumps(result.meta, indent=1))
        _annotate(Image.open(target), result.meta).save(out / f"{path.stem}.png")
        report = result.meta["compliance"]
        row["passed"] = report["passed"]
        for c in report["checks"]:
            row[c["name"]] = f"{'ok' if c['passed'] else 'FAIL'} {c['value']}"
        row["roll_deg"] = result.meta["roll_deg"]
        row["output"] = str(target)
        rows.append(row)
        failing = [c["name"] for c in report["checks"] if not c["passed"]]
        print(
            f"{path.name}: {'PASS' if report['passed'] else 'fail ' + ','.join(failing)} ({row['ms']} ms)", flush=True
        )
    return rows


def write_table(rows: list[dict[str, Any]], path: Path) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    lines = ["\t".join(columns)] + ["\t".join(str(r.get(c, "")) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.portraits_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--portraits", type=Path, default=DEFAULT_PORTRAITS)
    parser.add_argument(
        "--preset", default="passport-35x45", choices=[*sorted(PRESETS), FACE], help=f"{FACE}: crop: face, no preset"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "portraits")
    args = parser.parse_args(argv)
    if not args.portraits.is_dir():
        print(f"error: no portraits at {args.portraits}", file=sys.stderr)
        return 1
    rows = run(args.portraits, args.preset, args.out)
    write_table(rows, args.out / "results.tsv")
    sheet = args.out / "contact-sheet.png"
    contact_sheet.write(args.portraits, args.out, sheet)
    passed = sum(1 for r in rows if r.get("passed"))
    print(f"{len(rows)} photos, {passed} pass; {args.out / 'results.tsv'}, {sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
