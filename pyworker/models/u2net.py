"""The U²-Net family: 320x320 input, ImageNet normalisation (rembg's u2net*.py, silueta.py)."""

from __future__ import annotations

from .base import MaskModel

_RELEASES = "https://github.com/danielgatis/rembg/releases/download/v0.0.0"


class U2netp(MaskModel):
    """4.7 MB distilled U²-Net: the default, and the only model bundled offline."""

    name = "u2netp"
    md5 = "8e83ca70e441ab06c318d82300c84806"
    url = f"{_RELEASES}/u2netp.onnx"


class U2netpInt8(U2netp):
    """u2netp quantised at set-up (pyworker.models.quantize, docs/models.md): the md5 of the derived file."""

    name = "u2netp.int8"
    md5 = "1b0220d5837c8402aec5a2a166e530d6"
    url = "derived at set-up from u2netp (python -m pyworker models install)"
    precision = "int8"
    derived_from = "u2netp"


class U2net(MaskModel):
    name = "u2net"
    md5 = "60024c5c889badc19c04ad937298a77b"
    url = f"{_RELEASES}/u2net.onnx"


class U2netHumanSeg(MaskModel):
    name = "u2net_human_seg"
    md5 = "c09ddc2e0104f800e3e1bb4652583d1f"
    url = f"{_RELEASES}/u2net_human_seg.onnx"


class Silueta(MaskModel):
    """U²-Net pruned to 43 MB by its author, same pre-processing."""

    name = "silueta"
    md5 = "55e59e0d8062d2f5d013f4725ee84782"
    url = f"{_RELEASES}/silueta.onnx"
