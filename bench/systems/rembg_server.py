"""(5) rembg's own HTTP server, `rembg s --no-ui` (FastAPI + uvicorn), called over loopback.

--no-ui skips the Gradio web UI (and its import); the /api/remove endpoint is the same. Each request is a
multipart POST of file= and model=u2netp on a keep-alive connection; one connection per in-flight request.
"""

from __future__ import annotations

import functools
import http.client
import os
import subprocess
import time
import uuid
from pathlib import Path

from ..common import MODEL, OUT, REPO, Batch, Run, free_port, run_batch, tree_peak_rss_mb
from ..inputs import Input
from . import System


def _multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    b = uuid.uuid4().hex
    body = (
        f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body += data
    body += f'\r\n--{b}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{MODEL}\r\n--{b}--\r\n'.encode()
    return body, f"multipart/form-data; boundary={b}"


class RembgServer(System):
    def __init__(self, key: str, label: str, threads: int) -> None:
        self.key, self.label = key, label
        self.threads = threads
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.data: dict[str, bytes] = {}
        self._conns: list[http.client.HTTPConnection] = []

    def start(self, inputs: list[Input]) -> None:
        self.data = {i.name: i.path.read_bytes() for i in inputs}
        self.port = free_port()
        rembg = Path(REPO / ".venv" / "bin" / "rembg")
        argv = [str(rembg) if rembg.exists() else "rembg", "s", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--no-ui", "--log_level", "warning"]
        OUT.mkdir(parents=True, exist_ok=True)
        self._log = open(OUT / f"{self.key}.log", "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads)}
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=self._log, env=env, cwd=REPO)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rembg s exited {self.proc.returncode}; see {self._log.name}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/api")
                c.getresponse().read()
                c.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self._conns = [self._connect()]

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def _post(self, conn: http.client.HTTPConnection, inp: Input) -> float:
        body, ctype = _multipart(self.data[inp.name], inp.name)
        for attempt in range(2):
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/api/remove", body=body, headers={"Content-Type": ctype})
                resp = conn.getresponse()
                out = resp.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected):
                # uvicorn closes a keep-alive connection idle for 5 s (while the other systems ran): reconnect
                conn.close()
                if attempt:
                    raise
        ms = (time.perf_counter() - t0) * 1000
        if resp.status != 200 or not out.startswith(b"\x89PNG"):
            raise RuntimeError(f"rembg s: HTTP {resp.status} on {inp.name}: {out[:200]!r}")
        return ms

    def run(self, inp: Input) -> Run:
        return Run(self._post(self._conns[0], inp))

    def batch(self, inputs: list[Input], concurrency: int) -> Batch:
        while len(self._conns) < concurrency:
            self._conns.append(self._connect())
        return run_batch(inputs, [functools.partial(self._post, c) for c in self._conns[:concurrency]])

    def peak_rss(self) -> dict[str, float]:
        assert self.proc is not None
        peaks = tree_peak_rss_mb(self.proc.pid)
        return {("server" if pid == str(self.proc.pid) else f"child{pid}"): mb for pid, mb in peaks.items()}

    def stop(self) -> None:
        for c in self._conns:
            c.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._log.close()
        self.proc = None
