"""A child process driven by JSON lines on stdin/stdout (bench/node_client.js and bench/child.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ..common import OUT


class JsonLinesChild:
    def __init__(self, argv: list[str], log_name: str, env: dict[str, str] | None = None, cwd: Path | None = None):
        OUT.mkdir(parents=True, exist_ok=True)
        self._log = open(OUT / f"{log_name}.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env, cwd=cwd, text=True
        )

    def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.proc.args[:3]} exited ({self.proc.wait()}); see {self._log.name}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.proc.args[:3]}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call(op="quit")
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
