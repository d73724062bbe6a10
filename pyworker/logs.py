"""One JSON object per line on stderr: stdout is reserved for frames."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_threshold = LEVELS[os.environ.get("PYWORKER_LOG_LEVEL", "info").lower()]


def set_level(level: str) -> None:
    global _threshold
    _threshold = LEVELS[level]


def log(level: str, event: str, **fields: Any) -> None:
    if LEVELS[level] < _threshold:
        return
    now = datetime.now(timezone.utc)
    record = {
        "ts": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "level": level,
        "event": event,
        "pid": os.getpid(),
        **fields,
    }
    try:
        sys.stderr.write(json.dumps(record, default=str) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # a closed stderr must never take the worker down
