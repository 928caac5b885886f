"""Translate an image of any size in bounded memory: tiles that agree, because every instance
(or layer) norm uses the statistics of the whole image.

Instance normalisation scales each channel by its mean and spread over the image (layer
normalisation all channels by theirs together). Translating tiles one by one gives every tile
statistics of its own, and colour and contrast jump at the tile borders. Here the generator runs
stage by stage, every tile through one stage before any tile starts the next. A stage is the
local layers between two such norms (convs, ReLUs, resampling, a residual block's skip
connection). Each tile runs its window, the tile grown by the generator's receptive field, so
that the tile's core sees the context it has in the whole image.
After a stage, the core of each tile adds its share of the next norm's input sum and sum of
squares (float64), and the window's activation goes to a file; once every tile has run, the
norm's whole-image mean and variance are known, and the next stage starts by normalising each
tile's activation with them. The result equals the untiled pass up to float rounding.

Cost: every layer runs once per tile, so the work is one pass over the tiles' windows, which
overlap (`window_pixels`): for 1024-pixel tiles at 8000x6000, 1.26x the image's pixels with the
demo's 6 blocks (margin 72) and 1.35x with the paper's 9 (margin 96). Writing each stage's
activations to disk and reading them back (float32, so the result stays exact) added 3-7% per
window pixel in a small measurement. Memory: one tile's activations (about 1.3 GB for a
1024-pixel tile, the demo model's or the paper's layout) and the image and its output, not the
image's activations. Those wait in a temporary folder, one stage at a time, removed when done or
on an error: at most a full-resolution stage, ngf channels x window pixels x 4 bytes (2 ngf with
anti-aliased downsampling, whose first down conv runs at full resolution, and 2 ngf with U-Net
skips, whose stem features wait for the head); at 8000x6000, 32 x 61 MP x 4 = 7.7 GB for ngf 32
(15 GB with U-Net skips, as the embedded model has), 17 GB for the paper's ngf 64.
"""

from __future__ import annotations

import enum
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .networks import MIN_SIDE, SIDE_MULTIPLE, LayerInstanceNorm, ResidualBlock, ResnetGenerator, image_logits

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


def window_pixels(height: int, width: int, size: int, margin: int) -> int:
    """Pixels the tiles' windows cover, overlaps counted: what the tiled translation's time grows with."""
    return sum((bottom - top) * (right - left) for top, bottom, left, right in (tile.window for tile in tiles(height, width, size, margin)))


