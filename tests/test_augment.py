"""DiffAugment: each transform does what it says, differentiably, with fresh draws per image and call."""

from __future__ import annotations

import pytest
import torch

from cyclegan_hub.augment import colour, cutout, diff_augment, parse_policy, translation
from cyclegan_hub.config import parse_args


def images(batch=4, size=(32, 40)) -> torch.Tensor:
    return torch.rand(batch, 3, *size) * 2 - 1


def test_diff_augment_keeps_the_shape_and_passes_gradients():
    x = images().requires_grad_(True)
    out = diff_augment(x)
    assert out.shape == x.shape
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_draws_differ_between_images_and_calls():
    x = images(batch=1).expand(3, -1, -1, -1)  # three copies of one image
    out = diff_augment(x)
    assert not torch.equal(out[0], out[1]) and not torch.equal(out[1], out[2])
    assert not torch.equal(diff_augment(x), diff_augment(x))


def test_colour_shifts_brightness_within_half_a_unit_on_grey_images():
    grey = torch.zeros(64, 3, 8, 8)  # no saturation or contrast to change: only brightness acts
    shifted = colour(grey)
    per_image = shifted.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)  # uniform per image
    assert per_image.abs().max() <= 0.5 and per_image[:, 0].std() > 0.1


def test_translation_shifts_content_and_fills_zeros():
    x = images(batch=16, size=(16, 16)) + 2  # strictly positive, so zeros can only be fill
    out = translation(x, ratio=0.125)  # up to 2 pixels
    for original, shifted in zip(x, out):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(shifted, torch.roll(original, (dy, dx), (1, 2)) * _inside(16, 16, dy, dx))
        ]
        assert len(matches) == 1


def _inside(height, width, dy, dx):
    """1 where a pixel shifted by (dy, dx) came from inside the image, else 0."""
    rows = torch.arange(height) - dy
    cols = torch.arange(width) - dx
    return (((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]).float()


def test_cutout_zeroes_one_rectangle_of_half_the_sides_at_most():
    x = images(batch=32, size=(16, 20)) + 2
    out = cutout(x, ratio=0.5)
    for image in out:
        zero = image[0] == 0
        assert torch.equal(zero, image[1] == 0) and torch.equal(zero, image[2] == 0)  # every channel alike
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        if len(rows):
            assert zero.sum() == len(rows) * len(cols)  # one solid rectangle
            assert len(rows) <= 8 and len(cols) <= 10
    assert (out == 0).any(dim=(1, 2, 3)).float().mean() > 0.8  # nearly always something is cut


def test_a_policy_without_color_keeps_every_value():
    x = images(batch=8) + 2  # strictly positive, so zeros can only be fill or cut
    out = diff_augment(x, policy=parse_policy("translation, cutout"))
    kept = out[out != 0]
    assert kept.numel() > 0 and torch.isin(kept, x).all()  # shifted and cut, never recoloured
    recoloured = diff_augment(x)  # the default policy starts with color
    assert not torch.isin(recoloured[recoloured != 0], x).all()


def test_a_policy_applies_its_transforms_in_order():
    x = images(batch=2)
    torch.manual_seed(0)
    expected = cutout(colour(x))
    torch.manual_seed(0)
    assert torch.equal(diff_augment(x, policy=("color", "cutout")), expected)


def test_a_probability_applies_each_transform_to_that_share_of_the_images():
    torch.manual_seed(0)
    x = images(batch=4000, size=(4, 4))
    out = diff_augment(x, policy=("color",), probability=0.3)
    changed = (out != x).flatten(1).any(1)
    assert 0.27 < changed.float().mean() < 0.33
    assert torch.equal(out[~changed], x[~changed])  # the others pass untouched
    both = diff_augment(x, policy=("color", "cutout"), probability=0.5)
    assert 0.72 < (both != x).flatten(1).any(1).float().mean() < 0.78  # drawn apart: 1 - 0.5 * 0.5


def test_probability_1_is_diffaugment_itself_and_passes_gradients():
    x = images().requires_grad_(True)
    torch.manual_seed(1)
    expected = diff_augment(x)
    torch.manual_seed(1)
    out = diff_augment(x, probability=1.0)
    assert torch.equal(out, expected)  # nothing extra drawn: runs without the flag replay as before
    diff_augment(x, probability=0.5).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("text", ["colour", "color,blur", "", "translation,"])
def test_unknown_transforms_are_named_in_the_error(text):
    with pytest.raises(ValueError, match="unknown DiffAugment transform.*choose from color, translation, cutout"):
        parse_policy(text)


def test_the_flags_choose_the_transforms_and_whose_discriminators_see_them():
    base = ["--dataset", "unused", "--output_dir", "unused"]
    assert parse_args(base).step_kwargs()["augment"] is None
    default = parse_args([*base, "--diffaugment"]).step_kwargs()
    assert default["augment"].keywords == {"policy": ("color", "translation", "cutout"), "probability": 1.0}
    assert default["augmented_domains"] == "both"
    chosen = parse_args([
        *base, "--diffaugment", "--diffaugment_policy", "translation,cutout", "--diffaugment_p", "0.5", "--diffaugment_domains", "b",
    ]).step_kwargs()
    assert chosen["augment"].keywords == {"policy": ("translation", "cutout"), "probability": 0.5}
    assert chosen["augmented_domains"] == "b"
