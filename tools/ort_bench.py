"""ONNX Runtime baseline for `rt4ksr bench`: times an exported model on one 720p (x3) or
1080p (x2) frame with the CPU execution provider, as `rt4ksr bench` times the fast engine.

    rt4ksr export --onnx x3.onnx --weights rt4ksr_x3.pth
    python3 tools/ort_bench.py x3.onnx 1280 720 [--runs 7] [--threads 2]

Prints the median, min and max ms per frame (after one warm-up run).
"""
import argparse, statistics, time

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("width", type=int)
p.add_argument("height", type=int)
p.add_argument("--runs", type=int, default=7)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
options = ort.SessionOptions()
options.intra_op_num_threads = a.threads
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
x = (np.arange(3 * a.height * a.width, dtype=np.float32) % 255 / 255).reshape(1, 3, a.height, a.width)
session.run(None, {"lr": x})
times = []
for _ in range(a.runs):
    t = time.perf_counter()
    session.run(None, {"lr": x})
    times.append((time.perf_counter() - t) * 1e3)
print(f"onnxruntime {ort.__version__} {a.model} {a.width}x{a.height}: median {statistics.median(times):.1f} ms, "
      f"min {min(times):.1f}, max {max(times):.1f} ({a.threads} threads, {a.runs} runs)")
