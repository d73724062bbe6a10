"""The worker's limits, each declared once: name, default, flag, doc (as gunicorn's config.py declares its settings).

`Limits` is the table: each field is a worker flag (`max_input_mb` is `--max-input-mb`), and the rest derives
from it: the `serve`/`remove` flags and their help (cli.py), what a job obeys (pipeline/decode.py reads the
byte and pixel figures below), the server's frame size, memory ceiling and model cache (server.py), the
`ready` frame's `limits` (`ready_limits`), and the README's worker-flag table (`make contract`). Defaults are
sized for a 512 MB host (docs/reliability.md#cost-budget).
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any

MiB = 1024 * 1024


def _limit(default: Any, doc: str, *, ready: str | None = "", serve_only: bool = False) -> Any:
    """A field of `Limits`. `ready`: its key in the `ready` frame's `limits` ("": its own name; None: not
    sent). `serve_only`: a flag of `serve` only (`remove` reads one file, no frames, no retirement)."""
    return field(default=default, metadata={"doc": doc, "ready": ready, "serve_only": serve_only})


@dataclass(frozen=True)
class Limits:
    """What the worker and one job may cost. A field's unit is its flag's: MiB, pixels, megapixels."""

    max_input_mb: float = _limit(10.0, "largest image file, MiB: larger ones are refused with input_too_large")
    # The protocol's older names for the two sides (ready.limits, options.py's max_size bound).
    max_side: int = _limit(4096, "largest width or height in pixels", ready="max_pixels_side")
    min_side: int = _limit(50, "smallest width or height in pixels", ready="min_pixels_side")
    # A progressive JPEG's decode time is (scans x pixels): libjpeg walks every block once per scan.
    # Encoders write 6-12 scans (mozjpeg's optimised ones up to ~30); 100 bounds a 4096 px decode to ~0.1-0.2 s.
    max_jpeg_scans: int = _limit(
        100, "most scans in a JPEG; more: image_too_complex (a scan bomb costs ~1 ms a scan at 4096 px)"
    )
    # The result's width x height: about 4096 x 4096, what --max-side lets in; an RGBA copy is 64 MB.
    max_output_mp: float = _limit(
        16.8, "largest result, megapixels; WEBP results half of it (its encoder needs ~15 bytes a pixel)"
    )
    # What decoding at full size may allocate, for the formats that cannot decode scaled (all but JPEG).
    # 192 MiB lets in a 12 MP WEBP (4000x3000) and any PNG, BMP, HEIC or AVIF up to --max-side.
    max_decode_mb: float = _limit(
        192.0,
        "most memory a full-size decode may need, MiB (WEBP 16 B/px, HEIC/AVIF 6, HEIC above 8 bits or with "
        "alpha 16, PNG/BMP 4; an AVIF sized from its AV1 frame, not its ispe box; JPEG decodes scaled)",
    )
    max_frame_mb: float = _limit(
        32.0, "largest request frame, MiB; larger ones are skipped with frame_too_large", serve_only=True
    )
    max_rss_mb: float | None = _limit(
        None,
        "after a job leaving RSS above it (MiB): reply, then exit 75 so a supervisor restarts it",
        serve_only=True,
    )
    # 2: a worker serving cut-outs (u2netp) and ID photos (modnet) keeps both: +5 MB between jobs instead of a
    # reload per switch (~0.4 s), docs/id-photos.md#models.
    max_models: int = _limit(
        2,
        "sessions kept loaded at once, least recently used evicted (2: u2netp for cut-outs, modnet for ID photos)",
        ready=None,
    )

    @property
    def max_input_bytes(self) -> int:
        return int(self.max_input_mb * MiB)

    @property
    def max_output_pixels(self) -> int:
        return int(self.max_output_mp * 1_000_000)

    @property
    def max_decode_bytes(self) -> int:
        return int(self.max_decode_mb * MiB)

    @property
    def max_frame_bytes(self) -> int:
        return int(self.max_frame_mb * MiB)

    def ready_limits(self) -> dict[str, Any]:
        """The `ready` frame's `limits` (docs/protocol.md#ready): floats for the MiB and megapixel figures."""
        out: dict[str, Any] = {}
        for f in LIMITS:
            if f.metadata["ready"] is not None:
                value = getattr(self, f.name)
                out[ready_key(f)] = None if value is None else int(value) if f.type == "int" else float(value)
        return out


def flag(f: Field[Any]) -> str:
    return "--" + f.name.replace("_", "-")


def ready_key(f: Field[Any]) -> str:
    return f.metadata["ready"] or f.name


def default_text(f: Field[Any]) -> str:
    """The default as --help and the README show it: 10, not 10.0; none for no limit."""
    return "none" if f.default is None else f"{f.default:g}"


LIMITS: tuple[Field[Any], ...] = fields(Limits)
# ready.limits key -> the worker flag behind it (an option bounded by a limit names the flag: options.py).
READY_FLAGS = {ready_key(f): flag(f) for f in LIMITS if f.metadata["ready"] is not None}
