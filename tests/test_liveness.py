"""Urgent pings (docs/protocol.md#ping): answered during a job by the stdin reader thread, so a supervisor
can tell a long job from a worker that cannot run at all. Real worker processes, real faults."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from testkit.client import fault_env, frame

from .images import encode, subject_scene

SMALL_PNG = encode(subject_scene((160, 200))[0])


def _armed(tmp_path: Path, fault: str) -> Path:
    path = tmp_path / "fault"
    path.write_text(fault)
    return path


def _claimed(path: Path, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_an_urgent_ping_is_answered_during_a_job_before_its_reply(spawn, tmp_path) -> None:
    fault = _armed(tmp_path, "slow:6000")
    w = spawn("--threads", "1", env=fault_env(fault))
    w.send({"id": 1, "op": "remove", "image": SMALL_PNG})
    assert _claimed(fault)
    w.send({"id": 2, "op": "ping", "urgent": True})
    # Before: nothing was read during a job; the pong came after the job's reply. The order of the two
    # frames says it, whatever the machine's load (no stopwatch).
    pong = w.read(timeout=30)
    assert pong["id"] == 2 and pong["op"] == "pong" and pong["ok"] is True, pong
    assert pong["stats"]["jobs"] == 1
    job = w.read(timeout=30)
    assert job["id"] == 1 and job["ok"] is True


def test_a_plain_ping_stays_in_order_behind_the_job(spawn, tmp_path) -> None:
    fault = _armed(tmp_path, "slow:1500")
    w = spawn("--threads", "1", env=fault_env(fault))
    w.send({"id": 1, "op": "remove", "image": SMALL_PNG})
    assert _claimed(fault)
    w.send({"id": 2, "op": "ping"})
    assert [w.read(timeout=30)["id"], w.read(timeout=30)["id"]] == [1, 2]


def test_a_job_that_holds_the_gil_starves_the_urgent_ping(spawn, tmp_path) -> None:
    # What the ping detects: a process that cannot run Python (SIGSTOP, or a native call that never
    # lets go of the GIL). A job that hangs with the GIL released (fault `hang`) still answers.
    fault = _armed(tmp_path, "hang-gil")
    w = spawn("--threads", "1", env=fault_env(fault))
    w.send({"id": 1, "op": "remove", "image": SMALL_PNG})
    assert _claimed(fault)
    # The fault says when it is about to hold the GIL (a 0.3 s nap alone stood for that, and a loaded machine
    # could answer the ping before the hang began); the nap stays as margin for the last few bytecodes.
    gil = Path(f"{fault}.gil")
    deadline = time.monotonic() + 60
    while not gil.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gil.exists(), "the fault never reached its hang"
    time.sleep(0.3)
    w.send({"id": 2, "op": "ping", "urgent": True})
    try:
        reply = w.read(timeout=2)
    except TimeoutError:
        reply = None
    assert reply is None, reply
    w.proc.kill()


def test_a_job_that_hangs_with_the_gil_released_still_answers(spawn, tmp_path) -> None:
    fault = _armed(tmp_path, "hang")
    w = spawn("--threads", "1", env=fault_env(fault))
    w.send({"id": 1, "op": "remove", "image": SMALL_PNG})
    assert _claimed(fault)
    w.send({"id": 2, "op": "ping", "urgent": True})
    assert w.read(timeout=5)["id"] == 2  # alive: the supervisor's job timeout is what ends this one
    w.proc.kill()


def test_a_stopped_worker_answers_no_urgent_ping_until_continued(spawn) -> None:
    w = spawn("--threads", "1")
    os.kill(w.pid, signal.SIGSTOP)
    w.send({"id": 1, "op": "ping", "urgent": True})
    try:
        reply = w.read(timeout=1)
    except TimeoutError:
        reply = None
    assert reply is None
    os.kill(w.pid, signal.SIGCONT)
    assert w.read(timeout=5)["id"] == 1


def test_urgent_pings_after_shutdown_are_not_answered(spawn) -> None:
    w = spawn("--threads", "1")
    w.send({"id": 1, "op": "shutdown"})
    w.send({"id": 2, "op": "ping", "urgent": True})
    assert w.read()["id"] == 1
    assert w.wait() == 0 and w.stdout_eof()


def test_sigterm_while_reading_exits_at_once_with_the_reader_thread(spawn) -> None:
    w = spawn("--threads", "1")
    w.send({"id": 1, "op": "ping", "urgent": True})
    assert w.read()["id"] == 1
    os.kill(w.pid, signal.SIGTERM)
    assert w.wait(timeout=10) == 0


def test_at_most_one_request_is_read_ahead_of_the_running_job(spawn, tmp_path) -> None:
    # The reader thread keeps reading during a job (for pings), but never buffers more than the next
    # request: a third one stays in the pipe, so a client pipelining big frames cannot grow the worker.
    fault = _armed(tmp_path, "slow:8000")  # outlasts the 1.5 s look below by far, even on a loaded machine
    w = spawn("--threads", "1", env=fault_env(fault))
    w.send({"id": 1, "op": "remove", "image": SMALL_PNG})
    assert _claimed(fault)
    padding = b"\0" * (2 * 1024 * 1024)  # an ignored key: each frame is 2 MiB, the pipe holds 64 KiB
    frames = b"".join(frame({"id": i, "op": "ping", "pad": padding}) for i in (2, 3))
    writer = threading.Thread(target=w.send_raw, args=(frames,))
    writer.start()
    writer.join(timeout=1.5)
    assert writer.is_alive(), "both 2 MiB frames were taken in while the job ran"
    assert [w.read(timeout=30)["id"] for _ in range(3)] == [1, 2, 3]
    writer.join(timeout=10)
    assert not writer.is_alive()
