"""Tiled translation: the same output as one pass, no seams, any generator layout, every layer run
once per tile, no files left behind, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from torch import nn

from cyclegan_hub import ResnetGenerator, translate
from cyclegan_hub.networks import LayerInstanceNorm
from cyclegan_hub.tiling import SpilledTensors, flat_layers, receptive_margin, run_layers, seam_score, tiles, translate_tiled


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Blurred noise: texture at every scale, like a photo, and different everywhere."""
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(2)))


def untiled(generator, image: np.ndarray) -> np.ndarray:
    return np.asarray(translate(generator, Image.fromarray(image)))


def naive_tiles(generator, image: np.ndarray, size: int) -> np.ndarray:
    """What tiling without whole-image statistics or overlap gives: each tile translated alone."""
    out = np.empty_like(image)
    for top in range(0, image.shape[0], size):
        for left in range(0, image.shape[1], size):
            out[top : top + size, left : left + size] = untiled(generator, image[top : top + size, left : left + size])
    return out


LAYOUTS = pytest.mark.parametrize(
    "options",
    [
        dict(), dict(upsample="antialias", downsample="antialias"), dict(upsample="resize"), dict(norm="batch"),
        dict(norm="layer", upsample="resize", unet_skips=True),
        dict(norm="none", n_blocks=3), dict(upsample="resize", input_skip=True),
        dict(downsample="antialias", unet_skips=True),
        dict(norm="layer_instance", upsample="resize", unet_skips=True),  # the embedded model's layout
    ],
    ids=["paper", "antialias", "resize", "batch-norm", "layer-norm-unet-skips", "no-norm", "input-skip", "unet-skips", "layer-instance"],
)


@LAYOUTS
def test_the_flat_layers_run_in_order_are_the_generators_forward(options, tmp_path):
    torch.manual_seed(0)
    generator = ResnetGenerator(**{"ngf": 8, "n_blocks": 2, "dropout": 0.5, **options}).eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.inference_mode():
        assert torch.equal(run_layers(flat_layers(generator), x, SpilledTensors(tmp_path), "tile"), generator(x))


def test_tiles_need_the_generator_itself():
    compiled = torch.compile(ResnetGenerator(ngf=8, n_blocks=2).eval())
    with pytest.raises(TypeError, match="runs a ResnetGenerator layer by layer"):
        translate_tiled(compiled, photo_like(64, 64), tile_size=32)


@LAYOUTS
def test_tiles_give_the_one_pass_output(options):
    torch.manual_seed(0)
    generator = ResnetGenerator(**{"ngf": 8, "n_blocks": 2, **options}).eval()
    for norm in generator.modules():
        if isinstance(norm, (nn.GroupNorm, LayerInstanceNorm)):  # a learnt scale and shift, not the identity they start as
            nn.init.normal_(norm.weight, 1.0, 0.5)
            nn.init.normal_(norm.bias, 0.0, 0.5)
        if isinstance(norm, LayerInstanceNorm):  # and a mix of both statistics
            nn.init.normal_(norm.rho_logit, 0.0, 2.0)
    image = photo_like(203, 150)  # not a multiple of 4 or of the tile: padded as one pass pads
    whole = untiled(generator, image).astype(np.int16)
    tiled = translate_tiled(generator, image, tile_size=64).astype(np.int16)
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() <= 1  # float rounding, now and then across a .5 boundary
    assert (tiled != whole).mean() < 0.001


def test_without_whole_image_statistics_tiles_show_seams_and_with_them_none():
    # A broad colour ramp under the texture: tiles normalised on their own each flatten their part of it.
    y, x = np.mgrid[0:192, 0:256]
    ramp = np.stack([x / 255 * 200, y / 191 * 200, (x + y) / 446 * 120], axis=-1)
    image = np.clip(ramp + (photo_like(256, 192).astype(float) - 128) * 0.3, 0, 255).astype(np.uint8)
    torch.manual_seed(0)
    generator = ResnetGenerator(ngf=8, n_blocks=2, upsample="antialias", downsample="antialias").eval()
    assert seam_score(naive_tiles(generator, image, 64), 64) > 1.5
    one_pass = seam_score(untiled(generator, image), 64)
    assert one_pass < 1.1
    assert seam_score(translate_tiled(generator, image, tile_size=64), 64) == pytest.approx(one_pass, abs=0.01)


