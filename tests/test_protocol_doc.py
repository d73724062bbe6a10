"""docs/protocol.md is the spec: its examples are run against a real worker, and the keys it lists are the
keys the worker sends."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pyworker import PROTOCOL_VERSION
from testkit.client import REPO

from .images import ASTRONAUT

DOC = (REPO / "docs" / "protocol.md").read_text()
ANY = "<any>"


def _section(title: str) -> str:
    """The first code block after a heading that contains `title`."""
    start = DOC.index(title)
    return DOC[start:].split("```", 2)[1]


def _keys(block: str) -> set[str]:
    return set(re.findall(r'"(\w+)"\s*:', block))


def _matches(expected: Any, actual: Any) -> bool:
    if expected == ANY:
        return True
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_matches(v, actual[k]) for k, v in expected.items())
        )
    return expected == actual


def test_the_version_is_the_one_the_worker_announces(spawn) -> None:
    assert re.match(r"# pyworker protocol, version (\d+)\n", DOC).group(1) == str(PROTOCOL_VERSION)  # type: ignore[union-attr]
    assert re.search(r'"protocol": (\d+),', _section("### `ready`")).group(1) == str(PROTOCOL_VERSION)  # type: ignore[union-attr]
    # The Versions section has an entry for it, and the Node pool checks the same number.
    assert f"\n**{PROTOCOL_VERSION}** (" in DOC[DOC.index("## Versions") :]
    assert json.loads((REPO / "node-shim" / "lib" / "contract.json").read_text())["protocol"] == PROTOCOL_VERSION
    worker = spawn("--threads", "1", "--no-warmup")
    assert worker.ready is not None and worker.ready["protocol"] == PROTOCOL_VERSION


def test_the_minimal_python_client_runs(tmp_path) -> None:
    code = re.search(r"```python\n(.*?)```", DOC, re.S).group(1)  # type: ignore[union-attr]
    (tmp_path / "client.py").write_text(code)
    shutil.copy(ASTRONAUT, tmp_path / "in.jpg")
    # "python" on PATH is this interpreter (the venv's bin/); pyworker is importable as from the repository root.
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "client.py"], cwd=tmp_path, env=env, check=True, timeout=120)
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_request_reply_examples_hold(spawn) -> None:
    worker = spawn("--threads", "1", "--no-warmup")
    examples = re.findall(r"`(\{[^`]*\})` → `(\{[^`]*\})`", DOC)
    assert [json.loads(req)["op"] for req, _ in examples] == ["ping", "stats", "shutdown"]
    for request, reply in examples:
        worker.send(json.loads(request))
        expected = json.loads(reply.replace("{...}", json.dumps(ANY)))
        got = worker.read()
        assert _matches(expected, got), (request, got)
    assert worker.wait() == 0  # "then exit 0"


def test_the_documented_keys_are_the_keys_sent(spawn) -> None:
    worker = spawn("--threads", "1", "--no-warmup")
    ready = worker.ready
    assert ready is not None
    assert _keys(_section("### `ready`")) == set(ready) | set(ready["limits"]) | set(ready["capabilities"])
    reply = worker.remove(ASTRONAUT.read_bytes(), max_size=64)
    assert _keys(_section("Success:")) == set(reply) | set(reply["meta"]) | set(reply["meta"]["timings_ms"])
    assert _keys(_section("Every reply to a request has")) == set(reply["stats"])
    stats = worker.request("stats")["stats"]
    assert _keys(_section("### `stats`")) | set(reply["stats"]) == set(stats)
    fatal = spawn("--model", "no-such-model", wait_ready=False)
    frame = fatal.read()
    assert _keys(_section("### `fatal`")) == set(frame) | set(frame["error"])
    assert fatal.wait() == 78


def test_the_stated_edge_cases_hold(spawn) -> None:
    worker = spawn("--threads", "1", "--no-warmup", "--max-frame-mb", "1")
    worker.send_raw((0).to_bytes(4, "big"))  # N = 0
    assert worker.read()["error"]["code"] == "bad_frame"
    worker.send_raw(b"\x00\x00\x00\x02\x81\xa2")  # a map cut short: its id cannot be read
    bad = worker.read()
    assert bad["id"] is None and bad["error"]["code"] == "bad_frame"
    worker.send_raw((2 * 1024 * 1024).to_bytes(4, "big") + bytes(2 * 1024 * 1024))
    big = worker.read()
    assert big["id"] is None and big["error"]["code"] == "frame_too_large"
    for req in ({"id": "seven", "op": "ping"}, {"id": True, "op": "ping"}, {"op": "ping"}):
        worker.send(req)
        reply = worker.read()
        assert reply["id"] == req.get("id") and reply["error"]["code"] == "bad_request", reply
    worker.send({"id": 5})
    assert worker.read()["error"]["code"] == "unknown_op"
    for req_id in (-(2**63), 2**64 - 1):
        worker.send({"id": req_id, "op": "ping", "extra": [1, 2]})  # keys a request does not use are ignored
        reply = worker.read()
        assert reply["id"] == req_id and reply["ok"] is True
    # End of file: every request already written is answered, then exit 0.
    for req_id in (1, 2, 3):
        worker.send({"id": req_id, "op": "ping"})
    worker.proc.stdin.close()  # type: ignore[union-attr]
    assert [worker.read()["id"] for _ in range(3)] == [1, 2, 3]
    assert worker.stdout_eof() and worker.wait() == 0
