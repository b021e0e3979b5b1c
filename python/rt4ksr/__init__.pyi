"""Type hints of the rt4ksr package."""

import os
from typing import Any, Iterable, Iterator, Literal, Optional, TypedDict, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, "os.PathLike[str]"]
_Image = Union[npt.NDArray[np.uint8], npt.NDArray[np.uint16], npt.NDArray[np.float32]]

class WeightsError(Exception):
    """A weight file that cannot be read as an RT4KSR model, or a model that cannot run as asked."""

class Upscaler:
    """A super-resolution model loaded once, its buffers kept between calls.

    ``scale``: 2, 3 or 4; the embedded model of that scale (x2 when neither is given), or the
    scale ``weights`` must have. ``weights``: any weight file the ``rt4ksr`` binary reads (.pth,
    safetensors, rt4ksr files, training checkpoints). ``precision``: ``"auto"`` (AMX split bf16
    where the CPU has it, within 0.02 dB of fp32; else fp32), ``"fp32"``, ``"bf16"`` (AMX CPUs)
    or ``"fp16"`` (GPUs). ``device``: ``"cpu"``, or a GPU backend the package was built with.
    ``max_memory``: the network's working-memory bound in bytes; larger images are tiled to fit,
    with the same output as untiled.

    Raises ``FileNotFoundError`` for a missing weight file, ``WeightsError`` for one that is not
    a model, ``ValueError`` for an unknown precision or device, a precision the device does not
    compute in, or a scale that does not match the weights or has no embedded model.
    """

    def __init__(
        self,
        scale: Optional[int] = None,
        weights: Optional[_Path] = None,
        precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto",
        device: str = "cpu",
        max_memory: int = 1 << 30,
    ) -> None: ...
    @property
    def scale(self) -> int: ...
    @property
    def precision(self) -> str: ...
    @property
    def device(self) -> str: ...
    def __call__(self, image: _Image, out: Optional[Any] = None) -> Any:
        """Upscales an image: H x W (grey), H x W x 1, 2 (grey and alpha), 3 (RGB) or 4 (RGBA);
        uint8, uint16 or float32 in 0..1; any strides. Returns a new array with the same dtype
        and channel layout, ``scale`` times larger, exactly the samples ``rt4ksr upscale``
        writes for the same image (alpha by bicubic). The GIL is released while it computes
        (a uint8 RGB array in C order is read in place then: do not change it meanwhile).
        ``out``: a C-contiguous, writeable array of the result's dtype and shape to write into
        and return instead (for streams of frames: a fresh 4K array costs the kernel's zeroing of
        its pages every call). Raises ``ValueError`` for a shape or dtype it cannot take (of
        ``image`` or ``out``), ``TypeError`` for a non-array."""
    def upscale_file(
        self,
        src: _Path,
        dst: _Path,
        overwrite: bool = False,
        format: Optional[Literal["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"]] = None,
        quality: int = 92,
    ) -> None:
        """Upscales an image file into ``dst`` as ``rt4ksr upscale SRC -o DST`` does: 8/16-bit,
        grey, alpha, ICC profile and EXIF kept, written atomically. ``format``: default from
        ``dst``'s extension, else ``src``'s. Raises ``FileNotFoundError``, ``FileExistsError``
        (``dst`` exists without ``overwrite``), ``ValueError`` (not an image) or ``OSError``."""
    def frames(self, frames: Iterable[_Image]) -> "Frames":
        """Upscales a stream of H x W x 3 frames of one size, in order, on the library's frame
        pipeline: the next frames are taken from ``frames`` and computed while the caller works
        on the last one, a frame per core while more wait (the last, or any with none waiting,
        on all cores). Each result has its frame's dtype."""

class Frames(Iterator[Any]):
    """The upscaled frames of ``Upscaler.frames``, in order."""

    def __iter__(self) -> "Frames": ...
    def __next__(self) -> Any: ...

class Scores(TypedDict):
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    ssim_rgb: float

class ImageScores(TypedDict):
    name: str
    bicubic: Scores
    model: Optional[Scores]

class FolderScores(TypedDict):
    scale: int
    crop_border: int
    images: list[ImageScores]
    mean_bicubic: Scores
    mean_model: Optional[Scores]

def evaluate(
    folder: _Path,
    scale: int,
    weights: Optional[_Path] = None,
    *,
    precision: str = "auto",
    device: str = "cpu",
    crop_border: Optional[int] = None,
    bicubic_only: bool = False,
) -> FolderScores:
    """Per-image and mean PSNR/SSIM of a model on a folder of HR images, as ``rt4ksr eval --json``."""
