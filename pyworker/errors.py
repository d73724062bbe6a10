"""Every error code a caller can see, and the worker's exit codes: declared here once.

The protocol's tables (docs/protocol.md), the READMEs, node-shim/lib/contract.json and index.d.ts are
generated from or checked against these tables by tests/test_contract.py (`make contract` regenerates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Code:
    name: str
    # caller: the request is at fault (resending it as is fails again); service: the worker or the pool
    # failed (the request itself may be fine: a fallback, a retry or another instance may serve it).
    fault: Literal["caller", "service"]
    http: int  # the status an HTTP front end answers with
    when: str
    action: str  # what the caller should do
    origin: Literal["worker", "client"] = "worker"  # client: raised by the Node pool, never on the wire


ERRORS: tuple[Code, ...] = (
    Code(
        "bad_frame",
        "caller",
        400,
        "the payload is not a MessagePack map, or holds more than 4,096 objects, a string over 4 KiB "
        "or a bin over the frame limit",
        "can't be retried as is",
    ),
    Code("frame_too_large", "caller", 413, "`N` > `--max-frame-mb`", "can't be retried as is"),
    Code(
        "bad_request",
        "caller",
        400,
        "a field is missing, has the wrong type, or an option is unknown or out of range",
        "fix the request",
    ),
    Code("unknown_op", "caller", 400, "`op` is missing or not one of the ops above", "fix the request"),
    Code(
        "unsupported_format",
        "caller",
        415,
        "the bytes are a known format other than JPEG/MPO, PNG, WEBP, BMP, HEIC/HEIF or AVIF: GIF (still ones too), "
        "TIFF (scans too), PPM/PGM, PDF, SVG (however long its prolog), other markup, JPEG XL, MP4, ICO "
        '("Unsupported image format: GIF"; refused by decision, docs/protocol.md#formats)',
        "send another format",
    ),
    Code(
        "invalid_image",
        "caller",
        400,
        "the bytes are not a decodable image (empty, truncated, corrupt, unknown)",
        "send another file",
    ),
    Code(
        "image_too_large",
        "caller",
        413,
        "width or height above `--max-side` (4096), a decompression bomb, or a full-size decode (every format "
        "but JPEG, which decodes scaled) needing more than `--max-decode-mb` (192: a WEBP needs 16 bytes a "
        "pixel, so at most 12 MP)",
        "send a smaller image",
    ),
    Code(
        "image_too_complex",
        "caller",
        422,
        "a JPEG with more than `--max-jpeg-scans` (100) scans: each scan re-walks every block",
        "re-save the image as an ordinary JPEG",
    ),
    Code("image_too_small", "caller", 400, "width or height below `--min-side` (50)", "send a larger image"),
    Code("input_too_large", "caller", 413, "the image bytes exceed `--max-input-mb` (10 MiB)", "send a smaller file"),
    Code(
        "model_unavailable",
        "service",
        503,
        "the model is unknown, or its weights are not on disk",
        "install it: `pyworker models install NAME` (the message gives the exact command for the worker's Python)",
    ),
    Code(
        "capability_unavailable",
        "service",
        501,
        "the request needs a part this install lacks (HEIC or AVIF input without its library); `ready.missing` "
        "lists them, and the message gives the exact install command for the worker's Python",
        "install it (the message's command), or send what the worker can read",
    ),
    Code("no_face", "caller", 400, "`face_required` and no face was found", "send another photo"),
    Code(
        "not_compliant",
        "caller",
        422,
        "`strict` and the ID photo fails a check of `meta.compliance`; the message names each failing check, "
        'its value and accepted range ("passport-35x45: upscale 8.17 (accepted 0-1.5, ...)")',
        "send another photo",
    ),
    Code(
        "internal",
        "service",
        500,
        "a bug in the worker, a reply it could not encode included; the message says what failed",
        "may be retried once",
    ),
    # Raised by the Node pool about a worker process, never sent by a worker.
    Code("worker_crashed", "service", 502, "the worker died while it had the job", "retried up to `retries`", "client"),
    Code("protocol_error", "service", 502, "the worker wrote something that is not a reply", "retried", "client"),
    Code(
        "start_failed",
        "service",
        503,
        "no worker could start (exit 78/2, start timeout, another protocol version)",
        "fix the set-up",
        "client",
    ),
    Code("job_timeout", "service", 504, "the job ran longer than `jobTimeoutMs`", "send a smaller image", "client"),
    Code("queue_full", "service", 503, "`maxQueue` jobs already wait for a worker", "retry later", "client"),
    Code("pool_closed", "service", 503, "the pool is closing or closed", "use another pool", "client"),
    Code("ABORT_ERR", "caller", 499, "the caller's `signal` aborted the job", "nothing", "client"),
    # Raised by the queue client (docs/queue.md) and the batch routes.
    Code(
        "expired",
        "service",
        504,
        "a queued job's input or result was no longer in Redis (kept `resultTtlMs`, default one hour)",
        "send it again",
        "client",
    ),
    Code(
        "job_lost",
        "service",
        503,
        "a queued job was no longer in Redis while awaited (Redis restarted without persistence, or evicted it): "
        "nothing was done for it, or its result is gone",
        "send it again",
        "client",
    ),
    Code(
        "not_found",
        "caller",
        404,
        "no batch with that id here (unknown, or expired after `ttlMs`)",
        "nothing",
        "client",
    ),
)

# The codes a worker may put on the wire.
CODES = frozenset(c.name for c in ERRORS if c.origin == "worker")


@dataclass(frozen=True)
class Exit:
    name: str
    code: int
    meaning: str
    action: str  # what a supervisor should do


EXITS: tuple[Exit, ...] = (
    Exit("ok", 0, "stopped on request (EOF, `shutdown`, SIGTERM)", "nothing"),
    Exit("usage", 2, "bad command line (plain-text usage on stderr)", "fix the flags"),
    Exit("retired", 75, "retired itself: RSS above `--max-rss-mb` after a job (`EX_TEMPFAIL`)", "start a fresh worker"),
    Exit("config", 78, "could not start: see the `fatal` frame (`EX_CONFIG`)", "not restart in a loop; report it"),
)
EXIT = {e.name: e.code for e in EXITS}


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


ECHO_CHARS = 80


def echo(value: object) -> str:
    """repr(value) cut to ECHO_CHARS: an error names what it got without echoing a 30 MB string back.

    Containers are described, not walked: repr() of a million-element list would cost what we refuse.
    """
    if isinstance(value, (list, tuple, dict, set)) and len(value) > 8:
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, (str, bytes, bytearray)) and len(value) > ECHO_CHARS:
        value = value[:ECHO_CHARS]
        return repr(value)[: ECHO_CHARS + 2] + f"... ({type(value).__name__}, cut)"
    text = repr(value)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "... (cut)"
