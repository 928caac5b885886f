"""Translate real images of any size and mode with one generator.

The generator needs sides divisible by 4 (two stride-2 downsamplings) and at least 8 (its
4x smaller bottleneck needs 2 pixels per side for reflect padding and instance norm), so each
image is padded up to that and the output cropped back: the output has exactly the input's size.
Images of the same size run as one batch.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..fast import CompiledGenerator
from ..images import pil_to_tensor, tensor_to_pil, to_rgb
from ..networks import MIN_SIDE, SIDE_MULTIPLE
from ..tiling import check_tile_size, translate_tiled


def fit_max_side(image: Image.Image, max_side: int | None, downscale: bool = True) -> Image.Image:
    """Downscale so that neither side exceeds max_side (aspect kept); or refuse when downscale is off."""
    if max_side is None or max(image.size) <= max_side:
        return image
    if not downscale:
        raise ValueError(
            f"image is {image.width}x{image.height}, larger than max_side={max_side}; "
            "pass downscale=True or a larger max_side"
        )
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def fit_max_side_tensor(batch: torch.Tensor, max_side: int | None, downscale: bool = True) -> torch.Tensor:
    """`fit_max_side` for a (B, C, H, W) batch: antialiased bilinear downscaling, or refusal."""
    height, width = batch.shape[-2:]
    if max_side is None or max(height, width) <= max_side:
        return batch
    if not downscale:
        raise ValueError(
            f"tensor is {width}x{height}, larger than max_side={max_side}; pass downscale=True or a larger max_side"
        )
    scale = max_side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(batch, size=size, mode="bilinear", antialias=True, align_corners=False)


def fit_short_side(image: Image.Image, short_side: int | None) -> Image.Image:
    """Downscale (Lanczos) so the shorter side is `short_side`; smaller images are left as they are."""
    if short_side is None or min(image.size) <= short_side:
        return image
    scale = short_side / min(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS)


def fit_short_side_tensor(batch: torch.Tensor, short_side: int | None) -> torch.Tensor:
    """`fit_short_side` for a (B, C, H, W) batch (antialiased bilinear)."""
    height, width = batch.shape[-2:]
    if short_side is None or min(height, width) <= short_side:
        return batch
    scale = short_side / min(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(batch, size=size, mode="bilinear", antialias=True, align_corners=False)


def pad_to_multiple(batch: torch.Tensor, multiple: int = SIDE_MULTIPLE, min_side: int = MIN_SIDE) -> torch.Tensor:
    """Pad (B, C, H, W) on the bottom/right to sides divisible by `multiple` and at least `min_side`.

    Reflection needs the pad to be smaller than the side, so tiny images fall back to replicate.
    """
    height, width = batch.shape[-2:]
    def padded(side: int) -> int:  # the smallest multiple of `multiple` that is >= side and >= min_side
        return math.ceil(max(side, min_side) / multiple) * multiple

    pad_h, pad_w = padded(height) - height, padded(width) - width
    if pad_h == 0 and pad_w == 0:
        return batch
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(batch, (0, pad_w, 0, pad_h), mode=mode)


def _check_tensor(images: torch.Tensor, in_channels: int) -> torch.Tensor:
    if images.dim() not in (3, 4):
        raise ValueError(f"expected a (C, H, W) or (B, C, H, W) tensor, got shape {tuple(images.shape)}")
    batch = images if images.dim() == 4 else images.unsqueeze(0)
    if batch.shape[1] != in_channels:
        raise ValueError(f"expected {in_channels} channels in dimension 1, got shape {tuple(images.shape)}")
    if batch.shape[-1] == 0 or batch.shape[-2] == 0 or batch.shape[0] == 0:
        raise ValueError(f"tensor has no pixels: shape {tuple(images.shape)}")
    if not batch.is_floating_point():
        raise ValueError(f"expected a float tensor in [-1, 1], got dtype {batch.dtype}")
    return batch


@contextlib.contextmanager
def eval_mode(*modules: torch.nn.Module):
    """Put modules (and their children) in eval mode for a block, then restore each one's mode."""
    modes = {m: m.training for module in modules for m in module.modules()}
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


