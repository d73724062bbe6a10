"""The wire protocol, through a real worker process: docs/protocol.md, section by section."""

from __future__ import annotations

import os
import signal
import time

import msgpack
import pytest

from testkit.client import fault_env

from .images import ASTRONAUT, encode, subject_scene
from .workerproc import WorkerProcess, frame

SMALL_PNG = encode(subject_scene((160, 200))[0])


def test_ready_frame_describes_the_worker(worker: WorkerProcess) -> None:
    ready = worker.ready
    assert ready is not None
    assert ready["op"] == "ready" and ready["protocol"] == 2
    assert ready["pid"] == worker.pid
    assert ready["model"] == "u2netp"
    assert "u2netp" in ready["models_available"]
    assert ready["threads"] == 2
    assert ready["limits"]["max_input_mb"] == 10 and ready["limits"]["max_pixels_side"] == 4096
    assert 0 < ready["rss_mb"] < 1024


def test_ping_and_stats(worker: WorkerProcess) -> None:
    pong = worker.request("ping")
    assert pong["ok"] is True and pong["op"] == "pong"
    assert set(pong["stats"]) == {"rss_mb", "peak_rss_mb", "jobs"}
    stats = worker.request("stats")["stats"]
    assert stats["pid"] == worker.pid and stats["models_loaded"] == ["u2netp"]
    assert stats["peak_rss_mb"] >= stats["rss_mb"] > 0
    assert stats["uptime_s"] >= 0 and stats["threads"] == 2


def test_remove_reply_has_image_meta_and_stats(worker: WorkerProcess) -> None:
    jobs_before = worker.request("ping")["stats"]["jobs"]
    reply = worker.remove(SMALL_PNG)
    assert reply["ok"] is True, reply
    assert reply["mime"] == "image/png" and reply["image"].startswith(b"\x89PNG")
    meta = reply["meta"]
    assert (meta["width"], meta["height"], meta["input_width"], meta["input_height"]) == (160, 200, 160, 200)
    assert meta["model"] == "u2netp"
    assert set(meta["timings_ms"]) == {"decode", "infer", "run", "post", "encode", "total"}
    assert meta["timings_ms"]["infer"] >= meta["timings_ms"]["run"] > 0
    assert meta["timings_ms"]["total"] >= meta["timings_ms"]["infer"] > 0
    assert reply["stats"]["jobs"] == jobs_before + 1


@pytest.mark.parametrize("step", [1, 7, 256 * 1024])
def test_frames_split_at_any_boundary(worker: WorkerProcess, step: int) -> None:
    data = frame({"id": 501, "op": "remove", "image": SMALL_PNG, "options": {"max_size": 64}})
    for i in range(0, len(data), step):
        worker.send_raw(data[i : i + step])
    reply = worker.read()
    assert reply["id"] == 501 and reply["ok"] is True


def test_several_frames_in_one_write_are_answered_in_order(worker: WorkerProcess) -> None:
    batch = frame({"id": 601, "op": "ping"}) + frame({"id": 602, "op": "remove", "image": SMALL_PNG})
    batch += frame({"id": 603, "op": "nope"}) + frame({"id": 604, "op": "ping"})
    worker.send_raw(batch)
    replies = [worker.read() for _ in range(4)]
    assert [r["id"] for r in replies] == [601, 602, 603, 604]
    assert [r["ok"] for r in replies] == [True, True, False, True]


@pytest.mark.parametrize(
    "payload",
    [b"\xc1\xc1\xc1", msgpack.packb([1, 2, 3]), msgpack.packb("remove"), b"", msgpack.packb({"id": 1}) + b"x"],
    ids=["invalid-msgpack", "array", "string", "empty", "trailing-bytes"],
)
def test_garbage_frame_then_good_frame(worker: WorkerProcess, payload: bytes) -> None:
    worker.send_raw(len(payload).to_bytes(4, "big") + payload + frame({"id": 701, "op": "ping"}))
    bad = worker.read()
    assert bad["ok"] is False and bad["id"] is None and bad["error"]["code"] == "bad_frame"
    assert bad["error"]["message"]
    assert worker.read()["id"] == 701


