"""The small LRU of loaded sessions."""

from __future__ import annotations

import gc
from collections import OrderedDict
from pathlib import Path

from .. import logs, memory
from ..errors import WorkerError
from .base import MaskModel
from .registry import candidates, request_names, split
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
        """The class `name` loads (its weights installed, or already loaded), else model_unavailable. Loads
        nothing."""
        return self._resolve(name)[0]

    def _resolve(self, name: str) -> tuple[type[MaskModel], Path | None]:
        """A request name -> the class it loads (registry.candidates: INT8 or FP32) and its weights (None when
        that class is loaded already)."""
        if split(name) is None:
            raise WorkerError(
                "model_unavailable", f"Unknown model '{name}'; known models: {', '.join(request_names())}"
            )
        options = candidates(name)
        for cls in options:
            if cls.name in self._loaded:
                return cls, None
            weights = find_weights(cls.name)
            if weights is not None:
                return cls, weights
        last = options[-1]  # NAME-int8 derives an INT8 file, its FP32 source first; NAME installs what NAME runs
        installs = f"{last.derived_from}-int8" if last.derived_from else last.name
        raise WorkerError(
            "model_unavailable",
            f"Model '{name}' is not installed in {model_home()}; run: {install_command(installs)}",
        )

    def get(self, name: str) -> MaskModel:
        cls, weights = self._resolve(name)
        if weights is None:
            self._loaded.move_to_end(cls.name)
            return self._loaded[cls.name]
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
                f"Model '{name}' ({cls.name}) at {weights} could not be loaded "
                f"({type(exc).__name__}: {str(exc)[:200]}); reinstall it",
            ) from exc
        self._loaded[cls.name] = model
        logs.log("info", "model_loaded", model=name, file=cls.name, path=str(weights), rss_mb=memory.rss_mb())
        return model
