"""onnxruntime session settings, the same in both memory modes (lean, the default, and fast).

The figures behind these choices, and how they were measured, are in docs/memory.md.
"""

from __future__ import annotations

import onnxruntime as ort


def session_options(threads: int) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # warnings from onnxruntime would land on stderr as non-JSON
    # Both modes run the same session; they differ only in what glibc does with the freed activations
    # (pyworker.memory: lean hands them back after every job, fast keeps them until the worker is idle).
    # No CPU arena: it keeps every activation buffer it ever allocated (~270 MB after one u2netp run).
    # Without it, each buffer is a plain malloc that pyworker.memory places and gives back.
    opts.enable_cpu_mem_arena = False
    # No memory pattern: it pre-plans one big block per input shape and keeps it.
    opts.enable_mem_pattern = False
    # No buffer reuse plan: each activation is freed after its last use instead of being held for a
    # later node of the same size; the run's peak drops from ~310 MB to ~190 MB, for 10-25% more time.
    opts.enable_mem_reuse = False
    # ALL (onnxruntime's default) stays: its NCHWc layout rewrite is faster than EXTENDED/BASIC here.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Pool threads sleep between work items instead of spinning: on a small shared box a spinning
    # thread steals the core the other worker thread (or the next process) needs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # No per-run options: with no arena there is nothing to shrink (arena shrinkage was measured and
    # rejected, see docs/memory.md).
    return opts
