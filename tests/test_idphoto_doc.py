"""docs/id-photos.md's table of thresholds says what the code has: each value there is the setting's own."""

from __future__ import annotations

import importlib
import re
from typing import Any

from .workerproc import REPO

DOC = REPO / "docs" / "id-photos.md"
SECTION = "## Every model and threshold"
NUMBER = re.compile(r"\d+(?:\.\d+)?(?:\s*(?:%|MP))?")


def _rows() -> list[tuple[str, list[str], str]]:
    text = DOC.read_text()
    section = text[text.index(SECTION) : text.index("\n## ", text.index(SECTION) + 1)]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        head = cells[0].split(":", 1)
        if len(cells) < 3 or len(head) < 2 or not head[0].strip("`").endswith(".py"):
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", head[1])
        rows.append((head[0].strip("`"), names, cells[1]))
    return rows


def _flat(value: Any) -> list[float]:
    if isinstance(value, tuple | list):
        return [v for item in value for v in _flat(item)]
    return [float(value)]


def _numbers(cell: str) -> list[float]:
    out = []
    for token in NUMBER.findall(cell):
        number = float(re.match(r"\d+(?:\.\d+)?", token).group())  # type: ignore[union-attr]
        out.append(number / 100 if token.endswith("%") else number * 1e6 if token.endswith("MP") else number)
    return out


def test_every_threshold_in_the_table_is_the_codes() -> None:
    rows = _rows()
    assert len(rows) >= 20, rows  # the table is found and read
    for path, names, cell in rows:
        module = importlib.import_module(
            "pyworker." + ("" if "/" in path else "pipeline.") + path[:-3].replace("/", ".")
        )
        assert names, (path, cell)
        code = [v for name in names for v in _flat(getattr(module, name))]
        doc = _numbers(cell)
        assert len(doc) == len(code) and all(
            abs(a - b) <= 1e-9 * max(1, abs(b)) for a, b in zip(doc, code, strict=True)
        ), f"{path} {names}: the doc says {cell!r} = {doc}, the code has {code}"
