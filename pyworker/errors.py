"""The fixed set of error codes a reply can carry (docs/protocol.md#errors)."""

from __future__ import annotations

CODES = frozenset(
    {
        "bad_frame",
        "frame_too_large",
        "bad_request",
        "unknown_op",
        "unsupported_format",
        "invalid_image",
        "image_too_large",
        "image_too_small",
        "input_too_large",
        "model_unavailable",
        "no_face",
        "internal",
    }
)


class WorkerError(Exception):
    """An error meant for the client: a code from CODES and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def to_wire(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def format_mb(n_bytes: float) -> str:
    """12.5MB, 10MB: the figure style used in every size message."""
    mb = n_bytes / (1024 * 1024)
    return f"{mb:.1f}MB" if mb % 1 else f"{mb:.0f}MB"
