"""Property-based tests of the framing: pyworker.framing.FrameReader alone, then through a real worker.

The reader is checked against `reference_parse`, a one-shot parser of the
whole stream written straight from docs/protocol.md#transport: whatever the
chunking, the incremental reader must produce exactly its events.
"""

from __future__ import annotations

import itertools
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pyworker.framing import Frame, FrameReader, OversizedFrame

from .images import encode
from .workerproc import WorkerProcess, frame

LIMIT = 64  # a small --max-frame-mb, in bytes, so oversized frames are cheap to generate


def header(n: int) -> bytes:
    return struct.pack(">I", n)


def reference_parse(data: bytes, limit: int) -> tuple[list[tuple[str, object]], bool]:
    """Events of the whole stream at once, and whether it ends inside a frame (or a dropped one)."""
    events: list[tuple[str, object]] = []
    pos = 0
    while len(data) - pos >= 4:
        (n,) = struct.unpack_from(">I", data, pos)
        if n > limit:
            events.append(("oversized", n))  # reported as soon as the header is complete
            pos += 4 + n
        elif len(data) - pos - 4 >= n:
            events.append(("frame", bytes(data[pos + 4 : pos + 4 + n])))
            pos += 4 + n
        else:
            break
    return events, pos != len(data)


def normalise(events: list[Frame | OversizedFrame]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for event in events:
        if isinstance(event, Frame):
            out.append(("frame", bytes(event.payload)))
        elif isinstance(event, OversizedFrame):
            out.append(("oversized", event.length))
        else:  # pragma: no cover - a failure message, not a branch we expect
            raise AssertionError(f"unexpected event {event!r}")
    return out


def feed_chunks(reader: FrameReader, chunks: list[bytes]) -> list[tuple[str, object]]:
    events: list[Frame | OversizedFrame] = []
    for chunk in chunks:
        events.extend(reader.feed(chunk))
    return normalise(events)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


payloads = st.lists(st.binary(min_size=0, max_size=LIMIT), min_size=1, max_size=8)
cut_points = st.lists(st.integers(min_value=0, max_value=10_000), max_size=40)


@given(payloads, cut_points)
def test_any_split_of_a_valid_stream_yields_the_same_frames(frames: list[bytes], cuts: list[int]) -> None:
    data = b"".join(header(len(p)) + p for p in frames)
    reader = FrameReader(LIMIT)
    assert feed_chunks(reader, split(data, cuts)) == [("frame", p) for p in frames]
    assert not reader.mid_frame


@given(payloads, st.integers(min_value=1, max_value=LIMIT + 4))
def test_byte_at_a_time_equals_all_at_once(frames: list[bytes], cut: int) -> None:
    data = b"".join(header(len(p)) + p for p in frames)
    one_by_one = feed_chunks(FrameReader(LIMIT), [data[i : i + 1] for i in range(len(data))])
    assert one_by_one == feed_chunks(FrameReader(LIMIT), [data])
    # A stream cut short stops mid-frame and yields only the frames it holds entirely.
    short = data[: -min(cut, len(data) - 1)]
    reader = FrameReader(LIMIT)
    events = feed_chunks(reader, [short])
    expected, mid = reference_parse(short, LIMIT)
    assert events == expected and reader.mid_frame == mid


@settings(max_examples=300)
@given(st.binary(max_size=2048), cut_points, st.sampled_from([0, 1, LIMIT, 32 * 1024 * 1024]))
def test_random_bytes_never_crash_or_hang_the_reader(data: bytes, cuts: list[int], limit: int) -> None:
    reader = FrameReader(limit)
    started = time.process_time()  # CPU time: a loaded machine slows the wall clock, not this
    events = feed_chunks(reader, split(data, cuts))  # raises on anything but Frame / OversizedFrame
    assert time.process_time() - started < 1.0
    expected, mid = reference_parse(data, limit)
    assert events == expected
    assert reader.mid_frame == mid
    # Every byte is accounted for: no frame is invented, none is longer than its header said.
    assert sum(4 + len(p) for kind, p in events if kind == "frame") <= len(data)  # type: ignore[arg-type]


@st.composite
def streams_with_oversized_frames(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, object]]]:
    parts: list[bytes] = []
    expected: list[tuple[str, object]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        if draw(st.booleans()):
            body = draw(st.binary(min_size=LIMIT + 1, max_size=4 * LIMIT))
            expected.append(("oversized", len(body)))
        else:
            body = draw(st.binary(max_size=LIMIT))
            expected.append(("frame", body))
        parts.append(header(len(body)) + body)
    # Always end with a valid frame: the proof that the stream is back in step.
    tail = draw(st.binary(min_size=1, max_size=LIMIT))
    parts.append(header(len(tail)) + tail)
    expected.append(("frame", tail))
    return b"".join(parts), expected


@given(streams_with_oversized_frames(), cut_points)
def test_an_oversized_frame_is_skipped_and_the_stream_resynchronises(
    stream: tuple[bytes, list[tuple[str, object]]], cuts: list[int]
) -> None:
    data, expected = stream
    reader = FrameReader(LIMIT)
    assert feed_chunks(reader, split(data, cuts)) == expected
    assert not reader.mid_frame


def test_a_huge_announced_length_is_reported_at_once_and_skipped_lazily() -> None:
    reader = FrameReader(LIMIT)
    events = feed_chunks(reader, [header(0xFFFFFFFF)])
    assert events == [("oversized", 0xFFFFFFFF)]
    assert reader.mid_frame  # 4 GiB of payload still to drop, none of it buffered
    assert feed_chunks(reader, [b"\0" * 1024]) == [] and reader.mid_frame


# ---- through a real worker --------------------------------------------------


class DrainedWorker(WorkerProcess):
    """A WorkerProcess whose stderr is read continuously, so its log lines can never fill the pipe."""

    def __init__(self, *args: str) -> None:
        super().__init__(*args)
        self.log_lines: list[bytes] = []
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, b""):
            self.log_lines.append(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=30)
        self._drain.join(timeout=10)
        super().close()


