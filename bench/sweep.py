"""Every real photo at hand x every kind of request, through one worker: does anything kill it? (issue 24)

    .venv/bin/python bench/sweep.py                       # ../shared/portraits and ../shared/evidence
    .venv/bin/python bench/sweep.py --strict-types        # and refuse NumPy scalars in replies (as the tests do)
    .venv/bin/python bench/sweep.py DIR...                # other folders

Each photo is sent as: plain, each output format, `crop: "face"` and each preset, each of those with
and without `strict`. One worker serves them all (its log lines go to bench/out/sweep.log: an undrained
stderr pipe would block it after ~240 jobs); if it dies (stdout closed) the death is counted with the
photo and request that caused it, and a fresh worker takes over; a worker silent for --timeout
seconds is counted apart (hung), killed and replaced. Prints images / errors by code / worker deaths,
and each `internal` error, death and hang in full. By hand, not in `make test`: the shared photos are
of unclear licence and never enter the repository.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pyworker.pipeline.presets import PRESETS  # noqa: E402
from testkit.client import WorkerProcess  # noqa: E402

# ../shared beside the main checkout; a worktree under /work/wt/NAME finds it one level further up.
OUT = REPO / "bench" / "out"
SHARED = next(
    (d for d in (REPO.parent / "shared", REPO.parent.parent / "shared") if d.is_dir()), REPO.parent / "shared"
)
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".heic", ".avif", ".gif", ".tif", ".tiff"}


def requests() -> list[dict]:
    """The option sets each photo is sent with."""
    sets: list[dict] = [{}, {"format": "webp"}, {"format": "jpeg"}]
    for framing in [{"crop": "face"}, *({"preset": name} for name in PRESETS)]:
        sets += [framing, {**framing, "strict": True}]
    return sets


def photos(folders: list[Path]) -> list[Path]:
    found = []
    for folder in folders:
        found += sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[SHARED / "portraits", SHARED / "evidence"])
    parser.add_argument("--strict-types", action="store_true", help="the worker packs replies with strict_types")
    parser.add_argument("--timeout", type=float, default=300, help="seconds without a reply: hung")
    args = parser.parse_args()
    files = photos(args.folders)
    sets = requests()
    OUT.mkdir(parents=True, exist_ok=True)
    log = open(OUT / "sweep.log", "wb")  # noqa: SIM115 - the workers' stderr, for the whole run

    def fresh() -> WorkerProcess:
        worker = WorkerProcess("--threads", "2", strict_types=args.strict_types, stderr=log)
        worker.expect_unencodable = True  # counted and printed here, not raised
        pids.add(worker.pid)
        return worker

    start = time.monotonic()
    pids: set[int] = set()
    worker = fresh()
    images, errors, deaths, hangs = 0, Counter(), [], []
    internals: list[str] = []
    for path in files:
        data = path.read_bytes()
        for options in sets:
            try:
                reply = worker.remove(data, timeout=args.timeout, **options)
            except TimeoutError:
                hangs.append(f"{path.name} {options}: no reply in {args.timeout:.0f} s")
                worker.proc.kill()
                worker.close()
                worker = fresh()
                continue
            except (EOFError, BrokenPipeError) as exc:
                worker.proc.wait(timeout=30)
                deaths.append(f"{path.name} {options}: {type(exc).__name__}, exit {worker.proc.returncode}")
                worker.close()
                worker = fresh()
                continue
            if reply["ok"]:
                images += 1
            else:
                errors[reply["error"]["code"]] += 1
                if reply["error"]["code"] == "internal":
                    internals.append(f"{path.name} {options}: {reply['error']['message']}")
    stats = worker.request("stats")["stats"]
    worker.close()
    log.close()
    total = len(files) * len(sets)
    print(f"{len(files)} photos x {len(sets)} requests = {total}, {time.monotonic() - start:.0f} s")
    print(f"strict types: {'on' if args.strict_types else 'off'}; requests: {sets}")
    print(f"images: {images}")
    print(f"errors: {sum(errors.values())} " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())))
    print(
        f"worker deaths: {len(deaths)}, hung: {len(hangs)} (workers started: {len(pids)}; last: {stats['jobs']} jobs)"
    )
    for line in internals + deaths + hangs:
        print("  " + line)
    return 1 if deaths or hangs else 0


if __name__ == "__main__":
    raise SystemExit(main())
