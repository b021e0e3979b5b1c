"""rt4ksr: real-time 4K super-resolution (RT4KSR, CVPRW 2023) from Python.

The engine of the ``rt4ksr`` command-line tool, with its embedded x2, x3 and x4 models::

    import numpy as np
    from PIL import Image
    import rt4ksr

    up = rt4ksr.Upscaler(scale=2)
    big = up(np.asarray(Image.open("photo.png")))
    Image.fromarray(big).save("photo_x2.png")
"""

import json as _json

from ._rt4ksr import Frames, Upscaler, WeightsError, __version__, evaluate_json as _evaluate_json

__all__ = ["Upscaler", "Frames", "WeightsError", "evaluate", "__version__"]


def evaluate(folder, scale, weights=None, *, precision="auto", device="cpu", crop_border=None, bicubic_only=False):
    """Measures a model on a folder of HR images as ``rt4ksr eval --json`` does.

    LR images are made from the HR ones (MATLAB bicubic, 8-bit), the model's output is rounded
    to 8 bits, and PSNR/SSIM are measured on Y (BT.601) and RGB with ``crop_border`` pixels
    (default: the scale) left out at each border. ``weights`` is a weight file; by default the
    embedded model of ``scale``.

    Returns a dict: ``scale``, ``crop_border``, ``images`` (one dict per image: ``name``,
    ``bicubic`` and ``model``, each with ``psnr_y``, ``ssim_y``, ``psnr_rgb``, ``ssim_rgb``),
    ``mean_bicubic`` and ``mean_model`` (``None`` with ``bicubic_only``).
    """
    text = _evaluate_json(
        str(folder),
        scale,
        None if weights is None else str(weights),
        precision,
        device,
        crop_border,
        bicubic_only,
    )
    return _json.loads(text)