MAX_FRAME_MB = 0.05  # 52,428 bytes: room for the requests below, and a cheap oversized frame


@pytest.fixture(scope="module")
def framing_worker() -> Iterator[DrainedWorker]:
    proc = DrainedWorker("--threads", "2", "--max-frame-mb", str(MAX_FRAME_MB))
    yield proc
    proc.close()


# Images that fail fast, before inference, so fifteen streams cost seconds, not minutes; the
# large one makes a frame of ~30 KB that the cuts split many times. A successful remove
# through split writes is tests/test_protocol.py::test_frames_split_at_any_boundary.
TINY_PNG = encode(Image.new("RGB", (1, 1)))
BIG_GIF = b"GIF89a" + bytes(range(256)) * 120
OVERSIZED = header(60_000) + b"\0" * 60_000


def request_items(base: int) -> list[tuple[bytes, tuple[object, bool, str | None]]]:
    """Frames of every kind, each with the (id, ok, error code) of its reply."""
    return [
        (frame({"id": base, "op": "ping"}), (base, True, None)),
        (frame({"id": base + 1, "op": "remove", "image": BIG_GIF}), (base + 1, False, "unsupported_format")),
        (frame({"id": base + 2, "op": "remove", "image": TINY_PNG}), (base + 2, False, "image_too_small")),
        (header(3) + b"\xc1\xc1\xc1", (None, False, "bad_frame")),
        (OVERSIZED, (None, False, "frame_too_large")),
        (frame({"id": base + 3, "op": "frobnicate"}), (base + 3, False, "unknown_op")),
        (frame({"id": base + 4, "op": "remove", "image": b""}), (base + 4, False, "invalid_image")),
        (frame({"id": base + 5, "op": "stats"}), (base + 5, True, None)),
    ]


_next_base = iter(range(10_000, 10**9, 100))
# Cut points drawn per frame (offsets into it), so every frame, header included, gets split,
# not only the big one that holds most of the bytes.
per_frame_cuts = st.lists(st.lists(st.integers(min_value=0, max_value=10**6), max_size=3), min_size=8, max_size=8)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(per_frame_cuts)
def test_random_splits_of_a_request_stream_get_the_same_replies_in_order(
    framing_worker: DrainedWorker, cuts: list[list[int]]
) -> None:
    items = request_items(next(_next_base))
    data = b"".join(raw for raw, _ in items)
    points, start = [], 0
    for (raw, _), offsets in zip(items, cuts, strict=True):
        points += [start + off % len(raw) for off in offsets]
        start += len(raw)
    for piece in split(data, points):
        framing_worker.send_raw(piece)
        time.sleep(0.002)  # let the worker read this piece on its own, not merged with the next
    replies = [framing_worker.read(timeout=60) for _ in items]
    got = [(r["id"], r["ok"], None if r["ok"] else r["error"]["code"]) for r in replies]
    assert got == [want for _, want in items]
    assert replies[-1]["stats"]["pid"] == framing_worker.pid


def test_the_framing_worker_survived_every_stream(framing_worker: DrainedWorker) -> None:
    stats = framing_worker.request("stats")["stats"]
    assert stats["pid"] == framing_worker.pid and framing_worker.proc.poll() is None
    assert stats["jobs"] >= 15 * 3  # each stream holds three remove requests
    assert not any(b"job_crashed" in line for line in framing_worker.log_lines)
