"""Turning whatever image a user has into the RGB tensor a generator takes, and back.

Training data, `translate()` and the demo all pass through `to_rgb`, so a grayscale, RGBA,
CMYK, 16-bit or EXIF-rotated image is handled the same way everywhere.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

# About 300 MB as RGB. Pillow's own bomb check stops only at 179 megapixels, with its own wording.
MAX_PIXELS = 100_000_000


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow image -> 8-bit RGB, upright.

    EXIF orientation is applied; transparency is composited onto white; 16- and 32-bit
    integer and float images are scaled to 8 bits by their type's range.
    """
    if not isinstance(image, Image.Image):
        raise ValueError(f"expected a PIL image, got {type(image).__name__}")
    if image.width == 0 or image.height == 0:
        raise ValueError(f"image has 0 pixels ({image.width}x{image.height})")
    image.load()  # decode now: a lazily opened file that is truncated fails here, not deep inside a caller
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_high_depth_to_uint8(np.asarray(image)), "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if mode in ("LA", "La", "PA", "RGBa") or image.mode == "RGBA":
        # Pillow has no La -> RGBA conversion; La -> LA un-premultiplies first.
        rgba = (image.convert("LA") if image.mode == "La" else image).convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale a 16/32-bit or float gray image to uint8.

    Floats are taken as [0, 1] when they fit, else as [0, 255]; 16-bit arrays (modes "I;16*",
    as Pillow opens 16-bit PNGs) always as 16-bit, so a dark 16-bit image stays dark; 32-bit
    integers (mode "I") as 16-bit when any value exceeds 255, else as 8-bit.
    """
    is_float = array.dtype.kind == "f"
    is_16bit = array.dtype.kind in "ui" and array.dtype.itemsize == 2
    array = np.nan_to_num(array.astype(np.float64))
    if is_float and array.max() <= 1.0:
        scale = 255.0
    elif is_16bit or array.max() > 255:
        scale = 255.0 / 65535.0
    else:
        scale = 1.0
    return np.clip(array * scale, 0, 255).round().astype(np.uint8)


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image -> (3, H, W) float tensor in [-1, 1]."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)


def tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """(3, H, W) tensor in [-1, 1] -> 8-bit RGB PIL image."""
    array = tensor.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def resize_square(images, size: int) -> list[Image.Image]:
    """Resize to size x size with bicubic filtering, as the original's test-time preprocessing does."""
    return [image.resize((size, size), Image.Resampling.BICUBIC) for image in images]


class UnreadableImageError(ValueError):
    """A file that cannot be used as an image; the message is meant for the person who gave it."""


@dataclass
class OpenedImage:
    image: Image.Image  # 8-bit RGB, upright, possibly decoded at a reduced scale
    original_size: tuple[int, int]  # (width, height) of the file as its owner sees it (EXIF orientation applied)
    frames: int  # more than 1 for an animation, of which `image` is the first frame


def open_image(path: str | os.PathLike, *, name: str | None = None, max_pixels: int = MAX_PIXELS, reduce_to: int | None = None) -> OpenedImage:
    """Open an image file someone uploaded, safely.

    The pixel count is checked before anything is decoded (a small file can unpack to GBs), a
    JPEG is decoded at a reduced scale when `reduce_to` pixels a side are enough, and the file is
    decoded now so a damaged one fails here. Errors are `UnreadableImageError`s that name the
    file (`name`, default: its file name) and say what is wrong in plain words.
    """
    name = repr(name or os.path.basename(os.fspath(path)))
    too_large = f"images up to {max_pixels // 1_000_000} megapixels are accepted"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below, in our words
            file = Image.open(path)
    except Image.DecompressionBombError:
        raise UnreadableImageError(f"{name} is too large: {too_large}.") from None
    except UnidentifiedImageError:
        raise UnreadableImageError(f"{name} is not an image file that can be read (JPEG, PNG, WebP, GIF, BMP or TIFF).") from None
    except OSError as error:
        if error.errno is None:  # Pillow's own "truncated file" and the like, not the file system's
            raise UnreadableImageError(f"{name} is incomplete or damaged: it could not be read.") from None
        raise UnreadableImageError(f"{name} could not be opened ({error.strerror or error}).") from None
    with file:
        if file.width * file.height > max_pixels:
            raise UnreadableImageError(f"{name} is {file.width}x{file.height} pixels; {too_large}.")
        rotated = file.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
        original_size = (file.height, file.width) if rotated else file.size
        frames = getattr(file, "n_frames", 1)
        if reduce_to:
            file.draft("RGB", (reduce_to, reduce_to))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale if enough
        try:
            image = to_rgb(file)  # decodes the first frame
        except (OSError, ValueError, SyntaxError):  # Pillow's decoders raise all three for damaged data
            raise UnreadableImageError(f"{name} is incomplete or damaged: it could not be decoded to the end.") from None
    return OpenedImage(image, original_size, frames)
