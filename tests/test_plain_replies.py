"""No photo kills the worker (issue 24): plain values in every reply, and a reply path that cannot die.

pyworker 0.3.0 died on a portrait with dark sunglasses: a NumPy bool in meta.compliance made msgpack
raise while the reply was packed, outside any handler, and the process exited 1. Every worker of this
suite packs its frames with strict types (tests/workerproc.py), so a NumPy scalar anywhere in a reply
fails the test that gets it; these tests add the photo and force the failure on purpose.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from pyworker.pipeline.presets import PRESETS
from testkit.client import fault_env, frame

from .images import ASTRONAUT, encode
from .workerproc import UNENCODABLE, UnencodableReply, WorkerProcess


def _dark_glasses() -> bytes:
    """samples/astronaut.jpg (public domain) with a dark bar over each eye and a bridge: no pupil to find,
    and the detector still finds the face (it did in every run: landmarks from the face's shape)."""
    img = Image.open(ASTRONAUT).convert("RGB")
    draw = ImageDraw.Draw(img)
    # The eyes are at (202.5, 100.5) and (246.5, 102.5) (tests/test_idphoto.py measured them).
    draw.rounded_rectangle((186, 89, 220, 113), 6, fill=(12, 12, 16))
    draw.rounded_rectangle((229, 91, 263, 115), 6, fill=(12, 12, 16))
    draw.line((220, 100, 229, 101), fill=(12, 12, 16), width=4)
    return encode(img, "JPEG", quality=92)


GLASSES = _dark_glasses()


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("preset", [None, *PRESETS])
def test_a_face_behind_dark_glasses_gets_a_reply(worker: WorkerProcess, preset: str | None, strict: bool) -> None:
    options = {"preset": preset} if preset else {"crop": "face"}
    reply = worker.remove(GLASSES, strict=strict, **options)  # the client refuses a non-plain reply
    if reply["ok"]:
        meta = reply["meta"]
        assert meta["crop_mode"] == "face" and meta["face"] is not None, meta
        checks = {c["name"]: c for c in meta["compliance"]["checks"]}
        assert type(checks["crown_visible"]["value"]) is bool
        assert all(type(v) is float for pt in meta["face"]["landmarks"].values() for v in pt)
    else:
        # Strict may refuse the photo (the astronaut is small: upscale); nothing else may go wrong.
        assert strict and reply["error"]["code"] == "not_compliant", reply
    assert not strict or reply["ok"] is reply.get("meta", {}).get("compliance", {}).get("passed", False)
    assert worker.request("ping")["ok"] is True


def _armed(tmp_path: Path, fault: str) -> Path:
    path = tmp_path / "fault"
    path.write_text(fault)
    return path


def _internal(reply: dict, req_id: int, where: str) -> None:
    assert reply["id"] == req_id and reply["ok"] is False, reply
    assert reply["error"]["code"] == "internal", reply
    message = reply["error"]["message"]
    assert UNENCODABLE in message and where in message and "numpy.bool" in message, message
    assert isinstance(reply["stats"]["rss_mb"], float), reply  # a reply like any other: stats included


def test_an_unencodable_remove_reply_is_internal_and_the_worker_goes_on(spawn, tmp_path) -> None:
    fault = _armed(tmp_path, "unencodable")  # tests/faults: a NumPy bool in the next job's meta
    w = spawn("--threads", "1", env=fault_env(fault))
    w.expect_unencodable = True
    _internal(w.remove(encode(Image.open(ASTRONAUT)), timeout=60), 1, "meta.injected")
    assert not fault.exists()  # claimed once
    w.expect_unencodable = False
    again = w.remove(ASTRONAUT.read_bytes(), timeout=60)
    assert again["ok"] is True and again["meta"]["width"] > 0
    stats = w.request("stats")["stats"]
    assert stats["pid"] == w.pid and stats["errors"] == 1 and stats["jobs"] == 2
    assert w.proc.poll() is None
    log = _stderr_after_close(w)
    assert '"event": "reply_failed"' in log and '"job": 1' in log


def _stderr_after_close(w: WorkerProcess) -> str:
    w.send({"id": 99, "op": "shutdown"})
    assert w.read()["ok"] is True and w.wait() == 0
    return w.stderr_text()


@pytest.mark.parametrize("urgent", [False, True])
def test_unencodable_stats_in_a_ping_are_internal_and_the_worker_goes_on(spawn, tmp_path, urgent: bool) -> None:
    w = spawn("--threads", "1", env=fault_env(_armed(tmp_path, "unencodable-stats")))
    w.expect_unencodable = True
    w.send({"id": 5, "op": "ping", **({"urgent": True} if urgent else {})})
    _internal(w.read(), 5, "stats.injected")
    w.expect_unencodable = False
    w.send({"id": 6, "op": "ping", "urgent": True})
    w.send({"id": 7, "op": "ping"})
    assert [(r["id"], r["op"]) for r in (w.read(), w.read())] == [(6, "pong"), (7, "pong")]
    assert w.request("stats")["stats"]["pid"] == w.pid


def test_unencodable_stats_reply_is_internal_and_the_worker_goes_on(spawn, tmp_path) -> None:
    w = spawn("--threads", "1", env=fault_env(_armed(tmp_path, "unencodable-stats")))
    w.expect_unencodable = True
    w.send_raw(frame({"id": 3, "op": "stats"}))
    _internal(w.read(), 3, "stats.injected")
    w.expect_unencodable = False
    stats = w.request("stats")["stats"]
    assert stats["pid"] == w.pid and stats["errors"] == 1


def test_an_unencodable_ready_is_a_fatal_internal_and_exit_78(spawn, tmp_path) -> None:
    w = spawn("--threads", "1", "--no-warmup", env=fault_env(_armed(tmp_path, "unencodable-ready")), wait_ready=False)
    w.expect_unencodable = True
    fatal = w.read(timeout=60)
    assert fatal["op"] == "fatal" and fatal["error"]["code"] == "internal", fatal
    assert (
        "ready frame could not be encoded: injected is numpy.bool" in fatal["error"]["message"]
        and UNENCODABLE in fatal["error"]["message"]
    ), fatal
    assert w.wait() == 78  # docs/protocol.md: could not start, see the fatal frame


def test_the_suites_strict_check_refuses_a_numpy_float64_plain_msgpack_takes(spawn, tmp_path) -> None:
    """The check every test gets is real: a float64 (a float subclass, packed by plain msgpack) fails it."""
    plain = spawn("--threads", "1", "--no-warmup", env=fault_env(_armed(tmp_path, "float64-stats")), strict_types=False)
    assert plain.request("ping")["stats"]["injected"] == 0.5  # what the product's encoder lets through
    strict = spawn("--threads", "1", "--no-warmup", env=fault_env(_armed(tmp_path, "float64-stats")))
    with pytest.raises(UnencodableReply, match=r"stats\.injected is numpy\.float64"):
        strict.request("ping")
    assert strict.request("ping")["ok"] is True and strict.proc.poll() is None
