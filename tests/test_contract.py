"""The contract tables (pyworker/errors.py, pyworker/pipeline/options.py, node-shim/lib/settings.js) and
every copy of them agree: the generated files, index.d.ts, the worker's CLI, and Node's and Python's
verdicts on option values."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import fields
from typing import Any

from pyworker.cli import build_parser
from pyworker.errors import CODES, ERRORS, WorkerError
from pyworker.limits import LIMITS, Limits, default_text, flag
from pyworker.models.registry import MODELS
from pyworker.pipeline import face_quality
from pyworker.pipeline.options import OPTIONS, RemoveOptions, parse_options
from tools import contract

REPO = contract.REPO
SHIM = REPO / "node-shim"
CLIENT_KEYS = {"signal", "timeoutMs", "fallback"}
READY = Limits().ready_limits()


def test_generated_files_are_up_to_date() -> None:
    assert contract.stale() == [], "run `make contract`"


def test_option_table_is_the_dataclass() -> None:
    assert [o.name for o in OPTIONS] == [f.name for f in fields(RemoveOptions)]


def test_every_code_raised_is_declared() -> None:
    raised = set()
    for path in (REPO / "pyworker").rglob("*.py"):
        raised |= set(re.findall(r'WorkerError\(\s*"(\w+)"', path.read_text()))
    for path in (SHIM / "lib").glob("*.js"):
        raised |= set(re.findall(r"code: '(\w+)'", path.read_text()))
    declared = {c.name for c in ERRORS}
    assert raised and raised <= declared, raised - declared


# ---- index.d.ts ------------------------------------------------------------------------------------


def _dts() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """index.d.ts -> ({interface: {member: type}}, {type alias: its type}), comments removed."""
    text = re.sub(r"/\*.*?\*/|//[^\n]*", "", (SHIM / "index.d.ts").read_text(), flags=re.S)
    aliases = {m[0]: " ".join(m[1].split()) for m in re.findall(r"export type (\w+)\s*=\s*(.*?);", text, re.S)}
    interfaces: dict[str, dict[str, str]] = {}
    for m in re.finditer(r"export interface (\w+)[^{]*\{", text):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body = text[m.end() : i - 1]
        members = re.findall(r"^\s*(?:readonly\s+)?(\w+)\??\s*:\s*(.+?);\s*$", body, re.M)
        interfaces[m.group(1)] = {name: " ".join(t.split()) for name, t in members}
    return interfaces, aliases


def test_dts_compliance_checks_are_the_checks_reported() -> None:
    """meta.compliance's check names in index.d.ts are the ones the worker reports: compliance.py's geometry
    checks and face_quality.py's face checks (`ORDER`); a range open above (None) is typed so."""
    interfaces, aliases = _dts()
    check = interfaces["ComplianceCheck"]
    geometry = set(re.findall(r'_check\(\s*"(\w+)"', (REPO / "pyworker" / "pipeline" / "compliance.py").read_text()))
    assert len(geometry) >= 9, geometry  # the parse works
    assert set(re.findall(r"'(\w+)'", _resolve(check["name"], aliases))) == geometry | set(face_quality.ORDER)
    if any(None in v for v in face_quality.ACCEPTED.values()):
        assert "[number, number | null]" in check["accepted"], check["accepted"]


def _resolve(type_text: str, aliases: dict[str, str]) -> str:
    for _ in range(3):
        type_text = re.sub(r"\b[A-Z]\w*\b", lambda m: f"({aliases[m[0]]})" if m[0] in aliases else m[0], type_text)
    return type_text


def test_dts_remove_options_follow_the_table() -> None:
    interfaces, aliases = _dts()
    declared = interfaces["RemoveOptions"]
    wanted = {contract.camel(o.name): o for o in OPTIONS}
    assert set(declared) - CLIENT_KEYS == set(wanted), "RemoveOptions in index.d.ts vs pyworker/pipeline/options.py"
    for name, o in wanted.items():
        t = _resolve(declared[name], aliases)
        literals = set(re.findall(r"'([^']*)'", t))
        assert ("null" in t) == o.nullable, f"{name}: {t} (null accepted: {o.nullable})"
        if o.kind == "choice":
            assert literals == set(o.choices) | {a for a, _ in o.aliases}, f"{name}: {t} vs {o.choices} {o.aliases}"
        elif name == "model":  # the registry's names as literals, so that a typo is a type error
            assert literals == set(MODELS), f"{name}: {t} vs {sorted(MODELS)}"
        else:
            want = {"bool": "boolean", "int": "number", "str": "string", "color": "string"}[o.kind]
            assert want in t, f"{name}: {t} should hold {want}"


def test_dts_error_codes_follow_the_table() -> None:
    _, aliases = _dts()
    assert set(re.findall(r"'(\w+)'", aliases["ProtocolErrorCode"])) == set(CODES)
    text = (SHIM / "index.d.ts").read_text()
    for c in ERRORS:
        assert f"'{c.name}'" in text, f"index.d.ts never names the code {c.name}"


def test_pool_settings_match_dts_and_worker_flags() -> None:
    settings = contract.pool_settings()
    interfaces, _ = _dts()
    assert set(interfaces["PoolOptions"]) == {s["name"] for s in settings}
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    flags = {f for a in serve._actions for f in a.option_strings}
    for s in settings:
        assert s["flag"] is None or s["flag"] in flags, f"{s['name']}: the worker has no flag {s['flag']}"


