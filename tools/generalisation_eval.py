"""Y-PSNR of models on the generalisation validation sets (tools/generalisation_sets.py) next to
Set5 and Set14, per kind of content, as a Markdown table: each model against the first.

    python3 tools/generalisation_eval.py target/release/rt4ksr --scale 2 \
        official=../shared/models/official/rt4ksr_x2.pth embedded= [name=weights ...]

A model given as `name=` (nothing after =) is the binary's embedded model of that scale. The
rows: Set5, Set14, extra-val (photos of architecture and textures, the drawing, the screenshot,
the subtitled still), synthetic-val per kind (text, drawing, lineart, pattern, screen) and
synthetic-colour-val (patterns and text in isoluminant or saturated colour pairs), soft-val
(extra-val's photos softened, as frames scaled up from a lower resolution), video-val
(soft-val through H.264 and back, as a video stream delivers such frames); each cell is
the mean Y-PSNR (dB) of `rt4ksr eval --json` over the images of that row.
"""

import argparse
import json
import statistics
import subprocess
from pathlib import Path


def evaluate(binary, data, scale, weights):
    cmd = [binary, "eval", "--data", str(data), "-s", str(scale), "--json", "--device", "cpu", "--precision", "fp32"]
    if weights:
        cmd += ["--weights", weights]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {Path(img["name"]).stem: img["model"]["psnr_y"] for img in json.loads(out)["images"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binary")
    p.add_argument("models", nargs="+", metavar="NAME=WEIGHTS")
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--shared", default="../shared")
    p.add_argument("--generated", default="data/generated")
    args = p.parse_args()
    models = [m.split("=", 1) for m in args.models]
    sets = {
        "Set5": Path(args.shared) / "data" / "set5",
        "Set14": Path(args.shared) / "data" / "set14",
        "extra-val": Path(args.generated) / "extra-val",
        "synthetic-val": Path(args.generated) / "synthetic-val",
        "synthetic-colour-val": Path(args.generated) / "synthetic-colour-val",
        "soft-val": Path(args.generated) / "soft-val",
        "video-val": Path(args.generated) / "video-val",
    }
    scores = {name: {s: evaluate(args.binary, d, args.scale, w) for s, d in sets.items()} for name, w in models}
    rows = []
    for s in sets:
        images = list(scores[models[0][0]][s])
        groups = {s: images}
        if s.startswith("synthetic"):
            groups = {}
            for image in images:
                groups.setdefault(f"synthetic {image.split('_')[0]}", []).append(image)
        elif s == "extra-val":
            groups["extra-val squoosh (drawing, screen, text)"] = [i for i in images if i.startswith("squoosh")]
        rows += [(label, members, s) for label, members in groups.items()]
    first = models[0][0]
    head = "| x%d | images | " % args.scale + " | ".join(
        name if i == 0 else f"{name} | vs {first}" for i, (name, _) in enumerate(models)
    )
    print(head + " |")
    print("|" + " --- |" * (2 + 2 * len(models) - 1))
    for label, members, s in rows:
        means = [statistics.fmean(scores[name][s][m] for m in members) for name, _ in models]
        cells = [f"{means[0]:.3f}"] + [f"{v:.3f} | {v - means[0]:+.3f}" for v in means[1:]]
        print(f"| {label} | {len(members)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
