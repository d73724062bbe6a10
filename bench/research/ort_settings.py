#!/usr/bin/env python3
"""Memory / latency study of onnxruntime settings for u2netp (pyworker).

Every configuration runs in a FRESH subprocess (so VmHWM is per configuration).
The subprocess imports what the worker imports (numpy, onnxruntime, PIL),
creates one InferenceSession and then serves "jobs" (one session.run on one
realistic 1x3x320x320 tensor: skimage astronaut with rembg's normalisation,
then malloc_trim(0) if the config trims) when the parent tells it to.

Timing is PAIRED: one long-lived baseline process with onnxruntime's DEFAULT
SessionOptions (same threads) runs a job, then the candidate runs a job,
alternately, so both see the same machine noise (the second core is shared).
  ratio = median(candidate job ms incl. trim) / median(baseline session.run ms)
computed over the same interleaved window.

Columns (MiB unless stated):
  idle    RSS after session creation (+ gc + malloc_trim if the config trims)
  peak    VmHWM at the end (whole process, includes load)
  pkInf   peak RSS during the jobs only (VmHWM reset via /proc/self/clear_refs after load)
  job1    RSS after the first job (after its trim)
  steady  RSS after the last job (after its trim)
  ms      median session.run ms;  job = run + trim;  base = baseline run ms, same window
  ratio   median(job)/median(base);  rmin = min(job)/min(base) (least disturbed runs)
  cpu     median process CPU ms per job (both threads; user+sys); sys = kernel part
  kflt    minor page faults per job, thousands (memory handed back and re-faulted)

Usage (from the repo root):
  .venv/bin/python bench/research/ort_settings.py              # table + drift, ~4-5 min
  .venv/bin/python bench/research/ort_settings.py --no-drift   # table only
  .venv/bin/python bench/research/ort_settings.py --only lean,fast --runs 20
  .venv/bin/python bench/research/ort_settings.py --explore    # every config defined here (long)
  .venv/bin/python bench/research/ort_settings.py --iou        # quantised-model mask agreement
Needs: numpy, onnxruntime, pillow, scikit-image (input image); `onnx` only for the quantised model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.expanduser("~/.u2net/u2netp.onnx")
CACHE = os.path.join(HERE, ".cache")  # optimised / quantised models, input tensor
OPT_MODEL = os.path.join(CACHE, "u2netp.opt-all.onnx")
QUANT_MODEL = os.path.join(CACHE, "u2netp.quant-u8.onnx")
INPUT_NPY = os.path.join(CACHE, "astronaut_320.npy")

THP = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}  # glibc >= 2.35: madvise(MADV_HUGEPAGE) heap/mmap
MENV64K = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "131072"}
LEAN_ENV = dict(THP, MALLOC_ARENA_MAX="2", MALLOC_MMAP_THRESHOLD_="1048576")

# Config keys (all optional; missing = onnxruntime default):
#   arena, pattern, reuse (bool)  enable_cpu_mem_arena / enable_mem_pattern / enable_mem_reuse
#   opt    'disable'|'basic'|'extended'|'all'   graph_optimization_level (default 'all')
#   model  'orig'|'opt-all'|'quant'   'opt-all' = file saved with optimized_model_filepath (loaded with opt=disable)
#   intra, inter (int)  spin ('0'|'1')  prepack_off (bool)  order ('DEFAULT'|'PRIORITY_BASED')
#   shrink (bool)    run option memory.enable_memory_arena_shrinkage=cpu:0
#   envarena (dict)  OrtArenaCfg registered as shared env allocator + session.use_env_allocators=1
#   first  (bool)    fetch only output '1959'      trim (bool) malloc_trim(0) after each job
#   env    (dict)    extra environment for the subprocess (malloc tunables must be set before start)
NA = {"arena": False, "first": True, "trim": True}  # common "no arena, 1 output, trim" base
#   mallopt (dict)   glibc mallopt() calls made in-process at start, as pyworker.memory.tune_malloc does:
#                    keys mmap (M_MMAP_THRESHOLD), arena_max (M_ARENA_MAX), trim (M_TRIM_THRESHOLD)
#   initfromdev (bool) session.use_device_allocator_for_initializers=1 (weights outside the arena)
MALLOPT_1M = {"mmap": 1 << 20, "arena_max": 2}
SAME = {"arena_extend_strategy": 1}  # kSameAsRequested: the arena grows by exactly what is asked
SAME_1M = dict(SAME, initial_chunk_size_bytes=1 << 20, initial_growth_chunk_size_bytes=1 << 20)
CONFIGS = {
    # --- reference points
    "default": {},
    "floor": {"first": True},  # the baseline: default options, fetch only the mask output (as bench/run.py)
    "default+first+trim": {"first": True, "trim": True},
    "default+intra1": {"intra": 1},
    "default+spin0": {"spin": "0"},
    "arena+nopat": {"pattern": False, "first": True},
    "arena+nopat+ext": {"pattern": False, "opt": "extended", "first": True},
    # --- arena variants that give memory back
    "arena+shrink": {"shrink": True, "first": True, "trim": True},
    "arena+nopat+shrink": {"pattern": False, "shrink": True, "first": True, "trim": True},
    "envarena-same+shrink": {"envarena": {"arena_extend_strategy": 1}, "shrink": True, "first": True, "trim": True},
    "arena+nopat+shrink+thp": {"pattern": False, "shrink": True, "first": True, "trim": True, "env": THP},
    # --- no arena, plain glibc
    "noarena": dict(NA),
    "noarena+nopat": dict(NA, pattern=False),
    "colleague (noarena+nopat+ext)": {"arena": False, "pattern": False, "opt": "extended", "trim": True},
    "noarena+nopat+basic": dict(NA, pattern=False, opt="basic"),
    "noarena+nopat+menv64K": dict(NA, pattern=False, env=MENV64K),
    "noarena+nopat+noreuse": dict(NA, pattern=False, reuse=False),
    "noarena+nopat+noprepack": dict(NA, pattern=False, prepack_off=True),
    "noarena+nopat+optfile": dict(NA, pattern=False, model="opt-all"),
    "noarena+nopat+spin0": dict(NA, pattern=False, spin="0"),
    "noarena+nopat+prio": dict(NA, pattern=False, order="PRIORITY_BASED"),
    "noarena+nopat+notrim": {"arena": False, "pattern": False, "first": True},
    # --- no arena + transparent huge pages for malloc (cheap re-faulting)
    "noarena+thp": dict(NA, env=THP),
    "noarena+nopat+thp": dict(NA, pattern=False, env=THP),
    "noarena+nopat+thp+menv64K": dict(NA, pattern=False, env=dict(THP, **MENV64K)),
    "noarena+nopat+ext+thp": dict(NA, pattern=False, opt="extended", env=THP),
    "noarena+noreuse+thp+menv64K": dict(NA, reuse=False, env=dict(THP, **MENV64K)),
    "nr+thp": dict(NA, pattern=False, reuse=False, env=THP),
    "nr+thp+mmap64K": dict(NA, pattern=False, reuse=False, env=dict(THP, **MENV64K)),
    "nr+thp+mmap256K": dict(
        NA, pattern=False, reuse=False, env=dict(THP, MALLOC_ARENA_MAX="2", MALLOC_MMAP_THRESHOLD_="262144")
    ),
    "nr+thp+mmap1M": dict(NA, pattern=False, reuse=False, env=LEAN_ENV),
    "nr+thp+mmap4M": dict(
        NA, pattern=False, reuse=False, env=dict(THP, MALLOC_ARENA_MAX="2", MALLOC_MMAP_THRESHOLD_="4194304")
    ),
    "nr+mmap1M (no thp)": dict(
        NA, pattern=False, reuse=False, env={"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "1048576"}
    ),
    "nr+thp+mmap1M+all7": {"arena": False, "pattern": False, "reuse": False, "trim": True, "env": LEAN_ENV},
    "nr+thp+mmap1M+intra1": dict(NA, pattern=False, reuse=False, intra=1, env=LEAN_ENV),
    "nr+thp+mmap1M+spin0": dict(NA, pattern=False, reuse=False, spin="0", env=LEAN_ENV),
    "nr+thp+mmap1M+optfile": dict(NA, pattern=False, reuse=False, model="opt-all", env=LEAN_ENV),
    "nr+thp+heaponly": dict(
        NA,
        pattern=False,
        reuse=False,
        env=dict(THP, MALLOC_ARENA_MAX="2", MALLOC_MMAP_THRESHOLD_="33554432", MALLOC_TRIM_THRESHOLD_="1073741824"),
    ),
    "nr+thp+mmap2M": dict(
        NA, pattern=False, reuse=False, env=dict(THP, MALLOC_ARENA_MAX="2", MALLOC_MMAP_THRESHOLD_="2097152")
    ),
    "nr+thp+mmap1M+trimbig": dict(
        NA, pattern=False, reuse=False, env=dict(LEAN_ENV, MALLOC_TRIM_THRESHOLD_="1073741824")
    ),
    "nr+thp+mmap2M+trimbig": dict(
        NA,
        pattern=False,
        reuse=False,
        env=dict(THP, MALLOC_ARENA_MAX="2", MALLOC_MMAP_THRESHOLD_="2097152", MALLOC_TRIM_THRESHOLD_="1073741824"),
    ),
    "nopat+thp+mmap1M+trimbig": dict(NA, pattern=False, env=dict(LEAN_ENV, MALLOC_TRIM_THRESHOLD_="1073741824")),
    "noreuse+thp+mmap1M+trimbig": dict(NA, reuse=False, env=dict(LEAN_ENV, MALLOC_TRIM_THRESHOLD_="1073741824")),
    "noreuse+thp+mmap64K": dict(NA, reuse=False, env=dict(THP, MALLOC_ARENA_MAX="2", MALLOC_MMAP_THRESHOLD_="65536")),
    # --- arena ON, giving memory back: shrinkage after each run, extend strategy, mallopt
    "arena+shrink+mallopt": {"shrink": True, "first": True, "trim": True, "mallopt": MALLOPT_1M},
    "arena+nopat+shrink+mallopt": {
        "pattern": False,
        "shrink": True,
        "first": True,
        "trim": True,
        "mallopt": MALLOPT_1M,
    },
    "arena+shrink+initdev": {"shrink": True, "first": True, "trim": True, "initfromdev": True},
    "envarena-same1M+shrink": {"envarena": SAME_1M, "shrink": True, "first": True, "trim": True},
    "envarena-same1M+shrink+mallopt": {
        "envarena": SAME_1M,
        "shrink": True,
        "first": True,
        "trim": True,
        "mallopt": MALLOPT_1M,
    },
    "envarena-same1M+nopat+shrink+mallopt": {
        "envarena": SAME_1M,
        "pattern": False,
        "shrink": True,
        "first": True,
        "trim": True,
        "mallopt": MALLOPT_1M,
    },
    "arena+shrink+spin0": {"shrink": True, "first": True, "trim": True, "spin": "0"},
    "arena+shrink+ext": {"shrink": True, "first": True, "trim": True, "opt": "extended"},
    "arena+shrink+basic": {"shrink": True, "first": True, "trim": True, "opt": "basic"},
    # --- no arena, glibc tuned in-process (what the worker can do without touching its environment)
    "noarena+mallopt": dict(NA, mallopt=MALLOPT_1M),
    "noarena+nopat+mallopt": dict(NA, pattern=False, mallopt=MALLOPT_1M),
    "nr+mallopt": dict(NA, pattern=False, reuse=False, mallopt=MALLOPT_1M),
    "nr+mallopt+trimbig": dict(NA, pattern=False, reuse=False, mallopt=dict(MALLOPT_1M, trim=1 << 30)),
    "noarena+nopat+ext+mallopt": dict(NA, pattern=False, opt="extended", mallopt=MALLOPT_1M),
    "noarena+nopat+mallopt+spin0": dict(NA, pattern=False, spin="0", mallopt=MALLOPT_1M),
    "noarena+nopat+mallopt+notrim": {"arena": False, "pattern": False, "first": True, "mallopt": MALLOPT_1M},
    "old lean (noarena+nopat+ext+trim)": {
        "arena": False,
        "pattern": False,
        "opt": "extended",
        "first": True,
        "trim": True,
    },
    # --- the combinations: transparent huge pages + in-process mallopt + no spinning
    "floor+spin0": {"first": True, "spin": "0"},
    "noarena+nopat+thp+mallopt": dict(NA, pattern=False, mallopt=MALLOPT_1M, env=THP),
    "noarena+nopat+thp+mallopt+spin0": dict(NA, pattern=False, spin="0", mallopt=MALLOPT_1M, env=THP),
    "noarena+thp+mallopt+spin0": dict(NA, spin="0", mallopt=MALLOPT_1M, env=THP),
    "nr+thp+mallopt+spin0": dict(NA, pattern=False, reuse=False, spin="0", mallopt=MALLOPT_1M, env=THP),
    "arena+shrink+thp+mallopt+spin0": {
        "shrink": True,
        "first": True,
        "trim": True,
        "spin": "0",
        "mallopt": MALLOPT_1M,
        "env": THP,
    },
    "arena+nopat+shrink+thp+mallopt+spin0": {
        "pattern": False,
        "shrink": True,
        "first": True,
        "trim": True,
        "spin": "0",
        "mallopt": MALLOPT_1M,
        "env": THP,
    },
    "envarena-same+shrink+thp+mallopt+spin0": {
        "envarena": SAME,
        "shrink": True,
        "first": True,
        "trim": True,
        "spin": "0",
        "mallopt": MALLOPT_1M,
        "env": THP,
    },
    # --- quantised weights (needs `onnx` for onnxruntime.quantization)
    "quant nr+thp+mmap1M": dict(NA, pattern=False, reuse=False, model="quant", env=LEAN_ENV),
    "quant arena+nopat": {"pattern": False, "first": True, "model": "quant"},
}
# what pyworker uses (see docs/memory.md): lean = its default, fast = --memory-mode fast (onnxruntime defaults)
CONFIGS["lean"] = CONFIGS["nr+thp+mallopt+spin0"]
CONFIGS["fast"] = {"first": True}

TABLE = [
    "default",
    "fast",
    "arena+nopat",
    "arena+nopat+ext",
    "arena+shrink",
    "arena+shrink+mallopt",
    "arena+nopat+shrink+mallopt",
    "arena+shrink+initdev",
    "envarena-same+shrink",
    "envarena-same1M+shrink+mallopt",
    "envarena-same1M+nopat+shrink+mallopt",
    "arena+shrink+spin0",
    "arena+shrink+ext",
    "arena+shrink+basic",
    "old lean (noarena+nopat+ext+trim)",
    "noarena+nopat",
    "noarena+mallopt",
    "noarena+nopat+mallopt",
    "noarena+nopat+ext+mallopt",
    "noarena+nopat+mallopt+spin0",
    "noarena+nopat+mallopt+notrim",
    "nr+mallopt",
    "nr+thp+mmap1M",
    "default+spin0",
    "quant nr+thp+mmap1M",
]
DRIFT = ["lean"]


# --------------------------------------------------------------------------- child
def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # kB -> MiB
    return float("nan")


def rss():
    return _status("VmRSS")


def hwm():
    return _status("VmHWM")


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def build_session(cfg, ort):
    so = ort.SessionOptions()
    so.intra_op_num_threads = cfg.get("intra", 2)
    if "inter" in cfg:
        so.inter_op_num_threads = cfg["inter"]
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.enable_cpu_mem_arena = cfg.get("arena", True)
    so.enable_mem_pattern = cfg.get("pattern", True)
    so.enable_mem_reuse = cfg.get("reuse", True)
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    kind = cfg.get("model", "orig")
    model = {"orig": MODEL, "opt-all": OPT_MODEL, "quant": QUANT_MODEL}[kind]
    so.graph_optimization_level = levels["disable" if kind == "opt-all" else cfg.get("opt", "all")]
    if "spin" in cfg:
        so.add_session_config_entry("session.intra_op.allow_spinning", cfg["spin"])
        so.add_session_config_entry("session.inter_op.allow_spinning", cfg["spin"])
    if cfg.get("prepack_off"):
        so.add_session_config_entry("session.disable_prepacking", "1")
    if "order" in cfg:
        so.execution_order = getattr(ort.ExecutionOrder, cfg["order"])
    if "save" in cfg:
        so.optimized_model_filepath = cfg["save"]
    if cfg.get("initfromdev"):
        so.add_session_config_entry("session.use_device_allocator_for_initializers", "1")
    if "envarena" in cfg:
        mi = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(mi, ort.OrtArenaCfg(cfg["envarena"]))
        so.add_session_config_entry("session.use_env_allocators", "1")
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


def child(cfg):
    import ctypes
    import gc
    import resource

    libc = ctypes.CDLL("libc.so.6")
    codes = {"trim": -1, "mmap": -3, "arena_max": -8}  # M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX
    for key, value in cfg.get("mallopt", {}).items():  # before onnxruntime starts its threads
        libc.mallopt(codes[key], int(value))

    import numpy as np
    import onnxruntime as ort
    import PIL.Image  # noqa: F401  (the worker imports it)

    def say(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    trim = cfg.get("trim", False)
    out = {"base": rss()}
    x = np.load(INPUT_NPY)
    t0 = time.perf_counter()
    sess = build_session(cfg, ort)
    out["load_s"] = time.perf_counter() - t0
    if "save" in cfg:
        say(out)
        return
    out["idle_raw"] = rss()
    if trim:
        gc.collect()
        libc.malloc_trim(0)
    out["idle"] = rss()
    out["hwm_load"] = hwm()
    reset_hwm()
    names = ["1959"] if cfg.get("first") else None
    ro = ort.RunOptions()
    if cfg.get("shrink"):
        ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    feed = {"input.1": x}
    say(out)
    mask = None
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "run":
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            res = sess.run(names, feed, ro)
            dt = time.perf_counter() - t0
            mask = res[0]
            del res
            if trim:
                libc.malloc_trim(0)
            dj = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            say(
                {
                    "ms": dt * 1000,
                    "job_ms": dj * 1000,
                    "cpu": (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000,
                    "sys": (r1.ru_stime - r0.ru_stime) * 1000,
                    "flt": r1.ru_minflt - r0.ru_minflt,
                    "rss": rss(),
                }
            )
        elif cmd.startswith("mask "):
            np.save(cmd[5:], mask)
            say({})
        elif cmd == "end":
            fin = {"hwm_infer": hwm()}
            libc.malloc_trim(0)
            fin["steady_trim"] = rss()
            say(fin)
            return


# --------------------------------------------------------------------------- parent
class Proc:
    def __init__(self, cfg):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES":
                del env[k]
        env.update(cfg.get("env", {}))
        self.p = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--child", json.dumps(cfg)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.setup = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            err = self.p.stderr.read().strip().splitlines()
            raise RuntimeError(err[-1] if err else "child died")
        return json.loads(line)

    def cmd(self, c):
        self.p.stdin.write(c + "\n")
        self.p.stdin.flush()
        return self._read()

    def end(self):
        fin = self.cmd("end")
        self.p.wait()
        return fin


def prepare(quant=True):
    os.makedirs(CACHE, exist_ok=True)
    if not os.path.exists(INPUT_NPY):
        import numpy as np
        from PIL import Image
        from skimage import data

        np.save(INPUT_NPY, rembg_tensor(Image.fromarray(data.astronaut()), np))
    if not os.path.exists(OPT_MODEL):
        subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", json.dumps({"save": OPT_MODEL})],
            check=True,
            capture_output=True,
        )
    if quant and not os.path.exists(QUANT_MODEL):
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(MODEL, QUANT_MODEL, weight_type=QuantType.QUInt8)
        except Exception as e:  # `onnx` not installed, etc.
            print(f"# quantised model unavailable: {e!r}", file=sys.stderr)


def rembg_tensor(img, np):
    """rembg's u2net preprocessing: RGB, resize 320x320 (LANCZOS), /max, (x-mean)/std, NCHW."""
    from PIL import Image

    a = np.array(img.convert("RGB").resize((320, 320), Image.LANCZOS)).astype(np.float32)
    a = a / max(float(a.max()), 1e-6)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    t = np.zeros((320, 320, 3), np.float32)
    for c in range(3):
        t[:, :, c] = (a[:, :, c] - mean[c]) / std[c]
    return t.transpose(2, 0, 1)[None].astype(np.float32)


