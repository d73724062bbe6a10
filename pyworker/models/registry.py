"""Model names -> classes: one class per weights file (rembg's sessions/ shape).

MODELS are the FP32 files as published; INT8 the files derived from two of them at set-up (docs/models.md). A
request's `model` (and `--model`) takes a MODELS name, or `NAME-int8` / `NAME-fp32` for a model in INT8: that
precision, always. A plain name means FP32, unless the model is in INT8_BY_DEFAULT: then its INT8 file where it
is installed and the CPU runs it well (x86-64 with VNNI), else FP32. `meta.precision` says which ran.
"""

from __future__ import annotations

import functools

from .base import MaskModel
from .isnet import IsnetGeneralUse
from .modnet import Modnet, ModnetInt8
from .u2net import Silueta, U2net, U2netHumanSeg, U2netp, U2netpInt8

MODELS: dict[str, type[MaskModel]] = {
    cls.name: cls for cls in (U2netp, U2net, U2netHumanSeg, Silueta, IsnetGeneralUse, Modnet)
}
# FP32 name -> its INT8 derivation (pyworker.models.quantize makes the file at `models install`).
INT8: dict[str, type[MaskModel]] = {str(cls.derived_from): cls for cls in (U2netpInt8, ModnetInt8)}
# Models whose plain name means INT8: only those whose INT8 masks stay within the thresholds of docs/models.md
# on every photo measured. None yet (modnet: IoU 0.86 on one portrait; u2netp: 0.91 on one photo).
INT8_BY_DEFAULT: tuple[str, ...] = ()
SUFFIXES = {"-int8": "int8", "-fp32": "fp32"}


def request_names() -> list[str]:
    """Every name a request's `model` (or --model) accepts."""
    return [*MODELS, *(n + s for n in INT8 for s in SUFFIXES)]


def split(name: str) -> tuple[str, str | None] | None:
    """(the FP32 model's name, the precision asked: "int8", "fp32" or None for the model's default); None for
    an unknown name."""
    if name in MODELS:
        return name, None
    for suffix, precision in SUFFIXES.items():
        stem = name.removesuffix(suffix)
        if stem != name and stem in INT8:
            return stem, precision
    return None


def candidates(name: str) -> list[type[MaskModel]]:
    """The classes a known request name may load, best first (the first one installed is loaded)."""
    known = split(name)
    assert known is not None, name  # the caller refused unknown names (cache.py: model_unavailable)
    base, precision = known
    if precision == "int8":
        return [INT8[base]]
    if precision is None and base in INT8_BY_DEFAULT and int8_runs_well():
        return [INT8[base], MODELS[base]]
    return [MODELS[base]]


@functools.cache
def int8_runs_well() -> bool:
    """x86-64 with VNNI (AVX-512 VNNI or AVX-VNNI): where the INT8 files were measured, and where onnxruntime's
    U8S8 kernels cannot saturate (without VNNI they add pairs in 16 bits, which can: docs/models.md)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return bool(set(line.split(":", 1)[1].split()) & {"avx512_vnni", "avx_vnni"})
    except OSError:
        return False
    return False
