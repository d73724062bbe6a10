"""Model names -> classes: one class per model (rembg's sessions/ shape)."""

from __future__ import annotations

from .base import MaskModel
from .isnet import IsnetGeneralUse
from .modnet import Modnet
from .u2net import Silueta, U2net, U2netHumanSeg, U2netp

MODELS: dict[str, type[MaskModel]] = {
    cls.name: cls for cls in (U2netp, U2net, U2netHumanSeg, Silueta, IsnetGeneralUse, Modnet)
}
