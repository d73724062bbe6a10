"""What this install can do, said up front: in the `ready` frame, in a start-up log line, and by the error a
request for a missing part gets (docs/protocol.md#capabilities).

Every runtime dependency installs on every platform we support (README, Decisions), so a missing part means a
partial install: weights not installed (`model_unavailable`, with the command), or a library that the
environment lacks or that was built without a format (`capability_unavailable`, with the exact pip command
for this worker's Python). Probing only looks (file stats, import specs): nothing is imported or loaded.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shlex
import sys
from collections.abc import Callable

from .errors import WorkerError
from .models import store

DISTRIBUTION = "pyworker-cutout"  # README, Decisions: "Names of our own"

# capability -> what a request asks for when it needs it (for messages)
WHAT = {
    "cutout": "a cut-out",
    "id_photo": "an ID photo (crop: 'face' or a preset)",
    "heic": "HEIC/HEIF input",
    "avif": "AVIF input",
}


def _pip_install(package: str) -> str:
    """The pip command that adds `package` to this worker's environment, with our own requirement's bounds."""
    spec = package
    try:
        for req in importlib.metadata.requires(DISTRIBUTION) or []:
            head = req.split(";")[0].strip()
            name = re.match(r"[A-Za-z0-9._-]+", head)
            if name and re.sub(r"[-_.]+", "-", name.group(0)).lower() == package and "extra" not in req:
                spec = head.replace(" ", "")
                break
    except importlib.metadata.PackageNotFoundError:
        pass  # pyworker imported from a checkout without its metadata: the bare name
    return f"{shlex.quote(sys.executable)} -m pip install {shlex.quote(spec)}"


def _weights(names: tuple[str, ...]) -> str | None:
    absent = [n for n in names if store.find_weights(n) is None]
    if not absent:
        return None
    return (
        f"the weights of {', '.join(absent)} are not in {store.model_home()}; "
        f"run: {store.pyworker_command()} models install {' '.join(absent)}"
    )


def _id_photo() -> str | None:
    from .pipeline.presets import PORTRAIT_MODEL  # here: pipeline's decode imports this module

    face_models = tuple(getattr(store, "FACE_MODELS", ()))
    return _weights((PORTRAIT_MODEL, *face_models))


def _heic() -> str | None:
    if importlib.util.find_spec("pillow_heif") is not None:
        return None
    return (
        f"pillow-heif, a dependency of {DISTRIBUTION}, is not installed in this environment; "
        f"run: {_pip_install('pillow-heif')}"
    )


def _avif() -> str | None:
    if importlib.util.find_spec("PIL._avif") is not None:
        return None
    import PIL

    return (
        f"this environment's Pillow ({PIL.__version__}) was built without AVIF (its wheels have it from 11.3); "
        f"run: {_pip_install('pillow')}"
    )


PROBES: dict[str, Callable[[], str | None]] = {
    "cutout": lambda: None,  # the start-up model is loaded before `ready`: a worker without it never starts
    "id_photo": _id_photo,
    "heic": _heic,
    "avif": _avif,
}


def missing() -> dict[str, str]:
    """capability -> why it is missing and the command that adds it; empty when this install has everything."""
    found = {name: probe() for name, probe in PROBES.items()}
    return {name: f"{WHAT[name]} needs what this install lacks: {why}" for name, why in found.items() if why}


def describe() -> tuple[dict[str, bool], dict[str, str]]:
    """(`capabilities`, `missing`) as the `ready` frame carries them."""
    absent = missing()
    return {name: name not in absent for name in PROBES}, absent


def unavailable(name: str) -> WorkerError:
    """The error of a request that needs `name`, which this install lacks (a library: weights say model_unavailable)."""
    why = PROBES[name]()
    return WorkerError("capability_unavailable", f"{WHAT[name]} needs what this install lacks: {why}")
