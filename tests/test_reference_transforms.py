"""`scripts/reference_transforms.py`'s palette edit: it moves one domain's colour statistics onto
another's and keeps the scenes' differences."""

from __future__ import annotations

import importlib.util

import numpy as np
from PIL import Image

import helpers

spec = importlib.util.spec_from_file_location("reference_transforms", helpers.REPO / "scripts" / "reference_transforms.py")
reference_transforms = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference_transforms)


def scenes(rng, mean_colours, contrast: float) -> list[Image.Image]:
    return [Image.fromarray(np.clip(np.asarray(colour) + rng.normal(0, contrast, (24, 20, 3)), 0, 255).astype(np.uint8))
            for colour in mean_colours]


def channel_means(images) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.float32).mean(axis=(0, 1)) for image in images])


def test_palette_transfer_moves_the_statistics_and_keeps_the_order_of_scenes():
    rng = np.random.default_rng(0)
    photos = scenes(rng, rng.uniform(60, 140, (40, 3)), contrast=30)  # darker, more contrast, wide range
    paintings = scenes(rng, rng.uniform(120, 170, (40, 3)), contrast=12)  # brighter, softer, alike
    source, target = (reference_transforms.colour_statistics(images) for images in (photos, paintings))
    edit = reference_transforms.palette_transfer(source, target)
    edited = [edit(photo) for photo in photos]

    moved = reference_transforms.colour_statistics(edited)
    for key in ("mean_of_means", "spread_of_means", "contrast"):
        np.testing.assert_allclose(moved[key], target[key], atol=2 / 255)
        assert np.abs(source[key] - target[key]).max() > 10 / 255  # so the edit had somewhere to go
    for before, after in zip(channel_means(photos).T, channel_means(edited).T):  # each channel's order of scenes
        assert np.array_equal(np.argsort(before), np.argsort(after))
