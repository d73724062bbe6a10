"""The small LRU of loaded sessions."""

from __future__ import annotations

import gc
from collections import OrderedDict
from pathlib import Path

from .. import logs, memory
from ..errors import WorkerError
from .base import MaskModel
from .registry import MODELS
from .store import find_weights, install_command, model_home


class SessionCache:
    """Loads sessions on first use; keeps at most ``max_models``, evicting the least recently used."""

    def __init__(self, threads: int, max_models: int = 1) -> None:
        self.threads = threads
        self.max_models = max(1, max_models)
        self._loaded: OrderedDict[str, MaskModel] = OrderedDict()

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    def check(self, name: str) -> type[MaskModel]:
        """The model's class when it is loaded or installed, else model_unavailable. Loads nothing."""
        if name not in self._loaded:
            self._weights(name)
        return MODELS[name]

    def _weights(self, name: str) -> Path:
        if name not in MODELS:
            raise WorkerError("model_unavailable", f"Unknown model '{name}'; known models: {', '.join(MODELS)}")
        weights = find_weights(name)
        if weights is None:
            raise WorkerError(
                "model_unavailable",
                f"Model '{name}' is not installed in {model_home()}; run: {install_command(name)}",
            )
        return weights

    def get(self, name: str) -> MaskModel:
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return self._loaded[name]
        weights, cls = self._weights(name), MODELS[name]
        # Evict before loading: two sessions side by side is the peak we avoid.
        while len(self._loaded) >= self.max_models:
            old, _ = self._loaded.popitem(last=False)
            gc.collect()
            memory.trim()
            logs.log("info", "model_evicted", model=old, rss_mb=memory.rss_mb())
        try:
            model = cls(weights, self.threads)
        except Exception as exc:
            raise WorkerError(
                "model_unavailable",
                f"Model '{name}' at {weights} could not be loaded "
                f"({type(exc).__name__}: {str(exc)[:200]}); reinstall it",
            ) from exc
        self._loaded[name] = model
        logs.log("info", "model_loaded", model=name, path=str(weights), rss_mb=memory.rss_mb())
        return model
