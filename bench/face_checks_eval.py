"""The face checks (pyworker/pipeline/face_quality.py) against labels by eye, by hand (not part of make test).

    .venv/bin/python bench/face_checks_eval.py [--portraits ../shared/portraits] [--labels FILE] [--rows]

For every row of the labels file (bench/face_labels.tsv): the face (`photo.jpg` the largest detection,
`photo.jpg#2` the second largest, ...), the face checks of passport-35x45 measured on the photo as decoded,
and for each check how many faces labelled `defect` fail it (caught) and how many labelled `ok` fail it
(clean faces failed). A check that cannot measure a face (unknown) fails it: counted as caught on a defect,
as failed on a clean face, and shown apart. The figures are given for each `split` of the labels apart:
`cal` (the faces the thresholds were set on) and `held` (held out: looked at only to report), and for
every row of another labels file (a set the thresholds never saw) as `held`.

Then the same checks on defects drawn on each face labelled ok for them (testkit/face_defects.py: dark
lenses, one side in shadow, a blur, under- and overexposure, a green cast), to see each check respond on
faces of every age and skin tone. The photos' licences are unclear: they stay outside the repository
(docs/id-photos.md#face-checks quotes the figures).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyworker.pipeline import face as face_detector
from pyworker.pipeline import face_quality
from pyworker.pipeline.face import Face
from testkit import face_defects

HERE = Path(__file__).resolve().parent
LABELS = HERE / "face_labels.tsv"
# ../shared/portraits beside the checkout; a worktree under /work/wt/ finds it at /work/shared.
DEFAULT_PORTRAITS = next(
    (p for p in (HERE.parents[1] / "shared" / "portraits", Path("/work/shared/portraits")) if p.is_dir()),
    HERE.parents[1] / "shared" / "portraits",
)

# Drawn defect -> the check it must fail; each drawn only on faces labelled ok for that check.
Draw = Callable[[Image.Image, Face], Image.Image]
DRAWN: dict[str, tuple[str, Draw]] = {
    "dark lenses": ("eyes_visible", lambda im, f: face_defects.sunglasses(im, f.right_eye, f.left_eye)),
    "side shadow 30 %": ("lighting", lambda im, f: face_defects.side_shadow(im, f.right_eye, f.left_eye, 0.3)),
    "blur 0.025 IED": ("sharpness", lambda im, f: face_defects.blurred(im, f.right_eye, f.left_eye, 0.025)),
    "gain x0.35": ("exposure", lambda im, f: face_defects.gain(im, 0.35)),
    "gain x1.6": ("exposure", lambda im, f: face_defects.gain(im, 1.6)),
    "green cast": ("colour", lambda im, f: face_defects.cast(im, (0.75, 1.15, 0.75))),
    "blue cast": ("colour", lambda im, f: face_defects.cast(im, (0.8, 0.95, 1.3))),
    "eyes painted shut": ("eyes_open", lambda im, f: face_defects.eyes_shut(im, f.right_eye, f.left_eye)),
}


PRESET = "passport-35x45"  # the strictest rules: mouth closed, neutral expression, frontal pose


def labelled_face(img: Image.Image, rank: int) -> Face | None:
    """The `rank`-th largest face (1: the largest), with its mesh (as framing.frame hands it to the checks)."""
    faces = sorted(face_detector.detect(img), key=lambda f: -f.height)
    face = faces[rank - 1] if len(faces) >= rank else None
    return face_quality.with_mesh(img, face)


def checks_of(img: Image.Image, face: Face | None) -> dict[str, dict]:
    return {c["name"]: c for c in face_quality.assess(img, face, PRESET)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--portraits", type=Path, default=DEFAULT_PORTRAITS)
    ap.add_argument("--labels", type=Path, default=LABELS, help="labels file (tab-separated, as face_labels.tsv)")
    ap.add_argument("--rows", action="store_true", help="print every photo's values")
    args = ap.parse_args()
    with args.labels.open() as fh:
        rows = list(csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t"))
    names = [n for n in rows[0] if n not in ("file", "split")]
    splits = sorted({row.get("split") or "held" for row in rows})
    tally = {
        (s, n): {"defect": 0, "caught": 0, "unknown_caught": 0, "ok": 0, "failed": 0, "unknown_failed": 0}
        for s in splits
        for n in names
    }
    drawn = {d: [0, 0] for d in DRAWN}  # faces drawn on, caught
    missed: list[str] = []
    measured: set[str] = set()
    for row in rows:
        name, _, rank = row["file"].partition("#")
        img = Image.open(args.portraits / name).convert("RGB")
        face = labelled_face(img, int(rank or 1))
        checks = checks_of(img, face)
        measured.update(checks)
        split = row.get("split") or "held"
        if args.rows:
            vals = " ".join(f"{n}={checks[n]['value']}{'' if checks[n]['passed'] else '✘'}" for n in checks)
            print(f"{split:4s} {row['file'][:28]:28s} {vals}")
        for n in names:
            if n not in checks or row[n] == "skip":
                continue
            c, t = checks[n], tally[split, n]
            t[row[n]] += 1
            if not c["passed"]:
                key = "caught" if row[n] == "defect" else "failed"
                t[key] += 1
                if c["value"] is None:
                    t["unknown_" + key] += 1
            elif row[n] == "defect":
                missed.append(f"{row['file']}: {n} {c['value']} passed")
            if row[n] == "ok" and not c["passed"]:
                missed.append(f"{row['file']}: clean {n} failed: {c['value']} {c.get('note', '')}")
        if face is None:
            continue
        for d, (n, draw) in DRAWN.items():
            if row.get(n) != "ok":
                continue
            drawn_img = draw(img, face)
            # The mesh again on the drawn photo, from where it was (as framing would see the drawn face).
            got = checks_of(drawn_img, face_detector.refine(drawn_img, face))[n]
            drawn[d][0] += 1
            drawn[d][1] += 0 if got["passed"] else 1
            if got["passed"]:
                missed.append(f"{row['file']}: drawn {d}: {n} {got['value']} passed")
    for s in splits:
        print(f"\nlabelled by eye ({args.labels.name}, split {s}): per check, defects caught and clean faces failed")
        print(f"{'check':14s}{'defects caught':>17s}{'(as unknown)':>13s} {'clean failed':>14s} {'(as unknown)':>13s}")
        for n in names:
            t = tally[s, n]
            if n not in measured:
                print(f"{n:14s} not measured")
                continue
            print(
                f"{n:14s} {t['caught']:>7d} of {t['defect']:<6d} {t['unknown_caught']:>13d} "
                f"{t['failed']:>5d} of {t['ok']:<6d} {t['unknown_failed']:>13d}"
            )
    print("\ndrawn on the faces labelled ok for the check")
    for d, (n, _) in DRAWN.items():
        print(f"{d:18s} -> {n:13s} caught {drawn[d][1]} of {drawn[d][0]}")
    if missed:
        print("\nmisses:")
        for m in missed:
            print("  " + m)


if __name__ == "__main__":
    main()
