"""Our names, and no hint in the repository that sends a user to someone else's package.

`pyworker` on the Python index is an unrelated project (README, Decisions): a message saying
`pip install pyworker` or `pip install 'pyworker[face]'` makes a user run a stranger's setup.py. So every
install command written anywhere in the repository (docs, messages, comments, Makefile) may name only our
own distribution (`pyworker-cutout`, on both registries) or a package we declare as a dependency; a path,
a wheel or a tarball file is fine.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import tomllib

import pyworker
from pyworker.models.store import WHEELS

from .workerproc import REPO

NAME = "pyworker-cutout"  # README, Decisions: "Names of our own"

# `pip install ...`, `python -m pip download ...`, `npm install ...`, `npx ...`; what follows is read up to a
# backtick or the end of the line.
INSTALL = re.compile(r"\b(?P<tool>pip3?|npm|pnpm|yarn)\s+(?:install|i|add|download)\b(?P<args>[^`\n]*)")
# Options whose value is the next word (a file, a folder, a platform), not a package.
TAKES_VALUE = {
    "-r",
    "-c",
    "-e",
    "-d",
    "--requirement",
    "--constraint",
    "--editable",
    "--dest",
    "--platform",
    "--python-version",
    "--only-binary",
    "--target",
    "--index-url",
    "--extra-index-url",
    "--pack-destination",
    "--prefix",
}
SPEC = re.compile(
    r"^(?P<name>(@[a-z0-9._-]+/)?[A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]*\])?"
    r"((==|>=|<=|~=|!=|<|>|@)\S*)?$"
)
# Our own names outside an install command: an extra of `pyworker`, a pin of it, its old wheel's file name.
STRANGER = re.compile(r"(?<![\w.-])(pyworker(\[[\w,]+\]|==|>=|~=)|pyworker-\d+\.\d+\.\d+-py3)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if found and not line.startswith("-"):
            names.add(normalise(found.group(0)))
    return names


def declared() -> tuple[set[str], set[str]]:
    """(Python, npm) names a hint may name: ours, and whatever we declare as a dependency or take weights from."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    py = {normalise(project["name"])}
    py |= requirement_names(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        py |= requirement_names(extra)
    for req in (REPO / "requirements.txt", REPO / "bench" / "requirements.txt"):
        py |= requirement_names(req.read_text().splitlines())
    py |= {normalise(w.requirement.split("==")[0]) for w in WHEELS.values()}
    pkg = json.loads((REPO / "node-shim" / "package.json").read_text())
    npm = {pkg["name"]}
    for field in ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies"):
        npm |= set(pkg.get(field, {}))
    return py, npm


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode()
    files = []
    for rel in filter(None, listed.split("\0")):
        path = REPO / rel
        # This file names the stranger's forms on purpose (its examples).
        if rel.endswith("package-lock.json") or rel == "tests/test_names.py" or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" not in data[:4096]:
            files.append(path)
    return files


def named_packages(args: str) -> list[str]:
    """The package names an install command's arguments give, in order; a path, a file or a variable is none."""
    names = []
    skip = False
    args = re.sub(r"\$?\{[^}]*\}|\$\([^)]*\)", "$", args)  # f-string, template and make interpolations
    for raw in re.findall(r"'[^']*'|\"[^\"]*\"|\S+", args):
        token = raw.strip("'\"")
        # A quote that opens no token closes the string the command is written in: the command ends there.
        closes = raw[-1:] in ("'", '"') and raw[0] != raw[-1]
        ends = closes or token[-1:] in (",", ";", ")") or raw[-1:] in (",", ";", ")")
        token = token.rstrip(",;)").strip("'\"")
        if skip:
            skip = False
        elif token.startswith("-"):
            skip = token in TAKES_VALUE
        elif token and not re.search(r"[/\\$<>{]|^\.|\.(whl|tgz|tar\.gz|zip|txt)$", token):
            spec = SPEC.match(token)
            if spec is None:
                break  # prose after the command
            names.append(spec.group("name"))
        if ends:
            break
    return names


def test_our_names_are_declared_once_each() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pkg = json.loads((REPO / "node-shim" / "package.json").read_text())
    assert project["name"] == NAME and pkg["name"] == NAME
    # The import name and the folder stay `pyworker`; the Node hints name the wheel of the same version.
    assert (REPO / "pyworker" / "__init__.py").is_file()
    assert pkg["version"] == pyworker.__version__


def test_no_install_hint_names_a_distribution_that_is_not_ours() -> None:
    py, npm = declared()
    wrong = []
    for path in tracked_text_files():
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            where = f"{path.relative_to(REPO)}:{lineno}: {line.strip()[:160]}"
            for hit in STRANGER.finditer(line):
                wrong.append(f"{where}  ({hit.group(0)!r} is not our distribution: {NAME})")
            for cmd in INSTALL.finditer(line):
                allowed = py if cmd.group("tool").startswith("pip") else npm
                for name in named_packages(cmd.group("args")):
                    if (normalise(name) if allowed is py else name) not in allowed:
                        wrong.append(f"{where}  ({name!r}: neither ours nor a declared dependency)")
    assert not wrong, "install hints naming a package that is not ours:\n" + "\n".join(wrong)


def test_the_checker_sees_the_hints_it_is_for() -> None:
    """The parser on the kinds of line it must catch or pass (so the test above cannot pass by reading nothing)."""
    assert named_packages(" 'pyworker[face]'; wheels for CPython") == ["pyworker"]
    assert named_packages(' pyworker" (or the wheel)') == ["pyworker"]
    assert named_packages(" /path/to/dist/pyworker_cutout-0.3.0-py3-none-any.whl") == []
    assert named_packages(" <the checkout>` (no onnx)") == []
    assert named_packages(" --quiet -r requirements.txt --no-deps -e .") == []
    assert named_packages(" /x/pyworker-cutout-0.3.0.tgz express multer fflate") == ["express", "multer", "fflate"]
    assert named_packages(' "bullmq@^5.81.5"') == ["bullmq"]
    assert named_packages(""" "bullmq@^5' in consumer.stderr""") == ["bullmq"]
    assert named_packages(" --no-fund {checkout / 'dist' / tarball[-1]}") == []
    assert named_packages(" --no-deps --platform manylinux2014_aarch64 onnxruntime==1.32.0 -d tmp") == ["onnxruntime"]
    assert STRANGER.search("pip install 'pyworker[face]'") and STRANGER.search("dist/pyworker-0.3.0-py3-none-any.whl")
    assert not STRANGER.search("pyworker-cutout[fetch] and python -m pyworker")
