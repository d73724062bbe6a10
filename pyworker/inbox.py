"""Standard input on its own thread: urgent pings answered at once, every other frame handed over in order.

The serve loop is single-threaded: while it runs a job it reads nothing, so a supervisor could not
tell a long job from a frozen process. This thread reads stdin the whole time and answers a
`{"op": "ping", "urgent": true}` itself, even during a job, so a missed urgent ping means the
process cannot run Python at all (stopped, or a native call holding the GIL), never that it is
busy (docs/protocol.md#ping). A plain ping is a request like any other, answered in order.

Every other frame goes to the serve loop one at a time: the thread reads on only once the loop has
taken the previous frame, so at most one request is read ahead of the one running.

A SIGTERM or SIGINT reaches the loop the same way, as an item (`wake`, from the signal handler), never as an
exception: Python runs a handler between any two bytecodes of the main thread, even inside
`threading.Thread.start` or a lock's clean-up, where a raised exception broke their bookkeeping (a KeyError
out of `Thread.start`, exit 1, issue 21).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .framing import CHUNK_SIZE, DecodeLimits, Frame, FrameReader, OversizedFrame, decode_payload

# A ping is a few bytes; a larger frame (a ping with kilobytes of extra keys) is served in order.
PING_PEEK_BYTES = 4096
_PEEK_LIMITS = DecodeLimits(max_objects=64, max_str_bytes=PING_PEEK_BYTES, max_bin_bytes=PING_PEEK_BYTES)


@dataclass(frozen=True)
class EndOfInput:
    """Standard input closed (or failed); `mid_frame`: it stopped inside a frame."""

    mid_frame: bool


@dataclass(frozen=True)
class Signalled:
    """A SIGTERM or SIGINT arrived (put by the signal handler)."""

    signum: int


Item = Frame | OversizedFrame | EndOfInput | Signalled


def peek(event: Frame | OversizedFrame) -> dict[str, Any] | None:
    """A small, well-formed request frame with an integer id, decoded; None for anything else (the loop judges it)."""
    if not isinstance(event, Frame) or len(event.payload) > PING_PEEK_BYTES:
        return None
    try:
        message = decode_payload(event.payload, _PEEK_LIMITS)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    req_id = message.get("id")
    return message if isinstance(req_id, int) and not isinstance(req_id, bool) else None


class Inbox:
    """The reader thread, the one lock every frame is written under, and the hand-over to the serve loop."""

    def __init__(self, in_fd: int, out_fd: int, max_frame_bytes: int, pong: Callable[[int], bytes]) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.max_frame_bytes = max_frame_bytes
        self.pong = pong  # req_id -> the pong frame, encoded (stats are read at answer time; it never raises)
        self.write_lock = threading.Lock()  # frames never interleave on stdout
        # SimpleQueue: its put() is reentrant, so the signal handler may call it even while the loop waits in get().
        self._handed: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._taken = threading.Semaphore(0)  # released by the loop for each frame it takes: the reader reads on
        self._stopping = False  # a shutdown was read, or the loop is leaving: no more pongs (under write_lock)
        self._thread: threading.Thread | None = None

    # ---- writing (any thread) -------------------------------------------
    def write(self, frame: bytes) -> None:
        """An encoded frame (encode_frame): encoding, which can fail, is the caller's, before anything is written."""
        with self.write_lock:
            self._write_locked(frame)

    def _write_locked(self, frame: bytes) -> None:
        data = memoryview(frame)
        while data:
            written = os.write(self.out_fd, data)
            data = data[written:]

    def reply(self, frame: bytes | None, last: bool) -> None:
        """The serve loop's reply (encoded) to the request it took; `last`: the worker leaves after it."""
        with self.write_lock:
            if last:
                self._stopping = True
            if frame is not None:
                self._write_locked(frame)

    # ---- reading (the serve loop) ---------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._read, name="pyworker-inbox", daemon=True)
        self._thread.start()

    def get(self) -> Item:
        """The next request frame, in order (blocks; a signal handler may interrupt it)."""
        item = self._handed.get()
        if not isinstance(item, Signalled):
            self._taken.release()  # the reader may read on
        return item

    def wake(self, signum: int) -> None:
        """From a signal handler: the loop's get() returns Signalled (after any frame handed before it)."""
        self._handed.put(Signalled(signum))

    # ---- the reader thread ----------------------------------------------
    def _read(self) -> None:
        # Signals are the serve loop's: delivered here, they could not interrupt its wait.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        reader = FrameReader(self.max_frame_bytes)
        while True:
            try:
                chunk = os.read(self.in_fd, CHUNK_SIZE)
            except OSError:
                chunk = b""
            if not chunk:
                self._hand(EndOfInput(reader.mid_frame))
                return
            for event in reader.feed(chunk):
                if not self._answered_ping(event):
                    self._hand(event)

    def _hand(self, item: Item) -> None:
        self._handed.put(item)
        self._taken.acquire()  # one request read ahead at most: wait until the loop took this one

    def _answered_ping(self, event: Frame | OversizedFrame) -> bool:
        message = peek(event)
        if message is None:
            return False
        if message.get("op") == "shutdown":
            with self.write_lock:
                self._stopping = True  # urgent pings read after it are not answered (protocol: shutdown)
            return False
        if message.get("op") != "ping" or message.get("urgent") is not True:
            return False  # a plain ping is answered in order, as any request
        with self.write_lock:
            if self._stopping:
                return True  # leaving: like any request after a shutdown, not answered
            with contextlib.suppress(OSError):  # stdout closed: the loop finds out on its next write
                self._write_locked(self.pong(message["id"]))
        return True
