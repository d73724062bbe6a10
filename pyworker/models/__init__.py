"""Mask models (one class each, rembg's sessions/ shape), their weights, and the session cache."""

from .cache import SessionCache
from .registry import MODELS

__all__ = ["MODELS", "SessionCache"]
