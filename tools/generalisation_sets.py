"""Makes the training and validation images for content unlike the classic training photos
(issue 23): a split of ../shared/data/extra, and synthetic images whose ground truth is known
exactly (rendered text, flat-colour vector drawings and line art, geometric patterns, UI-like
screens), each drawn at 4x and box-filtered down, as a renderer's antialiasing does.

    pip install pillow numpy
    python3 tools/generalisation_sets.py [--shared ../shared] [--out data/generated]

Writes, deterministically (fixed seeds; the text uses Pillow's bundled font, so the images
depend only on the Pillow version, and the video sets on ffmpeg's libx264):
    OUT/extra-train/   most of extra/: cq100 as it is, the JPEG photos reduced by an integer
                       factor to at most 1024 px (the box filter removes their 4:2:0 chroma and
                       block artefacts)
    OUT/extra-val/     the rest of extra/: every 4th cq100 image, 3 of opensfm_urban, 2 of
                       unsplash_okolors, and all of squoosh_demos (the drawing, the screenshot,
                       the subtitled still: the only real images of those kinds, kept for
                       measuring)
    OUT/synthetic-train/  150 images, 512x512, 30 of each kind (about a quarter of the images
                          a run samples from, beside train/ and extra-train/)
    OUT/synthetic-val/    40 images, 512x384, 8 of each kind, from another seed
    OUT/synthetic-colour-train/, OUT/synthetic-colour-val/  60 and 8 images of a sixth kind:
                          patterns and text in pairs of colours of nearly equal luma, or of
                          saturated colours (the x3 pattern gap's content)
    OUT/soft-train/, OUT/soft-val/  soft photos, as video frames are that were scaled up from a
                          lower resolution: the training photos and extra-train's (soft-train),
                          extra-val's photos (soft-val: not the squoosh drawing, screenshot or
                          still), each reduced by a random factor of 0.5 to 0.8 and scaled back
                          up, bicubic both ways (the x2 model trained without them was 0.4 dB
                          behind the official weights on soft-val)
    OUT/video-train/, OUT/video-val/  the soft photos as a video stream delivers them: each of
                          soft-train's and soft-val's images (cropped to even sides) encoded
                          by ffmpeg's libx264 in 4:2:0 at a CRF drawn from 22 to 32 and decoded
                          back, so that the ground truth carries the codec's artefacts and the
                          chroma's loss as the frames a user upscales do (the x2 and x3
                          embedded before they were made were behind the official weights
                          there on 19 and 18 of the 29 images); needs ffmpeg with libx264
Never train on the *-val folders; `rt4ksr eval --data OUT/synthetic-val -s 2` measures a model.
"""

import argparse
import math
import os
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SUPERSAMPLE = 4
KINDS = ["text", "drawing", "lineart", "pattern", "screen"]
WORDS = (
    "the quick brown fox jumps over lazy dog super resolution real time engine frame pixel "
    "video stream upscale model layer kernel tile block window street house river bridge "
    "market station menu settings account profile search share download open close save "
    "Monday 2026 12:45 ISBN 978-3-16 Price $19.99 Total 1,234.56 km/h 4K UHD 3840x2160"
).split()


def font(size):
    return ImageFont.load_default(size=size)


def colour(rng, dark=None):
    if dark is None:
        return tuple(rng.randrange(256) for _ in range(3))
    lo, hi = (0, 90) if dark else (170, 256)
    return tuple(rng.randrange(lo, hi) for _ in range(3))


def canvas(w, h, fill):
    img = Image.new("RGB", (w * SUPERSAMPLE, h * SUPERSAMPLE), fill)
    return img, ImageDraw.Draw(img)


def finish(img):
    return img.reduce(SUPERSAMPLE)


def text_lines(rng, d, h, sizes, ink):
    """Lines of random words down the canvas, each in a size from `sizes` and the colour `ink()`."""
    y = rng.randrange(0, 20) * SUPERSAMPLE
    while y < h * SUPERSAMPLE:
        size = rng.choice(sizes) * SUPERSAMPLE
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 12)))
        d.text((rng.randrange(0, 30) * SUPERSAMPLE, y), line, font=font(size), fill=ink())
        y += int(size * rng.uniform(1.15, 1.6))


