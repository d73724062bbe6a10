"""IS-Net (DIS): 1024x1024 input, mean 0.5 / std 1.0 (rembg's dis_general_use.py)."""

from __future__ import annotations

from .base import MaskModel


class IsnetGeneralUse(MaskModel):
    name = "isnet-general-use"
    md5 = "fc16ebd8b0c10d971d3513d564d01e29"
    url = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/isnet-general-use.onnx"
    input_size = 1024
    mean = (0.5, 0.5, 0.5)
    std = (1.0, 1.0, 1.0)
