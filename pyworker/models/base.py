"""What every mask model shares: one onnxruntime session, rembg-identical pre/post-processing.

A subclass with pre- or post-processing of its own overrides preprocess() (image -> input tensor) and/or
postprocess() (raw output -> mask image); infer() runs any tensor, and predict() chains the three.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
from PIL import Image

from .. import memory
from .runtime import session_options

LANCZOS = Image.Resampling.LANCZOS
# Image.resize first box-reduces by an integer factor while the image is still over 3x the target, then
# resamples with LANCZOS: a 4096² photo goes to 320² in ~15 ms instead of ~120, and Pillow documents
# 3.0 as indistinguishable from a plain LANCZOS resize in most cases (the masks' IoU with rembg's stays
# above the tests' bar). Below 6x the target it changes nothing.
REDUCING_GAP = 3.0


class MaskModel:
    """A salient-object model that maps an RGB image to an 8-bit mask.

    Subclasses only declare their constants, exactly as rembg's sessions do,
    so a mask from here matches rembg's for the same input.
    """

    name: ClassVar[str]
    md5: ClassVar[str]
    url: ClassVar[str]
    precision: ClassVar[str] = "fp32"  # "int8": derived at set-up from the FP32 model `derived_from`
    derived_from: ClassVar[str | None] = None
    input_size: ClassVar[int] = 320
    mean: ClassVar[tuple[float, float, float]] = (0.485, 0.456, 0.406)
    std: ClassVar[tuple[float, float, float]] = (0.229, 0.224, 0.225)

    def __init__(self, weights: Path, threads: int) -> None:
        self.weights = weights
        self.session = ort.InferenceSession(
            str(weights),
            sess_options=session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self._input_name = inp.name
        # The u2net family has seven side outputs; only the fused first one is the mask, and only it is
        # bound, so the other six are never copied out.
        self._output_name = out.name
        self.last_run_ms = 0.0  # session.run alone, for the job's timings
        # Input and output live in buffers allocated once and bound once (IO binding): preprocess() writes
        # the tensor straight into the input buffer, and the run writes the mask into the output buffer.
        # Dynamic shapes (a model with its own pre-processing may have them) fall back to session.run.
        self._input: np.ndarray | None = None
        self._output: np.ndarray | None = None
        self._binding: ort.IOBinding | None = None
        in_shape, out_shape = _static(inp.shape), _static(out.shape)
        if in_shape is not None:
            self._input = np.zeros(in_shape, dtype=np.float32)
            self._binding = self.session.io_binding()
            self._binding.bind_ortvalue_input(inp.name, ort.OrtValue.ortvalue_from_numpy(self._input))
            if out_shape is not None:
                self._output = np.zeros(out_shape, dtype=np.float32)
                self._binding.bind_ortvalue_output(out.name, ort.OrtValue.ortvalue_from_numpy(self._output))
            else:
                self._binding.bind_output(out.name, "cpu")
        std = np.asarray(self.std, dtype=np.float32).reshape(3, 1, 1)
        self._inv_std = (1.0 / std).astype(np.float32)
        self._mean_over_std = (np.asarray(self.mean, dtype=np.float32).reshape(3, 1, 1) / std).astype(np.float32)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """RGB image of any size -> 1x3xSxS float32 tensor, as rembg's BaseSession.normalize.

        Written in place into the bound input buffer (returned): (v / max - mean) / std as one multiply and
        one subtract per pixel, in float32, with no intermediate array but the resized 8-bit pixels.
        """
        size = (self.input_size, self.input_size)
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        pixels = np.asarray(rgb.resize(size, LANCZOS, reducing_gap=REDUCING_GAP)).transpose(2, 0, 1)
        out = self._input[0] if self._input is not None else np.empty((3, *size[::-1]), dtype=np.float32)
        scale = self._inv_std / np.float32(max(int(pixels.max()), 1))
        np.multiply(pixels, scale, out=out)
        np.subtract(out, self._mean_over_std, out=out)
        return self._input if self._input is not None else out[np.newaxis]

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """One session.run; the mask output only. The array returned may be the model's own output buffer,
        overwritten by the next run: use it (postprocess) before running again."""
        t0 = time.perf_counter()
        with memory.activation_heap():
            # The binding exists only with its input buffer (both or neither).
            if self._binding is not None and self._input is not None and tensor.shape == self._input.shape:
                if tensor is not self._input:
                    np.copyto(self._input, tensor)
                self.session.run_with_iobinding(self._binding)
                out = self._output if self._output is not None else self._binding.copy_outputs_to_cpu()[0]
            else:
                (out,) = self.session.run([self._output_name], {self._input_name: tensor})
        self.last_run_ms = (time.perf_counter() - t0) * 1000
        return out

    @staticmethod
    def postprocess(raw: np.ndarray) -> Image.Image:
        """Raw model output -> SxS mask in mode L, min-max normalised as rembg does (in place in `raw`)."""
        pred = raw[0, 0]
        lo, hi = float(pred.min()), float(pred.max())
        if hi > lo:
            pred -= np.float32(lo)
            pred *= np.float32(255.0 / (hi - lo))
        else:
            pred.fill(0)
        return Image.fromarray(pred.astype(np.uint8))  # 2-D uint8: mode L

    def predict(self, image: Image.Image) -> Image.Image:
        """Mask at the model's own resolution; the caller resizes it once to what it needs."""
        return self.postprocess(self.infer(self.preprocess(image)))


def _static(shape: list[int | str | None]) -> tuple[int, ...] | None:
    """The shape when every dimension is a fixed number, else None (a symbolic or unknown dimension)."""
    fixed = [d for d in shape if isinstance(d, int) and d > 0]
    return tuple(fixed) if len(fixed) == len(shape) else None
