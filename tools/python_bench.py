"""The Python package against the binary's engine, per 4K frame: x3 from 1280x720 and x2 from
1920x1080, in rounds that alternate the two (this machine's speed swings minute to minute).

    pip install .            # the package, from the checkout
    python3 tools/python_bench.py target/release/rt4ksr [--rounds 3] [--runs 5] [--onnx x3.onnx x2.onnx]

Each round times `Upscaler(scale)(frame)` on a uint8 H x W x 3 array (what a Pillow or OpenCV
pipeline hands over; the result is uint8 too), the same into a reused array (`out=`, as a
stream of frames would call it) and on float32, then `rt4ksr bench --fast-only
--json` for the same path (float planes in and out: the engine alone). The binding's overhead is
the Python call's median over the engine's, in the same round (with a fresh result array and
into `out=`). With --onnx (models exported by
`rt4ksr export --onnx`, e.g. of the official weights) and onnxruntime installed, ONNX Runtime's
CPU provider is timed in the same round on the same frame, from Python. With PyTorch installed,
an `import torch` baseline is not attempted here: the official model's code is not part of this
repository (see README's speed table for the figures measured with it).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import time

import numpy as np

import rt4ksr

CASES = [(3, 1280, 720), (2, 1920, 1080)]
# The path `precision="auto"` takes, by preference, as `rt4ksr bench` names them.
AUTO_ORDER = ["AMX split bf16", "AVX-512 fp32", "AVX2 fp32", "portable fp32"]


def frame(width, height):
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([(x * 7 + y) % 256, (x + y * 3) % 256, (x * y) % 256], axis=-1)
    return rgb.astype(np.uint8)


def median_ms(f, runs):
    f()  # warm-up: buffers are allocated once per size
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def engine_ms(binary, runs):
    out = subprocess.run(
        [binary, "bench", "--fast-only", "--json", "--runs", str(runs)], check=True, capture_output=True, text=True
    ).stdout
    report = json.loads(out)
    available = [p["path"] for p in report["paths"] if p["available"]]
    path = next(p for p in AUTO_ORDER if p in available)
    found = {}
    for case in report["cases"]:
        if case["path"] == path and case["name"].startswith("fast engine x"):
            scale = int(case["name"].split()[2][1:])
            found[scale] = case["median_ms"]
    return path, found, report["machine"]


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--onnx", nargs=2, metavar=("X3_ONNX", "X2_ONNX"))
    a = p.parse_args()
    sessions = {}
    if a.onnx:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Otherwise ORT's idle pool threads spin on the two cores while the other cases run
        # (measured: the uint8 call 25 % slower with a spinning session in the process).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        for scale, model in zip((3, 2), a.onnx):
            sessions[scale] = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    upscalers = {s: rt4ksr.Upscaler(scale=s) for s, _, _ in CASES}
    frames = {s: frame(w, h) for s, w, h in CASES}
    print(f"CPU: {cpu_name()}, {os.cpu_count()} threads; rt4ksr {rt4ksr.__version__}, precision auto")
    print(
        "round  case                  python u8   u8 out=   python f32   engine   overhead u8   overhead out="
        "   onnxruntime"
    )
    for r in range(a.rounds):
        rows = {}
        for s, w, h in CASES:
            up, u8 = upscalers[s], frames[s]
            f32 = u8.astype(np.float32) / np.float32(255)
            out = up(u8)
            rows[s] = [
                median_ms(lambda: up(u8), a.runs),
                median_ms(lambda: up(u8, out=out), a.runs),
                median_ms(lambda: up(f32), a.runs),
            ]
            if s in sessions:
                planar = np.ascontiguousarray(f32.transpose(2, 0, 1)[None])
                rows[s].append(median_ms(lambda: sessions[s].run(None, {"lr": planar}), a.runs))
        path, engine, _ = engine_ms(a.binary, a.runs)
        for s, w, h in CASES:
            py_u8, py_out, py_f32 = rows[s][:3]
            ort_ms = f"{rows[s][3]:9.1f} ms" if len(rows[s]) > 3 else "        -"
            print(
                f"{r + 1:>5}  x{s} {w}x{h} {path:<12} {py_u8:7.1f} ms  {py_out:6.1f} ms  {py_f32:8.1f} ms"
                f"  {engine[s]:6.1f} ms  {100 * (py_u8 / engine[s] - 1):+9.1f} %  {100 * (py_out / engine[s] - 1):+11.1f} %"
                f"  {ort_ms}"
            )


if __name__ == "__main__":
    main()
