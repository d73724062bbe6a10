"""docs/architecture.md names every product file (issue 21): the map a newcomer reads first has no missing rooms.

A product file is what ships: pyworker/ (Python) and node-shim's entry points, lib/ and bin/. It counts as
named when the document writes, in backticks, its path or the end of it (its file name at least: rows that group
a folder's files name them so, e.g. `pyworker/models/` ... `u2net.py`, or `lib/optional.js`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
PRODUCT = ("pyworker/", "node-shim/lib/", "node-shim/bin/")
ENTRY_POINTS = ("node-shim/index.js", "node-shim/express.js", "node-shim/index.d.ts", "node-shim/express.d.ts")
CODE = (".py", ".js", ".ts")


def product_files() -> list[str]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return sorted(f for f in tracked if (f.startswith(PRODUCT) and f.endswith(CODE)) or f in ENTRY_POINTS)


def test_every_product_file_is_named_in_the_architecture_document() -> None:
    files = product_files()
    assert len(files) > 60, files  # the listing itself works (a fresh clone is a git checkout)
    named = set(re.findall(r"`([^`\s]+)`", DOC.read_text()))
    missing = [f for f in files if not any(f == t or f.endswith("/" + t) for t in named)]
    assert not missing, f"docs/architecture.md does not name: {', '.join(missing)} (add each to the row of its room)"
