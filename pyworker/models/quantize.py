"""INT8 models derived at set-up from the md5-checked FP32 files (docs/models.md). Never imported while serving.

The recipe (why each step: docs/models.md#the-recipe): the FP32 graph converted to opset 13, passed through
onnxruntime's `quant_pre_process` (its basic graph optimisations and ONNX shape inference), calibrated with
MinMax on the shipped calibration photos and their mirrors, each range rounded outwards to a coarse grid, then
quantised to QDQ with U8 activations and per-channel S8 weights, a few nodes left in float. The tools are
pinned (DERIVE_TOOLS): the same inputs and tools give the same bytes, whose md5 each derived model class
records and `models install` checks.

Run as a module in its own process (`python -m pyworker.models.quantize NAME SRC OUT`): the store starts it
with the pinned tools on its path, and its peak memory is its own (/usr/bin/time -v).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# The tools the derivation needs besides onnxruntime: a set-up dependency, never a serving one. Pinned: another
# version may write other bytes. onnxruntime's own quantisation code is part of the pinned runtime (ORT_VERSION).
DERIVE_TOOLS = ("onnx==1.23.2", "ml_dtypes==0.7.0", "typing_extensions==4.16.0")  # onnx and its own two
ORT_VERSION = "1.32.0"
OPSET = 13  # per-channel DequantizeLinear (its `axis`) needs 13
CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"
# Each calibration range is widened to a multiple of 2**-GRID_BITS of its own span (floor of log2), so a run
# on another CPU, whose kernels sum in another order, lands on the same grid point and writes the same bytes.
GRID_BITS = 5


@dataclass(frozen=True)
class Recipe:
    source: str  # the FP32 model's name
    float_nodes: tuple[str, ...] = ()  # nodes (by their name in the FP32 file) left in float
    photos: tuple[str, ...] = ()  # calibration photos (CALIBRATION_DIR), each also mirrored
    op_types: tuple[str, ...] = ()  # the op types quantised (empty: every one onnxruntime can)
    crops: bool = False  # also the photos' centre crops (a closer framing) and darker copies


RECIPES: dict[str, Recipe] = {
    "u2netp": Recipe(
        "u2netp", ("Conv_787", "Concat_786"), ("astronaut.jpg", "camera.jpg", "chelsea.jpg", "coffee.jpg")
    ),
    "modnet": Recipe("modnet", (), ("astronaut.jpg", "camera.jpg", "chelsea.jpg", "coffee.jpg")),
}


def calibration_images(recipe: Recipe) -> Iterator[Image.Image]:
    for name in recipe.photos:
        with Image.open(CALIBRATION_DIR / name) as im:
            rgb = im.convert("RGB")
        yield rgb
        yield ImageOps.mirror(rgb)
        if recipe.crops:
            w, h = rgb.size
            yield rgb.crop((w // 6, 0, w - w // 6, h - h // 3))
            yield rgb.point(lambda v: v * 3 // 5)


def calibration_tensors(recipe: Recipe, weights: Path) -> list[np.ndarray]:
    """The inputs the worker itself would feed the model for each calibration photo (its own preprocess)."""
    from .registry import MODELS

    model = MODELS[recipe.source](weights, threads=1)
    tensors = [np.array(model.preprocess(img), dtype=np.float32, copy=True) for img in calibration_images(recipe)]
    del model
    return tensors


def _grid(lo: float, hi: float) -> tuple[float, float]:
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return lo, hi
    step = 2.0 ** (math.floor(math.log2(span)) - GRID_BITS)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def derive(name: str, source: Path, out: Path, verbose: bool = False) -> Path:
    import onnx
    import onnxruntime as ort
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, create_calibrator, save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .runtime import session_options

    recipe = RECIPES[name]
    with tempfile.TemporaryDirectory(prefix="pyworker-int8-") as tmp:
        t = Path(tmp)
        model = onnx.load(str(source))
        model = version_converter.convert_version(model, OPSET)
        onnx.save(model, str(t / "opset.onnx"))
        del model
        quant_pre_process(str(t / "opset.onnx"), str(t / "pre.onnx"), skip_symbolic_shape=True)

        # Calibration: onnxruntime's MinMax calibrator, but its session lean (no arena, no memory pattern, no
        # reuse plan: the pyworker settings), so the derivation fits a 512 MB host.
        calibrator = create_calibrator(
            t / "pre.onnx",
            [],
            augmented_model_path=str(t / "augmented.onnx"),
            calibrate_method=CalibrationMethod.MinMax,
        )
        opts = session_options(2)
        # Every tensor gets a ReduceMin and a ReduceMax; onnxruntime's default order runs them late and
        # keeps every activation alive until then (~750 MB for u2netp), priority order runs them at once
        # (~240 MB). No graph optimisation: the ranges of the graph as the quantiser sees it.
        opts.execution_order = ort.ExecutionOrder.PRIORITY_BASED
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        calibrator.infer_session = ort.InferenceSession(
            str(t / "augmented.onnx"), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        feed = calibrator.infer_session.get_inputs()[0].name
        for tensor in calibration_tensors(recipe, source):
            calibrator.collect_data(_OneShot({feed: tensor}))
        ranges = calibrator.compute_data()
        del calibrator
        for key, td in list(ranges.data.items()):
            lo, hi = (float(np.asarray(v).reshape(-1)[0]) for v in td.range_value)
            glo, ghi = _grid(lo, hi)
            ranges.data[key] = TensorData(lowest=np.float32(glo), highest=np.float32(ghi))
        save_tensors_data(ranges, t / "ranges.json")
        quantize_static(
            str(t / "pre.onnx"),
            str(out),
            calibration_data_reader=None,
            calibration_cache_path=str(t / "ranges.json"),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=list(recipe.float_nodes),
            op_types_to_quantize=list(recipe.op_types) or None,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return out


class _OneShot:
    """A CalibrationDataReader of one feed (collect_data merges each call's ranges into the last)."""

    def __init__(self, feed: dict[str, np.ndarray]) -> None:
        self._feed: dict[str, np.ndarray] | None = feed

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed, self._feed = self._feed, None
        return feed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pyworker.models.quantize", description=__doc__)
    ap.add_argument("name", choices=sorted(RECIPES))
    ap.add_argument("source", type=Path, help="the md5-checked FP32 file")
    ap.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    derive(a.name, a.source, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