@torch.inference_mode()
def run_generator(generator: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [-1, 1], any H and W -> generator output of the same size, on batch's device."""
    parameter = next(generator.parameters())
    height, width = batch.shape[-2:]
    # Always a fresh tensor made here, in inference mode, padded or not: a compiled generator's
    # guards would otherwise tell the two kinds apart and compile a second graph.
    images = pad_to_multiple(batch).to(parameter.device, parameter.dtype, copy=True)
    output = generator(images)
    return output[..., :height, :width].to(batch.device, batch.dtype)


def translate(
    generator: torch.nn.Module,
    images: Image.Image | Sequence[Image.Image] | torch.Tensor,
    *,
    max_side: int | None = None,
    downscale: bool = True,
    batch_size: int = 8,
    short_side: int | None = None,
    tile_size: int | None = None,
) -> Image.Image | list[Image.Image] | torch.Tensor:
    """Translate images with `generator`.

    Args:
        generator: a network mapping (B, 3, H, W) in [-1, 1] to the same shape.
        images: a PIL image (any mode, EXIF orientation honoured), a list of them, or a float
            tensor (C, H, W) / (B, C, H, W) in [-1, 1].
        max_side: bound on the longest side; larger images (PIL or tensor) are downscaled to it.
        downscale: when False, an image beyond max_side is an error instead.
        batch_size: most images of one size sent through the network at once.
        short_side: the scale to translate at: an image whose shorter side is longer is
            downscaled to it for the generator, and the output is upscaled (bicubic) back to
            the image's size. A generator paints strokes at the scale it was trained on.
        tile_size: PIL images longer than this on a side are translated in tiles of this size
            with whole-image normalisation (`cyclegan_hub.tiling`, for a `ResnetGenerator`):
            memory bounded by the tile (the tiles' activations wait in a temporary folder on
            disk), the result equal to one pass up to rounding; they run a `CompiledGenerator`'s
            eager generator. None: one pass.

    Returns:
        The same kind as the input: a PIL image, a list of PIL images, or a tensor.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    in_channels = next(generator.parameters()).shape[1]
    if short_side is not None and (not isinstance(short_side, int) or short_side < MIN_SIDE):
        raise ValueError(f"short_side must be an integer >= {MIN_SIDE}, got {short_side!r}")
    if tile_size is not None:  # now, not when the first large image comes up
        check_tile_size(tile_size)
    if isinstance(images, torch.Tensor):
        if tile_size is not None:
            raise ValueError("tile_size applies to PIL images; translate a large tensor as a PIL image")
        batch = fit_max_side_tensor(_check_tensor(images, in_channels), max_side, downscale)
        working = fit_short_side_tensor(batch, short_side)
        outputs = torch.cat([run_generator(generator, chunk) for chunk in working.split(batch_size)])
        if working.shape != batch.shape:
            outputs = F.interpolate(outputs, size=batch.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1)
        return outputs if images.dim() == 4 else outputs[0]
    single = isinstance(images, Image.Image)
    image_list = [images] if single else images
    if isinstance(image_list, (str, bytes)) or not isinstance(image_list, Sequence):
        raise ValueError(f"expected a PIL image, a list of PIL images or a tensor, got {type(images).__name__}")
    if len(image_list) == 0:
        raise ValueError("no images given")
    prepared = []
    for index, image in enumerate(image_list):
        try:
            prepared.append(fit_max_side(to_rgb(image), max_side, downscale))
        except ValueError as error:
            raise ValueError(f"image {index}: {error}") from None
        except OSError as error:  # Pillow decodes lazily: a truncated or corrupt file fails here
            raise ValueError(f"image {index}: the file is incomplete or damaged ({error})") from None
    working = [fit_short_side(image, short_side) for image in prepared]
    results: list[Image.Image | None] = [None] * len(prepared)
    # Group same-size images so each group is one forward pass; large ones go in tiles.
    by_size = defaultdict(list)
    for index, image in enumerate(working):
        if tile_size is not None and max(image.size) > tile_size:
            # Tiles run the generator layer by layer (stage by stage), not its compiled graph.
            eager = generator.generator if isinstance(generator, CompiledGenerator) else generator
            results[index] = Image.fromarray(translate_tiled(eager, np.asarray(image), tile_size))
        else:
            by_size[image.size].append(index)
    for indices in by_size.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = torch.stack([pil_to_tensor(working[i]) for i in chunk])
            for i, output in zip(chunk, run_generator(generator, batch)):
                results[i] = tensor_to_pil(output)
    results = [out if out.size == image.size else out.resize(image.size, Image.Resampling.BICUBIC) for out, image in zip(results, prepared)]
    return results[0] if single else results
