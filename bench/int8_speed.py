"""Issue 20's speed figures: each model's `timings_ms.run` in a worker at default flags, by name, against the
bare FP32 onnxruntime floor on the same tensor.

For u2netp and modnet, on one photo (the reference 800x800 JPEG), interleaved run by run so that noise on this
shared machine lands on every system alike:
- the floor: onnxruntime's DEFAULT session options (arena, memory pattern), the FP32 file, the tensor pyworker's
  own preprocess makes (modnet: 512x512 for a square photo), the bench's thread count;
- the same floor on the INT8 file (what INT8 costs without lean's page faults);
- a fresh worker at default flags asked for the plain name (what a request runs by default: `meta.precision`
  says FP32 or INT8) and one asked for NAME-int8, each its own process (one model each, as `--max-models 1`).

Medians of `meta.timings_ms.run` (the worker's session.run alone) and of the floors' session.run.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PIL import Image

from .common import median
from .inputs import Input
from .systems.pyworker_proto import Worker

MODELS = ("u2netp", "modnet")
QUIET_GAP_S = 0.1  # as bench/run.py: the floor's spinning pool threads settle before the next system runs


class _Floor:
    """A bare session with onnxruntime's default options but the thread count, on one fixed tensor."""

    def __init__(self, weights: str, tensor: np.ndarray, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(weights, sess_options=opts, providers=["CPUExecutionProvider"])
        self.feed = {self.session.get_inputs()[0].name: tensor}
        self.out = [self.session.get_outputs()[0].name]

    def run(self) -> float:
        t0 = time.perf_counter()
        self.session.run(self.out, self.feed)
        return (time.perf_counter() - t0) * 1000


def _tensor(name: str, inp: Input) -> np.ndarray:
    """The input pyworker's own preprocess feeds `name` for this photo (a lean 1-thread session, then dropped)."""
    from pyworker.models.registry import MODELS as CLASSES
    from pyworker.models.store import find_weights

    model = CLASSES[name](find_weights(name), threads=1)
    with Image.open(inp.path) as im:
        tensor = np.array(model.preprocess(im.convert("RGB")), dtype=np.float32, copy=True)
    del model
    return tensor


def model_speed(inp: Input, threads: int, runs: int = 9) -> dict[str, Any]:
    """{model: figures} for u2netp and modnet on `inp`; an entry holds "error" when a file is missing."""
    from pyworker.models.registry import INT8
    from pyworker.models.store import find_weights

    out: dict[str, Any] = {}
    data = inp.path.read_bytes()
    for name in MODELS:
        fp32, int8 = find_weights(name), find_weights(INT8[name].name)
        if fp32 is None or int8 is None:
            out[name] = {"error": f"{name} or its INT8 file is not installed (make setup)"}
            continue
        tensor = _tensor(name, inp)
        floors = {"floor_fp32": _Floor(str(fp32), tensor, threads), "floor_int8": _Floor(str(int8), tensor, threads)}
        workers = {"default": Worker(threads, log_name="int8_speed"), "int8": Worker(threads, log_name="int8_speed")}
        asks = {"default": {"model": name}, "int8": {"model": f"{name}-int8"}}
        ms: dict[str, list[float]] = {k: [] for k in (*floors, *workers)}
        client: dict[str, list[float]] = {k: [] for k in workers}
        precision: dict[str, str] = {}
        try:
            for key, w in workers.items():  # warm-up: loads the session
                w.timed_remove(data, asks[key])
            for f in floors.values():
                f.run()
            systems = [*floors, *workers]
            for k in range(runs):
                for key in systems[k % len(systems) :] + systems[: k % len(systems)]:
                    time.sleep(QUIET_GAP_S)
                    if key in floors:
                        ms[key].append(floors[key].run())
                        continue
                    c, reply = workers[key].timed_remove(data, asks[key])
                    ms[key].append(reply["meta"]["timings_ms"]["run"])
                    client[key].append(c)
                    precision[key] = reply["meta"]["precision"]
        finally:
            for w in workers.values():
                w.close()
            del floors
        med = {k: round(median(v), 1) for k, v in ms.items()}
        out[name] = {
            "input": inp.name,
            "tensor": list(tensor.shape),
            "runs": runs,
            "run_ms": med,
            "client_ms": {k: round(median(v), 1) for k, v in client.items()},
            "default_precision": precision.get("default"),
            "ratio_default": round(med["default"] / med["floor_fp32"], 3),
            "ratio_int8": round(med["int8"] / med["floor_fp32"], 3),
            "ratio_int8_floor": round(med["floor_int8"] / med["floor_fp32"], 3),
        }
    return out