def measure(name, cfg, baseline, warmup, runs):
    cand = Proc(dict(cfg))
    rows, base = [], []
    for i in range(warmup + runs):
        # alternate who goes first so neither systematically follows the other
        if i % 2:
            b = baseline.cmd("run")
            c = cand.cmd("run")
        else:
            c = cand.cmd("run")
            b = baseline.cmd("run")
        c["i"] = i
        rows.append(c)
        if i >= warmup:
            base.append(b["ms"])
    fin = cand.end()
    timed = rows[warmup:]
    m = lambda k: statistics.median(r[k] for r in timed)  # noqa: E731
    s = cand.setup
    return {
        "name": name,
        "idle": s["idle"],
        "base": s["base"],
        "hwm_load": s["hwm_load"],
        "load_s": s["load_s"],
        "peak": max(s["hwm_load"], fin["hwm_infer"]),
        "pk_inf": fin["hwm_infer"],
        "job1": rows[0]["rss"],
        "steady": rows[-1]["rss"],
        "steady_trim": fin["steady_trim"],
        "ms": m("ms"),
        "job_ms": m("job_ms"),
        "cpu": m("cpu"),
        "sys": m("sys"),
        "flt": m("flt"),
        "base_ms": statistics.median(base),
        "ratio": m("job_ms") / statistics.median(base),
        "ratio_min": min(r["job_ms"] for r in timed) / min(base),
        "rss_series": [r["rss"] for r in rows],
    }


