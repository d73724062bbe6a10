"""docs/architecture.md names every product file (issue 21): the map a newcomer reads first has no missing rooms.

A product file is what ships: pyworker/ (Python) and node-shim's entry points, lib/ and bin/. It counts as
named when the document writes, in backticks, its path or the end of it (its file name at least: rows that group
a folder's files name them so, e.g. `pyworker/models/` ... `u2net.py`, or `lib/optional.js`).

Its recipes (the files each common change touches) name paths that exist, and cover the common changes."""

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


RECIPES = "## Recipes"
# The common changes the recipes must cover (issue 21): a newcomer finds the files of each without a search.
CHANGES = (
    "Add a `remove` option",
    "Add a worker limit",
    "Add an error code",
    "Add a model",
    "Add an ID-photo preset",
    "Add a compliance check",
    "Add a pool setting",
    "Add an Express route",
    "Change the protocol",
)
FILE_NAME = re.compile(r"[\w.-]+\.(?:py|js|ts|json|md|html|toml|txt)")


def named_paths(section: str) -> list[str]:
    """The repository paths a section names in backticks: a token of path characters that starts with one of
    the repository's top-level entries (`pyworker/…`, `Makefile`) or is a file name (`contract.json`: a bare
    name is taken from the root, so it must be written in full)."""
    top = {p.name for p in ROOT.iterdir()} - {".git"}
    paths = []
    for token in re.findall(r"`([^`\s]+)`", section):
        if not re.fullmatch(r"[\w./-]+", token) or token.startswith("/"):
            continue  # a route, a call, a command: not a path
        if token.split("/")[0] in top or FILE_NAME.fullmatch(token.rstrip("/").split("/")[-1]):
            paths.append(token)
    return paths


def test_the_recipes_name_files_that_exist() -> None:
    text = DOC.read_text()
    start = text.index(RECIPES)
    end = text.find("\n## ", start + 1)
    section = text[start : None if end < 0 else end]
    missing_changes = [c for c in CHANGES if f"**{c}**" not in section]
    assert not missing_changes, f"docs/architecture.md's recipes lack: {missing_changes}"
    paths = named_paths(section)
    assert len(paths) > 40, paths  # the parse works: the recipes name their files
    missing = sorted({p for p in paths if not (ROOT / p).exists()})
    assert not missing, f"docs/architecture.md's recipes name files that do not exist: {', '.join(missing)}"