def text_image(rng, w, h):
    dark_on_light = rng.random() < 0.7
    img, d = canvas(w, h, colour(rng, dark=not dark_on_light))
    sizes = [9, 10, 11, 12, 14, 16, 18, 22, 28, 36, 48]
    text_lines(rng, d, h, sizes, lambda: colour(rng, dark=dark_on_light))
    return finish(img)


def drawing_image(rng, w, h):
    img, d = canvas(w, h, colour(rng))
    S = SUPERSAMPLE
    for _ in range(rng.randrange(6, 20)):
        kind = rng.random()
        x, y = rng.randrange(-w // 4, w) * S, rng.randrange(-h // 4, h) * S
        r = rng.randrange(10, max(w, h) // 3) * S
        outline = (0, 0, 0) if rng.random() < 0.6 else None
        width = rng.choice([1, 2, 3, 4]) * S
        if kind < 0.35:
            d.ellipse([x, y, x + r, y + int(r * rng.uniform(0.5, 1.5))], fill=colour(rng), outline=outline, width=width)
        elif kind < 0.7:
            pts = [(x + rng.randrange(-r, r), y + rng.randrange(-r, r)) for _ in range(rng.randrange(3, 7))]
            d.polygon(pts, fill=colour(rng), outline=outline, width=width)
        else:
            d.rounded_rectangle(
                [x, y, x + r, y + r // 2], radius=rng.randrange(1, 20) * S, fill=colour(rng), outline=outline, width=width
            )
    return finish(img)


def lineart_image(rng, w, h):
    img, d = canvas(w, h, colour(rng, dark=False))
    S = SUPERSAMPLE
    ink = colour(rng, dark=True)
    for _ in range(rng.randrange(8, 30)):
        # A smooth stroke: a random walk of the direction, drawn as a polyline.
        x, y = rng.uniform(0, w) * S, rng.uniform(0, h) * S
        angle, pts = rng.uniform(0, 2 * math.pi), []
        for _ in range(rng.randrange(10, 80)):
            pts.append((x, y))
            angle += rng.gauss(0, 0.25)
            x += math.cos(angle) * 4 * S
            y += math.sin(angle) * 4 * S
        d.line(pts, fill=ink, width=rng.choice([1, 1, 2, 3, 5]) * S, joint="curve")
    for _ in range(rng.randrange(0, 6)):
        x, y, r = rng.uniform(0, w) * S, rng.uniform(0, h) * S, rng.uniform(5, 60) * S
        d.ellipse([x - r, y - r, x + r, y + r], outline=ink, width=rng.choice([1, 2]) * S)
    return finish(img)


def random_pair(rng):
    return colour(rng), colour(rng)


def pattern_image(rng, w, h, pair=random_pair):
    S = SUPERSAMPLE
    yy, xx = np.mgrid[0 : h * S, 0 : w * S].astype(np.float64) / S
    kind = rng.randrange(5)
    a, b = pair(rng)
    if kind == 0:  # rotated checkerboard
        t, p = rng.uniform(0, math.pi), rng.uniform(3, 24)
        u, v = xx * math.cos(t) + yy * math.sin(t), -xx * math.sin(t) + yy * math.cos(t)
        mask = (np.floor(u / p) + np.floor(v / p)) % 2 == 0
    elif kind == 1:  # stripes
        t, p = rng.uniform(0, math.pi), rng.uniform(2.5, 20)
        mask = np.floor((xx * math.cos(t) + yy * math.sin(t)) / p) % 2 == 0
    elif kind == 2:  # concentric rings, period growing outwards
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        mask = np.floor(np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) ** 0.8 / rng.uniform(1.5, 5)) % 2 == 0
    elif kind == 3:  # a facade: a grid of windows in a wall
        px, py = rng.uniform(8, 40), rng.uniform(8, 40)
        fx, fy = rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.8)
        mask = ((xx / px) % 1 < fx) & ((yy / py) % 1 < fy)
    else:  # a tiled floor of two tile sizes
        p = rng.uniform(6, 30)
        mask = ((xx // p) % 2 == 0) ^ ((yy // (p / 2)) % 3 == 0)
    rgb = np.where(mask[..., None], np.array(a, np.float64), np.array(b, np.float64))
    img = Image.fromarray(rgb.round().astype(np.uint8))
    return finish(img)


def screen_image(rng, w, h):
    # Pixel-aligned flat UI: bars, buttons, text and icons, as a screenshot holds.
    S = SUPERSAMPLE
    img, d = canvas(w, h, colour(rng, dark=rng.random() < 0.3))
    bar = rng.randrange(24, 56)
    d.rectangle([0, 0, w * S, bar * S], fill=colour(rng))
    d.text((8 * S, (bar // 2 - 7) * S), " ".join(rng.choice(WORDS) for _ in range(3)), font=font(14 * S), fill=(255, 255, 255))
    y = bar + 10
    while y < h - 30:
        rh = rng.randrange(28, 64)
        x = 10
        d.rectangle([x * S, y * S, (x + rh - 8) * S, (y + rh - 8) * S], fill=colour(rng))
        d.text(((x + rh) * S, y * S), " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 6))), font=font(rng.choice([11, 13, 15]) * S), fill=colour(rng, dark=True))
        bx = w - rng.randrange(70, 120)
        d.rounded_rectangle([bx * S, y * S, (w - 10) * S, (y + 26) * S], radius=6 * S, fill=colour(rng))
        d.line([(0, (y + rh) * S), (w * S, (y + rh) * S)], fill=(200, 200, 200), width=S)
        y += rh + 4
    return finish(img)


def luma(c):
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def isoluminant_pair(rng):
    """Two colours far apart in RGB and within a few levels of each other in luma: an edge that
    a linear upscaler keeps almost exactly in Y and that the networks blur (the x3 pattern gap,
    docs/training.md)."""
    a = colour(rng)
    while True:
        b = colour(rng)
        if abs(luma(a) - luma(b)) < 6 and max(abs(x - y) for x, y in zip(a, b)) > 80:
            return a, b


def saturated(rng):
    # One channel high, one low, the third anywhere: a colour on the gamut's edge.
    hi, lo, mid = rng.sample(range(3), 3)
    c = [0, 0, 0]
    c[hi], c[lo], c[mid] = rng.randrange(200, 256), rng.randrange(0, 40), rng.randrange(256)
    return tuple(c)


def saturated_pair(rng):
    a = saturated(rng)
    while True:
        b = saturated(rng)
        if max(abs(x - y) for x, y in zip(a, b)) > 120:
            return a, b


def colour_pair_image(rng, w, h):
    """A pattern, or lines of text, in an isoluminant or a saturated pair of colours."""
    pair = isoluminant_pair if rng.random() < 0.6 else saturated_pair
    if rng.random() < 0.7:
        return pattern_image(rng, w, h, pair)
    back, ink = pair(rng)
    img, d = canvas(w, h, back)
    text_lines(rng, d, h, [10, 12, 14, 18, 24, 32, 48], lambda: ink)
    return finish(img)


DRAW = {"text": text_image, "drawing": drawing_image, "lineart": lineart_image, "pattern": pattern_image, "screen": screen_image, "colourpair": colour_pair_image}


def synthetic(out, seed, per_kind, w, h, kinds=KINDS):
    out.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        for i in range(per_kind):
            rng = random.Random(f"{seed}-{kind}-{i}")
            DRAW[kind](rng, w, h).save(out / f"{kind}_{i:03}.png")


def reduced(img, longest=1024):
    """Box-filtered down by an integer factor of at least 2, to at most `longest` px."""
    factor = max(2, math.ceil(max(img.size) / longest))
    return img.reduce(factor)


def extra_split(extra, train, val):
    train.mkdir(parents=True, exist_ok=True)
    val.mkdir(parents=True, exist_ok=True)
    held_out = {"opensfm_urban": 3, "unsplash_okolors": 2}
    for folder in sorted(p for p in extra.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        for i, path in enumerate(files):
            if folder.name == "squoosh_demos":
                to_val = True
            elif folder.name == "cq100":
                to_val = i % 4 == 0
            else:
                # Spread over the folder: every k-th file, k = len / held out.
                k = len(files) // held_out.get(folder.name, 1)
                to_val = i % k == 0 and i // k < held_out.get(folder.name, 0)
            img = Image.open(path).convert("RGB")
            if path.suffix.lower() != ".png" or max(img.size) > 1024:
                img = reduced(img)
            img.save((val if to_val else train) / f"{folder.name}_{path.stem}.png")


def softened(img, rng):
    """Bicubic down by a factor of 0.5 to 0.8 and back up to the same size: the detail a
    lower-resolution source lacked, gone, as in a frame scaled up by a player or an encoder."""
    w, h = img.size
    f = rng.uniform(0.5, 0.8)
    small = img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.BICUBIC)
    return small.resize((w, h), Image.BICUBIC)


def soft_set(sources, out, seed):
    out.mkdir(parents=True, exist_ok=True)
    for folder in sources:
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png"):
            if path.name.startswith("squoosh_"):
                continue
            rng = random.Random(f"{seed}-{folder.name}-{path.name}")
            softened(Image.open(path).convert("RGB"), rng).save(out / path.name)


def encoded(src, dst, crf):
    """`src` through H.264 and back (4:2:0, BT.601 both ways, ffmpeg's defaults for RGB): one
    thread, so that x264 gives the same bits each time."""
    encode = ["ffmpeg", "-v", "error", "-i", str(src), "-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2",
              "-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-threads", "1",
              "-pix_fmt", "yuv420p", "-frames:v", "1", "-f", "h264", "-"]
    decode = ["ffmpeg", "-v", "error", "-f", "h264", "-i", "-", "-frames:v", "1", "-y", str(dst)]
    try:
        stream = subprocess.run(encode, check=True, capture_output=True).stdout
        subprocess.run(decode, input=stream, check=True, capture_output=True)
    except subprocess.CalledProcessError as e:
        said = e.stderr.decode(errors="replace").strip().splitlines()
        raise SystemExit(f"generalisation_sets.py: {src}: ffmpeg failed: {said[0] if said else e}")


def video_set(source, out, seed):
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted(p for p in source.iterdir() if p.suffix.lower() == ".png")
    crfs = [random.Random(f"{seed}-{p.name}").randint(22, 32) for p in paths]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda job: encoded(job[0], out / job[0].name, job[1]), zip(paths, crfs)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
    p.add_argument("--out", default="data/generated")
    args = p.parse_args()
    out = Path(args.out)
    if shutil.which("ffmpeg") is None:
        raise SystemExit("generalisation_sets.py: ffmpeg (with libx264) is needed for the video sets and is not on PATH")
    extra_split(Path(args.shared) / "data" / "extra", out / "extra-train", out / "extra-val")
    synthetic(out / "synthetic-train", "train", 30, 512, 512)
    synthetic(out / "synthetic-val", "val", 8, 512, 384)
    # Apart from the five kinds above, so that the earlier recipes' data stay as they were.
    synthetic(out / "synthetic-colour-train", "train", 60, 512, 512, ["colourpair"])
    synthetic(out / "synthetic-colour-val", "val", 8, 512, 384, ["colourpair"])
    soft_set([Path(args.shared) / "data" / "train", out / "extra-train"], out / "soft-train", "train")
    soft_set([out / "extra-val"], out / "soft-val", "val")
    video_set(out / "soft-train", out / "video-train", "train")
    video_set(out / "soft-val", out / "video-val", "val")
    for d in sorted(out.iterdir()):
        print(f"{d}: {len(list(d.glob('*.png')))} images")


if __name__ == "__main__":
    main()