def test_the_margin_covers_the_receptive_field_and_less_does_not():
    torch.manual_seed(0)
    generator = ResnetGenerator(ngf=8, n_blocks=3).eval()
    image = photo_like(240, 160)
    whole = untiled(generator, image).astype(np.int16)
    margin = receptive_margin(generator)
    assert margin % 4 == 0
    assert np.abs(translate_tiled(generator, image, 48, margin).astype(np.int16) - whole).max() <= 1
    assert np.abs(translate_tiled(generator, image, 48, 8).astype(np.int16) - whole).max() > 10


def test_every_layer_runs_once_per_tile_not_once_per_later_norm():
    torch.manual_seed(0)
    generator = ResnetGenerator(ngf=8, n_blocks=3, upsample="antialias", downsample="antialias").eval()
    runs = {}
    convs = [m for m in generator.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    for conv in convs:
        conv.register_forward_hook(lambda module, inputs, output: runs.__setitem__(module, runs.get(module, 0) + 1))
    translate_tiled(generator, photo_like(150, 100), tile_size=48)
    tile_count = len(tiles(100, 152, 48, receptive_margin(generator)))  # 150 px wide padded to 152: 4 x 3 tiles
    assert tile_count == 12 and len(convs) == 1 + 2 + 2 * 3 + 2 + 1
    # Running each tile from the image up to each of the 11 norms in turn ran the stem's conv 12 x 12 times.
    assert all(runs[conv] == tile_count for conv in convs)


def test_the_spilled_activations_are_removed_after_a_translation_and_after_an_error(tmp_path):
    torch.manual_seed(0)
    generator = ResnetGenerator(ngf=8, n_blocks=2).eval()
    image = photo_like(120, 80)
    translate_tiled(generator, image, tile_size=48, spill_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []

    spilled = []

    def fail(module, inputs, output):
        spilled.extend(tmp_path.rglob("*"))  # the activations of the stages so far wait there
        raise RuntimeError("out of memory, say")

    generator.up[1].conv.register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="out of memory"):
        translate_tiled(generator, image, tile_size=48, spill_dir=str(tmp_path))
    assert len(spilled) > 1
    assert list(tmp_path.iterdir()) == []


def test_tiles_cover_every_pixel_once():
    grid = tiles(100, 60, 32, 8)
    covered = np.zeros((100, 60), int)
    for tile in grid:
        top, bottom, left, right = tile.core
        covered[top:bottom, left:right] += 1
        assert tile.window[0] == max(0, top - 8) and tile.window[3] == min(60, right + 8)
    assert (covered == 1).all()


def test_cyclegan_translate_with_tile_size(make_cyclegan):
    model = make_cyclegan()
    picture = Image.fromarray(photo_like(150, 100))
    small = Image.fromarray(photo_like(40, 30))
    whole = [np.asarray(image, np.int16) for image in model.translate([picture, small], "monet")]
    tiled = [np.asarray(image, np.int16) for image in model.translate([picture, small], "monet", tile_size=48)]
    assert all(np.abs(a - b).max() <= 1 for a, b in zip(whole, tiled))
    with pytest.raises(ValueError, match="tile_size applies to PIL images"):
        model.translate(torch.zeros(1, 3, 64, 64), "monet", tile_size=32)
    with pytest.raises(ValueError, match="tile_size must be a multiple of 4"):
        model.translate(picture, "monet", tile_size=50)
    with pytest.raises(ValueError, match="tile_size must be a multiple of 4"):  # even when no image needs tiles
        model.translate(small, "monet", tile_size=50)
