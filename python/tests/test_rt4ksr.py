"""Tests of the rt4ksr Python package against the rt4ksr binary (RT4KSR_BIN, default
target/release/rt4ksr of this checkout)."""

import json
import os
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import rt4ksr

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("RT4KSR_BIN", ROOT / "target" / "release" / "rt4ksr"))

# PNG colour types by channel count: grey, grey+alpha, RGB, RGBA.
COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


def write_png(path, array):
    """A PNG of an H x W or H x W x C uint8/uint16 array (no filter), as a test fixture."""
    a = array if array.ndim == 3 else array[:, :, None]
    h, w, c = a.shape
    depth = 16 if a.dtype == np.uint16 else 8
    rows = a.astype(">u2" if depth == 16 else "u1").reshape(h, -1).view(np.uint8)
    raw = b"".join(b"\0" + rows[y].tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, depth, COLOR_TYPES[c], 0, 0, 0)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def read_png(path):
    """The samples of a non-interlaced PNG (any filter), as written by the binary: H x W x C."""
    data = Path(path).read_bytes()
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert interlace == 0
    c = {v: k for k, v in COLOR_TYPES.items()}[color_type]
    bpp = c * depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    out = np.zeros((h, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, dtype=np.int32)
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b = prev[x]
            cc = prev[x - bpp] if x >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
            cur[x] = (line[x] + pred) & 0xFF
        out[y] = cur
        prev = cur
    samples = out.astype(np.uint8)
    if depth == 16:
        samples = samples.reshape(h, -1).view(">u2").astype(np.uint16)
    return samples.reshape(h, w, c)


def binary_upscale(tmp_path, array, scale, name="in.png"):
    """What `rt4ksr upscale` writes for `array` saved as a PNG."""
    src, dst = tmp_path / name, tmp_path / ("out_" + name)
    write_png(src, array)
    subprocess.run([str(BIN), "upscale", str(src), "-o", str(dst), "-s", str(scale)], check=True)
    return read_png(dst), src, dst


def test_image(h=24, w=30, c=3, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    top = 65535 if dtype == np.uint16 else 255
    # Smooth content with some noise, so the network has edges and texture to work on.
    y, x = np.mgrid[0:h, 0:w]
    base = (np.sin(x / 3.0)[..., None] + np.cos(y / 4.0)[..., None] + np.arange(c) / c) / 3 + 0.5
    noisy = np.clip(base + rng.normal(0, 0.08, (h, w, c)), 0, 1)
    return (noisy * top).round().astype(dtype)


test_image.__test__ = False


@pytest.fixture(scope="module")
def up2():
    return rt4ksr.Upscaler(scale=2)


@pytest.mark.parametrize(
    "channels,dtype",
    [(3, np.uint8), (3, np.uint16), (1, np.uint8), (4, np.uint8), (2, np.uint16)],
    ids=["rgb8", "rgb16", "grey8", "rgba8", "grey-alpha16"],
)
def test_arrays_give_the_bytes_the_binary_writes(tmp_path, up2, channels, dtype):
    image = test_image(c=channels, dtype=dtype)
    want, _, _ = binary_upscale(tmp_path, image, 2)
    got = up2(image)
    assert got.dtype == dtype and got.shape == (48, 60, channels)
    np.testing.assert_array_equal(got, want)


def test_two_dimensional_grey_stays_two_dimensional(tmp_path, up2):
    image = test_image(c=1)[..., 0]
    want, _, _ = binary_upscale(tmp_path, image, 2)
    got = up2(image)
    assert got.shape == (48, 60)
    np.testing.assert_array_equal(got, want[..., 0])


def test_x3_and_odd_sides(tmp_path):
    up3 = rt4ksr.Upscaler(scale=3)
    image = test_image(h=21, w=17)
    want, _, _ = binary_upscale(tmp_path, image, 3)
    got = up3(image)
    assert got.shape == (63, 51, 3) and up3.scale == 3
    np.testing.assert_array_equal(got, want)


def test_strided_views_equal_their_contiguous_copies(up2):
    image = test_image(h=30, w=36)
    for view in (image[:, ::-1], image[::2, 3:], image[..., ::-1], np.asfortranarray(image)):
        np.testing.assert_array_equal(up2(view), up2(np.ascontiguousarray(view)))


def test_float_input_is_the_same_network_output_unrounded(up2):
    image = test_image()
    as_float = image.astype(np.float32) / np.float32(255)
    got = up2(as_float)
    assert got.dtype == np.float32 and got.min() >= 0 and got.max() <= 1
    rounded = np.floor(got * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    np.testing.assert_array_equal(rounded, up2(image))


def test_large_inputs_are_tiled_with_the_same_result():
    # As tests/tiling.rs: tiles equal the whole frame up to fp32 summation order.
    image = test_image(h=200, w=180).astype(np.float32) / np.float32(255)
    small_memory = rt4ksr.Upscaler(scale=2, precision="fp32", max_memory=1 << 20)
    whole = rt4ksr.Upscaler(scale=2, precision="fp32")
    np.testing.assert_allclose(small_memory(image), whole(image), atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (3, np.uint16), (0, np.uint8), (4, np.float32)])
def test_out_receives_the_result(up2, channels, dtype):
    def image(seed):
        # channels 0: a two-dimensional grey image; float32 in 0..1.
        a = test_image(c=max(channels, 1), dtype=np.uint16 if dtype == np.float32 else dtype, seed=seed)
        a = a[..., 0] if channels == 0 else a
        return (a / np.float32(65535)).astype(np.float32) if dtype == np.float32 else a

    want = up2(image(3))
    out = np.full(want.shape, 7, dtype=dtype)
    got = up2(image(3), out=out)
    assert got is out
    assert np.array_equal(out, want)
    # The same buffer again, for the next frame: every sample rewritten.
    assert np.array_equal(up2(image(4), out=out), up2(image(4)))


def test_a_wrong_out_is_a_value_error(up2):
    image = test_image()
    h, w = 2 * image.shape[0], 2 * image.shape[1]
    with pytest.raises(ValueError, match=r"out must be a C-contiguous, writeable uint8 array of shape \[48, 60, 3\]"):
        up2(image, out=np.zeros((h, w + 1, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8 array of shape.*not a float32 array"):
        up2(image, out=np.zeros((h, w, 3), np.float32))
    with pytest.raises(ValueError, match="non-contiguous"):
        up2(image, out=np.zeros((h, 2 * w, 3), np.uint8)[:, ::2])
    frozen = np.zeros((h, w, 3), np.uint8)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        up2(image, out=frozen)
    with pytest.raises(ValueError, match="not list"):
        up2(image, out=[0] * 3)


def test_bad_input_raises_clear_exceptions(tmp_path, up2):
    with pytest.raises(ValueError, match="shape"):
        up2(np.zeros((8, 8, 5), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        up2(np.zeros((8,), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        up2(np.zeros((0, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="dtype int32"):
        up2(np.zeros((8, 8, 3), np.int32))
    with pytest.raises(TypeError, match="NumPy array"):
        up2([[1, 2], [3, 4]])
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        rt4ksr.Upscaler(weights=tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a weight file at all")
    with pytest.raises(rt4ksr.WeightsError, match="bad.safetensors"):
        rt4ksr.Upscaler(weights=bad)
    with pytest.raises(ValueError, match="precision"):
        rt4ksr.Upscaler(precision="fp64")
    with pytest.raises(ValueError, match="device"):
        rt4ksr.Upscaler(device="tpu")
    with pytest.raises(ValueError, match="no embedded model for x5"):
        rt4ksr.Upscaler(scale=5)
    with pytest.raises(ValueError, match="fp16 runs on a GPU"):
        rt4ksr.Upscaler(scale=2, precision="fp16", device="cpu")


def test_upscale_file_writes_what_the_binary_writes(tmp_path, up2):
    image = test_image(c=4)
    _, src, binary_out = binary_upscale(tmp_path, image, 2)
    dst = tmp_path / "sub" / "py.png"
    up2.upscale_file(src, dst)
    assert dst.read_bytes() == binary_out.read_bytes()
    with pytest.raises(FileExistsError, match="py.png"):
        up2.upscale_file(src, dst)
    up2.upscale_file(str(src), str(dst), overwrite=True)
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        up2.upscale_file(tmp_path / "nothing.png", tmp_path / "x.png")
    not_image = tmp_path / "text.png"
    not_image.write_text("hello")
    with pytest.raises(ValueError, match="text.png"):
        up2.upscale_file(not_image, tmp_path / "y.png")
    assert not (tmp_path / "y.png").exists()
    with pytest.raises(ValueError, match="format"):
        up2.upscale_file(src, tmp_path / "z.gif", format="gif")


def test_the_gil_is_released_while_a_frame_computes(up2):
    image = test_image(h=720, w=960)
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    thread = threading.Thread(target=count)
    thread.start()
    time.sleep(0.02)
    start = time.perf_counter()
    up2(image)
    end = time.perf_counter()
    stop.set()
    thread.join()
    margin = (end - start) * 0.1
    during = [t for t in ticks if start + margin < t < end - margin]
    # Holding the GIL would leave no tick inside the call; released, the counter keeps going.
    assert len(during) >= 5, f"{len(during)} ticks in a {end - start:.3f} s call"


def test_frames_keep_their_order_and_dtype(up2):
    frames = [test_image(seed=i) for i in range(6)]
    frames[3] = frames[3].astype(np.float32) / np.float32(255)
    results = list(up2.frames(iter(frames)))
    assert len(results) == 6
    for frame, result in zip(frames, results):
        assert result.dtype == frame.dtype
        np.testing.assert_array_equal(result, up2(frame))


def test_frames_pass_on_errors(up2):
    def failing():
        yield test_image()
        raise KeyError("source broke")

    stream = up2.frames(failing())
    assert next(stream).shape == (48, 60, 3)
    with pytest.raises(KeyError, match="source broke"):
        next(stream)
    with pytest.raises(ValueError, match="size"):
        list(up2.frames([test_image(), test_image(h=10, w=10)]))
    with pytest.raises(ValueError, match="3 \\(RGB\\)"):
        list(up2.frames([test_image(c=4)]))
    assert list(up2.frames([])) == []


def test_evaluate_matches_the_binary(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(2):
        write_png(folder / f"img{i}.png", test_image(h=60, w=72, seed=i))
    got = rt4ksr.evaluate(folder, 2)
    out = subprocess.run(
        [str(BIN), "eval", "--data", str(folder), "-s", "2", "--json"], check=True, capture_output=True, text=True
    ).stdout
    want = json.loads(out)
    assert [i["name"] for i in got["images"]] == ["img0", "img1"]
    for key in ("images", "mean_bicubic", "mean_model", "scale", "crop_border"):
        assert got[key] == want[key]
    assert rt4ksr.evaluate(folder, 2, bicubic_only=True)["mean_model"] is None
    with pytest.raises(FileNotFoundError):
        rt4ksr.evaluate(tmp_path / "nowhere", 2)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image files"):
        rt4ksr.evaluate(empty, 2)
