"""One set of runtime dependencies on every platform we support, each a binary wheel there (README, Decisions).

Builds the wheel, reads its Requires-Dist, and for CPython 3.10-3.14 on linux x86_64 and aarch64, macOS arm64
and Windows evaluates each requirement's marker and asks pip for a binary wheel of it (`pip download
--only-binary=:all: --no-deps --platform ... --python-version ...`) from the Python index alone (--isolated:
no local wheel folder answers for it). pip's HTTP cache makes reruns quick; the 20 targets run four at a time.
"""

from __future__ import annotations

import email
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from .workerproc import REPO

PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
# name -> (pip --platform tags, the markers' values). pip 23 widens a macOS tag to the older macOS versions
# but not manylinux_2_28 to the older glibc tags, so Linux lists them: any glibc from 2.17 to 2.28 (Debian 10+,
# Ubuntu 20.04+, every host in use) installs a wheel with one of these.
LINUX = ("manylinux2014", *(f"manylinux_2_{n}" for n in range(17, 29)))
PLATFORMS = {
    "linux-x86_64": ([f"{t}_x86_64" for t in LINUX], {"sys_platform": "linux", "platform_system": "Linux"}),
    "linux-aarch64": ([f"{t}_aarch64" for t in LINUX], {"sys_platform": "linux", "platform_system": "Linux"}),
    "macos-arm64": (["macosx_14_0_arm64"], {"sys_platform": "darwin", "platform_system": "Darwin"}),
    "windows-amd64": (["win_amd64"], {"sys_platform": "win32", "platform_system": "Windows"}),
}
MACHINE = {"linux-x86_64": "x86_64", "linux-aarch64": "aarch64", "macos-arm64": "arm64", "windows-amd64": "AMD64"}


@pytest.fixture(scope="module")
def requires_dist(tmp_path_factory: pytest.TempPathFactory) -> list[Requirement]:
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("pyworker_cutout-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(zf.read(name))
    return [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]


def runtime(reqs: list[Requirement]) -> list[Requirement]:
    """The requirements of a plain install (no extra)."""
    return [r for r in reqs if r.marker is None or "extra" not in str(r.marker)]


def test_no_marker_narrows_the_runtime_set(requires_dist: list[Requirement]) -> None:
    """A marker on a runtime dependency would drop a capability somewhere (yuface on Python >= 3.12 did)."""
    plain = runtime(requires_dist)
    assert {r.name for r in plain} >= {"onnxruntime", "pillow", "numpy", "msgpack", "psutil", "fpng", "pillow-heif"}
    assert [str(r) for r in plain if r.marker is not None] == []


def _download(target: tuple[str, str], reqs: list[Requirement], dest: Path) -> tuple[tuple[str, str], str]:
    platform_name, python = target
    tags, env = PLATFORMS[platform_name]
    markers = env | {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "platform_machine": MACHINE[platform_name],
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "nt" if platform_name.startswith("windows") else "posix",
        "extra": "",
    }
    wanted = [str(r.name) + str(r.specifier) for r in reqs if r.marker is None or r.marker.evaluate(markers)]
    folder = dest / f"{platform_name}-{python}"
    cmd = [sys.executable, "-m", "pip", "download", "--isolated", "--quiet", "--disable-pip-version-check"]
    cmd += ["--only-binary=:all:", "--no-deps", *(f"--platform={t}" for t in tags), "--python-version", python]
    cmd += ["--implementation", "cp", "-d", str(folder), *wanted]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return target, f"exit {done.returncode}: {done.stderr.strip()[-600:]}"
    got = sorted(p.name for p in folder.glob("*.whl"))
    if len(got) != len(wanted):
        return target, f"asked for {wanted}, got {got}"
    return target, ""


def test_every_runtime_dependency_has_a_wheel_everywhere(requires_dist: list[Requirement], tmp_path: Path) -> None:
    plain = runtime(requires_dist)
    targets = [(p, v) for p in PLATFORMS for v in PYTHONS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda t: _download(t, plain, tmp_path), targets))
    failed = {f"{p} CPython {v}": why for (p, v), why in results if why}
    assert not failed, "no binary wheel for:\n" + "\n".join(f"{k}: {v}" for k, v in failed.items())
