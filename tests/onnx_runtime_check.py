"""Runs an exported model with ONNX Runtime for tests/onnx_export.rs.

usage: onnx_runtime_check.py MODEL.onnx INPUT.f32 N C H W OUTPUT.f32
Input and output are raw little-endian float32 arrays in NCHW order. Exit code 3 when
onnxruntime or numpy is not installed (the test then says it skipped).
"""
import sys

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:
    print(f"missing: {e}", file=sys.stderr)
    sys.exit(3)

model, src, n, c, h, w, dst = sys.argv[1:8]
x = np.fromfile(src, dtype="<f4").reshape(int(n), int(c), int(h), int(w))
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
(y,) = session.run(None, {session.get_inputs()[0].name: x})
y.astype("<f4").tofile(dst)
print(f"onnxruntime {ort.__version__}: {x.shape} -> {y.shape}", file=sys.stderr)
