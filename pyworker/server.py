"""The serve loop: frames in, one reply per frame out, until EOF, shutdown or a signal."""

from __future__ import annotations

import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import PROTOCOL_VERSION, __version__, capabilities, logs, memory
from .errors import EXIT, WorkerError, echo, format_mb
from .framing import DecodeLimits, Frame, OversizedFrame, decode_payload, encode_frame, unencodable
from .inbox import EndOfInput, Inbox, Signalled
from .limits import Limits
from .models import SessionCache
from .models.store import available_models
from .pipeline import remove
from .pipeline.options import parse_options

OPS = ("remove", "ping", "stats", "shutdown")
HEAVY_FRAME = 64 * 1024  # after a frame this large (or a remove), give the memory back and check --max-rss-mb


@dataclass(frozen=True)
class ServerConfig:
    model: str = "u2netp"
    threads: int = 1
    limits: Limits = field(default_factory=Limits)  # every --max-* flag (pyworker/limits.py)
    warmup: bool = True


class Server:
    def __init__(self, config: ServerConfig, in_fd: int = 0, out_fd: int = 1) -> None:
        self.config = config
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.models = SessionCache(config.threads, config.limits.max_models)
        self.settler = memory.Settler(config.limits.max_rss_mb)
        self.jobs = 0
        self.errors = 0
        self.started = time.monotonic()
        self.busy = False
        self.stop_signal: int | None = None
        self.current: tuple[int | None, Any] = (None, None)  # (id, op) of the request being handled, once known
        self.signalled_busy = False  # whether a job was running when stop_signal came
        # As in the `ready` frame; parse_options reads its bounds from here too (max_size <= max_pixels_side).
        self.limits = config.limits.ready_limits()
        self.decode_limits = DecodeLimits(max_bin_bytes=config.limits.max_frame_bytes)
        # Reads stdin on its own thread (pings are answered during a job); every frame is written through it.
        self.inbox = Inbox(in_fd, out_fd, config.limits.max_frame_bytes, self.pong_frame)

    # ---- output -------------------------------------------------------------
    def write(self, message: dict[str, Any]) -> None:
        self.inbox.write(encode_frame(message))

    def pong(self, req_id: Any) -> dict[str, Any]:
        return {"id": req_id, "ok": True, "op": "pong", "stats": self.stats()}

    def pong_frame(self, req_id: int) -> bytes:
        """The urgent pong, encoded, for the reader thread. Never raises: that thread must not die."""
        pong: dict[str, Any] | None = None
        try:
            pong = self.pong(req_id)
            return encode_frame(pong)
        except Exception as exc:
            return self.internal_frame(req_id, self._failure("The reply to 'ping'", pong, exc))

    def stats(self) -> dict[str, Any]:
        return {"rss_mb": float(memory.rss_mb()), "peak_rss_mb": float(memory.peak_rss_mb()), "jobs": self.jobs}

    @staticmethod
    def _failure(what: str, message: dict[str, Any] | None, exc: BaseException) -> str:
        """The `internal` message for a frame that could not be built (message None) or encoded: what failed."""
        raised = f"{type(exc).__name__}: {str(exc)[:200]}"
        if message is None:
            return f"{what} could not be built: {raised}"
        return f"{what} could not be encoded: {unencodable(message) or raised}"

    def internal_frame(self, req_id: int | None, text: str, retiring: bool = False, counted: bool = False) -> bytes:
        """An `internal` error for `req_id`, encoded: what a request gets when its own reply failed.

        Built from plain values only, so it always encodes; logged with the request's id. `counted`:
        the failed reply was an error already (stats.errors counts it once).
        """
        logs.log("error", "reply_failed", job=req_id, error=text, traceback=traceback.format_exc())
        if not counted:
            self.errors += 1
        reply: dict[str, Any] = {"id": req_id, "ok": False, "error": {"code": "internal", "message": text}}
        if retiring:
            reply["retiring"] = True
        try:
            reply["stats"] = self.stats()
            return encode_frame(reply)
        except Exception:  # the stats are what fails: the one figure known for sure
            reply["stats"] = {"rss_mb": 0.0, "peak_rss_mb": 0.0, "jobs": int(self.jobs)}
            return encode_frame(reply)

    def _error(self, req_id: Any, err: WorkerError) -> dict[str, Any]:
        self.errors += 1
        return {"id": req_id, "ok": False, "error": err.to_wire(), "stats": self.stats()}

    # ---- lifecycle ----------------------------------------------------------
    def _on_signal(self, signum: int, _frame: Any) -> None:
        # Assignments and a reentrant put only: this runs between any two bytecodes of the main thread (inside
        # threading's or io's own code too), where raising, or writing to stderr, could break what it interrupted.
        if self.stop_signal is None:
            self.stop_signal = signum
            self.signalled_busy = self.busy
        self.inbox.wake(signum)

    def _stopped(self) -> int:
        """Leave on the signal received: a running job has had its reply."""
        assert self.stop_signal is not None
        logs.log("info", "signal", signal=signal.Signals(self.stop_signal).name, busy=self.signalled_busy)
        return EXIT["ok"]

    def _warm_up(self, name: str) -> None:
        # The first session.run allocates and plans; do it now so the first
        # client does not pay for it, then hand the memory back.
        model = self.models.get(name)
        size = model.input_size
        model.infer(np.zeros((1, 3, size, size), dtype=np.float32))
        self.settler.settle(force=True)

    def start(self) -> bool:
        logs.log("info", "starting", version=__version__, model=self.config.model, threads=self.config.threads)
        try:
            self.models.get(self.config.model)
            if self.config.warmup:
                self._warm_up(self.config.model)
        except WorkerError as err:
            logs.log("error", "fatal", error=err.to_wire())
            self.write({"op": "fatal", "error": err.to_wire()})
            return False
        ready: dict[str, Any] | None = None
        try:
            ready = self._ready()
            frame = encode_frame(ready)
        except Exception as exc:
            # Not a crash: the start-up failed, said in a fatal frame and exit 78 like a missing model.
            text = self._failure("The ready frame", ready, exc)
            logs.log("error", "fatal", error={"code": "internal", "message": text}, traceback=traceback.format_exc())
            self.write({"op": "fatal", "error": {"code": "internal", "message": text}})
            return False
        self.inbox.write(frame)
        logs.log("info", "ready", rss_mb=ready["rss_mb"], peak_rss_mb=memory.peak_rss_mb())
        if ready["missing"]:  # said at start-up, not discovered by the first request that needs it
            logs.log("warning", "capabilities_missing", missing=ready["missing"])
        return True

    def _ready(self) -> dict[str, Any]:
        can, missing = capabilities.describe()
        return {
            "op": "ready",
            "protocol": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "version": __version__,
            "model": self.config.model,
            "models_available": list(available_models()),
            "capabilities": can,
            "missing": missing,
            "threads": int(self.config.threads),
            "limits": self.limits,
            "rss_mb": float(memory.rss_mb()),
        }

    def serve(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            if not self.start():
                return EXIT["config"]
            if self.stop_signal is not None:  # it came while the model loaded
                return self._stopped()
            return self._loop()
        except BrokenPipeError:
            logs.log("info", "stdout_closed")
            return EXIT["ok"]

    def _loop(self) -> int:
        self.inbox.start()
        while True:
            event = self.inbox.get()
            if isinstance(event, EndOfInput):
                name = "stdin_eof_mid_frame" if event.mid_frame else "stdin_eof"
                logs.log("warning" if event.mid_frame else "info", name, jobs=self.jobs)
                return EXIT["ok"]
            if isinstance(event, Signalled):
                return self._stopped()
            self.busy = True
            frame, exit_code = self.answer(event)
            self.inbox.reply(frame, last=exit_code is not None or self.stop_signal is not None)
            self.busy = False
            if exit_code is not None:
                return exit_code
            if self.stop_signal is not None:
                return self._stopped()

    # ---- requests -----------------------------------------------------------
    def answer(self, event: Frame | OversizedFrame) -> tuple[bytes | None, int | None]:
        """handle(event), encoded. Whatever is raised while building or packing the reply stays here: the
        request gets `internal` naming what failed, and the worker goes on (docs/protocol.md#errors)."""
        self.current = (None, None)
        reply: dict[str, Any] | None = None
        exit_code: int | None = None
        try:
            reply, exit_code = self.handle(event)
            return (None if reply is None else encode_frame(reply)), exit_code
        except Exception as exc:
            req_id, op = self.current
            if op == "shutdown":
                exit_code = EXIT["ok"]  # asked to stop: it still does, after this reply
            text = self._failure("The reply" if op is None else f"The reply to {echo(op)}", reply, exc)
            retiring = bool(reply is not None and reply.get("retiring"))
            counted = reply is not None and reply.get("ok") is False
            return self.internal_frame(req_id, text, retiring, counted), exit_code

    def handle(self, event: Frame | OversizedFrame) -> tuple[dict[str, Any] | None, int | None]:
        """One frame -> (its reply, an exit code when the worker must stop after it).

        Every op, not only remove, hands memory back after a large frame and obeys --max-rss-mb:
        a 30 MB frame of garbage costs as much as an image to unpack.
        """
        heavy = isinstance(event, Frame) and len(event.payload) > HEAVY_FRAME
        jobs = self.jobs
        reply, exit_code = self._dispatch(event)
        if reply is None:
            return reply, exit_code
        if heavy and self.jobs == jobs:  # a remove job (self.jobs moved) has done this already
            self.settler.settle(force=True)
            reply["stats"] = self.stats()
        limit = self.config.limits.max_rss_mb
        if exit_code is None and limit is not None and reply["stats"]["rss_mb"] > limit:
            reply["retiring"] = True
            logs.log("warning", "retiring", rss_mb=reply["stats"]["rss_mb"], max_rss_mb=limit, jobs=self.jobs)
            return reply, EXIT["retired"]
        return reply, exit_code

    def _dispatch(self, event: Frame | OversizedFrame) -> tuple[dict[str, Any] | None, int | None]:
        if isinstance(event, OversizedFrame):
            logs.log("warning", "frame_too_large", bytes=event.length)
            msg = (
                f"Frame size ({format_mb(event.length)}) exceeds maximum "
                f"({format_mb(self.config.limits.max_frame_bytes)}); its bytes were skipped"
            )
            return self._error(None, WorkerError("frame_too_large", msg)), None
        payload = event.take()
        try:
            message = decode_payload(payload, self.decode_limits)
        except ValueError as exc:
            logs.log("warning", "bad_frame", bytes=len(payload), reason=str(exc))
            return self._error(None, WorkerError("bad_frame", f"Frame is not valid msgpack: {exc}")), None
        del payload  # the message holds its own copies of the values
        if not isinstance(message, dict):
            kind = type(message).__name__
            return self._error(None, WorkerError("bad_frame", f"Frame must hold a msgpack map, got {kind}")), None
        req_id = message.get("id")
        if not isinstance(req_id, int) or isinstance(req_id, bool):
            # Echoed only when short: a reply must not carry a 30 MB value back; else id null, matched by order.
            shown = req_id if isinstance(req_id, (str, float, bool)) and len(str(req_id)) <= 80 else None
            err = WorkerError("bad_request", f"'id' must be an integer, got {echo(req_id)}")
            return self._error(shown, err), None
        op = message.get("op")
        self.current = (req_id, op)
        if op == "remove":
            return self._remove(req_id, message)
        if op == "ping":
            return self.pong(req_id), None
        if op == "stats":
            stats = self.stats() | {
                "pid": os.getpid(),
                "uptime_s": round(time.monotonic() - self.started, 1),
                "errors": self.errors,
                "models_loaded": list(self.models.loaded),
                "threads": int(self.config.threads),
            }
            return {"id": req_id, "ok": True, "stats": stats}, None
        if op == "shutdown":
            logs.log("info", "shutdown", jobs=self.jobs)
            return {"id": req_id, "ok": True, "stats": self.stats()}, EXIT["ok"]
        return self._error(req_id, WorkerError("unknown_op", f"Unknown op {echo(op)}; ops: {', '.join(OPS)}")), None

    def _remove(self, req_id: int, message: dict[str, Any]) -> tuple[dict[str, Any] | None, int | None]:
        self.jobs += 1
        started = time.perf_counter()
        try:
            image = message.get("image")
            if not isinstance(image, (bytes, bytearray)):
                raise WorkerError("bad_request", f"'image' must be msgpack bin, got {type(image).__name__}")
            opts = parse_options(message.get("options"), self.limits)
            # bytes(b) is b itself for bytes: a bytearray is the only copy made here
            result = remove(bytes(image), opts, self.models, self.config.limits, self.config.model)
            reply: dict[str, Any] = {
                "id": req_id,
                "ok": True,
                "image": result.image,
                "mime": result.mime,
                "meta": result.meta,
            }
            del result
        except WorkerError as err:
            reply = {"id": req_id, "ok": False, "error": err.to_wire()}
            self.errors += 1
        except MemoryError:
            reply = {"id": req_id, "ok": False, "error": {"code": "internal", "message": "Out of memory"}}
            self.errors += 1
        except Exception as exc:
            logs.log("error", "job_crashed", job=req_id, traceback=traceback.format_exc())
            message_text = f"{type(exc).__name__}: {str(exc)[:300]}"
            reply = {"id": req_id, "ok": False, "error": {"code": "internal", "message": message_text}}
            self.errors += 1
        message.clear()  # drop the input bytes before measuring
        self.settler.settle(force=not reply["ok"])
        reply["stats"] = stats = self.stats()
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        if reply["ok"]:
            logs.log(
                "info",
                "job_done",
                job=req_id,
                model=reply["meta"]["model"],
                timings_ms=reply["meta"]["timings_ms"],
                rss_mb=stats["rss_mb"],
            )
        else:
            logs.log("info", "job_failed", job=req_id, error=reply["error"], ms=elapsed, rss_mb=stats["rss_mb"])
        return reply, None
