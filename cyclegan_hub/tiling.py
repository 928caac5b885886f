"""Translate an image of any size in bounded memory: tiles that agree, because every instance
norm uses the statistics of the whole image.

Instance normalisation scales each channel by its mean and spread over the image. Translating
tiles one by one gives every tile statistics of its own, and colour and contrast jump at the tile
borders. Here each norm layer uses the statistics the untiled pass would compute, gathered tile by
tile: for each norm layer in turn, every tile runs up to that layer (the layers before it
normalising with the whole-image statistics already found) and adds its share of the layer
input's sum and sum of squares. A last pass translates every tile with all statistics known.
Tiles overlap by the generator's receptive field, so the core of each tile sees the context it
has in the whole image: the result equals the untiled pass up to float rounding, in memory that
grows with the tile, not the image. The price is one partial pass per norm layer: with the
paper's layout about (norm layers / 2 + 1) untiled passes, plus the overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .networks import MIN_SIDE, SIDE_MULTIPLE

# The generator halves its resolution twice: tiles start on multiples of 4 so that every
# stride-2 layer samples the grid the untiled pass samples.
ALIGN = SIDE_MULTIPLE


@dataclass(frozen=True)
class Tile:
    core: tuple[int, int, int, int]  # top, bottom, left, right: the pixels this tile outputs
    window: tuple[int, int, int, int]  # the core grown by the margin, clipped to the image: what runs


def tiles(height: int, width: int, size: int, margin: int) -> list[Tile]:
    """Cores of `size` pixels a side covering the image once, each in a window `margin` wider."""
    result = []
    for top in range(0, height, size):
        for left in range(0, width, size):
            bottom, right = min(top + size, height), min(left + size, width)
            window = (max(0, top - margin), min(height, bottom + margin), max(0, left - margin), min(width, right + margin))
            result.append(Tile((top, bottom, left, right), window))
    return result


def receptive_margin(generator: nn.Module) -> int:
    """Pixels of context, at the image's resolution, that decide one output pixel of a
    `ResnetGenerator`, rounded up to a multiple of 4 with room to spare.

    3 + 3 for the 7x7 convs, 4 per 3x3 conv at a quarter of the resolution (two per block), and
    at most 16 for the resampling layers and their blurs."""
    blocks = len(getattr(generator, "blocks", ()))
    return ALIGN * -(-(6 + 8 * blocks + 16) // ALIGN)


class _Measured(Exception):
    """Raised by the norm being measured: the rest of the network is not needed in this pass."""


class WholeImageNorms:
    """Forward hooks that make a generator's InstanceNorm2d layers use given statistics, and
    collect the statistics of one layer over tiles.

    Use as a context manager; `measure(k)` then `add(...)` per tile via the forward pass, and
    `finish()` stores layer k's mean and variance.
    """

    def __init__(self, generator: nn.Module):
        self.norms = [m for m in generator.modules() if isinstance(m, nn.InstanceNorm2d)]
        self.stats: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.norms)
        self.measuring: int | None = None
        self.core: tuple[int, int, int, int] | None = None  # the tile's core inside its window
        self.window_size: tuple[int, int] | None = None
        self._sums = None
        self._handles = []

    def __enter__(self):
        self._handles = [norm.register_forward_hook(self._hook) for norm in self.norms]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()

    def measure(self, index: int) -> None:
        self.measuring, self._sums = index, None

    def finish(self) -> None:
        count, total, squares = self._sums
        mean = total / count
        variance = (squares / count - mean.square()).clamp_min(0)
        self.stats[self.measuring] = (mean, variance)
        self.measuring = None

    def _hook(self, module, inputs, output):
        index = self.norms.index(module)
        (x,) = inputs
        if self.stats[index] is not None:
            mean, variance = self.stats[index]
            shape = (1, -1, 1, 1)
            return ((x - mean.to(x.dtype).view(shape)) / torch.sqrt(variance.to(x.dtype).view(shape) + module.eps)).to(output.dtype)
        if index != self.measuring:
            raise RuntimeError("norm layers must be measured in the order the network runs them")
        # The core at this layer's resolution (the input, a half or a quarter of it).
        scale_y, scale_x = self.window_size[0] // x.shape[-2], self.window_size[1] // x.shape[-1]
        top, bottom, left, right = self.core
        core = x[..., top // scale_y : bottom // scale_y, left // scale_x : right // scale_x].double()
        sums = (core[0, 0].numel(), core.sum(dim=(0, 2, 3)), core.square().sum(dim=(0, 2, 3)))
        self._sums = sums if self._sums is None else tuple(a + b for a, b in zip(self._sums, sums))
        raise _Measured


@torch.inference_mode()
def translate_tiled(generator: nn.Module, image: np.ndarray, tile_size: int = 512, margin: int | None = None) -> np.ndarray:
    """Translate an 8-bit RGB array (H, W, 3) with `generator`, `tile_size` pixels at a time.

    Args:
        generator: a `ResnetGenerator` (or any generator whose only whole-image operations are
            its InstanceNorm2d layers), in eval mode.
        image: uint8 array of any size.
        tile_size: side of the square each pass outputs (a multiple of 4); memory grows with
            (tile_size + 2 margin)^2, not with the image.
        margin: context around each tile; default `receptive_margin(generator)`.

    Returns:
        The translated uint8 array, same shape; equal to the untiled translation up to rounding.
    """
    if tile_size < MIN_SIDE or tile_size % ALIGN:
        raise ValueError(f"tile_size must be a multiple of {ALIGN}, at least {MIN_SIDE}; got {tile_size}")
    margin = receptive_margin(generator) if margin is None else margin
    if margin % ALIGN:
        raise ValueError(f"margin must be a multiple of {ALIGN}, got {margin}")
    height, width = image.shape[:2]
    # Pad as the untiled pass does (bottom / right, to a multiple of 4 and at least 8), once.
    padded_h, padded_w = (-(-max(side, MIN_SIDE) // ALIGN) * ALIGN for side in (height, width))
    mode = "reflect" if padded_h - height < height and padded_w - width < width else "edge"
    padded = np.pad(image, ((0, padded_h - height), (0, padded_w - width), (0, 0)), mode=mode)
    parameter = next(generator.parameters())
    grid = tiles(padded_h, padded_w, tile_size, margin)

    def window_tensor(tile: Tile) -> torch.Tensor:
        top, bottom, left, right = tile.window
        pixels = torch.from_numpy(np.ascontiguousarray(padded[top:bottom, left:right])).permute(2, 0, 1)[None]
        return pixels.float().div(127.5).sub(1.0).to(parameter.device, parameter.dtype)  # as pil_to_tensor

    def core_in_window(tile: Tile) -> tuple[int, int, int, int]:
        (top, bottom, left, right), (window_top, _, window_left, _) = tile.core, tile.window
        return top - window_top, bottom - window_top, left - window_left, right - window_left

    output = np.empty((padded_h, padded_w, 3), dtype=np.uint8)
    with WholeImageNorms(generator) as norms:
        for index in range(len(norms.norms)):
            norms.measure(index)
            for tile in grid:
                norms.core, window = core_in_window(tile), window_tensor(tile)
                norms.window_size = tuple(window.shape[-2:])
                try:
                    generator(window)
                except _Measured:
                    pass
            norms.finish()
        for tile in grid:
            top, bottom, left, right = core_in_window(tile)
            translated = generator(window_tensor(tile))[0, :, top:bottom, left:right]
            pixels = translated.float().clamp(-1, 1).add(1).mul(127.5).round().byte()  # as tensor_to_pil
            core_top, core_bottom, core_left, core_right = tile.core
            output[core_top:core_bottom, core_left:core_right] = pixels.permute(1, 2, 0).cpu().numpy()
    return output[:height, :width]


def seam_score(image: np.ndarray, tile_size: int, width: int = 4) -> float:
    """How much the image steps at the borders of a `tile_size` grid: the mean absolute difference
    between the `width`-pixel strips either side of each border line, over the same for the lines
    in between. The strips average out fine texture, so what is left is the kind of step tiles
    with statistics of their own make: about 1 for an image with no seams, well above 1 with them."""
    pixels = image.astype(np.float64)

    def steps(array: np.ndarray) -> np.ndarray:
        """For each line x between columns x-1 and x: mean |strip before - strip after|."""
        sums = np.cumsum(np.pad(array, ((0, 0), (1, 0), (0, 0))), axis=1)
        lines = np.arange(width, array.shape[1] - width + 1)
        before = (sums[:, lines] - sums[:, lines - width]) / width
        after = (sums[:, lines + width] - sums[:, lines]) / width
        return lines, np.abs(before - after).mean(axis=(0, 2))

    at_borders, elsewhere = [], []
    for array in (pixels, pixels.transpose(1, 0, 2)):
        lines, differences = steps(array)
        border = lines % tile_size == 0
        near = np.abs((lines + tile_size // 2) % tile_size - tile_size // 2) < width  # strips that touch a border
        at_borders.append(differences[border])
        elsewhere.append(differences[~near])
    return float(np.concatenate(at_borders).mean() / np.concatenate(elsewhere).mean())
