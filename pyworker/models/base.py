"""What every mask model shares: one onnxruntime session, rembg-identical pre/post-processing."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
from PIL import Image

from .runtime import run_options, session_options


class MaskModel:
    """A salient-object model that maps an RGB image to an 8-bit mask.

    Subclasses only declare their constants, exactly as rembg's sessions do,
    so a mask from here matches rembg's for the same input.
    """

    name: ClassVar[str]
    md5: ClassVar[str]
    url: ClassVar[str]
    input_size: ClassVar[int] = 320
    mean: ClassVar[tuple[float, float, float]] = (0.485, 0.456, 0.406)
    std: ClassVar[tuple[float, float, float]] = (0.229, 0.224, 0.225)

    def __init__(self, weights: Path, threads: int, memory_mode: str = "lean") -> None:
        self.weights = weights
        self.session = ort.InferenceSession(
            str(weights),
            sess_options=session_options(threads, memory_mode),
            providers=["CPUExecutionProvider"],
        )
        self._input_name = self.session.get_inputs()[0].name
        # The u2net family has seven side outputs; only the fused first one is the mask.
        self._output_names = [self.session.get_outputs()[0].name]
        self._run_options = run_options(memory_mode)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """RGB image of any size -> 1x3xSxS float32 tensor, as rembg's BaseSession.normalize."""
        size = (self.input_size, self.input_size)
        resized = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        arr = np.asarray(resized, dtype=np.float32)
        arr /= max(float(arr.max()), 1e-6)
        arr -= np.asarray(self.mean, dtype=np.float32)
        arr /= np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(arr.transpose(2, 0, 1)[np.newaxis])

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(self._output_names, {self._input_name: tensor}, self._run_options)
        return out

    @staticmethod
    def postprocess(raw: np.ndarray) -> Image.Image:
        """Raw model output -> SxS mask in mode L, min-max normalised as rembg does."""
        pred = raw[0, 0]
        lo, hi = float(pred.min()), float(pred.max())
        scaled = (pred - lo) / (hi - lo) if hi > lo else np.zeros_like(pred)
        return Image.fromarray((scaled * 255).astype(np.uint8), mode="L")

    def predict(self, image: Image.Image) -> Image.Image:
        """Mask at the model's own resolution; the caller resizes it once to what it needs."""
        return self.postprocess(self.infer(self.preprocess(image)))
