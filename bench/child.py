"""A measuring process for the systems that run inside one Python process.

    python bench/child.py rembg THREADS LANES  # (4) rembg: new_session("u2netp") once, rembg.remove per photo;
                                               #     LANES request threads share the one session
    python bench/child.py floor THREADS LANES  # (6) bare onnxruntime session.run on the preprocessed tensor;
                                               #     LANES sessions of THREADS threads each (one per lane)

Driven by JSON lines on stdin (see bench/systems/inprocess.py). Timings are taken here, around the call
alone: input bytes are already in memory, as they are for the other systems' clients. Peak RSS is this
process's VmHWM, so it holds only what the system itself needs (plus this small driver).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

MODEL = "u2netp"
MEAN = np.asarray((0.485, 0.456, 0.406), dtype=np.float32)
STD = np.asarray((0.229, 0.224, 0.225), dtype=np.float32)


def _vm(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return round(float(line.split()[1]) / 1024, 1)
    return float("nan")


def _weights() -> str:
    """The u2netp file pyworker loads; rembg must resolve the very same one (same model everywhere)."""
    from pyworker.models.store import find_weights

    path = find_weights(MODEL)
    if path is None:
        raise SystemExit(f"{MODEL} weights not found: run `make models`")
    return str(path)


class Rembg:
    """One session for the process, as a server built on rembg holds it; threads share it."""

    def __init__(self, threads: int, lanes: int) -> None:
        from rembg import new_session, remove

        self._remove = remove
        self.session = new_session(MODEL)  # threads: OMP_NUM_THREADS, set by the parent
        mine = str(type(self.session).download_models())
        if Path(mine).resolve() != Path(_weights()).resolve():
            raise SystemExit(f"rembg loads {mine}, pyworker {_weights()}: not the same weights")
        self.data: dict[str, bytes] = {}

    def load(self, files: dict[str, str]) -> None:
        for name, path in files.items():
            with open(path, "rb") as fh:
                self.data[name] = fh.read()

    def call(self, name: str, lane: int = 0) -> None:
        self._remove(self.data[name], session=self.session)


class Floor:
    """onnxruntime's DEFAULT session options (arena and memory pattern on), only the thread count set."""

    def __init__(self, threads: int, lanes: int) -> None:
        self.weights = _weights()
        self.sessions = [self._session(threads) for _ in range(lanes)]
        self.tensors: dict[str, np.ndarray] = {}

    def _session(self, threads: int) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        return ort.InferenceSession(self.weights, sess_options=opts, providers=["CPUExecutionProvider"])

    def load(self, files: dict[str, str]) -> None:
        """Decode and pre-process each photo once (untimed): rembg's normalize, as pyworker's MaskModel."""
        for name, path in files.items():
            img = Image.open(path).convert("RGB").resize((320, 320), Image.Resampling.LANCZOS)
            arr = np.asarray(img, dtype=np.float32)
            arr = (arr / max(float(arr.max()), 1e-6) - MEAN) / STD
            self.tensors[name] = np.ascontiguousarray(arr.transpose(2, 0, 1)[np.newaxis])

    def call(self, name: str, lane: int = 0) -> None:
        sess = self.sessions[lane]
        inp = sess.get_inputs()[0].name
        out = sess.get_outputs()[0].name
        sess.run([out], {inp: self.tensors[name]})


def main() -> int:
    mode, threads, lanes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # pyworker, for its weights lookup
    system: Rembg | Floor = Rembg(threads, lanes) if mode == "rembg" else Floor(threads, lanes)
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        answer: dict[str, Any]
        try:
            if op == "load":
                system.load(cmd["files"])
                answer = {"ok": True}
            elif op == "run":
                t0 = time.perf_counter()
                system.call(cmd["name"])
                answer = {"ms": (time.perf_counter() - t0) * 1000}
            elif op == "batch":
                answer = _batch(system, cmd["names"], int(cmd["concurrency"]))
            elif op == "peak":
                answer = {"peak_rss_mb": _vm("VmHWM"), "rss_mb": _vm("VmRSS")}
            elif op == "quit":
                print(json.dumps({"ok": True}), flush=True)
                return 0
            else:
                answer = {"error": f"unknown op {op}"}
        except Exception as exc:
            answer = {"error": repr(exc)}
        print(json.dumps(answer), flush=True)
    return 0


def _batch(system: Rembg | Floor, names: list[str], concurrency: int) -> dict[str, Any]:
    if isinstance(system, Floor) and concurrency > len(system.sessions):
        raise ValueError(f"{concurrency} lanes asked, {len(system.sessions)} sessions")
    pending = list(reversed(names))
    lock = threading.Lock()
    lat: list[float] = []

    def lane(i: int) -> None:
        while True:
            with lock:
                if not pending:
                    return
                name = pending.pop()
            t0 = time.perf_counter()
            system.call(name, i)
            with lock:
                lat.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as ex:
        list(ex.map(lane, range(concurrency)))
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "lat_ms": lat}


if __name__ == "__main__":
    sys.exit(main())
