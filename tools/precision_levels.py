"""How far the bf16 (AMX) path's 8-bit output is from fp32's, sample by sample: for each scale,
the share of samples that differ, that differ by more than one level, and the largest difference,
over every image of the sets given (the embedded models, or `--weights-dir` holding
rt4ksr_xS.pth).

    python3 tools/precision_levels.py target/release/rt4ksr ../shared/data/set5 ../shared/data/set14

Standard library only: the images are written as BMP, whose pixel rows are read as they are.
"""

import argparse
import struct
import subprocess
import tempfile
from pathlib import Path


def bmp_pixels(path):
    data = Path(path).read_bytes()
    (offset,) = struct.unpack_from("<I", data, 10)
    return data[offset:]


def upscale(binary, image, scale, precision, out, weights):
    cmd = [binary, "upscale", str(image), "-o", str(out), "-s", str(scale), "--precision", precision, "--overwrite"]
    if weights:
        cmd += ["--weights", weights]
    subprocess.run(cmd, check=True, capture_output=True)
    return bmp_pixels(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binary")
    p.add_argument("sets", nargs="+", help="folders of PNG images")
    p.add_argument("--scales", default="2,3")
    p.add_argument("--weights-dir", help="a folder of rt4ksr_x2.pth, rt4ksr_x3.pth (default: embedded)")
    args = p.parse_args()
    images = sorted(i for s in args.sets for i in Path(s).glob("*.png"))
    print("| scale | samples | differ | differ by > 1 level | largest |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for scale in map(int, args.scales.split(",")):
            weights = str(Path(args.weights_dir) / f"rt4ksr_x{scale}.pth") if args.weights_dir else None
            counts = [0] * 256
            for image in images:
                a = upscale(args.binary, image, scale, "fp32", Path(tmp) / "fp32.bmp", weights)
                b = upscale(args.binary, image, scale, "bf16", Path(tmp) / "bf16.bmp", weights)
                assert len(a) == len(b)
                for x, y in zip(a, b):
                    counts[abs(x - y)] += 1
            total = sum(counts)
            largest = max(d for d, n in enumerate(counts) if n)
            differ = 100 * (total - counts[0]) / total
            beyond = 100 * sum(counts[2:]) / total
            print(f"| x{scale} | {total} | {differ:.2f} % | {beyond:.3f} % | {largest} |")


if __name__ == "__main__":
    main()