def receptive_margin(generator: nn.Module) -> int:
    """Pixels of context, at the image's resolution, that decide one output pixel of a
    `ResnetGenerator`, rounded up to a multiple of 4 with room to spare.

    3 + 3 for the 7x7 convs, 4 per 3x3 conv at a quarter of the resolution (two per block), and
    at most 16 for the resampling layers and their blurs."""
    blocks = len(getattr(generator, "blocks", ()))
    return ALIGN * -(-(6 + 8 * blocks + 16) // ALIGN)


class Skip(enum.Enum):
    """Steps of a residual block, or of a generator's input skip, that are not layers."""

    KEEP = "keep the block's input"
    ADD = "add the kept input to the block's output"
    KEEP_INPUT = "keep the logits of the generator's input image"
    ADD_INPUT = "add them to the last conv's output"
    KEEP_FEATURES = "keep an encoder stage's output (U-Net skips)"
    CONCAT_FEATURES = "concatenate the latest kept encoder output to the decoder's features"


def flat_layers(generator: ResnetGenerator) -> list:
    """`ResnetGenerator.forward` as the list of its layers in the order they run, each residual
    block's between a `Skip.KEEP` and a `Skip.ADD`, with an input skip all but the tanh
    between a `Skip.KEEP_INPUT` and a `Skip.ADD_INPUT`, and with U-Net skips a
    `Skip.KEEP_FEATURES` after each encoder stage and a `Skip.CONCAT_FEATURES` before its decoder's."""

    def flatten(module: nn.Module) -> list:
        if isinstance(module, ResidualBlock):  # x + norm2(conv2(dropout(conv1(x))))
            return [Skip.KEEP, *flatten(module.conv1), module.dropout, module.conv2, module.norm2, Skip.ADD]
        if isinstance(module, nn.Sequential):  # the stem, down and up units are sequences of layers
            return [layer for child in module for layer in flatten(child)]
        return [module]

    if generator.unet_skips:  # each encoder stage's output waits for its decoder stage
        parts = (
            generator.stem, Skip.KEEP_FEATURES, generator.down[0], Skip.KEEP_FEATURES, generator.down[1], generator.blocks,
            generator.up[0], Skip.CONCAT_FEATURES, generator.up[1], Skip.CONCAT_FEATURES, generator.head,
        )
    else:
        parts = (generator.stem, generator.down, generator.blocks, generator.up, generator.head)
    layers = [layer for part in parts for layer in (flatten(part) if isinstance(part, nn.Module) else [part])]
    if generator.input_skip:
        layers = [Skip.KEEP_INPUT, *layers, Skip.ADD_INPUT]
    return layers + [torch.tanh]


# Norms whose statistics span the image; batch norm's running statistics are local layers.
IMAGE_NORMS = (nn.InstanceNorm2d, nn.GroupNorm, LayerInstanceNorm)


def stages(generator: ResnetGenerator) -> list[tuple[nn.Module | None, list]]:
    """The layers split at the instance or layer norms: (the norm a stage starts with, the layers
    after it up to the next one's input); the first stage starts with none."""
    result = [(None, [])]
    for layer in flat_layers(generator):
        if isinstance(layer, IMAGE_NORMS):
            result.append((layer, []))
        else:
            result[-1][1].append(layer)
    return result


class SpilledTensors:
    """Tensors kept in files in `folder` until taken back (float32 files: exact for the float32,
    float16 and bfloat16 a generator runs in)."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.kept: dict[str, tuple[tuple[int, ...], torch.dtype, torch.device]] = {}

    def put(self, name: str, tensor: torch.Tensor) -> None:
        tensor.float().cpu().numpy().tofile(self.folder / name)
        self.kept[name] = (tuple(tensor.shape), tensor.dtype, tensor.device)

    def count(self, prefix: str) -> int:
        """How many kept tensors have a name starting with `prefix`."""
        return sum(name.startswith(prefix) for name in self.kept)

    def take(self, name: str) -> torch.Tensor:
        shape, dtype, device = self.kept.pop(name)
        path = self.folder / name
        tensor = torch.from_numpy(np.fromfile(path, np.float32).reshape(shape))
        path.unlink()
        return tensor.to(device, dtype)


def run_layers(layers: list, x: torch.Tensor, spilled: SpilledTensors, tile_name: str) -> torch.Tensor:
    """Run one tile through a stage's layers; a residual block's input, the generator's input
    logits, or an encoder stage's output waits on disk for its skip."""
    for layer in layers:
        if layer is Skip.KEEP:
            spilled.put(f"{tile_name}-skip", x)
        elif layer is Skip.ADD:
            x = x + spilled.take(f"{tile_name}-skip")
        elif layer is Skip.KEEP_INPUT:
            spilled.put(f"{tile_name}-input", image_logits(x))
        elif layer is Skip.ADD_INPUT:
            x = x + spilled.take(f"{tile_name}-input")
        elif layer is Skip.KEEP_FEATURES:  # a stack: the deepest kept is the first concatenated
            spilled.put(f"{tile_name}-features{spilled.count(f'{tile_name}-features')}", x)
        elif layer is Skip.CONCAT_FEATURES:
            x = torch.cat([x, spilled.take(f"{tile_name}-features{spilled.count(f'{tile_name}-features') - 1}")], dim=1)
        else:
            x = layer(x)
    return x


class WholeImageMoments:
    """Per-channel count, sum and sum of squares of a norm's input, added up over the tile cores
    in float64 (millions of pixels: float32 sums would drift)."""

    def __init__(self):
        self.count, self.total, self.squares = 0, 0.0, 0.0

    def add(self, core: torch.Tensor) -> None:
        sums, squares = [], []
        for channels in core[0].split(16):  # a few channels at a time: a whole float64 copy would outweigh the tile
            channels = channels.double()
            sums.append(channels.sum(dim=(1, 2)))
            squares.append(channels.square().sum(dim=(1, 2)))
        self.count += core[0, 0].numel()
        self.total = self.total + torch.cat(sums)
        self.squares = self.squares + torch.cat(squares)

    def mean_and_variance(self, groups: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per channel; with `groups`, those of each group of channels pooled (a group norm's),
        repeated for every channel of the group."""
        count, total, squares = self.count, self.total, self.squares
        if groups is not None:
            size = len(total) // groups
            count *= size
            total, squares = (value.view(groups, size).sum(1).repeat_interleave(size) for value in (total, squares))
        mean = total / count
        return mean, (squares / count - mean.square()).clamp_min(0)


def whole_image_statistics(norm: nn.Module, moments: WholeImageMoments):
    """The per-channel mean and variance `norm` would use on the whole image (both kinds for a
    layer-instance norm: per channel, and over all channels)."""
    if isinstance(norm, LayerInstanceNorm):
        return moments.mean_and_variance(), moments.mean_and_variance(1)
    return moments.mean_and_variance(norm.num_groups if isinstance(norm, nn.GroupNorm) else None)


def standardise(x: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor, eps: float, in_place: bool = False) -> torch.Tensor:
    mean, variance = (value.to(x.dtype).view(1, -1, 1, 1) for value in (mean, variance))
    return (x.sub_(mean) if in_place else x - mean).div_(torch.sqrt(variance + eps))


def normalise(x: torch.Tensor, norm: nn.Module, statistics) -> torch.Tensor:
    """What `norm` computes, with the whole image's mean and variance instead of the tile's."""
    if isinstance(norm, LayerInstanceNorm):
        by_channel, by_layer = statistics
        by_channel = standardise(x, *by_channel, norm.eps)  # a copy: x is standardised over all channels next, in place
        return norm.mix(by_channel, standardise(x, *by_layer, norm.eps, in_place=True), in_place=True)
    x = standardise(x, *statistics, norm.eps, in_place=True)  # x was just read back: in place
    if norm.affine and isinstance(norm, nn.GroupNorm):  # its per-channel scale and shift
        x = x.mul_(norm.weight.view(1, -1, 1, 1)).add_(norm.bias.view(1, -1, 1, 1))
    return x


def check_tile_size(tile_size: int) -> None:
    """A tile must hold the generator's two halvings whole: a multiple of 4, at least 8."""
    if not isinstance(tile_size, int) or tile_size < MIN_SIDE or tile_size % ALIGN:
        raise ValueError(f"tile_size must be a multiple of {ALIGN}, at least {MIN_SIDE}; got {tile_size!r}")


@torch.inference_mode()
def translate_tiled(
    generator: ResnetGenerator, image: np.ndarray, tile_size: int = 512, margin: int | None = None, spill_dir: str | None = None
) -> np.ndarray:
    """Translate an 8-bit RGB array (H, W, 3) with `generator`, `tile_size` pixels at a time.

    Args:
        generator: a `ResnetGenerator` in eval mode.
        image: uint8 array of any size.
        tile_size: side of the square each tile outputs (a multiple of 4); memory grows with
            (tile_size + 2 margin)^2, not with the image.
        margin: context around each tile; default `receptive_margin(generator)`.
        spill_dir: where the tiles' activations wait between stages, in a temporary folder
            removed afterwards; default the system's (TMPDIR). Needs about ngf x 4 bytes per
            pixel of the image, times the tiles' overlap (7.7 GB at 8000x6000 for ngf 32, twice that with U-Net skips): not a
            folder in memory (tmpfs) if memory is to stay bounded.

    Returns:
        The translated uint8 array, same shape; equal to the untiled translation up to rounding.
    """
    if not isinstance(generator, ResnetGenerator):
        raise TypeError(f"tiled translation runs a ResnetGenerator layer by layer, got {type(generator).__name__}")
    check_tile_size(tile_size)
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

    def core_of(x: torch.Tensor, tile: Tile) -> torch.Tensor:
        """The tile's core in its window's activation `x`, at x's resolution (a half or a quarter)."""
        (top, bottom, left, right), (window_top, window_bottom, window_left, window_right) = tile.core, tile.window
        scale_y, scale_x = (window_bottom - window_top) // x.shape[-2], (window_right - window_left) // x.shape[-1]
        return x[..., (top - window_top) // scale_y : (bottom - window_top) // scale_y, (left - window_left) // scale_x : (right - window_left) // scale_x]

    output = np.empty((padded_h, padded_w, 3), dtype=np.uint8)
    all_stages = stages(generator)
    with tempfile.TemporaryDirectory(prefix="cyclegan-tiles-", dir=spill_dir) as folder:
        spilled, statistics = SpilledTensors(folder), None
        for index, (norm, layers) in enumerate(all_stages):
            last = index == len(all_stages) - 1
            moments = WholeImageMoments()
            for number, tile in enumerate(grid):
                name = str(number)
                x = window_tensor(tile) if norm is None else normalise(spilled.take(name), norm, statistics)
                x = run_layers(layers, x, spilled, name)
                if last:
                    pixels = core_of(x, tile)[0].float().clamp(-1, 1).add(1).mul(127.5).round().byte()  # as tensor_to_pil
                    top, bottom, left, right = tile.core
                    output[top:bottom, left:right] = pixels.permute(1, 2, 0).cpu().numpy()
                else:
                    moments.add(core_of(x, tile))
                    spilled.put(name, x)
            if not last:
                statistics = whole_image_statistics(all_stages[index + 1][0], moments)
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