def test_worker_limit_figures_in_the_docs_are_the_defaults() -> None:
    """Each limit is declared once (pyworker/limits.py); a figure the docs quote beside its flag is that default."""
    defaults = {flag(f): default_text(f) for f in LIMITS}
    quoted = re.compile(r"`(--[a-z-]+)`(?:\)? \| | \(default | \(| megapixels \(| now defaults to )(\d+(?:\.\d+)?)")
    texts = [*REPO.glob("*.md"), *REPO.glob("docs/*.md"), SHIM / "README.md", *(REPO / "pyworker").rglob("*.py")]
    seen = set()
    for path in texts:
        for name, figure in quoted.findall(path.read_text()):
            if name in defaults:
                seen.add(name)
                assert figure == defaults[name], (
                    f"{path.relative_to(REPO)}: {name} quoted as {figure}, default {defaults[name]}"
                )
    assert seen == set(defaults) - {"--max-rss-mb"}, "the pattern no longer finds the docs' figures"
    # The queue refuses a larger input before Redis: the same figure as the worker's flag.
    queue = (SHIM / "lib" / "queue" / "settings.js").read_text()
    assert re.search(r"\bmaxInputMb: (\d+),", queue).group(1) == defaults["--max-input-mb"]  # type: ignore[union-attr]


# ---- the same verdict on both sides ----------------------------------------------------------------

PROBES: list[Any] = [
    None, True, False, 0, 1, -1, 7, 1.5, 50, 800, 4096, 4097, 100_000, 2**40,
    "", " ", "png", "jpg", "jpeg", "JPEG", "webp", "gif", "face", "body", "u2netp", "bad name!", "x" * 65,
    "passport-35x45", "nope", "#ffffff", "#FFFFFF", "ffffff", " #ffffff ", "\t2255aa\n", "#ffffff\n", "\u00a0#ffffff",
    "\x1c#ffffff", "\ufeff#ffffff", "# ffffff", "##ffffff", "#fff", "#gggggg", "blue",
    [0, 0, 0], [255, 128, 0], [0, 0, 256], [0, 0], [0, 0, 0, 0], [1.5, 0, 0], [True, 0, 0], [-1, 0, 0], {}, [],
]  # fmt: skip


def _python_verdict(key: str, value: Any) -> tuple[str, str]:
    try:
        parse_options({key: value}, READY)
    except WorkerError as err:
        return err.code, re.sub(r"^Option '\w+' must be (.*), got .*$", r"\1", err.message)
    return "ok", ""


def test_node_and_python_give_the_same_verdict() -> None:
    cases = [[o.name, v] for o in OPTIONS for v in PROBES + list(o.choices)]
    script = """
const { parseRequestOptions } = require('./lib/request-options');
const out = JSON.parse(require('fs').readFileSync(0, 'utf8')).map(([k, v]) => {
  try { parseRequestOptions({ [k]: v }, { max_pixels_side: 4096 }); return ['ok', '']; }
  catch (e) { return [e.code, e.message.replace(/^options\\.\\w+ must be (.*) \\(got .*\\)$/s, '$1')]; }
});
process.stdout.write(JSON.stringify(out));
"""
    run = subprocess.run(
        ["node", "-e", script], cwd=SHIM, input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    node = json.loads(run.stdout)
    assert len(node) == len(cases)
    both = [(k, v, tuple(n), _python_verdict(k, v)) for (k, v), n in zip(cases, node, strict=True)]
    differ = [case for case in both if case[2] != case[3]]
    assert not differ, "\n".join(f"{k}={v!r}: node {n}, python {p}" for k, v, n, p in differ)
    assert any(n[0] == "ok" for n in node) and any(n[0] == "bad_request" for n in node)


def test_the_values_that_once_drifted_are_read_as_before() -> None:
    opts = parse_options({"format": "jpg", "bg_color": " ffffff\n", "model": "", "padding": 4096}, READY)
    assert (opts.format, opts.bg_color, opts.model, opts.padding) == ("jpeg", (255, 255, 255), "", 4096)
    for key, value in (("padding", 4097), ("max_size", 4097), ("bg_color", "#fffff"), ("format", "JPG")):
        assert _python_verdict(key, value)[0] == "bad_request", (key, value)


def test_the_npm_package_carries_its_contract(tmp_path) -> None:
    """Users install node-shim from a tarball, without Python: contract.json must be inside it."""
    subprocess.run(["npm", "pack", "--pack-destination", str(tmp_path)], cwd=SHIM, check=True, capture_output=True)
    (tarball,) = tmp_path.glob("*.tgz")
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(tmp_path)], check=True)
    script = """
const p = require(process.argv[1]);
const wire = p.parseRequestOptions({ format: 'jpg', bgColor: ' ffffff ', padding: 4096 }).wire;
process.stdout.write(JSON.stringify({ wire, codes: Object.keys(p.ERROR_CODES).length }));
"""
    env = {**os.environ, "NODE_PATH": str(SHIM / "node_modules")}  # its one dependency, as npm would install it
    out = subprocess.run(
        ["node", "-e", script, str(tmp_path / "package")], capture_output=True, text=True, check=True, env=env
    )
    got = json.loads(out.stdout)
    assert got["wire"] == {"format": "jpg", "bg_color": " ffffff ", "padding": 4096}
    assert got["codes"] == len(ERRORS)