def fmt_row(r):
    return (
        f"| {r['name']} | {r['idle']:.0f} | {r['peak']:.0f} | {r['pk_inf']:.0f} | {r['job1']:.0f} | "
        f"{r['steady']:.0f} | {r['ms']:.0f} | {r['job_ms']:.0f} | {r['base_ms']:.0f} | **{r['ratio']:.2f}** | "
        f"{r['ratio_min']:.2f} | "
        f"{r['cpu']:.0f} | {r['sys']:.0f} | {r['flt'] / 1000:.1f} |"
    )


HEADER = (
    "| config | idle | peak | pkInf | job1 | steady | ms | job | base | ratio | rmin | cpu | sys | kflt |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def iou_check():
    """Mask agreement of the quantised model vs fp32 on a few real-looking inputs."""
    import numpy as np
    import onnxruntime as ort
    from PIL import Image
    from skimage import data

    prepare(quant=True)
    imgs = {
        "astronaut": data.astronaut(),
        "coffee": data.coffee(),
        "chelsea": data.chelsea(),
        "rocket": data.rocket(),
        "hubble": data.hubble_deep_field(),
    }
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    s32 = ort.InferenceSession(MODEL, so, providers=["CPUExecutionProvider"])
    s8 = ort.InferenceSession(QUANT_MODEL, so, providers=["CPUExecutionProvider"])
    for n, a in imgs.items():
        x = rembg_tensor(Image.fromarray(a), np)
        m32 = s32.run(["1959"], {"input.1": x})[0][0, 0]
        m8 = s8.run(["1959"], {"input.1": x})[0][0, 0]
        # rembg normalises the mask by its min/max before use
        norm = lambda m: (m - m.min()) / max(m.max() - m.min(), 1e-6)  # noqa: E731
        b32, b8 = norm(m32) > 0.5, norm(m8) > 0.5
        union = np.logical_or(b32, b8).sum()
        iou = np.logical_and(b32, b8).sum() / union if union else 1.0
        print(
            f"{n:10s} IoU(mask>0.5) = {iou:.4f}   max|diff| = {np.abs(norm(m32) - norm(m8)).max():.3f}   "
            f"fg fraction fp32 {b32.mean():.3f} quant {b8.mean():.3f}"
        )


def _thp():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().strip()
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--only", help="comma-separated config names")
    ap.add_argument("--explore", action="store_true", help="every config in CONFIGS")
    ap.add_argument("--rounds", type=int, default=1, help="repeat each config (fresh process) N times")
    ap.add_argument("--runs", type=int, default=12, help="timed jobs per config (after --warmup)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--drift", type=int, default=200, help="jobs for the drift check of DRIFT configs")
    ap.add_argument("--no-drift", action="store_true")
    ap.add_argument("--drift-configs", default=",".join(DRIFT), help="comma-separated config names")
    ap.add_argument("--iou", action="store_true")
    ap.add_argument("--json", help="write raw results here")
    a = ap.parse_args()
    if a.child:
        child(json.loads(a.child))
        return
    if a.iou:
        iou_check()
        return
    prepare()
    names = a.only.split(",") if a.only else (list(CONFIGS) if a.explore else TABLE)
    if not os.path.exists(QUANT_MODEL):
        names = [n for n in names if CONFIGS[n].get("model") != "quant"]
    import onnxruntime

    print(
        f"onnxruntime {onnxruntime.__version__}, {os.cpu_count()} cpus, "
        f"{a.runs} paired jobs after {a.warmup} warm-ups, THP {_thp()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(HEADER)
    t_start = time.time()
    baseline = Proc(dict(CONFIGS["floor"]))
    results = []
    for r in range(a.rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            try:
                res = measure(n, CONFIGS[n], baseline, a.warmup, a.runs)
            except RuntimeError as e:
                print(f"| {n} | ERROR {e} |")
                continue
            results.append(res)
            if a.rounds == 1:
                print(fmt_row(res), flush=True)
    baseline.end()
    if a.rounds > 1:
        print(f"(medians over {a.rounds} rounds)")
        for n in names:
            rs = [r for r in results if r["name"] == n]
            if rs:
                print(
                    fmt_row(
                        {
                            k: (statistics.median(r[k] for r in rs) if k != "name" and k != "rss_series" else rs[0][k])
                            for k in rs[0]
                        }
                    )
                )
    if not a.no_drift:
        print(f"\nDrift over {a.drift} jobs (unpaired; RSS after each job, after its trim):")
        for n in a.drift_configs.split(","):
            p = Proc(dict(CONFIGS[n]))
            s = [p.cmd("run")["rss"] for _ in range(a.drift)]
            fin = p.end()
            print(
                f"  {n}: job1 {s[0]:.1f}  job{len(s)} {s[-1]:.1f}  max {max(s):.1f}  min {min(s):.1f}  "
                f"drift {s[-1] - s[0]:+.1f} MiB  peak(VmHWM) {max(p.setup['hwm_load'], fin['hwm_infer']):.0f} MiB"
            )
            results.append({"name": "drift:" + n, "rss_series": s})
    print(f"total {time.time() - t_start:.0f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
