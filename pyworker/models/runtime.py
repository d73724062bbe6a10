"""onnxruntime session settings: the lean default and the fast, hungrier mode.

The figures behind these choices are in docs/memory.md.
"""

from __future__ import annotations

import onnxruntime as ort

MEMORY_MODES = ("lean", "fast")


def session_options(threads: int, mode: str = "lean") -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # warnings from onnxruntime would land on stderr as non-JSON
    if mode == "lean":
        # The CPU arena keeps every activation buffer it ever allocated; the
        # memory pattern pre-plans one big block per input shape. Both trade
        # hundreds of MB held forever for a few percent of speed.
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    elif mode != "fast":
        raise ValueError(f"memory mode must be one of {MEMORY_MODES}, not {mode!r}")
    return opts


def run_options(mode: str = "lean") -> ort.RunOptions | None:
    return None