def test_oversized_frame_is_skipped_and_the_stream_resynchronises(spawn) -> None:
    w = spawn("--threads", "1", "--max-frame-mb", "1")
    big = frame({"id": 801, "op": "remove", "image": b"\0" * (3 * 1024 * 1024)})
    w.send_raw(big[:100])
    early = w.read()  # answered as soon as the header arrives
    assert early["id"] is None and early["error"]["code"] == "frame_too_large"
    assert "3.0MB" in early["error"]["message"] and "1MB" in early["error"]["message"]
    w.send_raw(big[100:] + frame({"id": 802, "op": "ping"}))
    assert w.read()["id"] == 802


def test_request_errors_name_the_problem(worker: WorkerProcess) -> None:
    unknown = worker.request("frobnicate")
    assert unknown["error"]["code"] == "unknown_op" and "frobnicate" in unknown["error"]["message"]
    worker.send({"id": "seven", "op": "ping"})
    bad_id = worker.read()
    assert bad_id["id"] == "seven" and bad_id["error"]["code"] == "bad_request"
    no_image = worker.request("remove")
    assert no_image["error"]["code"] == "bad_request" and "'image'" in no_image["error"]["message"]
    as_text = worker.request("remove", image="aGVsbG8=")
    assert as_text["error"]["code"] == "bad_request" and "bin" in as_text["error"]["message"]


def test_eof_mid_frame_exits_cleanly(spawn) -> None:
    w = spawn("--threads", "1")
    w.send_raw(frame({"id": 1, "op": "ping"})[:-2])
    w.proc.stdin.close()
    assert w.wait() == 0
    assert '"event": "stdin_eof_mid_frame"' in w.stderr_text()


def test_eof_after_requests_answers_them_all_then_exits(spawn) -> None:
    w = spawn("--threads", "1")
    w.send_raw(frame({"id": 1, "op": "remove", "image": SMALL_PNG}) + frame({"id": 2, "op": "ping"}))
    w.proc.stdin.close()
    assert [w.read()["id"], w.read()["id"]] == [1, 2]
    assert w.wait() == 0


def test_shutdown_replies_then_exits_zero(spawn) -> None:
    w = spawn("--threads", "1")
    reply = w.request("shutdown")
    assert reply["ok"] is True
    assert w.wait() == 0 and w.stdout_eof()


def test_sigterm_while_busy_finishes_the_job_then_exits_zero(spawn, tmp_path) -> None:
    # The job is surely running when the signal comes: it claims a 2 s fault first (a 0.15 s nap used to
    # stand for "running", and on a loaded machine the signal came before the job was read).
    fault = tmp_path / "fault"
    fault.write_text("slow:2000")
    w = spawn("--threads", "1", env=fault_env(fault))
    w.send({"id": 5, "op": "remove", "image": ASTRONAUT.read_bytes(), "options": {"max_size": 0}})
    deadline = time.monotonic() + 60
    while fault.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not fault.exists(), "the job never started"
    os.kill(w.pid, signal.SIGTERM)
    reply = w.read()
    assert reply["id"] == 5 and reply["ok"] is True
    assert w.wait() == 0


def test_sigterm_when_idle_exits_at_once(spawn) -> None:
    w = spawn("--threads", "1")
    os.kill(w.pid, signal.SIGTERM)
    assert w.wait(timeout=10) == 0


def test_max_rss_retires_the_worker_after_replying(spawn) -> None:
    w = spawn("--threads", "1", "--max-rss-mb", "1")
    reply = w.remove(SMALL_PNG)
    assert reply["ok"] is True and reply["retiring"] is True
    assert reply["stats"]["rss_mb"] > 1
    assert w.wait() == 75


def test_missing_start_model_sends_fatal_and_exits_78(spawn, tmp_path) -> None:
    w = spawn("--threads", "1", env={"U2NET_HOME": str(tmp_path)}, wait_ready=False)
    fatal = w.read()
    assert fatal["op"] == "fatal" and fatal["error"]["code"] == "model_unavailable"
    assert str(tmp_path) in fatal["error"]["message"]
    assert w.wait() == 78
