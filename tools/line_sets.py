"""Makes two small sets of thin lines, one horizontal and one vertical (issue 23): a model that
measures differently on them is not symmetric under transposition (`rt4ksr convert --transpose`
turns it; docs/training.md, "The network's orientation").

    pip install pillow
    python3 tools/line_sets.py [--out data/generated]
    rt4ksr eval --data data/generated/lines-horizontal -s 3 --weights MODEL
    rt4ksr eval --data data/generated/lines-vertical -s 3 --weights MODEL

Each set: 4 images, 480x360 (vertical: 360x480, the same images turned), lines 1, 1.25, 1.5 and
2 pixels wide at every quarter-pixel offset to the pixel grid, drawn at 4x and box-filtered down
as a renderer's antialiasing does: light grey on dark brown, dark grey on near white, and the
same two with the lines twice as far apart. Deterministic; nothing random.
"""

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

SUPERSAMPLE = 4
COLOURS = [((47, 31, 7), (162, 158, 152)), ((240, 240, 240), (30, 30, 30))]


def lines(width, height, background, ink, pitch):
    """Horizontal lines every `pitch` pixels, their width and offset cycling."""
    big = Image.new("RGB", (width * SUPERSAMPLE, height * SUPERSAMPLE), background)
    draw = ImageDraw.Draw(big)
    y, k = pitch, 0
    while y < height - pitch:
        thickness = [4, 5, 6, 8][k % 4]
        top = y * SUPERSAMPLE + k % 12
        draw.rectangle([0, top, big.width - 1, top + thickness - 1], fill=ink)
        y, k = y + pitch, k + 1
    return big.resize((width, height), Image.Resampling.BOX)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="data/generated")
    args = p.parse_args()
    horizontal = Path(args.out) / "lines-horizontal"
    vertical = Path(args.out) / "lines-vertical"
    horizontal.mkdir(parents=True, exist_ok=True)
    vertical.mkdir(parents=True, exist_ok=True)
    for i, ((background, ink), pitch) in enumerate((c, p) for p in (12, 24) for c in COLOURS):
        img = lines(480, 360, background, ink, pitch)
        img.save(horizontal / f"lines_{i:03d}.png")
        img.transpose(Image.Transpose.TRANSPOSE).save(vertical / f"lines_{i:03d}.png")


if __name__ == "__main__":
    main()
