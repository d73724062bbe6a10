"""Mask models (one class each, rembg's sessions/ shape), their weights, and the session cache."""

from .registry import MODELS, SessionCache

__all__ = ["MODELS", "SessionCache"]
